//! Queries on `stations`: an owner's stations (create, read, change), the charger and connector
//! counts shown next to them, and the drivers' search by text and by distance.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use rust_decimal::Decimal;
use rust_decimal::prelude::{FromPrimitive, ToPrimitive};

use super::StoreError;
use super::schema::stations;

/// Mean Earth radius in km (IUGG), for great-circle distances.
const EARTH_RADIUS_KM: f64 = 6371.0088;

/// A station row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = stations, check_for_backend(diesel::pg::Pg))]
pub struct Station {
    /// Primary key.
    pub id: i64,
    /// The owner's user ID.
    pub owner_id: i64,
    /// Name (1 to 100 characters).
    pub name: String,
    /// Street address (may be empty).
    pub address: String,
    /// Latitude in degrees, six decimals; set together with the longitude.
    pub latitude: Option<Decimal>,
    /// Longitude in degrees, six decimals.
    pub longitude: Option<Decimal>,
    /// INR per kWh.
    pub price_per_kwh: Decimal,
    /// Booking fee in INR; `None` means the configured global fee.
    pub booking_fee: Option<Decimal>,
    /// Free-text opening hours ("24x7", "Mon–Sat 8–20").
    pub opening_hours: Option<String>,
    /// Inactive stations are hidden from drivers.
    pub active: bool,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// The insert form for a station.
#[derive(Debug, Insertable)]
#[diesel(table_name = stations)]
pub struct NewStation<'a> {
    /// The owner.
    pub owner_id: i64,
    /// Validated name.
    pub name: &'a str,
    /// Address.
    pub address: &'a str,
    /// Latitude.
    pub latitude: Option<Decimal>,
    /// Longitude.
    pub longitude: Option<Decimal>,
    /// INR per kWh.
    pub price_per_kwh: Decimal,
    /// Booking fee, or `None` for the global one.
    pub booking_fee: Option<Decimal>,
    /// Opening hours.
    pub opening_hours: Option<&'a str>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// Station changes; `None` leaves a field alone, `Some(None)` clears an optional one.
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = stations)]
pub struct StationChanges<'a> {
    /// New name.
    pub name: Option<&'a str>,
    /// New address.
    pub address: Option<&'a str>,
    /// New or cleared latitude.
    pub latitude: Option<Option<Decimal>>,
    /// New or cleared longitude.
    pub longitude: Option<Option<Decimal>>,
    /// New price.
    pub price_per_kwh: Option<Decimal>,
    /// New or cleared (global) booking fee.
    pub booking_fee: Option<Option<Decimal>>,
    /// New or cleared opening hours.
    pub opening_hours: Option<Option<&'a str>>,
    /// Shown to drivers or not.
    pub active: Option<bool>,
    /// When the change was made (always set, so a change set is never empty).
    pub updated_at: Option<DateTime<Utc>>,
}

/// Creates a station.
pub async fn create(conn: &mut AsyncPgConnection, station: &NewStation<'_>) -> Result<Station, StoreError> {
    Ok(diesel::insert_into(stations::table).values(station).returning(Station::as_returning()).get_result(conn).await?)
}

/// Finds a station by ID.
pub async fn find(conn: &mut AsyncPgConnection, station_id: i64) -> Result<Option<Station>, StoreError> {
    Ok(stations::table.find(station_id).select(Station::as_select()).first(conn).await.optional()?)
}

/// Applies changes to a station and answers it as it now is.
pub async fn update(
    conn: &mut AsyncPgConnection,
    station_id: i64,
    changes: &StationChanges<'_>,
) -> Result<Station, StoreError> {
    Ok(diesel::update(stations::table.find(station_id))
        .set(changes)
        .returning(Station::as_returning())
        .get_result(conn)
        .await?)
}

/// One owner's stations (every station for `None`, i.e. an admin), oldest first.
pub async fn list_owned(conn: &mut AsyncPgConnection, owner_id: Option<i64>) -> Result<Vec<Station>, StoreError> {
    let mut query = stations::table.select(Station::as_select()).order(stations::id).into_boxed();
    if let Some(owner_id) = owner_id {
        query = query.filter(stations::owner_id.eq(owner_id));
    }
    Ok(query.load(conn).await?)
}

/// How many chargers and connectors a station has, and how many can start a charge now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, QueryableByName)]
pub struct StationCounts {
    /// The station.
    #[diesel(sql_type = BigInt)]
    pub station_id: i64,
    /// Chargers assigned to it.
    #[diesel(sql_type = BigInt)]
    pub chargers: i64,
    /// Of those, connected now.
    #[diesel(sql_type = BigInt)]
    pub online_chargers: i64,
    /// Connectors 1..n of its chargers.
    #[diesel(sql_type = BigInt)]
    pub connectors: i64,
    /// Connectors reporting Available on online, accepted chargers.
    #[diesel(sql_type = BigInt)]
    pub available_connectors: i64,
}

