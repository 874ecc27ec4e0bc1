//! Queues end to end: drivers wait for a busy one-connector charger, the first is held the
//! connector when it frees (ReserveNow on the charger, nobody else can start), a hold that
//! lapses passes to the next driver, starting consumes the hold, and queues survive a restart;
//! a driver who starts at the charger without a turn of their own leaves the line.

mod common;

use std::time::Duration;

use chrono::Duration as ChronoDuration;
use common::sql::{count, exec, scalar};
use common::{TestApp, User, error_code, eventually, spawn_app_with};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(10);

/// An owner's station at ₹20/kWh with one charger, `cp`, registered to it (not yet connected).
async fn station_with_charger(app: &TestApp, owner: &str, cp: &str) {
    let owner = app.owner(owner).await;
    let station = format!(
        "INSERT INTO stations (owner_id, name, address, price_per_kwh) VALUES ({}, 'Station {cp}', 'Here', 20)",
        owner.id
    );
    exec(app, &station).await;
    exec(app, &format!("INSERT INTO chargers (charge_point_id, station_id) SELECT '{cp}', max(id) FROM stations"))
        .await;
}

async fn my_queue(app: &TestApp, driver: &User) -> Value {
    app.call("GET", "/api/queue", Some(&driver.token), None).await.1["data"].clone()
}

#[actix_rt::test]
async fn a_queue_advances_by_itself_with_holds_and_lapses_and_survives_a_restart() {
    let mut app = spawn_app_with(&[("KILOWATT_QUEUE_HOLD_MINUTES", "5")]).await;
    station_with_charger(&app, "q-owner", "CP-Q").await;
    let [asha, bala, chitra] = [app.driver("asha").await, app.driver("bala").await, app.driver("chitra").await];
    for driver in [&asha, &bala, &chitra] {
        app.fund(driver, 1000).await;
    }
    let charger = app.booted_charger("CP-Q", 0).await;
    charger.status(1, "Available", "NoError").await.unwrap();

    // Nobody waits for a free connector.
    let (status, body) = app.call("POST", "/api/chargers/CP-Q/queue", Some(&bala.token), None).await;
    assert_eq!((status, error_code(&body)), (409, "connector_available"));

    // Asha charges; Bala then Chitra queue.
    let start = json!({ "chargerId": "CP-Q", "connectorId": 1 });
    assert_eq!(app.call("POST", "/api/charging/start", Some(&asha.token), Some(&start)).await.0, 201);
    charger.expect_call("RemoteStartTransaction", WAIT).await.unwrap();
    let (tx, _) = charger.start_transaction(1, &asha.id_tag, 0, app.clock.now()).await.unwrap();
    charger.status(1, "Charging", "NoError").await.unwrap();
    let (status, body) = app.call("POST", "/api/chargers/CP-Q/queue", Some(&asha.token), None).await;
    assert_eq!((status, error_code(&body)), (409, "charging_here"));
    let (status, body) =
        app.call("POST", "/api/chargers/CP-Q/queue", Some(&bala.token), Some(&json!({ "connectorId": 1 }))).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["data"]["position"], 1);
    let (status, body) = app.call("POST", "/api/chargers/CP-Q/queue", Some(&chitra.token), None).await;
    assert_eq!((status, body["data"]["position"].as_i64()), (201, Some(2)));
    assert!(body["data"]["estimatedWaitMinutes"].as_i64().unwrap() > 0);
    let (status, body) = app.call("POST", "/api/chargers/CP-Q/queue", Some(&chitra.token), None).await;
    assert_eq!((status, error_code(&body)), (409, "already_queued"));
    assert_eq!(my_queue(&app, &bala).await[0]["status"], "waiting");

    // Asha finishes and unplugs: Bala's turn, the connector reserved for Bala.
    charger.stop_transaction(tx, 4_000, app.clock.now(), "Local", None).await.unwrap();
    charger.status(1, "Available", "NoError").await.unwrap();
    let reserve = charger.expect_call("ReserveNow", WAIT).await.expect("ReserveNow for the first in line");
    assert_eq!(reserve["idTag"], bala.id_tag.as_str());
    assert!(eventually(async || my_queue(&app, &bala).await[0]["status"] == "held").await);
    let told = format!("SELECT count(*) FROM notifications WHERE kind = 'queue_turn' AND user_id = {}", bala.id);
    assert!(eventually(async || count(&app, &told).await == 1).await, "the driver is told it is their turn");
    charger.status(1, "Reserved", "NoError").await.unwrap();
    let (status, body) = app.call("POST", "/api/charging/start", Some(&chitra.token), Some(&start)).await;
    assert_eq!((status, error_code(&body)), (409, "connector_busy"), "nobody else starts on a held connector");

    // Kilowatt restarts; Bala never comes; the hold lapses and passes to Chitra.
    app.restart().await;
    let charger = app.booted_charger("CP-Q", 0).await;
    charger.status(1, "Reserved", "NoError").await.unwrap();
    app.clock.advance(ChronoDuration::minutes(6));
    assert!(eventually(async || charger.received_calls().iter().any(|(a, _)| a == "CancelReservation")).await);
    charger.status(1, "Available", "NoError").await.unwrap();
    let reserve = charger.expect_call("ReserveNow", WAIT).await.expect("ReserveNow for the next driver");
    assert_eq!(reserve["idTag"], chitra.id_tag.as_str());
    assert_eq!(my_queue(&app, &bala).await, json!([]));
    assert_eq!(
        scalar::<String>(&app, &format!("SELECT status FROM queue_entries WHERE user_id = {}", bala.id)).await,
        "lapsed"
    );
    assert!(eventually(async || my_queue(&app, &chitra).await[0]["status"] == "held").await);

    // Chitra starts in time: the hold is used and her queue entry done.
    charger.status(1, "Reserved", "NoError").await.unwrap();
    let (status, body) = app.call("POST", "/api/charging/start", Some(&chitra.token), Some(&start)).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        scalar::<String>(&app, &format!("SELECT status FROM queue_entries WHERE user_id = {}", chitra.id)).await,
        "started"
    );
    assert_eq!(
        scalar::<String>(
            &app,
            &format!("SELECT status FROM reservations WHERE user_id = {} ORDER BY id DESC LIMIT 1", chitra.id)
        )
        .await,
        "used"
    );
    assert_eq!(my_queue(&app, &chitra).await, json!([]));
}

