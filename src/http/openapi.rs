//! The OpenAPI 3 document at `/api/openapi.json`. Paths and schemas are collected from the
//! handlers' `#[utoipa::path]` annotations as the routes are registered, so a route cannot be
//! served without being documented; the envelope and error shapes are declared once here.

use std::sync::OnceLock;

use actix_web::{App, HttpResponse};
use serde::Serialize;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};
use utoipa_actix_web::AppExt;

/// The success envelope every JSON endpoint answers with.
#[derive(Debug, Serialize, ToSchema)]
pub struct Envelope<T> {
    /// Always `true`.
    pub success: bool,
    /// The answer.
    pub data: T,
}

/// The error envelope: `{"success": false, "error": {...}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorEnvelope {
    /// Always `false`.
    pub success: bool,
    /// What went wrong.
    pub error: ErrorBody,
}

/// An error's machine-readable code, message and (for validation errors) field.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable code, e.g. `validation_failed`, `unauthorized`, `insufficient_balance`.
    pub code: String,
    /// For people.
    pub message: String,
    /// The offending field, for 422.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// An answer with no data (`"data": null`).
#[derive(Debug, Serialize, ToSchema)]
pub struct Empty {}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Kilowatt API",
        description = "Kilowatt's JSON API for drivers, station owners and operators. Every answer is \
            `{\"success\": true, \"data\": …}` or `{\"success\": false, \"error\": {\"code\", \"message\", \"field\"}}`. \
            Money is a decimal string in INR; times are RFC 3339 in UTC.",
        license(name = "AGPL-3.0-or-later")
    ),
    components(schemas(ErrorEnvelope, ErrorBody)),
    modifiers(&BearerAuth)
)]
struct ApiInfo;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    }
}

/// The document, built once from the same route table the server serves.
pub fn document() -> &'static serde_json::Value {
    static DOCUMENT: OnceLock<serde_json::Value> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let (_, api) =
            App::new().into_utoipa_app().openapi(ApiInfo::openapi()).configure(super::api::routes).split_for_parts();
        serde_json::to_value(api).unwrap_or_default()
    })
}

/// `GET /api/openapi.json`.
pub async fn serve() -> HttpResponse {
    HttpResponse::Ok().json(document())
}
