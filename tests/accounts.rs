//! Accounts end to end over real HTTP: registration and its validation, sign-in by username or
//! phone, throttling of wrong PINs per account and per address, sign-out, profile edits, PIN
//! change, RFID cards that then authorize at a charger, and the OpenAPI document.

mod common;

use common::charge_point::ChargePoint;
use common::sql::{count, exec, scalar};
use common::{TestApp, error_code, spawn_app, spawn_app_with};
use serde_json::{Value, json};

async fn register(app: &TestApp, body: Value) -> (u16, Value) {
    app.post_json("/api/auth/register", &body).await
}

async fn login(app: &TestApp, login: &str, pin: &str) -> (u16, Value) {
    app.post_json("/api/auth/login", &json!({ "login": login, "pin": pin })).await
}

#[actix_rt::test]
async fn a_driver_registers_signs_in_by_username_or_phone_and_signs_out() {
    let app = spawn_app().await;
    let (status, body) = register(
        &app,
        json!({ "username": "Asha", "phone": "98765 43210", "pin": "4321", "email": "asha@example.in", "name": "Asha K" }),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let user = &body["data"]["user"];
    assert_eq!(user["phone"], "+919876543210");
    assert_eq!(user["role"], "driver");
    assert_eq!(user["vehicleBatteryKwh"], "60");
    assert!(user["idTag"].as_str().is_some_and(|t| t.starts_with("KW") && t.len() == 12), "{user}");
    let token = body["data"]["token"].as_str().unwrap().to_owned();
    assert_eq!(count(&app, "SELECT count(*) FROM wallets WHERE balance = 0").await, 1);
    // Only the hash is stored.
    assert_eq!(
        count(&app, &format!("SELECT count(*) FROM auth_tokens WHERE encode(token_hash, 'escape') = '{token}'")).await,
        0
    );

    let (status, me) = app.call("GET", "/api/me", Some(&token), None).await;
    assert_eq!(status, 200);
    assert_eq!(me["data"]["username"], "Asha");

    for name in ["asha", "+919876543210", "9876543210"] {
        let (status, body) = login(&app, name, "4321").await;
        assert_eq!(status, 200, "{name}: {body}");
        assert_eq!(body["data"]["tokenType"], "Bearer");
    }

    let (status, _) = app.call("POST", "/api/auth/logout", Some(&token), None).await;
    assert_eq!(status, 200);
    let (status, body) = app.call("GET", "/api/me", Some(&token), None).await;
    assert_eq!((status, error_code(&body)), (401, "unauthorized"));
}

#[actix_rt::test]
async fn registration_rejects_bad_fields_and_taken_names_without_creating_anything() {
    let app = spawn_app().await;
    app.register("taken", "driver").await;
    let cases = [
        (json!({ "username": "ab", "phone": "9876543210", "pin": "1234" }), 422, "username"),
        (json!({ "username": "ok_name", "phone": "12", "pin": "1234" }), 422, "phone"),
        (json!({ "username": "ok_name", "phone": "9876543210", "pin": "12a4" }), 422, "pin"),
        (json!({ "username": "ok_name", "phone": "9876543210", "pin": "1234567" }), 422, "pin"),
        (json!({ "username": "ok_name", "phone": "9876543210", "pin": "1234", "email": "nope" }), 422, "email"),
        (json!({ "username": "ok_name", "phone": "9876543210", "pin": "1234", "role": "admin" }), 422, "role"),
        (json!({ "username": "TAKEN", "phone": "9876543210", "pin": "1234" }), 409, "username"),
    ];
    for (body, expected, field) in cases {
        let (status, answer) = register(&app, body.clone()).await;
        assert_eq!(status, expected, "{body} → {answer}");
        assert_eq!(answer["error"]["field"], field, "{answer}");
    }
    let (status, body) = register(&app, json!({ "username": "x1", "pin": "1234" })).await;
    assert_eq!((status, error_code(&body)), (422, "validation_failed"));
    assert_eq!(count(&app, "SELECT count(*) FROM users").await, 1);

    let (status, body) =
        register(&app, json!({ "username": "owner1", "phone": "9000000009", "pin": "123456", "role": "owner" })).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["data"]["user"]["role"], "owner");
    let phone_again = json!({ "username": "other", "phone": "+91 90000 00009", "pin": "1234" });
    let (status, body) = register(&app, phone_again).await;
    assert_eq!((status, error_code(&body)), (409, "phone_taken"));
}

