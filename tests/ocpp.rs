//! OCPP 1.6J end to end: real chargers (the in-repo test charge point) over real WebSockets
//! against the real server and PostgreSQL. Handshake rules, every message from the charger,
//! commands to it, every CALLERROR path, replacement, offline and back, and 500 at once.

mod common;

use std::time::Duration;

use chrono::{Duration as ChronoDuration, Utc};
use common::charge_point::{ChargePoint, ConnectError, ConnectOptions, Reply};
use common::sql::{count, exec, money};
use common::{TestApp, eventually};
use kilowatt_actors::ocpp::{CentralSystemRequest, ErrorCode};
use kilowatt_actors::registry::CommandCharger;
use rust_decimal::Decimal;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(10);

/// An owner with a station (price 18.50/kWh), a registered charger `cp`, and a driver with
/// idTag DRIVER1 and 1000 INR in the wallet.
async fn seed(app: &TestApp, cp: &str, password: Option<&str>) {
    let hash = password
        .map(|p| format!("'{}'", kilowatt_actors::accounts::hash_pin(p).expect("hash")))
        .unwrap_or("NULL".into());
    for sql in [
        "INSERT INTO users (id, username, phone, role, pin_hash, id_tag) VALUES \
           (1, 'owner1', '+919000000001', 'owner', 'x', 'OWNER1'), (2, 'driver1', '+919000000002', 'driver', 'x', 'DRIVER1') \
           ON CONFLICT DO NOTHING",
        "INSERT INTO wallets (user_id, balance) VALUES (1, 0), (2, 1000) ON CONFLICT DO NOTHING",
        "INSERT INTO wallet_entries (user_id, amount, kind, description, reference_kind, reference_id, balance_after) \
           VALUES (2, 1000, 'recharge', 'Recharge', 'payment', 1, 1000) ON CONFLICT DO NOTHING",
        "INSERT INTO stations (id, owner_id, name, price_per_kwh) VALUES (1, 1, 'Hub', 18.50) ON CONFLICT DO NOTHING",
    ] {
        exec(app, sql).await;
    }
    exec(app, &format!("INSERT INTO chargers (charge_point_id, station_id, password_hash) VALUES ('{cp}', 1, {hash})"))
        .await;
}

async fn boot(app: &TestApp, cp: &str) -> ChargePoint {
    let charger = ChargePoint::connect(&app.ocpp_url, cp).await.expect("connect");
    let answer = charger.boot().await.expect("boot answered");
    assert_eq!(answer["status"], "Accepted", "{answer}");
    charger
}

#[actix_web::test]
async fn a_registered_charger_boots_accepted_and_what_it_reports_is_stored() {
    let app = common::spawn_app().await;
    seed(&app, "CP-1", None).await;
    let charger = ChargePoint::connect(&app.ocpp_url, "CP-1").await.expect("connect");
    assert_eq!(charger.negotiated_protocol().as_deref(), Some("ocpp1.6"));
    let answer = charger.boot().await.expect("boot");
    assert_eq!(answer["status"], "Accepted");
    assert_eq!(answer["interval"], 300);
    let time = answer["currentTime"].as_str().expect("time");
    assert!(time.ends_with('Z'), "{time}");
    let heartbeat = charger.heartbeat().await.expect("heartbeat");
    assert!(heartbeat["currentTime"].as_str().expect("time").ends_with('Z'));
    assert_eq!(count(&app, "SELECT count(*) AS n FROM chargers WHERE vendor IS NOT NULL AND model IS NOT NULL AND online AND last_boot_at IS NOT NULL").await, 1);

    charger.status(1, "Available", "NoError").await.expect("status");
    let (status, body) = app.get("/api/chargers/CP-1").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["online"], true);
    assert_eq!(body["data"]["available"], true);
    assert_eq!(body["data"]["station"]["name"], "Hub");
    assert_eq!(body["data"]["station"]["pricePerKwh"], "18.50");
    assert_eq!(body["data"]["connectors"][0]["connectorId"], 1);
    assert_eq!(body["data"]["connectors"][0]["status"], "Available");
    charger.status(1, "Faulted", "GroundFailure").await.expect("status");
    let (_, body) = app.get("/api/chargers/CP-1").await;
    assert_eq!(body["data"]["available"], false);
    assert_eq!(body["data"]["connectors"][0]["errorCode"], "GroundFailure");
    // Connecting also asked the charger for its status (one more row): every report is history.
    assert_eq!(count(&app, "SELECT count(*) AS n FROM connector_status_history WHERE status = 'Faulted' AND error_code = 'GroundFailure'").await, 1);
    assert!(count(&app, "SELECT count(*) AS n FROM connector_status_history").await >= 2);
    assert_eq!(app.get("/api/chargers/NOPE").await.0, 404);
}

