//! `kilowatt bench`: the load benchmark. Creates a fresh PostgreSQL database, registers the
//! network (chargers, drivers, funded wallets) in bulk, starts Kilowatt as a child process of
//! this binary on loopback, drives it with the simulator's load engine and REST drivers
//! through six scenarios — hold, storm, heartbeat, meter, mixed, restart — and prints and
//! writes (JSON) what each measured against the figures the issue sets.
//!
//! - this file: the command line ([`BenchArgs`]), the resolved [`Options`] and the run;
//! - [`scenarios`]: the six scenarios and their measurement windows;
//! - [`drivers`]: drivers starting and stopping sessions through the REST API;
//! - [`fixtures`]: the database, bulk seeding and the SQL checks;
//! - [`server`]: the Kilowatt child process;
//! - [`probe`]: CPU, memory and limits from `/proc`;
//! - [`report`]: results, the table and the JSON.
//!
//! Run it from a release build (`cargo run --release -- bench …`); see BENCHMARKS.md.

pub mod drivers;
pub mod fixtures;
pub mod probe;
pub mod report;
pub mod scenarios;
pub mod server;

use std::fmt::Display;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use clap::ValueEnum;
use serde_json::json;

use self::drivers::Timing;
use self::fixtures::BenchDatabase;
use self::probe::Machine;
use self::report::{Report, ScenarioReport, Settings};
use self::scenarios::Bench;
use self::server::Server;

/// Chargers of a full run: about one node's ceiling with ~20,000 open files per process.
pub const FULL_CHARGERS: usize = 19_000;
/// Chargers of a `--quick` smoke run.
pub const QUICK_CHARGERS: usize = 300;
/// Heartbeats per second the issue asks for (with 19,000 chargers).
pub const HEARTBEAT_RATE: f64 = 25_000.0;
/// MeterValues per second the issue asks for (with 19,000 chargers).
pub const METER_RATE: f64 = 20_000.0;
/// Connections per loopback source address before another one is used.
const CHARGERS_PER_SOURCE_ADDR: usize = 5_000;
/// Open files the benchmark needs besides one per charger.
const SPARE_FILES: u64 = 256;

/// A scenario of the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum Scenario {
    /// N chargers booted and idle for the duration: none dropped, memory per charger.
    Hold,
    /// All N connect and boot at once.
    Storm,
    /// Heartbeats at 25,000/s over the connected chargers.
    Heartbeat,
    /// MeterValues at 20,000/s, stored durably.
    Meter,
    /// 30 % charging, heartbeats, drivers starting and stopping through the API.
    Mixed,
    /// Kilowatt killed and restarted under the mixed fleet.
    Restart,
}

impl Scenario {
    /// Every scenario, in the order they run.
    pub const ALL: [Scenario; 6] =
        [Scenario::Hold, Scenario::Storm, Scenario::Heartbeat, Scenario::Meter, Scenario::Mixed, Scenario::Restart];

    /// The scenario's name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Scenario::Hold => "hold",
            Scenario::Storm => "storm",
            Scenario::Heartbeat => "heartbeat",
            Scenario::Meter => "meter",
            Scenario::Mixed => "mixed",
            Scenario::Restart => "restart",
        }
    }
}

