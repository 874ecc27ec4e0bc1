//! Queries on `chargers`, `connectors` and `connector_status_history`: identity at the
//! handshake, what BootNotification reports, connection state (written in batches: many
//! connections, disconnections or last-seen times per statement), and connector status.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Integer, Nullable, Text, Timestamptz};
use diesel::upsert::excluded;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use super::StoreError;
use super::prepared::{KeepPrepared, plan_each_run};
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
    /// A fast keyed hash of the same password, written after a successful Argon2 check
    /// (see `charger::credentials`).
    pub password_mac: Option<String>,
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

/// A handshake's lookup: the charge point ID, and the registration status to register it
/// with if it is unknown (`None`: do not register).
pub type IdentityLookup = (String, Option<&'static str>);

/// Finds many chargers at once (the handshakes of a connect storm), registering unknown ones
/// whose lookup says so (unassigned, with that status). Answers in input order.
pub async fn find_or_register(
    conn: &mut AsyncPgConnection,
    lookups: &[IdentityLookup],
) -> Result<Vec<Option<ChargerIdentity>>, StoreError> {
    let ids: Vec<&str> = lookups.iter().map(|(id, _)| id.as_str()).collect();
    let mut found: HashMap<String, ChargerIdentity> = chargers::table
        .filter(chargers::charge_point_id.eq_any(&ids))
        .select(ChargerIdentity::as_select())
        .load(conn)
        .await?
        .into_iter()
        .map(|identity| (identity.charge_point_id.clone(), identity))
        .collect();
    let mut missing: Vec<(&str, &str)> = lookups
        .iter()
        .filter(|(id, _)| !found.contains_key(id))
        .filter_map(|(id, register)| register.map(|status| (id.as_str(), status)))
        .collect();
    missing.sort_unstable();
    missing.dedup_by_key(|(id, _)| *id);
    if !missing.is_empty() {
        let rows: Vec<_> = missing
            .iter()
            .map(|(id, status)| (chargers::charge_point_id.eq(*id), chargers::registration_status.eq(*status)))
            .collect();
        diesel::insert_into(chargers::table)
            .values(rows)
            .on_conflict(chargers::charge_point_id)
            .do_nothing()
            .execute(conn)
            .await?;
        let ids: Vec<&str> = missing.iter().map(|(id, _)| *id).collect();
        let registered: Vec<ChargerIdentity> = chargers::table
            .filter(chargers::charge_point_id.eq_any(&ids))
            .select(ChargerIdentity::as_select())
            .load(conn)
            .await?;
        found.extend(registered.into_iter().map(|identity| (identity.charge_point_id.clone(), identity)));
    }
    Ok(lookups.iter().map(|(id, _)| found.get(id).cloned()).collect())
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

/// A BootNotification to store: the charger, what it reported, when.
pub type BootWrite = (i64, BootReport, DateTime<Utc>);

/// Stores many BootNotifications in one statement; answers each charger's registration status,
/// in input order. A charger that boots twice in one batch keeps its last report.
pub async fn record_boots(conn: &mut AsyncPgConnection, boots: &[BootWrite]) -> Result<Vec<String>, StoreError> {
    let mut latest: HashMap<i64, &BootWrite> = HashMap::new();
    for boot in boots {
        latest.insert(boot.0, boot);
    }
    let mut rows: Vec<&BootWrite> = latest.into_values().collect();
    rows.sort_unstable_by_key(|(id, _, _)| *id);
    let text = |field: fn(&BootReport) -> &Option<String>| -> Vec<Option<String>> {
        rows.iter().map(|(_, report, _)| field(report).clone()).collect()
    };
    let updated: Vec<ChargerStatusRow> = diesel::sql_query(
        "UPDATE chargers AS c SET vendor = v.vendor, model = v.model, charge_point_serial = v.cps, \
           charge_box_serial = v.cbs, firmware_version = v.fw, iccid = v.iccid, imsi = v.imsi, \
           meter_type = v.mt, meter_serial = v.ms, last_boot_at = v.at, last_seen_at = v.at, updated_at = v.at \
         FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], \
           $8::text[], $9::text[], $10::text[], $11::timestamptz[]) \
           AS v(id, vendor, model, cps, cbs, fw, iccid, imsi, mt, ms, at) \
         WHERE c.id = v.id \
         RETURNING c.id, c.registration_status",
    )
    .bind::<Array<BigInt>, _>(rows.iter().map(|(id, _, _)| *id).collect::<Vec<i64>>())
    .bind::<Array<Nullable<Text>>, _>(text(|r| &r.vendor))
    .bind::<Array<Nullable<Text>>, _>(text(|r| &r.model))
    .bind::<Array<Nullable<Text>>, _>(text(|r| &r.charge_point_serial))
    .bind::<Array<Nullable<Text>>, _>(text(|r| &r.charge_box_serial))
    .bind::<Array<Nullable<Text>>, _>(text(|r| &r.firmware_version))
    .bind::<Array<Nullable<Text>>, _>(text(|r| &r.iccid))
    .bind::<Array<Nullable<Text>>, _>(text(|r| &r.imsi))
    .bind::<Array<Nullable<Text>>, _>(text(|r| &r.meter_type))
    .bind::<Array<Nullable<Text>>, _>(text(|r| &r.meter_serial))
    .bind::<Array<Timestamptz>, _>(rows.iter().map(|(_, _, at)| *at).collect::<Vec<DateTime<Utc>>>())
    .load(conn)
    .await?;
    let status: HashMap<i64, String> = updated.into_iter().map(|row| (row.id, row.registration_status)).collect();
    boots
        .iter()
        .map(|(id, _, _)| status.get(id).cloned().ok_or(StoreError::Query(diesel::result::Error::NotFound)))
        .collect()
}

#[derive(QueryableByName)]
struct ChargerStatusRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    registration_status: String,
}

/// A connection opening or closing, as the presence batcher writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Presence {
    /// The charger's row.
    pub charger_id: i64,
    /// When the connection opened (wall clock; tells connections apart).
    pub connected_at: DateTime<Utc>,
    /// When the charger was last heard from (the server's clock).
    pub seen_at: DateTime<Utc>,
}

