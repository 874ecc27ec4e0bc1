//! Charging sessions end to end over the real protocol: a driver starts through the API, the
//! test charge point accepts and starts, meters, and stops; the wallet is debited exactly
//! energy × price. Also every refusal at start, the prepaid cut-off, a start the charger never
//! begins, faults, a charger that stays offline, a restart of Kilowatt mid-session, readings
//! that arrive after the stop or on a connector the app meters, owners completing and
//! cancelling, and sessions started at the charger.

mod common;

use std::time::Duration;

use chrono::Duration as ChronoDuration;
use common::charge_point::{ChargePoint, ConnectOptions, Reply};
use common::sql::{count, exec, money, scalar};
use common::{TestApp, User, error_code, eventually, spawn_app, spawn_app_with};
use rust_decimal::Decimal;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(10);

/// An owner with station "Hub" at 18.50/kWh and a two-connector charger `cp`, and a driver
/// with `balance` INR recharged into the wallet.
async fn seed(app: &TestApp, cp: &str, balance: i64) -> (User, User) {
    let owner = app.owner(&format!("owner-{cp}")).await;
    let driver = app.driver(&format!("driver-{cp}")).await;
    app.station_with_charger(&owner, "Hub", cp).await;
    app.fund(&driver, balance).await;
    (owner, driver)
}

async fn balance(app: &TestApp, user: &User) -> Decimal {
    money(app, &format!("SELECT balance FROM wallets WHERE user_id = {}", user.id)).await
}

async fn ledger_sum(app: &TestApp, user: &User) -> Decimal {
    money(app, &format!("SELECT coalesce(sum(amount), 0) FROM wallet_entries WHERE user_id = {}", user.id)).await
}

async fn session_field(app: &TestApp, session_id: i64, column: &str) -> String {
    scalar(app, &format!("SELECT {column} FROM charging_sessions WHERE id = {session_id}")).await
}

/// Starts through the API; the charger accepts and, like a real one, sends StartTransaction
/// with the idTag it was given. Answers the session and transaction IDs.
async fn start_through_api(app: &TestApp, charger: &ChargePoint, driver: &User, body: Value) -> (i64, i32) {
    let (status, answer) = app.call("POST", "/api/charging/start", Some(&driver.token), Some(&body)).await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["data"]["status"], "pending");
    let session_id = answer["data"]["sessionId"].as_i64().expect("session id");
    let remote = charger.expect_call("RemoteStartTransaction", WAIT).await.expect("RemoteStart sent");
    assert_eq!(remote["idTag"], driver.id_tag.as_str());
    let connector = remote["connectorId"].as_u64().expect("connector") as u32;
    let (transaction_id, info) =
        charger.start_transaction(connector, &driver.id_tag, 1_000, app.clock.now()).await.expect("start");
    assert_eq!(info["status"], "Accepted", "{info}");
    (session_id, transaction_id)
}

#[actix_rt::test]
async fn a_driver_charges_through_the_api_and_pays_exactly_energy_times_price() {
    let app = spawn_app().await;
    let (_, driver) = seed(&app, "CP-LOOP", 1000).await;
    let charger = app.booted_charger("CP-LOOP", 2).await;

    // The AppEV app's snake_case names work too.
    let body = json!({ "charger_id": "CP-LOOP", "connector_id": 1, "id_tag": "ignored" });
    let (session_id, transaction_id) = start_through_api(&app, &charger, &driver, body).await;
    charger.status(1, "Charging", "NoError").await.unwrap();
    let (_, active) = app.call("GET", "/api/charging/sessions/active", Some(&driver.token), None).await;
    assert_eq!(active["data"]["id"], session_id);
    assert_eq!(active["data"]["status"], "active");
    assert_eq!(active["data"]["transactionId"], transaction_id);

    app.clock.advance(ChronoDuration::minutes(20));
    charger.meter_values(1, Some(transaction_id), 6_000, Some(10_000), Some(55)).await.unwrap();
    let (_, active) = app.call("GET", "/api/charging/sessions/active", Some(&driver.token), None).await;
    assert_eq!(active["data"]["energyWh"], 5_000);
    assert_eq!(active["data"]["cost"], "92.50");
    assert_eq!(active["data"]["socPercent"], 55);
    assert_eq!(active["data"]["durationSeconds"], 1200);

    let (status, answer) =
        app.call("POST", "/api/charging/stop", Some(&driver.token), Some(&json!({ "sessionId": session_id }))).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["data"]["status"], "stopping");
    let stop = charger.expect_call("RemoteStopTransaction", WAIT).await.expect("RemoteStop sent");
    assert_eq!(stop["transactionId"], transaction_id);
    charger.stop_transaction(transaction_id, 7_234, app.clock.now(), "Remote", None).await.unwrap();

    // 6.234 kWh × 18.50 = 115.329 → 115.33.
    assert_eq!(balance(&app, &driver).await, Decimal::new(88467, 2));
    assert_eq!(ledger_sum(&app, &driver).await, balance(&app, &driver).await);
    assert_eq!(session_field(&app, session_id, "status").await, "completed");
    assert_eq!(session_field(&app, session_id, "stop_reason").await, "Stopped by the driver");
    assert_eq!(count(&app, &format!("SELECT count(*) FROM revenue_entries WHERE session_id = {session_id}")).await, 1);
    let (_, active) = app.call("GET", "/api/charging/sessions/active", Some(&driver.token), None).await;
    assert_eq!(active["data"], Value::Null);
    let (status, body) = app
        .call("POST", "/api/charging/stop", Some(&driver.token), Some(&json!({ "transactionId": transaction_id })))
        .await;
    assert_eq!((status, error_code(&body)), (409, "session_ended"));
}

