//! The station owner's pages in a real headless Chromium against a real server, with the in-repo
//! OCPP test charge point on a real socket: an owner creates a station and adds a charger from
//! the forms, watches it come online and report status live, resets it from its page and reads
//! its message log; the dashboard's figures follow a real charging session; drivers are refused
//! and other owners find nothing.

mod common;

use std::time::Duration;

use common::browser::Browser;
use common::charge_point::{ChargePoint, ConnectOptions, Reply, default_reply};
use common::sql::{count, money};
use common::{TestApp, eventually, spawn_app};
use fantoccini::Locator;
use kilowatt_actors::ocpp::ErrorCode;
use rust_decimal::Decimal;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(10);

/// A GET with the browser's session cookie from outside the browser, answering the status.
async fn status_of(app: &TestApp, path: &str, session: &str) -> u16 {
    let response =
        app.client.get(app.url(path)).insert_header(("cookie", format!("kw_session={session}"))).send().await;
    response.expect("request sent").status().as_u16()
}

/// A form POST with the browser's session cookie from outside the browser, answering the status.
async fn post_form(app: &TestApp, path: &str, session: &str, form: &[(&str, &str)]) -> u16 {
    let response = app
        .client
        .post(app.url(path))
        .insert_header(("cookie", format!("kw_session={session}")))
        .send_form(&form)
        .await;
    response.expect("request sent").status().as_u16()
}

/// The rows of a table body, as their text.
async fn rows(browser: &Browser, css: &str) -> Vec<String> {
    let mut texts = Vec::new();
    for row in browser.client.find_all(Locator::Css(css)).await.expect("rows") {
        texts.push(row.text().await.expect("row text"));
    }
    texts
}

/// Signs the browser out and in again as `username`.
async fn switch_user(browser: &Browser, username: &str) {
    browser.goto("/owner/stations").await;
    browser.click("#logout").await;
    browser.wait_for_path("/login").await;
    browser.sign_in(username, "1234").await;
}

