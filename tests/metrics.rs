//! `/metrics` scraped over real HTTP from a real server: a charging session over the real
//! protocol moves the session gauge (pending, then active, then out), the settlement counter,
//! the energy and money billed; a queue's entries are counted waiting and then held; the
//! single actors' mailboxes are probed; payments and bookings are counted; and every family an
//! operator needs is exposed.
//!
//! The metrics recorder is process-wide and the tests of this binary run in parallel, so each
//! test asserts changes from its own baseline, and only in figures no other test here moves.

mod common;

use std::time::Duration;

use chrono::{Duration as ChronoDuration, SecondsFormat, SubsecRound};
use common::{TestApp, User, eventually, spawn_app};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(10);

/// One scrape of `/metrics` in Prometheus text format.
struct Scrape(String);

impl Scrape {
    async fn take(app: &TestApp) -> Scrape {
        let (status, text) = app.get_text("/metrics").await;
        assert_eq!(status, 200, "{text}");
        Scrape(text)
    }

    /// Whether the family is exposed (has a `# TYPE` line).
    fn has(&self, family: &str) -> bool {
        self.0
            .lines()
            .any(|line| line.strip_prefix("# TYPE ").is_some_and(|rest| rest.starts_with(&format!("{family} "))))
    }

    /// The sum of every sample named `name` whose labels include all of `labels`; 0 when none.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.0
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| {
                let (series, value) = line.rsplit_once(' ')?;
                let (sample, label_text) = match series.split_once('{') {
                    Some((sample, rest)) => (sample, rest.strip_suffix('}')?),
                    None => (series, ""),
                };
                let matches = sample == name
                    && labels.iter().all(|(key, wanted)| {
                        let pair = format!("{key}=\"{wanted}\"");
                        label_text.starts_with(&pair) || label_text.contains(&format!(",{pair}"))
                    });
                matches.then(|| value.parse::<f64>().ok()).flatten()
            })
            .sum()
    }
}

/// Scrapes until `name{labels}` is `expected` (polling, for up to 5 s); answers the last value.
async fn reaches(app: &TestApp, name: &str, labels: &[(&str, &str)], expected: f64) -> f64 {
    let mut last = f64::NAN;
    eventually(async || {
        last = Scrape::take(app).await.value(name, labels);
        last == expected
    })
    .await;
    last
}

/// An owner with a station at 20 INR/kWh and a charger `cp` with `connectors` connectors,
/// created through the API.
async fn station_with_charger(app: &TestApp, owner: &User, cp: &str, connectors: i32) -> i64 {
    let body = json!({ "name": format!("Hub {cp}"), "pricePerKwh": 20, "bookingFee": 50 });
    let (status, station) = app.call("POST", "/api/owner/stations", Some(&owner.token), Some(&body)).await;
    assert_eq!(status, 201, "{station}");
    let station_id = station["data"]["id"].as_i64().expect("station id");
    let body = json!({ "chargePointId": cp, "connectors": connectors });
    let path = format!("/api/owner/stations/{station_id}/chargers");
    let (status, charger) = app.call("POST", &path, Some(&owner.token), Some(&body)).await;
    assert_eq!(status, 201, "{charger}");
    station_id
}

