//! Sign-up, sign-in and sign-out: `POST /api/auth/register`, `/login`, `/logout`. Failed
//! sign-ins are throttled per account (a lock after too many wrong PINs) and per client
//! address, because a PIN has only 10,000 to 1,000,000 values.

use std::sync::OnceLock;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, post, web};
use chrono::{DateTime, Utc};
use kilowatt_actors::accounts::{self, Role};
use kilowatt_actors::store::models::{NewUser, User};
use kilowatt_actors::store::users::{self, InsertUserError};
use kilowatt_actors::store::{logins, pool, tokens};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::me::{Profile, clean_email, clean_name, field_error, taken};
use crate::auth::{self, Auth};
use crate::http::error::ApiError;
use crate::http::openapi::{Empty, Envelope, ErrorEnvelope};
use crate::http::response;
use crate::state::AppState;

/// A new account.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Registration {
    /// 3 to 32 letters, digits, `_`, `.` or `-`; unique (any case).
    #[schema(example = "asha")]
    username: String,
    /// Phone number; without a country code it is taken as Indian (+91). Unique.
    #[schema(example = "98765 43210")]
    phone: String,
    /// 4 to 6 digits.
    #[schema(example = "4321")]
    pin: String,
    /// Optional email, for receipts and notifications.
    email: Option<String>,
    /// Optional display name.
    name: Option<String>,
    /// `driver` (the default) or `owner`.
    #[schema(example = "driver")]
    role: Option<String>,
}

/// A signed-in user and their token.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    /// The profile.
    pub user: Profile,
    /// Send as `Authorization: Bearer <token>`. Shown once.
    pub token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// When the token stops working.
    pub expires_at: DateTime<Utc>,
}

/// `POST /api/auth/register`: create a driver or owner account and sign in.
#[utoipa::path(
    tag = "account",
    request_body = Registration,
    responses(
        (status = 201, description = "Registered and signed in", body = Envelope<Session>),
        (status = 409, description = "Username, phone or email already registered", body = ErrorEnvelope),
        (status = 422, description = "A field is invalid", body = ErrorEnvelope),
    )
)]
#[post("/api/auth/register")]
pub async fn register(body: web::Json<Registration>, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let account = NewAccount {
        username: &body.username,
        phone: &body.phone,
        pin: body.pin,
        email: body.email.as_deref(),
        name: body.name.as_deref(),
        role: body.role.as_deref(),
    };
    let user = create_account(&state, account).await?;
    let (token, expires_at) = auth::issue_api_token(&state, user.id).await?;
    Ok(response::created(Session { user: Profile::from(&user), token, token_type: "Bearer", expires_at }))
}

/// A new account as typed, from the JSON API or the web sign-up form.
#[derive(Debug)]
pub struct NewAccount<'a> {
    /// The username.
    pub username: &'a str,
    /// The phone number, before normalisation.
    pub phone: &'a str,
    /// The PIN.
    pub pin: String,
    /// Optional email (blank is none).
    pub email: Option<&'a str>,
    /// Optional display name (blank is none).
    pub name: Option<&'a str>,
    /// `driver` (the default when absent) or `owner`.
    pub role: Option<&'a str>,
}

/// Validates a new account and stores it: 422 naming the first bad field, 409 naming a taken
/// one. Shared by `POST /api/auth/register` and the web sign-up page.
pub async fn create_account(state: &AppState, account: NewAccount<'_>) -> Result<User, ApiError> {
    let username = accounts::validate_username(account.username).map_err(field_error)?;
    let phone = accounts::normalize_phone(account.phone).map_err(field_error)?;
    accounts::validate_pin(&account.pin).map_err(field_error)?;
    let email = account.email.map(clean_email).transpose()?.flatten();
    let name = account.name.map(clean_name).transpose()?.flatten();
    let role = match account.role.map(str::trim) {
        None | Some("driver") => Role::Driver,
        Some("owner") => Role::Owner,
        Some(_) => return Err(ApiError::validation("role", "Choose driver or owner.")),
    };
    let pin_hash = auth::hash_pin(account.pin).await?;
    let mut conn = pool::connection(&state.pool).await?;
    let mut attempts = 0;
    let user = loop {
        let id_tag = accounts::generate_id_tag();
        let new_user = NewUser {
            username: &username,
            phone: &phone,
            email: email.as_deref(),
            name: name.as_deref(),
            role: role.as_str(),
            pin_hash: &pin_hash,
            id_tag: &id_tag,
        };
        match users::insert(&mut conn, &new_user).await {
            // 32^10 idTags: a clash is rare, but never the driver's problem.
            Err(InsertUserError::Taken("idTag")) if attempts < 3 => attempts += 1,
            result => break result.map_err(taken)?,
        }
    };
    tracing::info!(user_id = user.id, username = %user.username, role = %user.role, "registered");
    Ok(user)
}

/// Credentials.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Credentials {
    /// Username or phone number.
    #[schema(example = "asha")]
    login: String,
    /// The PIN.
    #[schema(example = "4321")]
    pin: String,
}