/// `kilowatt bench …`
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Scenarios to run, comma-separated; they always run in this order [default: all].
    #[arg(long, value_enum, value_delimiter = ',')]
    pub scenarios: Vec<Scenario>,
    /// Simulated chargers [default: 19000; --quick: 300].
    #[arg(long)]
    pub chargers: Option<usize>,
    /// Seconds each scenario measures [default: hold 600, heartbeat and meter 60, mixed and
    /// restart 120; --quick: 10, and 20 for mixed and restart].
    #[arg(long)]
    pub duration: Option<f64>,
    /// A small smoke run: 300 chargers, short windows, rates scaled to the chargers.
    #[arg(long)]
    pub quick: bool,
    /// Heartbeats per second in the heartbeat scenario [default: 25000, scaled with --quick].
    #[arg(long)]
    pub heartbeat_rate: Option<f64>,
    /// MeterValues per second in the meter scenario [default: 20000, scaled with --quick].
    #[arg(long)]
    pub meter_rate: Option<f64>,
    /// Drivers starting and stopping through the API in the mixed and restart scenarios
    /// [default: 200; --quick: 20].
    #[arg(long)]
    pub drivers: Option<usize>,
    /// New connections per second when a scenario connects its chargers (the storm connects
    /// them all at once).
    #[arg(long, default_value_t = 2000.0)]
    pub ramp: f64,
    /// Loopback source addresses (127.0.0.2, 127.0.0.3, …) to spread the chargers over
    /// [default: one per 5,000 chargers; 0: the system's choice].
    #[arg(long)]
    pub source_addrs: Option<usize>,
    /// PostgreSQL server to create the benchmark database on (an admin URL) [default:
    /// $KILOWATT_DATABASE_URL, $KILOWATT_TEST_DATABASE_URL, or
    /// postgres://kilowatt:kilowatt@127.0.0.1:5432/postgres].
    #[arg(long)]
    pub database_url: Option<String>,
    /// Write the results as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// The server's log [default: kilowatt-bench-server-PID.log in the temporary directory].
    #[arg(long, value_name = "FILE")]
    pub server_log: Option<PathBuf>,
    /// A setting for the server, NAME=value (repeatable), e.g. KILOWATT_DB_POOL_SIZE=32.
    #[arg(long = "server-env", value_name = "NAME=VALUE")]
    pub server_env: Vec<String>,
    /// Keep the benchmark database afterwards (it is dropped by default).
    #[arg(long)]
    pub keep_database: bool,
    /// Exit with a failure when a figure is missed.
    #[arg(long)]
    pub fail_on_miss: bool,
    /// Every charger presents this password (HTTP Basic auth, OCPP security profile 1); it is
    /// registered with the password's Argon2 hash, and every charger connects once before the
    /// scenarios so the server has checked each password with Argon2 (as in a network that
    /// has been running) [default: no password].
    #[arg(long)]
    pub charger_password: Option<String>,
    /// Seed for vehicles and timings.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// How long each scenario measures (the storm lasts until every charger is in).
#[derive(Debug, Clone, Copy)]
pub struct Durations {
    /// Hold.
    pub hold: Duration,
    /// Heartbeat.
    pub heartbeat: Duration,
    /// Meter.
    pub meter: Duration,
    /// Mixed.
    pub mixed: Duration,
    /// Restart (after every charger is back).
    pub restart: Duration,
    /// Mixed fleet running before mixed and restart measure.
    pub warmup: Duration,
}

/// The run, with every default resolved.
#[derive(Debug, Clone)]
pub struct Options {
    /// Scenarios, in order.
    pub scenarios: Vec<Scenario>,
    /// Chargers.
    pub chargers: usize,
    /// Windows.
    pub durations: Durations,
    /// Heartbeats per second.
    pub heartbeat_rate: f64,
    /// MeterValues per second.
    pub meter_rate: f64,
    /// REST drivers.
    pub drivers: usize,
    /// How REST drivers pace themselves.
    pub driver_timing: Timing,
    /// Connections per second.
    pub ramp: f64,
    /// Source addresses.
    pub source_addrs: Vec<IpAddr>,
    /// Smoke run.
    pub quick: bool,
    /// Password every charger presents.
    pub charger_password: Option<String>,
    /// Seed.
    pub seed: u64,
}

