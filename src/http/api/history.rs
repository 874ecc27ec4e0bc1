//! A driver's charging history and statistics: `GET /api/charging/sessions`,
//! `GET /api/charging/sessions/{sessionId}`, `POST /api/charging/sessions/{sessionId}/rating`,
//! `GET /api/charging/stats` and `GET /api/charging/dashboard` (everything at once).

use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, Datelike, Duration, TimeZone, Utc};
use kilowatt_actors::store::pool;
use kilowatt_actors::store::session_views::{self, Totals};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::session_view::SessionView;
use crate::auth::Auth;
use crate::http::error::ApiError;
use crate::http::openapi::{Envelope, ErrorEnvelope};
use crate::http::response;
use crate::state::AppState;

/// Which sessions to list.
#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Filter {
    /// The last 30 days.
    Recent,
    /// Since the first of this month (UTC).
    ThisMonth,
    /// Everything (the default).
    #[default]
    AllTime,
}

impl Filter {
    fn since(self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Filter::Recent => Some(now - Duration::days(30)),
            Filter::ThisMonth => Utc.with_ymd_and_hms(now.year(), now.month(), 1, 0, 0, 0).single(),
            Filter::AllTime => None,
        }
    }
}

/// History query.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// `recent`, `this-month` or `all-time` (default).
    filter: Option<Filter>,
    /// At most 100; default 50.
    limit: Option<i64>,
    /// Default 0.
    offset: Option<i64>,
}

/// Totals over sessions, in the units people read.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TotalsView {
    /// Sessions that started and ended.
    pub sessions: i64,
    /// Energy, kWh.
    pub energy_kwh: Decimal,
    /// Amount paid, INR.
    pub spent: Decimal,
}

impl From<&Totals> for TotalsView {
    fn from(totals: &Totals) -> Self {
        TotalsView { sessions: totals.sessions, energy_kwh: kwh(totals.energy_wh), spent: totals.spent }
    }
}

fn kwh(wh: i64) -> Decimal {
    (Decimal::from(wh) / Decimal::from(1000)).round_dp(3)
}

/// A page of history.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct History {
    /// Newest first.
    pub sessions: Vec<SessionView>,
    /// Sessions matching the filter in all.
    pub total: i64,
    /// The page size used.
    pub limit: i64,
    /// The offset used.
    pub offset: i64,
    /// Totals over the filter's ended sessions.
    pub totals: TotalsView,
}

/// `GET /api/charging/sessions`: the driver's sessions, newest first, with totals.
#[utoipa::path(
    tag = "charging",
    security(("bearer" = [])),
    params(HistoryQuery),
    responses(
        (status = 200, description = "A page of sessions", body = Envelope<History>),
        (status = 401, description = "Not signed in", body = ErrorEnvelope),
        (status = 422, description = "A bad filter, limit or offset", body = ErrorEnvelope),
    )
)]
#[get("/api/charging/sessions")]
pub async fn list(
    auth: Auth,
    query: web::Query<HistoryQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (limit, offset) = super::page(query.limit, query.offset, 50, 100)?;
    let now = state.clock.now();
    let since = query.filter.unwrap_or_default().since(now);
    let mut conn = pool::connection(&state.pool).await?;
    let (rows, total) = session_views::history(&mut conn, auth.user.id, since, limit, offset).await?;
    let totals = session_views::totals(&mut conn, auth.user.id, since).await?;
    Ok(response::ok(History {
        sessions: rows.into_iter().map(|row| SessionView::new(row, now)).collect(),
        total,
        limit,
        offset,
        totals: TotalsView::from(&totals),
    }))
}

/// `GET /api/charging/sessions/{sessionId}`: one of the driver's sessions.
#[utoipa::path(
    tag = "charging",
    security(("bearer" = [])),
    params(("sessionId" = i64, Path, description = "The session")),
    responses(
        (status = 200, description = "The session", body = Envelope<SessionView>),
        (status = 401, description = "Not signed in", body = ErrorEnvelope),
        (status = 404, description = "No such session of yours", body = ErrorEnvelope),
    )
)]
#[get("/api/charging/sessions/{sessionId}")]
pub async fn show(auth: Auth, path: web::Path<String>, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let session_id = session_id(&path)?;
    let mut conn = pool::connection(&state.pool).await?;
    let row = session_views::by_id(&mut conn, session_id)
        .await?
        .filter(|row| row.user_id == Some(auth.user.id))
        .ok_or_else(|| ApiError::not_found("You have no such session."))?;
    Ok(response::ok(SessionView::new(row, state.clock.now())))
}

/// `active` is a word the app uses in this path space; anything else must be a number.
fn session_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse().map_err(|_| ApiError::validation("sessionId", "A session ID is a number."))
}

/// A rating.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rating {
    /// 1 to 5 stars for the station.
    #[serde(alias = "stationRating")]
    rating: i16,
}

