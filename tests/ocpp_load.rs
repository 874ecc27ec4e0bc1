//! The OCPP hot path under load, end to end over real sockets and PostgreSQL (honest, not
//! timed): heartbeats write nothing until last-seen is flushed (and a graceful stop writes it),
//! meter values from many chargers are stored once each and answered only after commit, a
//! flooding charger is refused then disconnected while others are served, a charger that stops
//! reading is disconnected at the outgoing high-water mark, chargers beyond the connecting limit
//! wait for a place (freed by an answered first message or a few seconds), the socket taken over from the HTTP
//! dispatcher serves a frame sent with the handshake and refuses bad upgrades with a JSON
//! reason, and charger passwords are checked with Argon2 once, then by their stored keyed hash.

mod common;

use std::io::ErrorKind;
use std::time::Duration;

use chrono::{Duration as ChronoDuration, Utc};
use common::charge_point::{ChargePoint, ConnectError, ConnectOptions};
use common::sql::{count, exec};
use common::{TestApp, eventually};
use diesel::sql_types::BigInt;
use diesel::{QueryableByName, sql_query};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use futures_util::future::join_all;
use kilowatt_actors::registry::IsConnected;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const WAIT: Duration = Duration::from_secs(10);

/// Held by the tests that fill the connecting places: `ocpp_connecting_waiting` and
/// `ocpp_connecting_abandoned_total` are the process's, shared by every test server in it, so
/// those tests take turns.
static CONNECTING_PLACES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A server that lets one charger connect at a time (unknown chargers accepted), and this
/// test's turn with the connecting gauges.
async fn one_connecting_place() -> (TestApp, tokio::sync::MutexGuard<'static, ()>) {
    let turn = CONNECTING_PLACES.lock().await;
    let app =
        common::spawn_app_with(&[("KILOWATT_UNKNOWN_CHARGERS", "accept"), ("KILOWATT_OCPP_CONNECTING_LIMIT", "1")])
            .await;
    (app, turn)
}

/// An unlabelled gauge or counter from `/metrics` (0 when it has no sample yet).
async fn metric(app: &TestApp, name: &str) -> f64 {
    let metrics = app.get_text("/metrics").await.1;
    let prefix = format!("{name} ");
    metrics.lines().find_map(|line| line.strip_prefix(&prefix)?.parse::<f64>().ok()).unwrap_or(0.0)
}

fn options(app: &TestApp) -> ConnectOptions {
    ConnectOptions { clock: app.clock.clone(), ..ConnectOptions::default() }
}

