//! Slot bookings end to end: booking debits the fee (and every refusal changes nothing), the
//! slot start notifies the driver and reserves the connector on the charger, a check-in (app
//! or a signed QR code) stops the countdown, a no-show expires without refund and cancels the
//! reservation, cancelling refunds per the cutoff, timers survive a restart and the sweep
//! catches what no timer watches, and owners' slot monitoring counts exactly their bookings.

mod common;

use std::time::Duration;

use chrono::{DateTime, Duration as ChronoDuration, SecondsFormat, SubsecRound, Utc};
use common::charge_point::Reply;
use common::sql::{count, exec, money, scalar};
use common::{TestApp, User, error_code, eventually, spawn_app_with};
use kilowatt_actors::ocpp::ErrorCode;
use rust_decimal::Decimal;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(10);

/// Grace 30 min, fee 50, full refund until 60 min before the slot, a signing key for QR codes.
const SETTINGS: &[(&str, &str)] = &[
    ("KILOWATT_GRACE_PERIOD_MINUTES", "30"),
    ("KILOWATT_BOOKING_FEE", "50"),
    ("KILOWATT_BOOKING_REFUND_CUTOFF_MINUTES", "60"),
    ("KILOWATT_SECRET_KEY", "bookings-test-secret-key-0123456789abcdef"),
];

/// A station of `owner` with a two-connector charger `cp`; answers the station ID.
async fn station(app: &TestApp, owner: &User, cp: &str) -> i64 {
    app.station_with_charger(owner, &format!("Hub {cp}"), cp).await
}

/// A driver with `balance` INR in the wallet.
async fn funded(app: &TestApp, name: &str, balance: i64) -> User {
    let driver = app.driver(name).await;
    app.fund(&driver, balance).await;
    driver
}

/// The test clock's now, to the second (slot times then compare exactly).
fn now(app: &TestApp) -> DateTime<Utc> {
    app.clock.now().trunc_subsecs(0)
}

fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}

async fn book(
    app: &TestApp,
    driver: &User,
    cp: &str,
    connector: i32,
    start: DateTime<Utc>,
    minutes: i64,
) -> (u16, Value) {
    let body =
        json!({ "chargerId": cp, "connectorId": connector, "startAt": rfc3339(start), "durationMinutes": minutes });
    app.call("POST", "/api/users/bookings", Some(&driver.token), Some(&body)).await
}

/// Books and answers the booking ID (201 expected).
async fn booked(app: &TestApp, driver: &User, cp: &str, connector: i32, start: DateTime<Utc>, minutes: i64) -> i64 {
    let (status, body) = book(app, driver, cp, connector, start, minutes).await;
    assert_eq!(status, 201, "{body}");
    body["data"]["id"].as_i64().expect("booking id")
}

async fn booking(app: &TestApp, driver: &User, id: i64) -> Value {
    let (status, body) = app.call("GET", &format!("/api/users/bookings/{id}"), Some(&driver.token), None).await;
    assert_eq!(status, 200, "{body}");
    body["data"].clone()
}

async fn status_of(app: &TestApp, id: i64) -> String {
    scalar(app, &format!("SELECT status FROM bookings WHERE id = {id}")).await
}

/// Waits until the booking is in `status`.
async fn reaches(app: &TestApp, id: i64, status: &str) {
    let reached = eventually(async || status_of(app, id).await == status).await;
    assert!(reached, "booking {id} is {} instead of {status}", status_of(app, id).await);
}

async fn balance(app: &TestApp, user: &User) -> Decimal {
    money(app, &format!("SELECT balance FROM wallets WHERE user_id = {}", user.id)).await
}

async fn ledger_sum(app: &TestApp, user: &User) -> Decimal {
    money(app, &format!("SELECT coalesce(sum(amount), 0) FROM wallet_entries WHERE user_id = {}", user.id)).await
}

async fn notified(app: &TestApp, id: i64, kind: &str) -> bool {
    let sql = format!("SELECT count(*) FROM notifications WHERE booking_id = {id} AND kind = '{kind}'");
    eventually(async || count(app, &sql).await == 1).await
}

async fn check_in(app: &TestApp, driver: &User, id: i64, body: Value) -> (u16, Value) {
    app.call("PUT", &format!("/api/users/bookings/{id}/checkin"), Some(&driver.token), Some(&body)).await
}

fn dec(value: &str) -> Decimal {
    value.parse().expect("decimal")
}

