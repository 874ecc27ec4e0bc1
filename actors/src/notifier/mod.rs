//! The Notifier: one actor that stores every notification and delivers it by email and SMS.
//!
//! A [`Notify`] is stored first, so nothing is lost, and then driven to an end by a future the
//! actor spawns: the next step comes from the recorded attempts ([`plan`]), each attempt is
//! recorded before it is made and its outcome after, failures are retried with exponential
//! backoff on the controllable [`Clock`], and a channel that gives up falls back to the other.
//! At start-up every notification still pending is picked up again where it stopped.

pub mod email;
pub mod plan;
pub mod sms;

use std::rc::Rc;

use actix::prelude::*;

use self::email::{EmailContent, EmailSettings, Mailer};
use self::plan::{Attempt, Channel, Outcome, RetryPolicy, Route, Step};
use self::sms::{SmsSender, SmsSettings};
use crate::clock::Clock;
use crate::registry::Probe;
use crate::store::models::User;
use crate::store::notifications::{self, NewDelivery, NewNotification, Notification};
use crate::store::{DbPool, StoreError, pool, users};

/// A notification for one driver.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct Notify {
    /// The driver.
    pub user_id: i64,
    /// A stable kind, e.g. `booking_slot_started`, `booking_expired`, `queue_turn`.
    pub kind: String,
    /// Email subject.
    pub subject: String,
    /// Plain-text body (email).
    pub text: String,
    /// HTML body (email), if any.
    pub html: Option<String>,
    /// SMS text (short), if any.
    pub sms: Option<String>,
    /// The booking it is about.
    pub booking_id: Option<i64>,
    /// The session it is about.
    pub session_id: Option<i64>,
}

/// Stops the notifier and every delivery under way (they resume at the next start).
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct Shutdown;

/// How the notifier reaches drivers.
#[derive(Debug, Clone, Default)]
pub struct NotifierSettings {
    /// SMTP; `None` turns email off (email is then skipped and SMS used).
    pub email: Option<EmailSettings>,
    /// The SMS provider.
    pub sms: SmsSettings,
    /// Shown in every email's footer.
    pub support_email: String,
    /// Retries of failed attempts.
    pub retry: RetryPolicy,
}

/// Why one attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendError {
    /// What went wrong (kept in `notification_deliveries.error`, never shown to drivers).
    pub message: String,
    /// Retrying cannot help (a 5xx from the relay, a refused request, a bad address).
    pub permanent: bool,
}

impl SendError {
    /// A failure worth retrying.
    pub fn transient(message: impl Into<String>) -> Self {
        SendError { message: message.into(), permanent: false }
    }

    /// A failure retrying cannot fix.
    pub fn permanent(message: impl Into<String>) -> Self {
        SendError { message: message.into(), permanent: true }
    }
}

/// The error an attempt carries while it is being made: the attempt is recorded as failed,
/// with a retry time, before the send, so one interrupted by a crash is simply retried.
pub const SENDING: &str = "interrupted while sending";

/// The notifier actor.
pub struct Notifier {
    pool: DbPool,
    clock: Clock,
    settings: NotifierSettings,
    /// Built in `started()`: it holds an HTTP client, which stays on the actor's thread.
    env: Option<Rc<Env>>,
}

/// What every delivery future shares.
struct Env {
    pool: DbPool,
    clock: Clock,
    mailer: Option<Mailer>,
    sms: SmsSender,
    support_email: String,
    retry: RetryPolicy,
}

impl Notifier {
    /// A notifier over the database, sending as `settings` say.
    pub fn new(pool: DbPool, clock: Clock, settings: NotifierSettings) -> Self {
        Notifier { pool, clock, settings, env: None }
    }

    fn env(&mut self) -> Rc<Env> {
        self.env
            .get_or_insert_with(|| {
                let mailer = self.settings.email.as_ref().and_then(|settings| {
                    Mailer::new(settings)
                        .inspect_err(|error| tracing::error!(%error, "email is off: the SMTP settings do not work"))
                        .ok()
                });
                Rc::new(Env {
                    pool: self.pool.clone(),
                    clock: self.clock.clone(),
                    mailer,
                    sms: SmsSender::new(&self.settings.sms),
                    support_email: self.settings.support_email.clone(),
                    retry: self.settings.retry,
                })
            })
            .clone()
    }
}

impl Actor for Notifier {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(256);
        let env = self.env();
        ctx.spawn(pending(env.clone()).into_actor(self).map(move |ids, act, ctx| {
            if !ids.is_empty() {
                tracing::info!(notifications = ids.len(), "resuming notifications under way");
            }
            for id in ids {
                ctx.spawn(drive(env.clone(), id).into_actor(act));
            }
        }));
    }
}

impl Handler<Notify> for Notifier {
    type Result = ();

