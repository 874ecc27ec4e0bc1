//! The presence batcher: when each charger was last heard from, and when its connections open
//! and close, written to `chargers` in batches rather than one statement per message.
//!
//! - [`LastSeen::seen`] (every message a charger sends, heartbeats above all) only updates an
//!   in-memory map, charger → latest time; a task writes what is due every flush interval in
//!   one statement (`UPDATE … FROM unnest(ids, times)`), so a heartbeat never waits on, nor
//!   causes, a database write of its own. A time never moves last-seen backwards. Each charger's
//!   time is written once every [`GRANULARITY`], at a moment of its own in that period
//!   ([`crate::clock::new_period`]): a fleet that connected at once would otherwise rewrite
//!   every row in the same flush, every period (19,000 rows in a quarter of a second of
//!   PostgreSQL's time, which every charger's answers waited behind), and the chargers not due
//!   are not sent at all.
//! - [`LastSeen::connected`] and [`LastSeen::disconnected`] are awaited by the connection, and
//!   group-committed: whatever opened or closed while the previous batch was being written goes
//!   out in the next one (connections first, then disconnections, so a connection that opened
//!   and closed within one batch ends offline, and one replaced by a newer one ends online).
//!   A connect storm of thousands of chargers costs a handful of statements, not thousands.
//!
//! A graceful shutdown closes every connection, and each closing connection writes its
//! last-seen time as it goes offline; [`LastSeen::flush`] writes what is pending on demand.

use std::collections::{HashMap, HashSet};
use std::mem;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;

use crate::clock;
use crate::reply::{self, Reply};
use crate::store::chargers::{self, Presence};
use crate::store::{DbPool, StoreError, pool};

/// Most chargers per last-seen statement, so no statement holds row locks for long.
const SEEN_CHUNK: usize = 4_000;

/// How often each charger's last-seen time is written: last-seen is exact to this much (plus
/// the flush interval), and a charger heard from every second costs one row write per this
/// long, not one per flush.
pub const GRANULARITY: chrono::Duration = chrono::Duration::seconds(30);

/// Why a presence change was not written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("charger presence not written: {0}")]
pub struct PresenceError(String);

impl From<StoreError> for PresenceError {
    fn from(error: StoreError) -> Self {
        PresenceError(error.to_string())
    }
}

type Opened = (Presence, Reply<Result<(), PresenceError>>);
type Closed = (Presence, Reply<Result<bool, PresenceError>>);

#[derive(Default)]
struct Changes {
    opened: Vec<Opened>,
    closed: Vec<Closed>,
}

struct Inner {
    pool: DbPool,
    seen: Mutex<HashMap<i64, DateTime<Utc>>>,
    /// The last-seen time last written for each charger (by a flush, or as it connected).
    written: Mutex<HashMap<i64, DateTime<Utc>>>,
    changes: Mutex<Changes>,
    wake: Arc<Notify>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Lets the writer task notice that nobody can hand it work any more.
        self.wake.notify_one();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave a map of times inconsistent: carry on.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A handle to the presence batcher (cheap to clone).
#[derive(Clone)]
pub struct LastSeen {
    inner: Arc<Inner>,
}

impl LastSeen {
    /// Starts the batcher's tasks on the current runtime: last-seen is written every
    /// `flush_every`, connections and disconnections as soon as the previous batch is done.
    pub fn start(pool: DbPool, flush_every: Duration) -> Self {
        let wake = Arc::new(Notify::new());
        let inner = Arc::new(Inner {
            pool,
            seen: Mutex::new(HashMap::new()),
            written: Mutex::new(HashMap::new()),
            changes: Mutex::new(Changes::default()),
            wake: wake.clone(),
        });
        actix_rt::spawn(flush_periodically(Arc::downgrade(&inner), flush_every));
        actix_rt::spawn(write_changes(Arc::downgrade(&inner), wake));
        LastSeen { inner }
    }

    /// Notes that a charger was heard from at `at`; written at the next flush.
    pub fn seen(&self, charger_id: i64, at: DateTime<Utc>) {
        let mut seen = lock(&self.inner.seen);
        let latest = seen.entry(charger_id).or_insert(at);
        if *latest < at {
            *latest = at;
        }
    }

    /// Chargers whose last-seen time waits for the next flush.
    pub fn pending(&self) -> usize {
        lock(&self.inner.seen).len()
    }

    /// Writes every pending last-seen time now, due or not; answers how many rows moved forward.
    pub async fn flush(&self) -> Result<usize, PresenceError> {
        flush_seen(&self.inner, Due::All).await
    }

    /// Marks the charger online for the connection opened at `presence.connected_at`;
    /// resolves once that is committed.
    pub async fn connected(&self, presence: Presence) -> Result<(), PresenceError> {
        let (reply, answer) = reply::channel();
        lock(&self.inner.changes).opened.push((presence, reply));
        self.inner.wake.notify_one();
        answer.await.unwrap_or_else(|_| Err(PresenceError("the presence writer stopped".into())))
    }

