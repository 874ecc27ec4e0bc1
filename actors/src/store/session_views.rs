//! Sessions as drivers and owners read them: one row shape joined with charger, connector,
//! station and driver, and the filters the API needs (a driver's own, open ones at an owner's
//! stations, one by ID or transaction).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use rust_decimal::Decimal;

use super::StoreError;
use super::prepared::KeepPrepared;
use super::schema::{chargers, charging_sessions, connectors, stations, users};

/// A session with where it ran and who charged.
#[derive(Debug, Clone, Queryable)]
pub struct SessionRow {
    /// Session ID.
    pub id: i64,
    /// The driver.
    pub user_id: Option<i64>,
    /// pending, active, completed, cancelled or failed.
    pub status: String,
    /// app, charger or manual.
    pub source: String,
    /// OCPP transaction ID.
    pub transaction_id: Option<i32>,
    /// INR per kWh.
    pub price_per_kwh: Decimal,
    /// Energy, Wh.
    pub energy_wh: i64,
    /// Power now, W.
    pub power_w: Option<i64>,
    /// State of charge, %.
    pub soc_percent: Option<i16>,
    /// Battery level the app reported at start.
    pub battery_level_start: Option<i16>,
    /// Battery level the app reported at the end.
    pub battery_level_end: Option<i16>,
    /// Cost so far or billed.
    pub cost: Decimal,
    /// Energy limit, Wh.
    pub limit_energy_wh: Option<i64>,
    /// Money limit.
    pub limit_amount: Option<Decimal>,
    /// Asked for.
    pub requested_at: DateTime<Utc>,
    /// Started at the charger.
    pub started_at: Option<DateTime<Utc>>,
    /// Ended.
    pub ended_at: Option<DateTime<Utc>>,
    /// Duration, s.
    pub duration_seconds: Option<i32>,
    /// Average power, W.
    pub average_power_w: Option<i64>,
    /// Why it ended.
    pub stop_reason: Option<String>,
    /// The meter ran backwards.
    pub meter_fault: bool,
    /// The driver's rating of the station.
    pub rating: Option<i16>,
    /// The charger.
    pub charge_point_id: String,
    /// The connector number.
    pub connector_number: i32,
    /// The station.
    pub station_id: Option<i64>,
    /// Its name.
    pub station_name: Option<String>,
    /// Its owner.
    pub station_owner_id: Option<i64>,
    /// The driver's username.
    pub driver_username: Option<String>,
    /// The driver's name.
    pub driver_name: Option<String>,
    /// The driver's email.
    pub driver_email: Option<String>,
}

macro_rules! session_rows {
    () => {
        charging_sessions::table
            .inner_join(chargers::table)
            .inner_join(connectors::table)
            .left_join(stations::table.on(charging_sessions::station_id.eq(stations::id.nullable())))
            .left_join(users::table.on(charging_sessions::user_id.eq(users::id.nullable())))
            .select((
                charging_sessions::id,
                charging_sessions::user_id,
                charging_sessions::status,
                charging_sessions::source,
                charging_sessions::transaction_id,
                charging_sessions::price_per_kwh,
                charging_sessions::energy_wh,
                charging_sessions::power_w,
                charging_sessions::soc_percent,
                charging_sessions::battery_level_start,
                charging_sessions::battery_level_end,
                charging_sessions::cost,
                charging_sessions::limit_energy_wh,
                charging_sessions::limit_amount,
                charging_sessions::requested_at,
                charging_sessions::started_at,
                charging_sessions::ended_at,
                charging_sessions::duration_seconds,
                charging_sessions::average_power_w,
                charging_sessions::stop_reason,
                charging_sessions::meter_fault,
                charging_sessions::rating,
                chargers::charge_point_id,
                connectors::connector_number,
                charging_sessions::station_id,
                stations::name.nullable(),
                stations::owner_id.nullable(),
                users::username.nullable(),
                users::name.nullable(),
                users::email.nullable(),
            ))
    };
}

/// One session by ID.
pub async fn by_id(conn: &mut AsyncPgConnection, session_id: i64) -> Result<Option<SessionRow>, StoreError> {
    Ok(session_rows!().filter(charging_sessions::id.eq(session_id)).first(conn).await.optional()?)
}

