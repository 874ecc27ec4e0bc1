//! The benchmark's database: a fresh one created from the admin URL and dropped at the end,
//! the network it starts with (an owner, a station, every simulated charger registered,
//! drivers with funded wallets and API tokens — written in bulk SQL, the same rows the app
//! writes), and the SQL checks run after a scenario (sampled values stored, sessions billed once,
//! wallets equal to their ledgers).

use std::fmt::Write as _;
use std::time::Duration;

use diesel::sql_query;
use diesel::sql_types::{Array, BigInt, Nullable, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use kilowatt_actors::accounts;
use kilowatt_actors::store::database::{self, DatabaseUrl, quote_identifier};
use serde::Serialize;
use tokio::time::Instant;

/// What every driver's wallet is funded with, INR: enough for any session of a run.
const FUNDING: i64 = 100_000;

/// A database that exists until [`BenchDatabase::drop_database`].
pub struct BenchDatabase {
    admin_url: String,
    /// Its name.
    pub name: String,
    /// Its URL.
    pub url: String,
}

impl BenchDatabase {
    /// Creates and migrates a fresh database on the server of `admin_url`.
    pub async fn create(admin_url: &str) -> Result<Self, String> {
        let parsed = DatabaseUrl::parse(admin_url).map_err(|e| format!("--database-url: {e}"))?;
        let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis();
        let name = format!("kilowatt_bench_{}_{stamp}", std::process::id());
        let mut admin = AsyncPgConnection::establish(admin_url)
            .await
            .map_err(|e| format!("cannot connect to PostgreSQL at {}: {e}", crate::config::redact_url(admin_url)))?;
        sql_query(format!("CREATE DATABASE {}", quote_identifier(&name)))
            .execute(&mut admin)
            .await
            .map_err(|e| format!("cannot create database {name}: {e}"))?;
        let url = parsed.with_name(&name);
        let database = BenchDatabase { admin_url: admin_url.to_owned(), name, url };
        database::run_migrations(&database.url).await.map_err(|e| format!("cannot migrate {}: {e}", database.name))?;
        Ok(database)
    }

    /// A new connection.
    pub async fn connect(&self) -> Result<AsyncPgConnection, String> {
        AsyncPgConnection::establish(&self.url).await.map_err(|e| format!("cannot connect to {}: {e}", self.name))
    }

    /// Drops the database (the server must be stopped).
    pub async fn drop_database(self) -> Result<(), String> {
        let mut admin = AsyncPgConnection::establish(&self.admin_url).await.map_err(|e| e.to_string())?;
        sql_query(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_identifier(&self.name)))
            .execute(&mut admin)
            .await
            .map_err(|e| format!("cannot drop {}: {e}", self.name))?;
        Ok(())
    }
}

#[derive(diesel::QueryableByName)]
struct Scalar {
    #[diesel(sql_type = Nullable<Text>)]
    value: Option<String>,
}

/// The one value `sql` selects, as an integer (NULL is 0).
pub async fn scalar(conn: &mut AsyncPgConnection, sql: &str) -> Result<i64, String> {
    let rows: Vec<Scalar> =
        sql_query(format!("SELECT ({sql})::text AS value")).load(conn).await.map_err(|e| format!("{sql}: {e}"))?;
    let text = rows.into_iter().next().and_then(|row| row.value).unwrap_or_else(|| "0".to_owned());
    text.parse::<f64>().map(|value| value as i64).map_err(|_| format!("{sql}: not a number: {text}"))
}

async fn execute(conn: &mut AsyncPgConnection, sql: &str) -> Result<usize, String> {
    sql_query(sql).execute(conn).await.map_err(|e| format!("{sql}: {e}"))
}

/// A driver who starts and stops sessions through the REST API.
#[derive(Debug, Clone)]
pub struct AppDriver {
    /// The user.
    pub user_id: i64,
    /// Bearer token.
    pub token: String,
}

/// The network the scenarios run on.
pub struct Fixtures {
    /// idTags of the RFID drivers, one per charger that charges (in order).
    pub rfid_tags: Vec<String>,
    /// Drivers using the app.
    pub app_drivers: Vec<AppDriver>,
}

