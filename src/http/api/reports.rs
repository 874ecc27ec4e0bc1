//! Revenue and usage reports per station: `GET /api/owner/reports/stations`, as JSON or as CSV
//! for a spreadsheet. Days are India's calendar days. Usage counts the sessions settled on a
//! day (how many, their energy and charging time); revenue counts what was earned on it, from
//! charging and from booking fees less refunds.

use std::collections::BTreeMap;

use actix_web::http::header;
use actix_web::{HttpResponse, get, web};
use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, Utc};
use kilowatt_actors::accounts::Role;
use kilowatt_actors::store::pool;
use kilowatt_actors::store::revenue::{self, REPORT_TIME_ZONE, StationDay};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::owner_stations::{list_stations, owned_station};
use crate::auth::Auth;
use crate::http::error::ApiError;
use crate::http::openapi::{Envelope, ErrorEnvelope};
use crate::http::response;
use crate::http::web_ui::history::ist;
use crate::state::AppState;

/// The longest period one report covers, in days.
pub const MAX_DAYS: i64 = 366;

/// The days a report covers when none are asked for: the last 30, today included.
const DEFAULT_DAYS: i64 = 30;

/// Report query.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReportQuery {
    /// First day, `YYYY-MM-DD` (India); default 29 days before `to`.
    #[param(value_type = Option<String>, example = "2026-11-01")]
    pub from: Option<NaiveDate>,
    /// Last day, included, `YYYY-MM-DD` (India); default today.
    #[param(value_type = Option<String>, example = "2026-11-30")]
    pub to: Option<NaiveDate>,
    /// Only this station (one of mine).
    pub station_id: Option<i64>,
    /// `json` (the default) or `csv`: one row per station and day with activity.
    #[param(value_type = Option<String>, example = "csv")]
    pub format: Option<ReportFormat>,
}

/// How the report is sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReportFormat {
    /// The JSON envelope.
    #[default]
    Json,
    /// `text/csv`, as an attachment.
    Csv,
}

/// Usage and revenue over some days.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Figures {
    /// Charging sessions settled (that delivered charge).
    pub sessions: i64,
    /// Their energy, Wh.
    pub energy_wh: i64,
    /// Their energy, kWh, to three decimals.
    #[schema(value_type = String, example = "42.125")]
    pub energy_kwh: Decimal,
    /// Their time from start to end, hours, to two decimals.
    #[schema(value_type = String, example = "3.50")]
    pub charging_hours: Decimal,
    /// Earned from charging (settled sessions and late adjustments), INR.
    #[schema(value_type = String, example = "758.25")]
    pub charging_revenue: Decimal,
    /// Earned from booking fees, less fees refunded, INR.
    #[schema(value_type = String, example = "100.00")]
    pub booking_revenue: Decimal,
    /// Both together, INR.
    #[schema(value_type = String, example = "858.25")]
    pub revenue: Decimal,
    /// The charging time, unrounded.
    #[serde(skip)]
    charging_seconds: f64,
}

impl Default for Figures {
    /// Nothing yet, written with the places the figures keep (`0.000` kWh, `0.00` INR).
    fn default() -> Self {
        Figures {
            sessions: 0,
            energy_wh: 0,
            energy_kwh: fixed(Decimal::ZERO, 3),
            charging_hours: fixed(Decimal::ZERO, 2),
            charging_revenue: fixed(Decimal::ZERO, 2),
            booking_revenue: fixed(Decimal::ZERO, 2),
            revenue: fixed(Decimal::ZERO, 2),
            charging_seconds: 0.0,
        }
    }
}

impl Figures {
    fn of(day: &StationDay) -> Self {
        let mut figures = Figures::default();
        figures.add(day);
        figures
    }

    fn add(&mut self, day: &StationDay) {
        self.sessions += day.sessions;
        self.energy_wh += day.energy_wh;
        self.charging_seconds += day.charging_seconds;
        self.energy_kwh = fixed(Decimal::from(self.energy_wh) / Decimal::from(1000), 3);
        self.charging_hours = fixed(Decimal::try_from(self.charging_seconds / 3600.0).unwrap_or_default(), 2);
        self.charging_revenue = fixed(self.charging_revenue + day.charging_revenue, 2);
        self.booking_revenue = fixed(self.booking_revenue + day.booking_revenue, 2);
        self.revenue = self.charging_revenue + self.booking_revenue;
    }
}

/// `value` rounded to `places` decimals and written with exactly that many.
fn fixed(value: Decimal, places: u32) -> Decimal {
    let mut value = value.round_dp(places);
    value.rescale(places);
    value
}

/// One day of a station's report.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DayReport {
    /// The day, `YYYY-MM-DD` (India).
    #[schema(value_type = String, example = "2026-11-21")]
    pub date: NaiveDate,
    /// What happened that day.
    #[serde(flatten)]
    pub figures: Figures,
}