    /// Marks the charger offline unless a newer connection took over; resolves once that is
    /// committed, with whether it did.
    pub async fn disconnected(&self, presence: Presence) -> Result<bool, PresenceError> {
        let (reply, answer) = reply::channel();
        lock(&self.inner.changes).closed.push((presence, reply));
        self.inner.wake.notify_one();
        answer.await.unwrap_or_else(|_| Err(PresenceError("the presence writer stopped".into())))
    }
}

async fn flush_periodically(inner: Weak<Inner>, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        if let Err(error) = flush_seen(&inner, Due::ThisPeriod).await {
            tracing::warn!(%error, "could not write last-seen times; keeping them for the next flush");
        }
    }
}

/// Which pending last-seen times a flush writes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Due {
    /// Those whose charger's period has turned since its time was last written.
    ThisPeriod,
    /// All of them.
    All,
}

/// Takes the pending times a flush writes out of the map; the others wait for a later flush.
fn take_due(inner: &Inner, due: Due) -> Vec<(i64, DateTime<Utc>)> {
    let mut seen = lock(&inner.seen);
    if due == Due::All {
        return mem::take(&mut *seen).into_iter().collect();
    }
    let written = lock(&inner.written);
    let mut rows = Vec::new();
    seen.retain(|&id, &mut at| {
        let due = written.get(&id).is_none_or(|&last| clock::new_period(id, last, at, GRANULARITY));
        if due {
            rows.push((id, at));
        }
        !due
    });
    rows
}

async fn flush_seen(inner: &Inner, due: Due) -> Result<usize, PresenceError> {
    let rows = take_due(inner, due);
    if rows.is_empty() {
        return Ok(0);
    }
    let mut written = 0;
    for (index, chunk) in rows.chunks(SEEN_CHUNK).enumerate() {
        let result = async {
            let mut conn = pool::connection(&inner.pool).await?;
            chargers::touch_last_seen(&mut conn, chunk, chrono::Duration::zero()).await
        }
        .await;
        match result {
            Ok(changed) => {
                written += changed;
                lock(&inner.written).extend(chunk.iter().copied());
            }
            Err(error) => {
                // Put back what was not written, unless a newer time arrived meanwhile.
                let mut seen = lock(&inner.seen);
                for &(id, at) in &rows[index * SEEN_CHUNK..] {
                    let latest = seen.entry(id).or_insert(at);
                    if *latest < at {
                        *latest = at;
                    }
                }
                return Err(error.into());
            }
        }
    }
    metrics::counter!("charger_last_seen_written_total").increment(written as u64);
    Ok(written)
}

async fn write_changes(inner: Weak<Inner>, wake: Arc<Notify>) {
    loop {
        wake.notified().await;
        let Some(inner) = inner.upgrade() else { return };
        loop {
            let Changes { opened, closed } = mem::take(&mut *lock(&inner.changes));
            if opened.is_empty() && closed.is_empty() {
                break;
            }
            write_batch(&inner, opened, closed).await;
        }
    }
}

async fn write_batch(inner: &Inner, opened: Vec<Opened>, closed: Vec<Closed>) {
    metrics::histogram!("charger_presence_batch_size").record((opened.len() + closed.len()) as f64);
    let mut conn = match pool::connection(&inner.pool).await {
        Ok(conn) => conn,
        Err(error) => {
            let error = PresenceError::from(error);
            reply::answer_all(opened.into_iter().map(|(_, reply)| (reply, Err(error.clone()))));
            reply::answer_all(closed.into_iter().map(|(_, reply)| (reply, Err(error.clone()))));
            return;
        }
    };
    let presences: Vec<Presence> = opened.iter().map(|(p, _)| *p).collect();
    let result = chargers::mark_connected(&mut conn, &presences).await.map_err(PresenceError::from);
    if result.is_ok() {
        // Connecting wrote last-seen too: the charger's next write comes at its own moment.
        lock(&inner.written).extend(presences.iter().map(|p| (p.charger_id, p.seen_at)));
    }
    reply::answer_all(opened.into_iter().map(|(_, reply)| (reply, result.clone())));
    let presences: Vec<Presence> = closed.iter().map(|(p, _)| *p).collect();
    match chargers::mark_disconnected(&mut conn, &presences).await {
        Ok(offline) => {
            let offline: HashSet<i64> = offline.into_iter().collect();
            reply::answer_all(
                closed.into_iter().map(|(presence, reply)| (reply, Ok(offline.contains(&presence.charger_id)))),
            );
        }
        Err(error) => {
            let error = PresenceError::from(error);
            reply::answer_all(closed.into_iter().map(|(_, reply)| (reply, Err(error.clone()))));
        }
    }
}
