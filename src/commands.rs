//! Commands run from the command line: `migrate`, `user create`, `simulate` and `bench`.

use diesel_async::AsyncConnection;
use kilowatt_actors::accounts::{self, Role};
use kilowatt_actors::store::AsyncPgConnection;
use kilowatt_actors::store::database;
use kilowatt_actors::store::users::{self, NewUser};

use crate::config::Config;

/// Creates the database if needed and applies pending migrations.
pub async fn migrate(config: &Config) -> Result<(), String> {
    let applied = database::prepare(config.database_url.expose()).await.map_err(|e| e.to_string())?;
    if applied.is_empty() {
        tracing::info!("database is up to date");
    } else {
        tracing::info!(migrations = ?applied, "applied migrations");
    }
    Ok(())
}

/// What `kilowatt user create` was given.
#[derive(Debug)]
pub struct NewUserArgs {
    /// Username.
    pub username: String,
    /// Phone number as typed.
    pub phone: String,
    /// PIN.
    pub pin: String,
    /// Role.
    pub role: Role,
    /// Email.
    pub email: Option<String>,
    /// Display name.
    pub name: Option<String>,
}

/// Validates and creates an account (with its wallet), migrating the database first.
pub async fn create_user(config: &Config, args: NewUserArgs) -> Result<(), String> {
    let username = accounts::validate_username(&args.username).map_err(|e| e.to_string())?;
    let phone = accounts::normalize_phone(&args.phone).map_err(|e| e.to_string())?;
    accounts::validate_pin(&args.pin).map_err(|e| e.to_string())?;
    let pin_hash = accounts::hash_pin(&args.pin).map_err(|e| format!("cannot hash PIN: {e}"))?;
    database::prepare(config.database_url.expose()).await.map_err(|e| e.to_string())?;
    let mut conn = AsyncPgConnection::establish(config.database_url.expose()).await.map_err(|e| e.to_string())?;
    let new_user = NewUser {
        username: &username,
        phone: &phone,
        email: args.email.as_deref().map(str::trim).filter(|e| !e.is_empty()),
        name: args.name.as_deref().map(str::trim).filter(|n| !n.is_empty()),
        role: args.role.as_str(),
        pin_hash: &pin_hash,
        id_tag: &accounts::generate_id_tag(),
    };
    match users::insert(&mut conn, &new_user).await {
        Ok(user) => {
            tracing::info!(user_id = user.id, username = %user.username, role = %user.role, "user created");
            Ok(())
        }
        Err(users::InsertUserError::Taken(field)) => Err(format!("{field} is already taken")),
        Err(users::InsertUserError::Store(e)) => Err(e.to_string()),
    }
}

/// Runs simulated chargers until `--duration` has passed or Ctrl-C, then prints the summary.
pub async fn simulate(args: crate::simulator::SimulateArgs) -> Result<(), String> {
    let config = args.into_config()?;
    tracing::info!(url = %config.url, chargers = config.chargers, scenario = ?config.scenario, "starting simulated chargers");
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let summary = crate::simulator::run_until(config, stop).await?;
    #[allow(clippy::print_stdout)] // The summary is the command's output.
    {
        println!("{summary}");
    }
    Ok(())
}

/// Runs the load benchmark and prints its table; fails with `--fail-on-miss` when a figure is
/// missed.
pub async fn bench(args: crate::bench::BenchArgs) -> Result<(), String> {
    let fail_on_miss = args.fail_on_miss;
    let report = crate::bench::run(args).await?;
    #[allow(clippy::print_stdout)] // The table is the command's output.
    {
        println!("{}", report.table());
    }
    if fail_on_miss && !report.passed {
        return Err("some figures were missed".to_owned());
    }
    Ok(())
}
