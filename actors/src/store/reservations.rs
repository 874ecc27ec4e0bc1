//! Queries on `reservations`: a connector held for one driver, by a booking in its grace period
//! or a queue turn. The row exists whether or not the charger supports OCPP Reservation
//! (`unsupported` then): Kilowatt itself refuses anyone else's start on a held connector.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::StoreError;
use super::schema::reservations;

/// A live hold.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = reservations, check_for_backend(diesel::pg::Pg))]
pub struct Reservation {
    /// Also the OCPP reservationId.
    pub id: i32,
    /// The charger's row.
    pub charger_id: i64,
    /// The connector held.
    pub connector_number: i32,
    /// The idTag it is held for.
    pub id_tag: String,
    /// The driver it is held for.
    pub user_id: Option<i64>,
    /// The booking that holds it.
    pub booking_id: Option<i64>,
    /// The queue turn that holds it.
    pub queue_entry_id: Option<i64>,
    /// When the hold lapses.
    pub expires_at: DateTime<Utc>,
    /// requested, accepted, rejected, unsupported, used, cancelled or expired.
    pub status: String,
}

/// Who a new hold is for.
#[derive(Debug, Clone)]
pub struct NewHold<'a> {
    /// The charger's row.
    pub charger_id: i64,
    /// The connector.
    pub connector_number: i32,
    /// The driver's idTag.
    pub id_tag: &'a str,
    /// The driver.
    pub user_id: i64,
    /// For a booking.
    pub booking_id: Option<i64>,
    /// For a queue turn.
    pub queue_entry_id: Option<i64>,
    /// Until when.
    pub expires_at: DateTime<Utc>,
}

/// Statuses in which a reservation holds its connector.
pub const HOLDING: [&str; 3] = ["requested", "accepted", "unsupported"];

/// Records a hold (status `requested` until the charger answers ReserveNow).
pub async fn create(
    conn: &mut AsyncPgConnection,
    hold: &NewHold<'_>,
    now: DateTime<Utc>,
) -> Result<Reservation, StoreError> {
    Ok(diesel::insert_into(reservations::table)
        .values((
            reservations::charger_id.eq(hold.charger_id),
            reservations::connector_number.eq(hold.connector_number),
            reservations::id_tag.eq(hold.id_tag),
            reservations::user_id.eq(hold.user_id),
            reservations::booking_id.eq(hold.booking_id),
            reservations::queue_entry_id.eq(hold.queue_entry_id),
            reservations::expires_at.eq(hold.expires_at),
            reservations::created_at.eq(now),
            reservations::updated_at.eq(now),
        ))
        .returning(Reservation::as_returning())
        .get_result(conn)
        .await?)
}

/// Moves a reservation to `status` (accepted, rejected, unsupported, used, cancelled, expired).
pub async fn set_status(
    conn: &mut AsyncPgConnection,
    reservation_id: i32,
    status: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    diesel::update(reservations::table.find(reservation_id))
        .set((reservations::status.eq(status), reservations::updated_at.eq(now)))
        .execute(conn)
        .await?;
    Ok(())
}

/// Records the charger's answer to a ReserveNow, but only while the hold is still `requested`:
/// a hold released meanwhile (the driver left, it lapsed) stays released. Answers whether it
/// was recorded.
pub async fn settle_requested(
    conn: &mut AsyncPgConnection,
    reservation_id: i32,
    status: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let updated = diesel::update(reservations::table.find(reservation_id).filter(reservations::status.eq("requested")))
        .set((reservations::status.eq(status), reservations::updated_at.eq(now)))
        .execute(conn)
        .await?;
    Ok(updated == 1)
}

/// The hold on a connector right now, if any.
pub async fn holding(
    conn: &mut AsyncPgConnection,
    charger_id: i64,
    connector_number: i32,
    now: DateTime<Utc>,
) -> Result<Option<Reservation>, StoreError> {
    Ok(reservations::table
        .filter(reservations::charger_id.eq(charger_id))
        .filter(reservations::connector_number.eq(connector_number))
        .filter(reservations::status.eq_any(HOLDING))
        .filter(reservations::expires_at.gt(now))
        .order(reservations::id.desc())
        .select(Reservation::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// Marks the driver's hold on this connector used (their session started); answers it.
pub async fn consume(
    conn: &mut AsyncPgConnection,
    charger_id: i64,
    connector_number: i32,
    user_id: i64,
    now: DateTime<Utc>,
) -> Result<Option<Reservation>, StoreError> {
    Ok(diesel::update(
        reservations::table
            .filter(reservations::charger_id.eq(charger_id))
            .filter(reservations::connector_number.eq(connector_number))
            .filter(reservations::user_id.eq(user_id))
            .filter(reservations::status.eq_any(HOLDING)),
    )
    .set((reservations::status.eq("used"), reservations::updated_at.eq(now)))
    .returning(Reservation::as_returning())
    .get_result(conn)
    .await
    .optional()?)
}

/// The live hold a queue entry has, if any.
pub async fn for_queue_entry(
    conn: &mut AsyncPgConnection,
    queue_entry_id: i64,
) -> Result<Option<Reservation>, StoreError> {
    Ok(reservations::table
        .filter(reservations::queue_entry_id.eq(queue_entry_id))
        .filter(reservations::status.eq_any(HOLDING))
        .select(Reservation::as_select())
        .first(conn)
        .await
        .optional()?)
}
