//! Drivers start and stop charging: `POST /api/charging/start`, `POST /api/charging/stop`,
//! `GET /api/charging/sessions/active`. A start checks everything a driver can be told
//! about (charger, online, connector free, no other session, balance), creates the pending
//! session and sends RemoteStartTransaction; the charger's StartTransaction makes it active.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use kilowatt_actors::charger::command::{CommandError, SendCommand};
use kilowatt_actors::ocpp::CentralSystemRequest;
use kilowatt_actors::registry::{ChargerInbox, NotifySession, OpenSession, QueueChanged, StopSessionNow};
use kilowatt_actors::session::{SessionEvent, StopError, StopInitiator, StopOutcome, StopSession};
use kilowatt_actors::store::live_sessions::{self, RemoteStart, RemoteStartError};
use kilowatt_actors::store::session_views::{self, SessionRow};
use kilowatt_actors::store::sessions::{self, Settle};
use kilowatt_actors::store::{bookings, chargers, pool, queue, reservations};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::session_view::SessionView;
use crate::auth::Auth;
use crate::http::error::ApiError;
use crate::http::ocpp::valid_charge_point_id;
use crate::http::openapi::{Envelope, ErrorEnvelope};
use crate::http::response;
use crate::state::AppState;

/// A start request. The AppEV app's snake_case names are accepted too.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StartCharging {
    /// The charge point ID.
    #[serde(alias = "charger_id")]
    #[schema(example = "CP-001")]
    charger_id: String,
    /// The connector (1..n).
    #[serde(alias = "connector_id")]
    #[schema(example = 1)]
    connector_id: i32,
    /// Ignored: a driver always charges with their own idTag (accepted for the AppEV app).
    #[serde(alias = "id_tag")]
    #[allow(dead_code)]
    id_tag: Option<String>,
    /// Stop once this much energy is delivered, kWh.
    #[schema(value_type = Option<f64>, example = 20)]
    energy_limit_kwh: Option<Decimal>,
    /// Stop before the cost reaches this many INR.
    #[schema(value_type = Option<f64>, example = 300)]
    amount_limit: Option<Decimal>,
    /// The vehicle's battery level now, % (from the app).
    #[serde(alias = "battery_level")]
    battery_level: Option<i16>,
}

/// A start the charger accepted.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StartAccepted {
    /// The new session; its transaction ID follows when the charger starts.
    pub session_id: i64,
    /// `pending` until the charger's StartTransaction.
    pub status: &'static str,
    /// What to do now.
    pub message: &'static str,
}

/// `POST /api/charging/start`: start charging on a connector.
#[utoipa::path(
    tag = "charging",
    security(("bearer" = [])),
    request_body = StartCharging,
    responses(
        (status = 201, description = "The charger accepted; the session is pending until it starts", body = Envelope<StartAccepted>),
        (status = 401, description = "Not signed in", body = ErrorEnvelope),
        (status = 402, description = "`insufficient_balance`: the wallet holds less than the minimum to start", body = ErrorEnvelope),
        (status = 404, description = "No such charger or connector", body = ErrorEnvelope),
        (status = 409, description = "`charger_offline`, `connector_busy`, `session_active`, `start_rejected` or `charger_unavailable`", body = ErrorEnvelope),
        (status = 422, description = "A field is invalid", body = ErrorEnvelope),
        (status = 504, description = "`charger_timeout`: the charger did not answer", body = ErrorEnvelope),
    )
)]
#[post("/api/charging/start")]
pub async fn start(
    auth: Auth,
    body: web::Json<StartCharging>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let limit_energy_wh = match body.energy_limit_kwh {
        Some(kwh) if kwh <= Decimal::ZERO || kwh > Decimal::from(1000) => {
            return Err(ApiError::validation("energyLimitKwh", "An energy limit is more than 0 and at most 1000 kWh."));
        }
        Some(kwh) => i64::try_from((kwh * Decimal::from(1000)).round()).ok(),
        None => None,
    };
    if body.amount_limit.is_some_and(|a| a <= Decimal::ZERO) {
        return Err(ApiError::validation("amountLimit", "An amount limit is more than 0."));
    }
    let request = StartRequest {
        charger_id: body.charger_id,
        connector_id: body.connector_id,
        limit_energy_wh,
        limit_amount: body.amount_limit,
        battery_level: body.battery_level,
    };
    let session_id = begin(&auth, &state, request).await?;
    Ok(response::created(StartAccepted {
        session_id,
        status: "pending",
        message: "The charger accepted. Plug in if you have not; charging starts in a moment.",
    }))
}