#[actix_rt::test]
async fn every_reason_not_to_start_gets_its_own_answer_and_changes_nothing() {
    let app = spawn_app().await;
    let (_, driver) = seed(&app, "CP-NO", 1000).await;
    let poor = app.driver("poor").await;
    app.fund(&poor, 50).await;
    let start = |cp: &str, connector: i32| json!({ "chargerId": cp, "connectorId": connector });

    let (status, body) = app.call("POST", "/api/charging/start", Some(&driver.token), Some(&start("CP-NO", 1))).await;
    assert_eq!((status, error_code(&body)), (409, "charger_offline"));
    let charger = app.booted_charger("CP-NO", 2).await;
    let (status, _) = app.call("POST", "/api/charging/start", Some(&driver.token), Some(&start("NOPE", 1))).await;
    assert_eq!(status, 404);
    let (status, _) = app.call("POST", "/api/charging/start", Some(&driver.token), Some(&start("CP-NO", 7))).await;
    assert_eq!(status, 404);
    let (status, body) = app.call("POST", "/api/charging/start", Some(&poor.token), Some(&start("CP-NO", 1))).await;
    assert_eq!((status, error_code(&body)), (402, "insufficient_balance"));
    charger.status(2, "Faulted", "GroundFailure").await.unwrap();
    let (status, body) = app.call("POST", "/api/charging/start", Some(&driver.token), Some(&start("CP-NO", 2))).await;
    assert_eq!((status, error_code(&body)), (409, "connector_busy"));
    let (status, _) = app.call("POST", "/api/charging/start", None, Some(&start("CP-NO", 1))).await;
    assert_eq!(status, 401);
    assert_eq!(count(&app, "SELECT count(*) FROM charging_sessions").await, 0);

    // The charger refuses: the session fails at no cost.
    charger.set_responder(|action, payload| match action {
        "RemoteStartTransaction" => Reply::Result(json!({ "status": "Rejected" })),
        _ => common::charge_point::default_reply(action, payload),
    });
    let (status, body) = app.call("POST", "/api/charging/start", Some(&driver.token), Some(&start("CP-NO", 1))).await;
    assert_eq!((status, error_code(&body)), (409, "start_rejected"));
    assert_eq!(count(&app, "SELECT count(*) FROM charging_sessions WHERE status = 'failed' AND cost = 0").await, 1);

    // One session at a time per driver.
    charger.set_responder(common::charge_point::default_reply);
    let (status, _) = app.call("POST", "/api/charging/start", Some(&driver.token), Some(&start("CP-NO", 1))).await;
    assert_eq!(status, 201);
    let (status, body) = app.call("POST", "/api/charging/start", Some(&driver.token), Some(&start("CP-NO", 1))).await;
    assert_eq!((status, error_code(&body)), (409, "session_active"));
    assert_eq!(balance(&app, &driver).await, Decimal::from(1000));
}

#[actix_rt::test]
async fn a_start_the_charger_never_begins_fails_at_no_cost() {
    let app = spawn_app_with(&[("KILOWATT_START_TIMEOUT_SECONDS", "60")]).await;
    let (_, driver) = seed(&app, "CP-SLOW", 500).await;
    let charger = app.booted_charger("CP-SLOW", 2).await;
    let (status, answer) = app
        .call(
            "POST",
            "/api/charging/start",
            Some(&driver.token),
            Some(&json!({ "chargerId": "CP-SLOW", "connectorId": 1 })),
        )
        .await;
    assert_eq!(status, 201, "{answer}");
    let session_id = answer["data"]["sessionId"].as_i64().unwrap();
    charger.expect_call("RemoteStartTransaction", WAIT).await.expect("sent");
    app.clock.advance(ChronoDuration::seconds(61));
    assert!(eventually(async || session_field(&app, session_id, "status").await == "failed").await);
    assert_eq!(session_field(&app, session_id, "cost").await, "0.00");
    assert_eq!(balance(&app, &driver).await, Decimal::from(500));
}

