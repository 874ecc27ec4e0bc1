//! An owner's stations: `POST/GET /api/owner/stations`, `GET/PATCH /api/owner/stations/{stationId}`.
//! Owners see and change only their own (another owner's station answers 404, so IDs do not
//! leak); admins see and change every station; drivers get 403.

use actix_web::{HttpResponse, get, patch, post, web};
use chrono::{DateTime, Utc};
use kilowatt_actors::accounts::Role;
use kilowatt_actors::store::chargers::{self, ChargerFilter};
use kilowatt_actors::store::pool;
use kilowatt_actors::store::stations::{self, NewStation, Station, StationChanges, StationCounts};
use kilowatt_actors::store::{AsyncPgConnection, StoreError};
use rust_decimal::Decimal;
use rust_decimal::prelude::{FromPrimitive, ToPrimitive};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::nullable;
use super::owner_chargers::ChargerSummary;
use crate::auth::Auth;
use crate::http::error::ApiError;
use crate::http::openapi::{Envelope, ErrorEnvelope};
use crate::http::response;
use crate::state::AppState;

/// A station as its owner sees it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StationView {
    /// Station ID.
    pub id: i64,
    /// The owner's user ID.
    pub owner_id: i64,
    /// Name.
    pub name: String,
    /// Street address (may be empty).
    pub address: String,
    /// Latitude in degrees, or `null` when the station has no location.
    pub latitude: Option<f64>,
    /// Longitude in degrees.
    pub longitude: Option<f64>,
    /// INR per kWh.
    #[schema(value_type = String, example = "18.50")]
    pub price_per_kwh: Decimal,
    /// Booking fee in INR; `null` means the network's default fee.
    #[schema(value_type = Option<String>, example = "50.00")]
    pub booking_fee: Option<Decimal>,
    /// Free-text opening hours.
    pub opening_hours: Option<String>,
    /// Shown to drivers.
    pub active: bool,
    /// Chargers assigned to the station.
    pub charger_count: i64,
    /// Of those, connected now.
    pub online_charger_count: i64,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

impl StationView {
    fn new(station: Station, counts: StationCounts) -> Self {
        StationView {
            id: station.id,
            owner_id: station.owner_id,
            name: station.name,
            address: station.address,
            latitude: station.latitude.and_then(|d| d.to_f64()),
            longitude: station.longitude.and_then(|d| d.to_f64()),
            price_per_kwh: station.price_per_kwh,
            booking_fee: station.booking_fee,
            opening_hours: station.opening_hours,
            active: station.active,
            charger_count: counts.chargers,
            online_charger_count: counts.online_chargers,
            created_at: station.created_at,
            updated_at: station.updated_at,
        }
    }
}

/// A station with its chargers.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StationDetail {
    /// The station.
    #[serde(flatten)]
    pub station: StationView,
    /// Its chargers, by charge point ID.
    pub chargers: Vec<ChargerSummary>,
}

/// A new station.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewStationBody {
    /// 1 to 100 characters.
    #[schema(example = "MG Road Hub")]
    pub(crate) name: String,
    /// Street address, at most 300 characters.
    #[serde(default)]
    pub(crate) address: String,
    /// Latitude in degrees (−90 to 90); give it together with the longitude.
    #[schema(example = 12.9756)]
    pub(crate) latitude: Option<f64>,
    /// Longitude in degrees (−180 to 180).
    #[schema(example = 77.6050)]
    pub(crate) longitude: Option<f64>,
    /// INR per kWh, 0 or more, at most two decimals.
    #[schema(value_type = f64, example = 18.5)]
    pub(crate) price_per_kwh: Decimal,
    /// Booking fee in INR; absent for the network's default fee.
    #[schema(value_type = Option<f64>, example = 50)]
    pub(crate) booking_fee: Option<Decimal>,
    /// Free-text opening hours, at most 200 characters ("24x7").
    pub(crate) opening_hours: Option<String>,
}

