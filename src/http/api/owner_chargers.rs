//! An owner's chargers: add (or claim) one under a station, list and inspect them, move them,
//! set their OCPP password and metering, send them OCPP commands and read their message log.
//! As with stations, another owner's charger answers 404; admins reach every charger.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, patch, post, web};
use chrono::{DateTime, Utc};
use kilowatt_actors::accounts::Role;
use kilowatt_actors::charger::command::CommandError;
use kilowatt_actors::ocpp::messages::TriggerMessageRequest;
use kilowatt_actors::ocpp::{CentralSystemRequest, ErrorCode, MessageTrigger};
use kilowatt_actors::registry::CommandCharger;
use kilowatt_actors::store::chargers::{
    self, AddChargerError, AddedCharger, ChargerChanges, ChargerFilter, ConnectorRecord, NewCharger, OwnedCharger,
    StatusHistoryEntry,
};
use kilowatt_actors::store::ocpp_log::{self, LogEntry, LogFilter};
use kilowatt_actors::store::{AsyncPgConnection, pool, stations};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::nullable;
use super::owner_stations::owned_station;
use crate::auth::{self, Auth};
use crate::http::error::ApiError;
use crate::http::ocpp::valid_charge_point_id;
use crate::http::openapi::{Envelope, ErrorEnvelope};
use crate::http::response;
use crate::state::AppState;

/// How many status reports a charger's detail shows.
const STATUS_HISTORY: i64 = 50;

/// The station a charger belongs to.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StationRefView {
    /// Station ID.
    pub id: i64,
    /// Name.
    pub name: String,
}

/// A connector as its owner sees it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OwnerConnector {
    /// Connector number (1..n).
    pub connector_id: i32,
    /// OCPP status, or Unknown before the first report.
    pub status: String,
    /// OCPP error code.
    pub error_code: String,
    /// The charger's info text.
    pub info: Option<String>,
    /// The vendor's error code.
    pub vendor_error_code: Option<String>,
    /// `false` when the charger's meter is not trusted and the app's energy is used.
    pub metered: bool,
    /// When the status was reported.
    pub status_at: Option<DateTime<Utc>>,
}

impl From<ConnectorRecord> for OwnerConnector {
    fn from(c: ConnectorRecord) -> Self {
        OwnerConnector {
            connector_id: c.connector_number,
            status: c.status,
            error_code: c.error_code,
            info: c.info,
            vendor_error_code: c.vendor_error_code,
            metered: c.metered,
            status_at: c.status_at,
        }
    }
}

/// A charger in an owner's list.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChargerSummary {
    /// The charge point ID.
    pub charge_point_id: String,
    /// Its station; `null` while unassigned (only admins see those).
    pub station: Option<StationRefView>,
    /// `accepted`, `pending` or `rejected`.
    pub registration_status: String,
    /// Connected now.
    pub online: bool,
    /// Whether it must present an OCPP Basic-auth password.
    pub password_set: bool,
    /// Last heard from.
    pub last_seen_at: Option<DateTime<Utc>>,
    /// Connectors 1..n.
    pub connectors: Vec<OwnerConnector>,
}

impl From<OwnedCharger> for ChargerSummary {
    fn from(owned: OwnedCharger) -> Self {
        let c = owned.charger;
        ChargerSummary {
            charge_point_id: c.charge_point_id,
            station: owned.station.map(|s| StationRefView { id: s.id, name: s.name }),
            registration_status: c.registration_status,
            online: c.online,
            password_set: c.password_hash.is_some(),
            last_seen_at: c.last_seen_at,
            connectors: owned.connectors.into_iter().map(OwnerConnector::from).collect(),
        }
    }
}

/// One status report.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusHistoryView {
    /// Connector number (0 = the charger as a whole).
    pub connector_id: i32,
    /// OCPP status.
    pub status: String,
    /// OCPP error code.
    pub error_code: String,
    /// Info text.
    pub info: Option<String>,
    /// Vendor error code.
    pub vendor_error_code: Option<String>,
    /// The charger's own timestamp, if it sent one.
    pub reported_at: Option<DateTime<Utc>>,
    /// When Kilowatt received it.
    pub received_at: DateTime<Utc>,
}

