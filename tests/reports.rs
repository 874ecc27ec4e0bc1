//! Revenue and usage reports per station, end to end: sessions charged over OCPP and bookings
//! paid and refunded through the API land on the right station and India's calendar day, the
//! report adds up to exactly what drivers paid, owners see only their own stations, the CSV
//! matches the JSON, and a bad query changes nothing and says why.

mod common;

use chrono::{DateTime, Duration as ChronoDuration, FixedOffset, NaiveDate, SecondsFormat, Utc};
use common::charge_point::ChargePoint;
use common::sql::money;
use common::{TestApp, User, error_code, spawn_app_with};
use rust_decimal::Decimal;
use serde_json::{Value, json};

/// Booking fee 50, full refund until 60 minutes before the slot.
const SETTINGS: &[(&str, &str)] = &[
    ("KILOWATT_BOOKING_FEE", "50"),
    ("KILOWATT_BOOKING_REFUND_CUTOFF_MINUTES", "60"),
    ("KILOWATT_GRACE_PERIOD_MINUTES", "30"),
];

/// `hh:mm` UTC on `day`.
fn at(day: NaiveDate, hour: u32, minute: u32) -> DateTime<Utc> {
    day.and_hms_opt(hour, minute, 0).expect("a time").and_utc()
}

/// A day of India's calendar a few days ahead of the test clock (which only moves forward).
fn day_ahead(app: &TestApp, days: i64) -> NaiveDate {
    let india = FixedOffset::east_opt(19_800).expect("IST");
    (app.clock.now() + ChronoDuration::days(days)).with_timezone(&india).date_naive()
}

/// A session the driver starts with their card: `wh` delivered over `minutes`, settled at the
/// StopTransaction (sent at the clock's time then).
async fn charge(app: &TestApp, charger: &ChargePoint, driver: &User, wh: i64, minutes: i64) {
    let started = app.clock.now();
    let (transaction_id, info) = charger.start_transaction(1, &driver.id_tag, 10_000, started).await.expect("start");
    assert_eq!(info["status"], "Accepted", "{info}");
    app.clock.advance(ChronoDuration::minutes(minutes));
    charger.stop_transaction(transaction_id, 10_000 + wh, app.clock.now(), "Local", None).await.expect("stop");
}

/// Books a one-hour slot on connector 2 of `cp`; answers the booking ID.
async fn book(app: &TestApp, driver: &User, cp: &str, start: DateTime<Utc>) -> i64 {
    let body = json!({
        "chargerId": cp,
        "connectorId": 2,
        "startAt": start.to_rfc3339_opts(SecondsFormat::Secs, true),
        "durationMinutes": 60,
    });
    let (status, answer) = app.call("POST", "/api/users/bookings", Some(&driver.token), Some(&body)).await;
    assert_eq!(status, 201, "{answer}");
    answer["data"]["id"].as_i64().expect("booking id")
}

async fn report(app: &TestApp, user: &User, query: &str) -> (u16, Value) {
    app.call("GET", &format!("/api/owner/reports/stations?{query}"), Some(&user.token), None).await
}

fn dec(value: &Value) -> Decimal {
    value.as_str().and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("a decimal string: {value}"))
}

