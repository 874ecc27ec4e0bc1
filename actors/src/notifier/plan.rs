//! What a notification needs next, decided from its recorded attempts: pure functions, no I/O.
//!
//! The rules: the channels the driver chose are tried first (a chosen channel that cannot be
//! used — no email address, SMTP not configured — is recorded as skipped). A failed attempt is
//! retried with exponential backoff until it succeeds, fails permanently or runs out of
//! attempts. Once any channel has sent the message it is delivered and outstanding retries
//! are called off. When every chosen channel has given up, the channel the driver did not
//! choose is the fallback, so the message gets through if any channel works. A driver who
//! turned both channels off gets neither (the notification is still stored and listed).

use chrono::{DateTime, Duration, Utc};

/// A delivery channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    /// Email over SMTP.
    Email,
    /// SMS through the configured provider.
    Sms,
}

impl Channel {
    /// Both channels, email first.
    pub const ALL: [Channel; 2] = [Channel::Email, Channel::Sms];

    /// The name stored in `notification_deliveries.channel`.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
        }
    }

    /// The channel a stored name stands for.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "email" => Some(Channel::Email),
            "sms" => Some(Channel::Sms),
            _ => None,
        }
    }
}

/// How one attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Handed to the relay or provider.
    Sent,
    /// Did not go through (it may be retried).
    Failed,
    /// Not attempted: the channel cannot be used for this driver.
    Skipped,
}

impl Outcome {
    /// The name stored in `notification_deliveries.outcome`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Sent => "sent",
            Outcome::Failed => "failed",
            Outcome::Skipped => "skipped",
        }
    }

    /// The outcome a stored name stands for.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "sent" => Some(Outcome::Sent),
            "failed" => Some(Outcome::Failed),
            "skipped" => Some(Outcome::Skipped),
            _ => None,
        }
    }
}

/// A notification's overall outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Some channel sent it.
    Delivered,
    /// Every channel gave up (or was turned off).
    Failed,
}

impl Status {
    /// The name stored in `notifications.status`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Delivered => "delivered",
            Status::Failed => "failed",
        }
    }
}

/// One recorded attempt, as the planner needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// Which channel.
    pub channel: Channel,
    /// 1, 2, … per channel.
    pub number: i32,
    /// How it ended.
    pub outcome: Outcome,
    /// When the next attempt is due; `None` when the channel is finished.
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// Whether the driver chose a channel and whether it can be used for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// The driver wants notifications this way.
    pub chosen: bool,
    /// Why this channel cannot be used for this driver, if it cannot.
    pub unavailable: Option<&'static str>,
}

/// Where a channel stands for one notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelState {
    /// No attempt yet.
    Untried,
    /// Sent.
    Sent,
    /// Skipped: the channel could not be used.
    Skipped,
    /// Failed for good.
    GaveUp,
    /// Failed; attempt `number` is due at `at`.
    RetryAt {
        /// The next attempt's number.
        number: i32,
        /// When it is due.
        at: DateTime<Utc>,
    },
}

/// What to do next for a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Make attempt `number` on `channel`, at `at` (now when `None`).
    Attempt {
        /// Which channel.
        channel: Channel,
        /// The attempt's number.
        number: i32,
        /// Not before this time.
        at: Option<DateTime<Utc>>,
    },
    /// Record that `channel` cannot be used, as attempt `number`.
    Skip {
        /// Which channel.
        channel: Channel,
        /// The attempt's number.
        number: i32,
        /// Why.
        reason: &'static str,
    },
    /// Nothing more to do: the notification ends with this status.
    Finish(Status),
}

/// How failed attempts are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The wait after the first failure; each further wait doubles.
    pub first_delay: Duration,
    /// Attempts per channel before giving up.
    pub max_attempts: i32,
}

impl Default for RetryPolicy {
    /// 1, 2, 4 and 8 minutes between five attempts.
    fn default() -> Self {
        RetryPolicy { first_delay: Duration::minutes(1), max_attempts: 5 }
    }
}

impl RetryPolicy {
    /// How long to wait after attempt `number` failed (transiently), or `None` when it was
    /// the last one allowed.
    pub fn delay_after(&self, number: i32) -> Option<Duration> {
        if number >= self.max_attempts {
            return None;
        }
        let doublings = u32::try_from(number.saturating_sub(1)).unwrap_or(0).min(20);
        Some(self.first_delay * 2_i32.pow(doublings))
    }
}

/// Where `channel` stands, from its attempts.
pub fn channel_state(history: &[Attempt], channel: Channel) -> ChannelState {
    let mut attempts = history.iter().filter(|a| a.channel == channel);
    if attempts.clone().any(|a| a.outcome == Outcome::Sent) {
        return ChannelState::Sent;
    }
    let Some(last) = attempts.by_ref().max_by_key(|a| a.number) else { return ChannelState::Untried };
    match (last.outcome, last.next_attempt_at) {
        (Outcome::Sent, _) => ChannelState::Sent,
        (Outcome::Skipped, _) => ChannelState::Skipped,
        (Outcome::Failed, Some(at)) => ChannelState::RetryAt { number: last.number + 1, at },
        (Outcome::Failed, None) => ChannelState::GaveUp,
    }
}

