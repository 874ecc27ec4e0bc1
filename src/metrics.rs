//! Prometheus metrics: the process-wide recorder, process and pool gauges refreshed at each
//! scrape, the middleware that counts and times every HTTP request by route and status, and
//! the probe that measures how long messages wait in the single actors' mailboxes and
//! refreshes the gauges read from the database.

use std::future::Future;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix::MailboxError;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use kilowatt_actors::registry::Probe;
use kilowatt_actors::store::schema::{notifications, payments};
use kilowatt_actors::store::{DbPool, StoreError, pool};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::state::AppState;

/// Latency buckets in seconds, from 0.5 ms to 10 s.
const LATENCY_BUCKETS: &[f64] = &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process-wide Prometheus recorder, installed on first use. A process has one metrics
/// registry, so several servers started by one test binary share it.
pub fn handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(LATENCY_BUCKETS)
                .map(PrometheusBuilder::build_recorder)
                .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
            let handle = recorder.handle();
            // Fails only if another recorder was installed first, which Kilowatt never does.
            let _ = metrics::set_global_recorder(recorder);
            metrics::gauge!("kilowatt_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
            let started = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
            metrics::gauge!("process_start_time_seconds").set(started.as_secs_f64());
            handle
        })
        .clone()
}

/// Renders every metric in Prometheus text format, after refreshing the gauges that are read
/// at scrape time.
pub fn render(pool: &DbPool) -> String {
    let handle = handle();
    record_process();
    let status = pool.status();
    metrics::gauge!("db_pool_connections").set(status.size as f64);
    metrics::gauge!("db_pool_connections_idle").set(status.available as f64);
    metrics::gauge!("db_pool_connections_max").set(status.max_size as f64);
    metrics::gauge!("db_pool_waiting").set(status.waiting as f64);
    handle.render()
}

/// Process gauges read from `/proc/self` (Linux): resident memory, CPU time, open files,
/// threads. Missing files (another OS) leave the gauges out.
fn record_process() {
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        for line in status.lines() {
            let mut parts = line.split_whitespace();
            match (parts.next(), parts.next().and_then(|v| v.parse::<f64>().ok())) {
                (Some("VmRSS:"), Some(kb)) => metrics::gauge!("process_resident_memory_bytes").set(kb * 1024.0),
                (Some("Threads:"), Some(n)) => metrics::gauge!("process_threads").set(n),
                _ => {}
            }
        }
    }
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
        // Fields after the command name (which may contain spaces) start at ") ".
        if let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) {
            let fields: Vec<&str> = rest.split_whitespace().collect();
            // utime and stime are fields 14 and 15 of the full line: 11 and 12 here, in clock ticks.
            let ticks: f64 = [11, 12].iter().filter_map(|i| fields.get(*i)?.parse::<f64>().ok()).sum();
            metrics::gauge!("process_cpu_seconds_total").set(ticks / 100.0);
        }
    }
    if let Ok(entries) = std::fs::read_dir("/proc/self/fd") {
        metrics::gauge!("process_open_fds").set(entries.count() as f64);
    }
}

/// Middleware: logs each request and records `http_requests_total` and
/// `http_request_duration_seconds` by method, route pattern and status.
pub async fn observe_http(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = req.method().to_string();
    let path = req.path().to_string();
    let result = next.call(req).await;
    let (status, route) = match &result {
        Ok(response) => {
            (response.status(), response.request().match_pattern().unwrap_or_else(|| "unmatched".to_string()))
        }
        Err(error) => (error.as_response_error().status_code(), "unmatched".to_string()),
    };
    record_http_request(&method, &path, &route, status, started.elapsed());
    result
}

/// Records one request in `http_requests_total` and `http_request_duration_seconds` and logs it
/// (for requests the middleware does not see, such as WebSocket upgrades taken over from it).
pub fn record_http_request(method: &str, path: &str, route: &str, status: StatusCode, elapsed: Duration) {
    let labels =
        [("method", method.to_string()), ("route", route.to_string()), ("status", status.as_u16().to_string())];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels[..2]).record(elapsed.as_secs_f64());
    let latency_ms = elapsed.as_secs_f64() * 1000.0;
    if status.is_server_error() {
        tracing::warn!(%method, %path, %route, status = status.as_u16(), latency_ms, "request failed");
    } else {
        tracing::info!(%method, %path, %route, status = status.as_u16(), latency_ms, "request");
    }
}

/// How often the probe runs.
const PROBE_EVERY: Duration = Duration::from_secs(10);

/// A probe unanswered this long counts as failed (the actor is stuck or gone) and is recorded
/// as taking this long.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Every [`PROBE_EVERY`], for ever (spawned at start-up with the other sweeps): sends a no-op
/// [`Probe`] to the registry, the booking timers' supervisor and the notifier and records each
/// round trip in `actor_mailbox_delay_seconds{actor}` (actix does not expose mailbox lengths;
/// the delay is what a full mailbox costs), then refreshes the gauges read from the database.
pub async fn probe_forever(state: AppState) {
    let mut every = tokio::time::interval(PROBE_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        tokio::join!(
            time_probe("registry", || state.registry.send(Probe)),
            time_probe("booking_timers", || state.bookings.send(Probe)),
            time_probe("notifier", || state.notifier.send(Probe)),
        );
        if let Err(error) = refresh_store_gauges(&state.pool).await {
            tracing::debug!(%error, "database gauges not refreshed");
        }
    }
}

/// Sends one probe and records how long the answer took.
async fn time_probe<F>(actor: &'static str, send: impl FnOnce() -> F)
where
    F: Future<Output = Result<(), MailboxError>>,
{
    let started = Instant::now();
    let answered = tokio::time::timeout(PROBE_TIMEOUT, send()).await;
    if !matches!(answered, Ok(Ok(()))) {
        metrics::counter!("actor_probe_failures_total", "actor" => actor).increment(1);
        tracing::warn!(actor, "actor probe unanswered: its mailbox is stuck or it has stopped");
    }
    metrics::histogram!("actor_mailbox_delay_seconds", "actor" => actor).record(started.elapsed().as_secs_f64());
}

/// Gauges of work waiting in the database: payments not yet decided and notifications not yet
/// delivered (each a count over a partial index of its pending rows).
async fn refresh_store_gauges(pool: &DbPool) -> Result<(), StoreError> {
    let mut conn = pool::connection(pool).await?;
    let payments: i64 = payments::table.filter(payments::state.eq("pending")).count().get_result(&mut conn).await?;
    let notifications: i64 =
        notifications::table.filter(notifications::status.eq("pending")).count().get_result(&mut conn).await?;
    metrics::gauge!("kilowatt_payments_pending").set(payments as f64);
    metrics::gauge!("kilowatt_notifications_pending").set(notifications as f64);
    Ok(())
}
