//! Group commit: many chargers' writes of one kind stored together, each caller answered only
//! once its write is committed. [`MeterWriter`] does it for MeterValues (a charger's
//! CALLRESULT still means "stored durably"); the same engine, [`GroupCommit`], batches the
//! other writes every charger makes when it (re)connects — the handshake's identity lookup,
//! BootNotification, StatusNotification — so a storm of 19,000 chargers costs a few hundred
//! statements and WAL flushes instead of a hundred thousand.
//!
//! Batches form by themselves: at most `writers` batches are written at once, and whatever
//! arrives meanwhile goes into the next one (up to [`MAX_BATCH`]); a writer may also write one
//! batch at a time while they are quick ([`Concurrency::stagger`]). A lone write goes out at
//! once (no added delay when the system is quiet); under load one commit covers hundreds of
//! writes. A batch that fails is retried one write at a time, so one bad write cannot fail
//! the others. Callers are answered on their own threads, one message per batch and thread
//! ([`crate::reply`]). The meter writer runs on a thread of its own ([`MeterWriter`]), so its
//! round trips to PostgreSQL never wait behind the chargers' tasks.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::Addr;
use actix_rt::{Arbiter, ArbiterHandle};
use chrono::{DateTime, Utc};
use tokio::sync::{Notify, Semaphore, mpsc};

use crate::registry::{NotifySession, NotifySessions, Registry};
use crate::reply::{self, Reply};
use crate::session::SessionEvent;
use crate::store::meters::{self, MeterInput, MeterSessions, Progress};
use crate::store::{AsyncPgConnection, DbPool, StoreError, pool};

/// Most writes in one batch.
pub const MAX_BATCH: usize = 512;

/// How many batches a writer writes at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Concurrency {
    /// Most batches written at once.
    pub writers: usize,
    /// While a batch is being written, another goes out only once the latest one has taken this
    /// long (`None`: at once, up to `writers`). A writer then writes one batch at a time while
    /// its batches are quick, as few and as large as it can, and a slow one does not hold up
    /// every write behind it for longer than this.
    pub stagger: Option<Duration>,
}

impl Concurrency {
    /// Up to `writers` batches at once, each going out as soon as a writer is free.
    pub const fn at_once(writers: usize) -> Self {
        Concurrency { writers, stagger: None }
    }
}

/// Writes waiting for a batch before new ones are refused (the caller retries).
const QUEUE: usize = 50_000;

/// Why a write was not stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// Too many writes are waiting already.
    #[error("too many writes are waiting to be stored")]
    Busy,
    /// The database refused or could not be reached.
    #[error("not stored: {0}")]
    Store(String),
    /// The writer is gone (the server is stopping).
    #[error("the writer stopped")]
    Stopped,
}

impl From<StoreError> for WriteError {
    fn from(error: StoreError) -> Self {
        WriteError::Store(error.to_string())
    }
}

/// What a batch write returns: one output per input, in input order.
pub type BatchFuture<'a, O> = Pin<Box<dyn Future<Output = Result<Vec<O>, StoreError>> + 'a>>;

/// Writes a batch of inputs on one connection (in one transaction where it needs one).
pub type BatchFn<I, O> = for<'a> fn(&'a mut AsyncPgConnection, &'a [I]) -> BatchFuture<'a, O>;

/// A [`BatchFn`] that may keep state of its own between batches (on the writer's thread).
pub type BatchWriter<I, O> = Rc<dyn for<'a> Fn(&'a mut AsyncPgConnection, &'a [I]) -> BatchFuture<'a, O>>;

/// A closure as a [`BatchWriter`] (naming the bound lets the compiler see its signature).
pub fn batch_writer<I, O, F>(write: F) -> BatchWriter<I, O>
where
    F: for<'a> Fn(&'a mut AsyncPgConnection, &'a [I]) -> BatchFuture<'a, O> + 'static,
{
    Rc::new(write)
}

/// What a writer started with [`GroupCommit::start_on`] writes with: its pool, its batch writer,
/// and what to tell of committed batches.
pub type WriterSetup<I, O> = (DbPool, BatchWriter<I, O>, Option<CommittedFn<I, O>>);

