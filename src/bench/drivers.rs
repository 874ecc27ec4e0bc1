//! Drivers using the app during the mixed and restart scenarios: each signs in with its API
//! token and, at its own charger, starts a session through `POST /api/charging/start` (the
//! simulated charger answers the RemoteStartTransaction and really starts), checks it and the
//! wallet while it charges, and stops it through `POST /api/charging/stop` — timing every
//! request on the client. Like the simulator, they run as local tasks on the caller's thread.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::fixtures::AppDriver;
use crate::simulator::Rng;
use crate::simulator::stats::Histogram;

/// The requests a driver's app makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST /api/charging/start`.
    Start,
    /// `POST /api/charging/stop`.
    Stop,
    /// `GET /api/charging/sessions/active`.
    Active,
    /// `GET /api/wallet`.
    Wallet,
}

impl Endpoint {
    /// Every endpoint, in counter order.
    pub const ALL: [Endpoint; 4] = [Endpoint::Start, Endpoint::Stop, Endpoint::Active, Endpoint::Wallet];

    /// Method and path.
    pub const fn as_str(self) -> &'static str {
        match self {
            Endpoint::Start => "POST /api/charging/start",
            Endpoint::Stop => "POST /api/charging/stop",
            Endpoint::Active => "GET /api/charging/sessions/active",
            Endpoint::Wallet => "GET /api/wallet",
        }
    }
}

/// Counters of the drivers' requests.
#[derive(Default)]
pub struct RestStats {
    /// Every answered request's latency.
    pub latency: Histogram,
    by_endpoint: [Histogram; Endpoint::ALL.len()],
    /// Requests sent.
    pub sent: Cell<u64>,
    /// Requests answered (any status).
    pub answered: Cell<u64>,
    /// Answers with a 5xx status.
    pub server_errors: Cell<u64>,
    /// Requests with no answer (connection refused or broken, timeout).
    pub failures: Cell<u64>,
    /// Answers with a 4xx status, by error code.
    refusals: RefCell<BTreeMap<String, u64>>,
    /// Sessions the server accepted to start.
    pub starts: Cell<u64>,
    /// Stops the server accepted.
    pub stops: Cell<u64>,
}

impl RestStats {
    /// Latency of one endpoint.
    pub fn latency_of(&self, endpoint: Endpoint) -> &Histogram {
        &self.by_endpoint[endpoint as usize]
    }

    /// Forgets latencies (to start a measurement window).
    pub fn reset_latencies(&self) {
        self.latency.reset();
        self.by_endpoint.iter().for_each(Histogram::reset);
    }

    /// 4xx answers by error code.
    pub fn refusals(&self) -> BTreeMap<String, u64> {
        self.refusals.borrow().clone()
    }

    fn add(cell: &Cell<u64>) {
        cell.set(cell.get() + 1);
    }
}

/// How long drivers charge and pause, seconds (uniform in each range).
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// From a start to its stop.
    pub charge: (f64, f64),
    /// From a stop to the next start (more than the 1–5 s the simulated car takes to unplug).
    pub gap: (f64, f64),
    /// Between two looks at the active session while charging.
    pub poll: f64,
}

struct Shared {
    client: awc::Client,
    base_url: String,
    stats: RestStats,
    timing: Timing,
    stopping: Cell<bool>,
    stop: Notify,
}

impl Shared {
    /// Sleeps for `duration` unless the drivers are told to stop; answers whether it slept.
    async fn pause(&self, duration: Duration) -> bool {
        let notified = self.stop.notified();
        if self.stopping.get() {
            return false;
        }
        tokio::select! {
            () = notified => false,
            () = tokio::time::sleep(duration) => true,
        }
    }

