//! Crash safety: Kilowatt runs as a real process and is killed with SIGKILL in the middle of
//! six charging sessions on three chargers while their meter values stream in. While it is
//! down the chargers keep charging, and some sessions end at the charger, which queues their
//! StopTransaction as a real charger does. Kilowatt starts again on the same ports, the chargers
//! reconnect and boot, deliver what they queued (one of them again, having never seen the
//! answer to a StopTransaction that Kilowatt had already settled), and the sessions still
//! running are stopped through the REST API by their driver or the station's owner. Then
//! every session is settled exactly once, billed for what the charger's meter says, every
//! wallet equals its ledger, no meter value acknowledged before the kill is lost, and the
//! restarted process's metrics count each settlement once.

mod common;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use actix_web::rt::task::JoinHandle;
use chrono::{SecondsFormat, Utc};
use common::charge_point::ChargePoint;
use common::process::KilowattProcess;
use common::sql::{count, money, scalar};
use common::{TestApp, User, eventually};
use kilowatt_actors::ocpp::call_frame;
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(10);

/// The station's price, INR per kWh.
const PRICE: &str = "18.50";

/// Each driver's recharge, INR.
const RECHARGE: i64 = 1000;

/// How a session ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// Stopped at the charger while Kilowatt is down: StopTransaction queued with this reason.
    WhileDown(&'static str),
    /// Its driver stopped it just before the kill; the charger ended it but could not send
    /// StopTransaction before Kilowatt died.
    DriverStopBeforeKill,
    /// StopTransaction reached Kilowatt and was settled, but the charger never read the answer:
    /// it sends it again after reconnecting.
    AnswerLost,
    /// Still charging after the restart; its driver stops it through the API.
    DriverStopAfterRestart,
    /// Still charging after the restart; the station's owner completes it through the API.
    OwnerCompleteAfterRestart,
}

/// One session as the charger and the test see it.
struct Charge {
    charger: usize,
    connector: u32,
    driver: usize,
    ending: Ending,
    session_id: i64,
    transaction_id: i32,
    meter_start: i64,
    /// The charger's energy register, Wh.
    meter: Rc<Cell<i64>>,
    /// Readings Kilowatt acknowledged.
    acknowledged: Rc<RefCell<Vec<i64>>>,
    /// The StopTransaction the charger holds until it can deliver it.
    queued_stop: Option<Value>,
    streaming: Rc<Cell<bool>>,
    stream: Option<JoinHandle<()>>,
}

impl Charge {
    /// Sends a MeterValues every 200 ms (the charger's sampling interval here, well within the
    /// per-charger rate limit for two connectors) until told to stop or Kilowatt goes away; the
    /// car takes 37 Wh between samples whatever happens to them.
    fn start_streaming(&mut self, charger: Rc<ChargePoint>) {
        let (meter, acknowledged, streaming) = (self.meter.clone(), self.acknowledged.clone(), self.streaming.clone());
        let (connector, transaction_id) = (self.connector, self.transaction_id);
        streaming.set(true);
        self.stream = Some(actix_web::rt::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_millis(200));
            loop {
                every.tick().await;
                if !streaming.get() {
                    return;
                }
                let wh = meter.get() + 37;
                meter.set(wh);
                match charger.meter_values(connector, Some(transaction_id), wh, Some(7_000), Some(60)).await {
                    Ok(_) => acknowledged.borrow_mut().push(wh),
                    // Kilowatt is gone: the charger goes on charging and stops sampling for it.
                    Err(_) => return,
                }
            }
        }));
    }

    /// Stops the stream and waits until no reading is in flight.
    async fn stop_streaming(&mut self) {
        self.streaming.set(false);
        if let Some(stream) = self.stream.take() {
            stream.await.expect("meter stream");
        }
    }

    /// The StopTransaction the charger sends (now, or later from its queue).
    fn stop_payload(&self, reason: &str) -> Value {
        json!({
            "transactionId": self.transaction_id,
            "meterStop": self.meter.get(),
            "timestamp": Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
            "reason": reason,
        })
    }
}