/// Told of every committed batch's inputs and outputs, on the writer's thread, before the
/// callers are answered: work that follows every write of a kind is then done once a batch.
pub type CommittedFn<I, O> = Rc<dyn Fn(&[I], &[O])>;

struct Job<I, O> {
    input: I,
    queued_at: Instant,
    reply: Reply<Answer<O>>,
}

/// A write's outcome and when the writer sent it.
type Answer<O> = (Result<O, WriteError>, Instant);

/// A handle to one group-commit writer (cheap to clone).
pub struct GroupCommit<I, O> {
    name: &'static str,
    sender: mpsc::Sender<Job<I, O>>,
    /// `db_write_resume_seconds{writer}`, looked up once rather than at every write.
    resume: metrics::Histogram,
}

impl<I, O> Clone for GroupCommit<I, O> {
    fn clone(&self) -> Self {
        GroupCommit { name: self.name, sender: self.sender.clone(), resume: self.resume.clone() }
    }
}

impl<I: 'static, O: Send + 'static> GroupCommit<I, O> {
    /// Starts a writer on the current runtime: batches of `write`, at most `writers` at once,
    /// each on a connection from `pool`. `name` labels its metrics and logs.
    pub fn start(name: &'static str, pool: DbPool, writers: usize, write: BatchFn<I, O>) -> Self {
        Self::start_with_batch(name, pool, writers, MAX_BATCH, write)
    }

    /// As [`GroupCommit::start`], with batches of at most `max_batch` writes: smaller batches
    /// on more writers suit writes that are many statements each (a batch runs its writes one
    /// after another on one connection, so its length is their sum).
    pub fn start_with_batch(
        name: &'static str,
        pool: DbPool,
        writers: usize,
        max_batch: usize,
        write: BatchFn<I, O>,
    ) -> Self {
        let (sender, receiver) = mpsc::channel(QUEUE);
        Batches { name, pool, write: Rc::new(write), committed: None }.collect(
            Concurrency::at_once(writers),
            max_batch,
            receiver,
        );
        GroupCommit::new(name, sender)
    }

    /// Starts a writer on `thread` (an arbiter's), as [`GroupCommit::start_with_batch`] does on
    /// the current runtime, with as many batches at once as `concurrency` says: `setup` runs
    /// there first and gives the pool, the batch writer (which may keep state between batches)
    /// and what to tell of every committed batch. If `setup` fails, every write is refused as
    /// [`WriteError::Stopped`].
    pub fn start_on<S>(
        thread: &ArbiterHandle,
        name: &'static str,
        concurrency: Concurrency,
        max_batch: usize,
        setup: S,
    ) -> Self
    where
        I: Send,
        S: FnOnce() -> Result<WriterSetup<I, O>, StoreError> + Send + 'static,
    {
        let (sender, receiver) = mpsc::channel(QUEUE);
        thread.spawn_fn(move || match setup() {
            Ok((pool, write, committed)) => {
                Batches { name, pool, write, committed }.collect(concurrency, max_batch, receiver);
            }
            Err(error) => tracing::error!(writer = name, %error, "the writer could not start: writes are refused"),
        });
        GroupCommit::new(name, sender)
    }

    fn new(name: &'static str, sender: mpsc::Sender<Job<I, O>>) -> Self {
        GroupCommit { name, sender, resume: metrics::histogram!("db_write_resume_seconds", "writer" => name) }
    }

    /// Queues one write; resolves with its output once its batch is committed.
    ///
    /// `db_write_resume_seconds{writer}` records how long the caller took to resume after the
    /// writer answered: how long the caller's thread took to run it again, which under load is
    /// that thread's queue of ready tasks (see [`crate::reply`]).
    pub async fn submit(&self, input: I) -> Result<O, WriteError> {
        let (reply, answer) = reply::channel();
        self.queue(input, reply)?;
        let Ok((outcome, answered_at)) = answer.await else { return Err(WriteError::Stopped) };
        self.resumed(answered_at);
        outcome
    }

