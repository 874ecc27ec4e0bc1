//! The owner's Active Sessions page and slot monitoring dashboard in a real headless Chromium
//! against a real server and the in-repo OCPP test charger: two drivers charge, the owner
//! watches the meters move live, completes one session (billed when the charger confirms, the
//! queue advances) and cancels the other (closed at once, billed for the energy delivered);
//! drivers are kept out; a booking shows on the slot dashboard and its grace period goes live.

mod common;

use std::time::Duration;

use chrono::{Duration as ChronoDuration, SecondsFormat, SubsecRound};
use common::browser::Browser;
use common::charge_point::{ChargePoint, ConnectOptions};
use common::sql::{count, exec, money, scalar};
use common::{TestApp, User, eventually, spawn_app_with};
use fantoccini::Locator;
use rust_decimal::Decimal;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(10);
const CP: &str = "CP-OWNWEB";

/// A 5-minute queue hold, a 30-minute grace period and a ₹50 booking fee.
const SETTINGS: &[(&str, &str)] =
    &[("KILOWATT_QUEUE_HOLD_MINUTES", "5"), ("KILOWATT_GRACE_PERIOD_MINUTES", "30"), ("KILOWATT_BOOKING_FEE", "50")];

/// The owner's station "Hub" at ₹18.50/kWh with a two-connector charger; answers the station ID.
async fn station(app: &TestApp, owner: &User) -> i64 {
    app.station_with_charger(owner, "Hub", CP).await
}

async fn connect(app: &TestApp) -> ChargePoint {
    let options = ConnectOptions { clock: app.clock.clone(), ..ConnectOptions::default() };
    let charger = ChargePoint::connect_with(&app.ocpp_url, CP, options).await.expect("connects");
    assert_eq!(charger.boot().await.expect("boot")["status"], "Accepted");
    for connector in [1, 2] {
        charger.status(connector, "Available", "NoError").await.expect("status");
    }
    charger
}

/// Starts through the API; the charger accepts and starts with meter 1,000 Wh, then reports
/// Charging. Answers the session and transaction IDs.
async fn start(app: &TestApp, charger: &ChargePoint, driver: &User, connector: u32) -> (i64, i32) {
    let body = json!({ "chargerId": CP, "connectorId": connector });
    let (status, answer) = app.call("POST", "/api/charging/start", Some(&driver.token), Some(&body)).await;
    assert_eq!(status, 201, "{answer}");
    let session_id = answer["data"]["sessionId"].as_i64().expect("session id");
    let remote = charger.expect_call("RemoteStartTransaction", WAIT).await.expect("RemoteStart sent");
    assert_eq!(remote["connectorId"], connector);
    let (transaction_id, info) =
        charger.start_transaction(connector, &driver.id_tag, 1_000, app.clock.now()).await.expect("start");
    assert_eq!(info["status"], "Accepted", "{info}");
    charger.status(connector, "Charging", "NoError").await.expect("status");
    (session_id, transaction_id)
}

async fn balance(app: &TestApp, user: &User) -> Decimal {
    money(app, &format!("SELECT balance FROM wallets WHERE user_id = {}", user.id)).await
}

async fn ledger_sum(app: &TestApp, user: &User) -> Decimal {
    money(app, &format!("SELECT coalesce(sum(amount), 0) FROM wallet_entries WHERE user_id = {}", user.id)).await
}

async fn debits(app: &TestApp, user: &User) -> i64 {
    count(app, &format!("SELECT count(*) FROM wallet_entries WHERE user_id = {} AND amount < 0", user.id)).await
}

async fn session_field(app: &TestApp, session_id: i64, column: &str) -> String {
    scalar(app, &format!("SELECT {column} FROM charging_sessions WHERE id = {session_id}")).await
}

fn dec(value: &str) -> Decimal {
    value.parse().expect("decimal")
}

/// An attribute of the element `css`.
async fn attribute(browser: &Browser, css: &str, name: &str) -> Option<String> {
    browser.find(css).await.attr(name).await.expect("attribute read")
}

