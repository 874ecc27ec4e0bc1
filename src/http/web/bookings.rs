//! The driver's bookings pages: `GET /bookings` (their slots with state badges, a live
//! countdown to the slot start or the end of the grace period, Check in and Cancel),
//! `GET /bookings/new` (the booking form, prefilled from the query, as the charger page's
//! "Book a slot" links to it) and `POST /bookings` (book; errors next to their fields). Every
//! action goes through the same functions as `/api/users/bookings`, so the rules (fee, refund
//! cutoff, grace period, check-in window) are the API's.
//!
//! Times are stored and sent in UTC; the form takes the browser's local date and time with its
//! UTC offset in a hidden field (set by the page script; without it the form is in UTC), and
//! pages show UTC in `<time>` elements that the script rewrites into local time.

use actix_web::ResponseError;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::{DateTime, Duration, NaiveDate, NaiveTime, SecondsFormat, Utc};
use kilowatt_actors::store::{bookings, pool, wallets};
use serde::Deserialize;

use super::FieldErrors;
use super::dashboard::inr;
use super::session::{Chrome, WebError, WebSession, html, see_other};
use crate::http::api::bookings::{
    BookingView, CheckInMethod, DURATION_MINUTES, MAX_DAYS_AHEAD, NewBookingBody, cancel_booking, check_in_booking,
    create_booking, list_bookings, policy,
};
use crate::http::error::ApiError;
use crate::http::ocpp::valid_charge_point_id;
use crate::state::AppState;

/// Registers the bookings pages.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/bookings", web::get().to(show))
        .route("/bookings", web::post().to(create))
        .route("/bookings/new", web::get().to(new_form))
        .route("/bookings/{id}/checkin", web::post().to(check_in))
        .route("/bookings/{id}/cancel", web::post().to(cancel));
}

/// Slot lengths the form offers, minutes (the API takes 15 to 480).
const DURATIONS: [i64; 10] = [15, 30, 45, 60, 90, 120, 180, 240, 360, 480];

/// How many bookings the page lists (latest slot first).
const LISTED: i64 = 50;

/// A moment as a page shows it: UTC text, and the instant for the script to show in local time.
pub struct When {
    /// RFC 3339, for `<time datetime>`.
    pub iso: String,
    /// What shows without the script.
    pub text: String,
}

impl When {
    /// Date and time: `Tue 5 Mar 2024, 14:05 UTC`.
    pub fn date_time(at: DateTime<Utc>) -> Self {
        When {
            iso: at.to_rfc3339_opts(SecondsFormat::Secs, true),
            text: at.format("%a %-d %b %Y, %H:%M UTC").to_string(),
        }
    }

    /// Time of day only: `14:05 UTC`.
    pub fn clock(at: DateTime<Utc>) -> Self {
        When { iso: at.to_rfc3339_opts(SecondsFormat::Secs, true), text: at.format("%H:%M UTC").to_string() }
    }
}

/// `1 h 30 min`, `45 min`.
fn minutes_text(minutes: i64) -> String {
    match (minutes / 60, minutes % 60) {
        (0, m) => format!("{m} min"),
        (h, 0) => format!("{h} h"),
        (h, m) => format!("{h} h {m} min"),
    }
}

/// `h:mm:ss` from an hour on, `mm:ss` below (what the script shows as it ticks, too).
fn countdown_text(seconds: i64) -> String {
    let seconds = seconds.max(0);
    if seconds >= 3600 {
        format!("{}:{:02}:{:02}", seconds / 3600, seconds / 60 % 60, seconds % 60)
    } else {
        format!("{:02}:{:02}", seconds / 60, seconds % 60)
    }
}

/// A ticking countdown: the server's seconds left (the script counts down from them, so the
/// browser's own clock does not matter) and the deadline itself.
struct Countdown {
    label: &'static str,
    remaining: i64,
    deadline: String,
    text: String,
}

impl Countdown {
    fn until(label: &'static str, deadline: DateTime<Utc>, now: DateTime<Utc>) -> Self {
        let remaining = (deadline - now).num_seconds().max(0);
        Countdown {
            label,
            remaining,
            deadline: deadline.to_rfc3339_opts(SecondsFormat::Secs, true),
            text: countdown_text(remaining),
        }
    }
}

/// One booking as the page lists it.
struct BookingItem {
    id: i64,
    status: String,
    label: &'static str,
    charger: String,
    connector: i32,
    station: Option<(String, String)>,
    start: When,
    end: When,
    length: String,
    fee: String,
    countdown: Option<Countdown>,
    can_check_in: bool,
    can_cancel: bool,
    refund_until: Option<When>,
    late_note: String,
    confirm_now: String,
    confirm_late: String,
    refund_seconds: i64,
    outcome: Option<String>,
    go_charge: bool,
}

