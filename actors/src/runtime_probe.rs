//! How long a thread's ready tasks wait for it: `runtime_queue_delay_seconds{thread}`.
//!
//! Every actix thread runs its tasks one at a time, in the order they became ready. When a thread
//! has more ready than it can run at once, each waits for those ahead of it: a charger's frame,
//! the answer to its batch, a browser's push, a database connection's reply. Neither actix nor
//! tokio tells how many are waiting, so the probe measures the wait itself: every [`PERIOD`] it
//! spawns a task on its thread and records how long that task took to start. That is one pass
//! over the thread's queue. A MeterValues waits for the charger thread's queue once, for its
//! frame to be read; its answer then leaves from the thread's inbox as soon as its batch is
//! committed (the inbox is taken within 31 tasks, [`crate::reply`]), so a thread whose p99 here
//! is 30 ms answers readings late by about that much.
//!
//! The latency histograms say *that* answers are late; this says whether a thread's queue is
//! why, and which thread's (BENCHMARKS.md measured it with a probe of this kind).

use std::cell::Cell;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

/// How often each thread is probed. Each probe is one task on the thread.
pub const PERIOD: Duration = Duration::from_millis(250);

thread_local! {
    /// Whether a probe runs on this thread (cleared when its runtime drops it).
    static WATCHED: Cell<bool> = const { Cell::new(false) };
}

/// Starts probing this thread's queue into `runtime_queue_delay_seconds{thread}`, unless a probe
/// already runs here. Does nothing on a thread without an actix runtime. The probe stops with
/// the thread's runtime, and the next runtime on the thread may start another.
pub fn watch(thread: &'static str) {
    if WATCHED.get() || actix_rt::Arbiter::try_current().is_none() {
        return;
    }
    WATCHED.set(true);
    let delays = metrics::histogram!("runtime_queue_delay_seconds", "thread" => thread);
    // Made here and moved in, so that it is dropped with the task even if the task never ran.
    let watched = Watched;
    actix_rt::spawn(async move {
        let _watched = watched;
        let mut every = tokio::time::interval(PERIOD);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            delays.record(queue_delay().await.as_secs_f64());
        }
    });
}

/// How long a task spawned now on this thread waits before it starts: the time to run every
/// task that is ready ahead of it. Call it on a thread with an actix runtime.
pub async fn queue_delay() -> Duration {
    let queued = Instant::now();
    let (started, start) = oneshot::channel();
    actix_rt::spawn(async move {
        let _ = started.send(queued.elapsed());
    });
    start.await.unwrap_or_default()
}

/// Clears [`WATCHED`] when the probe's task is dropped with its runtime.
struct Watched;

impl Drop for Watched {
    fn drop(&mut self) {
        // The thread may be tearing down its thread-locals already; then there is nothing to clear.
        let _ = WATCHED.try_with(|watched| watched.set(false));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_rt::test]
    async fn a_probe_waits_for_the_tasks_ready_ahead_of_it() {
        const BUSY: Duration = Duration::from_millis(60);
        // A task that holds the thread, ready before the probe's.
        actix_rt::spawn(async { std::thread::sleep(BUSY) });
        let waited = queue_delay().await;
        assert!(waited >= BUSY, "the probe started {waited:?} after it was spawned, before the busy task ended");
    }

    #[test]
    fn a_thread_is_probed_once_per_runtime_and_again_in_the_next() {
        let system = actix_rt::System::new();
        system.block_on(async {
            watch("test");
            assert!(WATCHED.get(), "the first call starts a probe");
            watch("test");
            assert!(WATCHED.get(), "a second call leaves the probe as it is");
        });
        drop(system);
        assert!(!WATCHED.get(), "the probe stopped with its runtime");
        actix_rt::System::new().block_on(async {
            watch("test");
            assert!(WATCHED.get(), "a new runtime on the thread gets a probe of its own");
        });
    }
}
