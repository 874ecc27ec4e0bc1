//! Station owners and the stations drivers search, end to end over real HTTP and OCPP: owners
//! manage their stations and chargers (and only theirs), a charger added or claimed through the
//! API boots Accepted, its password guards the handshake, commands reach it and its answers
//! come back with the right HTTP status for every failure, its message log is readable, and
//! drivers find stations by text and distance.

mod common;

use std::time::Duration;

use common::charge_point::{ChargePoint, ConnectError, ConnectOptions, Reply};
use common::sql::{count, exec};
use common::{TestApp, User, error_code, eventually};
use kilowatt_actors::ocpp::ErrorCode;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(10);

/// Creates a station for `owner` and answers its ID.
async fn station(app: &TestApp, owner: &User, body: Value) -> i64 {
    let (status, body) = app.call("POST", "/api/owner/stations", Some(&owner.token), Some(&body)).await;
    assert_eq!(status, 201, "{body}");
    body["data"]["id"].as_i64().expect("station id")
}

/// Adds a charger to a station, answering the response.
async fn add_charger(app: &TestApp, owner: &User, station_id: i64, body: Value) -> (u16, Value) {
    app.call("POST", &format!("/api/owner/stations/{station_id}/chargers"), Some(&owner.token), Some(&body)).await
}

async fn boot_accepted(app: &TestApp, cp: &str) -> ChargePoint {
    let charger = ChargePoint::connect(&app.ocpp_url, cp).await.expect("connect");
    let answer = charger.boot().await.expect("boot answered");
    assert_eq!(answer["status"], "Accepted", "{answer}");
    charger
}

async fn make_admin(app: &TestApp, username: &str) -> User {
    let user = app.owner(username).await;
    exec(app, &format!("UPDATE users SET role = 'admin' WHERE id = {}", user.id)).await;
    user
}

