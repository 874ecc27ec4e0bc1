//! What a benchmark run reports: per scenario the connections held, messages offered and
//! achieved, round-trip latency percentiles, server CPU per message and memory, and the
//! figures the issue sets with pass or fail — printed as a table and written as JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use super::probe::Machine;
use crate::simulator::stats::Histogram;

/// Latency percentiles, milliseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Latency {
    /// Round trips measured.
    pub count: u64,
    /// Median.
    pub p50: Option<f64>,
    /// 99th percentile.
    pub p99: Option<f64>,
    /// 99.9th percentile.
    pub p999: Option<f64>,
    /// Slowest.
    pub max: Option<f64>,
}

fn ms(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1e6).round() / 1e3
}

impl Latency {
    /// The percentiles of a histogram.
    pub fn of(histogram: &Histogram) -> Self {
        let count = histogram.count();
        Latency {
            count,
            p50: histogram.quantile(0.5).map(ms),
            p99: histogram.quantile(0.99).map(ms),
            p999: histogram.quantile(0.999).map(ms),
            max: (count > 0).then(|| ms(histogram.max())),
        }
    }
}

/// Message counts over the measured window.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Messages {
    /// Requests sent (OCPP CALLs, plus REST requests where drivers take part).
    pub offered: u64,
    /// Per second.
    pub offered_per_s: f64,
    /// Answered (CALLRESULT or CALLERROR; any HTTP answer).
    pub answered: u64,
    /// Per second.
    pub achieved_per_s: f64,
    /// CALLERRORs (and HTTP 5xx).
    pub call_errors: u64,
    /// Connection failures, disconnects, timeouts and protocol errors.
    pub errors: u64,
}

/// Server resources over the measured window.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ServerUse {
    /// CPU time (user + system), seconds.
    pub cpu_seconds: f64,
    /// Of the 100 % per core.
    pub cpu_percent: f64,
    /// CPU per answered message, µs.
    pub cpu_us_per_message: Option<f64>,
    /// Resident memory at the end of the window, KiB.
    pub rss_kb: u64,
    /// Resident memory before the chargers connected, KiB.
    pub rss_baseline_kb: u64,
    /// (RSS − baseline) / chargers connected, KiB.
    pub rss_kb_per_charger: Option<f64>,
}

/// CPU of the benchmark process itself (the simulated chargers) and of PostgreSQL.
#[derive(Debug, Clone, Default, Serialize)]
pub struct OtherUse {
    /// The benchmark process (simulator and REST drivers), % of one core.
    pub client_cpu_percent: f64,
    /// The benchmark process per answered message, µs.
    pub client_cpu_us_per_message: Option<f64>,
    /// Every PostgreSQL process on the machine, % of one core.
    pub postgres_cpu_percent: f64,
    /// Resident memory of the benchmark process at the end of the window, KiB.
    pub client_rss_kb: u64,
}

/// One figure the issue asks for.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    /// What is measured.
    pub name: String,
    /// The target.
    pub target: String,
    /// What was measured.
    pub value: String,
    /// Whether the target was reached.
    pub pass: bool,
}

impl Figure {
    /// A figure.
    pub fn new(name: impl Into<String>, target: impl Into<String>, value: impl Into<String>, pass: bool) -> Self {
        Figure { name: name.into(), target: target.into(), value: value.into(), pass }
    }
}

/// One scenario's results.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioReport {
    /// Scenario name.
    pub name: &'static str,
    /// Chargers simulated.
    pub chargers: usize,
    /// Chargers connected at the end of the window.
    pub connected: u64,
    /// Length of the measured window, seconds.
    pub window_s: f64,
    /// Messages in the window.
    pub messages: Messages,
    /// Round trips in the window (the scenario's main message, see `latency_of`).
    pub latency_ms: Latency,
    /// Which round trips `latency_ms` covers.
    pub latency_of: String,
    /// Server resources.
    pub server: ServerUse,
    /// Client and database CPU.
    pub other: OtherUse,
    /// Whole-run accounting of the simulated chargers: CALLs sent and answered from the first
    /// connection to the last close.
    pub run: RunTotals,
    /// The figures with pass or fail.
    pub figures: Vec<Figure>,
    /// Scenario-specific details.
    pub details: Value,
}

/// CALLs of a whole simulator run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunTotals {
    /// CALLs sent.
    pub calls: u64,
    /// CALLs answered (CALLRESULT or CALLERROR).
    pub answered: u64,
    /// CALLERRORs.
    pub call_errors: u64,
    /// Errors other than CALLERRORs (connect failures, disconnects, timeouts, protocol).
    pub errors: u64,
    /// Of those: connections that could not be opened.
    pub connect_failures: u64,
    /// Of those: connections that broke or that the server closed.
    pub disconnects: u64,
    /// Of those: CALLs not answered in time.
    pub timeouts: u64,
    /// The timeouts by the action of the CALL.
    pub timeouts_by_action: BTreeMap<&'static str, u64>,
    /// Of those: frames that broke the protocol.
    pub protocol_errors: u64,
    /// Whether every CALL got an answer.
    pub all_answered: bool,
}