/// `POST /api/auth/login`: sign in with username or phone and PIN.
#[utoipa::path(
    tag = "account",
    request_body = Credentials,
    responses(
        (status = 200, description = "Signed in", body = Envelope<Session>),
        (status = 401, description = "Wrong login or PIN", body = ErrorEnvelope),
        (status = 429, description = "Too many failures: the account or this address must wait (see Retry-After)", body = ErrorEnvelope),
    )
)]
#[post("/api/auth/login")]
pub async fn login(
    req: HttpRequest,
    body: web::Json<Credentials>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let Credentials { login, pin } = body.into_inner();
    let user = check_credentials(&state, &login, pin, &client_addr(&req)).await?;
    let (token, expires_at) = auth::issue_api_token(&state, user.id).await?;
    tracing::info!(user_id = user.id, "signed in");
    Ok(response::ok(Session { user: Profile::from(&user), token, token_type: "Bearer", expires_at }))
}

/// The client's address as sign-in throttling counts it.
pub fn client_addr(req: &HttpRequest) -> String {
    req.peer_addr().map_or_else(|| "unknown".to_owned(), |addr| addr.ip().to_string())
}

/// Checks a login (username or phone) and PIN, with the throttling per account and per client
/// address: the user, or 401 (wrong), 429 (locked, with Retry-After). Every attempt is
/// recorded. Shared by `POST /api/auth/login` and the web sign-in page.
pub async fn check_credentials(
    state: &AppState,
    login_name: &str,
    pin: String,
    client_addr: &str,
) -> Result<User, ApiError> {
    let login_id = login_name.trim();
    let policy = &state.config.policy;
    let lockout = chrono::Duration::from_std(policy.login_lockout).unwrap_or(chrono::Duration::minutes(15));
    let now = state.clock.now();

    let mut conn = pool::connection(&state.pool).await?;
    // An address may fail for several accounts before it, too, has to wait.
    let address_limit = i64::from(policy.login_max_failures) * 4;
    if logins::failures_from(&mut conn, client_addr, now - lockout).await? >= address_limit {
        tracing::warn!(%client_addr, "login refused: too many failures from this address");
        return Err(locked("too_many_attempts", "Too many failed sign-ins from this network.", lockout));
    }
    let phone = accounts::normalize_phone(login_id).ok();
    let user = users::find_by_login(&mut conn, login_id, phone.as_deref()).await?;
    let Some(user) = user else {
        // Spend the same time as a real check, so timing does not reveal who has an account.
        auth::verify_pin(pin, dummy_hash().to_owned()).await?;
        logins::record_attempt(&mut conn, login_id, client_addr, false, now).await?;
        return Err(wrong_credentials());
    };
    if let Some(until) = user.locked_until.filter(|until| *until > now) {
        logins::record_attempt(&mut conn, login_id, client_addr, false, now).await?;
        return Err(locked("account_locked", "Too many wrong PINs: this account is locked.", until - now));
    }
    drop(conn);
    let valid = auth::verify_pin(pin, user.pin_hash.clone()).await?;
    let mut conn = pool::connection(&state.pool).await?;
    logins::record_attempt(&mut conn, login_id, client_addr, valid, now).await?;
    if !valid {
        let lock = logins::register_failure(&mut conn, user.id, policy.login_max_failures, now + lockout).await?;
        tracing::warn!(user_id = user.id, %client_addr, locked = lock.is_some(), "wrong PIN");
        return Err(match lock {
            Some(_) => locked("account_locked", "Too many wrong PINs: this account is locked.", lockout),
            None => wrong_credentials(),
        });
    }
    logins::register_success(&mut conn, user.id).await?;
    Ok(user)
}

/// `POST /api/auth/logout`: revoke the token this request carries.
#[utoipa::path(
    tag = "account",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Signed out; the token no longer works", body = Envelope<Empty>),
        (status = 401, description = "Not signed in", body = ErrorEnvelope),
    )
)]
#[post("/api/auth/logout")]
pub async fn logout(auth: Auth, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let mut conn = pool::connection(&state.pool).await?;
    tokens::revoke(&mut conn, auth.token_id, state.clock.now()).await?;
    tracing::info!(user_id = auth.user.id, "signed out");
    Ok(response::ok(Empty {}))
}

fn wrong_credentials() -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "invalid_credentials", "Wrong username, phone or PIN.")
}

fn locked(code: &'static str, reason: &str, wait: chrono::Duration) -> ApiError {
    let minutes = (wait.num_seconds() + 59) / 60;
    let plural = if minutes == 1 { "" } else { "s" };
    ApiError::new(StatusCode::TOO_MANY_REQUESTS, code, format!("{reason} Try again in {minutes} minute{plural}."))
        .with_retry_after(wait.num_seconds().max(1) as u64)
}

/// A real Argon2 hash of nothing anyone knows, to verify against for unknown logins.
fn dummy_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| accounts::hash_pin("000000").unwrap_or_default())
}
