//! The owner's slot monitoring dashboard (`GET /owner/slots`): bookings at their stations
//! (every station for admins) in a time range around now — counts by status, no-show,
//! grace-period check-in and completion rates, fees and revenue lost to no-shows — and per
//! charger and connector the slot under way, the next ones, no-shows and utilisation, with live
//! grace-period countdowns. Figures and slots come from the same function as
//! `GET /api/vendor/dashboard/slot-monitoring`, so the page and the endpoint agree.

use std::collections::{BTreeMap, BTreeSet};

use actix_web::ResponseError;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::{DateTime, Duration, Utc};
use kilowatt_actors::accounts::Role;
use kilowatt_actors::store::bookings::{self, BookingRow, MonitoringScope};
use kilowatt_actors::store::chargers::{self, ChargerFilter};
use kilowatt_actors::store::pool;
use rust_decimal::Decimal;
use serde::Deserialize;

use super::FieldErrors;
use super::dashboard::inr;
use super::history::ist;
use super::owner_dashboard::station_choices;
use super::owner_sessions::LIVE_TOPIC_LIMIT;
use super::session::{Chrome, WebError, WebSession, html};
use crate::http::api::bookings::slot_state;
use crate::http::api::slot_monitoring::{MonitoringQuery, SlotMonitoring, SlotView, TimeRange, monitoring};
use crate::http::error::ApiError;
use crate::state::AppState;

/// At most this many bookings feed the per-connector summaries.
const MAX_ROWS: i64 = 500;
/// Upcoming slots listed under each connector.
const UPCOMING_PER_CONNECTOR: usize = 3;

/// Registers the dashboard.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/owner/slots", web::get().to(show));
}

/// The filters, as the form sends them (names as the JSON endpoint's query).
#[derive(Debug, Default, Deserialize, Clone)]
#[serde(default, rename_all = "camelCase")]
pub struct SlotFilters {
    time_range: String,
    station_id: String,
    status: String,
}

/// The dashboard page.
#[derive(Template)]
#[template(path = "web/slot_monitoring.html")]
struct SlotsPage {
    chrome: Chrome,
    filters: SlotFilters,
    errors: FieldErrors,
    ranges: Vec<(&'static str, &'static str)>,
    stations: Vec<(String, String)>,
    statuses: Vec<(&'static str, &'static str)>,
    board: Option<Board>,
    topics: String,
    admin: bool,
}

/// Everything shown once the filters are valid.
struct Board {
    window: String,
    by_status: Vec<(&'static str, &'static str, i64)>,
    bookings: i64,
    decided: i64,
    showed_up: i64,
    no_shows: i64,
    checked_in_during_grace: i64,
    no_show_rate: String,
    grace_check_in_rate: String,
    completion_rate: String,
    utilisation: String,
    fees_collected: String,
    revenue_lost: String,
    no_show_held: String,
    in_grace: Vec<Slot>,
    connectors: Vec<ConnectorBoard>,
    listed_label: String,
    slots: Vec<Slot>,
}

/// One connector's slots.
struct ConnectorBoard {
    charge_point_id: String,
    number: i32,
    station: String,
    status: String,
    current: Option<Slot>,
    upcoming: Vec<Slot>,
    no_shows: i64,
    booked: String,
    utilisation: String,
}

/// One slot as the page shows it.
struct Slot {
    booking_id: i64,
    status: String,
    driver: String,
    station: String,
    charge_point_id: String,
    connector_id: i32,
    when: String,
    in_grace: bool,
    grace_left: String,
    grace_seconds: i64,
    checked_in: Option<String>,
    hold: Option<String>,
}

impl Slot {
    fn from_view(s: &SlotView) -> Self {
        Slot {
            booking_id: s.booking_id,
            status: s.status.clone(),
            driver: driver_label(s.driver.name.as_deref(), &s.driver.username),
            station: s.station_name.clone().unwrap_or_else(|| "–".to_owned()),
            charge_point_id: s.charger_id.clone(),
            connector_id: s.connector_id,
            when: slot_time(s.start_at, s.end_at),
            in_grace: s.in_grace_period,
            grace_left: countdown(s.grace_time_remaining),
            grace_seconds: s.grace_time_remaining,
            checked_in: s.checked_in_at.map(|at| checked_in_label(at, s.checkin_method.as_deref())),
            hold: s.reservation_status.as_deref().map(hold_label),
        }
    }

