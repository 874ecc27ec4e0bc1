//! Payments: `GET /api/payments/{paymentId}` (the payer's own, checked with PhonePe while
//! pending) and `POST /api/payments/phonepe/callback`, PhonePe's server-to-server callback,
//! which carries no bearer token and is authenticated by its `X-VERIFY` checksum instead.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use kilowatt_actors::store::payments::{self, Payment};
use kilowatt_actors::store::pool;
use rust_decimal::Decimal;
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::Auth;
use crate::http::error::ApiError;
use crate::http::openapi::{Envelope, ErrorEnvelope};
use crate::http::response;
use crate::payments::{self as recharges, CallbackError};
use crate::state::AppState;

/// A payment as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentView {
    /// Payment ID.
    pub id: i64,
    /// Our reference at the provider.
    pub merchant_transaction_id: String,
    /// INR.
    #[schema(value_type = String, example = "1000.00")]
    pub amount: Decimal,
    /// `sandbox` or `phonepe`.
    pub provider: String,
    /// `pending`, `succeeded`, `failed` or `expired`.
    pub state: String,
    /// The provider's transaction ID, once known.
    pub provider_reference: Option<String>,
    /// Why it failed or expired.
    pub failure_reason: Option<String>,
    /// When it began.
    pub created_at: DateTime<Utc>,
    /// When it left `pending`.
    pub completed_at: Option<DateTime<Utc>>,
}

impl From<&Payment> for PaymentView {
    fn from(payment: &Payment) -> Self {
        PaymentView {
            id: payment.id,
            merchant_transaction_id: payment.merchant_transaction_id.clone(),
            amount: payment.amount,
            provider: payment.provider.clone(),
            state: payment.state.clone(),
            provider_reference: payment.provider_reference.clone(),
            failure_reason: payment.failure_reason.clone(),
            created_at: payment.created_at,
            completed_at: payment.completed_at,
        }
    }
}

/// `GET /api/payments/{paymentId}`: one of your payments. A pending PhonePe payment is checked
/// with PhonePe first, so the answer is as fresh as PhonePe knows.
#[utoipa::path(
    tag = "wallet",
    security(("bearer" = [])),
    params(("paymentId" = i64, Path, description = "The payment")),
    responses(
        (status = 200, description = "The payment", body = Envelope<PaymentView>),
        (status = 401, description = "Not signed in", body = ErrorEnvelope),
        (status = 404, description = "No such payment of yours", body = ErrorEnvelope),
    )
)]
#[get("/api/payments/{paymentId}")]
pub async fn show(auth: Auth, path: web::Path<String>, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let not_found = || ApiError::not_found("You have no such payment.");
    let payment_id: i64 = path.into_inner().parse().map_err(|_| not_found())?;
    let payment = {
        let mut conn = pool::connection(&state.pool).await?;
        payments::find_for_user(&mut conn, payment_id, auth.user.id).await?.ok_or_else(not_found)?
    };
    let payment = match recharges::check_status(&state, &payment).await {
        Ok(current) => current,
        Err(recharges::CheckError::Store(error)) => return Err(error.into()),
        Err(error) => {
            tracing::warn!(payment_id, %error, "payment status check failed; answering the stored state");
            payment
        }
    };
    Ok(response::ok(PaymentView::from(&payment)))
}

/// PhonePe's callback body.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct PhonePeCallback {
    /// Base64 of the JSON payment status; `X-VERIFY` covers exactly this string.
    response: String,
}

/// What the callback did.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CallbackAnswer {
    /// The payment's state afterwards.
    pub state: String,
}

/// `POST /api/payments/phonepe/callback`: PhonePe tells us a payment's outcome. The checksum is
/// verified before anything else; a bad checksum, an unknown transaction or a wrong amount
/// changes nothing and is answered 400. A replayed callback changes nothing.
#[utoipa::path(
    tag = "wallet",
    request_body = PhonePeCallback,
    params(("X-VERIFY" = String, Header, description = "sha256hex(response + saltKey) + \"###\" + saltIndex")),
    responses(
        (status = 200, description = "Accepted", body = Envelope<CallbackAnswer>),
        (status = 400, description = "Bad checksum, malformed body, unknown transaction or wrong amount", body = ErrorEnvelope),
    )
)]
#[post("/api/payments/phonepe/callback")]
pub async fn phonepe_callback(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let x_verify = req.headers().get("X-VERIFY").and_then(|v| v.to_str().ok());
    match recharges::handle_callback(&state, x_verify, &body).await {
        Ok(payment_state) => Ok(response::ok(CallbackAnswer { state: payment_state.as_str().to_owned() })),
        Err(CallbackError::Store(error)) => Err(error.into()),
        Err(error) => {
            let code = error.code();
            let peer = req.peer_addr().map(|a| a.ip().to_string()).unwrap_or_default();
            tracing::warn!(%error, code, peer, "PhonePe callback refused");
            metrics::counter!("kilowatt_payment_callbacks_rejected_total", "reason" => code).increment(1);
            Err(ApiError::new(StatusCode::BAD_REQUEST, code, "This callback was refused."))
        }
    }
}