/// Waits until the live page's socket has confirmed every topic the page asked for, so what
/// the charger sends next reaches the page; fails at once on a refused topic.
async fn wait_until_listening(browser: &Browser, page: &str) {
    let css = format!("#{page}");
    let topics = attribute(browser, &css, "data-topics").await.unwrap_or_default();
    let wanted = topics.split_whitespace().count();
    for _ in 0..400 {
        if let Some(refused) = attribute(browser, &css, "data-refused").await {
            panic!("the socket refused the page's topics: {refused}");
        }
        let subscribed: usize =
            attribute(browser, &css, "data-subscribed").await.and_then(|n| n.parse().ok()).unwrap_or(0);
        if subscribed == wanted {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the page did not subscribe to all of {topics:?}");
}

/// Waits (up to 10 s) until no element matches `css`.
async fn wait_gone(browser: &Browser, css: &str) {
    for _ in 0..400 {
        if browser.client.find(Locator::Css(css)).await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{css} is still on the page");
}

/// Accepts every confirmation dialog, remembering the last question in sessionStorage (it
/// survives the form's redirect).
async fn accept_confirmations(browser: &Browser) {
    browser
        .client
        .execute("window.confirm = (q) => { sessionStorage.setItem('asked', q); return true; }; return true;", vec![])
        .await
        .expect("script runs");
}

async fn last_question(browser: &Browser) -> String {
    let asked = browser.client.execute("return sessionStorage.getItem('asked');", vec![]).await.expect("script runs");
    asked.as_str().unwrap_or_default().to_owned()
}

/// Scrolls the element with this ID to the top of the window (for a screenshot).
async fn scroll_to(browser: &Browser, id: &str) {
    let script = "document.getElementById(arguments[0]).scrollIntoView(); return true;";
    browser.client.execute(script, vec![json!(id)]).await.expect("script runs");
}

/// GETs a page with a browser's session cookie; answers the status.
async fn status_with_cookie(app: &TestApp, path: &str, session: &str) -> u16 {
    let response = app
        .client
        .get(app.url(path))
        .insert_header(("cookie", format!("kw_session={session}")))
        .send()
        .await
        .expect("request sent");
    response.status().as_u16()
}

#[actix_rt::test]
async fn an_owner_completes_and_cancels_sessions_from_the_active_sessions_page() {
    let app = spawn_app_with(SETTINGS).await;
    let owner = app.owner("os-owner").await;
    let station_id = station(&app, &owner).await;
    let [asha, bala, chitra] =
        [app.driver("os-asha").await, app.driver("os-bala").await, app.driver("os-chitra").await];
    for driver in [&asha, &bala, &chitra] {
        app.fund(driver, 1000).await;
    }
    exec(&app, &format!("UPDATE users SET name = 'Asha Rao' WHERE id = {}", asha.id)).await;
    let charger = connect(&app).await;
    let (first, tx1) = start(&app, &charger, &asha, 1).await;
    let (second, tx2) = start(&app, &charger, &bala, 2).await;
    // Both connectors busy: Chitra waits in the queue for connector 1.
    let (status, body) = app
        .call("POST", &format!("/api/chargers/{CP}/queue"), Some(&chitra.token), Some(&json!({ "connectorId": 1 })))
        .await;
    assert_eq!(status, 201, "{body}");

    // The owner sees both sessions: who charges, where, and the status.
    let browser = Browser::start(&app.base_url).await;
    browser.sign_in("os-owner", "1234").await;
    browser.goto("/owner/sessions").await;
    let row1 = format!("#session-{first}");
    let row2 = format!("#session-{second}");
    assert!(browser.text(&format!("{row1} .driver")).await.contains("Asha Rao"));
    assert!(browser.text(&row1).await.contains("@os-asha"));
    assert!(browser.text(&row2).await.contains("os-bala"));
    assert!(browser.text(&row2).await.contains(&format!("{CP} · connector 2")));
    assert_eq!(browser.text(&format!("#status-{first}")).await, "Active");
    browser.wait_for_text("#active-count", "2").await;
    browser.wait_for_text("#running-revenue", "0.00").await;
    wait_until_listening(&browser, "owner-sessions").await;

    // The chargers report their meters: the page follows without reloading.
    browser.client.execute("window.notReloaded = true; return true;", vec![]).await.expect("script runs");
    app.clock.advance(ChronoDuration::minutes(20));
    charger.meter_values(1, Some(tx1), 6_000, Some(7_200), Some(40)).await.unwrap();
    charger.meter_values(2, Some(tx2), 4_000, Some(11_000), None).await.unwrap();
    browser.wait_for_text(&format!("#energy-{first}"), "5.000").await;
    browser.wait_for_text(&format!("#power-{first}"), "7.2").await;
    browser.wait_for_text(&format!("#cost-{first}"), "92.50").await;
    browser.wait_for_text(&format!("#energy-{second}"), "3.000").await;
    browser.wait_for_text(&format!("#cost-{second}"), "55.50").await;
    browser.wait_for_text("#running-revenue", "148.00").await;
    browser.wait_for_text("#total-energy", "8.000").await;
    let same_page = browser.client.execute("return window.notReloaded === true;", vec![]).await.unwrap();
    assert_eq!(same_page, Value::Bool(true), "the meter moved without a reload");
    browser.screenshot("owner_active_sessions").await;
    // The duration ticks on its own between meter reports.
    let duration = format!("#duration-{first}");
    let before = browser.text(&duration).await;
    let mut ticked = false;
    for _ in 0..200 {
        if browser.text(&duration).await != before {
            ticked = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(ticked, "the duration stayed at {before}");
    scroll_to(&browser, "explain-complete").await;
    browser.screenshot("owner_active_sessions_explained").await;
    browser.client.set_window_size(390, 844).await.expect("phone-sized window");
    scroll_to(&browser, "sessions").await;
    browser.screenshot("owner_active_sessions_phone").await;
    browser.client.set_window_size(1280, 900).await.expect("window restored");

    // Complete Asha's: asked first, then the charger is told to stop and the page says so.
    accept_confirmations(&browser).await;
    browser.click(&format!("#complete-{first}")).await;
    let stop = charger.expect_call("RemoteStopTransaction", WAIT).await.expect("RemoteStop sent");
    assert_eq!(stop["transactionId"], tx1);
    browser.wait_for_path(&format!("/owner/sessions?ended={first}")).await;
    let question = last_question(&browser).await;
    assert!(question.starts_with(&format!("Complete session #{first}")), "{question}");
    assert!(question.contains("billed for the energy delivered"), "{question}");
    assert!(browser.text("#notice").await.contains("waiting for the charger"));
    assert!(browser.text(&format!("#stopping-{first}")).await.contains("Completed by the station owner"));
    wait_until_listening(&browser, "owner-sessions").await;

    // The charger stops as a real one would: the row leaves, billed exactly once.
    charger.stop_transaction(tx1, 7_234, app.clock.now(), "Remote", None).await.unwrap();
    wait_gone(&browser, &row1).await;
    browser.wait_for_text("#active-count", "1").await;
    browser.wait_for_text("#running-revenue", "55.50").await;
    assert!(browser.text("#live-notice").await.contains(&format!("Session #{first} has ended")));
    assert_eq!(session_field(&app, first, "status").await, "completed");
    assert_eq!(session_field(&app, first, "energy_wh").await, "6234");
    assert_eq!(session_field(&app, first, "stop_reason").await, "Completed by the station owner");
    // 6.234 kWh × 18.50 = 115.329 → 115.33, debited once.
    assert_eq!(dec(&session_field(&app, first, "cost").await), dec("115.33"));
    assert_eq!(balance(&app, &asha).await, dec("884.67"));
    assert_eq!(debits(&app, &asha).await, 1);
    assert_eq!(ledger_sum(&app, &asha).await, balance(&app, &asha).await);
    let (_, live) = app.call("GET", "/api/owner/sessions/active", Some(&owner.token), None).await;
    assert_eq!(live["data"]["count"], 1);
    assert_eq!(live["data"]["sessions"][0]["id"], second);

    // The charger reports the connector free: Chitra, first in the queue, gets it held.
    charger.status(1, "Available", "NoError").await.unwrap();
    let reserve = charger.expect_call("ReserveNow", WAIT).await.expect("ReserveNow for the next driver");
    assert_eq!(reserve["idTag"], chitra.id_tag.as_str());
    let held = format!("SELECT count(*) FROM queue_entries WHERE user_id = {} AND status = 'held'", chitra.id);
    assert!(eventually(async || count(&app, &held).await == 1).await, "the queue advanced");

    // Completing it again is refused, shown on the page (409), and changes nothing.
    let session = browser.cookie("kw_session").await.expect("session cookie");
    let csrf = attribute(&browser, "#owner-sessions", "data-csrf").await.expect("csrf");
    let mut response = app
        .client
        .post(app.url(&format!("/owner/sessions/{first}/complete")))
        .insert_header(("cookie", format!("kw_session={session}")))
        .send_form(&[("csrf", csrf.as_str())])
        .await
        .expect("request sent");
    assert_eq!(response.status().as_u16(), 409);
    let page = String::from_utf8(response.body().await.expect("body").to_vec()).expect("utf-8");
    assert!(page.contains("already ended"), "{page}");
    // Without the CSRF token nothing happens.
    let response = app
        .client
        .post(app.url(&format!("/owner/sessions/{second}/cancel")))
        .insert_header(("cookie", format!("kw_session={session}")))
        .send_form(&[("csrf", "forged")])
        .await
        .expect("request sent");
    assert_eq!(response.status().as_u16(), 403);
    assert_eq!(session_field(&app, second, "status").await, "active");

    // Cancel Bala's: closed at once as Cancelled, billed for the 3 kWh delivered.
    accept_confirmations(&browser).await;
    browser.click(&format!("#cancel-{second}")).await;
    browser.wait_for_path(&format!("/owner/sessions?ended={second}")).await;
    let question = last_question(&browser).await;
    assert!(question.starts_with(&format!("Emergency stop: cancel session #{second}")), "{question}");
    let notice = browser.text("#notice").await;
    assert!(notice.contains(&format!("Session #{second} cancelled")), "{notice}");
    assert!(notice.contains("₹55.50 for the 3.000 kWh delivered"), "{notice}");
    wait_gone(&browser, &row2).await;
    browser.wait_for_text("#active-count", "0").await;
    browser.wait_for_text("#no-sessions", "No sessions are under way at your stations right now.").await;
    let stop = charger.expect_call("RemoteStopTransaction", WAIT).await.expect("the charger is told to stop");
    assert_eq!(stop["transactionId"], tx2);
    assert_eq!(session_field(&app, second, "status").await, "cancelled");
    assert_eq!(session_field(&app, second, "stop_reason").await, "Cancelled by the station owner");
    assert_eq!(dec(&session_field(&app, second, "cost").await), dec("55.50"));
    assert_eq!(balance(&app, &bala).await, dec("944.50"));
    // The charger's own StopTransaction at the same reading bills nothing more.
    charger.stop_transaction(tx2, 4_000, app.clock.now(), "Remote", None).await.unwrap();
    assert_eq!(balance(&app, &bala).await, dec("944.50"));
    assert_eq!(debits(&app, &bala).await, 1);
    assert_eq!(ledger_sum(&app, &bala).await, balance(&app, &bala).await);

    // A booking at the owner's station shows on the slot dashboard, with its connector.
    charger.status(2, "Available", "NoError").await.unwrap();
    let start_at = (app.clock.now() + ChronoDuration::minutes(90)).trunc_subsecs(0);
    let body = json!({
        "chargerId": CP, "connectorId": 2,
        "startAt": start_at.to_rfc3339_opts(SecondsFormat::Secs, true), "durationMinutes": 60,
    });
    let (status, booked) = app.call("POST", "/api/users/bookings", Some(&bala.token), Some(&body)).await;
    assert_eq!(status, 201, "{booked}");
    let booking_id = booked["data"]["id"].as_i64().expect("booking id");
    browser.goto(&format!("/owner/slots?timeRange=24h&stationId={station_id}")).await;
    let slot = format!("#slot-{booking_id}");
    assert!(browser.text(&slot).await.contains("@os-bala"));
    assert_eq!(browser.text(&format!("#slot-status-{booking_id}")).await, "Confirmed");
    browser.wait_for_text("#count-confirmed", "1").await;
    let board = browser.text(&format!(".connector-slots[data-connector='2'][data-charger='{CP}']")).await;
    assert!(board.contains("Next") && board.contains("@os-bala"), "{board}");
    assert_eq!(browser.text("#no-grace").await, "No slot is waiting for its driver to check in.");
    wait_until_listening(&browser, "slot-monitoring").await;

    // The slot starts: the dashboard refreshes itself and counts down the grace period.
    app.clock.set(start_at + ChronoDuration::seconds(1));
    let grace = format!("SELECT count(*) FROM bookings WHERE id = {booking_id} AND status = 'grace'");
    assert!(eventually(async || count(&app, &grace).await == 1).await, "the slot started");
    let countdown = format!("#grace-left-{booking_id}");
    let shown = browser.text(&countdown).await;
    assert!(shown.starts_with("29:") || shown.starts_with("30:"), "{shown}");
    assert_eq!(browser.text(&format!("#slot-status-{booking_id}")).await, "Grace");
    browser.wait_for_text("#count-grace", "1").await;
    browser.screenshot("owner_slot_monitoring").await;
    scroll_to(&browser, "grace-now").await;
    browser.screenshot("owner_slot_monitoring_connectors").await;

    // A station of someone else is not to be looked at; a bad range is said next to its field.
    browser.goto(&format!("/owner/slots?stationId={}", station_id + 1000)).await;
    assert_eq!(browser.text("#stationId-error").await, "You have no such station.");
    browser.goto("/owner/slots?timeRange=2d").await;
    assert_eq!(browser.text("#timeRange-error").await, "Choose 1 hour, 24 hours or 7 days.");

    // A driver is kept out of both pages.
    browser.click("#logout").await;
    browser.wait_for_path("/login").await;
    browser.sign_in("os-asha", "1234").await;
    browser.goto("/owner/sessions").await;
    assert_eq!(browser.text("#message").await, "Only station owners and admins can do this.");
    let driver_session = browser.cookie("kw_session").await.expect("session cookie");
    assert_eq!(status_with_cookie(&app, "/owner/sessions", &driver_session).await, 403);
    assert_eq!(status_with_cookie(&app, "/owner/slots", &driver_session).await, 403);
    browser.close().await;
}