#[actix_rt::test]
async fn wrong_pins_lock_the_account_for_the_configured_time() {
    let app = spawn_app_with(&[("KILOWATT_LOGIN_MAX_FAILURES", "3"), ("KILOWATT_LOGIN_LOCKOUT_MINUTES", "15")]).await;
    app.register("ravi", "driver").await;
    for _ in 0..2 {
        let (status, body) = login(&app, "ravi", "9999").await;
        assert_eq!((status, error_code(&body)), (401, "invalid_credentials"));
    }
    let (status, body) = login(&app, "ravi", "9999").await;
    assert_eq!((status, error_code(&body)), (429, "account_locked"), "{body}");
    // Locked: even the right PIN waits.
    let (status, body) = login(&app, "ravi", "1234").await;
    assert_eq!((status, error_code(&body)), (429, "account_locked"));
    assert!(body["error"]["message"].as_str().unwrap().contains("15 minutes"), "{body}");

    app.clock.advance(chrono::Duration::seconds(15 * 60 + 1));
    let (status, body) = login(&app, "ravi", "1234").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(scalar::<i32>(&app, "SELECT failed_logins FROM users WHERE username = 'ravi'").await, 0);
}

#[actix_rt::test]
async fn one_address_guessing_across_accounts_is_throttled() {
    let app = spawn_app_with(&[("KILOWATT_LOGIN_MAX_FAILURES", "2")]).await;
    // 2 failures × 4 = 8 failures from one address within the window.
    for i in 0..8 {
        let (status, _) = login(&app, &format!("nobody{i}"), "1111").await;
        assert_eq!(status, 401);
    }
    let victim = app.register("victim", "driver").await;
    let (status, body) = login(&app, "victim", "1234").await;
    assert_eq!((status, error_code(&body)), (429, "too_many_attempts"));
    assert_eq!(count(&app, &format!("SELECT count(*) FROM auth_tokens WHERE user_id = {}", victim.id)).await, 1);
}

#[actix_rt::test]
async fn expired_unknown_or_malformed_tokens_are_refused() {
    let app = spawn_app_with(&[("KILOWATT_TOKEN_TTL_HOURS", "1")]).await;
    let driver = app.driver("meera").await;
    for token in ["", "garbage", "x y z"] {
        let (status, body) = app.call("GET", "/api/me", Some(token), None).await;
        assert_eq!((status, error_code(&body)), (401, "unauthorized"), "{token:?}");
    }
    let (status, _) = app.call("GET", "/api/me", None, None).await;
    assert_eq!(status, 401);
    app.clock.advance(chrono::Duration::seconds(3601));
    let (status, _) = app.call("GET", "/api/me", Some(&driver.token), None).await;
    assert_eq!(status, 401);
}

#[actix_rt::test]
async fn profile_changes_are_validated_and_kept() {
    let app = spawn_app().await;
    let driver = app.driver("kiran").await;
    let other = app.driver("other").await;
    let other_phone: String = scalar(&app, &format!("SELECT phone FROM users WHERE id = {}", other.id)).await;
    let patch =
        json!({ "name": "Kiran R", "email": "kiran@example.in", "vehicleBatteryKwh": 40.5, "notifySms": false });
    let (status, body) = app.call("PATCH", "/api/me", Some(&driver.token), Some(&patch)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["vehicleBatteryKwh"], "40.5");
    assert_eq!(body["data"]["notifySms"], false);
    assert_eq!(
        scalar::<i64>(&app, &format!("SELECT vehicle_battery_wh FROM users WHERE id = {}", driver.id)).await,
        40500
    );

    let (status, body) = app.call("PATCH", "/api/me", Some(&driver.token), Some(&json!({ "email": null }))).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["email"], Value::Null);
    assert_eq!(body["data"]["name"], "Kiran R");

    for (patch, status_expected, field) in [
        (json!({ "vehicleBatteryKwh": 0 }), 422, "vehicleBatteryKwh"),
        (json!({ "phone": "1" }), 422, "phone"),
        (json!({ "phone": other_phone }), 409, "phone"),
    ] {
        let (status, body) = app.call("PATCH", "/api/me", Some(&driver.token), Some(&patch)).await;
        assert_eq!(status, status_expected, "{patch} → {body}");
        assert_eq!(body["error"]["field"], field);
    }
    let (status, _) = app.call("PATCH", "/api/me", Some(&driver.token), Some(&json!({ "role": "admin" }))).await;
    assert_eq!(status, 422);
    assert_eq!(scalar::<String>(&app, &format!("SELECT role FROM users WHERE id = {}", driver.id)).await, "driver");
}

#[actix_rt::test]
async fn a_pin_change_needs_the_current_pin_and_signs_out_other_devices() {
    let app = spawn_app().await;
    let driver = app.driver("devi").await;
    let (_, second) = login(&app, "devi", "1234").await;
    let second = second["data"]["token"].as_str().unwrap().to_owned();

    let wrong = json!({ "currentPin": "0000", "newPin": "5678" });
    let (status, body) = app.call("PUT", "/api/me/pin", Some(&driver.token), Some(&wrong)).await;
    assert_eq!((status, error_code(&body)), (403, "wrong_pin"));
    let short = json!({ "currentPin": "1234", "newPin": "12" });
    let (status, body) = app.call("PUT", "/api/me/pin", Some(&driver.token), Some(&short)).await;
    assert_eq!((status, body["error"]["field"].as_str()), (422, Some("newPin")));

    let change = json!({ "currentPin": "1234", "newPin": "567890" });
    let (status, body) = app.call("PUT", "/api/me/pin", Some(&driver.token), Some(&change)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["signedOutElsewhere"], 1);
    assert_eq!(app.call("GET", "/api/me", Some(&second), None).await.0, 401);
    assert_eq!(app.call("GET", "/api/me", Some(&driver.token), None).await.0, 200);
    assert_eq!(login(&app, "devi", "1234").await.0, 401);
    assert_eq!(login(&app, "devi", "567890").await.0, 200);
}