    /// As [`GroupCommit::submit`], and `on_stored` is called once the write is committed, as
    /// soon as the caller's thread takes the answer and before the caller resumes (see
    /// [`reply::channel_with_hook`]): for what must not wait for the caller's turn on a busy
    /// thread. It is not called when the write fails, nor on a thread without an actix runtime.
    pub async fn submit_with_hook(&self, input: I, on_stored: impl FnOnce(&O) + 'static) -> Result<O, WriteError> {
        let (reply, answer) = reply::channel_with_hook(move |(outcome, _): &Answer<O>| {
            if let Ok(output) = outcome {
                on_stored(output);
            }
        });
        self.queue(input, reply)?;
        let Ok((outcome, answered_at)) = answer.await else { return Err(WriteError::Stopped) };
        self.resumed(answered_at);
        outcome
    }

    fn queue(&self, input: I, reply: Reply<Answer<O>>) -> Result<(), WriteError> {
        let job = Job { input, queued_at: Instant::now(), reply };
        self.sender.try_send(job).map_err(|error| match error {
            mpsc::error::TrySendError::Full(_) => WriteError::Busy,
            mpsc::error::TrySendError::Closed(_) => WriteError::Stopped,
        })
    }

    fn resumed(&self, answered_at: Instant) {
        self.resume.record(answered_at.elapsed().as_secs_f64());
    }
}

/// What one writer's batches are written with.
struct Batches<I, O> {
    name: &'static str,
    pool: DbPool,
    write: BatchWriter<I, O>,
    committed: Option<CommittedFn<I, O>>,
}

impl<I, O> Clone for Batches<I, O> {
    fn clone(&self) -> Self {
        Batches {
            name: self.name,
            pool: self.pool.clone(),
            write: self.write.clone(),
            committed: self.committed.clone(),
        }
    }
}

impl<I: 'static, O: Send + 'static> Batches<I, O> {
    /// Collects and writes batches from `receiver` on the current runtime until it closes.
    fn collect(self, concurrency: Concurrency, max_batch: usize, receiver: mpsc::Receiver<Job<I, O>>) {
        let concurrency = Concurrency { writers: concurrency.writers.max(1), ..concurrency };
        actix_rt::spawn(collect_batches(self, concurrency, max_batch.max(1), receiver));
    }
}

impl<I, O> Batches<I, O> {
    fn committed(&self, inputs: &[I], outputs: &[O]) {
        if let Some(committed) = &self.committed {
            committed(inputs, outputs);
        }
    }
}

/// When the batches being written started, for [`Concurrency::stagger`].
#[derive(Debug, Default)]
struct Running {
    started: Vec<Instant>,
}

impl Running {
    /// When another batch may go out: at once if none is being written, else `stagger` after
    /// the latest one started.
    fn next_start(&self, stagger: Duration) -> Option<Instant> {
        self.started.iter().max().map(|latest| *latest + stagger)
    }

    fn finished(&mut self, started: Instant) {
        if let Some(at) = self.started.iter().position(|s| *s == started) {
            self.started.swap_remove(at);
        }
    }
}

async fn collect_batches<I: 'static, O: Send + 'static>(
    batches: Batches<I, O>,
    concurrency: Concurrency,
    max_batch: usize,
    mut receiver: mpsc::Receiver<Job<I, O>>,
) {
    let writers = Arc::new(Semaphore::new(concurrency.writers));
    let running = Rc::new(RefCell::new(Running::default()));
    let finished = Rc::new(Notify::new());
    loop {
        let Ok(permit) = writers.clone().acquire_owned().await else { return };
        if let Some(stagger) = concurrency.stagger {
            loop {
                let next = running.borrow().next_start(stagger);
                let Some(at) = next.filter(|at| *at > Instant::now()) else { break };
                tokio::select! {
                    () = finished.notified() => {}
                    () = tokio::time::sleep_until(at.into()) => {}
                }
            }
        }
        let mut jobs = Vec::with_capacity(max_batch.min(receiver.len().max(1)));
        if receiver.recv_many(&mut jobs, max_batch).await == 0 {
            return;
        }
        let started = Instant::now();
        running.borrow_mut().started.push(started);
        let (batches, running, finished) = (batches.clone(), running.clone(), finished.clone());
        actix_rt::spawn(async move {
            write_batch(&batches, jobs).await;
            running.borrow_mut().finished(started);
            finished.notify_one();
            drop(permit);
        });
    }
}