async fn connect(app: &TestApp, charge_point_id: &str) -> Rc<ChargePoint> {
    let charger = ChargePoint::connect(&app.ocpp_url, charge_point_id).await.expect("the charger connects");
    assert_eq!(charger.boot().await.expect("boot")["status"], "Accepted");
    Rc::new(charger)
}

/// Recharges through the sandbox payment page, as a driver does.
async fn recharge(app: &TestApp, driver: &User, amount: i64) {
    let body = json!({ "amount": amount });
    let (status, payment) = app.call("POST", "/api/wallet/recharge", Some(&driver.token), Some(&body)).await;
    assert_eq!(status, 201, "{payment}");
    let mtid = payment["data"]["merchantTransactionId"].as_str().expect("merchantTransactionId");
    let paid = app
        .client
        .post(app.url(&format!("/payments/sandbox/{mtid}/complete")))
        .send_form(&[("outcome", "success")])
        .await
        .expect("sandbox form sent");
    assert!(paid.status().is_success() || paid.status().is_redirection(), "{}", paid.status());
    let (_, wallet) = app.call("GET", "/api/wallet", Some(&driver.token), None).await;
    assert_eq!(wallet["data"]["balance"], format!("{amount}.00"), "{wallet}");
}

/// A session started through the API: the charger is asked to start and does.
async fn start_remotely(app: &TestApp, charger: &ChargePoint, cp: &str, connector: u32, driver: &User) -> (i64, i32) {
    let body = json!({ "chargerId": cp, "connectorId": connector });
    let (status, answer) = app.call("POST", "/api/charging/start", Some(&driver.token), Some(&body)).await;
    assert_eq!(status, 201, "{answer}");
    let session_id = answer["data"]["sessionId"].as_i64().expect("session id");
    let remote = charger.expect_call("RemoteStartTransaction", WAIT).await.expect("RemoteStartTransaction");
    assert_eq!(remote["connectorId"], connector);
    let meter_start = meter_start(cp, connector);
    let (transaction_id, info) =
        charger.start_transaction(connector, &driver.id_tag, meter_start, Utc::now()).await.expect("start");
    assert_eq!(info["status"], "Accepted", "{info}");
    (session_id, transaction_id)
}

/// A session started at the charger with the driver's card.
async fn start_with_card(app: &TestApp, charger: &ChargePoint, cp: &str, connector: u32, driver: &User) -> (i64, i32) {
    assert_eq!(charger.authorize(&driver.id_tag).await.expect("authorize")["idTagInfo"]["status"], "Accepted");
    let meter_start = meter_start(cp, connector);
    let (transaction_id, info) =
        charger.start_transaction(connector, &driver.id_tag, meter_start, Utc::now()).await.expect("start");
    assert_eq!(info["status"], "Accepted", "{info}");
    let session_id = scalar(
        app,
        &format!(
            "SELECT s.id FROM charging_sessions s JOIN chargers c ON c.id = s.charger_id \
             WHERE c.charge_point_id = '{cp}' AND s.transaction_id = {transaction_id}"
        ),
    )
    .await;
    (session_id, transaction_id)
}

/// Each connector's energy register starts somewhere of its own.
fn meter_start(cp: &str, connector: u32) -> i64 {
    let charger = i64::from(cp.as_bytes()[cp.len() - 1] - b'A');
    100_000 * (charger + 1) + 10_000 * i64::from(connector) + 123
}

