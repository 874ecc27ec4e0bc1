//! The owners' slot monitoring dashboard: `GET /api/vendor/dashboard/slot-monitoring`.
//!
//! Covers the bookings at the owner's stations (every station for admins) whose slot starts
//! within the time range before or after now: counts by status, the no-show, grace-period
//! check-in and completion rates, the fees no-shows forfeited, and the live slots with their
//! grace countdown.

use actix_web::{HttpResponse, get, web};
use chrono::{DateTime, Duration, Utc};
use kilowatt_actors::accounts::Role;
use kilowatt_actors::store::bookings::{self, MonitoringCounts, MonitoringScope};
use kilowatt_actors::store::{pool, stations};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::bookings::slot_state;
use crate::auth::Auth;
use crate::http::error::ApiError;
use crate::http::openapi::{Envelope, ErrorEnvelope};
use crate::http::response;
use crate::state::AppState;

/// At most this many slots are listed.
const MAX_SLOTS: i64 = 500;

/// How far around now to look.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, ToSchema)]
pub enum TimeRange {
    /// Slots starting from an hour ago to an hour ahead.
    #[serde(rename = "1h")]
    Hour,
    /// A day either side (the default).
    #[default]
    #[serde(rename = "24h")]
    Day,
    /// A week either side.
    #[serde(rename = "7d")]
    Week,
}

impl TimeRange {
    /// How far before and after now the range reaches.
    pub fn duration(self) -> Duration {
        match self {
            TimeRange::Hour => Duration::hours(1),
            TimeRange::Day => Duration::hours(24),
            TimeRange::Week => Duration::days(7),
        }
    }
}

/// Dashboard filters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MonitoringQuery {
    /// List only slots in this status (confirmed, grace, checked_in, charging, completed, expired,
    /// cancelled); by default the live ones (confirmed, grace, checked_in, charging). The figures
    /// always cover every status.
    pub status: Option<String>,
    /// Only this station of mine.
    pub station_id: Option<i64>,
    /// `1h`, `24h` (default) or `7d`: slots starting that long before now up to that long after.
    #[param(value_type = Option<String>)]
    pub time_range: Option<TimeRange>,
}

/// Bookings by status.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ByStatus {
    /// Waiting for the slot to start.
    pub confirmed: i64,
    /// Slot started, waiting for the driver to check in.
    pub grace: i64,
    /// Checked in, not charging yet.
    pub checked_in: i64,
    /// Charging.
    pub charging: i64,
    /// Used and over.
    pub completed: i64,
    /// Expired (no-shows).
    pub expired: i64,
    /// Cancelled by the driver.
    pub cancelled: i64,
}

/// Counts the rates are computed from.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    /// Every booking in range.
    pub bookings: i64,
    /// Slots whose outcome is known: the driver showed up (checked in, charging, completed) or
    /// was a no-show. The rates' denominator.
    pub decided: i64,
    /// Drivers who showed up: checked in, charging or completed.
    pub showed_up: i64,
    /// Bookings that expired because nobody checked in by the end of the grace period.
    pub no_shows: i64,
    /// Bookings checked in (app or QR) during their grace period.
    pub checked_in_during_grace: i64,
}

/// Rates in percent (two decimals) of `decided` slots; `null` while none is decided.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Rates {
    /// No-shows ÷ decided × 100.
    pub no_show_rate: Option<f64>,
    /// Checked in during the grace period ÷ decided × 100 (a driver who started charging without
    /// checking in showed up but did not check in).
    pub grace_period_check_in_rate: Option<f64>,
    /// Completed ÷ decided × 100.
    pub completion_rate: Option<f64>,
}

/// Money and time no-shows cost.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Revenue {
    /// Booking fees collected and not refunded, INR (every status).
    #[schema(value_type = String, example = "150.00")]
    pub fees_collected: Decimal,
    /// Revenue lost to no-shows, INR: the booking fees of the slots that expired as no-shows.
    /// Each of those slots held its connector through the grace period and earned only that fee,
    /// which is kept (no refund) — no charging revenue came from it. Compare with
    /// `noShowHeldMinutes` to judge what the held time could have earned.
    #[schema(value_type = String, example = "50.00")]
    pub revenue_lost_to_no_shows: Decimal,
    /// Minutes connectors were held for drivers who did not show up (their grace periods).
    pub no_show_held_minutes: i64,
}

/// The driver of a slot.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SlotDriver {
    /// User ID.
    pub id: i64,
    /// Username.
    pub username: String,
    /// Name, if given.
    pub name: Option<String>,
}

/// One slot's state now.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SlotView {
    /// Booking ID.
    pub booking_id: i64,
    /// The booking's status.
    pub status: String,
    /// Who booked it.
    pub driver: SlotDriver,
    /// Station ID.
    pub station_id: Option<i64>,
    /// Station name.
    pub station_name: Option<String>,
    /// The charge point ID.
    pub charger_id: String,
    /// The connector number.
    pub connector_id: i32,
    /// Slot start.
    pub start_at: DateTime<Utc>,
    /// Slot end.
    pub end_at: DateTime<Utc>,
    /// In the grace period now.
    pub in_grace_period: bool,
    /// When the grace period ends.
    pub grace_ends_at: Option<DateTime<Utc>>,
    /// Seconds left to check in; 0 outside the grace period.
    pub grace_time_remaining: i64,
    /// When the driver checked in.
    pub checked_in_at: Option<DateTime<Utc>>,
    /// `app` or `qr`.
    pub checkin_method: Option<String>,
    /// How the connector is held (accepted, unsupported, ...).
    pub reservation_status: Option<String>,
}

