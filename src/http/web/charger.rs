//! The charger page: live connector status (over `/ws`), Start on a free connector, and during
//! the driver's own session there the live meter and Stop. Start and Stop go through the same
//! functions as `POST /api/charging/start` and `/stop`. A busy connector says why, and offers
//! Join queue and Book a slot (or shows the driver's place in this charger's queue); a
//! connector held for the driver (their queue turn or booking) says until when.

use actix_web::ResponseError;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use kilowatt_actors::registry::IsConnected;
use kilowatt_actors::session::StopInitiator;
use kilowatt_actors::store::{chargers, pool, session_views};
use serde::Deserialize;

use super::bookings::When;
use super::dashboard::{duration, inr};
use super::queue::{BusyContext, QueueSpot};
use super::session::{Chrome, WebError, WebSession, html, see_other};
use crate::http::api::charging::{StartRequest, begin, stop_session};
use crate::http::api::session_view::SessionView;
use crate::http::error::ApiError;
use crate::http::ocpp::valid_charge_point_id;
use crate::state::AppState;

/// The charger page.
#[derive(Template)]
#[template(path = "web/charger.html")]
struct ChargerPage {
    chrome: Chrome,
    charge_point_id: String,
    online: bool,
    station: Option<(String, String, String)>,
    connectors: Vec<Connector>,
    session: Option<LiveSession>,
    charging_elsewhere: bool,
    error: Option<String>,
    user_topic: String,
    queue_here: Option<QueueSpot>,
    queued_elsewhere: Option<String>,
    can_queue: bool,
}

struct Connector {
    number: i32,
    status: String,
    startable: bool,
    busy: Option<String>,
    held_for_me: Option<When>,
}

struct LiveSession {
    id: i64,
    status: String,
    connector_id: i32,
    energy_kwh: String,
    power_kw: String,
    soc: String,
    duration: String,
    duration_seconds: i64,
    cost: String,
}

/// Renders the charger page (with a refusal to show, from Start or Join queue).
pub(super) async fn render(
    session: &WebSession,
    state: &AppState,
    charge_point_id: &str,
    status: StatusCode,
    error: Option<String>,
) -> Result<HttpResponse, WebError> {
    if !valid_charge_point_id(charge_point_id) {
        return Err(WebError::not_found(format!(
            "There is no charger {charge_point_id}. Check the ID on the charger."
        )));
    }
    let mut conn = pool::connection(&state.pool).await.map_err(ApiError::from)?;
    let Some(view) = chargers::view(&mut conn, charge_point_id).await.map_err(ApiError::from)? else {
        return Err(WebError::not_found(format!(
            "There is no charger {charge_point_id}. Check the ID on the charger."
        )));
    };
    let open = session_views::open_for_driver(&mut conn, session.user.id).await.map_err(ApiError::from)?;
    drop(conn);
    let connected = state.registry.send(IsConnected(charge_point_id.to_owned())).await.unwrap_or(false);
    let online = connected || (view.online && state.config.redis_url.is_some());
    let usable = online && view.registration_status == "accepted";
    let now = state.clock.now();
    let here = open.as_ref().is_some_and(|row| row.charge_point_id == view.charge_point_id);
    let charging_elsewhere = open.is_some() && !here;
    let live = open.filter(|_| here).map(|row| SessionView::new(row, now)).map(|s| LiveSession {
        id: s.id,
        status: s.status,
        connector_id: s.connector_id,
        energy_kwh: format!("{:.3}", s.energy_kwh),
        power_kw: s.power_w.map_or("–".to_owned(), |w| format!("{:.1}", w as f64 / 1000.0)),
        soc: s.soc_percent.map_or("–".to_owned(), |p| format!("{p}%")),
        duration: duration(s.duration_seconds),
        duration_seconds: s.duration_seconds,
        cost: inr(s.cost),
    });
    let can_start = usable && live.is_none() && !charging_elsewhere;
    let me = session.user.id;
    let busy = BusyContext::load(state, me, &view.charge_point_id, now).await?;
    let mine = live.as_ref().map(|s| s.connector_id);
    let connectors = view
        .connectors
        .into_iter()
        .map(|c| {
            let n = c.connector_number;
            let held_for_me = busy.held_for(n, me);
            // A connector held for this driver may report Reserved; one held for another is theirs.
            let free = if held_for_me.is_some() {
                matches!(c.status.as_str(), "Available" | "Reserved" | "Preparing")
            } else {
                c.status == "Available" && !busy.held_for_another(n, me)
            };
            Connector {
                number: n,
                startable: can_start && free,
                busy: if mine == Some(n) { None } else { busy.busy_reason(n, &c.status, me) },
                held_for_me: held_for_me.map(When::clock),
                status: c.status,
            }
        })
        .collect();
    let (queue_here, queued_elsewhere) = match busy.place {
        Some(place) if place.charge_point_id == view.charge_point_id => (Some(QueueSpot::new(place)), None),
        Some(place) => (None, Some(place.charge_point_id)),
        None => (None, None),
    };
    let can_queue = queue_here.is_none() && queued_elsewhere.is_none() && live.is_none();
    let page = ChargerPage {
        chrome: session.chrome(&format!("Charger {}", view.charge_point_id)),
        charge_point_id: view.charge_point_id,
        online,
        station: view.station.map(|(_, name, address, price)| (name, address, inr(price))),
        connectors,
        session: live,
        charging_elsewhere,
        error,
        user_topic: format!("user:{me}"),
        queue_here,
        queued_elsewhere,
        can_queue,
    };
    html(status, &page)
}

