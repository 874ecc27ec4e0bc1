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

/// A charger as its owner sees it: identity, state and what it reported about itself.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = chargers, check_for_backend(diesel::pg::Pg))]
pub struct ChargerRecord {
    /// Primary key.
    pub id: i64,
    /// The charge point ID.
    pub charge_point_id: String,
    /// The station, once assigned.
    pub station_id: Option<i64>,
    /// Argon2 hash of the Basic-auth password, if it has one (never shown, only whether set).
    pub password_hash: Option<String>,
    /// accepted, pending or rejected.
    pub registration_status: String,
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
    /// Feature profiles the charger reported.
    pub feature_profiles: Option<String>,
    /// Last FirmwareStatusNotification.
    pub firmware_status: Option<String>,
    /// Last DiagnosticsStatusNotification.
    pub diagnostics_status: Option<String>,
    /// Local authorization list version.
    pub local_list_version: Option<i32>,
    /// Whether a connection is open.
    pub online: bool,
    /// When the current (or last) connection opened.
    pub connected_at: Option<DateTime<Utc>>,
    /// Last BootNotification.
    pub last_boot_at: Option<DateTime<Utc>>,
    /// Last heard from.
    pub last_seen_at: Option<DateTime<Utc>>,
    /// Registered.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// A connector as its owner sees it.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = connectors, check_for_backend(diesel::pg::Pg))]
pub struct ConnectorRecord {
    /// The charger's row.
    pub charger_id: i64,
    /// Connector number (1..n).
    pub connector_number: i32,
    /// OCPP status (or Unknown).
    pub status: String,
    /// OCPP error code.
    pub error_code: String,
    /// Info text.
    pub info: Option<String>,
    /// Vendor error code.
    pub vendor_error_code: Option<String>,
    /// Whether the charger's meter is trusted for billing.
    pub metered: bool,
    /// When the status was reported.
    pub status_at: Option<DateTime<Utc>>,
}

/// The station a charger belongs to: ID, name and owner.
#[derive(Debug, Clone, Queryable)]
pub struct StationRef {
    /// Station ID.
    pub id: i64,
    /// Name.
    pub name: String,
    /// The owner's user ID.
    pub owner_id: i64,
}

/// A charger with its station and connectors 1..n.
#[derive(Debug, Clone)]
pub struct OwnedCharger {
    /// The charger.
    pub charger: ChargerRecord,
    /// Its station, once assigned.
    pub station: Option<StationRef>,
    /// Its connectors, by number.
    pub connectors: Vec<ConnectorRecord>,
}

impl OwnedCharger {
    /// The owner of the charger's station (`None` while unassigned).
    pub fn owner_id(&self) -> Option<i64> {
        self.station.as_ref().map(|s| s.owner_id)
    }
}

/// Which chargers to list; every field narrows the list.
#[derive(Debug, Clone, Copy, Default)]
pub struct ChargerFilter {
    /// Only chargers at this owner's stations.
    pub owner_id: Option<i64>,
    /// Only chargers at this station.
    pub station_id: Option<i64>,
}

/// Chargers with their stations and connectors, by charge point ID. With no filter this
/// includes unassigned chargers (registered by policy and waiting to be claimed).
pub async fn list_owned(conn: &mut AsyncPgConnection, filter: ChargerFilter) -> Result<Vec<OwnedCharger>, StoreError> {
    let mut query = chargers::table
        .left_join(stations::table)
        .select((ChargerRecord::as_select(), (stations::id, stations::name, stations::owner_id).nullable()))
        .order(chargers::charge_point_id)
        .into_boxed();
    if let Some(owner_id) = filter.owner_id {
        query = query.filter(stations::owner_id.eq(owner_id));
    }
    if let Some(station_id) = filter.station_id {
        query = query.filter(chargers::station_id.eq(station_id));
    }
    let rows: Vec<(ChargerRecord, Option<StationRef>)> = query.load(conn).await?;
    with_connectors(conn, rows).await
}

/// One charger with its station and connectors.
pub async fn find_owned(
    conn: &mut AsyncPgConnection,
    charge_point_id: &str,
) -> Result<Option<OwnedCharger>, StoreError> {
    let row: Option<(ChargerRecord, Option<StationRef>)> = chargers::table
        .left_join(stations::table)
        .filter(chargers::charge_point_id.eq(charge_point_id))
        .select((ChargerRecord::as_select(), (stations::id, stations::name, stations::owner_id).nullable()))
        .first(conn)
        .await
        .optional()?;
    Ok(with_connectors(conn, row.into_iter().collect()).await?.pop())
}

async fn with_connectors(
    conn: &mut AsyncPgConnection,
    rows: Vec<(ChargerRecord, Option<StationRef>)>,
) -> Result<Vec<OwnedCharger>, StoreError> {
    let ids: Vec<i64> = rows.iter().map(|(c, _)| c.id).collect();
    let mut by_charger: std::collections::HashMap<i64, Vec<ConnectorRecord>> = std::collections::HashMap::new();
    if !ids.is_empty() {
        let all: Vec<ConnectorRecord> = connectors::table
            .filter(connectors::charger_id.eq_any(&ids).and(connectors::connector_number.gt(0)))
            .order((connectors::charger_id, connectors::connector_number))
            .select(ConnectorRecord::as_select())
            .load(conn)
            .await?;
        for connector in all {
            by_charger.entry(connector.charger_id).or_default().push(connector);
        }
    }
    Ok(rows
        .into_iter()
        .map(|(charger, station)| {
            let connectors = by_charger.remove(&charger.id).unwrap_or_default();
            OwnedCharger { charger, station, connectors }
        })
        .collect())
}

/// One entry of a connector's status history.
#[derive(Debug, Clone, Queryable)]
pub struct StatusHistoryEntry {
    /// Connector number.
    pub connector_number: i32,
    /// OCPP status.
    pub status: String,
    /// OCPP error code.
    pub error_code: String,
    /// Info text.
    pub info: Option<String>,
    /// Vendor error code.
    pub vendor_error_code: Option<String>,
    /// The charger's timestamp, if it sent one.
    pub reported_at: Option<DateTime<Utc>>,
    /// When we received it.
    pub received_at: DateTime<Utc>,
}

/// The charger's most recent status reports (all connectors, 0 included), newest first.
pub async fn status_history(
    conn: &mut AsyncPgConnection,
    charger_id: i64,
    limit: i64,
) -> Result<Vec<StatusHistoryEntry>, StoreError> {
    Ok(connector_status_history::table
        .inner_join(connectors::table)
        .filter(connectors::charger_id.eq(charger_id))
        .order(connector_status_history::id.desc())
        .limit(limit)
        .select((
            connectors::connector_number,
            connector_status_history::status,
            connector_status_history::error_code,
            connector_status_history::info,
            connector_status_history::vendor_error_code,
            connector_status_history::reported_at,
            connector_status_history::received_at,
        ))
        .load(conn)
        .await?)
}

/// A charger an owner adds to a station.
#[derive(Debug, Clone)]
pub struct NewCharger {
    /// The charge point ID (already validated).
    pub charge_point_id: String,
    /// The station.
    pub station_id: i64,
    /// Argon2 hash of its Basic-auth password, if it gets one.
    pub password_hash: Option<String>,
    /// Connectors 1..n are created (existing ones are kept).
    pub connectors: i32,
}

/// What adding a charger did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddedCharger {
    /// A new row.
    Created(i64),
    /// An unassigned charger that had connected by policy was claimed; its registration status
    /// before the claim (`pending`, `accepted` or `rejected`).
    Claimed(i64, String),
}

