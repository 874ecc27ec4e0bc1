//! Configuration: one plain struct, loaded once at start-up from environment variables
//! (12-factor) over an optional TOML file (`--config`), over defaults. Every bad value stops
//! start-up with a message naming the variable and what it expects. Secrets are wrapped in
//! [`Secret`], whose `Debug` never shows them.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use rust_decimal::Decimal;

/// A configuration value that must never be logged.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether it is empty (not configured).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() { f.write_str("Secret(<unset>)") } else { f.write_str("Secret(***)") }
    }
}

/// A database URL; its password is a secret.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(Secret);

impl DatabaseUrl {
    /// The full URL, password included.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", redact_url(self.0.expose()))
    }
}

/// Hides the password in `scheme://user:password@host/...`.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else { return url.to_string() };
    let rest = &url[scheme_end..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => match rest[..at].find(':') {
            Some(colon) => format!("{}{}:***{}", &url[..scheme_end], &rest[..colon], &rest[at..]),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

/// What to do with a charge point ID nobody registered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnknownChargerPolicy {
    /// Register it, unassigned, and accept it.
    Accept,
    /// Register it and answer BootNotification with Pending until an owner claims it.
    Pending,
    /// Refuse the WebSocket handshake.
    Reject,
}

/// Log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Which payment provider recharges go through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PaymentProviderKind {
    /// A local confirm/decline page; the default, so a fresh install works end to end.
    Sandbox,
    /// PhonePe standard checkout.
    PhonePe,
}

/// Transport security for SMTP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain SMTP (a local relay or a test sink).
    None,
    /// STARTTLS upgrade.
    StartTls,
    /// Implicit TLS (SMTPS).
    Tls,
}

/// Which SMS provider sends text messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmsProviderKind {
    /// Writes messages to the log; the default.
    Log,
    /// POSTs to an HTTP API.
    Http,
}

/// SMTP settings; email is off while `host` is unset.
#[derive(Clone, Debug)]
pub struct SmtpConfig {
    /// Relay host (`KILOWATT_SMTP_HOST`).
    pub host: Option<String>,
    /// Relay port (`KILOWATT_SMTP_PORT`).
    pub port: u16,
    /// Login (`KILOWATT_SMTP_USERNAME`).
    pub username: Option<String>,
    /// Password (`KILOWATT_SMTP_PASSWORD`).
    pub password: Secret,
    /// Transport security (`KILOWATT_SMTP_TLS`).
    pub tls: SmtpTls,
    /// Sender address (`KILOWATT_EMAIL_FROM`).
    pub from: String,
}

/// SMS settings.
#[derive(Clone, Debug)]
pub struct SmsConfig {
    /// Provider (`KILOWATT_SMS_PROVIDER`).
    pub provider: SmsProviderKind,
    /// HTTP provider endpoint (`KILOWATT_SMS_URL`).
    pub url: Option<String>,
    /// HTTP provider key (`KILOWATT_SMS_API_KEY`).
    pub api_key: Secret,
}

/// PhonePe merchant settings.
#[derive(Clone, Debug)]
pub struct PhonePeConfig {
    /// Merchant ID (`KILOWATT_PHONEPE_MERCHANT_ID`).
    pub merchant_id: String,
    /// Salt key (`KILOWATT_PHONEPE_SALT_KEY`).
    pub salt_key: Secret,
    /// Salt index (`KILOWATT_PHONEPE_SALT_INDEX`).
    pub salt_index: u32,
    /// API base URL (`KILOWATT_PHONEPE_BASE_URL`).
    pub base_url: String,
}