#[actix_web::test]
async fn the_same_socket_works_at_every_documented_path() {
    let app = common::spawn_app().await;
    seed(&app, "CP-PATHS", None).await;
    let options = || ConnectOptions { path_prefix: "/ocpp".into(), ..ConnectOptions::default() };
    for base in [app.ocpp_url.clone(), app.base_url.replace("http://", "ws://")] {
        let charger = ChargePoint::connect_with(&base, "CP-PATHS", options()).await.expect("connect at /ocpp/{id}");
        assert_eq!(charger.boot().await.expect("boot")["status"], "Accepted");
        charger.close().await;
    }
}

#[actix_web::test]
async fn a_handshake_without_ocpp16_is_refused() {
    let app = common::spawn_app().await;
    seed(&app, "CP-PROTO", None).await;
    let options = ConnectOptions { protocols: vec!["ocpp2.0.1".into()], ..ConnectOptions::default() };
    match ChargePoint::connect_with(&app.ocpp_url, "CP-PROTO", options).await {
        Err(ConnectError::Http(status)) => assert_eq!(status, 400),
        Err(other) => panic!("unexpected error {other:?}"),
        Ok(_) => panic!("handshake without ocpp1.6 accepted"),
    }
}

#[actix_web::test]
async fn a_charger_with_a_password_needs_basic_auth() {
    let app = common::spawn_app().await;
    seed(&app, "CP-AUTH", Some("correct horse")).await;
    for password in [None, Some("wrong")] {
        let options = ConnectOptions { password: password.map(str::to_string), ..ConnectOptions::default() };
        match ChargePoint::connect_with(&app.ocpp_url, "CP-AUTH", options).await {
            Err(ConnectError::Http(status)) => assert_eq!(status, 401),
            Err(other) => panic!("unexpected error {other:?}"),
            Ok(_) => panic!("accepted with password {password:?}"),
        }
    }
    let options = ConnectOptions { password: Some("correct horse".into()), ..ConnectOptions::default() };
    let charger = ChargePoint::connect_with(&app.ocpp_url, "CP-AUTH", options).await.expect("right password");
    assert_eq!(charger.boot().await.expect("boot")["status"], "Accepted");
}

