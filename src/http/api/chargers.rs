//! `GET /api/chargers/{chargePointId}`: what a driver needs to decide whether to charge here —
//! online or not, each connector's status, the station and its price, available right now.

use actix_web::{HttpResponse, get, web};
use chrono::{DateTime, Utc};
use kilowatt_actors::registry::IsConnected;
use kilowatt_actors::store::{chargers, pool};
use rust_decimal::Decimal;
use serde::Serialize;
use utoipa::ToSchema;

use crate::http::error::ApiError;
use crate::http::ocpp::valid_charge_point_id;
use crate::http::openapi::{Envelope, ErrorEnvelope};
use crate::http::response;
use crate::state::AppState;

/// `GET /api/chargers/{chargePointId}`: whether a charger is online, each connector's status,
/// its station and price, and whether a connector is available right now.
#[utoipa::path(
    tag = "chargers",
    params(("chargePointId" = String, Path, description = "The charge point ID chargers connect with")),
    responses(
        (status = 200, description = "The charger", body = Envelope<ChargerLookup>),
        (status = 404, description = "No such charger", body = ErrorEnvelope),
        (status = 422, description = "Not a valid charge point ID", body = ErrorEnvelope),
    )
)]
#[get("/api/chargers/{chargePointId}")]
pub async fn lookup(path: web::Path<String>, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let charge_point_id = path.into_inner();
    if !valid_charge_point_id(&charge_point_id) {
        return Err(ApiError::validation(
            "chargePointId",
            "A charge point ID is 1 to 48 letters, digits, '.', '_', ':' or '-'.",
        ));
    }
    let mut conn = pool::connection(&state.pool).await?;
    let Some(view) = chargers::view(&mut conn, &charge_point_id).await? else {
        return Err(ApiError::not_found(format!("No charger {charge_point_id}.")));
    };
    let connected = state.registry.send(IsConnected(charge_point_id.clone())).await.unwrap_or(false);
    let online = connected || (view.online && state.config.redis_url.is_some());
    let usable = online && view.registration_status == "accepted";
    let connectors: Vec<ConnectorStatus> = view
        .connectors
        .into_iter()
        .map(|c| ConnectorStatus {
            available: usable && c.status == "Available",
            connector_id: c.connector_number,
            status: c.status,
            error_code: c.error_code,
            info: c.info,
            status_at: c.status_at,
        })
        .collect();
    Ok(response::ok(ChargerLookup {
        available: connectors.iter().any(|c| c.available),
        charge_point_id: view.charge_point_id,
        online,
        last_seen_at: view.last_seen_at,
        registration_status: view.registration_status,
        station: view.station.map(|(id, name, address, price_per_kwh)| StationBrief {
            id,
            name,
            address,
            price_per_kwh,
        }),
        connectors,
    }))
}

/// A charger as a driver sees it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChargerLookup {
    /// The charge point ID.
    pub charge_point_id: String,
    /// Connected to Kilowatt right now.
    pub online: bool,
    /// Last heard from.
    pub last_seen_at: Option<DateTime<Utc>>,
    /// `accepted`, `pending` (waiting for an owner to claim it) or `rejected`.
    pub registration_status: String,
    /// Where it is and what it costs; `null` while unassigned.
    pub station: Option<StationBrief>,
    /// Connectors 1..n.
    pub connectors: Vec<ConnectorStatus>,
    /// Some connector can start a charge right now.
    pub available: bool,
}

/// The station a charger belongs to.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StationBrief {
    /// Station ID.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Address.
    pub address: String,
    /// INR per kWh.
    pub price_per_kwh: Decimal,
}

/// A connector's live state.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectorStatus {
    /// Connector number (1..n).
    pub connector_id: i32,
    /// OCPP status: Available, Preparing, Charging, SuspendedEV, SuspendedEVSE, Finishing,
    /// Reserved, Unavailable, Faulted, or Unknown before the first report.
    pub status: String,
    /// OCPP error code (NoError when fine).
    pub error_code: String,
    /// The charger's info text.
    pub info: Option<String>,
    /// When the status was reported.
    pub status_at: Option<DateTime<Utc>>,
    /// Free to start on right now.
    pub available: bool,
}
