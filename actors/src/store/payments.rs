//! Queries on `payments`: wallet recharges through a payment provider. A payment is created
//! `pending` and moves exactly once to `succeeded`, `failed` or `expired`; [`complete`] makes
//! that move and credits the wallet in one transaction, with the payment row locked, so a
//! replayed callback, a callback racing a status check or a double-submitted form credits once.

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use rand::Rng;
use rust_decimal::Decimal;

use super::StoreError;
use super::schema::payments;
use super::wallets::{self, Entry};

/// Where a payment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentState {
    /// Waiting for the provider's verdict.
    Pending,
    /// Paid; the wallet was credited.
    Succeeded,
    /// Declined or abandoned; nothing was credited.
    Failed,
    /// Still pending long after it began; given up on, nothing credited.
    Expired,
}

impl PaymentState {
    /// The name stored in `payments.state` and shown by the API.
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentState::Pending => "pending",
            PaymentState::Succeeded => "succeeded",
            PaymentState::Failed => "failed",
            PaymentState::Expired => "expired",
        }
    }

    /// The state a stored name stands for.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "pending" => Some(PaymentState::Pending),
            "succeeded" => Some(PaymentState::Succeeded),
            "failed" => Some(PaymentState::Failed),
            "expired" => Some(PaymentState::Expired),
            _ => None,
        }
    }
}

/// A payment as stored.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = payments, check_for_backend(diesel::pg::Pg))]
pub struct Payment {
    /// Payment ID.
    pub id: i64,
    /// The payer.
    pub user_id: i64,
    /// Our reference at the provider: unique, at most 38 characters of `[A-Za-z0-9]`.
    pub merchant_transaction_id: String,
    /// `sandbox` or `phonepe`.
    pub provider: String,
    /// INR, two decimals.
    pub amount: Decimal,
    /// `pending`, `succeeded`, `failed` or `expired`.
    pub state: String,
    /// The provider's transaction ID, once known.
    pub provider_reference: Option<String>,
    /// Why it failed or expired.
    pub failure_reason: Option<String>,
    /// How many times the provider's status API was asked.
    pub check_attempts: i32,
    /// When the status API was last asked.
    pub last_checked_at: Option<DateTime<Utc>>,
    /// When it left `pending`.
    pub completed_at: Option<DateTime<Utc>>,
    /// When it began.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl Payment {
    /// The state as an enum (`Pending` for anything unknown, which the CHECK constraint forbids).
    pub fn payment_state(&self) -> PaymentState {
        PaymentState::parse(&self.state).unwrap_or(PaymentState::Pending)
    }

    /// The amount in paise, as payment providers count it.
    pub fn amount_paise(&self) -> Option<i64> {
        use rust_decimal::prelude::ToPrimitive;
        let paise = self.amount * Decimal::from(100);
        if paise.fract().is_zero() { paise.to_i64() } else { None }
    }
}

/// Characters of the random part of a merchant transaction ID.
const SUFFIX_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";

/// Creates a pending payment of `amount` INR by `user_id` through `provider`. Its merchant
/// transaction ID is `KW`, the payment ID, `T` and 12 random characters: unique, unguessable,
/// at most 34 characters, and traceable to the row by support staff.
pub async fn create(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    provider: &str,
    amount: Decimal,
    now: DateTime<Utc>,
) -> Result<Payment, StoreError> {
    let id: i64 = diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>("nextval('payments_id_seq')"))
        .get_result(conn)
        .await?;
    let suffix: String = {
        let mut rng = rand::rng();
        (0..12).map(|_| char::from(SUFFIX_ALPHABET[rng.random_range(0..SUFFIX_ALPHABET.len())])).collect()
    };
    let merchant_transaction_id = format!("KW{id}T{suffix}");
    Ok(diesel::insert_into(payments::table)
        .values((
            payments::id.eq(id),
            payments::user_id.eq(user_id),
            payments::merchant_transaction_id.eq(&merchant_transaction_id),
            payments::provider.eq(provider),
            payments::amount.eq(amount),
            payments::created_at.eq(now),
            payments::updated_at.eq(now),
        ))
        .returning(Payment::as_returning())
        .get_result(conn)
        .await?)
}

/// A payment by ID.
pub async fn find(conn: &mut AsyncPgConnection, payment_id: i64) -> Result<Option<Payment>, StoreError> {
    Ok(payments::table.find(payment_id).select(Payment::as_select()).first(conn).await.optional()?)
}

