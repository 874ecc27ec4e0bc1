//! The owner's revenue and usage report (`GET /owner/reports`, and `/owner/reports.csv` to
//! download it): per station and India's calendar day, the sessions settled, their energy and
//! charging time, and what was earned from charging and from booking fees. The figures come
//! from the same function as `GET /api/owner/reports/stations`, so the page and the endpoint
//! agree.

use actix_web::ResponseError;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::NaiveDate;
use kilowatt_actors::accounts::Role;
use serde::Deserialize;

use super::FieldErrors;
use super::dashboard::inr;
use super::owner_dashboard::station_choices;
use super::session::{Chrome, WebError, WebSession, html};
use crate::http::api::reports::{Figures, Report, ReportQuery, csv_response, station_report};
use crate::http::error::ApiError;
use crate::state::AppState;

/// Registers the page and its download.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/owner/reports", web::get().to(show)).route("/owner/reports.csv", web::get().to(download));
}

/// The form's fields as it sends them (names as the JSON endpoint's query).
#[derive(Debug, Default, Deserialize, Clone)]
#[serde(default, rename_all = "camelCase")]
pub struct ReportFilters {
    from: String,
    to: String,
    station_id: String,
}

impl ReportFilters {
    /// The query string that asks for the same report (for the download link).
    fn query_string(&self) -> String {
        let pairs = [("from", &self.from), ("to", &self.to), ("stationId", &self.station_id)];
        let pairs: Vec<String> = pairs
            .iter()
            .filter(|(_, value)| !value.trim().is_empty())
            .map(|(name, value)| {
                format!(
                    "{name}={}",
                    percent_encoding::utf8_percent_encode(value.trim(), percent_encoding::NON_ALPHANUMERIC)
                )
            })
            .collect();
        pairs.join("&")
    }
}

/// The report page.
#[derive(Template)]
#[template(path = "web/owner_reports.html")]
struct ReportsPage {
    chrome: Chrome,
    filters: ReportFilters,
    errors: FieldErrors,
    stations: Vec<(String, String)>,
    report: Option<ReportView>,
    download: String,
    admin: bool,
}

/// The report as the page shows it.
struct ReportView {
    period: String,
    totals: FiguresView,
    stations: Vec<StationView>,
}

struct StationView {
    id: i64,
    name: String,
    totals: FiguresView,
    days: Vec<(String, FiguresView)>,
}

/// Figures in the units people read.
struct FiguresView {
    sessions: i64,
    energy_kwh: String,
    charging_hours: String,
    charging_revenue: String,
    booking_revenue: String,
    revenue: String,
}

impl From<&Figures> for FiguresView {
    fn from(f: &Figures) -> Self {
        FiguresView {
            sessions: f.sessions,
            energy_kwh: f.energy_kwh.to_string(),
            charging_hours: f.charging_hours.to_string(),
            charging_revenue: inr(f.charging_revenue),
            booking_revenue: inr(f.booking_revenue),
            revenue: inr(f.revenue),
        }
    }
}

impl From<&Report> for ReportView {
    fn from(report: &Report) -> Self {
        let day_label = |day: NaiveDate| day.format("%a %d %b %Y").to_string();
        ReportView {
            period: format!("{} to {} (India)", day_label(report.from), day_label(report.to)),
            totals: FiguresView::from(&report.totals),
            stations: report
                .stations
                .iter()
                .map(|s| StationView {
                    id: s.station_id,
                    name: s.name.clone(),
                    totals: FiguresView::from(&s.totals),
                    days: s.days.iter().map(|d| (day_label(d.date), FiguresView::from(&d.figures))).collect(),
                })
                .collect(),
        }
    }
}

/// The form's fields as the API's query, or the field that is malformed and what is wrong.
fn parse(filters: &ReportFilters) -> Result<ReportQuery, (&'static str, &'static str)> {
    let date = |field: &'static str, value: &str| match value.trim() {
        "" => Ok(None),
        value => {
            NaiveDate::parse_from_str(value, "%Y-%m-%d").map(Some).map_err(|_| (field, "Give a date as YYYY-MM-DD."))
        }
    };
    let station_id = match filters.station_id.trim() {
        "" => None,
        id => Some(id.parse::<i64>().map_err(|_| ("stationId", "Choose one of your stations."))?),
    };
    Ok(ReportQuery { from: date("from", &filters.from)?, to: date("to", &filters.to)?, station_id, format: None })
}

/// An API error as the form shows it: a bad range under the dates, a station that is not
/// theirs next to the station field.
fn form_error(error: &ApiError, filters: &ReportFilters) -> Option<FieldErrors> {
    match error.status_code() {
        StatusCode::BAD_REQUEST if error.code() == "invalid_range" => Some(FieldErrors::field("to", error.message())),
        StatusCode::NOT_FOUND if !filters.station_id.trim().is_empty() => {
            Some(FieldErrors::field("stationId", error.message()))
        }
        _ => None,
    }
}

/// `GET /owner/reports`: the report, for the chosen days and station.
pub async fn show(
    session: WebSession,
    query: web::Query<ReportFilters>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    let auth = session.auth();
    auth.require_owner()?;
    let filters = query.into_inner();
    let stations = station_choices(&state, &session).await?;

    let (report, errors, status) = match parse(&filters) {
        Err((field, message)) => (None, FieldErrors::field(field, message), StatusCode::UNPROCESSABLE_ENTITY),
        Ok(query) => match station_report(&state, &auth, &query).await {
            Ok(report) => (Some(report), FieldErrors::default(), StatusCode::OK),
            Err(error) => match form_error(&error, &filters) {
                Some(errors) => (None, errors, error.status_code()),
                None => return Err(error.into()),
            },
        },
    };
    // The form shows the days the report covers, defaults included.
    let mut filters = filters;
    if let Some(report) = &report {
        filters.from = report.from.to_string();
        filters.to = report.to.to_string();
    }
    let page = ReportsPage {
        chrome: session.chrome("Reports"),
        download: format!("/owner/reports.csv?{}", filters.query_string()),
        filters,
        errors,
        stations,
        report: report.as_ref().map(ReportView::from),
        admin: session.role == Role::Admin,
    };
    html(status, &page)
}

/// `GET /owner/reports.csv`: the same report as a spreadsheet.
pub async fn download(
    session: WebSession,
    query: web::Query<ReportFilters>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    let query = parse(&query).map_err(|(field, message)| ApiError::validation(field, message))?;
    let report = station_report(&state, &session.auth(), &query).await?;
    Ok(csv_response(&report))
}