impl From<StatusHistoryEntry> for StatusHistoryView {
    fn from(e: StatusHistoryEntry) -> Self {
        StatusHistoryView {
            connector_id: e.connector_number,
            status: e.status,
            error_code: e.error_code,
            info: e.info,
            vendor_error_code: e.vendor_error_code,
            reported_at: e.reported_at,
            received_at: e.received_at,
        }
    }
}

/// A charger in full: what it reported at boot, its firmware and diagnostics state and its
/// recent status reports.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChargerDetail {
    /// Station, state and connectors.
    #[serde(flatten)]
    pub summary: ChargerSummary,
    /// Vendor (BootNotification).
    pub vendor: Option<String>,
    /// Model.
    pub model: Option<String>,
    /// Charge point serial number.
    pub charge_point_serial: Option<String>,
    /// Charge box serial number.
    pub charge_box_serial: Option<String>,
    /// Firmware version.
    pub firmware_version: Option<String>,
    /// SIM ICCID.
    pub iccid: Option<String>,
    /// SIM IMSI.
    pub imsi: Option<String>,
    /// Meter type.
    pub meter_type: Option<String>,
    /// Meter serial number.
    pub meter_serial: Option<String>,
    /// Last FirmwareStatusNotification status.
    pub firmware_status: Option<String>,
    /// Last DiagnosticsStatusNotification status.
    pub diagnostics_status: Option<String>,
    /// When the current (or last) connection opened.
    pub connected_at: Option<DateTime<Utc>>,
    /// Last BootNotification.
    pub last_boot_at: Option<DateTime<Utc>>,
    /// Registered.
    pub created_at: DateTime<Utc>,
    /// Recent status reports, newest first.
    pub status_history: Vec<StatusHistoryView>,
}

impl ChargerDetail {
    fn new(owned: OwnedCharger, history: Vec<StatusHistoryEntry>) -> Self {
        let c = owned.charger.clone();
        ChargerDetail {
            summary: ChargerSummary::from(owned),
            vendor: c.vendor,
            model: c.model,
            charge_point_serial: c.charge_point_serial,
            charge_box_serial: c.charge_box_serial,
            firmware_version: c.firmware_version,
            iccid: c.iccid,
            imsi: c.imsi,
            meter_type: c.meter_type,
            meter_serial: c.meter_serial,
            firmware_status: c.firmware_status,
            diagnostics_status: c.diagnostics_status,
            connected_at: c.connected_at,
            last_boot_at: c.last_boot_at,
            created_at: c.created_at,
            status_history: history.into_iter().map(StatusHistoryView::from).collect(),
        }
    }
}

/// A charger to add to a station.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewChargerBody {
    /// The ID the charger connects with: 1 to 48 letters, digits, `.`, `_`, `:` or `-`.
    #[schema(example = "CP-0001")]
    pub(crate) charge_point_id: String,
    /// How many connectors it has, 1 to 10 (default 1).
    #[schema(example = 2)]
    pub(crate) connectors: Option<i32>,
    /// OCPP Basic-auth password (security profile 1), 8 to 64 printable characters; stored
    /// hashed. Without one the charger connects without authentication.
    pub(crate) password: Option<String>,
}

/// `POST /api/owner/stations/{stationId}/chargers`: add a charger to one of my stations. An
/// unassigned charger that already connected (under the `pending` or `accept` policy) is
/// claimed: it is accepted at its next BootNotification, and asked for one at once.
#[utoipa::path(
    tag = "owner",
    security(("bearer" = [])),
    params(("stationId" = i64, Path, description = "The station")),
    request_body = NewChargerBody,
    responses(
        (status = 201, description = "Added or claimed", body = Envelope<ChargerDetail>),
        (status = 401, description = "Not signed in", body = ErrorEnvelope),
        (status = 403, description = "Not an owner", body = ErrorEnvelope),
        (status = 404, description = "No such station of yours", body = ErrorEnvelope),
        (status = 409, description = "The charge point ID belongs to a station already", body = ErrorEnvelope),
        (status = 422, description = "A field is invalid", body = ErrorEnvelope),
    )
)]
#[post("/api/owner/stations/{stationId}/chargers")]
pub async fn create(
    auth: Auth,
    path: web::Path<i64>,
    body: web::Json<NewChargerBody>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    Ok(response::created(add_charger(&state, &auth, path.into_inner(), body.into_inner()).await?))
}

