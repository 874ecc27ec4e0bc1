//! Slot bookings: `POST/GET /api/users/bookings`, `GET/DELETE /api/users/bookings/{bookingId}`,
//! `PUT /api/users/bookings/{bookingId}/checkin`, and for owners the QR check-in code of a
//! charger, `GET /api/chargers/{chargePointId}/checkin-code`.
//!
//! Booking debits the fee in the transaction that inserts the booking; the booking's timer
//! (`kilowatt_actors::booking`) does the rest: slot start, grace period, hold, expiry. A QR
//! check-in proves presence with a code only the charger shows: an HMAC-SHA256, under the
//! server's secret key, of the charge point, the connector and a 10-minute time window.

use std::sync::OnceLock;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, delete, get, post, put, web};
use chrono::{DateTime, Duration, TimeZone, Utc};
use kilowatt_actors::booking::{self as timers, Track};
use kilowatt_actors::store::bookings::{self, BookError, BookingRow, Cancel, CheckIn, NewBooking};
use kilowatt_actors::store::{chargers, pool};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Auth;
use crate::http::error::ApiError;
use crate::http::ocpp::valid_charge_point_id;
use crate::http::openapi::{Envelope, ErrorEnvelope};
use crate::http::response;
use crate::state::AppState;

/// Shortest and longest slot, minutes.
pub const DURATION_MINUTES: std::ops::RangeInclusive<i64> = 15..=480;
/// How far ahead a slot can be booked, days.
pub const MAX_DAYS_AHEAD: i64 = 30;
/// A QR check-in code is issued per window of this many seconds and accepted for the current
/// and the previous window.
pub const CHECKIN_WINDOW_SECONDS: i64 = 600;

/// A booking request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewBookingBody {
    /// The charge point ID.
    #[schema(example = "CP-001")]
    pub charger_id: String,
    /// The connector (1..n).
    #[schema(example = 1)]
    pub connector_id: i32,
    /// Slot start, in the future (RFC 3339).
    pub start_at: DateTime<Utc>,
    /// Slot length, 15 to 480 minutes.
    #[schema(example = 60)]
    pub duration_minutes: i64,
}

/// Where a booking is.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BookingStation {
    /// Station ID.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Street address.
    pub address: String,
}

/// Where a booked slot stands now.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SlotState {
    /// The slot start time has come.
    pub started: bool,
    /// When Kilowatt started the slot (notified the driver, reserved the connector).
    pub started_at: Option<DateTime<Utc>>,
    /// The slot has started and the driver may still check in.
    pub in_grace_period: bool,
    /// When the grace period ends (slot start + the configured grace period).
    pub grace_ends_at: Option<DateTime<Utc>>,
    /// Seconds left to check in; 0 outside the grace period.
    pub grace_time_remaining: i64,
    /// The slot has started and the driver has not checked in yet.
    pub overdue: bool,
    /// The booking expired (the driver did not check in by the end of the grace period).
    pub expired: bool,
    /// When it expired.
    pub expired_at: Option<DateTime<Utc>>,
    /// Why (`no_show`).
    pub expired_reason: Option<String>,
    /// When the driver checked in.
    pub checked_in_at: Option<DateTime<Utc>>,
    /// `app` or `qr`.
    pub checkin_method: Option<String>,
}

/// A booking as its driver sees it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BookingView {
    /// Booking ID.
    pub id: i64,
    /// confirmed, grace, checked_in, charging, completed, expired or cancelled.
    pub status: String,
    /// The charge point ID.
    pub charger_id: String,
    /// The connector number.
    pub connector_id: i32,
    /// The station.
    pub station: Option<BookingStation>,
    /// Slot start.
    pub start_at: DateTime<Utc>,
    /// Slot end.
    pub end_at: DateTime<Utc>,
    /// Slot length, minutes.
    pub duration_minutes: i64,
    /// The booking fee paid, INR.
    #[schema(value_type = String, example = "50.00")]
    pub fee: Decimal,
    /// Cancelling until then refunds the fee in full; later, nothing is refunded.
    pub refundable_until: DateTime<Utc>,
    /// The slot's state now.
    pub slot: SlotState,
    /// How the connector is held for the slot: requested, accepted (by the charger too),
    /// unsupported (held by Kilowatt only), rejected, used, cancelled or expired.
    pub reservation_status: Option<String>,
    /// When the driver cancelled it.
    pub cancelled_at: Option<DateTime<Utc>>,
    /// What the cancellation refunded, INR.
    #[schema(value_type = Option<String>, example = "50.00")]
    pub refund_amount: Option<Decimal>,
    /// Booked at.
    pub created_at: DateTime<Utc>,
}

