//! Queries on `queue_entries`: drivers waiting for a busy charger, in the order they joined.
//! A driver is in at most one queue (a partial unique index); the first waiting driver whose
//! connector frees up is held a connector for a while, then starts, or lapses.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::StoreError;
use super::prepared::KeepPrepared;
use super::schema::{chargers, queue_entries, users};

/// A waiting or held queue entry.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = queue_entries, check_for_backend(diesel::pg::Pg))]
pub struct QueueEntry {
    /// Entry ID.
    pub id: i64,
    /// The charger's row.
    pub charger_id: i64,
    /// The connector asked for; `None`: any.
    pub connector_number: Option<i32>,
    /// The driver.
    pub user_id: i64,
    /// waiting, held, started, left or lapsed.
    pub status: String,
    /// The connector held for the driver.
    pub held_connector: Option<i32>,
    /// Until when.
    pub held_until: Option<DateTime<Utc>>,
    /// When the driver joined.
    pub joined_at: DateTime<Utc>,
}

/// Why a driver could not join.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    /// Already waiting somewhere.
    #[error("already in a queue")]
    AlreadyQueued,
    /// Anything else.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Adds the driver at the end of the charger's queue.
pub async fn join(
    conn: &mut AsyncPgConnection,
    charger_id: i64,
    connector_number: Option<i32>,
    user_id: i64,
    now: DateTime<Utc>,
) -> Result<QueueEntry, JoinError> {
    diesel::insert_into(queue_entries::table)
        .values((
            queue_entries::charger_id.eq(charger_id),
            queue_entries::connector_number.eq(connector_number),
            queue_entries::user_id.eq(user_id),
            queue_entries::joined_at.eq(now),
        ))
        .returning(QueueEntry::as_returning())
        .get_result(conn)
        .await
        .map_err(|error| match error {
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => JoinError::AlreadyQueued,
            other => JoinError::Store(other.into()),
        })
}

/// The charger's live entries (waiting and held), first come first.
pub async fn live_for_charger(conn: &mut AsyncPgConnection, charger_id: i64) -> Result<Vec<QueueEntry>, StoreError> {
    Ok(queue_entries::table
        .filter(queue_entries::charger_id.eq(charger_id))
        .filter(queue_entries::status.eq_any(["waiting", "held"]))
        .order((queue_entries::joined_at, queue_entries::id))
        .select(QueueEntry::as_select())
        .load(conn)
        .await?)
}

/// The driver's live entry, with its charger's charge point ID.
pub async fn live_for_driver(
    conn: &mut AsyncPgConnection,
    user_id: i64,
) -> Result<Option<(QueueEntry, String)>, StoreError> {
    Ok(queue_entries::table
        .inner_join(chargers::table)
        .filter(queue_entries::user_id.eq(user_id))
        .filter(queue_entries::status.eq_any(["waiting", "held"]))
        .select((QueueEntry::as_select(), chargers::charge_point_id))
        .first(conn)
        .await
        .optional()?)
}

/// Charge point IDs of every charger with a live queue (rebuilt into actors at start-up).
pub async fn chargers_with_queues(conn: &mut AsyncPgConnection) -> Result<Vec<String>, StoreError> {
    Ok(queue_entries::table
        .inner_join(chargers::table)
        .filter(queue_entries::status.eq_any(["waiting", "held"]))
        .select(chargers::charge_point_id)
        .distinct()
        .load(conn)
        .await?)
}

/// Ends an entry (`left`, `lapsed` or `started`), if it is still live; answers whether it was.
pub async fn finish(
    conn: &mut AsyncPgConnection,
    entry_id: i64,
    status: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let updated =
        diesel::update(queue_entries::table.find(entry_id).filter(queue_entries::status.eq_any(["waiting", "held"])))
            .set((
                queue_entries::status.eq(status),
                queue_entries::held_connector.eq(None::<i32>),
                queue_entries::held_until.eq(None::<DateTime<Utc>>),
                queue_entries::finished_at.eq(now),
            ))
            .execute(conn)
            .await?;
    Ok(updated > 0)
}