/// The driver's session with this OCPP transaction ID.
pub async fn by_transaction(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    transaction_id: i32,
) -> Result<Option<SessionRow>, StoreError> {
    Ok(session_rows!()
        .filter(charging_sessions::user_id.eq(user_id))
        .filter(charging_sessions::transaction_id.eq(transaction_id))
        .first(conn)
        .await
        .optional()?)
}

/// The driver's session under way, if any.
pub async fn open_for_driver(conn: &mut AsyncPgConnection, user_id: i64) -> Result<Option<SessionRow>, StoreError> {
    Ok(session_rows!()
        .filter(charging_sessions::user_id.eq(user_id))
        .filter(charging_sessions::status.eq_any(["pending", "active"]))
        .first(conn)
        .await
        .optional()?)
}

/// Sessions under way at an owner's stations (every station when `owner_id` is `None`), oldest first.
pub async fn open_at_stations(
    conn: &mut AsyncPgConnection,
    owner_id: Option<i64>,
) -> Result<Vec<SessionRow>, StoreError> {
    let query = session_rows!().filter(charging_sessions::status.eq_any(["pending", "active"])).into_boxed();
    let query = match owner_id {
        Some(owner_id) => query.filter(stations::owner_id.eq(owner_id)),
        None => query,
    };
    Ok(query.order(charging_sessions::id).load(conn).await?)
}

/// Which sessions of a driver's history to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryFilter {
    /// The last 30 days.
    Recent,
    /// Since the first of this month (UTC).
    ThisMonth,
    /// Everything.
    AllTime,
}

/// A page of the driver's sessions, newest first, and how many there are in all.
pub async fn history(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    since: Option<DateTime<Utc>>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<SessionRow>, i64), StoreError> {
    let mut rows = session_rows!().filter(charging_sessions::user_id.eq(user_id)).into_boxed();
    let mut total = charging_sessions::table.filter(charging_sessions::user_id.eq(user_id)).count().into_boxed();
    if let Some(since) = since {
        rows = rows.filter(charging_sessions::requested_at.ge(since));
        total = total.filter(charging_sessions::requested_at.ge(since));
    }
    let rows = rows.order(charging_sessions::id.desc()).limit(limit).offset(offset).load(conn).await?;
    let total = total.get_result(conn).await?;
    Ok((rows, total))
}

/// Everything a driver's start is checked against, read in one statement: the charger and
/// connector it names, a live hold on that connector, whether the driver already has a session
/// under way or a live queue entry at this charger, and their balance.
#[derive(Debug, Clone, QueryableByName)]
pub struct StartCheck {
    /// The charger's row.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub charger_id: i64,
    /// accepted, pending or rejected.
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub registration_status: String,
    /// The station (a charger without one cannot be priced).
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    pub station_id: Option<i64>,
    /// The connector's row.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub connector_id: i64,
    /// Its OCPP status.
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub connector_status: String,
    /// Whether a reservation (a queue turn or a booking) holds the connector now.
    #[diesel(sql_type = diesel::sql_types::Bool)]
    pub held: bool,
    /// Whom the hold is for.
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    pub hold_user_id: Option<i64>,
    /// The booking the hold is for, if it is a booking's.
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    pub hold_booking_id: Option<i64>,
    /// Whether the driver has a pending or active session anywhere.
    #[diesel(sql_type = diesel::sql_types::Bool)]
    pub session_open: bool,
    /// Whether the driver is waiting (or held) in this charger's queue.
    #[diesel(sql_type = diesel::sql_types::Bool)]
    pub queued_here: bool,
    /// The driver's wallet balance (`None` without a wallet).
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Numeric>)]
    pub balance: Option<Decimal>,
}