/// The slot state of a booking at `now`.
pub fn slot_state(row: &BookingRow, grace_period: Duration, now: DateTime<Utc>) -> SlotState {
    let b = &row.booking;
    let started = now >= b.start_at;
    let waiting = matches!(b.status.as_str(), "confirmed" | "grace");
    let grace_ends_at = b.grace_ends_at.or_else(|| started.then(|| b.start_at + grace_period));
    let in_grace_period = started && waiting && grace_ends_at.is_some_and(|end| now < end);
    SlotState {
        started,
        started_at: b.slot_started_at,
        in_grace_period,
        grace_ends_at,
        grace_time_remaining: match grace_ends_at {
            Some(end) if in_grace_period => (end - now).num_seconds().max(0),
            _ => 0,
        },
        overdue: started && waiting,
        expired: b.status == "expired",
        expired_at: b.expired_at,
        expired_reason: b.expired_reason.clone(),
        checked_in_at: b.checked_in_at,
        checkin_method: b.checkin_method.clone(),
    }
}

impl BookingView {
    fn new(row: BookingRow, reservation_status: Option<String>, state: &AppState) -> Self {
        let (grace, cutoff) = policy(state);
        let slot = slot_state(&row, grace, state.clock.now());
        let b = row.booking;
        BookingView {
            id: b.id,
            status: b.status,
            charger_id: row.charge_point_id,
            connector_id: row.connector_number,
            station: row.station.map(|s| BookingStation { id: s.id, name: s.name, address: s.address }),
            start_at: b.start_at,
            end_at: b.end_at,
            duration_minutes: (b.end_at - b.start_at).num_minutes(),
            fee: b.fee,
            refundable_until: b.start_at - cutoff,
            slot,
            reservation_status,
            cancelled_at: b.cancelled_at,
            refund_amount: b.refund_amount,
            created_at: b.created_at,
        }
    }
}

/// The grace period and the refund cutoff, as chrono durations.
pub fn policy(state: &AppState) -> (Duration, Duration) {
    let to_chrono = |d: std::time::Duration| Duration::from_std(d).unwrap_or(Duration::MAX);
    (to_chrono(state.config.policy.grace_period), to_chrono(state.config.policy.booking_refund_cutoff))
}

/// One booking of the driver's, as a view; 404 when it is not theirs.
async fn view_of(state: &AppState, auth: &Auth, booking_id: i64) -> Result<BookingView, ApiError> {
    let mut conn = pool::connection(&state.pool).await?;
    let row = bookings::find(&mut conn, booking_id)
        .await?
        .filter(|row| row.booking.user_id == auth.user.id)
        .ok_or_else(|| ApiError::not_found("You have no such booking."))?;
    let mut holds = bookings::hold_statuses(&mut conn, &[booking_id]).await?;
    Ok(BookingView::new(row, holds.remove(&booking_id), state))
}

fn booking_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse().map_err(|_| ApiError::validation("bookingId", "A booking ID is a number."))
}

/// `POST /api/users/bookings`: book a slot on a connector; the fee is debited at once.
#[utoipa::path(
    tag = "bookings",
    security(("bearer" = [])),
    request_body = NewBookingBody,
    responses(
        (status = 201, description = "Booked; the fee was debited from the wallet", body = Envelope<BookingView>),
        (status = 401, description = "Not signed in", body = ErrorEnvelope),
        (status = 402, description = "`insufficient_balance`: the wallet cannot pay the booking fee", body = ErrorEnvelope),
        (status = 404, description = "No such charger or connector", body = ErrorEnvelope),
        (status = 409, description = "`slot_taken`: another booking overlaps the slot on this connector; \
            `booking_overlaps`: you have another booking at that time; `charger_unavailable`", body = ErrorEnvelope),
        (status = 422, description = "A field is invalid (a slot in the past, too long, too far ahead)", body = ErrorEnvelope),
    )
)]
#[post("/api/users/bookings")]
pub async fn create(
    auth: Auth,
    body: web::Json<NewBookingBody>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    Ok(response::created(create_booking(&state, &auth, body.into_inner()).await?))
}

