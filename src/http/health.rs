//! Liveness and readiness: `/healthz` answers while the process runs; `/readyz` answers 200
//! only while the database is reachable, and recovers by itself when it comes back.

use actix_web::{HttpResponse, web};
use kilowatt_actors::store::pool;
use serde_json::json;

use super::error::ApiError;
use super::response;
use crate::state::AppState;

/// `GET /healthz`: the process is up.
pub async fn healthz() -> HttpResponse {
    response::ok(json!({ "status": "ok" }))
}

/// `GET /readyz`: the database answers `SELECT 1` within the pool timeout.
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    match pool::ping(&state.pool).await {
        Ok(()) => Ok(response::ok(json!({ "status": "ready", "database": "ok" }))),
        Err(error) => {
            tracing::warn!(%error, "not ready: database unreachable");
            Err(ApiError::unavailable("The database is unreachable."))
        }
    }
}

/// `GET /metrics`: Prometheus text format.
///
/// Rendered on the blocking pool, not on the worker: with 19,000 chargers connected a render
/// takes tens of milliseconds (listing `/proc/self/fd` alone reads an entry per socket), and on
/// the worker every charger and request it serves would wait that long at each scrape.
pub async fn metrics(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let pool = state.pool.clone();
    let text = web::block(move || crate::metrics::render(&pool)).await.map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body(text))
}