/// Business rules an operator can tune.
#[derive(Clone, Debug)]
pub struct PolicyConfig {
    /// Smallest recharge in INR (`KILOWATT_MIN_RECHARGE`).
    pub min_recharge: Decimal,
    /// Largest recharge in INR (`KILOWATT_MAX_RECHARGE`).
    pub max_recharge: Decimal,
    /// Amounts offered as buttons (`KILOWATT_RECHARGE_PRESETS`, comma-separated).
    pub recharge_presets: Vec<Decimal>,
    /// Balance a driver needs to start charging (`KILOWATT_MIN_START_BALANCE`).
    pub min_start_balance: Decimal,
    /// Booking grace period (`KILOWATT_GRACE_PERIOD_MINUTES`).
    pub grace_period: Duration,
    /// How long a freed connector is held for the first queued driver (`KILOWATT_QUEUE_HOLD_MINUTES`).
    pub queue_hold: Duration,
    /// Booking fee when the station sets none (`KILOWATT_BOOKING_FEE`).
    pub booking_fee: Decimal,
    /// Cancelling at least this long before the slot refunds in full (`KILOWATT_BOOKING_REFUND_CUTOFF_MINUTES`).
    pub booking_refund_cutoff: Duration,
    /// A remote start the charger never confirms fails after this (`KILOWATT_START_TIMEOUT_SECONDS`).
    pub start_timeout: Duration,
    /// A session whose charger stays offline this long is closed (`KILOWATT_OFFLINE_SESSION_TIMEOUT_MINUTES`).
    pub offline_session_timeout: Duration,
    /// A session whose meter stops advancing this long is closed (`KILOWATT_METER_STALL_MINUTES`).
    pub meter_stall_timeout: Duration,
    /// Failed logins before an account is locked (`KILOWATT_LOGIN_MAX_FAILURES`).
    pub login_max_failures: u32,
    /// How long a locked account stays locked (`KILOWATT_LOGIN_LOCKOUT_MINUTES`).
    pub login_lockout: Duration,
    /// Lifetime of API tokens and web sessions (`KILOWATT_TOKEN_TTL_HOURS`).
    pub token_ttl: Duration,
}

/// OCPP behaviour.
#[derive(Clone, Debug)]
pub struct OcppConfig {
    /// Unknown charge point IDs (`KILOWATT_UNKNOWN_CHARGERS`: accept, pending or reject).
    pub unknown_chargers: UnknownChargerPolicy,
    /// Heartbeat interval told to chargers at boot (`KILOWATT_HEARTBEAT_INTERVAL_SECONDS`).
    pub heartbeat_interval: Duration,
    /// WebSocket ping interval; a peer silent for two intervals is dropped (`KILOWATT_WS_PING_INTERVAL_SECONDS`).
    pub ping_interval: Duration,
    /// How long a command waits for the charger's answer (`KILOWATT_OCPP_CALL_TIMEOUT_SECONDS`).
    pub call_timeout: Duration,
    /// Largest accepted frame; bigger ones close the socket with 1009 (`KILOWATT_OCPP_MAX_FRAME_BYTES`).
    pub max_frame_bytes: usize,
    /// How long the OCPP message log is kept (`KILOWATT_OCPP_LOG_RETENTION_DAYS`).
    pub message_log_retention: Duration,
    /// Actions whose CALLs and answers stay out of the OCPP message log
    /// (`KILOWATT_OCPP_UNLOGGED_ACTIONS`, comma-separated, `none` to log everything; default
    /// `Heartbeat,MeterValues`: a heartbeat causes no database write of its own, and meter
    /// values are stored, raw value included, in their own table). CALLERRORs are always logged.
    pub unlogged_actions: Vec<String>,
    /// How often chargers' last-seen times are written, in one statement
    /// (`KILOWATT_LAST_SEEN_FLUSH_SECONDS`).
    pub last_seen_flush: Duration,
    /// A session's running totals (energy, cost, power) are written with the first meter reading
    /// that moves them and then at most this often; every reading is stored, and settlement
    /// bills from the latest one (`KILOWATT_SESSION_TOTALS_SECONDS`, 0: at every reading).
    pub session_totals_every: Duration,
    /// CALLs one charger may send per second, sustained (`KILOWATT_OCPP_RATE_LIMIT_PER_SECOND`).
    pub rate_limit_per_second: u32,
    /// CALLs one charger may send at once above that (`KILOWATT_OCPP_RATE_LIMIT_BURST`).
    pub rate_limit_burst: u32,
    /// Bytes queued for a charger that does not read its socket before it is disconnected
    /// (`KILOWATT_OCPP_OUTBOX_HIGH_WATER_BYTES`).
    pub outbox_high_water_bytes: usize,
    /// Chargers served at once, on either listener, between the accept of their socket and the
    /// answer to their first CALL (a charger silent for 200 ms gives its place back); the rest
    /// of a connect storm waits its turn (`KILOWATT_OCPP_CONNECTING_LIMIT`).
    pub connecting_limit: usize,
}

