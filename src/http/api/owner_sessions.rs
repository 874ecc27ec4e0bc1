//! Station owners watch and end live sessions: `GET /api/owner/sessions/active` and
//! `POST /api/owner/sessions/{sessionId}/complete|cancel`. Complete is a normal stop (the
//! charger is told to stop and the session settles as Completed); Cancel is an emergency stop
//! that closes the session at once as Cancelled, billed for the energy delivered.

use actix_web::{HttpResponse, get, post, web};
use kilowatt_actors::session::StopInitiator;
use kilowatt_actors::store::pool;
use kilowatt_actors::store::session_views;
use rust_decimal::Decimal;
use serde::Serialize;
use utoipa::ToSchema;

use super::charging::{StopAnswer, stop_session};
use super::session_view::SessionView;
use crate::auth::Auth;
use crate::http::error::ApiError;
use crate::http::openapi::{Envelope, ErrorEnvelope};
use crate::http::response;
use crate::state::AppState;

/// Live sessions at the owner's stations.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActiveSessions {
    /// How many are under way.
    pub count: usize,
    /// Their running cost together.
    pub running_revenue: Decimal,
    /// Energy delivered so far together, Wh.
    pub energy_wh: i64,
    /// The sessions, oldest first.
    pub sessions: Vec<SessionView>,
}

/// `GET /api/owner/sessions/active`: sessions under way at my stations (all, for admins).
#[utoipa::path(
    tag = "owner",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Live sessions", body = Envelope<ActiveSessions>),
        (status = 401, description = "Not signed in", body = ErrorEnvelope),
        (status = 403, description = "Not an owner", body = ErrorEnvelope),
    )
)]
#[get("/api/owner/sessions/active")]
pub async fn active(auth: Auth, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Ok(response::ok(active_sessions(&auth, &state).await?))
}

/// The sessions under way at the owner's stations (every station for admins), with their
/// count and running totals; shared by the endpoint and the Active Sessions page.
pub async fn active_sessions(auth: &Auth, state: &AppState) -> Result<ActiveSessions, ApiError> {
    auth.require_owner()?;
    let owner = if auth.require_admin().is_ok() { None } else { Some(auth.user.id) };
    let mut conn = pool::connection(&state.pool).await?;
    let rows = session_views::open_at_stations(&mut conn, owner).await?;
    let now = state.clock.now();
    let sessions: Vec<SessionView> = rows.into_iter().map(|row| SessionView::for_owner(row, now)).collect();
    Ok(ActiveSessions {
        count: sessions.len(),
        running_revenue: sessions.iter().map(|s| s.cost).sum(),
        energy_wh: sessions.iter().map(|s| s.energy_wh).sum(),
        sessions,
    })
}

/// Ends a session at one of the owner's stations (any station for admins): Complete or Cancel,
/// as `initiator` says; shared by the endpoints and the Active Sessions page.
pub async fn owner_stop(
    auth: &Auth,
    session_id: i64,
    state: &AppState,
    initiator: StopInitiator,
) -> Result<StopAnswer, ApiError> {
    auth.require_owner()?;
    let mut conn = pool::connection(&state.pool).await?;
    let row = session_views::by_id(&mut conn, session_id).await?;
    drop(conn);
    let row = row
        .filter(|row| auth.owns(row.station_owner_id))
        .ok_or_else(|| ApiError::not_found("No such session at your stations."))?;
    let answer: StopAnswer = stop_session(state, &row, initiator).await?;
    tracing::info!(owner_id = auth.user.id, session_id, ?initiator, status = answer.status, "owner ended a session");
    Ok(answer)
}

/// `POST /api/owner/sessions/{sessionId}/complete`: a normal stop.
#[utoipa::path(
    tag = "owner",
    security(("bearer" = [])),
    params(("sessionId" = i64, Path, description = "The session")),
    responses(
        (status = 200, description = "Stopping, or completed and settled", body = Envelope<StopAnswer>),
        (status = 401, description = "Not signed in", body = ErrorEnvelope),
        (status = 403, description = "Not an owner", body = ErrorEnvelope),
        (status = 404, description = "No such session at my stations", body = ErrorEnvelope),
        (status = 409, description = "`session_ended`", body = ErrorEnvelope),
    )
)]
#[post("/api/owner/sessions/{sessionId}/complete")]
pub async fn complete(auth: Auth, path: web::Path<i64>, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Ok(response::ok(owner_stop(&auth, path.into_inner(), &state, StopInitiator::OwnerComplete).await?))
}

/// `POST /api/owner/sessions/{sessionId}/cancel`: an emergency stop, closed at once as Cancelled.
#[utoipa::path(
    tag = "owner",
    security(("bearer" = [])),
    params(("sessionId" = i64, Path, description = "The session")),
    responses(
        (status = 200, description = "Cancelled and settled for the energy delivered", body = Envelope<StopAnswer>),
        (status = 401, description = "Not signed in", body = ErrorEnvelope),
        (status = 403, description = "Not an owner", body = ErrorEnvelope),
        (status = 404, description = "No such session at my stations", body = ErrorEnvelope),
        (status = 409, description = "`session_ended`", body = ErrorEnvelope),
    )
)]
#[post("/api/owner/sessions/{sessionId}/cancel")]
pub async fn cancel(auth: Auth, path: web::Path<i64>, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Ok(response::ok(owner_stop(&auth, path.into_inner(), &state, StopInitiator::OwnerCancel).await?))
}
