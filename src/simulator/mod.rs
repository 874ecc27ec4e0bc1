//! `kilowatt simulate`: simulated OCPP 1.6J chargers that connect to a central system over real
//! WebSockets and behave like real ones — boot, heartbeats, status, RFID and remote sessions
//! metered along a realistic charging curve, answers to every command, faults, and connection
//! losses with offline-queued transaction messages.
//!
//! - this file: the configuration ([`Config`], and [`SimulateArgs`] for the command line), the
//!   engine ([`run`], [`run_until`]) that ramps connections up, prints the progress line and
//!   stops everything, and the final [`Summary`]; [`Fleet`] is the same engine for callers that
//!   watch the live counters and decide when to stop (the benchmark);
//! - [`charger`]: one simulated charger's state machine and its connection task;
//! - [`curve`]: the charging curve;
//! - [`stats`]: counters and the latency histogram.
//!
//! Built to be cheap per charger and per message, for load tests on the same machine as the
//! server: everything runs as local tasks on the caller's single-threaded (actix) runtime — one
//! task per charger, no threads, no locks, no atomics; outgoing frames are written straight into
//! one buffer each; counters are `Cell`s; latencies go into a fixed histogram. Past ~5,000
//! connections from one source address, give [`Config::source_addrs`] (several `127.0.0.x`) so
//! the kernel is not scanning a crowded ephemeral port range on every connect.

pub mod charger;
pub mod curve;
pub mod stats;

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io::{IsTerminal as _, Write as _};
use std::net::IpAddr;
use std::rc::Rc;
use std::time::Duration;

use clap::ValueEnum;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use self::stats::{Action, Stats};

/// What the simulated chargers do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// Boot, report status, send heartbeats and answer commands; never start a session.
    Idle,
    /// Every charger also runs RFID sessions, one after another, metered along the curve.
    Charging,
    /// 30 % of the chargers charge, the rest idle.
    Mixed,
}

/// Share of chargers that run sessions in the mixed scenario, in tenths.
const MIXED_CHARGING_TENTHS: usize = 3;

/// A simulator run.
#[derive(Clone)]
pub struct Config {
    /// Base WebSocket URL of the central system; a charger connects to `{url}/{id}`.
    pub url: String,
    /// How many chargers.
    pub chargers: usize,
    /// Connectors per charger (1–9).
    pub connectors: u8,
    /// Charge point IDs are this prefix and a zero-padded number from 1.
    pub id_prefix: String,
    /// Basic-auth password every charger presents (user: its charge point ID).
    pub password: Option<String>,
    /// What the chargers do.
    pub scenario: Scenario,
    /// idTags presented for RFID sessions, round-robin; empty: chargers in free-vend mode
    /// start without Authorize and keep charging whatever the idTag status.
    pub id_tags: Vec<String>,
    /// The k-th charging charger always presents idTag k (one driver per charger) instead of
    /// taking the next one in turn, so no two chargers ever present the same idTag at once.
    pub one_tag_per_charger: bool,
    /// How often a charging connector sends MeterValues.
    pub meter_interval: Duration,
    /// Heartbeat interval; `None` uses the one the central system gives at boot.
    pub heartbeat: Option<Duration>,
    /// Mean pause between one session's end and the next car on a charging charger (and the
    /// window over which first sessions are spread).
    pub session_gap: Duration,
    /// Faults per charger per hour (Faulted status, the session stopped, recovery later).
    pub fault_rate: f64,
    /// Connection losses per charger per hour (offline for a few seconds, transaction
    /// messages queued and sent after reconnecting).
    pub reconnect_rate: f64,
    /// Stop after this long; `None` runs until the stop future resolves.
    pub duration: Option<Duration>,
    /// New connections per second while ramping up; 0 opens them all at once.
    pub ramp: f64,
    /// Local addresses to connect from, round-robin (empty: the system's choice).
    pub source_addrs: Vec<IpAddr>,
    /// How long a CALL waits for its answer.
    pub call_timeout: Duration,
    /// How long a charger switched off at the end of the run stays connected to get its
    /// StopTransactions answered (it leaves sooner once they are).
    pub drain: Duration,
    /// Print the progress line to stderr every second.
    pub progress: bool,
    /// Seed of the per-charger random numbers (same seed, same vehicles and timings).
    pub seed: u64,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("url", &self.url)
            .field("chargers", &self.chargers)
            .field("connectors", &self.connectors)
            .field("id_prefix", &self.id_prefix)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .field("scenario", &self.scenario)
            .field("id_tags", &self.id_tags.len())
            .field("one_tag_per_charger", &self.one_tag_per_charger)
            .field("meter_interval", &self.meter_interval)
            .field("heartbeat", &self.heartbeat)
            .field("session_gap", &self.session_gap)
            .field("fault_rate", &self.fault_rate)
            .field("reconnect_rate", &self.reconnect_rate)
            .field("duration", &self.duration)
            .field("ramp", &self.ramp)
            .field("source_addrs", &self.source_addrs)
            .field("call_timeout", &self.call_timeout)
            .field("drain", &self.drain)
            .field("progress", &self.progress)
            .field("seed", &self.seed)
            .finish()
    }
}