/// Why a charger could not be added.
#[derive(Debug, thiserror::Error)]
pub enum AddChargerError {
    /// The charge point ID already belongs to a station.
    #[error("charge point {0} already belongs to a station")]
    Exists(String),
    /// Anything else.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<diesel::result::Error> for AddChargerError {
    fn from(error: diesel::result::Error) -> Self {
        AddChargerError::Store(error.into())
    }
}

/// Adds a charger to a station, or claims an unassigned one with that ID (registered by the
/// unknown-charger policy): it gets the station, `accepted`, the password and connectors 1..n.
pub async fn add_or_claim(
    conn: &mut AsyncPgConnection,
    new: &NewCharger,
    now: DateTime<Utc>,
) -> Result<AddedCharger, AddChargerError> {
    let charge_point_id = new.charge_point_id.clone();
    let new = new.clone();
    let result = conn
        .transaction::<_, AddChargerError, _>(async move |conn| {
            let existing: Option<(i64, Option<i64>, String)> = chargers::table
                .filter(chargers::charge_point_id.eq(&new.charge_point_id))
                .select((chargers::id, chargers::station_id, chargers::registration_status))
                .for_update()
                .first(conn)
                .await
                .optional()?;
            let added = match existing {
                Some((_, Some(_), _)) => return Err(AddChargerError::Exists(new.charge_point_id.clone())),
                Some((id, None, previous)) => {
                    diesel::update(chargers::table.find(id))
                        .set((
                            chargers::station_id.eq(new.station_id),
                            chargers::registration_status.eq("accepted"),
                            chargers::password_hash.eq(&new.password_hash),
                            chargers::updated_at.eq(now),
                        ))
                        .execute(conn)
                        .await?;
                    AddedCharger::Claimed(id, previous)
                }
                None => {
                    let id = diesel::insert_into(chargers::table)
                        .values((
                            chargers::charge_point_id.eq(&new.charge_point_id),
                            chargers::station_id.eq(new.station_id),
                            chargers::password_hash.eq(&new.password_hash),
                            chargers::registration_status.eq("accepted"),
                            chargers::created_at.eq(now),
                            chargers::updated_at.eq(now),
                        ))
                        .returning(chargers::id)
                        .get_result(conn)
                        .await?;
                    AddedCharger::Created(id)
                }
            };
            let id = match &added {
                AddedCharger::Created(id) | AddedCharger::Claimed(id, _) => *id,
            };
            let rows: Vec<_> = (1..=new.connectors)
                .map(|n| (connectors::charger_id.eq(id), connectors::connector_number.eq(n)))
                .collect();
            diesel::insert_into(connectors::table).values(rows).on_conflict_do_nothing().execute(conn).await?;
            Ok(added)
        })
        .await;
    match result {
        // Two owners adding the same new ID at once: the loser sees the unique violation.
        Err(AddChargerError::Store(StoreError::Query(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        )))) => Err(AddChargerError::Exists(charge_point_id)),
        other => other,
    }
}