#[actix_rt::test]
async fn booking_debits_the_fee_and_every_refusal_changes_nothing() {
    let app = spawn_app_with(SETTINGS).await;
    let owner = app.owner("b-owner").await;
    station(&app, &owner, "CP-B1").await;
    let _charger = app.booted_charger("CP-B1", 2).await;
    let asha = funded(&app, "asha", 200).await;
    let bala = funded(&app, "bala", 200).await;
    let poor = funded(&app, "poor", 10).await;
    let t0 = now(&app);

    let (status, body) = book(&app, &asha, "CP-B1", 1, t0 + ChronoDuration::hours(2), 60).await;
    assert_eq!(status, 201, "{body}");
    let data = &body["data"];
    let id = data["id"].as_i64().unwrap();
    assert_eq!(data["status"], "confirmed");
    assert_eq!(data["fee"], "50.00");
    assert_eq!(data["chargerId"], "CP-B1");
    assert_eq!(data["connectorId"], 1);
    assert_eq!(data["durationMinutes"], 60);
    assert_eq!(data["station"]["name"], "Hub CP-B1");
    assert_eq!(data["refundableUntil"], rfc3339(t0 + ChronoDuration::hours(1)));
    assert_eq!(data["slot"]["started"], false);
    assert_eq!(data["slot"]["inGracePeriod"], false);
    assert_eq!(balance(&app, &asha).await, Decimal::from(150));
    assert_eq!(ledger_sum(&app, &asha).await, Decimal::from(150));
    let entry = format!(
        "SELECT count(*) FROM wallet_entries WHERE user_id = {} AND kind = 'booking' AND amount = -50 \
         AND description = 'Slot booking fee' AND reference_kind = 'booking' AND reference_id = {id}",
        asha.id
    );
    assert_eq!(count(&app, &entry).await, 1);

    // Overlapping the slot on the same connector: taken. Another connector, or right after: fine.
    let (status, body) = book(&app, &bala, "CP-B1", 1, t0 + ChronoDuration::minutes(150), 60).await;
    assert_eq!((status, error_code(&body)), (409, "slot_taken"));
    booked(&app, &bala, "CP-B1", 2, t0 + ChronoDuration::minutes(150), 60).await;
    // A driver cannot hold two slots at once.
    let (status, body) = book(&app, &asha, "CP-B1", 2, t0 + ChronoDuration::minutes(100), 30).await;
    assert_eq!((status, error_code(&body)), (409, "booking_overlaps"));
    booked(&app, &asha, "CP-B1", 1, t0 + ChronoDuration::hours(3), 30).await;

    // In the past, too short, unknown connector, poor wallet.
    let (status, body) = book(&app, &bala, "CP-B1", 1, t0 - ChronoDuration::minutes(1), 60).await;
    assert_eq!(
        (status, error_code(&body), body["error"]["field"].as_str()),
        (422, "validation_failed", Some("startAt"))
    );
    let (status, _) = book(&app, &bala, "CP-B1", 1, t0 + ChronoDuration::hours(5), 5).await;
    assert_eq!(status, 422);
    let (status, _) = book(&app, &bala, "CP-B1", 9, t0 + ChronoDuration::hours(5), 60).await;
    assert_eq!(status, 404);
    let (status, body) = book(&app, &poor, "CP-B1", 1, t0 + ChronoDuration::hours(5), 60).await;
    assert_eq!((status, error_code(&body)), (402, "insufficient_balance"));
    assert_eq!(balance(&app, &poor).await, Decimal::from(10));
    assert_eq!(count(&app, &format!("SELECT count(*) FROM bookings WHERE user_id = {}", poor.id)).await, 0);

    // The station's own fee wins over the network's.
    exec(&app, "UPDATE stations SET booking_fee = 75").await;
    let (status, body) = book(&app, &bala, "CP-B1", 1, t0 + ChronoDuration::hours(6), 60).await;
    assert_eq!((status, body["data"]["fee"].as_str()), (201, Some("75.00")));
    assert_eq!(balance(&app, &bala).await, Decimal::from(75));

    // Two drivers racing for one slot: the database lets exactly one through.
    let [c, d] = [funded(&app, "chitra", 100).await, funded(&app, "dev", 100).await];
    let start = t0 + ChronoDuration::hours(10);
    let (a, b) = tokio::join!(book(&app, &c, "CP-B1", 2, start, 60), book(&app, &d, "CP-B1", 2, start, 60));
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, [201, 409], "{} / {}", a.1, b.1);
    assert_eq!(balance(&app, &c).await + balance(&app, &d).await, Decimal::from(125));

    let (status, list) = app.call("GET", "/api/users/bookings", Some(&asha.token), None).await;
    assert_eq!(status, 200);
    assert_eq!(list["data"]["total"], 2);
    // Nobody sees another driver's booking.
    let (status, _) = app.call("GET", &format!("/api/users/bookings/{id}"), Some(&bala.token), None).await;
    assert_eq!(status, 404);

    // Every booking endpoint is in the OpenAPI document.
    let (_, document) = app.get("/api/openapi.json").await;
    for (path, method) in [
        ("/api/users/bookings", "post"),
        ("/api/users/bookings", "get"),
        ("/api/users/bookings/{bookingId}", "get"),
        ("/api/users/bookings/{bookingId}", "delete"),
        ("/api/users/bookings/{bookingId}/checkin", "put"),
        ("/api/chargers/{chargePointId}/checkin-code", "get"),
        ("/api/vendor/dashboard/slot-monitoring", "get"),
    ] {
        assert!(document["paths"][path][method].is_object(), "{method} {path} missing from the OpenAPI document");
    }
}

