//! Queries for sessions under way: what a SessionActor loads when it (re)starts, the pending
//! session a remote start creates, the stop reasons it records, and the reconciliation of a
//! StopTransaction that arrives after the session was already closed.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use rust_decimal::Decimal;

use super::StoreError;
use super::prepared::KeepPrepared;
use super::revenue;
use super::schema::{chargers, charging_sessions, connectors, users};
use super::wallets::{self, Entry};
use crate::billing;

/// A pending or active session, as its actor needs it.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = charging_sessions, check_for_backend(diesel::pg::Pg))]
pub struct OpenSession {
    /// Session ID.
    pub id: i64,
    /// The paying driver (none for an unknown idTag).
    pub user_id: Option<i64>,
    /// The charger's row.
    pub charger_id: i64,
    /// The connector's row.
    pub connector_id: i64,
    /// The station, if the charger has one.
    pub station_id: Option<i64>,
    /// OCPP transaction ID, once StartTransaction arrived.
    pub transaction_id: Option<i32>,
    /// pending or active.
    pub status: String,
    /// INR per kWh, fixed at start.
    pub price_per_kwh: Decimal,
    /// Energy so far, Wh.
    pub energy_wh: i64,
    /// Running cost.
    pub cost: Decimal,
    /// Driver's energy limit, Wh.
    pub limit_energy_wh: Option<i64>,
    /// Driver's money limit, INR.
    pub limit_amount: Option<Decimal>,
    /// When it was asked for.
    pub requested_at: DateTime<Utc>,
    /// When the charger started it.
    pub started_at: Option<DateTime<Utc>>,
    /// A stop reason recorded before the charger confirmed the stop.
    pub stop_reason: Option<String>,
}

/// An open session with where it runs.
#[derive(Debug, Clone)]
pub struct OpenSessionAt {
    /// The session.
    pub session: OpenSession,
    /// The charger's charge point ID.
    pub charge_point_id: String,
    /// The connector number.
    pub connector_number: i32,
}

/// Loads an open session; `None` once it is settled (or never existed).
pub async fn load_open(conn: &mut AsyncPgConnection, session_id: i64) -> Result<Option<OpenSessionAt>, StoreError> {
    let row: Option<(OpenSession, String, i32)> = charging_sessions::table
        .inner_join(chargers::table)
        .inner_join(connectors::table)
        .filter(charging_sessions::id.eq(session_id))
        .filter(charging_sessions::status.eq_any(["pending", "active"]))
        .select((OpenSession::as_select(), chargers::charge_point_id, connectors::connector_number))
        .first(conn)
        .await
        .optional()?;
    Ok(row.map(|(session, charge_point_id, connector_number)| OpenSessionAt {
        session,
        charge_point_id,
        connector_number,
    }))
}

/// Every open session's ID (rebuilt into actors at start-up).
pub async fn open_ids(conn: &mut AsyncPgConnection) -> Result<Vec<i64>, StoreError> {
    Ok(charging_sessions::table
        .filter(charging_sessions::status.eq_any(["pending", "active"]))
        .order(charging_sessions::id)
        .select(charging_sessions::id)
        .load(conn)
        .await?)
}

/// Records why a stop was asked for, unless a reason is already recorded; the settlement keeps it.
pub async fn record_stop_reason(
    conn: &mut AsyncPgConnection,
    session_id: i64,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    diesel::update(charging_sessions::table.find(session_id))
        .filter(charging_sessions::stop_reason.is_null())
        .filter(charging_sessions::settled_at.is_null())
        .set((charging_sessions::stop_reason.eq(reason), charging_sessions::updated_at.eq(now)))
        .execute(conn)
        .await?;
    Ok(())
}

/// A remote start from the API.
#[derive(Debug, Clone)]
pub struct RemoteStart {
    /// The driver.
    pub user_id: i64,
    /// The charger's row.
    pub charger_id: i64,
    /// The connector's row.
    pub connector_id: i64,
    /// The driver's idTag, sent in RemoteStartTransaction.
    pub id_tag: String,
    /// Where the session came from: app or manual.
    pub source: &'static str,
    /// Energy limit, Wh.
    pub limit_energy_wh: Option<i64>,
    /// Money limit, INR.
    pub limit_amount: Option<Decimal>,
    /// Battery level the app reported at start.
    pub battery_level_start: Option<i16>,
    /// A booking this start consumes.
    pub booking_id: Option<i64>,
}

