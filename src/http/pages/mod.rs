//! HTML pages served next to the JSON API. For now the payment pages (sandbox, return from the
//! gateway, result); the full web UI comes later.

pub mod payments;

use actix_web::web;

/// Registers every page.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(payments::sandbox_page)
        .service(payments::sandbox_complete)
        .service(payments::phonepe_return)
        .service(payments::result_page);
}
