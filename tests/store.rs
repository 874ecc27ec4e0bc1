//! The store against real PostgreSQL: migrations run up, down and up again; the generated
//! `schema.rs` matches the migrated database; and the invariants the database itself must
//! enforce (one active session per connector and driver, no overlapping bookings, an
//! append-only ledger charged at most once per reference) hold; and a meter batch
//! stores every reading and neither moves nor answers progress for a session settled
//! elsewhere.

mod common;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::time::Duration;

use common::TestDatabase;
use diesel::sql_types::{Array, BigInt, Text};
use diesel::{QueryableByName, sql_query};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use kilowatt_actors::store::database;
use kilowatt_actors::store::meters::{MeterInput, MeterSample, MeterSessions, record_meter_batch, samples_json};
use kilowatt_actors::store::pool::{self, PoolSettings};
use kilowatt_actors::store::prepared::{KeepPrepared, plan_each_run};

#[derive(QueryableByName, Debug)]
struct Column {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
    #[diesel(sql_type = Text)]
    udt_name: String,
    #[diesel(sql_type = Text)]
    is_nullable: String,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

async fn user_tables(conn: &mut AsyncPgConnection) -> i64 {
    let rows: Vec<Count> = sql_query(
        "SELECT count(*) AS n FROM pg_tables WHERE schemaname = 'public' AND tablename <> '__diesel_schema_migrations'",
    )
    .load(conn)
    .await
    .expect("count tables");
    rows[0].n
}

/// The migrations in `migrations/`: every one must apply and revert.
fn migration_count() -> usize {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");
    std::fs::read_dir(dir)
        .expect("migrations")
        .filter(|e| e.as_ref().is_ok_and(|e| e.path().join("up.sql").is_file()))
        .count()
}

#[actix_web::test]
async fn migrations_run_up_down_and_up_again() {
    let db = TestDatabase::create_empty().await;
    let migrations = migration_count();
    assert!(migrations >= 8, "only {migrations} migrations found");
    let applied = database::run_migrations(&db.url).await.expect("up");
    assert_eq!(applied.len(), migrations);
    let mut conn = db.connect().await;
    let tables = user_tables(&mut conn).await;
    assert!(tables >= 16, "only {tables} tables");
    let reverted = database::revert_all_migrations(&db.url).await.expect("down");
    assert_eq!(reverted, migrations);
    assert_eq!(user_tables(&mut conn).await, 0, "down left tables behind");
    let applied = database::run_migrations(&db.url).await.expect("up again");
    assert_eq!(applied.len(), migrations);
    assert_eq!(user_tables(&mut conn).await, tables);
    // Running again applies nothing.
    assert!(database::run_migrations(&db.url).await.expect("idempotent").is_empty());
}

/// Reads `table! { name (pk) { column -> Type, … } }` blocks out of schema.rs.
fn schema_rs_columns() -> BTreeMap<(String, String), String> {
    let source = include_str!("../actors/src/store/schema.rs");
    let mut columns = BTreeMap::new();
    let mut table: Option<String> = None;
    for line in source.lines().map(str::trim) {
        if let Some(rest) = line.strip_suffix('{') {
            let rest = rest.trim();
            if let Some((name, _pk)) = rest.split_once(' ')
                && !name.contains("::")
            {
                table = Some(name.to_string());
            }
        } else if line.starts_with('}') {
            table = None;
        } else if let (Some(t), Some((column, ty))) = (&table, line.split_once("->")) {
            columns.insert((t.clone(), column.trim().to_string()), ty.trim().trim_end_matches(',').to_string());
        }
    }
    columns
}

fn diesel_type(udt: &str, nullable: bool) -> String {
    let base = match udt {
        "int2" => "Int2",
        "int4" => "Int4",
        "int8" => "Int8",
        "text" => "Text",
        "bool" => "Bool",
        "bytea" => "Bytea",
        "numeric" => "Numeric",
        "timestamptz" => "Timestamptz",
        "json" => "Json",
        other => panic!("no diesel mapping for {other}"),
    };
    if nullable { format!("Nullable<{base}>") } else { base.to_string() }
}

#[actix_web::test]
async fn generated_schema_matches_the_migrated_database() {
    let db = TestDatabase::create().await;
    let mut conn = db.connect().await;
    let rows: Vec<Column> = sql_query(
        // Tables only: `diesel print-schema` leaves views (`meter_values`) out.
        "SELECT c.table_name::text, c.column_name::text, c.udt_name::text, c.is_nullable::text \
         FROM information_schema.columns c JOIN information_schema.tables t USING (table_schema, table_name) \
         WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE' AND c.table_name <> '__diesel_schema_migrations'",
    )
    .load(&mut conn)
    .await
    .expect("columns");
    let database: BTreeMap<(String, String), String> = rows
        .into_iter()
        .map(|c| ((c.table_name, c.column_name), diesel_type(&c.udt_name, c.is_nullable == "YES")))
        .collect();
    assert_eq!(schema_rs_columns(), database, "schema.rs is stale: regenerate it with `diesel print-schema`");
}

async fn exec(conn: &mut AsyncPgConnection, sql: &str) -> Result<usize, diesel::result::Error> {
    sql_query(sql).execute(conn).await
}

async fn seed_network(conn: &mut AsyncPgConnection) {
    for sql in [
        "INSERT INTO users (id, username, phone, role, pin_hash, id_tag) VALUES \
            (1, 'owner1', '+919000000001', 'owner', 'x', 'TAG1'), \
            (2, 'driver2', '+919000000002', 'driver', 'x', 'TAG2'), \
            (3, 'driver3', '+919000000003', 'driver', 'x', 'TAG3')",
        "INSERT INTO wallets (user_id) VALUES (1), (2), (3)",
        "INSERT INTO stations (id, owner_id, name, price_per_kwh) VALUES (1, 1, 'Hub', 18.50)",
        "INSERT INTO chargers (id, charge_point_id, station_id) VALUES (1, 'CP-1', 1)",
        "INSERT INTO connectors (id, charger_id, connector_number) VALUES (1, 1, 1), (2, 1, 2)",
    ] {
        exec(conn, sql).await.expect("seed");
    }
}

#[actix_web::test]
async fn the_database_refuses_a_second_active_session_per_connector_and_per_driver() {
    let db = TestDatabase::create().await;
    let mut conn = db.connect().await;
    seed_network(&mut conn).await;
    let start = |user: i64, connector: i64| {
        format!(
            "INSERT INTO charging_sessions (user_id, charger_id, connector_id, id_tag, source, status, price_per_kwh) \
             VALUES ({user}, 1, {connector}, 'TAG{user}', 'app', 'active', 18.50)"
        )
    };
    exec(&mut conn, &start(2, 1)).await.expect("first session");
    let same_connector = exec(&mut conn, &start(3, 1)).await.expect_err("connector busy");
    assert!(same_connector.to_string().contains("charging_sessions_one_per_connector"), "{same_connector}");
    let same_driver = exec(&mut conn, &start(2, 2)).await.expect_err("driver busy");
    assert!(same_driver.to_string().contains("charging_sessions_one_per_driver"), "{same_driver}");
    // Once settled, the connector and the driver are free again.
    exec(&mut conn, "UPDATE charging_sessions SET status = 'completed', settled_at = now(), ended_at = now()")
        .await
        .expect("settle");
    exec(&mut conn, &start(3, 1)).await.expect("connector free again");
}

#[actix_web::test]
async fn the_database_refuses_overlapping_bookings_on_a_connector() {
    let db = TestDatabase::create().await;
    let mut conn = db.connect().await;
    seed_network(&mut conn).await;
    let book = |user: i64, connector: i64, from: &str, to: &str| {
        format!(
            "INSERT INTO bookings (user_id, charger_id, connector_id, start_at, end_at, fee) \
             VALUES ({user}, 1, {connector}, '2030-01-01 {from}+00', '2030-01-01 {to}+00', 50)"
        )
    };
    exec(&mut conn, &book(2, 1, "10:00", "11:00")).await.expect("first booking");
    let overlap = exec(&mut conn, &book(3, 1, "10:30", "11:30")).await.expect_err("overlap");
    assert!(overlap.to_string().contains("conflicting key value violates exclusion constraint"), "{overlap}");
    exec(&mut conn, &book(3, 1, "11:00", "12:00")).await.expect("back-to-back is fine");
    exec(&mut conn, &book(3, 2, "10:30", "11:30")).await.expect("another connector is fine");
    // A cancelled booking frees its slot.
    exec(&mut conn, "UPDATE bookings SET status = 'cancelled', cancelled_at = now() WHERE user_id = 2")
        .await
        .expect("cancel");
    exec(&mut conn, &book(2, 1, "10:00", "11:00")).await.expect("slot free after cancel");
}

#[actix_web::test]
async fn the_ledger_is_append_only_and_charges_a_reference_once() {
    let db = TestDatabase::create().await;
    let mut conn = db.connect().await;
    seed_network(&mut conn).await;
    let entry = "INSERT INTO wallet_entries (user_id, amount, kind, description, reference_kind, reference_id, balance_after) \
                 VALUES (2, 500, 'recharge', 'Recharge', 'payment', 7, 500)";
    exec(&mut conn, entry).await.expect("first credit");
    let replay = exec(&mut conn, entry).await.expect_err("replayed credit");
    assert!(replay.to_string().contains("wallet_entries_reference_key"), "{replay}");
    let update = exec(&mut conn, "UPDATE wallet_entries SET amount = 5000").await.expect_err("update");
    assert!(update.to_string().contains("append-only"), "{update}");
    let delete = exec(&mut conn, "DELETE FROM wallet_entries").await.expect_err("delete");
    assert!(delete.to_string().contains("append-only"), "{delete}");
    let wrong_sign = "INSERT INTO wallet_entries (user_id, amount, kind, description, reference_kind, reference_id, balance_after) \
                      VALUES (2, 100, 'charging', 'Charging session payment', 'session', 1, 600)";
    assert!(exec(&mut conn, wrong_sign).await.is_err(), "a charging debit must be negative");
}

#[derive(QueryableByName)]
struct Product {
    #[diesel(sql_type = BigInt)]
    product: i64,
}

/// Statements on this connection whose text is `sql`, as PostgreSQL lists them.
async fn kept_statements(conn: &mut AsyncPgConnection, sql: &str) -> i64 {
    let rows: Vec<Count> = sql_query("SELECT count(*) AS n FROM pg_prepared_statements WHERE statement = $1")
        .bind::<Text, _>(sql)
        .load(conn)
        .await
        .expect("list prepared statements");
    rows[0].n
}

#[actix_web::test]
async fn constant_raw_sql_is_prepared_once_per_connection_and_answers_each_run_with_its_own_binds() {
    const SQL: &str = "SELECT $1::bigint * 2 AS product";
    let db = TestDatabase::create_empty().await;
    let mut conn = db.connect().await;
    for n in [1_i64, 21, -4] {
        let row: Product =
            sql_query(SQL).bind::<BigInt, _>(n).prepared().get_result(&mut conn).await.expect("prepared query");
        assert_eq!(row.product, n * 2);
        assert_eq!(kept_statements(&mut conn, SQL).await, 1, "one statement serves every run");
    }
    // Without `.prepared()` diesel keeps nothing: each run is prepared again.
    const UNKEPT: &str = "SELECT $1::bigint * 3 AS product";
    let row: Product = sql_query(UNKEPT).bind::<BigInt, _>(5).get_result(&mut conn).await.expect("raw query");
    assert_eq!(row.product, 15);
    assert_eq!(kept_statements(&mut conn, UNKEPT).await, 0);
}

#[derive(QueryableByName)]
struct Plans {
    #[diesel(sql_type = BigInt)]
    generic_plans: i64,
    #[diesel(sql_type = BigInt)]
    custom_plans: i64,
}

/// How PostgreSQL has planned the runs of the statement kept with text `sql`.
async fn plans_of(conn: &mut AsyncPgConnection, sql: &str) -> Plans {
    sql_query("SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement = $1")
        .bind::<Text, _>(sql)
        .get_result(conn)
        .await
        .expect("the statement's plan counts")
}

const BATCH: &str = "SELECT count(*) AS n FROM unnest($1::bigint[]) AS v(id)";

/// Runs [`BATCH`] kept, over `size` elements, in a transaction (planned for this run if asked).
async fn count_in_batch(conn: &mut AsyncPgConnection, size: i64, each_run: bool) -> diesel::QueryResult<i64> {
    let ids: Vec<i64> = (0..size).collect();
    conn.transaction::<i64, diesel::result::Error, _>(async move |conn| {
        if each_run {
            plan_each_run(conn).await?;
        }
        let count: Count = sql_query(BATCH).bind::<Array<BigInt>, _>(ids).prepared().get_result(conn).await?;
        Ok(count.n)
    })
    .await
}

#[derive(QueryableByName)]
struct PlanLine {
    #[diesel(sql_type = Text)]
    #[diesel(column_name = "QUERY PLAN")]
    line: String,
}

#[derive(QueryableByName)]
struct StatementName {
    #[diesel(sql_type = Text)]
    name: String,
}

const PROBE: &str = "SELECT count(*) AS n FROM probes p JOIN unnest($1::bigint[]) AS v(id) ON p.id = v.id";

/// Runs [`PROBE`] kept, for the IDs `1..=size`.
async fn probe(conn: &mut AsyncPgConnection, size: i64) -> i64 {
    let ids: Vec<i64> = (1..=size).collect();
    let count: Count =
        sql_query(PROBE).bind::<Array<BigInt>, _>(ids).prepared().get_result(conn).await.expect("a probe");
    count.n
}

#[actix_web::test]
async fn a_batch_pool_connection_keeps_one_index_probing_plan_for_batches_of_every_size() {
    let db = TestDatabase::create_empty().await;
    let settings = PoolSettings { max_size: 1, timeout: Duration::from_secs(10) };
    let batch_pool = pool::build_batch_pool(&db.url, settings).expect("a batch pool");
    let mut conn = pool::connection(&batch_pool).await.expect("a batch connection");
    // The statement is first planned while its table is empty, as a new network's tables are.
    sql_query("CREATE TABLE probes (id bigint PRIMARY KEY, n bigint NOT NULL)")
        .execute(&mut conn)
        .await
        .expect("create the table");
    for size in 1..=8 {
        assert_eq!(probe(&mut conn, size).await, 0);
    }
    sql_query("INSERT INTO probes SELECT g, g FROM generate_series(1, 50000) AS g")
        .execute(&mut conn)
        .await
        .expect("fill the table");
    for size in 1..=8 {
        assert_eq!(probe(&mut conn, size).await, size);
    }
    let plans = plans_of(&mut conn, PROBE).await;
    assert_eq!((plans.generic_plans, plans.custom_plans), (16, 0), "one plan for every run, never planned again");
    // That plan probes the primary key for each ID, now that the table is big, rather than
    // reading the whole table as a plan made for an empty one could.
    let statement: StatementName = sql_query("SELECT name FROM pg_prepared_statements WHERE statement = $1")
        .bind::<Text, _>(PROBE)
        .get_result(&mut conn)
        .await
        .expect("the kept statement's name");
    let plan: Vec<PlanLine> = sql_query(format!("EXPLAIN EXECUTE {}('{{1,2,3}}')", statement.name))
        .load(&mut conn)
        .await
        .expect("the kept plan");
    let plan = plan.into_iter().map(|line| line.line).collect::<Vec<_>>().join("\n");
    assert!(plan.contains("Index") && plan.contains("probes_pkey"), "{plan}");
    assert!(!plan.contains("Seq Scan on probes") && !plan.contains("Hash"), "{plan}");
    // An ordinary pool's connection keeps PostgreSQL's defaults.
    let ordinary = pool::build_pool(&db.url, settings).expect("a pool");
    let mut conn = pool::connection(&ordinary).await.expect("a connection");
    let defaults: Vec<Count> = sql_query(
        "SELECT (current_setting('plan_cache_mode') = 'auto' AND current_setting('enable_seqscan') = 'on')::int::bigint AS n",
    )
    .load(&mut conn)
    .await
    .expect("the settings");
    assert_eq!(defaults[0].n, 1);
}

#[actix_web::test]
async fn a_kept_batch_statement_is_planned_for_each_run_in_a_transaction_that_asks_for_it() {
    let db = TestDatabase::create_empty().await;
    let mut conn = db.connect().await;
    for size in 1..=8 {
        assert_eq!(count_in_batch(&mut conn, size, true).await.expect("a planned batch"), size);
    }
    let plans = plans_of(&mut conn, BATCH).await;
    assert_eq!((plans.generic_plans, plans.custom_plans), (0, 8), "each run planned for its own arrays");
    // Without it, PostgreSQL may settle on one plan for every later run (after five custom ones).
    for size in 1..=8 {
        assert_eq!(count_in_batch(&mut conn, size, false).await.expect("a batch"), size);
    }
    let plans = plans_of(&mut conn, BATCH).await;
    assert!(plans.generic_plans > 0, "a generic plan was expected without it ({} custom)", plans.custom_plans);
    // And the setting ends with the transaction: a lookup outside it keeps its plan.
    let setting: Vec<Count> = sql_query("SELECT (current_setting('plan_cache_mode') = 'auto')::int::bigint AS n")
        .load(&mut conn)
        .await
        .expect("plan_cache_mode");
    assert_eq!(setting[0].n, 1);
}

/// One reading of transaction 42 on CP-1's connector 1 with the energy register at `register_wh`.
fn reading(register_wh: i64, sampled_at: chrono::DateTime<chrono::Utc>) -> MeterInput {
    let raw = register_wh.to_string();
    let sample = MeterSample {
        sampled_at: None,
        measurand: "Energy.Active.Import.Register",
        phase: None,
        unit: Some("Wh"),
        context: None,
        location: None,
        format: None,
        raw_value: &raw,
        value: Some(register_wh.into()),
    };
    let (samples, sample_count) = samples_json([sample]).expect("samples");
    MeterInput {
        charger_id: 1,
        connector_number: 1,
        transaction_id: Some(42),
        samples,
        sample_count,
        sampled_at,
        energy_register_wh: Some(register_wh),
        power_w: None,
        soc_percent: None,
    }
}

async fn session_energy(conn: &mut AsyncPgConnection) -> (i64, i64) {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = BigInt)]
        energy_wh: i64,
        #[diesel(sql_type = BigInt)]
        readings: i64,
    }
    let row: Row = sql_query(
        "SELECT s.energy_wh, (SELECT count(*) FROM meter_readings r WHERE r.session_id = s.id) AS readings \
         FROM charging_sessions s WHERE s.transaction_id = 42",
    )
    .get_result(conn)
    .await
    .expect("session");
    (row.energy_wh, row.readings)
}