#[actix_rt::test]
async fn slot_start_reserves_the_connector_and_an_app_check_in_stops_the_countdown_across_a_restart() {
    let mut app = spawn_app_with(SETTINGS).await;
    let owner = app.owner("s-owner").await;
    station(&app, &owner, "CP-S1").await;
    let charger = app.booted_charger("CP-S1", 2).await;
    let driver = funded(&app, "sita", 500).await;
    let start = now(&app) + ChronoDuration::minutes(30);
    let id = booked(&app, &driver, "CP-S1", 2, start, 60).await;

    // Kilowatt restarts before the slot: the timer is rebuilt from the database.
    drop(charger);
    app.restart().await;
    let charger = app.booted_charger("CP-S1", 2).await;
    app.clock.set(start - ChronoDuration::minutes(1));
    assert_eq!(status_of(&app, id).await, "confirmed");
    assert!(charger.received_calls().iter().all(|(action, _)| action != "ReserveNow"));

    app.clock.set(start);
    let reserve = charger.expect_call("ReserveNow", WAIT).await.expect("ReserveNow sent at slot start");
    assert_eq!(reserve["connectorId"], 2);
    assert_eq!(reserve["idTag"], driver.id_tag.as_str());
    let expiry: DateTime<Utc> = reserve["expiryDate"].as_str().and_then(|t| t.parse().ok()).expect("expiryDate");
    assert_eq!(expiry, start + ChronoDuration::minutes(30));
    let reservation_id = reserve["reservationId"].as_i64().unwrap();
    reaches(&app, id, "grace").await;
    let accepted = format!("SELECT status FROM reservations WHERE id = {reservation_id}");
    assert!(eventually(async || scalar::<String>(&app, &accepted).await == "accepted").await);
    assert_eq!(
        count(&app, &format!("SELECT count(*) FROM reservations WHERE booking_id = {id} AND user_id = {}", driver.id))
            .await,
        1
    );
    let view = booking(&app, &driver, id).await;
    assert_eq!(view["status"], "grace");
    assert_eq!(view["reservationStatus"], "accepted");
    assert_eq!(view["slot"]["started"], true);
    assert_eq!(view["slot"]["inGracePeriod"], true);
    assert_eq!(view["slot"]["graceTimeRemaining"], 1800);
    assert_eq!(view["slot"]["overdue"], true);
    assert_eq!(view["slot"]["graceEndsAt"], rfc3339(start + ChronoDuration::minutes(30)));

    // The driver is told: the countdown, where, how to check in, the no-refund policy.
    assert!(notified(&app, id, "booking_slot_started").await, "no slot-start notification");
    let text: String = scalar(&app, &format!("SELECT body_text FROM notifications WHERE booking_id = {id}")).await;
    for expected in ["30 minutes to check in", "Hub CP-S1", "CP-S1, connector 2", "QR code", "not refunded"] {
        assert!(text.contains(expected), "{expected:?} missing from: {text}");
    }
    let sms: String = scalar(&app, &format!("SELECT sms_text FROM notifications WHERE booking_id = {id}")).await;
    assert!(sms.contains("30 min"), "{sms}");

    // Restart again, mid-grace: nothing is sent twice, and the check-in still works.
    drop(charger);
    app.restart().await;
    let charger = app.booted_charger("CP-S1", 2).await;
    app.clock.advance(ChronoDuration::minutes(10));
    let (status, body) = check_in(&app, &driver, id, json!({ "method": "app" })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["status"], "checked_in");
    assert_eq!(body["data"]["slot"]["checkinMethod"], "app");
    assert_eq!(body["data"]["slot"]["inGracePeriod"], false);
    assert_eq!(body["data"]["slot"]["graceTimeRemaining"], 0);
    // Checking in twice is harmless.
    let (status, _) = check_in(&app, &driver, id, json!({ "method": "app" })).await;
    assert_eq!(status, 200);
    // Kilowatt holds the connector for the checked-in driver until the slot ends.
    let expires = format!(
        "SELECT expires_at = '{}' FROM reservations WHERE id = {reservation_id}",
        rfc3339(start + ChronoDuration::hours(1))
    );
    assert!(eventually(async || scalar::<String>(&app, &expires).await == "true").await);

    // Past the grace end: checked in, so nothing expires and nothing is cancelled.
    app.clock.set(start + ChronoDuration::minutes(45));
    assert!(charger.expect_call("CancelReservation", Duration::from_millis(500)).await.is_none());
    assert_eq!(status_of(&app, id).await, "checked_in");
    assert_eq!(count(&app, &format!("SELECT count(*) FROM notifications WHERE booking_id = {id}")).await, 1);
    assert!(charger.received_calls().iter().all(|(action, _)| action != "ReserveNow"), "ReserveNow sent twice");

    // The slot ends: completed, the hold lapses.
    app.clock.set(start + ChronoDuration::hours(1));
    reaches(&app, id, "completed").await;
    assert!(eventually(async || scalar::<String>(&app, &accepted).await == "expired").await);
    assert_eq!(balance(&app, &driver).await, Decimal::from(450));
}

