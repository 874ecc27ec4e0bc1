//! The six scenarios. Each connects its own fleet of simulated chargers to the running server,
//! waits for the state it measures (all booted, all charging…), measures a window — message
//! counts, latencies from the simulator's histograms (reset when the window opens), CPU of the
//! server, the benchmark and PostgreSQL from `/proc` — then switches the fleet off, checks what
//! the database holds, and answers a [`ScenarioReport`] with its figures.

use std::time::Duration;

use diesel_async::AsyncPgConnection;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::drivers::{Drivers, Endpoint, RestStats};
use super::fixtures::{self, Billing, Fixtures};
use super::probe;
use super::report::{Figure, Latency, Messages, OtherUse, RunTotals, ScenarioReport, ServerUse, thousands};
use super::server::Server;
use super::{Options, note};
use crate::simulator::stats::{Action, Stats};
use crate::simulator::{self, Fleet, Summary};

/// Charge point IDs of the simulated chargers start with this.
pub const ID_PREFIX: &str = "BENCH-";
/// How long chargers switched off wait for their StopTransactions' answers.
const DRAIN: Duration = Duration::from_secs(30);
/// How long the meter scenario's readings must keep up before its window opens.
const KEPT_UP: Duration = Duration::from_secs(5);
/// How long sessions may take to settle once the fleet is off.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Share of chargers charging in the mixed fleet (the simulator's mixed scenario).
const MIXED_METER_INTERVAL: Duration = Duration::from_secs(15);
const MIXED_HEARTBEAT: Duration = Duration::from_secs(300);

/// Everything a scenario needs.
pub struct Bench {
    /// The run's options.
    pub options: Options,
    /// Kilowatt under test.
    pub server: Server,
    /// A connection for checks.
    pub conn: AsyncPgConnection,
    /// Drivers and idTags.
    pub fixtures: Fixtures,
    /// `/proc` clock ticks per second.
    pub ticks: u64,
    /// Files the server has open with no charger connected.
    pub idle_server_files: usize,
}

/// Counters when a window opened.
struct Window {
    started: Instant,
    sent: u64,
    commands: u64,
    call_errors: u64,
    errors: u64,
    disconnects: u64,
    late: u64,
    rest: (u64, u64, u64),
    /// Server CPU of processes killed during the window, ticks.
    server_ticks_earlier: u64,
    server_ticks: u64,
    client_ticks: u64,
    postgres_ticks: std::collections::HashMap<u32, u64>,
}

/// What a window measured.
struct Measured {
    seconds: f64,
    offered: u64,
    answered: u64,
    call_errors: u64,
    errors: u64,
    disconnects: u64,
    late: u64,
    server_cpu_s: f64,
    client_cpu_s: f64,
    postgres_cpu_s: f64,
}

fn rest_counts(drivers: Option<&Drivers>) -> (u64, u64, u64) {
    drivers.map_or((0, 0, 0), |d| {
        let s = d.stats();
        (s.sent.get(), s.answered.get(), s.server_errors.get() + s.failures.get())
    })
}

impl Window {
    /// Opens a window: latencies start afresh, counters are remembered.
    fn open(stats: &Stats, drivers: Option<&Drivers>, server_pid: u32) -> Self {
        stats.reset_latencies();
        if let Some(drivers) = drivers {
            drivers.stats().reset_latencies();
        }
        Window {
            started: Instant::now(),
            sent: stats.sent_total(),
            commands: stats.commands.get(),
            call_errors: stats.call_errors_total(),
            errors: stats.errors(),
            disconnects: stats.disconnects.get(),
            late: stats.late.get(),
            rest: rest_counts(drivers),
            server_ticks_earlier: 0,
            server_ticks: probe::cpu_ticks(server_pid).unwrap_or(0),
            client_ticks: probe::own_cpu_ticks(),
            postgres_ticks: probe::postgres_cpu_ticks(),
        }
    }

    /// The server is about to be killed: keep the CPU it used so far in this window.
    fn server_killed(&mut self, server_pid: u32) {
        let now = probe::cpu_ticks(server_pid).unwrap_or(self.server_ticks);
        self.server_ticks_earlier += now.saturating_sub(self.server_ticks);
        // The new process counts from zero.
        self.server_ticks = 0;
    }

    fn close(&self, stats: &Stats, drivers: Option<&Drivers>, server_pid: u32, ticks: u64) -> Measured {
        let seconds = self.started.elapsed().as_secs_f64();
        let commands = stats.commands.get() - self.commands;
        let (rest_sent, rest_answered, rest_errors) = rest_counts(drivers);
        let server_ticks =
            self.server_ticks_earlier + probe::cpu_ticks(server_pid).unwrap_or(0).saturating_sub(self.server_ticks);
        let per_second = |t: u64| t as f64 / ticks as f64;
        Measured {
            seconds,
            offered: stats.sent_total() - self.sent + commands + rest_sent - self.rest.0,
            answered: stats.latency.count() + commands + rest_answered - self.rest.1,
            call_errors: stats.call_errors_total() - self.call_errors,
            errors: stats.errors() - self.errors + rest_errors - self.rest.2,
            disconnects: stats.disconnects.get() - self.disconnects,
            late: stats.late.get() - self.late,
            server_cpu_s: per_second(server_ticks),
            client_cpu_s: per_second(probe::own_cpu_ticks().saturating_sub(self.client_ticks)),
            postgres_cpu_s: per_second(probe::postgres_ticks_since(&self.postgres_ticks)),
        }
    }
}