#[derive(diesel::QueryableByName)]
struct UserId {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// Runs an `INSERT … RETURNING id`; answers the ID.
async fn returning_id(conn: &mut AsyncPgConnection, sql: &str) -> Result<i64, String> {
    let rows: Vec<UserId> = sql_query(sql).load(conn).await.map_err(|e| format!("{sql}: {e}"))?;
    rows.into_iter().next().map(|row| row.id).ok_or_else(|| format!("{sql}: no row"))
}

/// Registers `charge_point_ids` at one station of one owner (with `password_hash` as every
/// charger's password, if given), creates `rfid_drivers` drivers for cards and `app_drivers`
/// drivers with API tokens, and funds every wallet.
pub async fn seed(
    conn: &mut AsyncPgConnection,
    charge_point_ids: &[String],
    password_hash: Option<&str>,
    rfid_drivers: usize,
    app_drivers: usize,
) -> Result<Fixtures, String> {
    // One real Argon2 hash shared by every account: nobody signs in with a PIN here.
    let pin_hash = accounts::hash_pin("1234").map_err(|e| format!("cannot hash a PIN: {e}"))?;
    let owner = format!(
        "INSERT INTO users (username, phone, role, pin_hash, id_tag) \
         VALUES ('bench-owner', '+916900000001', 'owner', '{pin_hash}', 'BOWNER0001') RETURNING id"
    );
    let owner_id = returning_id(conn, &owner).await?;
    execute(conn, &format!("INSERT INTO wallets (user_id) VALUES ({owner_id})")).await?;
    let station = format!(
        "INSERT INTO stations (owner_id, name, address, price_per_kwh) \
         VALUES ({owner_id}, 'Bench Hub', 'Loopback Road', 18.50) RETURNING id"
    );
    let station_id = returning_id(conn, &station).await?;
    sql_query(
        "INSERT INTO chargers (charge_point_id, station_id, vendor, model, password_hash) \
         SELECT id, $2, 'Kilowatt', 'Simulator', $3 FROM unnest($1::text[]) AS id",
    )
    .bind::<Array<Text>, _>(charge_point_ids)
    .bind::<BigInt, _>(station_id)
    .bind::<Nullable<Text>, _>(password_hash)
    .execute(conn)
    .await
    .map_err(|e| format!("cannot register the chargers: {e}"))?;

    let drivers = |prefix: &str, tag: &str, phone: &str, count: usize| {
        format!(
            "INSERT INTO users (username, phone, role, pin_hash, id_tag) \
             SELECT '{prefix}' || n, '{phone}' || lpad(n::text, 8, '0'), 'driver', '{pin_hash}', \
                    '{tag}' || lpad(n::text, 8, '0') \
             FROM generate_series(1, {count}) AS n"
        )
    };
    execute(conn, &drivers("bench-rfid-", "BR", "+9170", rfid_drivers)).await?;
    execute(conn, &drivers("bench-app-", "BA", "+9171", app_drivers)).await?;
    // Funded as a recharge credits a wallet: the balance and its ledger entry together.
    execute(
        conn,
        &format!("INSERT INTO wallets (user_id, balance) SELECT id, {FUNDING} FROM users WHERE role = 'driver'"),
    )
    .await?;
    execute(
        conn,
        &format!(
            "INSERT INTO wallet_entries (user_id, amount, kind, description, reference_kind, reference_id, balance_after) \
             SELECT user_id, {FUNDING}, 'recharge', 'Recharge', 'manual', user_id, {FUNDING} FROM wallets \
             WHERE user_id <> {owner_id}"
        ),
    )
    .await?;

    let app_ids: Vec<UserId> = sql_query("SELECT id FROM users WHERE username LIKE 'bench-app-%' ORDER BY id")
        .load(conn)
        .await
        .map_err(|e| e.to_string())?;
    let mut app = Vec::with_capacity(app_ids.len());
    let mut values = String::new();
    for UserId { id } in app_ids {
        let (token, hash) = accounts::new_token();
        let hex: String = hash.iter().fold(String::with_capacity(64), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        });
        if !values.is_empty() {
            values.push(',');
        }
        let _ = write!(values, "({id}, '\\x{hex}'::bytea, 'api', now() + interval '30 days')");
        app.push(AppDriver { user_id: id, token });
    }
    if !values.is_empty() {
        execute(conn, &format!("INSERT INTO auth_tokens (user_id, token_hash, kind, expires_at) VALUES {values}"))
            .await?;
    }
    let rfid_tags = (1..=rfid_drivers).map(|n| format!("BR{n:08}")).collect();
    Ok(Fixtures { rfid_tags, app_drivers: app })
}

/// Sampled values stored (each `meter_readings` row holds one MeterValues' worth).
pub async fn meter_samples_stored(conn: &mut AsyncPgConnection) -> Result<i64, String> {
    scalar(conn, "SELECT coalesce(sum(json_array_length(samples)), 0)::bigint FROM meter_readings").await
}