/// The next step for a notification with these attempts, for a driver whose email and SMS
/// routes are as given.
pub fn next_step(history: &[Attempt], email: Route, sms: Route) -> Step {
    let routes = [(Channel::Email, email), (Channel::Sms, sms)];
    let state = |channel| channel_state(history, channel);
    let begin = |channel: Channel, route: Route| match route.unavailable {
        Some(reason) => Step::Skip { channel, number: 1, reason },
        None => Step::Attempt { channel, number: 1, at: None },
    };
    // The driver's own choice first.
    if let Some(&(channel, route)) =
        routes.iter().find(|(channel, route)| route.chosen && state(*channel) == ChannelState::Untried)
    {
        return begin(channel, route);
    }
    if routes.iter().any(|(channel, _)| state(*channel) == ChannelState::Sent) {
        return Step::Finish(Status::Delivered);
    }
    let retry = routes
        .iter()
        .filter_map(|(channel, _)| match state(*channel) {
            ChannelState::RetryAt { number, at } => Some((at, *channel, number)),
            _ => None,
        })
        .min_by_key(|(at, _, _)| *at);
    if let Some((at, channel, number)) = retry {
        return Step::Attempt { channel, number, at: Some(at) };
    }
    // Every chosen channel gave up or was skipped: fall back to the other one.
    let opted_in = routes.iter().any(|(_, route)| route.chosen);
    for (channel, route) in routes {
        if !route.chosen && state(channel) == ChannelState::Untried {
            return if opted_in {
                begin(channel, route)
            } else {
                Step::Skip { channel, number: 1, reason: "turned off by the driver" }
            };
        }
    }
    Step::Finish(Status::Failed)
}

/// The SMS text for a notification: its own, or the plain text cut to one SMS (160
/// characters, ending in "…" when cut).
pub fn sms_text(sms: Option<&str>, text: &str) -> String {
    const LIMIT: usize = 160;
    let source = sms.unwrap_or(text).trim();
    let flat: String = source.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= LIMIT {
        return flat;
    }
    let mut cut: String = flat.chars().take(LIMIT - 1).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: Route = Route { chosen: true, unavailable: None };
    const OFF: Route = Route { chosen: false, unavailable: None };

    fn attempt(channel: Channel, number: i32, outcome: Outcome, next: Option<DateTime<Utc>>) -> Attempt {
        Attempt { channel, number, outcome, next_attempt_at: next }
    }

    #[test]
    fn chosen_channels_go_first_and_delivery_ends_it() {
        assert_eq!(next_step(&[], OK, OK), Step::Attempt { channel: Channel::Email, number: 1, at: None });
        let sent = [attempt(Channel::Email, 1, Outcome::Sent, None)];
        assert_eq!(next_step(&sent, OK, OK), Step::Attempt { channel: Channel::Sms, number: 1, at: None });
        assert_eq!(next_step(&sent, OK, OFF), Step::Finish(Status::Delivered));
    }

    #[test]
    fn a_failure_is_retried_before_the_fallback() {
        let at = Utc::now();
        let history = [attempt(Channel::Email, 1, Outcome::Failed, Some(at))];
        assert_eq!(next_step(&history, OK, OFF), Step::Attempt { channel: Channel::Email, number: 2, at: Some(at) });
        let gave_up =
            [attempt(Channel::Email, 1, Outcome::Failed, Some(at)), attempt(Channel::Email, 2, Outcome::Failed, None)];
        assert_eq!(next_step(&gave_up, OK, OFF), Step::Attempt { channel: Channel::Sms, number: 1, at: None });
        let both_gave_up = [gave_up[1].clone(), attempt(Channel::Sms, 1, Outcome::Failed, None)];
        assert_eq!(next_step(&both_gave_up, OK, OFF), Step::Finish(Status::Failed));
    }

    #[test]
    fn an_unusable_chosen_channel_is_skipped_and_the_other_used() {
        let no_email = Route { chosen: true, unavailable: Some("no email address") };
        assert_eq!(
            next_step(&[], no_email, OFF),
            Step::Skip { channel: Channel::Email, number: 1, reason: "no email address" }
        );
        let skipped = [attempt(Channel::Email, 1, Outcome::Skipped, None)];
        assert_eq!(next_step(&skipped, no_email, OFF), Step::Attempt { channel: Channel::Sms, number: 1, at: None });
    }

    #[test]
    fn a_driver_who_turned_both_off_gets_nothing() {
        assert!(matches!(next_step(&[], OFF, OFF), Step::Skip { channel: Channel::Email, .. }));
        let skipped =
            [attempt(Channel::Email, 1, Outcome::Skipped, None), attempt(Channel::Sms, 1, Outcome::Skipped, None)];
        assert_eq!(next_step(&skipped, OFF, OFF), Step::Finish(Status::Failed));
    }

    #[test]
    fn backoff_doubles_and_stops() {
        let policy = RetryPolicy::default();
        let minutes: Vec<_> = (1..=5).map(|n| policy.delay_after(n).map(|d| d.num_minutes())).collect();
        assert_eq!(minutes, [Some(1), Some(2), Some(4), Some(8), None]);
    }

    #[test]
    fn sms_text_falls_back_to_the_cut_plain_text() {
        assert_eq!(sms_text(Some("Short"), "long text"), "Short");
        let long = "word ".repeat(100);
        let cut = sms_text(None, &long);
        assert_eq!(cut.chars().count(), 160);
        assert!(cut.ends_with('…'));
    }
}
