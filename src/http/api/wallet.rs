//! The driver's prepaid INR wallet: `GET /api/wallet` (balance and recharge limits),
//! `GET /api/wallet/transactions` (the ledger, newest first) and `POST /api/wallet/recharge`
//! (begin a payment and get the page to pay on).

use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use kilowatt_actors::store::models::User;
use kilowatt_actors::store::{pool, wallets};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Page;
use super::payments::PaymentView;
use crate::auth::Auth;
use crate::http::error::ApiError;
use crate::http::openapi::{Envelope, ErrorEnvelope};
use crate::http::response;
use crate::payments::{self, StartError};
use crate::state::AppState;

/// The wallet as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WalletView {
    /// Current balance.
    #[schema(value_type = String, example = "1000.00")]
    pub balance: Decimal,
    /// Always `INR`.
    pub currency: &'static str,
    /// Smallest recharge.
    #[schema(value_type = String, example = "500")]
    pub min_recharge: Decimal,
    /// Largest recharge.
    #[schema(value_type = String, example = "100000")]
    pub max_recharge: Decimal,
    /// Amounts to offer as buttons.
    #[schema(value_type = Vec<String>, example = json!(["500", "1000", "2000", "5000"]))]
    pub recharge_presets: Vec<Decimal>,
}

/// `GET /api/wallet`: the balance, and what a recharge may be.
#[utoipa::path(
    tag = "wallet",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The wallet", body = Envelope<WalletView>),
        (status = 401, description = "Not signed in", body = ErrorEnvelope),
    )
)]
#[get("/api/wallet")]
pub async fn show(auth: Auth, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let mut conn = pool::connection(&state.pool).await?;
    let balance = wallets::balance(&mut conn, auth.user.id).await?.unwrap_or(Decimal::ZERO);
    let policy = &state.config.policy;
    Ok(response::ok(WalletView {
        balance: balance.round_dp(2),
        currency: "INR",
        min_recharge: policy.min_recharge,
        max_recharge: policy.max_recharge,
        recharge_presets: policy.recharge_presets.clone(),
    }))
}

/// One ledger entry as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TransactionView {
    /// Entry ID.
    pub id: i64,
    /// Positive credits, negative debits.
    #[schema(value_type = String, example = "1000.00")]
    pub amount: Decimal,
    /// `recharge`, `charging`, `booking`, `refund` or `adjustment`.
    pub kind: String,
    /// What it was ("Recharge", "Charging session payment", …).
    pub description: String,
    /// `payment`, `session`, `booking` or `manual`.
    pub reference_kind: String,
    /// The payment, session or booking.
    pub reference_id: i64,
    /// Balance right after.
    #[schema(value_type = String, example = "1000.00")]
    pub balance_after: Decimal,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// A page of the ledger and how many entries there are in all.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TransactionsPage {
    /// Newest first.
    pub items: Vec<TransactionView>,
    /// Entries in all.
    pub total: i64,
    /// The page size used.
    pub limit: i64,
    /// The offset used.
    pub offset: i64,
}

/// `GET /api/wallet/transactions`: credits and debits, newest first.
#[utoipa::path(
    tag = "wallet",
    security(("bearer" = [])),
    params(Page),
    responses(
        (status = 200, description = "A page of the ledger", body = Envelope<TransactionsPage>),
        (status = 401, description = "Not signed in", body = ErrorEnvelope),
        (status = 422, description = "Bad limit or offset", body = ErrorEnvelope),
    )
)]
#[get("/api/wallet/transactions")]
pub async fn transactions(
    auth: Auth,
    page: web::Query<Page>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (limit, offset) = page.checked(20, 100)?;
    Ok(response::ok(ledger_page(&state, auth.user.id, limit, offset).await?))
}

/// A page of `user_id`'s ledger, newest first, and how many entries it holds. Shared by
/// `GET /api/wallet/transactions` and the web wallet page.
pub async fn ledger_page(
    state: &AppState,
    user_id: i64,
    limit: i64,
    offset: i64,
) -> Result<TransactionsPage, ApiError> {
    let mut conn = pool::connection(&state.pool).await?;
    let entries = wallets::entries(&mut conn, user_id, limit, offset).await?;
    let total = wallets::count_entries(&mut conn, user_id).await?;
    let items = entries
        .into_iter()
        .map(|e| TransactionView {
            id: e.id,
            amount: e.amount,
            kind: e.kind,
            description: e.description,
            reference_kind: e.reference_kind,
            reference_id: e.reference_id,
            balance_after: e.balance_after,
            created_at: e.created_at,
        })
        .collect();
    Ok(TransactionsPage { items, total, limit, offset })
}

/// A recharge to begin.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RechargeRequest {
    /// INR: a preset or any amount between the minimum and maximum, at most two decimals
    /// (a number or a decimal string).
    #[schema(value_type = String, example = "1000")]
    amount: Decimal,
}

/// A payment begun, and where the driver pays.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RechargeStarted {
    /// The pending payment.
    #[serde(flatten)]
    pub payment: PaymentView,
    /// Send the driver here to pay; they come back to a result page.
    pub redirect_url: String,
}

/// `POST /api/wallet/recharge`: begins a payment with the configured provider (sandbox or
/// PhonePe). The wallet is credited once the provider confirms it.
#[utoipa::path(
    tag = "wallet",
    security(("bearer" = [])),
    request_body = RechargeRequest,
    responses(
        (status = 201, description = "Payment begun; send the driver to redirectUrl", body = Envelope<RechargeStarted>),
        (status = 401, description = "Not signed in", body = ErrorEnvelope),
        (status = 422, description = "The amount is out of bounds or too precise", body = ErrorEnvelope),
        (status = 502, description = "The payment provider refused or did not answer", body = ErrorEnvelope),
    )
)]
#[post("/api/wallet/recharge")]
pub async fn recharge(
    auth: Auth,
    body: web::Json<RechargeRequest>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let started = begin_recharge(&state, &auth.user, body.into_inner().amount).await?;
    Ok(response::created(RechargeStarted {
        payment: PaymentView::from(&started.payment),
        redirect_url: started.redirect_url,
    }))
}

/// Checks a recharge amount and begins the payment with the configured provider: 422 naming
/// `amount` when it is out of bounds, 502 when the provider refuses. Shared by
/// `POST /api/wallet/recharge` and the web dashboard.
pub async fn begin_recharge(state: &AppState, user: &User, amount: Decimal) -> Result<payments::Started, ApiError> {
    let amount = validate_amount(amount, state)?;
    payments::start_recharge(state, user, amount).await.map_err(|error| match error {
        StartError::Store(e) => ApiError::from(e),
        StartError::Provider(_) | StartError::UnpayableAmount => ApiError::new(
            actix_web::http::StatusCode::BAD_GATEWAY,
            "payment_provider_unavailable",
            "The payment gateway could not start this payment. Please try again shortly.",
        ),
    })
}

/// The amount, rounded to paise, if it is a valid recharge.
fn validate_amount(amount: Decimal, state: &AppState) -> Result<Decimal, ApiError> {
    let policy = &state.config.policy;
    if amount.normalize().scale() > 2 {
        return Err(ApiError::validation("amount", "An amount has at most two decimal places (paise)."));
    }
    if amount <= Decimal::ZERO || amount < policy.min_recharge {
        return Err(ApiError::validation("amount", format!("The minimum recharge is ₹{}.", policy.min_recharge)));
    }
    if amount > policy.max_recharge {
        return Err(ApiError::validation("amount", format!("The maximum recharge is ₹{}.", policy.max_recharge)));
    }
    Ok(amount.round_dp(2))
}