/// Books a slot and debits the fee, as `POST /api/users/bookings` and the booking form do:
/// 422 for a bad field (named in the error), 404 for an unknown connector, 402
/// `insufficient_balance`, 409 `slot_taken`, `booking_overlaps` or `charger_unavailable`.
pub async fn create_booking(state: &AppState, auth: &Auth, body: NewBookingBody) -> Result<BookingView, ApiError> {
    let now = state.clock.now();
    if !valid_charge_point_id(&body.charger_id) {
        return Err(ApiError::validation("chargerId", "This is not a charge point ID."));
    }
    if body.connector_id < 1 {
        return Err(ApiError::validation("connectorId", "Connectors are numbered from 1."));
    }
    if !DURATION_MINUTES.contains(&body.duration_minutes) {
        return Err(ApiError::validation(
            "durationMinutes",
            format!("A slot lasts {} to {} minutes.", DURATION_MINUTES.start(), DURATION_MINUTES.end()),
        ));
    }
    if body.start_at <= now {
        return Err(ApiError::validation("startAt", "This time is in the past: book a slot that starts later."));
    }
    if body.start_at > now + Duration::days(MAX_DAYS_AHEAD) {
        return Err(ApiError::validation("startAt", format!("Slots can be booked up to {MAX_DAYS_AHEAD} days ahead.")));
    }
    let mut conn = pool::connection(&state.pool).await?;
    let target = bookings::slot_target(&mut conn, &body.charger_id, body.connector_id).await?.ok_or_else(|| {
        ApiError::not_found(format!("No connector {} on charger {}.", body.connector_id, body.charger_id))
    })?;
    if target.registration_status != "accepted" || target.station_id.is_none() || target.station_active != Some(true) {
        return Err(ApiError::conflict("charger_unavailable", "This charger is not open for bookings."));
    }
    let new = NewBooking {
        user_id: auth.user.id,
        charger_id: target.charger_id,
        connector_id: target.connector_id,
        start_at: body.start_at,
        end_at: body.start_at + Duration::minutes(body.duration_minutes),
        fee: target.booking_fee.unwrap_or(state.config.policy.booking_fee),
    };
    let booking = bookings::create(&mut conn, &new, now).await.map_err(|error| match error {
        BookError::SlotTaken => {
            ApiError::conflict("slot_taken", "This connector is already booked for part of that time.")
        }
        BookError::DriverBusy => ApiError::conflict("booking_overlaps", "You already have a booking at that time."),
        BookError::InsufficientBalance { needed, available } => ApiError::new(
            StatusCode::PAYMENT_REQUIRED,
            "insufficient_balance",
            format!("The booking fee is ₹{needed} and your wallet holds ₹{available}. Recharge and try again."),
        ),
        BookError::Store(error) => error.into(),
    })?;
    drop(conn);
    tracing::info!(user_id = auth.user.id, booking_id = booking.id, charge_point_id = %body.charger_id, "slot booked");
    state.bookings.do_send(Track(booking.id));
    view_of(state, auth, booking.id).await
}

/// Which bookings to list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only this status.
    status: Option<String>,
    /// At most 100; default 50.
    limit: Option<i64>,
    /// Default 0.
    offset: Option<i64>,
}

/// A page of bookings.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BookingPage {
    /// Latest slot first.
    pub bookings: Vec<BookingView>,
    /// Bookings matching in all.
    pub total: i64,
    /// The page size used.
    pub limit: i64,
    /// The offset used.
    pub offset: i64,
}

/// `GET /api/users/bookings`: my bookings with their slot states, latest slot first.
#[utoipa::path(
    tag = "bookings",
    security(("bearer" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "A page of bookings", body = Envelope<BookingPage>),
        (status = 401, description = "Not signed in", body = ErrorEnvelope),
        (status = 422, description = "A bad status, limit or offset", body = ErrorEnvelope),
    )
)]
#[get("/api/users/bookings")]
pub async fn list(
    auth: Auth,
    query: web::Query<ListQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let limit = query.limit.unwrap_or(50);
    let offset = query.offset.unwrap_or(0);
    Ok(response::ok(list_bookings(&state, &auth, query.status.as_deref(), limit, offset).await?))
}

