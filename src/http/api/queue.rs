//! Waiting queues: `POST /api/chargers/{chargePointId}/queue` joins a busy charger's queue,
//! `DELETE` leaves it, `GET /api/queue` shows the driver's place and an estimated wait. The
//! charger's QueueActor hands out connectors as they free up.

use actix_web::{HttpResponse, delete, get, post, web};
use chrono::{DateTime, Utc};
use kilowatt_actors::ocpp::CentralSystemRequest;
use kilowatt_actors::registry::{CommandCharger, QueueChanged};
use kilowatt_actors::store::queue::{self, JoinError, QueueEntry};
use kilowatt_actors::store::{pool, reservations, session_views};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::auth::Auth;
use crate::http::error::ApiError;
use crate::http::ocpp::valid_charge_point_id;
use crate::http::openapi::{Empty, Envelope, ErrorEnvelope};
use crate::http::response;
use crate::state::AppState;

/// Minutes assumed per session where a charger has no history yet.
const DEFAULT_SESSION_MINUTES: f64 = 45.0;

/// Which connector to wait for.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JoinQueue {
    /// A specific connector; leave out to take whichever frees up first.
    connector_id: Option<i32>,
}

/// The driver's place in a queue.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueuePlace {
    /// Entry ID.
    pub id: i64,
    /// The charger.
    pub charge_point_id: String,
    /// The connector waited for; `null`: any.
    pub connector_id: Option<i32>,
    /// `waiting`, or `held` when a connector is held for the driver now.
    pub status: String,
    /// 1 for the first in line.
    pub position: usize,
    /// Drivers in this queue.
    pub queue_length: usize,
    /// A rough estimate from the charger's recent sessions, minutes (0 when held).
    pub estimated_wait_minutes: i64,
    /// The connector held for the driver.
    pub held_connector_id: Option<i32>,
    /// Until when it is held; start charging before then.
    pub held_until: Option<DateTime<Utc>>,
    /// When the driver joined.
    pub joined_at: DateTime<Utc>,
}

async fn place(
    conn: &mut kilowatt_actors::store::AsyncPgConnection,
    entry: QueueEntry,
    charge_point_id: String,
) -> Result<QueuePlace, ApiError> {
    let line = queue::live_for_charger(conn, entry.charger_id).await?;
    let position = line.iter().position(|e| e.id == entry.id).map_or(line.len(), |p| p + 1);
    let connectors = queue::charger_connectors(conn, &charge_point_id).await?.map_or(1, |(_, c)| c.len().max(1));
    let minutes = queue::average_session_minutes(conn, entry.charger_id).await?.unwrap_or(DEFAULT_SESSION_MINUTES);
    let estimated = if entry.status == "held" {
        0
    } else {
        // Everyone ahead, spread over the connectors, each taking a typical session.
        (((position - 1) / connectors + 1) as f64 * minutes).round() as i64
    };
    Ok(QueuePlace {
        id: entry.id,
        charge_point_id,
        connector_id: entry.connector_number,
        status: entry.status,
        position,
        queue_length: line.len(),
        estimated_wait_minutes: estimated,
        held_connector_id: entry.held_connector,
        held_until: entry.held_until,
        joined_at: entry.joined_at,
    })
}

fn charge_point(path: &str) -> Result<String, ApiError> {
    if valid_charge_point_id(path) {
        Ok(path.to_owned())
    } else {
        Err(ApiError::validation("chargePointId", "This is not a charge point ID."))
    }
}

/// `POST /api/chargers/{chargePointId}/queue`: wait for a busy charger.
#[utoipa::path(
    tag = "queue",
    security(("bearer" = [])),
    params(("chargePointId" = String, Path, description = "The charger")),
    request_body(content = Option<JoinQueue>, description = "Optional: `{\"connectorId\": 1}`"),
    responses(
        (status = 201, description = "In the queue", body = Envelope<QueuePlace>),
        (status = 401, description = "Not signed in", body = ErrorEnvelope),
        (status = 404, description = "No such charger or connector", body = ErrorEnvelope),
        (status = 409, description = "`already_queued`, `charging_here` or `connector_available` (start now instead)", body = ErrorEnvelope),
        (status = 422, description = "Invalid body", body = ErrorEnvelope),
    )
)]
#[post("/api/chargers/{chargePointId}/queue")]
pub async fn join(
    auth: Auth,
    path: web::Path<String>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let charge_point_id = charge_point(&path)?;
    let request: JoinQueue = if body.iter().all(u8::is_ascii_whitespace) {
        JoinQueue::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::validation("connectorId", format!("Invalid body: {e}")))?
    };
    Ok(response::created(join_queue(&state, &auth, &charge_point_id, request.connector_id).await?))
}