#[actix_rt::test]
async fn a_no_show_expires_without_refund_cancels_the_reservation_and_is_told_across_a_restart() {
    let mut app = spawn_app_with(SETTINGS).await;
    let owner = app.owner("n-owner").await;
    station(&app, &owner, "CP-N1").await;
    let charger = app.booted_charger("CP-N1", 2).await;
    let driver = funded(&app, "nina", 100).await;
    let start = now(&app) + ChronoDuration::minutes(90);
    let id = booked(&app, &driver, "CP-N1", 1, start, 60).await;
    assert_eq!(balance(&app, &driver).await, Decimal::from(50));

    app.clock.set(start);
    let reserve = charger.expect_call("ReserveNow", WAIT).await.expect("ReserveNow sent");
    let reservation_id = reserve["reservationId"].as_i64().unwrap();
    reaches(&app, id, "grace").await;
    let reservation = format!("SELECT status FROM reservations WHERE id = {reservation_id}");
    assert!(eventually(async || scalar::<String>(&app, &reservation).await == "accepted").await);

    // Kilowatt restarts in the middle of the grace period.
    drop(charger);
    app.restart().await;
    let charger = app.booted_charger("CP-N1", 2).await;
    app.clock.set(start + ChronoDuration::minutes(29));
    assert_eq!(status_of(&app, id).await, "grace");
    assert_eq!(booking(&app, &driver, id).await["slot"]["graceTimeRemaining"], 60);

    app.clock.set(start + ChronoDuration::minutes(30));
    let cancel = charger.expect_call("CancelReservation", WAIT).await.expect("CancelReservation sent");
    assert_eq!(cancel["reservationId"], reservation_id);
    reaches(&app, id, "expired").await;
    assert!(eventually(async || scalar::<String>(&app, &reservation).await == "cancelled").await);
    let view = booking(&app, &driver, id).await;
    assert_eq!(view["slot"]["expired"], true);
    assert_eq!(view["slot"]["expiredReason"], "no_show");
    assert_eq!(view["slot"]["inGracePeriod"], false);
    assert_eq!(view["refundAmount"], Value::Null);
    // No refund.
    assert_eq!(balance(&app, &driver).await, Decimal::from(50));
    assert_eq!(ledger_sum(&app, &driver).await, Decimal::from(50));
    assert_eq!(
        count(&app, &format!("SELECT count(*) FROM wallet_entries WHERE reference_id = {id} AND kind = 'refund'"))
            .await,
        0
    );
    assert!(notified(&app, id, "booking_expired").await, "no expiry notification");
    let text: String = scalar(
        &app,
        &format!("SELECT body_text FROM notifications WHERE booking_id = {id} AND kind = 'booking_expired'"),
    )
    .await;
    for expected in ["has expired", "not refunded", "cancel at least 60 minutes before"] {
        assert!(text.contains(expected), "{expected:?} missing from: {text}");
    }

    // Too late to check in or cancel.
    let (status, body) = check_in(&app, &driver, id, json!({ "method": "app" })).await;
    assert_eq!((status, error_code(&body)), (409, "booking_expired"));
    let (status, body) = app.call("DELETE", &format!("/api/users/bookings/{id}"), Some(&driver.token), None).await;
    assert_eq!((status, error_code(&body)), (409, "booking_closed"));
}