/// Adds (or claims) a charger under one of the caller's stations, as
/// `POST /api/owner/stations/{stationId}/chargers` does.
pub(crate) async fn add_charger(
    state: &AppState,
    auth: &Auth,
    station_id: i64,
    body: NewChargerBody,
) -> Result<ChargerDetail, ApiError> {
    auth.require_owner()?;
    let charge_point_id = body.charge_point_id.trim().to_owned();
    check_charge_point_id(&charge_point_id)?;
    let connectors = body.connectors.unwrap_or(1);
    if !(1..=10).contains(&connectors) {
        return Err(ApiError::validation("connectors", "A charger has 1 to 10 connectors."));
    }
    let mut conn = pool::connection(&state.pool).await?;
    let station = owned_station(&mut conn, auth, station_id).await?;
    drop(conn);
    let password_hash = match body.password {
        Some(password) => Some(hash_password(password).await?),
        None => None,
    };
    let new =
        NewCharger { charge_point_id: charge_point_id.clone(), station_id: station.id, password_hash, connectors };
    let mut conn = pool::connection(&state.pool).await?;
    let added = chargers::add_or_claim(&mut conn, &new, state.clock.now()).await.map_err(|e| match e {
        AddChargerError::Exists(id) => {
            ApiError::conflict("charger_exists", format!("Charge point {id} already belongs to a station."))
                .with_field("chargePointId")
        }
        AddChargerError::Store(e) => e.into(),
    })?;
    match &added {
        AddedCharger::Created(_) => {
            tracing::info!(user_id = auth.user.id, station_id = station.id, %charge_point_id, "charger added");
        }
        AddedCharger::Claimed(_, previous) => {
            tracing::info!(user_id = auth.user.id, station_id = station.id, %charge_point_id, %previous, "charger claimed");
            if previous != "accepted" {
                ask_to_boot_again(state, &charge_point_id);
            }
        }
    }
    charger_detail(&mut conn, &charge_point_id).await
}

/// A claimed charger that was told Pending (or Rejected) would otherwise wait for its next
/// boot interval: ask it to send BootNotification now, if it is connected. Best effort.
fn ask_to_boot_again(state: &AppState, charge_point_id: &str) {
    let request = CentralSystemRequest::TriggerMessage(TriggerMessageRequest {
        requested_message: MessageTrigger::BootNotification,
        connector_id: None,
    });
    let call = CommandCharger { charge_point_id: charge_point_id.to_owned(), request };
    let registry = state.registry.clone();
    let charge_point_id = charge_point_id.to_owned();
    actix_rt::spawn(async move {
        match registry.send(call).await {
            Ok(Ok(_)) => tracing::info!(%charge_point_id, "claimed charger asked to boot again"),
            Ok(Err(error)) => tracing::debug!(%charge_point_id, %error, "claimed charger not asked to boot again"),
            Err(error) => tracing::warn!(%charge_point_id, %error, "registry unavailable"),
        }
    });
}

/// Filters for the charger list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ChargerListQuery {
    /// Only chargers at this station.
    station_id: Option<i64>,
}

/// `GET /api/owner/chargers`: my chargers, by charge point ID (an admin sees every charger,
/// unassigned ones included).
#[utoipa::path(
    tag = "owner",
    security(("bearer" = [])),
    params(ChargerListQuery),
    responses(
        (status = 200, description = "The chargers", body = Envelope<Vec<ChargerSummary>>),
        (status = 401, description = "Not signed in", body = ErrorEnvelope),
        (status = 403, description = "Not an owner", body = ErrorEnvelope),
    )
)]
#[get("/api/owner/chargers")]
pub async fn list(
    auth: Auth,
    query: web::Query<ChargerListQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    Ok(response::ok(list_chargers(&state, &auth, query.station_id).await?))
}