/// Puts the driver in a busy charger's queue (for one connector, or `None`: whichever frees
/// first), as `POST /api/chargers/{chargePointId}/queue` and the charger page's Join queue do.
/// Refuses with 409 `charging_here`, `connector_available` or `already_queued`.
pub async fn join_queue(
    state: &AppState,
    auth: &Auth,
    charge_point_id: &str,
    connector_id: Option<i32>,
) -> Result<QueuePlace, ApiError> {
    let charge_point_id = charge_point(charge_point_id)?;
    let now = state.clock.now();
    let mut conn = pool::connection(&state.pool).await?;
    let (charger_id, connectors) = queue::charger_connectors(&mut conn, &charge_point_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("No charger {charge_point_id}.")))?;
    if let Some(connector) = connector_id
        && !connectors.contains(&connector)
    {
        return Err(ApiError::not_found(format!("No connector {connector} on {charge_point_id}.")));
    }
    if let Some(open) = session_views::open_for_driver(&mut conn, auth.user.id).await?
        && open.charge_point_id == charge_point_id
    {
        return Err(ApiError::conflict("charging_here", "You are charging at this charger already."));
    }
    for connector in connectors.iter().copied().filter(|c| connector_id.is_none_or(|r| r == *c)) {
        if queue::connector_free(&mut conn, charger_id, connector).await?
            && reservations::holding(&mut conn, charger_id, connector, now).await?.is_none()
            && queue::live_for_charger(&mut conn, charger_id).await?.is_empty()
        {
            return Err(ApiError::conflict(
                "connector_available",
                format!("Connector {connector} is free: start charging instead of queueing."),
            ));
        }
    }
    let entry = queue::join(&mut conn, charger_id, connector_id, auth.user.id, now).await.map_err(|e| match e {
        JoinError::AlreadyQueued => ApiError::conflict("already_queued", "You are already waiting in a queue."),
        JoinError::Store(e) => e.into(),
    })?;
    let answer = place(&mut conn, entry, charge_point_id.clone()).await?;
    drop(conn);
    state.registry.do_send(QueueChanged(charge_point_id.clone()));
    tracing::info!(user_id = auth.user.id, %charge_point_id, position = answer.position, "joined a queue");
    Ok(answer)
}

/// `DELETE /api/chargers/{chargePointId}/queue`: stop waiting (a held connector goes to the next driver).
#[utoipa::path(
    tag = "queue",
    security(("bearer" = [])),
    params(("chargePointId" = String, Path, description = "The charger")),
    responses(
        (status = 200, description = "Left the queue", body = Envelope<Empty>),
        (status = 401, description = "Not signed in", body = ErrorEnvelope),
        (status = 404, description = "Not in this charger's queue", body = ErrorEnvelope),
    )
)]
#[delete("/api/chargers/{chargePointId}/queue")]
pub async fn leave(auth: Auth, path: web::Path<String>, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    leave_queue(&state, &auth, &path).await?;
    Ok(response::ok(Empty {}))
}

/// Takes the driver out of a charger's queue (a held connector goes to the next driver), as
/// `DELETE /api/chargers/{chargePointId}/queue` and the queue page's Leave do; 404 when they
/// are not in it.
pub async fn leave_queue(state: &AppState, auth: &Auth, charge_point_id: &str) -> Result<(), ApiError> {
    let charge_point_id = charge_point(charge_point_id)?;
    let now = state.clock.now();
    let mut conn = pool::connection(&state.pool).await?;
    let (entry, _) = queue::live_for_driver(&mut conn, auth.user.id)
        .await?
        .filter(|(_, cp)| *cp == charge_point_id)
        .ok_or_else(|| ApiError::not_found("You are not in this charger's queue."))?;
    let hold = reservations::for_queue_entry(&mut conn, entry.id).await?;
    queue::finish(&mut conn, entry.id, "left", now).await?;
    if let Some(hold) = &hold {
        reservations::set_status(&mut conn, hold.id, "cancelled", now).await?;
    }
    drop(conn);
    if let Some(hold) = hold.filter(|h| h.status == "accepted")
        && let Ok(request) =
            CentralSystemRequest::from_action("CancelReservation", &json!({ "reservationId": hold.id }))
    {
        let _ = state.registry.send(CommandCharger { charge_point_id: charge_point_id.clone(), request }).await;
    }
    state.registry.do_send(QueueChanged(charge_point_id.clone()));
    tracing::info!(user_id = auth.user.id, %charge_point_id, "left a queue");
    Ok(())
}

/// `GET /api/queue`: where the driver is waiting.
#[utoipa::path(
    tag = "queue",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The driver's queue places (at most one)", body = Envelope<Vec<QueuePlace>>),
        (status = 401, description = "Not signed in", body = ErrorEnvelope),
    )
)]
#[get("/api/queue")]
pub async fn mine(auth: Auth, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Ok(response::ok(places_of(&state, auth.user.id).await?))
}

/// Where the driver is waiting: their queue places (at most one), as `GET /api/queue` and the
/// queue page show them.
pub async fn places_of(state: &AppState, user_id: i64) -> Result<Vec<QueuePlace>, ApiError> {
    let mut conn = pool::connection(&state.pool).await?;
    let mut places = Vec::new();
    if let Some((entry, charge_point_id)) = queue::live_for_driver(&mut conn, user_id).await? {
        places.push(place(&mut conn, entry, charge_point_id).await?);
    }
    Ok(places)
}
