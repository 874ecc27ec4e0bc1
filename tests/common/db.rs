//! Per-test databases: `CREATE DATABASE … TEMPLATE` from a template migrated once per set of
//! migrations (named by a hash of their SQL), built under an advisory lock so parallel test
//! processes share it, and dropped when the test ends.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use diesel::sql_types::{BigInt, Text};
use diesel::{QueryableByName, sql_query};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use kilowatt_actors::store::database::{self, DatabaseUrl, quote_identifier};

/// The server and maintenance database the tests create their databases in.
pub fn admin_url() -> String {
    std::env::var("KILOWATT_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://kilowatt:kilowatt@127.0.0.1:5432/postgres".to_string())
}

/// A database that lives as long as this value.
pub struct TestDatabase {
    pub name: String,
    pub url: String,
}

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    datname: String,
}

/// A hash of every migration's SQL, so a changed migration gets a fresh template.
fn migrations_fingerprint() -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let mut entries: Vec<_> = walk(&dir);
    entries.sort();
    let mut hasher = DefaultHasher::new();
    for path in entries {
        path.file_name().hash(&mut hasher);
        std::fs::read(&path).expect("read migration").hash(&mut hasher);
    }
    format!("{:016x}", hasher.finish())
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("migrations dir").flatten() {
        let path = entry.path();
        if path.is_dir() { files.extend(walk(&path)) } else { files.push(path) }
    }
    files
}

pub async fn admin_connection() -> AsyncPgConnection {
    AsyncPgConnection::establish(&admin_url())
        .await
        .expect("connect to PostgreSQL for tests (is it running? see README: .ci/test)")
}

async fn exists(conn: &mut AsyncPgConnection, name: &str) -> bool {
    let rows: Vec<Name> = sql_query("SELECT datname FROM pg_database WHERE datname = $1")
        .bind::<Text, _>(name)
        .load(conn)
        .await
        .expect("query pg_database");
    !rows.is_empty()
}

/// Makes sure the migrated template exists; answers its name.
async fn ensure_template(admin: &mut AsyncPgConnection) -> String {
    let fingerprint = migrations_fingerprint();
    let template = format!("kilowatt_test_tmpl_{fingerprint}");
    if exists(admin, &template).await {
        return template;
    }
    let lock_key = i64::from_str_radix(&fingerprint[..15], 16).expect("hex");
    sql_query("SELECT pg_advisory_lock($1)").bind::<BigInt, _>(lock_key).execute(admin).await.expect("lock");
    if !exists(admin, &template).await {
        // Build under a private name and rename when complete, so nobody clones a half-built one.
        let building = format!("kilowatt_test_build_{}_{}", std::process::id(), fingerprint);
        sql_query(format!("DROP DATABASE IF EXISTS {}", quote_identifier(&building)))
            .execute(admin)
            .await
            .expect("drop");
        sql_query(format!("CREATE DATABASE {}", quote_identifier(&building))).execute(admin).await.expect("create");
        let url = DatabaseUrl::parse(&admin_url()).expect("admin url").with_name(&building);
        database::run_migrations(&url).await.expect("migrate template");
        sql_query(format!("ALTER DATABASE {} RENAME TO {}", quote_identifier(&building), quote_identifier(&template)))
            .execute(admin)
            .await
            .expect("rename template");
        // Templates of older migration sets are no longer needed.
        let stale: Vec<Name> =
            sql_query("SELECT datname FROM pg_database WHERE datname LIKE 'kilowatt_test_tmpl_%' AND datname <> $1")
                .bind::<Text, _>(&template)
                .load(admin)
                .await
                .expect("list templates");
        for old in stale {
            let _ = sql_query(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_identifier(&old.datname)))
                .execute(admin)
                .await;
        }
    }
    sql_query("SELECT pg_advisory_unlock($1)").bind::<BigInt, _>(lock_key).execute(admin).await.expect("unlock");
    template
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A unique database name for this process.
pub fn unique_name(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let random: u32 = rand::random();
    format!("{prefix}_{}_{n}_{random:08x}", std::process::id())
}

impl TestDatabase {
    /// A fresh, migrated database.
    pub async fn create() -> Self {
        let mut admin = admin_connection().await;
        let template = ensure_template(&mut admin).await;
        let name = unique_name("kilowatt_test");
        sql_query(format!("CREATE DATABASE {} TEMPLATE {}", quote_identifier(&name), quote_identifier(&template)))
            .execute(&mut admin)
            .await
            .expect("clone template");
        Self::named(name)
    }

    /// A fresh database with nothing in it (not even migrations).
    pub async fn create_empty() -> Self {
        let mut admin = admin_connection().await;
        let name = unique_name("kilowatt_test_empty");
        sql_query(format!("CREATE DATABASE {}", quote_identifier(&name))).execute(&mut admin).await.expect("create");
        Self::named(name)
    }

    /// A name for a database that does not exist yet (dropped at the end if something made it).
    pub fn not_yet_created() -> Self {
        Self::named(unique_name("kilowatt_test_new"))
    }

    fn named(name: String) -> Self {
        let url = DatabaseUrl::parse(&admin_url()).expect("admin url").with_name(&name);
        Self { name, url }
    }

    /// A connection to this database.
    pub async fn connect(&self) -> AsyncPgConnection {
        AsyncPgConnection::establish(&self.url).await.expect("connect to test database")
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs outside async context; use a private runtime on a plain thread.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(async move {
                if let Ok(mut admin) = AsyncPgConnection::establish(&admin_url()).await {
                    let _ = sql_query(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_identifier(&name)))
                        .execute(&mut admin)
                        .await;
                }
            });
        })
        .join();
    }
}
