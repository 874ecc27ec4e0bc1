//! The test harness: every test gets its own PostgreSQL database, cloned from a template
//! migrated once per migration set, and a real Kilowatt server on port 0 that the test talks
//! to over real HTTP and WebSocket sockets. Databases are dropped when the test ends.

#![allow(dead_code, missing_docs)]

pub mod browser;
pub mod charge_point;
pub mod db;
pub mod phonepe;
pub mod process;
pub mod proxy;
pub mod sms;
pub mod smtp;
pub mod sql;

use std::collections::HashMap;
use std::time::Duration;

use chrono::Utc;
use kilowatt::config::Config;
use kilowatt::server::{self, RunningServer};
use kilowatt_actors::clock::Clock;
use serde_json::Value;

pub use db::TestDatabase;

/// A running server with its own database.
pub struct TestApp {
    pub server: Option<RunningServer>,
    pub db: TestDatabase,
    pub clock: Clock,
    pub base_url: String,
    pub ocpp_url: String,
    pub client: awc::Client,
    vars: HashMap<String, String>,
}

/// Settings every test server uses; a test can override any of them.
fn base_vars(database_url: &str) -> HashMap<String, String> {
    [
        ("KILOWATT_HTTP_ADDR", "127.0.0.1:0"),
        ("KILOWATT_OCPP_ADDR", "127.0.0.1:0"),
        ("DATABASE_URL", database_url),
        ("KILOWATT_WORKERS", "1"),
        ("KILOWATT_DB_POOL_SIZE", "4"),
        ("KILOWATT_SHUTDOWN_TIMEOUT_SECONDS", "5"),
        ("KILOWATT_LOG", "warn"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Starts a server on a fresh database with the default test settings.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// Starts a server on a fresh database, with extra or overriding settings.
pub async fn spawn_app_with(overrides: &[(&str, &str)]) -> TestApp {
    let db = TestDatabase::create().await;
    let mut vars = base_vars(&db.url);
    for (k, v) in overrides {
        vars.insert(k.to_string(), v.to_string());
    }
    let clock = Clock::manual(Utc::now());
    let mut app = TestApp {
        server: None,
        db,
        clock,
        base_url: String::new(),
        ocpp_url: String::new(),
        client: awc::Client::builder().timeout(Duration::from_secs(30)).finish(),
        vars,
    };
    app.start().await;
    app
}

impl TestApp {
    fn config(&self) -> Config {
        Config::from_sources(None, self.vars.clone()).expect("test configuration is valid")
    }

    /// Starts (or restarts) the server on the same database and clock.
    pub async fn start(&mut self) {
        kilowatt::telemetry::init(&self.vars["KILOWATT_LOG"], kilowatt::config::LogFormat::Text);
        let running = server::start(self.config(), self.clock.clone()).await.expect("server starts");
        self.base_url = format!("http://{}", running.http_addr);
        self.ocpp_url = format!("ws://{}", running.ocpp_addr);
        self.server = Some(running);
    }

    /// Stops the server gracefully.
    pub async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.stop().await;
        }
    }

    /// Stops and starts again on the same database, as after a restart of Kilowatt.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.start().await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    /// GET, answering the status and the body parsed as JSON (Null when not JSON).
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let mut response = self.client.get(self.url(path)).send().await.expect("request sent");
        let body = response.body().limit(16 * 1024 * 1024).await.expect("body read");
        (response.status().as_u16(), serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    /// GET, answering the status and the body as text.
    pub async fn get_text(&self, path: &str) -> (u16, String) {
        let mut response = self.client.get(self.url(path)).send().await.expect("request sent");
        let body = response.body().limit(16 * 1024 * 1024).await.expect("body read");
        (response.status().as_u16(), String::from_utf8_lossy(&body).into_owned())
    }

    /// POST a JSON body.
    pub async fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        let mut response = self.client.post(self.url(path)).send_json(body).await.expect("request sent");
        let body = response.body().limit(16 * 1024 * 1024).await.expect("body read");
        (response.status().as_u16(), serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    /// POST raw bytes with a content type.
    pub async fn post_raw(&self, path: &str, content_type: &str, body: &'static str) -> (u16, Value) {
        let mut response = self
            .client
            .post(self.url(path))
            .insert_header(("content-type", content_type))
            .send_body(body)
            .await
            .expect("request sent");
        let body = response.body().await.expect("body read");
        (response.status().as_u16(), serde_json::from_slice(&body).unwrap_or(Value::Null))
    }
}

/// A signed-in user, as a test holds it.
#[derive(Debug, Clone)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub token: String,
    pub id_tag: String,
}

impl TestApp {
    /// Any request with an optional bearer token and JSON body; answers status and JSON.
    pub async fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<&Value>) -> (u16, Value) {
        let method = awc::http::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let mut response = match body {
            Some(body) => request.send_json(body).await,
            None => request.send().await,
        }
        .expect("request sent");
        let bytes = response.body().limit(16 * 1024 * 1024).await.expect("body read");
        (response.status().as_u16(), serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    /// Registers a user through the API (`role`: driver or owner) with PIN 1234.
    pub async fn register(&self, username: &str, role: &str) -> User {
        let phone = format!("9{:09}", rand::random::<u32>() % 1_000_000_000);
        let body = serde_json::json!({ "username": username, "phone": phone, "pin": "1234", "role": role });
        let (status, body) = self.post_json("/api/auth/register", &body).await;
        assert_eq!(status, 201, "register {username}: {body}");
        let data = &body["data"];
        User {
            id: data["user"]["id"].as_i64().expect("user id"),
            username: username.to_owned(),
            token: data["token"].as_str().expect("token").to_owned(),
            id_tag: data["user"]["idTag"].as_str().expect("idTag").to_owned(),
        }
    }

    /// Registers a driver.
    pub async fn driver(&self, username: &str) -> User {
        self.register(username, "driver").await
    }

    /// Registers a station owner.
    pub async fn owner(&self, username: &str) -> User {
        self.register(username, "owner").await
    }

    /// A station of `owner` called `name`, at ₹18.50/kWh on MG Road, with the charger `cp`
    /// registered to it (its connectors come with its first StatusNotifications); answers the
    /// station ID.
    pub async fn station_with_charger(&self, owner: &User, name: &str, cp: &str) -> i64 {
        let id = owner.id;
        sql::exec(
            self,
            &format!(
                "INSERT INTO stations (owner_id, name, address, price_per_kwh) VALUES ({id}, '{name}', 'MG Road', 18.50)"
            ),
        )
        .await;
        sql::exec(
            self,
            &format!("INSERT INTO chargers (charge_point_id, station_id) SELECT '{cp}', max(id) FROM stations"),
        )
        .await;
        sql::scalar(self, "SELECT max(id) FROM stations").await
    }

    /// Connects the test charge point `cp` on the app's clock, boots it (Accepted) and reports
    /// connectors 1 to `connectors` Available.
    pub async fn booted_charger(&self, cp: &str, connectors: u32) -> charge_point::ChargePoint {
        let options = charge_point::ConnectOptions { clock: self.clock.clone(), ..Default::default() };
        let charger = charge_point::ChargePoint::connect_with(&self.ocpp_url, cp, options).await.expect("connects");
        assert_eq!(charger.boot().await.expect("boot")["status"], "Accepted");
        for connector in 1..=connectors {
            charger.status(connector, "Available", "NoError").await.expect("status");
        }
        charger
    }
}

/// Polls `check` every 25 ms for up to 5 s; answers whether it came true (never a fixed sleep).
pub async fn eventually(mut check: impl AsyncFnMut() -> bool) -> bool {
    for _ in 0..200 {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    false
}

impl TestApp {
    /// Credits a wallet with a ledger entry, as a recharge would (balance stays the ledger's sum).
    pub async fn fund(&self, user: &User, amount: i64) {
        if amount == 0 {
            return;
        }
        let id = user.id;
        sql::exec(self, &format!("UPDATE wallets SET balance = balance + {amount} WHERE user_id = {id}")).await;
        sql::exec(
            self,
            &format!(
                "INSERT INTO wallet_entries (user_id, amount, kind, description, reference_kind, reference_id, balance_after) \
                 SELECT {id}, {amount}, 'recharge', 'Recharge', 'manual', (SELECT count(*) FROM wallet_entries) + 1, balance \
                 FROM wallets WHERE user_id = {id}"
            ),
        )
        .await;
    }
}

/// Asserts the standard error envelope and answers its code.
pub fn error_code(body: &Value) -> &str {
    assert_eq!(body["success"], Value::Bool(false), "not an error envelope: {body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "no message: {body}");
    body["error"]["code"].as_str().expect("error code")
}
