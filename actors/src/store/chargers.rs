//! Queries on `chargers`, `connectors` and `connector_status_history`: identity at the
//! handshake, what BootNotification reports, connection state, and connector status.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::upsert::excluded;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use super::StoreError;
use super::schema::{chargers, connector_status_history, connectors, stations};

/// What the OCPP handshake needs to know about a charger.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = chargers, check_for_backend(diesel::pg::Pg))]
pub struct ChargerIdentity {
    /// Primary key.
    pub id: i64,
    /// The charge point ID.
    pub charge_point_id: String,
    /// The station, once an owner assigned it.
    pub station_id: Option<i64>,
    /// Argon2 hash of the Basic-auth password, if it has one.
    pub password_hash: Option<String>,
    /// accepted, pending or rejected.
    pub registration_status: String,
}

/// Finds a charger by charge point ID.
pub async fn find_identity(
    conn: &mut AsyncPgConnection,
    charge_point_id: &str,
) -> Result<Option<ChargerIdentity>, StoreError> {
    Ok(chargers::table
        .filter(chargers::charge_point_id.eq(charge_point_id))
        .select(ChargerIdentity::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// Registers a charger nobody registered (per the unknown-charger policy), unassigned, with the
/// given registration status; answers the row (existing or new, if two connections race).
pub async fn register_unknown(
    conn: &mut AsyncPgConnection,
    charge_point_id: &str,
    registration_status: &str,
) -> Result<ChargerIdentity, StoreError> {
    diesel::insert_into(chargers::table)
        .values((chargers::charge_point_id.eq(charge_point_id), chargers::registration_status.eq(registration_status)))
        .on_conflict(chargers::charge_point_id)
        .do_nothing()
        .execute(conn)
        .await?;
    find_identity(conn, charge_point_id).await?.ok_or(StoreError::Query(diesel::result::Error::NotFound))
}

/// What a BootNotification reports about the charger.
#[derive(Debug, Clone, Default)]
pub struct BootReport {
    /// Vendor.
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
}

/// Stores a BootNotification and answers the charger's current registration status.
pub async fn record_boot(
    conn: &mut AsyncPgConnection,
    charger_id: i64,
    report: &BootReport,
    now: DateTime<Utc>,
) -> Result<String, StoreError> {
    // A boot report replaces every field, absent ones included.
    Ok(diesel::update(chargers::table.find(charger_id))
        .set((
            chargers::vendor.eq(&report.vendor),
            chargers::model.eq(&report.model),
            chargers::charge_point_serial.eq(&report.charge_point_serial),
            chargers::charge_box_serial.eq(&report.charge_box_serial),
            chargers::firmware_version.eq(&report.firmware_version),
            chargers::iccid.eq(&report.iccid),
            chargers::imsi.eq(&report.imsi),
            chargers::meter_type.eq(&report.meter_type),
            chargers::meter_serial.eq(&report.meter_serial),
            chargers::last_boot_at.eq(now),
            chargers::last_seen_at.eq(now),
            chargers::updated_at.eq(now),
        ))
        .returning(chargers::registration_status)
        .get_result(conn)
        .await?)
}

/// Marks a charger online for a connection opened at `connected_at`.
pub async fn mark_connected(
    conn: &mut AsyncPgConnection,
    charger_id: i64,
    connected_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    diesel::update(chargers::table.find(charger_id))
        .set((
            chargers::online.eq(true),
            chargers::connected_at.eq(connected_at),
            chargers::last_seen_at.eq(connected_at),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// Marks a charger offline, unless a newer connection (a later `connected_at`) took over.
/// Answers whether it did.
pub async fn mark_disconnected(
    conn: &mut AsyncPgConnection,
    charger_id: i64,
    connected_at: DateTime<Utc>,
    last_seen: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let updated = diesel::update(chargers::table.find(charger_id).filter(chargers::connected_at.eq(connected_at)))
        .set((chargers::online.eq(false), chargers::last_seen_at.eq(last_seen)))
        .execute(conn)
        .await?;
    Ok(updated == 1)
}

/// Marks every charger offline: at start-up nothing is connected yet.
pub async fn mark_all_offline(conn: &mut AsyncPgConnection) -> Result<usize, StoreError> {
    Ok(diesel::update(chargers::table.filter(chargers::online.eq(true)))
        .set(chargers::online.eq(false))
        .execute(conn)
        .await?)
}

/// Records when the charger was last heard from.
pub async fn touch_last_seen(
    conn: &mut AsyncPgConnection,
    charger_id: i64,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    diesel::update(chargers::table.find(charger_id)).set(chargers::last_seen_at.eq(at)).execute(conn).await?;
    Ok(())
}

/// Records a FirmwareStatusNotification.
pub async fn set_firmware_status(
    conn: &mut AsyncPgConnection,
    charger_id: i64,
    status: &str,
) -> Result<(), StoreError> {
    diesel::update(chargers::table.find(charger_id)).set(chargers::firmware_status.eq(status)).execute(conn).await?;
    Ok(())
}

/// Records a DiagnosticsStatusNotification.
pub async fn set_diagnostics_status(
    conn: &mut AsyncPgConnection,
    charger_id: i64,
    status: &str,
) -> Result<(), StoreError> {
    diesel::update(chargers::table.find(charger_id)).set(chargers::diagnostics_status.eq(status)).execute(conn).await?;
    Ok(())
}

/// The connector row for a charger's connector number, created when first seen.
pub async fn connector_id(conn: &mut AsyncPgConnection, charger_id: i64, number: i32) -> Result<i64, StoreError> {
    Ok(diesel::insert_into(connectors::table)
        .values((connectors::charger_id.eq(charger_id), connectors::connector_number.eq(number)))
        .on_conflict((connectors::charger_id, connectors::connector_number))
        .do_update()
        .set(connectors::connector_number.eq(excluded(connectors::connector_number)))
        .returning(connectors::id)
        .get_result(conn)
        .await?)
}

/// A StatusNotification.
#[derive(Debug, Clone)]
pub struct StatusReport {
    /// Connector number (0 = the charger as a whole).
    pub connector_number: i32,
    /// OCPP ChargePointStatus.
    pub status: String,
    /// OCPP ChargePointErrorCode.
    pub error_code: String,
    /// Free-form info.
    pub info: Option<String>,
    /// Vendor ID.
    pub vendor_id: Option<String>,
    /// Vendor error code.
    pub vendor_error_code: Option<String>,
    /// The charger's timestamp, if it sent one.
    pub reported_at: Option<DateTime<Utc>>,
}

/// Stores a connector's new status and appends it to the history, in one transaction.
/// Answers the connector row's ID.
pub async fn record_status(
    conn: &mut AsyncPgConnection,
    charger_id: i64,
    report: &StatusReport,
    received_at: DateTime<Utc>,
) -> Result<i64, StoreError> {
    let report = report.clone();
    Ok(conn
        .transaction::<_, diesel::result::Error, _>(async move |conn| {
            let status_at = report.reported_at.unwrap_or(received_at);
            let connector: i64 = diesel::insert_into(connectors::table)
                .values((
                    connectors::charger_id.eq(charger_id),
                    connectors::connector_number.eq(report.connector_number),
                    connectors::status.eq(&report.status),
                    connectors::error_code.eq(&report.error_code),
                    connectors::info.eq(&report.info),
                    connectors::vendor_id.eq(&report.vendor_id),
                    connectors::vendor_error_code.eq(&report.vendor_error_code),
                    connectors::status_at.eq(status_at),
                ))
                .on_conflict((connectors::charger_id, connectors::connector_number))
                .do_update()
                .set((
                    connectors::status.eq(excluded(connectors::status)),
                    connectors::error_code.eq(excluded(connectors::error_code)),
                    connectors::info.eq(excluded(connectors::info)),
                    connectors::vendor_id.eq(excluded(connectors::vendor_id)),
                    connectors::vendor_error_code.eq(excluded(connectors::vendor_error_code)),
                    connectors::status_at.eq(excluded(connectors::status_at)),
                ))
                .returning(connectors::id)
                .get_result(conn)
                .await?;
            diesel::insert_into(connector_status_history::table)
                .values((
                    connector_status_history::connector_id.eq(connector),
                    connector_status_history::status.eq(&report.status),
                    connector_status_history::error_code.eq(&report.error_code),
                    connector_status_history::info.eq(&report.info),
                    connector_status_history::vendor_id.eq(&report.vendor_id),
                    connector_status_history::vendor_error_code.eq(&report.vendor_error_code),
                    connector_status_history::reported_at.eq(report.reported_at),
                    connector_status_history::received_at.eq(received_at),
                ))
                .execute(conn)
                .await?;
            Ok(connector)
        })
        .await?)
}

/// A connector as drivers see it.
#[derive(Debug, Clone, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = connectors, check_for_backend(diesel::pg::Pg))]
#[serde(rename_all = "camelCase")]
pub struct ConnectorView {
    /// Connector number.
    #[serde(rename = "connectorId")]
    pub connector_number: i32,
    /// OCPP status (or Unknown).
    pub status: String,
    /// OCPP error code.
    pub error_code: String,
    /// Info text.
    pub info: Option<String>,
    /// When the status was reported.
    pub status_at: Option<DateTime<Utc>>,
}

/// A charger with its station and connectors, for the driver-facing lookup.
#[derive(Debug, Clone)]
pub struct ChargerView {
    /// The charger.
    pub charge_point_id: String,
    /// Whether a connection is open.
    pub online: bool,
    /// Last heard from.
    pub last_seen_at: Option<DateTime<Utc>>,
    /// accepted, pending or rejected.
    pub registration_status: String,
    /// Station ID, name, address and price, if assigned.
    pub station: Option<StationSummary>,
    /// Connectors 1..n (connector 0, the charger itself, is left out).
    pub connectors: Vec<ConnectorView>,
}

/// A station as the driver-facing view shows it: ID, name, address, price per kWh.
pub type StationSummary = (i64, String, String, rust_decimal::Decimal);

type ViewRow = (i64, String, bool, Option<DateTime<Utc>>, String, Option<StationSummary>);

/// Loads the driver-facing view of a charger.
pub async fn view(conn: &mut AsyncPgConnection, charge_point_id: &str) -> Result<Option<ChargerView>, StoreError> {
    let row: Option<ViewRow> = chargers::table
        .left_join(stations::table)
        .filter(chargers::charge_point_id.eq(charge_point_id))
        .select((
            chargers::id,
            chargers::charge_point_id,
            chargers::online,
            chargers::last_seen_at,
            chargers::registration_status,
            (stations::id, stations::name, stations::address, stations::price_per_kwh).nullable(),
        ))
        .first(conn)
        .await
        .optional()?;
    let Some((id, charge_point_id, online, last_seen_at, registration_status, station)) = row else { return Ok(None) };
    let connectors = connectors::table
        .filter(connectors::charger_id.eq(id).and(connectors::connector_number.gt(0)))
        .order(connectors::connector_number)
        .select(ConnectorView::as_select())
        .load(conn)
        .await?;
    Ok(Some(ChargerView { charge_point_id, online, last_seen_at, registration_status, station, connectors }))
}