#[actix_web::test]
async fn unknown_chargers_follow_the_configured_policy() {
    // Default: pending until an owner claims it; nothing but boot and heartbeat is served.
    let app = common::spawn_app().await;
    let charger = ChargePoint::connect(&app.ocpp_url, "STRANGER").await.expect("connect");
    assert_eq!(charger.boot().await.expect("boot")["status"], "Pending");
    let refused = charger.status(1, "Available", "NoError").await.expect_err("not accepted yet");
    assert_eq!(refused.code, "SecurityError");
    assert_eq!(count(&app, "SELECT count(*) AS n FROM chargers WHERE charge_point_id = 'STRANGER' AND station_id IS NULL AND registration_status = 'pending'").await, 1);
    // The owner claims it: the next boot is accepted.
    exec(&app, "UPDATE chargers SET registration_status = 'accepted' WHERE charge_point_id = 'STRANGER'").await;
    assert_eq!(charger.boot().await.expect("boot")["status"], "Accepted");
    charger.status(1, "Available", "NoError").await.expect("served once accepted");

    let accept = common::spawn_app_with(&[("KILOWATT_UNKNOWN_CHARGERS", "accept")]).await;
    assert_eq!(boot(&accept, "NEWCOMER").await.status(1, "Available", "NoError").await.expect("status"), json!({}));
    assert_eq!(
        count(&accept, "SELECT count(*) AS n FROM chargers WHERE charge_point_id = 'NEWCOMER' AND station_id IS NULL")
            .await,
        1
    );

    let reject = common::spawn_app_with(&[("KILOWATT_UNKNOWN_CHARGERS", "reject")]).await;
    match ChargePoint::connect(&reject.ocpp_url, "INTRUDER").await {
        Err(ConnectError::Http(status)) => assert_eq!(status, 404),
        Err(other) => panic!("unexpected error {other:?}"),
        Ok(_) => panic!("unknown charger accepted under reject policy"),
    }
    assert_eq!(count(&reject, "SELECT count(*) AS n FROM chargers").await, 0);
}

