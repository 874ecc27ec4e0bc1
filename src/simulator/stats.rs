//! What the simulator counts while it runs: gauges (connected, charging), counters by action
//! and a latency histogram of CALL → answer round trips.
//!
//! Everything runs on one thread, so the counters are plain `Cell`s (no atomics), and latencies
//! go into a fixed set of logarithmic buckets — a sample costs two increments (the overall
//! histogram and its action's), whatever the number of chargers or the length of the run.

use std::cell::Cell;
use std::time::Duration;

/// A CALL the simulated charger sends (the index into per-action counters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// BootNotification.
    BootNotification,
    /// Heartbeat.
    Heartbeat,
    /// StatusNotification.
    StatusNotification,
    /// Authorize.
    Authorize,
    /// StartTransaction.
    StartTransaction,
    /// MeterValues.
    MeterValues,
    /// StopTransaction.
    StopTransaction,
    /// DiagnosticsStatusNotification.
    DiagnosticsStatusNotification,
    /// FirmwareStatusNotification.
    FirmwareStatusNotification,
}

impl Action {
    /// Every action, in counter order.
    pub const ALL: [Action; 9] = [
        Action::BootNotification,
        Action::Heartbeat,
        Action::StatusNotification,
        Action::Authorize,
        Action::StartTransaction,
        Action::MeterValues,
        Action::StopTransaction,
        Action::DiagnosticsStatusNotification,
        Action::FirmwareStatusNotification,
    ];

    /// The OCPP action name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Action::BootNotification => "BootNotification",
            Action::Heartbeat => "Heartbeat",
            Action::StatusNotification => "StatusNotification",
            Action::Authorize => "Authorize",
            Action::StartTransaction => "StartTransaction",
            Action::MeterValues => "MeterValues",
            Action::StopTransaction => "StopTransaction",
            Action::DiagnosticsStatusNotification => "DiagnosticsStatusNotification",
            Action::FirmwareStatusNotification => "FirmwareStatusNotification",
        }
    }

    const fn index(self) -> usize {
        self as usize
    }
}

/// Exact buckets below this many microseconds.
const LINEAR: u64 = 16;
/// Sub-buckets per power of two above that (≈ 12 % resolution).
const SUB_BITS: u32 = 3;
const SUB: u64 = 1 << SUB_BITS;
/// Powers of two covered after the linear part: 16 µs · 2^28 ≈ 71 minutes.
const OCTAVES: usize = 28;
const BUCKETS: usize = LINEAR as usize + OCTAVES * SUB as usize;

/// A latency histogram with fixed logarithmic buckets (microseconds, ≈ 12 % wide).
#[derive(Clone)]
pub struct Histogram {
    buckets: [Cell<u64>; BUCKETS],
    count: Cell<u64>,
    max_micros: Cell<u64>,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram { buckets: std::array::from_fn(|_| Cell::new(0)), count: Cell::new(0), max_micros: Cell::new(0) }
    }
}

impl Histogram {
    fn index(micros: u64) -> usize {
        if micros < LINEAR {
            return micros as usize;
        }
        let octave = 63 - micros.leading_zeros(); // ≥ 4
        let sub = (micros >> (octave - SUB_BITS)) & (SUB - 1);
        let index = LINEAR as usize + (octave as usize - 4) * SUB as usize + sub as usize;
        index.min(BUCKETS - 1)
    }

    /// The smallest value that falls in bucket `index`, µs.
    fn lower_bound(index: usize) -> u64 {
        if index < LINEAR as usize {
            return index as u64;
        }
        let offset = index - LINEAR as usize;
        let octave = 4 + (offset / SUB as usize) as u32;
        let sub = (offset % SUB as usize) as u64;
        (SUB + sub) << (octave - SUB_BITS)
    }

    /// Records one sample.
    pub fn record(&self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        let bucket = &self.buckets[Self::index(micros)];
        bucket.set(bucket.get() + 1);
        self.count.set(self.count.get() + 1);
        if micros > self.max_micros.get() {
            self.max_micros.set(micros);
        }
    }