#[actix_rt::test]
async fn leaving_a_held_turn_passes_it_on_at_once() {
    let app = spawn_app_with(&[]).await;
    station_with_charger(&app, "l-owner", "CP-L").await;
    let [first, second] = [app.driver("first").await, app.driver("second").await];
    let charger = app.booted_charger("CP-L", 0).await;
    charger.status(1, "Charging", "NoError").await.unwrap();
    for driver in [&first, &second] {
        assert_eq!(app.call("POST", "/api/chargers/CP-L/queue", Some(&driver.token), None).await.0, 201);
    }
    assert_eq!(
        app.call("DELETE", "/api/chargers/CP-L/queue", Some(&app.driver("nobody").await.token), None).await.0,
        404
    );
    charger.status(1, "Available", "NoError").await.unwrap();
    let reserve = charger.expect_call("ReserveNow", WAIT).await.unwrap();
    assert_eq!(reserve["idTag"], first.id_tag.as_str());
    assert!(eventually(async || my_queue(&app, &first).await[0]["status"] == "held").await);
    assert_eq!(app.call("DELETE", "/api/chargers/CP-L/queue", Some(&first.token), None).await.0, 200);
    assert!(eventually(async || charger.received_calls().iter().any(|(a, _)| a == "CancelReservation")).await);
    assert!(eventually(async || my_queue(&app, &second).await[0]["status"] == "held").await);
    assert_eq!(my_queue(&app, &second).await[0]["position"], 1);
}