/// The caller's chargers (every charger, unassigned ones included, for an admin), by charge
/// point ID, optionally only those at one station.
pub(crate) async fn list_chargers(
    state: &AppState,
    auth: &Auth,
    station_id: Option<i64>,
) -> Result<Vec<ChargerSummary>, ApiError> {
    auth.require_owner()?;
    let owner_id = if auth.role == Role::Admin { None } else { Some(auth.user.id) };
    let filter = ChargerFilter { owner_id, station_id };
    let mut conn = pool::connection(&state.pool).await?;
    Ok(chargers::list_owned(&mut conn, filter).await?.into_iter().map(ChargerSummary::from).collect())
}

/// `GET /api/owner/chargers/{chargePointId}`: one of my chargers in full.
#[utoipa::path(
    tag = "owner",
    security(("bearer" = [])),
    params(("chargePointId" = String, Path, description = "The charge point ID")),
    responses(
        (status = 200, description = "The charger", body = Envelope<ChargerDetail>),
        (status = 401, description = "Not signed in", body = ErrorEnvelope),
        (status = 403, description = "Not an owner", body = ErrorEnvelope),
        (status = 404, description = "No such charger of yours", body = ErrorEnvelope),
        (status = 422, description = "Not a valid charge point ID", body = ErrorEnvelope),
    )
)]
#[get("/api/owner/chargers/{chargePointId}")]
pub async fn show(auth: Auth, path: web::Path<String>, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Ok(response::ok(owned_charger_detail(&state, &auth, &path).await?))
}

/// One of the caller's chargers in full; 404 for anybody else's.
pub(crate) async fn owned_charger_detail(
    state: &AppState,
    auth: &Auth,
    charge_point_id: &str,
) -> Result<ChargerDetail, ApiError> {
    auth.require_owner()?;
    let mut conn = pool::connection(&state.pool).await?;
    let owned = owned_charger(&mut conn, auth, charge_point_id).await?;
    let history = chargers::status_history(&mut conn, owned.charger.id, STATUS_HISTORY).await?;
    Ok(ChargerDetail::new(owned, history))
}

/// A connector's metering.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectorChange {
    /// Connector number, 1 to 100.
    pub(crate) connector_id: i32,
    /// `false` when the charger's meter is not to be trusted for billing.
    pub(crate) metered: bool,
}

/// Charger changes; absent fields are left alone.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChargerChangesBody {
    /// Move it to another of my stations.
    pub(crate) station_id: Option<i64>,
    /// New OCPP Basic-auth password (8 to 64 printable characters), or `null` to let it
    /// connect without one. Takes effect at its next connection.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub(crate) password: Option<Option<String>>,
    /// Metering per connector.
    pub(crate) connectors: Option<Vec<ConnectorChange>>,
}

/// `PATCH /api/owner/chargers/{chargePointId}`: move one of my chargers, set or clear its
/// password, mark its connectors metered or not.
#[utoipa::path(
    tag = "owner",
    security(("bearer" = [])),
    params(("chargePointId" = String, Path, description = "The charge point ID")),
    request_body = ChargerChangesBody,
    responses(
        (status = 200, description = "The updated charger", body = Envelope<ChargerDetail>),
        (status = 401, description = "Not signed in", body = ErrorEnvelope),
        (status = 403, description = "Not an owner", body = ErrorEnvelope),
        (status = 404, description = "No such charger of yours", body = ErrorEnvelope),
        (status = 422, description = "A field is invalid", body = ErrorEnvelope),
    )
)]
#[patch("/api/owner/chargers/{chargePointId}")]
pub async fn update(
    auth: Auth,
    path: web::Path<String>,
    body: web::Json<ChargerChangesBody>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    Ok(response::ok(update_charger(&state, &auth, &path, body.into_inner()).await?))
}

