//! The driver's queue: `GET /queue` (where they wait: charger, connector, position, people
//! ahead, estimated wait, state, Leave), `POST /chargers/{chargePointId}/queue` (the charger
//! page's Join queue on a busy connector) and `POST /queue/{chargePointId}/leave`. Join and
//! Leave go through the same functions as `/api/chargers/{chargePointId}/queue`.
//!
//! The page is live: it listens on the driver's `user:{id}` topic and the charger's topic;
//! when the driver's turn comes (`queueTurn`), its script takes them to the charger page,
//! where the connector is held for them. Also here: what the charger page says about busy
//! connectors (why a connector is busy, holds, the driver's place in its queue).

use std::collections::HashMap;

use actix_web::ResponseError;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::{DateTime, Utc};
use kilowatt_actors::store::reservations::{self, Reservation};
use kilowatt_actors::store::{pool, queue};
use serde::Deserialize;

use super::bookings::When;
use super::session::{Chrome, WebError, WebSession, html, see_other};
use crate::http::api::queue::{QueuePlace, join_queue, leave_queue, places_of};
use crate::http::error::ApiError;
use crate::state::AppState;

/// Registers the queue pages.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/queue", web::get().to(show))
        .route("/queue/{chargePointId}/leave", web::post().to(leave))
        .route("/chargers/{chargePointId}/queue", web::post().to(join));
}

/// The driver's place in a queue, as the queue page and the charger page show it.
pub struct QueueSpot {
    /// The charger.
    pub charge_point_id: String,
    /// `connector 2`, or `any connector`.
    pub connector: String,
    /// `waiting` or `held`.
    pub status: String,
    /// What the state badge says.
    pub state_label: &'static str,
    /// 1 for the first in line.
    pub position: usize,
    /// Drivers before this one.
    pub ahead: usize,
    /// Drivers in the queue.
    pub length: usize,
    /// The estimate, in words.
    pub wait: String,
    /// When the driver joined.
    pub joined: When,
    /// The connector held for the driver now, and until when.
    pub held: Option<(i32, When)>,
}

impl QueueSpot {
    /// The API's queue place, for a page.
    pub fn new(place: QueuePlace) -> Self {
        let held = match (place.held_connector_id, place.held_until) {
            (Some(connector), Some(until)) if place.status == "held" => Some((connector, When::clock(until))),
            _ => None,
        };
        let minutes = place.estimated_wait_minutes;
        QueueSpot {
            connector: place.connector_id.map_or("any connector".to_owned(), |c| format!("connector {c}")),
            state_label: if held.is_some() { "Your turn" } else { "Waiting" },
            position: place.position,
            ahead: place.position.saturating_sub(1),
            length: place.queue_length,
            wait: match minutes {
                _ if held.is_some() => "Now".to_owned(),
                0 => "Soon".to_owned(),
                m if m < 60 => format!("about {m} min"),
                m => format!("about {} h {} min", m / 60, m % 60),
            },
            joined: When::date_time(place.joined_at),
            held,
            status: place.status,
            charge_point_id: place.charge_point_id,
        }
    }
}

/// `GET /queue`.
#[derive(Template)]
#[template(path = "web/queue.html")]
struct QueuePage {
    chrome: Chrome,
    topics: String,
    user_topic: String,
    places: Vec<QueueSpot>,
    error: Option<String>,
}

async fn render(
    session: &WebSession,
    state: &AppState,
    status: StatusCode,
    error: Option<String>,
) -> Result<HttpResponse, WebError> {
    let places: Vec<QueueSpot> = places_of(state, session.user.id).await?.into_iter().map(QueueSpot::new).collect();
    let user_topic = format!("user:{}", session.user.id);
    let mut topics = vec![user_topic.clone()];
    topics.extend(places.iter().map(|p| format!("charger:{}", p.charge_point_id)));
    let page = QueuePage { chrome: session.chrome("Queue"), topics: topics.join(" "), user_topic, places, error };
    html(status, &page)
}

/// `GET /queue`: where the driver waits.
pub async fn show(session: WebSession, state: web::Data<AppState>) -> Result<HttpResponse, WebError> {
    render(&session, &state, StatusCode::OK, None).await
}

/// The Join queue form: a connector number, or empty for whichever frees first.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct JoinForm {
    csrf: String,
    connector: String,
}