    /// The samples recorded since `earlier`, a copy of this histogram taken before (for one
    /// second's quantiles out of a window's). Its largest sample is the upper edge of its
    /// highest bucket, capped at this histogram's largest.
    pub fn since(&self, earlier: &Histogram) -> Histogram {
        let since = Histogram::default();
        for (index, (now, then)) in self.buckets.iter().zip(&earlier.buckets).enumerate() {
            let added = now.get().saturating_sub(then.get());
            if added > 0 {
                since.buckets[index].set(added);
                let upper = if index + 1 < BUCKETS { Self::lower_bound(index + 1) - 1 } else { u64::MAX };
                since.max_micros.set(upper.min(self.max_micros.get()));
            }
        }
        since.count.set(self.count.get().saturating_sub(earlier.count.get()));
        since
    }

    /// Forgets every sample (to start a measurement window).
    pub fn reset(&self) {
        self.buckets.iter().for_each(|bucket| bucket.set(0));
        self.count.set(0);
        self.max_micros.set(0);
    }

    /// How many samples were recorded.
    pub fn count(&self) -> u64 {
        self.count.get()
    }

    /// The largest sample.
    pub fn max(&self) -> Duration {
        Duration::from_micros(self.max_micros.get())
    }

    /// The `q` quantile (0–1), as the upper edge of its bucket (so never optimistic by more
    /// than one bucket), capped at the largest sample; `None` without samples.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let count = self.count.get();
        if count == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (index, bucket) in self.buckets.iter().enumerate() {
            seen += bucket.get();
            if seen >= rank {
                let upper = if index + 1 < BUCKETS { Self::lower_bound(index + 1) - 1 } else { u64::MAX };
                return Some(Duration::from_micros(upper.min(self.max_micros.get())));
            }
        }
        Some(self.max())
    }
}

fn bump(cell: &Cell<u64>) {
    cell.set(cell.get() + 1);
}

/// Live counters shared by every simulated charger of one run.
#[derive(Default)]
pub struct Stats {
    /// Chargers with an open WebSocket now.
    pub connected: Cell<u64>,
    /// Chargers accepted at least once by BootNotification.
    pub accepted: Cell<u64>,
    /// Transactions under way now.
    pub charging: Cell<u64>,
    sent: [Cell<u64>; Action::ALL.len()],
    call_errors: [Cell<u64>; Action::ALL.len()],
    timeouts_by_action: [Cell<u64>; Action::ALL.len()],
    /// Frames received (answers and commands).
    pub received: Cell<u64>,
    /// Commands (CALLs) from the central system answered.
    pub commands: Cell<u64>,
    /// Connections that could not be opened.
    pub connect_failures: Cell<u64>,
    /// Connections the central system closed or that broke.
    pub disconnects: Cell<u64>,
    /// CALLs with no answer in time.
    pub timeouts: Cell<u64>,
    /// Frames from the central system that broke the protocol.
    pub protocol_errors: Cell<u64>,
    /// Transactions started (StartTransaction queued).
    pub sessions_started: Cell<u64>,
    /// Transactions stopped (StopTransaction queued).
    pub sessions_stopped: Cell<u64>,
    /// StartTransactions the central system answered with a transaction ID.
    pub transactions_numbered: Cell<u64>,
    /// Authorize or StartTransaction answers that refused the idTag.
    pub refused: Cell<u64>,
    /// Simulated faults.
    pub faults: Cell<u64>,
    /// Simulated connection losses and reboots.
    pub reconnects: Cell<u64>,
    /// Messages dropped because the offline queue was full.
    pub dropped: Cell<u64>,
    /// Heartbeats and MeterValues that fell due while the charger still waited for the answer
    /// to an earlier CALL (so they went out late, or — a heartbeat already queued — not at all):
    /// the central system is not keeping up with the offered rate.
    pub late: Cell<u64>,
    /// Sampled values in MeterValues the central system answered with a CALLRESULT (each one
    /// a row it stored).
    pub meter_samples_acknowledged: Cell<u64>,
    /// CALLs answered (CALLRESULT or CALLERROR) since the start; unlike the histograms'
    /// counts, never reset.
    pub answers: Cell<u64>,
    /// CALL → CALLRESULT/CALLERROR round trips.
    pub latency: Histogram,
    latency_by_action: [Histogram; Action::ALL.len()],
}