#[actix_rt::test]
async fn owners_create_list_and_change_only_their_own_stations() {
    let app = common::spawn_app().await;
    let ravi = app.owner("ravi").await;
    let priya = app.owner("priya").await;
    let asha = app.driver("asha").await;

    let body = json!({
        "name": "  MG Road Hub ",
        "address": "1 MG Road, Bengaluru",
        "latitude": 12.9756,
        "longitude": 77.605,
        "pricePerKwh": 18.5,
        "openingHours": "24x7",
    });
    let (status, created) = app.call("POST", "/api/owner/stations", Some(&ravi.token), Some(&body)).await;
    assert_eq!(status, 201, "{created}");
    let data = &created["data"];
    assert_eq!(data["name"], "MG Road Hub");
    assert_eq!(data["address"], "1 MG Road, Bengaluru");
    assert_eq!(data["latitude"], 12.9756);
    assert_eq!(data["longitude"], 77.605);
    assert_eq!(data["pricePerKwh"], "18.50");
    assert_eq!(data["bookingFee"], Value::Null);
    assert_eq!(data["openingHours"], "24x7");
    assert_eq!(data["active"], true);
    assert_eq!(data["ownerId"], ravi.id);
    assert_eq!(data["chargerCount"], 0);
    let mine = data["id"].as_i64().expect("id");
    let theirs = station(&app, &priya, json!({"name": "Priya's", "pricePerKwh": "20", "bookingFee": 30})).await;

    // Lists hold only one's own stations.
    let (status, list) = app.call("GET", "/api/owner/stations", Some(&ravi.token), None).await;
    assert_eq!(status, 200, "{list}");
    let ids: Vec<i64> = list["data"].as_array().expect("list").iter().filter_map(|s| s["id"].as_i64()).collect();
    assert_eq!(ids, [mine]);
    let (_, list) = app.call("GET", "/api/owner/stations", Some(&priya.token), None).await;
    assert_eq!(list["data"][0]["bookingFee"], "30.00");
    assert_eq!(list["data"].as_array().map(Vec::len), Some(1));

    // Creating validates too.
    for (body, field) in [
        (json!({"name": "", "pricePerKwh": 10}), "name"),
        (json!({"name": "X", "pricePerKwh": -1}), "pricePerKwh"),
        (json!({"name": "X", "pricePerKwh": "10.555"}), "pricePerKwh"),
        (json!({"name": "X", "pricePerKwh": 10, "latitude": 10}), "longitude"),
        (json!({"name": "X", "pricePerKwh": 10, "latitude": 10, "longitude": 200}), "longitude"),
        (json!({"name": "X", "pricePerKwh": 10, "bookingFee": -5}), "bookingFee"),
    ] {
        let (status, answer) = app.call("POST", "/api/owner/stations", Some(&ravi.token), Some(&body)).await;
        assert_eq!(status, 422, "{body} -> {answer}");
        assert_eq!(answer["error"]["field"], field, "{body} -> {answer}");
    }

    // PATCH validates each field and changes nothing on failure.
    let path = format!("/api/owner/stations/{mine}");
    for (body, field) in [
        (json!({"pricePerKwh": -0.5}), "pricePerKwh"),
        (json!({"latitude": 91}), "latitude"),
        (json!({"longitude": -180.5}), "longitude"),
        (json!({"latitude": null}), "latitude"),
        (json!({"name": "   "}), "name"),
        (json!({"name": "n".repeat(101)}), "name"),
        (json!({"address": "a".repeat(301)}), "address"),
        (json!({"openingHours": "h".repeat(201)}), "openingHours"),
    ] {
        let (status, answer) = app.call("PATCH", &path, Some(&ravi.token), Some(&body)).await;
        assert_eq!(status, 422, "{body} -> {answer}");
        assert_eq!(error_code(&answer), "validation_failed");
        assert_eq!(answer["error"]["field"], field, "{body} -> {answer}");
    }
    let (status, _) = app.call("PATCH", &path, Some(&ravi.token), Some(&json!({"colour": "red"}))).await;
    assert_eq!(status, 422, "unknown fields are refused");
    let (_, unchanged) = app.call("GET", &path, Some(&ravi.token), None).await;
    assert_eq!(unchanged["data"]["pricePerKwh"], "18.50");
    assert_eq!(unchanged["data"]["latitude"], 12.9756);

    let changes = json!({"name": "MG Road Fast Hub", "pricePerKwh": "21", "bookingFee": 40, "openingHours": null});
    let (status, updated) = app.call("PATCH", &path, Some(&ravi.token), Some(&changes)).await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["data"]["name"], "MG Road Fast Hub");
    assert_eq!(updated["data"]["pricePerKwh"], "21.00");
    assert_eq!(updated["data"]["bookingFee"], "40.00");
    assert_eq!(updated["data"]["openingHours"], Value::Null);
    assert_eq!(updated["data"]["address"], "1 MG Road, Bengaluru", "absent fields are left alone");
    assert_eq!(updated["data"]["chargers"], json!([]));
    // Both coordinates can be removed together.
    let (status, updated) =
        app.call("PATCH", &path, Some(&ravi.token), Some(&json!({"latitude": null, "longitude": null}))).await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["data"]["latitude"], Value::Null);

    // Another owner's station does not exist for me; drivers are not owners; strangers sign in.
    let other = format!("/api/owner/stations/{theirs}");
    assert_eq!(app.call("GET", &other, Some(&ravi.token), None).await.0, 404);
    let (status, answer) = app.call("PATCH", &other, Some(&ravi.token), Some(&json!({"pricePerKwh": 1}))).await;
    assert_eq!((status, error_code(&answer)), (404, "not_found"));
    assert_eq!(app.call("GET", "/api/owner/stations/999999", Some(&ravi.token), None).await.0, 404);
    let (status, answer) = app.call("GET", "/api/owner/stations", Some(&asha.token), None).await;
    assert_eq!((status, error_code(&answer)), (403, "forbidden"));
    assert_eq!(app.call("POST", "/api/owner/stations", Some(&asha.token), Some(&body)).await.0, 403);
    assert_eq!(app.call("GET", "/api/owner/chargers", Some(&asha.token), None).await.0, 403);
    assert_eq!(app.call("GET", "/api/owner/stations", None, None).await.0, 401);
    assert_eq!(app.call("POST", "/api/owner/stations", None, Some(&body)).await.0, 401);
    assert_eq!(
        count(&app, &format!("SELECT count(*) FROM stations WHERE id = {theirs} AND price_per_kwh = 20")).await,
        1
    );

    // An admin sees and changes every station.
    let admin = make_admin(&app, "root").await;
    let (_, all) = app.call("GET", "/api/owner/stations", Some(&admin.token), None).await;
    assert_eq!(all["data"].as_array().map(Vec::len), Some(2));
    let (status, _) = app.call("PATCH", &other, Some(&admin.token), Some(&json!({"active": false}))).await;
    assert_eq!(status, 200);
}

