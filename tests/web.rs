//! The web UI in a real headless Chromium against a real server: sign up, log out and in,
//! recharge through the sandbox page, and the guards a browser relies on (CSRF on every form,
//! escaped user data, sign-in redirects).

mod common;

use common::browser::Browser;
use common::sql::count;
use common::{TestApp, spawn_app};

const NAME: &str = "Asha <script>window.pwned = 1</script>";

/// Signs up in the browser (PIN 4321) and waits for the dashboard.
async fn sign_up(browser: &Browser, username: &str) {
    browser.goto("/signup").await;
    browser.fill("#username", username).await;
    browser.fill("#phone", &format!("9{:09}", rand::random::<u32>() % 1_000_000_000)).await;
    browser.fill("#pin", "4321").await;
    browser.fill("#name", NAME).await;
    browser.click("#submit").await;
    browser.wait_for_path("/").await;
}

/// POSTs a form with the browser's session cookie from outside the browser (as another site
/// would make the browser do), answering the status.
async fn post_form(app: &TestApp, path: &str, session: &str, form: &[(&str, &str)]) -> u16 {
    let response = app
        .client
        .post(app.url(path))
        .insert_header(("cookie", format!("kw_session={session}")))
        .send_form(&form)
        .await
        .expect("request sent");
    response.status().as_u16()
}

#[actix_rt::test]
async fn a_driver_signs_up_logs_out_and_in_and_recharges_through_the_sandbox() {
    let app = spawn_app().await;
    let browser = Browser::start(&app.base_url).await;

    // Home needs a session: the browser is sent to sign in, and back home afterwards.
    browser.goto("/").await;
    browser.wait_for_path("/login?next=%2F").await;

    sign_up(&browser, "asha").await;
    browser.wait_for_text("#balance", "₹0.00").await;
    // The name is shown as typed, escaped: the markup never reaches the page as markup.
    assert_eq!(browser.text("#display-name").await, NAME);
    let source = browser.client.source().await.expect("page source");
    assert!(source.contains("&lt;script&gt;window.pwned = 1&lt;/script&gt;"), "name not escaped");
    assert!(!source.contains("<script>window.pwned"), "raw markup in the page");
    let pwned = browser.client.execute("return window.pwned === undefined;", vec![]).await.expect("script runs");
    assert_eq!(pwned, serde_json::Value::Bool(true));

    // Log out: back at the sign-in page, and home needs signing in again.
    browser.click("#logout").await;
    browser.wait_for_path("/login").await;
    browser.goto("/").await;
    browser.wait_for_path("/login?next=%2F").await;

    // A wrong PIN is shown on the form; the right one signs in.
    browser.fill("#login", "asha").await;
    browser.fill("#pin", "0000").await;
    browser.click("#submit").await;
    browser.wait_for_text("#form-error", "Wrong username, phone or PIN.").await;
    browser.fill("#login", "asha").await;
    browser.fill("#pin", "4321").await;
    browser.click("#submit").await;
    browser.wait_for_path("/").await;

    // A custom amount under the minimum is refused next to the field.
    browser.fill("#amount", "100").await;
    browser.click("#recharge").await;
    browser.wait_for_text("#amount-error", "The minimum recharge is ₹500.").await;
    assert_eq!(count(&app, "SELECT count(*) FROM payments").await, 0);

    // Recharge ₹500 with the preset button and pay on the sandbox page.
    browser.click("#preset-500").await;
    browser.wait_for_text("#amount", "₹500.00").await;
    browser.click("button.pay").await;
    browser.goto("/").await;
    browser.wait_for_text("#balance", "₹500.00").await;

    // Forms posted without the session's CSRF token are refused and change nothing.
    let session = browser.cookie("kw_session").await.expect("session cookie");
    assert_eq!(post_form(&app, "/wallet/recharge", &session, &[("amount", "1000")]).await, 403);
    assert_eq!(post_form(&app, "/wallet/recharge", &session, &[("amount", "1000"), ("csrf", "forged")]).await, 403);
    assert_eq!(post_form(&app, "/logout", &session, &[]).await, 403);
    assert_eq!(count(&app, "SELECT count(*) FROM payments").await, 1);
    browser.goto("/").await;
    browser.wait_for_text("#balance", "₹500.00").await;

    browser.close().await;
}

