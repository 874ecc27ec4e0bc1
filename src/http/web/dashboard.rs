//! The driver's dashboard: the wallet balance, recharges (preset buttons and a custom amount,
//! through the same code path as `POST /api/wallet/recharge`), charger search by ID and the
//! session under way, if any.

use std::str::FromStr;

use actix_web::ResponseError;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use kilowatt_actors::store::{pool, session_views, wallets};
use rust_decimal::Decimal;
use serde::Deserialize;

use super::FieldErrors;
use super::session::{Chrome, WebError, WebSession, html, see_other};
use crate::http::api::session_view::SessionView;
use crate::http::api::wallet::begin_recharge;
use crate::http::error::ApiError;
use crate::state::AppState;

/// The dashboard.
#[derive(Template)]
#[template(path = "web/dashboard.html")]
struct DashboardPage {
    chrome: Chrome,
    display_name: String,
    balance: String,
    presets: Vec<String>,
    min_recharge: String,
    max_recharge: String,
    amount: String,
    errors: FieldErrors,
    active: Option<ActiveSession>,
}

/// The session under way, as the dashboard shows it.
struct ActiveSession {
    status: String,
    charge_point_id: String,
    connector_id: i32,
    station_name: Option<String>,
    energy_kwh: String,
    cost: String,
    duration: String,
}

/// INR with two decimals and Indian digit grouping: `1,00,000.00`.
pub fn inr(amount: Decimal) -> String {
    let text = format!("{:.2}", amount.round_dp(2));
    let (sign, text) = text.strip_prefix('-').map_or(("", text.as_str()), |t| ("-", t));
    let (whole, paise) = text.split_once('.').unwrap_or((text, "00"));
    let mut grouped = String::new();
    let digits: Vec<char> = whole.chars().collect();
    let head = digits.len().saturating_sub(3);
    for (i, c) in digits[..head].iter().enumerate() {
        if i > 0 && (head - i).is_multiple_of(2) {
            grouped.push(',');
        }
        grouped.push(*c);
    }
    if head > 0 {
        grouped.push(',');
    }
    grouped.extend(&digits[head..]);
    format!("{sign}{grouped}.{paise}")
}

/// `h:mm:ss` for a duration in seconds.
pub fn duration(seconds: i64) -> String {
    let seconds = seconds.max(0);
    format!("{}:{:02}:{:02}", seconds / 3600, seconds / 60 % 60, seconds % 60)
}

async fn render(
    session: &WebSession,
    state: &AppState,
    status: StatusCode,
    amount: String,
    errors: FieldErrors,
) -> Result<HttpResponse, WebError> {
    let mut conn = pool::connection(&state.pool).await.map_err(ApiError::from)?;
    let balance = wallets::balance(&mut conn, session.user.id).await.map_err(ApiError::from)?.unwrap_or_default();
    let active = session_views::open_for_driver(&mut conn, session.user.id).await.map_err(ApiError::from)?;
    drop(conn);
    let active = active.map(|row| SessionView::new(row, state.clock.now())).map(|s| ActiveSession {
        status: s.status,
        charge_point_id: s.charge_point_id,
        connector_id: s.connector_id,
        station_name: s.station_name,
        energy_kwh: format!("{:.3}", s.energy_kwh),
        cost: inr(s.cost),
        duration: duration(s.duration_seconds),
    });
    let policy = &state.config.policy;
    let page = DashboardPage {
        chrome: session.chrome("Dashboard"),
        display_name: session.user.name.clone().unwrap_or_else(|| session.user.username.clone()),
        balance: inr(balance),
        presets: policy.recharge_presets.iter().map(|p| p.normalize().to_string()).collect(),
        min_recharge: policy.min_recharge.normalize().to_string(),
        max_recharge: policy.max_recharge.normalize().to_string(),
        amount,
        errors,
        active,
    };
    html(status, &page)
}

/// `GET /`: the dashboard.
pub async fn show(session: WebSession, state: web::Data<AppState>) -> Result<HttpResponse, WebError> {
    render(&session, &state, StatusCode::OK, String::new(), FieldErrors::default()).await
}

/// The recharge form (a preset button or the custom amount).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RechargeForm {
    csrf: String,
    amount: String,
}

/// `POST /wallet/recharge`: begins the payment as `POST /api/wallet/recharge` does and sends the
/// browser to pay; a bad amount shows the dashboard again with the error next to the field.
pub async fn recharge(
    session: WebSession,
    form: web::Form<RechargeForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    let form = form.into_inner();
    session.check_csrf(&form.csrf)?;
    let typed = form.amount.trim().replace([',', '₹', ' '], "");
    let Ok(amount) = Decimal::from_str(&typed) else {
        let errors = FieldErrors::field("amount", "Enter an amount in rupees, for example 1000.");
        return render(&session, &state, StatusCode::UNPROCESSABLE_ENTITY, form.amount, errors).await;
    };
    match begin_recharge(&state, &session.user, amount).await {
        Ok(started) => {
            // The payment pages are ours when the sandbox is in use: a relative redirect keeps
            // the browser on the host it came in by, whatever the public URL says.
            let base = state.config.public_url.trim_end_matches('/');
            let location = started.redirect_url.strip_prefix(base).filter(|p| p.starts_with('/'));
            Ok(see_other(location.unwrap_or(&started.redirect_url)))
        }
        Err(error) if error.field().is_some() => {
            let errors = FieldErrors::from_api(&error);
            render(&session, &state, error.status_code(), form.amount, errors).await
        }
        Err(error) => Err(error.into()),
    }
}

/// `?id=` of the charger search.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct FindCharger {
    id: String,
}

/// `GET /chargers?id=…`: goes to that charger's page.
pub async fn find_charger(
    session: WebSession,
    query: web::Query<FindCharger>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    let id = query.id.trim();
    if id.is_empty() || id.len() > 36 || id.chars().any(|c| c.is_control() || c == '/') {
        let errors = FieldErrors::field("id", "Enter a charger ID, as printed on the charger.");
        return render(&session, &state, StatusCode::UNPROCESSABLE_ENTITY, String::new(), errors).await;
    }
    let id = percent_encoding::utf8_percent_encode(id, super::PATH_SEGMENT);
    Ok(see_other(&format!("/chargers/{id}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inr_groups_the_indian_way() {
        assert_eq!(inr(Decimal::ZERO), "0.00");
        assert_eq!(inr(Decimal::new(50000, 2)), "500.00");
        assert_eq!(inr(Decimal::from(1000)), "1,000.00");
        assert_eq!(inr(Decimal::from(100000)), "1,00,000.00");
        assert_eq!(inr(Decimal::new(123456789, 2)), "12,34,567.89");
        assert_eq!(inr(Decimal::new(-150, 2)), "-1.50");
    }
}