async fn write_batch<I, O: Send + 'static>(batches: &Batches<I, O>, jobs: Vec<Job<I, O>>) {
    let Batches { name, ref pool, ref write, .. } = *batches;
    let started = Instant::now();
    let size = jobs.len();
    // How far behind the writer is: the wait of the batch's oldest write.
    if let Some(oldest) = jobs.iter().map(|job| job.queued_at).min() {
        metrics::histogram!("db_batch_wait_seconds", "writer" => name).record((started - oldest).as_secs_f64());
    }
    let (inputs, replies): (Vec<I>, Vec<_>) = jobs.into_iter().map(|job| (job.input, job.reply)).unzip();
    let stored = async {
        let mut conn = pool::connection(pool).await?;
        write(&mut conn, &inputs).await
    }
    .await;
    match stored {
        Ok(outputs) if outputs.len() == size => {
            batches.committed(&inputs, &outputs);
            answer(replies.into_iter().zip(outputs.into_iter().map(Ok)));
        }
        Ok(outputs) => {
            tracing::error!(writer = name, inputs = size, outputs = outputs.len(), "a batch answered the wrong count");
            let wrong = || Err(WriteError::Store("the batch answered the wrong count".into()));
            answer(replies.into_iter().map(|reply| (reply, wrong())));
        }
        Err(error) if size == 1 => {
            tracing::warn!(writer = name, %error, "write failed");
            let error = WriteError::from(error);
            answer(replies.into_iter().map(|reply| (reply, Err(error.clone()))));
        }
        Err(error) => {
            tracing::warn!(writer = name, %error, writes = size, "batch failed; writing it one by one");
            metrics::counter!("db_batches_failed_total", "writer" => name).increment(1);
            for (input, reply) in inputs.iter().zip(replies) {
                let one = async {
                    let mut conn = pool::connection(pool).await?;
                    write(&mut conn, std::slice::from_ref(input)).await
                }
                .await;
                let outcome = match one {
                    Ok(mut outputs) if outputs.len() == 1 => {
                        batches.committed(std::slice::from_ref(input), &outputs);
                        Ok(outputs.remove(0))
                    }
                    Ok(_) => Err(WriteError::Store("the batch answered the wrong count".into())),
                    Err(error) => Err(error.into()),
                };
                answer(std::iter::once((reply, outcome)));
            }
        }
    }
    metrics::histogram!("db_batch_size", "writer" => name).record(size as f64);
    metrics::histogram!("db_batch_duration_seconds", "writer" => name).record(started.elapsed().as_secs_f64());
}

/// Answers a batch's callers, each on its own thread (see [`crate::reply`]).
fn answer<O: Send + 'static>(answers: impl Iterator<Item = (Reply<Answer<O>>, Result<O, WriteError>)>) {
    let answered_at = Instant::now();
    reply::answer_all(answers.map(|(reply, outcome)| (reply, (outcome, answered_at))));
}

/// One MeterValues' readings, when they were received, and how often its session's running
/// totals are written (see [`meters::record_meter_batch`]).
pub struct MeterWrite {
    input: MeterInput,
    received_at: DateTime<Utc>,
    totals_every: chrono::Duration,
}

/// Builds the meter writer's connection pool, on the writer's own thread (see [`MeterWriter`]).
pub type PoolFactory = Arc<dyn Fn() -> Result<DbPool, StoreError> + Send + Sync>;

