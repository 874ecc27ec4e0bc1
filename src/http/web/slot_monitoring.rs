//! Placeholder: this area's pages are being built.

use actix_web::web;

/// Registers this area's pages.
pub fn routes(_cfg: &mut web::ServiceConfig) {}