/// What decides `driver`'s start on a charger's connector, at `now`; `Ok(None)` when the charger
/// or the connector does not exist. One round trip: a start answers within the REST budget
/// while PostgreSQL is busy storing a fleet's meter values, and each statement is a wait.
pub async fn start_check(
    conn: &mut AsyncPgConnection,
    charge_point_id: &str,
    connector_number: i32,
    driver: i64,
    now: DateTime<Utc>,
) -> Result<Option<StartCheck>, StoreError> {
    use diesel::sql_types::{Array, BigInt, Integer, Text, Timestamptz};
    Ok(diesel::sql_query(
        "SELECT ch.id AS charger_id, ch.registration_status, ch.station_id, \
           co.id AS connector_id, co.status AS connector_status, \
           r.id IS NOT NULL AS held, r.user_id AS hold_user_id, r.booking_id AS hold_booking_id, \
           EXISTS (SELECT 1 FROM charging_sessions s \
                   WHERE s.user_id = $3 AND s.status IN ('pending', 'active')) AS session_open, \
           EXISTS (SELECT 1 FROM queue_entries q \
                   WHERE q.user_id = $3 AND q.charger_id = ch.id AND q.status IN ('waiting', 'held')) AS queued_here, \
           (SELECT w.balance FROM wallets w WHERE w.user_id = $3) AS balance \
         FROM chargers ch \
         JOIN connectors co ON co.charger_id = ch.id AND co.connector_number = $2 \
         LEFT JOIN LATERAL ( \
           SELECT h.id, h.user_id, h.booking_id FROM reservations h \
           WHERE h.charger_id = ch.id AND h.connector_number = $2 AND h.status = ANY($5) AND h.expires_at > $4 \
           ORDER BY h.id DESC LIMIT 1) r ON true \
         WHERE ch.charge_point_id = $1",
    )
    .bind::<Text, _>(charge_point_id)
    .bind::<Integer, _>(connector_number)
    .bind::<BigInt, _>(driver)
    .bind::<Timestamptz, _>(now)
    .bind::<Array<Text>, _>(super::reservations::HOLDING.as_slice())
    .prepared()
    .get_result(conn)
    .await
    .optional()?)
}

/// A driver's totals over a set of sessions.
#[derive(Debug, Clone, Default, diesel::QueryableByName)]
pub struct Totals {
    /// Sessions that delivered or were billed.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub sessions: i64,
    /// Energy, Wh.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub energy_wh: i64,
    /// Amount paid.
    #[diesel(sql_type = diesel::sql_types::Numeric)]
    pub spent: Decimal,
    /// Total duration, s.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub duration_seconds: i64,
}

/// Totals of the driver's ended sessions that started, since `since` (all time when `None`).
pub async fn totals(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    since: Option<DateTime<Utc>>,
) -> Result<Totals, StoreError> {
    use diesel::sql_types::{BigInt, Nullable, Timestamptz};
    Ok(diesel::sql_query(
        "SELECT count(*)::bigint AS sessions, coalesce(sum(energy_wh), 0)::bigint AS energy_wh, \
                coalesce(sum(cost), 0) AS spent, coalesce(sum(duration_seconds), 0)::bigint AS duration_seconds \
         FROM charging_sessions \
         WHERE user_id = $1 AND settled_at IS NOT NULL AND started_at IS NOT NULL \
           AND ($2::timestamptz IS NULL OR requested_at >= $2)",
    )
    .bind::<BigInt, _>(user_id)
    .bind::<Nullable<Timestamptz>, _>(since)
    .prepared()
    .get_result(conn)
    .await?)
}

/// One month of a driver's charging.
#[derive(Debug, Clone, diesel::QueryableByName)]
pub struct MonthUsage {
    /// `YYYY-MM`.
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub month: String,
    /// Sessions.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub sessions: i64,
    /// Energy, Wh.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub energy_wh: i64,
    /// Amount paid.
    #[diesel(sql_type = diesel::sql_types::Numeric)]
    pub spent: Decimal,
}

/// The driver's usage per month (UTC) since `since`, oldest first.
pub async fn monthly_usage(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    since: DateTime<Utc>,
) -> Result<Vec<MonthUsage>, StoreError> {
    use diesel::sql_types::{BigInt, Timestamptz};
    Ok(diesel::sql_query(
        "SELECT to_char(date_trunc('month', requested_at AT TIME ZONE 'UTC'), 'YYYY-MM') AS month, \
                count(*)::bigint AS sessions, coalesce(sum(energy_wh), 0)::bigint AS energy_wh, \
                coalesce(sum(cost), 0) AS spent \
         FROM charging_sessions \
         WHERE user_id = $1 AND settled_at IS NOT NULL AND started_at IS NOT NULL AND requested_at >= $2 \
         GROUP BY 1 ORDER BY 1",
    )
    .bind::<BigInt, _>(user_id)
    .bind::<Timestamptz, _>(since)
    .prepared()
    .load(conn)
    .await?)
}