impl BenchArgs {
    /// The options these arguments describe, validated.
    pub fn options(&self) -> Result<Options, String> {
        let quick = self.quick;
        let chargers = self.chargers.unwrap_or(if quick { QUICK_CHARGERS } else { FULL_CHARGERS });
        if chargers == 0 {
            return Err("--chargers must be at least 1".to_owned());
        }
        // A quick run keeps each charger's pace of a full run.
        let scale = if quick { chargers as f64 / FULL_CHARGERS as f64 } else { 1.0 };
        let positive = |name: &str, value: f64| {
            if value.is_finite() && value > 0.0 { Ok(value) } else { Err(format!("--{name} must be more than 0")) }
        };
        let heartbeat_rate = positive("heartbeat-rate", self.heartbeat_rate.unwrap_or(HEARTBEAT_RATE * scale))?;
        let meter_rate = positive("meter-rate", self.meter_rate.unwrap_or(METER_RATE * scale))?;
        let ramp = positive("ramp", self.ramp)?;
        let window = |full: u64, smoke: u64| match self.duration {
            Some(seconds) => Duration::try_from_secs_f64(seconds)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| format!("--duration must be a number of seconds, got {seconds}")),
            None => Ok(Duration::from_secs(if quick { smoke } else { full })),
        };
        let durations = Durations {
            hold: window(600, 10)?,
            heartbeat: window(60, 10)?,
            meter: window(60, 10)?,
            mixed: window(120, 20)?,
            restart: window(120, 20)?,
            warmup: Duration::from_secs(if quick { 5 } else { 30 }),
        };
        // Drivers using the app each have an idle charger of the mixed fleet to themselves.
        let mut mixed = crate::simulator::Config::new("ws://unused", chargers);
        mixed.scenario = crate::simulator::Scenario::Mixed;
        let idle_chargers = (0..chargers).filter(|&i| !mixed.charges(i)).count();
        let drivers = self.drivers.unwrap_or(if quick { 20 } else { 200 }).min(idle_chargers);
        let driver_timing = if quick {
            Timing { charge: (2.0, 5.0), gap: (6.0, 8.0), poll: 1.5 }
        } else {
            Timing { charge: (20.0, 60.0), gap: (6.0, 12.0), poll: 10.0 }
        };
        let addresses = self.source_addrs.unwrap_or(if chargers > CHARGERS_PER_SOURCE_ADDR {
            chargers.div_ceil(CHARGERS_PER_SOURCE_ADDR)
        } else {
            0
        });
        if addresses > 250 {
            return Err("--source-addrs must be at most 250".to_owned());
        }
        let source_addrs = (0..addresses).map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + i as u8))).collect();
        let mut scenarios = if self.scenarios.is_empty() { Scenario::ALL.to_vec() } else { self.scenarios.clone() };
        scenarios.sort();
        scenarios.dedup();
        Ok(Options {
            scenarios,
            chargers,
            durations,
            heartbeat_rate,
            meter_rate,
            drivers,
            driver_timing,
            ramp,
            source_addrs,
            quick,
            charger_password: self.charger_password.clone().filter(|p| !p.is_empty()),
            seed: self.seed,
        })
    }

    fn server_env(&self) -> Result<Vec<(String, String)>, String> {
        self.server_env
            .iter()
            .map(|pair| match pair.split_once('=') {
                Some((name, value)) if !name.trim().is_empty() => Ok((name.trim().to_owned(), value.to_owned())),
                _ => Err(format!("--server-env takes NAME=VALUE, got {pair:?}")),
            })
            .collect()
    }

    fn admin_url(&self) -> String {
        self.database_url
            .clone()
            .or_else(|| std::env::var("KILOWATT_DATABASE_URL").ok())
            .or_else(|| std::env::var("KILOWATT_TEST_DATABASE_URL").ok())
            .unwrap_or_else(|| "postgres://kilowatt:kilowatt@127.0.0.1:5432/postgres".to_owned())
    }
}

/// A progress line on stderr.
pub fn note(scenario: &str, message: impl Display) {
    eprintln!("[bench {scenario}] {message}");
}

