//! Queries on `rfid_cards`: cards a driver registered, which then authorize at chargers as
//! that driver. A card's idTag is unique across cards and never shadows a driver's own idTag.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::StoreError;
use super::schema::{rfid_cards, users};
use super::sql::upper;

/// A registered card.
#[derive(Debug, Clone, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = rfid_cards, check_for_backend(diesel::pg::Pg))]
#[serde(rename_all = "camelCase")]
pub struct Card {
    /// Card ID.
    pub id: i64,
    /// The idTag the card presents.
    pub id_tag: String,
    /// The driver's name for it.
    pub label: Option<String>,
    /// Blocked cards are refused at chargers.
    pub blocked: bool,
    /// Refused as Expired after this.
    pub expires_at: Option<DateTime<Utc>>,
    /// Registered.
    pub created_at: DateTime<Utc>,
}

/// Why a card could not be added.
#[derive(Debug, thiserror::Error)]
pub enum AddCardError {
    /// Another card or a driver already uses this idTag.
    #[error("this idTag is already in use")]
    Taken,
    /// Anything else.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Registers a card for `user_id`.
pub async fn add(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    id_tag: &str,
    label: Option<&str>,
    expires_at: Option<DateTime<Utc>>,
) -> Result<Card, AddCardError> {
    let shadows_driver: bool =
        diesel::select(diesel::dsl::exists(users::table.filter(upper(users::id_tag).eq(upper(id_tag)))))
            .get_result(conn)
            .await
            .map_err(StoreError::from)?;
    if shadows_driver {
        return Err(AddCardError::Taken);
    }
    diesel::insert_into(rfid_cards::table)
        .values((
            rfid_cards::user_id.eq(user_id),
            rfid_cards::id_tag.eq(id_tag),
            rfid_cards::label.eq(label),
            rfid_cards::expires_at.eq(expires_at),
        ))
        .returning(Card::as_returning())
        .get_result(conn)
        .await
        .map_err(|error| match error {
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => AddCardError::Taken,
            other => AddCardError::Store(other.into()),
        })
}

/// A driver's cards, oldest first.
pub async fn list(conn: &mut AsyncPgConnection, user_id: i64) -> Result<Vec<Card>, StoreError> {
    Ok(rfid_cards::table
        .filter(rfid_cards::user_id.eq(user_id))
        .order(rfid_cards::id)
        .select(Card::as_select())
        .load(conn)
        .await?)
}

/// Removes one of the driver's cards; `false` when they have no such card.
pub async fn remove(conn: &mut AsyncPgConnection, user_id: i64, card_id: i64) -> Result<bool, StoreError> {
    let deleted =
        diesel::delete(rfid_cards::table.filter(rfid_cards::id.eq(card_id)).filter(rfid_cards::user_id.eq(user_id)))
            .execute(conn)
            .await?;
    Ok(deleted > 0)
}
