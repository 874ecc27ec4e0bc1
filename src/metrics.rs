//! Prometheus metrics: the process-wide recorder, process and pool gauges refreshed at each
//! scrape, and the middleware that counts and times every HTTP request by route and status.

use std::sync::OnceLock;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use kilowatt_actors::store::DbPool;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

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
    let elapsed = started.elapsed();
    let labels = [("method", method.clone()), ("route", route.clone()), ("status", status.as_u16().to_string())];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels[..2]).record(elapsed.as_secs_f64());
    let latency_ms = elapsed.as_secs_f64() * 1000.0;
    if status.is_server_error() {
        tracing::warn!(%method, %path, %route, status = status.as_u16(), latency_ms, "request failed");
    } else {
        tracing::info!(%method, %path, %route, status = status.as_u16(), latency_ms, "request");
    }
    result
}
