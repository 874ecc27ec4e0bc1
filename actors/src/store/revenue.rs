//! What station owners earn, and the reports built on it. `revenue_entries` has one row per
//! paid session settled (`charging`) and its late adjustment (`adjustment`), and one per
//! booking fee paid (`booking`) and refunded (`booking_refund`, negative), each dated when it
//! happened by the server's clock. A station's revenue for a period is the sum of its rows.

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Date, Double, Nullable, Numeric, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use rust_decimal::Decimal;

use super::StoreError;
use super::prepared::KeepPrepared;
use super::schema::{revenue_entries, stations};

/// The calendar that reports count days in: India's (IST, no daylight saving).
pub const REPORT_TIME_ZONE: &str = "Asia/Kolkata";

/// Records what a session earned its station's owner at `at` (`charging`, or a later
/// `adjustment`); one row per session and kind.
pub async fn record_session(
    conn: &mut AsyncPgConnection,
    station_id: i64,
    session_id: i64,
    kind: &str,
    amount: Decimal,
    energy_wh: i64,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let owner_id: i64 = stations::table.find(station_id).select(stations::owner_id).first(conn).await?;
    diesel::insert_into(revenue_entries::table)
        .values((
            revenue_entries::station_id.eq(station_id),
            revenue_entries::owner_id.eq(owner_id),
            revenue_entries::session_id.eq(session_id),
            revenue_entries::kind.eq(kind),
            revenue_entries::amount.eq(amount),
            revenue_entries::energy_wh.eq(energy_wh),
            revenue_entries::created_at.eq(at),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// A booking's effect on its station's revenue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BookingRevenue {
    /// The fee, paid when the slot was booked.
    Fee,
    /// A refund of the fee, at a cancellation.
    Refund,
}

/// Records a booking's fee (`amount` added) or its refund (`amount` taken back) at `at`, for the
/// station of the booked charger; one row per booking and kind. A charger with no station has
/// no one to earn it, and records nothing.
pub async fn record_booking(
    conn: &mut AsyncPgConnection,
    booking_id: i64,
    what: BookingRevenue,
    amount: Decimal,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let (kind, amount) = match what {
        BookingRevenue::Fee => ("booking", amount),
        BookingRevenue::Refund => ("booking_refund", -amount),
    };
    diesel::sql_query(
        "INSERT INTO revenue_entries (station_id, owner_id, booking_id, kind, amount, created_at) \
         SELECT st.id, st.owner_id, b.id, $2, $3, $4 \
         FROM bookings b JOIN chargers c ON c.id = b.charger_id JOIN stations st ON st.id = c.station_id \
         WHERE b.id = $1",
    )
    .bind::<BigInt, _>(booking_id)
    .bind::<Text, _>(kind)
    .bind::<Numeric, _>(amount)
    .bind::<Timestamptz, _>(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// One station's activity on one day of a report.
#[derive(Debug, Clone, PartialEq, QueryableByName)]
pub struct StationDay {
    /// The station.
    #[diesel(sql_type = BigInt)]
    pub station_id: i64,
    /// The day, in [`REPORT_TIME_ZONE`].
    #[diesel(sql_type = Date)]
    pub day: NaiveDate,
    /// Sessions settled that day that delivered charge (started on the charger).
    #[diesel(sql_type = BigInt)]
    pub sessions: i64,
    /// Their energy, Wh.
    #[diesel(sql_type = BigInt)]
    pub energy_wh: i64,
    /// Their time from start to end, seconds.
    #[diesel(sql_type = Double)]
    pub charging_seconds: f64,
    /// Revenue from charging that day: sessions settled and late adjustments, INR.
    #[diesel(sql_type = Numeric)]
    pub charging_revenue: Decimal,
    /// Revenue from bookings that day: fees paid less fees refunded, INR.
    #[diesel(sql_type = Numeric)]
    pub booking_revenue: Decimal,
}

/// Every day with activity in `[from, to)` at the owner's stations (every owner's for `None`),
/// or at one station, ordered by station and day; days with none are left out. Usage counts
/// sessions on the day they were settled; revenue counts each entry on the day it was recorded.
pub async fn station_days(
    conn: &mut AsyncPgConnection,
    owner_id: Option<i64>,
    station_id: Option<i64>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<StationDay>, StoreError> {
    Ok(diesel::sql_query(
        "WITH usage AS ( \
           SELECT s.station_id, (s.settled_at AT TIME ZONE $5)::date AS day, count(*) AS sessions, \
                  sum(s.energy_wh) AS energy_wh, \
                  sum(extract(epoch FROM coalesce(s.ended_at, s.settled_at) - s.started_at)) AS seconds \
           FROM charging_sessions s JOIN stations st ON st.id = s.station_id \
           WHERE ($1::bigint IS NULL OR st.owner_id = $1) AND ($2::bigint IS NULL OR st.id = $2) \
             AND s.started_at IS NOT NULL AND s.settled_at >= $3 AND s.settled_at < $4 \
           GROUP BY 1, 2), \
         money AS ( \
           SELECT r.station_id, (r.created_at AT TIME ZONE $5)::date AS day, \
                  sum(r.amount) FILTER (WHERE r.kind IN ('charging', 'adjustment')) AS charging, \
                  sum(r.amount) FILTER (WHERE r.kind IN ('booking', 'booking_refund')) AS booking \
           FROM revenue_entries r JOIN stations st ON st.id = r.station_id \
           WHERE ($1::bigint IS NULL OR st.owner_id = $1) AND ($2::bigint IS NULL OR st.id = $2) \
             AND r.created_at >= $3 AND r.created_at < $4 \
           GROUP BY 1, 2) \
         SELECT coalesce(u.station_id, m.station_id) AS station_id, coalesce(u.day, m.day) AS day, \
                coalesce(u.sessions, 0)::bigint AS sessions, coalesce(u.energy_wh, 0)::bigint AS energy_wh, \
                coalesce(u.seconds, 0)::float8 AS charging_seconds, \
                coalesce(m.charging, 0) AS charging_revenue, coalesce(m.booking, 0) AS booking_revenue \
         FROM usage u FULL JOIN money m ON m.station_id = u.station_id AND m.day = u.day \
         ORDER BY 1, 2",
    )
    .bind::<Nullable<BigInt>, _>(owner_id)
    .bind::<Nullable<BigInt>, _>(station_id)
    .bind::<Timestamptz, _>(from)
    .bind::<Timestamptz, _>(to)
    .bind::<Text, _>(REPORT_TIME_ZONE)
    .prepared()
    .load(conn)
    .await?)
}