/// The station where the driver charged most often: ID and name.
pub async fn favourite_station(
    conn: &mut AsyncPgConnection,
    user_id: i64,
) -> Result<Option<(i64, String)>, StoreError> {
    Ok(charging_sessions::table
        .inner_join(stations::table.on(charging_sessions::station_id.eq(stations::id.nullable())))
        .filter(charging_sessions::user_id.eq(user_id))
        .filter(charging_sessions::started_at.is_not_null())
        .group_by((stations::id, stations::name))
        .order((diesel::dsl::count_star().desc(), stations::id))
        .select((stations::id, stations::name))
        .first(conn)
        .await
        .optional()?)
}

/// Records the driver's rating of an ended session; `false` when it is not theirs or not ended.
pub async fn rate(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    session_id: i64,
    rating: i16,
) -> Result<bool, StoreError> {
    let updated = diesel::update(
        charging_sessions::table
            .filter(charging_sessions::id.eq(session_id))
            .filter(charging_sessions::user_id.eq(user_id))
            .filter(charging_sessions::settled_at.is_not_null()),
    )
    .set(charging_sessions::rating.eq(rating))
    .execute(conn)
    .await?;
    Ok(updated > 0)
}

/// A driver's history criteria: a status and a window on when the session was requested.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryCriteria {
    /// Only this status.
    pub status: Option<String>,
    /// Requested at or after.
    pub since: Option<DateTime<Utc>>,
    /// Requested before.
    pub until: Option<DateTime<Utc>>,
}

/// A page of the driver's sessions matching `filter`, newest first, and how many match.
pub async fn history_filtered(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    filter: &HistoryCriteria,
    limit: i64,
    offset: i64,
) -> Result<(Vec<SessionRow>, i64), StoreError> {
    let mut rows = session_rows!().filter(charging_sessions::user_id.eq(user_id)).into_boxed();
    let mut total = charging_sessions::table.filter(charging_sessions::user_id.eq(user_id)).count().into_boxed();
    if let Some(status) = &filter.status {
        rows = rows.filter(charging_sessions::status.eq(status.clone()));
        total = total.filter(charging_sessions::status.eq(status.clone()));
    }
    if let Some(since) = filter.since {
        rows = rows.filter(charging_sessions::requested_at.ge(since));
        total = total.filter(charging_sessions::requested_at.ge(since));
    }
    if let Some(until) = filter.until {
        rows = rows.filter(charging_sessions::requested_at.lt(until));
        total = total.filter(charging_sessions::requested_at.lt(until));
    }
    let rows = rows.order(charging_sessions::id.desc()).limit(limit).offset(offset).load(conn).await?;
    let total = total.get_result(conn).await?;
    Ok((rows, total))
}

/// Totals of the driver's billed sessions (started and settled, as [`totals`] counts them)
/// that match `filter`.
pub async fn totals_filtered(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    filter: &HistoryCriteria,
) -> Result<Totals, StoreError> {
    use diesel::sql_types::{BigInt, Nullable, Text, Timestamptz};
    Ok(diesel::sql_query(
        "SELECT count(*)::bigint AS sessions, coalesce(sum(energy_wh), 0)::bigint AS energy_wh, \
                coalesce(sum(cost), 0) AS spent, coalesce(sum(duration_seconds), 0)::bigint AS duration_seconds \
         FROM charging_sessions \
         WHERE user_id = $1 AND settled_at IS NOT NULL AND started_at IS NOT NULL \
           AND ($2::text IS NULL OR status = $2) \
           AND ($3::timestamptz IS NULL OR requested_at >= $3) \
           AND ($4::timestamptz IS NULL OR requested_at < $4)",
    )
    .bind::<BigInt, _>(user_id)
    .bind::<Nullable<Text>, _>(filter.status.clone())
    .bind::<Nullable<Timestamptz>, _>(filter.since)
    .bind::<Nullable<Timestamptz>, _>(filter.until)
    .prepared()
    .get_result(conn)
    .await?)
}
