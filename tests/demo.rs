//! `kilowatt demo` as a newcomer runs it: one command creates the database, starts the server,
//! makes the demo owner and driver (wallet funded) and two stations with prices, connects
//! simulated chargers over real sockets and prints where to look and how to log in. The logins
//! it prints work, the owner sees the chargers online at the two stations, drivers' sessions
//! start on their own, and SIGTERM stops everything cleanly with the simulator's summary.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::db::TestDatabase;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;

/// A port nobody is listening on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("address").port()
}

async fn call(client: &awc::Client, method: &str, url: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
    let method = awc::http::Method::from_bytes(method.as_bytes()).expect("method");
    let mut request = client.request(method, url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let mut response = match body {
        Some(body) => request.send_json(&body).await,
        None => request.send().await,
    }
    .expect("request sent");
    let body: Value = response.json().await.unwrap_or(Value::Null);
    (response.status().as_u16(), body)
}

/// Signs in with a login the banner printed; answers the bearer token.
async fn sign_in(client: &awc::Client, base: &str, login: &str, pin: &str) -> String {
    let (status, body) =
        call(client, "POST", &format!("{base}/api/auth/login"), None, Some(json!({ "login": login, "pin": pin })))
            .await;
    assert_eq!(status, 200, "{login} signs in: {body}");
    body["data"]["token"].as_str().expect("token").to_owned()
}

/// Polls `check` every 100 ms for up to `limit`.
async fn within(limit: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    check().await
}

#[actix_web::test]
async fn the_demo_runs_a_live_network_whose_printed_logins_work() {
    let db = TestDatabase::not_yet_created();
    let (http, ocpp) = (free_port(), free_port());
    let mut command = Command::new(env!("CARGO_BIN_EXE_kilowatt"));
    for (key, _) in std::env::vars() {
        if key.starts_with("KILOWATT_") || key == "DATABASE_URL" || key == "REDIS_URL" {
            command.env_remove(key);
        }
    }
    let mut demo = command
        .env("DATABASE_URL", &db.url)
        .env("KILOWATT_HTTP_ADDR", format!("127.0.0.1:{http}"))
        .env("KILOWATT_OCPP_ADDR", format!("127.0.0.1:{ocpp}"))
        .env("KILOWATT_LOG", "warn")
        .args(["demo", "--chargers", "10"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("run kilowatt demo");

    // The banner: where to look and how to log in.
    let mut stdout = BufReader::new(demo.stdout.take().expect("stdout"));
    let mut banner = String::new();
    let read_banner = async {
        let mut line = String::new();
        while stdout.read_line(&mut line).await.expect("read stdout") > 0 {
            banner.push_str(&line);
            if line.contains("Ctrl-C stops") {
                return true;
            }
            line.clear();
        }
        false
    };
    let shown = tokio::time::timeout(Duration::from_secs(60), read_banner).await;
    assert!(matches!(shown, Ok(true)), "no banner:\n{banner}");
    let base = format!("http://localhost:{http}");
    assert!(banner.contains(&format!("web UI and API   {base}")), "{banner}");
    assert!(banner.contains(&format!("ws://127.0.0.1:{ocpp}/{{chargePointId}}")), "{banner}");
    assert!(banner.contains("DEMO-001 … DEMO-010"), "{banner}");
    assert!(banner.contains("demo-owner / PIN 1234") && banner.contains("demo-driver / PIN 1234"), "{banner}");

    // The printed logins work; the driver's wallet is funded.
    let client = awc::Client::builder().timeout(Duration::from_secs(10)).finish();
    let base = format!("http://127.0.0.1:{http}");
    let driver = sign_in(&client, &base, "demo-driver", "1234").await;
    let (status, wallet) = call(&client, "GET", &format!("{base}/api/wallet"), Some(&driver), None).await;
    assert_eq!(status, 200, "{wallet}");
    let balance: Decimal = wallet["data"]["balance"].as_str().and_then(|b| b.parse().ok()).expect("balance");
    assert!(balance >= Decimal::from(1000), "a funded wallet: {wallet}");

    // The owner has the two stations with their prices, and every demo charger comes online there.
    let owner = sign_in(&client, &base, "demo-owner", "1234").await;
    let (status, stations) = call(&client, "GET", &format!("{base}/api/owner/stations"), Some(&owner), None).await;
    assert_eq!(status, 200, "{stations}");
    let mut priced: Vec<(String, String)> = stations["data"]
        .as_array()
        .expect("stations")
        .iter()
        .map(|s| (s["name"].as_str().unwrap_or("").to_owned(), s["pricePerKwh"].as_str().unwrap_or("").to_owned()))
        .collect();
    priced.sort();
    assert_eq!(
        priced,
        vec![("Indiranagar Fast".to_owned(), "22.00".to_owned()), ("Koramangala Hub".to_owned(), "18.50".to_owned())]
    );
    let chargers_online = async || {
        let (_, chargers) = call(&client, "GET", &format!("{base}/api/owner/chargers"), Some(&owner), None).await;
        let chargers = chargers["data"].as_array().cloned().unwrap_or_default();
        chargers.len() == 10 && chargers.iter().all(|c| c["online"] == true && c["station"].is_object())
    };
    assert!(
        within(Duration::from_secs(30), chargers_online).await,
        "the ten demo chargers came online at the demo stations"
    );
    // The fleet's drivers start charging on their own: three chargers in ten run sessions in the
    // simulator's mixed scenario, the first 15 to 45 s after their boot.
    let sessions = async || {
        let (_, active) = call(&client, "GET", &format!("{base}/api/owner/sessions/active"), Some(&owner), None).await;
        active["data"]["count"].as_u64().unwrap_or(0) > 0
    };
    assert!(within(Duration::from_secs(90), sessions).await, "sessions under way at the demo stations");

    // SIGTERM stops the chargers and the server; the simulator's summary is the last word.
    let pid = demo.id().expect("pid");
    let killed = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().expect("kill");
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(60), demo.wait()).await.expect("stops").expect("status");
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).await.expect("the rest of stdout");
    assert!(status.success(), "exit {status}:\n{rest}");
    assert!(!rest.trim().is_empty(), "a summary after the stop");
    assert!(client.get(format!("{base}/healthz")).send().await.is_err(), "the server stopped too");
}