#[actix_rt::test]
async fn a_report_puts_every_rupee_on_its_station_and_indian_day_and_adds_up_to_what_drivers_paid() {
    let app = spawn_app_with(SETTINGS).await;
    let owner = app.owner("report-owner").await;
    let north = app.station_with_charger(&owner, "Hub North", "CP-RN").await;
    let south = app.station_with_charger(&owner, "Hub South", "CP-RS").await;
    let rival = app.owner("rival-owner").await;
    let elsewhere = app.station_with_charger(&rival, "Rival Hub", "CP-RX").await;
    let driver = app.driver("report-driver").await;
    app.fund(&driver, 2000).await;
    let (north_cp, _south_cp, rival_cp) = (
        app.booted_charger("CP-RN", 2).await,
        app.booted_charger("CP-RS", 2).await,
        app.booted_charger("CP-RX", 2).await,
    );

    // Day one, 09:30 in India: a 2 kWh session at Hub North (37.00) and two slots booked at Hub
    // South (50.00 each).
    let (one, two) = (day_ahead(&app, 2), day_ahead(&app, 3));
    app.clock.set(at(one, 4, 0));
    charge(&app, &north_cp, &driver, 2_000, 30).await;
    book(&app, &driver, "CP-RS", at(one, 6, 0) + ChronoDuration::days(2)).await;
    let refunded = book(&app, &driver, "CP-RS", at(one, 6, 0) + ChronoDuration::days(3)).await;
    // 00:30 on day two in India, though still day one in UTC: a 1 kWh session (18.50).
    app.clock.set(at(one, 18, 40));
    charge(&app, &north_cp, &driver, 1_000, 20).await;
    // Later on day two: one booking is cancelled early enough for a full refund.
    app.clock.set(at(two, 6, 0));
    let (status, body) =
        app.call("DELETE", &format!("/api/users/bookings/{refunded}"), Some(&driver.token), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["refundAmount"], "50.00");
    // Another owner's station earns too, and must not show.
    charge(&app, &rival_cp, &driver, 4_000, 40).await;

    let (status, body) = report(&app, &owner, &format!("from={one}&to={two}")).await;
    assert_eq!(status, 200, "{body}");
    let data = &body["data"];
    assert_eq!(
        (data["from"].as_str(), data["to"].as_str()),
        (Some(one.to_string().as_str()), Some(two.to_string().as_str()))
    );
    assert_eq!(data["timeZone"], "Asia/Kolkata");
    let stations = data["stations"].as_array().expect("stations");
    let ids: Vec<i64> = stations.iter().map(|s| s["stationId"].as_i64().unwrap()).collect();
    assert_eq!(ids, vec![north, south], "exactly my stations: {body}");

    let north_days: Vec<(String, i64, i64, Decimal, Decimal)> = stations[0]["days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["date"].as_str().unwrap().to_owned(),
                d["sessions"].as_i64().unwrap(),
                d["energyWh"].as_i64().unwrap(),
                dec(&d["chargingRevenue"]),
                dec(&d["bookingRevenue"]),
            )
        })
        .collect();
    assert_eq!(
        north_days,
        vec![
            (one.to_string(), 1, 2_000, Decimal::new(3700, 2), Decimal::ZERO),
            (two.to_string(), 1, 1_000, Decimal::new(1850, 2), Decimal::ZERO),
        ]
    );
    assert_eq!(stations[0]["totals"]["energyKwh"], "3.000");
    assert_eq!(stations[0]["totals"]["chargingHours"], "0.83");
    assert_eq!(stations[0]["totals"]["revenue"], "55.50");

    let south_days: Vec<(String, i64, Decimal)> = stations[1]["days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["date"].as_str().unwrap().to_owned(), d["sessions"].as_i64().unwrap(), dec(&d["bookingRevenue"])))
        .collect();
    assert_eq!(
        south_days,
        vec![(one.to_string(), 0, Decimal::new(10000, 2)), (two.to_string(), 0, Decimal::new(-5000, 2))]
    );
    assert_eq!(stations[1]["totals"]["revenue"], "50.00");
    assert_eq!(data["totals"]["revenue"], "105.50");
    assert_eq!(data["totals"]["sessions"], 2);

    // Every rupee the driver paid is someone's revenue, and nothing else is.
    let paid = -money(
        &app,
        &format!("SELECT sum(amount) FROM wallet_entries WHERE user_id = {} AND kind <> 'recharge'", driver.id),
    )
    .await;
    let (_, rival_report) = report(&app, &rival, &format!("from={one}&to={two}")).await;
    assert_eq!(rival_report["data"]["stations"][0]["stationId"], elsewhere);
    assert_eq!(rival_report["data"]["totals"]["revenue"], "74.00");
    assert_eq!(dec(&data["totals"]["revenue"]) + dec(&rival_report["data"]["totals"]["revenue"]), paid);

    // One station, and days outside the activity: the station is listed with nothing.
    let (status, body) =
        report(&app, &owner, &format!("from={day}&to={day}&stationId={north}", day = two + ChronoDuration::days(1)))
            .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["stations"].as_array().unwrap().len(), 1);
    assert_eq!(body["data"]["stations"][0]["days"], json!([]));
    assert_eq!(body["data"]["totals"]["revenue"], "0.00");

    // The CSV has the same rows.
    let response = app
        .client
        .get(app.url(&format!("/api/owner/reports/stations?from={one}&to={two}&format=csv")))
        .bearer_auth(&owner.token)
        .send()
        .await;
    let mut response = response.expect("csv");
    assert_eq!(response.status(), 200);
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert!(content_type.starts_with("text/csv"), "{content_type}");
    let csv = String::from_utf8(response.body().await.expect("body").to_vec()).expect("UTF-8");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 5, "{csv}");
    assert!(lines[0].starts_with("date,station_id,station,sessions,energy_kwh"), "{csv}");
    assert_eq!(lines[2], format!("{two},{north},Hub North,1,1.000,0.33,18.50,0.00,18.50"));
    assert_eq!(lines[4], format!("{two},{south},Hub South,0,0.000,0.00,0.00,-50.00,-50.00"));
}

#[actix_rt::test]
async fn a_bad_report_query_is_refused_with_a_reason_and_only_owners_get_reports() {
    let app = spawn_app_with(SETTINGS).await;
    let owner = app.owner("careful-owner").await;
    let rival = app.owner("other-owner").await;
    let theirs = app.station_with_charger(&rival, "Their Hub", "CP-RT").await;
    let driver = app.driver("curious-driver").await;

    let (status, body) = report(&app, &owner, "from=2026-11-21&to=2026-11-20").await;
    assert_eq!((status, error_code(&body)), (400, "invalid_range"), "{body}");
    let (status, body) = report(&app, &owner, "from=2025-01-01&to=2026-01-02").await;
    assert_eq!((status, error_code(&body)), (400, "invalid_range"), "{body}");
    // The last day chrono knows: refused, not a panic.
    let (status, body) = report(&app, &owner, "to=%2B262142-12-31").await;
    assert_eq!((status, error_code(&body)), (400, "invalid_range"), "{body}");
    for malformed in ["from=21-11-2026", "format=pdf", "stationId=north", "colour=red"] {
        let (status, body) = report(&app, &owner, malformed).await;
        assert_eq!((status, error_code(&body)), (422, "validation_failed"), "{malformed}: {body}");
    }
    let (status, body) = report(&app, &owner, &format!("stationId={theirs}")).await;
    assert_eq!(status, 404, "another owner's station is not mine: {body}");
    let (status, _) = report(&app, &driver, "").await;
    assert_eq!(status, 403);
    let (status, _) = app.call("GET", "/api/owner/reports/stations", None, None).await;
    assert_eq!(status, 401);

    // With no dates, the last 30 days of India's calendar, today included: at 20:00 UTC,
    // India is already on the next day.
    let day = day_ahead(&app, 2);
    app.clock.set(at(day, 20, 0));
    let (status, body) = report(&app, &owner, "").await;
    assert_eq!(status, 200, "{body}");
    let (from, to) = (day - ChronoDuration::days(28), day + ChronoDuration::days(1));
    assert_eq!(
        (body["data"]["from"].as_str(), body["data"]["to"].as_str()),
        (Some(from.to_string().as_str()), Some(to.to_string().as_str()))
    );
}