/// A payment by ID, only if `user_id` made it.
pub async fn find_for_user(
    conn: &mut AsyncPgConnection,
    payment_id: i64,
    user_id: i64,
) -> Result<Option<Payment>, StoreError> {
    Ok(payments::table
        .find(payment_id)
        .filter(payments::user_id.eq(user_id))
        .select(Payment::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// A payment by its merchant transaction ID.
pub async fn find_by_merchant_transaction_id(
    conn: &mut AsyncPgConnection,
    merchant_transaction_id: &str,
) -> Result<Option<Payment>, StoreError> {
    Ok(payments::table
        .filter(payments::merchant_transaction_id.eq(merchant_transaction_id))
        .select(Payment::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// Pending payments due for attention at `now`, oldest first: payments through
/// `checked_provider` begun more than a minute ago and not checked in the last minute (the last
/// ten minutes once checked ten times), and payments of any provider begun before
/// `expire_before`.
pub async fn due_for_check(
    conn: &mut AsyncPgConnection,
    now: DateTime<Utc>,
    expire_before: DateTime<Utc>,
    checked_provider: &str,
    limit: i64,
) -> Result<Vec<Payment>, StoreError> {
    let minute_ago = now - Duration::minutes(1);
    let ten_minutes_ago = now - Duration::minutes(10);
    let check_due = payments::last_checked_at
        .is_null()
        .or(payments::last_checked_at.le(minute_ago).and(payments::check_attempts.lt(10)))
        .or(payments::last_checked_at.le(ten_minutes_ago));
    Ok(payments::table
        .filter(payments::state.eq(PaymentState::Pending.as_str()))
        .filter(
            payments::provider
                .eq(checked_provider)
                .and(payments::created_at.le(minute_ago))
                .and(check_due)
                .or(payments::created_at.le(expire_before)),
        )
        .order(payments::created_at)
        .limit(limit)
        .select(Payment::as_select())
        .load(conn)
        .await?)
}

/// Records that the provider's status API was asked about a payment at `now`.
pub async fn record_check(conn: &mut AsyncPgConnection, payment_id: i64, now: DateTime<Utc>) -> Result<(), StoreError> {
    diesel::update(payments::table.find(payment_id))
        .set((
            payments::check_attempts.eq(payments::check_attempts + 1),
            payments::last_checked_at.eq(now),
            payments::updated_at.eq(now),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// The provider's verdict on a payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Paid: credit the wallet.
    Succeeded,
    /// Declined, with the provider's reason.
    Failed(String),
    /// Pending for too long: give up, with a reason.
    Expired(String),
}

/// What [`complete`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completion {
    /// The payment succeeded now and the wallet was credited.
    Credited {
        /// The wallet's balance after the credit.
        balance_after: Decimal,
    },
    /// The payment failed now; nothing was credited.
    Failed,
    /// The payment expired now; nothing was credited.
    Expired,
    /// The payment had already left `pending`; nothing changed.
    AlreadyFinal(PaymentState),
}

/// Moves a pending payment to the outcome's state, exactly once: in one transaction, locks
/// the payment row, and only if it is still `pending` updates it and (on success) credits the
/// payer's wallet with a "Recharge" entry referencing the payment. Any later call, concurrent
/// or not, answers `AlreadyFinal` and changes nothing.
pub async fn complete(
    conn: &mut AsyncPgConnection,
    payment_id: i64,
    outcome: &Outcome,
    provider_reference: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Completion, StoreError> {
    let outcome = outcome.clone();
    let provider_reference = provider_reference.map(str::to_owned);
    conn.transaction::<_, StoreError, _>(async move |conn| {
        let (user_id, amount, state): (i64, Decimal, String) = payments::table
            .find(payment_id)
            .for_update()
            .select((payments::user_id, payments::amount, payments::state))
            .first(conn)
            .await?;
        let state = PaymentState::parse(&state).unwrap_or(PaymentState::Pending);
        if state != PaymentState::Pending {
            return Ok(Completion::AlreadyFinal(state));
        }
        let (new_state, reason) = match &outcome {
            Outcome::Succeeded => (PaymentState::Succeeded, None),
            Outcome::Failed(reason) => (PaymentState::Failed, Some(reason.as_str())),
            Outcome::Expired(reason) => (PaymentState::Expired, Some(reason.as_str())),
        };
        diesel::update(payments::table.find(payment_id))
            .set((
                payments::state.eq(new_state.as_str()),
                payments::provider_reference.eq(provider_reference.as_deref()),
                payments::failure_reason.eq(reason),
                payments::completed_at.eq(now),
                payments::updated_at.eq(now),
            ))
            .execute(conn)
            .await?;
        Ok(match new_state {
            PaymentState::Succeeded => {
                let entry = Entry {
                    user_id,
                    amount,
                    kind: "recharge",
                    description: "Recharge",
                    reference_kind: "payment",
                    reference_id: payment_id,
                };
                Completion::Credited { balance_after: wallets::apply(conn, &entry).await? }
            }
            PaymentState::Expired => Completion::Expired,
            _ => Completion::Failed,
        })
    })
    .await
}
