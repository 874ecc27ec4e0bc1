//! Queries on `notifications` and `notification_deliveries`: a notification is stored before
//! anything is sent, then every delivery attempt per channel is a row of its own. An attempt
//! row is inserted *before* the send (as a claim: `UNIQUE (notification_id, channel, attempt)`
//! lets one node, and one task, make each attempt) and updated with the outcome after it, so a
//! crash mid-send leaves a failed attempt with a retry time and nothing is lost or sent twice
//! by two nodes.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::StoreError;
use super::schema::{notification_deliveries, notifications};

/// A notification as stored.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = notifications, check_for_backend(diesel::pg::Pg))]
pub struct Notification {
    /// Notification ID.
    pub id: i64,
    /// The driver it is for.
    pub user_id: i64,
    /// A stable kind, e.g. `booking_slot_started`.
    pub kind: String,
    /// Email subject.
    pub subject: String,
    /// Plain-text body.
    pub body_text: String,
    /// HTML body, if the sender gave one.
    pub body_html: Option<String>,
    /// SMS text, if the sender gave one.
    pub sms_text: Option<String>,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    /// The booking it is about.
    pub booking_id: Option<i64>,
    /// The session it is about.
    pub session_id: Option<i64>,
    /// When it was stored.
    pub created_at: DateTime<Utc>,
    /// Last change of status.
    pub updated_at: DateTime<Utc>,
}

/// A notification to store.
#[derive(Debug, Insertable)]
#[diesel(table_name = notifications)]
pub struct NewNotification<'a> {
    /// The driver.
    pub user_id: i64,
    /// Its kind.
    pub kind: &'a str,
    /// Email subject.
    pub subject: &'a str,
    /// Plain-text body.
    pub body_text: &'a str,
    /// HTML body.
    pub body_html: Option<&'a str>,
    /// SMS text.
    pub sms_text: Option<&'a str>,
    /// The booking it is about.
    pub booking_id: Option<i64>,
    /// The session it is about.
    pub session_id: Option<i64>,
    /// Now.
    pub created_at: DateTime<Utc>,
    /// Now.
    pub updated_at: DateTime<Utc>,
}