    fn from_row(row: &BookingRow, grace: Duration, now: DateTime<Utc>) -> Self {
        let b = &row.booking;
        let state = slot_state(row, grace, now);
        Slot {
            booking_id: b.id,
            status: b.status.clone(),
            driver: driver_label(row.driver_name.as_deref(), &row.username),
            station: row.station.as_ref().map_or_else(|| "–".to_owned(), |s| s.name.clone()),
            charge_point_id: row.charge_point_id.clone(),
            connector_id: row.connector_number,
            when: slot_time(b.start_at, b.end_at),
            in_grace: state.in_grace_period,
            grace_left: countdown(state.grace_time_remaining),
            grace_seconds: state.grace_time_remaining,
            checked_in: b.checked_in_at.map(|at| checked_in_label(at, b.checkin_method.as_deref())),
            hold: None,
        }
    }
}

fn driver_label(name: Option<&str>, username: &str) -> String {
    match name.map(str::trim).filter(|n| !n.is_empty()) {
        Some(name) => format!("{name} (@{username})"),
        None => format!("@{username}"),
    }
}

/// How the connector is held for the slot, for people.
fn hold_label(status: &str) -> String {
    match status {
        "requested" => "Reserving on the charger…".to_owned(),
        "accepted" => "Reserved on the charger".to_owned(),
        "unsupported" => "Held by Kilowatt (the charger cannot reserve)".to_owned(),
        "used" => "Used by the driver's session".to_owned(),
        "expired" => "Released".to_owned(),
        other => other.replace('_', " "),
    }
}

fn checked_in_label(at: DateTime<Utc>, method: Option<&str>) -> String {
    let how = match method {
        Some("qr") => " by QR code",
        Some("app") => " in the app",
        _ => "",
    };
    format!("Checked in{how} at {}", at.with_timezone(&ist()).format("%H:%M"))
}

/// `12 Mar, 14:00–15:00` in IST.
fn slot_time(start: DateTime<Utc>, end: DateTime<Utc>) -> String {
    let (start, end) = (start.with_timezone(&ist()), end.with_timezone(&ist()));
    if start.date_naive() == end.date_naive() {
        format!("{}–{}", start.format("%d %b, %H:%M"), end.format("%H:%M"))
    } else {
        format!("{} – {}", start.format("%d %b, %H:%M"), end.format("%d %b, %H:%M"))
    }
}

/// `m:ss` left of a grace period.
fn countdown(seconds: i64) -> String {
    let seconds = seconds.max(0);
    format!("{}:{:02}", seconds / 60, seconds % 60)
}

fn rate(value: Option<f64>) -> String {
    value.map_or_else(|| "–".to_owned(), |v| format!("{v:.2}%"))
}

/// Minutes as `3 h 20 min`.
fn minutes_label(minutes: i64) -> String {
    match (minutes / 60, minutes % 60) {
        (0, m) => format!("{m} min"),
        (h, 0) => format!("{h} h"),
        (h, m) => format!("{h} h {m} min"),
    }
}

/// Statuses a slot keeps its connector in, or used it in: what utilisation counts.
const KEPT: [&str; 5] = ["confirmed", "grace", "checked_in", "charging", "completed"];

/// Minutes of `[start, end)` inside `[from, to)`.
fn overlap_minutes(start: DateTime<Utc>, end: DateTime<Utc>, from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
    (end.min(to) - start.max(from)).num_minutes().max(0)
}

fn share(part: i64, whole: i64) -> String {
    if whole <= 0 {
        return "–".to_owned();
    }
    format!("{:.1}%", (Decimal::from(part) * Decimal::ONE_HUNDRED / Decimal::from(whole)).round_dp(1))
}