#[actix_rt::test]
async fn a_charging_session_moves_the_session_gauge_the_settlement_and_energy_counters_and_the_queue() {
    let app = spawn_app().await;
    let owner = app.owner("m-owner").await;
    station_with_charger(&app, &owner, "CP-METRICS", 1).await;
    let [asha, bala] = [app.driver("m-asha").await, app.driver("m-bala").await];
    for driver in [&asha, &bala] {
        app.fund(driver, 1000).await;
    }
    // A live page watching the charger: what is published to it is counted.
    let _watching = app.server.as_ref().expect("running").state.bus.subscribe("charger:CP-METRICS");

    let before = Scrape::take(&app).await;
    let gauge = |scrape: &Scrape, status| scrape.value("kilowatt_sessions", &[("status", status)]);
    let (pending, active) = (gauge(&before, "pending"), gauge(&before, "active"));
    let completed = before.value("kilowatt_sessions_settled_total", &[("status", "completed")]);
    let energy = before.value("kilowatt_energy_delivered_wh_total", &[]);
    let billed = before.value("kilowatt_billed_paise_total", &[]);
    let waiting = before.value("kilowatt_queue_entries", &[("status", "waiting")]);
    let held = before.value("kilowatt_queue_entries", &[("status", "held")]);
    let status_events = before.value("bus_messages_total", &[("kind", "connectorStatus")]);

    let charger = app.booted_charger("CP-METRICS", 1).await;
    let body = json!({ "chargerId": "CP-METRICS", "connectorId": 1 });
    let (status, answer) = app.call("POST", "/api/charging/start", Some(&asha.token), Some(&body)).await;
    assert_eq!(status, 201, "{answer}");
    let session_id = answer["data"]["sessionId"].as_i64().expect("session id");
    charger.expect_call("RemoteStartTransaction", WAIT).await.expect("RemoteStart sent");
    assert_eq!(reaches(&app, "kilowatt_sessions", &[("status", "pending")], pending + 1.0).await, pending + 1.0);

    let (tx, info) = charger.start_transaction(1, &asha.id_tag, 1_000, app.clock.now()).await.expect("start");
    assert_eq!(info["status"], "Accepted");
    charger.status(1, "Charging", "NoError").await.expect("status");
    assert_eq!(reaches(&app, "kilowatt_sessions", &[("status", "active")], active + 1.0).await, active + 1.0);
    assert_eq!(gauge(&Scrape::take(&app).await, "pending"), pending);

    // Bala waits for the busy charger.
    let (status, body) = app.call("POST", "/api/chargers/CP-METRICS/queue", Some(&bala.token), None).await;
    assert_eq!(status, 201, "{body}");
    let labels = [("status", "waiting")];
    assert_eq!(reaches(&app, "kilowatt_queue_entries", &labels, waiting + 1.0).await, waiting + 1.0);

    app.clock.advance(ChronoDuration::minutes(20));
    charger.meter_values(1, Some(tx), 4_000, Some(7_000), Some(40)).await.expect("meter values");
    let stop = json!({ "sessionId": session_id });
    let (status, answer) = app.call("POST", "/api/charging/stop", Some(&asha.token), Some(&stop)).await;
    assert_eq!(status, 200, "{answer}");
    charger.expect_call("RemoteStopTransaction", WAIT).await.expect("RemoteStop sent");
    charger.stop_transaction(tx, 7_234, app.clock.now(), "Remote", None).await.expect("stop");

    // One settlement, completed: 6,234 Wh billed at 20 INR/kWh = 124.68 INR.
    let labels = [("status", "completed")];
    assert_eq!(reaches(&app, "kilowatt_sessions_settled_total", &labels, completed + 1.0).await, completed + 1.0);
    let after = Scrape::take(&app).await;
    assert_eq!(after.value("kilowatt_energy_delivered_wh_total", &[]), energy + 6_234.0);
    assert_eq!(after.value("kilowatt_billed_paise_total", &[]), billed + 12_468.0);
    assert_eq!(reaches(&app, "kilowatt_sessions", &[("status", "active")], active).await, active);
    assert_eq!(gauge(&Scrape::take(&app).await, "pending"), pending);
    let debited: String =
        common::sql::scalar(&app, &format!("SELECT cost FROM charging_sessions WHERE id = {session_id}")).await;
    assert_eq!(debited, "124.68", "the metric counts what the wallet was debited");

    // The connector frees: Bala's turn, the connector held for Bala, who is told.
    charger.status(1, "Available", "NoError").await.expect("status");
    charger.expect_call("ReserveNow", WAIT).await.expect("ReserveNow for Bala");
    assert_eq!(reaches(&app, "kilowatt_queue_entries", &[("status", "held")], held + 1.0).await, held + 1.0);
    assert_eq!(Scrape::take(&app).await.value("kilowatt_queue_entries", &[("status", "waiting")]), waiting);
    let told = format!("SELECT count(*) FROM notifications WHERE kind = 'queue_turn' AND user_id = {}", bala.id);
    assert!(eventually(async || common::sql::count(&app, &told).await == 1).await, "Bala is told");
    let counted = async || Scrape::take(&app).await.value("kilowatt_notifications_total", &[]) >= 1.0;
    assert!(eventually(counted).await, "deliveries are counted by channel and outcome");

    // A CALL the central system does not know is refused and counted by code.
    let refused = charger.call("MakeCoffee", json!({})).await.expect_err("refused");
    assert_eq!(refused.code, "NotImplemented");

    let scrape = Scrape::take(&app).await;
    assert!(scrape.value("bus_messages_total", &[("kind", "connectorStatus")]) >= status_events + 3.0);
    assert!(scrape.value("ocpp_call_errors_total", &[("code", "NotImplemented"), ("direction", "out")]) >= 1.0);
    assert!(scrape.value("ocpp_messages_total", &[("action", "StopTransaction"), ("outcome", "ok")]) >= 1.0);
    assert!(scrape.value("ocpp_commands_total", &[("action", "RemoteStopTransaction"), ("result", "answered")]) >= 1.0);
    // ...and how long the charger took to answer it.
    assert!(scrape.value("ocpp_command_duration_seconds_count", &[("action", "RemoteStopTransaction")]) >= 1.0);
    assert!(scrape.value("ocpp_message_duration_seconds_count", &[("action", "MeterValues")]) >= 1.0);
    // The meter values went through their group-committing writer, which tells how long they waited.
    assert!(scrape.value("db_batch_wait_seconds_count", &[("writer", "meter_values")]) >= 1.0);
    // ...and how long each charger's task took to resume once its write was answered.
    assert!(scrape.value("db_write_resume_seconds_count", &[("writer", "meter_values")]) >= 1.0);
    assert!(scrape.value("ocpp_connected_chargers", &[]) >= 1.0);
    for family in [
        "ocpp_connected_chargers",
        "ocpp_messages_total",
        "ocpp_message_duration_seconds",
        "ocpp_commands_total",
        "ocpp_call_errors_total",
        "kilowatt_sessions",
        "kilowatt_sessions_settled_total",
        "kilowatt_energy_delivered_wh_total",
        "kilowatt_billed_paise_total",
        "kilowatt_queue_entries",
        "kilowatt_notifications_total",
        "kilowatt_notifications_in_flight",
        "bus_messages_total",
        "http_requests_total",
        "http_request_duration_seconds",
        "db_pool_connections",
        "db_pool_connections_idle",
        "db_pool_connections_max",
        "db_pool_waiting",
        "process_resident_memory_bytes",
        "process_start_time_seconds",
        "kilowatt_build_info",
    ] {
        assert!(scrape.has(family), "{family} is not exposed:\n{}", scrape.0);
    }
}