#[actix_rt::test]
async fn the_charge_stops_before_the_cost_reaches_the_wallet_balance() {
    let app = spawn_app().await;
    let (_, driver) = seed(&app, "CP-PREPAID", 150).await;
    let charger = app.booted_charger("CP-PREPAID", 2).await;
    let (session_id, tx) =
        start_through_api(&app, &charger, &driver, json!({ "chargerId": "CP-PREPAID", "connectorId": 1 })).await;

    // 7 kW: each minute is ~117 Wh ≈ ₹2.16. 150 INR ≈ 8.1 kWh.
    let mut wh = 1_000;
    let mut stopped_at = None;
    for minute in 1..=120 {
        app.clock.advance(ChronoDuration::minutes(1));
        wh += 117;
        charger.meter_values(1, Some(tx), wh, Some(7_000), None).await.unwrap();
        if charger.received_calls().iter().any(|(action, _)| action == "RemoteStopTransaction") {
            stopped_at = Some(minute);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let minute = stopped_at.expect("RemoteStopTransaction sent before the balance ran out");
    let cost: Decimal = money(&app, &format!("SELECT cost FROM charging_sessions WHERE id = {session_id}")).await;
    assert!(cost < Decimal::from(150), "stopped at minute {minute} with cost {cost}");
    assert!(cost > Decimal::from(140), "stopped too early: minute {minute}, cost {cost}");
    // The charger stops a few seconds later; the session is billed and the reason kept.
    charger.stop_transaction(tx, wh + 30, app.clock.now(), "Remote", None).await.unwrap();
    assert_eq!(session_field(&app, session_id, "stop_reason").await, "Prepaid balance reached");
    assert!(balance(&app, &driver).await >= Decimal::ZERO);
    assert_eq!(ledger_sum(&app, &driver).await, balance(&app, &driver).await);
}

#[actix_rt::test]
async fn a_fault_ends_the_session_billed_and_a_late_stop_adjusts_it_once() {
    let app = spawn_app().await;
    let (_, driver) = seed(&app, "CP-FAULT", 1000).await;
    let charger = app.booted_charger("CP-FAULT", 2).await;
    let (session_id, tx) =
        start_through_api(&app, &charger, &driver, json!({ "chargerId": "CP-FAULT", "connectorId": 1 })).await;
    charger.meter_values(1, Some(tx), 3_000, Some(7_000), None).await.unwrap();
    charger.status(1, "Faulted", "OverCurrentFailure").await.unwrap();
    assert!(eventually(async || session_field(&app, session_id, "status").await == "failed").await);
    assert!(session_field(&app, session_id, "stop_reason").await.contains("OverCurrentFailure"));
    // 2 kWh × 18.50 = 37.00 billed for what was delivered.
    assert_eq!(balance(&app, &driver).await, Decimal::new(96300, 2));

    // The charger's StopTransaction arrives later with a higher final reading: one adjustment.
    for _ in 0..2 {
        charger.stop_transaction(tx, 3_500, app.clock.now(), "Other", None).await.unwrap();
    }
    assert_eq!(balance(&app, &driver).await, Decimal::new(95375, 2));
    assert_eq!(
        count(
            &app,
            &format!(
                "SELECT count(*) FROM wallet_entries WHERE reference_id = {session_id} AND reference_kind = 'session'"
            )
        )
        .await,
        2
    );
    assert_eq!(ledger_sum(&app, &driver).await, balance(&app, &driver).await);
}

#[actix_rt::test]
async fn a_charger_offline_too_long_ends_its_session_and_kilowatt_restarts_lose_nothing() {
    let app = spawn_app_with(&[("KILOWATT_OFFLINE_SESSION_TIMEOUT_MINUTES", "10")]).await;
    let mut app = app;
    let (_, driver) = seed(&app, "CP-GONE", 1000).await;
    let charger = app.booted_charger("CP-GONE", 2).await;
    let (session_id, tx) =
        start_through_api(&app, &charger, &driver, json!({ "chargerId": "CP-GONE", "connectorId": 1 })).await;
    charger.meter_values(1, Some(tx), 2_000, Some(7_000), None).await.unwrap();

    // Kilowatt restarts mid-session: the session survives and keeps counting (the next reading
    // comes a sampling interval later, when the session's running totals are written again).
    app.restart().await;
    let charger = app.booted_charger("CP-GONE", 2).await;
    app.clock.advance(ChronoDuration::seconds(15));
    charger.meter_values(1, Some(tx), 4_000, Some(7_000), None).await.unwrap();
    assert_eq!(session_field(&app, session_id, "energy_wh").await, "3000");
    assert_eq!(session_field(&app, session_id, "status").await, "active");

    // Then the charger disappears for longer than the window.
    charger.close().await;
    app.clock.advance(ChronoDuration::minutes(11));
    assert!(eventually(async || session_field(&app, session_id, "status").await == "failed").await);
    assert!(session_field(&app, session_id, "stop_reason").await.contains("offline"));
    // 3 kWh × 18.50.
    assert_eq!(balance(&app, &driver).await, Decimal::new(94450, 2));
    assert_eq!(ledger_sum(&app, &driver).await, balance(&app, &driver).await);
}

#[actix_rt::test]
async fn rapid_readings_are_all_stored_and_a_session_ending_without_a_final_one_is_billed_from_the_latest() {
    let app = spawn_app_with(&[("KILOWATT_OFFLINE_SESSION_TIMEOUT_MINUTES", "10")]).await;
    let (_, driver) = seed(&app, "CP-RAPID", 1000).await;
    let charger = app.booted_charger("CP-RAPID", 2).await;
    let (session_id, tx) =
        start_through_api(&app, &charger, &driver, json!({ "chargerId": "CP-RAPID", "connectorId": 1 })).await;
    let totals = async || session_field(&app, session_id, "energy_wh || '/' || cost").await;
    let stored = async || {
        scalar::<String>(
            &app,
            &format!(
                "SELECT count(*) || '/' || max(energy_register_wh) FROM meter_readings WHERE session_id = {session_id}"
            ),
        )
        .await
    };

    // Readings faster than KILOWATT_SESSION_TOTALS_SECONDS (5 by default; the test clock stands
    // still): the first sets the session's running totals, the rest are stored and answered
    // but the totals wait.
    for wh in [2_000, 2_500, 3_000, 3_500] {
        charger.meter_values(1, Some(tx), wh, Some(7_000), None).await.unwrap();
    }
    assert_eq!(stored().await, "4/3500");
    assert_eq!(totals().await, "1000/18.50");
    // Once they are due, the next reading writes them.
    app.clock.advance(ChronoDuration::seconds(6));
    charger.meter_values(1, Some(tx), 4_000, Some(7_000), None).await.unwrap();
    assert_eq!(totals().await, "3000/55.50");
    charger.meter_values(1, Some(tx), 4_600, Some(7_000), None).await.unwrap();
    assert_eq!(totals().await, "3000/55.50");
    assert_eq!(stored().await, "6/4600");

    // The charger disappears without a final reading: billed from the latest stored one,
    // 3.6 kWh × 18.50 = 66.60, not from the totals last written.
    charger.close().await;
    app.clock.advance(ChronoDuration::minutes(11));
    assert!(eventually(async || session_field(&app, session_id, "status").await == "failed").await);
    assert_eq!(totals().await, "3600/66.60");
    assert_eq!(balance(&app, &driver).await, Decimal::new(93340, 2));
    assert_eq!(ledger_sum(&app, &driver).await, balance(&app, &driver).await);
}

/// Readings of a transaction that has stopped (queued while the charger was offline, or simply
/// late) are stored like any other, and move nothing: the settled session keeps its energy and
/// cost, and the wallet is not touched again, even with the session's totals due.
#[actix_rt::test]
async fn readings_after_a_session_is_settled_are_stored_and_move_nothing() {
    let app = spawn_app().await;
    let (_, driver) = seed(&app, "CP-LATE", 1000).await;
    let charger = app.booted_charger("CP-LATE", 2).await;
    let (session_id, tx) =
        start_through_api(&app, &charger, &driver, json!({ "chargerId": "CP-LATE", "connectorId": 1 })).await;
    charger.meter_values(1, Some(tx), 2_000, Some(7_000), None).await.unwrap();
    charger.stop_transaction(tx, 3_000, app.clock.now(), "Local", None).await.unwrap();
    assert!(eventually(async || session_field(&app, session_id, "status").await == "completed").await);
    // 2 kWh × 18.50.
    let settled = "2000/37.00/completed";
    assert_eq!(session_field(&app, session_id, "energy_wh || '/' || cost || '/' || status").await, settled);
    assert_eq!(balance(&app, &driver).await, Decimal::from(963));

    for wh in [5_000, 9_000] {
        app.clock.advance(ChronoDuration::seconds(6));
        charger.meter_values(1, Some(tx), wh, Some(7_000), None).await.unwrap();
    }
    let late =
        format!("SELECT count(*) FROM meter_readings WHERE session_id = {session_id} AND energy_register_wh > 3000");
    assert_eq!(count(&app, &late).await, 2);
    assert_eq!(session_field(&app, session_id, "energy_wh || '/' || cost || '/' || status").await, settled);
    assert_eq!(balance(&app, &driver).await, Decimal::from(963));
    assert_eq!(ledger_sum(&app, &driver).await, Decimal::from(963));
}

/// On a connector the owner marked as not metered, the energy the app reports is the session's:
/// the charger's readings are stored, and set the session's power, but never its energy or cost,
/// even once the meter writer knows the session and its totals come due again and again.
#[actix_rt::test]
async fn readings_on_an_unmetered_connector_never_overwrite_the_energy_the_app_reported() {
    let app = spawn_app().await;
    let (_, driver) = seed(&app, "CP-APPMETER", 1000).await;
    let charger = app.booted_charger("CP-APPMETER", 2).await;
    exec(&app, "UPDATE connectors SET metered = false WHERE connector_number = 1").await;
    let body = json!({ "stationId": "CP-APPMETER", "connectorId": "connector-1", "batteryLevelStart": 40 });
    let (status, started) = app.call("POST", "/api/charging/sessions/start", Some(&driver.token), Some(&body)).await;
    assert_eq!(status, 201, "{started}");
    let session_id = started["data"]["id"].as_i64().unwrap();
    charger.expect_call("RemoteStartTransaction", WAIT).await.expect("sent");
    let (tx, _) = charger.start_transaction(1, &driver.id_tag, 500, app.clock.now()).await.unwrap();
    charger.meter_values(1, Some(tx), 900, Some(6_000), None).await.unwrap();

    let update = json!({ "batteryLevel": 50, "energyDelivered": 4.2 });
    let (status, now) =
        app.call("PUT", "/api/charging/sessions/active/update", Some(&driver.token), Some(&update)).await;
    assert_eq!(status, 200, "{now}");
    for wh in [1_500, 2_500, 3_500] {
        app.clock.advance(ChronoDuration::seconds(6));
        charger.meter_values(1, Some(tx), wh, Some(7_000), None).await.unwrap();
    }
    // 4.2 kWh × 18.50 = 77.70, whatever the charger's register says.
    let totals = "energy_wh || '/' || cost || '/' || power_w";
    assert_eq!(session_field(&app, session_id, totals).await, "4200/77.70/7000");
    let stored = format!("SELECT count(*) FROM meter_readings WHERE session_id = {session_id}");
    assert_eq!(count(&app, &stored).await, 4);
}

/// With two threads serving chargers, the one meter writer (on a thread of its own) takes
/// readings from both, and answers each batch's callers on their own threads: every reading
/// sent at once by chargers spread over both is answered once stored, and moves its own
/// session and no other.
#[actix_rt::test]
async fn readings_from_chargers_on_two_threads_are_all_answered_and_each_moves_its_own_session() {
    const CHARGERS: i64 = 8;
    let app = spawn_app_with(&[("KILOWATT_OCPP_WORKERS", "2")]).await;
    let mut fleet = Vec::new();
    for i in 1..=CHARGERS {
        let cp = format!("CP-TWO-{i}");
        let (_, driver) = seed(&app, &cp, 1000).await;
        let charger = app.booted_charger(&cp, 2).await;
        let (session_id, tx) =
            start_through_api(&app, &charger, &driver, json!({ "chargerId": cp, "connectorId": 1 })).await;
        fleet.push((i, charger, session_id, tx));
    }
    for round in 1..=3 {
        // Each round's readings find their sessions' totals due.
        app.clock.advance(ChronoDuration::seconds(6));
        let sends = fleet
            .iter()
            .map(|(i, charger, _, tx)| charger.meter_values(1, Some(*tx), 1_000 + round * 100 * i, Some(7_000), None));
        for answer in futures_util::future::join_all(sends).await {
            answer.expect("every reading is answered");
        }
    }
    for (i, _, session_id, _) in &fleet {
        // Charger i's register went up 100·i Wh a round from the 1,000 it started at.
        assert_eq!(session_field(&app, *session_id, "energy_wh").await, (300 * i).to_string(), "charger {i}");
        let stored = format!("SELECT count(*) FROM meter_readings WHERE session_id = {session_id}");
        assert_eq!(count(&app, &stored).await, 3, "charger {i}");
    }
}

#[actix_rt::test]
async fn owners_complete_and_cancel_sessions_at_their_own_stations_only() {
    let app = spawn_app().await;
    let (owner, driver) = seed(&app, "CP-OWN", 1000).await;
    let stranger = app.owner("stranger").await;
    let charger = app.booted_charger("CP-OWN", 2).await;
    let (session_id, tx) =
        start_through_api(&app, &charger, &driver, json!({ "chargerId": "CP-OWN", "connectorId": 1 })).await;
    charger.meter_values(1, Some(tx), 3_000, Some(7_000), None).await.unwrap();

    let (status, live) = app.call("GET", "/api/owner/sessions/active", Some(&owner.token), None).await;
    assert_eq!(status, 200);
    assert_eq!(live["data"]["count"], 1);
    assert_eq!(live["data"]["runningRevenue"], "37.00");
    assert_eq!(live["data"]["sessions"][0]["driver"]["username"], driver.username.as_str());
    let (_, theirs) = app.call("GET", "/api/owner/sessions/active", Some(&stranger.token), None).await;
    assert_eq!(theirs["data"]["count"], 0);
    let (status, _) = app.call("GET", "/api/owner/sessions/active", Some(&driver.token), None).await;
    assert_eq!(status, 403);
    let path = format!("/api/owner/sessions/{session_id}/cancel");
    assert_eq!(app.call("POST", &path, Some(&stranger.token), None).await.0, 404);

    // Cancel: closed at once as Cancelled, billed for the energy delivered.
    let (status, answer) = app.call("POST", &path, Some(&owner.token), None).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["data"]["status"], "cancelled");
    assert_eq!(answer["data"]["cost"], "37.00");
    assert_eq!(session_field(&app, session_id, "status").await, "cancelled");
    charger.expect_call("RemoteStopTransaction", WAIT).await.expect("the charger is told to stop");
    charger.stop_transaction(tx, 3_000, app.clock.now(), "Remote", None).await.unwrap();
    assert_eq!(balance(&app, &driver).await, Decimal::new(96300, 2));

    // Complete: a normal stop, settled when the charger confirms.
    charger.status(1, "Available", "NoError").await.unwrap();
    app.clock.advance(ChronoDuration::minutes(5));
    let (session_id, tx) =
        start_through_api(&app, &charger, &driver, json!({ "chargerId": "CP-OWN", "connectorId": 1 })).await;
    let (status, answer) =
        app.call("POST", &format!("/api/owner/sessions/{session_id}/complete"), Some(&owner.token), None).await;
    assert_eq!((status, answer["data"]["status"].as_str()), (200, Some("stopping")), "{answer}");
    charger.stop_transaction(tx, 2_000, app.clock.now(), "Remote", None).await.unwrap();
    assert_eq!(session_field(&app, session_id, "status").await, "completed");
    assert_eq!(session_field(&app, session_id, "stop_reason").await, "Completed by the station owner");
    assert_eq!(ledger_sum(&app, &driver).await, balance(&app, &driver).await);
}

#[actix_rt::test]
async fn a_session_started_at_the_charger_needs_a_funded_wallet() {
    let app = spawn_app().await;
    let (_, driver) = seed(&app, "CP-RFID", 0).await;
    let charger = app.booted_charger("CP-RFID", 2).await;
    let answer = charger.authorize(&driver.id_tag).await.unwrap();
    assert_eq!(answer["idTagInfo"]["status"], "Blocked", "no balance, no charge");

    app.fund(&driver, 300).await;
    let answer = charger.authorize(&driver.id_tag).await.unwrap();
    assert_eq!(answer["idTagInfo"]["status"], "Accepted");
    let (tx, info) = charger.start_transaction(2, &driver.id_tag, 10_000, app.clock.now()).await.unwrap();
    assert_eq!(info["status"], "Accepted");
    let (_, active) = app.call("GET", "/api/charging/sessions/active", Some(&driver.token), None).await;
    assert_eq!(active["data"]["source"], "charger");
    assert_eq!(active["data"]["connectorId"], 2);
    charger.meter_values(2, Some(tx), 12_000, Some(7_000), None).await.unwrap();
    let (status, answer) =
        app.call("POST", "/api/charging/stop", Some(&driver.token), Some(&json!({ "transaction_id": tx }))).await;
    assert_eq!(status, 200, "{answer}");
    charger.expect_call("RemoteStopTransaction", WAIT).await.expect("sent");
    charger.stop_transaction(tx, 12_000, app.clock.now(), "Remote", None).await.unwrap();
    assert_eq!(balance(&app, &driver).await, Decimal::from(263));
}

#[actix_rt::test]
async fn the_app_flow_records_battery_levels_and_bills_an_unmetered_connector_by_estimate() {
    let app = spawn_app().await;
    let (_, driver) = seed(&app, "CP-APP", 1000).await;
    let charger = app.booted_charger("CP-APP", 2).await;
    exec(&app, "UPDATE connectors SET metered = false WHERE connector_number = 1").await;

    let body = json!({ "stationId": "CP-APP", "connectorId": "connector-1", "batteryLevelStart": 40 });
    let (status, started) = app.call("POST", "/api/charging/sessions/start", Some(&driver.token), Some(&body)).await;
    assert_eq!(status, 201, "{started}");
    assert_eq!(started["data"]["batteryLevelStart"], 40);
    let session_id = started["data"]["id"].as_i64().unwrap();
    charger.expect_call("RemoteStartTransaction", WAIT).await.expect("sent");
    let (tx, _) = charger.start_transaction(1, &driver.id_tag, 500, app.clock.now()).await.unwrap();
    // The charger's register on an unmetered connector is not what is billed.
    charger.meter_values(1, Some(tx), 900, None, None).await.unwrap();

    let update = json!({ "batteryLevel": 55 });
    let (status, now) =
        app.call("PUT", "/api/charging/sessions/active/update", Some(&driver.token), Some(&update)).await;
    assert_eq!(status, 200, "{now}");
    assert_eq!(now["data"]["socPercent"], 55);
    assert_eq!(now["data"]["energyWh"], 0);
    let (status, _) = app
        .call("PUT", "/api/charging/sessions/active/update", Some(&driver.token), Some(&json!({ "batteryLevel": 101 })))
        .await;
    assert_eq!(status, 422);

    app.clock.advance(ChronoDuration::minutes(25));
    let end = json!({ "sessionId": session_id, "batteryLevelEnd": 80, "stationRating": 5 });
    let (status, ended) = app.call("POST", "/api/charging/sessions/end", Some(&driver.token), Some(&end)).await;
    assert_eq!(status, 200, "{ended}");
    assert_eq!(ended["data"]["stop"]["status"], "stopping");
    charger.expect_call("RemoteStopTransaction", WAIT).await.expect("sent");
    charger.stop_transaction(tx, 900, app.clock.now(), "Remote", None).await.unwrap();

    // (80 − 40) % of a 60 kWh battery = 24 kWh × 18.50 = 444.00.
    assert_eq!(session_field(&app, session_id, "energy_wh").await, "24000");
    assert_eq!(balance(&app, &driver).await, Decimal::from(556));
    let (_, history) = app.call("GET", "/api/charging/sessions?filter=this-month", Some(&driver.token), None).await;
    assert_eq!(history["data"]["total"], 1);
    assert_eq!(history["data"]["sessions"][0]["rating"], 5);
    assert_eq!(history["data"]["sessions"][0]["batteryLevelEnd"], 80);
    assert_eq!(history["data"]["totals"]["energyKwh"], "24");
    assert_eq!(history["data"]["totals"]["spent"], "444.00");
    let (status, _) = app.call("GET", "/api/charging/sessions?filter=someday", Some(&driver.token), None).await;
    assert_eq!(status, 422);
    let (status, _) = app.call("GET", "/api/charging/sessions?limit=101", Some(&driver.token), None).await;
    assert_eq!(status, 422);

    let (_, stats) = app.call("GET", "/api/charging/stats", Some(&driver.token), None).await;
    assert_eq!(stats["data"]["totalSessions"], 1);
    assert_eq!(stats["data"]["totalSpent"], "444.00");
    assert_eq!(stats["data"]["averageSessionMinutes"], "25");
    assert_eq!(stats["data"]["favouriteStation"]["name"], "Hub");
    assert_eq!(stats["data"]["monthlyUsage"][0]["sessions"], 1);
    let (_, dashboard) = app.call("GET", "/api/charging/dashboard", Some(&driver.token), None).await;
    assert_eq!(dashboard["data"]["sessions"][0]["id"], session_id);
    assert_eq!(dashboard["data"]["activeSession"], Value::Null);

    let path = format!("/api/charging/sessions/{session_id}/rating");
    let (status, rated) = app.call("POST", &path, Some(&driver.token), Some(&json!({ "rating": 4 }))).await;
    assert_eq!((status, rated["data"]["rating"].as_i64()), (200, Some(4)));
    let other = app.driver("nosy").await;
    assert_eq!(app.call("POST", &path, Some(&other.token), Some(&json!({ "rating": 1 }))).await.0, 404);
    assert_eq!(app.call("GET", &format!("/api/charging/sessions/{session_id}"), Some(&other.token), None).await.0, 404);
    assert_eq!(app.call("POST", &path, Some(&driver.token), Some(&json!({ "rating": 6 }))).await.0, 422);
}

/// 200 chargers and 200 drivers at once: starts through the API, meter values, stops through
/// the API or at the charger, some chargers dropping and reconnecting mid-session. Afterwards
/// every wallet's balance equals its ledger, every session is settled exactly once, none is
/// left open.
#[actix_rt::test]
async fn two_hundred_chargers_and_drivers_settle_every_session_exactly_once() {
    const N: usize = 200;
    let app = spawn_app_with(&[("KILOWATT_DB_POOL_SIZE", "16")]).await;
    let owner = app.owner("fleet-owner").await;
    exec(
        &app,
        &format!(
            "INSERT INTO stations (owner_id, name, address, price_per_kwh) VALUES ({}, 'Fleet', 'Ring Road', 21.00)",
            owner.id
        ),
    )
    .await;
    exec(&app, &format!("INSERT INTO chargers (charge_point_id, station_id) SELECT 'FLEET-' || g, max(s.id) FROM generate_series(1, {N}) g, stations s GROUP BY g")).await;
    let mut drivers = Vec::new();
    for i in 0..N {
        let driver = app.driver(&format!("fleet-{i}")).await;
        app.fund(&driver, 1000).await;
        drivers.push(driver);
    }

    let runs = drivers.iter().enumerate().map(|(i, driver)| {
        let app = &app;
        async move {
            let cp = format!("FLEET-{}", i + 1);
            let options = ConnectOptions { clock: app.clock.clone(), ..ConnectOptions::default() };
            let charger = ChargePoint::connect_with(&app.ocpp_url, &cp, options.clone()).await.expect("connects");
            charger.boot().await.expect("boot");
            charger.status(1, "Available", "NoError").await.expect("status");
            let body = json!({ "chargerId": cp, "connectorId": 1 });
            let (status, answer) = app.call("POST", "/api/charging/start", Some(&driver.token), Some(&body)).await;
            assert_eq!(status, 201, "{cp}: {answer}");
            let session_id = answer["data"]["sessionId"].as_i64().unwrap();
            charger.expect_call("RemoteStartTransaction", WAIT).await.expect("RemoteStart");
            let (tx, _) = charger.start_transaction(1, &driver.id_tag, 0, app.clock.now()).await.expect("start");
            let mut charger = charger;
            let mut wh = 0;
            for step in 0..3 {
                wh += 250 + (i as i64 % 7) * 10;
                charger.meter_values(1, Some(tx), wh, Some(11_000), None).await.expect("meter");
                if step == 1 && i % 5 == 0 {
                    // Drops and reconnects mid-session.
                    charger.close().await;
                    charger = ChargePoint::connect_with(&app.ocpp_url, &cp, options.clone()).await.expect("reconnects");
                    charger.boot().await.expect("boot again");
                }
            }
            if i % 2 == 0 {
                let body = json!({ "sessionId": session_id });
                let (status, answer) = app.call("POST", "/api/charging/stop", Some(&driver.token), Some(&body)).await;
                assert_eq!(status, 200, "{cp}: {answer}");
                charger.expect_call("RemoteStopTransaction", WAIT).await.expect("RemoteStop");
            }
            // Every charger delivers its StopTransaction; some twice, as after a lost answer.
            for _ in 0..(1 + i % 3 / 2) {
                charger
                    .stop_transaction(tx, wh, app.clock.now(), if i % 2 == 0 { "Remote" } else { "Local" }, None)
                    .await
                    .expect("stop");
            }
            (session_id, wh)
        }
    });
    let results = futures_util::future::join_all(runs).await;

    assert_eq!(count(&app, "SELECT count(*) FROM charging_sessions WHERE status IN ('pending', 'active')").await, 0);
    assert_eq!(count(&app, "SELECT count(*) FROM charging_sessions WHERE status = 'completed'").await, N as i64);
    for (session_id, wh) in &results {
        assert_eq!(session_field(&app, *session_id, "energy_wh").await, wh.to_string());
        let debits = count(
            &app,
            &format!(
                "SELECT count(*) FROM wallet_entries WHERE reference_kind = 'session' AND reference_id = {session_id}"
            ),
        )
        .await;
        assert_eq!(debits, 1, "session {session_id} billed {debits} times");
    }
    assert_eq!(
        count(&app, "SELECT count(*) FROM wallets w WHERE balance <> (SELECT coalesce(sum(amount), 0) FROM wallet_entries e WHERE e.user_id = w.user_id)").await,
        0,
        "every balance equals its ledger"
    );
    let expected: Decimal =
        results.iter().map(|(_, wh)| (Decimal::from(*wh) / Decimal::from(1000) * Decimal::from(21)).round_dp(2)).sum();
    assert_eq!(money(&app, "SELECT sum(amount) FROM revenue_entries").await, expected);
}

#[actix_rt::test]
async fn a_drivers_energy_limit_stops_the_charge_and_a_stalled_meter_ends_a_session() {
    let app = spawn_app_with(&[("KILOWATT_METER_STALL_MINUTES", "30")]).await;
    let (_, driver) = seed(&app, "CP-LIMIT", 1000).await;
    let charger = app.booted_charger("CP-LIMIT", 2).await;
    let body = json!({ "chargerId": "CP-LIMIT", "connectorId": 1, "energyLimitKwh": 2 });
    let (session_id, tx) = start_through_api(&app, &charger, &driver, body).await;
    charger.meter_values(1, Some(tx), 2_000, Some(7_000), None).await.unwrap();
    assert!(charger.received_calls().iter().all(|(a, _)| a != "RemoteStopTransaction"));
    charger.meter_values(1, Some(tx), 3_000, Some(7_000), None).await.unwrap();
    charger.expect_call("RemoteStopTransaction", WAIT).await.expect("stopped at the driver's limit");
    charger.stop_transaction(tx, 3_050, app.clock.now(), "Remote", None).await.unwrap();
    assert_eq!(session_field(&app, session_id, "stop_reason").await, "Energy limit reached");

    // A meter that stops advancing: the session ends, billed for what was delivered.
    charger.status(1, "Available", "NoError").await.unwrap();
    app.clock.advance(ChronoDuration::minutes(1));
    let body = json!({ "chargerId": "CP-LIMIT", "connectorId": 1 });
    let (session_id, tx) = start_through_api(&app, &charger, &driver, body).await;
    charger.meter_values(1, Some(tx), 2_000, Some(7_000), None).await.unwrap();
    app.clock.advance(ChronoDuration::minutes(20));
    charger.meter_values(1, Some(tx), 2_000, Some(0), None).await.unwrap();
    app.clock.advance(ChronoDuration::minutes(11));
    assert!(eventually(async || session_field(&app, session_id, "status").await == "completed").await);
    assert!(session_field(&app, session_id, "stop_reason").await.contains("meter stopped advancing"));
    assert_eq!(session_field(&app, session_id, "cost").await, "18.50");
    assert_eq!(ledger_sum(&app, &driver).await, balance(&app, &driver).await);
}

#[actix_rt::test]
async fn a_meter_that_keeps_advancing_outlives_the_first_stall_deadline() {
    let app = spawn_app_with(&[("KILOWATT_METER_STALL_MINUTES", "30")]).await;
    let (_, driver) = seed(&app, "CP-STALL", 1000).await;
    let charger = app.booted_charger("CP-STALL", 2).await;
    let body = json!({ "chargerId": "CP-STALL", "connectorId": 1 });
    let (session_id, tx) = start_through_api(&app, &charger, &driver, body).await;
    // A reading every 20 minutes, each further on: the 30-minute deadline the session started
    // with passes twice, and each time the timer finds the meter has moved.
    for wh in [1_000, 2_000, 3_000] {
        app.clock.advance(ChronoDuration::minutes(20));
        charger.meter_values(1, Some(tx), wh, Some(7_000), None).await.unwrap();
    }
    let last_move = app.clock.now();
    // The last reading was stored on an open session (a settled one takes no more energy).
    assert_eq!(session_field(&app, session_id, "energy_wh = 3000 - meter_start_wh").await, "true");

    // Then it stops advancing: the session ends 30 minutes after the last reading that moved,
    // not at a deadline an earlier reading had set.
    app.clock.advance(ChronoDuration::minutes(31));
    assert!(eventually(async || session_field(&app, session_id, "status").await == "completed").await);
    assert!(session_field(&app, session_id, "stop_reason").await.contains("meter stopped advancing"));
    let ended_in_time = format!("ended_at >= '{}'::timestamptz + interval '30 minutes'", last_move.to_rfc3339());
    assert_eq!(session_field(&app, session_id, &ended_in_time).await, "true");
    assert_eq!(ledger_sum(&app, &driver).await, balance(&app, &driver).await);
}

#[actix_rt::test]
async fn one_driver_starting_at_two_chargers_at_once_gets_one_session_and_a_concurrent_tx() {
    let app = spawn_app().await;
    let (_, driver) = seed(&app, "CP-TWIN-A", 1000).await;
    exec(&app, "INSERT INTO chargers (charge_point_id, station_id) SELECT 'CP-TWIN-B', max(id) FROM stations").await;
    let (a, b) = (app.booted_charger("CP-TWIN-A", 2).await, app.booted_charger("CP-TWIN-B", 2).await);
    let now = app.clock.now();
    let (first, second) = futures_util::future::join(
        a.start_transaction(1, &driver.id_tag, 0, now),
        b.start_transaction(1, &driver.id_tag, 0, now),
    )
    .await;
    // Both are answered normally (never an InternalError the charger would resend forever).
    let mut statuses = vec![
        first.expect("answered").1["status"].as_str().unwrap().to_owned(),
        second.expect("answered").1["status"].as_str().unwrap().to_owned(),
    ];
    statuses.sort();
    assert_eq!(statuses, ["Accepted", "ConcurrentTx"]);
    let billable =
        format!("SELECT count(*) FROM charging_sessions WHERE user_id = {} AND status = 'active'", driver.id);
    assert_eq!(count(&app, &billable).await, 1, "exactly one billable session");
}