#[derive(QueryableByName)]
struct ChargerIdRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

fn presence_columns(rows: &[Presence]) -> (Vec<i64>, Vec<DateTime<Utc>>, Vec<DateTime<Utc>>) {
    let mut sorted = rows.to_vec();
    // One lock order for every multi-row update of `chargers`, so two never deadlock.
    sorted.sort_by_key(|p| (p.charger_id, p.connected_at));
    let ids = sorted.iter().map(|p| p.charger_id).collect();
    let opened = sorted.iter().map(|p| p.connected_at).collect();
    let seen = sorted.iter().map(|p| p.seen_at).collect();
    (ids, opened, seen)
}

/// Marks chargers online, one statement for many connections. A connection older than the
/// one already recorded changes nothing (two connections of one charger racing).
pub async fn mark_connected(conn: &mut AsyncPgConnection, opened: &[Presence]) -> Result<(), StoreError> {
    if opened.is_empty() {
        return Ok(());
    }
    let (ids, connected_at, seen_at) = presence_columns(opened);
    diesel::sql_query(
        "UPDATE chargers AS c SET online = TRUE, connected_at = v.connected_at, \
           last_seen_at = GREATEST(c.last_seen_at, v.seen_at) \
         FROM unnest($1::bigint[], $2::timestamptz[], $3::timestamptz[]) AS v(id, connected_at, seen_at) \
         WHERE c.id = v.id AND (c.connected_at IS NULL OR c.connected_at <= v.connected_at)",
    )
    .bind::<Array<BigInt>, _>(ids)
    .bind::<Array<Timestamptz>, _>(connected_at)
    .bind::<Array<Timestamptz>, _>(seen_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Marks chargers offline, one statement for many closed connections, unless a newer
/// connection (a later `connected_at`) took over. Answers the chargers it marked offline.
pub async fn mark_disconnected(conn: &mut AsyncPgConnection, closed: &[Presence]) -> Result<Vec<i64>, StoreError> {
    if closed.is_empty() {
        return Ok(Vec::new());
    }
    let (ids, connected_at, seen_at) = presence_columns(closed);
    let rows: Vec<ChargerIdRow> = diesel::sql_query(
        "UPDATE chargers AS c SET online = FALSE, last_seen_at = GREATEST(c.last_seen_at, v.seen_at) \
         FROM unnest($1::bigint[], $2::timestamptz[], $3::timestamptz[]) AS v(id, connected_at, seen_at) \
         WHERE c.id = v.id AND c.connected_at = v.connected_at \
         RETURNING c.id",
    )
    .bind::<Array<BigInt>, _>(ids)
    .bind::<Array<Timestamptz>, _>(connected_at)
    .bind::<Array<Timestamptz>, _>(seen_at)
    .load(conn)
    .await?;
    Ok(rows.into_iter().map(|row| row.id).collect())
}

/// Marks every charger offline: at start-up nothing is connected yet.
pub async fn mark_all_offline(conn: &mut AsyncPgConnection) -> Result<usize, StoreError> {
    Ok(diesel::update(chargers::table.filter(chargers::online.eq(true)))
        .set(chargers::online.eq(false))
        .execute(conn)
        .await?)
}

/// Records when chargers were last heard from, one statement for many. A row is only written
/// when its stored time is more than `granularity` older (so last-seen is exact to that much,
/// and a busy charger costs one row write per `granularity`, not one per flush). Answers how
/// many rows changed.
pub async fn touch_last_seen(
    conn: &mut AsyncPgConnection,
    seen: &[(i64, DateTime<Utc>)],
    granularity: chrono::Duration,
) -> Result<usize, StoreError> {
    if seen.is_empty() {
        return Ok(0);
    }
    let mut sorted = seen.to_vec();
    sorted.sort_unstable_by_key(|(id, _)| *id);
    let (ids, times): (Vec<i64>, Vec<DateTime<Utc>>) = sorted.into_iter().unzip();
    let stale_before: Vec<DateTime<Utc>> = times.iter().map(|at| *at - granularity).collect();
    Ok(diesel::sql_query(
        "UPDATE chargers AS c SET last_seen_at = v.seen_at \
         FROM unnest($1::bigint[], $2::timestamptz[], $3::timestamptz[]) AS v(id, seen_at, stale_before) \
         WHERE c.id = v.id AND (c.last_seen_at IS NULL OR c.last_seen_at < v.stale_before)",
    )
    .bind::<Array<BigInt>, _>(ids)
    .bind::<Array<Timestamptz>, _>(times)
    .bind::<Array<Timestamptz>, _>(stale_before)
    .execute(conn)
    .await?)
}

/// Stores the fast keyed hash of a charger's password, if its Argon2 hash is still `hash`
/// (an owner may have changed the password meanwhile). Answers whether it did.
pub async fn store_password_mac(
    conn: &mut AsyncPgConnection,
    charger_id: i64,
    hash: &str,
    mac: &str,
) -> Result<bool, StoreError> {
    let updated = diesel::update(chargers::table.find(charger_id).filter(chargers::password_hash.eq(hash)))
        .set(chargers::password_mac.eq(mac))
        .execute(conn)
        .await?;
    Ok(updated == 1)
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
    // Nearly always there already (a charger reports its connectors' status first): a read,
    // where the upsert would write a new row version every time.
    let existing: Option<i64> = connectors::table
        .filter(connectors::charger_id.eq(charger_id))
        .filter(connectors::connector_number.eq(number))
        .select(connectors::id)
        .first(conn)
        .await
        .optional()?;
    if let Some(id) = existing {
        return Ok(id);
    }
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
    let write = (charger_id, report.clone(), received_at);
    Ok(record_statuses(conn, std::slice::from_ref(&write)).await?.remove(0))
}

/// A StatusNotification to store: the charger, its report, when it was received.
pub type StatusWrite = (i64, StatusReport, DateTime<Utc>);

#[derive(QueryableByName)]
struct ConnectorRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = BigInt)]
    charger_id: i64,
    #[diesel(sql_type = Integer)]
    connector_number: i32,
}