/// The label a booking's state shows; a slot whose start has come but whose timer has not
/// moved it yet shows as open for check-in already, as the API's slot state says.
fn label(status: &str) -> &'static str {
    match status {
        "confirmed" => "Booked",
        "grace" => "Check-in open",
        "checked_in" => "Checked in",
        "charging" => "Charging",
        "completed" => "Completed",
        "expired" => "Expired",
        "cancelled" => "Cancelled",
        _ => "Unknown",
    }
}

impl BookingItem {
    fn new(view: BookingView, now: DateTime<Utc>, grace_minutes: i64, cutoff_minutes: i64) -> Self {
        let slot = &view.slot;
        let status = if view.status == "confirmed" && slot.in_grace_period { "grace".to_owned() } else { view.status };
        let fee = inr(view.fee);
        let countdown = match status.as_str() {
            "confirmed" => Some(Countdown::until("Starts in", view.start_at, now)),
            "grace" => slot.grace_ends_at.map(|end| Countdown::until("Check in within", end, now)),
            "checked_in" | "charging" => Some(Countdown::until("Slot ends in", view.end_at, now)),
            _ => None,
        };
        let refundable = now < view.refundable_until;
        let confirm_late = format!(
            "Cancel this booking? It is less than {cutoff_minutes} minutes before the slot, so the ₹{fee} fee is not \
             refunded."
        );
        let late_note = format!("Cancelling now does not refund the ₹{fee} fee (the refund cutoff has passed).");
        let confirm_now = if refundable {
            format!("Cancel this booking? The ₹{fee} fee is refunded to your wallet in full.")
        } else {
            confirm_late.clone()
        };
        let outcome = match status.as_str() {
            "cancelled" => Some(match view.refund_amount {
                Some(refund) if !refund.is_zero() => format!("Cancelled: ₹{} refunded to your wallet.", inr(refund)),
                _ => "Cancelled after the refund cutoff: the fee was not refunded.".to_owned(),
            }),
            "expired" => Some(format!(
                "No-show: you did not check in within {grace_minutes} minutes of the slot start, so the slot was freed \
                 and the fee was not refunded."
            )),
            "grace" => Some(format!(
                "Your slot has started. Check in here or scan the charger's QR code within {grace_minutes} minutes of \
                 the start, or the booking expires without a refund."
            )),
            "checked_in" => Some(format!(
                "You are checked in: connector {} is held for you until the slot ends.",
                view.connector_id
            )),
            _ => None,
        };
        BookingItem {
            id: view.id,
            label: label(&status),
            can_check_in: status == "grace",
            can_cancel: matches!(status.as_str(), "confirmed" | "grace"),
            go_charge: status == "checked_in",
            status,
            charger: view.charger_id,
            connector: view.connector_id,
            station: view.station.map(|s| (s.name, s.address)),
            start: When::date_time(view.start_at),
            end: When::clock(view.end_at),
            length: minutes_text(view.duration_minutes),
            fee,
            countdown,
            refund_until: refundable.then(|| When::date_time(view.refundable_until)),
            late_note,
            confirm_now,
            confirm_late,
            refund_seconds: if refundable { (view.refundable_until - now).num_seconds() } else { 0 },
            outcome,
        }
    }

    fn live(&self) -> bool {
        bookings::LIVE.contains(&self.status.as_str())
    }
}

/// `GET /bookings`.
#[derive(Template)]
#[template(path = "web/bookings.html")]
struct BookingsPage {
    chrome: Chrome,
    user_topic: String,
    balance: String,
    upcoming: Vec<BookingItem>,
    past: Vec<BookingItem>,
    more: bool,
    error: Option<String>,
}

async fn render_list(
    session: &WebSession,
    state: &AppState,
    status: StatusCode,
    error: Option<String>,
) -> Result<HttpResponse, WebError> {
    let page = list_bookings(state, &session.auth(), None, LISTED, 0).await?;
    let mut conn = pool::connection(&state.pool).await.map_err(ApiError::from)?;
    let balance = wallets::balance(&mut conn, session.user.id).await.map_err(ApiError::from)?.unwrap_or_default();
    drop(conn);
    let (grace, cutoff) = policy(state);
    let now = state.clock.now();
    let (mut upcoming, mut past) = (Vec::new(), Vec::new());
    for view in page.bookings {
        let item = BookingItem::new(view, now, grace.num_minutes(), cutoff.num_minutes());
        if item.live() { upcoming.push(item) } else { past.push(item) }
    }
    // Soonest first for what is ahead; the latest first for the rest, as listed.
    upcoming.reverse();
    let page = BookingsPage {
        chrome: session.chrome("Bookings"),
        user_topic: format!("user:{}", session.user.id),
        balance: inr(balance),
        upcoming,
        past,
        more: page.total > LISTED,
        error,
    };
    html(status, &page)
}