/// Checks and applies changes to one of the caller's chargers (the API's and the web UI's
/// update); nothing changes when a field is invalid.
pub(crate) async fn update_charger(
    state: &AppState,
    auth: &Auth,
    charge_point_id: &str,
    body: ChargerChangesBody,
) -> Result<ChargerDetail, ApiError> {
    auth.require_owner()?;
    let metered: Vec<(i32, bool)> =
        body.connectors.unwrap_or_default().into_iter().map(|c| (c.connector_id, c.metered)).collect();
    if metered.iter().any(|(n, _)| !(1..=100).contains(n)) {
        return Err(ApiError::validation("connectors", "A connector number is 1 to 100."));
    }
    let mut conn = pool::connection(&state.pool).await?;
    let owned = owned_charger(&mut conn, auth, charge_point_id).await?;
    if let Some(station_id) = body.station_id {
        let target = stations::find(&mut conn, station_id).await?;
        if !target.is_some_and(|s| auth.owns(Some(s.owner_id))) {
            return Err(ApiError::validation("stationId", format!("You have no station {station_id}.")));
        }
    }
    drop(conn);
    let password_hash = match body.password {
        Some(Some(password)) => Some(Some(hash_password(password).await?)),
        Some(None) => Some(None),
        None => None,
    };
    let changes = ChargerChanges { station_id: body.station_id, password_hash, metered };
    let mut conn = pool::connection(&state.pool).await?;
    chargers::update_owned(&mut conn, owned.charger.id, &changes, state.clock.now()).await?;
    tracing::info!(
        user_id = auth.user.id,
        charge_point_id = %owned.charger.charge_point_id,
        station_id = ?changes.station_id,
        password_changed = changes.password_hash.is_some(),
        "charger updated"
    );
    charger_detail(&mut conn, &owned.charger.charge_point_id).await
}

/// What a charger answered to a command.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommandAnswer {
    /// The OCPP action sent.
    #[schema(example = "Reset")]
    pub action: String,
    /// The charger's CALLRESULT payload, as it sent it.
    #[schema(value_type = Object, example = json!({"status": "Accepted"}))]
    pub response: Value,
}

/// `POST /api/owner/chargers/{chargePointId}/commands/{action}`: send one of my chargers an
/// OCPP 1.6 command and wait for its answer. The body is the command's OCPP payload (`{}` for
/// commands without fields), validated as a charger would before anything is sent.
#[utoipa::path(
    tag = "owner",
    security(("bearer" = [])),
    params(
        ("chargePointId" = String, Path, description = "The charge point ID"),
        ("action" = String, Path, description = "An OCPP 1.6 command: Reset, ChangeAvailability, GetConfiguration, \
            ChangeConfiguration, UnlockConnector, TriggerMessage, RemoteStartTransaction, RemoteStopTransaction, \
            ClearCache, DataTransfer, ReserveNow, CancelReservation, smart charging, local list, firmware and \
            diagnostics commands"),
    ),
    request_body(content = Object, description = "The OCPP request payload", example = json!({"type": "Soft"})),
    responses(
        (status = 200, description = "The charger's answer", body = Envelope<CommandAnswer>),
        (status = 401, description = "Not signed in", body = ErrorEnvelope),
        (status = 403, description = "Not an owner", body = ErrorEnvelope),
        (status = 404, description = "No such charger of yours, or no such command (`unknown_action`)", body = ErrorEnvelope),
        (status = 409, description = "The charger is not connected (`charger_offline`)", body = ErrorEnvelope),
        (status = 422, description = "The payload is not valid for the command", body = ErrorEnvelope),
        (status = 502, description = "The charger refused with a CALLERROR (`charger_error`) or answered nonsense", body = ErrorEnvelope),
        (status = 503, description = "The command could not be dispatched", body = ErrorEnvelope),
        (status = 504, description = "The charger did not answer in time (`charger_timeout`)", body = ErrorEnvelope),
    )
)]
#[post("/api/owner/chargers/{chargePointId}/commands/{action}")]
pub async fn command(
    auth: Auth,
    path: web::Path<(String, String)>,
    body: web::Json<Value>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (charge_point_id, action) = path.into_inner();
    Ok(response::ok(send_command(&state, &auth, &charge_point_id, &action, &body).await?))
}

