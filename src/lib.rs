//! Kilowatt's edge: configuration, the HTTP routes (JSON API, pages, WebSocket upgrades),
//! errors, metrics, the server lifecycle and the command line. The concurrent core lives in
//! the `kilowatt-actors` crate.

pub mod auth;
pub mod bench;
pub mod cli;
pub mod commands;
pub mod config;
pub mod demo;
pub mod http;
pub mod limits;
pub mod metrics;
pub mod payments;
pub mod server;
pub mod simulator;
pub mod state;
pub mod telemetry;