/// Runs the benchmark; answers the report (also printed, and written with `--output`).
pub async fn run(args: BenchArgs) -> Result<Report, String> {
    let options = args.options()?;
    let server_env = args.server_env()?;
    let open_files = probe::raise_open_files_limit();
    let needed = options.chargers as u64 + options.drivers as u64 + SPARE_FILES;
    if let Some(limit) = open_files
        && limit < needed
    {
        return Err(format!(
            "{} chargers need about {needed} open files in this process and in the server, but the limit is {limit} \
             (raise `ulimit -n` or use fewer --chargers)",
            options.chargers
        ));
    }
    let machine = Machine::describe();
    if machine.cpuidle_driver.as_deref() == Some("haltpoll") && machine.guest_halt_poll_ns == Some(0) {
        note(
            "setup",
            "idle vCPUs halt without polling (guest_halt_poll_ns 0): every wake-up goes through the hypervisor, \
             which adds about 0.1 ms to each round trip on loopback; see BENCHMARKS.md, \"Idle vCPUs\"",
        );
    }
    let ticks = probe::clock_ticks_per_second();
    let started_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    note("setup", format!("creating a database on {}", crate::config::redact_url(&args.admin_url())));
    let db = BenchDatabase::create(&args.admin_url()).await?;
    let result = run_on(&args, &options, &server_env, &db, ticks).await;
    if args.keep_database {
        note("setup", format!("kept database {}", db.name));
    } else if let Err(error) = db.drop_database().await {
        note("setup", format!("could not drop the database: {error}"));
    }
    let (scenarios, server_rss_at_start) = result?;
    let passed = scenarios.iter().all(|s| s.figures.iter().all(|f| f.pass));
    let durations = &options.durations;
    let report = Report {
        version: env!("CARGO_PKG_VERSION"),
        quick: options.quick,
        started_at,
        machine,
        settings: Settings {
            chargers: options.chargers,
            scenarios: options.scenarios.iter().map(|s| s.as_str()).collect(),
            durations_s: json!({
                "hold": durations.hold.as_secs_f64(),
                "heartbeat": durations.heartbeat.as_secs_f64(),
                "meter": durations.meter.as_secs_f64(),
                "mixed": durations.mixed.as_secs_f64(),
                "restart": durations.restart.as_secs_f64(),
                "warmup": durations.warmup.as_secs_f64(),
            }),
            heartbeat_rate: options.heartbeat_rate,
            meter_rate: options.meter_rate,
            drivers: options.drivers,
            ramp: options.ramp,
            source_addrs: options.source_addrs.iter().map(IpAddr::to_string).collect(),
            open_files_limit: open_files,
            clock_ticks: ticks,
            server_env: args.server_env.clone(),
        },
        server_rss_at_start_kb: server_rss_at_start,
        scenarios,
        passed,
    };
    if let Some(path) = &args.output {
        let json = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        std::fs::write(path, json + "\n").map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        note("done", format!("results written to {}", path.display()));
    }
    Ok(report)
}

/// Seeds the database, starts the server and runs the scenarios.
async fn run_on(
    args: &BenchArgs,
    options: &Options,
    server_env: &[(String, String)],
    db: &BenchDatabase,
    ticks: u64,
) -> Result<(Vec<ScenarioReport>, u64), String> {
    let mut conn = db.connect().await?;
    let ids = Bench::charge_point_ids(options);
    note("setup", format!("registering {} chargers and {} drivers", ids.len(), options.chargers + options.drivers));
    let password_hash = options
        .charger_password
        .as_deref()
        .map(kilowatt_actors::accounts::hash_pin)
        .transpose()
        .map_err(|e| format!("cannot hash the charger password: {e}"))?;
    let fixtures = fixtures::seed(&mut conn, &ids, password_hash.as_deref(), options.chargers, options.drivers).await?;
    let log = args
        .server_log
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join(format!("kilowatt-bench-server-{}.log", std::process::id())));
    let server = Server::start(&db.url, &log, server_env).await?;
    let rss_at_start = probe::rss_kb(server.pid()).unwrap_or(0);
    note(
        "setup",
        format!(
            "Kilowatt is running (pid {}, HTTP {}, OCPP {}, log {})",
            server.pid(),
            server.http_addr,
            server.ocpp_addr,
            server.log_path().display()
        ),
    );
    let idle_server_files = probe::open_files(server.pid()).unwrap_or(0);
    let mut bench = Bench { options: options.clone(), server, conn, fixtures, ticks, idle_server_files };
    let mut reports = Vec::new();
    let mut failure = None;
    if options.charger_password.is_some()
        && let Err(error) = bench.check_passwords_once().await
    {
        failure = Some(error);
    }
    for scenario in options.scenarios.iter().filter(|_| failure.is_none()) {
        note(scenario.as_str(), "starting");
        let outcome = match scenario {
            Scenario::Hold => bench.hold().await,
            Scenario::Storm => bench.storm().await,
            Scenario::Heartbeat => bench.heartbeat().await,
            Scenario::Meter => bench.meter().await,
            Scenario::Mixed => bench.mixed().await,
            Scenario::Restart => bench.restart().await,
        };
        match outcome {
            Ok(report) => {
                for figure in &report.figures {
                    let verdict = if figure.pass { "PASS" } else { "FAIL" };
                    note(
                        scenario.as_str(),
                        format!("[{verdict}] {}: {} (target {})", figure.name, figure.value, figure.target),
                    );
                }
                reports.push(report);
            }
            Err(error) => {
                failure = Some(format!("scenario {}: {error}", scenario.as_str()));
                break;
            }
        }
    }
    bench.server.stop().await;
    match failure {
        Some(error) => Err(error),
        None => Ok((reports, rss_at_start)),
    }
}