#[actix_rt::test]
async fn sign_up_errors_are_shown_next_to_their_fields_and_forms_need_their_token() {
    let app = spawn_app().await;
    app.driver("taken").await;
    let browser = Browser::start(&app.base_url).await;

    browser.goto("/signup").await;
    browser.fill("#username", "taken").await;
    browser.fill("#phone", "98765 12345").await;
    browser.fill("#pin", "12").await;
    browser.click("#submit").await;
    browser.wait_for_text("#pin-error", "Use 4 to 6 digits").await;
    // What was typed stays in the form (never the PIN).
    let username = browser.find("#username").await.prop("value").await.expect("value");
    assert_eq!(username.as_deref(), Some("taken"));
    browser.fill("#pin", "1234").await;
    browser.click("#submit").await;
    browser.wait_for_text("#username-error", "This username is already registered.").await;
    assert_eq!(count(&app, "SELECT count(*) FROM users").await, 1);
    browser.close().await;

    // A sign-in form posted without the form token (another site's form) is refused.
    let response = app.client.post(app.url("/login")).send_form(&[("login", "taken"), ("pin", "1234")]).await;
    assert_eq!(response.expect("request sent").status().as_u16(), 403);
}

#[actix_rt::test]
async fn the_charger_page_shows_connector_status_live_and_starts_charging() {
    let app = spawn_app().await;
    let owner = app.owner("owner-web").await;
    common::sql::exec(
        &app,
        &format!(
            "INSERT INTO stations (owner_id, name, address, price_per_kwh) VALUES ({}, 'Hub', 'MG Road', 18.50)",
            owner.id
        ),
    )
    .await;
    common::sql::exec(
        &app,
        "INSERT INTO chargers (charge_point_id, station_id) SELECT 'CP-WEB', max(id) FROM stations",
    )
    .await;
    let options = common::charge_point::ConnectOptions { clock: app.clock.clone(), ..Default::default() };
    let charger =
        common::charge_point::ChargePoint::connect_with(&app.ocpp_url, "CP-WEB", options).await.expect("connects");
    assert_eq!(charger.boot().await.expect("boot")["status"], "Accepted");
    charger.status(1, "Available", "NoError").await.expect("status");

    let browser = Browser::start(&app.base_url).await;
    sign_up(&browser, "ravi").await;
    common::sql::exec(&app, "UPDATE users SET name = NULL").await;
    let driver = common::User {
        id: common::sql::count(&app, "SELECT id FROM users WHERE username = 'ravi'").await,
        username: "ravi".to_owned(),
        token: String::new(),
        id_tag: String::new(),
    };
    app.fund(&driver, 1000).await;

    // Find the charger by its ID from the dashboard.
    browser.fill("#charger-id", "CP-WEB").await;
    browser.click("#find").await;
    browser.wait_for_path("/chargers/CP-WEB").await;
    browser.wait_for_text("#connector-1-status", "Available").await;
    browser.wait_for_text("#live-state", "Live").await;

    // The charger reports a change: the page shows it without a reload.
    charger.status(1, "Preparing", "NoError").await.expect("status");
    browser.wait_for_text("#connector-1-status", "Preparing").await;
    charger.status(1, "Available", "NoError").await.expect("status");
    browser.wait_for_text("#connector-1-status", "Available").await;

    // Start: the same path as the API's start sends RemoteStartTransaction to the charger.
    browser.goto("/chargers/CP-WEB").await;
    browser.click("#start-1").await;
    let remote = charger.expect_call("RemoteStartTransaction", std::time::Duration::from_secs(10)).await;
    assert!(remote.is_some(), "RemoteStartTransaction sent");

    // A Start posted without the CSRF token is refused.
    let session = browser.cookie("kw_session").await.expect("session cookie");
    assert_eq!(post_form(&app, "/chargers/CP-WEB/start", &session, &[("connector", "1")]).await, 403);
    browser.close().await;
}