/// PostgreSQL's write-ahead log and checkpoints so far, cluster-wide (`pg_stat_wal`,
/// `pg_stat_bgwriter`): a window's difference says what each reading cost the log and whether
/// a checkpoint fell in it (after one starts, the first change to each page logs the whole
/// page).
#[derive(Debug, Clone, Copy, Default, diesel::QueryableByName)]
pub struct WalActivity {
    /// WAL records written.
    #[diesel(sql_type = BigInt)]
    pub records: i64,
    /// Full-page images among them.
    #[diesel(sql_type = BigInt)]
    pub full_pages: i64,
    /// Bytes of WAL.
    #[diesel(sql_type = BigInt)]
    pub bytes: i64,
    /// Checkpoints started (requested or timed).
    #[diesel(sql_type = BigInt)]
    pub checkpoints: i64,
}

impl WalActivity {
    /// Reads the counters now.
    pub async fn now(conn: &mut AsyncPgConnection) -> Result<WalActivity, String> {
        let rows: Vec<WalActivity> = sql_query(
            "SELECT w.wal_records AS records, w.wal_fpi AS full_pages, w.wal_bytes::bigint AS bytes, \
               b.checkpoints_timed + b.checkpoints_req AS checkpoints \
             FROM pg_stat_wal w, pg_stat_bgwriter b",
        )
        .load(conn)
        .await
        .map_err(|e| format!("pg_stat_wal: {e}"))?;
        rows.into_iter().next().ok_or_else(|| "pg_stat_wal: no row".to_owned())
    }

    /// What was written between `earlier` and this reading, per unit of `work` (readings).
    pub fn since(&self, earlier: &WalActivity, work: u64) -> serde_json::Value {
        let per = |n: i64| if work == 0 { 0.0 } else { n as f64 / work as f64 };
        serde_json::json!({
            "checkpoints_started": self.checkpoints - earlier.checkpoints,
            "wal_bytes": self.bytes - earlier.bytes,
            "wal_bytes_per_message": per(self.bytes - earlier.bytes),
            "wal_records_per_message": per(self.records - earlier.records),
            "full_page_images_per_message": per(self.full_pages - earlier.full_pages),
        })
    }
}

/// Sessions not yet ended.
pub async fn open_sessions(conn: &mut AsyncPgConnection) -> Result<i64, String> {
    scalar(conn, "SELECT count(*) FROM charging_sessions WHERE status IN ('pending', 'active')").await
}