fn per_message_us(cpu_s: f64, messages: u64) -> Option<f64> {
    (messages > 0).then(|| (cpu_s * 1e6 / messages as f64 * 10.0).round() / 10.0)
}

fn percent(cpu_s: f64, seconds: f64) -> f64 {
    if seconds > 0.0 { (cpu_s / seconds * 1000.0).round() / 10.0 } else { 0.0 }
}

fn run_totals(summary: &Summary) -> RunTotals {
    RunTotals {
        calls: summary.calls,
        answered: summary.answered,
        call_errors: summary.call_errors,
        errors: summary.errors,
        connect_failures: summary.connect_failures,
        disconnects: summary.disconnects,
        timeouts: summary.timeouts,
        timeouts_by_action: summary.timeouts_by_action.iter().copied().collect(),
        protocol_errors: summary.protocol_errors,
        all_answered: summary.answered >= summary.calls && summary.timeouts == 0,
    }
}

fn fleet_status(fleet: &Fleet) -> String {
    let stats = fleet.stats();
    format!(
        "connected {}/{}, accepted {}, charging {}, CALLs {} answered {}, CALLERRORs {}, errors {} \
         (disconnects {}, timeouts {}, protocol {}, connect failures {})",
        stats.connected.get(),
        fleet.config().chargers,
        stats.accepted.get(),
        stats.charging.get(),
        stats.sent_total(),
        stats.answers.get(),
        stats.call_errors_total(),
        stats.errors(),
        stats.disconnects.get(),
        stats.timeouts.get(),
        stats.protocol_errors.get(),
        stats.connect_failures.get()
    )
}