/// One Prometheus sample (all label sets summed); 0 when absent.
fn sample(metrics: &str, name: &str, label: &str) -> f64 {
    metrics
        .lines()
        .filter(|line| line.starts_with(name) && line[name.len()..].starts_with([' ', '{']) && line.contains(label))
        .filter_map(|line| line.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

#[actix_rt::test]
async fn sigkill_mid_session_then_restart_settles_every_session_exactly_once() {
    let mut kilowatt = KilowattProcess::start_with(&[("KILOWATT_DB_POOL_SIZE", "8")]).await;
    let app = &kilowatt.app;
    let charge_points = ["CRASH-A", "CRASH-B", "CRASH-C"];

    // The network, through the API: an owner, a station, three two-connector chargers, and six
    // drivers who recharge through the payment page.
    let owner = app.owner("crash-owner").await;
    let body = json!({ "name": "Crash Hub", "address": "1 MG Road", "pricePerKwh": PRICE });
    let (status, station) = app.call("POST", "/api/owner/stations", Some(&owner.token), Some(&body)).await;
    assert_eq!(status, 201, "{station}");
    let station_id = station["data"]["id"].as_i64().expect("station id");
    for cp in charge_points {
        let body = json!({ "chargePointId": cp, "connectors": 2 });
        let path = format!("/api/owner/stations/{station_id}/chargers");
        let (status, added) = app.call("POST", &path, Some(&owner.token), Some(&body)).await;
        assert_eq!(status, 201, "{added}");
    }
    let mut drivers = Vec::new();
    for i in 0..6 {
        let driver = app.driver(&format!("crash-driver-{i}")).await;
        recharge(app, &driver, RECHARGE).await;
        drivers.push(driver);
    }
    let mut chargers = Vec::new();
    for cp in charge_points {
        let charger = connect(app, cp).await;
        for connector in [1, 2] {
            charger.status(connector, "Available", "NoError").await.expect("status");
        }
        chargers.push(charger);
    }

    // Six sessions: four started through the API, two with a card at the charger.
    let plan = [
        (0, 1, Ending::WhileDown("Local"), false),
        (0, 2, Ending::DriverStopAfterRestart, true),
        (1, 1, Ending::DriverStopBeforeKill, false),
        (1, 2, Ending::AnswerLost, false),
        (2, 1, Ending::OwnerCompleteAfterRestart, false),
        (2, 2, Ending::WhileDown("EVDisconnected"), true),
    ];
    let mut charges = Vec::new();
    for (driver, (charger, connector, ending, card)) in plan.into_iter().enumerate() {
        let (cp, charge_point) = (charge_points[charger], &chargers[charger]);
        let (session_id, transaction_id) = if card {
            start_with_card(app, charge_point, cp, connector, &drivers[driver]).await
        } else {
            start_remotely(app, charge_point, cp, connector, &drivers[driver]).await
        };
        charge_point.status(connector, "Charging", "NoError").await.expect("status");
        let meter_start = meter_start(cp, connector);
        charges.push(Charge {
            charger,
            connector,
            driver,
            ending,
            session_id,
            transaction_id,
            meter_start,
            meter: Rc::new(Cell::new(meter_start)),
            acknowledged: Rc::default(),
            queued_stop: None,
            streaming: Rc::default(),
            stream: None,
        });
    }
    for charge in &mut charges {
        charge.start_streaming(chargers[charge.charger].clone());
    }
    let streamed = async || charges.iter().all(|c| c.acknowledged.borrow().len() >= 3);
    assert!(eventually(streamed).await, "every session streams meter values");

    // Just before the kill: one driver stops (the charger ends the charge but has not sent
    // StopTransaction yet), and one charger's StopTransaction is settled by Kilowatt but its
    // answer never reaches the charger.
    let stopping = charges.iter().position(|c| c.ending == Ending::DriverStopBeforeKill).expect("planned");
    let charge = &mut charges[stopping];
    charge.stop_streaming().await;
    let body = json!({ "sessionId": charge.session_id });
    let (status, answer) =
        app.call("POST", "/api/charging/stop", Some(&drivers[charge.driver].token), Some(&body)).await;
    assert_eq!((status, answer["data"]["status"].as_str()), (200, Some("stopping")), "{answer}");
    let remote_stop = chargers[charge.charger].expect_call("RemoteStopTransaction", WAIT).await.expect("RemoteStop");
    assert_eq!(remote_stop["transactionId"], charge.transaction_id);
    charge.queued_stop = Some(charge.stop_payload("Remote"));

    let lost = charges.iter().position(|c| c.ending == Ending::AnswerLost).expect("planned");
    let charge = &mut charges[lost];
    charge.stop_streaming().await;
    let stop = charge.stop_payload("Local");
    chargers[charge.charger].send_raw(&call_frame("lost-answer-1", "StopTransaction", &stop)).await;
    charge.queued_stop = Some(stop);
    let settled =
        format!("SELECT count(*) FROM charging_sessions WHERE id = {} AND settled_at IS NOT NULL", charge.session_id);
    assert!(eventually(async || count(app, &settled).await == 1).await, "the first StopTransaction settles");

    // SIGKILL with meter values still streaming for four sessions.
    assert!(charges.iter().filter(|c| c.streaming.get()).count() == 4);
    kilowatt.kill();
    for charger in &chargers {
        assert!(charger.closed(WAIT).await.is_some(), "the charger notices Kilowatt is gone");
    }
    for charge in &mut charges {
        charge.stop_streaming().await;
    }

    // Down: the cars keep charging; two sessions end at the charger, which queues them.
    for charge in charges.iter_mut().filter(|c| c.queued_stop.is_none()) {
        charge.meter.set(charge.meter.get() + 611);
        if let Ending::WhileDown(reason) = charge.ending {
            charge.queued_stop = Some(charge.stop_payload(reason));
        }
    }
    drop(chargers);

    // Up again: the chargers reconnect, boot, report their connectors and deliver their queue.
    let restarted_at = Utc::now();
    kilowatt.start().await;
    let app = &kilowatt.app;
    let mut chargers = Vec::new();
    for cp in charge_points {
        chargers.push(connect(app, cp).await);
    }
    for charge in &charges {
        let status = if charge.queued_stop.is_some() { "Finishing" } else { "Charging" };
        chargers[charge.charger].status(charge.connector, status, "NoError").await.expect("status");
    }
    for charge in &charges {
        if let Some(stop) = &charge.queued_stop {
            let answer = chargers[charge.charger].call("StopTransaction", stop.clone()).await;
            assert!(answer.is_ok(), "queued StopTransaction of session {}: {answer:?}", charge.session_id);
            chargers[charge.charger].status(charge.connector, "Available", "NoError").await.expect("status");
        }
    }

    // The sessions still running carry on, then are stopped through the API.
    for charge in charges.iter_mut().filter(|c| c.queued_stop.is_none()) {
        charge.start_streaming(chargers[charge.charger].clone());
    }
    let before = charges.iter().map(|c| c.acknowledged.borrow().len()).collect::<Vec<_>>();
    let carried_on = async || {
        charges.iter().zip(&before).all(|(c, n)| c.queued_stop.is_some() || c.acknowledged.borrow().len() >= n + 3)
    };
    assert!(eventually(carried_on).await, "running sessions stream meter values after the restart");
    for charge in charges.iter_mut().filter(|c| c.queued_stop.is_none()) {
        charge.stop_streaming().await;
        let (path, token) = match charge.ending {
            Ending::DriverStopAfterRestart => ("/api/charging/stop".to_owned(), &drivers[charge.driver].token),
            Ending::OwnerCompleteAfterRestart => {
                (format!("/api/owner/sessions/{}/complete", charge.session_id), &owner.token)
            }
            other => panic!("{other:?} ended before the restart"),
        };
        let body = json!({ "sessionId": charge.session_id });
        let (status, answer) = app.call("POST", &path, Some(token), Some(&body)).await;
        assert_eq!((status, answer["data"]["status"].as_str()), (200, Some("stopping")), "{answer}");
        let charger = &chargers[charge.charger];
        let remote_stop = charger.expect_call("RemoteStopTransaction", WAIT).await.expect("RemoteStop");
        assert_eq!(remote_stop["transactionId"], charge.transaction_id);
        let stop = charge.stop_payload("Remote");
        charger.call("StopTransaction", stop.clone()).await.expect("StopTransaction answered");
        charge.queued_stop = Some(stop);
    }

    // Every session settled once, billed for what its charger's meter says.
    let price: Decimal = PRICE.parse().expect("price");
    for charge in &charges {
        let id = charge.session_id;
        let field = async |column: &str| -> String {
            scalar(app, &format!("SELECT {column} FROM charging_sessions WHERE id = {id}")).await
        };
        let energy = charge.meter.get() - charge.meter_start;
        let cost = (Decimal::from(energy) / Decimal::from(1000) * price)
            .round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
        assert_eq!(field("status").await, "completed", "session {id} ({:?})", charge.ending);
        let asked_by = match charge.ending {
            Ending::DriverStopBeforeKill | Ending::DriverStopAfterRestart => Some("Stopped by the driver"),
            Ending::OwnerCompleteAfterRestart => Some("Completed by the station owner"),
            _ => None,
        };
        if let Some(reason) = asked_by {
            assert_eq!(field("stop_reason").await, reason, "session {id}");
        }
        assert_eq!(field("meter_stop_wh").await, charge.meter.get().to_string(), "session {id}");
        assert_eq!(field("energy_wh").await, energy.to_string(), "session {id} ({:?})", charge.ending);
        assert_eq!(money(app, &format!("SELECT cost FROM charging_sessions WHERE id = {id}")).await, cost);
        let debits =
            format!("SELECT count(*) FROM wallet_entries WHERE reference_kind = 'session' AND reference_id = {id}");
        assert_eq!(count(app, &debits).await, 1, "session {id} ({:?}) debited once", charge.ending);
        let debit =
            format!("SELECT -amount FROM wallet_entries WHERE reference_kind = 'session' AND reference_id = {id}");
        assert_eq!(money(app, &debit).await, cost, "session {id}");
        assert_eq!(count(app, &format!("SELECT count(*) FROM revenue_entries WHERE session_id = {id}")).await, 1);

        let driver = &drivers[charge.driver];
        let (_, wallet) = app.call("GET", "/api/wallet", Some(&driver.token), None).await;
        let balance: Decimal = wallet["data"]["balance"].as_str().expect("balance").parse().expect("decimal");
        assert_eq!(balance, Decimal::from(RECHARGE) - cost, "driver of session {id}");
        let ledger = format!("SELECT coalesce(sum(amount), 0) FROM wallet_entries WHERE user_id = {}", driver.id);
        assert_eq!(money(app, &ledger).await, balance, "driver of session {id}: wallet equals ledger");
        let (_, active) = app.call("GET", "/api/charging/sessions/active", Some(&driver.token), None).await;
        assert_eq!(active["data"], Value::Null, "driver of session {id} has nothing under way");

        // Every reading Kilowatt acknowledged is stored.
        let stored: String = scalar(
            app,
            &format!(
                "SELECT coalesce(string_agg(DISTINCT m.raw_value, ','), '') FROM meter_values m \
                 JOIN chargers c ON c.id = m.charger_id WHERE c.charge_point_id = '{}' \
                 AND m.transaction_id = {} AND m.measurand = 'Energy.Active.Import.Register'",
                charge_points[charge.charger], charge.transaction_id
            ),
        )
        .await;
        let stored: Vec<&str> = stored.split(',').collect();
        for wh in charge.acknowledged.borrow().iter() {
            assert!(stored.contains(&wh.to_string().as_str()), "session {id}: acknowledged {wh} Wh is lost");
        }
    }
    let unbalanced = "SELECT count(*) FROM wallets w WHERE balance <> \
        (SELECT coalesce(sum(amount), 0) FROM wallet_entries e WHERE e.user_id = w.user_id)";
    assert_eq!(count(app, unbalanced).await, 0, "every wallet equals its ledger");
    assert_eq!(count(app, "SELECT count(*) FROM charging_sessions WHERE status IN ('pending', 'active')").await, 0);

    // The restarted process counted each settlement it made once: all but the one settled
    // before the kill, with their energy.
    let after_restart: Vec<&Charge> = charges.iter().filter(|c| c.ending != Ending::AnswerLost).collect();
    let settled_after = format!(
        "SELECT count(*) FROM charging_sessions WHERE settled_at > '{}'",
        restarted_at.to_rfc3339_opts(SecondsFormat::Micros, true)
    );
    assert_eq!(count(app, &settled_after).await, after_restart.len() as i64);
    let energy_after: i64 = after_restart.iter().map(|c| c.meter.get() - c.meter_start).sum();
    let counted = async || {
        let (_, metrics) = app.get_text("/metrics").await;
        sample(&metrics, "kilowatt_sessions_settled_total", "status=\"completed\"") == after_restart.len() as f64
            && sample(&metrics, "kilowatt_energy_delivered_wh_total", "") == energy_after as f64
            && sample(&metrics, "kilowatt_sessions", "status=\"active\"") == 0.0
    };
    assert!(eventually(counted).await, "metrics:\n{}", app.get_text("/metrics").await.1);
}
