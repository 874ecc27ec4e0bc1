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

/// Whether a period of `every` has begun between `since` and `now`, for periods that begin at
/// an offset of `key`'s own (a hash of it): what is written once a period for each of many
/// keys (sessions' totals, chargers' last-seen times) then spreads evenly over the period,
/// even when the keys all started at once. A period of zero or less has always begun.
pub fn new_period(key: i64, since: DateTime<Utc>, now: DateTime<Utc>, every: Duration) -> bool {
    if every <= Duration::zero() {
        return true;
    }
    let Some(every_us) = every.num_microseconds() else { return false };
    // A multiplicative hash spreads consecutive keys over the period.
    let offset = key.unsigned_abs().wrapping_mul(0x9E37_79B9_7F4A_7C15) % every_us.unsigned_abs();
    let offset = i64::try_from(offset).unwrap_or(0);
    let period = |at: DateTime<Utc>| at.timestamp_micros().saturating_add(offset).div_euclid(every_us);
    period(now) > period(since)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

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

    #[test]
    fn each_key_gets_one_new_period_per_period_at_its_own_moment() {
        let every = Duration::seconds(5);
        let written = Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap();
        // Many keys all written at one moment, then looked at every 100 ms.
        let mut due_in_tenth: Vec<usize> = vec![0; 60];
        for key in 1..=10_000 {
            let mut last = written;
            let mut writes = 0;
            for tenth in 1..=60 {
                let now = written + Duration::milliseconds(100 * tenth);
                if new_period(key, last, now, every) {
                    due_in_tenth[tenth as usize - 1] += 1;
                    last = now;
                    writes += 1;
                }
            }
            // Six seconds: one or two new periods, never one per look.
            assert!((1..=2).contains(&writes), "key {key} written {writes} times");
        }
        // Spread over the first period: each tenth of a second gets about 1/50 of the keys.
        let first_period = &due_in_tenth[..50];
        assert_eq!(first_period.iter().sum::<usize>(), 10_000);
        assert!(first_period.iter().all(|&n| (100..=320).contains(&n)), "{first_period:?}");
        // Standing still, no period begins; with no period, one always has; with an endless
        // one, never.
        assert!(!new_period(7, written, written, every));
        assert!(new_period(7, written, written, Duration::zero()));
        assert!(!new_period(7, written, written + Duration::days(1), Duration::MAX));
    }
}