/// A page of the driver's bookings with their slot states, latest slot first, as
/// `GET /api/users/bookings` and the bookings page show them; 422 for a bad status, limit or offset.
pub async fn list_bookings(
    state: &AppState,
    auth: &Auth,
    status: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<BookingPage, ApiError> {
    if !(1..=100).contains(&limit) {
        return Err(ApiError::validation("limit", "limit is 1 to 100."));
    }
    if offset < 0 {
        return Err(ApiError::validation("offset", "offset is 0 or more."));
    }
    if let Some(status) = status.filter(|s| !bookings::STATUSES.contains(s)) {
        return Err(ApiError::validation("status", format!("Unknown status {status:?}.")));
    }
    let mut conn = pool::connection(&state.pool).await?;
    let (rows, total) = bookings::list_for_user(&mut conn, auth.user.id, status, limit, offset).await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.booking.id).collect();
    let mut holds = bookings::hold_statuses(&mut conn, &ids).await?;
    let bookings = rows
        .into_iter()
        .map(|row| {
            let hold = holds.remove(&row.booking.id);
            BookingView::new(row, hold, state)
        })
        .collect();
    Ok(BookingPage { bookings, total, limit, offset })
}

/// `GET /api/users/bookings/{bookingId}`: one of my bookings with its slot state.
#[utoipa::path(
    tag = "bookings",
    security(("bearer" = [])),
    params(("bookingId" = i64, Path, description = "The booking")),
    responses(
        (status = 200, description = "The booking", body = Envelope<BookingView>),
        (status = 401, description = "Not signed in", body = ErrorEnvelope),
        (status = 404, description = "No such booking of yours", body = ErrorEnvelope),
    )
)]
#[get("/api/users/bookings/{bookingId}")]
pub async fn show(auth: Auth, path: web::Path<String>, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let id = booking_id(&path)?;
    Ok(response::ok(view_of(&state, &auth, id).await?))
}

/// How the driver checks in.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CheckInMethod {
    /// In the app.
    App,
    /// By scanning the charger's QR code (needs its `code`).
    Qr,
}

/// A check-in.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CheckInBody {
    /// `app` or `qr`.
    method: CheckInMethod,
    /// For `qr`: the code the charger's QR code carries.
    code: Option<String>,
}

/// `PUT /api/users/bookings/{bookingId}/checkin`: check in during the grace period.
#[utoipa::path(
    tag = "bookings",
    security(("bearer" = [])),
    params(("bookingId" = i64, Path, description = "The booking")),
    request_body = CheckInBody,
    responses(
        (status = 200, description = "Checked in (or already was): the countdown stops and the reserved \
            connector is yours to start charging on", body = Envelope<BookingView>),
        (status = 401, description = "Not signed in", body = ErrorEnvelope),
        (status = 403, description = "`invalid_checkin_code`: the QR code is not this charger's current one", body = ErrorEnvelope),
        (status = 404, description = "No such booking of yours", body = ErrorEnvelope),
        (status = 409, description = "`slot_not_started`, `booking_expired` (the grace period is over) or \
            `booking_closed` (cancelled or completed)", body = ErrorEnvelope),
        (status = 422, description = "`qr` without a code", body = ErrorEnvelope),
    )
)]
#[put("/api/users/bookings/{bookingId}/checkin")]
pub async fn check_in(
    auth: Auth,
    path: web::Path<String>,
    body: web::Json<CheckInBody>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = booking_id(&path)?;
    Ok(response::ok(check_in_booking(&state, &auth, id, body.method, body.code.as_deref()).await?))
}

/// Checks the driver in to their booking during its grace period, as
/// `PUT /api/users/bookings/{bookingId}/checkin` and the bookings page's Check in do.
pub async fn check_in_booking(
    state: &AppState,
    auth: &Auth,
    id: i64,
    method: CheckInMethod,
    code: Option<&str>,
) -> Result<BookingView, ApiError> {
    let now = state.clock.now();
    let mut conn = pool::connection(&state.pool).await?;
    let row = bookings::find(&mut conn, id)
        .await?
        .filter(|row| row.booking.user_id == auth.user.id)
        .ok_or_else(|| ApiError::not_found("You have no such booking."))?;
    let method = match method {
        CheckInMethod::App => "app",
        CheckInMethod::Qr => {
            let code = code.map(str::trim).filter(|c| !c.is_empty());
            let code =
                code.ok_or_else(|| ApiError::validation("code", "Scan the charger's QR code: its code is missing."))?;
            if !checkin_code_valid(state, &row.charge_point_id, row.connector_number, code, now) {
                tracing::info!(user_id = auth.user.id, booking_id = id, "QR check-in with an invalid code");
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "invalid_checkin_code",
                    "This QR code is not the current code of your booked charger. Scan the code on the charger again.",
                ));
            }
            "qr"
        }
    };
    let (grace, _) = policy(state);
    match bookings::check_in(&mut conn, id, auth.user.id, method, grace, now).await? {
        CheckIn::CheckedIn(booking) => {
            tracing::info!(user_id = auth.user.id, booking_id = id, method, "checked in");
            timers::publish(&state.bus, &row, &booking);
            state.bookings.do_send(Track(id));
        }
        CheckIn::Already(_) => {}
        CheckIn::NotStarted(booking) => {
            return Err(ApiError::conflict(
                "slot_not_started",
                format!("Your slot starts at {}; check in from then.", booking.start_at.format("%H:%M UTC")),
            ));
        }
        CheckIn::Closed(status) if status == "expired" => {
            state.bookings.do_send(Track(id));
            return Err(ApiError::conflict("booking_expired", "The grace period is over: this booking has expired."));
        }
        CheckIn::Closed(status) => {
            return Err(ApiError::conflict("booking_closed", format!("This booking is {status}.")));
        }
        CheckIn::Missing => return Err(ApiError::not_found("You have no such booking.")),
    }
    drop(conn);
    view_of(state, auth, id).await
}