/// Sends one of the caller's chargers an OCPP 1.6 command (`action`, matched
/// case-insensitively, with its OCPP `payload`) and answers what the charger said; each
/// failure (offline, timeout, refused) is an `ApiError` with its own status and code.
pub(crate) async fn send_command(
    state: &AppState,
    auth: &Auth,
    charge_point_id: &str,
    action: &str,
    payload: &Value,
) -> Result<CommandAnswer, ApiError> {
    auth.require_owner()?;
    let charge_point_id = charge_point_id.to_owned();
    let mut conn = pool::connection(&state.pool).await?;
    owned_charger(&mut conn, auth, &charge_point_id).await?;
    drop(conn);
    // Action names are matched case-insensitively, then sent with the spec's spelling.
    let action = CentralSystemRequest::ACTIONS
        .iter()
        .find(|known| known.eq_ignore_ascii_case(action))
        .ok_or_else(|| unknown_action(action))?;
    let request = CentralSystemRequest::from_action(action, payload).map_err(|error| match error.code {
        ErrorCode::NotImplemented | ErrorCode::NotSupported => unknown_action(action),
        _ => ApiError::validation("payload", format!("Not a valid {action} payload: {}", error.description)),
    })?;
    tracing::info!(user_id = auth.user.id, %charge_point_id, action, "sending command to charger");
    let call = CommandCharger { charge_point_id: charge_point_id.clone(), request };
    let answer = state.registry.send(call).await.map_err(|error| {
        tracing::error!(%charge_point_id, action, %error, "registry unavailable for a command");
        ApiError::unavailable("The command could not be dispatched. Please try again.")
    })?;
    match answer {
        Ok(response) => {
            tracing::info!(user_id = auth.user.id, %charge_point_id, action, "charger answered command");
            Ok(CommandAnswer { action: action.to_string(), response })
        }
        Err(error) => {
            tracing::warn!(user_id = auth.user.id, %charge_point_id, action, %error, "command failed");
            Err(command_error(error))
        }
    }
}

fn unknown_action(action: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "unknown_action",
        format!("{action} is not a command a charger accepts. Commands: {}.", CentralSystemRequest::ACTIONS.join(", ")),
    )
}

fn command_error(error: CommandError) -> ApiError {
    match error {
        CommandError::NotConnected(id) => {
            ApiError::conflict("charger_offline", format!("Charger {id} is not connected right now."))
        }
        CommandError::Timeout { action, seconds } => ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "charger_timeout",
            format!("The charger did not answer {action} within {seconds} s."),
        ),
        CommandError::Rejected { action, code, description } => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "charger_error",
            format!("The charger refused {action} with {code}: {description}"),
        ),
        CommandError::InvalidResponse { action, reason } => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "charger_invalid_response",
            format!("The charger's answer to {action} was not valid OCPP: {reason}"),
        ),
        CommandError::Disconnected => {
            ApiError::new(StatusCode::BAD_GATEWAY, "charger_disconnected", "The charger disconnected before answering.")
        }
    }
}

/// Filters and paging for the message log.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MessagesQuery {
    /// Page size, 1 to 200 (default 50).
    pub(crate) limit: Option<i64>,
    /// Frames to skip (default 0).
    pub(crate) offset: Option<i64>,
    /// `in` (from the charger) or `out` (to it).
    pub(crate) direction: Option<String>,
    /// Only frames of this OCPP action (exact spelling, e.g. `BootNotification`).
    pub(crate) action: Option<String>,
}

/// A logged OCPP frame.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoggedMessage {
    /// Log entry ID (increasing).
    pub id: i64,
    /// `in` (from the charger) or `out` (to it).
    pub direction: String,
    /// 2 (CALL), 3 (CALLRESULT) or 4 (CALLERROR); `null` for an unreadable frame.
    pub message_type: Option<i16>,
    /// The OCPP message ID.
    pub message_id: Option<String>,
    /// The action (CALLs, and answers to our CALLs).
    pub action: Option<String>,
    /// The CALLERROR code, for errors.
    pub error_code: Option<String>,
    /// The whole frame as JSON (a string when it was not JSON).
    #[schema(value_type = Object)]
    pub frame: Value,
    /// When it was sent or received.
    pub created_at: DateTime<Utc>,
}

impl From<LogEntry> for LoggedMessage {
    fn from(e: LogEntry) -> Self {
        let frame = serde_json::from_str(&e.payload).unwrap_or(Value::String(e.payload));
        LoggedMessage {
            id: e.id,
            direction: e.direction,
            message_type: e.message_type,
            message_id: e.message_id,
            action: e.action,
            error_code: e.error_code,
            frame,
            created_at: e.created_at,
        }
    }
}