/// `GET /bookings`: the driver's bookings.
pub async fn show(session: WebSession, state: web::Data<AppState>) -> Result<HttpResponse, WebError> {
    render_list(&session, &state, StatusCode::OK, None).await
}

/// What the booking form holds, as typed (it is shown again with the errors).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct BookingForm {
    csrf: String,
    charger: String,
    connector: String,
    date: String,
    time: String,
    duration: String,
    tz: String,
}

/// `GET /bookings/new` and a refused `POST /bookings`.
#[derive(Template)]
#[template(path = "web/bookings_new.html")]
struct NewBookingPage {
    chrome: Chrome,
    form: BookingForm,
    errors: FieldErrors,
    durations: Vec<(String, String)>,
    fee: String,
    station_fee: bool,
    balance: String,
    grace_minutes: i64,
    cutoff_minutes: i64,
    max_days: i64,
    recharge: bool,
}

async fn render_form(
    session: &WebSession,
    state: &AppState,
    status: StatusCode,
    mut form: BookingForm,
    errors: FieldErrors,
    recharge: bool,
) -> Result<HttpResponse, WebError> {
    let mut conn = pool::connection(&state.pool).await.map_err(ApiError::from)?;
    let balance = wallets::balance(&mut conn, session.user.id).await.map_err(ApiError::from)?.unwrap_or_default();
    // The fee of the named charger's station where it sets its own, else the network's.
    let connector = form.connector.trim().parse().unwrap_or(1);
    let target = if valid_charge_point_id(form.charger.trim()) {
        bookings::slot_target(&mut conn, form.charger.trim(), connector).await.map_err(ApiError::from)?
    } else {
        None
    };
    drop(conn);
    let station_fee = target.as_ref().and_then(|t| t.booking_fee);
    if form.duration.trim().is_empty() {
        form.duration = "60".to_owned();
    }
    let (grace, cutoff) = policy(state);
    let page = NewBookingPage {
        chrome: session.chrome("Book a slot"),
        durations: DURATIONS.iter().map(|m| (m.to_string(), minutes_text(*m))).collect(),
        fee: inr(station_fee.unwrap_or(state.config.policy.booking_fee)),
        station_fee: station_fee.is_some(),
        balance: inr(balance),
        grace_minutes: grace.num_minutes(),
        cutoff_minutes: cutoff.num_minutes(),
        max_days: MAX_DAYS_AHEAD,
        recharge,
        form,
        errors,
    };
    html(status, &page)
}

/// The form's prefill: `?charger=CP-1&connector=2` (and optionally date, time, duration).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Prefill {
    charger: String,
    connector: String,
    date: String,
    time: String,
    duration: String,
}

/// `GET /bookings/new`: the booking form.
pub async fn new_form(
    session: WebSession,
    query: web::Query<Prefill>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    let query = query.into_inner();
    let form = BookingForm {
        charger: query.charger,
        connector: if query.connector.is_empty() { "1".to_owned() } else { query.connector },
        date: query.date,
        time: query.time,
        duration: query.duration,
        ..BookingForm::default()
    };
    render_form(&session, &state, StatusCode::OK, form, FieldErrors::default(), false).await
}

/// The form's fields, read into the API's request; or the field at fault and why.
fn parse(form: &BookingForm) -> Result<NewBookingBody, FieldErrors> {
    let charger = form.charger.trim();
    if charger.is_empty() {
        return Err(FieldErrors::field("charger", "Enter the charger ID; it is printed on the charger."));
    }
    let connector: i32 = form
        .connector
        .trim()
        .parse()
        .map_err(|_| FieldErrors::field("connector", "Enter the connector number, for example 1."))?;
    let date = NaiveDate::parse_from_str(form.date.trim(), "%Y-%m-%d")
        .map_err(|_| FieldErrors::field("date", "Pick the day of the slot."))?;
    let time = NaiveTime::parse_from_str(form.time.trim(), "%H:%M")
        .or_else(|_| NaiveTime::parse_from_str(form.time.trim(), "%H:%M:%S"))
        .map_err(|_| FieldErrors::field("time", "Pick the start time, for example 14:30."))?;
    let duration: i64 =
        form.duration.trim().parse().map_err(|_| FieldErrors::field("duration", "Pick how long the slot lasts."))?;
    // Minutes east of UTC, as the browser reports them; no script (or nonsense): UTC.
    let offset: i64 = form.tz.trim().parse().ok().filter(|m: &i64| m.abs() <= 14 * 60).unwrap_or(0);
    let start_at = date.and_time(time).and_utc() - Duration::minutes(offset);
    Ok(NewBookingBody { charger_id: charger.to_owned(), connector_id: connector, start_at, duration_minutes: duration })
}

