//! The signed-in user's own account: `GET /api/me`, `PATCH /api/me`, `PUT /api/me/pin`.

use actix_web::{HttpResponse, get, patch, put, web};
use chrono::{DateTime, Utc};
use kilowatt_actors::accounts;
use kilowatt_actors::store::models::User;
use kilowatt_actors::store::users::{self, InsertUserError, UserChanges};
use kilowatt_actors::store::{pool, tokens};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::nullable;
use crate::auth::{self, Auth};
use crate::http::error::ApiError;
use crate::http::openapi::{Envelope, ErrorEnvelope};
use crate::http::response;
use crate::state::AppState;

/// A user's profile as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    /// User ID.
    pub id: i64,
    /// Unique username.
    pub username: String,
    /// E.164 phone.
    pub phone: String,
    /// Email, if given.
    pub email: Option<String>,
    /// Display name, if given.
    pub name: Option<String>,
    /// `driver`, `owner` or `admin`.
    pub role: String,
    /// The OCPP idTag chargers know this driver by.
    pub id_tag: String,
    /// Vehicle battery size in kWh (used to estimate energy from battery levels).
    #[schema(value_type = String, example = "60")]
    pub vehicle_battery_kwh: Decimal,
    /// Email notifications wanted.
    pub notify_email: bool,
    /// SMS notifications wanted.
    pub notify_sms: bool,
    /// When the account was created.
    pub created_at: DateTime<Utc>,
}

impl From<&User> for Profile {
    fn from(user: &User) -> Self {
        Profile {
            id: user.id,
            username: user.username.clone(),
            phone: user.phone.clone(),
            email: user.email.clone(),
            name: user.name.clone(),
            role: user.role.clone(),
            id_tag: user.id_tag.clone(),
            vehicle_battery_kwh: (Decimal::from(user.vehicle_battery_wh) / Decimal::from(1000)).normalize(),
            notify_email: user.notify_email,
            notify_sms: user.notify_sms,
            created_at: user.created_at,
        }
    }
}

/// `GET /api/me`: the signed-in user's profile.
#[utoipa::path(
    tag = "account",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The profile", body = Envelope<Profile>),
        (status = 401, description = "Not signed in", body = ErrorEnvelope),
    )
)]
#[get("/api/me")]
pub async fn show(auth: Auth) -> HttpResponse {
    response::ok(Profile::from(&auth.user))
}

/// Profile changes; absent fields are left alone, `null` clears email or name.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProfileChanges {
    /// New phone (normalised to E.164; +91 when no country code).
    pub phone: Option<String>,
    /// New email, or `null` to remove it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub email: Option<Option<String>>,
    /// New display name, or `null` to remove it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub name: Option<Option<String>>,
    /// Vehicle battery size in kWh, 1 to 1000.
    #[schema(value_type = Option<f64>, example = 40.5)]
    pub vehicle_battery_kwh: Option<Decimal>,
    /// Email notifications wanted.
    pub notify_email: Option<bool>,
    /// SMS notifications wanted.
    pub notify_sms: Option<bool>,
}

/// `PATCH /api/me`: change contact details, name, vehicle battery or notification choices.
#[utoipa::path(
    tag = "account",
    security(("bearer" = [])),
    request_body = ProfileChanges,
    responses(
        (status = 200, description = "The updated profile", body = Envelope<Profile>),
        (status = 401, description = "Not signed in", body = ErrorEnvelope),
        (status = 409, description = "Phone or email taken by another account", body = ErrorEnvelope),
        (status = 422, description = "A field is invalid", body = ErrorEnvelope),
    )
)]
#[patch("/api/me")]
pub async fn update(
    auth: Auth,
    body: web::Json<ProfileChanges>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let user = update_profile(&state, auth.user.id, body.into_inner()).await?;
    Ok(response::ok(Profile::from(&user)))
}

/// Checks and saves profile changes: 422 naming the field that breaks a rule, 409 naming the
/// one already taken by another account. Shared by `PATCH /api/me` and the web profile page.
pub async fn update_profile(state: &AppState, user_id: i64, body: ProfileChanges) -> Result<User, ApiError> {
    let phone = body.phone.as_deref().map(accounts::normalize_phone).transpose().map_err(field_error)?;
    let email = match body.email {
        Some(Some(email)) => Some(clean_email(&email)?),
        Some(None) => Some(None),
        None => None,
    };
    let name = match body.name {
        Some(Some(name)) => Some(clean_name(&name)?),
        Some(None) => Some(None),
        None => None,
    };
    let vehicle_battery_wh = body.vehicle_battery_kwh.map(battery_wh).transpose()?;
    let changes = UserChanges {
        phone: phone.as_deref(),
        email: email.as_ref().map(Option::as_deref),
        name: name.as_ref().map(Option::as_deref),
        vehicle_battery_wh,
        notify_email: body.notify_email,
        notify_sms: body.notify_sms,
        updated_at: Some(state.clock.now()),
    };
    let mut conn = pool::connection(&state.pool).await?;
    let user = users::update(&mut conn, user_id, &changes).await.map_err(taken)?;
    tracing::info!(user_id = user.id, "profile updated");
    Ok(user)
}