/// Waits until no session is open (the chargers' StopTransactions settled, unconfirmed starts
/// timed out); answers how many are still open after `timeout`.
pub async fn wait_sessions_closed(conn: &mut AsyncPgConnection, timeout: Duration) -> Result<i64, String> {
    let deadline = Instant::now() + timeout;
    loop {
        let open = open_sessions(conn).await?;
        if open == 0 || Instant::now() >= deadline {
            return Ok(open);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// What the billing checks found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Billing {
    /// Sessions created since the scenario began.
    pub sessions: i64,
    /// Of those, ended (completed, cancelled or failed).
    pub finished: i64,
    /// Of those, completed with a cost.
    pub billed: i64,
    /// Still pending or active.
    pub open: i64,
    /// Finished sessions whose ledger entries (the charging debit, and an adjustment when a
    /// late StopTransaction changed the final reading) do not add up to minus their cost on
    /// their driver's wallet, or that have more than one entry of a kind.
    pub misbilled: i64,
    /// Of the finished sessions, those settled in two steps: billed to the last reading when
    /// stopped while the charger was offline, then adjusted by its late StopTransaction.
    pub adjusted: i64,
    /// Charging debits of sessions that are not finished.
    pub debits_of_open_sessions: i64,
    /// Wallets whose balance is not the sum of their ledger.
    pub wallets_off: i64,
    /// Wallets checked.
    pub wallets: i64,
    /// Total debited for charging, INR.
    pub total_billed_inr: f64,
}

impl Billing {
    /// Every session finished and billed exactly once, every wallet equal to its ledger.
    pub fn is_correct(&self) -> bool {
        self.open == 0 && self.misbilled == 0 && self.debits_of_open_sessions == 0 && self.wallets_off == 0
    }
}

/// The highest session ID so far (sessions after it belong to the next scenario).
pub async fn last_session_id(conn: &mut AsyncPgConnection) -> Result<i64, String> {
    scalar(conn, "SELECT coalesce(max(id), 0) FROM charging_sessions").await
}

/// Checks the sessions after `after_session_id` and every wallet.
pub async fn check_billing(conn: &mut AsyncPgConnection, after_session_id: i64) -> Result<Billing, String> {
    let scope = format!("s.id > {after_session_id}");
    let count = async |conn: &mut AsyncPgConnection, condition: &str| {
        scalar(conn, &format!("SELECT count(*) FROM charging_sessions s WHERE {scope} AND {condition}")).await
    };
    let sessions = count(conn, "true").await?;
    let finished = count(conn, "s.status NOT IN ('pending', 'active')").await?;
    let billed = count(conn, "s.status = 'completed' AND s.cost > 0").await?;
    let open = count(conn, "s.status IN ('pending', 'active')").await?;
    // The unique index on (reference_kind, reference_id, kind) already allows one entry of a
    // kind per session; checked again here rather than trusted.
    let misbilled = count(
        conn,
        "s.status NOT IN ('pending', 'active') AND NOT EXISTS ( \
             SELECT 1 FROM (SELECT coalesce(sum(e.amount), 0) AS total, \
                                   count(*) = count(DISTINCT e.kind) AS once_per_kind, \
                                   coalesce(bool_and(e.user_id = s.user_id), true) AS same_user \
                            FROM wallet_entries e \
                            WHERE e.reference_kind = 'session' AND e.reference_id = s.id \
                              AND e.kind IN ('charging', 'adjustment', 'refund')) d \
             WHERE d.same_user AND d.once_per_kind \
               AND d.total = CASE WHEN s.user_id IS NULL THEN 0 ELSE -s.cost END)",
    )
    .await?;
    let adjusted = count(
        conn,
        "s.status NOT IN ('pending', 'active') AND EXISTS (SELECT 1 FROM wallet_entries e \
             WHERE e.reference_kind = 'session' AND e.reference_id = s.id AND e.kind IN ('adjustment', 'refund'))",
    )
    .await?;
    let debits_of_open_sessions = scalar(
        conn,
        "SELECT count(*) FROM wallet_entries e JOIN charging_sessions s ON s.id = e.reference_id \
         WHERE e.reference_kind = 'session' AND e.kind IN ('charging', 'adjustment', 'refund') \
           AND s.status IN ('pending', 'active')",
    )
    .await?;
    let wallets_off = scalar(
        conn,
        "SELECT count(*) FROM wallets w \
         WHERE w.balance <> (SELECT coalesce(sum(e.amount), 0) FROM wallet_entries e WHERE e.user_id = w.user_id)",
    )
    .await?;
    let wallets = scalar(conn, "SELECT count(*) FROM wallets").await?;
    let paise = scalar(
        conn,
        &format!(
            "SELECT -coalesce(sum(e.amount), 0) * 100 FROM wallet_entries e JOIN charging_sessions s \
             ON s.id = e.reference_id AND e.reference_kind = 'session' \
             WHERE e.kind IN ('charging', 'adjustment', 'refund') AND {scope}"
        ),
    )
    .await?;
    Ok(Billing {
        sessions,
        finished,
        billed,
        open,
        misbilled,
        adjusted,
        debits_of_open_sessions,
        wallets_off,
        wallets,
        total_billed_inr: paise as f64 / 100.0,
    })
}

#[derive(diesel::QueryableByName)]
struct SessionId {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// Sessions under way now.
pub async fn active_session_ids(conn: &mut AsyncPgConnection) -> Result<Vec<i64>, String> {
    let rows: Vec<SessionId> = sql_query("SELECT id FROM charging_sessions WHERE status = 'active' ORDER BY id")
        .load(conn)
        .await
        .map_err(|e| e.to_string())?;
    Ok(rows.into_iter().map(|row| row.id).collect())
}

/// Of `ids`, how many ended completed, and how many received meter values after `since_epoch_ms`.
pub async fn sessions_after_restart(
    conn: &mut AsyncPgConnection,
    ids: &[i64],
    since_epoch_ms: i64,
) -> Result<(i64, i64), String> {
    if ids.is_empty() {
        return Ok((0, 0));
    }
    let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    let completed =
        scalar(conn, &format!("SELECT count(*) FROM charging_sessions WHERE id IN ({list}) AND status = 'completed'"))
            .await?;
    let metered = scalar(
        conn,
        &format!(
            "SELECT count(DISTINCT session_id) FROM meter_readings WHERE session_id IN ({list}) \
             AND received_at > to_timestamp({since_epoch_ms} / 1000.0)"
        ),
    )
    .await?;
    Ok((completed, metered))
}

/// Chargers the server has marked online.
pub async fn online_chargers(conn: &mut AsyncPgConnection) -> Result<i64, String> {
    scalar(conn, "SELECT count(*) FROM chargers WHERE online").await
}
