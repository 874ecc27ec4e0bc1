//! The help page, `GET /help`: how to reach support (email and WhatsApp, from
//! `KILOWATT_SUPPORT_EMAIL` and `KILOWATT_SUPPORT_WHATSAPP`) and answers to common questions
//! with this deployment's own numbers (minimum recharge, queue hold, booking grace period and
//! refund cutoff). Open to everyone: a driver who cannot sign in needs it most.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;

use super::session::{Chrome, WebError, WebSession, html};
use crate::state::AppState;

/// Registers the help page.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/help", web::get().to(show));
}

/// The help page.
#[derive(Template)]
#[template(path = "web/help.html")]
struct HelpPage {
    chrome: Chrome,
    signed_in: bool,
    email: String,
    whatsapp: String,
    whatsapp_link: Option<String>,
    min_recharge: String,
    queue_hold: String,
    grace_period: String,
    refund_cutoff: String,
}

/// The `https://wa.me/` link for a phone number as configured (`+91 98765 43210`): digits only,
/// country code included; `None` when there are no digits.
pub fn whatsapp_link(number: &str) -> Option<String> {
    let digits: String = number.chars().filter(char::is_ascii_digit).collect();
    (!digits.is_empty()).then(|| format!("https://wa.me/{digits}"))
}

/// A duration in whole minutes or hours, as people say it.
fn minutes(duration: std::time::Duration) -> String {
    let minutes = duration.as_secs() / 60;
    match minutes {
        1 => "1 minute".to_owned(),
        60 => "1 hour".to_owned(),
        m if m > 60 && m % 60 == 0 => format!("{} hours", m / 60),
        m => format!("{m} minutes"),
    }
}

/// `GET /help`: signed in or not.
pub async fn show(session: Option<WebSession>, state: web::Data<AppState>) -> Result<HttpResponse, WebError> {
    let config = &state.config;
    let policy = &config.policy;
    let page = HelpPage {
        chrome: session.as_ref().map_or_else(|| Chrome::anonymous("Help"), |s| s.chrome("Help")),
        signed_in: session.is_some(),
        email: config.support_email.trim().to_owned(),
        whatsapp: config.support_whatsapp.trim().to_owned(),
        whatsapp_link: whatsapp_link(&config.support_whatsapp),
        min_recharge: policy.min_recharge.normalize().to_string(),
        queue_hold: minutes(policy.queue_hold),
        grace_period: minutes(policy.grace_period),
        refund_cutoff: minutes(policy.booking_refund_cutoff),
    };
    html(StatusCode::OK, &page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_whatsapp_link_has_only_the_digits() {
        assert_eq!(whatsapp_link("+91 98765-43210").as_deref(), Some("https://wa.me/919876543210"));
        assert_eq!(whatsapp_link(""), None);
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(minutes(std::time::Duration::from_secs(30 * 60)), "30 minutes");
        assert_eq!(minutes(std::time::Duration::from_secs(3600)), "1 hour");
        assert_eq!(minutes(std::time::Duration::from_secs(2 * 3600)), "2 hours");
    }
}
