//! The queue and bookings pages in a real headless Chromium against a real server and a real
//! OCPP test charger: a driver finds a connector busy, joins its queue from the charger page and
//! is taken back to the charger by the queue page itself when the connector frees up; a driver
//! books a slot from the form (errors next to their fields first), watches its countdown,
//! cancels it with the refund the cutoff rule gives, and checks in once the slot has started.

mod common;

use std::time::Duration;

use chrono::{DateTime, Duration as ChronoDuration, DurationRound, Utc};
use common::browser::Browser;
use common::charge_point::{ChargePoint, ConnectOptions};
use common::sql::{count, money, scalar};
use common::{TestApp, User, spawn_app_with};
use rust_decimal::Decimal;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(10);

/// Grace 30 min, fee 50, full refund until 60 min before the slot, queue holds of 5 min.
const SETTINGS: &[(&str, &str)] = &[
    ("KILOWATT_GRACE_PERIOD_MINUTES", "30"),
    ("KILOWATT_BOOKING_FEE", "50"),
    ("KILOWATT_BOOKING_REFUND_CUTOFF_MINUTES", "60"),
    ("KILOWATT_QUEUE_HOLD_MINUTES", "5"),
];

/// A station of `owner` with the charger `cp`.
async fn station(app: &TestApp, owner: &User, cp: &str) {
    app.station_with_charger(owner, &format!("Hub {cp}"), cp).await;
}

/// Connects and boots the test charger, with `connectors` reported Available.
async fn connect(app: &TestApp, cp: &str, connectors: u32) -> ChargePoint {
    let options = ConnectOptions { clock: app.clock.clone(), ..ConnectOptions::default() };
    let charger = ChargePoint::connect_with(&app.ocpp_url, cp, options).await.expect("connects");
    assert_eq!(charger.boot().await.expect("boot")["status"], "Accepted");
    for connector in 1..=connectors {
        charger.status(connector, "Available", "NoError").await.expect("status");
    }
    charger
}

async fn funded(app: &TestApp, name: &str, balance: i64) -> User {
    let driver = app.driver(name).await;
    app.fund(&driver, balance).await;
    driver
}

async fn balance(app: &TestApp, user: &User) -> Decimal {
    money(app, &format!("SELECT balance FROM wallets WHERE user_id = {}", user.id)).await
}