impl Stats {
    /// Counts a CALL sent.
    pub fn sent(&self, action: Action) {
        bump(&self.sent[action.index()]);
    }

    /// Counts a CALLERROR received for a CALL.
    pub fn call_error(&self, action: Action) {
        bump(&self.call_errors[action.index()]);
    }

    /// Counts a CALL with this action that had no answer in time.
    pub fn timed_out(&self, action: Action) {
        bump(&self.timeouts);
        bump(&self.timeouts_by_action[action.index()]);
    }

    /// CALLs with this action that had no answer in time.
    pub fn timeouts_of(&self, action: Action) -> u64 {
        self.timeouts_by_action[action.index()].get()
    }

    /// Records the round trip of a CALL with this action.
    pub fn round_trip(&self, action: Action, latency: Duration) {
        bump(&self.answers);
        self.latency.record(latency);
        self.latency_by_action[action.index()].record(latency);
    }

    /// Round trips of CALLs with this action (answered by a CALLRESULT or a CALLERROR).
    pub fn latency_of(&self, action: Action) -> &Histogram {
        &self.latency_by_action[action.index()]
    }

    /// Forgets every latency sample, overall and per action (to start a measurement window).
    pub fn reset_latencies(&self) {
        self.latency.reset();
        self.latency_by_action.iter().for_each(Histogram::reset);
    }

    /// Adds one to a counter.
    pub fn bump(cell: &Cell<u64>) {
        bump(cell);
    }

    /// Adds `delta` (±1) to a gauge.
    pub fn gauge(cell: &Cell<u64>, up: bool) {
        cell.set(if up { cell.get() + 1 } else { cell.get().saturating_sub(1) });
    }

    /// CALLs sent, all actions.
    pub fn sent_total(&self) -> u64 {
        self.sent.iter().map(Cell::get).sum()
    }

    /// CALLs sent with this action.
    pub fn sent_of(&self, action: Action) -> u64 {
        self.sent[action.index()].get()
    }

    /// CALLERRORs received for this action.
    pub fn call_errors_of(&self, action: Action) -> u64 {
        self.call_errors[action.index()].get()
    }

    /// CALLERRORs received, all actions.
    pub fn call_errors_total(&self) -> u64 {
        self.call_errors.iter().map(Cell::get).sum()
    }

    /// Frames sent: CALLs plus answers to commands.
    pub fn frames_out(&self) -> u64 {
        self.sent_total() + self.commands.get()
    }

