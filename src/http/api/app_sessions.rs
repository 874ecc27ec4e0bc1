//! The AppEV app's session flow (seed 001): `POST /api/charging/sessions/start`,
//! `PUT /api/charging/sessions/active/update` and `POST /api/charging/sessions/end`. They work
//! on the same sessions as the rest of the API: start is a remote start, the app's battery level
//! is recorded as the state of charge (many AC chargers do not send SoC), and on a connector
//! the owner marked as not metered the app's energy — or, failing that, the estimate from the
//! battery levels and the vehicle's battery size — is what is billed.

use actix_web::{HttpResponse, post, put, web};
use kilowatt_actors::registry::NotifySession;
use kilowatt_actors::session::{SessionEvent, StopInitiator};
use kilowatt_actors::store::session_views;
use kilowatt_actors::store::{live_sessions, pool};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::charging::{StartRequest, StopAnswer, begin, stop_session};
use super::session_view::SessionView;
use crate::auth::Auth;
use crate::http::error::ApiError;
use crate::http::openapi::{Envelope, ErrorEnvelope};
use crate::http::response;
use crate::state::AppState;

/// A connector named as a number or as the app's `"connector-1"`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum ConnectorRef {
    /// `1`.
    Number(i32),
    /// `"connector-1"` or `"1"`.
    Name(String),
}

impl ConnectorRef {
    fn number(&self) -> Result<i32, ApiError> {
        match self {
            ConnectorRef::Number(n) => Ok(*n),
            ConnectorRef::Name(name) => name
                .trim()
                .trim_start_matches("connector-")
                .parse()
                .map_err(|_| ApiError::validation("connectorId", "Name a connector as 1 or 'connector-1'.")),
        }
    }
}

/// The app's start.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AppStart {
    /// The charge point ID (the app calls it `stationId`; `chargerId` works too).
    #[serde(alias = "chargerId")]
    #[schema(example = "CP-001")]
    station_id: String,
    /// The connector.
    connector_id: ConnectorRef,
    /// The battery level now, 0–100.
    battery_level_start: i16,
}

/// `POST /api/charging/sessions/start`: the app's start (a remote start like `/api/charging/start`).
#[utoipa::path(
    tag = "charging",
    security(("bearer" = [])),
    request_body = AppStart,
    responses(
        (status = 201, description = "The charger accepted; the session, pending until it starts", body = Envelope<SessionView>),
        (status = 401, description = "Not signed in", body = ErrorEnvelope),
        (status = 402, description = "`insufficient_balance`", body = ErrorEnvelope),
        (status = 404, description = "No such charger or connector", body = ErrorEnvelope),
        (status = 409, description = "`charger_offline`, `connector_busy`, `session_active`, `start_rejected`", body = ErrorEnvelope),
        (status = 422, description = "A field is invalid", body = ErrorEnvelope),
    )
)]
#[post("/api/charging/sessions/start")]
pub async fn start(
    auth: Auth,
    body: web::Json<AppStart>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let request = StartRequest {
        charger_id: body.station_id,
        connector_id: body.connector_id.number()?,
        limit_energy_wh: None,
        limit_amount: None,
        battery_level: Some(body.battery_level_start),
    };
    let session_id = begin(&auth, &state, request).await?;
    let mut conn = pool::connection(&state.pool).await?;
    let row = session_views::by_id(&mut conn, session_id).await?.ok_or_else(|| ApiError::not_found("Gone."))?;
    Ok(response::created(SessionView::new(row, state.clock.now())))
}

/// What the app reads from the vehicle.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AppUpdate {
    /// Battery level now, 0–100.
    battery_level: i16,
    /// Energy delivered so far, kWh (used on connectors not metered by the charger).
    #[schema(value_type = Option<f64>, example = 4.2)]
    energy_delivered: Option<Decimal>,
}