/// Connects and boots chargers `{prefix}-00`… (accepted: the server registers unknown ones).
async fn fleet(app: &TestApp, prefix: &str, n: usize) -> Vec<ChargePoint> {
    join_all((0..n).map(|i| async move {
        let charger =
            ChargePoint::connect_with(&app.ocpp_url, &format!("{prefix}-{i:02}"), options(app)).await.expect("connect");
        assert_eq!(charger.boot().await.expect("boot")["status"], "Accepted");
        charger
    }))
    .await
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// `SELECT count(*) AS n …` on a connection the caller holds (not the server's).
async fn count_on(conn: &mut AsyncPgConnection, sql: &str) -> i64 {
    sql_query(sql).get_result::<Count>(conn).await.unwrap_or_else(|e| panic!("{sql}: {e}")).n
}

fn sql_time(at: chrono::DateTime<Utc>) -> String {
    at.to_rfc3339()
}

async fn connected(app: &TestApp, id: &str) -> bool {
    let registry = app.server.as_ref().expect("running").state.registry.clone();
    registry.send(IsConnected(id.into())).await.expect("registry answers")
}

#[actix_web::test]
async fn heartbeats_write_no_row_and_a_graceful_stop_writes_every_last_seen() {
    let mut app = common::spawn_app_with(&[
        ("KILOWATT_UNKNOWN_CHARGERS", "accept"),
        ("KILOWATT_LAST_SEEN_FLUSH_SECONDS", "300"),
        ("KILOWATT_DB_POOL_SIZE", "8"),
    ])
    .await;
    let chargers = fleet(&app, "HB", 20).await;
    app.clock.advance(ChronoDuration::hours(1));
    let heard_at = app.clock.now();
    join_all(chargers.iter().map(|charger| async move {
        for _ in 0..5 {
            assert!(charger.heartbeat().await.expect("answered")["currentTime"].is_string());
        }
    }))
    .await;
    // 100 heartbeats answered; not one of them moved a charger's last-seen.
    let since = sql_time(heard_at - ChronoDuration::seconds(1));
    assert_eq!(count(&app, &format!("SELECT count(*) FROM chargers WHERE last_seen_at >= '{since}'")).await, 0);
    // Nor are they in the message log: a DataTransfer sent after them is, once the log caught up.
    join_all(chargers.iter().map(|charger| charger.call("DataTransfer", json!({"vendorId": "marker"})))).await;
    let logged = async || {
        count(&app, "SELECT count(*) FROM ocpp_messages WHERE action = 'DataTransfer' AND direction = 'in'").await == 20
    };
    assert!(eventually(logged).await, "the marker frames never reached the message log");
    assert_eq!(count(&app, "SELECT count(*) FROM ocpp_messages WHERE action = 'Heartbeat'").await, 0);

    // A graceful stop closes every socket and records each charger offline with its last-seen.
    app.stop().await;
    assert_eq!(
        count(&app, &format!("SELECT count(*) FROM chargers WHERE NOT online AND last_seen_at >= '{since}'")).await,
        20
    );
}

/// A server that writes last-seen times every second.
async fn spawn_app_flushing_every_second() -> TestApp {
    common::spawn_app_with(&[
        ("KILOWATT_UNKNOWN_CHARGERS", "accept"),
        ("KILOWATT_LAST_SEEN_FLUSH_SECONDS", "1"),
        ("KILOWATT_DB_POOL_SIZE", "8"),
    ])
    .await
}

#[actix_web::test]
async fn last_seen_reaches_the_database_at_the_next_flush() {
    let app = spawn_app_flushing_every_second().await;
    let chargers = fleet(&app, "FL", 10).await;
    app.clock.advance(ChronoDuration::hours(1));
    let since = sql_time(app.clock.now() - ChronoDuration::seconds(1));
    join_all(chargers.iter().map(|charger| charger.heartbeat())).await;
    let flushed = async || {
        count(&app, &format!("SELECT count(*) FROM chargers WHERE online AND last_seen_at >= '{since}'")).await == 10
    };
    assert!(eventually(flushed).await, "last-seen did not reach the database within a few flushes");
}

#[actix_web::test]
async fn a_fleet_that_connected_together_writes_its_last_seen_times_spread_over_the_period() {
    let app = spawn_app_flushing_every_second().await;
    let last_seen = app.server.as_ref().expect("running").state.chargers.last_seen.clone();
    let chargers = fleet(&app, "SP", 40).await;
    let written_since = async |since: &str| {
        count(&app, &format!("SELECT count(*) FROM chargers WHERE online AND last_seen_at >= '{since}'")).await
    };
    // Half a period after they connected, about half of them are due: each charger's time is
    // written at its own moment in the period, not all in one flush.
    app.clock.advance(ChronoDuration::seconds(15));
    let since = sql_time(app.clock.now() - ChronoDuration::seconds(1));
    join_all(chargers.iter().map(|charger| charger.heartbeat())).await;
    // Once a flush has run, the chargers not due wait in memory for a later one.
    let flushed = async || {
        let written = written_since(&since).await;
        written > 0 && written + i64::try_from(last_seen.pending()).expect("a count") == 40
    };
    assert!(eventually(flushed).await, "no flush wrote the due chargers and kept the others");
    let written = written_since(&since).await;
    assert!((5..=35).contains(&written), "{written} of 40 written half a period after connecting");
    // A whole period later, every one of them is.
    app.clock.advance(ChronoDuration::seconds(30));
    let since = sql_time(app.clock.now() - ChronoDuration::seconds(1));
    join_all(chargers.iter().map(|charger| charger.heartbeat())).await;
    assert!(eventually(async || written_since(&since).await == 40).await, "not every last-seen time was written");
}

#[actix_web::test]
async fn meter_values_from_fifty_chargers_are_stored_once_each_and_answered_only_after_commit() {
    // Sessions' running totals written at every reading, so each batch moves every session.
    let app = common::spawn_app_with(&[
        ("KILOWATT_UNKNOWN_CHARGERS", "accept"),
        ("KILOWATT_DB_POOL_SIZE", "8"),
        ("KILOWATT_SESSION_TOTALS_SECONDS", "0"),
    ])
    .await;
    let chargers = fleet(&app, "MV", 50).await;
    let transactions = join_all(chargers.iter().map(|charger| async move {
        charger.start_transaction(1, "FLEET", 1_000, Utc::now()).await.expect("started").0
    }))
    .await;
    join_all(chargers.iter().zip(&transactions).map(|(charger, &tx)| {
        let app = &app;
        async move {
            // Another connection than the server's: what it sees is committed.
            let mut conn = app.db.connect().await;
            for reading in 1..=10 {
                let wh = 1_000 + reading * 100;
                let soc = u8::try_from(reading * 5).expect("percent");
                charger.meter_values(1, Some(tx), wh, Some(7_000 + reading), Some(soc)).await.expect("answered");
                let stored = count_on(
                    &mut conn,
                    &format!(
                        "SELECT count(*) AS n FROM meter_values WHERE transaction_id = {tx} \
                         AND measurand = 'Energy.Active.Import.Register' AND raw_value = '{wh}'"
                    ),
                )
                .await;
                assert_eq!(stored, 1, "reading {wh} of transaction {tx} answered before it was committed");
            }
        }
    }))
    .await;
    // Every sample exactly once (energy, power and SoC of 500 readings), every session moved.
    assert_eq!(count(&app, "SELECT count(*) FROM meter_values").await, 1_500);
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM (SELECT transaction_id, measurand, raw_value FROM meter_values \
             GROUP BY 1, 2, 3 HAVING count(*) > 1) AS duplicates"
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM charging_sessions WHERE status = 'active' AND energy_wh = 1000 \
             AND meter_last_wh = 2000 AND power_w = 7010 AND soc_percent = 50"
        )
        .await,
        50
    );
}

