//! What every handler can reach: configuration, the pool, the registry and the clock.

use std::sync::Arc;

use actix::Addr;
use kilowatt_actors::bus::Bus;
use kilowatt_actors::charger::ChargerEnv;
use kilowatt_actors::clock::Clock;
use kilowatt_actors::notifier::Notifier;
use kilowatt_actors::registry::Registry;
use kilowatt_actors::store::DbPool;

use crate::config::Config;
use crate::http::admission::Admission;

/// Shared application state, handed to handlers as `web::Data<AppState>`.
#[derive(Clone)]
pub struct AppState {
    /// The configuration loaded at start-up.
    pub config: Arc<Config>,
    /// The database pool.
    pub pool: DbPool,
    /// The registry of live actors.
    pub registry: Addr<Registry>,
    /// Where time comes from.
    pub clock: Clock,
    /// Live updates.
    pub bus: Bus,
    /// What every charger connection shares.
    pub chargers: Arc<ChargerEnv>,
    /// Email and SMS to drivers.
    pub notifier: Addr<Notifier>,
    /// The booking timers' supervisor (tell it about new, checked-in and cancelled bookings).
    pub bookings: Addr<kilowatt_actors::booking::BookingTimers>,
    /// The places of chargers connecting at once, on either listener.
    pub admission: Admission,
}