/// Stores many StatusNotifications in one transaction: each connector's latest status (one
/// upsert for all) and every report in the history (one insert). Answers each report's
/// connector row ID, in input order.
pub async fn record_statuses(conn: &mut AsyncPgConnection, writes: &[StatusWrite]) -> Result<Vec<i64>, StoreError> {
    if writes.is_empty() {
        return Ok(Vec::new());
    }
    // One upsert row per connector (its last report here), in one lock order.
    let mut latest: HashMap<(i64, i32), &StatusWrite> = HashMap::new();
    for write in writes {
        latest.insert((write.0, write.1.connector_number), write);
    }
    let mut current: Vec<&StatusWrite> = latest.into_values().collect();
    current.sort_unstable_by_key(|(charger, report, _)| (*charger, report.connector_number));
    let text = |rows: &[&StatusWrite], field: fn(&StatusReport) -> Option<String>| -> Vec<Option<String>> {
        rows.iter().map(|(_, report, _)| field(report)).collect()
    };
    let all: Vec<&StatusWrite> = writes.iter().collect();
    conn.transaction::<_, StoreError, _>(async move |conn| {
        plan_each_run(conn).await?;
        let connectors: Vec<ConnectorRow> = diesel::sql_query(
            "INSERT INTO connectors AS c (charger_id, connector_number, status, error_code, info, vendor_id, \
               vendor_error_code, status_at) \
             SELECT * FROM unnest($1::bigint[], $2::int[], $3::text[], $4::text[], $5::text[], $6::text[], \
               $7::text[], $8::timestamptz[]) \
             ON CONFLICT (charger_id, connector_number) DO UPDATE SET status = excluded.status, \
               error_code = excluded.error_code, info = excluded.info, vendor_id = excluded.vendor_id, \
               vendor_error_code = excluded.vendor_error_code, status_at = excluded.status_at \
             RETURNING c.id, c.charger_id, c.connector_number",
        )
        .bind::<Array<BigInt>, _>(current.iter().map(|(charger, _, _)| *charger).collect::<Vec<i64>>())
        .bind::<Array<Integer>, _>(current.iter().map(|(_, r, _)| r.connector_number).collect::<Vec<i32>>())
        .bind::<Array<Text>, _>(current.iter().map(|(_, r, _)| r.status.clone()).collect::<Vec<String>>())
        .bind::<Array<Text>, _>(current.iter().map(|(_, r, _)| r.error_code.clone()).collect::<Vec<String>>())
        .bind::<Array<Nullable<Text>>, _>(text(&current, |r| r.info.clone()))
        .bind::<Array<Nullable<Text>>, _>(text(&current, |r| r.vendor_id.clone()))
        .bind::<Array<Nullable<Text>>, _>(text(&current, |r| r.vendor_error_code.clone()))
        .bind::<Array<Timestamptz>, _>(
            current.iter().map(|(_, r, received)| r.reported_at.unwrap_or(*received)).collect::<Vec<_>>(),
        )
        .prepared()
        .load(conn)
        .await?;
        let ids: HashMap<(i64, i32), i64> =
            connectors.into_iter().map(|row| ((row.charger_id, row.connector_number), row.id)).collect();
        let connector_ids: Vec<i64> = all
            .iter()
            .map(|(charger, report, _)| {
                ids.get(&(*charger, report.connector_number))
                    .copied()
                    .ok_or(StoreError::Query(diesel::result::Error::NotFound))
            })
            .collect::<Result<_, _>>()?;
        diesel::sql_query(
            "INSERT INTO connector_status_history (connector_id, status, error_code, info, vendor_id, \
               vendor_error_code, reported_at, received_at) \
             SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], \
               $7::timestamptz[], $8::timestamptz[])",
        )
        .bind::<Array<BigInt>, _>(connector_ids.clone())
        .bind::<Array<Text>, _>(all.iter().map(|(_, r, _)| r.status.clone()).collect::<Vec<String>>())
        .bind::<Array<Text>, _>(all.iter().map(|(_, r, _)| r.error_code.clone()).collect::<Vec<String>>())
        .bind::<Array<Nullable<Text>>, _>(text(&all, |r| r.info.clone()))
        .bind::<Array<Nullable<Text>>, _>(text(&all, |r| r.vendor_id.clone()))
        .bind::<Array<Nullable<Text>>, _>(text(&all, |r| r.vendor_error_code.clone()))
        .bind::<Array<Nullable<Timestamptz>>, _>(all.iter().map(|(_, r, _)| r.reported_at).collect::<Vec<_>>())
        .bind::<Array<Timestamptz>, _>(all.iter().map(|(_, _, received)| *received).collect::<Vec<_>>())
        .prepared()
        .execute(conn)
        .await?;
        Ok(connector_ids)
    })
    .await
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
                            chargers::password_mac.eq(None::<String>),
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
                // The fast hash belongs to the old password: gone with it.
                changes.password_hash.as_ref().map(|_| chargers::password_mac.eq(None::<String>)),
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
