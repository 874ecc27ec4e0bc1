//! The JSON API, one file per area. Every handler carries its `#[utoipa::path]` so the route
//! table below is also the OpenAPI document.

pub mod app_sessions;
pub mod auth;
pub mod bookings;
pub mod cards;
pub mod chargers;
pub mod charging;
pub mod history;
pub mod me;
pub mod notifications;
pub mod owner_chargers;
pub mod owner_sessions;
pub mod owner_stations;
pub mod payments;
pub mod queue;
pub mod reports;
pub mod session_view;
pub mod slot_monitoring;
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
        .service(notifications::list)
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
        .service(queue::join)
        .service(queue::leave)
        .service(queue::mine)
        .service(bookings::create)
        .service(bookings::list)
        .service(bookings::show)
        .service(bookings::check_in)
        .service(bookings::cancel)
        .service(bookings::checkin_code)
        .service(slot_monitoring::show)
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
        .service(owner_sessions::cancel)
        .service(reports::by_station);
}

/// `?limit&offset` for any list.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// Items per page, 1 to 100 (default 20).
    limit: Option<i64>,
    /// Items to skip (default 0).
    offset: Option<i64>,
}

impl Page {
    /// The checked limit and offset (see [`page`]).
    pub fn checked(&self, default: i64, max: i64) -> Result<(i64, i64), crate::http::error::ApiError> {
        page(self.limit, self.offset, default, max)
    }
}

/// Checks paging parameters: `limit` 1 to `max` (default `default`) and `offset` 0 or more.
pub fn page(
    limit: Option<i64>,
    offset: Option<i64>,
    default: i64,
    max: i64,
) -> Result<(i64, i64), crate::http::error::ApiError> {
    use crate::http::error::ApiError;
    let limit = limit.unwrap_or(default);
    if !(1..=max).contains(&limit) {
        return Err(ApiError::validation("limit", format!("limit is 1 to {max}.")));
    }
    let offset = offset.unwrap_or(0);
    if offset < 0 {
        return Err(ApiError::validation("offset", "offset cannot be negative."));
    }
    Ok((limit, offset))
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