/// Everything Kilowatt needs to run.
#[derive(Clone, Debug)]
pub struct Config {
    /// Web UI and JSON API listener (`KILOWATT_HTTP_ADDR`).
    pub http_addr: SocketAddr,
    /// OCPP listener (`KILOWATT_OCPP_ADDR`).
    pub ocpp_addr: SocketAddr,
    /// Base URL users reach this server at, for links and payment redirects (`KILOWATT_PUBLIC_URL`).
    pub public_url: String,
    /// PostgreSQL (`DATABASE_URL`).
    pub database_url: DatabaseUrl,
    /// Connection pool size (`KILOWATT_DB_POOL_SIZE`).
    pub db_pool_size: usize,
    /// Pool checkout / connect timeout (`KILOWATT_DB_TIMEOUT_MS`).
    pub db_timeout: Duration,
    /// Redis, for running several nodes (`REDIS_URL`, optional).
    pub redis_url: Option<DatabaseUrl>,
    /// Log filter (`KILOWATT_LOG`, tracing's env-filter syntax).
    pub log_filter: String,
    /// Log format (`KILOWATT_LOG_FORMAT`: text or json).
    pub log_format: LogFormat,
    /// HTTP worker threads (`KILOWATT_WORKERS`; 0 means one per core).
    pub workers: usize,
    /// Threads serving chargers' OCPP sockets (`KILOWATT_OCPP_WORKERS`; 0 means half the cores,
    /// at least one).
    pub ocpp_workers: usize,
    /// How long shutdown waits for in-flight work (`KILOWATT_SHUTDOWN_TIMEOUT_SECONDS`).
    pub shutdown_timeout: Duration,
    /// Key for signing QR check-in codes and CSRF tokens (`KILOWATT_SECRET_KEY`).
    pub secret_key: Secret,
    /// Support email shown on the help page (`KILOWATT_SUPPORT_EMAIL`).
    pub support_email: String,
    /// Attempts per channel before a notification gives up on it (`KILOWATT_NOTIFY_ATTEMPTS`).
    pub notify_attempts: u32,
    /// The wait after a notification's first failed attempt on a channel; each further wait
    /// doubles (`KILOWATT_NOTIFY_RETRY_SECONDS`).
    pub notify_first_retry: Duration,
    /// Support WhatsApp number shown on the help page (`KILOWATT_SUPPORT_WHATSAPP`).
    pub support_whatsapp: String,
    /// Payment provider (`KILOWATT_PAYMENT_PROVIDER`: sandbox or phonepe).
    pub payment_provider: PaymentProviderKind,
    /// PhonePe settings.
    pub phonepe: PhonePeConfig,
    /// Email.
    pub smtp: SmtpConfig,
    /// SMS.
    pub sms: SmsConfig,
    /// Business rules.
    pub policy: PolicyConfig,
    /// OCPP behaviour.
    pub ocpp: OcppConfig,
}

/// A configuration value that could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A variable holds a value of the wrong shape.
    #[error("{variable}={value:?} is invalid: expected {expected}")]
    Invalid {
        /// The variable's name.
        variable: String,
        /// What it held (redacted for secrets).
        value: String,
        /// What it should hold.
        expected: String,
    },
    /// The config file could not be read or parsed.
    #[error("config file {path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
}

/// Where values come from: the environment over the optional file.
struct Source {
    values: HashMap<String, String>,
}

/// The default database: a local PostgreSQL database named `kilowatt`.
pub const DEFAULT_DATABASE_URL: &str = "postgres://kilowatt:kilowatt@127.0.0.1:5432/kilowatt";

