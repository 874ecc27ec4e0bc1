//! The owner's Active Sessions page (`GET /owner/sessions`): the pending and active sessions at
//! their stations (every station for admins), live over `/ws`, with a Complete (normal stop) and
//! a Cancel (emergency stop) form per row. The list and both stops go through the same functions
//! as `GET /api/owner/sessions/active` and `POST /api/owner/sessions/{id}/complete|cancel`.

use std::collections::BTreeSet;

use actix_web::ResponseError;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::{DateTime, Utc};
use kilowatt_actors::accounts::Role;
use kilowatt_actors::session::StopInitiator;
use kilowatt_actors::store::chargers::{self, ChargerFilter};
use kilowatt_actors::store::pool;
use kilowatt_actors::store::session_views::{self, SessionRow};
use rust_decimal::Decimal;
use serde::Deserialize;

use super::auth::CsrfForm;
use super::dashboard::{duration, inr};
use super::session::{Chrome, WebError, WebSession, html, see_other};
use crate::http::api::owner_sessions::{active_sessions, owner_stop};
use crate::http::api::session_view::SessionView;
use crate::http::error::ApiError;
use crate::state::AppState;

/// The most topics the browser socket lets one page hold (see `kilowatt_actors::browser`).
/// Past that the page refreshes itself instead of listening to every charger.
pub const LIVE_TOPIC_LIMIT: usize = 32;

/// Registers the Active Sessions page and its two forms.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/owner/sessions", web::get().to(show))
        .route("/owner/sessions/{id}/complete", web::post().to(complete))
        .route("/owner/sessions/{id}/cancel", web::post().to(cancel));
}

/// The page.
#[derive(Template)]
#[template(path = "web/owner_sessions.html")]
struct ActiveSessionsPage {
    chrome: Chrome,
    count: usize,
    running_revenue: String,
    energy_kwh: String,
    rows: Vec<Row>,
    topics: String,
    topics_overflow: bool,
    notice: Option<String>,
    error: Option<String>,
    queue_hold_minutes: i64,
    admin: bool,
}

/// One session as the table shows it.
struct Row {
    id: i64,
    status: String,
    driver: String,
    driver_detail: Option<String>,
    station: String,
    charge_point_id: String,
    connector_id: i32,
    started_at: String,
    duration: String,
    duration_seconds: i64,
    ticking: bool,
    energy_wh: i64,
    energy_kwh: String,
    power_kw: String,
    cost: String,
    cost_value: String,
    price_per_kwh: String,
    stopping: Option<String>,
}

impl Row {
    fn new(s: SessionView) -> Self {
        let (username, name, email) = s.driver.map_or((None, None, None), |d| (d.username, d.name, d.email));
        let username = username.unwrap_or_else(|| "unknown driver".to_owned());
        let (name, detail) = match name.filter(|n| !n.trim().is_empty()) {
            Some(name) => (name, Some(format!("@{username}"))),
            None => (username, None),
        };
        let detail = match (detail, email) {
            (Some(d), Some(e)) => Some(format!("{d} · {e}")),
            (d, e) => d.or(e),
        };
        let active = s.status == "active";
        Row {
            id: s.id,
            driver: name,
            driver_detail: detail,
            station: s.station_name.unwrap_or_else(|| "–".to_owned()),
            charge_point_id: s.charge_point_id,
            connector_id: s.connector_id,
            started_at: s.started_at.map_or_else(|| "Waiting for the charger".to_owned(), local_time),
            duration: duration(s.duration_seconds),
            duration_seconds: s.duration_seconds,
            ticking: active,
            energy_wh: s.energy_wh,
            energy_kwh: format!("{:.3}", s.energy_kwh),
            power_kw: s.power_w.map_or("–".to_owned(), |w| format!("{:.1}", w as f64 / 1000.0)),
            cost: inr(s.cost),
            cost_value: s.cost.round_dp(2).to_string(),
            price_per_kwh: inr(s.price_per_kwh),
            // A stop was asked for and the charger has not confirmed yet.
            stopping: s.stop_reason.filter(|_| active),
            status: s.status,
        }
    }
}

use super::history::ist;

/// `12 Mar 2025, 14:05` in IST.
fn local_time(at: DateTime<Utc>) -> String {
    at.with_timezone(&ist()).format("%d %b %Y, %H:%M").to_string()
}

/// What the page answers after a Complete or Cancel: `?ended={sessionId}`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ShowQuery {
    ended: Option<String>,
}

/// `GET /owner/sessions`: the live table.
pub async fn show(
    session: WebSession,
    query: web::Query<ShowQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    let ended = query.ended.as_deref().and_then(|id| id.parse::<i64>().ok());
    let notice = match ended {
        Some(id) => outcome_notice(&session, &state, id).await?,
        None => None,
    };
    render(&session, &state, StatusCode::OK, notice, None).await
}

/// `POST /owner/sessions/{id}/complete`: a normal stop, as the API's complete.
pub async fn complete(
    session: WebSession,
    path: web::Path<i64>,
    form: web::Form<CsrfForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    end(session, path.into_inner(), &form.csrf, &state, StopInitiator::OwnerComplete).await
}