/// `POST /api/owner/stations`: add a station.
#[utoipa::path(
    tag = "owner",
    security(("bearer" = [])),
    request_body = NewStationBody,
    responses(
        (status = 201, description = "Created", body = Envelope<StationView>),
        (status = 401, description = "Not signed in", body = ErrorEnvelope),
        (status = 403, description = "Not an owner", body = ErrorEnvelope),
        (status = 422, description = "A field is invalid", body = ErrorEnvelope),
    )
)]
#[post("/api/owner/stations")]
pub async fn create(
    auth: Auth,
    body: web::Json<NewStationBody>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    Ok(response::created(create_station(&state, &auth, body.into_inner()).await?))
}

/// Checks a new station and creates it for the caller (the API's and the web UI's create).
pub(crate) async fn create_station(
    state: &AppState,
    auth: &Auth,
    body: NewStationBody,
) -> Result<StationView, ApiError> {
    auth.require_owner()?;
    let name = clean_name(&body.name)?;
    let address = clean_address(&body.address)?;
    let latitude = body.latitude.map(latitude).transpose()?;
    let longitude = body.longitude.map(longitude).transpose()?;
    both_or_neither(latitude, longitude)?;
    let price_per_kwh = money("pricePerKwh", body.price_per_kwh)?;
    let booking_fee = body.booking_fee.map(|fee| money("bookingFee", fee)).transpose()?;
    let opening_hours = body.opening_hours.as_deref().map(clean_opening_hours).transpose()?.flatten();
    let now = state.clock.now();
    let mut conn = pool::connection(&state.pool).await?;
    let station = stations::create(
        &mut conn,
        &NewStation {
            owner_id: auth.user.id,
            name: &name,
            address: &address,
            latitude,
            longitude,
            price_per_kwh,
            booking_fee,
            opening_hours: opening_hours.as_deref(),
            created_at: now,
            updated_at: now,
        },
    )
    .await?;
    tracing::info!(user_id = auth.user.id, station_id = station.id, "station created");
    Ok(StationView::new(station, StationCounts::default()))
}

/// `GET /api/owner/stations`: my stations (every station, for an admin), oldest first.
#[utoipa::path(
    tag = "owner",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The stations", body = Envelope<Vec<StationView>>),
        (status = 401, description = "Not signed in", body = ErrorEnvelope),
        (status = 403, description = "Not an owner", body = ErrorEnvelope),
    )
)]
#[get("/api/owner/stations")]
pub async fn list(auth: Auth, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Ok(response::ok(list_stations(&state, &auth).await?))
}

/// The caller's stations (every station, for an admin), oldest first, with their counts.
pub(crate) async fn list_stations(state: &AppState, auth: &Auth) -> Result<Vec<StationView>, ApiError> {
    auth.require_owner()?;
    let mut conn = pool::connection(&state.pool).await?;
    let owner = if auth.role == Role::Admin { None } else { Some(auth.user.id) };
    let stations = stations::list_owned(&mut conn, owner).await?;
    let ids: Vec<i64> = stations.iter().map(|s| s.id).collect();
    let counts = stations::counts(&mut conn, &ids).await?;
    Ok(stations
        .into_iter()
        .map(|s| {
            let counts = counts.get(&s.id).copied().unwrap_or_default();
            StationView::new(s, counts)
        })
        .collect())
}

/// `GET /api/owner/stations/{stationId}`: one of my stations with its chargers.
#[utoipa::path(
    tag = "owner",
    security(("bearer" = [])),
    params(("stationId" = i64, Path, description = "The station")),
    responses(
        (status = 200, description = "The station", body = Envelope<StationDetail>),
        (status = 401, description = "Not signed in", body = ErrorEnvelope),
        (status = 403, description = "Not an owner", body = ErrorEnvelope),
        (status = 404, description = "No such station of yours", body = ErrorEnvelope),
    )
)]
#[get("/api/owner/stations/{stationId}")]
pub async fn show(auth: Auth, path: web::Path<i64>, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Ok(response::ok(station_detail(&state, &auth, path.into_inner()).await?))
}

/// One of the caller's stations with its chargers; 404 for anybody else's.
pub(crate) async fn station_detail(state: &AppState, auth: &Auth, station_id: i64) -> Result<StationDetail, ApiError> {
    auth.require_owner()?;
    let mut conn = pool::connection(&state.pool).await?;
    let station = owned_station(&mut conn, auth, station_id).await?;
    Ok(detail(&mut conn, station).await?)
}

