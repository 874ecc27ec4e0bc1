//! `kilowatt demo`: a live network in one command. Starts the server, makes sure the demo
//! accounts, stations and chargers exist (creating whatever is missing, so it can run again on
//! the same database), connects simulated chargers over real sockets, prints where to look and
//! how to log in, and stops everything on Ctrl-C.

use std::time::Duration;

use chrono::Utc;
use diesel_async::AsyncConnection as _;
use kilowatt_actors::accounts::{self, Role};
use kilowatt_actors::clock::Clock;
use kilowatt_actors::store::chargers::{self, AddChargerError, NewCharger};
use kilowatt_actors::store::stations::{self, NewStation};
use kilowatt_actors::store::users::{self, NewUser, User};
use kilowatt_actors::store::wallets::{self, Entry};
use kilowatt_actors::store::{AsyncPgConnection, StoreError, pool};
use rust_decimal::Decimal;

use crate::config::Config;
use crate::server;
use crate::simulator::{self, Scenario};

/// PIN of every demo account.
pub const DEMO_PIN: &str = "1234";
/// The demo station owner's username.
pub const DEMO_OWNER: &str = "demo-owner";
/// The demo driver's username.
pub const DEMO_DRIVER: &str = "demo-driver";
/// Charge point IDs of the demo chargers start with this.
pub const CHARGER_PREFIX: &str = "DEMO-";

/// The demo driver's wallet is topped up to this when it holds less than [`LOW_BALANCE`].
const FUNDED_BALANCE: i64 = 5_000;
const LOW_BALANCE: i64 = 1_000;

/// `kilowatt demo …`
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// How many simulated chargers (split between the two demo stations).
    #[arg(long, default_value_t = 6)]
    pub chargers: usize,
}

/// A demo station: name, address, latitude, longitude, price per kWh in paise.
struct StationSeed {
    name: &'static str,
    address: &'static str,
    latitude: Decimal,
    longitude: Decimal,
    price: Decimal,
}

fn station_seeds() -> [StationSeed; 2] {
    [
        StationSeed {
            name: "Koramangala Hub",
            address: "80 Feet Road, Koramangala 4th Block, Bengaluru",
            latitude: Decimal::new(129_352, 4),
            longitude: Decimal::new(776_245, 4),
            price: Decimal::new(1850, 2),
        },
        StationSeed {
            name: "Indiranagar Fast",
            address: "100 Feet Road, Indiranagar, Bengaluru",
            latitude: Decimal::new(129_784, 4),
            longitude: Decimal::new(776_408, 4),
            price: Decimal::new(2200, 2),
        },
    ]
}

/// Runs the demo until Ctrl-C or SIGTERM.
pub async fn run(config: Config, args: DemoArgs) -> Result<(), String> {
    if !(1..=500).contains(&args.chargers) {
        return Err("--chargers must be between 1 and 500".to_owned());
    }
    let running = server::start(config.clone(), Clock::system()).await.map_err(|e| e.to_string())?;
    let seeded = {
        let mut conn = pool::connection(&running.state.pool).await.map_err(|e| e.to_string())?;
        seed(&mut conn, args.chargers).await
    };
    let fleet_tags = match seeded {
        Ok(tags) => tags,
        Err(error) => {
            running.stop().await;
            return Err(format!("cannot create the demo data: {error}"));
        }
    };
    let ocpp_host = if running.ocpp_addr.ip().is_unspecified() {
        format!("127.0.0.1:{}", running.ocpp_addr.port())
    } else {
        running.ocpp_addr.to_string()
    };
    let mut sim = simulator::Config::new(format!("ws://{ocpp_host}"), args.chargers);
    sim.id_prefix = CHARGER_PREFIX.to_owned();
    sim.scenario = Scenario::Mixed;
    sim.id_tags = fleet_tags;
    sim.meter_interval = Duration::from_secs(10);
    sim.session_gap = Duration::from_secs(30);
    sim.fault_rate = 0.5;
    sim.reconnect_rate = 0.5;
    sim.ramp = 0.0;
    sim.progress = true;
    sim.seed = Utc::now().timestamp_millis().unsigned_abs();
    let first = sim.charge_point_id(0);
    let last = sim.charge_point_id(args.chargers - 1);
    print_banner(&config, &format!("ws://{ocpp_host}"), &first, &last);

    let summary = simulator::run_until(sim, wait_for_signal()).await;
    running.stop().await;
    let summary = summary?;
    #[allow(clippy::print_stdout)] // The demo's report is its output.
    {
        println!("{summary}");
    }
    Ok(())
}

#[allow(clippy::print_stdout)] // What to open and how to log in is the demo's output.
fn print_banner(config: &Config, ocpp_url: &str, first: &str, last: &str) {
    println!();
    println!("Kilowatt demo is running.");
    println!("  web UI and API   {}", config.public_url);
    println!("  OCPP             {ocpp_url}/{{chargePointId}}   (simulated chargers {first} … {last})");
    println!("  owner login      {DEMO_OWNER} / PIN {DEMO_PIN}   (stations Koramangala Hub, Indiranagar Fast)");
    println!("  driver login     {DEMO_DRIVER} / PIN {DEMO_PIN}   (wallet funded)");
    println!("  Ctrl-C stops the chargers and the server.");
    println!();
}