    fn handle(&mut self, msg: Notify, ctx: &mut Self::Context) {
        let env = self.env();
        ctx.spawn(
            async move {
                if let Some(id) = store(&env, &msg).await {
                    drive(env, id).await;
                }
            }
            .into_actor(self),
        );
    }
}

impl Handler<Probe> for Notifier {
    type Result = ();

    fn handle(&mut self, _msg: Probe, _ctx: &mut Self::Context) {}
}

impl Handler<Shutdown> for Notifier {
    type Result = ();

    fn handle(&mut self, _: Shutdown, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

/// Stores a notification; `None` when it is a repeat (same booking and kind) or the database
/// failed (logged).
async fn store(env: &Env, msg: &Notify) -> Option<i64> {
    let now = env.clock.now();
    let new = NewNotification {
        user_id: msg.user_id,
        kind: &msg.kind,
        subject: &msg.subject,
        body_text: &msg.text,
        body_html: msg.html.as_deref(),
        sms_text: msg.sms.as_deref(),
        booking_id: msg.booking_id,
        session_id: msg.session_id,
        created_at: now,
        updated_at: now,
    };
    let stored = async {
        let mut conn = pool::connection(&env.pool).await?;
        notifications::insert(&mut conn, &new).await
    };
    match stored.await {
        Ok(Some(id)) => {
            tracing::info!(notification_id = id, user_id = msg.user_id, kind = %msg.kind, "notification stored");
            Some(id)
        }
        Ok(None) => {
            tracing::info!(user_id = msg.user_id, kind = %msg.kind, booking_id = ?msg.booking_id, "notification already sent for this booking");
            None
        }
        Err(error) => {
            metrics::counter!("kilowatt_notifications_total", "channel" => "store", "outcome" => "failed").increment(1);
            tracing::error!(%error, user_id = msg.user_id, kind = %msg.kind, "notification lost: it could not be stored");
            None
        }
    }
}

/// The notifications still pending (after a restart); none when they cannot be read (they
/// are picked up at the next start).
async fn pending(env: Rc<Env>) -> Vec<i64> {
    let pending = async {
        let mut conn = pool::connection(&env.pool).await?;
        notifications::pending_ids(&mut conn).await
    };
    pending.await.unwrap_or_else(|error: StoreError| {
        tracing::error!(%error, "pending notifications could not be read; they resume at the next start");
        Vec::new()
    })
}

/// Whether a notification needs more work.
enum Progress {
    More,
    Done,
}

/// Consecutive database failures after which a notification is left for the next start.
const STORE_FAILURES_TOLERATED: u32 = 5;

/// Takes one notification through its attempts to the end.
async fn drive(env: Rc<Env>, id: i64) {
    let _in_flight = InFlight::start();
    let mut store_failures = 0;
    loop {
        match advance(&env, id).await {
            Ok(Progress::More) => store_failures = 0,
            Ok(Progress::Done) => return,
            Err(error) => {
                store_failures += 1;
                if store_failures >= STORE_FAILURES_TOLERATED {
                    tracing::error!(%error, notification_id = id, "notification left pending: the database keeps failing");
                    return;
                }
                tracing::warn!(%error, notification_id = id, "notification delivery paused: database error");
                env.clock.sleep(env.retry.first_delay).await;
            }
        }
    }
}

/// Takes one step: reads the notification and its attempts, then skips a channel, makes an
/// attempt (after waiting for it to be due) or finishes.
async fn advance(env: &Env, id: i64) -> Result<Progress, StoreError> {
    let mut conn = pool::connection(&env.pool).await?;
    let Some((notification, deliveries)) = notifications::find(&mut conn, id).await? else {
        return Ok(Progress::Done);
    };
    if notification.status != "pending" {
        return Ok(Progress::Done);
    }
    let Some(user) = users::find(&mut conn, notification.user_id).await? else { return Ok(Progress::Done) };
    let history: Vec<Attempt> = deliveries
        .iter()
        .filter_map(|d| {
            Some(Attempt {
                channel: Channel::parse(&d.channel)?,
                number: d.attempt,
                outcome: Outcome::parse(&d.outcome)?,
                next_attempt_at: d.next_attempt_at,
            })
        })
        .collect();
    let (email, sms) = routes(env, &user);
    match plan::next_step(&history, email, sms) {
        Step::Finish(status) => {
            notifications::finish(&mut conn, id, status.as_str(), env.clock.now()).await?;
            tracing::info!(notification_id = id, user_id = user.id, status = status.as_str(), "notification finished");
            Ok(Progress::Done)
        }
        Step::Skip { channel, number, reason } => {
            let skipped = NewDelivery {
                notification_id: id,
                channel: channel.as_str(),
                attempt: number,
                outcome: Outcome::Skipped.as_str(),
                error: Some(reason),
                attempted_at: env.clock.now(),
                next_attempt_at: None,
            };
            if notifications::record_attempt(&mut conn, &skipped).await? {
                count(channel, Outcome::Skipped);
                tracing::info!(notification_id = id, channel = channel.as_str(), reason, "channel skipped");
            }
            Ok(Progress::More)
        }
        Step::Attempt { channel, number, at } => {
            if let Some(at) = at.filter(|at| *at > env.clock.now()) {
                drop(conn);
                env.clock.sleep_until(at).await;
                // Read again: another node may have moved it on meanwhile.
                return Ok(Progress::More);
            }
            attempt(env, conn, &notification, &user, channel, number).await
        }
    }
}

/// Makes attempt `number` on `channel`: claims it (records it as failed and due again, so a
/// crash mid-send is retried), sends without holding a connection, and records the outcome.
async fn attempt(
    env: &Env,
    mut conn: pool::PooledConnection,
    notification: &Notification,
    user: &User,
    channel: Channel,
    number: i32,
) -> Result<Progress, StoreError> {
    let now = env.clock.now();
    let claim = NewDelivery {
        notification_id: notification.id,
        channel: channel.as_str(),
        attempt: number,
        outcome: Outcome::Failed.as_str(),
        error: Some(SENDING),
        attempted_at: now,
        next_attempt_at: Some(now + env.retry.delay_after(number).unwrap_or(env.retry.first_delay)),
    };
    if !notifications::record_attempt(&mut conn, &claim).await? {
        // Someone else (another node) is making this attempt; it drives the rest.
        return Ok(Progress::Done);
    }
    drop(conn);
    let result = send(env, notification, user, channel).await;
    let (outcome, error, next) = match &result {
        Ok(()) => (Outcome::Sent, None, None),
        Err(error) => {
            let next = if error.permanent { None } else { env.retry.delay_after(number).map(|d| env.clock.now() + d) };
            (Outcome::Failed, Some(truncate(&error.message, 500)), next)
        }
    };
    count(channel, outcome);
    match (&result, next) {
        (Ok(()), _) => {
            tracing::info!(notification_id = notification.id, channel = channel.as_str(), attempt = number, "sent")
        }
        (Err(error), Some(next)) => tracing::warn!(
            notification_id = notification.id, channel = channel.as_str(), attempt = number,
            error = %error.message, retry_at = %next, "sending failed; will retry"
        ),
        (Err(error), None) => tracing::warn!(
            notification_id = notification.id, channel = channel.as_str(), attempt = number,
            error = %error.message, permanent = error.permanent, "sending failed; giving up on this channel"
        ),
    }
    let mut conn = pool::connection(&env.pool).await?;
    notifications::set_outcome(
        &mut conn,
        notification.id,
        channel.as_str(),
        number,
        outcome.as_str(),
        error.as_deref(),
        next,
    )
    .await?;
    Ok(Progress::More)
}

/// Sends the notification on one channel.
async fn send(env: &Env, notification: &Notification, user: &User, channel: Channel) -> Result<(), SendError> {
    match channel {
        Channel::Email => {
            let (Some(mailer), Some(address)) = (&env.mailer, &user.email) else {
                return Err(SendError::permanent("email is not available"));
            };
            let content = EmailContent {
                subject: &notification.subject,
                text: &notification.body_text,
                html: notification.body_html.as_deref(),
                support_email: &env.support_email,
            };
            mailer.send(address, user.name.as_deref(), &content).await
        }
        Channel::Sms => {
            let text = plan::sms_text(notification.sms_text.as_deref(), &notification.body_text);
            env.sms.send(&user.phone, &text).await
        }
    }
}

/// The driver's choice of channels and whether each can reach them.
fn routes(env: &Env, user: &User) -> (Route, Route) {
    let email_unavailable = if env.mailer.is_none() {
        Some("email is not configured")
    } else if user.email.as_deref().is_none_or(str::is_empty) {
        Some("no email address")
    } else {
        None
    };
    let sms_unavailable = user.phone.trim().is_empty().then_some("no phone number");
    (
        Route { chosen: user.notify_email, unavailable: email_unavailable },
        Route { chosen: user.notify_sms, unavailable: sms_unavailable },
    )
}

/// Counts a delivery under way in `kilowatt_notifications_in_flight` while it lives (also when
/// the notifier stops and drops it).
struct InFlight;

impl InFlight {
    fn start() -> Self {
        metrics::gauge!("kilowatt_notifications_in_flight").increment(1.0);
        InFlight
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        metrics::gauge!("kilowatt_notifications_in_flight").decrement(1.0);
    }
}

fn count(channel: Channel, outcome: Outcome) {
    metrics::counter!("kilowatt_notifications_total", "channel" => channel.as_str(), "outcome" => outcome.as_str())
        .increment(1);
}

fn truncate(text: &str, limit: usize) -> String {
    text.chars().take(limit).collect()
}