/// What a start asks for, however the client named it.
#[derive(Debug, Clone)]
pub struct StartRequest {
    /// The charge point ID.
    pub charger_id: String,
    /// The connector.
    pub connector_id: i32,
    /// Energy limit, Wh.
    pub limit_energy_wh: Option<i64>,
    /// Money limit.
    pub limit_amount: Option<Decimal>,
    /// Battery level at start, %.
    pub battery_level: Option<i16>,
}

/// Checks a start, creates the pending session and sends RemoteStartTransaction; answers the
/// session once the charger accepted.
pub async fn begin(auth: &Auth, state: &AppState, body: StartRequest) -> Result<i64, ApiError> {
    if !valid_charge_point_id(&body.charger_id) {
        return Err(ApiError::validation("chargerId", "This is not a charge point ID."));
    }
    if body.connector_id < 1 {
        return Err(ApiError::validation("connectorId", "Connectors are numbered from 1."));
    }
    if body.battery_level.is_some_and(|b| !(0..=100).contains(&b)) {
        return Err(ApiError::validation("batteryLevel", "A battery level is 0 to 100."));
    }
    let mut conn = pool::connection(&state.pool).await?;
    // Whether the charger is connected (an actor message) and everything the database says about
    // this start (one statement) are asked at once.
    let (inbox, check) = tokio::join!(
        state.registry.send(ChargerInbox(body.charger_id.clone())),
        session_views::start_check(&mut conn, &body.charger_id, body.connector_id, auth.user.id, state.clock.now()),
    );
    let inbox = inbox.ok().flatten();
    let online = inbox.is_some();
    let Some(check) = check? else {
        // Connectors are known once the charger reports them: an offline charger is offline.
        if !online && chargers::view(&mut conn, &body.charger_id).await?.is_some() {
            return Err(ApiError::conflict("charger_offline", "This charger is offline right now."));
        }
        return Err(ApiError::not_found(format!("No connector {} on charger {}.", body.connector_id, body.charger_id)));
    };
    if !online {
        return Err(ApiError::conflict("charger_offline", "This charger is offline right now."));
    }
    if check.registration_status != "accepted" || check.station_id.is_none() {
        return Err(ApiError::conflict("charger_unavailable", "This charger is not open for charging yet."));
    }
    // A connector held for a queue turn or a booking is for that driver only.
    if check.held && check.hold_user_id != Some(auth.user.id) {
        return Err(ApiError::conflict(
            "connector_busy",
            format!("Connector {} is held for another driver right now.", body.connector_id),
        ));
    }
    let held_for_me = check.held;
    let usable = matches!(check.connector_status.as_str(), "Available" | "Preparing")
        || (held_for_me && check.connector_status == "Reserved");
    if !usable {
        return Err(ApiError::conflict(
            "connector_busy",
            format!("Connector {} is {} right now.", body.connector_id, check.connector_status),
        ));
    }
    if check.session_open {
        return Err(ApiError::conflict("session_active", "You already have a charging session under way."));
    }
    let balance = check.balance.unwrap_or_default();
    let minimum = state.config.policy.min_start_balance;
    if balance < minimum {
        return Err(ApiError::new(
            StatusCode::PAYMENT_REQUIRED,
            "insufficient_balance",
            format!("Your wallet holds ₹{balance}; recharge to at least ₹{minimum} to start."),
        ));
    }
    let remote = RemoteStart {
        user_id: auth.user.id,
        charger_id: check.charger_id,
        connector_id: check.connector_id,
        id_tag: auth.user.id_tag.clone(),
        source: "app",
        limit_energy_wh: body.limit_energy_wh,
        limit_amount: body.limit_amount,
        battery_level_start: body.battery_level,
        booking_id: check.hold_booking_id,
    };
    let session_id =
        live_sessions::create_pending(&mut conn, &remote, state.clock.now()).await.map_err(|e| match e {
            RemoteStartError::ConnectorBusy => ApiError::conflict("connector_busy", "This connector is busy."),
            RemoteStartError::SessionActive => {
                ApiError::conflict("session_active", "You already have a charging session under way.")
            }
            RemoteStartError::Store(e) => e.into(),
        })?;
    drop(conn);
    state.registry.do_send(OpenSession(session_id));

    let payload = json!({ "connectorId": body.connector_id, "idTag": auth.user.id_tag });
    let request = CentralSystemRequest::from_action("RemoteStartTransaction", &payload).map_err(ApiError::internal)?;
    // Straight to the charger's connection, which answers straight back.
    let answer = match inbox {
        Some(inbox) => inbox.send(SendCommand(request)).await.unwrap_or(Err(CommandError::Disconnected)),
        None => Err(CommandError::NotConnected(body.charger_id.clone())),
    };
    let failure = match answer {
        Ok(answer) if answer["status"] == "Accepted" => {
            tracing::info!(user_id = auth.user.id, session_id, charge_point_id = %body.charger_id, "remote start accepted");
            // Only a driver who held the connector or queued here has a turn to use up.
            if held_for_me || check.queued_here {
                let row_ids = (check.charger_id, check.connector_id);
                consume_hold(state, auth, &body.charger_id, row_ids, body.connector_id).await;
            }
            return Ok(session_id);
        }
        Ok(_) => ApiError::conflict("start_rejected", "The charger refused to start. Check the cable and try again."),
        Err(CommandError::Timeout { .. }) => {
            ApiError::new(StatusCode::GATEWAY_TIMEOUT, "charger_timeout", "The charger did not answer in time.")
        }
        Err(error) => ApiError::conflict("charger_offline", format!("The charger could not be reached: {error}")),
    };
    fail_start(state, session_id, failure.code()).await;
    Err(failure)
}

