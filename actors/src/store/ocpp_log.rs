//! The OCPP message log: every frame in and out, per charge point. Writes are batched by a
//! background task (one INSERT per batch), so logging never sits on a charger's hot path;
//! old rows are pruned by retention.

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use tokio::sync::mpsc;

use super::schema::ocpp_messages;
use super::{DbPool, StoreError};

/// Frames buffered before the writer falls back to dropping (and counting) them.
const BUFFER: usize = 100_000;
/// Most rows per INSERT.
const BATCH: usize = 1_000;

/// One logged frame.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = ocpp_messages)]
pub struct LoggedFrame {
    /// The charge point.
    pub charge_point_id: String,
    /// `in` or `out`.
    pub direction: &'static str,
    /// 2, 3 or 4 when the frame parsed.
    pub message_type: Option<i16>,
    /// The message ID when readable.
    pub message_id: Option<String>,
    /// The action (CALLs, and results matched to our CALLs).
    pub action: Option<String>,
    /// The frame text.
    pub payload: String,
    /// The CALLERROR code, for errors.
    pub error_code: Option<String>,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// A handle to the log writer.
#[derive(Clone)]
pub struct OcppLog {
    sender: mpsc::Sender<LoggedFrame>,
}

impl OcppLog {
    /// Starts the writer on the current runtime.
    pub fn start(pool: DbPool) -> Self {
        let (sender, receiver) = mpsc::channel(BUFFER);
        actix_rt::spawn(write_batches(pool, receiver));
        Self { sender }
    }

    /// Queues a frame for the log.
    pub fn record(&self, frame: LoggedFrame) {
        if self.sender.try_send(frame).is_err() {
            metrics::counter!("ocpp_log_dropped_total").increment(1);
        }
    }
}

async fn write_batches(pool: DbPool, mut receiver: mpsc::Receiver<LoggedFrame>) {
    let mut batch = Vec::with_capacity(BATCH);
    while receiver.recv_many(&mut batch, BATCH).await > 0 {
        let mut attempt = 0;
        loop {
            let result = async {
                let mut conn = pool.get().await?;
                diesel::insert_into(ocpp_messages::table).values(&batch).execute(&mut conn).await?;
                Ok::<_, StoreError>(())
            }
            .await;
            match result {
                Ok(()) => break,
                Err(error) if attempt < 5 => {
                    attempt += 1;
                    tracing::warn!(%error, rows = batch.len(), attempt, "OCPP log write failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
                }
                Err(error) => {
                    tracing::error!(%error, rows = batch.len(), "OCPP log write failed; dropping batch");
                    metrics::counter!("ocpp_log_dropped_total").increment(batch.len() as u64);
                    break;
                }
            }
        }
        batch.clear();
    }
}

/// Deletes log rows older than `before`; answers how many.
pub async fn prune(conn: &mut diesel_async::AsyncPgConnection, before: DateTime<Utc>) -> Result<usize, StoreError> {
    Ok(diesel::delete(ocpp_messages::table.filter(ocpp_messages::created_at.lt(before))).execute(conn).await?)
}

/// A frame read back from the log.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = ocpp_messages, check_for_backend(diesel::pg::Pg))]
pub struct LogEntry {
    /// Row ID (increasing in the order frames were logged).
    pub id: i64,
    /// `in` (from the charger) or `out` (to it).
    pub direction: String,
    /// 2 (CALL), 3 (CALLRESULT) or 4 (CALLERROR) when the frame parsed.
    pub message_type: Option<i16>,
    /// The message ID when readable.
    pub message_id: Option<String>,
    /// The action.
    pub action: Option<String>,
    /// The frame text.
    pub payload: String,
    /// The CALLERROR code, for errors.
    pub error_code: Option<String>,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// Which logged frames to read: one charge point's, optionally one direction or action.
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    /// The charge point.
    pub charge_point_id: String,
    /// `in` or `out`.
    pub direction: Option<String>,
    /// An action, exactly.
    pub action: Option<String>,
}

impl LogFilter {
    fn query(&self) -> ocpp_messages::BoxedQuery<'static, diesel::pg::Pg> {
        let mut query =
            ocpp_messages::table.filter(ocpp_messages::charge_point_id.eq(self.charge_point_id.clone())).into_boxed();
        if let Some(direction) = &self.direction {
            query = query.filter(ocpp_messages::direction.eq(direction.clone()));
        }
        if let Some(action) = &self.action {
            query = query.filter(ocpp_messages::action.eq(action.clone()));
        }
        query
    }
}

/// One page of logged frames, newest first, and how many match in all.
pub async fn list(
    conn: &mut diesel_async::AsyncPgConnection,
    filter: &LogFilter,
    limit: i64,
    offset: i64,
) -> Result<(Vec<LogEntry>, i64), StoreError> {
    let total: i64 = filter.query().count().get_result(conn).await?;
    let entries = filter
        .query()
        .order(ocpp_messages::id.desc())
        .limit(limit)
        .offset(offset)
        .select(LogEntry::as_select())
        .load(conn)
        .await?;
    Ok((entries, total))
}