    /// Everything that went wrong that is not a CALLERROR.
    pub fn errors(&self) -> u64 {
        self.connect_failures.get() + self.disconnects.get() + self.timeouts.get() + self.protocol_errors.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn buckets_cover_every_value_in_order_and_each_value_lies_in_its_bucket() {
        let mut previous = 0;
        for micros in (0..100_000).chain([1 << 30, 1 << 35, u64::MAX]) {
            let index = Histogram::index(micros);
            assert!(index >= previous, "{micros}");
            previous = index;
            assert!(Histogram::lower_bound(index) <= micros, "{micros} below bucket {index}");
            if index + 1 < BUCKETS {
                assert!(micros < Histogram::lower_bound(index + 1) || index == BUCKETS - 1);
            }
        }
    }

    #[test]
    fn buckets_are_within_an_eighth_of_the_value() {
        for micros in [20_u64, 100, 999, 12_345, 1_000_000, 33_333_333] {
            let index = Histogram::index(micros);
            let width = Histogram::lower_bound(index + 1) - Histogram::lower_bound(index);
            assert!(width as f64 <= micros as f64 / 8.0 + 1.0, "{micros}: width {width}");
        }
    }

    #[test]
    fn quantiles_come_from_the_recorded_distribution() {
        let histogram = Histogram::default();
        assert_eq!(histogram.quantile(0.5), None);
        // 1..=100 ms, one sample each.
        for n in 1..=100 {
            histogram.record(ms(n));
        }
        assert_eq!(histogram.count(), 100);
        let p50 = histogram.quantile(0.5).unwrap();
        let p99 = histogram.quantile(0.99).unwrap();
        assert!(p50 >= ms(50) && p50 <= ms(57), "{p50:?}");
        assert!(p99 >= ms(99) && p99 <= ms(100), "{p99:?}");
        assert_eq!(histogram.quantile(1.0), Some(ms(100)));
        assert_eq!(histogram.max(), ms(100));
    }

    #[test]
    fn one_slow_sample_in_a_hundred_shows_at_p99_not_p50() {
        let histogram = Histogram::default();
        for _ in 0..99 {
            histogram.record(Duration::from_micros(800));
        }
        histogram.record(Duration::from_secs(2));
        assert!(histogram.quantile(0.5).unwrap() < ms(1));
        assert!(histogram.quantile(0.99).unwrap() < ms(1));
        assert_eq!(histogram.quantile(0.999), Some(Duration::from_secs(2)));
    }

    #[test]
    fn a_second_s_quantiles_come_from_its_own_samples_only() {
        let histogram = Histogram::default();
        for _ in 0..1_000 {
            histogram.record(ms(2));
        }
        let before = histogram.clone();
        for _ in 0..90 {
            histogram.record(ms(5));
        }
        for _ in 0..10 {
            histogram.record(ms(300));
        }
        let second = histogram.since(&before);
        assert_eq!(second.count(), 100);
        // Over the whole histogram the slow tenth of the second is under 1 %.
        assert!(histogram.quantile(0.99).unwrap() < ms(6));
        let p99 = second.quantile(0.99).unwrap();
        assert!(p99 >= ms(300) && p99 <= ms(340), "{p99:?}");
        assert!(second.quantile(0.5).unwrap() < ms(6));
        assert!(histogram.since(&histogram.clone()).quantile(0.99).is_none());
    }

    #[test]
    fn counters_add_up_by_action() {
        let stats = Stats::default();
        stats.sent(Action::Heartbeat);
        stats.sent(Action::Heartbeat);
        stats.sent(Action::MeterValues);
        stats.call_error(Action::MeterValues);
        Stats::bump(&stats.commands);
        stats.timed_out(Action::StartTransaction);
        Stats::gauge(&stats.connected, true);
        Stats::gauge(&stats.connected, false);
        Stats::gauge(&stats.connected, false);
        assert_eq!(stats.sent_of(Action::Heartbeat), 2);
        assert_eq!(stats.sent_total(), 3);
        assert_eq!(stats.frames_out(), 4);
        assert_eq!(stats.call_errors_of(Action::MeterValues), 1);
        assert_eq!(stats.call_errors_total(), 1);
        assert_eq!(stats.errors(), 1);
        assert_eq!(stats.timeouts_of(Action::StartTransaction), 1);
        assert_eq!(stats.timeouts_of(Action::MeterValues), 0);
        assert_eq!(stats.connected.get(), 0);
    }

    #[test]
    fn round_trips_count_overall_and_per_action_until_reset() {
        let stats = Stats::default();
        stats.round_trip(Action::Heartbeat, ms(2));
        stats.round_trip(Action::Heartbeat, ms(4));
        stats.round_trip(Action::BootNotification, ms(300));
        assert_eq!(stats.latency.count(), 3);
        assert_eq!(stats.latency_of(Action::Heartbeat).count(), 2);
        assert!(stats.latency_of(Action::Heartbeat).quantile(1.0).unwrap() <= ms(4));
        assert_eq!(stats.latency_of(Action::BootNotification).max(), ms(300));
        stats.reset_latencies();
        assert_eq!(stats.answers.get(), 3);
        assert_eq!(stats.latency.count(), 0);
        assert_eq!(stats.latency_of(Action::Heartbeat).quantile(0.5), None);
        assert_eq!(stats.latency_of(Action::BootNotification).max(), Duration::ZERO);
    }
}
