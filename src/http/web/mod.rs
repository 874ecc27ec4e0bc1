//! The web UI: server-rendered askama pages (`templates/web/`) with cookie sessions and CSRF
//! protection, one file per area. Handlers reuse the JSON API's shared functions, so a page and
//! its endpoint follow the same rules.

pub mod assets;
pub mod auth;
pub mod bookings;
pub mod charger;
pub mod dashboard;
pub mod help;
pub mod history;
pub mod live;
pub mod owner_charger;
pub mod owner_dashboard;
pub mod owner_reports;
pub mod owner_sessions;
pub mod owner_stations;
pub mod profile;
pub mod queue;
pub mod session;
pub mod slot_monitoring;
pub mod wallet;

use actix_web::web;

use crate::http::error::ApiError;

/// Characters escaped in a path segment: all but letters, digits and `-._~` (the unreserved set).
pub const PATH_SEGMENT: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Registers every web page.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/static/app.css", web::get().to(assets::css))
        .route("/static/app.js", web::get().to(assets::js))
        .route("/signup", web::get().to(auth::signup_page))
        .route("/signup", web::post().to(auth::signup))
        .route("/login", web::get().to(auth::login_page))
        .route("/login", web::post().to(auth::login))
        .route("/logout", web::post().to(auth::logout))
        .route("/", web::get().to(dashboard::show))
        .route("/wallet/recharge", web::post().to(dashboard::recharge))
        .route("/chargers", web::get().to(dashboard::find_charger))
        .route("/chargers/{chargePointId}", web::get().to(charger::show))
        .route("/chargers/{chargePointId}/start", web::post().to(charger::start))
        .route("/sessions/{id}/stop", web::post().to(charger::stop))
        .route("/ws", web::get().to(live::connect))
        .configure(history::routes)
        .configure(wallet::routes)
        .configure(profile::routes)
        .configure(help::routes)
        .configure(bookings::routes)
        .configure(queue::routes)
        .configure(owner_dashboard::routes)
        .configure(owner_stations::routes)
        .configure(owner_charger::routes)
        .configure(owner_sessions::routes)
        .configure(owner_reports::routes)
        .configure(slot_monitoring::routes);
}

/// A form's errors: per field (shown next to it) and one for the whole form.
#[derive(Debug, Default)]
pub struct FieldErrors {
    general: Option<String>,
    fields: Vec<(String, String)>,
}

impl FieldErrors {
    /// The error shown next to `field`, if any.
    pub fn get(&self, field: &str) -> Option<&str> {
        self.fields.iter().find(|(f, _)| f == field).map(|(_, m)| m.as_str())
    }

    /// The error about the whole form, if any.
    pub fn general(&self) -> Option<&str> {
        self.general.as_deref()
    }

    /// One error on one field.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        FieldErrors { general: None, fields: vec![(field.to_owned(), message.into())] }
    }

    /// An API error as a form shows it: next to the field it names, else above the form. The
    /// API prefixes some messages with the field's name, which a form does not need.
    pub fn from_api(error: &ApiError) -> Self {
        match error.field() {
            Some(field) => {
                let message = error.message();
                let message = message.strip_prefix(&format!("{field}: ")).unwrap_or(message);
                let mut message = message.to_owned();
                if let Some(first) = message.get(..1) {
                    message.replace_range(..1, &first.to_uppercase());
                }
                Self::field(field, message)
            }
            None => FieldErrors { general: Some(error.message().to_owned()), fields: Vec::new() },
        }
    }
}