impl Config {
    /// Defaults for `chargers` chargers against `url`: idle, 2 connectors, IDs `SIM-001…`.
    pub fn new(url: impl Into<String>, chargers: usize) -> Self {
        Config {
            url: url.into(),
            chargers,
            connectors: 2,
            id_prefix: "SIM-".to_owned(),
            password: None,
            scenario: Scenario::Idle,
            id_tags: Vec::new(),
            one_tag_per_charger: false,
            meter_interval: Duration::from_secs(60),
            heartbeat: None,
            session_gap: Duration::from_secs(300),
            fault_rate: 0.0,
            reconnect_rate: 0.0,
            duration: None,
            ramp: 100.0,
            source_addrs: Vec::new(),
            call_timeout: Duration::from_secs(30),
            drain: Duration::from_secs(2),
            progress: false,
            seed: 1,
        }
    }

    /// The charge point ID of charger `index` (0-based): prefix and a number from 1, padded to
    /// at least three digits.
    pub fn charge_point_id(&self, index: usize) -> String {
        let width = self.chargers.to_string().len().max(3);
        format!("{}{:0width$}", self.id_prefix, index + 1)
    }

    /// Whether charger `index` runs sessions in this scenario.
    pub fn charges(&self, index: usize) -> bool {
        match self.scenario {
            Scenario::Idle => false,
            Scenario::Charging => true,
            // Spread evenly: exactly 3 of every 10 consecutive chargers.
            Scenario::Mixed => (index * MIXED_CHARGING_TENTHS) % 10 < MIXED_CHARGING_TENTHS,
        }
    }

    /// Checks the settings a run depends on.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.url.starts_with("ws://") || self.url.starts_with("wss://")) {
            return Err(format!("--url must start with ws:// or wss://, got {}", self.url));
        }
        if self.chargers == 0 {
            return Err("--chargers must be at least 1".to_owned());
        }
        if !(1..=9).contains(&self.connectors) {
            return Err("--connectors must be between 1 and 9".to_owned());
        }
        if self.charge_point_id(self.chargers - 1).chars().count() > 48 {
            return Err("--id-prefix is too long: charge point IDs have at most 48 characters".to_owned());
        }
        if let Some(tag) = self.id_tags.iter().find(|t| t.is_empty() || t.chars().count() > 20) {
            return Err(format!("idTag {tag:?} must have 1 to 20 characters"));
        }
        let positive = |d: Duration| d > Duration::ZERO;
        if !positive(self.meter_interval) || !positive(self.session_gap) || !positive(self.call_timeout) {
            return Err("intervals must be greater than zero".to_owned());
        }
        if self.heartbeat.is_some_and(|h| !positive(h)) {
            return Err("--heartbeat must be greater than zero".to_owned());
        }
        if !(self.fault_rate >= 0.0 && self.reconnect_rate >= 0.0 && self.ramp >= 0.0) {
            return Err("rates must be zero or more".to_owned());
        }
        Ok(())
    }
}

