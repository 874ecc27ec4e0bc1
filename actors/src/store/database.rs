//! Creating Kilowatt's database when it does not exist, and applying (or reverting) the
//! migrations embedded in the binary.

use diesel::migration::MigrationVersion;
use diesel::sql_types::Text;
use diesel::{QueryableByName, sql_query};
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use super::StoreError;

/// The SQL migrations in `migrations/`, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations");

/// A database URL split into the server part and the database name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    /// `scheme://user:pass@host:port`, without a trailing slash.
    pub server: String,
    /// The database name.
    pub name: String,
    /// Anything after `?`, including the `?`, or empty.
    pub query: String,
}

impl DatabaseUrl {
    /// Parses `postgres://user:pass@host:port/name?options`.
    pub fn parse(url: &str) -> Result<Self, StoreError> {
        let invalid = || StoreError::InvalidUrl("expected postgres://USER:PASSWORD@HOST:PORT/DATABASE".into());
        let rest = url.strip_prefix("postgres://").or_else(|| url.strip_prefix("postgresql://")).ok_or_else(invalid)?;
        let (before_query, query) = match rest.find('?') {
            Some(at) => (&rest[..at], &rest[at..]),
            None => (rest, ""),
        };
        let slash = before_query.rfind('/').ok_or_else(invalid)?;
        let (authority, name) = (&before_query[..slash], &before_query[slash + 1..]);
        if authority.is_empty() || name.is_empty() || name.contains('/') {
            return Err(invalid());
        }
        let scheme_len = url.len() - rest.len();
        Ok(Self {
            server: format!("{}{}", &url[..scheme_len], authority),
            name: name.to_string(),
            query: query.to_string(),
        })
    }

    /// The URL of another database on the same server.
    pub fn with_name(&self, name: &str) -> String {
        format!("{}/{}{}", self.server, name, self.query)
    }

    /// This URL.
    pub fn url(&self) -> String {
        self.with_name(&self.name)
    }
}

/// Quotes an SQL identifier.
pub fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[derive(QueryableByName)]
struct DatabaseName {
    #[diesel(sql_type = Text)]
    datname: String,
}

/// Creates the database named in `url` if it does not exist yet, connecting to the server's
/// `postgres` maintenance database to do so. Returns whether it created it.
pub async fn create_database_if_missing(url: &str) -> Result<bool, StoreError> {
    let parsed = DatabaseUrl::parse(url)?;
    let mut conn = AsyncPgConnection::establish(&parsed.with_name("postgres")).await?;
    let existing: Vec<DatabaseName> = sql_query("SELECT datname FROM pg_database WHERE datname = $1")
        .bind::<Text, _>(&parsed.name)
        .load(&mut conn)
        .await?;
    if existing.iter().any(|row| row.datname == parsed.name) {
        return Ok(false);
    }
    match sql_query(format!("CREATE DATABASE {}", quote_identifier(&parsed.name))).execute(&mut conn).await {
        Ok(_) => Ok(true),
        // Another node created it between our check and our CREATE.
        Err(diesel::result::Error::DatabaseError(_, info)) if info.message().contains("already exists") => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Runs `work` with a synchronous migration connection on a blocking thread (diesel's
/// migration harness is synchronous; see STACK.md trap 1).
async fn with_migration_connection<T, F>(url: &str, work: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: FnOnce(&mut AsyncConnectionWrapper<AsyncPgConnection>) -> Result<T, StoreError> + Send + 'static,
{
    let url = url.to_string();
    tokio::task::spawn_blocking(move || {
        let mut conn = <AsyncConnectionWrapper<AsyncPgConnection> as diesel::Connection>::establish(&url)?;
        work(&mut conn)
    })
    .await
    .map_err(|e| StoreError::Migration(format!("migration task failed: {e}")))?
}

/// Applies every pending migration; answers the versions it applied.
pub async fn run_migrations(url: &str) -> Result<Vec<String>, StoreError> {
    with_migration_connection(url, |conn| {
        let applied = conn.run_pending_migrations(MIGRATIONS).map_err(|e| StoreError::Migration(e.to_string()))?;
        Ok(applied.iter().map(MigrationVersion::to_string).collect())
    })
    .await
}

/// Reverts every applied migration, newest first; answers how many it reverted.
pub async fn revert_all_migrations(url: &str) -> Result<usize, StoreError> {
    with_migration_connection(url, |conn| {
        let reverted = conn.revert_all_migrations(MIGRATIONS).map_err(|e| StoreError::Migration(e.to_string()))?;
        Ok(reverted.len())
    })
    .await
}

/// Creates the database if needed, then applies pending migrations.
pub async fn prepare(url: &str) -> Result<Vec<String>, StoreError> {
    if create_database_if_missing(url).await? {
        tracing::info!(database = %DatabaseUrl::parse(url)?.name, "created database");
    }
    run_migrations(url).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rebuilds_database_urls() {
        let url = DatabaseUrl::parse("postgres://u:p@127.0.0.1:5432/kilowatt?sslmode=disable").expect("valid");
        assert_eq!(url.server, "postgres://u:p@127.0.0.1:5432");
        assert_eq!(url.name, "kilowatt");
        assert_eq!(url.with_name("postgres"), "postgres://u:p@127.0.0.1:5432/postgres?sslmode=disable");
        assert!(DatabaseUrl::parse("mysql://x/y").is_err());
        assert!(DatabaseUrl::parse("postgres://host").is_err());
        assert!(DatabaseUrl::parse("postgres://host/").is_err());
    }

    #[test]
    fn quotes_identifiers() {
        assert_eq!(quote_identifier("a\"b"), "\"a\"\"b\"");
    }
}