    /// One request; answers the status and JSON body, or `None` without an answer.
    async fn request(&self, endpoint: Endpoint, token: &str, body: Option<Value>) -> Option<(u16, Value)> {
        let url = format!("{}{}", self.base_url, endpoint.as_str().split_once(' ').map_or("", |(_, path)| path));
        let request = match endpoint {
            Endpoint::Start | Endpoint::Stop => self.client.post(url),
            Endpoint::Active | Endpoint::Wallet => self.client.get(url),
        }
        .bearer_auth(token);
        RestStats::add(&self.stats.sent);
        let sent_at = Instant::now();
        let answer = match body {
            Some(body) => request.send_json(&body).await,
            None => request.send().await,
        };
        let mut response = match answer {
            Ok(response) => response,
            Err(error) => {
                RestStats::add(&self.stats.failures);
                tracing::debug!(%error, endpoint = endpoint.as_str(), "request failed");
                return None;
            }
        };
        let Ok(bytes) = response.body().limit(1 << 20).await else {
            RestStats::add(&self.stats.failures);
            return None;
        };
        let latency = sent_at.elapsed();
        let status = response.status().as_u16();
        let stats = &self.stats;
        RestStats::add(&stats.answered);
        stats.latency.record(latency);
        stats.by_endpoint[endpoint as usize].record(latency);
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status >= 500 {
            RestStats::add(&stats.server_errors);
        } else if status >= 400 {
            let code = body["error"]["code"].as_str().unwrap_or("unknown");
            *stats.refusals.borrow_mut().entry(format!("{status} {code}")).or_insert(0) += 1;
        }
        Some((status, body))
    }
}

/// Drivers at work.
pub struct Drivers {
    shared: Rc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drivers {
    /// Starts one task per driver, each at its own charger (connector 1); first starts are
    /// spread over one gap.
    pub fn start(base_url: String, drivers: Vec<(AppDriver, String)>, timing: Timing, seed: u64) -> Self {
        let client =
            awc::Client::builder().connector(awc::Connector::new().limit(0)).timeout(Duration::from_secs(30)).finish();
        let shared = Rc::new(Shared {
            client,
            base_url,
            stats: RestStats::default(),
            timing,
            stopping: Cell::new(false),
            stop: Notify::new(),
        });
        let tasks = drivers
            .into_iter()
            .enumerate()
            .map(|(index, (driver, charger))| {
                let rng = Rng::new(seed ^ 0xD21E, index as u64);
                actix_web::rt::spawn(drive(shared.clone(), driver, charger, rng))
            })
            .collect();
        Drivers { shared, tasks }
    }

    /// The counters.
    pub fn stats(&self) -> &RestStats {
        &self.shared.stats
    }

    /// Tells every driver to stop: each stops its session through the API and goes home.
    /// Waits up to `timeout` for them; the counters stay readable.
    pub async fn stop(&mut self, timeout: Duration) {
        self.shared.stopping.set(true);
        self.shared.stop.notify_waiters();
        let mut tasks = std::mem::take(&mut self.tasks);
        let all = async {
            for task in &mut tasks {
                let _ = task.await;
            }
        };
        if tokio::time::timeout(timeout, all).await.is_err() {
            tasks.iter().for_each(JoinHandle::abort);
        }
    }
}

fn seconds(range: (f64, f64), rng: &mut Rng) -> Duration {
    Duration::from_secs_f64(rng.range(range.0, range.1).max(0.0))
}

async fn drive(shared: Rc<Shared>, driver: AppDriver, charger: String, mut rng: Rng) {
    let timing = shared.timing;
    let token = driver.token.as_str();
    if !shared.pause(Duration::from_secs_f64(rng.range(0.0, timing.gap.1))).await {
        return;
    }
    loop {
        let start = json!({ "chargerId": charger, "connectorId": 1 });
        let session_id = match shared.request(Endpoint::Start, token, Some(start)).await {
            Some((201, body)) => {
                RestStats::add(&shared.stats.starts);
                body["data"]["sessionId"].as_i64()
            }
            // Refused (the charger is offline after a restart, the connector not free yet) or
            // no answer: try again a little later.
            _ => None,
        };
        let Some(session_id) = session_id else {
            if !shared.pause(seconds((2.0, 4.0), &mut rng)).await {
                return;
            }
            continue;
        };
        let until = Instant::now() + seconds(timing.charge, &mut rng);
        let mut looked_at_wallet = false;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() || !shared.pause(left.min(Duration::from_secs_f64(timing.poll))).await {
                break;
            }
            shared.request(Endpoint::Active, token, None).await;
            if !looked_at_wallet {
                shared.request(Endpoint::Wallet, token, None).await;
                looked_at_wallet = true;
            }
        }
        // Stop, retrying while the server does not answer (it may be restarting).
        let stop_deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let body = json!({ "sessionId": session_id });
            match shared.request(Endpoint::Stop, token, Some(body)).await {
                Some((status, _)) => {
                    if status == 200 {
                        RestStats::add(&shared.stats.stops);
                    }
                    break;
                }
                None if Instant::now() < stop_deadline => tokio::time::sleep(Duration::from_secs(1)).await,
                None => break,
            }
        }
        if !shared.pause(seconds(timing.gap, &mut rng)).await {
            return;
        }
    }
}
