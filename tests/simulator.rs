//! The charger simulator against a real Kilowatt: twenty simulated chargers connect over real
//! sockets, boot, charge with RFID cards along the curve, and obey a remote start sent through
//! the API — with no CALLERROR and no error of any kind.

mod common;

use std::time::Duration;

use common::sql::{count, exec, scalar};
use common::{eventually, spawn_app};
use kilowatt::simulator::{self, Scenario};
use serde_json::json;

const CHARGERS: usize = 20;

#[actix_rt::test]
async fn twenty_simulated_chargers_boot_charge_and_start_a_remote_session() {
    let app = spawn_app().await;
    let owner = app.owner("sim-owner").await;
    exec(
        &app,
        &format!(
            "INSERT INTO stations (owner_id, name, address, price_per_kwh) VALUES ({}, 'Sim Hub', 'MG Road', 18.50)",
            owner.id
        ),
    )
    .await;
    exec(
        &app,
        &format!(
            "INSERT INTO chargers (charge_point_id, station_id) \
             SELECT 'TSIM-' || lpad(n::text, 3, '0'), (SELECT max(id) FROM stations) FROM generate_series(1, {CHARGERS}) n"
        ),
    )
    .await;
    // A driver (idTag) per charger: a car charging at one charger cannot start at another.
    let mut tags = Vec::new();
    for n in 1..=CHARGERS {
        let driver = app.driver(&format!("sim-fleet-{n}")).await;
        app.fund(&driver, 1000).await;
        tags.push(driver.id_tag);
    }
    let remote = app.driver("sim-remote").await;
    app.fund(&remote, 1000).await;

    let mut config = simulator::Config::new(app.ocpp_url.clone(), CHARGERS);
    config.id_prefix = "TSIM-".to_owned();
    config.scenario = Scenario::Charging;
    config.id_tags = tags;
    config.meter_interval = Duration::from_millis(300);
    config.session_gap = Duration::from_millis(500);
    config.duration = Some(Duration::from_secs(5));
    config.ramp = 0.0;
    assert_eq!(config.charge_point_id(0), "TSIM-001");
    let run = actix_rt::spawn(simulator::run(config));

    // Connector 2 of the first charger is free (cars take the first free connector, and this
    // charger's car is on connector 1 at most): a driver starts there through the API.
    let connector_ready = "SELECT count(*) FROM connectors k JOIN chargers c ON c.id = k.charger_id \
                           WHERE c.charge_point_id = 'TSIM-001' AND k.connector_number = 2 AND k.status = 'Available'";
    assert!(eventually(async || count(&app, connector_ready).await == 1).await, "TSIM-001 never reported in");
    let body = json!({ "chargerId": "TSIM-001", "connectorId": 2 });
    let (status, answer) = app.call("POST", "/api/charging/start", Some(&remote.token), Some(&body)).await;
    assert_eq!(status, 201, "{answer}");
    let session_id = answer["data"]["sessionId"].as_i64().expect("session id");
    let started = format!(
        "SELECT count(*) FROM charging_sessions WHERE id = {session_id} AND status = 'active' AND transaction_id IS NOT NULL"
    );
    assert!(eventually(async || count(&app, &started).await == 1).await, "the remote start never became a transaction");
    let metered = format!(
        "SELECT count(*) FROM meter_values m JOIN charging_sessions s ON s.id = m.session_id WHERE s.id = {session_id}"
    );
    assert!(eventually(async || count(&app, &metered).await > 0).await, "no MeterValues for the remote session");

    let summary = run.await.expect("simulator task").expect("simulator ran");
    eprintln!("{summary}");
    assert_eq!(summary.accepted, CHARGERS as u64, "{summary}");
    assert_eq!(summary.connected, CHARGERS as u64, "{summary}");
    assert_eq!(summary.call_errors, 0, "{summary}");
    assert_eq!(summary.errors, 0, "{summary}");
    assert!(summary.sessions_started > CHARGERS as u64, "{summary}");
    // Switched off at the end, each charger stopped its transactions.
    assert_eq!(summary.sessions_stopped, summary.sessions_started, "{summary}");
    assert!(summary.latency_p50.is_some() && summary.round_trips >= summary.calls - CHARGERS as u64, "{summary}");

    let rfid_sessions: i64 =
        count(&app, "SELECT count(*) FROM charging_sessions WHERE source = 'charger' AND transaction_id IS NOT NULL")
            .await;
    assert_eq!(rfid_sessions, CHARGERS as i64, "RFID sessions stored");
    let metered_sessions: i64 = count(&app, "SELECT count(DISTINCT session_id) FROM meter_values").await;
    assert_eq!(metered_sessions, CHARGERS as i64 + 1, "sessions metered");
    // Energy and power follow the curve: a 22 kW charger's car drew power and energy grew.
    let energy: i64 = scalar(&app, &format!("SELECT energy_wh FROM charging_sessions WHERE id = {session_id}")).await;
    assert!(energy > 0, "the remote session delivered no energy");
    let open = count(&app, "SELECT count(*) FROM charging_sessions WHERE status IN ('pending', 'active')").await;
    assert_eq!(open, 0, "sessions left open");
    let billed = count(&app, "SELECT count(*) FROM charging_sessions WHERE status = 'completed' AND cost > 0").await;
    assert!(billed > 0, "no session was billed");
}