async fn wait_for_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}

/// Creates whatever of the demo data is missing; answers the idTags of the fleet drivers whose
/// cars the simulated chargers charge.
async fn seed(conn: &mut AsyncPgConnection, charger_count: usize) -> Result<Vec<String>, String> {
    let owner = ensure_user(conn, DEMO_OWNER, "+919999900001", Role::Owner, "Demo Owner").await?;
    let driver = ensure_user(conn, DEMO_DRIVER, "+919999900002", Role::Driver, "Demo Driver").await?;
    fund(conn, driver.id).await.map_err(|e| e.to_string())?;
    // A driver per charging charger and one spare, for the simulated cars: their sessions are
    // billed like anyone's, and the demo driver's own idTag stays free for the newcomer.
    let naming = simulator::Config {
        id_prefix: CHARGER_PREFIX.to_owned(),
        scenario: Scenario::Mixed,
        ..simulator::Config::new("", charger_count)
    };
    let fleet_size = (0..charger_count).filter(|&i| naming.charges(i)).count() + 1;
    let mut fleet_tags = Vec::with_capacity(fleet_size);
    for n in 1..=fleet_size {
        let username = format!("demo-fleet-{n}");
        let phone = format!("+9199998{n:05}");
        let user = ensure_user(conn, &username, &phone, Role::Driver, &format!("Fleet car {n}")).await?;
        fund(conn, user.id).await.map_err(|e| e.to_string())?;
        fleet_tags.push(user.id_tag);
    }

    let now = Utc::now();
    let existing = stations::list_owned(conn, Some(owner.id)).await.map_err(|e| e.to_string())?;
    let mut station_ids = Vec::new();
    for seed in station_seeds() {
        let id = match existing.iter().find(|s| s.name == seed.name) {
            Some(station) => station.id,
            None => {
                let new = NewStation {
                    owner_id: owner.id,
                    name: seed.name,
                    address: seed.address,
                    latitude: Some(seed.latitude),
                    longitude: Some(seed.longitude),
                    price_per_kwh: seed.price,
                    booking_fee: None,
                    opening_hours: Some("Open 24 hours"),
                    created_at: now,
                    updated_at: now,
                };
                stations::create(conn, &new).await.map_err(|e| e.to_string())?.id
            }
        };
        station_ids.push(id);
    }

    for index in 0..charger_count {
        // First half at the first station, the rest at the second.
        let station_id = station_ids[usize::from(index >= charger_count.div_ceil(2))];
        let new = NewCharger {
            charge_point_id: naming.charge_point_id(index),
            station_id,
            password_hash: None,
            connectors: i32::from(naming.connectors),
        };
        match chargers::add_or_claim(conn, &new, now).await {
            Ok(_) | Err(AddChargerError::Exists(_)) => {}
            Err(AddChargerError::Store(error)) => return Err(error.to_string()),
        }
    }
    tracing::info!(chargers = charger_count, fleet = fleet_size, "demo data ready");
    Ok(fleet_tags)
}

/// The user with this username, created (PIN [`DEMO_PIN`]) if missing.
async fn ensure_user(
    conn: &mut AsyncPgConnection,
    username: &str,
    phone: &str,
    role: Role,
    name: &str,
) -> Result<User, String> {
    if let Some(user) = users::find_by_login(conn, username, None).await.map_err(|e| e.to_string())? {
        return Ok(user);
    }
    let pin_hash = accounts::hash_pin(DEMO_PIN).map_err(|e| format!("cannot hash PIN: {e}"))?;
    let new_user = NewUser {
        username,
        phone,
        email: None,
        name: Some(name),
        role: role.as_str(),
        pin_hash: &pin_hash,
        id_tag: &accounts::generate_id_tag(),
    };
    users::insert(conn, &new_user).await.map_err(|e| format!("cannot create {username}: {e}"))
}

/// Tops the wallet up to [`FUNDED_BALANCE`] with a "Demo credit" ledger entry when it holds
/// less than [`LOW_BALANCE`].
async fn fund(conn: &mut AsyncPgConnection, user_id: i64) -> Result<(), StoreError> {
    let balance = wallets::balance(conn, user_id).await?.unwrap_or_default();
    if balance >= Decimal::from(LOW_BALANCE) {
        return Ok(());
    }
    let entry = Entry {
        user_id,
        amount: Decimal::from(FUNDED_BALANCE) - balance,
        kind: "adjustment",
        description: "Demo credit",
        reference_kind: "manual",
        // Manual entries reference nothing; the time keeps each one's key unique.
        reference_id: Utc::now().timestamp_micros(),
    };
    conn.transaction::<_, StoreError, _>(async |conn| wallets::apply(conn, &entry).await.map(drop)).await
}