/// `POST /owner/sessions/{id}/cancel`: an emergency stop, as the API's cancel.
pub async fn cancel(
    session: WebSession,
    path: web::Path<i64>,
    form: web::Form<CsrfForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    end(session, path.into_inner(), &form.csrf, &state, StopInitiator::OwnerCancel).await
}

/// Completes or cancels, then back to the table with the outcome; a session that has already
/// ended is shown on the table as an error (409), anything else as an error page.
async fn end(
    session: WebSession,
    session_id: i64,
    csrf: &str,
    state: &AppState,
    initiator: StopInitiator,
) -> Result<HttpResponse, WebError> {
    session.check_csrf(csrf)?;
    match owner_stop(&session.auth(), session_id, state, initiator).await {
        Ok(_) => Ok(see_other(&format!("/owner/sessions?ended={session_id}"))),
        Err(error) if error.status_code() == StatusCode::CONFLICT => {
            let message = format!("Session #{session_id} could not be stopped: {}", error.message());
            render(&session, state, StatusCode::CONFLICT, None, Some(message)).await
        }
        Err(error) => Err(error.into()),
    }
}

/// What became of a session the owner just ended, read back from the database (so a reload
/// shows the truth, not what the form hoped for). Nothing for a session not at their stations.
async fn outcome_notice(session: &WebSession, state: &AppState, session_id: i64) -> Result<Option<String>, WebError> {
    let auth = session.auth();
    auth.require_owner()?;
    let mut conn = pool::connection(&state.pool).await.map_err(ApiError::from)?;
    let row = session_views::by_id(&mut conn, session_id).await.map_err(ApiError::from)?;
    Ok(row.filter(|row| auth.owns(row.station_owner_id)).map(|row| describe_outcome(&row)))
}

fn describe_outcome(row: &SessionRow) -> String {
    let id = row.id;
    let kwh = (Decimal::from(row.energy_wh) / Decimal::from(1000)).round_dp(3);
    let driver = row.driver_name.clone().or_else(|| row.driver_username.clone()).unwrap_or_else(|| "the driver".into());
    match row.status.as_str() {
        "completed" => format!(
            "Session #{id} completed: {kwh:.3} kWh billed, ₹{} debited from {driver}'s wallet. \
             The connector goes to the next driver in the queue once the charger reports it free.",
            inr(row.cost)
        ),
        "cancelled" => format!(
            "Session #{id} cancelled (emergency stop): {driver} was billed ₹{} for the {kwh:.3} kWh delivered. \
             The charger has been told to stop.",
            inr(row.cost)
        ),
        "failed" => format!("Session #{id} had not started at the charger: closed with nothing to bill."),
        _ => format!(
            "Stopping session #{id} — waiting for the charger to confirm. It is billed for the energy delivered \
             when the charger sends its final meter reading."
        ),
    }
}

async fn render(
    session: &WebSession,
    state: &AppState,
    status: StatusCode,
    notice: Option<String>,
    error: Option<String>,
) -> Result<HttpResponse, WebError> {
    let auth = session.auth();
    let live = active_sessions(&auth, state).await?;
    let owner_id = (session.role != Role::Admin).then_some(session.user.id);
    let mut conn = pool::connection(&state.pool).await.map_err(ApiError::from)?;
    let owned =
        chargers::list_owned(&mut conn, ChargerFilter { owner_id, station_id: None }).await.map_err(ApiError::from)?;
    drop(conn);

    // Sessions first (their meters), then their chargers (new and ended sessions), then the
    // other chargers (a session starting there), within what one socket may hold.
    let mut topics: Vec<String> = live.sessions.iter().map(|s| format!("session:{}", s.id)).collect();
    let chargers: BTreeSet<&str> = live.sessions.iter().map(|s| s.charge_point_id.as_str()).collect();
    topics.extend(chargers.iter().map(|cp| format!("charger:{cp}")));
    topics.extend(
        owned
            .iter()
            .filter(|c| c.station.is_some() && !chargers.contains(c.charger.charge_point_id.as_str()))
            .map(|c| format!("charger:{}", c.charger.charge_point_id)),
    );
    let topics_overflow = topics.len() > LIVE_TOPIC_LIMIT;
    topics.truncate(LIVE_TOPIC_LIMIT);

    let page = ActiveSessionsPage {
        chrome: session.chrome("Active sessions"),
        count: live.count,
        running_revenue: inr(live.running_revenue),
        energy_kwh: format!("{:.3}", Decimal::from(live.energy_wh) / Decimal::from(1000)),
        rows: live.sessions.into_iter().map(Row::new).collect(),
        topics: topics.join(" "),
        topics_overflow,
        notice,
        error,
        queue_hold_minutes: i64::try_from(state.config.policy.queue_hold.as_secs() / 60).unwrap_or(i64::MAX),
        admin: session.role == Role::Admin,
    };
    html(status, &page)
}