/// One delivery attempt as stored.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = notification_deliveries, check_for_backend(diesel::pg::Pg))]
pub struct Delivery {
    /// Row ID.
    pub id: i64,
    /// The notification.
    pub notification_id: i64,
    /// `email` or `sms`.
    pub channel: String,
    /// 1, 2, … per channel.
    pub attempt: i32,
    /// `sent`, `failed` or `skipped`.
    pub outcome: String,
    /// Why it failed or was skipped.
    pub error: Option<String>,
    /// When it was made.
    pub attempted_at: DateTime<Utc>,
    /// When the next attempt is due; `None` once the channel is finished.
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// A delivery attempt to record.
#[derive(Debug, Insertable)]
#[diesel(table_name = notification_deliveries)]
pub struct NewDelivery<'a> {
    /// The notification.
    pub notification_id: i64,
    /// `email` or `sms`.
    pub channel: &'a str,
    /// 1, 2, … per channel.
    pub attempt: i32,
    /// `sent`, `failed` or `skipped`.
    pub outcome: &'a str,
    /// Why it failed or was skipped.
    pub error: Option<&'a str>,
    /// Now.
    pub attempted_at: DateTime<Utc>,
    /// When the next attempt is due.
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// Stores a notification and answers its ID, or `None` when one of the same kind about the
/// same booking is already stored (a repeat is not an error: it is simply not sent again).
pub async fn insert(conn: &mut AsyncPgConnection, new: &NewNotification<'_>) -> Result<Option<i64>, StoreError> {
    Ok(diesel::insert_into(notifications::table)
        .values(new)
        .on_conflict_do_nothing()
        .returning(notifications::id)
        .get_result(conn)
        .await
        .optional()?)
}

/// IDs of the notifications still being delivered, oldest first.
pub async fn pending_ids(conn: &mut AsyncPgConnection) -> Result<Vec<i64>, StoreError> {
    Ok(notifications::table
        .filter(notifications::status.eq("pending"))
        .order(notifications::id.asc())
        .select(notifications::id)
        .load(conn)
        .await?)
}

/// A notification with its delivery attempts (by channel, then attempt).
pub async fn find(conn: &mut AsyncPgConnection, id: i64) -> Result<Option<(Notification, Vec<Delivery>)>, StoreError> {
    let Some(notification) =
        notifications::table.find(id).select(Notification::as_select()).first(conn).await.optional()?
    else {
        return Ok(None);
    };
    let deliveries = notification_deliveries::table
        .filter(notification_deliveries::notification_id.eq(id))
        .order((notification_deliveries::channel.asc(), notification_deliveries::attempt.asc()))
        .select(Delivery::as_select())
        .load(conn)
        .await?;
    Ok(Some((notification, deliveries)))
}

/// Records an attempt unless that attempt number on that channel is already recorded;
/// answers whether this call recorded it (the caller then owns the attempt). The retry the
/// channel's earlier attempts scheduled is now under way, so their `next_attempt_at` is
/// cleared: only a channel's latest attempt ever shows a retry.
pub async fn record_attempt(conn: &mut AsyncPgConnection, new: &NewDelivery<'_>) -> Result<bool, StoreError> {
    let inserted =
        diesel::insert_into(notification_deliveries::table).values(new).on_conflict_do_nothing().execute(conn).await?;
    if inserted == 0 {
        return Ok(false);
    }
    diesel::update(
        notification_deliveries::table
            .filter(notification_deliveries::notification_id.eq(new.notification_id))
            .filter(notification_deliveries::channel.eq(new.channel))
            .filter(notification_deliveries::attempt.lt(new.attempt))
            .filter(notification_deliveries::next_attempt_at.is_not_null()),
    )
    .set(notification_deliveries::next_attempt_at.eq(None::<DateTime<Utc>>))
    .execute(conn)
    .await?;
    Ok(true)
}

/// Sets the outcome of a recorded attempt.
pub async fn set_outcome(
    conn: &mut AsyncPgConnection,
    notification_id: i64,
    channel: &str,
    attempt: i32,
    outcome: &str,
    error: Option<&str>,
    next_attempt_at: Option<DateTime<Utc>>,
) -> Result<(), StoreError> {
    diesel::update(
        notification_deliveries::table
            .filter(notification_deliveries::notification_id.eq(notification_id))
            .filter(notification_deliveries::channel.eq(channel))
            .filter(notification_deliveries::attempt.eq(attempt)),
    )
    .set((
        notification_deliveries::outcome.eq(outcome),
        notification_deliveries::error.eq(error),
        notification_deliveries::next_attempt_at.eq(next_attempt_at),
    ))
    .execute(conn)
    .await?;
    Ok(())
}

/// Moves a pending notification to its final `status` (`delivered` or `failed`); retries
/// still scheduled on any channel are called off. Answers whether it was still pending.
pub async fn finish(
    conn: &mut AsyncPgConnection,
    id: i64,
    status: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let updated = diesel::update(notifications::table.find(id).filter(notifications::status.eq("pending")))
        .set((notifications::status.eq(status), notifications::updated_at.eq(now)))
        .execute(conn)
        .await?;
    diesel::update(
        notification_deliveries::table
            .filter(notification_deliveries::notification_id.eq(id))
            .filter(notification_deliveries::next_attempt_at.is_not_null()),
    )
    .set(notification_deliveries::next_attempt_at.eq(None::<DateTime<Utc>>))
    .execute(conn)
    .await?;
    Ok(updated == 1)
}

/// A page of `user_id`'s notifications, newest first, each with its delivery attempts.
pub async fn for_user(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    limit: i64,
    offset: i64,
) -> Result<Vec<(Notification, Vec<Delivery>)>, StoreError> {
    let page: Vec<Notification> = notifications::table
        .filter(notifications::user_id.eq(user_id))
        .order(notifications::id.desc())
        .limit(limit)
        .offset(offset)
        .select(Notification::as_select())
        .load(conn)
        .await?;
    let ids: Vec<i64> = page.iter().map(|n| n.id).collect();
    let mut deliveries: Vec<Delivery> = notification_deliveries::table
        .filter(notification_deliveries::notification_id.eq_any(&ids))
        .order((notification_deliveries::channel.asc(), notification_deliveries::attempt.asc()))
        .select(Delivery::as_select())
        .load(conn)
        .await?;
    Ok(page
        .into_iter()
        .map(|notification| {
            let (mine, rest) = deliveries.drain(..).partition(|d| d.notification_id == notification.id);
            deliveries = rest;
            (notification, mine)
        })
        .collect())
}

/// How many notifications `user_id` has.
pub async fn count_for_user(conn: &mut AsyncPgConnection, user_id: i64) -> Result<i64, StoreError> {
    Ok(notifications::table.filter(notifications::user_id.eq(user_id)).count().get_result(conn).await?)
}