/// A page of the message log.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessagePage {
    /// Frames, newest first.
    pub items: Vec<LoggedMessage>,
    /// Frames matching the filters in all.
    pub total: i64,
    /// Page size used.
    pub limit: i64,
    /// Frames skipped.
    pub offset: i64,
}

/// `GET /api/owner/chargers/{chargePointId}/messages`: the OCPP frames one of my chargers sent
/// and received, newest first (kept for the configured retention).
#[utoipa::path(
    tag = "owner",
    security(("bearer" = [])),
    params(("chargePointId" = String, Path, description = "The charge point ID"), MessagesQuery),
    responses(
        (status = 200, description = "One page of the log", body = Envelope<MessagePage>),
        (status = 401, description = "Not signed in", body = ErrorEnvelope),
        (status = 403, description = "Not an owner", body = ErrorEnvelope),
        (status = 404, description = "No such charger of yours", body = ErrorEnvelope),
        (status = 422, description = "A parameter is invalid", body = ErrorEnvelope),
    )
)]
#[get("/api/owner/chargers/{chargePointId}/messages")]
pub async fn messages(
    auth: Auth,
    path: web::Path<String>,
    query: web::Query<MessagesQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    Ok(response::ok(message_log(&state, &auth, &path, query.into_inner()).await?))
}

/// One page of the OCPP frames one of the caller's chargers sent and received, newest first.
pub(crate) async fn message_log(
    state: &AppState,
    auth: &Auth,
    charge_point_id: &str,
    query: MessagesQuery,
) -> Result<MessagePage, ApiError> {
    auth.require_owner()?;
    let (limit, offset) = super::page(query.limit, query.offset, 50, 200)?;
    if query.direction.as_deref().is_some_and(|d| d != "in" && d != "out") {
        return Err(ApiError::validation("direction", "direction is `in` or `out`."));
    }
    if query.action.as_deref().is_some_and(|a| a.is_empty() || a.len() > 50) {
        return Err(ApiError::validation("action", "action is an OCPP action name."));
    }
    let mut conn = pool::connection(&state.pool).await?;
    let owned = owned_charger(&mut conn, auth, charge_point_id).await?;
    let filter =
        LogFilter { charge_point_id: owned.charger.charge_point_id, direction: query.direction, action: query.action };
    let (entries, total) = ocpp_log::list(&mut conn, &filter, limit, offset).await?;
    Ok(MessagePage { items: entries.into_iter().map(LoggedMessage::from).collect(), total, limit, offset })
}

fn check_charge_point_id(charge_point_id: &str) -> Result<(), ApiError> {
    if valid_charge_point_id(charge_point_id) {
        Ok(())
    } else {
        Err(ApiError::validation(
            "chargePointId",
            "A charge point ID is 1 to 48 letters, digits, '.', '_', ':' or '-'.",
        ))
    }
}

/// The charger if it is at one of the caller's stations (or the caller is an admin); 404
/// otherwise, so another owner's charger IDs do not leak.
pub(crate) async fn owned_charger(
    conn: &mut AsyncPgConnection,
    auth: &Auth,
    charge_point_id: &str,
) -> Result<OwnedCharger, ApiError> {
    check_charge_point_id(charge_point_id)?;
    match chargers::find_owned(conn, charge_point_id).await? {
        Some(owned) if auth.owns(owned.owner_id()) => Ok(owned),
        _ => Err(ApiError::not_found(format!("You have no charger {charge_point_id}."))),
    }
}

async fn charger_detail(conn: &mut AsyncPgConnection, charge_point_id: &str) -> Result<ChargerDetail, ApiError> {
    let owned = chargers::find_owned(conn, charge_point_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("No charger {charge_point_id}.")))?;
    let history = chargers::status_history(conn, owned.charger.id, STATUS_HISTORY).await?;
    Ok(ChargerDetail::new(owned, history))
}

/// Checks and hashes (Argon2, as the OCPP handshake verifies it) a charger password.
async fn hash_password(password: String) -> Result<String, ApiError> {
    if !(8..=64).contains(&password.len()) || !password.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
        return Err(ApiError::validation("password", "A charger password is 8 to 64 printable ASCII characters."));
    }
    auth::hash_pin(password).await
}
