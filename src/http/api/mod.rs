//! The JSON API, one file per area. Every handler carries its `#[utoipa::path]` so the route
//! table below is also the OpenAPI document.

pub mod app_sessions;
pub mod auth;
pub mod cards;
pub mod chargers;
pub mod charging;
pub mod history;
pub mod me;
pub mod owner_chargers;
pub mod owner_sessions;
pub mod owner_stations;
pub mod payments;
pub mod session_view;
pub mod stations;
pub mod wallet;

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
        .service(wallet::show)
        .service(wallet::transactions)
        .service(wallet::recharge)
        .service(payments::show)
        .service(payments::phonepe_callback)
        .service(chargers::lookup)
        .service(stations::search)
        .service(stations::show)
        .service(owner_stations::create)
        .service(owner_stations::list)
        .service(owner_stations::show)
        .service(owner_stations::update)
        .service(owner_chargers::create)
        .service(owner_chargers::list)
        .service(owner_chargers::show)
        .service(owner_chargers::update)
        .service(owner_chargers::command)
        .service(owner_chargers::messages)
        .service(charging::start)
        .service(charging::stop)
        .service(charging::active)
        .service(app_sessions::start)
        .service(app_sessions::update)
        .service(app_sessions::end)
        .service(history::list)
        .service(history::stats)
        .service(history::dashboard)
        .service(history::show)
        .service(history::rate)
        .service(owner_sessions::active)
        .service(owner_sessions::complete)
        .service(owner_sessions::cancel);
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
