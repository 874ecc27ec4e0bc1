//! Test support: keeps an actix thread's queue of ready tasks full, as a charger thread's is
//! under load, and counts how many tasks it has run, so that a test can measure a wait in passes
//! over the queue (task runs) instead of in time.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

/// Spawns `tasks` tasks on the current actix thread that never finish: each adds one to `runs`
/// and goes to the back of the queue again, so the queue never drains.
pub fn keep_busy(tasks: u64, runs: &Arc<AtomicU64>) {
    for _ in 0..tasks {
        let runs = runs.clone();
        actix_rt::spawn(async move {
            loop {
                runs.fetch_add(1, Ordering::SeqCst);
                Requeue(false).await;
            }
        });
    }
}

/// Blocks the calling (test) thread until the busy thread has run `tasks` more tasks, so that
/// what is measured next starts with the busy queue cycling at full length.
pub fn wait_for_runs(runs: &AtomicU64, tasks: u64) {
    let until = runs.load(Ordering::SeqCst) + tasks;
    while runs.load(Ordering::SeqCst) < until {
        std::thread::yield_now();
    }
}

/// Puts the running task back at the end of its thread's queue once.
struct Requeue(bool);

impl Future for Requeue {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if std::mem::replace(&mut self.0, true) {
            return Poll::Ready(());
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