/// `DELETE /api/users/bookings/{bookingId}`: cancel a booking.
#[utoipa::path(
    tag = "bookings",
    security(("bearer" = [])),
    params(("bookingId" = i64, Path, description = "The booking")),
    responses(
        (status = 200, description = "Cancelled. The fee is refunded in full when cancelled at least the \
            configured cutoff (`refundableUntil`) before the slot starts, and not at all later; a slot in its \
            grace period can be cancelled too (no refund), freeing the connector", body = Envelope<BookingView>),
        (status = 401, description = "Not signed in", body = ErrorEnvelope),
        (status = 404, description = "No such booking of yours", body = ErrorEnvelope),
        (status = 409, description = "`booking_closed`: it already expired, completed or was cancelled; \
            `booking_in_use`: you checked in or are charging", body = ErrorEnvelope),
    )
)]
#[delete("/api/users/bookings/{bookingId}")]
pub async fn cancel(auth: Auth, path: web::Path<String>, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let id = booking_id(&path)?;
    Ok(response::ok(cancel_booking(&state, &auth, id).await?))
}

/// Cancels the driver's booking, refunding the fee per the cutoff, as
/// `DELETE /api/users/bookings/{bookingId}` and the bookings page's Cancel do.
pub async fn cancel_booking(state: &AppState, auth: &Auth, id: i64) -> Result<BookingView, ApiError> {
    let (_, cutoff) = policy(state);
    let mut conn = pool::connection(&state.pool).await?;
    match bookings::cancel(&mut conn, id, auth.user.id, cutoff, state.clock.now()).await? {
        Cancel::Cancelled { refund } => {
            tracing::info!(user_id = auth.user.id, booking_id = id, %refund, "booking cancelled");
            if let Some(row) = bookings::find(&mut conn, id).await? {
                timers::publish(&state.bus, &row, &row.booking);
            }
            state.bookings.do_send(Track(id));
        }
        Cancel::NotCancellable(status) if status == "checked_in" || status == "charging" => {
            return Err(ApiError::conflict("booking_in_use", "You have checked in: this booking is in use."));
        }
        Cancel::NotCancellable(status) => {
            return Err(ApiError::conflict("booking_closed", format!("This booking is {status}.")));
        }
        Cancel::Missing => return Err(ApiError::not_found("You have no such booking.")),
    }
    drop(conn);
    view_of(state, auth, id).await
}

/// The check-in code query.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CodeQuery {
    /// The connector whose code to show; absent or 0: one code for every connector of the charger.
    connector_id: Option<i32>,
}

/// A charger's current QR check-in code.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckInCode {
    /// The charge point ID.
    pub charger_id: String,
    /// The connector it is for (0: any connector of the charger).
    pub connector_id: i32,
    /// What the QR code carries; a driver's app sends it as `code` with method `qr`.
    pub code: String,
    /// Issued for the window starting then.
    pub valid_from: DateTime<Utc>,
    /// Accepted until then (the end of the next window); show a new code every window.
    pub valid_until: DateTime<Utc>,
    /// Length of a window, seconds.
    pub window_seconds: i64,
}

