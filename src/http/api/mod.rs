//! The JSON API, one file per area. Every handler carries its `#[utoipa::path]` so the route
//! table below is also the OpenAPI document.

pub mod auth;
pub mod cards;
pub mod chargers;
pub mod me;

use utoipa_actix_web::service_config::ServiceConfig;

/// Registers every API endpoint.
pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(auth::register)
        .service(auth::login)
        .service(auth::logout)
        .service(me::show)
        .service(me::update)
        .service(me::change_pin)
        .service(cards::list)
        .service(cards::add)
        .service(cards::remove)
        .service(chargers::lookup);
}

/// Turns `null` into `Some(None)` and absence (with `#[serde(default)]`) into `None`, so a
/// PATCH can tell "clear this field" from "leave it alone".
pub fn nullable<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    serde::Deserialize::deserialize(deserializer).map(Some)
}