#[actix_web::test]
async fn every_bad_input_gets_the_right_callerror_and_the_connection_stays_usable() {
    let app = common::spawn_app_with(&[("KILOWATT_OCPP_MAX_FRAME_BYTES", "4096")]).await;
    seed(&app, "CP-BAD", None).await;
    let charger = boot(&app, "CP-BAD").await;
    let cases: Vec<(&str, Option<&str>, &str)> = vec![
        (r#"[2,"m1","FlyToTheMoon",{}]"#, Some("m1"), "NotImplemented"),
        (r#"[2,"m2","Reset",{"type":"Hard"}]"#, Some("m2"), "NotSupported"),
        (r#"[2,"m3","BootNotification",{"chargePointVendor":"V"}]"#, Some("m3"), "OccurenceConstraintViolation"),
        (
            r#"[2,"m4","StatusNotification",{"connectorId":"one","errorCode":"NoError","status":"Available"}]"#,
            Some("m4"),
            "TypeConstraintViolation",
        ),
        (r#"[2,"m5","Authorize",{"idTag":"THIS-ID-TAG-IS-WAY-TOO-LONG"}]"#, Some("m5"), "PropertyConstraintViolation"),
        (
            r#"[2,"m6","StatusNotification",{"connectorId":1,"errorCode":"NoError","status":"Sleeping"}]"#,
            Some("m6"),
            "PropertyConstraintViolation",
        ),
        (
            r#"[2,"m7","StartTransaction",{"connectorId":1,"idTag":"DRIVER1","meterStart":0,"timestamp":"yesterday"}]"#,
            Some("m7"),
            "PropertyConstraintViolation",
        ),
        (r#"[2,"m8","Heartbeat",[1,2]]"#, Some("m8"), "FormationViolation"),
        (r#"[2,"m9","Heartbeat""#, Some("m9"), "FormationViolation"),
        (r#"[2,"m10"]"#, Some("m10"), "ProtocolError"),
    ];
    for (frame, id, code) in cases {
        charger.send_raw(frame).await;
        let reply = charger.next_unsolicited(WAIT).await.unwrap_or_else(|| panic!("no answer to {frame}"));
        assert_eq!(reply[0], 4, "{frame} -> {reply}");
        assert_eq!(reply[1].as_str(), id, "{frame} -> {reply}");
        assert_eq!(reply[2], code, "{frame} -> {reply}");
        assert!(reply[3].as_str().is_some_and(|d| !d.is_empty()), "{reply}");
    }
    // Garbage with no recoverable id: logged and dropped, no answer, connection still usable.
    charger.send_raw("this is not json").await;
    assert!(charger.next_unsolicited(Duration::from_millis(500)).await.is_none());
    assert!(charger.heartbeat().await.is_ok());
    // Nothing the charger sent above changed anything.
    assert_eq!(count(&app, "SELECT count(*) AS n FROM connector_status_history WHERE status <> 'Available'").await, 0);
    assert_eq!(count(&app, "SELECT count(*) AS n FROM charging_sessions").await, 0);
    let metrics = app.get_text("/metrics").await.1;
    assert!(metrics.contains("ocpp_call_errors_total{code=\"NotImplemented\""), "{metrics}");
    // A frame over the limit closes the socket with 1009.
    charger.send_raw(&format!(r#"[2,"big","DataTransfer",{{"vendorId":"x","data":"{}"}}]"#, "x".repeat(8000))).await;
    assert_eq!(charger.closed(WAIT).await, Some(Some(1009)));
}

#[actix_web::test]
async fn a_full_transaction_is_stored_and_billed_exactly_once() {
    let app = common::spawn_app().await;
    seed(&app, "CP-TX", None).await;
    let charger = boot(&app, "CP-TX").await;
    assert_eq!(charger.authorize("driver1").await.expect("authorize")["idTagInfo"]["status"], "Accepted");
    assert_eq!(charger.authorize("UNKNOWN").await.expect("authorize")["idTagInfo"]["status"], "Invalid");

    let started_at = Utc::now() - ChronoDuration::minutes(30);
    let (tx, info) = charger.start_transaction(1, "DRIVER1", 10_000, started_at).await.expect("start");
    assert_eq!(info["status"], "Accepted");
    // The same StartTransaction again (the charger never saw our answer): same transaction.
    let (again, _) = charger.start_transaction(1, "DRIVER1", 10_000, started_at).await.expect("retransmitted start");
    assert_eq!(again, tx);
    assert_eq!(count(&app, "SELECT count(*) AS n FROM charging_sessions").await, 1);
    // While charging, a second Authorize for the same driver is a concurrent transaction.
    assert_eq!(charger.authorize("DRIVER1").await.expect("authorize")["idTagInfo"]["status"], "ConcurrentTx");

    charger.meter_values(1, Some(tx), 14_000, Some(7_200), Some(55)).await.expect("meter values");
    // Answered once: the CALLRESULT leaves as soon as the readings are committed, and the
    // connection does not send it again when its task resumes (a second copy would arrive
    // before the Heartbeat's answer).
    charger.heartbeat().await.expect("heartbeat");
    assert_eq!(charger.next_unsolicited(Duration::ZERO).await, None, "a MeterValues answered twice");
    assert_eq!(count(&app, "SELECT energy_wh AS n FROM charging_sessions").await, 4_000);
    assert_eq!(money(&app, "SELECT cost AS amount FROM charging_sessions").await, Decimal::new(7400, 2));
    assert!(count(&app, "SELECT count(*) AS n FROM meter_values WHERE session_id IS NOT NULL").await >= 1);
    // Values sampled at two times in one MeterValues: each keeps its own time, and is stored as
    // sent and normalised to its base unit.
    charger
        .call(
            "MeterValues",
            json!({
                "connectorId": 1,
                "transactionId": tx,
                "meterValue": [
                    {"timestamp": "2026-11-21T10:00:00Z", "sampledValue": [{"value": "14.5", "unit": "kWh"}]},
                    {"timestamp": "2026-11-21T10:00:10Z", "sampledValue": [
                        {"value": "14510"},
                        {"value": "7.3", "measurand": "Power.Active.Import", "unit": "kW"}
                    ]}
                ]
            }),
        )
        .await
        .expect("meter values");
    let sampled = |at: &str, raw: &str, value: &str| {
        format!(
            "SELECT count(*) AS n FROM meter_values WHERE transaction_id = {tx} \
             AND sampled_at = '{at}' AND raw_value = '{raw}' AND value = {value}"
        )
    };
    assert_eq!(count(&app, &sampled("2026-11-21T10:00:00Z", "14.5", "14500")).await, 1);
    assert_eq!(count(&app, &sampled("2026-11-21T10:00:10Z", "14510", "14510")).await, 1);
    assert_eq!(count(&app, &sampled("2026-11-21T10:00:10Z", "7.3", "7300")).await, 1);
    // The reading's energy register is its latest energy value (the session's running totals
    // wait a few seconds before they are written again: KILOWATT_SESSION_TOTALS_SECONDS).
    let register = format!("SELECT max(energy_register_wh) AS n FROM meter_readings WHERE transaction_id = {tx}");
    assert_eq!(count(&app, &register).await, 14_510);

    let stop = charger.stop_transaction(tx, 22_345, Utc::now(), "Local", Some("DRIVER1")).await.expect("stop");
    assert_eq!(stop["idTagInfo"]["status"], "Accepted");
    // 12.345 kWh × 18.50 = 228.3825 → 228.38
    let debit = Decimal::new(22838, 2);
    assert_eq!(
        money(&app, "SELECT balance AS amount FROM wallets WHERE user_id = 2").await,
        Decimal::from(1000) - debit
    );
    // A repeated StopTransaction is answered normally and bills nothing more.
    charger.stop_transaction(tx, 22_345, Utc::now(), "Local", None).await.expect("repeated stop");
    assert_eq!(
        money(&app, "SELECT balance AS amount FROM wallets WHERE user_id = 2").await,
        Decimal::from(1000) - debit
    );
    assert_eq!(count(&app, "SELECT count(*) AS n FROM wallet_entries WHERE kind = 'charging'").await, 1);
    assert_eq!(
        money(&app, "SELECT sum(amount) AS amount FROM wallet_entries WHERE user_id = 2").await,
        Decimal::from(1000) - debit
    );
    assert_eq!(money(&app, "SELECT amount FROM revenue_entries").await, debit);
    assert_eq!(count(&app, "SELECT duration_seconds::bigint AS n FROM charging_sessions").await / 60, 30);
    // A StopTransaction for a transaction nobody knows is answered, not an error.
    let unknown = charger
        .stop_transaction(999_999, 5, Utc::now(), "Local", Some("DRIVER1"))
        .await
        .expect("unknown stop answered");
    assert_eq!(unknown["idTagInfo"]["status"], "Accepted");
}

#[actix_web::test]
async fn a_meter_that_runs_backwards_is_a_fault_not_a_refund() {
    let app = common::spawn_app().await;
    seed(&app, "CP-FAULT", None).await;
    let charger = boot(&app, "CP-FAULT").await;
    let (tx, _) = charger.start_transaction(1, "DRIVER1", 50_000, Utc::now()).await.expect("start");
    charger.meter_values(1, Some(tx), 51_000, None, None).await.expect("meter");
    charger.stop_transaction(tx, 40_000, Utc::now(), "Local", None).await.expect("stop");
    assert_eq!(
        count(&app, "SELECT count(*) AS n FROM charging_sessions WHERE meter_fault AND energy_wh = 1000").await,
        1
    );
    // Billed for the last good reading (1 kWh × 18.50), never credited.
    assert_eq!(money(&app, "SELECT balance AS amount FROM wallets WHERE user_id = 2").await, Decimal::new(98150, 2));
}

#[actix_web::test]
async fn an_unknown_id_tag_gets_a_transaction_but_is_never_billed() {
    let app = common::spawn_app().await;
    seed(&app, "CP-INV", None).await;
    let charger = boot(&app, "CP-INV").await;
    let (tx, info) = charger.start_transaction(1, "NOBODY", 0, Utc::now()).await.expect("start");
    assert_eq!(info["status"], "Invalid");
    charger.stop_transaction(tx, 5_000, Utc::now(), "DeAuthorized", None).await.expect("stop");
    assert_eq!(
        count(
            &app,
            "SELECT count(*) AS n FROM charging_sessions WHERE user_id IS NULL AND settled_at IS NOT NULL AND cost = 0"
        )
        .await,
        1
    );
    assert_eq!(count(&app, "SELECT count(*) AS n FROM wallet_entries WHERE kind = 'charging'").await, 0);
}

#[actix_web::test]
async fn commands_reach_the_charger_and_its_answers_come_back() {
    let app = common::spawn_app_with(&[("KILOWATT_OCPP_CALL_TIMEOUT_SECONDS", "1")]).await;
    seed(&app, "CP-CMD", None).await;
    let charger = boot(&app, "CP-CMD").await;
    let registry = app.server.as_ref().expect("running").state.registry.clone();
    let command = |action: &str, payload: Value| CommandCharger {
        charge_point_id: "CP-CMD".into(),
        request: CentralSystemRequest::from_action(action, &payload).expect("valid command"),
    };
    let answer = registry.send(command("Reset", json!({"type": "Soft"}))).await.expect("mailbox").expect("answered");
    assert_eq!(answer["status"], "Accepted");
    let answer = registry.send(command("GetConfiguration", json!({}))).await.expect("mailbox").expect("answered");
    assert!(answer["configurationKey"].as_array().is_some_and(|keys| !keys.is_empty()));
    assert!(charger.received_calls().iter().any(|(action, payload)| action == "Reset" && payload["type"] == "Soft"));

    // Several at once: all answered, in order, one outstanding at a time.
    let (a, b, c) = tokio::join!(
        registry.send(command("ClearCache", json!({}))),
        registry.send(command("UnlockConnector", json!({"connectorId": 1}))),
        registry.send(command("GetLocalListVersion", json!({}))),
    );
    assert_eq!(a.expect("mailbox").expect("answered")["status"], "Accepted");
    assert_eq!(b.expect("mailbox").expect("answered")["status"], "Unlocked");
    assert_eq!(c.expect("mailbox").expect("answered")["listVersion"], 0);
    let order: Vec<String> = charger.received_calls().into_iter().map(|(action, _)| action).collect();
    let tail = &order[order.len() - 3..];
    assert_eq!(tail, ["ClearCache", "UnlockConnector", "GetLocalListVersion"]);

    // A CALLERROR from the charger, then no answer at all.
    charger.set_responder(|action, _| match action {
        "Reset" => Reply::Error(ErrorCode::NotSupported, "no resets here".into()),
        _ => Reply::NoAnswer,
    });
    let refused =
        registry.send(command("Reset", json!({"type": "Hard"}))).await.expect("mailbox").expect_err("refused");
    assert!(refused.to_string().contains("NotSupported"), "{refused}");
    let silent = registry.send(command("ClearCache", json!({}))).await.expect("mailbox").expect_err("timed out");
    assert!(silent.to_string().contains("did not answer"), "{silent}");
    // An unconnected charger is a clear error too.
    let offline = CommandCharger { charge_point_id: "NOT-HERE".into(), ..command("ClearCache", json!({})) };
    assert!(registry.send(offline).await.expect("mailbox").expect_err("offline").to_string().contains("not connected"));
}

#[actix_web::test]
async fn a_reconnect_replaces_the_old_socket_and_refreshes_status() {
    let app = common::spawn_app().await;
    seed(&app, "CP-RE", None).await;
    let first = boot(&app, "CP-RE").await;
    let second = ChargePoint::connect(&app.ocpp_url, "CP-RE").await.expect("reconnect is never refused");
    assert!(first.closed(WAIT).await.is_some(), "old socket not closed");
    // On reconnect the central system asks for the current status at once.
    assert!(
        second.expect_call("TriggerMessage", WAIT).await.is_some_and(|p| p["requestedMessage"] == "StatusNotification")
    );
    assert!(second.heartbeat().await.is_ok());
    // The old socket closing must not mark the charger offline under the new one.
    assert!(eventually(async || count(&app, "SELECT count(*) AS n FROM connector_status_history").await >= 1).await);
    assert_eq!(count(&app, "SELECT count(*) AS n FROM chargers WHERE online").await, 1);
    assert_eq!(app.get("/api/chargers/CP-RE").await.1["data"]["online"], true);
}

#[actix_web::test]
async fn a_charger_that_goes_away_is_offline_at_once_and_its_transaction_stays_open() {
    let app = common::spawn_app().await;
    seed(&app, "CP-OFF", None).await;
    let charger = boot(&app, "CP-OFF").await;
    let (tx, _) = charger.start_transaction(1, "DRIVER1", 0, Utc::now()).await.expect("start");
    charger.close().await;
    assert!(eventually(async || count(&app, "SELECT count(*) AS n FROM chargers WHERE NOT online").await == 1).await);
    assert_eq!(app.get("/api/chargers/CP-OFF").await.1["data"]["online"], false);
    assert_eq!(count(&app, "SELECT count(*) AS n FROM charging_sessions WHERE status = 'active'").await, 1);
    // It comes back and delivers the stop it queued while offline.
    let back = ChargePoint::connect(&app.ocpp_url, "CP-OFF").await.expect("reconnect");
    back.stop_transaction(tx, 2_000, Utc::now(), "PowerLoss", None).await.expect("queued stop");
    assert_eq!(
        count(&app, "SELECT count(*) AS n FROM charging_sessions WHERE status = 'completed' AND energy_wh = 2000")
            .await,
        1
    );
}

#[actix_web::test]
async fn a_dead_peer_is_dropped_within_two_ping_intervals() {
    let app = common::spawn_app_with(&[("KILOWATT_WS_PING_INTERVAL_SECONDS", "1")]).await;
    seed(&app, "CP-DEAD", None).await;
    let charger = boot(&app, "CP-DEAD").await;
    charger.go_silent();
    // The charger no longer reads its socket, so it is the server that must notice: within
    // `eventually`'s 5 s, well past two 1 s ping intervals.
    let offline = async || count(&app, "SELECT count(*) AS n FROM chargers WHERE NOT online").await == 1;
    assert!(eventually(offline).await, "a silent charger was still online after two ping intervals");
    assert_eq!(app.get("/api/chargers/CP-DEAD").await.1["data"]["online"], false);
}

#[actix_web::test]
async fn every_frame_is_in_the_message_log() {
    let app = common::spawn_app().await;
    seed(&app, "CP-LOG", None).await;
    let charger = boot(&app, "CP-LOG").await;
    charger.send_raw(r#"[2,"bad1","Nope",{}]"#).await;
    charger.next_unsolicited(WAIT).await.expect("callerror");
    let logged = async || {
        count(&app, "SELECT count(*) AS n FROM ocpp_messages WHERE charge_point_id = 'CP-LOG' AND action = 'BootNotification' AND direction = 'in'").await == 1
            && count(&app, "SELECT count(*) AS n FROM ocpp_messages WHERE charge_point_id = 'CP-LOG' AND error_code = 'NotImplemented' AND direction = 'out'").await == 1
    };
    assert!(eventually(logged).await, "frames missing from the OCPP message log");
}

#[actix_web::test]
async fn a_graceful_stop_closes_charger_sockets_with_going_away() {
    let mut app = common::spawn_app().await;
    seed(&app, "CP-BYE", None).await;
    let charger = boot(&app, "CP-BYE").await;
    app.stop().await;
    assert_eq!(charger.closed(WAIT).await, Some(Some(1001)));
}

#[actix_web::test]
async fn five_hundred_chargers_boot_at_once_and_every_one_is_answered() {
    let app = common::spawn_app_with(&[("KILOWATT_UNKNOWN_CHARGERS", "accept"), ("KILOWATT_DB_POOL_SIZE", "16")]).await;
    let connects = (0..500).map(|i| {
        let url = app.ocpp_url.clone();
        async move {
            let charger = ChargePoint::connect(&url, &format!("BULK-{i:03}")).await.expect("connect");
            let answer = charger.boot().await.expect("boot answered");
            (charger, answer)
        }
    });
    let results = futures_util::future::join_all(connects).await;
    assert_eq!(results.len(), 500);
    assert!(results.iter().all(|(_, answer)| answer["status"] == "Accepted"));
    assert_eq!(count(&app, "SELECT count(*) AS n FROM chargers WHERE online AND last_boot_at IS NOT NULL").await, 500);
}

#[actix_web::test]
async fn every_command_and_every_charger_notification_works_end_to_end() {
    let app = common::spawn_app().await;
    seed(&app, "CP-ALL", None).await;
    let charger = boot(&app, "CP-ALL").await;
    let registry = app.server.as_ref().expect("running").state.registry.clone();
    let commands = [
        ("CancelReservation", json!({"reservationId": 1})),
        ("ChangeAvailability", json!({"connectorId": 0, "type": "Inoperative"})),
        ("ChangeConfiguration", json!({"key": "HeartbeatInterval", "value": "120"})),
        ("ClearCache", json!({})),
        ("ClearChargingProfile", json!({})),
        ("DataTransfer", json!({"vendorId": "kilowatt"})),
        ("GetCompositeSchedule", json!({"connectorId": 1, "duration": 3600})),
        ("GetConfiguration", json!({"key": ["HeartbeatInterval"]})),
        ("GetDiagnostics", json!({"location": "ftp://diagnostics.example/upload"})),
        ("GetLocalListVersion", json!({})),
        ("RemoteStartTransaction", json!({"connectorId": 1, "idTag": "DRIVER1"})),
        ("RemoteStopTransaction", json!({"transactionId": 1})),
        (
            "ReserveNow",
            json!({"connectorId": 1, "expiryDate": "2030-01-01T00:00:00Z", "idTag": "DRIVER1", "reservationId": 1}),
        ),
        ("Reset", json!({"type": "Soft"})),
        (
            "SendLocalList",
            json!({"listVersion": 1, "updateType": "Full",
            "localAuthorizationList": [{"idTag": "DRIVER1", "idTagInfo": {"status": "Accepted"}}]}),
        ),
        (
            "SetChargingProfile",
            json!({"connectorId": 1, "csChargingProfiles": {"chargingProfileId": 1, "stackLevel": 0,
            "chargingProfilePurpose": "TxDefaultProfile", "chargingProfileKind": "Absolute",
            "chargingSchedule": {"chargingRateUnit": "A", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16}]}}}),
        ),
        ("TriggerMessage", json!({"requestedMessage": "Heartbeat"})),
        ("UnlockConnector", json!({"connectorId": 1})),
        (
            "UpdateFirmware",
            json!({"location": "https://firmware.example/fw.bin", "retrieveDate": "2030-01-01T00:00:00Z"}),
        ),
    ];
    for (action, payload) in commands {
        let request = CentralSystemRequest::from_action(action, &payload).unwrap_or_else(|e| panic!("{action}: {e:?}"));
        // What goes on the wire (date-times normalised to UTC with milliseconds).
        let wire = request.payload();
        let answer = registry
            .send(CommandCharger { charge_point_id: "CP-ALL".into(), request })
            .await
            .expect("mailbox")
            .unwrap_or_else(|e| panic!("{action}: {e}"));
        assert!(answer.is_object(), "{action}: {answer}");
        assert!(
            charger.received_calls().iter().any(|(a, p)| a == action && *p == wire),
            "{action} not received as sent"
        );
    }
    // The charger's remaining messages: vendor data, diagnostics and firmware progress.
    let transfer = charger
        .call("DataTransfer", json!({"vendorId": "acme", "messageId": "x", "data": "{}"}))
        .await
        .expect("answered");
    assert_eq!(transfer["status"], "UnknownVendorId");
    charger.call("DiagnosticsStatusNotification", json!({"status": "Uploaded"})).await.expect("answered");
    charger.call("FirmwareStatusNotification", json!({"status": "Installed"})).await.expect("answered");
    assert_eq!(
        count(
            &app,
            "SELECT count(*) AS n FROM chargers WHERE diagnostics_status = 'Uploaded' AND firmware_status = 'Installed'"
        )
        .await,
        1
    );
}