#[actix_rt::test]
async fn every_thread_s_queue_of_ready_tasks_is_probed() {
    let app = spawn_app().await;
    // Each probe runs four times a second on its thread from start-up.
    for thread in ["main", "writers", "meter_writer", "http", "ocpp"] {
        let probed =
            async || Scrape::take(&app).await.value("runtime_queue_delay_seconds_count", &[("thread", thread)]) >= 2.0;
        assert!(eventually(probed).await, "the {thread} thread's queue is probed");
    }
}

#[actix_rt::test]
async fn single_actors_are_probed_and_payments_and_bookings_are_counted() {
    let app = spawn_app().await;
    // The probe runs at start-up and then every few seconds.
    for actor in ["registry", "booking_timers", "notifier"] {
        let probed =
            async || Scrape::take(&app).await.value("actor_mailbox_delay_seconds_count", &[("actor", actor)]) >= 1.0;
        assert!(eventually(probed).await, "the {actor} mailbox is probed");
    }
    // Then it refreshes the gauges read from the database.
    for family in ["actor_mailbox_delay_seconds", "kilowatt_payments_pending", "kilowatt_notifications_pending"] {
        assert!(eventually(async || Scrape::take(&app).await.has(family)).await, "{family} is not exposed");
    }
    let scrape = Scrape::take(&app).await;

    // A recharge through the sandbox: begun, then succeeded.
    let payments = |scrape: &Scrape, outcome| {
        scrape.value("kilowatt_payments_total", &[("provider", "sandbox"), ("outcome", outcome)])
    };
    let (initiated, succeeded) = (payments(&scrape, "initiated"), payments(&scrape, "succeeded"));
    let driver = app.driver("m-chitra").await;
    let (status, payment) =
        app.call("POST", "/api/wallet/recharge", Some(&driver.token), Some(&json!({ "amount": 500 }))).await;
    assert_eq!(status, 201, "{payment}");
    assert_eq!(payments(&Scrape::take(&app).await, "initiated"), initiated + 1.0);
    let mtid = payment["data"]["merchantTransactionId"].as_str().expect("merchantTransactionId");
    let form = app
        .client
        .post(app.url(&format!("/payments/sandbox/{mtid}/complete")))
        .send_form(&[("outcome", "success")])
        .await
        .expect("form sent");
    assert!(form.status().is_redirection() || form.status().is_success(), "{}", form.status());
    assert_eq!(payments(&Scrape::take(&app).await, "succeeded"), succeeded + 1.0);

    // A booked slot is watched by its timer until it is cancelled.
    let owner = app.owner("m-owner2").await;
    station_with_charger(&app, &owner, "CP-SLOTS", 2).await;
    let live = Scrape::take(&app).await.value("kilowatt_bookings_live", &[]);
    let start = (app.clock.now() + ChronoDuration::hours(2)).trunc_subsecs(0);
    let body = json!({
        "chargerId": "CP-SLOTS",
        "connectorId": 1,
        "startAt": start.to_rfc3339_opts(SecondsFormat::Secs, true),
        "durationMinutes": 60,
    });
    let (status, booking): (u16, Value) =
        app.call("POST", "/api/users/bookings", Some(&driver.token), Some(&body)).await;
    assert_eq!(status, 201, "{booking}");
    assert_eq!(reaches(&app, "kilowatt_bookings_live", &[], live + 1.0).await, live + 1.0);
    let path = format!("/api/users/bookings/{}", booking["data"]["id"]);
    let (status, answer) = app.call("DELETE", &path, Some(&driver.token), None).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(reaches(&app, "kilowatt_bookings_live", &[], live).await, live);
}
