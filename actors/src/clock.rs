//! The clock every actor and timer reads time from.
//!
//! Production uses the system clock. Tests use a manual clock they move forward, so a
//! 30-minute grace period is exercised in milliseconds without a real sleep.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use tokio::sync::watch;

/// A source of the current time that timers can wait on.
#[derive(Clone, Debug)]
pub struct Clock {
    inner: ClockKind,
}

#[derive(Clone, Debug)]
enum ClockKind {
    System,
    Manual(Arc<watch::Sender<DateTime<Utc>>>),
}

impl Default for Clock {
    fn default() -> Self {
        Self::system()
    }
}

impl Clock {
    /// The real wall clock.
    pub fn system() -> Self {
        Self { inner: ClockKind::System }
    }

    /// A clock that stands still at `start` until [`Clock::advance`] or [`Clock::set`] moves it.
    pub fn manual(start: DateTime<Utc>) -> Self {
        let (sender, _) = watch::channel(start);
        Self { inner: ClockKind::Manual(Arc::new(sender)) }
    }

    /// The current time.
    pub fn now(&self) -> DateTime<Utc> {
        match &self.inner {
            ClockKind::System => Utc::now(),
            ClockKind::Manual(sender) => *sender.borrow(),
        }
    }

    /// Moves a manual clock forward, waking every timer whose deadline has passed.
    /// Does nothing on the system clock.
    pub fn advance(&self, by: Duration) {
        if let ClockKind::Manual(sender) = &self.inner {
            sender.send_modify(|now| *now += by);
        }
    }

    /// Sets a manual clock to `to` (never backwards). Does nothing on the system clock.
    pub fn set(&self, to: DateTime<Utc>) {
        if let ClockKind::Manual(sender) = &self.inner {
            sender.send_modify(|now| *now = (*now).max(to));
        }
    }

    /// Waits until the clock reads `deadline` or later.
    pub async fn sleep_until(&self, deadline: DateTime<Utc>) {
        match &self.inner {
            ClockKind::System => {
                let remaining = deadline - Utc::now();
                if let Ok(remaining) = remaining.to_std() {
                    tokio::time::sleep(remaining).await;
                }
            }
            ClockKind::Manual(sender) => {
                let mut receiver = sender.subscribe();
                // The sender lives as long as this clock, so `wait_for` only fails if every
                // clone was dropped, in which case nobody can move time any more: stop waiting.
                let _ = receiver.wait_for(|now| *now >= deadline).await;
            }
        }
    }

    /// Waits for `duration` of this clock's time.
    pub async fn sleep(&self, duration: Duration) {
        self.sleep_until(self.now() + duration).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn manual_clock_wakes_sleepers_when_advanced() {
        let start = Utc::now();
        let clock = Clock::manual(start);
        let sleeper = {
            let clock = clock.clone();
            tokio::spawn(async move { clock.sleep(Duration::minutes(30)).await })
        };
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished());
        clock.advance(Duration::minutes(29));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished());
        clock.advance(Duration::minutes(1));
        sleeper.await.expect("sleeper finished");
        assert_eq!(clock.now(), start + Duration::minutes(30));
    }

    #[test]
    fn manual_clock_never_goes_backwards() {
        let start = Utc::now();
        let clock = Clock::manual(start);
        clock.set(start - Duration::hours(1));
        assert_eq!(clock.now(), start);
    }
}
