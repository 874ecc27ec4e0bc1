//! The foundation end to end: the server starts on an empty database, answers health,
//! readiness and metrics, speaks one JSON error shape, survives the database going away and
//! coming back, stops gracefully, and the CLI migrates, creates users and refuses bad config.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{TestDatabase, error_code, proxy::Proxy, spawn_app, spawn_app_with};
use diesel::sql_types::{BigInt, Text};
use diesel::{QueryableByName, sql_query};
use diesel_async::RunQueryDsl;
use kilowatt_actors::store::database::DatabaseUrl;

#[actix_web::test]
async fn health_and_readiness_answer_on_a_fresh_database() {
    let app = spawn_app().await;
    let (status, body) = app.get("/healthz").await;
    assert_eq!(status, 200);
    assert_eq!(body["success"], true);
    assert_eq!(body["data"]["status"], "ok");
    let (status, body) = app.get("/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["database"], "ok");
}

#[actix_web::test]
async fn readiness_follows_the_database_without_a_restart() {
    let db = TestDatabase::create().await;
    let target: std::net::SocketAddr = "127.0.0.1:5432".parse().expect("addr");
    let proxy = Proxy::start(target).await;
    let parsed = DatabaseUrl::parse(&db.url).expect("url");
    let via_proxy = parsed.server.replace("127.0.0.1:5432", &proxy.addr.to_string()) + "/" + &parsed.name;
    let app = spawn_app_with(&[("DATABASE_URL", &via_proxy), ("KILOWATT_DB_TIMEOUT_MS", "1000")]).await;

    assert_eq!(app.get("/readyz").await.0, 200);
    proxy.down();
    let (status, body) = app.get("/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(error_code(&body), "service_unavailable");
    // Liveness does not depend on the database.
    assert_eq!(app.get("/healthz").await.0, 200);
    proxy.up();
    let mut recovered = false;
    for _ in 0..50 {
        if app.get("/readyz").await.0 == 200 {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "readyz did not return to 200 after the database came back");
}

#[actix_web::test]
async fn every_error_uses_the_json_envelope() {
    let app = spawn_app().await;
    let (status, body) = app.get("/api/no-such-thing").await;
    assert_eq!(status, 404);
    assert_eq!(error_code(&body), "not_found");
    let (status, body) = app.post_raw("/api/no-such-thing", "application/json", "{not json").await;
    assert_eq!(status, 404);
    assert_eq!(error_code(&body), "not_found");
}

#[actix_web::test]
async fn metrics_expose_http_process_and_pool_figures() {
    let app = spawn_app().await;
    assert_eq!(app.get("/healthz").await.0, 200);
    assert_eq!(app.get("/api/missing").await.0, 404);
    let (status, text) = app.get_text("/metrics").await;
    assert_eq!(status, 200);
    assert!(
        text.lines().any(|l| l.starts_with("http_requests_total{")
            && l.contains("route=\"/healthz\"")
            && l.contains("status=\"200\"")),
        "{text}"
    );
    assert!(text.contains("status=\"404\""), "{text}");
    assert!(text.contains("http_request_duration_seconds_bucket{"), "{text}");
    for name in
        ["process_resident_memory_bytes", "process_cpu_seconds_total", "process_open_fds", "db_pool_connections_max"]
    {
        assert!(text.lines().any(|l| l.starts_with(name)), "{name} missing from:\n{text}");
    }
}

#[actix_web::test]
async fn graceful_stop_closes_the_listeners_and_a_restart_reuses_the_database() {
    let mut app = spawn_app().await;
    let old_url = app.base_url.clone();
    app.stop().await;
    let refused = app.client.get(format!("{old_url}/healthz")).send().await;
    assert!(refused.is_err(), "server still answering after stop");
    app.start().await;
    assert_eq!(app.get("/readyz").await.0, 200);
}

fn kilowatt() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kilowatt"));
    // Only what the test sets reaches the binary's configuration.
    for (key, _) in std::env::vars() {
        if key.starts_with("KILOWATT_") || key == "DATABASE_URL" || key == "REDIS_URL" {
            command.env_remove(key);
        }
    }
    command.env("KILOWATT_LOG", "warn");
    command
}

#[test]
fn a_bad_configuration_value_exits_2_naming_the_variable() {
    for (variable, value, expected) in [
        ("KILOWATT_HTTP_ADDR", "localhost", "HOST:PORT"),
        ("KILOWATT_GRACE_PERIOD_MINUTES", "soon", "whole number of minutes"),
        ("KILOWATT_UNKNOWN_CHARGERS", "maybe", "accept, pending, reject"),
        ("DATABASE_URL", "mysql://root@localhost/kw", "postgres://"),
    ] {
        let output = kilowatt().env(variable, value).arg("migrate").output().expect("run kilowatt");
        assert_eq!(output.status.code(), Some(2), "{variable}={value}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(variable) && stderr.contains(expected), "{variable}: {stderr}");
    }
}

#[derive(QueryableByName)]
struct UserRow {
    #[diesel(sql_type = Text)]
    username: String,
    #[diesel(sql_type = Text)]
    phone: String,
    #[diesel(sql_type = Text)]
    role: String,
    #[diesel(sql_type = BigInt)]
    wallets: i64,
}

#[actix_web::test]
async fn migrate_creates_a_missing_database_and_user_create_makes_an_admin() {
    let db = TestDatabase::not_yet_created();
    let output = kilowatt().env("DATABASE_URL", &db.url).arg("migrate").output().expect("run");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));

    let create = |username: &str, phone: &str| {
        kilowatt()
            .env("DATABASE_URL", &db.url)
            .args(["user", "create", "--username", username, "--phone", phone, "--pin", "2468", "--role", "admin"])
            .output()
            .expect("run")
    };
    let output = create("operator", "98765 43210");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let mut conn = db.connect().await;
    let rows: Vec<UserRow> = sql_query(
        "SELECT username, phone, role, (SELECT count(*) FROM wallets w WHERE w.user_id = u.id) AS wallets FROM users u",
    )
    .load(&mut conn)
    .await
    .expect("query");
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].username.as_str(), rows[0].phone.as_str(), rows[0].role.as_str()),
        ("operator", "+919876543210", "admin")
    );
    assert_eq!(rows[0].wallets, 1);

    // Same phone again: refused with a clear message, nothing added.
    let output = create("someone", "+919876543210");
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("phone is already taken"));
    // A bad PIN is refused before touching the database.
    let output = kilowatt()
        .env("DATABASE_URL", &db.url)
        .args(["user", "create", "--username", "x_driver", "--phone", "9123456789", "--pin", "12"])
        .output()
        .expect("run");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("pin"));
    let count: Vec<UserRow> = sql_query("SELECT username, phone, role, 0::bigint AS wallets FROM users")
        .load(&mut conn)
        .await
        .expect("query");
    assert_eq!(count.len(), 1);
}