#[actix_rt::test]
async fn a_driver_queued_for_one_connector_who_starts_on_another_leaves_the_line() {
    let app = spawn_app_with(&[]).await;
    station_with_charger(&app, "s-owner", "CP-S").await;
    let [bala, chitra] = [app.driver("s-bala").await, app.driver("s-chitra").await];
    for driver in [&bala, &chitra] {
        app.fund(driver, 1000).await;
    }
    let charger = app.booted_charger("CP-S", 0).await;
    charger.status(1, "Charging", "NoError").await.unwrap();
    charger.status(2, "Charging", "NoError").await.unwrap();

    // Both wait for connector 1, Bala first.
    let for_one = json!({ "connectorId": 1 });
    for driver in [&bala, &chitra] {
        let (status, body) = app.call("POST", "/api/chargers/CP-S/queue", Some(&driver.token), Some(&for_one)).await;
        assert_eq!(status, 201, "{body}");
    }
    assert_eq!(my_queue(&app, &chitra).await[0]["position"], 2);

    // Connector 2 frees: it is nobody's turn (they queued for connector 1), so Bala takes it.
    charger.status(2, "Available", "NoError").await.unwrap();
    let start = json!({ "chargerId": "CP-S", "connectorId": 2 });
    let (status, body) = app.call("POST", "/api/charging/start", Some(&bala.token), Some(&start)).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(charger.expect_call("RemoteStartTransaction", WAIT).await.unwrap()["connectorId"], 2);

    // Bala's place in line is used up, without a hold ever made for it, and Chitra is first.
    assert_eq!(
        scalar::<String>(&app, &format!("SELECT status FROM queue_entries WHERE user_id = {}", bala.id)).await,
        "started"
    );
    assert_eq!(count(&app, &format!("SELECT count(*) FROM reservations WHERE user_id = {}", bala.id)).await, 0);
    assert_eq!(my_queue(&app, &bala).await, json!([]));
    assert!(eventually(async || my_queue(&app, &chitra).await[0]["position"] == 1).await);

    // When connector 1 frees, the turn is Chitra's.
    charger.status(1, "Available", "NoError").await.unwrap();
    let reserve = charger.expect_call("ReserveNow", WAIT).await.expect("ReserveNow for the next in line");
    assert_eq!(reserve["idTag"], chitra.id_tag.as_str());
    assert_eq!(reserve["connectorId"], 1);
}

#[actix_rt::test]
async fn a_queue_turn_never_takes_a_connector_a_booked_slot_is_about_to_need() {
    let app = spawn_app_with(&[]).await;
    station_with_charger(&app, "b-owner", "CP-B").await;
    let [booker, waiter] = [app.driver("booker").await, app.driver("waiter").await];
    app.fund(&booker, 1000).await;
    let charger = app.booted_charger("CP-B", 0).await;
    charger.status(1, "Charging", "NoError").await.unwrap();
    let start_at = (app.clock.now() + ChronoDuration::minutes(20)).to_rfc3339();
    let booking = json!({ "chargerId": "CP-B", "connectorId": 1, "startAt": start_at, "durationMinutes": 60 });
    let (status, body) = app.call("POST", "/api/users/bookings", Some(&booker.token), Some(&booking)).await;
    assert_eq!(status, 201, "{body}");
    let booking_id = body["data"]["id"].as_i64().expect("booking id");
    assert_eq!(app.call("POST", "/api/chargers/CP-B/queue", Some(&waiter.token), None).await.0, 201);
    charger.status(1, "Available", "NoError").await.unwrap();
    // A round trip gives the queue time to look; the contrast below shows it would have acted.
    charger.heartbeat().await.unwrap();
    assert!(charger.received_calls().iter().all(|(a, _)| a != "ReserveNow"), "the slot keeps its connector");
    assert_eq!(my_queue(&app, &waiter).await[0]["status"], "waiting");

    // Once the booking is cancelled, the same freed connector does go to the queue.
    let path = format!("/api/users/bookings/{booking_id}");
    assert_eq!(app.call("DELETE", &path, Some(&booker.token), None).await.0, 200);
    charger.status(1, "Available", "NoError").await.unwrap();
    let reserve = charger.expect_call("ReserveNow", WAIT).await.expect("the queue advances without the booking");
    assert_eq!(reserve["idTag"], waiter.id_tag.as_str());
}
