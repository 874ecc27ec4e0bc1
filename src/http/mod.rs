//! The HTTP edge: the one route table for the web/API listener and the OCPP listener, and
//! the extractor settings that turn malformed input into the standard JSON error.

pub mod admission;
pub mod api;
pub mod error;
pub mod health;
pub mod ocpp;
pub mod openapi;
pub mod pages;
pub mod response;
/// The web UI (`src/http/web/`); named apart from `actix_web::web`, which this file uses.
#[path = "web/mod.rs"]
pub mod web_ui;

use actix_web::{HttpRequest, HttpResponse, web};

use self::error::ApiError;

/// Routes served on the HTTP listener (`KILOWATT_HTTP_ADDR`).
pub fn http_routes(cfg: &mut web::ServiceConfig) {
    cfg.app_data(json_config())
        .app_data(query_config())
        .app_data(path_config())
        .route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/metrics", web::get().to(health::metrics))
        .route("/ocpp/{chargePointId}", web::get().to(ocpp::connect))
        .route("/api/openapi.json", web::get().to(openapi::serve))
        .configure(|cfg| api::routes(&mut utoipa_actix_web::service_config::ServiceConfig::new(cfg)))
        .configure(pages::routes)
        .configure(web_ui::routes)
        .default_service(web::to(not_found));
}

/// Routes served on the OCPP listener (`KILOWATT_OCPP_ADDR`).
pub fn ocpp_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(health::healthz))
        .route("/ocpp/{chargePointId}", web::get().to(ocpp::connect))
        .route("/{chargePointId}", web::get().to(ocpp::connect))
        .default_service(web::to(not_found));
}

async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found(format!("No endpoint at {} {}.", req.method(), req.path())))
}

fn json_config() -> web::JsonConfig {
    web::JsonConfig::default().limit(64 * 1024).error_handler(|error, _req| {
        let api_error = match &error {
            actix_web::error::JsonPayloadError::ContentType => ApiError::new(
                actix_web::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Send JSON with Content-Type: application/json.",
            ),
            actix_web::error::JsonPayloadError::Deserialize(e) if e.is_data() => {
                ApiError::new(actix_web::http::StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", e.to_string())
            }
            actix_web::error::JsonPayloadError::OverflowKnownLength { .. }
            | actix_web::error::JsonPayloadError::Overflow { .. } => ApiError::new(
                actix_web::http::StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "The request body is too large.",
            ),
            other => ApiError::bad_request("invalid_json", format!("The request body is not valid JSON: {other}")),
        };
        tracing::debug!(%error, "rejected JSON body");
        api_error.into()
    })
}

fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|error, _req| {
        ApiError::new(
            actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            format!("Invalid query parameters: {error}"),
        )
        .into()
    })
}

fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|error, _req| {
        ApiError::new(
            actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            format!("Invalid path parameter: {error}"),
        )
        .into()
    })
}
