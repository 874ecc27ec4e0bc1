//! `GET /api/chargers/{chargePointId}`: what a driver needs to decide whether to charge here —
//! online or not, each connector's status, the station and its price, available right now.

use actix_web::{HttpResponse, web};
use kilowatt_actors::registry::IsConnected;
use kilowatt_actors::store::{chargers, pool};
use serde_json::json;

use super::error::ApiError;
use super::ocpp::valid_charge_point_id;
use super::response;
use crate::state::AppState;

/// Looks a charger up by its charge point ID.
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
    let connectors: Vec<_> = view
        .connectors
        .iter()
        .map(|c| {
            let mut value = serde_json::to_value(c).unwrap_or_default();
            value["available"] = json!(usable && c.status == "Available");
            value
        })
        .collect();
    let available = connectors.iter().any(|c| c["available"] == true);
    Ok(response::ok(json!({
        "chargePointId": view.charge_point_id,
        "online": online,
        "lastSeenAt": view.last_seen_at,
        "registrationStatus": view.registration_status,
        "station": view.station.map(|(id, name, address, price)| json!({
            "id": id, "name": name, "address": address, "pricePerKwh": price,
        })),
        "connectors": connectors,
        "available": available,
    })))
}