/// Charger and connector counts for these stations (stations without chargers are absent).
pub async fn counts(
    conn: &mut AsyncPgConnection,
    station_ids: &[i64],
) -> Result<HashMap<i64, StationCounts>, StoreError> {
    if station_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<StationCounts> = diesel::sql_query(
        "SELECT c.station_id AS station_id, \
                count(DISTINCT c.id) AS chargers, \
                count(DISTINCT c.id) FILTER (WHERE c.online) AS online_chargers, \
                count(k.id) AS connectors, \
                count(k.id) FILTER (WHERE c.online AND c.registration_status = 'accepted' \
                                      AND k.status = 'Available') AS available_connectors \
         FROM chargers c LEFT JOIN connectors k ON k.charger_id = c.id AND k.connector_number > 0 \
         WHERE c.station_id = ANY($1) \
         GROUP BY c.station_id",
    )
    .bind::<Array<BigInt>, _>(station_ids)
    .load(conn)
    .await?;
    Ok(rows.into_iter().map(|row| (row.station_id, row)).collect())
}

/// Where a driver is looking from.
#[derive(Debug, Clone, Copy)]
pub struct Near {
    /// Latitude in degrees.
    pub latitude: f64,
    /// Longitude in degrees.
    pub longitude: f64,
    /// Only stations within this many km.
    pub radius_km: f64,
}

/// A drivers' station search: active stations only.
#[derive(Debug, Clone, Default)]
pub struct StationSearch {
    /// Matches name or address, case-insensitively, anywhere in the text.
    pub text: Option<String>,
    /// Only stations within a radius, nearest first (otherwise by name).
    pub near: Option<Near>,
    /// Page size.
    pub limit: i64,
    /// Rows to skip.
    pub offset: i64,
}

/// A station found by a search, with its distance when the search had a location.
#[derive(Debug, Clone)]
pub struct SearchHit {
    /// The station.
    pub station: Station,
    /// Great-circle distance in km from the search location.
    pub distance_km: Option<f64>,
}

/// Runs a search; answers one page of hits and how many there are in all.
pub async fn search(conn: &mut AsyncPgConnection, search: &StationSearch) -> Result<(Vec<SearchHit>, i64), StoreError> {
    let Some(near) = search.near else {
        let total: i64 = filtered(search).count().get_result(conn).await?;
        let stations = filtered(search)
            .order((stations::name, stations::id))
            .limit(search.limit)
            .offset(search.offset)
            .select(Station::as_select())
            .load(conn)
            .await?;
        return Ok((stations.into_iter().map(|station| SearchHit { station, distance_km: None }).collect(), total));
    };
    // The bounding box narrows the candidates in SQL; the exact distance is computed here.
    let candidates: Vec<(i64, Option<Decimal>, Option<Decimal>)> =
        filtered(search).select((stations::id, stations::latitude, stations::longitude)).load(conn).await?;
    let mut within: Vec<(f64, i64)> = candidates
        .into_iter()
        .filter_map(|(id, lat, lng)| {
            let distance = distance_km(near.latitude, near.longitude, lat?.to_f64()?, lng?.to_f64()?);
            (distance <= near.radius_km).then_some((distance, id))
        })
        .collect();
    within.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let total = i64::try_from(within.len()).unwrap_or(i64::MAX);
    let offset = usize::try_from(search.offset).unwrap_or(usize::MAX);
    let limit = usize::try_from(search.limit).unwrap_or(0);
    let page: Vec<(f64, i64)> = within.into_iter().skip(offset).take(limit).collect();
    let ids: Vec<i64> = page.iter().map(|(_, id)| *id).collect();
    let mut found: HashMap<i64, Station> = stations::table
        .filter(stations::id.eq_any(&ids))
        .select(Station::as_select())
        .load(conn)
        .await?
        .into_iter()
        .map(|s| (s.id, s))
        .collect();
    let hits = page
        .into_iter()
        .filter_map(|(distance, id)| {
            found.remove(&id).map(|station| SearchHit { station, distance_km: Some(distance) })
        })
        .collect();
    Ok((hits, total))
}