/// Station changes; absent fields are left alone, `null` clears the optional ones.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StationChangesBody {
    /// New name, 1 to 100 characters.
    pub(crate) name: Option<String>,
    /// New address.
    pub(crate) address: Option<String>,
    /// New latitude, or `null` (with the longitude) to remove the location.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<f64>)]
    pub(crate) latitude: Option<Option<f64>>,
    /// New longitude, or `null`.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<f64>)]
    pub(crate) longitude: Option<Option<f64>>,
    /// New price in INR per kWh; sessions already running keep the price they started with.
    #[schema(value_type = Option<f64>, example = 21)]
    pub(crate) price_per_kwh: Option<Decimal>,
    /// New booking fee, or `null` for the network's default.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<f64>)]
    pub(crate) booking_fee: Option<Option<Decimal>>,
    /// New opening hours, or `null` to remove them.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub(crate) opening_hours: Option<Option<String>>,
    /// Show the station to drivers (`false` hides it from search).
    pub(crate) active: Option<bool>,
}

/// `PATCH /api/owner/stations/{stationId}`: change one of my stations.
#[utoipa::path(
    tag = "owner",
    security(("bearer" = [])),
    params(("stationId" = i64, Path, description = "The station")),
    request_body = StationChangesBody,
    responses(
        (status = 200, description = "The updated station", body = Envelope<StationDetail>),
        (status = 401, description = "Not signed in", body = ErrorEnvelope),
        (status = 403, description = "Not an owner", body = ErrorEnvelope),
        (status = 404, description = "No such station of yours", body = ErrorEnvelope),
        (status = 422, description = "A field is invalid", body = ErrorEnvelope),
    )
)]
#[patch("/api/owner/stations/{stationId}")]
pub async fn update(
    auth: Auth,
    path: web::Path<i64>,
    body: web::Json<StationChangesBody>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    Ok(response::ok(update_station(&state, &auth, path.into_inner(), body.into_inner()).await?))
}

/// Checks and applies changes to one of the caller's stations (the API's and the web UI's
/// update); nothing changes when a field is invalid.
pub(crate) async fn update_station(
    state: &AppState,
    auth: &Auth,
    station_id: i64,
    body: StationChangesBody,
) -> Result<StationDetail, ApiError> {
    auth.require_owner()?;
    let name = body.name.as_deref().map(clean_name).transpose()?;
    let address = body.address.as_deref().map(clean_address).transpose()?;
    let new_latitude = body.latitude.map(|l| l.map(latitude).transpose()).transpose()?;
    let new_longitude = body.longitude.map(|l| l.map(longitude).transpose()).transpose()?;
    let price_per_kwh = body.price_per_kwh.map(|p| money("pricePerKwh", p)).transpose()?;
    let booking_fee = body.booking_fee.map(|f| f.map(|f| money("bookingFee", f)).transpose()).transpose()?;
    let opening_hours = body.opening_hours.map(|h| h.as_deref().map(clean_opening_hours).transpose()).transpose()?;
    let mut conn = pool::connection(&state.pool).await?;
    let station = owned_station(&mut conn, auth, station_id).await?;
    both_or_neither(new_latitude.unwrap_or(station.latitude), new_longitude.unwrap_or(station.longitude))?;
    let changes = StationChanges {
        name: name.as_deref(),
        address: address.as_deref(),
        latitude: new_latitude,
        longitude: new_longitude,
        price_per_kwh,
        booking_fee,
        opening_hours: opening_hours.as_ref().map(|h| h.as_ref().and_then(|h| h.as_deref())),
        active: body.active,
        updated_at: Some(state.clock.now()),
    };
    let station = stations::update(&mut conn, station.id, &changes).await?;
    tracing::info!(user_id = auth.user.id, station_id = station.id, "station updated");
    Ok(detail(&mut conn, station).await?)
}

async fn detail(conn: &mut AsyncPgConnection, station: Station) -> Result<StationDetail, StoreError> {
    let counts = stations::counts(conn, &[station.id]).await?.remove(&station.id).unwrap_or_default();
    let filter = ChargerFilter { station_id: Some(station.id), ..ChargerFilter::default() };
    let chargers = chargers::list_owned(conn, filter).await?.into_iter().map(ChargerSummary::from).collect();
    Ok(StationDetail { station: StationView::new(station, counts), chargers })
}