impl Source {
    fn raw(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str).filter(|v| !v.trim().is_empty())
    }

    fn string(&self, name: &str, default: &str) -> String {
        self.raw(name).unwrap_or(default).trim().to_string()
    }

    fn optional(&self, name: &str) -> Option<String> {
        self.raw(name).map(|v| v.trim().to_string())
    }

    fn parse<T: FromStr>(&self, name: &str, default: T, expected: &str) -> Result<T, ConfigError> {
        match self.raw(name) {
            None => Ok(default),
            Some(value) => value.trim().parse().map_err(|_| invalid(name, value, expected)),
        }
    }

    fn choice<T: Copy>(&self, name: &str, default: T, options: &[(&str, T)]) -> Result<T, ConfigError> {
        let Some(value) = self.raw(name) else { return Ok(default) };
        let wanted = value.trim().to_ascii_lowercase();
        options.iter().find(|(key, _)| *key == wanted).map(|(_, v)| *v).ok_or_else(|| {
            let names: Vec<&str> = options.iter().map(|(k, _)| *k).collect();
            invalid(name, value, &format!("one of {}", names.join(", ")))
        })
    }

    fn bounded(&self, name: &str, default: u64, min: u64, max: u64, unit: &str) -> Result<u64, ConfigError> {
        let expected = format!("a whole number of {unit} from {min} to {max}");
        let value = self.parse(name, default, &expected)?;
        if (min..=max).contains(&value) { Ok(value) } else { Err(invalid(name, &value.to_string(), &expected)) }
    }

    fn seconds(&self, name: &str, default: u64, min: u64, max: u64) -> Result<Duration, ConfigError> {
        Ok(Duration::from_secs(self.bounded(name, default, min, max, "seconds")?))
    }

    fn minutes(&self, name: &str, default: u64, min: u64, max: u64) -> Result<Duration, ConfigError> {
        Ok(Duration::from_secs(60 * self.bounded(name, default, min, max, "minutes")?))
    }

    fn money(&self, name: &str, default: Decimal) -> Result<Decimal, ConfigError> {
        let expected = "an amount in INR with at most 2 decimals, zero or more (e.g. 500 or 49.50)";
        let value = self.parse(name, default, expected)?;
        if value.is_sign_negative() || value.scale() > 2 {
            return Err(invalid(name, &value.to_string(), expected));
        }
        Ok(value)
    }

    fn socket_addr(&self, name: &str, default: &str) -> Result<SocketAddr, ConfigError> {
        let value = self.string(name, default);
        value.parse().map_err(|_| invalid(name, &value, "HOST:PORT with an IP address, e.g. 0.0.0.0:8000"))
    }

    fn url(&self, name: &str, default: Option<&str>, schemes: &[&str]) -> Result<Option<String>, ConfigError> {
        let Some(value) = self.optional(name).or(default.map(str::to_string)) else { return Ok(None) };
        let ok = schemes.iter().any(|scheme| {
            value.strip_prefix(scheme).and_then(|rest| rest.strip_prefix("://")).is_some_and(|rest| !rest.is_empty())
        });
        if ok {
            Ok(Some(value.trim_end_matches('/').to_string()))
        } else {
            Err(invalid(name, &redact_url(&value), &format!("a URL starting with {}://", schemes.join("://, "))))
        }
    }
}

/// Reads `KILOWATT_OCPP_UNLOGGED_ACTIONS`: OCPP action names (letters only), or `none`.
fn unlogged_actions(value: &str) -> Result<Vec<String>, ConfigError> {
    if value.eq_ignore_ascii_case("none") {
        return Ok(Vec::new());
    }
    let actions: Vec<String> = value.split(',').map(|a| a.trim().to_string()).filter(|a| !a.is_empty()).collect();
    if actions.iter().all(|a| a.bytes().all(|b| b.is_ascii_alphabetic())) {
        Ok(actions)
    } else {
        Err(invalid(
            "KILOWATT_OCPP_UNLOGGED_ACTIONS",
            value,
            "comma-separated OCPP actions such as Heartbeat,MeterValues, or none",
        ))
    }
}

fn invalid(variable: &str, value: &str, expected: &str) -> ConfigError {
    let value = if variable.contains("PASSWORD") || variable.contains("KEY") || variable.contains("SECRET") {
        "***".to_string()
    } else {
        value.to_string()
    };
    ConfigError::Invalid { variable: variable.to_string(), value, expected: expected.to_string() }
}