/// `kilowatt simulate …`
#[derive(Debug, Clone, clap::Args)]
pub struct SimulateArgs {
    /// Base WebSocket URL of the central system (chargers connect to URL/ID).
    #[arg(long, default_value = "ws://127.0.0.1:9000")]
    pub url: String,
    /// How many chargers.
    #[arg(long, default_value_t = 10)]
    pub chargers: usize,
    /// Connectors per charger.
    #[arg(long, default_value_t = 2)]
    pub connectors: u8,
    /// Charge point ID prefix (IDs are PREFIX001, PREFIX002, …).
    #[arg(long, default_value = "SIM-")]
    pub id_prefix: String,
    /// Basic-auth password every charger presents (user: its charge point ID).
    #[arg(long)]
    pub password: Option<String>,
    /// What the chargers do.
    #[arg(long, value_enum, default_value_t = Scenario::Idle)]
    pub scenario: Scenario,
    /// idTags for RFID sessions, comma-separated (drivers' idTags or RFID cards); without
    /// them, chargers start sessions without Authorize (free vend).
    #[arg(long, value_delimiter = ',')]
    pub id_tags: Vec<String>,
    /// Seconds between MeterValues of a charging connector (fractions allowed).
    #[arg(long, default_value_t = 60.0)]
    pub meter_interval: f64,
    /// Heartbeat interval in seconds (default: the one the central system gives at boot).
    #[arg(long)]
    pub heartbeat: Option<f64>,
    /// Mean seconds between one session's end and the next car on a charging charger.
    #[arg(long, default_value_t = 300.0)]
    pub session_gap: f64,
    /// Faults per charger per hour.
    #[arg(long, default_value_t = 0.0)]
    pub fault_rate: f64,
    /// Connection losses per charger per hour.
    #[arg(long, default_value_t = 0.0)]
    pub reconnect_rate: f64,
    /// Stop after this many seconds (default: run until Ctrl-C).
    #[arg(long)]
    pub duration: Option<f64>,
    /// New connections per second while ramping up (0: all at once).
    #[arg(long, default_value_t = 100.0)]
    pub ramp: f64,
    /// Local addresses to connect from, comma-separated, round-robin (e.g. 127.0.0.2,127.0.0.3
    /// beyond ~5,000 chargers).
    #[arg(long, value_delimiter = ',')]
    pub source_addr: Vec<IpAddr>,
    /// Seed for vehicles and timings.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

impl SimulateArgs {
    /// The run these arguments describe, validated.
    pub fn into_config(self) -> Result<Config, String> {
        let seconds = |name: &str, value: f64| {
            Duration::try_from_secs_f64(value).map_err(|_| format!("--{name} must be a number of seconds, got {value}"))
        };
        let config = Config {
            url: self.url.trim_end_matches('/').to_owned(),
            chargers: self.chargers,
            connectors: self.connectors,
            id_prefix: self.id_prefix,
            password: self.password,
            scenario: self.scenario,
            id_tags: self.id_tags.into_iter().map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()).collect(),
            one_tag_per_charger: false,
            meter_interval: seconds("meter-interval", self.meter_interval)?,
            heartbeat: self.heartbeat.map(|h| seconds("heartbeat", h)).transpose()?,
            session_gap: seconds("session-gap", self.session_gap)?,
            fault_rate: self.fault_rate,
            reconnect_rate: self.reconnect_rate,
            duration: self.duration.map(|d| seconds("duration", d)).transpose()?,
            ramp: self.ramp,
            source_addrs: self.source_addr,
            call_timeout: Duration::from_secs(30),
            drain: Duration::from_secs(2),
            progress: true,
            seed: self.seed,
        };
        config.validate()?;
        Ok(config)
    }
}