#[actix_rt::test]
async fn a_registered_rfid_card_authorizes_at_a_charger_as_its_driver() {
    let app = spawn_app().await;
    let driver = app.driver("arjun").await;
    let other = app.driver("bala").await;
    exec(&app, "INSERT INTO chargers (charge_point_id) VALUES ('CP-CARD')").await;

    let card = json!({ "idTag": "04A2B3C4D5", "label": "Blue card" });
    let (status, body) = app.call("POST", "/api/me/cards", Some(&driver.token), Some(&card)).await;
    assert_eq!(status, 201, "{body}");
    let card_id = body["data"]["id"].as_i64().unwrap();
    let (status, body) =
        app.call("POST", "/api/me/cards", Some(&other.token), Some(&json!({ "idTag": "04a2b3c4d5" }))).await;
    assert_eq!((status, error_code(&body)), (409, "card_taken"));
    let (status, _) =
        app.call("POST", "/api/me/cards", Some(&other.token), Some(&json!({ "idTag": driver.id_tag }))).await;
    assert_eq!(status, 409, "a card may not shadow a driver's own idTag");
    let (status, _) =
        app.call("POST", "/api/me/cards", Some(&other.token), Some(&json!({ "idTag": "x".repeat(21) }))).await;
    assert_eq!(status, 422);

    let (status, body) = app.call("GET", "/api/me/cards", Some(&driver.token), None).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"][0]["label"], "Blue card");
    assert_eq!(app.call("GET", "/api/me/cards", Some(&other.token), None).await.1["data"], json!([]));

    exec(&app, &format!("UPDATE wallets SET balance = 500 WHERE user_id = {}", driver.id)).await;
    let cp = ChargePoint::connect(&app.ocpp_url, "CP-CARD").await.expect("connects");
    cp.boot().await.expect("boot answered");
    let answer = cp.authorize("04A2B3C4D5").await.expect("answered");
    assert_eq!(answer["idTagInfo"]["status"], "Accepted", "{answer}");
    assert_eq!(answer["idTagInfo"]["parentIdTag"], driver.id_tag.as_str());

    let (status, _) = app.call("DELETE", &format!("/api/me/cards/{card_id}"), Some(&other.token), None).await;
    assert_eq!(status, 404, "only the card's driver can remove it");
    let (status, _) = app.call("DELETE", &format!("/api/me/cards/{card_id}"), Some(&driver.token), None).await;
    assert_eq!(status, 200);
    let answer = cp.authorize("04A2B3C4D5").await.expect("answered");
    assert_eq!(answer["idTagInfo"]["status"], "Invalid");
}

#[actix_rt::test]
async fn the_openapi_document_describes_every_endpoint_the_server_serves() {
    let app = spawn_app().await;
    let (status, doc) = app.get("/api/openapi.json").await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")), "{doc}");
    let paths = doc["paths"].as_object().expect("paths");
    for expected in
        ["/api/auth/register", "/api/auth/login", "/api/me", "/api/me/cards/{cardId}", "/api/chargers/{chargePointId}"]
    {
        assert!(paths.contains_key(expected), "{expected} is not documented");
    }
    // Every documented operation is served: calling it never hits the "no endpoint" fallback
    // or a 405, and every one documents its success body.
    for (path, operations) in paths {
        let concrete: String = path
            .split('/')
            .map(|segment| match segment {
                "{chargePointId}" => "CP-NONE",
                "{action}" => "Reset",
                s if s.starts_with('{') => "1",
                s => s,
            })
            .collect::<Vec<_>>()
            .join("/");
        for (method, operation) in operations.as_object().unwrap() {
            let (status, body) = app.call(&method.to_uppercase(), &concrete, None, Some(&json!({}))).await;
            assert_ne!(status, 405, "{method} {path}");
            assert!(
                !(status == 404 && body["error"]["message"].as_str().is_some_and(|m| m.starts_with("No endpoint"))),
                "{method} {path} is documented but not served"
            );
            let responses = operation["responses"].as_object().expect("responses");
            assert!(responses.keys().any(|code| code.starts_with('2')), "{method} {path} documents no success");
            let secured = operation.get("security").is_some();
            if secured {
                assert_eq!(status, 401, "{method} {path} is documented as needing a token");
            }
        }
    }
}