/// The driver's start used their hold (queue turn or booking): the reservation is used up and
/// their queue entry is done.
async fn consume_hold(
    state: &AppState,
    auth: &Auth,
    charge_point_id: &str,
    (charger_id, connector_id): (i64, i64),
    connector: i32,
) {
    let now = state.clock.now();
    let consumed = async {
        let mut conn = pool::connection(&state.pool).await?;
        let used = reservations::consume(&mut conn, charger_id, connector, auth.user.id, now).await?;
        let started = queue::mark_started(&mut conn, auth.user.id, charger_id, now).await?;
        if used.as_ref().is_some_and(|r| r.booking_id.is_some()) {
            bookings::mark_charging(&mut conn, auth.user.id, connector_id).await?;
        }
        Ok::<_, kilowatt_actors::store::StoreError>(used.is_some() || started)
    }
    .await;
    match consumed {
        Ok(true) => state.registry.do_send(QueueChanged(charge_point_id.to_owned())),
        Ok(false) => {}
        Err(error) => tracing::warn!(%error, "could not mark the hold used; it will lapse on its own"),
    }
}

/// Closes a pending session whose remote start did not happen: failed, nothing billed.
async fn fail_start(state: &AppState, session_id: i64, code: &str) {
    let now = state.clock.now();
    let how = Settle {
        ended_at: now,
        meter_stop: None,
        status: "failed",
        stop_reason: format!("The charger did not start ({code})"),
        ocpp_reason: None,
    };
    let settled = async {
        let mut conn = pool::connection(&state.pool).await?;
        sessions::settle(&mut conn, session_id, &how, now).await
    }
    .await;
    if let Err(error) = settled {
        tracing::warn!(session_id, %error, "could not close a failed start; its actor will time it out");
    }
    state.registry.do_send(NotifySession { session_id, event: SessionEvent::Settled });
}