/// What a run did, printed at the end.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// How long it ran.
    pub elapsed: Duration,
    /// Chargers simulated.
    pub chargers: usize,
    /// Chargers connected when the run was stopped.
    pub connected: u64,
    /// Chargers accepted by BootNotification at least once.
    pub accepted: u64,
    /// CALLs sent, per action (in [`Action::ALL`] order, zero counts left out).
    pub sent_by_action: Vec<(&'static str, u64)>,
    /// CALLs sent.
    pub calls: u64,
    /// Frames sent (CALLs and answers to commands).
    pub frames_out: u64,
    /// Frames received.
    pub frames_in: u64,
    /// Commands from the central system answered.
    pub commands: u64,
    /// CALLERRORs received, per action (zero counts left out).
    pub call_errors_by_action: Vec<(&'static str, u64)>,
    /// CALLERRORs received.
    pub call_errors: u64,
    /// Connections that could not be opened.
    pub connect_failures: u64,
    /// Connections that broke or that the central system closed.
    pub disconnects: u64,
    /// CALLs never answered in time.
    pub timeouts: u64,
    /// CALLs never answered in time, per action (zero counts left out).
    pub timeouts_by_action: Vec<(&'static str, u64)>,
    /// Frames that broke the protocol.
    pub protocol_errors: u64,
    /// All errors other than CALLERRORs.
    pub errors: u64,
    /// Transactions started.
    pub sessions_started: u64,
    /// Transactions stopped.
    pub sessions_stopped: u64,
    /// idTags refused.
    pub refused: u64,
    /// Faults simulated.
    pub faults: u64,
    /// Connection losses and reboots simulated.
    pub reconnects: u64,
    /// Messages dropped from a full offline queue.
    pub dropped: u64,
    /// Heartbeats and MeterValues that fell due while an earlier CALL was unanswered.
    pub late: u64,
    /// CALLs answered (CALLRESULT or CALLERROR) over the whole run.
    pub answered: u64,
    /// Sampled values in MeterValues answered with a CALLRESULT.
    pub meter_samples_acknowledged: u64,
    /// Round trips measured (since the latencies were last reset).
    pub round_trips: u64,
    /// Median CALL → answer latency.
    pub latency_p50: Option<Duration>,
    /// 99th percentile CALL → answer latency.
    pub latency_p99: Option<Duration>,
    /// Slowest round trip.
    pub latency_max: Option<Duration>,
}

impl Summary {
    fn from_stats(stats: &Stats, elapsed: Duration, chargers: usize) -> Self {
        let by_action = |count: &dyn Fn(Action) -> u64| {
            Action::ALL.iter().map(|&a| (a.as_str(), count(a))).filter(|(_, n)| *n > 0).collect()
        };
        let latency = &stats.latency;
        Summary {
            elapsed,
            chargers,
            connected: stats.connected.get(),
            accepted: stats.accepted.get(),
            sent_by_action: by_action(&|a| stats.sent_of(a)),
            calls: stats.sent_total(),
            frames_out: stats.frames_out(),
            frames_in: stats.received.get(),
            commands: stats.commands.get(),
            call_errors_by_action: by_action(&|a| stats.call_errors_of(a)),
            call_errors: stats.call_errors_total(),
            connect_failures: stats.connect_failures.get(),
            disconnects: stats.disconnects.get(),
            timeouts: stats.timeouts.get(),
            timeouts_by_action: by_action(&|a| stats.timeouts_of(a)),
            protocol_errors: stats.protocol_errors.get(),
            errors: stats.errors(),
            sessions_started: stats.sessions_started.get(),
            sessions_stopped: stats.sessions_stopped.get(),
            refused: stats.refused.get(),
            faults: stats.faults.get(),
            reconnects: stats.reconnects.get(),
            dropped: stats.dropped.get(),
            late: stats.late.get(),
            answered: stats.answers.get(),
            meter_samples_acknowledged: stats.meter_samples_acknowledged.get(),
            round_trips: latency.count(),
            latency_p50: latency.quantile(0.5),
            latency_p99: latency.quantile(0.99),
            latency_max: (latency.count() > 0).then(|| latency.max()),
        }
    }
}

fn millis(d: Option<Duration>) -> String {
    d.map_or_else(|| "-".to_owned(), |d| format!("{:.1} ms", d.as_secs_f64() * 1000.0))
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seconds = self.elapsed.as_secs_f64().max(0.001);
        writeln!(f, "Simulated {} chargers for {:.1} s", self.chargers, self.elapsed.as_secs_f64())?;
        writeln!(f, "  accepted at boot   {} (connected when stopped: {})", self.accepted, self.connected)?;
        writeln!(
            f,
            "  frames             {} out ({:.1}/s), {} in ({:.1}/s); {} commands answered",
            self.frames_out,
            self.frames_out as f64 / seconds,
            self.frames_in,
            self.frames_in as f64 / seconds,
            self.commands
        )?;
        let list = |items: &[(&str, u64)]| {
            if items.is_empty() {
                "none".to_owned()
            } else {
                items.iter().map(|(name, n)| format!("{name} {n}")).collect::<Vec<_>>().join(", ")
            }
        };
        writeln!(f, "  CALLs              {}: {}", self.calls, list(&self.sent_by_action))?;
        writeln!(
            f,
            "  sessions           {} started, {} stopped, {} idTags refused",
            self.sessions_started, self.sessions_stopped, self.refused
        )?;
        writeln!(
            f,
            "  latency            p50 {}, p99 {}, max {} over {} round trips",
            millis(self.latency_p50),
            millis(self.latency_p99),
            millis(self.latency_max),
            self.round_trips
        )?;
        writeln!(f, "  CALLERRORs         {}: {}", self.call_errors, list(&self.call_errors_by_action))?;
        writeln!(
            f,
            "  errors             {} (connect failures {}, disconnects {}, timeouts {}, protocol {})",
            self.errors, self.connect_failures, self.disconnects, self.timeouts, self.protocol_errors
        )?;
        if self.timeouts > 0 {
            writeln!(f, "  timeouts by action {}", list(&self.timeouts_by_action))?;
        }
        write!(
            f,
            "  simulated events   {} faults, {} connection losses/reboots, {} queued messages dropped",
            self.faults, self.reconnects, self.dropped
        )
    }
}

/// A tiny deterministic random number generator (SplitMix64): one per charger, seeded from
/// the run's seed and the charger's index, so a run can be repeated.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for stream `stream` of seed `seed`.
    pub fn new(seed: u64, stream: u64) -> Self {
        let mut rng = Rng(seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        rng.next_u64();
        rng
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [low, high).
    pub fn range(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.unit()
    }

    /// Uniform index below `n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Waiting time until the next event of a Poisson process with `per_hour` events per
    /// hour; `None` for a rate of zero.
    pub fn exponential(&mut self, per_hour: f64) -> Option<Duration> {
        if per_hour <= 0.0 {
            return None;
        }
        let seconds = -(1.0 - self.unit()).ln() * 3600.0 / per_hour;
        Duration::try_from_secs_f64(seconds).ok()
    }
}

/// What every charger task of a run shares (on one thread).
pub(crate) struct Engine {
    config: Config,
    stats: Stats,
    /// One HTTP client per source address (or one with the system's choice).
    clients: Vec<awc::Client>,
    /// idTags for RFID sessions.
    tags: Vec<Rc<str>>,
    stopping: Cell<bool>,
    stop: Notify,
    tasks: RefCell<Vec<JoinHandle<()>>>,
    /// Whether a failed connection was logged already (one warning per run).
    pub(crate) warned_connect: Cell<bool>,
}

impl Engine {
    fn new(config: Config) -> Self {
        let client = |address: Option<IpAddr>| {
            // No connection limit: awc counts upgraded WebSockets against its default of 100.
            let mut connector = awc::Connector::new().limit(0).timeout(Duration::from_secs(10));
            if let Some(address) = address {
                connector = connector.local_address(address);
            }
            awc::Client::builder().connector(connector).timeout(Duration::from_secs(15)).finish()
        };
        let clients = if config.source_addrs.is_empty() {
            vec![client(None)]
        } else {
            config.source_addrs.iter().map(|&a| client(Some(a))).collect()
        };
        let tags = config.id_tags.iter().map(|t| Rc::from(t.as_str())).collect();
        Engine {
            config,
            stats: Stats::default(),
            clients,
            tags,
            stopping: Cell::new(false),
            stop: Notify::new(),
            tasks: RefCell::new(Vec::new()),
            warned_connect: Cell::new(false),
        }
    }

    pub(crate) fn config(&self) -> &Config {
        &self.config
    }

    pub(crate) fn stats(&self) -> &Stats {
        &self.stats
    }

    pub(crate) fn tags(&self) -> &[Rc<str>] {
        &self.tags
    }

    pub(crate) fn client(&self, index: usize) -> &awc::Client {
        &self.clients[index % self.clients.len()]
    }

    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.get()
    }

    /// Resolves once the run is stopping.
    pub(crate) async fn stopped(&self) {
        let notified = self.stop.notified();
        if self.stopping.get() {
            return;
        }
        notified.await;
    }

    fn stop(&self) {
        self.stopping.set(true);
        self.stop.notify_waiters();
    }
}

/// Runs the simulation for [`Config::duration`] (forever without one). Must be called on a
/// single-threaded actix or tokio `LocalSet` runtime (the WebSocket client is not `Send`).
pub async fn run(config: Config) -> Result<Summary, String> {
    run_until(config, std::future::pending()).await
}

/// Runs the simulation until `stop` resolves or [`Config::duration`] has passed, then closes
/// every connection and answers what happened.
pub async fn run_until(config: Config, stop: impl Future<Output = ()>) -> Result<Summary, String> {
    let fleet = Fleet::start(config)?;
    let started = fleet.started;
    let mut progress = Progress::new(fleet.engine.config.progress);
    let mut tick = tokio::time::interval_at(started + Duration::from_secs(1), Duration::from_secs(1));
    let deadline = fleet.engine.config.duration.map(|d| started + d);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => break,
            () = sleep_until_some(deadline) => break,
            _ = tick.tick() => progress.print(&fleet.engine, started),
        }
    }
    let summary = fleet.stop().await;
    progress.finish();
    Ok(summary)
}