/// `GET /owner/slots`: the dashboard, filtered by time range, station and status.
pub async fn show(
    session: WebSession,
    query: web::Query<SlotFilters>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    let auth = session.auth();
    auth.require_owner()?;
    let filters = query.into_inner();
    let owner_id = (session.role != Role::Admin).then_some(session.user.id);
    let station_options = station_choices(&state, &session).await?;

    let (board, errors, status) = match parse(&filters) {
        Err(errors) => (None, errors, StatusCode::UNPROCESSABLE_ENTITY),
        Ok(query) => match monitoring(&auth, &state, query).await {
            Ok(found) => (Some(build_board(&state, owner_id, found).await?), FieldErrors::default(), StatusCode::OK),
            Err(error) if error.field().is_some() => (None, FieldErrors::from_api(&error), error.status_code()),
            // A station that is not theirs: said next to the station field.
            Err(error) if error.status_code() == StatusCode::NOT_FOUND && !filters.station_id.is_empty() => {
                (None, FieldErrors::field("stationId", error.message()), StatusCode::NOT_FOUND)
            }
            Err(error) => return Err(error.into()),
        },
    };

    let mut topics: Vec<String> = match &board {
        Some(board) => {
            let chargers: BTreeSet<&str> = board.connectors.iter().map(|c| c.charge_point_id.as_str()).collect();
            chargers.into_iter().map(|cp| format!("charger:{cp}")).collect()
        }
        None => Vec::new(),
    };
    topics.truncate(LIVE_TOPIC_LIMIT);
    let page = SlotsPage {
        chrome: session.chrome("Slot monitoring"),
        filters,
        errors,
        ranges: vec![("1h", "1 hour either side"), ("24h", "24 hours either side"), ("7d", "7 days either side")],
        stations: station_options,
        statuses: vec![
            ("", "Live slots"),
            ("confirmed", "Confirmed"),
            ("grace", "In grace period"),
            ("checked_in", "Checked in"),
            ("charging", "Charging"),
            ("completed", "Completed"),
            ("expired", "Expired (no-show)"),
            ("cancelled", "Cancelled"),
        ],
        board,
        topics: topics.join(" "),
        admin: session.role == Role::Admin,
    };
    html(status, &page)
}

/// The form's fields as the API's query; a malformed one is said next to its field.
fn parse(filters: &SlotFilters) -> Result<MonitoringQuery, FieldErrors> {
    let time_range = match filters.time_range.trim() {
        "" => None,
        "1h" => Some(TimeRange::Hour),
        "24h" => Some(TimeRange::Day),
        "7d" => Some(TimeRange::Week),
        _ => return Err(FieldErrors::field("timeRange", "Choose 1 hour, 24 hours or 7 days.")),
    };
    let station_id = match filters.station_id.trim() {
        "" => None,
        id => Some(id.parse::<i64>().map_err(|_| FieldErrors::field("stationId", "Choose one of your stations."))?),
    };
    let status = Some(filters.status.trim().to_owned()).filter(|s| !s.is_empty());
    Ok(MonitoringQuery { status, station_id, time_range })
}