#[actix_rt::test]
async fn an_owner_sets_up_a_station_and_runs_its_charger_from_the_web() {
    let app = spawn_app().await;
    app.owner("ravi").await;
    app.owner("priya").await;
    app.driver("asha").await;
    let browser = Browser::start(&app.base_url).await;
    browser.sign_in("ravi", "1234").await;

    browser.goto("/owner").await;
    browser.wait_for_text("#stations-count", "0").await;
    browser.wait_for_text("#today-revenue", "₹0.00").await;
    for (link, path) in [("#link-sessions", "/owner/sessions"), ("#link-slots", "/owner/slots")] {
        let href = browser.find(link).await.attr("href").await.expect("href").unwrap_or_default();
        assert!(href.ends_with(path), "{link} goes to {href}");
    }

    // A new station with a price in tenths of paise is refused next to the price, keeping what
    // was typed; with a valid price it is created and opened.
    browser.goto("/owner/stations").await;
    browser.wait_for_text("#no-stations", "You have no stations yet. Add one with the form.").await;
    browser.fill("#name", "MG Road Hub").await;
    browser.fill("#address", "1 MG Road, Bengaluru").await;
    browser.fill("#latitude", "12.9756").await;
    browser.fill("#longitude", "77.605").await;
    browser.fill("#price", "18.555").await;
    browser.fill("#opening-hours", "24x7").await;
    browser.click("#create-station").await;
    browser.wait_for_text("#price-error", "The price per kWh has at most two decimals (paise).").await;
    let typed = browser.find("#name").await.prop("value").await.expect("value");
    assert_eq!(typed.as_deref(), Some("MG Road Hub"));
    assert_eq!(count(&app, "SELECT count(*) FROM stations").await, 0);
    browser.fill("#price", "18.50").await;
    browser.click("#create-station").await;
    browser.wait_for_text("#notice", "Station created. Add its chargers below.").await;
    let station_id = count(&app, "SELECT id FROM stations WHERE name = 'MG Road Hub'").await;
    browser.wait_for_path(&format!("/owner/stations/{station_id}?created=1")).await;
    assert_eq!(money(&app, "SELECT price_per_kwh FROM stations").await, Decimal::new(1850, 2));

    // Edit: a new price is saved.
    browser.fill("#price", "21").await;
    browser.click("#save-station").await;
    browser.wait_for_text("#notice", "Changes saved.").await;
    assert_eq!(money(&app, "SELECT price_per_kwh FROM stations").await, Decimal::from(21));

    // Add a charger by its charge point ID: a bad ID is refused at the field, then it is added.
    browser.fill("#charge-point-id", "CP OWN").await;
    browser.click("#add-charger-submit").await;
    browser
        .wait_for_text("#charge-point-id-error", "A charge point ID is 1 to 48 letters, digits, '.', '_', ':' or '-'.")
        .await;
    browser.fill("#charge-point-id", "CP-OWN-1").await;
    browser.fill("#connectors", "2").await;
    browser.click("#add-charger-submit").await;
    browser.wait_for_text("#notice", "Charger CP-OWN-1 added. It is accepted when it connects with this ID.").await;
    browser.wait_for_text("#online-CP-OWN-1", "Offline").await;
    browser.screenshot("owner_station_edit").await;
    browser.goto("/owner/stations").await;
    browser.wait_for_text(&format!("#station-{station_id} a"), "MG Road Hub").await;
    browser.screenshot("owner_stations").await;

    // The dashboard is open when the charger connects: it turns Online without a reload.
    browser.goto("/owner").await;
    browser.wait_for_text("#online-CP-OWN-1", "Offline").await;
    browser.wait_for_text("#chargers-online", "0").await;
    browser.wait_for_text("#chargers-total", "1").await;
    browser.wait_for_text("#owner-live", "Live").await;
    let options = ConnectOptions { clock: app.clock.clone(), ..ConnectOptions::default() };
    let charger = ChargePoint::connect_with(&app.ocpp_url, "CP-OWN-1", options).await.expect("connects");
    browser.wait_for_text("#online-CP-OWN-1", "Online").await;
    browser.wait_for_text("#chargers-online", "1").await;
    assert_eq!(charger.boot().await.expect("boot")["status"], "Accepted");
    // A charger that boots reports its connectors itself (Kilowatt asks only one that stays
    // silent after connecting).
    charger.status(1, "Available", "NoError").await.expect("status");
    browser.wait_for_text("#status-CP-OWN-1-1", "Available").await;
    charger.status(2, "Available", "NoError").await.expect("status");
    browser.wait_for_text("#status-CP-OWN-1-2", "Available").await;
    browser.screenshot("owner_dashboard").await;

    // The charger page: what it reported at boot, and its connectors' status live.
    browser.click("a[href='/owner/chargers/CP-OWN-1']").await;
    browser.wait_for_path("/owner/chargers/CP-OWN-1").await;
    browser.wait_for_text("#online-CP-OWN-1", "Online").await;
    let about = browser.text("#about").await;
    assert!(about.contains("Simulator AC22") && about.contains("1.4.2"), "{about}");
    browser.wait_for_text("#owner-live", "Live").await;
    charger.status(1, "Preparing", "NoError").await.expect("status");
    browser.wait_for_text("#status-CP-OWN-1-1", "Preparing").await;
    browser.wait_for_text("#status-history-rows tr:first-child td:nth-child(3)", "Preparing").await;
    charger.status(1, "Unavailable", "NoError").await.expect("status");
    browser.wait_for_text("#status-CP-OWN-1-1", "Unavailable").await;

    // Reset (Hard) from the page, after confirming: the charger gets it and its answer shows.
    browser.find("#reset-type").await.select_by_value("Hard").await.expect("Hard chosen");
    browser.click("#reset").await;
    let question = browser.client.get_alert_text().await.expect("a confirmation");
    assert!(question.starts_with("Reset charger CP-OWN-1?"), "{question}");
    browser.client.accept_alert().await.expect("confirmed");
    browser.wait_for_text("#command-status", "Accepted").await;
    let reset = charger.expect_call("Reset", WAIT).await.expect("Reset sent");
    assert_eq!(reset, json!({"type": "Hard"}));
    browser.screenshot("owner_charger_command").await;

    // A command posted without the session's CSRF token is refused and never reaches the charger.
    let session = browser.cookie("kw_session").await.expect("session cookie");
    assert_eq!(post_form(&app, "/owner/chargers/CP-OWN-1/commands/Reset", &session, &[("type", "Soft")]).await, 403);
    assert_eq!(charger.received_calls().iter().filter(|(action, _)| action == "Reset").count(), 1);

    // A charger that refuses a command: the page says so, with the charger's reason.
    charger.set_responder(|action, payload| match action {
        "ClearCache" => Reply::Error(ErrorCode::NotSupported, "no cache here".to_owned()),
        _ => default_reply(action, payload),
    });
    browser.click("#clear-cache").await;
    browser
        .wait_for_text(
            "#command-error",
            "ClearCache failed: The charger refused ClearCache with NotSupported: no cache here",
        )
        .await;

    // The message log holds the boot and the reset, both ways, and filters by action and direction.
    let log_has_reset = eventually(async || {
        browser.goto("/owner/chargers/CP-OWN-1?action=Reset").await;
        rows(&browser, "#log-rows tr").await.len() == 2
    })
    .await;
    assert!(log_has_reset, "Reset and its answer are logged");
    let reset_rows = rows(&browser, "#log-rows tr").await;
    assert!(reset_rows[0].contains("← from charger") && reset_rows[0].contains("CALLRESULT"), "{reset_rows:?}");
    assert!(reset_rows[1].contains("→ to charger") && reset_rows[1].contains("CALL"), "{reset_rows:?}");
    browser.goto("/owner/chargers/CP-OWN-1?action=BootNotification&direction=in").await;
    let boot_rows = rows(&browser, "#log-rows tr").await;
    assert_eq!(boot_rows.len(), 1, "{boot_rows:?}");
    assert!(boot_rows[0].contains("BootNotification") && boot_rows[0].contains("← from charger"), "{boot_rows:?}");
    browser.goto("/owner/chargers/CP-OWN-1").await;
    let log = browser.text("#log-rows").await;
    assert!(log.contains("BootNotification") && log.contains("Reset"), "{log}");
    browser.screenshot("owner_charger").await;
    browser
        .client
        .execute("document.getElementById('status-history').scrollIntoView()", vec![])
        .await
        .expect("scrolled");
    browser.screenshot("owner_charger_history_and_log").await;

    // The charger goes away: its page turns Offline live, and a command says why it cannot work.
    browser.wait_for_text("#owner-live", "Live").await;
    charger.close().await;
    browser.wait_for_text("#online-CP-OWN-1", "Offline").await;
    browser.find("#trigger-message").await.select_by_value("Heartbeat").await.expect("Heartbeat chosen");
    browser.click("#trigger").await;
    browser
        .wait_for_text("#command-error", "TriggerMessage failed: Charger CP-OWN-1 is not connected right now.")
        .await;

    // Settings: a short password is refused at its field; a good one is stored hashed, and
    // connector 2 is no longer billed by the charger's meter.
    browser.fill("#new-password", "short").await;
    browser.click("#save-settings").await;
    browser.wait_for_text("#password-error", "A charger password is 8 to 64 printable ASCII characters.").await;
    browser.fill("#new-password", "s3cret-pass").await;
    browser.click("#metered-2").await;
    browser.click("#save-settings").await;
    browser.wait_for_text("#saved", "Settings saved.").await;
    let stored = "SELECT count(*) FROM chargers WHERE password_hash IS NOT NULL AND password_hash <> 's3cret-pass'";
    assert_eq!(count(&app, stored).await, 1);
    assert_eq!(count(&app, "SELECT count(*) FROM connectors WHERE NOT metered").await, 1);
    assert_eq!(count(&app, "SELECT count(*) FROM connectors WHERE NOT metered AND connector_number = 2").await, 1);

    // Another owner: this charger and station do not exist for them, and they cannot command it.
    switch_user(&browser, "priya").await;
    browser.goto("/owner/chargers/CP-OWN-1").await;
    browser.wait_for_text("#message", "You have no charger CP-OWN-1.").await;
    let session = browser.cookie("kw_session").await.expect("session cookie");
    assert_eq!(status_of(&app, "/owner/chargers/CP-OWN-1", &session).await, 404);
    assert_eq!(status_of(&app, &format!("/owner/stations/{station_id}"), &session).await, 404);
    browser.goto("/owner").await;
    browser.wait_for_text("#chargers-total", "0").await;
    let csrf = browser.find("input[name=csrf]").await.prop("value").await.expect("csrf").expect("a token");
    let form = [("csrf", csrf.as_str()), ("type", "Soft")];
    assert_eq!(post_form(&app, "/owner/chargers/CP-OWN-1/commands/Reset", &session, &form).await, 404);
    assert_eq!(count(&app, "SELECT count(*) FROM ocpp_messages WHERE action = 'Reset'").await, 2);

    // A driver is refused the owner pages.
    switch_user(&browser, "asha").await;
    browser.goto("/owner").await;
    browser.wait_for_text("#message", "Only station owners and admins can do this.").await;
    let session = browser.cookie("kw_session").await.expect("session cookie");
    assert_eq!(status_of(&app, "/owner", &session).await, 403);
    assert_eq!(status_of(&app, "/owner/stations", &session).await, 403);
    assert_eq!(status_of(&app, "/owner/chargers/CP-OWN-1", &session).await, 403);
    browser.close().await;
}

