//! Payment pages a driver's browser visits: the sandbox's pay page and its form, the page
//! PhonePe sends the browser back to, and the result page. Pages are addressed by the payment's
//! merchant transaction ID, which is unguessable, so they need no sign-in.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, Responder, get, post, route, web};
use askama::Template;
use askama_web::WebTemplate;
use kilowatt_actors::store::payments::{self, Outcome, Payment, PaymentState};
use kilowatt_actors::store::{StoreError, pool, wallets};
use serde::Deserialize;

use crate::config::PaymentProviderKind;
use crate::payments::{self as recharges, SANDBOX, urls};
use crate::state::AppState;

/// The sandbox's pay page.
#[derive(Template, WebTemplate)]
#[template(path = "payments/sandbox.html")]
pub struct SandboxPage {
    amount: String,
    reference: String,
}

/// How a payment ended (or that it has not yet).
#[derive(Template, WebTemplate)]
#[template(path = "payments/result.html")]
pub struct ResultPage {
    title: &'static str,
    state: &'static str,
    message: String,
    amount: String,
    balance: Option<String>,
    reference: String,
}

/// A short message (not found, unavailable).
#[derive(Template, WebTemplate)]
#[template(path = "payments/message.html")]
pub struct MessagePage {
    title: &'static str,
    message: &'static str,
}

/// Renders a page with a status; payment pages are never cached.
fn page(req: &HttpRequest, status: StatusCode, template: impl Responder) -> HttpResponse {
    let mut response = template.respond_to(req).map_into_boxed_body();
    *response.status_mut() = status;
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn not_found(req: &HttpRequest) -> HttpResponse {
    let message = "There is no such payment. Start a recharge from your wallet.";
    page(req, StatusCode::NOT_FOUND, MessagePage { title: "Payment not found", message })
}

fn unavailable(req: &HttpRequest, error: &StoreError) -> HttpResponse {
    tracing::warn!(%error, "payment page failed");
    let message = "We could not load this payment just now. Please reload the page in a moment.";
    page(req, StatusCode::SERVICE_UNAVAILABLE, MessagePage { title: "Please try again", message })
}

fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

/// The payment with this reference, if the reference is well formed and the payment exists.
async fn find(state: &AppState, reference: &str) -> Result<Option<Payment>, StoreError> {
    if !recharges::is_reference(reference) {
        return Ok(None);
    }
    let mut conn = pool::connection(&state.pool).await?;
    payments::find_by_merchant_transaction_id(&mut conn, reference).await
}

/// Sandbox payments can be settled from the page only while the sandbox is the configured
/// provider: after a switch to a real gateway, leftover sandbox payments must not mint money.
fn sandbox_payable(state: &AppState, payment: &Payment) -> bool {
    payment.provider == SANDBOX && state.config.payment_provider == PaymentProviderKind::Sandbox
}

/// `GET /payments/sandbox/{reference}`: the amount and two buttons, pay or decline.
#[get("/payments/sandbox/{reference}")]
pub async fn sandbox_page(req: HttpRequest, path: web::Path<String>, state: web::Data<AppState>) -> HttpResponse {
    let payment = match find(&state, &path).await {
        Ok(Some(payment)) if sandbox_payable(&state, &payment) => payment,
        Ok(_) => return not_found(&req),
        Err(error) => return unavailable(&req, &error),
    };
    if payment.payment_state() != PaymentState::Pending {
        return see_other(&urls::result_path(&payment));
    }
    let template = SandboxPage { amount: payment.amount.to_string(), reference: payment.merchant_transaction_id };
    page(&req, StatusCode::OK, template)
}

/// The sandbox form: `outcome=success` or `outcome=failure`.
#[derive(Debug, Deserialize)]
pub struct SandboxForm {
    outcome: String,
}

/// `POST /payments/sandbox/{reference}/complete`: settles a pending sandbox payment as the
/// button said, then shows the result. Anything else (a second submit, another provider's
/// payment) changes nothing and shows the payment as it stands.
#[post("/payments/sandbox/{reference}/complete")]
pub async fn sandbox_complete(
    req: HttpRequest,
    path: web::Path<String>,
    form: web::Form<SandboxForm>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let outcome = match form.outcome.as_str() {
        "success" => Outcome::Succeeded,
        "failure" => Outcome::Failed("declined on the sandbox page".to_owned()),
        _ => {
            let message = "Choose Pay or Decline.";
            return page(&req, StatusCode::BAD_REQUEST, MessagePage { title: "Unknown choice", message });
        }
    };
    let payment = match find(&state, &path).await {
        Ok(Some(payment)) => payment,
        Ok(None) => return not_found(&req),
        Err(error) => return unavailable(&req, &error),
    };
    if sandbox_payable(&state, &payment)
        && let Err(error) = recharges::settle(&state, &payment, &outcome, None).await
    {
        return unavailable(&req, &error);
    }
    see_other(&urls::result_path(&payment))
}

/// `GET|POST /payments/phonepe/return/{reference}`: where PhonePe sends the browser back
/// (with GET or POST). What the browser brings is not trusted: the status is asked of PhonePe,
/// then the result is shown.
#[route("/payments/phonepe/return/{reference}", method = "GET", method = "POST")]
pub async fn phonepe_return(req: HttpRequest, path: web::Path<String>, state: web::Data<AppState>) -> HttpResponse {
    let payment = match find(&state, &path).await {
        Ok(Some(payment)) => payment,
        Ok(None) => return not_found(&req),
        Err(error) => return unavailable(&req, &error),
    };
    if let Err(error) = recharges::check_status(&state, &payment).await {
        tracing::warn!(payment_id = payment.id, %error, "status check on return failed; showing the stored state");
    }
    see_other(&urls::result_path(&payment))
}

/// `GET /payments/{reference}/result`: how the payment ended, and the balance after a success.
#[get("/payments/{reference}/result")]
pub async fn result_page(req: HttpRequest, path: web::Path<String>, state: web::Data<AppState>) -> HttpResponse {
    let payment = match find(&state, &path).await {
        Ok(Some(payment)) => payment,
        Ok(None) => return not_found(&req),
        Err(error) => return unavailable(&req, &error),
    };
    let amount = payment.amount.to_string();
    let payment_state = payment.payment_state();
    let balance = if payment_state == PaymentState::Succeeded {
        let balance = async {
            let mut conn = pool::connection(&state.pool).await?;
            wallets::balance(&mut conn, payment.user_id).await
        };
        match balance.await {
            Ok(balance) => balance.map(|b| b.to_string()),
            Err(error) => return unavailable(&req, &error),
        }
    } else {
        None
    };
    let (title, message) = match payment_state {
        PaymentState::Succeeded => ("Payment successful", format!("₹{amount} was added to your wallet.")),
        PaymentState::Failed => ("Payment failed", "The payment did not go through. Your wallet was not charged or credited.".to_owned()),
        PaymentState::Expired => ("Payment expired", "The payment was not completed in time. Your wallet was not credited.".to_owned()),
        PaymentState::Pending => ("Payment pending", "We are waiting for the payment gateway to confirm this payment. Your wallet is credited as soon as it does.".to_owned()),
    };
    let template = ResultPage {
        title,
        state: payment_state.as_str(),
        message,
        amount,
        balance,
        reference: payment.merchant_transaction_id,
    };
    page(&req, StatusCode::OK, template)
}