/// One station's report.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StationReport {
    /// Station ID.
    pub station_id: i64,
    /// Its name.
    pub name: String,
    /// Over the whole period.
    pub totals: Figures,
    /// The days with any activity, oldest first.
    pub days: Vec<DayReport>,
}

/// Revenue and usage per station over a period.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// First day (India).
    #[schema(value_type = String, example = "2026-11-01")]
    pub from: NaiveDate,
    /// Last day, included.
    #[schema(value_type = String, example = "2026-11-30")]
    pub to: NaiveDate,
    /// The calendar the days are counted in.
    pub time_zone: &'static str,
    /// Over every station in the report.
    pub totals: Figures,
    /// Every station asked for, with or without activity, in the order of my stations list.
    pub stations: Vec<StationReport>,
}

/// `GET /api/owner/reports/stations`: revenue and usage per station and day (every station,
/// for admins).
#[utoipa::path(
    tag = "owner",
    security(("bearer" = [])),
    params(ReportQuery),
    responses(
        (status = 200, description = "The report (or `text/csv` with `format=csv`)", body = Envelope<Report>),
        (status = 400, description = "`invalid_range`: `from` after `to`, or more than 366 days", body = ErrorEnvelope),
        (status = 401, description = "Not signed in", body = ErrorEnvelope),
        (status = 403, description = "Not an owner", body = ErrorEnvelope),
        (status = 404, description = "No such station of mine", body = ErrorEnvelope),
        (status = 422, description = "`validation_failed`: a malformed date, station or format", body = ErrorEnvelope),
    )
)]
#[get("/api/owner/reports/stations")]
pub async fn by_station(
    auth: Auth,
    query: web::Query<ReportQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let report = station_report(&state, &auth, &query).await?;
    Ok(match query.format.unwrap_or_default() {
        ReportFormat::Json => response::ok(report),
        ReportFormat::Csv => csv_response(&report),
    })
}

/// The report as a CSV download named after its days.
pub fn csv_response(report: &Report) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"kilowatt-stations-{}-to-{}.csv\"", report.from, report.to),
        ))
        .body(csv(report))
}

/// The instant a day of India's calendar begins.
fn start_of(day: NaiveDate) -> DateTime<Utc> {
    day.and_time(NaiveTime::MIN)
        .and_local_timezone(ist())
        .single()
        .map_or_else(|| day.and_time(NaiveTime::MIN).and_utc(), |start| start.with_timezone(&Utc))
}

/// The days a query asks for, checked: `to` defaults to today, `from` to 29 days before it.
pub fn period(query: &ReportQuery, now: DateTime<Utc>) -> Result<(NaiveDate, NaiveDate), ApiError> {
    let today = now.with_timezone(&ist()).date_naive();
    let to = query.to.unwrap_or(today);
    // Dates far from now are refused before any arithmetic on them (chrono's dates end at
    // year 262,143, and adding a day to the last one panics).
    let sane = |day: NaiveDate| (2000..=2199).contains(&day.year());
    if !sane(to) || query.from.is_some_and(|from| !sane(from)) {
        return Err(ApiError::bad_request("invalid_range", "Reports cover days from 2000 to 2199."));
    }
    let from = query.from.unwrap_or(to - Duration::days(DEFAULT_DAYS - 1));
    if from > to {
        return Err(ApiError::bad_request("invalid_range", format!("`from` ({from}) is after `to` ({to}).")));
    }
    if (to - from).num_days() + 1 > MAX_DAYS {
        return Err(ApiError::bad_request(
            "invalid_range",
            format!("A report covers at most {MAX_DAYS} days; {from} to {to} is {}.", (to - from).num_days() + 1),
        ));
    }
    Ok((from, to))
}

/// The report for the caller's stations (one of them with `station_id`; every station for an
/// admin); shared by the endpoint and the Reports page.
pub async fn station_report(state: &AppState, auth: &Auth, query: &ReportQuery) -> Result<Report, ApiError> {
    auth.require_owner()?;
    let (from, to) = period(query, state.clock.now())?;
    let owner = if auth.role == Role::Admin { None } else { Some(auth.user.id) };
    let stations: Vec<(i64, String)> = match query.station_id {
        Some(station_id) => {
            let mut conn = pool::connection(&state.pool).await?;
            let station = owned_station(&mut conn, auth, station_id).await?;
            vec![(station.id, station.name)]
        }
        None => list_stations(state, auth).await?.into_iter().map(|s| (s.id, s.name)).collect(),
    };
    let mut conn = pool::connection(&state.pool).await?;
    let days =
        revenue::station_days(&mut conn, owner, query.station_id, start_of(from), start_of(to + Duration::days(1)))
            .await?;
    drop(conn);
    let mut days_of: BTreeMap<i64, Vec<StationDay>> = BTreeMap::new();
    for day in days {
        days_of.entry(day.station_id).or_default().push(day);
    }
    let mut totals = Figures::default();
    let stations = stations
        .into_iter()
        .map(|(station_id, name)| {
            let days = days_of.remove(&station_id).unwrap_or_default();
            let mut station_totals = Figures::default();
            for day in &days {
                station_totals.add(day);
                totals.add(day);
            }
            let days = days.iter().map(|day| DayReport { date: day.day, figures: Figures::of(day) }).collect();
            StationReport { station_id, name, totals: station_totals, days }
        })
        .collect();
    Ok(Report { from, to, time_zone: REPORT_TIME_ZONE, totals, stations })
}