/// Changes an owner makes to a charger; `None` leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct ChargerChanges {
    /// Move it to this station.
    pub station_id: Option<i64>,
    /// Set (`Some(Some(hash))`) or remove (`Some(None)`) its Basic-auth password.
    pub password_hash: Option<Option<String>>,
    /// Mark connectors metered or not (connectors not seen yet are created).
    pub metered: Vec<(i32, bool)>,
}

/// Applies an owner's changes to a charger, in one transaction.
pub async fn update_owned(
    conn: &mut AsyncPgConnection,
    charger_id: i64,
    changes: &ChargerChanges,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let changes = changes.clone();
    conn.transaction::<_, StoreError, _>(async move |conn| {
        diesel::update(chargers::table.find(charger_id))
            .set((
                changes.station_id.map(|station| chargers::station_id.eq(station)),
                changes.password_hash.as_ref().map(|hash| chargers::password_hash.eq(hash)),
                chargers::updated_at.eq(now),
            ))
            .execute(conn)
            .await?;
        for (number, metered) in &changes.metered {
            diesel::insert_into(connectors::table)
                .values((
                    connectors::charger_id.eq(charger_id),
                    connectors::connector_number.eq(*number),
                    connectors::metered.eq(*metered),
                ))
                .on_conflict((connectors::charger_id, connectors::connector_number))
                .do_update()
                .set(connectors::metered.eq(*metered))
                .execute(conn)
                .await?;
        }
        Ok(())
    })
    .await
}
