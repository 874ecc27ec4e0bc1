//! The connection pool, built once at start-up with explicit sizes and timeouts
//! (deadpool's defaults wait forever and size the pool by CPU count).

use std::time::Duration;

use diesel::sql_query;
use diesel_async::pooled_connection::deadpool::{Object, Pool};
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};

use super::StoreError;

/// The pool type every part of Kilowatt shares.
pub type DbPool = Pool<AsyncPgConnection>;

/// A pooled connection.
pub type PooledConnection = Object<AsyncPgConnection>;

/// The error a pool checkout can fail with.
pub type PoolError = diesel_async::pooled_connection::deadpool::PoolError;

/// How big the pool is and how long it waits.
#[derive(Clone, Copy, Debug)]
pub struct PoolSettings {
    /// Most connections open at once.
    pub max_size: usize,
    /// How long a checkout waits for a free connection, and how long a new connection may
    /// take to establish or an idle one to be checked.
    pub timeout: Duration,
}

/// Builds the pool. Connections are made lazily, so this succeeds with the database down.
///
/// A connection is checked out as it is, without a test query first: diesel-async's default
/// asks PostgreSQL `SELECT 1` at every checkout, a round trip that doubled a simple API
/// request's (two checkouts, two queries) and came before every group-committed batch. A
/// connection whose socket closed (the server restarted, the backend was terminated) is still
/// thrown away at checkout; one that breaks unnoticed fails its first query with an error and is
/// thrown away at its next checkout.
pub fn build_pool(database_url: &str, settings: PoolSettings) -> Result<DbPool, StoreError> {
    build_with(database_url, settings, ManagerConfig::default())
}

/// Builds a pool for batch writers whose statements take arrays (`unnest($1)`, `= ANY($1)`),
/// one element per write of the batch, and probe tables by key.
///
/// Each kept statement is planned once per connection, for any size of its arrays
/// ([`BATCH_PLANNING`]): a generic plan, made with sequential scans, hash joins and merge joins
/// ruled out, so it is the plan that probes the tables' indexes row by row whatever the tables
/// held when it was made. Planning at every run instead (`force_custom_plan`) cost the meter
/// writer a fifth of PostgreSQL's CPU at 20,000 meter values a second; a generic plan left to
/// the planner's choice went bad (see [`super::prepared`]).
pub fn build_batch_pool(database_url: &str, settings: PoolSettings) -> Result<DbPool, StoreError> {
    let mut config = ManagerConfig::default();
    config.custom_setup = Box::new(|url| {
        Box::pin(async move {
            let mut conn = AsyncPgConnection::establish(url).await?;
            conn.batch_execute(BATCH_PLANNING).await.map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
            Ok(conn)
        })
    });
    build_with(database_url, settings, config)
}

/// How a batch pool's connections plan: see [`build_batch_pool`].
pub const BATCH_PLANNING: &str = "SET plan_cache_mode = force_generic_plan; SET enable_seqscan = off; \
     SET enable_hashjoin = off; SET enable_mergejoin = off";

fn build_with(
    database_url: &str,
    settings: PoolSettings,
    mut config: ManagerConfig<AsyncPgConnection>,
) -> Result<DbPool, StoreError> {
    config.recycling_method = RecyclingMethod::Fast;
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(database_url, config);
    Pool::builder(manager)
        .max_size(settings.max_size)
        .wait_timeout(Some(settings.timeout))
        .create_timeout(Some(settings.timeout))
        .recycle_timeout(Some(settings.timeout))
        .runtime(deadpool::Runtime::Tokio1)
        .build()
        .map_err(|e| StoreError::Unavailable(e.to_string()))
}

/// Checks out a connection.
pub async fn connection(pool: &DbPool) -> Result<PooledConnection, StoreError> {
    Ok(pool.get().await?)
}

/// Answers whether the database is reachable right now: a checkout and `SELECT 1`.
pub async fn ping(pool: &DbPool) -> Result<(), StoreError> {
    let mut conn = connection(pool).await?;
    sql_query("SELECT 1").execute(&mut conn).await?;
    Ok(())
}