async fn build_board(state: &AppState, owner_id: Option<i64>, found: SlotMonitoring) -> Result<Board, WebError> {
    let now = state.clock.now();
    let grace = Duration::from_std(state.config.policy.grace_period).unwrap_or(Duration::MAX);
    let scope = MonitoringScope { owner_id, station_id: found.station_id, from: found.from, to: found.to };
    let mut conn = pool::connection(&state.pool).await.map_err(ApiError::from)?;
    let rows =
        bookings::monitoring_rows(&mut conn, &scope, &bookings::STATUSES, MAX_ROWS).await.map_err(ApiError::from)?;
    let owned = chargers::list_owned(&mut conn, ChargerFilter { owner_id, station_id: found.station_id })
        .await
        .map_err(ApiError::from)?;
    drop(conn);

    let window_minutes = (found.to - found.from).num_minutes();
    // Every connector of the owner's chargers, slots or not.
    let mut connectors: BTreeMap<(String, i32), ConnectorBoard> = BTreeMap::new();
    for charger in owned.iter().filter(|c| c.station.is_some()) {
        for connector in &charger.connectors {
            let key = (charger.charger.charge_point_id.clone(), connector.connector_number);
            connectors.insert(
                key,
                ConnectorBoard {
                    charge_point_id: charger.charger.charge_point_id.clone(),
                    number: connector.connector_number,
                    station: charger.station.as_ref().map_or_else(String::new, |s| s.name.clone()),
                    status: connector.status.clone(),
                    current: None,
                    upcoming: Vec::new(),
                    no_shows: 0,
                    booked: String::new(),
                    utilisation: String::new(),
                },
            );
        }
    }
    let mut kept_minutes: BTreeMap<(String, i32), i64> = BTreeMap::new();
    for row in &rows {
        let key = (row.charge_point_id.clone(), row.connector_number);
        let b = &row.booking;
        let board = connectors.entry(key.clone()).or_insert_with(|| ConnectorBoard {
            charge_point_id: row.charge_point_id.clone(),
            number: row.connector_number,
            station: row.station.as_ref().map_or_else(String::new, |s| s.name.clone()),
            status: "Unknown".to_owned(),
            current: None,
            upcoming: Vec::new(),
            no_shows: 0,
            booked: String::new(),
            utilisation: String::new(),
        });
        if b.status == "expired" && b.expired_reason.as_deref() == Some(bookings::NO_SHOW) {
            board.no_shows += 1;
        }
        if KEPT.contains(&b.status.as_str()) {
            *kept_minutes.entry(key).or_default() += overlap_minutes(b.start_at, b.end_at, found.from, found.to);
        }
        let live = bookings::LIVE.contains(&b.status.as_str());
        let under_way = live && (b.start_at <= now || b.status != "confirmed");
        if under_way && board.current.is_none() {
            board.current = Some(Slot::from_row(row, grace, now));
        } else if live && b.start_at > now && board.upcoming.len() < UPCOMING_PER_CONNECTOR {
            board.upcoming.push(Slot::from_row(row, grace, now));
        }
    }
    let mut all_kept = 0;
    for (key, board) in &mut connectors {
        let kept = kept_minutes.get(key).copied().unwrap_or(0);
        all_kept += kept;
        board.booked = minutes_label(kept);
        board.utilisation = share(kept, window_minutes);
    }
    let connector_count = i64::try_from(connectors.len()).unwrap_or(i64::MAX);

    let s = &found.by_status;
    let listed_label = match found.slots.len() {
        1 => "1 slot".to_owned(),
        n => format!("{n} slots"),
    };
    Ok(Board {
        window: format!(
            "Slots starting {} to {} (IST)",
            found.from.with_timezone(&ist()).format("%d %b, %H:%M"),
            found.to.with_timezone(&ist()).format("%d %b, %H:%M")
        ),
        by_status: vec![
            ("confirmed", "Confirmed", s.confirmed),
            ("grace", "In grace period", s.grace),
            ("checked_in", "Checked in", s.checked_in),
            ("charging", "Charging", s.charging),
            ("completed", "Completed", s.completed),
            ("expired", "Expired", s.expired),
            ("cancelled", "Cancelled", s.cancelled),
        ],
        bookings: found.counts.bookings,
        decided: found.counts.decided,
        showed_up: found.counts.showed_up,
        no_shows: found.counts.no_shows,
        checked_in_during_grace: found.counts.checked_in_during_grace,
        no_show_rate: rate(found.rates.no_show_rate),
        grace_check_in_rate: rate(found.rates.grace_period_check_in_rate),
        completion_rate: rate(found.rates.completion_rate),
        utilisation: share(all_kept, window_minutes.saturating_mul(connector_count)),
        fees_collected: inr(found.revenue.fees_collected),
        revenue_lost: inr(found.revenue.revenue_lost_to_no_shows),
        no_show_held: minutes_label(found.revenue.no_show_held_minutes),
        in_grace: rows.iter().map(|row| Slot::from_row(row, grace, now)).filter(|slot| slot.in_grace).collect(),
        connectors: connectors.into_values().collect(),
        listed_label,
        slots: found.slots.iter().map(Slot::from_view).collect(),
    })
}