#[actix_web::test]
async fn a_meter_batch_stores_every_reading_and_neither_moves_nor_answers_for_a_session_settled_elsewhere() {
    let db = TestDatabase::create().await;
    let mut conn = db.connect().await;
    seed_network(&mut conn).await;
    exec(
        &mut conn,
        "INSERT INTO charging_sessions (user_id, charger_id, connector_id, id_tag, source, status, price_per_kwh, \
           transaction_id, meter_start_wh, started_at) \
         VALUES (2, 1, 1, 'TAG2', 'charger', 'active', 18.50, 42, 1000, now())",
    )
    .await
    .expect("session");
    // The writer remembers the session from the first batch on.
    let known = RefCell::new(MeterSessions::default());
    let start = chrono::Utc::now();
    let totals_every = chrono::Duration::seconds(5);

    // The first reading that moves the meter writes the session's totals at once.
    let first = reading(3000, start);
    let answers = record_meter_batch(&mut conn, &[&first], &known, start, totals_every).await.expect("first batch");
    let progress = answers[0].clone().expect("progress of an active session");
    assert_eq!((progress.energy_wh, progress.cost), (2000, rust_decimal::Decimal::new(3700, 2)));
    assert_eq!(session_energy(&mut conn).await, (2000, 1));

    // The session is settled elsewhere (a driver's stop through the app, say) while the
    // writer still remembers it as active.
    exec(&mut conn, "UPDATE charging_sessions SET status = 'completed', settled_at = now(), ended_at = now()")
        .await
        .expect("settle");

    // A later reading, due to write the totals, is stored; the settled session is not moved
    // and the reading answers no progress.
    let later = start + totals_every * 2;
    let second = reading(4000, later);
    let answers = record_meter_batch(&mut conn, &[&second], &known, later, totals_every).await.expect("second batch");
    assert_eq!(answers, vec![None], "a settled session answered progress");
    assert_eq!(session_energy(&mut conn).await, (2000, 2));
}
