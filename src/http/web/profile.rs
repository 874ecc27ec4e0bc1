//! The driver's profile page: `GET /profile` shows the account (username, role, the idTag
//! chargers know them by) and a form for name, email, phone, vehicle battery and notification
//! choices (`POST /profile`, the same rules as `PATCH /api/me`); `POST /profile/pin` changes the
//! PIN as `PUT /api/me/pin` does, signing out every other device but keeping this browser in.

use std::str::FromStr;

use actix_web::ResponseError;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use rust_decimal::Decimal;
use serde::Deserialize;

use super::FieldErrors;
use super::history::local_time;
use super::session::{Chrome, WebError, WebSession, html, see_other};
use crate::http::api::me::{ProfileChanges, change_pin_for, update_profile};
use crate::state::AppState;

/// Registers the profile pages.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/profile", web::get().to(show))
        .route("/profile", web::post().to(save))
        .route("/profile/pin", web::post().to(change_pin));
}

/// The profile page.
#[derive(Template)]
#[template(path = "web/profile.html")]
struct ProfilePage {
    chrome: Chrome,
    username: String,
    role: &'static str,
    id_tag: String,
    member_since: String,
    values: ProfileForm,
    errors: FieldErrors,
    pin_errors: FieldErrors,
    notice: Option<&'static str>,
}

/// The profile form, as typed.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct ProfileForm {
    csrf: String,
    name: String,
    email: String,
    phone: String,
    vehicle_battery_kwh: String,
    notify_email: String,
    notify_sms: String,
}

/// The PIN form (never sent back to the page).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PinForm {
    csrf: String,
    current_pin: String,
    new_pin: String,
    confirm_pin: String,
}

/// `?saved` or `?pin=changed` after a successful form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ProfileQuery {
    saved: Option<String>,
    pin: Option<String>,
}

fn role_label(role: &str) -> &'static str {
    match role {
        "owner" => "Station owner",
        "admin" => "Administrator",
        _ => "Driver",
    }
}

/// The form filled with what is stored.
fn stored_values(session: &WebSession) -> ProfileForm {
    let user = &session.user;
    let on = |wanted: bool| if wanted { "on".to_owned() } else { String::new() };
    ProfileForm {
        csrf: String::new(),
        name: user.name.clone().unwrap_or_default(),
        email: user.email.clone().unwrap_or_default(),
        phone: user.phone.clone(),
        vehicle_battery_kwh: (Decimal::from(user.vehicle_battery_wh) / Decimal::from(1000)).normalize().to_string(),
        notify_email: on(user.notify_email),
        notify_sms: on(user.notify_sms),
    }
}

fn render(
    session: &WebSession,
    status: StatusCode,
    values: ProfileForm,
    errors: FieldErrors,
    pin_errors: FieldErrors,
    notice: Option<&'static str>,
) -> Result<HttpResponse, WebError> {
    let page = ProfilePage {
        chrome: session.chrome("Profile"),
        username: session.user.username.clone(),
        role: role_label(&session.user.role),
        id_tag: session.user.id_tag.clone(),
        member_since: local_time(session.user.created_at),
        values,
        errors,
        pin_errors,
        notice,
    };
    html(status, &page)
}

/// `GET /profile`.
pub async fn show(session: WebSession, query: web::Query<ProfileQuery>) -> Result<HttpResponse, WebError> {
    let notice = if query.pin.as_deref() == Some("changed") {
        Some("Your PIN was changed. Other devices were signed out; this browser stays signed in.")
    } else if query.saved.is_some() {
        Some("Your profile was saved.")
    } else {
        None
    };
    let values = stored_values(&session);
    render(&session, StatusCode::OK, values, FieldErrors::default(), FieldErrors::default(), notice)
}

/// `POST /profile`: saves the changes with the API's rules; a bad field is shown next to it.
pub async fn save(
    session: WebSession,
    form: web::Form<ProfileForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    let form = form.into_inner();
    session.check_csrf(&form.csrf)?;
    let battery = form.vehicle_battery_kwh.trim();
    let vehicle_battery_kwh = if battery.is_empty() {
        None
    } else {
        match Decimal::from_str(battery) {
            Ok(kwh) => Some(kwh),
            Err(_) => {
                let errors =
                    FieldErrors::field("vehicleBatteryKwh", "Enter the battery size in kWh, for example 40.5.");
                return render(&session, StatusCode::UNPROCESSABLE_ENTITY, form, errors, FieldErrors::default(), None);
            }
        }
    };
    let changes = ProfileChanges {
        phone: Some(form.phone.clone()),
        email: Some(Some(form.email.clone())),
        name: Some(Some(form.name.clone())),
        vehicle_battery_kwh,
        notify_email: Some(!form.notify_email.is_empty()),
        notify_sms: Some(!form.notify_sms.is_empty()),
    };
    match update_profile(&state, session.user.id, changes).await {
        Ok(_) => Ok(see_other("/profile?saved=1")),
        Err(error) if matches!(error.status_code().as_u16(), 409 | 422) => {
            let errors = FieldErrors::from_api(&error);
            render(&session, error.status_code(), form, errors, FieldErrors::default(), None)
        }
        Err(error) => Err(error.into()),
    }
}

/// `POST /profile/pin`: changes the PIN with the API's rules. Other devices are signed out;
/// this browser's session is kept.
pub async fn change_pin(
    session: WebSession,
    form: web::Form<PinForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    let form = form.into_inner();
    session.check_csrf(&form.csrf)?;
    let again = |status: StatusCode, pin_errors: FieldErrors| {
        render(&session, status, stored_values(&session), FieldErrors::default(), pin_errors, None)
    };
    if form.current_pin.is_empty() {
        return again(StatusCode::UNPROCESSABLE_ENTITY, FieldErrors::field("currentPin", "Enter your current PIN."));
    }
    if form.new_pin != form.confirm_pin {
        return again(StatusCode::UNPROCESSABLE_ENTITY, FieldErrors::field("confirmPin", "The two new PINs differ."));
    }
    match change_pin_for(&state, &session.auth(), form.current_pin, form.new_pin).await {
        Ok(signed_out) => {
            tracing::info!(user_id = session.user.id, signed_out, "PIN changed on the web");
            Ok(see_other("/profile?pin=changed"))
        }
        Err(error) if error.code() == "wrong_pin" => {
            again(StatusCode::FORBIDDEN, FieldErrors::field("currentPin", error.message()))
        }
        Err(error) if error.status_code() == StatusCode::UNPROCESSABLE_ENTITY => {
            again(error.status_code(), FieldErrors::from_api(&error))
        }
        Err(error) => Err(error.into()),
    }
}