/// An API refusal as the form shows it: next to the field it concerns, else above the form.
fn form_errors(error: &ApiError) -> (StatusCode, FieldErrors) {
    let status = error.status_code();
    let field = match (error.field(), error.code()) {
        (Some("chargerId"), _) | (None, "charger_unavailable") => Some("charger"),
        (Some("connectorId"), _) => Some("connector"),
        (Some("startAt"), _) | (None, "slot_taken" | "booking_overlaps") => Some("time"),
        (Some("durationMinutes"), _) => Some("duration"),
        _ if status == StatusCode::NOT_FOUND => Some("connector"),
        _ => None,
    };
    match field {
        // An unknown connector is a mistake in the form, not a missing page.
        Some(field) if status == StatusCode::NOT_FOUND => {
            (StatusCode::UNPROCESSABLE_ENTITY, FieldErrors::field(field, error.message()))
        }
        Some(field) => (status, FieldErrors::field(field, error.message())),
        None => (status, FieldErrors::from_api(error)),
    }
}

/// `POST /bookings`: books the slot as `POST /api/users/bookings` does and shows the bookings;
/// a refusal shows the form again with the error next to its field.
pub async fn create(
    session: WebSession,
    form: web::Form<BookingForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    let form = form.into_inner();
    session.check_csrf(&form.csrf)?;
    let body = match parse(&form) {
        Ok(body) => body,
        Err(errors) => {
            return render_form(&session, &state, StatusCode::UNPROCESSABLE_ENTITY, form, errors, false).await;
        }
    };
    if !DURATION_MINUTES.contains(&body.duration_minutes) {
        let message = format!(
            "A slot lasts {} to {}.",
            minutes_text(*DURATION_MINUTES.start()),
            minutes_text(*DURATION_MINUTES.end())
        );
        let errors = FieldErrors::field("duration", message);
        return render_form(&session, &state, StatusCode::UNPROCESSABLE_ENTITY, form, errors, false).await;
    }
    match create_booking(&state, &session.auth(), body).await {
        Ok(view) => {
            tracing::info!(user_id = session.user.id, booking_id = view.id, "slot booked on the web");
            Ok(see_other("/bookings"))
        }
        Err(error) if error.status_code().is_client_error() => {
            let (status, errors) = form_errors(&error);
            let recharge = error.code() == "insufficient_balance";
            render_form(&session, &state, status, form, errors, recharge).await
        }
        Err(error) => Err(error.into()),
    }
}

/// `POST /bookings/{id}/checkin`: checks in (the slot's grace period must be open), as the API's
/// app check-in; a refusal is shown above the list.
pub async fn check_in(
    session: WebSession,
    path: web::Path<i64>,
    form: web::Form<super::auth::CsrfForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    session.check_csrf(&form.csrf)?;
    match check_in_booking(&state, &session.auth(), path.into_inner(), CheckInMethod::App, None).await {
        Ok(_) => Ok(see_other("/bookings")),
        Err(error) if error.status_code() == StatusCode::CONFLICT => {
            render_list(&session, &state, StatusCode::CONFLICT, Some(error.message().to_owned())).await
        }
        Err(error) => Err(error.into()),
    }
}

/// `POST /bookings/{id}/cancel`: cancels, refunding per the cutoff, as the API does; a refusal
/// is shown above the list.
pub async fn cancel(
    session: WebSession,
    path: web::Path<i64>,
    form: web::Form<super::auth::CsrfForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    session.check_csrf(&form.csrf)?;
    match cancel_booking(&state, &session.auth(), path.into_inner()).await {
        Ok(_) => Ok(see_other("/bookings")),
        Err(error) if error.status_code() == StatusCode::CONFLICT => {
            render_list(&session, &state, StatusCode::CONFLICT, Some(error.message().to_owned())).await
        }
        Err(error) => Err(error.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::{countdown_text, minutes_text};

    #[test]
    fn durations_and_countdowns_read_naturally() {
        assert_eq!(minutes_text(45), "45 min");
        assert_eq!(minutes_text(60), "1 h");
        assert_eq!(minutes_text(90), "1 h 30 min");
        assert_eq!(countdown_text(1800), "30:00");
        assert_eq!(countdown_text(59), "00:59");
        assert_eq!(countdown_text(3 * 3600 + 61), "3:01:01");
        assert_eq!(countdown_text(-5), "00:00");
    }
}