/// The dashboard.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SlotMonitoring {
    /// The range asked for.
    pub time_range: TimeRange,
    /// Slots starting from then...
    pub from: DateTime<Utc>,
    /// ...until then.
    pub to: DateTime<Utc>,
    /// The station asked for, if any.
    pub station_id: Option<i64>,
    /// Bookings by status.
    pub by_status: ByStatus,
    /// Counts.
    pub counts: Counts,
    /// Rates.
    pub rates: Rates,
    /// Money.
    pub revenue: Revenue,
    /// Slots (the live ones, or those with the status asked for), soonest first, at most 500.
    pub slots: Vec<SlotView>,
}

fn percent(part: i64, whole: i64) -> Option<f64> {
    (whole > 0).then(|| (Decimal::from(part) * Decimal::ONE_HUNDRED / Decimal::from(whole)).round_dp(2))?.to_f64()
}

fn figures(c: &MonitoringCounts) -> (ByStatus, Counts, Rates, Revenue) {
    let showed_up = c.checked_in + c.charging + c.completed;
    let decided = showed_up + c.no_shows;
    (
        ByStatus {
            confirmed: c.confirmed,
            grace: c.grace,
            checked_in: c.checked_in,
            charging: c.charging,
            completed: c.completed,
            expired: c.expired,
            cancelled: c.cancelled,
        },
        Counts {
            bookings: c.total,
            decided,
            showed_up,
            no_shows: c.no_shows,
            checked_in_during_grace: c.checked_in_during_grace,
        },
        Rates {
            no_show_rate: percent(c.no_shows, decided),
            grace_period_check_in_rate: percent(c.checked_in_during_grace, decided),
            completion_rate: percent(c.completed, decided),
        },
        Revenue {
            fees_collected: c.fees_collected,
            revenue_lost_to_no_shows: c.no_show_fees,
            no_show_held_minutes: c.no_show_held_minutes.unwrap_or(0),
        },
    )
}

/// `GET /api/vendor/dashboard/slot-monitoring`: bookings at my stations, their figures and live slots.
#[utoipa::path(
    tag = "owner",
    security(("bearer" = [])),
    params(MonitoringQuery),
    responses(
        (status = 200, description = "Bookings whose slot starts within the time range before or after now, at \
            the owner's stations (every station for admins). Rates are percentages of decided slots (the driver \
            showed up or was a no-show). `revenueLostToNoShows` is the sum of the booking fees of no-show \
            bookings: the slots earned only that (kept, not refunded) fee and no charging revenue.",
            body = Envelope<SlotMonitoring>),
        (status = 401, description = "Not signed in", body = ErrorEnvelope),
        (status = 403, description = "Not an owner", body = ErrorEnvelope),
        (status = 404, description = "No such station of yours", body = ErrorEnvelope),
        (status = 422, description = "An unknown status or time range", body = ErrorEnvelope),
    )
)]
#[get("/api/vendor/dashboard/slot-monitoring")]
pub async fn show(
    auth: Auth,
    query: web::Query<MonitoringQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    Ok(response::ok(monitoring(&auth, &state, query.into_inner()).await?))
}

/// The dashboard for the owner's stations (every station for admins), as `query` narrows it;
/// shared by the endpoint and the slot monitoring page.
pub async fn monitoring(auth: &Auth, state: &AppState, query: MonitoringQuery) -> Result<SlotMonitoring, ApiError> {
    auth.require_owner()?;
    let statuses: Vec<&str> = match query.status.as_deref() {
        None => bookings::LIVE.to_vec(),
        Some(status) if bookings::STATUSES.contains(&status) => vec![status],
        Some(status) => return Err(ApiError::validation("status", format!("Unknown status {status:?}."))),
    };
    let mut conn = pool::connection(&state.pool).await?;
    if let Some(station_id) = query.station_id {
        let station = stations::find(&mut conn, station_id).await?;
        if !station.is_some_and(|s| auth.owns(Some(s.owner_id))) {
            return Err(ApiError::not_found("You have no such station."));
        }
    }
    let now = state.clock.now();
    let time_range = query.time_range.unwrap_or_default();
    let scope = MonitoringScope {
        owner_id: (auth.role != Role::Admin).then_some(auth.user.id),
        station_id: query.station_id,
        from: now - time_range.duration(),
        to: now + time_range.duration(),
    };
    let counts = bookings::monitoring_counts(&mut conn, &scope).await?;
    let rows = bookings::monitoring_rows(&mut conn, &scope, &statuses, MAX_SLOTS).await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.booking.id).collect();
    let mut holds = bookings::hold_statuses(&mut conn, &ids).await?;
    let grace = chrono::Duration::from_std(state.config.policy.grace_period).unwrap_or(Duration::MAX);
    let slots = rows
        .into_iter()
        .map(|row| {
            let slot = slot_state(&row, grace, now);
            let b = &row.booking;
            SlotView {
                booking_id: b.id,
                status: b.status.clone(),
                driver: SlotDriver { id: b.user_id, username: row.username.clone(), name: row.driver_name.clone() },
                station_id: row.station.as_ref().map(|s| s.id),
                station_name: row.station.as_ref().map(|s| s.name.clone()),
                charger_id: row.charge_point_id.clone(),
                connector_id: row.connector_number,
                start_at: b.start_at,
                end_at: b.end_at,
                in_grace_period: slot.in_grace_period,
                grace_ends_at: slot.grace_ends_at,
                grace_time_remaining: slot.grace_time_remaining,
                checked_in_at: b.checked_in_at,
                checkin_method: b.checkin_method.clone(),
                reservation_status: holds.remove(&b.id),
            }
        })
        .collect();
    let (by_status, counts, rates, revenue) = figures(&counts);
    Ok(SlotMonitoring {
        time_range,
        from: scope.from,
        to: scope.to,
        station_id: query.station_id,
        by_status,
        counts,
        rates,
        revenue,
        slots,
    })
}
