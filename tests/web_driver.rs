//! The driver's web pages in a real headless Chromium against a real server and the in-repo
//! OCPP test charger: sign up, recharge through the sandbox, charge from the charger page and
//! watch the meter live, stop, and find the session in the history and the wallet with the
//! exact cost; the profile form with the API's rules; the help page's configured contacts;
//! history filters and pagination; CSRF on the new forms.

mod common;

use std::time::Duration;

use chrono::Duration as ChronoDuration;
use common::browser::Browser;
use common::charge_point::ChargePoint;
use common::sql::{count, exec, money, scalar};
use common::{TestApp, User, eventually, spawn_app, spawn_app_with};
use rust_decimal::Decimal;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(10);

/// An owner's station "Hub" at ₹18.50/kWh with charger `cp` (two connectors once it reports).
async fn station_with_charger(app: &TestApp, cp: &str) -> User {
    let owner = app.owner(&format!("owner-{}", cp.to_lowercase())).await;
    exec(
        app,
        &format!(
            "INSERT INTO stations (owner_id, name, address, price_per_kwh) VALUES ({}, 'Hub', 'MG Road', 18.50)",
            owner.id
        ),
    )
    .await;
    exec(app, &format!("INSERT INTO chargers (charge_point_id, station_id) SELECT '{cp}', max(id) FROM stations"))
        .await;
    owner
}

/// Signs up in the browser (PIN 4321) as a driver and waits for the dashboard.
async fn sign_up(browser: &Browser, username: &str, name: &str) {
    browser.goto("/signup").await;
    browser.fill("#username", username).await;
    browser.fill("#phone", &format!("9{:09}", rand::random::<u32>() % 1_000_000_000)).await;
    browser.fill("#pin", "4321").await;
    browser.fill("#name", name).await;
    browser.click("#submit").await;
    browser.wait_for_path("/").await;
}

