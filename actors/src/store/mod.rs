//! The store: PostgreSQL through diesel-async. The schema, the connection pool, database
//! creation and embedded migrations, and query functions grouped by table. Query functions
//! take `&mut AsyncPgConnection` so they work inside or outside a transaction.

pub mod database;
pub mod models;
pub mod pool;
pub mod schema;
pub mod users;

pub use diesel_async::AsyncPgConnection;
pub use pool::{DbPool, PoolSettings};

/// What can go wrong talking to the database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No connection could be had from the pool in time (database down or pool exhausted).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A query failed.
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
    /// A connection could not be established.
    #[error(transparent)]
    Connection(#[from] diesel::ConnectionError),
    /// Migrations could not be applied or reverted.
    #[error("migration failed: {0}")]
    Migration(String),
    /// The database URL is not one we can work with.
    #[error("invalid database URL: {0}")]
    InvalidUrl(String),
}

impl From<pool::PoolError> for StoreError {
    fn from(error: pool::PoolError) -> Self {
        StoreError::Unavailable(error.to_string())
    }
}