#[actix_web::test]
async fn a_flooding_charger_is_refused_then_disconnected_while_another_is_served() {
    let app = common::spawn_app_with(&[
        ("KILOWATT_UNKNOWN_CHARGERS", "accept"),
        ("KILOWATT_OCPP_RATE_LIMIT_PER_SECOND", "5"),
        ("KILOWATT_OCPP_RATE_LIMIT_BURST", "10"),
    ])
    .await;
    let flooder = ChargePoint::connect_with(&app.ocpp_url, "FLOODER", options(&app)).await.expect("connect");
    let calm = ChargePoint::connect_with(&app.ocpp_url, "CALM", options(&app)).await.expect("connect");
    assert_eq!(calm.boot().await.expect("boot")["status"], "Accepted");

    let flood = async {
        // 5/s with bursts of 10 allows ~10 of these; 3 × 5/s over 10 s (+ the burst) is 160.
        for burst in 0..20 {
            for i in 0..20 {
                flooder.send_raw(&format!(r#"[2,"f{burst}-{i}","Heartbeat",{{}}]"#)).await;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let steady = async {
        let mut answered = 0;
        for _ in 0..8 {
            if calm.heartbeat().await.is_ok() {
                answered += 1;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        answered
    };
    let ((), answered) = tokio::join!(flood, steady);
    assert_eq!(answered, 8, "the calm charger was not served during the flood");

    let (mut accepted, mut refused) = (0, 0);
    while let Some(frame) = flooder.next_unsolicited(Duration::from_secs(2)).await {
        match frame[0].as_i64() {
            Some(3) => accepted += 1,
            Some(4) => {
                assert_eq!(frame[2], "GenericError", "{frame}");
                assert!(frame[3].as_str().is_some_and(|d| d.contains("Rate limit")), "{frame}");
                refused += 1;
            }
            _ => panic!("unexpected frame {frame}"),
        }
    }
    assert!((5..=20).contains(&accepted), "{accepted} accepted");
    assert!(refused > 100, "only {refused} refused");
    assert_eq!(flooder.closed(WAIT).await, Some(Some(1008)), "the flooder was not disconnected for policy");
    assert!(!connected(&app, "FLOODER").await);
    // The other charger is still connected and served.
    assert!(calm.heartbeat().await.is_ok());
    assert!(connected(&app, "CALM").await);
    let metrics = app.get_text("/metrics").await.1;
    assert!(metrics.contains("ocpp_rate_limited_total{outcome=\"refused\"}"), "{metrics}");
    assert!(metrics.contains("ocpp_rate_limited_total{outcome=\"disconnected\"}"), "{metrics}");
}

/// A masked client text frame (RFC 6455 §5.2).
fn client_text_frame(text: &str) -> Vec<u8> {
    let payload = text.as_bytes();
    let mask = [0x12, 0x34, 0x56, 0x78];
    let mut frame = vec![0x81];
    match payload.len() {
        len @ 0..=125 => frame.push(0x80 | len as u8),
        len => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&u16::try_from(len).expect("short frame").to_be_bytes());
        }
    }
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

/// The WebSocket upgrade request a charger sends for `path`.
fn upgrade_request(addr: std::net::SocketAddr, path: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: ocpp1.6\r\n\r\n"
    )
}

fn ocpp_addr(app: &TestApp) -> std::net::SocketAddr {
    app.ocpp_url.trim_start_matches("ws://").parse().expect("address")
}

/// Reads an HTTP response head, byte by byte so nothing after it is consumed.
async fn read_head(stream: &mut tokio::net::TcpStream) -> String {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte).await.expect("handshake answered");
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// Reads one unmasked server text frame (failing if none comes).
async fn read_text_frame(stream: &mut tokio::net::TcpStream) -> String {
    tokio::time::timeout(WAIT, read_text_frame_now(stream)).await.expect("a frame from the server")
}

async fn read_text_frame_now(stream: &mut tokio::net::TcpStream) -> String {
    let mut header = [0u8; 2];
    stream.read_exact(&mut header).await.expect("frame header");
    assert_eq!(header[0], 0x81, "a final text frame");
    let len = match header[1] {
        126 => {
            let mut len = [0u8; 2];
            stream.read_exact(&mut len).await.expect("frame length");
            usize::from(u16::from_be_bytes(len))
        }
        len => usize::from(len),
    };
    let mut payload = vec![0u8; len];
    stream.read_exact(&mut payload).await.expect("frame payload");
    String::from_utf8(payload).expect("UTF-8 text")
}

/// A raw WebSocket client with a tiny receive buffer, after the handshake.
async fn raw_charger(app: &TestApp, id: &str) -> tokio::net::TcpStream {
    let addr = ocpp_addr(app);
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("small receive buffer");
    let mut stream = socket.connect(addr).await.expect("connect");
    stream.write_all(upgrade_request(addr, &format!("/{id}")).as_bytes()).await.expect("handshake sent");
    let head = read_head(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(head.to_ascii_lowercase().contains("sec-websocket-protocol: ocpp1.6"), "{head}");
    stream
}

#[actix_web::test]
async fn a_boot_sent_with_the_handshake_is_answered_on_the_taken_over_socket() {
    // A charger that does not wait for the 101: its first frame arrives in the same packet as
    // the upgrade request, so it is read by the HTTP dispatcher before the socket is taken over.
    let app = common::spawn_app_with(&[("KILOWATT_UNKNOWN_CHARGERS", "accept")]).await;
    let addr = ocpp_addr(&app);
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let boot = r#"[2,"boot-1","BootNotification",{"chargePointVendor":"Raw","chargePointModel":"Eager"}]"#;
    let mut packet = upgrade_request(addr, "/ocpp/EAGER").into_bytes();
    packet.extend(client_text_frame(boot));
    packet.extend(client_text_frame(r#"[2,"hb-1","Heartbeat",{}]"#));
    stream.write_all(&packet).await.expect("sent");
    let head = read_head(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let answer: serde_json::Value = serde_json::from_str(&read_text_frame(&mut stream).await).expect("JSON");
    assert_eq!(answer[1], "boot-1");
    assert_eq!(answer[2]["status"], "Accepted");
    let answer: serde_json::Value = serde_json::from_str(&read_text_frame(&mut stream).await).expect("JSON");
    assert_eq!(answer[1], "hb-1");
    assert!(answer[2]["currentTime"].is_string(), "{answer}");
    assert!(eventually(async || count(&app, "SELECT count(*) FROM chargers WHERE online").await == 1).await);
    // Closing the socket takes the charger offline.
    drop(stream);
    assert!(eventually(async || count(&app, "SELECT count(*) FROM chargers WHERE NOT online").await == 1).await);
    // The handshake is counted like any request.
    let metrics = app.get_text("/metrics").await.1;
    assert!(
        metrics.lines().any(|l| l.starts_with("http_requests_total{")
            && l.contains("route=\"/ocpp/{chargePointId}\"")
            && l.contains("status=\"101\"")),
        "{metrics}"
    );
}

#[actix_web::test]
async fn an_upgrade_the_ocpp_listener_refuses_gets_a_json_reason_and_a_closed_connection() {
    let app = common::spawn_app_with(&[("KILOWATT_UNKNOWN_CHARGERS", "reject")]).await;
    let addr = ocpp_addr(&app);
    for (path, status, code) in [
        ("/NOBODY", "404", "not_found"),
        ("/healthz", "404", "not_found"),
        ("/ocpp/a/b", "404", "not_found"),
        ("/has%20space", "400", "invalid_charge_point_id"),
    ] {
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        stream.write_all(upgrade_request(addr, path).as_bytes()).await.expect("sent");
        let mut response = Vec::new();
        tokio::time::timeout(WAIT, stream.read_to_end(&mut response)).await.expect("closed").expect("read");
        let response = String::from_utf8_lossy(&response);
        assert!(response.starts_with(&format!("HTTP/1.1 {status}")), "{path}: {response}");
        let body = response.split_once("\r\n\r\n").expect("head and body").1;
        let body: serde_json::Value = serde_json::from_str(body).expect("a JSON body");
        assert_eq!(body["error"]["code"], code, "{path}");
    }
    // Plain requests on the same listener are still routed.
    let health = app.client.get(format!("http://{addr}/healthz")).send().await.expect("health");
    assert_eq!(health.status(), 200);
}

#[actix_web::test]
async fn chargers_past_the_connecting_limit_wait_for_a_place() {
    let (app, _turn) = one_connecting_place().await;
    // A socket that never sends its handshake holds the only place (until the HTTP request
    // timeout): the next charger's handshake is not even read meanwhile.
    let silent = tokio::net::TcpStream::connect(ocpp_addr(&app)).await.expect("connect");
    let mut second = Box::pin(ChargePoint::connect_with(&app.ocpp_url, "TURN-2", options(&app)));
    assert!(
        tokio::time::timeout(Duration::from_secs(1), &mut second).await.is_err(),
        "a charger got in while another socket held the only place"
    );
    assert_eq!(metric(&app, "ocpp_connecting_waiting").await, 1.0, "the waiting charger is counted");
    // The place is freed with the socket, and the waiting charger gets it.
    drop(silent);
    let second = tokio::time::timeout(WAIT, second).await.expect("let in once the place was free").expect("connects");
    assert_eq!(metric(&app, "ocpp_connecting_waiting").await, 0.0);
    // A charger that says nothing after connecting gives its place back: the next one gets in
    // while it stays silent, and both boot.
    let third = ChargePoint::connect_with(&app.ocpp_url, "TURN-3", options(&app)).await.expect("third connects");
    assert_eq!(third.boot().await.expect("boot")["status"], "Accepted");
    assert_eq!(second.boot().await.expect("boot")["status"], "Accepted");
}

/// Asks `GET /healthz` on a kept-alive connection and reads the whole answer.
async fn ask_health(stream: &mut tokio::net::TcpStream, addr: std::net::SocketAddr) {
    stream.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes()).await.expect("asked");
    let head = tokio::time::timeout(WAIT, read_head(stream)).await.expect("health answered");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let length = head
        .lines()
        .find_map(|line| line.to_ascii_lowercase().strip_prefix("content-length:")?.trim().parse::<usize>().ok())
        .expect("a sized answer");
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await.expect("health body");
}

#[actix_web::test]
async fn a_health_check_kept_alive_on_the_ocpp_listener_holds_no_connecting_place() {
    let (app, _turn) = one_connecting_place().await;
    // A load balancer's health check on the OCPP port: one connection, kept alive, asking
    // again and again. Its connection was admitted like a charger's, with the only place.
    let addr = ocpp_addr(&app);
    let mut health = tokio::net::TcpStream::connect(addr).await.expect("connect");
    ask_health(&mut health, addr).await;
    let checking = async {
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            ask_health(&mut health, addr).await;
        }
    };
    // A charger still gets in and boots while the check goes on.
    let charger = async {
        let charger = ChargePoint::connect_with(&app.ocpp_url, "BEHIND-LB", options(&app)).await.expect("connects");
        assert_eq!(charger.boot().await.expect("boot")["status"], "Accepted");
    };
    tokio::select! {
        booted = tokio::time::timeout(WAIT, charger) => booted.expect("the charger was let in past the health check"),
        _ = checking => unreachable!("the health check never stops"),
    }
}

#[actix_web::test]
async fn chargers_on_the_http_listener_wait_for_the_same_connecting_places() {
    let (app, _turn) = one_connecting_place().await;
    // A silent socket on the OCPP listener holds the node's only place; a charger using the
    // HTTP listener's `/ocpp/{id}` waits for it like any other.
    let silent = tokio::net::TcpStream::connect(ocpp_addr(&app)).await.expect("connect");
    let http_ws_url = app.base_url.replacen("http://", "ws://", 1);
    let via_http = ConnectOptions { path_prefix: "/ocpp".into(), ..options(&app) };
    let mut charger = Box::pin(ChargePoint::connect_with(&http_ws_url, "VIA-HTTP", via_http));
    assert!(
        tokio::time::timeout(Duration::from_secs(1), &mut charger).await.is_err(),
        "a charger got in on the HTTP listener while another socket held the only place"
    );
    assert_eq!(metric(&app, "ocpp_connecting_waiting").await, 1.0, "the waiting charger is counted");
    drop(silent);
    let charger = tokio::time::timeout(WAIT, charger).await.expect("let in once the place was free").expect("connects");
    assert_eq!(charger.boot().await.expect("boot")["status"], "Accepted");
    assert_eq!(metric(&app, "ocpp_connecting_waiting").await, 0.0);
}

#[actix_web::test]
async fn a_charger_that_hangs_up_while_it_waits_for_a_place_is_dropped_unserved() {
    let (app, _turn) = one_connecting_place().await;
    // A silent socket holds the only place; a charger sends its handshake and waits behind it.
    let silent = tokio::net::TcpStream::connect(ocpp_addr(&app)).await.expect("connect");
    let addr = ocpp_addr(&app);
    let mut gone = tokio::net::TcpStream::connect(addr).await.expect("connect");
    gone.write_all(upgrade_request(addr, "/GONE-1").as_bytes()).await.expect("handshake sent");
    assert!(eventually(async || metric(&app, "ocpp_connecting_waiting").await == 1.0).await, "the charger waits");
    // It gives up, as a charger whose handshake timed out does, before the place comes free.
    drop(gone);
    assert!(
        eventually(async || metric(&app, "ocpp_connecting_abandoned_total").await == 1.0).await,
        "the hung-up socket is counted as abandoned"
    );
    assert_eq!(metric(&app, "ocpp_connecting_waiting").await, 0.0, "and no longer waits");
    // Its handshake was never served: no charger was registered or connected under its id.
    drop(silent);
    let next = ChargePoint::connect_with(&app.ocpp_url, "NEXT-1", options(&app)).await.expect("next connects");
    assert_eq!(next.boot().await.expect("boot")["status"], "Accepted");
    assert_eq!(count(&app, "SELECT count(*) FROM chargers WHERE charge_point_id = 'GONE-1'").await, 0);
    assert_eq!(count(&app, "SELECT count(*) FROM chargers WHERE charge_point_id = 'NEXT-1'").await, 1);
}

#[actix_web::test]
async fn a_charger_that_stops_reading_is_disconnected_at_the_high_water_mark() {
    let app = common::spawn_app_with(&[
        ("KILOWATT_UNKNOWN_CHARGERS", "accept"),
        ("KILOWATT_OCPP_OUTBOX_HIGH_WATER_BYTES", "16384"),
        ("KILOWATT_OCPP_RATE_LIMIT_PER_SECOND", "100000"),
        ("KILOWATT_OCPP_RATE_LIMIT_BURST", "1000000"),
    ])
    .await;
    let mut stream = raw_charger(&app, "DEAF").await;
    assert!(eventually(async || count(&app, "SELECT count(*) FROM chargers WHERE online").await == 1).await);
    // It sends and sends, and never reads what the server answers.
    let mut sent = 0;
    while connected(&app, "DEAF").await {
        let mut batch = Vec::new();
        for _ in 0..200 {
            sent += 1;
            batch.extend(client_text_frame(&format!(r#"[2,"d{sent}","Heartbeat",{{}}]"#)));
        }
        match stream.write_all(&batch).await {
            Ok(()) => {}
            // It was dropped between the check above and this write.
            Err(error) if matches!(error.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe) => break,
            Err(error) => panic!("the server stopped reading without hanging up: {error}"),
        }
        assert!(sent < 200_000, "still connected after {sent} unread answers");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Once over the mark the charger is dropped: unregistered, offline, counted.
    assert!(eventually(async || count(&app, "SELECT count(*) FROM chargers WHERE NOT online").await == 1).await);
    let metrics = app.get_text("/metrics").await.1;
    assert!(metrics.contains("ws_outbox_overflows_total{socket=\"charger\"}"), "{metrics}");
    // Reading now drains what the kernel and the connection still held, then the server closes
    // the connection (end of stream, or a reset).
    let mut unread = Vec::new();
    let closed = tokio::time::timeout(WAIT, stream.read_to_end(&mut unread)).await;
    assert!(closed.is_ok(), "the server never closed the connection ({} bytes read)", unread.len());
}

#[actix_web::test]
async fn a_long_charger_password_costs_one_argon2_check_then_its_keyed_hash_decides() {
    let secret = ("KILOWATT_SECRET_KEY", "a-32-character-or-longer-test-secret-key");
    let mut app = common::spawn_app_with(&[secret]).await;
    let password = "9f2c1e7a44b0d6e3a1c5f8b2";
    let hash = kilowatt_actors::accounts::hash_pin(password).expect("hash");
    exec(&app, &format!("INSERT INTO chargers (charge_point_id, password_hash) VALUES ('CP-KEY', '{hash}')")).await;
    let clock = app.clock.clone();
    let with = |p: &str| ConnectOptions { password: Some(p.into()), clock: clock.clone(), ..ConnectOptions::default() };

    let charger = ChargePoint::connect_with(&app.ocpp_url, "CP-KEY", with(password)).await.expect("right password");
    charger.close().await;
    let mac: String =
        common::sql::scalar(&app, "SELECT password_mac FROM chargers WHERE charge_point_id = 'CP-KEY'").await;
    assert!(mac.starts_with("v1$") && !mac.contains(password), "{mac}");
    assert!(!mac.contains("argon2"));

    // After a restart (same key), the stored MAC decides — right and wrong passwords alike.
    app.restart().await;
    let checks = |metrics: &str, method: &str| -> u64 {
        let prefix = format!("ocpp_password_checks_total{{method=\"{method}\"}} ");
        metrics.lines().find_map(|l| l.strip_prefix(prefix.as_str())).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
    };
    let before = app.get_text("/metrics").await.1;
    let charger = ChargePoint::connect_with(&app.ocpp_url, "CP-KEY", with(password)).await.expect("right password");
    assert_eq!(charger.boot().await.expect("boot")["status"], "Accepted");
    charger.close().await;
    let wrong = ChargePoint::connect_with(&app.ocpp_url, "CP-KEY", with("9f2c1e7a44b0d6e3a1c5f8b3")).await;
    assert!(matches!(wrong, Err(ConnectError::Http(401))), "{:?}", wrong.err());
    let after = app.get_text("/metrics").await.1;
    assert!(checks(&after, "mac") >= checks(&before, "mac") + 2, "{after}");

    // The owner sets a new password: the old MAC no longer vouches for the old password.
    let new_hash = kilowatt_actors::accounts::hash_pin("a-brand-new-machine-secret").expect("hash");
    exec(&app, &format!("UPDATE chargers SET password_hash = '{new_hash}' WHERE charge_point_id = 'CP-KEY'")).await;
    let stale = ChargePoint::connect_with(&app.ocpp_url, "CP-KEY", with(password)).await;
    assert!(matches!(stale, Err(ConnectError::Http(401))), "{:?}", stale.err());
    ChargePoint::connect_with(&app.ocpp_url, "CP-KEY", with("a-brand-new-machine-secret")).await.expect("new password");
}

#[actix_web::test]
async fn a_short_charger_password_is_never_stored_fast_but_is_checked_once_per_process() {
    let app = common::spawn_app().await;
    let hash = kilowatt_actors::accounts::hash_pin("correct horse").expect("hash");
    exec(&app, &format!("INSERT INTO chargers (charge_point_id, password_hash) VALUES ('CP-SHORT', '{hash}')")).await;
    let with = |p: &str| ConnectOptions { password: Some(p.into()), ..options(&app) };
    for _ in 0..3 {
        let charger = ChargePoint::connect_with(&app.ocpp_url, "CP-SHORT", with("correct horse")).await.expect("ok");
        charger.close().await;
    }
    let wrong = ChargePoint::connect_with(&app.ocpp_url, "CP-SHORT", with("correct horsf")).await;
    assert!(matches!(wrong, Err(ConnectError::Http(401))), "{:?}", wrong.err());
    assert_eq!(
        count(&app, "SELECT count(*) FROM chargers WHERE charge_point_id = 'CP-SHORT' AND password_mac IS NULL").await,
        1
    );
    let metrics = app.get_text("/metrics").await.1;
    assert!(metrics.contains("ocpp_password_checks_total{method=\"cache\"}"), "{metrics}");
}