/// Polls `done` every 20 ms for up to `timeout`, printing `status` every 5 s; answers how long
/// it took, or `None` on timeout.
async fn wait_for(
    scenario: &str,
    what: &str,
    timeout: Duration,
    mut done: impl FnMut() -> bool,
    status: impl Fn() -> String,
) -> Option<Duration> {
    let started = Instant::now();
    let mut next_note = started + Duration::from_secs(5);
    loop {
        if done() {
            return Some(started.elapsed());
        }
        let now = Instant::now();
        if now >= started + timeout {
            note(scenario, format!("gave up waiting for {what} after {timeout:?}: {}", status()));
            return None;
        }
        if now >= next_note {
            note(scenario, format!("waiting for {what}: {}", status()));
            next_note = now + Duration::from_secs(5);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The `n` seconds of a window with the highest p99, as "second: p99" in that order.
fn worst_seconds(p99_by_second: &[Option<f64>], n: usize) -> String {
    let mut seconds: Vec<(usize, f64)> =
        p99_by_second.iter().enumerate().filter_map(|(second, p99)| Some((second, (*p99)?))).collect();
    seconds.sort_by(|a, b| b.1.total_cmp(&a.1));
    let worst: Vec<String> = seconds.iter().take(n).map(|(second, p99)| format!("{second}: {p99:.1}")).collect();
    format!("the worst {} of {}: {}", worst.len(), p99_by_second.len(), worst.join(", "))
}

/// Sleeps through a window, printing the fleet's state every 10 s.
async fn hold_window(scenario: &str, length: Duration, fleet: &Fleet, mut each_second: impl FnMut()) {
    let end = Instant::now() + length;
    let mut next_note = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end {
        tokio::time::sleep(end.saturating_duration_since(Instant::now()).min(Duration::from_secs(1))).await;
        each_second();
        if Instant::now() >= next_note && Instant::now() < end {
            note(scenario, fleet_status(fleet));
            next_note += Duration::from_secs(10);
        }
    }
}

fn all_booted(fleet: &Fleet) -> bool {
    let stats = fleet.stats();
    let n = fleet.config().chargers as u64;
    stats.accepted.get() >= n && stats.connected.get() >= n
}

/// Every CALL sent so far has its answer (valid before any latency reset: counts answers).
fn quiet(fleet: &Fleet) -> bool {
    unanswered(fleet) == 0
}

/// CALLs sent so far that have no answer yet.
fn unanswered(fleet: &Fleet) -> u64 {
    let stats = fleet.stats();
    stats.sent_total().saturating_sub(stats.answers.get())
}

fn latency_figure(name: &str, latency: &Latency, limit_ms: f64) -> Figure {
    let pass = latency.p99.is_some_and(|p99| p99 <= limit_ms);
    let value = latency.p99.map_or_else(|| "no samples".to_owned(), |p| format!("{p:.2} ms"));
    Figure::new(format!("{name} p99"), format!("≤ {limit_ms} ms"), value, pass)
}

fn rate_figure(name: &str, achieved: f64, target: f64, errors: u64) -> Figure {
    // Window edges shift a few messages either way.
    let pass = achieved >= 0.98 * target && errors == 0;
    Figure::new(
        name,
        format!("≥ {}/s (within 2 %), no errors", thousands(target)),
        format!("{}/s, {errors} errors", thousands(achieved)),
        pass,
    )
}

/// Each endpoint's latency so far.
fn endpoint_latencies(stats: &RestStats) -> Value {
    let endpoints: serde_json::Map<String, Value> =
        Endpoint::ALL.iter().map(|&e| (e.as_str().to_owned(), json!(Latency::of(stats.latency_of(e))))).collect();
    Value::Object(endpoints)
}

/// The drivers' requests over the whole scenario: the window, and after it every driver's last
/// stop, all at once, as the fleet winds down (latencies included).
fn rest_details(stats: &RestStats) -> Value {
    let endpoints = endpoint_latencies(stats);
    json!({
        "requests": stats.sent.get(),
        "answered": stats.answered.get(),
        "server_errors": stats.server_errors.get(),
        "failures": stats.failures.get(),
        "refusals": stats.refusals(),
        "sessions_started": stats.starts.get(),
        "sessions_stopped": stats.stops.get(),
        "latency_ms": Latency::of(&stats.latency),
        "latency_ms_by_endpoint": endpoints,
    })
}

fn billing_figures(billing: &Billing) -> Vec<Figure> {
    vec![
        Figure::new(
            "every session billed exactly once",
            "each finished session's ledger entries add up to its cost, one per kind; none left open",
            format!(
                "{} sessions, {} billed ({} adjusted by a late StopTransaction), {} misbilled, {} left open, \
                 {} entries on open sessions",
                billing.sessions,
                billing.billed,
                billing.adjusted,
                billing.misbilled,
                billing.open,
                billing.debits_of_open_sessions
            ),
            billing.open == 0 && billing.misbilled == 0 && billing.debits_of_open_sessions == 0 && billing.sessions > 0,
        ),
        Figure::new(
            "every wallet equals its ledger",
            "0 wallets off",
            format!("{} of {} wallets off", billing.wallets_off, billing.wallets),
            billing.wallets_off == 0,
        ),
    ]
}

/// What a report needs besides the window.
struct Outcome {
    name: &'static str,
    connected: u64,
    latency: Latency,
    latency_of: &'static str,
    /// Server RSS when the window closed.
    rss_kb: u64,
    rss_baseline_kb: u64,
    run: RunTotals,
    figures: Vec<Figure>,
    details: Value,
}

impl Bench {
    fn chargers(&self) -> usize {
        self.options.chargers
    }

    fn rss(&self) -> u64 {
        probe::rss_kb(self.server.pid()).unwrap_or(0)
    }

    fn fleet_config(&self, scenario: simulator::Scenario) -> simulator::Config {
        let mut config = simulator::Config::new(self.server.ocpp_url(), self.chargers());
        config.id_prefix = ID_PREFIX.to_owned();
        config.scenario = scenario;
        config.ramp = self.options.ramp;
        config.source_addrs = self.options.source_addrs.clone();
        config.drain = DRAIN;
        config.password = self.options.charger_password.clone();
        config.seed = self.options.seed;
        config
    }

    /// Connects every charger once and disconnects it, so the server has checked each
    /// password with Argon2 before anything is measured (as in a network that has run for a
    /// while: what a connect storm meets is a restart, not chargers never seen before).
    pub async fn check_passwords_once(&mut self) -> Result<(), String> {
        const NAME: &str = "setup";
        let n = self.chargers();
        note(NAME, format!("connecting every charger once so the server checks its password ({n} Argon2 checks)"));
        let fleet = Fleet::start(self.fleet_config(simulator::Scenario::Idle))?;
        // Argon2 takes tens of milliseconds a check: allow 20 a second at the least.
        let timeout = Duration::from_secs(60 + n as u64 / 20);
        let booted =
            wait_for(NAME, "every charger booted", timeout, || all_booted(&fleet), || fleet_status(&fleet)).await;
        fleet.stop().await;
        match booted {
            Some(took) => {
                note(NAME, format!("every password checked in {:.1} s", took.as_secs_f64()));
                Ok(())
            }
            None => Err(format!("not every charger could connect with its password within {timeout:?}")),
        }
    }

    /// Charge point IDs of every simulated charger (for registering them).
    pub fn charge_point_ids(options: &Options) -> Vec<String> {
        let mut config = simulator::Config::new("ws://unused", options.chargers);
        config.id_prefix = ID_PREFIX.to_owned();
        (0..options.chargers).map(|i| config.charge_point_id(i)).collect()
    }

    fn report(&self, measured: &Measured, outcome: Outcome) -> ScenarioReport {
        let rss_kb = outcome.rss_kb;
        let connected = outcome.connected;
        ScenarioReport {
            name: outcome.name,
            chargers: self.chargers(),
            connected,
            window_s: (measured.seconds * 10.0).round() / 10.0,
            messages: Messages {
                offered: measured.offered,
                offered_per_s: measured.offered as f64 / measured.seconds.max(1e-3),
                answered: measured.answered,
                achieved_per_s: measured.answered as f64 / measured.seconds.max(1e-3),
                call_errors: measured.call_errors,
                errors: measured.errors,
            },
            latency_ms: outcome.latency,
            latency_of: outcome.latency_of.to_owned(),
            server: ServerUse {
                cpu_seconds: (measured.server_cpu_s * 100.0).round() / 100.0,
                cpu_percent: percent(measured.server_cpu_s, measured.seconds),
                cpu_us_per_message: per_message_us(measured.server_cpu_s, measured.answered),
                rss_kb,
                rss_baseline_kb: outcome.rss_baseline_kb,
                rss_kb_per_charger: (connected > 0).then(|| {
                    let per = rss_kb.saturating_sub(outcome.rss_baseline_kb) as f64 / connected as f64;
                    (per * 100.0).round() / 100.0
                }),
            },
            other: OtherUse {
                client_cpu_percent: percent(measured.client_cpu_s, measured.seconds),
                client_cpu_us_per_message: per_message_us(measured.client_cpu_s, measured.answered),
                postgres_cpu_percent: percent(measured.postgres_cpu_s, measured.seconds),
                client_rss_kb: probe::rss_kb(std::process::id()).unwrap_or(0),
            },
            run: outcome.run,
            figures: outcome.figures,
            details: outcome.details,
        }
    }

    /// Switches a fleet off and waits for its sessions to settle and for the server to have
    /// closed its sockets (so the next fleet does not meet the open-files limit).
    async fn stop_fleet(&mut self, scenario: &str, fleet: Fleet) -> Result<Summary, String> {
        note(scenario, "switching the chargers off");
        let summary = fleet.stop().await;
        let pid = self.server.pid();
        let idle = self.idle_server_files + 64;
        let server_files = || probe::open_files(pid).unwrap_or(0);
        wait_for(
            scenario,
            "the server to close the sockets",
            Duration::from_secs(60),
            || server_files() <= idle,
            || format!("{} files open in the server, {idle} when idle", server_files()),
        )
        .await;
        let open = fixtures::wait_sessions_closed(&mut self.conn, SETTLE_TIMEOUT).await?;
        if open > 0 {
            note(scenario, format!("{open} sessions still open {SETTLE_TIMEOUT:?} after the chargers stopped"));
        }
        Ok(summary)
    }

    /// Starts a fleet and waits until every charger has booted — and, for an idle fleet that
    /// falls quiet, until its status notifications are answered; answers it with the time all
    /// took to boot (`None`: not all did).
    async fn connect(&self, name: &str, config: simulator::Config) -> Result<(Fleet, Option<Duration>), String> {
        let n = config.chargers;
        let falls_quiet = config.scenario == simulator::Scenario::Idle && config.heartbeat.is_none();
        let fleet = Fleet::start(config)?;
        let timeout = Duration::from_secs_f64(n as f64 / self.options.ramp.max(1.0)) + Duration::from_secs(60);
        let booted =
            wait_for(name, "every charger booted", timeout, || all_booted(&fleet), || fleet_status(&fleet)).await;
        if falls_quiet {
            let answered = || quiet(&fleet);
            wait_for(name, "status notifications answered", Duration::from_secs(30), answered, || fleet_status(&fleet))
                .await;
        }
        Ok((fleet, booted))
    }

    // ---- 1. hold ---------------------------------------------------------------------------

    /// N chargers booted and idle for the duration: none dropped, memory per charger.
    pub async fn hold(&mut self) -> Result<ScenarioReport, String> {
        const NAME: &str = "hold";
        let n = self.chargers();
        let baseline = self.rss();
        note(NAME, format!("connecting {n} chargers at {}/s (server RSS {baseline} KiB)", self.options.ramp));
        let (fleet, booted) = self.connect(NAME, self.fleet_config(simulator::Scenario::Idle)).await?;
        let length = self.options.durations.hold;
        note(NAME, format!("holding for {length:?}"));
        let pid = self.server.pid();
        let window = Window::open(fleet.stats(), None, pid);
        let mut peak = self.rss();
        hold_window(NAME, length, &fleet, || peak = peak.max(probe::rss_kb(pid).unwrap_or(0))).await;
        let measured = window.close(fleet.stats(), None, pid, self.ticks);
        let rss_kb = self.rss();
        let connected = fleet.stats().connected.get();
        let latency = Latency::of(&fleet.stats().latency);
        let summary = self.stop_fleet(NAME, fleet).await?;
        let per_charger = rss_kb.saturating_sub(baseline) as f64 / connected.max(1) as f64;
        let dropped = measured.disconnects;
        let figures = vec![
            Figure::new(
                "chargers held, none dropped",
                format!("{n} of {n} for {} s, 0 dropped", length.as_secs()),
                format!("{connected} of {n}, {dropped} dropped"),
                connected == n as u64 && dropped == 0 && booted.is_some(),
            ),
            Figure::new(
                "server RSS per connected charger",
                "≤ 16 KiB",
                format!("{per_charger:.2} KiB"),
                connected > 0 && per_charger <= 16.0,
            ),
        ];
        let details = json!({
            "connect_s": booted.map(|d| d.as_secs_f64()),
            "dropped": dropped,
            "connect_failures": summary.connect_failures,
            "rss_peak_kb": peak,
        });
        let outcome = Outcome {
            name: NAME,
            connected,
            latency,
            latency_of: "every CALL (heartbeats)",
            rss_kb,
            rss_baseline_kb: baseline,
            run: run_totals(&summary),
            figures,
            details,
        };
        Ok(self.report(&measured, outcome))
    }

    // ---- 2. storm --------------------------------------------------------------------------

    /// All N connect and boot at once.
    pub async fn storm(&mut self) -> Result<ScenarioReport, String> {
        const NAME: &str = "storm";
        let n = self.chargers();
        let baseline = self.rss();
        let mut config = self.fleet_config(simulator::Scenario::Idle);
        config.ramp = 0.0;
        note(NAME, format!("{n} chargers connecting at once"));
        let pid = self.server.pid();
        let window = Window::open(&Stats::default(), None, pid);
        let fleet = Fleet::start(config)?;
        let accepted = wait_for(
            NAME,
            "every charger Accepted",
            Duration::from_secs(60),
            || all_booted(&fleet),
            || fleet_status(&fleet),
        )
        .await;
        wait_for(
            NAME,
            "status notifications answered",
            Duration::from_secs(30),
            || quiet(&fleet),
            || fleet_status(&fleet),
        )
        .await;
        let measured = window.close(fleet.stats(), None, pid, self.ticks);
        let rss_kb = self.rss();
        let stats = fleet.stats();
        let connected = stats.connected.get();
        let accepted_count = stats.accepted.get();
        let boot = Latency::of(stats.latency_of(Action::BootNotification));
        let all_calls = Latency::of(&stats.latency);
        let summary = self.stop_fleet(NAME, fleet).await?;
        let accepted_s = accepted.map(|d| d.as_secs_f64());
        let figures = vec![
            Figure::new(
                "all Accepted",
                format!("{n} within 10 s"),
                match accepted_s {
                    Some(s) => format!("{n} in {s:.2} s"),
                    None => format!("{accepted_count} of {n} after 60 s"),
                },
                accepted_s.is_some_and(|s| s <= 10.0),
            ),
            latency_figure("BootNotification", &boot, 500.0),
        ];
        let details = json!({
            "all_accepted_s": accepted_s,
            "accepted": accepted_count,
            "connect_failures": summary.connect_failures,
            "timeouts": summary.timeouts,
            "all_calls_latency_ms": all_calls,
        });
        let outcome = Outcome {
            name: NAME,
            connected,
            latency: boot,
            latency_of: "BootNotification",
            rss_kb,
            rss_baseline_kb: baseline,
            run: run_totals(&summary),
            figures,
            details,
        };
        Ok(self.report(&measured, outcome))
    }

    // ---- 3. heartbeat ----------------------------------------------------------------------

    /// Heartbeats at a fixed total rate spread over the connected chargers.
    pub async fn heartbeat(&mut self) -> Result<ScenarioReport, String> {
        const NAME: &str = "heartbeat";
        let n = self.chargers();
        let rate = self.options.heartbeat_rate;
        let interval = Duration::from_secs_f64(n as f64 / rate);
        let baseline = self.rss();
        let mut config = self.fleet_config(simulator::Scenario::Idle);
        config.heartbeat = Some(interval);
        note(NAME, format!("{n} chargers, a heartbeat every {:.3} s each: {rate:.0}/s", interval.as_secs_f64()));
        let (fleet, _) = self.connect(NAME, config).await?;
        // The first heartbeats come 0.5–1.5 intervals after the boot.
        tokio::time::sleep(interval.mul_f64(1.5) + Duration::from_millis(500)).await;
        let pid = self.server.pid();
        let sent_before = fleet.stats().sent_of(Action::Heartbeat);
        let window = Window::open(fleet.stats(), None, pid);
        hold_window(NAME, self.options.durations.heartbeat, &fleet, || {}).await;
        let measured = window.close(fleet.stats(), None, pid, self.ticks);
        let rss_kb = self.rss();
        let stats = fleet.stats();
        let sent = stats.sent_of(Action::Heartbeat) - sent_before;
        let heartbeats = Latency::of(stats.latency_of(Action::Heartbeat));
        let achieved = heartbeats.count as f64 / measured.seconds;
        let connected = stats.connected.get();
        let summary = self.stop_fleet(NAME, fleet).await?;
        let figures = vec![
            rate_figure("heartbeats answered per second", achieved, rate, measured.errors + measured.call_errors),
            latency_figure("Heartbeat", &heartbeats, 10.0),
        ];
        let details = json!({
            "target_per_s": rate,
            "interval_s": interval.as_secs_f64(),
            "heartbeats_sent": sent,
            "heartbeats_answered": heartbeats.count,
            "heartbeats_per_s": achieved,
            "late": measured.late,
        });
        let outcome = Outcome {
            name: NAME,
            connected,
            latency: heartbeats,
            latency_of: "Heartbeat",
            rss_kb,
            rss_baseline_kb: baseline,
            run: run_totals(&summary),
            figures,
            details,
        };
        Ok(self.report(&measured, outcome))
    }

    // ---- 4. meter --------------------------------------------------------------------------

    /// Every charger in a transaction, MeterValues at a fixed total rate, stored durably.
    pub async fn meter(&mut self) -> Result<ScenarioReport, String> {
        const NAME: &str = "meter";
        let n = self.chargers();
        let rate = self.options.meter_rate;
        let interval = Duration::from_secs_f64(n as f64 / rate);
        let baseline = self.rss();
        let samples_stored_before = fixtures::meter_samples_stored(&mut self.conn).await?;
        let last_session = fixtures::last_session_id(&mut self.conn).await?;
        let mut config = self.fleet_config(simulator::Scenario::Charging);
        config.id_tags = self.fixtures.rfid_tags[..n].to_vec();
        config.one_tag_per_charger = true;
        config.meter_interval = interval;
        // Cars arrive within 2 s, so meter readings are spread evenly over the interval.
        config.session_gap = Duration::from_secs(2);
        note(
            NAME,
            format!("{n} chargers charging, MeterValues every {:.3} s each: {rate:.0}/s", interval.as_secs_f64()),
        );
        let (fleet, _) = self.connect(NAME, config).await?;
        wait_for(
            NAME,
            "every charger charging",
            Duration::from_secs(60),
            || fleet.stats().charging.get() >= n as u64,
            || fleet_status(&fleet),
        )
        .await;
        // The fleet's StartTransactions are a storm of their own (19,000 within seconds, each
        // about ten statements), written while the first readings arrive. The window measures
        // MeterValues alone: it opens once every start is answered and the readings have run at
        // the full rate for the warm-up, so that a queue left by the starts can drain if the
        // server keeps up (if it does not, the window shows it).
        wait_for(
            NAME,
            "every StartTransaction answered",
            Duration::from_secs(120),
            || fleet.stats().transactions_numbered.get() >= n as u64,
            || fleet_status(&fleet),
        )
        .await;
        let warmup = self.options.durations.warmup;
        note(NAME, format!("warming up for {warmup:?}"));
        hold_window(NAME, warmup, &fleet, || {}).await;
        // A machine that cannot absorb the starts within the warm-up is left a queue of readings
        // to answer: the window waits (at most two minutes) until no more than a tenth of a
        // second's readings have been unanswered for a whole `KEPT_UP` (the moment the queue
        // first empties, its last readings are still being answered late), so that it measures
        // the steady rate, not the setup. If the queue never drains, the window opens anyway
        // and shows it.
        let backlog_limit = (rate / 10.0) as u64;
        let mut kept_up_since: Option<Instant> = None;
        let drained = wait_for(
            NAME,
            "the readings queued behind the starts to be answered",
            Duration::from_secs(120),
            || {
                if unanswered(&fleet) > backlog_limit {
                    kept_up_since = None;
                    return false;
                }
                kept_up_since.get_or_insert_with(Instant::now).elapsed() >= KEPT_UP
            },
            || fleet_status(&fleet),
        )
        .await;
        let pid = self.server.pid();
        let samples_before = fleet.stats().meter_samples_acknowledged.get();
        // A diagnostic: without `pg_stat_wal` (PostgreSQL before 14) the report leaves it out.
        let wal_before = fixtures::WalActivity::now(&mut self.conn)
            .await
            .inspect_err(|error| note(NAME, format!("no WAL figures: {error}")))
            .ok();
        let window = Window::open(fleet.stats(), None, pid);
        // Each second's p99 apart, so that a report shows whether a miss is spread over the
        // window or comes from a few bad seconds (and which).
        let mut second_began = fleet.stats().latency_of(Action::MeterValues).clone();
        let mut p99_by_second: Vec<Option<f64>> = Vec::new();
        hold_window(NAME, self.options.durations.meter, &fleet, || {
            let now = fleet.stats().latency_of(Action::MeterValues).clone();
            p99_by_second.push(Latency::of(&now.since(&second_began)).p99);
            second_began = now;
        })
        .await;
        let measured = window.close(fleet.stats(), None, pid, self.ticks);
        let wal = match wal_before {
            Some(before) => fixtures::WalActivity::now(&mut self.conn).await.ok().map(|now| (before, now)),
            None => None,
        };
        note(NAME, format!("p99 by second, ms: {}", worst_seconds(&p99_by_second, 5)));
        let rss_kb = self.rss();
        let stats = fleet.stats();
        let samples = stats.meter_samples_acknowledged.get() - samples_before;
        let meter = Latency::of(stats.latency_of(Action::MeterValues));
        let achieved = meter.count as f64 / measured.seconds;
        let (connected, charging) = (stats.connected.get(), stats.charging.get());
        let summary = self.stop_fleet(NAME, fleet).await?;
        let stored = fixtures::meter_samples_stored(&mut self.conn).await? - samples_stored_before;
        let acknowledged = summary.meter_samples_acknowledged;
        let billing = fixtures::check_billing(&mut self.conn, last_session).await?;
        let figures = vec![
            rate_figure("MeterValues stored per second", achieved, rate, measured.errors + measured.call_errors),
            latency_figure("MeterValues", &meter, 50.0),
            Figure::new(
                "sampled values stored = acknowledged",
                "equal",
                format!("{stored} stored, {acknowledged} acknowledged"),
                u64::try_from(stored).ok() == Some(acknowledged),
            ),
        ];
        let details = json!({
            "target_per_s": rate,
            "interval_s": interval.as_secs_f64(),
            "warmup_s": warmup.as_secs_f64(),
            "backlog_drained_after_warmup_s": drained.map(|waited| waited.as_secs_f64()),
            "charging_at_end": charging,
            "meter_values_answered": meter.count,
            "meter_values_per_s": achieved,
            "sampled_values_per_s": samples as f64 / measured.seconds,
            "late": measured.late,
            "p99_by_second_ms": p99_by_second,
            "postgres_wal": wal.map(|(before, now)| now.since(&before, meter.count)),
            "samples_stored": stored,
            "samples_acknowledged": acknowledged,
            "billing": billing,
        });
        let outcome = Outcome {
            name: NAME,
            connected,
            latency: meter,
            latency_of: "MeterValues",
            rss_kb,
            rss_baseline_kb: baseline,
            run: run_totals(&summary),
            figures,
            details,
        };
        Ok(self.report(&measured, outcome))
    }

    // ---- 5. mixed and 6. restart -----------------------------------------------------------

    /// The mixed fleet: 30 % charging by RFID with MeterValues every 15 s, heartbeats every
    /// 300 s, and drivers starting and stopping through the API at idle chargers.
    async fn mixed_fleet(&self, name: &str) -> Result<(Fleet, Drivers), String> {
        let n = self.chargers();
        let mut config = self.fleet_config(simulator::Scenario::Mixed);
        let charging = (0..n).filter(|&i| config.charges(i)).count();
        config.id_tags = self.fixtures.rfid_tags[..charging].to_vec();
        config.one_tag_per_charger = true;
        config.meter_interval = MIXED_METER_INTERVAL;
        config.heartbeat = Some(MIXED_HEARTBEAT);
        config.session_gap = MIXED_METER_INTERVAL;
        let idle: Vec<String> = (0..n).filter(|&i| !config.charges(i)).map(|i| config.charge_point_id(i)).collect();
        let pairs: Vec<_> = self.fixtures.app_drivers.iter().cloned().zip(idle).collect();
        note(name, format!("{n} chargers, {charging} charging by RFID, {} drivers using the app", pairs.len()));
        let (fleet, _) = self.connect(name, config).await?;
        let drivers = Drivers::start(self.server.base_url(), pairs, self.options.driver_timing, self.options.seed);
        let warmup = self.options.durations.warmup;
        note(name, format!("warming up for {warmup:?}"));
        hold_window(name, warmup, &fleet, || {}).await;
        Ok((fleet, drivers))
    }

    /// Drivers go home, chargers switch off, sessions settle.
    async fn wind_down(&mut self, name: &str, fleet: Fleet, mut drivers: Drivers) -> Result<(Summary, Value), String> {
        note(name, "drivers stopping their sessions");
        drivers.stop(Duration::from_secs(90)).await;
        let rest = rest_details(drivers.stats());
        let summary = self.stop_fleet(name, fleet).await?;
        Ok((summary, rest))
    }

    /// The mixed fleet for the duration: every REST request fast, every session billed once.
    pub async fn mixed(&mut self) -> Result<ScenarioReport, String> {
        const NAME: &str = "mixed";
        let baseline = self.rss();
        let last_session = fixtures::last_session_id(&mut self.conn).await?;
        let (fleet, drivers) = self.mixed_fleet(NAME).await?;
        let pid = self.server.pid();
        let window = Window::open(fleet.stats(), Some(&drivers), pid);
        let mut charging_samples = Vec::new();
        hold_window(NAME, self.options.durations.mixed, &fleet, || charging_samples.push(fleet.stats().charging.get()))
            .await;
        let measured = window.close(fleet.stats(), Some(&drivers), pid, self.ticks);
        let rss_kb = self.rss();
        let rest = Latency::of(&drivers.stats().latency);
        let rest_errors = drivers.stats().server_errors.get() + drivers.stats().failures.get();
        // By endpoint within the window, before the drivers' last stops (which come all at once).
        let in_window = endpoint_latencies(drivers.stats());
        let ocpp = Latency::of(&fleet.stats().latency);
        let connected = fleet.stats().connected.get();
        let (summary, rest_details) = self.wind_down(NAME, fleet, drivers).await?;
        let billing = fixtures::check_billing(&mut self.conn, last_session).await?;
        let run = run_totals(&summary);
        let mut figures = vec![
            latency_figure("REST request", &rest, 10.0),
            Figure::new(
                "every REST request answered, no server error",
                "0 failed",
                format!("{rest_errors} failed of {}", rest.count + rest_errors),
                rest_errors == 0 && rest.count > 0,
            ),
            Figure::new(
                "every OCPP CALL answered, no CALLERROR",
                "all answered",
                format!(
                    "{} of {} answered, {} CALLERRORs, {} errors",
                    run.answered, run.calls, run.call_errors, run.errors
                ),
                run.all_answered && run.call_errors == 0 && run.errors == 0,
            ),
        ];
        figures.extend(billing_figures(&billing));
        let average_charging = charging_samples.iter().sum::<u64>() as f64 / charging_samples.len().max(1) as f64;
        let details = json!({
            "rest": rest_details,
            "rest_latency_ms_by_endpoint_in_window": in_window,
            "ocpp_latency_ms": ocpp,
            "charging_average": average_charging,
            "billing": billing,
        });
        let outcome = Outcome {
            name: NAME,
            connected,
            latency: rest,
            latency_of: "REST requests",
            rss_kb,
            rss_baseline_kb: baseline,
            run,
            figures,
            details,
        };
        Ok(self.report(&measured, outcome))
    }

    /// Kilowatt killed (SIGKILL) and started again under the mixed fleet.
    pub async fn restart(&mut self) -> Result<ScenarioReport, String> {
        const NAME: &str = "restart";
        let n = self.chargers() as u64;
        let last_session = fixtures::last_session_id(&mut self.conn).await?;
        let (fleet, drivers) = self.mixed_fleet(NAME).await?;
        let mut window = Window::open(fleet.stats(), Some(&drivers), self.server.pid());
        let open_at_kill = fixtures::active_session_ids(&mut self.conn).await?;
        note(NAME, format!("killing the server (SIGKILL) with {} sessions under way", open_at_kill.len()));
        window.server_killed(self.server.pid());
        let killed_at = Instant::now();
        let killed_at_ms = chrono::Utc::now().timestamp_millis();
        self.server.kill().await;
        wait_for(
            NAME,
            "the chargers to notice",
            Duration::from_secs(10),
            || fleet.stats().connected.get() < n,
            || fleet_status(&fleet),
        )
        .await;
        self.server.restart().await?;
        let ready_s = killed_at.elapsed().as_secs_f64();
        // Memory per charger is the new process's: from its size before the chargers are back.
        let baseline = self.rss();
        note(NAME, format!("server ready again {ready_s:.2} s after the kill"));
        let back = wait_for(
            NAME,
            "every charger back",
            Duration::from_secs(120),
            || fleet.stats().connected.get() >= n,
            || fleet_status(&fleet),
        )
        .await;
        let back_s = back.map(|_| killed_at.elapsed().as_secs_f64());
        let online = fixtures::online_chargers(&mut self.conn).await?;
        hold_window(NAME, self.options.durations.restart, &fleet, || {}).await;
        let pid = self.server.pid();
        let measured = window.close(fleet.stats(), Some(&drivers), pid, self.ticks);
        let rss_kb = self.rss();
        let ocpp = Latency::of(&fleet.stats().latency);
        let connected = fleet.stats().connected.get();
        let (summary, rest_details) = self.wind_down(NAME, fleet, drivers).await?;
        let billing = fixtures::check_billing(&mut self.conn, last_session).await?;
        let (completed, metered_after) =
            fixtures::sessions_after_restart(&mut self.conn, &open_at_kill, killed_at_ms).await?;
        let mut figures = vec![
            Figure::new(
                "all chargers back after the restart",
                "within 30 s of the kill",
                match back_s {
                    Some(s) => format!("{n} back in {s:.2} s (server ready in {ready_s:.2} s)"),
                    None => format!("{connected} of {n} after 120 s"),
                },
                back_s.is_some_and(|s| s <= 30.0),
            ),
            Figure::new(
                "sessions open at the kill continued and settled",
                "all completed",
                format!("{completed} of {} completed ({metered_after} metered after the restart)", open_at_kill.len()),
                completed == open_at_kill.len() as i64,
            ),
        ];
        figures.extend(billing_figures(&billing));
        let details = json!({
            "server_ready_s": ready_s,
            "all_back_s": back_s,
            "chargers_online_in_db_when_back": online,
            "sessions_open_at_kill": open_at_kill.len(),
            "of_those_completed": completed,
            "of_those_metered_after_restart": metered_after,
            "rest": rest_details,
            "connect_failures": summary.connect_failures,
            "billing": billing,
        });
        let outcome = Outcome {
            name: NAME,
            connected,
            latency: ocpp,
            latency_of: "every CALL (across the restart)",
            rss_kb,
            rss_baseline_kb: baseline,
            run: run_totals(&summary),
            figures,
            details,
        };
        Ok(self.report(&measured, outcome))
    }
}
