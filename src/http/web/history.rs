//! The driver's charging history page, `GET /history`: their sessions newest first with start
//! and stop time, energy, cost, duration, station and a status badge, a Stop button on the one
//! under way (live over `/ws`), filters (status, period, date range), pagination that keeps
//! the filters, and totals for the filtered set.
//!
//! The filtered queries live here because the store's `session_views::history` only knows a
//! start date; they select the same row shape (`SessionRow`) so a session reads the same as in
//! `GET /api/charging/sessions`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, TimeZone, Utc};
use kilowatt_actors::store::pool;
use kilowatt_actors::store::session_views::{self, HistoryCriteria};
use rust_decimal::Decimal;
use serde::Deserialize;

use super::FieldErrors;
use super::dashboard::{duration, inr};
use super::session::{Chrome, WebError, WebSession, html};
use crate::http::api::session_view::SessionView;
use crate::http::error::ApiError;
use crate::state::AppState;

/// Sessions per page.
pub const PAGE_SIZE: i64 = 10;

/// The statuses a session can have, in the order the filter offers them.
const STATUSES: [&str; 5] = ["active", "pending", "completed", "cancelled", "failed"];

/// Registers the history page.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/history", web::get().to(show));
}

/// India Standard Time (UTC+05:30, no daylight saving): how the web UI shows times.
pub fn ist() -> FixedOffset {
    FixedOffset::east_opt(5 * 3600 + 30 * 60).expect("UTC+05:30 is a valid offset")
}

/// A moment as people in India read it: `07 Mar 2025, 14:05`.
pub fn local_time(at: DateTime<Utc>) -> String {
    at.with_timezone(&ist()).format("%d %b %Y, %H:%M").to_string()
}

/// The history page.
#[derive(Template)]
#[template(path = "web/history.html")]
struct HistoryPage {
    chrome: Chrome,
    filters: Filters,
    statuses: Vec<&'static str>,
    errors: FieldErrors,
    rows: Vec<Row>,
    live_topics: String,
    total: i64,
    totals: TotalsText,
    page: i64,
    pages: i64,
    page_links: Vec<PageLink>,
    previous: Option<String>,
    next: Option<String>,
    filtered: bool,
}

/// One session as the table shows it.
struct Row {
    id: i64,
    status: String,
    open: bool,
    started: String,
    stopped: String,
    energy_kwh: String,
    cost: String,
    duration: String,
    station: String,
    charge_point_id: String,
}

/// Totals in the units people read.
#[derive(Default)]
struct TotalsText {
    sessions: i64,
    energy_kwh: String,
    spent: String,
}

/// A numbered page link.
struct PageLink {
    number: i64,
    href: String,
    current: bool,
}

/// `?status&period&from&to&page`, as typed (checked by [`Filters::parse`]).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct HistoryQuery {
    status: String,
    period: String,
    from: String,
    to: String,
    page: String,
}

/// The filters as typed, for the form and the page links.
#[derive(Debug, Default, Clone)]
struct Filters {
    status: String,
    period: String,
    from: String,
    to: String,
}

impl Filters {
    /// The query string for these filters on `page` (page 1 is left out).
    fn href(&self, page: i64) -> String {
        let mut pairs = Vec::new();
        for (name, value) in
            [("status", &self.status), ("period", &self.period), ("from", &self.from), ("to", &self.to)]
        {
            if !value.is_empty() {
                let value = percent_encoding::utf8_percent_encode(value, super::PATH_SEGMENT);
                pairs.push(format!("{name}={value}"));
            }
        }
        if page > 1 {
            pairs.push(format!("page={page}"));
        }
        if pairs.is_empty() { "/history".to_owned() } else { format!("/history?{}", pairs.join("&")) }
    }

    /// Checks the filters; what is wrong is reported next to its field.
    fn parse(&self, now: DateTime<Utc>) -> Result<HistoryCriteria, FieldErrors> {
        let status = match self.status.as_str() {
            "" | "all" => None,
            s if STATUSES.contains(&s) => Some(s.to_owned()),
            _ => return Err(FieldErrors::field("status", "Choose a status from the list.")),
        };
        let period_start = match self.period.as_str() {
            "" | "all-time" => None,
            "recent" => Some(now - Duration::days(30)),
            "this-month" => {
                let local = now.with_timezone(&ist());
                ist().with_ymd_and_hms(local.year(), local.month(), 1, 0, 0, 0).single().map(|d| d.to_utc())
            }
            _ => return Err(FieldErrors::field("period", "Choose a period from the list.")),
        };
        let from = day_start(&self.from).map_err(|m| FieldErrors::field("from", m))?;
        let to = day_start(&self.to).map_err(|m| FieldErrors::field("to", m))?;
        if let (Some(from), Some(to)) = (from, to)
            && to < from
        {
            return Err(FieldErrors::field("to", "The end date is before the start date."));
        }
        let since = match (period_start, from) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        // `to` is inclusive: up to the end of that day.
        let until = to.map(|t| t + Duration::days(1));
        Ok(HistoryCriteria { status, since, until })
    }

    fn any(&self) -> bool {
        !(matches!(self.status.as_str(), "" | "all")
            && matches!(self.period.as_str(), "" | "all-time")
            && self.from.is_empty()
            && self.to.is_empty())
    }
}