/// The report as CSV: a header, then one row per station and day with activity.
pub fn csv(report: &Report) -> String {
    let mut out = String::from(
        "date,station_id,station,sessions,energy_kwh,charging_hours,charging_revenue_inr,booking_revenue_inr,revenue_inr\n",
    );
    for station in &report.stations {
        for day in &station.days {
            let f = &day.figures;
            out.push_str(&format!(
                "{},{},{},{},{},{},{},{},{}\n",
                day.date,
                station.station_id,
                csv_field(&station.name),
                f.sessions,
                f.energy_kwh,
                f.charging_hours,
                f.charging_revenue,
                f.booking_revenue,
                f.revenue
            ));
        }
    }
    out
}

/// A CSV field: quoted when it holds a comma, quote or line break (quotes doubled), and kept
/// from starting a spreadsheet formula.
fn csv_field(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@']) { format!("'{text}") } else { text.to_owned() };
    if text.contains([',', '"', '\n', '\r']) { format!("\"{}\"", text.replace('"', "\"\"")) } else { text }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(station_id: i64, date: &str, sessions: i64, energy_wh: i64, seconds: f64, charging: &str) -> StationDay {
        StationDay {
            station_id,
            day: date.parse().unwrap(),
            sessions,
            energy_wh,
            charging_seconds: seconds,
            charging_revenue: charging.parse().unwrap(),
            booking_revenue: Decimal::ZERO,
        }
    }

    #[test]
    fn figures_add_up_in_the_units_people_read() {
        let mut figures = Figures::default();
        figures.add(&day(1, "2026-11-20", 2, 1500, 5400.0, "27.00"));
        figures.add(&StationDay {
            booking_revenue: "50.00".parse().unwrap(),
            ..day(1, "2026-11-21", 1, 250, 1800.0, "4.50")
        });
        assert_eq!(figures.sessions, 3);
        assert_eq!(figures.energy_kwh.to_string(), "1.750");
        assert_eq!(figures.charging_hours.to_string(), "2.00");
        assert_eq!(figures.charging_revenue.to_string(), "31.50");
        assert_eq!(figures.booking_revenue.to_string(), "50.00");
        assert_eq!(figures.revenue.to_string(), "81.50");
    }

    #[test]
    fn a_period_defaults_to_the_last_thirty_days_of_india_and_is_bounded() {
        // 20:00 UTC on the 21st is already the 22nd in India.
        let now: DateTime<Utc> = "2026-11-21T20:00:00Z".parse().unwrap();
        let (from, to) = period(&ReportQuery::default(), now).unwrap();
        assert_eq!((from.to_string(), to.to_string()), ("2026-10-24".into(), "2026-11-22".into()));
        let backwards =
            ReportQuery { from: "2026-11-10".parse().ok(), to: "2026-11-09".parse().ok(), ..Default::default() };
        assert_eq!(period(&backwards, now).unwrap_err().code(), "invalid_range");
        let longest =
            ReportQuery { from: "2025-01-01".parse().ok(), to: "2026-01-01".parse().ok(), ..Default::default() };
        assert!(period(&longest, now).is_ok(), "366 days are allowed");
        let too_long =
            ReportQuery { from: "2025-01-01".parse().ok(), to: "2026-01-02".parse().ok(), ..Default::default() };
        assert_eq!(period(&too_long, now).unwrap_err().code(), "invalid_range");
        let far = ReportQuery { to: "+262142-12-31".parse().ok(), ..Default::default() };
        assert!(far.to.is_some());
        assert_eq!(period(&far, now).unwrap_err().code(), "invalid_range");
        assert_eq!(start_of("2026-11-22".parse().unwrap()).to_rfc3339(), "2026-11-21T18:30:00+00:00");
    }

    #[test]
    fn csv_names_are_quoted_and_never_formulas() {
        assert_eq!(csv_field("Koramangala Hub"), "Koramangala Hub");
        assert_eq!(csv_field("Hub, \"North\""), "\"Hub, \"\"North\"\"\"");
        assert_eq!(csv_field("=HYPERLINK(1)"), "'=HYPERLINK(1)");
    }
}