/// Reads a TOML config file whose keys are the variable names (`KILOWATT_HTTP_ADDR = "…"`,
/// `DATABASE_URL = "…"`), or the same names in lower case without the `KILOWATT_` prefix
/// (`http_addr = "…"`, `grace_period_minutes = 30`).
fn read_file(path: &Path) -> Result<HashMap<String, String>, ConfigError> {
    let file_error = |reason: String| ConfigError::File { path: path.display().to_string(), reason };
    let text = std::fs::read_to_string(path).map_err(|e| file_error(e.to_string()))?;
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| file_error(e.message().to_string()))?;
    let mut values = HashMap::new();
    for (key, value) in table {
        let text = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Array(items) => items
                .iter()
                .map(|item| match item {
                    toml::Value::String(s) => Ok(s.clone()),
                    toml::Value::Integer(i) => Ok(i.to_string()),
                    toml::Value::Float(f) => Ok(f.to_string()),
                    _ => Err(file_error(format!("{key}: list items must be strings or numbers"))),
                })
                .collect::<Result<Vec<_>, _>>()?
                .join(","),
            _ => return Err(file_error(format!("{key}: expected a string, number, boolean or list"))),
        };
        let name = key.to_ascii_uppercase();
        let name = match name.as_str() {
            "DATABASE_URL" | "REDIS_URL" => name,
            _ if name.starts_with("KILOWATT_") => name,
            _ => format!("KILOWATT_{name}"),
        };
        values.insert(name, text);
    }
    Ok(values)
}