/// The search's filters as one query: active, matching the text, inside the bounding box.
fn filtered(search: &StationSearch) -> stations::BoxedQuery<'static, Pg> {
    let mut query = stations::table.filter(stations::active.eq(true)).into_boxed();
    if let Some(text) = search.text.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        let pattern = format!("%{}%", escape_like(text));
        query = query.filter(stations::name.ilike(pattern.clone()).or(stations::address.ilike(pattern)));
    }
    if let Some(near) = search.near {
        query = query.filter(stations::latitude.is_not_null());
        let ((lat_min, lat_max), longitudes) = bounding_box(near);
        query = query.filter(stations::latitude.between(degrees(lat_min), degrees(lat_max)));
        if let Some((lng_min, lng_max)) = longitudes {
            query = query.filter(stations::longitude.between(degrees(lng_min), degrees(lng_max)));
        }
    }
    query
}

fn degrees(value: f64) -> Decimal {
    Decimal::from_f64(value).unwrap_or_default().round_dp(6)
}

/// Escapes `%`, `_` and `\` so user text matches literally in LIKE.
fn escape_like(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// The latitude range and (unless the circle reaches a pole or crosses ±180°) the longitude
/// range that contain every point within the radius, widened by a hair for rounding.
fn bounding_box(near: Near) -> ((f64, f64), Option<(f64, f64)>) {
    let angular = near.radius_km / EARTH_RADIUS_KM;
    let dlat = angular.to_degrees() + 1e-5;
    let lat_range = ((near.latitude - dlat).max(-90.0), (near.latitude + dlat).min(90.0));
    let ratio = angular.sin() / near.latitude.to_radians().cos();
    if angular >= std::f64::consts::FRAC_PI_2 || !(0.0..1.0).contains(&ratio) {
        return (lat_range, None);
    }
    let dlng = ratio.asin().to_degrees() + 1e-5;
    let (min, max) = (near.longitude - dlng, near.longitude + dlng);
    let longitudes = (min >= -180.0 && max <= 180.0).then_some((min, max));
    (lat_range, longitudes)
}

/// Great-circle distance in km (haversine).
pub fn distance_km(lat1: f64, lng1: f64, lat2: f64, lng2: f64) -> f64 {
    let (phi1, phi2) = (lat1.to_radians(), lat2.to_radians());
    let dphi = (lat2 - lat1).to_radians();
    let dlambda = (lng2 - lng1).to_radians();
    let a = (dphi / 2.0).sin().powi(2) + phi1.cos() * phi2.cos() * (dlambda / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * a.sqrt().min(1.0).asin()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn haversine_matches_known_distances() {
        // Bengaluru (MG Road) to Chennai Central: about 290 km.
        let d = distance_km(12.9756, 77.6050, 13.0827, 80.2757);
        assert!((d - 290.0).abs() < 5.0, "{d}");
        assert!(distance_km(10.0, 20.0, 10.0, 20.0).abs() < 1e-9);
    }

    #[test]
    fn the_bounding_box_holds_the_whole_circle() {
        let near = Near { latitude: 60.0, longitude: 10.0, radius_km: 50.0 };
        let ((lat_min, lat_max), lng) = bounding_box(near);
        let (lng_min, lng_max) = lng.expect("a longitude range");
        // Points exactly on the circle, due north, south, east and west, are inside.
        for bearing in [0.0f64, 90.0, 180.0, 270.0, 45.0, 135.0] {
            let (lat, lng) = destination(near.latitude, near.longitude, bearing, near.radius_km);
            assert!((lat_min..=lat_max).contains(&lat), "{bearing}: {lat}");
            assert!((lng_min..=lng_max).contains(&lng), "{bearing}: {lng}");
        }
        // Near the antimeridian or a pole, longitudes are not filtered at all.
        assert!(bounding_box(Near { latitude: 0.0, longitude: 179.9, radius_km: 50.0 }).1.is_none());
        assert!(bounding_box(Near { latitude: 89.9, longitude: 0.0, radius_km: 50.0 }).1.is_none());
    }

    fn destination(lat: f64, lng: f64, bearing: f64, km: f64) -> (f64, f64) {
        let (phi, lambda, theta, delta) =
            (lat.to_radians(), lng.to_radians(), bearing.to_radians(), km / EARTH_RADIUS_KM);
        let phi2 = (phi.sin() * delta.cos() + phi.cos() * delta.sin() * theta.cos()).asin();
        let lambda2 = lambda + (theta.sin() * delta.sin() * phi.cos()).atan2(delta.cos() - phi.sin() * phi2.sin());
        (phi2.to_degrees(), lambda2.to_degrees())
    }

    #[test]
    fn like_wildcards_match_literally() {
        assert_eq!(escape_like(r"50%_off\"), r"50\%\_off\\");
    }
}