/// `POST /api/charging/sessions/{sessionId}/rating`: rate the station after a session.
#[utoipa::path(
    tag = "charging",
    security(("bearer" = [])),
    params(("sessionId" = i64, Path, description = "The session")),
    request_body = Rating,
    responses(
        (status = 200, description = "Saved", body = Envelope<SessionView>),
        (status = 401, description = "Not signed in", body = ErrorEnvelope),
        (status = 404, description = "No such ended session of yours", body = ErrorEnvelope),
        (status = 422, description = "The rating is not 1 to 5", body = ErrorEnvelope),
    )
)]
#[post("/api/charging/sessions/{sessionId}/rating")]
pub async fn rate(
    auth: Auth,
    path: web::Path<String>,
    body: web::Json<Rating>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let session_id = session_id(&path)?;
    if !(1..=5).contains(&body.rating) {
        return Err(ApiError::validation("rating", "A rating is 1 to 5."));
    }
    let mut conn = pool::connection(&state.pool).await?;
    if !session_views::rate(&mut conn, auth.user.id, session_id, body.rating).await? {
        return Err(ApiError::not_found("You have no such ended session."));
    }
    let row = session_views::by_id(&mut conn, session_id).await?.ok_or_else(|| ApiError::not_found("Gone."))?;
    Ok(response::ok(SessionView::new(row, state.clock.now())))
}

/// One month of charging.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MonthView {
    /// `YYYY-MM`.
    pub month: String,
    /// Sessions.
    pub sessions: i64,
    /// Energy, kWh.
    pub energy_kwh: Decimal,
    /// Amount paid.
    pub spent: Decimal,
}

/// The station charged at most often.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FavouriteStation {
    /// Station ID.
    pub id: i64,
    /// Its name.
    pub name: String,
}

/// A driver's statistics.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// Sessions that started and ended.
    pub total_sessions: i64,
    /// Energy, kWh.
    pub total_energy_kwh: Decimal,
    /// Amount paid, INR.
    pub total_spent: Decimal,
    /// Average session, minutes.
    pub average_session_minutes: Decimal,
    /// Where the driver charges most.
    pub favourite_station: Option<FavouriteStation>,
    /// The last 12 months, oldest first (months without charging are left out).
    pub monthly_usage: Vec<MonthView>,
}

async fn stats_for(state: &AppState, user_id: i64) -> Result<Stats, ApiError> {
    let now = state.clock.now();
    let mut conn = pool::connection(&state.pool).await?;
    let totals = session_views::totals(&mut conn, user_id, None).await?;
    let year_ago = Utc.with_ymd_and_hms(now.year() - 1, now.month(), 1, 0, 0, 0).single().unwrap_or(now);
    let months = session_views::monthly_usage(&mut conn, user_id, year_ago).await?;
    let favourite = session_views::favourite_station(&mut conn, user_id).await?;
    let average = if totals.sessions == 0 {
        Decimal::ZERO
    } else {
        (Decimal::from(totals.duration_seconds) / Decimal::from(60 * totals.sessions)).round_dp(1)
    };
    Ok(Stats {
        total_sessions: totals.sessions,
        total_energy_kwh: kwh(totals.energy_wh),
        total_spent: totals.spent,
        average_session_minutes: average,
        favourite_station: favourite.map(|(id, name)| FavouriteStation { id, name }),
        monthly_usage: months
            .into_iter()
            .map(|m| MonthView { month: m.month, sessions: m.sessions, energy_kwh: kwh(m.energy_wh), spent: m.spent })
            .collect(),
    })
}

/// `GET /api/charging/stats`: totals, average duration, favourite station, monthly usage.
#[utoipa::path(
    tag = "charging",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Statistics", body = Envelope<Stats>),
        (status = 401, description = "Not signed in", body = ErrorEnvelope),
    )
)]
#[get("/api/charging/stats")]
pub async fn stats(auth: Auth, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Ok(response::ok(stats_for(&state, auth.user.id).await?))
}

/// Everything the app's home screen shows.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Dashboard {
    /// The 10 most recent sessions.
    pub sessions: Vec<SessionView>,
    /// Statistics.
    pub stats: Stats,
    /// The session under way, if any.
    pub active_session: Option<SessionView>,
}

/// `GET /api/charging/dashboard`: recent sessions, statistics and the active session at once.
#[utoipa::path(
    tag = "charging",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The dashboard", body = Envelope<Dashboard>),
        (status = 401, description = "Not signed in", body = ErrorEnvelope),
    )
)]
#[get("/api/charging/dashboard")]
pub async fn dashboard(auth: Auth, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let now = state.clock.now();
    let statistics = stats_for(&state, auth.user.id).await?;
    let mut conn = pool::connection(&state.pool).await?;
    let (recent, _) = session_views::history(&mut conn, auth.user.id, None, 10, 0).await?;
    let active = session_views::open_for_driver(&mut conn, auth.user.id).await?;
    Ok(response::ok(Dashboard {
        sessions: recent.into_iter().map(|row| SessionView::new(row, now)).collect(),
        stats: statistics,
        active_session: active.map(|row| SessionView::new(row, now)),
    }))
}