/// Opens `path` again and again until `css` shows `expected` (for changes a page does not push).
async fn reload_until(browser: &Browser, path: &str, css: &str, expected: &str) {
    let mut last = String::new();
    for _ in 0..100 {
        browser.goto(path).await;
        if let Ok(element) = browser.client.find(fantoccini::Locator::Css(css)).await {
            last = element.text().await.unwrap_or_default();
            if last == expected {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{path}: {css} shows {last:?}, expected {expected:?}");
}

/// Sends the same meter reading until the page shows `expected` in `css`: the page subscribes
/// to the session a moment after it loads, and a reading sent before that is not pushed to it.
async fn meter_until_shown(browser: &Browser, charger: &ChargePoint, tx: i32, wh: i64, css: &str, expected: &str) {
    for _ in 0..40 {
        charger.meter_values(1, Some(tx), wh, Some(7_400), Some(60)).await.expect("meter values");
        for _ in 0..10 {
            if let Ok(element) = browser.client.find(fantoccini::Locator::Css(css)).await
                && element.text().await.unwrap_or_default() == expected
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    panic!("{css} never showed {expected:?}; it shows {:?}", browser.text(css).await);
}

/// Whether the current page is still the one `mark_page` marked (no reload since).
async fn same_page(browser: &Browser) -> bool {
    let marked = browser.client.execute("return window.__kwMarked === true;", vec![]).await.expect("script");
    marked == Value::Bool(true)
}

async fn mark_page(browser: &Browser) {
    browser.client.execute("window.__kwMarked = true;", vec![]).await.expect("script");
}

/// The session cookie and the page's CSRF token, to post forms from outside the browser.
async fn credentials(browser: &Browser) -> (String, String) {
    let session = browser.cookie("kw_session").await.expect("session cookie");
    let csrf = browser.find("input[name=csrf]").await.prop("value").await.expect("csrf value").expect("a csrf field");
    (session, csrf)
}

/// POSTs a form with the browser's session cookie, answering the status and the page.
async fn post_form(app: &TestApp, path: &str, session: &str, form: &[(&str, &str)]) -> (u16, String) {
    let mut response = app
        .client
        .post(app.url(path))
        .insert_header(("cookie", format!("kw_session={session}")))
        .send_form(&form)
        .await
        .expect("request sent");
    let body = response.body().await.expect("body");
    (response.status().as_u16(), String::from_utf8_lossy(&body).into_owned())
}

/// GETs a page with the browser's session cookie, answering the status and the page.
async fn get_page(app: &TestApp, path: &str, session: &str) -> (u16, String) {
    let mut response = app
        .client
        .get(app.url(path))
        .insert_header(("cookie", format!("kw_session={session}")))
        .send()
        .await
        .expect("request sent");
    let body = response.body().await.expect("body");
    (response.status().as_u16(), String::from_utf8_lossy(&body).into_owned())
}

/// How many rows the table `css` shows.
async fn row_count(browser: &Browser, css: &str) -> usize {
    browser.client.find_all(fantoccini::Locator::Css(css)).await.expect("rows").len()
}

#[actix_rt::test]
async fn a_driver_recharges_charges_live_stops_and_finds_it_all_in_history_and_wallet() {
    let app = spawn_app().await;
    station_with_charger(&app, "CP-DRV").await;
    let charger = app.booted_charger("CP-DRV", 1).await;
    let browser = Browser::start(&app.base_url).await;

    // Sign up; a new driver's history and wallet are empty and say so.
    sign_up(&browser, "meera", "Meera").await;
    browser.goto("/history").await;
    browser.wait_for_text("#empty p", "You have not charged yet.").await;
    browser.goto("/wallet").await;
    browser.wait_for_text("#balance", "₹0.00").await;
    browser.wait_for_text("#empty", "No transactions yet. Recharge to start charging.").await;

    // Recharge ₹500 from the wallet page through the sandbox payment page.
    browser.click("#preset-500").await;
    browser.wait_for_text("#amount", "₹500.00").await;
    browser.click("button.pay").await;
    reload_until(&browser, "/wallet", "#balance", "₹500.00").await;

    // Find the charger and start charging from its page.
    browser.goto("/").await;
    browser.fill("#charger-id", "CP-DRV").await;
    browser.click("#find").await;
    browser.wait_for_path("/chargers/CP-DRV").await;
    browser.wait_for_text("#connector-1-status", "Available").await;
    browser.click("#start-1").await;
    let remote = charger.expect_call("RemoteStartTransaction", WAIT).await.expect("RemoteStartTransaction sent");
    let id_tag = remote["idTag"].as_str().expect("idTag").to_owned();
    let (tx, info) = charger.start_transaction(1, &id_tag, 1_000, app.clock.now()).await.expect("start");
    assert_eq!(info["status"], "Accepted", "{info}");
    charger.status(1, "Charging", "NoError").await.expect("status");
    // The page shows the session under way (it reloads itself when the charger starts; a
    // reload here covers a start that came before its subscription did).
    reload_until(&browser, "/chargers/CP-DRV", "#session-status", "Active").await;
    browser.wait_for_text("#live-state", "Live").await;

    // The meter moves: the same page shows the new energy and cost without reloading.
    mark_page(&browser).await;
    app.clock.advance(ChronoDuration::minutes(20));
    meter_until_shown(&browser, &charger, tx, 3_500, "#energy", "2.500").await;
    browser.wait_for_text("#cost", "46.25").await;
    assert!(same_page(&browser).await, "the charger page reloaded to show the meter");

    // History shows the session under way, with Stop, and follows the meter live too.
    browser.goto("/history").await;
    let session_id: i64 = scalar(&app, "SELECT max(id) FROM charging_sessions").await;
    let row = format!("#session-{session_id}");
    assert_eq!(browser.text(&format!("{row} .status")).await, "Active");
    browser.find(&format!("{row} .status.status-active")).await;
    assert_eq!(browser.text(&format!("{row} .cost")).await, "46.25");
    assert!(browser.text(&format!("{row} .station")).await.starts_with("Hub"));
    browser.wait_for_text("#live-state", "Live").await;
    mark_page(&browser).await;
    app.clock.advance(ChronoDuration::minutes(10));
    meter_until_shown(&browser, &charger, tx, 5_000, &format!("{row} .energy"), "4.000").await;
    browser.wait_for_text(&format!("{row} .cost"), "74.00").await;
    assert!(same_page(&browser).await, "the history page reloaded to show the meter");
    browser.screenshot("history-active").await;

    // Stop from the history row: the confirmation is accepted, the charger is told to stop and
    // sends its final reading as a real one would.
    app.clock.advance(ChronoDuration::minutes(5));
    browser.client.execute("window.confirm = () => true;", vec![]).await.expect("script");
    browser.click(&format!("#stop-{session_id}")).await;
    let stop = charger.expect_call("RemoteStopTransaction", WAIT).await.expect("RemoteStopTransaction sent");
    assert_eq!(stop["transactionId"], tx);
    charger.stop_transaction(tx, 7_234, app.clock.now(), "Remote", None).await.expect("stop");
    charger.status(1, "Available", "NoError").await.expect("status");

    // 6.234 kWh × ₹18.50 = ₹115.329, billed ₹115.33.
    let energy_kwh = Decimal::new(6_234, 3);
    let cost = (energy_kwh * Decimal::new(1_850, 2)).round_dp(2);
    assert_eq!(cost, Decimal::new(11_533, 2));
    let cost_text = format!("{cost:.2}");
    reload_until(&browser, "/history", &format!("{row} .status"), "Completed").await;
    browser.find(&format!("{row} .status.status-completed")).await;
    assert_eq!(browser.text(&format!("{row} .cost")).await, cost_text);
    assert_eq!(browser.text(&format!("{row} .energy")).await, "6.234");
    assert_eq!(browser.text(&format!("{row} .duration")).await, "0:35:00");
    assert_eq!(row_count(&browser, "#sessions tbody tr").await, 1);
    assert!(browser.client.find(fantoccini::Locator::Css(&format!("#stop-{session_id}"))).await.is_err());
    browser.wait_for_text("#total-sessions", "1").await;
    browser.wait_for_text("#total-energy", "6.234").await;
    browser.wait_for_text("#total-spent", &format!("₹{cost_text}")).await;
    browser.screenshot("history").await;

    // The wallet: the charge debit (newest) and the recharge credit; balance = 500 − cost.
    let balance = Decimal::from(500) - cost;
    browser.goto("/wallet").await;
    browser.wait_for_text("#balance", &format!("₹{balance:.2}")).await;
    assert_eq!(row_count(&browser, "#transactions tbody tr").await, 2);
    let debit = "#transactions tbody tr:nth-child(1)";
    let credit = "#transactions tbody tr:nth-child(2)";
    assert_eq!(browser.text(&format!("{debit} .amount")).await, format!("−₹{cost_text}"));
    assert_eq!(browser.text(&format!("{debit} .description")).await, "Charging session payment");
    assert_eq!(browser.text(&format!("{debit} .balance-after")).await, format!("₹{balance:.2}"));
    browser.find(&format!("{debit} .amount-debit")).await;
    assert_eq!(browser.text(&format!("{credit} .amount")).await, "+₹500.00");
    assert_eq!(browser.text(&format!("{credit} .kind")).await, "Recharge");
    assert_eq!(browser.text(&format!("{credit} .balance-after")).await, "₹500.00");
    browser.find(&format!("{credit} .amount-credit")).await;
    let user_id: i64 = scalar(&app, "SELECT id FROM users WHERE username = 'meera'").await;
    assert_eq!(money(&app, &format!("SELECT balance FROM wallets WHERE user_id = {user_id}")).await, balance);
    browser.screenshot("wallet").await;
    browser.close().await;
}

#[actix_rt::test]
async fn the_profile_form_follows_the_api_rules_and_a_pin_change_keeps_this_browser_signed_in() {
    let app = spawn_app().await;
    let driver = app.driver("priya").await;
    let other = app.driver("taken-phone").await;
    let other_phone: String = scalar(&app, &format!("SELECT phone FROM users WHERE id = {}", other.id)).await;
    let browser = Browser::start(&app.base_url).await;
    browser.sign_in("priya", "1234").await;
    browser.goto("/profile").await;
    browser.wait_for_text("#username", "priya").await;
    browser.wait_for_text("#role", "Driver").await;
    browser.wait_for_text("#id-tag", &driver.id_tag).await;

    // A bad email is shown next to the field, with what was typed kept.
    browser.fill("#name", "Priya Sharma").await;
    browser.fill("#email", "not-an-email").await;
    browser.click("#save-profile").await;
    browser.wait_for_text("#email-error", "This is not an email address.").await;
    let typed = browser.find("#name").await.prop("value").await.expect("value");
    assert_eq!(typed.as_deref(), Some("Priya Sharma"));
    assert_eq!(count(&app, "SELECT count(*) FROM users WHERE name IS NOT NULL").await, 0);
    // … as a 422, like the API.
    let (session, csrf) = credentials(&browser).await;
    let bad = [("csrf", csrf.as_str()), ("phone", "98765 00000"), ("email", "nope"), ("name", "X")];
    let (status, page) = post_form(&app, "/profile", &session, &bad).await;
    assert_eq!(status, 422);
    assert!(page.contains("id=\"email-error\""), "error next to the field");
    // A phone another account has is refused next to the phone field.
    browser.fill("#email", "priya@example.com").await;
    browser.fill("#phone", &other_phone).await;
    browser.click("#save-profile").await;
    browser.wait_for_text("#phone-error", "This phone is already registered.").await;

    // A good edit is saved and shown again.
    browser.fill("#phone", "98765 43210").await;
    browser.fill("#vehicle-battery", "40.5").await;
    browser.click("#notify-sms").await; // on by default: now off
    browser.click("#save-profile").await;
    browser.wait_for_path("/profile?saved=1").await;
    browser.wait_for_text("#notice", "Your profile was saved.").await;
    browser.goto("/profile").await;
    let value = |css: &'static str| {
        let browser = &browser;
        async move { browser.find(css).await.prop("value").await.expect("value").unwrap_or_default() }
    };
    assert_eq!(value("#name").await, "Priya Sharma");
    assert_eq!(value("#email").await, "priya@example.com");
    assert_eq!(value("#phone").await, "+919876543210");
    assert_eq!(value("#vehicle-battery").await, "40.5");
    let sms = browser.client.execute("return document.getElementById('notify-sms').checked;", vec![]).await;
    assert_eq!(sms.expect("script"), Value::Bool(false));
    let (_, me) = app.call("GET", "/api/me", Some(&driver.token), None).await;
    assert_eq!(me["data"]["email"], "priya@example.com");
    assert_eq!(me["data"]["name"], "Priya Sharma");
    assert_eq!(me["data"]["vehicleBatteryKwh"], "40.5");
    assert_eq!(me["data"]["notifySms"], false);
    assert_eq!(me["data"]["notifyEmail"], true);
    browser.wait_for_text("#who", "Priya Sharma").await;

    // Without the session's CSRF token the form is refused and changes nothing.
    let (session, _) = credentials(&browser).await;
    let forged = [("phone", "98765 11111"), ("email", "evil@example.com"), ("name", "Evil")];
    assert_eq!(post_form(&app, "/profile", &session, &forged).await.0, 403);
    let with_wrong = [("csrf", "forged"), ("phone", "98765 11111"), ("email", "evil@example.com")];
    assert_eq!(post_form(&app, "/profile", &session, &with_wrong).await.0, 403);
    assert_eq!(post_form(&app, "/profile/pin", &session, &[("current_pin", "1234"), ("new_pin", "9999")]).await.0, 403);
    assert_eq!(count(&app, "SELECT count(*) FROM users WHERE email = 'priya@example.com'").await, 1);

    // PIN: a wrong current PIN and a bad new one are shown next to their fields.
    browser.fill("#current-pin", "0000").await;
    browser.fill("#new-pin", "5678").await;
    browser.fill("#confirm-pin", "5678").await;
    browser.click("#change-pin").await;
    browser.wait_for_text("#current-pin-error", "The current PIN is wrong.").await;
    browser.fill("#current-pin", "1234").await;
    browser.fill("#new-pin", "12").await;
    browser.fill("#confirm-pin", "12").await;
    browser.click("#change-pin").await;
    browser.wait_for_text("#new-pin-error", "Use 4 to 6 digits").await;
    browser.fill("#current-pin", "1234").await;
    browser.fill("#new-pin", "5678").await;
    browser.fill("#confirm-pin", "5679").await;
    browser.click("#change-pin").await;
    browser.wait_for_text("#confirm-pin-error", "The two new PINs differ.").await;

    // A good change signs out the other device (the API token) and keeps this browser in.
    browser.fill("#current-pin", "1234").await;
    browser.fill("#new-pin", "5678").await;
    browser.fill("#confirm-pin", "5678").await;
    browser.click("#change-pin").await;
    browser.wait_for_path("/profile?pin=changed").await;
    browser
        .wait_for_text("#notice", "Your PIN was changed. Other devices were signed out; this browser stays signed in.")
        .await;
    let (status, _) = app.call("GET", "/api/me", Some(&driver.token), None).await;
    assert_eq!(status, 401, "the other device is signed out");
    browser.goto("/profile").await;
    browser.wait_for_path("/profile").await;
    browser.screenshot("profile").await;
    browser.click("#logout").await;
    browser.wait_for_path("/login").await;
    browser.sign_in("priya", "5678").await;
    browser.wait_for_path("/").await;
    browser.close().await;
}

#[actix_rt::test]
async fn help_shows_the_configured_support_email_and_whatsapp_signed_in_or_not() {
    let app = spawn_app_with(&[
        ("KILOWATT_SUPPORT_EMAIL", "care@chargeco.in"),
        ("KILOWATT_SUPPORT_WHATSAPP", "+91 98450 12345"),
    ])
    .await;
    app.driver("arjun").await;
    let browser = Browser::start(&app.base_url).await;

    browser.goto("/help").await;
    browser.wait_for_path("/help").await;
    let check = async || {
        browser.wait_for_text("#support-email", "care@chargeco.in").await;
        let mailto = browser.find("#support-email").await.attr("href").await.expect("href");
        assert_eq!(mailto.as_deref(), Some("mailto:care@chargeco.in"));
        browser.wait_for_text("#support-whatsapp", "+91 98450 12345").await;
        let whatsapp = browser.find("#support-whatsapp").await.attr("href").await.expect("href");
        assert_eq!(whatsapp.as_deref(), Some("https://wa.me/919845012345"));
        let faq = browser.text("#faq").await;
        for question in ["start charging", "stop", "recharge", "wait in line", "book", "refunds"] {
            assert!(faq.contains(question), "the FAQ answers {question}: {faq}");
        }
    };
    check().await;

    browser.sign_in("arjun", "1234").await;
    browser.goto("/help").await;
    check().await;
    browser.wait_for_text("#who", "arjun").await;
    browser.click("#faq-refunds summary").await;
    browser.screenshot("help").await;
    browser.close().await;
}

#[actix_rt::test]
async fn history_filters_and_pages_show_the_right_rows_and_totals() {
    let app = spawn_app().await;
    station_with_charger(&app, "CP-HIST").await;
    let driver = app.driver("kiran").await;
    exec(&app, "INSERT INTO connectors (charger_id, connector_number, status) SELECT id, 1, 'Available' FROM chargers")
        .await;
    // 25 sessions, one a day from 1 March 2025 (noon IST): days 1–12 completed (1 kWh,
    // ₹18.50 each), 13–18 cancelled (2 kWh, ₹37.00 each), 19–25 failed (never started).
    for day in 1..=25 {
        let (status, wh, cost, started) = match day {
            1..=12 => ("completed", 1_000, "18.50", true),
            13..=18 => ("cancelled", 2_000, "37.00", true),
            _ => ("failed", 0, "0", false),
        };
        let at = format!("'2025-03-{day:02} 12:00:00+05:30'::timestamptz");
        let (started_at, ended_at, seconds) = if started {
            (at.clone(), format!("{at} + interval '30 minutes'"), "1800".to_owned())
        } else {
            ("NULL".to_owned(), "NULL".to_owned(), "NULL".to_owned())
        };
        exec(
            &app,
            &format!(
                "INSERT INTO charging_sessions (user_id, charger_id, connector_id, station_id, id_tag, source, status, \
                 price_per_kwh, energy_wh, cost, requested_at, started_at, ended_at, duration_seconds, settled_at) \
                 SELECT {}, c.id, k.id, c.station_id, '{}', 'app', '{status}', 18.50, {wh}, {cost}, {at}, \
                 {started_at}, {ended_at}, {seconds}, {at} + interval '1 hour' \
                 FROM chargers c JOIN connectors k ON k.charger_id = c.id",
                driver.id, driver.id_tag
            ),
        )
        .await;
    }
    let browser = Browser::start(&app.base_url).await;
    browser.sign_in("kiran", "1234").await;

    // Everything: newest first, 10 a page; totals over the billed sessions.
    browser.goto("/history").await;
    browser.wait_for_text("#listed", "25 sessions · times in IST").await;
    assert_eq!(row_count(&browser, "#sessions tbody tr").await, 10);
    assert_eq!(browser.text("#sessions tbody tr:first-child .started").await, "Not started");
    browser.wait_for_text("#total-sessions", "18").await;
    browser.wait_for_text("#total-energy", "24.000").await;
    browser.wait_for_text("#total-spent", "₹444.00").await;
    browser.click("#page-2").await;
    browser.wait_for_path("/history?page=2").await;
    assert_eq!(row_count(&browser, "#sessions tbody tr").await, 10);
    // Page 2 holds days 15 down to 6.
    browser.wait_for_text("#sessions tbody tr:first-child .started", "15 Mar 2025, 12:00").await;
    browser.wait_for_text("#sessions tbody tr:last-child .started", "06 Mar 2025, 12:00").await;
    browser.click("#page-next").await;
    browser.wait_for_path("/history?page=3").await;
    assert_eq!(row_count(&browser, "#sessions tbody tr").await, 5);
    browser.wait_for_text("#sessions tbody tr:last-child .started", "01 Mar 2025, 12:00").await;
    assert_eq!(browser.text("#sessions tbody tr:last-child .stopped").await, "01 Mar 2025, 12:30");
    assert_eq!(browser.text("#sessions tbody tr:last-child .duration").await, "0:30:00");

    // A status filter, chosen in the form: only those rows, their totals, and page links that
    // keep the filter.
    browser.goto("/history").await;
    browser.find("#status option[value=completed]").await.click().await.expect("choose completed");
    browser.click("#apply-filters").await;
    browser.wait_for_path("/history?status=completed&period=all-time&from=&to=").await;
    browser.wait_for_text("#listed", "12 sessions · times in IST").await;
    browser.wait_for_text("#total-sessions", "12").await;
    browser.wait_for_text("#total-spent", "₹222.00").await;
    let href = browser.find("#page-2").await.attr("href").await.expect("href").expect("a link");
    assert_eq!(href, "/history?status=completed&period=all-time&page=2");
    browser.click("#page-2").await;
    browser.wait_for_path("/history?status=completed&period=all-time&page=2").await;
    assert_eq!(row_count(&browser, "#sessions tbody tr").await, 2);
    assert_eq!(row_count(&browser, "#sessions tbody tr.row-completed").await, 2);
    browser.wait_for_text("#sessions tbody tr:last-child .started", "01 Mar 2025, 12:00").await;
    browser.screenshot("history-filtered").await;

    // A date range (whole days, inclusive) together with a status.
    browser.goto("/history?status=cancelled&from=2025-03-10&to=2025-03-14").await;
    browser.wait_for_text("#listed", "2 sessions · times in IST").await;
    assert_eq!(row_count(&browser, "#sessions tbody tr.row-cancelled").await, 2);
    browser.wait_for_text("#total-spent", "₹74.00").await;
    browser.goto("/history?from=2025-03-10&to=2025-03-14").await;
    browser.wait_for_text("#listed", "5 sessions · times in IST").await;
    browser.wait_for_text("#total-sessions", "5").await;
    browser.goto("/history?status=active").await;
    browser.wait_for_text("#empty p", "No sessions match these filters.").await;

    // Bad filters are explained next to their field, as a 422.
    browser.goto("/history?from=10-03-2025").await;
    browser.wait_for_text("#from-error", "Enter a date as YYYY-MM-DD.").await;
    browser.goto("/history?from=2025-03-14&to=2025-03-10").await;
    browser.wait_for_text("#to-error", "The end date is before the start date.").await;
    let session = browser.cookie("kw_session").await.expect("session cookie");
    assert_eq!(get_page(&app, "/history?status=paid", &session).await.0, 422);
    assert_eq!(get_page(&app, "/history?page=0", &session).await.0, 422);

    // Only the driver's own sessions: another driver sees none of them.
    let other = app.driver("other").await;
    let browser2 = Browser::start(&app.base_url).await;
    browser2.sign_in(&other.username, "1234").await;
    browser2.goto("/history").await;
    browser2.wait_for_text("#empty p", "You have not charged yet.").await;
    browser2.close().await;

    // The wallet pages too: 45 entries, 20 a page.
    for _ in 0..45 {
        app.fund(&driver, 500).await;
    }
    browser.goto("/wallet").await;
    browser.wait_for_text("#balance", "₹22,500.00").await;
    assert_eq!(row_count(&browser, "#transactions tbody tr").await, 20);
    browser.click("#page-next").await;
    browser.wait_for_path("/wallet?page=2").await;
    browser.click("#page-next").await;
    browser.wait_for_path("/wallet?page=3").await;
    assert_eq!(row_count(&browser, "#transactions tbody tr").await, 5);
    browser.wait_for_text("#transactions tbody tr:last-child .balance-after", "₹500.00").await;
    assert!(eventually(async || browser.text("#page-current").await == "Page 3 of 3").await);
    browser.close().await;
}