/// Group commit for MeterValues: answers where each reading left its session (`None` when it
/// belongs to no active session), once committed.
///
/// The writer runs on a thread of its own, with its own pool ([`METER_WRITERS`] connections):
/// its batches are collected and written there, and PostgreSQL's answers are read there, so a
/// batch's round trip never waits behind the ready chargers of a busy charger thread. Each
/// batch's callers are answered with one message to each charger thread (see [`crate::reply`]).
///
/// Earlier builds ran a writer on each charger thread. At 20,000 MeterValues a second that
/// thread is about half busy, and each step of a batch's round trip — PostgreSQL's answer
/// noticed by the I/O driver, the connection's task, the batch's task — waited behind its queue
/// of ready chargers: batches took 3.5–6 ms on average but 25–50 ms at p99 (up to 250), and the
/// MeterValues p50 was 18 ms; on a thread of their own, 2–3 ms and 9–15 ms (BENCHMARKS.md, runs
/// Y0 and Y2–Y6). Before that, one writer thread answered
/// each caller with a wake-up of its own, which a busy charger thread takes only once in 31
/// tasks: chargers resumed 2.5 s after their batch (run A2).
///
/// The sessions' actors hear of their readings from the writer, one message to the registry for
/// a whole batch: a message from each charger's task for each reading woke the registry's
/// thread 6,700 times a second at 20,000 readings a second, a sixth of the server's CPU with
/// the wake-ups it cost.
#[derive(Clone)]
pub struct MeterWriter {
    shared: Arc<MeterWriterShared>,
}

struct MeterWriterShared {
    commit: MeterCommit,
    totals_every: chrono::Duration,
    /// The writer's thread, stopped when the last handle goes.
    thread: ArbiterHandle,
}

impl Drop for MeterWriterShared {
    fn drop(&mut self) {
        self.thread.stop();
    }
}

type MeterCommit = GroupCommit<MeterWrite, Option<Progress>>;

impl MeterWriter {
    /// Queues one MeterValues' readings; resolves once they are committed.
    pub async fn submit(&self, input: MeterInput, received_at: DateTime<Utc>) -> Result<Option<Progress>, WriteError> {
        let write = MeterWrite { input, received_at, totals_every: self.shared.totals_every };
        self.shared.commit.submit(write).await
    }

    /// As [`MeterWriter::submit`], and `on_stored` is called as soon as the readings are
    /// committed, before the caller resumes (see [`GroupCommit::submit_with_hook`]).
    pub async fn submit_with_hook(
        &self,
        input: MeterInput,
        received_at: DateTime<Utc>,
        on_stored: impl FnOnce() + 'static,
    ) -> Result<Option<Progress>, WriteError> {
        let write = MeterWrite { input, received_at, totals_every: self.shared.totals_every };
        self.shared.commit.submit_with_hook(write, move |_| on_stored()).await
    }
}

/// Batches of meter values in flight at once: one while batches are quick, two while one is slow
/// (see [`METER_STAGGER`]). Early builds, whose batches took tens of milliseconds, needed four to
/// keep up with 20,000 MeterValues a second (four were then worse than two: batches of 512 took
/// 65–100 ms instead of 30–35, BENCHMARKS.md run B3). Two at once cost PostgreSQL a sixth less
/// CPU than four (runs M1–M5), and one at a time costs it less again (45 % of a core against 48 %
/// at 20,000 a second, runs U4 and K2; 2.1 ms per batch against 1.1 with two at once, runs Q2 and
/// U1: two batches contend for the same table's last page, its indexes and the WAL), with the
/// MeterValues p50 at 14–16 ms instead of 25–45. With strictly one, though, a batch that stalls
/// holds every reading behind it.
pub const METER_WRITERS: usize = 2;

/// How long a meter batch is written alone before a second one goes out beside it: between a
/// batch's median time and its 90th percentile at 20,000 MeterValues a second (≤ 2.5 ms and
/// ≤ 10 ms, BENCHMARKS.md runs U4 and K2). Staggered so, the MeterValues p99 was the lowest of
/// each stretch of runs: 82 ms against 147 (two at once) and 229 (one at a time) on a fast
/// machine, 147–180 ms against 360–1,311 on the same machine slowed (runs S1–S4, 2026-11-23 01:20).
pub const METER_STAGGER: Duration = Duration::from_millis(5);