#[actix_rt::test]
async fn a_charger_added_by_its_owner_boots_accepted_and_reports_what_it_is() {
    let app = common::spawn_app().await;
    let ravi = app.owner("ravi").await;
    let priya = app.owner("priya").await;
    let hub = station(&app, &ravi, json!({"name": "Hub", "pricePerKwh": 18.5})).await;
    let annex = station(&app, &ravi, json!({"name": "Annex", "pricePerKwh": 15})).await;
    let theirs = station(&app, &priya, json!({"name": "Priya's", "pricePerKwh": 20})).await;

    for (body, field) in [
        (json!({"chargePointId": "has space"}), "chargePointId"),
        (json!({"chargePointId": "x".repeat(49)}), "chargePointId"),
        (json!({"chargePointId": "CP-1", "connectors": 0}), "connectors"),
        (json!({"chargePointId": "CP-1", "connectors": 11}), "connectors"),
        (json!({"chargePointId": "CP-1", "password": "short"}), "password"),
    ] {
        let (status, answer) = add_charger(&app, &ravi, hub, body.clone()).await;
        assert_eq!(status, 422, "{body} -> {answer}");
        assert_eq!(answer["error"]["field"], field, "{body} -> {answer}");
    }
    assert_eq!(add_charger(&app, &ravi, theirs, json!({"chargePointId": "CP-1"})).await.0, 404);

    let (status, added) = add_charger(&app, &ravi, hub, json!({"chargePointId": "CP-1", "connectors": 2})).await;
    assert_eq!(status, 201, "{added}");
    let data = &added["data"];
    assert_eq!(data["chargePointId"], "CP-1");
    assert_eq!(data["station"], json!({"id": hub, "name": "Hub"}));
    assert_eq!(data["registrationStatus"], "accepted");
    assert_eq!(data["passwordSet"], false);
    assert_eq!(data["online"], false);
    assert_eq!(data["connectors"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        data["connectors"][1],
        json!({"connectorId": 2, "status": "Unknown", "errorCode": "NoError", "info": null, "vendorErrorCode": null, "metered": true, "statusAt": null})
    );

    // The same charge point ID cannot be added twice, by anyone.
    for (owner, station_id) in [(&ravi, annex), (&priya, theirs)] {
        let (status, answer) = add_charger(&app, owner, station_id, json!({"chargePointId": "CP-1"})).await;
        assert_eq!((status, error_code(&answer)), (409, "charger_exists"), "{answer}");
    }

    let charger = boot_accepted(&app, "CP-1").await;
    charger.status(2, "Faulted", "GroundFailure").await.expect("status accepted");
    let (status, detail) = app.call("GET", "/api/owner/chargers/CP-1", Some(&ravi.token), None).await;
    assert_eq!(status, 200, "{detail}");
    let d = &detail["data"];
    assert_eq!(d["online"], true);
    assert_eq!(d["vendor"], "Kilowatt");
    assert_eq!(d["model"], "Simulator AC22");
    assert_eq!(d["chargePointSerial"], "KW-SIM-CP-1");
    assert_eq!(d["firmwareVersion"], "1.4.2");
    assert_eq!(d["meterSerial"], "KW-MTR-CP-1");
    assert!(d["lastBootAt"].is_string() && d["lastSeenAt"].is_string(), "{d}");
    assert_eq!(d["connectors"][1]["status"], "Faulted");
    assert_eq!(d["connectors"][1]["errorCode"], "GroundFailure");
    let history = d["statusHistory"].as_array().expect("history");
    assert!(history.iter().any(|h| h["connectorId"] == 2 && h["status"] == "Faulted"), "{d}");

    let (_, list) = app.call("GET", "/api/owner/chargers", Some(&ravi.token), None).await;
    assert_eq!(list["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(list["data"][0]["chargePointId"], "CP-1");
    assert_eq!(list["data"][0]["online"], true);
    let (_, at_annex) =
        app.call("GET", &format!("/api/owner/chargers?stationId={annex}"), Some(&ravi.token), None).await;
    assert_eq!(at_annex["data"], json!([]));
    let (_, hub_detail) = app.call("GET", &format!("/api/owner/stations/{hub}"), Some(&ravi.token), None).await;
    assert_eq!(hub_detail["data"]["chargerCount"], 1);
    assert_eq!(hub_detail["data"]["onlineChargerCount"], 1);
    assert_eq!(hub_detail["data"]["chargers"][0]["chargePointId"], "CP-1");

    // Another owner sees nothing of it; drivers are refused.
    let (_, theirs_list) = app.call("GET", "/api/owner/chargers", Some(&priya.token), None).await;
    assert_eq!(theirs_list["data"], json!([]));
    let (status, answer) = app.call("GET", "/api/owner/chargers/CP-1", Some(&priya.token), None).await;
    assert_eq!((status, error_code(&answer)), (404, "not_found"));
    let (status, _) =
        app.call("PATCH", "/api/owner/chargers/CP-1", Some(&priya.token), Some(&json!({"stationId": theirs}))).await;
    assert_eq!(status, 404);
    assert_eq!(app.call("GET", "/api/owner/chargers/bad%20id", Some(&ravi.token), None).await.0, 422);
    let asha = app.driver("asha").await;
    assert_eq!(app.call("GET", "/api/owner/chargers/CP-1", Some(&asha.token), None).await.0, 403);

    // Moving: only to another of my stations. Metering per connector.
    let (status, answer) =
        app.call("PATCH", "/api/owner/chargers/CP-1", Some(&ravi.token), Some(&json!({"stationId": theirs}))).await;
    assert_eq!((status, answer["error"]["field"].as_str()), (422, Some("stationId")), "{answer}");
    let changes = json!({"stationId": annex, "connectors": [{"connectorId": 2, "metered": false}]});
    let (status, moved) = app.call("PATCH", "/api/owner/chargers/CP-1", Some(&ravi.token), Some(&changes)).await;
    assert_eq!(status, 200, "{moved}");
    assert_eq!(moved["data"]["station"]["id"], annex);
    assert_eq!(moved["data"]["connectors"][0]["metered"], true);
    assert_eq!(moved["data"]["connectors"][1]["metered"], false);
    let bad = json!({"connectors": [{"connectorId": 0, "metered": false}]});
    assert_eq!(app.call("PATCH", "/api/owner/chargers/CP-1", Some(&ravi.token), Some(&bad)).await.0, 422);
    assert_eq!(count(&app, "SELECT count(*) FROM connectors WHERE NOT metered").await, 1);

    // An admin reaches it too.
    let admin = make_admin(&app, "root").await;
    assert_eq!(app.call("GET", "/api/owner/chargers/CP-1", Some(&admin.token), None).await.0, 200);
}

#[actix_rt::test]
async fn a_charger_password_set_by_its_owner_guards_the_handshake() {
    let app = common::spawn_app().await;
    let ravi = app.owner("ravi").await;
    let hub = station(&app, &ravi, json!({"name": "Hub", "pricePerKwh": 18.5})).await;
    let body = json!({"chargePointId": "CP-PASS", "password": "correct horse"});
    let (status, added) = add_charger(&app, &ravi, hub, body).await;
    assert_eq!(status, 201, "{added}");
    assert_eq!(added["data"]["passwordSet"], true);
    assert!(!added.to_string().contains("argon2"), "the hash never leaves the server");

    for password in [None, Some("wrong horse")] {
        let options = ConnectOptions { password: password.map(str::to_owned), ..ConnectOptions::default() };
        match ChargePoint::connect_with(&app.ocpp_url, "CP-PASS", options).await {
            Err(ConnectError::Http(status)) => assert_eq!(status, 401),
            Err(other) => panic!("unexpected error {other:?}"),
            Ok(_) => panic!("handshake accepted with password {password:?}"),
        }
    }
    let options = ConnectOptions { password: Some("correct horse".into()), ..ConnectOptions::default() };
    let charger = ChargePoint::connect_with(&app.ocpp_url, "CP-PASS", options).await.expect("right password");
    assert_eq!(charger.boot().await.expect("boot")["status"], "Accepted");
    charger.close().await;

    // Cleared: it connects without one.
    let clear = json!({"password": null});
    let (status, cleared) = app.call("PATCH", "/api/owner/chargers/CP-PASS", Some(&ravi.token), Some(&clear)).await;
    assert_eq!(status, 200, "{cleared}");
    assert_eq!(cleared["data"]["passwordSet"], false);
    boot_accepted(&app, "CP-PASS").await;
}

#[actix_rt::test]
async fn claiming_a_pending_charger_accepts_it_at_its_next_boot() {
    // The default policy registers unknown chargers as pending.
    let app = common::spawn_app().await;
    let ravi = app.owner("ravi").await;
    let hub = station(&app, &ravi, json!({"name": "Hub", "pricePerKwh": 18.5})).await;
    let charger = ChargePoint::connect(&app.ocpp_url, "STRANGER").await.expect("connect");
    assert_eq!(charger.boot().await.expect("boot")["status"], "Pending");
    assert_eq!(charger.status(1, "Available", "NoError").await.expect_err("not accepted").code, "SecurityError");
    // Unassigned, it is nobody's yet.
    assert_eq!(app.call("GET", "/api/owner/chargers/STRANGER", Some(&ravi.token), None).await.0, 404);

    let (status, claimed) = add_charger(&app, &ravi, hub, json!({"chargePointId": "STRANGER", "connectors": 2})).await;
    assert_eq!(status, 201, "{claimed}");
    assert_eq!(claimed["data"]["registrationStatus"], "accepted");
    assert_eq!(claimed["data"]["station"]["id"], hub);
    assert_eq!(claimed["data"]["vendor"], "Kilowatt", "the claimed row keeps what the charger reported");
    assert_eq!(claimed["data"]["connectors"].as_array().map(Vec::len), Some(2));
    // The charger is asked to boot again at once rather than at its next retry.
    let trigger = charger.expect_call("TriggerMessage", WAIT).await.expect("asked to boot again");
    assert_eq!(trigger["requestedMessage"], "BootNotification");
    assert_eq!(charger.boot().await.expect("boot")["status"], "Accepted");
    charger.status(1, "Available", "NoError").await.expect("served once accepted");

    let (status, answer) = add_charger(&app, &ravi, hub, json!({"chargePointId": "STRANGER"})).await;
    assert_eq!((status, error_code(&answer)), (409, "charger_exists"));
    assert_eq!(count(&app, "SELECT count(*) FROM chargers").await, 1);
}

#[actix_rt::test]
async fn owners_command_their_chargers_and_every_failure_has_its_status() {
    let app = common::spawn_app_with(&[("KILOWATT_OCPP_CALL_TIMEOUT_SECONDS", "1")]).await;
    let ravi = app.owner("ravi").await;
    let priya = app.owner("priya").await;
    let hub = station(&app, &ravi, json!({"name": "Hub", "pricePerKwh": 18.5})).await;
    assert_eq!(add_charger(&app, &ravi, hub, json!({"chargePointId": "CP-CMD"})).await.0, 201);
    assert_eq!(add_charger(&app, &ravi, hub, json!({"chargePointId": "CP-AWAY"})).await.0, 201);
    let charger = boot_accepted(&app, "CP-CMD").await;
    let command = |action: &str| format!("/api/owner/chargers/CP-CMD/commands/{action}");

    let (status, answer) = app.call("POST", &command("Reset"), Some(&ravi.token), Some(&json!({"type": "Soft"}))).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["data"], json!({"action": "Reset", "response": {"status": "Accepted"}}));
    assert!(charger.received_calls().iter().any(|(action, payload)| action == "Reset" && payload["type"] == "Soft"));
    let (status, answer) = app
        .call("POST", &command("getconfiguration"), Some(&ravi.token), Some(&json!({"key": ["HeartbeatInterval"]})))
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["data"]["action"], "GetConfiguration");
    assert!(answer["data"]["response"]["configurationKey"].as_array().is_some_and(|k| !k.is_empty()), "{answer}");

    // Bad requests are refused before anything is sent.
    let sent = charger.received_calls().len();
    let (status, answer) =
        app.call("POST", &command("Reset"), Some(&ravi.token), Some(&json!({"type": "Medium"}))).await;
    assert_eq!((status, answer["error"]["field"].as_str()), (422, Some("payload")), "{answer}");
    let (status, _) = app.call("POST", &command("Reset"), Some(&ravi.token), Some(&json!({}))).await;
    assert_eq!(status, 422);
    for action in ["FlyToTheMoon", "BootNotification"] {
        let (status, answer) = app.call("POST", &command(action), Some(&ravi.token), Some(&json!({}))).await;
        assert_eq!((status, error_code(&answer)), (404, "unknown_action"), "{action}");
    }
    let (status, answer) =
        app.call("POST", &command("Reset"), Some(&priya.token), Some(&json!({"type": "Soft"}))).await;
    assert_eq!((status, error_code(&answer)), (404, "not_found"));
    let asha = app.driver("asha").await;
    assert_eq!(app.call("POST", &command("Reset"), Some(&asha.token), Some(&json!({"type": "Soft"}))).await.0, 403);
    assert_eq!(app.call("POST", &command("Reset"), None, Some(&json!({"type": "Soft"}))).await.0, 401);
    assert_eq!(charger.received_calls().len(), sent, "nothing reached the charger");

    // Not connected.
    let (status, answer) =
        app.call("POST", "/api/owner/chargers/CP-AWAY/commands/ClearCache", Some(&ravi.token), Some(&json!({}))).await;
    assert_eq!((status, error_code(&answer)), (409, "charger_offline"));

    // The charger refuses with a CALLERROR, then does not answer at all.
    charger.set_responder(|action, _| match action {
        "Reset" => Reply::Error(ErrorCode::NotSupported, "no resets here".into()),
        _ => Reply::NoAnswer,
    });
    let (status, answer) = app.call("POST", &command("Reset"), Some(&ravi.token), Some(&json!({"type": "Hard"}))).await;
    assert_eq!((status, error_code(&answer)), (502, "charger_error"));
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("NotSupported") && message.contains("no resets here"), "{message}");
    let (status, answer) = app.call("POST", &command("ClearCache"), Some(&ravi.token), Some(&json!({}))).await;
    assert_eq!((status, error_code(&answer)), (504, "charger_timeout"));

    // The log has the boot and the reset, newest first, filterable and paged.
    let messages = async |query: &str| {
        let path = format!("/api/owner/chargers/CP-CMD/messages{query}");
        let (status, body) = app.call("GET", &path, Some(&ravi.token), None).await;
        assert_eq!(status, 200, "{body}");
        body["data"].clone()
    };
    let logged = async || {
        let page = messages("?limit=200").await;
        let items = page["items"].as_array().cloned().unwrap_or_default();
        let has =
            |direction: &str, action: &str| items.iter().any(|m| m["direction"] == direction && m["action"] == action);
        has("in", "BootNotification") && has("out", "Reset") && has("in", "Reset")
    };
    assert!(eventually(logged).await, "frames missing from the log: {}", messages("").await);
    let page = messages("").await;
    let ids: Vec<i64> = page["items"].as_array().expect("items").iter().filter_map(|m| m["id"].as_i64()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
    assert_eq!(page["total"].as_i64(), Some(ids.len() as i64));
    let resets = messages("?direction=out&action=Reset").await;
    let items = resets["items"].as_array().expect("items");
    assert!(!items.is_empty() && items.iter().all(|m| m["direction"] == "out" && m["action"] == "Reset"), "{resets}");
    assert_eq!(items.last().expect("first reset")["frame"][3], json!({"type": "Soft"}));
    let one = messages("?limit=1&offset=1").await;
    assert_eq!(one["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(one["items"][0]["id"].as_i64(), ids.get(1).copied());
    for query in ["?direction=sideways", "?limit=0", "?offset=-1"] {
        let path = format!("/api/owner/chargers/CP-CMD/messages{query}");
        assert_eq!(app.call("GET", &path, Some(&ravi.token), None).await.0, 422, "{query}");
    }
    assert_eq!(app.call("GET", "/api/owner/chargers/CP-CMD/messages", Some(&priya.token), None).await.0, 404);
}

#[actix_rt::test]
async fn drivers_find_stations_by_name_and_by_distance() {
    let app = common::spawn_app().await;
    let ravi = app.owner("ravi").await;
    let mg_road = station(
        &app,
        &ravi,
        json!({"name": "MG Road Hub", "address": "1 MG Road", "latitude": 12.9756, "longitude": 77.6050, "pricePerKwh": 18.5}),
    )
    .await;
    let koramangala = station(
        &app,
        &ravi,
        json!({"name": "Koramangala Plug", "address": "80 Feet Road", "latitude": 12.9352, "longitude": 77.6245, "pricePerKwh": 16}),
    )
    .await;
    let chennai = station(
        &app,
        &ravi,
        json!({"name": "Chennai Central", "latitude": 13.0827, "longitude": 80.2757, "pricePerKwh": 15, "bookingFee": 25}),
    )
    .await;
    let whitefield =
        station(&app, &ravi, json!({"name": "Whitefield Depot", "address": "ITPL Main Road", "pricePerKwh": 17})).await;
    let ids = |page: &Value| -> Vec<i64> {
        page["data"]["items"].as_array().expect("items").iter().filter_map(|s| s["id"].as_i64()).collect()
    };

    // Public, sorted by name without a location.
    let (status, all) = app.call("GET", "/api/stations", None, None).await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(ids(&all), [chennai, koramangala, mg_road, whitefield]);
    assert_eq!(all["data"]["total"], 4);
    assert_eq!(all["data"]["items"][0]["bookingFee"], "25.00");
    assert_eq!(all["data"]["items"][1]["bookingFee"], "50.00", "the network default when the station sets none");
    assert_eq!(all["data"]["items"][1]["pricePerKwh"], "16.00");
    // Text matches name or address, any case; LIKE wildcards are literal.
    assert_eq!(ids(&app.call("GET", "/api/stations?q=hub", None, None).await.1), [mg_road]);
    assert_eq!(ids(&app.call("GET", "/api/stations?q=itpl%20main", None, None).await.1), [whitefield]);
    assert_eq!(ids(&app.call("GET", "/api/stations?q=%25", None, None).await.1), Vec::<i64>::new());

    // By distance: nearest first, within the radius (default 10 km), with the distance.
    let (_, near) = app.call("GET", "/api/stations?lat=12.9352&lng=77.6245", None, None).await;
    assert_eq!(ids(&near), [koramangala, mg_road]);
    assert_eq!(near["data"]["items"][0]["distanceKm"], 0.0);
    let km = near["data"]["items"][1]["distanceKm"].as_f64().expect("distance");
    assert!((4.0..6.0).contains(&km), "{km}");
    let (_, wide) = app.call("GET", "/api/stations?lat=12.9352&lng=77.6245&radiusKm=500", None, None).await;
    assert_eq!(ids(&wide), [koramangala, mg_road, chennai]);
    assert_eq!(wide["data"]["total"], 3);
    let (_, paged) =
        app.call("GET", "/api/stations?lat=12.9352&lng=77.6245&radiusKm=500&limit=1&offset=1", None, None).await;
    assert_eq!(ids(&paged), [mg_road]);
    assert_eq!(paged["data"]["total"], 3);
    let (_, both) = app.call("GET", "/api/stations?q=road&lat=12.9352&lng=77.6245&radiusKm=500", None, None).await;
    assert_eq!(ids(&both), [koramangala, mg_road]);
    for query in ["lat=12.9", "lng=77.6", "lat=91&lng=0", "lat=0&lng=0&radiusKm=0", "limit=0", "limit=101", "offset=-1"]
    {
        let (status, answer) = app.call("GET", &format!("/api/stations?{query}"), None, None).await;
        assert_eq!(status, 422, "{query} -> {answer}");
    }

    // Live availability: a connected charger reporting Available counts.
    assert_eq!(add_charger(&app, &ravi, mg_road, json!({"chargePointId": "CP-MG", "connectors": 2})).await.0, 201);
    let charger = boot_accepted(&app, "CP-MG").await;
    charger.status(1, "Available", "NoError").await.expect("status");
    charger.status(2, "Charging", "NoError").await.expect("status");
    let (status, detail) = app.call("GET", &format!("/api/stations/{mg_road}"), None, None).await;
    assert_eq!(status, 200, "{detail}");
    let d = &detail["data"];
    assert_eq!(d["name"], "MG Road Hub");
    assert_eq!((d["chargerCount"].as_i64(), d["connectorCount"].as_i64()), (Some(1), Some(2)));
    assert_eq!(d["availableConnectors"], 1);
    assert_eq!(d["chargers"][0]["chargePointId"], "CP-MG");
    assert_eq!(d["chargers"][0]["online"], true);
    assert_eq!(d["chargers"][0]["available"], true);
    assert_eq!(d["chargers"][0]["connectors"][0]["available"], true);
    assert_eq!(d["chargers"][0]["connectors"][1]["status"], "Charging");
    assert_eq!(d["chargers"][0]["connectors"][1]["available"], false);
    let (_, found) = app.call("GET", "/api/stations?q=mg%20road", None, None).await;
    assert_eq!(found["data"]["items"][0]["availableConnectors"], 1);
    charger.close().await;
    let offline = async || {
        let (_, found) = app.call("GET", "/api/stations?q=mg%20road", None, None).await;
        found["data"]["items"][0]["availableConnectors"] == 0
    };
    assert!(eventually(offline).await, "an offline charger's connectors are not available");

    // An inactive station is hidden.
    let path = format!("/api/owner/stations/{whitefield}");
    assert_eq!(app.call("PATCH", &path, Some(&ravi.token), Some(&json!({"active": false}))).await.0, 200);
    assert_eq!(app.call("GET", &format!("/api/stations/{whitefield}"), None, None).await.0, 404);
    assert_eq!(app.call("GET", "/api/stations", None, None).await.1["data"]["total"], 3);
    assert_eq!(app.call("GET", "/api/stations/999999", None, None).await.0, 404);

    // Every endpoint here is in the OpenAPI document.
    let (_, document) = app.get("/api/openapi.json").await;
    for path in [
        "/api/stations",
        "/api/stations/{stationId}",
        "/api/owner/stations",
        "/api/owner/stations/{stationId}",
        "/api/owner/stations/{stationId}/chargers",
        "/api/owner/chargers",
        "/api/owner/chargers/{chargePointId}",
        "/api/owner/chargers/{chargePointId}/commands/{action}",
        "/api/owner/chargers/{chargePointId}/messages",
    ] {
        assert!(document["paths"][path].is_object(), "{path} missing from the OpenAPI document");
    }
}
