//! Queries on `bookings`: a driver's slot on a connector, paid from the wallet when booked.
//!
//! Every change of state is one conditional statement (or one transaction with a row lock),
//! so a booking timer, the backup sweep and the driver's own requests can race without ever
//! leaving a booking in a wrong state or moving money twice: the first writer wins and the
//! others see that the booking has moved on. The life of a booking:
//! `confirmed` → (slot start) `grace` → (check-in) `checked_in` → (session starts) `charging`
//! → (slot end or session settled) `completed`; `grace` → (no check-in) `expired`;
//! `confirmed`/`grace` → (driver) `cancelled`.

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sql_types::{BigInt, Nullable, Numeric, Timestamptz};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use rust_decimal::Decimal;

use super::prepared::KeepPrepared;
use super::reservations::{HOLDING, Reservation};
use super::revenue::{self, BookingRevenue};
use super::schema::{bookings, chargers, charging_sessions, connectors, reservations, stations, users, wallets};
use super::{StoreError, wallets as ledger};

/// Statuses of a booking that still has something ahead of it (a timer watches it).
pub const LIVE: [&str; 4] = ["confirmed", "grace", "checked_in", "charging"];

/// Every status, in the order of a booking's life.
pub const STATUSES: [&str; 7] = ["confirmed", "grace", "checked_in", "charging", "completed", "expired", "cancelled"];

/// `expired_reason` of a booking whose driver never checked in.
pub const NO_SHOW: &str = "no_show";

