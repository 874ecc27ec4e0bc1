//! Kilowatt's concurrent core: the actors that outlive a request (registry, chargers,
//! sessions, queues, booking timers, browser sockets), the OCPP protocol they speak, and
//! the store they persist through. No HTTP routing lives here; see the `kilowatt` crate.

pub mod accounts;
pub mod billing;
pub mod booking;
pub mod browser;
pub mod bus;
#[cfg(test)]
mod busy_thread;
pub mod charger;
pub mod clock;
pub mod last_seen;
pub mod meter_writer;
pub mod notifier;
pub mod ocpp;
pub mod outbox;
pub mod queue;
pub mod registry;
pub mod reply;
pub mod runtime_probe;
pub mod session;
pub mod store;
