//! Authorize, StartTransaction and StopTransaction, group-committed: many chargers' transaction
//! messages run one after another in one database transaction on a writer connection, and each
//! charger is answered once that transaction has committed.
//!
//! Before, each of these messages checked a connection out of the shared pool for a transaction
//! of its own. When a whole fleet starts charging at once (19,000 chargers after a power cut,
//! or the benchmark's meter scenario) the checkouts queued past their timeout and the chargers
//! were answered InternalError, so sessions were refused for want of a connection slot. Here
//! they wait in the writer's queue instead, a batch costs one commit (one WAL flush) however
//! many starts it holds, and the API keeps its pool.
//!
//! A batch that fails is retried one message at a time by [`GroupCommit`], so one bad message
//! cannot fail the others; every step here is safe to roll back and run again.

use chrono::{DateTime, Utc};
use diesel_async::AsyncConnection;
use rust_decimal::Decimal;

use crate::meter_writer::{BatchFuture, GroupCommit};
use crate::store::live_sessions::{self, Reconciliation};
use crate::store::sessions::{self, IdTagDecision, Settlement, StartInput, StartOutcome, StopInput, StopOutcome};
use crate::store::{AsyncPgConnection, DbPool, StoreError, wallets};

/// One transaction message from a charger.
#[derive(Debug, Clone)]
pub enum TransactionMessage {
    /// Authorize: may this idTag charge here now?
    Authorize {
        /// The idTag presented.
        id_tag: String,
    },
    /// StartTransaction.
    Start(StartInput),
    /// StopTransaction (its transaction data already stored by the meter writer).
    Stop {
        /// The stop.
        input: StopInput,
        /// The idTag that stopped it, if the charger gave one.
        id_tag: Option<String>,
    },
}

/// A message, when it was received, and the wallet minimum below which a driver is refused.
#[derive(Debug, Clone)]
pub struct TransactionWrite {
    /// The message.
    pub message: TransactionMessage,
    /// When the central system received it.
    pub received_at: DateTime<Utc>,
    /// A driver whose wallet holds less than this is answered Blocked.
    pub min_start_balance: Decimal,
}

/// What a committed transaction message did.
#[derive(Debug, Clone)]
pub enum TransactionDone {
    /// The idTag's authorization.
    Authorized(IdTagDecision),
    /// The transaction started (or a retransmission was recognised).
    Started(StartOutcome),
    /// The transaction stopped.
    Stopped {
        /// Which session, and whether this stop settled it.
        outcome: StopOutcome,
        /// For a session settled before the stop arrived: whether the final reading added energy.
        reconciled: Option<Reconciliation>,
        /// The stopping idTag's authorization, when one was given.
        id_tag: Option<IdTagDecision>,
    },
}

/// The group-commit writer for transaction messages.
pub type TransactionWriter = GroupCommit<TransactionWrite, TransactionDone>;

/// Batches in flight at once. A start is about ten statements, each a round trip, run one
/// after another in its batch: several smaller batches side by side keep PostgreSQL busy where
/// two long ones would leave it waiting on round trips.
pub const TRANSACTION_WRITERS: usize = 8;

/// Most messages in one batch (one commit for all of them, however many there are).
const TRANSACTION_BATCH: usize = 64;

/// Starts the writer on the current runtime.
pub fn start_transaction_writer(pool: DbPool) -> TransactionWriter {
    GroupCommit::start_with_batch("transactions", pool, TRANSACTION_WRITERS, TRANSACTION_BATCH, write_transactions)
}

fn write_transactions<'a>(
    conn: &'a mut AsyncPgConnection,
    writes: &'a [TransactionWrite],
) -> BatchFuture<'a, TransactionDone> {
    Box::pin(conn.transaction::<_, StoreError, _>(async move |conn| {
        let mut done = Vec::with_capacity(writes.len());
        for write in writes {
            done.push(apply(conn, write).await?);
        }
        Ok(done)
    }))
}

/// One message, in the batch's transaction.
async fn apply(conn: &mut AsyncPgConnection, write: &TransactionWrite) -> Result<TransactionDone, StoreError> {
    let now = write.received_at;
    Ok(match &write.message {
        TransactionMessage::Authorize { id_tag } => {
            let mut decision = sessions::authorize_id_tag(conn, id_tag, now).await?;
            if decision.status == "Accepted"
                && let Some(user_id) = decision.user_id
                && sessions::has_open_session(conn, user_id).await?
            {
                decision.status = "ConcurrentTx";
            }
            refuse_without_balance(conn, &mut decision, write.min_start_balance).await?;
            TransactionDone::Authorized(decision)
        }
        TransactionMessage::Start(input) => {
            let mut outcome = sessions::record_start(conn, input, now).await?;
            refuse_without_balance(conn, &mut outcome.decision, write.min_start_balance).await?;
            TransactionDone::Started(outcome)
        }
        TransactionMessage::Stop { input, id_tag } => {
            let outcome = sessions::stop_transaction(conn, input, now).await?;
            let reconciled = match &outcome {
                // Closed earlier (a fault, offline, the owner): the final reading may add
                // energy the last good reading did not show — at most one adjustment.
                StopOutcome::Known { session_id, settlement: Settlement::AlreadySettled } => {
                    Some(live_sessions::reconcile_late_stop(conn, *session_id, input.meter_stop, now).await?)
                }
                _ => None,
            };
            let id_tag = match id_tag {
                Some(tag) => Some(sessions::authorize_id_tag(conn, tag, now).await?),
                None => None,
            };
            TransactionDone::Stopped { outcome, reconciled, id_tag }
        }
    })
}

/// An accepted driver whose wallet holds less than the minimum to start is answered Blocked.
async fn refuse_without_balance(
    conn: &mut AsyncPgConnection,
    decision: &mut IdTagDecision,
    minimum: Decimal,
) -> Result<(), StoreError> {
    if decision.status != "Accepted" {
        return Ok(());
    }
    let Some(user_id) = decision.user_id else { return Ok(()) };
    let balance = wallets::balance(conn, user_id).await?.unwrap_or_default();
    if balance < minimum {
        tracing::info!(user_id, %balance, "idTag refused: wallet below the minimum to start");
        decision.status = "Blocked";
    }
    Ok(())
}