/// Why a pending session could not be created.
#[derive(Debug, thiserror::Error)]
pub enum RemoteStartError {
    /// The connector already has a session under way.
    #[error("the connector is busy")]
    ConnectorBusy,
    /// The driver already has a session under way.
    #[error("the driver has a session under way")]
    SessionActive,
    /// Anything else.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Creates the pending session a remote start waits on, with the station's price fixed now
/// (read by the same statement). The database's partial unique indexes make "one open session
/// per connector and per driver" hold even when two requests race.
pub async fn create_pending(
    conn: &mut AsyncPgConnection,
    start: &RemoteStart,
    now: DateTime<Utc>,
) -> Result<i64, RemoteStartError> {
    use diesel::sql_types::{BigInt, Int2, Nullable, Numeric, Text, Timestamptz};
    #[derive(QueryableByName)]
    struct Created {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    let created: Created = diesel::sql_query(
        "INSERT INTO charging_sessions (user_id, charger_id, connector_id, station_id, id_tag, source, status, \
           price_per_kwh, limit_energy_wh, limit_amount, battery_level_start, booking_id, requested_at) \
         SELECT $1, ch.id, $3, ch.station_id, $4, $5, 'pending', coalesce(st.price_per_kwh, 0), $6, $7, $8, $9, $10 \
         FROM chargers ch LEFT JOIN stations st ON st.id = ch.station_id \
         WHERE ch.id = $2 \
         RETURNING id",
    )
    .bind::<BigInt, _>(start.user_id)
    .bind::<BigInt, _>(start.charger_id)
    .bind::<BigInt, _>(start.connector_id)
    .bind::<Text, _>(&start.id_tag)
    .bind::<Text, _>(start.source)
    .bind::<Nullable<BigInt>, _>(start.limit_energy_wh)
    .bind::<Nullable<Numeric>, _>(start.limit_amount)
    .bind::<Nullable<Int2>, _>(start.battery_level_start)
    .bind::<Nullable<BigInt>, _>(start.booking_id)
    .bind::<Timestamptz, _>(now)
    .prepared()
    .get_result(conn)
    .await
    .map_err(|error| match &error {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => match info.constraint_name() {
            Some("charging_sessions_one_per_driver") => RemoteStartError::SessionActive,
            Some("charging_sessions_one_per_connector") => RemoteStartError::ConnectorBusy,
            _ => RemoteStartError::Store(error.into()),
        },
        _ => RemoteStartError::Store(error.into()),
    })?;
    Ok(created.id)
}

/// What a late StopTransaction changed on a session that had already been closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reconciliation {
    /// The final reading matched what was billed (or was not usable): nothing changed.
    Unchanged,
    /// The charger delivered more than was billed: one adjusting debit.
    Adjusted {
        /// Extra energy, Wh.
        extra_wh: i64,
        /// Extra amount debited.
        extra_cost: Decimal,
    },
}

/// Driver, station, meter start, billed energy and cost, price, and final reading.
type SettledForReconcile = (Option<i64>, Option<i64>, Option<i64>, i64, Decimal, Decimal, Option<i64>);

/// Reconciles a StopTransaction for a session that was settled earlier (by a fault, an
/// offline timeout or an owner's cancel) with the charger's final meter reading: at most one
/// adjusting ledger entry per session, enforced by the ledger's unique key.
pub async fn reconcile_late_stop(
    conn: &mut AsyncPgConnection,
    session_id: i64,
    meter_stop: i64,
    now: DateTime<Utc>,
) -> Result<Reconciliation, StoreError> {
    conn.transaction::<_, StoreError, _>(async move |conn| {
        let (user_id, station_id, meter_start, energy_wh, cost, price, previous_stop): SettledForReconcile =
            charging_sessions::table
                .find(session_id)
                .for_update()
                .select((
                    charging_sessions::user_id,
                    charging_sessions::station_id,
                    charging_sessions::meter_start_wh,
                    charging_sessions::energy_wh,
                    charging_sessions::cost,
                    charging_sessions::price_per_kwh,
                    charging_sessions::meter_stop_wh,
                ))
                .first(conn)
                .await?;
        let Some(meter_start) = meter_start else { return Ok(Reconciliation::Unchanged) };
        // A session that already had the charger's own final reading is not reconciled again.
        if previous_stop.is_some() || meter_stop < meter_start {
            return Ok(Reconciliation::Unchanged);
        }
        let true_energy = meter_stop - meter_start;
        if true_energy <= energy_wh {
            diesel::update(charging_sessions::table.find(session_id))
                .set((charging_sessions::meter_stop_wh.eq(meter_stop), charging_sessions::updated_at.eq(now)))
                .execute(conn)
                .await?;
            return Ok(Reconciliation::Unchanged);
        }
        let true_cost = if user_id.is_some() { billing::cost(true_energy, price) } else { Decimal::ZERO };
        let extra_cost = (true_cost - cost).max(Decimal::ZERO);
        let extra_wh = true_energy - energy_wh;
        diesel::update(charging_sessions::table.find(session_id))
            .set((
                charging_sessions::meter_stop_wh.eq(meter_stop),
                charging_sessions::energy_wh.eq(true_energy),
                charging_sessions::cost.eq(true_cost.max(cost)),
                charging_sessions::updated_at.eq(now),
            ))
            .execute(conn)
            .await?;
        if let Some(user_id) = user_id
            && extra_cost > Decimal::ZERO
        {
            wallets::apply(
                conn,
                &Entry {
                    user_id,
                    amount: -extra_cost,
                    kind: "adjustment",
                    description: "Charging session adjustment (final meter reading)",
                    reference_kind: "session",
                    reference_id: session_id,
                },
            )
            .await?;
            if let Some(station_id) = station_id {
                revenue::record_session(conn, station_id, session_id, "adjustment", extra_cost, extra_wh, now).await?;
            }
        }
        Ok(Reconciliation::Adjusted { extra_wh, extra_cost })
    })
    .await
}

/// The driver's idTag.
pub async fn id_tag_of(conn: &mut AsyncPgConnection, user_id: i64) -> Result<String, StoreError> {
    Ok(users::table.find(user_id).select(users::id_tag).first(conn).await?)
}

/// What the app reported for the driver's session under way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppProgress {
    /// The session.
    pub session_id: i64,
    /// Energy now, Wh.
    pub energy_wh: i64,
    /// Running cost.
    pub cost: Decimal,
    /// Whether the connector meters energy itself (then the app's energy is not used).
    pub metered: bool,
}