/// The station if it is the caller's (or the caller is an admin); 404 otherwise, so another
/// owner's station IDs do not leak.
pub(crate) async fn owned_station(
    conn: &mut AsyncPgConnection,
    auth: &Auth,
    station_id: i64,
) -> Result<Station, ApiError> {
    match stations::find(conn, station_id).await? {
        Some(station) if auth.owns(Some(station.owner_id)) => Ok(station),
        _ => Err(ApiError::not_found(format!("You have no station {station_id}."))),
    }
}

fn clean_name(name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    if !(1..=100).contains(&name.chars().count()) {
        return Err(ApiError::validation("name", "A station name is 1 to 100 characters."));
    }
    Ok(name.to_owned())
}

fn clean_address(address: &str) -> Result<String, ApiError> {
    let address = address.trim();
    if address.chars().count() > 300 {
        return Err(ApiError::validation("address", "An address is at most 300 characters."));
    }
    Ok(address.to_owned())
}

/// `Some(text)`, or `None` for blank text.
fn clean_opening_hours(hours: &str) -> Result<Option<String>, ApiError> {
    let hours = hours.trim();
    if hours.chars().count() > 200 {
        return Err(ApiError::validation("openingHours", "Opening hours are at most 200 characters."));
    }
    Ok((!hours.is_empty()).then(|| hours.to_owned()))
}

fn degrees(field: &str, value: f64, limit: f64) -> Result<Decimal, ApiError> {
    if !value.is_finite() || !(-limit..=limit).contains(&value) {
        return Err(ApiError::validation(field, format!("A {field} is between -{limit} and {limit} degrees.")));
    }
    Decimal::from_f64(value)
        .map(|d| d.round_dp(6))
        .ok_or_else(|| ApiError::validation(field, format!("{value} is not a usable {field}.")))
}

fn latitude(value: f64) -> Result<Decimal, ApiError> {
    degrees("latitude", value, 90.0)
}

fn longitude(value: f64) -> Result<Decimal, ApiError> {
    degrees("longitude", value, 180.0)
}

fn both_or_neither(latitude: Option<Decimal>, longitude: Option<Decimal>) -> Result<(), ApiError> {
    match (latitude, longitude) {
        (Some(_), None) => Err(ApiError::validation("longitude", "Give the longitude together with the latitude.")),
        (None, Some(_)) => Err(ApiError::validation("latitude", "Give the latitude together with the longitude.")),
        _ => Ok(()),
    }
}

/// An amount in INR: 0 or more, at most two decimals, within NUMERIC(10, 2).
fn money(field: &str, amount: Decimal) -> Result<Decimal, ApiError> {
    if amount.is_sign_negative() && !amount.is_zero() {
        return Err(ApiError::validation(field, format!("{field} cannot be negative.")));
    }
    let amount = amount.normalize();
    if amount.scale() > 2 {
        return Err(ApiError::validation(field, format!("{field} has at most two decimals (paise).")));
    }
    if amount >= Decimal::from(100_000_000) {
        return Err(ApiError::validation(field, format!("{field} is too large.")));
    }
    let mut amount = amount;
    amount.rescale(2);
    Ok(amount)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_non_negative_with_at_most_two_decimals() {
        assert_eq!(money("p", Decimal::new(185, 1)).ok(), Some(Decimal::new(1850, 2)));
        assert_eq!(money("p", Decimal::new(18500, 3)).ok(), Some(Decimal::new(1850, 2)));
        assert_eq!(money("p", Decimal::ZERO).ok(), Some(Decimal::new(0, 2)));
        assert!(money("p", Decimal::new(-1, 2)).is_err());
        assert!(money("p", Decimal::new(18555, 3)).is_err());
        assert!(money("p", Decimal::from(100_000_000)).is_err());
    }

    #[test]
    fn coordinates_stay_in_range() {
        assert!(latitude(90.0).is_ok());
        assert!(latitude(90.5).is_err());
        assert!(longitude(-180.0).is_ok());
        assert!(longitude(f64::NAN).is_err());
        assert_eq!(latitude(12.97561234).ok(), Some(Decimal::new(12_975_612, 6)));
    }
}