/// Waits (up to 10 s) until the element `css` shows text containing `needle`; answers the text.
async fn wait_for_contains(browser: &Browser, css: &str, needle: &str) -> String {
    let mut last = String::new();
    for _ in 0..400 {
        if let Ok(element) = browser.client.find(fantoccini::Locator::Css(css)).await {
            last = element.text().await.unwrap_or_default();
            if last.contains(needle) {
                return last;
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{css} shows {last:?}, expected it to contain {needle:?}");
}

/// A page as the signed-in browser gets it (fetched with its session cookie).
async fn page_html(app: &TestApp, browser: &Browser, path: &str) -> String {
    let session = browser.cookie("kw_session").await.expect("session cookie");
    let mut response = app
        .client
        .get(app.url(path))
        .insert_header(("cookie", format!("kw_session={session}")))
        .send()
        .await
        .expect("request sent");
    assert_eq!(response.status().as_u16(), 200, "GET {path}");
    String::from_utf8_lossy(&response.body().await.expect("body")).into_owned()
}

/// Picks the slot's day and start time in the form as the driver would, in the browser's own
/// time zone (WebDriver cannot type into date and time pickers portably, so the fields are set
/// through the DOM, with the change events a picker fires).
async fn pick_slot(browser: &Browser, at: DateTime<Utc>) {
    let script = "const d = new Date(arguments[0]); const p = (n) => String(n).padStart(2, '0');
        const set = (id, v) => { const el = document.getElementById(id); el.value = v;
          el.dispatchEvent(new Event('change', { bubbles: true })); };
        set('date', d.getFullYear() + '-' + p(d.getMonth() + 1) + '-' + p(d.getDate()));
        set('time', p(d.getHours()) + ':' + p(d.getMinutes()));";
    browser.client.execute(script, vec![json!(at.timestamp_millis())]).await.expect("slot picked");
}

/// A whole minute, as the form's time field holds it.
fn minute(at: DateTime<Utc>) -> DateTime<Utc> {
    at.duration_trunc(ChronoDuration::minutes(1)).expect("truncated")
}

#[actix_rt::test]
async fn a_busy_connector_offers_the_queue_and_the_queue_page_takes_the_driver_to_it_when_it_frees() {
    let app = spawn_app_with(SETTINGS).await;
    let owner = app.owner("q-owner").await;
    station(&app, &owner, "CP-WQ").await;
    let charger = connect(&app, "CP-WQ", 1).await;
    let asha = funded(&app, "asha", 1000).await;
    let ravi = funded(&app, "ravi", 1000).await;

    // Asha is charging on the only connector.
    let start = json!({ "chargerId": "CP-WQ", "connectorId": 1 });
    let (status, body) = app.call("POST", "/api/charging/start", Some(&asha.token), Some(&start)).await;
    assert_eq!(status, 201, "{body}");
    charger.expect_call("RemoteStartTransaction", WAIT).await.expect("RemoteStartTransaction");
    let (tx, _) = charger.start_transaction(1, &asha.id_tag, 0, app.clock.now()).await.expect("started");
    charger.status(1, "Charging", "NoError").await.expect("status");

    // Ravi opens the charger: it says the connector is busy and why, with no Start, and offers
    // the queue and a booking prefilled for this connector.
    let browser = Browser::start(&app.base_url).await;
    browser.sign_in("ravi", "1234").await;
    browser.goto("/chargers/CP-WQ").await;
    browser.wait_for_text("#connector-1-status", "Charging").await;
    wait_for_contains(&browser, "#busy-1", "another driver is charging").await;
    assert!(browser.client.find(fantoccini::Locator::Css("#start-1")).await.is_err(), "Start on a busy connector");
    let book = browser.find("#book-1").await.attr("href").await.expect("href");
    assert_eq!(book.as_deref(), Some("/bookings/new?charger=CP-WQ&connector=1"));
    browser.screenshot("charger-busy").await;

    // Join queue: the queue page shows first place, nobody ahead.
    browser.click("#join-queue-1").await;
    browser.wait_for_path("/queue").await;
    browser.wait_for_text("#queue-position", "1").await;
    browser.wait_for_text("#queue-ahead", "0").await;
    browser.wait_for_text("#queue-state", "Waiting").await;
    assert_eq!(browser.text("#queue-charger").await, "CP-WQ");
    let queued = format!("SELECT count(*) FROM queue_entries WHERE user_id = {} AND status = 'waiting'", ravi.id);
    assert_eq!(count(&app, &queued).await, 1);
    // The charger page now shows the driver's place instead of Join queue.
    let charger_page = page_html(&app, &browser, "/chargers/CP-WQ").await;
    assert!(charger_page.contains("You are number <strong>1</strong>"), "no queue position on the charger page");
    assert!(!charger_page.contains("id=\"join-queue-1\""), "Join queue offered to a driver already queued");
    browser.wait_for_text("#live-state", "Live").await;
    browser.screenshot("queue").await;

    // Asha finishes and unplugs: the connector is held for Ravi, and the queue page takes him
    // to the charger by itself (the test does not navigate).
    charger.stop_transaction(tx, 4_000, app.clock.now(), "Local", None).await.expect("stopped");
    charger.status(1, "Available", "NoError").await.expect("status");
    let reserve = charger.expect_call("ReserveNow", WAIT).await.expect("ReserveNow for the first in line");
    assert_eq!(reserve["idTag"], ravi.id_tag.as_str());
    browser.wait_for_path("/chargers/CP-WQ").await;
    wait_for_contains(&browser, "#held-1", "Held for you until").await;
    browser.find("#start-1").await;
    browser.screenshot("charger-held").await;

    // Back on the queue page the turn is shown (no jump away from it); leaving asks first.
    browser.goto("/queue").await;
    browser.wait_for_text("#queue-state", "Your turn").await;
    wait_for_contains(&browser, "#queue-turn", "connector 1 is held for you until").await;
    browser.click("#leave-queue").await;
    let question = browser.client.get_alert_text().await.expect("a confirmation");
    assert!(question.contains("Leave the queue for CP-WQ?"), "{question}");
    browser.client.accept_alert().await.expect("confirmed");
    browser.find("#queue-empty").await;
    let left = format!("SELECT status FROM queue_entries WHERE user_id = {}", ravi.id);
    assert_eq!(scalar::<String>(&app, &left).await, "left");
    browser.close().await;
}

#[actix_rt::test]
async fn a_driver_books_from_the_form_cancels_with_the_refund_and_checks_in_when_the_slot_opens() {
    let app = spawn_app_with(SETTINGS).await;
    let owner = app.owner("b-owner").await;
    station(&app, &owner, "CP-WB").await;
    let _charger = connect(&app, "CP-WB", 2).await;
    let meera = app.driver("meera").await;
    let t0 = app.clock.now();

    let browser = Browser::start(&app.base_url).await;
    browser.sign_in("meera", "1234").await;

    // The charger page's "Book a slot" link arrives prefilled.
    browser.goto("/bookings/new?charger=CP-WB&connector=2").await;
    assert_eq!(browser.find("#charger").await.prop("value").await.expect("value").as_deref(), Some("CP-WB"));
    assert_eq!(browser.find("#connector").await.prop("value").await.expect("value").as_deref(), Some("2"));
    browser.screenshot("booking-form").await;

    // A slot in the past is refused next to the start time, with 422, and nothing is booked.
    pick_slot(&browser, minute(t0 - ChronoDuration::hours(1))).await;
    browser.click("#book").await;
    browser.wait_for_text("#time-error", "This time is in the past: book a slot that starts later.").await;
    let csrf = browser.find("input[name=csrf]").await.prop("value").await.expect("csrf").expect("csrf");
    let session = browser.cookie("kw_session").await.expect("session cookie");
    let past = app
        .client
        .post(app.url("/bookings"))
        .insert_header(("cookie", format!("kw_session={session}")))
        .send_form(&[
            ("csrf", csrf.as_str()),
            ("charger", "CP-WB"),
            ("connector", "2"),
            ("date", "2020-01-01"),
            ("time", "10:00"),
            ("duration", "60"),
            ("tz", "0"),
        ])
        .await
        .expect("request sent");
    assert_eq!(past.status().as_u16(), 422);

    // An empty wallet cannot pay the fee: a clear error with the way out.
    let early = minute(t0 + ChronoDuration::hours(3));
    pick_slot(&browser, early).await;
    browser.click("#book").await;
    wait_for_contains(&browser, "#form-error", "Recharge and try again").await;
    browser.find("#recharge-link").await;
    assert_eq!(count(&app, "SELECT count(*) FROM bookings").await, 0);

    // With money in the wallet, the slot is booked: listed with a ticking countdown to its start.
    app.fund(&meera, 500).await;
    pick_slot(&browser, early).await;
    browser.click("#book").await;
    // The refused form was at /bookings too: wait for the list itself.
    browser.find("#bookings-list").await;
    browser.wait_for_path("/bookings").await;
    let first: i64 = scalar(&app, "SELECT max(id) FROM bookings").await;
    browser.wait_for_text(&format!("#booking-{first}-status"), "Booked").await;
    browser.wait_for_text("#balance", "₹450.00").await;
    let countdown = format!("#booking-{first}-countdown");
    let shown = browser.text(&countdown).await;
    assert!(shown.starts_with("2:5") || shown == "3:00:00", "countdown to the start shows {shown:?}");
    let mut ticked = false;
    for _ in 0..120 {
        if browser.text(&countdown).await != shown {
            ticked = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(ticked, "the countdown does not tick");
    wait_for_contains(&browser, &format!("#booking-{first}-refund"), "for a full refund of ₹50.00").await;
    browser.screenshot("bookings").await;

    // Cancel, three hours ahead: the confirmation says the fee comes back, and it does.
    browser.click(&format!("#cancel-{first}")).await;
    let question = browser.client.get_alert_text().await.expect("a confirmation");
    assert!(question.contains("refunded to your wallet in full"), "{question}");
    browser.client.accept_alert().await.expect("confirmed");
    browser.wait_for_text(&format!("#booking-{first}-status"), "Cancelled").await;
    browser.wait_for_text(&format!("#booking-{first}-outcome"), "Cancelled: ₹50.00 refunded to your wallet.").await;
    browser.wait_for_text("#balance", "₹500.00").await;
    assert_eq!(balance(&app, &meera).await, Decimal::from(500));

    // A slot starting in ten minutes is inside the refund cutoff: cancelling would refund nothing.
    browser.goto("/bookings/new?charger=CP-WB&connector=1").await;
    let soon = minute(t0 + ChronoDuration::minutes(10));
    pick_slot(&browser, soon).await;
    browser.click("#book").await;
    // The refused form was at /bookings too: wait for the list itself.
    browser.find("#bookings-list").await;
    browser.wait_for_path("/bookings").await;
    let second: i64 = scalar(&app, "SELECT max(id) FROM bookings").await;
    browser.wait_for_text(&format!("#booking-{second}-status"), "Booked").await;
    wait_for_contains(&browser, &format!("#booking-{second}-refund"), "does not refund the ₹50.00 fee").await;
    let confirm = browser.find(&format!("#booking-{second} form.cancel-booking")).await;
    let confirm = confirm.attr("data-confirm").await.expect("attribute").unwrap_or_default();
    assert!(confirm.contains("is not refunded"), "{confirm}");
    assert!(browser.client.find(fantoccini::Locator::Css(&format!("#checkin-{second}"))).await.is_err());

    // The slot starts: the page shows check-in open by itself, with the grace countdown.
    browser.wait_for_text("#live-state", "Live").await;
    app.clock.set(soon);
    browser.wait_for_text(&format!("#booking-{second}-status"), "Check-in open").await;
    let grace = browser.text(&format!("#booking-{second}-countdown")).await;
    assert!(grace == "30:00" || grace.starts_with("29:"), "grace countdown shows {grace:?}");
    browser.click(&format!("#checkin-{second}")).await;
    browser.wait_for_text(&format!("#booking-{second}-status"), "Checked in").await;
    assert_eq!(scalar::<String>(&app, &format!("SELECT status FROM bookings WHERE id = {second}")).await, "checked_in");
    assert_eq!(balance(&app, &meera).await, Decimal::from(450));

    // The charger page tells the checked-in driver the connector is held for them.
    browser.click(&format!("#charge-{second}")).await;
    browser.wait_for_path("/chargers/CP-WB").await;
    wait_for_contains(&browser, "#held-1", "Held for you until").await;
    browser.close().await;
}