/// Holds `connector` for a waiting entry until `until`; answers whether it was still waiting.
pub async fn hold(
    conn: &mut AsyncPgConnection,
    entry_id: i64,
    connector: i32,
    until: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let updated = diesel::update(queue_entries::table.find(entry_id).filter(queue_entries::status.eq("waiting")))
        .set((
            queue_entries::status.eq("held"),
            queue_entries::held_connector.eq(connector),
            queue_entries::held_until.eq(until),
        ))
        .execute(conn)
        .await?;
    Ok(updated > 0)
}

/// The driver's idTag, phone-free: what ReserveNow needs.
pub async fn id_tag(conn: &mut AsyncPgConnection, user_id: i64) -> Result<String, StoreError> {
    Ok(users::table.find(user_id).select(users::id_tag).first(conn).await?)
}

/// Average minutes of the charger's recent sessions (for wait estimates); `None` without history.
pub async fn average_session_minutes(conn: &mut AsyncPgConnection, charger_id: i64) -> Result<Option<f64>, StoreError> {
    use diesel::sql_types::{BigInt, Double, Nullable};
    #[derive(QueryableByName)]
    struct Average {
        #[diesel(sql_type = Nullable<Double>)]
        minutes: Option<f64>,
    }
    let average: Average = diesel::sql_query(
        "SELECT avg(duration_seconds)::float8 / 60 AS minutes FROM (SELECT duration_seconds FROM charging_sessions \
         WHERE charger_id = $1 AND duration_seconds > 0 ORDER BY id DESC LIMIT 50) recent",
    )
    .bind::<BigInt, _>(charger_id)
    .prepared()
    .get_result(conn)
    .await?;
    Ok(average.minutes)
}

/// Whether a connector can take the next driver: it reports Available and has no session under way.
pub async fn connector_free(
    conn: &mut AsyncPgConnection,
    charger_id: i64,
    connector_number: i32,
) -> Result<bool, StoreError> {
    use super::schema::{charging_sessions, connectors};
    let status: Option<(i64, String)> = connectors::table
        .filter(connectors::charger_id.eq(charger_id))
        .filter(connectors::connector_number.eq(connector_number))
        .select((connectors::id, connectors::status))
        .first(conn)
        .await
        .optional()?;
    let Some((connector_id, status)) = status else { return Ok(false) };
    if status != "Available" {
        return Ok(false);
    }
    let busy: bool = diesel::select(diesel::dsl::exists(
        charging_sessions::table
            .filter(charging_sessions::connector_id.eq(connector_id))
            .filter(charging_sessions::status.eq_any(["pending", "active"])),
    ))
    .get_result(conn)
    .await?;
    Ok(!busy)
}

/// The charger's row and its connector numbers.
pub async fn charger_connectors(
    conn: &mut AsyncPgConnection,
    charge_point_id: &str,
) -> Result<Option<(i64, Vec<i32>)>, StoreError> {
    use super::schema::connectors;
    let charger: Option<i64> = chargers::table
        .filter(chargers::charge_point_id.eq(charge_point_id))
        .select(chargers::id)
        .first(conn)
        .await
        .optional()?;
    let Some(charger_id) = charger else { return Ok(None) };
    let numbers = connectors::table
        .filter(connectors::charger_id.eq(charger_id))
        .filter(connectors::connector_number.gt(0))
        .order(connectors::connector_number)
        .select(connectors::connector_number)
        .load(conn)
        .await?;
    Ok(Some((charger_id, numbers)))
}

/// Marks the driver's live entry on this charger started (their session began on it).
pub async fn mark_started(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    charger_id: i64,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    match live_for_driver(conn, user_id).await? {
        Some((entry, _)) if entry.charger_id == charger_id => finish(conn, entry.id, "started", now).await,
        _ => Ok(false),
    }
}