/// `POST /chargers/{chargePointId}/queue`: joins the charger's queue as the API does, then
/// shows the queue; a refusal (a free connector, charging here, queued elsewhere) is shown on
/// the charger page.
pub async fn join(
    session: WebSession,
    path: web::Path<String>,
    form: web::Form<JoinForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    session.check_csrf(&form.csrf)?;
    let charge_point_id = path.into_inner();
    let connector = match form.connector.trim() {
        "" | "any" => None,
        number => Some(number.parse::<i32>().map_err(|_| WebError::not_found("There is no such connector."))?),
    };
    match join_queue(&state, &session.auth(), &charge_point_id, connector).await {
        Ok(place) => {
            tracing::info!(user_id = session.user.id, %charge_point_id, position = place.position, "joined a queue on the web");
            Ok(see_other("/queue"))
        }
        Err(error) if error.code() == "already_queued" => {
            // A second click on Join: the driver is where they wanted to be.
            let places = places_of(&state, session.user.id).await?;
            if places.iter().any(|p| p.charge_point_id == charge_point_id) {
                return Ok(see_other("/queue"));
            }
            let message = match places.first() {
                Some(p) => format!("You are already waiting in the queue of {}. Leave it first.", p.charge_point_id),
                None => error.message().to_owned(),
            };
            super::charger::render(&session, &state, &charge_point_id, StatusCode::CONFLICT, Some(message)).await
        }
        Err(error) if error.status_code() == StatusCode::NOT_FOUND => Err(error.into()),
        Err(error) if error.status_code().is_client_error() => {
            let status = error.status_code();
            super::charger::render(&session, &state, &charge_point_id, status, Some(error.message().to_owned())).await
        }
        Err(error) => Err(error.into()),
    }
}

/// `POST /queue/{chargePointId}/leave`: leaves the queue as the API does.
pub async fn leave(
    session: WebSession,
    path: web::Path<String>,
    form: web::Form<super::auth::CsrfForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    session.check_csrf(&form.csrf)?;
    let charge_point_id = path.into_inner();
    match leave_queue(&state, &session.auth(), &charge_point_id).await {
        Ok(()) => Ok(see_other("/queue")),
        Err(error) if error.status_code().is_client_error() => {
            render(&session, &state, error.status_code(), Some(error.message().to_owned())).await
        }
        Err(error) => Err(error.into()),
    }
}

/// What the charger page needs to say about busy connectors: who holds which connector, and
/// where the driver waits.
pub struct BusyContext {
    holds: HashMap<i32, Reservation>,
    /// The driver's queue place (anywhere), if any.
    pub place: Option<QueuePlace>,
}

impl BusyContext {
    /// Loads the charger's live holds and the driver's queue place.
    pub async fn load(
        state: &AppState,
        user_id: i64,
        charge_point_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Self, ApiError> {
        let mut conn = pool::connection(&state.pool).await?;
        let mut holds = HashMap::new();
        if let Some((charger_id, connectors)) = queue::charger_connectors(&mut conn, charge_point_id).await? {
            for connector in connectors {
                if let Some(hold) = reservations::holding(&mut conn, charger_id, connector, now).await? {
                    holds.insert(connector, hold);
                }
            }
        }
        drop(conn);
        let place = places_of(state, user_id).await?.into_iter().next();
        Ok(BusyContext { holds, place })
    }

    /// Until when the connector is held for this driver, if it is.
    pub fn held_for(&self, connector: i32, user_id: i64) -> Option<DateTime<Utc>> {
        self.holds.get(&connector).filter(|h| h.user_id == Some(user_id)).map(|h| h.expires_at)
    }

    /// Whether someone else holds the connector.
    pub fn held_for_another(&self, connector: i32, user_id: i64) -> bool {
        self.holds.get(&connector).is_some_and(|h| h.user_id != Some(user_id))
    }

    /// Why a connector cannot be started on by this driver, in words; `None` when it is free
    /// (or held for them).
    pub fn busy_reason(&self, connector: i32, status: &str, user_id: i64) -> Option<String> {
        let hold = self.holds.get(&connector);
        if let Some(hold) = hold.filter(|h| h.user_id != Some(user_id)) {
            let until = When::clock(hold.expires_at).text;
            return Some(if hold.booking_id.is_some() {
                format!("Reserved for a booked slot (until {until}).")
            } else {
                format!("Held for the next driver in the queue until {until}.")
            });
        }
        let reason = match status {
            "Available" => return None,
            "Reserved" if hold.is_some() => return None,
            "Charging" | "SuspendedEV" | "SuspendedEVSE" => "In use: another driver is charging here.",
            "Preparing" => "In use: a car is plugged in and about to charge.",
            "Finishing" => "In use: a session is finishing; the car has yet to unplug.",
            "Reserved" => "Reserved for another driver.",
            "Faulted" => "Out of order: the charger reports a fault on this connector.",
            "Unavailable" => "Unavailable: taken out of service for now.",
            _ => "Busy right now.",
        };
        Some(reason.to_owned())
    }
}