/// The start of a day (`YYYY-MM-DD`, India time) in UTC; `None` for an empty field.
fn day_start(text: &str) -> Result<Option<DateTime<Utc>>, &'static str> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| "Enter a date as YYYY-MM-DD.")?;
    let midnight = date.and_hms_opt(0, 0, 0).ok_or("Enter a date as YYYY-MM-DD.")?;
    let local = ist().from_local_datetime(&midnight).single().ok_or("Enter a date as YYYY-MM-DD.")?;
    Ok(Some(local.to_utc()))
}

fn kwh(wh: i64) -> String {
    format!("{:.3}", (Decimal::from(wh) / Decimal::from(1000)).round_dp(3))
}

fn row(view: SessionView) -> Row {
    let open = matches!(view.status.as_str(), "active" | "pending");
    Row {
        id: view.id,
        open,
        started: view.started_at.map(local_time).unwrap_or_else(|| "Not started".to_owned()),
        stopped: match view.ended_at {
            Some(at) => local_time(at),
            None if open => "Charging…".to_owned(),
            None => "–".to_owned(),
        },
        energy_kwh: format!("{:.3}", view.energy_kwh),
        cost: inr(view.cost),
        duration: duration(view.duration_seconds),
        station: view.station_name.unwrap_or_else(|| "–".to_owned()),
        charge_point_id: view.charge_point_id,
        status: view.status,
    }
}

/// `GET /history`: the driver's sessions with filters, pagination and totals.
pub async fn show(
    session: WebSession,
    query: web::Query<HistoryQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    let query = query.into_inner();
    let filters = Filters { status: query.status, period: query.period, from: query.from, to: query.to };
    let now = state.clock.now();
    let mut page = HistoryPage {
        chrome: session.chrome("Charging history"),
        statuses: STATUSES.to_vec(),
        errors: FieldErrors::default(),
        rows: Vec::new(),
        live_topics: String::new(),
        total: 0,
        totals: TotalsText::default(),
        page: 1,
        pages: 1,
        page_links: Vec::new(),
        previous: None,
        next: None,
        filtered: filters.any(),
        filters: filters.clone(),
    };
    let number = match query.page.trim() {
        "" => Ok(1),
        text => text.parse::<i64>().ok().filter(|n| (1..=100_000).contains(n)).ok_or(()),
    };
    let criteria = match (filters.parse(now), number) {
        (Ok(criteria), Ok(_)) => criteria,
        (Err(errors), _) => {
            page.errors = errors;
            return html(StatusCode::UNPROCESSABLE_ENTITY, &page);
        }
        (_, Err(())) => {
            page.errors = FieldErrors::field("page", "There is no such page.");
            return html(StatusCode::UNPROCESSABLE_ENTITY, &page);
        }
    };
    let number = number.unwrap_or(1);
    let mut conn = pool::connection(&state.pool).await.map_err(ApiError::from)?;
    let offset = (number - 1) * PAGE_SIZE;
    let (rows, total) = session_views::history_filtered(&mut conn, session.user.id, &criteria, PAGE_SIZE, offset)
        .await
        .map_err(ApiError::from)?;
    let totals = session_views::totals_filtered(&mut conn, session.user.id, &criteria).await.map_err(ApiError::from)?;
    drop(conn);

    let pages = ((total + PAGE_SIZE - 1) / PAGE_SIZE).max(1);
    page.rows = rows.into_iter().map(|r| row(SessionView::new(r, now))).collect();
    page.live_topics =
        page.rows.iter().filter(|r| r.open).map(|r| format!("session:{}", r.id)).collect::<Vec<_>>().join(" ");
    page.total = total;
    page.totals = TotalsText { sessions: totals.sessions, energy_kwh: kwh(totals.energy_wh), spent: inr(totals.spent) };
    page.page = number;
    page.pages = pages;
    page.page_links = (1..=pages)
        .filter(|n| *n == 1 || *n == pages || (n - number).abs() <= 2)
        .map(|n| PageLink { number: n, href: filters.href(n), current: n == number })
        .collect();
    page.previous = (number > 1).then(|| filters.href((number - 1).min(pages)));
    page.next = (number < pages).then(|| filters.href(number + 1));
    html(StatusCode::OK, &page)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filters(status: &str, period: &str, from: &str, to: &str) -> Filters {
        Filters { status: status.into(), period: period.into(), from: from.into(), to: to.into() }
    }

    #[test]
    fn dates_are_whole_days_in_india_time() {
        let now = Utc::now();
        let criteria = filters("", "", "2025-03-01", "2025-03-02").parse(now).expect("valid");
        assert_eq!(criteria.since, Some(Utc.with_ymd_and_hms(2025, 2, 28, 18, 30, 0).unwrap()));
        assert_eq!(criteria.until, Some(Utc.with_ymd_and_hms(2025, 3, 2, 18, 30, 0).unwrap()));
        assert!(filters("", "", "2025-03-02", "2025-03-01").parse(now).is_err_and(|e| e.get("to").is_some()));
        assert!(filters("", "", "1/3/2025", "").parse(now).is_err_and(|e| e.get("from").is_some()));
        assert!(filters("paid", "", "", "").parse(now).is_err_and(|e| e.get("status").is_some()));
    }

    #[test]
    fn page_links_keep_the_filters() {
        let f = filters("completed", "", "2025-03-01", "");
        assert_eq!(f.href(1), "/history?status=completed&from=2025-03-01");
        assert_eq!(f.href(3), "/history?status=completed&from=2025-03-01&page=3");
        assert_eq!(Filters::default().href(1), "/history");
    }
}
