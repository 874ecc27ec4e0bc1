//! Finding a place to charge: `GET /api/stations` (search by name or address, or by distance
//! from a point, nearest first) and `GET /api/stations/{stationId}` (its chargers and their
//! connectors, live). Public: no sign-in needed. Only active stations are shown.

use actix_web::{HttpResponse, get, web};
use chrono::{DateTime, Utc};
use kilowatt_actors::store::chargers::{self, ChargerFilter, OwnedCharger};
use kilowatt_actors::store::pool;
use kilowatt_actors::store::stations::{self, Near, Station, StationCounts, StationSearch};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::http::error::ApiError;
use crate::http::openapi::{Envelope, ErrorEnvelope};
use crate::http::response;
use crate::state::AppState;

/// A station in search results.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StationListing {
    /// Station ID.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Street address.
    pub address: String,
    /// Latitude in degrees, if the station has a location.
    pub latitude: Option<f64>,
    /// Longitude in degrees.
    pub longitude: Option<f64>,
    /// INR per kWh.
    #[schema(value_type = String, example = "18.50")]
    pub price_per_kwh: Decimal,
    /// What booking a slot here costs, in INR.
    #[schema(value_type = String, example = "50.00")]
    pub booking_fee: Decimal,
    /// Opening hours, as the owner wrote them.
    pub opening_hours: Option<String>,
    /// Chargers at the station.
    pub charger_count: i64,
    /// Their connectors.
    pub connector_count: i64,
    /// Connectors free to start on right now (Available, on a connected charger).
    pub available_connectors: i64,
    /// Distance in km from the searched point (only when searching by location).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distance_km: Option<f64>,
}

impl StationListing {
    fn new(station: Station, counts: StationCounts, distance_km: Option<f64>, default_fee: Decimal) -> Self {
        StationListing {
            id: station.id,
            name: station.name,
            address: station.address,
            latitude: station.latitude.and_then(|d| d.to_f64()),
            longitude: station.longitude.and_then(|d| d.to_f64()),
            price_per_kwh: station.price_per_kwh,
            booking_fee: station.booking_fee.unwrap_or_else(|| in_paise(default_fee)),
            opening_hours: station.opening_hours,
            charger_count: counts.chargers,
            connector_count: counts.connectors,
            available_connectors: counts.available_connectors,
            // Metres are precise enough.
            distance_km: distance_km.map(|d| (d * 1000.0).round() / 1000.0),
        }
    }
}

/// An amount with exactly two decimals ("50.00"), as amounts read from the database have.
fn in_paise(mut amount: Decimal) -> Decimal {
    amount.rescale(2);
    amount
}

/// A page of search results.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StationPage {
    /// Stations: nearest first when searching by location, by name otherwise.
    pub items: Vec<StationListing>,
    /// Stations matching in all.
    pub total: i64,
    /// Page size used.
    pub limit: i64,
    /// Stations skipped.
    pub offset: i64,
}

/// Search parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// Text found anywhere in the name or address, any case.
    q: Option<String>,
    /// Latitude of the point to search around (with `lng`).
    lat: Option<f64>,
    /// Longitude of the point to search around (with `lat`).
    lng: Option<f64>,
    /// Search radius in km around the point, over 0 and at most 1000 (default 10).
    radius_km: Option<f64>,
    /// Page size, 1 to 100 (default 20).
    limit: Option<i64>,
    /// Results to skip (default 0).
    offset: Option<i64>,
}