/// A PIN change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PinChange {
    /// The PIN in use now.
    current_pin: String,
    /// The new PIN, 4 to 6 digits.
    new_pin: String,
}

/// What a PIN change did.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PinChanged {
    /// Other signed-in devices that were signed out.
    pub signed_out_elsewhere: usize,
}

/// `PUT /api/me/pin`: change the PIN; every other token of this user is revoked.
#[utoipa::path(
    tag = "account",
    security(("bearer" = [])),
    request_body = PinChange,
    responses(
        (status = 200, description = "Changed", body = Envelope<PinChanged>),
        (status = 401, description = "Not signed in", body = ErrorEnvelope),
        (status = 403, description = "The current PIN is wrong", body = ErrorEnvelope),
        (status = 422, description = "The new PIN is not 4 to 6 digits", body = ErrorEnvelope),
    )
)]
#[put("/api/me/pin")]
pub async fn change_pin(
    auth: Auth,
    body: web::Json<PinChange>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let PinChange { current_pin, new_pin } = body.into_inner();
    let signed_out_elsewhere = change_pin_for(&state, &auth, current_pin, new_pin).await?;
    Ok(response::ok(PinChanged { signed_out_elsewhere }))
}

/// Checks the current PIN and sets the new one (4 to 6 digits), then signs out every other
/// device of the user: all tokens but `auth`'s own. Answers how many were signed out. 422
/// naming `newPin` for a bad new PIN, 403 `wrong_pin` for a wrong current one. Shared by
/// `PUT /api/me/pin` and the web profile page (whose browser stays signed in).
pub async fn change_pin_for(
    state: &AppState,
    auth: &Auth,
    current_pin: String,
    new_pin: String,
) -> Result<usize, ApiError> {
    accounts::validate_pin(&new_pin).map_err(|e| ApiError::validation("newPin", e.message))?;
    if !auth::verify_pin(current_pin, auth.user.pin_hash.clone()).await? {
        return Err(ApiError::forbidden("The current PIN is wrong.").with_code("wrong_pin"));
    }
    let pin_hash = auth::hash_pin(new_pin).await?;
    let now = state.clock.now();
    let mut conn = pool::connection(&state.pool).await?;
    users::set_pin_hash(&mut conn, auth.user.id, &pin_hash, now).await?;
    let signed_out_elsewhere = tokens::revoke_others(&mut conn, auth.user.id, auth.token_id, now).await?;
    tracing::info!(user_id = auth.user.id, signed_out_elsewhere, "PIN changed");
    Ok(signed_out_elsewhere)
}

/// An account rule broken, as a 422 naming the field.
pub fn field_error(error: accounts::FieldError) -> ApiError {
    ApiError::validation(error.field, format!("{}: {}", error.field, error.message))
}

/// A unique field already taken, as a 409 naming it.
pub fn taken(error: InsertUserError) -> ApiError {
    match error {
        InsertUserError::Taken(field) => {
            ApiError::conflict(format!("{}_taken", snake(field)), format!("This {field} is already registered."))
                .with_field(field)
        }
        InsertUserError::Store(error) => error.into(),
    }
}

fn snake(field: &str) -> String {
    field
        .chars()
        .flat_map(|c| if c.is_ascii_uppercase() { vec!['_', c.to_ascii_lowercase()] } else { vec![c] })
        .collect()
}

/// Trims an email and checks its shape (something@something, at most 254 characters).
pub fn clean_email(email: &str) -> Result<Option<String>, ApiError> {
    let email = email.trim();
    if email.is_empty() {
        return Ok(None);
    }
    let valid = email.len() <= 254
        && !email.contains(char::is_whitespace)
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
        });
    if valid { Ok(Some(email.to_owned())) } else { Err(ApiError::validation("email", "This is not an email address.")) }
}

/// Trims a display name; at most 100 characters.
pub fn clean_name(name: &str) -> Result<Option<String>, ApiError> {
    let name = name.trim();
    match name.chars().count() {
        0 => Ok(None),
        1..=100 => Ok(Some(name.to_owned())),
        _ => Err(ApiError::validation("name", "A name is at most 100 characters.")),
    }
}

fn battery_wh(kwh: Decimal) -> Result<i64, ApiError> {
    let wh = (kwh * Decimal::from(1000)).round();
    let wh: i64 = wh.try_into().unwrap_or(0);
    if (1000..=1_000_000).contains(&wh) {
        Ok(wh)
    } else {
        Err(ApiError::validation("vehicleBatteryKwh", "A vehicle battery is between 1 and 1000 kWh."))
    }
}