impl Config {
    /// Loads from the process environment over the optional file.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::from_sources(file, std::env::vars())
    }

    /// Loads from the given variables over the optional file (tests pass their own).
    pub fn from_sources(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut values = match file {
            Some(path) => read_file(path)?,
            None => HashMap::new(),
        };
        values.extend(env);
        Self::from_source(&Source { values })
    }

    fn from_source(s: &Source) -> Result<Self, ConfigError> {
        let http_addr = s.socket_addr("KILOWATT_HTTP_ADDR", "0.0.0.0:8000")?;
        let default_public = format!("http://localhost:{}", http_addr.port());
        let public_url = s.url("KILOWATT_PUBLIC_URL", Some(&default_public), &["http", "https"])?.unwrap_or_default();
        let database_url =
            s.url("DATABASE_URL", Some(DEFAULT_DATABASE_URL), &["postgres", "postgresql"])?.unwrap_or_default();
        if let Err(e) = kilowatt_actors::store::database::DatabaseUrl::parse(&database_url) {
            return Err(invalid("DATABASE_URL", &redact_url(&database_url), &e.to_string()));
        }
        let presets_raw = s.string("KILOWATT_RECHARGE_PRESETS", "500,1000,2000,5000");
        let presets_expected = "a comma-separated list of INR amounts, e.g. 500,1000,2000";
        let recharge_presets = presets_raw
            .split(',')
            .map(|p| p.trim().parse::<Decimal>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| invalid("KILOWATT_RECHARGE_PRESETS", &presets_raw, presets_expected))?;
        let min_recharge = s.money("KILOWATT_MIN_RECHARGE", Decimal::from(500))?;
        let max_recharge = s.money("KILOWATT_MAX_RECHARGE", Decimal::from(100_000))?;
        if max_recharge < min_recharge {
            return Err(invalid(
                "KILOWATT_MAX_RECHARGE",
                &max_recharge.to_string(),
                &format!("an amount not below KILOWATT_MIN_RECHARGE ({min_recharge})"),
            ));
        }
        if recharge_presets.iter().any(|p| *p < min_recharge || *p > max_recharge) {
            return Err(invalid(
                "KILOWATT_RECHARGE_PRESETS",
                &presets_raw,
                "amounts between the minimum and maximum recharge",
            ));
        }
        let payment_provider = s.choice(
            "KILOWATT_PAYMENT_PROVIDER",
            PaymentProviderKind::Sandbox,
            &[("sandbox", PaymentProviderKind::Sandbox), ("phonepe", PaymentProviderKind::PhonePe)],
        )?;
        let phonepe = PhonePeConfig {
            merchant_id: s.string("KILOWATT_PHONEPE_MERCHANT_ID", ""),
            salt_key: Secret::new(s.string("KILOWATT_PHONEPE_SALT_KEY", "")),
            salt_index: s.bounded("KILOWATT_PHONEPE_SALT_INDEX", 1, 1, 1000, "")? as u32,
            base_url: s
                .url(
                    "KILOWATT_PHONEPE_BASE_URL",
                    Some("https://api-preprod.phonepe.com/apis/pg-sandbox"),
                    &["http", "https"],
                )?
                .unwrap_or_default(),
        };
        if payment_provider == PaymentProviderKind::PhonePe {
            if phonepe.merchant_id.is_empty() {
                return Err(invalid(
                    "KILOWATT_PHONEPE_MERCHANT_ID",
                    "",
                    "your PhonePe merchant ID (required with KILOWATT_PAYMENT_PROVIDER=phonepe)",
                ));
            }
            if phonepe.salt_key.is_empty() {
                return Err(invalid(
                    "KILOWATT_PHONEPE_SALT_KEY",
                    "",
                    "your PhonePe salt key (required with KILOWATT_PAYMENT_PROVIDER=phonepe)",
                ));
            }
        }
        let smtp = SmtpConfig {
            host: s.optional("KILOWATT_SMTP_HOST"),
            port: s.bounded("KILOWATT_SMTP_PORT", 587, 1, 65535, "")? as u16,
            username: s.optional("KILOWATT_SMTP_USERNAME"),
            password: Secret::new(s.string("KILOWATT_SMTP_PASSWORD", "")),
            tls: s.choice(
                "KILOWATT_SMTP_TLS",
                SmtpTls::StartTls,
                &[("none", SmtpTls::None), ("starttls", SmtpTls::StartTls), ("tls", SmtpTls::Tls)],
            )?,
            from: s.string("KILOWATT_EMAIL_FROM", "Kilowatt <no-reply@kilowatt.local>"),
        };
        let sms = SmsConfig {
            provider: s.choice(
                "KILOWATT_SMS_PROVIDER",
                SmsProviderKind::Log,
                &[("log", SmsProviderKind::Log), ("http", SmsProviderKind::Http)],
            )?,
            url: s.url("KILOWATT_SMS_URL", None, &["http", "https"])?,
            api_key: Secret::new(s.string("KILOWATT_SMS_API_KEY", "")),
        };
        if sms.provider == SmsProviderKind::Http && sms.url.is_none() {
            return Err(invalid(
                "KILOWATT_SMS_URL",
                "",
                "the SMS API endpoint (required with KILOWATT_SMS_PROVIDER=http)",
            ));
        }
        let secret_key = s.string("KILOWATT_SECRET_KEY", "");
        if !secret_key.is_empty() && secret_key.len() < 32 {
            return Err(invalid("KILOWATT_SECRET_KEY", "", "at least 32 characters of random text"));
        }
        Ok(Config {
            http_addr,
            ocpp_addr: s.socket_addr("KILOWATT_OCPP_ADDR", "0.0.0.0:9000")?,
            public_url,
            database_url: DatabaseUrl(Secret::new(database_url)),
            db_pool_size: s.bounded("KILOWATT_DB_POOL_SIZE", 16, 1, 1000, "connections")? as usize,
            db_timeout: Duration::from_millis(s.bounded(
                "KILOWATT_DB_TIMEOUT_MS",
                5000,
                100,
                600_000,
                "milliseconds",
            )?),
            redis_url: s
                .url("REDIS_URL", None, &["redis", "rediss", "redis+unix"])?
                .map(|u| DatabaseUrl(Secret::new(u))),
            log_filter: s.string("KILOWATT_LOG", "info"),
            log_format: s.choice(
                "KILOWATT_LOG_FORMAT",
                LogFormat::Text,
                &[("text", LogFormat::Text), ("json", LogFormat::Json)],
            )?,
            workers: s.bounded("KILOWATT_WORKERS", 0, 0, 256, "threads")? as usize,
            ocpp_workers: s.bounded("KILOWATT_OCPP_WORKERS", 0, 0, 256, "threads")? as usize,
            shutdown_timeout: s.seconds("KILOWATT_SHUTDOWN_TIMEOUT_SECONDS", 30, 0, 3600)?,
            secret_key: Secret::new(secret_key),
            support_email: s.string("KILOWATT_SUPPORT_EMAIL", "support@kilowatt.local"),
            notify_attempts: s.bounded("KILOWATT_NOTIFY_ATTEMPTS", 5, 1, 20, "attempts")? as u32,
            notify_first_retry: s.seconds("KILOWATT_NOTIFY_RETRY_SECONDS", 60, 1, 86_400)?,
            support_whatsapp: s.string("KILOWATT_SUPPORT_WHATSAPP", "+910000000000"),
            payment_provider,
            phonepe,
            smtp,
            sms,
            policy: PolicyConfig {
                min_recharge,
                max_recharge,
                recharge_presets,
                min_start_balance: s.money("KILOWATT_MIN_START_BALANCE", Decimal::from(100))?,
                grace_period: s.minutes("KILOWATT_GRACE_PERIOD_MINUTES", 30, 1, 24 * 60)?,
                queue_hold: s.minutes("KILOWATT_QUEUE_HOLD_MINUTES", 5, 1, 120)?,
                booking_fee: s.money("KILOWATT_BOOKING_FEE", Decimal::from(50))?,
                booking_refund_cutoff: s.minutes("KILOWATT_BOOKING_REFUND_CUTOFF_MINUTES", 60, 0, 7 * 24 * 60)?,
                start_timeout: s.seconds("KILOWATT_START_TIMEOUT_SECONDS", 90, 5, 3600)?,
                offline_session_timeout: s.minutes("KILOWATT_OFFLINE_SESSION_TIMEOUT_MINUTES", 60, 1, 7 * 24 * 60)?,
                meter_stall_timeout: s.minutes("KILOWATT_METER_STALL_MINUTES", 30, 1, 24 * 60)?,
                login_max_failures: s.bounded("KILOWATT_LOGIN_MAX_FAILURES", 5, 1, 100, "attempts")? as u32,
                login_lockout: s.minutes("KILOWATT_LOGIN_LOCKOUT_MINUTES", 15, 1, 24 * 60)?,
                token_ttl: Duration::from_secs(
                    3600 * s.bounded("KILOWATT_TOKEN_TTL_HOURS", 720, 1, 24 * 365, "hours")?,
                ),
            },
            ocpp: OcppConfig {
                unknown_chargers: s.choice(
                    "KILOWATT_UNKNOWN_CHARGERS",
                    UnknownChargerPolicy::Pending,
                    &[
                        ("accept", UnknownChargerPolicy::Accept),
                        ("pending", UnknownChargerPolicy::Pending),
                        ("reject", UnknownChargerPolicy::Reject),
                    ],
                )?,
                heartbeat_interval: s.seconds("KILOWATT_HEARTBEAT_INTERVAL_SECONDS", 300, 10, 86_400)?,
                ping_interval: s.seconds("KILOWATT_WS_PING_INTERVAL_SECONDS", 30, 1, 3600)?,
                call_timeout: s.seconds("KILOWATT_OCPP_CALL_TIMEOUT_SECONDS", 30, 1, 600)?,
                max_frame_bytes: s.bounded("KILOWATT_OCPP_MAX_FRAME_BYTES", 65_536, 1024, 16 * 1024 * 1024, "bytes")?
                    as usize,
                message_log_retention: Duration::from_secs(
                    86_400 * s.bounded("KILOWATT_OCPP_LOG_RETENTION_DAYS", 30, 1, 3650, "days")?,
                ),
                unlogged_actions: unlogged_actions(
                    &s.string("KILOWATT_OCPP_UNLOGGED_ACTIONS", "Heartbeat,MeterValues"),
                )?,
                last_seen_flush: s.seconds("KILOWATT_LAST_SEEN_FLUSH_SECONDS", 5, 1, 300)?,
                session_totals_every: s.seconds("KILOWATT_SESSION_TOTALS_SECONDS", 5, 0, 300)?,
                rate_limit_per_second: s.bounded("KILOWATT_OCPP_RATE_LIMIT_PER_SECOND", 20, 1, 100_000, "messages")?
                    as u32,
                rate_limit_burst: s.bounded("KILOWATT_OCPP_RATE_LIMIT_BURST", 100, 1, 1_000_000, "messages")? as u32,
                outbox_high_water_bytes: s.bounded(
                    "KILOWATT_OCPP_OUTBOX_HIGH_WATER_BYTES",
                    256 * 1024,
                    4 * 1024,
                    64 * 1024 * 1024,
                    "bytes",
                )? as usize,
                connecting_limit: s.bounded("KILOWATT_OCPP_CONNECTING_LIMIT", 512, 1, 1_000_000, "chargers")? as usize,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_sources(None, vars.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn defaults_match_the_documented_ones() {
        let config = load(&[]).expect("defaults are valid");
        assert_eq!(config.http_addr.to_string(), "0.0.0.0:8000");
        assert_eq!(config.ocpp_addr.to_string(), "0.0.0.0:9000");
        assert_eq!(config.database_url.expose(), DEFAULT_DATABASE_URL);
        assert_eq!(config.ocpp.unknown_chargers, UnknownChargerPolicy::Pending);
        assert_eq!(config.policy.grace_period, Duration::from_secs(30 * 60));
        assert_eq!(config.policy.min_recharge, Decimal::from(500));
        assert_eq!(config.payment_provider, PaymentProviderKind::Sandbox);
        assert!(config.redis_url.is_none());
    }

    #[test]
    fn bad_values_name_the_variable_and_what_it_expects() {
        let error = load(&[("KILOWATT_HTTP_ADDR", "localhost")]).expect_err("not an address");
        let message = error.to_string();
        assert!(message.contains("KILOWATT_HTTP_ADDR"), "{message}");
        assert!(message.contains("HOST:PORT"), "{message}");
        let error = load(&[("KILOWATT_GRACE_PERIOD_MINUTES", "0")]).expect_err("out of range");
        assert!(error.to_string().contains("KILOWATT_GRACE_PERIOD_MINUTES"));
        let error = load(&[("KILOWATT_UNKNOWN_CHARGERS", "maybe")]).expect_err("not a choice");
        assert!(error.to_string().contains("accept, pending, reject"));
        let error = load(&[("DATABASE_URL", "mysql://x/y")]).expect_err("not postgres");
        assert!(error.to_string().contains("DATABASE_URL"));
        let error = load(&[("KILOWATT_MIN_RECHARGE", "12.345")]).expect_err("too precise");
        assert!(error.to_string().contains("KILOWATT_MIN_RECHARGE"));
    }

    #[test]
    fn secrets_never_show_in_debug_or_errors() {
        let config = load(&[
            ("DATABASE_URL", "postgres://kw:hunter2@db:5432/kw"),
            ("KILOWATT_SMTP_PASSWORD", "smtp-pass-xyz"),
            ("KILOWATT_PHONEPE_SALT_KEY", "salt-key-xyz"),
            ("KILOWATT_SECRET_KEY", "0123456789abcdef0123456789abcdef-secret"),
        ])
        .expect("valid");
        let debug = format!("{config:?}");
        for secret in ["hunter2", "smtp-pass-xyz", "salt-key-xyz", "abcdef-secret"] {
            assert!(!debug.contains(secret), "{secret} leaked in {debug}");
        }
        assert!(debug.contains("postgres://kw:***@db:5432/kw"));
        let error = load(&[("KILOWATT_SECRET_KEY", "short-secret")]).expect_err("too short");
        assert!(!error.to_string().contains("short-secret"));
    }

    #[test]
    fn environment_overrides_the_file() {
        let dir = std::env::temp_dir().join(format!("kw-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("kilowatt.toml");
        std::fs::write(
            &path,
            "KILOWATT_HTTP_ADDR = \"127.0.0.1:8100\"\ngrace_period_minutes = 10\nrecharge_presets = [500, 1000]\n",
        )
        .expect("write");
        let config =
            Config::from_sources(Some(&path), [("KILOWATT_HTTP_ADDR".to_string(), "127.0.0.1:8200".to_string())])
                .expect("valid");
        assert_eq!(config.http_addr.to_string(), "127.0.0.1:8200");
        assert_eq!(config.policy.grace_period, Duration::from_secs(600));
        assert_eq!(config.policy.recharge_presets, vec![Decimal::from(500), Decimal::from(1000)]);
        std::fs::write(&path, "KILOWATT_HTTP_ADDR = [").expect("write");
        assert!(matches!(Config::from_sources(Some(&path), []), Err(ConfigError::File { .. })));
    }
}
