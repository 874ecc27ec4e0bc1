//! The command line: `kilowatt [--config FILE] [serve | migrate | user create … | simulate … | demo … | bench …]`.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Kilowatt: a central system for EV charging networks (OCPP 1.6J, wallets, sessions,
/// queues and bookings).
#[derive(Debug, Parser)]
#[command(name = "kilowatt", version, about)]
pub struct Cli {
    /// A TOML file of settings; environment variables override it.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the database if needed, apply migrations and run the server (the default).
    Serve,
    /// Create the database if needed and apply migrations, then exit.
    Migrate,
    /// Manage accounts.
    User {
        /// The user action.
        #[command(subcommand)]
        action: UserCommand,
    },
    /// Run simulated OCPP 1.6J chargers against a central system (for testing and load).
    Simulate(crate::simulator::SimulateArgs),
    /// Start the server with demo accounts, stations and simulated chargers.
    Demo(crate::demo::DemoArgs),
    /// Load benchmark: start Kilowatt on a fresh database and drive it with simulated chargers
    /// through the hold, storm, heartbeat, meter, mixed and restart scenarios (run it from a
    /// release build).
    Bench(crate::bench::BenchArgs),
}

/// `kilowatt user …`
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account (for example the operator's first admin).
    Create {
        /// Unique username (3–32 letters, digits, `_`, `.`, `-`).
        #[arg(long)]
        username: String,
        /// Phone number; +91 is assumed when there is no country code.
        #[arg(long)]
        phone: String,
        /// PIN of 4 to 6 digits.
        #[arg(long)]
        pin: String,
        /// Role.
        #[arg(long, value_enum, default_value_t = RoleArg::Driver)]
        role: RoleArg,
        /// Email address.
        #[arg(long)]
        email: Option<String>,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
    },
}

/// Roles on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RoleArg {
    /// A driver.
    Driver,
    /// A station owner.
    Owner,
    /// An operator with every right.
    Admin,
}

impl From<RoleArg> for kilowatt_actors::accounts::Role {
    fn from(role: RoleArg) -> Self {
        match role {
            RoleArg::Driver => Self::Driver,
            RoleArg::Owner => Self::Owner,
            RoleArg::Admin => Self::Admin,
        }
    }
}