/// A booking row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = bookings, check_for_backend(diesel::pg::Pg))]
pub struct Booking {
    /// Primary key.
    pub id: i64,
    /// The driver.
    pub user_id: i64,
    /// The charger's row.
    pub charger_id: i64,
    /// The connector's row.
    pub connector_id: i64,
    /// Slot start.
    pub start_at: DateTime<Utc>,
    /// Slot end.
    pub end_at: DateTime<Utc>,
    /// confirmed, grace, checked_in, charging, completed, expired or cancelled.
    pub status: String,
    /// The fee debited when booked.
    pub fee: Decimal,
    /// End of the grace period (set at slot start).
    pub grace_ends_at: Option<DateTime<Utc>>,
    /// When Kilowatt started the slot (notified the driver, reserved the connector).
    pub slot_started_at: Option<DateTime<Utc>>,
    /// When the driver checked in.
    pub checked_in_at: Option<DateTime<Utc>>,
    /// app or qr.
    pub checkin_method: Option<String>,
    /// When it expired.
    pub expired_at: Option<DateTime<Utc>>,
    /// Why it expired (`no_show`).
    pub expired_reason: Option<String>,
    /// When the driver cancelled it.
    pub cancelled_at: Option<DateTime<Utc>>,
    /// What the cancellation refunded.
    pub refund_amount: Option<Decimal>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// A booking with what people read next to it: charger, connector, station, driver.
#[derive(Debug, Clone)]
pub struct BookingRow {
    /// The booking.
    pub booking: Booking,
    /// The charger's charge point ID.
    pub charge_point_id: String,
    /// The connector's number on its charger.
    pub connector_number: i32,
    /// The station, if the charger still has one.
    pub station: Option<StationInfo>,
    /// The driver's username.
    pub username: String,
    /// The driver's name, if given.
    pub driver_name: Option<String>,
    /// The driver's idTag (what the connector is reserved for).
    pub id_tag: String,
}

/// The station a booking is at.
#[derive(Debug, Clone, Queryable)]
pub struct StationInfo {
    /// Station ID.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Street address.
    pub address: String,
    /// Its owner.
    pub owner_id: i64,
}

type RowTuple = (Booking, String, i32, Option<StationInfo>, String, Option<String>, String);

fn row((booking, charge_point_id, connector_number, station, username, driver_name, id_tag): RowTuple) -> BookingRow {
    BookingRow { booking, charge_point_id, connector_number, station, username, driver_name, id_tag }
}

macro_rules! rows_query {
    () => {
        bookings::table
            .inner_join(chargers::table.left_join(stations::table))
            .inner_join(connectors::table)
            .inner_join(users::table)
            .select((
                Booking::as_select(),
                chargers::charge_point_id,
                connectors::connector_number,
                (stations::id, stations::name, stations::address, stations::owner_id).nullable(),
                users::username,
                users::name,
                users::id_tag,
            ))
    };
}

/// What a booking can be made on.
#[derive(Debug, Clone, Queryable)]
pub struct SlotTarget {
    /// The charger's row.
    pub charger_id: i64,
    /// accepted, pending or rejected.
    pub registration_status: String,
    /// The connector's row.
    pub connector_id: i64,
    /// The station, if any.
    pub station_id: Option<i64>,
    /// Whether the station is open to drivers.
    pub station_active: Option<bool>,
    /// The station's own booking fee, if it sets one.
    pub booking_fee: Option<Decimal>,
}

/// The charger and connector a booking names; `None` when either is unknown.
pub async fn slot_target(
    conn: &mut AsyncPgConnection,
    charge_point_id: &str,
    connector_number: i32,
) -> Result<Option<SlotTarget>, StoreError> {
    Ok(chargers::table
        .inner_join(connectors::table)
        .left_join(stations::table)
        .filter(chargers::charge_point_id.eq(charge_point_id))
        .filter(connectors::connector_number.eq(connector_number))
        .select((
            chargers::id,
            chargers::registration_status,
            connectors::id,
            chargers::station_id,
            stations::active.nullable(),
            stations::booking_fee.nullable(),
        ))
        .first(conn)
        .await
        .optional()?)
}

/// A booking to make.
#[derive(Debug, Clone)]
pub struct NewBooking {
    /// The driver.
    pub user_id: i64,
    /// The charger's row.
    pub charger_id: i64,
    /// The connector's row.
    pub connector_id: i64,
    /// Slot start.
    pub start_at: DateTime<Utc>,
    /// Slot end.
    pub end_at: DateTime<Utc>,
    /// The fee to debit now.
    pub fee: Decimal,
}

/// Why a booking could not be made.
#[derive(Debug, thiserror::Error)]
pub enum BookError {
    /// Another live booking overlaps the slot on this connector.
    #[error("the slot overlaps another booking on this connector")]
    SlotTaken,
    /// The driver has another live booking at an overlapping time.
    #[error("the driver has another booking at that time")]
    DriverBusy,
    /// The wallet cannot pay the fee.
    #[error("the wallet holds {available}, the fee is {needed}")]
    InsufficientBalance {
        /// The fee.
        needed: Decimal,
        /// The balance.
        available: Decimal,
    },
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<DieselError> for BookError {
    fn from(error: DieselError) -> Self {
        match &error {
            DieselError::DatabaseError(DatabaseErrorKind::ExclusionViolation, _) => BookError::SlotTaken,
            _ => BookError::Store(error.into()),
        }
    }
}

/// Makes a booking and debits its fee (ledger kind `booking`) in one transaction. The wallet
/// row is locked first, so two bookings cannot both spend the same balance; the exclusion
/// constraint on `bookings` refuses an overlapping slot even when two requests race.
pub async fn create(conn: &mut AsyncPgConnection, new: &NewBooking, now: DateTime<Utc>) -> Result<Booking, BookError> {
    let new = new.clone();
    conn.transaction::<_, BookError, _>(async move |conn| {
        let available: Decimal = wallets::table
            .find(new.user_id)
            .select(wallets::balance)
            .for_update()
            .first(conn)
            .await
            .optional()?
            .unwrap_or_default();
        if available < new.fee {
            return Err(BookError::InsufficientBalance { needed: new.fee, available });
        }
        let own_overlap: i64 = bookings::table
            .filter(bookings::user_id.eq(new.user_id))
            .filter(bookings::status.eq_any(LIVE))
            .filter(bookings::start_at.lt(new.end_at))
            .filter(bookings::end_at.gt(new.start_at))
            .count()
            .get_result(conn)
            .await?;
        if own_overlap > 0 {
            return Err(BookError::DriverBusy);
        }
        let booking: Booking = diesel::insert_into(bookings::table)
            .values((
                bookings::user_id.eq(new.user_id),
                bookings::charger_id.eq(new.charger_id),
                bookings::connector_id.eq(new.connector_id),
                bookings::start_at.eq(new.start_at),
                bookings::end_at.eq(new.end_at),
                bookings::fee.eq(new.fee),
                bookings::created_at.eq(now),
                bookings::updated_at.eq(now),
            ))
            .returning(Booking::as_returning())
            .get_result(conn)
            .await?;
        if new.fee > Decimal::ZERO {
            let entry = ledger::Entry {
                user_id: new.user_id,
                amount: -new.fee,
                kind: "booking",
                description: "Slot booking fee",
                reference_kind: "booking",
                reference_id: booking.id,
            };
            ledger::apply(conn, &entry).await?;
            revenue::record_booking(conn, booking.id, BookingRevenue::Fee, new.fee, now).await?;
        }
        Ok(booking)
    })
    .await
}

/// One booking with its charger, station and driver.
pub async fn find(conn: &mut AsyncPgConnection, booking_id: i64) -> Result<Option<BookingRow>, StoreError> {
    let found: Option<RowTuple> = rows_query!().filter(bookings::id.eq(booking_id)).first(conn).await.optional()?;
    Ok(found.map(row))
}

/// A page of a driver's bookings, latest slot first, and how many match in all.
pub async fn list_for_user(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    status: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<BookingRow>, i64), StoreError> {
    let mut query = rows_query!().filter(bookings::user_id.eq(user_id)).into_boxed();
    let mut total = bookings::table.filter(bookings::user_id.eq(user_id)).count().into_boxed();
    if let Some(status) = status {
        query = query.filter(bookings::status.eq(status.to_owned()));
        total = total.filter(bookings::status.eq(status.to_owned()));
    }
    let rows: Vec<RowTuple> =
        query.order((bookings::start_at.desc(), bookings::id.desc())).limit(limit).offset(offset).load(conn).await?;
    let total: i64 = total.get_result(conn).await?;
    Ok((rows.into_iter().map(row).collect(), total))
}

/// Every booking a timer should watch.
pub async fn live_ids(conn: &mut AsyncPgConnection) -> Result<Vec<i64>, StoreError> {
    Ok(bookings::table
        .filter(bookings::status.eq_any(LIVE))
        .order(bookings::id)
        .select(bookings::id)
        .load(conn)
        .await?)
}

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// Sessions that belong to a booking: linked by `booking_id`, or the booking's driver on its
/// connector since its slot started (a start that did not name the booking).
const SESSION_OF_BOOKING: &str = "(s.booking_id = b.id OR (s.user_id = b.user_id AND s.connector_id = b.connector_id \
     AND s.requested_at >= b.start_at AND s.requested_at < b.end_at))";

/// Live bookings whose state is due to change now: the slot started, the grace period or the
/// slot ended, a session started or ended, or a hold that should exist does not. The sweep
/// wakes their timers.
pub async fn due_ids(conn: &mut AsyncPgConnection, now: DateTime<Utc>) -> Result<Vec<i64>, StoreError> {
    let sql = format!(
        "SELECT b.id FROM bookings b WHERE \
            (b.status = 'confirmed' AND b.start_at <= $1) \
         OR (b.status = 'grace' AND b.grace_ends_at <= $1) \
         OR (b.status IN ('checked_in', 'charging') AND b.end_at <= $1) \
         OR (b.status IN ('grace', 'checked_in') AND NOT EXISTS (SELECT 1 FROM reservations r WHERE r.booking_id = b.id)) \
         OR (b.status IN ('grace', 'checked_in') AND EXISTS (SELECT 1 FROM charging_sessions s \
                WHERE s.status IN ('pending', 'active') AND {SESSION_OF_BOOKING})) \
         OR (b.status = 'charging' AND NOT EXISTS (SELECT 1 FROM charging_sessions s \
                WHERE s.status IN ('pending', 'active') AND {SESSION_OF_BOOKING})) \
         ORDER BY b.id"
    );
    let rows: Vec<IdRow> = diesel::sql_query(sql).bind::<Timestamptz, _>(now).prepared().load(conn).await?;
    Ok(rows.into_iter().map(|r| r.id).collect())
}

/// Whether a session of this booking is under way (pending or active).
pub async fn session_under_way(conn: &mut AsyncPgConnection, booking: &Booking) -> Result<bool, StoreError> {
    let open: i64 = charging_sessions::table
        .filter(charging_sessions::status.eq_any(["pending", "active"]))
        .filter(
            charging_sessions::booking_id.eq(booking.id).or(charging_sessions::user_id
                .eq(booking.user_id)
                .and(charging_sessions::connector_id.eq(booking.connector_id))
                .and(charging_sessions::requested_at.ge(booking.start_at))
                .and(charging_sessions::requested_at.lt(booking.end_at))),
        )
        .count()
        .get_result(conn)
        .await?;
    Ok(open > 0)
}

/// Starts the slot: `confirmed` → `grace`, the grace period ending at `grace_ends_at`.
/// `None` if the booking was not waiting for its slot (someone got there first).
pub async fn start_slot(
    conn: &mut AsyncPgConnection,
    booking_id: i64,
    grace_ends_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Option<Booking>, StoreError> {
    Ok(diesel::update(bookings::table.find(booking_id).filter(bookings::status.eq("confirmed")))
        .set((
            bookings::status.eq("grace"),
            bookings::slot_started_at.eq(now),
            bookings::grace_ends_at.eq(grace_ends_at),
            bookings::updated_at.eq(now),
        ))
        .returning(Booking::as_returning())
        .get_result(conn)
        .await
        .optional()?)
}

/// Expires a booking whose grace period is over without a check-in (`no_show`; the fee is
/// kept). `None` if the driver checked in or cancelled first.
pub async fn expire_no_show(
    conn: &mut AsyncPgConnection,
    booking_id: i64,
    now: DateTime<Utc>,
) -> Result<Option<Booking>, StoreError> {
    Ok(diesel::update(
        bookings::table.find(booking_id).filter(bookings::status.eq("grace")).filter(bookings::grace_ends_at.le(now)),
    )
    .set((
        bookings::status.eq("expired"),
        bookings::expired_at.eq(now),
        bookings::expired_reason.eq(NO_SHOW),
        bookings::updated_at.eq(now),
    ))
    .returning(Booking::as_returning())
    .get_result(conn)
    .await
    .optional()?)
}

/// Completes a booking whose slot ended or whose session settled. `None` if it was not
/// checked in or charging.
pub async fn complete(
    conn: &mut AsyncPgConnection,
    booking_id: i64,
    now: DateTime<Utc>,
) -> Result<Option<Booking>, StoreError> {
    Ok(diesel::update(bookings::table.find(booking_id).filter(bookings::status.eq_any(["checked_in", "charging"])))
        .set((bookings::status.eq("completed"), bookings::updated_at.eq(now)))
        .returning(Booking::as_returning())
        .get_result(conn)
        .await
        .optional()?)
}

/// Marks the driver's booking on this connector (row ID) `charging`: their session started on
/// the connector their booking holds. Call it when the session starts; answers the booking,
/// if the driver had one in its grace period or checked in.
pub async fn mark_charging(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    connector_id: i64,
) -> Result<Option<i64>, StoreError> {
    Ok(diesel::update(
        bookings::table
            .filter(bookings::user_id.eq(user_id))
            .filter(bookings::connector_id.eq(connector_id))
            .filter(bookings::status.eq_any(["grace", "checked_in"])),
    )
    .set((bookings::status.eq("charging"), bookings::updated_at.eq(diesel::dsl::now)))
    .returning(bookings::id)
    .get_result(conn)
    .await
    .optional()?)
}

/// What a check-in did.
#[derive(Debug, Clone)]
pub enum CheckIn {
    /// Checked in now.
    CheckedIn(Booking),
    /// Already checked in (or charging): nothing changed.
    Already(Booking),
    /// The slot has not started yet.
    NotStarted(Booking),
    /// Too late, or the booking is over: its status (`expired` when the grace period is over).
    Closed(String),
    /// No such booking of this driver.
    Missing,
}

/// Checks the driver in: allowed from slot start until the grace period ends. A slot whose
/// start the timer has not processed yet is started here too (same grace end).
pub async fn check_in(
    conn: &mut AsyncPgConnection,
    booking_id: i64,
    user_id: i64,
    method: &'static str,
    grace_period: Duration,
    now: DateTime<Utc>,
) -> Result<CheckIn, StoreError> {
    Ok(conn
        .transaction::<_, DieselError, _>(async move |conn| {
            let booking: Option<Booking> = bookings::table
                .find(booking_id)
                .filter(bookings::user_id.eq(user_id))
                .select(Booking::as_select())
                .for_update()
                .first(conn)
                .await
                .optional()?;
            let Some(booking) = booking else { return Ok(CheckIn::Missing) };
            match booking.status.as_str() {
                "checked_in" | "charging" => return Ok(CheckIn::Already(booking)),
                "confirmed" | "grace" => {}
                other => return Ok(CheckIn::Closed(other.to_owned())),
            }
            if now < booking.start_at {
                return Ok(CheckIn::NotStarted(booking));
            }
            let grace_ends_at = booking.grace_ends_at.unwrap_or(booking.start_at + grace_period);
            if now >= grace_ends_at {
                return Ok(CheckIn::Closed("expired".to_owned()));
            }
            let booking = diesel::update(bookings::table.find(booking_id))
                .set((
                    bookings::status.eq("checked_in"),
                    bookings::checked_in_at.eq(now),
                    bookings::checkin_method.eq(method),
                    bookings::slot_started_at.eq(booking.slot_started_at.unwrap_or(now)),
                    bookings::grace_ends_at.eq(grace_ends_at),
                    bookings::updated_at.eq(now),
                ))
                .returning(Booking::as_returning())
                .get_result(conn)
                .await?;
            Ok(CheckIn::CheckedIn(booking))
        })
        .await?)
}

/// What a cancellation did.
#[derive(Debug, Clone)]
pub enum Cancel {
    /// Cancelled; `refund` was credited (zero after the cutoff).
    Cancelled {
        /// What was refunded.
        refund: Decimal,
    },
    /// The booking cannot be cancelled in this status.
    NotCancellable(String),
    /// No such booking of this driver.
    Missing,
}

/// Cancels the driver's booking before it is used: the fee is refunded in full (ledger kind
/// `refund`) when cancelled at least `refund_cutoff` before the slot starts, otherwise not at
/// all. A slot in its grace period can be cancelled too (no refund), freeing the connector.
pub async fn cancel(
    conn: &mut AsyncPgConnection,
    booking_id: i64,
    user_id: i64,
    refund_cutoff: Duration,
    now: DateTime<Utc>,
) -> Result<Cancel, StoreError> {
    conn.transaction::<_, StoreError, _>(async move |conn| {
        let booking: Option<Booking> = bookings::table
            .find(booking_id)
            .filter(bookings::user_id.eq(user_id))
            .select(Booking::as_select())
            .for_update()
            .first(conn)
            .await
            .optional()?;
        let Some(booking) = booking else { return Ok(Cancel::Missing) };
        if !matches!(booking.status.as_str(), "confirmed" | "grace") {
            return Ok(Cancel::NotCancellable(booking.status));
        }
        let refund = if booking.status == "confirmed" && now <= booking.start_at - refund_cutoff {
            booking.fee
        } else {
            Decimal::ZERO
        };
        diesel::update(bookings::table.find(booking_id))
            .set((
                bookings::status.eq("cancelled"),
                bookings::cancelled_at.eq(now),
                bookings::refund_amount.eq(refund),
                bookings::updated_at.eq(now),
            ))
            .execute(conn)
            .await?;
        if refund > Decimal::ZERO {
            let entry = ledger::Entry {
                user_id,
                amount: refund,
                kind: "refund",
                description: "Slot booking refund",
                reference_kind: "booking",
                reference_id: booking_id,
            };
            ledger::apply(conn, &entry).await?;
            revenue::record_booking(conn, booking_id, BookingRevenue::Refund, refund, now).await?;
        }
        Ok(Cancel::Cancelled { refund })
    })
    .await
}

/// The latest hold (reservation) made for a booking, whatever its status.
pub async fn hold_of(conn: &mut AsyncPgConnection, booking_id: i64) -> Result<Option<Reservation>, StoreError> {
    Ok(reservations::table
        .filter(reservations::booking_id.eq(booking_id))
        .order(reservations::id.desc())
        .select(Reservation::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// The latest hold's status for each of these bookings.
pub async fn hold_statuses(
    conn: &mut AsyncPgConnection,
    booking_ids: &[i64],
) -> Result<std::collections::HashMap<i64, String>, StoreError> {
    let rows: Vec<(i32, Option<i64>, String)> = reservations::table
        .filter(reservations::booking_id.eq_any(booking_ids))
        .order(reservations::id)
        .select((reservations::id, reservations::booking_id, reservations::status))
        .load(conn)
        .await?;
    Ok(rows.into_iter().filter_map(|(_, booking, status)| Some((booking?, status))).collect())
}

/// Keeps a booking's hold in Kilowatt until `until` (a checked-in driver keeps the connector
/// to the end of the slot). Only a hold that still holds is extended.
pub async fn extend_hold(
    conn: &mut AsyncPgConnection,
    reservation_id: i32,
    until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    diesel::update(
        reservations::table
            .find(reservation_id)
            .filter(reservations::status.eq_any(HOLDING))
            .filter(reservations::expires_at.lt(until)),
    )
    .set((reservations::expires_at.eq(until), reservations::updated_at.eq(now)))
    .execute(conn)
    .await?;
    Ok(())
}

/// Ends a hold that still holds, as `status` (cancelled or expired); answers whether it did
/// and the status it had (`accepted` means the charger holds it too).
pub async fn release_hold(
    conn: &mut AsyncPgConnection,
    reservation_id: i32,
    status: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let released =
        diesel::update(reservations::table.find(reservation_id).filter(reservations::status.eq_any(HOLDING)))
            .set((reservations::status.eq(status), reservations::updated_at.eq(now)))
            .execute(conn)
            .await?;
    Ok(released > 0)
}

/// Which bookings an owner's dashboard covers.
#[derive(Debug, Clone)]
pub struct MonitoringScope {
    /// Only stations of this owner (`None`: every station, for admins).
    pub owner_id: Option<i64>,
    /// Only this station.
    pub station_id: Option<i64>,
    /// Slots starting at or after this.
    pub from: DateTime<Utc>,
    /// Slots starting before this.
    pub to: DateTime<Utc>,
}

/// Figures over the bookings in a scope.
#[derive(Debug, Clone, Default, QueryableByName)]
pub struct MonitoringCounts {
    /// All bookings.
    #[diesel(sql_type = BigInt)]
    pub total: i64,
    /// confirmed.
    #[diesel(sql_type = BigInt)]
    pub confirmed: i64,
    /// grace.
    #[diesel(sql_type = BigInt)]
    pub grace: i64,
    /// checked_in.
    #[diesel(sql_type = BigInt)]
    pub checked_in: i64,
    /// charging.
    #[diesel(sql_type = BigInt)]
    pub charging: i64,
    /// completed.
    #[diesel(sql_type = BigInt)]
    pub completed: i64,
    /// expired (any reason).
    #[diesel(sql_type = BigInt)]
    pub expired: i64,
    /// cancelled.
    #[diesel(sql_type = BigInt)]
    pub cancelled: i64,
    /// expired as no-shows.
    #[diesel(sql_type = BigInt)]
    pub no_shows: i64,
    /// Checked in during the grace period (by app or QR).
    #[diesel(sql_type = BigInt)]
    pub checked_in_during_grace: i64,
    /// Fees of no-show bookings (kept).
    #[diesel(sql_type = Numeric)]
    pub no_show_fees: Decimal,
    /// Minutes connectors were held for no-show drivers (their grace periods).
    #[diesel(sql_type = Nullable<BigInt>)]
    pub no_show_held_minutes: Option<i64>,
    /// Fees of every booking not refunded.
    #[diesel(sql_type = Numeric)]
    pub fees_collected: Decimal,
}

const SCOPE_FILTER: &str = "FROM bookings b JOIN chargers c ON c.id = b.charger_id JOIN stations st ON st.id = c.station_id \
     WHERE ($1::bigint IS NULL OR st.owner_id = $1) AND ($2::bigint IS NULL OR st.id = $2) \
     AND b.start_at >= $3 AND b.start_at < $4";

/// Counts by status and the no-show figures over a scope.
pub async fn monitoring_counts(
    conn: &mut AsyncPgConnection,
    scope: &MonitoringScope,
) -> Result<MonitoringCounts, StoreError> {
    let sql = format!(
        "SELECT count(*) AS total, \
            count(*) FILTER (WHERE b.status = 'confirmed') AS confirmed, \
            count(*) FILTER (WHERE b.status = 'grace') AS grace, \
            count(*) FILTER (WHERE b.status = 'checked_in') AS checked_in, \
            count(*) FILTER (WHERE b.status = 'charging') AS charging, \
            count(*) FILTER (WHERE b.status = 'completed') AS completed, \
            count(*) FILTER (WHERE b.status = 'expired') AS expired, \
            count(*) FILTER (WHERE b.status = 'cancelled') AS cancelled, \
            count(*) FILTER (WHERE b.status = 'expired' AND b.expired_reason = '{NO_SHOW}') AS no_shows, \
            count(*) FILTER (WHERE b.checked_in_at IS NOT NULL AND b.checked_in_at < b.grace_ends_at) \
                AS checked_in_during_grace, \
            coalesce(sum(b.fee) FILTER (WHERE b.status = 'expired' AND b.expired_reason = '{NO_SHOW}'), 0) \
                AS no_show_fees, \
            (sum(extract(epoch FROM b.grace_ends_at - b.start_at)) \
                FILTER (WHERE b.status = 'expired' AND b.expired_reason = '{NO_SHOW}') / 60)::bigint \
                AS no_show_held_minutes, \
            coalesce(sum(b.fee - coalesce(b.refund_amount, 0)), 0) AS fees_collected \
         {SCOPE_FILTER}"
    );
    Ok(diesel::sql_query(sql)
        .bind::<Nullable<BigInt>, _>(scope.owner_id)
        .bind::<Nullable<BigInt>, _>(scope.station_id)
        .bind::<Timestamptz, _>(scope.from)
        .bind::<Timestamptz, _>(scope.to)
        .prepared()
        .get_result(conn)
        .await?)
}

/// The bookings in a scope, soonest slot first (at most `limit`): all `statuses` given.
pub async fn monitoring_rows(
    conn: &mut AsyncPgConnection,
    scope: &MonitoringScope,
    statuses: &[&str],
    limit: i64,
) -> Result<Vec<BookingRow>, StoreError> {
    let mut query = rows_query!()
        .filter(bookings::start_at.ge(scope.from))
        .filter(bookings::start_at.lt(scope.to))
        .filter(bookings::status.eq_any(statuses.iter().map(|s| s.to_string()).collect::<Vec<_>>()))
        .filter(chargers::station_id.is_not_null())
        .into_boxed();
    if let Some(owner_id) = scope.owner_id {
        query = query.filter(stations::owner_id.eq(owner_id));
    }
    if let Some(station_id) = scope.station_id {
        query = query.filter(stations::id.eq(station_id));
    }
    let rows: Vec<RowTuple> =
        query.order((bookings::start_at.asc(), bookings::id.asc())).limit(limit).load(conn).await?;
    Ok(rows.into_iter().map(row).collect())
}

/// Whether a live booking on the connector begins before `until` (a queue turn must not take
/// a connector that a booked slot is about to need).
pub async fn starts_before(
    conn: &mut AsyncPgConnection,
    charger_id: i64,
    connector_number: i32,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<bool, StoreError> {
    use super::schema::connectors;
    Ok(diesel::select(diesel::dsl::exists(
        bookings::table
            .inner_join(connectors::table)
            .filter(bookings::charger_id.eq(charger_id))
            .filter(connectors::connector_number.eq(connector_number))
            .filter(bookings::status.eq_any(["confirmed", "grace", "checked_in", "charging"]))
            .filter(bookings::start_at.lt(until))
            .filter(bookings::end_at.gt(now)),
    ))
    .get_result(conn)
    .await?)
}
