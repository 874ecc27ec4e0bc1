//! Queries on `wallets` and `wallet_entries`: the only way money moves. Each entry updates the
//! running balance and appends to the ledger in the caller's transaction, so the balance always
//! equals the sum of entries; the ledger's unique (reference, kind) key makes a replay fail.
//! Reads: the balance and the ledger, newest first.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use rust_decimal::Decimal;

use super::StoreError;
use super::schema::{wallet_entries, wallets};

/// One ledger entry to apply.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    /// The wallet's owner.
    pub user_id: i64,
    /// Positive credits, negative debits.
    pub amount: Decimal,
    /// recharge, charging, booking, refund or adjustment.
    pub kind: &'a str,
    /// What the driver reads ("Recharge", "Charging session payment", …).
    pub description: &'a str,
    /// payment, session, booking or manual.
    pub reference_kind: &'a str,
    /// The referenced row.
    pub reference_id: i64,
}

/// Applies an entry inside the caller's transaction; answers the balance after it. Fails with a
/// unique violation (`wallet_entries_reference_key`) if this reference already has this kind.
pub async fn apply(conn: &mut AsyncPgConnection, entry: &Entry<'_>) -> Result<Decimal, StoreError> {
    let balance_after: Decimal = diesel::update(wallets::table.find(entry.user_id))
        .set((wallets::balance.eq(wallets::balance + entry.amount), wallets::updated_at.eq(diesel::dsl::now)))
        .returning(wallets::balance)
        .get_result(conn)
        .await?;
    diesel::insert_into(wallet_entries::table)
        .values((
            wallet_entries::user_id.eq(entry.user_id),
            wallet_entries::amount.eq(entry.amount),
            wallet_entries::kind.eq(entry.kind),
            wallet_entries::description.eq(entry.description),
            wallet_entries::reference_kind.eq(entry.reference_kind),
            wallet_entries::reference_id.eq(entry.reference_id),
            wallet_entries::balance_after.eq(balance_after),
        ))
        .execute(conn)
        .await?;
    Ok(balance_after)
}

/// The balance of `user_id`'s wallet; `None` if the user has no wallet.
pub async fn balance(conn: &mut AsyncPgConnection, user_id: i64) -> Result<Option<Decimal>, StoreError> {
    Ok(wallets::table.find(user_id).select(wallets::balance).first(conn).await.optional()?)
}

/// One ledger entry as stored.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = wallet_entries, check_for_backend(diesel::pg::Pg))]
pub struct LedgerEntry {
    /// Entry ID (increasing: a later entry has a larger ID).
    pub id: i64,
    /// Positive credits, negative debits.
    pub amount: Decimal,
    /// recharge, charging, booking, refund or adjustment.
    pub kind: String,
    /// What the driver reads.
    pub description: String,
    /// payment, session, booking or manual.
    pub reference_kind: String,
    /// The referenced row.
    pub reference_id: i64,
    /// The wallet's balance right after this entry.
    pub balance_after: Decimal,
    /// When it was written.
    pub created_at: DateTime<Utc>,
}

/// A page of `user_id`'s ledger, newest first.
pub async fn entries(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    limit: i64,
    offset: i64,
) -> Result<Vec<LedgerEntry>, StoreError> {
    Ok(wallet_entries::table
        .filter(wallet_entries::user_id.eq(user_id))
        .order(wallet_entries::id.desc())
        .limit(limit)
        .offset(offset)
        .select(LedgerEntry::as_select())
        .load(conn)
        .await?)
}

/// How many entries `user_id`'s ledger holds.
pub async fn count_entries(conn: &mut AsyncPgConnection, user_id: i64) -> Result<i64, StoreError> {
    Ok(wallet_entries::table.filter(wallet_entries::user_id.eq(user_id)).count().get_result(conn).await?)
}