/// A running simulation that its caller watches ([`Fleet::stats`]) and stops
/// ([`Fleet::stop`]) itself; [`Config::duration`] and [`Config::progress`] are not used. Like
/// [`run`], it lives on the caller's single-threaded runtime.
pub struct Fleet {
    engine: Rc<Engine>,
    started: Instant,
    ramp: JoinHandle<()>,
}

impl Fleet {
    /// Checks the configuration and starts connecting the chargers (at [`Config::ramp`]).
    pub fn start(config: Config) -> Result<Self, String> {
        config.validate()?;
        let engine = Rc::new(Engine::new(config));
        let started = Instant::now();
        let ramp = actix_web::rt::spawn(ramp_up(engine.clone()));
        Ok(Fleet { engine, started, ramp })
    }

    /// The live counters.
    pub fn stats(&self) -> &Stats {
        &self.engine.stats
    }

    /// The run's configuration.
    pub fn config(&self) -> &Config {
        &self.engine.config
    }

    /// Time since the start.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Switches every charger off: each stops its transactions, waits up to [`Config::drain`]
    /// for their answers and closes its socket. Answers what the run did.
    pub async fn stop(self) -> Summary {
        let engine = self.engine;
        let (elapsed, connected) = (self.started.elapsed(), engine.stats.connected.get());
        engine.stop();
        self.ramp.abort();
        // Chargers drain for up to `drain` and wait up to 1 s for the close; give them that
        // and a moment more, then stop the stragglers.
        let mut tasks = std::mem::take(&mut *engine.tasks.borrow_mut());
        let wait_all = async {
            for task in &mut tasks {
                let _ = task.await;
            }
        };
        if tokio::time::timeout(engine.config.drain + Duration::from_secs(3), wait_all).await.is_err() {
            tasks.iter().for_each(JoinHandle::abort);
        }
        let mut summary = Summary::from_stats(&engine.stats, elapsed, engine.config.chargers);
        summary.connected = connected;
        summary
    }
}