/// A stop request: the session, or its transaction (the AppEV app sends `transaction_id`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StopCharging {
    /// The session.
    session_id: Option<i64>,
    /// Or its OCPP transaction ID.
    #[serde(alias = "transaction_id")]
    transaction_id: Option<i32>,
}

/// What a stop did.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StopAnswer {
    /// The session.
    pub session_id: i64,
    /// `stopping` (the charger is stopping; it settles on StopTransaction), or `completed`,
    /// `cancelled` or `failed` (it had not started) when settled at once.
    pub status: &'static str,
    /// Energy billed so far, Wh (final once settled).
    pub energy_wh: Option<i64>,
    /// Amount debited, once settled.
    pub cost: Option<Decimal>,
}

/// `POST /api/charging/stop`: the session's driver stops it.
#[utoipa::path(
    tag = "charging",
    security(("bearer" = [])),
    request_body = StopCharging,
    responses(
        (status = 200, description = "Stopping, or stopped and settled", body = Envelope<StopAnswer>),
        (status = 401, description = "Not signed in", body = ErrorEnvelope),
        (status = 404, description = "No such session of yours", body = ErrorEnvelope),
        (status = 409, description = "`session_ended`: it has already ended", body = ErrorEnvelope),
        (status = 422, description = "Neither sessionId nor transactionId given", body = ErrorEnvelope),
    )
)]
#[post("/api/charging/stop")]
pub async fn stop(
    auth: Auth,
    body: web::Json<StopCharging>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = pool::connection(&state.pool).await?;
    let row = match (body.session_id, body.transaction_id) {
        (Some(id), _) => session_views::by_id(&mut conn, id).await?.filter(|s| s.user_id == Some(auth.user.id)),
        (None, Some(tx)) => session_views::by_transaction(&mut conn, auth.user.id, tx).await?,
        (None, None) => return Err(ApiError::validation("sessionId", "Give sessionId or transactionId.")),
    };
    drop(conn);
    let row = row.ok_or_else(|| ApiError::not_found("You have no such session."))?;
    let answer = stop_session(&state, &row, StopInitiator::Driver).await?;
    tracing::info!(user_id = auth.user.id, session_id = row.id, status = answer.status, "driver stopped a session");
    Ok(response::ok(answer))
}

/// Asks the session's actor to stop; shared by drivers and owners.
pub async fn stop_session(
    state: &AppState,
    row: &SessionRow,
    initiator: StopInitiator,
) -> Result<StopAnswer, ApiError> {
    if !matches!(row.status.as_str(), "pending" | "active") {
        return Err(ApiError::conflict("session_ended", format!("This session has already ended ({}).", row.status)));
    }
    let outcome = state
        .registry
        .send(StopSessionNow { session_id: row.id, stop: StopSession(initiator) })
        .await
        .map_err(ApiError::internal)?;
    match outcome {
        Ok(StopOutcome::Stopping) => {
            Ok(StopAnswer { session_id: row.id, status: "stopping", energy_wh: Some(row.energy_wh), cost: None })
        }
        Ok(StopOutcome::Settled { status, energy_wh, cost }) => {
            Ok(StopAnswer { session_id: row.id, status, energy_wh: Some(energy_wh), cost: Some(cost) })
        }
        Err(StopError::Ended) => Err(ApiError::conflict("session_ended", "This session has already ended.")),
        Err(StopError::Store(error)) => Err(error.into()),
    }
}

/// `GET /api/charging/sessions/active`: the driver's session under way, or `null`.
#[utoipa::path(
    tag = "charging",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The session under way, or null", body = Envelope<Option<SessionView>>),
        (status = 401, description = "Not signed in", body = ErrorEnvelope),
    )
)]
#[get("/api/charging/sessions/active")]
pub async fn active(auth: Auth, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let mut conn = pool::connection(&state.pool).await?;
    let row = session_views::open_for_driver(&mut conn, auth.user.id).await?;
    let now = state.clock.now();
    Ok(response::ok(row.map(|row| SessionView::new(row, now))))
}