#[actix_rt::test]
async fn a_charger_that_cannot_reserve_leaves_the_hold_to_kilowatt() {
    let app = spawn_app_with(SETTINGS).await;
    let owner = app.owner("u-owner").await;
    station(&app, &owner, "CP-U1").await;
    let charger = app.booted_charger("CP-U1", 2).await;
    charger.set_responder(|action, payload| match action {
        "ReserveNow" | "CancelReservation" => Reply::Error(ErrorCode::NotImplemented, "no reservations".into()),
        _ => common::charge_point::default_reply(action, payload),
    });
    let driver = funded(&app, "uma", 100).await;
    let start = now(&app) + ChronoDuration::minutes(20);
    let id = booked(&app, &driver, "CP-U1", 1, start, 30).await;

    app.clock.set(start);
    charger.expect_call("ReserveNow", WAIT).await.expect("ReserveNow tried");
    let hold = format!("SELECT status FROM reservations WHERE booking_id = {id}");
    assert!(eventually(async || scalar::<String>(&app, &hold).await == "unsupported").await);
    assert_eq!(booking(&app, &driver, id).await["reservationStatus"], "unsupported");

    // The no-show releases Kilowatt's hold; the charger, which holds nothing, is not asked.
    app.clock.set(start + ChronoDuration::minutes(30));
    reaches(&app, id, "expired").await;
    assert!(eventually(async || scalar::<String>(&app, &hold).await == "cancelled").await);
    assert!(charger.received_calls().iter().all(|(action, _)| action != "CancelReservation"));
}