/// Starts the meter writer on a thread of its own: it writes its batches on a pool that `pools`
/// builds there (which should use [`crate::store::pool::build_batch_pool`] and
/// [`METER_WRITERS`] connections); sessions' running totals are written at most every
/// `totals_every`, and where each batch moved its sessions is told to their actors through
/// `registry`. Call it within an actix system.
pub fn start_meter_writer(pools: PoolFactory, totals_every: chrono::Duration, registry: Addr<Registry>) -> MeterWriter {
    let thread = Arbiter::new().handle();
    let concurrency = Concurrency { writers: METER_WRITERS, stagger: Some(METER_STAGGER) };
    let commit = GroupCommit::start_on(&thread, "meter_values", concurrency, MAX_BATCH, move || {
        crate::runtime_probe::watch("meter_writer");
        let pool = pools()?;
        let sessions = Rc::new(RefCell::new(MeterSessions::default()));
        let write = batch_writer(move |conn, writes| write_meter_values(conn, writes, sessions.clone()));
        let committed: CommittedFn<MeterWrite, Option<Progress>> =
            Rc::new(move |writes, outputs| notify_sessions(&registry, writes, outputs));
        Ok((pool, write, Some(committed)))
    });
    MeterWriter { shared: Arc::new(MeterWriterShared { commit, totals_every, thread }) }
}

/// Tells the sessions' actors where a committed batch left their meters, in one message.
fn notify_sessions(registry: &Addr<Registry>, writes: &[MeterWrite], outputs: &[Option<Progress>]) {
    let events: Vec<NotifySession> = writes
        .iter()
        .zip(outputs)
        .filter_map(|(write, progress)| {
            let progress = progress.as_ref()?;
            Some(NotifySession {
                session_id: progress.session_id,
                event: SessionEvent::Progress {
                    energy_wh: progress.energy_wh,
                    power_w: progress.power_w,
                    cost: progress.cost,
                    sampled_at: write.input.sampled_at,
                },
            })
        })
        .collect();
    if !events.is_empty() {
        registry.do_send(NotifySessions(events));
    }
}

fn write_meter_values<'a>(
    conn: &'a mut AsyncPgConnection,
    writes: &'a [MeterWrite],
    sessions: Rc<RefCell<MeterSessions>>,
) -> BatchFuture<'a, Option<Progress>> {
    Box::pin(async move {
        // One receipt time for the batch: the latest of its readings'.
        let now = writes.iter().map(|write| write.received_at).max().unwrap_or_else(Utc::now);
        let totals_every = writes.iter().map(|write| write.totals_every).min().unwrap_or_else(chrono::Duration::zero);
        let inputs: Vec<&MeterInput> = writes.iter().map(|write| &write.input).collect();
        meters::record_meter_batch(conn, &inputs, &sessions, now, totals_every).await
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_rt::test]
    async fn a_writer_whose_thread_could_not_start_refuses_every_write() {
        let thread = Arbiter::new();
        let commit: GroupCommit<u32, u32> =
            GroupCommit::start_on(&thread.handle(), "test", Concurrency::at_once(2), 8, || {
                Err(StoreError::Unavailable("no database here".into()))
            });
        assert_eq!(commit.submit(1).await, Err(WriteError::Stopped));
        assert_eq!(commit.submit(2).await, Err(WriteError::Stopped));
        thread.stop();
    }

    #[test]
    fn a_staggered_batch_goes_out_at_once_when_none_is_written_and_else_after_the_latest_one() {
        let stagger = Duration::from_millis(5);
        let start = Instant::now();
        let mut running = Running::default();
        assert_eq!(running.next_start(stagger), None);

        running.started.push(start);
        assert_eq!(running.next_start(stagger), Some(start + stagger));
        let later = start + Duration::from_millis(3);
        running.started.push(later);
        assert_eq!(running.next_start(stagger), Some(later + stagger));

        // The latest one finished: the next waits on the one still being written.
        running.finished(later);
        assert_eq!(running.next_start(stagger), Some(start + stagger));
        running.finished(start);
        assert_eq!(running.next_start(stagger), None);
    }
}
