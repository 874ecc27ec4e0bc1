//! The station owner's dashboard (`GET /owner`): stations, chargers online, sessions under way
//! and today's revenue and energy, with every charger's online state and connector statuses
//! updated live over `/ws`. Also the pieces the other owner pages share: the owner guard,
//! charger rows with their live badges, links and time formatting.
//!
//! "Today" is the calendar day in India (midnight IST to now, by the server's clock), and its
//! figures are the revenue report's for the day (`/owner/reports`): a settled session counts on
//! the day it was settled, revenue (charging and booking fees) on the day it was earned.

use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::{DateTime, Utc};
use kilowatt_actors::accounts::Role;
use kilowatt_actors::store::{pool, session_views, stations};

use super::dashboard::inr;
use super::session::{Chrome, WebError, WebSession, html};
use crate::auth::Auth;
use crate::http::api::owner_chargers::{ChargerSummary, list_chargers};
use crate::http::api::owner_stations::list_stations;
use crate::http::api::reports::{ReportQuery, period, station_report};
use crate::http::error::ApiError;
use crate::state::AppState;

/// Most topics one browser socket may hold (the socket refuses more): pages subscribe to the
/// first this many chargers; the rest show their state as of the page load.
const MAX_LIVE_CHARGERS: usize = 32;

/// Registers the dashboard.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/owner", web::get().to(show));
}

/// The stations an owner page offers to filter by: the owner's (every station for an admin),
/// as ID and name.
pub(crate) async fn station_choices(state: &AppState, session: &WebSession) -> Result<Vec<(String, String)>, WebError> {
    let owner_id = (session.role != Role::Admin).then_some(session.user.id);
    let mut conn = pool::connection(&state.pool).await.map_err(ApiError::from)?;
    let owned = stations::list_owned(&mut conn, owner_id).await.map_err(ApiError::from)?;
    Ok(owned.into_iter().map(|s| (s.id.to_string(), s.name)).collect())
}

/// The signed-in owner or admin as the API's functions take them; a driver gets the API's 403.
pub(crate) fn owner(session: &WebSession) -> Result<Auth, WebError> {
    let auth = session.auth();
    auth.require_owner()?;
    Ok(auth)
}

/// `/owner/chargers/{chargePointId}`, the ID escaped for a path.
pub(crate) fn charger_href(charge_point_id: &str) -> String {
    format!("/owner/chargers/{}", percent_encoding::utf8_percent_encode(charge_point_id, super::PATH_SEGMENT))
}

/// A time as pages show it (UTC), or a dash.
pub(crate) fn when(at: Option<DateTime<Utc>>) -> String {
    at.map_or_else(|| "–".to_owned(), |at| at.format("%Y-%m-%d %H:%M:%S UTC").to_string())
}

/// `data-topics` for these chargers (at most [`MAX_LIVE_CHARGERS`]).
pub(crate) fn charger_topics<'a>(charge_point_ids: impl Iterator<Item = &'a str>) -> String {
    charge_point_ids.take(MAX_LIVE_CHARGERS).map(|id| format!("charger:{id}")).collect::<Vec<_>>().join(" ")
}

/// A charger in a list, with what its live badges show.
pub(crate) struct ChargerRow {
    /// The charge point ID.
    pub(crate) charge_point_id: String,
    /// Its page.
    pub(crate) href: String,
    /// Connected now.
    pub(crate) online: bool,
    /// accepted, pending or rejected.
    pub(crate) registration_status: String,
    /// Last heard from, if ever.
    pub(crate) last_seen: Option<String>,
    /// Connector number and OCPP status.
    pub(crate) connectors: Vec<(i32, String)>,
}

impl From<&ChargerSummary> for ChargerRow {
    fn from(c: &ChargerSummary) -> Self {
        ChargerRow {
            charge_point_id: c.charge_point_id.clone(),
            href: charger_href(&c.charge_point_id),
            online: c.online,
            registration_status: c.registration_status.clone(),
            last_seen: c.last_seen_at.map(|at| when(Some(at))),
            connectors: c.connectors.iter().map(|k| (k.connector_id, k.status.clone())).collect(),
        }
    }
}

/// A station on the dashboard.
struct StationCard {
    id: i64,
    name: String,
    address: String,
    price: String,
    active: bool,
    chargers: Vec<ChargerRow>,
}

/// The dashboard.
#[derive(Template)]
#[template(path = "web/owner_dashboard.html")]
struct DashboardPage {
    chrome: Chrome,
    stations_count: usize,
    chargers_online: usize,
    chargers_total: usize,
    active_sessions: usize,
    running_revenue: String,
    today: String,
    today_sessions: i64,
    today_revenue: String,
    today_energy_kwh: String,
    stations: Vec<StationCard>,
    unassigned: Vec<ChargerRow>,
    topics: String,
}

/// `GET /owner`: the dashboard.
pub async fn show(session: WebSession, state: web::Data<AppState>) -> Result<HttpResponse, WebError> {
    let auth = owner(&session)?;
    let stations = list_stations(&state, &auth).await?;
    let chargers = list_chargers(&state, &auth, None).await?;
    let owner_id = if auth.role == Role::Admin { None } else { Some(auth.user.id) };
    let mut conn = pool::connection(&state.pool).await.map_err(ApiError::from)?;
    let open = session_views::open_at_stations(&mut conn, owner_id).await.map_err(ApiError::from)?;
    drop(conn);
    // Today's figures are the revenue report's for today, so the two always agree.
    let today = period(&ReportQuery::default(), state.clock.now())?.1;
    let day =
        station_report(&state, &auth, &ReportQuery { from: Some(today), to: Some(today), ..ReportQuery::default() })
            .await?
            .totals;

    let topics = charger_topics(chargers.iter().map(|c| c.charge_point_id.as_str()));
    let chargers_online = chargers.iter().filter(|c| c.online).count();
    let chargers_total = chargers.len();
    let cards: Vec<StationCard> = stations
        .into_iter()
        .map(|s| StationCard {
            chargers: chargers
                .iter()
                .filter(|c| c.station.as_ref().is_some_and(|at| at.id == s.id))
                .map(ChargerRow::from)
                .collect(),
            id: s.id,
            name: s.name,
            address: s.address,
            price: inr(s.price_per_kwh),
            active: s.active,
        })
        .collect();
    let stations_count = cards.len();
    let unassigned = chargers.iter().filter(|c| c.station.is_none()).map(ChargerRow::from).collect();
    let page = DashboardPage {
        chrome: session.chrome("Owner dashboard"),
        stations_count,
        chargers_online,
        chargers_total,
        active_sessions: open.len(),
        running_revenue: inr(open.iter().map(|s| s.cost).sum()),
        today: today.to_string(),
        today_sessions: day.sessions,
        today_revenue: inr(day.revenue),
        today_energy_kwh: day.energy_kwh.to_string(),
        stations: cards,
        unassigned,
        topics,
    };
    html(actix_web::http::StatusCode::OK, &page)
}