/// `PUT /api/charging/sessions/active/update`: the app reports battery level (and energy).
#[utoipa::path(
    tag = "charging",
    security(("bearer" = [])),
    request_body = AppUpdate,
    responses(
        (status = 200, description = "The session now", body = Envelope<SessionView>),
        (status = 401, description = "Not signed in", body = ErrorEnvelope),
        (status = 404, description = "No session under way", body = ErrorEnvelope),
        (status = 422, description = "A field is invalid", body = ErrorEnvelope),
    )
)]
#[put("/api/charging/sessions/active/update")]
pub async fn update(
    auth: Auth,
    body: web::Json<AppUpdate>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    if !(0..=100).contains(&body.battery_level) {
        return Err(ApiError::validation("batteryLevel", "A battery level is 0 to 100."));
    }
    let energy_wh = match body.energy_delivered {
        Some(kwh) if kwh < Decimal::ZERO || kwh > Decimal::from(1000) => {
            return Err(ApiError::validation("energyDelivered", "Energy delivered is 0 to 1000 kWh."));
        }
        Some(kwh) => i64::try_from((kwh * Decimal::from(1000)).round()).ok(),
        None => None,
    };
    let now = state.clock.now();
    let mut conn = pool::connection(&state.pool).await?;
    let progress = live_sessions::app_update(&mut conn, auth.user.id, body.battery_level, energy_wh, now)
        .await?
        .ok_or_else(|| ApiError::not_found("You have no session under way."))?;
    if !progress.metered {
        // The app is this connector's meter: the session checks limits and the wallet on it.
        state.registry.do_send(NotifySession {
            session_id: progress.session_id,
            event: SessionEvent::Progress {
                energy_wh: progress.energy_wh,
                power_w: None,
                cost: progress.cost,
                sampled_at: now,
            },
        });
    }
    let row =
        session_views::by_id(&mut conn, progress.session_id).await?.ok_or_else(|| ApiError::not_found("Gone."))?;
    state.bus.publish(
        kilowatt_actors::bus::session_topic(progress.session_id),
        "sessionUpdate",
        json!({ "sessionId": progress.session_id, "energyWh": row.energy_wh, "socPercent": row.soc_percent, "cost": row.cost }),
    );
    Ok(response::ok(SessionView::new(row, now)))
}

/// The app's end.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AppEnd {
    /// The session.
    session_id: i64,
    /// Battery level at the end, 0–100.
    battery_level_end: i16,
    /// 1–5 stars for the station.
    station_rating: Option<i16>,
}

/// The end of a session as the app sees it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppEnded {
    /// What the stop did.
    pub stop: StopAnswer,
    /// The session now.
    pub session: SessionView,
}

/// `POST /api/charging/sessions/end`: the app ends the session with the final battery level.
#[utoipa::path(
    tag = "charging",
    security(("bearer" = [])),
    request_body = AppEnd,
    responses(
        (status = 200, description = "Stopping or settled", body = Envelope<AppEnded>),
        (status = 401, description = "Not signed in", body = ErrorEnvelope),
        (status = 404, description = "No such session of yours", body = ErrorEnvelope),
        (status = 409, description = "`session_ended`", body = ErrorEnvelope),
        (status = 422, description = "A field is invalid", body = ErrorEnvelope),
    )
)]
#[post("/api/charging/sessions/end")]
pub async fn end(auth: Auth, body: web::Json<AppEnd>, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    if !(0..=100).contains(&body.battery_level_end) {
        return Err(ApiError::validation("batteryLevelEnd", "A battery level is 0 to 100."));
    }
    if body.station_rating.is_some_and(|r| !(1..=5).contains(&r)) {
        return Err(ApiError::validation("stationRating", "A rating is 1 to 5."));
    }
    let mut conn = pool::connection(&state.pool).await?;
    let row = session_views::by_id(&mut conn, body.session_id)
        .await?
        .filter(|row| row.user_id == Some(auth.user.id))
        .ok_or_else(|| ApiError::not_found("You have no such session."))?;
    if !matches!(row.status.as_str(), "pending" | "active") {
        return Err(ApiError::conflict("session_ended", "This session has already ended."));
    }
    live_sessions::app_end(&mut conn, row.id, body.battery_level_end, body.station_rating, state.clock.now()).await?;
    drop(conn);
    let stop = stop_session(&state, &row, StopInitiator::Driver).await?;
    let mut conn = pool::connection(&state.pool).await?;
    let row = session_views::by_id(&mut conn, row.id).await?.ok_or_else(|| ApiError::not_found("Gone."))?;
    Ok(response::ok(AppEnded { stop, session: SessionView::new(row, state.clock.now()) }))
}
