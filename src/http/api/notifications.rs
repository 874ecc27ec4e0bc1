//! The signed-in driver's notifications: `GET /api/me/notifications`, newest first, with how
//! each went out by email and by SMS.

use actix_web::{HttpResponse, get, web};
use chrono::{DateTime, Utc};
use kilowatt_actors::store::notifications::{self, Delivery, Notification};
use kilowatt_actors::store::pool;
use serde::Serialize;
use utoipa::ToSchema;

use super::Page;
use crate::auth::Auth;
use crate::http::error::ApiError;
use crate::http::openapi::{Envelope, ErrorEnvelope};
use crate::http::response;
use crate::state::AppState;

/// How a notification went out on one channel.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChannelView {
    /// `sent`, `failed` (see `nextAttemptAt` for a retry) or `skipped` (the channel could not be used).
    pub outcome: String,
    /// Attempts made.
    pub attempts: i32,
    /// When the last attempt was made.
    pub last_attempt_at: DateTime<Utc>,
    /// When the next attempt is due, while it is retried.
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// Each channel's delivery; `null` where the channel was not used.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChannelsView {
    /// Email.
    pub email: Option<ChannelView>,
    /// SMS.
    pub sms: Option<ChannelView>,
}

/// One notification as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NotificationView {
    /// Notification ID.
    pub id: i64,
    /// What it is about, e.g. `booking_slot_started`, `queue_turn`.
    pub kind: String,
    /// Subject.
    pub subject: String,
    /// The message as plain text.
    pub text: String,
    /// `pending` (being delivered), `delivered` or `failed` (no channel got it through).
    pub status: String,
    /// The booking it is about.
    pub booking_id: Option<i64>,
    /// The charging session it is about.
    pub session_id: Option<i64>,
    /// How it went out.
    pub channels: ChannelsView,
    /// When it was made.
    pub created_at: DateTime<Utc>,
}

/// A page of notifications and how many there are in all.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NotificationsPage {
    /// Newest first.
    pub items: Vec<NotificationView>,
    /// Notifications in all.
    pub total: i64,
    /// The page size used.
    pub limit: i64,
    /// The offset used.
    pub offset: i64,
}

/// `GET /api/me/notifications`: the driver's notifications, newest first.
#[utoipa::path(
    tag = "account",
    security(("bearer" = [])),
    params(Page),
    responses(
        (status = 200, description = "A page of notifications", body = Envelope<NotificationsPage>),
        (status = 401, description = "Not signed in", body = ErrorEnvelope),
        (status = 422, description = "Bad limit or offset", body = ErrorEnvelope),
    )
)]
#[get("/api/me/notifications")]
pub async fn list(auth: Auth, page: web::Query<Page>, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let (limit, offset) = page.checked(20, 100)?;
    let mut conn = pool::connection(&state.pool).await?;
    let rows = notifications::for_user(&mut conn, auth.user.id, limit, offset).await?;
    let total = notifications::count_for_user(&mut conn, auth.user.id).await?;
    let items = rows.into_iter().map(|(notification, deliveries)| view(notification, &deliveries)).collect();
    Ok(response::ok(NotificationsPage { items, total, limit, offset }))
}

fn view(notification: Notification, deliveries: &[Delivery]) -> NotificationView {
    NotificationView {
        id: notification.id,
        kind: notification.kind,
        subject: notification.subject,
        text: notification.body_text,
        status: notification.status,
        booking_id: notification.booking_id,
        session_id: notification.session_id,
        channels: ChannelsView { email: channel(deliveries, "email"), sms: channel(deliveries, "sms") },
        created_at: notification.created_at,
    }
}

/// The channel's latest attempt (or its success, if one succeeded) and how many were made.
fn channel(deliveries: &[Delivery], name: &str) -> Option<ChannelView> {
    let attempts: Vec<&Delivery> = deliveries.iter().filter(|d| d.channel == name).collect();
    let shown = attempts.iter().find(|d| d.outcome == "sent").or_else(|| attempts.iter().max_by_key(|d| d.attempt))?;
    Some(ChannelView {
        outcome: shown.outcome.clone(),
        attempts: attempts.iter().filter(|d| d.outcome != "skipped").count() as i32,
        last_attempt_at: shown.attempted_at,
        next_attempt_at: shown.next_attempt_at,
    })
}