async fn sleep_until_some(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Starts the charger tasks at the configured rate.
async fn ramp_up(engine: Rc<Engine>) {
    let start = Instant::now();
    let ramp = engine.config.ramp;
    // Charging chargers take idTags in turn, so the first ones in use are all different.
    let mut charging_so_far = 0;
    for index in 0..engine.config.chargers {
        if ramp > 0.0 {
            let due = start + Duration::from_secs_f64(index as f64 / ramp);
            if due > Instant::now() {
                tokio::time::sleep_until(due).await;
            }
        }
        if engine.is_stopping() {
            return;
        }
        let tag_offset = charging_so_far;
        if engine.config.charges(index) {
            charging_so_far += 1;
        }
        let task = actix_web::rt::spawn(charger::run(engine.clone(), index, tag_offset));
        engine.tasks.borrow_mut().push(task);
    }
}

/// The live progress line on stderr: rewritten in place on a terminal, one line a second
/// otherwise.
struct Progress {
    enabled: bool,
    terminal: bool,
    last_out: u64,
    last_in: u64,
    printed: bool,
}

impl Progress {
    fn new(enabled: bool) -> Self {
        Progress { enabled, terminal: std::io::stderr().is_terminal(), last_out: 0, last_in: 0, printed: false }
    }

    fn print(&mut self, engine: &Engine, started: Instant) {
        if !self.enabled {
            return;
        }
        let stats = &engine.stats;
        let (out, inbound) = (stats.frames_out(), stats.received.get());
        let line = format!(
            "{:>6.0}s  connected {}/{}  accepted {}  charging {}  out {}/s  in {}/s  CALLERRORs {}  errors {}",
            started.elapsed().as_secs_f64(),
            stats.connected.get(),
            engine.config.chargers,
            stats.accepted.get(),
            stats.charging.get(),
            out - self.last_out,
            inbound - self.last_in,
            stats.call_errors_total(),
            stats.errors(),
        );
        (self.last_out, self.last_in) = (out, inbound);
        let mut stderr = std::io::stderr().lock();
        let _ = if self.terminal { write!(stderr, "\r\x1b[2K{line}") } else { writeln!(stderr, "{line}") };
        let _ = stderr.flush();
        self.printed = true;
    }

    fn finish(&self) {
        if self.enabled && self.terminal && self.printed {
            let _ = writeln!(std::io::stderr());
        }
    }
}