/// `GET /chargers/{chargePointId}`.
pub async fn show(
    session: WebSession,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    render(&session, &state, &path, StatusCode::OK, None).await
}

/// The Start form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct StartForm {
    csrf: String,
    connector: i32,
}

/// `POST /chargers/{chargePointId}/start`: starts charging as `POST /api/charging/start` does;
/// a refusal is shown on the page.
pub async fn start(
    session: WebSession,
    path: web::Path<String>,
    form: web::Form<StartForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    session.check_csrf(&form.csrf)?;
    let charge_point_id = path.into_inner();
    let request = StartRequest {
        charger_id: charge_point_id.clone(),
        connector_id: form.connector,
        limit_energy_wh: None,
        limit_amount: None,
        battery_level: None,
    };
    match begin(&session.auth(), &state, request).await {
        Ok(_) => Ok(see_other(&page_path(&charge_point_id))),
        Err(error) if error.status_code().is_client_error() || error.status_code() == StatusCode::GATEWAY_TIMEOUT => {
            let status = error.status_code();
            render(&session, &state, &charge_point_id, status, Some(error.message().to_owned())).await
        }
        Err(error) => Err(error.into()),
    }
}

/// The Stop form: the CSRF token and, optionally, the page to go back to (history sends
/// `/history`); without one, the charger's page.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct StopForm {
    csrf: String,
    next: String,
}

/// `POST /sessions/{id}/stop`: stops the driver's own session, as `POST /api/charging/stop`.
pub async fn stop(
    session: WebSession,
    path: web::Path<i64>,
    form: web::Form<StopForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    session.check_csrf(&form.csrf)?;
    let mut conn = pool::connection(&state.pool).await.map_err(ApiError::from)?;
    let row = session_views::by_id(&mut conn, path.into_inner()).await.map_err(ApiError::from)?;
    drop(conn);
    let row = row
        .filter(|s| s.user_id == Some(session.user.id))
        .ok_or_else(|| WebError::not_found("You have no such session."))?;
    stop_session(&state, &row, StopInitiator::Driver).await?;
    tracing::info!(user_id = session.user.id, session_id = row.id, "driver stopped a session on the web");
    let back = if form.next.is_empty() {
        page_path(&row.charge_point_id)
    } else {
        super::session::safe_next(Some(&form.next))
    };
    Ok(see_other(&back))
}

fn page_path(charge_point_id: &str) -> String {
    format!("/chargers/{}", percent_encoding::utf8_percent_encode(charge_point_id, super::PATH_SEGMENT))
}