/// `GET /api/chargers/{chargePointId}/checkin-code`: the code the charger's QR code carries now
/// (for the charger's screen or the owner's display), for the charger's owner.
#[utoipa::path(
    tag = "bookings",
    security(("bearer" = [])),
    params(("chargePointId" = String, Path, description = "The charge point ID"), CodeQuery),
    responses(
        (status = 200, description = "The current code; it changes every window and is accepted for the \
            current and the previous one", body = Envelope<CheckInCode>),
        (status = 401, description = "Not signed in", body = ErrorEnvelope),
        (status = 403, description = "Not an owner", body = ErrorEnvelope),
        (status = 404, description = "No such charger of yours", body = ErrorEnvelope),
        (status = 422, description = "Not a valid charge point ID or connector", body = ErrorEnvelope),
    )
)]
#[get("/api/chargers/{chargePointId}/checkin-code")]
pub async fn checkin_code(
    auth: Auth,
    path: web::Path<String>,
    query: web::Query<CodeQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    auth.require_owner()?;
    let charge_point_id = path.into_inner();
    if !valid_charge_point_id(&charge_point_id) {
        return Err(ApiError::validation("chargePointId", "This is not a charge point ID."));
    }
    let connector_id = query.connector_id.unwrap_or(0);
    if connector_id < 0 {
        return Err(ApiError::validation("connectorId", "Connectors are numbered from 1 (0: any)."));
    }
    let mut conn = pool::connection(&state.pool).await?;
    let charger = chargers::find_owned(&mut conn, &charge_point_id)
        .await?
        .filter(|c| auth.owns(c.owner_id()))
        .ok_or_else(|| ApiError::not_found("You have no such charger."))?;
    let window = window_of(state.clock.now());
    let valid_from = Utc.timestamp_opt(window * CHECKIN_WINDOW_SECONDS, 0).single().unwrap_or_default();
    Ok(response::ok(CheckInCode {
        code: checkin_code_for(&state, &charger.charger.charge_point_id, connector_id, window),
        charger_id: charger.charger.charge_point_id,
        connector_id,
        valid_from,
        valid_until: valid_from + Duration::seconds(2 * CHECKIN_WINDOW_SECONDS),
        window_seconds: CHECKIN_WINDOW_SECONDS,
    }))
}

fn window_of(now: DateTime<Utc>) -> i64 {
    now.timestamp().div_euclid(CHECKIN_WINDOW_SECONDS)
}

/// The key codes are signed with: the configured secret, or (with none configured) a random
/// key for this process, so a fresh install works on one node until it restarts.
fn checkin_key(state: &AppState) -> Vec<u8> {
    let configured = state.config.secret_key.expose();
    if !configured.is_empty() {
        return configured.as_bytes().to_vec();
    }
    static FALLBACK: OnceLock<[u8; 32]> = OnceLock::new();
    FALLBACK
        .get_or_init(|| {
            tracing::warn!(
                "KILOWATT_SECRET_KEY is not set: QR check-in codes use a random key, valid on this node until it restarts"
            );
            // A fresh random token's hash: 32 random-looking bytes from the accounts' generator.
            kilowatt_actors::accounts::new_token().1
        })
        .to_vec()
}

/// The code for a charger's connector in a time window: 32 hex digits of
/// HMAC-SHA256(key, "checkin:{chargePointId}:{connector}:{window}").
fn checkin_code_for(state: &AppState, charge_point_id: &str, connector: i32, window: i64) -> String {
    let mac = hmac_sha256(&checkin_key(state), format!("checkin:{charge_point_id}:{connector}:{window}").as_bytes());
    mac[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `code` is the connector's (or the whole charger's) code for the current or the
/// previous window. Compared in constant time.
fn checkin_code_valid(state: &AppState, charge_point_id: &str, connector: i32, code: &str, now: DateTime<Utc>) -> bool {
    let code = code.to_ascii_lowercase();
    let window = window_of(now);
    let mut valid = false;
    for w in [window, window - 1] {
        for c in [connector, 0] {
            valid |= constant_time_eq(checkin_code_for(state, charge_point_id, c, w).as_bytes(), code.as_bytes());
        }
    }
    valid
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// HMAC-SHA256 (RFC 2104) over `sha2`: twelve lines, so no extra crate for one use.
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let inner = Sha256::new().chain_update(block.map(|b| b ^ 0x36)).chain_update(message).finalize();
    Sha256::new().chain_update(block.map(|b| b ^ 0x5c)).chain_update(inner).finalize().into()
}

#[cfg(test)]
mod tests {
    use super::hmac_sha256;

    #[test]
    fn hmac_matches_rfc_4231_test_cases() {
        let hex = |bytes: [u8; 32]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
        assert_eq!(
            hex(hmac_sha256(&[0x0b; 20], b"Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        assert_eq!(
            hex(hmac_sha256(&[0xaa; 131], b"Test Using Larger Than Block-Size Key - Hash Key First")),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }
}