#[actix_rt::test]
async fn the_dashboard_counts_todays_sessions_at_the_owners_stations_only() {
    let app = spawn_app().await;
    let ravi = app.owner("ravi").await;
    let priya = app.owner("priya").await;
    let driver = app.driver("asha").await;
    app.fund(&driver, 1000).await;
    for (owner, name, cp) in [(&ravi, "Hub", "CP-DAY-1"), (&priya, "Priya's", "CP-DAY-2")] {
        let body = json!({"name": name, "pricePerKwh": 20});
        let (status, station) = app.call("POST", "/api/owner/stations", Some(&owner.token), Some(&body)).await;
        assert_eq!(status, 201, "{station}");
        let path = format!("/api/owner/stations/{}/chargers", station["data"]["id"]);
        let (status, added) = app.call("POST", &path, Some(&owner.token), Some(&json!({"chargePointId": cp}))).await;
        assert_eq!(status, 201, "{added}");
    }
    let options = ConnectOptions { clock: app.clock.clone(), ..ConnectOptions::default() };
    let charger = ChargePoint::connect_with(&app.ocpp_url, "CP-DAY-1", options).await.expect("connects");
    assert_eq!(charger.boot().await.expect("boot")["status"], "Accepted");
    charger.status(1, "Available", "NoError").await.expect("status");

    // A driver charges at Ravi's charger: under way, it counts as active.
    let (tx, info) = charger.start_transaction(1, &driver.id_tag, 10_000, app.clock.now()).await.expect("start");
    assert_eq!(info["status"], "Accepted");
    charger.status(1, "Charging", "NoError").await.expect("status");
    let browser = Browser::start(&app.base_url).await;
    browser.sign_in("ravi", "1234").await;
    browser.goto("/owner").await;
    browser.wait_for_text("#active-sessions", "1").await;
    browser.wait_for_text("#today-revenue", "₹0.00").await;
    browser.wait_for_text("#chargers-online", "1").await;
    browser.wait_for_text("#chargers-total", "1").await;
    browser.wait_for_text("#status-CP-DAY-1-1", "Charging").await;
    let page = browser.text("main").await;
    assert!(!page.contains("CP-DAY-2") && !page.contains("Priya's"), "another owner's station shows: {page}");

    // Settled: 4 kWh at ₹20 is today's revenue and energy.
    charger.meter_values(1, Some(tx), 12_000, Some(7_000), None).await.expect("meter");
    charger.stop_transaction(tx, 14_000, app.clock.now(), "Local", None).await.expect("stop");
    browser.goto("/owner").await;
    browser.wait_for_text("#today-revenue", "₹80.00").await;
    browser.wait_for_text("#today-energy", "4.000").await;
    browser.wait_for_text("#active-sessions", "0").await;

    // The revenue report says the same for today, on Ravi's one station, and offers a CSV.
    browser.click("#link-reports").await;
    browser.wait_for_path("/owner/reports").await;
    browser.wait_for_text("#total-revenue", "₹80.00").await;
    browser.wait_for_text("#total-energy", "4.000 kWh").await;
    browser.wait_for_text("#total-sessions", "1").await;
    let days = rows(&browser, "table[id$='-days'] tbody tr").await;
    assert_eq!(days.len(), 1, "{days:?}");
    assert!(days[0].contains("4.000") && days[0].contains("80.00"), "{days:?}");
    let page = browser.text("main").await;
    assert!(!page.contains("Priya's"), "another owner's station shows: {page}");
    let href = browser.find("#download").await.attr("href").await.expect("href").unwrap_or_default();
    assert!(href.contains("/owner/reports.csv?from="), "{href}");
    let session = browser.cookie("kw_session").await.expect("session cookie");
    assert_eq!(status_of(&app, &href, &session).await, 200);
    // Days that end before they begin are refused next to the dates.
    browser.goto("/owner/reports?from=2026-11-22&to=2026-11-20").await;
    browser.wait_for_text("#to-error", "`from` (2026-11-22) is after `to` (2026-11-20).").await;

    // Priya's dashboard has nothing of it.
    browser.click("#logout").await;
    browser.wait_for_path("/login").await;
    browser.sign_in("priya", "1234").await;
    browser.goto("/owner").await;
    browser.wait_for_text("#today-revenue", "₹0.00").await;
    browser.wait_for_text("#chargers-online", "0").await;
    browser.wait_for_text("#online-CP-DAY-2", "Offline").await;
    browser.close().await;
}