#[actix_rt::test]
async fn cancelling_refunds_in_full_before_the_cutoff_and_nothing_after() {
    let app = spawn_app_with(SETTINGS).await;
    let owner = app.owner("c-owner").await;
    station(&app, &owner, "CP-C1").await;
    let charger = app.booted_charger("CP-C1", 2).await;
    let driver = funded(&app, "chand", 200).await;
    let t0 = now(&app);
    let early = booked(&app, &driver, "CP-C1", 1, t0 + ChronoDuration::hours(3), 60).await;
    let late = booked(&app, &driver, "CP-C1", 2, t0 + ChronoDuration::minutes(45), 60).await;
    let in_grace = booked(&app, &driver, "CP-C1", 1, t0 + ChronoDuration::minutes(300), 60).await;
    assert_eq!(balance(&app, &driver).await, Decimal::from(50));

    let path = |id: i64| format!("/api/users/bookings/{id}");
    let (status, body) = app.call("DELETE", &path(early), Some(&driver.token), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["status"], "cancelled");
    assert_eq!(body["data"]["refundAmount"], "50.00");
    assert_eq!(balance(&app, &driver).await, Decimal::from(100));
    let refund = format!(
        "SELECT count(*) FROM wallet_entries WHERE kind = 'refund' AND amount = 50 AND reference_kind = 'booking' \
         AND reference_id = {early}"
    );
    assert_eq!(count(&app, &refund).await, 1);

    // 45 minutes before the slot is inside the 60-minute cutoff: no refund.
    let (status, body) = app.call("DELETE", &path(late), Some(&driver.token), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(dec(body["data"]["refundAmount"].as_str().unwrap()), Decimal::ZERO);
    assert_eq!(balance(&app, &driver).await, Decimal::from(100));
    assert_eq!(ledger_sum(&app, &driver).await, Decimal::from(100));
    // Once is enough.
    let (status, body) = app.call("DELETE", &path(early), Some(&driver.token), None).await;
    assert_eq!((status, error_code(&body)), (409, "booking_closed"));
    assert_eq!(balance(&app, &driver).await, Decimal::from(100));

    // A cancelled slot is free again for anyone.
    let other = funded(&app, "other", 100).await;
    booked(&app, &other, "CP-C1", 1, t0 + ChronoDuration::hours(3), 60).await;

    // Cancelling during the grace period frees the connector on the charger too.
    app.clock.set(t0 + ChronoDuration::minutes(300));
    let reserve = charger.expect_call("ReserveNow", WAIT).await.expect("ReserveNow");
    reaches(&app, in_grace, "grace").await;
    let hold = format!("SELECT status FROM reservations WHERE booking_id = {in_grace}");
    assert!(eventually(async || scalar::<String>(&app, &hold).await == "accepted").await);
    let (status, body) = app.call("DELETE", &path(in_grace), Some(&driver.token), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(dec(body["data"]["refundAmount"].as_str().unwrap()), Decimal::ZERO);
    let cancel = charger.expect_call("CancelReservation", WAIT).await.expect("CancelReservation");
    assert_eq!(cancel["reservationId"], reserve["reservationId"]);
    assert!(eventually(async || scalar::<String>(&app, &hold).await == "cancelled").await);
    assert_eq!(balance(&app, &driver).await, Decimal::from(100));
}

#[actix_rt::test]
async fn a_qr_check_in_needs_the_chargers_current_signed_code() {
    let app = spawn_app_with(SETTINGS).await;
    let owner = app.owner("q-owner").await;
    let stranger = app.owner("q-stranger").await;
    station(&app, &owner, "CP-QR").await;
    let _charger = app.booted_charger("CP-QR", 2).await;
    let driver = funded(&app, "qadir", 100).await;
    let start = now(&app) + ChronoDuration::minutes(10);
    let id = booked(&app, &driver, "CP-QR", 1, start, 60).await;

    let code_path = "/api/chargers/CP-QR/checkin-code?connectorId=1";
    let (status, _) = app.call("GET", code_path, Some(&stranger.token), None).await;
    assert_eq!(status, 404);
    let (status, _) = app.call("GET", code_path, Some(&driver.token), None).await;
    assert_eq!(status, 403);
    let code = async || {
        let (status, body) = app.call("GET", code_path, Some(&owner.token), None).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["windowSeconds"], 600);
        body["data"]["code"].as_str().expect("code").to_owned()
    };

    // Not before the slot starts.
    let (status, body) = check_in(&app, &driver, id, json!({ "method": "qr", "code": code().await })).await;
    assert_eq!((status, error_code(&body)), (409, "slot_not_started"));

    app.clock.set(start);
    reaches(&app, id, "grace").await;
    let stale = code().await;
    let (status, body) =
        check_in(&app, &driver, id, json!({ "method": "qr", "code": "0123456789abcdef0123456789abcdef" })).await;
    assert_eq!((status, error_code(&body)), (403, "invalid_checkin_code"));
    let (status, body) = check_in(&app, &driver, id, json!({ "method": "qr" })).await;
    assert_eq!((status, error_code(&body)), (422, "validation_failed"));
    // Another charger's code proves nothing here.
    station(&app, &owner, "CP-QR2").await;
    let (_, other) = app.call("GET", "/api/chargers/CP-QR2/checkin-code", Some(&owner.token), None).await;
    let (status, _) = check_in(&app, &driver, id, json!({ "method": "qr", "code": other["data"]["code"] })).await;
    assert_eq!(status, 403);
    // A code two windows old has expired.
    app.clock.advance(ChronoDuration::minutes(20));
    let (status, body) = check_in(&app, &driver, id, json!({ "method": "qr", "code": stale })).await;
    assert_eq!((status, error_code(&body)), (403, "invalid_checkin_code"));
    assert_eq!(status_of(&app, id).await, "grace");

    // The code shown now, scanned within the next window, checks the driver in.
    let fresh = code().await;
    app.clock.advance(ChronoDuration::minutes(5));
    let (status, body) = check_in(&app, &driver, id, json!({ "method": "qr", "code": fresh })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["status"], "checked_in");
    assert_eq!(body["data"]["slot"]["checkinMethod"], "qr");
}

#[actix_rt::test]
async fn the_sweep_picks_up_a_booking_no_timer_watches() {
    let app = spawn_app_with(SETTINGS).await;
    let owner = app.owner("w-owner").await;
    station(&app, &owner, "CP-W1").await;
    let charger = app.booted_charger("CP-W1", 2).await;
    let driver = funded(&app, "wasim", 100).await;
    let start = now(&app) - ChronoDuration::minutes(5);
    // Written behind Kilowatt's back (as by another node, or lost in a crash): no timer knows it.
    exec(
        &app,
        &format!(
            "INSERT INTO bookings (user_id, charger_id, connector_id, start_at, end_at, fee) \
             SELECT {}, c.id, k.id, '{}', '{}', 50 FROM chargers c JOIN connectors k ON k.charger_id = c.id \
             WHERE c.charge_point_id = 'CP-W1' AND k.connector_number = 1",
            driver.id,
            rfc3339(start),
            rfc3339(start + ChronoDuration::hours(1)),
        ),
    )
    .await;
    let id: i64 = scalar(&app, "SELECT max(id) FROM bookings").await;
    assert_eq!(status_of(&app, id).await, "confirmed");

    app.clock.advance(ChronoDuration::minutes(1));
    charger.expect_call("ReserveNow", WAIT).await.expect("the sweep started the slot");
    reaches(&app, id, "grace").await;
    let grace_ends: String = scalar(
        &app,
        &format!(
            "SELECT grace_ends_at = '{}' FROM bookings WHERE id = {id}",
            rfc3339(start + ChronoDuration::minutes(30))
        ),
    )
    .await;
    assert_eq!(grace_ends, "true");
}

#[actix_rt::test]
async fn slot_monitoring_counts_exactly_the_owners_bookings() {
    let app = spawn_app_with(SETTINGS).await;
    let owner = app.owner("m-owner").await;
    let rival = app.owner("m-rival").await;
    let mine = station(&app, &owner, "CP-M1").await;
    let theirs = station(&app, &rival, "CP-M2").await;
    let _m1 = app.booted_charger("CP-M1", 2).await;
    let _m2 = app.booted_charger("CP-M2", 2).await;
    let drivers = [
        funded(&app, "d-one", 500).await,
        funded(&app, "d-two", 500).await,
        funded(&app, "d-three", 500).await,
        funded(&app, "d-four", 500).await,
    ];
    let t0 = now(&app);
    let at = |minutes: i64| t0 + ChronoDuration::minutes(minutes);
    // Mine: shows up and completes, no-show, shows up (still checked in), cancelled, upcoming.
    let completes = booked(&app, &drivers[0], "CP-M1", 1, at(10), 30).await;
    let no_show = booked(&app, &drivers[1], "CP-M1", 2, at(10), 30).await;
    let shows_up = booked(&app, &drivers[2], "CP-M1", 1, at(50), 60).await;
    let cancelled = booked(&app, &drivers[3], "CP-M1", 2, at(180), 60).await;
    let upcoming = booked(&app, &drivers[0], "CP-M1", 2, at(300), 60).await;
    // Theirs.
    let other = booked(&app, &drivers[1], "CP-M2", 1, at(60), 60).await;

    let (status, _) =
        app.call("DELETE", &format!("/api/users/bookings/{cancelled}"), Some(&drivers[3].token), None).await;
    assert_eq!(status, 200);
    app.clock.set(at(10));
    reaches(&app, completes, "grace").await;
    reaches(&app, no_show, "grace").await;
    assert_eq!(check_in(&app, &drivers[0], completes, json!({ "method": "app" })).await.0, 200);
    app.clock.set(at(40));
    reaches(&app, no_show, "expired").await;
    reaches(&app, completes, "completed").await;
    app.clock.set(at(50));
    reaches(&app, shows_up, "grace").await;
    app.clock.set(at(55));
    assert_eq!(check_in(&app, &drivers[2], shows_up, json!({ "method": "app" })).await.0, 200);

    let dashboard = async |user: &User, query: &str| {
        let path = format!("/api/vendor/dashboard/slot-monitoring{query}");
        let (status, body) = app.call("GET", &path, Some(&user.token), None).await;
        assert_eq!(status, 200, "{body}");
        body["data"].clone()
    };
    let d = dashboard(&owner, "?timeRange=24h").await;
    assert_eq!(
        d["byStatus"],
        json!({ "confirmed": 1, "grace": 0, "checkedIn": 1, "charging": 0, "completed": 1, "expired": 1, "cancelled": 1 })
    );
    assert_eq!(
        d["counts"],
        json!({ "bookings": 5, "decided": 3, "showedUp": 2, "noShows": 1, "checkedInDuringGrace": 2 })
    );
    assert_eq!(d["rates"], json!({ "noShowRate": 33.33, "gracePeriodCheckInRate": 66.67, "completionRate": 33.33 }));
    assert_eq!(d["revenue"]["revenueLostToNoShows"], "50.00");
    assert_eq!(d["revenue"]["noShowHeldMinutes"], 30);
    assert_eq!(dec(d["revenue"]["feesCollected"].as_str().unwrap()), Decimal::from(200));
    // Live slots by default, soonest first, with driver and countdown.
    let slots = d["slots"].as_array().unwrap();
    let ids: Vec<i64> = slots.iter().map(|s| s["bookingId"].as_i64().unwrap()).collect();
    assert_eq!(ids, [shows_up, upcoming]);
    assert_eq!(slots[0]["driver"]["username"], "d-three");
    assert_eq!(slots[0]["connectorId"], 1);
    assert_eq!(slots[0]["chargerId"], "CP-M1");
    assert_eq!(slots[0]["status"], "checked_in");
    assert_eq!(slots[0]["stationId"], mine);

    // A status filter lists just those; a one-hour range only the slots near now.
    let expired = dashboard(&owner, "?status=expired").await;
    let listed: Vec<i64> =
        expired["slots"].as_array().unwrap().iter().map(|s| s["bookingId"].as_i64().unwrap()).collect();
    assert_eq!(listed, [no_show]);
    assert_eq!(expired["slots"][0]["driver"]["username"], "d-two");
    let hour = dashboard(&owner, &format!("?timeRange=1h&stationId={mine}")).await;
    assert_eq!(hour["counts"]["bookings"], 3);
    assert_eq!(hour["stationId"], mine);

    // A grace countdown shows while a slot waits for its driver.
    let waiting = booked(&app, &drivers[3], "CP-M1", 1, at(120), 30).await;
    app.clock.set(at(120));
    reaches(&app, waiting, "grace").await;
    app.clock.set(at(125));
    let live = dashboard(&owner, "?status=grace").await;
    assert_eq!(live["slots"][0]["bookingId"], waiting);
    assert_eq!(live["slots"][0]["inGracePeriod"], true);
    assert_eq!(live["slots"][0]["graceTimeRemaining"], 25 * 60);

    // The rival sees only their own; nobody sees the other's station; drivers see nothing.
    // (Their driver never came either: a no-show by now, once its timer has run.)
    reaches(&app, other, "expired").await;
    let r = dashboard(&rival, "?timeRange=7d&status=expired").await;
    assert_eq!(r["counts"]["bookings"], 1);
    assert_eq!(r["counts"]["noShows"], 1);
    assert_eq!(
        r["slots"].as_array().unwrap().iter().map(|s| s["bookingId"].clone()).collect::<Vec<_>>(),
        [json!(other)]
    );
    let (status, _) = app
        .call("GET", &format!("/api/vendor/dashboard/slot-monitoring?stationId={theirs}"), Some(&owner.token), None)
        .await;
    assert_eq!(status, 404);
    let (status, _) = app.call("GET", "/api/vendor/dashboard/slot-monitoring", Some(&drivers[0].token), None).await;
    assert_eq!(status, 403);
    let (status, body) =
        app.call("GET", "/api/vendor/dashboard/slot-monitoring?timeRange=2d", Some(&owner.token), None).await;
    assert_eq!((status, error_code(&body)), (422, "validation_failed"));

    // An admin sees every station.
    exec(&app, &format!("UPDATE users SET role = 'admin' WHERE id = {}", rival.id)).await;
    assert_eq!(dashboard(&rival, "?timeRange=7d").await["counts"]["bookings"], 7);
}

#[actix_rt::test]
async fn a_checked_in_driver_charges_on_the_held_connector_and_the_booking_follows_the_session() {
    let app = spawn_app_with(SETTINGS).await;
    let owner = app.owner("g-owner").await;
    station(&app, &owner, "CP-G1").await;
    let charger = app.booted_charger("CP-G1", 2).await;
    let gita = funded(&app, "gita", 500).await;
    let hari = funded(&app, "hari", 500).await;
    let start = now(&app) + ChronoDuration::minutes(10);
    let id = booked(&app, &gita, "CP-G1", 1, start, 60).await;
    app.clock.set(start);
    charger.expect_call("ReserveNow", WAIT).await.expect("ReserveNow");
    reaches(&app, id, "grace").await;
    let hold = format!("SELECT status FROM reservations WHERE booking_id = {id}");
    assert!(eventually(async || scalar::<String>(&app, &hold).await == "accepted").await);

    // The held connector is Gita's alone.
    let on_connector_1 = json!({ "chargerId": "CP-G1", "connectorId": 1 });
    let (status, body) = app.call("POST", "/api/charging/start", Some(&hari.token), Some(&on_connector_1)).await;
    assert_eq!((status, error_code(&body)), (409, "connector_busy"));

    assert_eq!(check_in(&app, &gita, id, json!({ "method": "app" })).await.0, 200);
    let (status, body) = app.call("POST", "/api/charging/start", Some(&gita.token), Some(&on_connector_1)).await;
    assert_eq!(status, 201, "{body}");
    charger.expect_call("RemoteStartTransaction", WAIT).await.expect("RemoteStart");
    let (transaction_id, info) = charger.start_transaction(1, &gita.id_tag, 1_000, app.clock.now()).await.unwrap();
    assert_eq!(info["status"], "Accepted");
    assert!(eventually(async || scalar::<String>(&app, &hold).await == "used").await);
    // The booking follows its session: charging while it runs (at the latest by the next sweep)...
    app.clock.advance(ChronoDuration::minutes(1));
    reaches(&app, id, "charging").await;
    // ...and completed once it is settled, before the slot ends.
    app.clock.advance(ChronoDuration::minutes(20));
    charger.stop_transaction(transaction_id, 6_000, app.clock.now(), "Local", None).await.unwrap();
    app.clock.advance(ChronoDuration::minutes(1));
    reaches(&app, id, "completed").await;
    assert!(charger.received_calls().iter().all(|(action, _)| action != "CancelReservation"));
}