/// Records the app's battery level (and, on a connector not metered, its energy) on the
/// driver's session under way; `None` when there is none.
pub async fn app_update(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    battery_level: i16,
    energy_wh: Option<i64>,
    now: DateTime<Utc>,
) -> Result<Option<AppProgress>, StoreError> {
    conn.transaction::<_, StoreError, _>(async move |conn| {
        let open: Option<(i64, i64, Decimal, bool)> = charging_sessions::table
            .inner_join(connectors::table)
            .filter(charging_sessions::user_id.eq(user_id))
            .filter(charging_sessions::status.eq_any(["pending", "active"]))
            .select((
                charging_sessions::id,
                charging_sessions::energy_wh,
                charging_sessions::price_per_kwh,
                connectors::metered,
            ))
            .for_update()
            .first(conn)
            .await
            .optional()?;
        let Some((session_id, current_wh, price, metered)) = open else { return Ok(None) };
        // Energy never goes backwards, and a metered connector's own meter wins.
        let energy_wh = match energy_wh {
            Some(wh) if !metered => wh.max(current_wh),
            _ => current_wh,
        };
        let cost = billing::cost(energy_wh, price);
        diesel::update(charging_sessions::table.find(session_id))
            .set((
                charging_sessions::soc_percent.eq(battery_level),
                charging_sessions::battery_level_start.eq(diesel::dsl::sql::<
                    diesel::sql_types::Nullable<diesel::sql_types::SmallInt>,
                >("coalesce(battery_level_start, ")
                .bind::<diesel::sql_types::SmallInt, _>(battery_level)
                .sql(")")),
                charging_sessions::energy_wh.eq(energy_wh),
                charging_sessions::cost.eq(cost),
                charging_sessions::updated_at.eq(now),
            ))
            .execute(conn)
            .await?;
        Ok(Some(AppProgress { session_id, energy_wh, cost, metered }))
    })
    .await
}

/// Records the end the app reported: final battery level and rating; on a connector not
/// metered that reported no energy, estimates it from the battery levels and the vehicle's
/// battery size (the seed's rule). Answers the energy now, Wh.
pub async fn app_end(
    conn: &mut AsyncPgConnection,
    session_id: i64,
    battery_level_end: i16,
    rating: Option<i16>,
    now: DateTime<Utc>,
) -> Result<i64, StoreError> {
    conn.transaction::<_, StoreError, _>(async move |conn| {
        let (energy_wh, price, start_level, metered, battery_wh): (i64, Decimal, Option<i16>, bool, i64) =
            charging_sessions::table
                .inner_join(connectors::table)
                .inner_join(users::table)
                .filter(charging_sessions::id.eq(session_id))
                .select((
                    charging_sessions::energy_wh,
                    charging_sessions::price_per_kwh,
                    charging_sessions::battery_level_start,
                    connectors::metered,
                    users::vehicle_battery_wh,
                ))
                .for_update()
                .first(conn)
                .await?;
        let estimated = match start_level {
            Some(start) if !metered && energy_wh == 0 && battery_level_end > start => {
                i64::from(battery_level_end - start) * battery_wh / 100
            }
            _ => energy_wh,
        };
        diesel::update(charging_sessions::table.find(session_id))
            .set((
                charging_sessions::battery_level_end.eq(battery_level_end),
                charging_sessions::soc_percent.eq(battery_level_end),
                charging_sessions::rating.eq(rating),
                charging_sessions::energy_wh.eq(estimated),
                charging_sessions::cost.eq(billing::cost(estimated, price)),
                charging_sessions::updated_at.eq(now),
            ))
            .execute(conn)
            .await?;
        Ok(estimated)
    })
    .await
}