/// Settings of the run, as given or defaulted.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    /// Chargers.
    pub chargers: usize,
    /// Scenarios run.
    pub scenarios: Vec<&'static str>,
    /// Measured seconds per scenario.
    pub durations_s: Value,
    /// Heartbeats per second offered in the heartbeat scenario.
    pub heartbeat_rate: f64,
    /// MeterValues per second offered in the meter scenario.
    pub meter_rate: f64,
    /// REST drivers in the mixed and restart scenarios.
    pub drivers: usize,
    /// New connections per second when a scenario connects its fleet (not the storm).
    pub ramp: f64,
    /// Loopback addresses the chargers connect from.
    pub source_addrs: Vec<String>,
    /// Open-files limit of the benchmark (and server) process.
    pub open_files_limit: Option<u64>,
    /// Clock ticks per second of /proc CPU times.
    pub clock_ticks: u64,
    /// Settings given to the server beyond the benchmark's own.
    pub server_env: Vec<String>,
}

/// A whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Kilowatt's version.
    pub version: &'static str,
    /// A smoke run at small scale (`--quick`).
    pub quick: bool,
    /// When it started (UTC).
    pub started_at: String,
    /// The machine.
    pub machine: Machine,
    /// The settings.
    pub settings: Settings,
    /// Server resident memory right after start, KiB.
    pub server_rss_at_start_kb: u64,
    /// The scenarios, in the order run.
    pub scenarios: Vec<ScenarioReport>,
    /// Whether every figure passed.
    pub passed: bool,
}

fn opt(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v:.2}"))
}

/// Formats a count with thousands separators.
pub fn thousands(value: f64) -> String {
    let rounded = value.round() as i64;
    let digits = rounded.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if rounded < 0 { format!("-{out}") } else { out }
}

impl Report {
    /// The table printed at the end.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Kilowatt {} benchmark{} — {} chargers on {} × {} ({} MiB{}), started {}",
            self.version,
            if self.quick { " (QUICK SMOKE RUN)" } else { "" },
            self.settings.chargers,
            self.machine.cpus,
            self.machine.cpu_model,
            self.machine.memory_mb,
            self.machine.idle_polling().map(|idle| format!("; {idle}")).unwrap_or_default(),
            self.started_at
        );
        let _ = writeln!(
            out,
            "{:<10} {:>6} {:>7} {:>10} {:>10} {:>8} {:>8} {:>8} {:>6} {:>8} {:>8} {:>7} {:>6}",
            "scenario",
            "held",
            "window",
            "offered/s",
            "achieved/s",
            "p50 ms",
            "p99 ms",
            "p99.9 ms",
            "CPU %",
            "µs/msg",
            "RSS MiB",
            "KiB/chg",
            "errors"
        );
        for s in &self.scenarios {
            let _ = writeln!(
                out,
                "{:<10} {:>6} {:>6.1}s {:>10} {:>10} {:>8} {:>8} {:>8} {:>6.1} {:>8} {:>8.1} {:>7} {:>6}",
                s.name,
                s.connected,
                s.window_s,
                thousands(s.messages.offered_per_s),
                thousands(s.messages.achieved_per_s),
                opt(s.latency_ms.p50),
                opt(s.latency_ms.p99),
                opt(s.latency_ms.p999),
                s.server.cpu_percent,
                opt(s.server.cpu_us_per_message),
                s.server.rss_kb as f64 / 1024.0,
                opt(s.server.rss_kb_per_charger),
                s.messages.errors + s.messages.call_errors,
            );
        }
        let _ = writeln!(
            out,
            "(latency: Heartbeat, BootNotification, MeterValues or REST requests as the scenario measures; CPU: \
             the server process, % of one core; errors include the disconnects a restart causes)"
        );
        let _ = writeln!(out);
        for s in &self.scenarios {
            for figure in &s.figures {
                let _ = writeln!(
                    out,
                    "  [{}] {:<10} {}: {} (target {})",
                    if figure.pass { "PASS" } else { "FAIL" },
                    s.name,
                    figure.name,
                    figure.value,
                    figure.target
                );
            }
        }
        let _ = write!(out, "{}", if self.passed { "All figures reached." } else { "Some figures were missed." });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(25_000.0), "25,000");
        assert_eq!(thousands(1_234_567.0), "1,234,567");
        assert_eq!(thousands(-4_200.0), "-4,200");
    }

    #[test]
    fn latency_comes_from_the_histogram_in_milliseconds() {
        let histogram = Histogram::default();
        assert_eq!(Latency::of(&histogram).p50, None);
        for _ in 0..1000 {
            histogram.record(Duration::from_micros(1500));
        }
        let latency = Latency::of(&histogram);
        assert_eq!(latency.count, 1000);
        assert!(latency.p50.is_some_and(|p| (1.5..=1.7).contains(&p)), "{latency:?}");
        assert_eq!(latency.max, Some(1.5));
    }
}
