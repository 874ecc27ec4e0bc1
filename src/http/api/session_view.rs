//! A charging session as the API shows it to drivers and owners.

use chrono::{DateTime, Utc};
use kilowatt_actors::store::session_views::SessionRow;
use rust_decimal::Decimal;
use serde::Serialize;
use utoipa::ToSchema;

/// A charging session.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionView {
    /// Session ID.
    pub id: i64,
    /// `pending` (waiting for the charger), `active`, `completed`, `cancelled` or `failed`.
    pub status: String,
    /// `app`, `charger` (RFID or idTag at the charger) or `manual`.
    pub source: String,
    /// The charger.
    pub charge_point_id: String,
    /// The connector.
    pub connector_id: i32,
    /// The station.
    pub station_id: Option<i64>,
    /// Its name.
    pub station_name: Option<String>,
    /// OCPP transaction ID, once the charger started.
    pub transaction_id: Option<i32>,
    /// Energy delivered, Wh.
    pub energy_wh: i64,
    /// Energy delivered, kWh.
    pub energy_kwh: Decimal,
    /// Power now (while active) in W.
    pub power_w: Option<i64>,
    /// Average power over the session, W (when ended).
    pub average_power_w: Option<i64>,
    /// State of charge, % (from the charger or the app).
    pub soc_percent: Option<i16>,
    /// Battery level at start, % (from the app).
    pub battery_level_start: Option<i16>,
    /// Battery level at the end, % (from the app).
    pub battery_level_end: Option<i16>,
    /// INR per kWh, fixed at start.
    pub price_per_kwh: Decimal,
    /// Running cost while active; the amount billed once ended.
    pub cost: Decimal,
    /// The driver's energy limit, Wh.
    pub limit_energy_wh: Option<i64>,
    /// The driver's money limit.
    pub limit_amount: Option<Decimal>,
    /// When it was asked for.
    pub requested_at: DateTime<Utc>,
    /// When the charger started it.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub ended_at: Option<DateTime<Utc>>,
    /// Duration so far or in all, seconds.
    pub duration_seconds: i64,
    /// Why it ended (or why a stop was asked for).
    pub stop_reason: Option<String>,
    /// The meter ran backwards; billed to the last good reading.
    pub meter_fault: bool,
    /// The driver's rating of the station, 1–5.
    pub rating: Option<i16>,
    /// The driver (owners' views only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<DriverBrief>,
}

/// Who is charging, as a station owner sees it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DriverBrief {
    /// Username.
    pub username: Option<String>,
    /// Name.
    pub name: Option<String>,
    /// Email.
    pub email: Option<String>,
}

impl SessionView {
    /// The driver's view of a session, with `now` for the duration of one still running.
    pub fn new(row: SessionRow, now: DateTime<Utc>) -> Self {
        let duration_seconds = match (row.duration_seconds, row.started_at) {
            (Some(seconds), _) => i64::from(seconds),
            (None, Some(started)) if row.ended_at.is_none() => (now - started).num_seconds().max(0),
            _ => 0,
        };
        SessionView {
            id: row.id,
            status: row.status,
            source: row.source,
            charge_point_id: row.charge_point_id,
            connector_id: row.connector_number,
            station_id: row.station_id,
            station_name: row.station_name,
            transaction_id: row.transaction_id,
            energy_wh: row.energy_wh,
            energy_kwh: (Decimal::from(row.energy_wh) / Decimal::from(1000)).round_dp(3),
            power_w: row.power_w,
            average_power_w: row.average_power_w,
            soc_percent: row.soc_percent,
            battery_level_start: row.battery_level_start,
            battery_level_end: row.battery_level_end,
            price_per_kwh: row.price_per_kwh,
            cost: row.cost,
            limit_energy_wh: row.limit_energy_wh,
            limit_amount: row.limit_amount,
            requested_at: row.requested_at,
            started_at: row.started_at,
            ended_at: row.ended_at,
            duration_seconds,
            stop_reason: row.stop_reason,
            meter_fault: row.meter_fault,
            rating: row.rating,
            driver: None,
        }
    }

    /// The owner's view: the same, with who is charging.
    pub fn for_owner(row: SessionRow, now: DateTime<Utc>) -> Self {
        let driver = DriverBrief {
            username: row.driver_username.clone(),
            name: row.driver_name.clone(),
            email: row.driver_email.clone(),
        };
        SessionView { driver: Some(driver), ..SessionView::new(row, now) }
    }
}