/// `GET /api/stations`: find stations by name or address, and/or within a radius of a point
/// (nearest first), with price and how many connectors are free now.
#[utoipa::path(
    tag = "stations",
    params(SearchQuery),
    responses(
        (status = 200, description = "One page of stations", body = Envelope<StationPage>),
        (status = 422, description = "A parameter is invalid", body = ErrorEnvelope),
    )
)]
#[get("/api/stations")]
pub async fn search(query: web::Query<SearchQuery>, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let (limit, offset) = super::page(query.limit, query.offset, 20, 100)?;
    let text = query.q.map(|q| q.trim().to_owned()).filter(|q| !q.is_empty());
    if text.as_ref().is_some_and(|q| q.chars().count() > 100) {
        return Err(ApiError::validation("q", "Search text is at most 100 characters."));
    }
    let near = match (query.lat, query.lng) {
        (Some(latitude), Some(longitude)) => {
            if !(-90.0..=90.0).contains(&latitude) {
                return Err(ApiError::validation("lat", "lat is between -90 and 90."));
            }
            if !(-180.0..=180.0).contains(&longitude) {
                return Err(ApiError::validation("lng", "lng is between -180 and 180."));
            }
            let radius_km = query.radius_km.unwrap_or(10.0);
            if !(radius_km > 0.0 && radius_km <= 1000.0) {
                return Err(ApiError::validation("radiusKm", "radiusKm is over 0 and at most 1000."));
            }
            Some(Near { latitude, longitude, radius_km })
        }
        (None, None) if query.radius_km.is_none() => None,
        (None, None) => return Err(ApiError::validation("lat", "radiusKm needs lat and lng.")),
        (Some(_), None) => return Err(ApiError::validation("lng", "Give lng together with lat.")),
        (None, Some(_)) => return Err(ApiError::validation("lat", "Give lat together with lng.")),
    };
    let search = StationSearch { text, near, limit, offset };
    let mut conn = pool::connection(&state.pool).await?;
    let (hits, total) = stations::search(&mut conn, &search).await?;
    let ids: Vec<i64> = hits.iter().map(|h| h.station.id).collect();
    let counts = stations::counts(&mut conn, &ids).await?;
    let default_fee = state.config.policy.booking_fee;
    let items = hits
        .into_iter()
        .map(|hit| {
            let counts = counts.get(&hit.station.id).copied().unwrap_or_default();
            StationListing::new(hit.station, counts, hit.distance_km, default_fee)
        })
        .collect();
    Ok(response::ok(StationPage { items, total, limit, offset }))
}

/// A connector as drivers see it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PublicConnector {
    /// Connector number (1..n).
    pub connector_id: i32,
    /// OCPP status, or Unknown before the first report.
    pub status: String,
    /// OCPP error code.
    pub error_code: String,
    /// When the status was reported.
    pub status_at: Option<DateTime<Utc>>,
    /// Free to start on right now.
    pub available: bool,
}

/// A charger at a station, as drivers see it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PublicCharger {
    /// The charge point ID (what `GET /api/chargers/{chargePointId}` and the QR code use).
    pub charge_point_id: String,
    /// Connected now.
    pub online: bool,
    /// Some connector is free to start on right now.
    pub available: bool,
    /// Connectors 1..n.
    pub connectors: Vec<PublicConnector>,
}

impl From<OwnedCharger> for PublicCharger {
    fn from(owned: OwnedCharger) -> Self {
        let online = owned.charger.online;
        let connectors: Vec<PublicConnector> = owned
            .connectors
            .into_iter()
            .map(|c| PublicConnector {
                available: online && c.status == "Available",
                connector_id: c.connector_number,
                status: c.status,
                error_code: c.error_code,
                status_at: c.status_at,
            })
            .collect();
        PublicCharger {
            charge_point_id: owned.charger.charge_point_id,
            online,
            available: connectors.iter().any(|c| c.available),
            connectors,
        }
    }
}

/// A station with its chargers.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StationInfo {
    /// The station.
    #[serde(flatten)]
    pub station: StationListing,
    /// Its chargers, by charge point ID.
    pub chargers: Vec<PublicCharger>,
}

/// `GET /api/stations/{stationId}`: a station with its chargers and their connectors' status.
#[utoipa::path(
    tag = "stations",
    params(("stationId" = i64, Path, description = "The station")),
    responses(
        (status = 200, description = "The station", body = Envelope<StationInfo>),
        (status = 404, description = "No such station", body = ErrorEnvelope),
    )
)]
#[get("/api/stations/{stationId}")]
pub async fn show(path: web::Path<i64>, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let station_id = path.into_inner();
    let mut conn = pool::connection(&state.pool).await?;
    let station = stations::find(&mut conn, station_id)
        .await?
        .filter(|s| s.active)
        .ok_or_else(|| ApiError::not_found(format!("No station {station_id}.")))?;
    let counts = stations::counts(&mut conn, &[station.id]).await?.remove(&station.id).unwrap_or_default();
    let filter = ChargerFilter { station_id: Some(station.id), ..ChargerFilter::default() };
    let chargers = chargers::list_owned(&mut conn, filter)
        .await?
        .into_iter()
        .filter(|c| c.charger.registration_status == "accepted")
        .map(PublicCharger::from)
        .collect();
    let station = StationListing::new(station, counts, None, state.config.policy.booking_fee);
    Ok(response::ok(StationInfo { station, chargers }))
}
