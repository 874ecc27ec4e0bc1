//! Wallet recharges through a payment provider: start a payment and send the driver to pay,
//! take the provider's verdict (a PhonePe callback, a status check, the sandbox page) and
//! settle it exactly once, and reconcile payments left pending. Two providers, chosen by
//! `KILOWATT_PAYMENT_PROVIDER`: the local sandbox (the default, so a fresh install recharges end
//! to end) and PhonePe standard checkout. HTTP handlers call these functions and stay thin.

pub mod phonepe;

use chrono::Duration;
use kilowatt_actors::store::StoreError;
use kilowatt_actors::store::models::User;
use kilowatt_actors::store::payments::{self, Completion, Outcome, Payment, PaymentState};
use kilowatt_actors::store::pool;
use rust_decimal::Decimal;

use self::phonepe::{PhonePe, PhonePeError, Verdict};
use crate::config::{Config, PaymentProviderKind};
use crate::state::AppState;

/// A payment still pending this long after it began is given up on.
pub const EXPIRE_AFTER: Duration = Duration::hours(24);

/// Name of the sandbox provider, as stored in `payments.provider`.
pub const SANDBOX: &str = "sandbox";

/// Name of the PhonePe provider, as stored in `payments.provider`.
pub const PHONEPE: &str = "phonepe";

/// The provider new recharges go through.
#[derive(Debug, Clone)]
pub enum Provider {
    /// The local confirm/decline page.
    Sandbox,
    /// PhonePe standard checkout.
    PhonePe(PhonePe),
}

impl Provider {
    /// The configured provider.
    pub fn from_config(config: &Config) -> Self {
        match config.payment_provider {
            PaymentProviderKind::Sandbox => Provider::Sandbox,
            PaymentProviderKind::PhonePe => Provider::PhonePe(PhonePe::new(config.phonepe.clone())),
        }
    }

    /// Its name, as stored in `payments.provider`.
    pub fn name(&self) -> &'static str {
        match self {
            Provider::Sandbox => SANDBOX,
            Provider::PhonePe(_) => PHONEPE,
        }
    }
}

/// A PhonePe client if PhonePe is configured, whichever provider new recharges use (payments
/// begun before a switch to the sandbox still settle).
pub fn phonepe_client(config: &Config) -> Option<PhonePe> {
    let settings = &config.phonepe;
    (!settings.merchant_id.is_empty() && !settings.salt_key.is_empty()).then(|| PhonePe::new(settings.clone()))
}

/// Public URLs of a payment's pages, keyed by its merchant transaction ID (unguessable, so the
/// pages need no sign-in; a sequential payment ID would let anyone read or settle others').
pub mod urls {
    use kilowatt_actors::store::payments::Payment;

    use crate::config::Config;

    fn base(config: &Config) -> &str {
        config.public_url.trim_end_matches('/')
    }

    /// The sandbox's pay page.
    pub fn sandbox(config: &Config, payment: &Payment) -> String {
        format!("{}/payments/sandbox/{}", base(config), payment.merchant_transaction_id)
    }

    /// Where PhonePe sends the driver's browser back.
    pub fn phonepe_return(config: &Config, payment: &Payment) -> String {
        format!("{}/payments/phonepe/return/{}", base(config), payment.merchant_transaction_id)
    }

    /// Where PhonePe POSTs its server-to-server callback.
    pub fn phonepe_callback(config: &Config) -> String {
        format!("{}/api/payments/phonepe/callback", base(config))
    }

    /// The result page (a path: the browser is already on this server).
    pub fn result_path(payment: &Payment) -> String {
        format!("/payments/{}/result", payment.merchant_transaction_id)
    }
}

/// Whether `reference` has the shape of one of our merchant transaction IDs.
pub fn is_reference(reference: &str) -> bool {
    (1..=38).contains(&reference.len()) && reference.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// A payment begun: the row and where to send the driver to pay.
#[derive(Debug, Clone)]
pub struct Started {
    /// The pending payment.
    pub payment: Payment,
    /// The page the driver pays on.
    pub redirect_url: String,
}

/// Why a recharge could not begin.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// PhonePe refused or did not answer; the payment was marked failed.
    #[error(transparent)]
    Provider(#[from] PhonePeError),
    /// The amount is not a whole number of paise (callers validate it first).
    #[error("the amount is not a whole number of paise")]
    UnpayableAmount,
}

/// Begins a recharge of `amount` INR (already validated) for `user` with the configured
/// provider: stores a pending payment and answers where the driver pays.
pub async fn start_recharge(state: &AppState, user: &User, amount: Decimal) -> Result<Started, StartError> {
    let provider = Provider::from_config(&state.config);
    let payment = {
        let mut conn = pool::connection(&state.pool).await?;
        payments::create(&mut conn, user.id, provider.name(), amount, state.clock.now()).await?
    };
    metrics::counter!("kilowatt_payments_total", "provider" => provider.name(), "outcome" => "initiated").increment(1);
    tracing::info!(payment_id = payment.id, user_id = user.id, %amount, provider = provider.name(), "recharge begun");
    let redirect_url = match &provider {
        Provider::Sandbox => urls::sandbox(&state.config, &payment),
        Provider::PhonePe(client) => {
            let payload = client
                .pay_payload(
                    &payment,
                    urls::phonepe_return(&state.config, &payment),
                    urls::phonepe_callback(&state.config),
                    indian_mobile(&user.phone),
                )
                .ok_or(StartError::UnpayableAmount)?;
            match client.pay(&payload).await {
                Ok(url) => url,
                Err(error) => {
                    tracing::warn!(payment_id = payment.id, %error, "PhonePe pay request failed");
                    settle(state, &payment, &Outcome::Failed("pay request failed".to_owned()), None).await?;
                    return Err(error.into());
                }
            }
        }
    };
    Ok(Started { payment, redirect_url })
}

/// The 10-digit mobile number PhonePe prefills, for an Indian (+91) phone.
fn indian_mobile(phone: &str) -> Option<String> {
    phone.strip_prefix("+91").filter(|n| n.len() == 10 && n.bytes().all(|b| b.is_ascii_digit())).map(str::to_owned)
}

/// Settles a payment with a verdict, exactly once (see [`payments::complete`]), counting and
/// logging what happened.
pub async fn settle(
    state: &AppState,
    payment: &Payment,
    outcome: &Outcome,
    provider_reference: Option<&str>,
) -> Result<Completion, StoreError> {
    let mut conn = pool::connection(&state.pool).await?;
    let completion = payments::complete(&mut conn, payment.id, outcome, provider_reference, state.clock.now()).await?;
    let provider = if payment.provider == PHONEPE { PHONEPE } else { SANDBOX };
    let counted = match &completion {
        Completion::Credited { balance_after } => {
            tracing::info!(payment_id = payment.id, user_id = payment.user_id, amount = %payment.amount,
                %balance_after, provider, "payment succeeded: wallet credited");
            Some("succeeded")
        }
        Completion::Failed => {
            tracing::info!(payment_id = payment.id, user_id = payment.user_id, provider, ?outcome, "payment failed");
            Some("failed")
        }
        Completion::Expired => {
            tracing::info!(payment_id = payment.id, user_id = payment.user_id, provider, "payment expired");
            Some("expired")
        }
        Completion::AlreadyFinal(already) if *outcome == Outcome::Succeeded && *already != PaymentState::Succeeded => {
            // The driver paid, but we had closed the payment (expired, or failed on an earlier
            // verdict): money was taken and nothing credited. Someone must look.
            tracing::error!(payment_id = payment.id, user_id = payment.user_id, amount = %payment.amount,
                state = already.as_str(), "provider reports success for a closed payment: reconcile by hand");
            Some("success_after_close")
        }
        Completion::AlreadyFinal(already) => {
            tracing::debug!(payment_id = payment.id, state = already.as_str(), "payment already settled");
            None
        }
    };
    if let Some(outcome) = counted {
        metrics::counter!("kilowatt_payments_total", "provider" => provider, "outcome" => outcome).increment(1);
    }
    Ok(completion)
}

/// Why a status check gave no verdict.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// PhonePe did not answer usably.
    #[error(transparent)]
    Provider(#[from] PhonePeError),
    /// PhonePe is not configured.
    #[error("PhonePe is not configured")]
    NotConfigured,
    /// PhonePe's answer does not match the payment (another transaction or amount).
    #[error("PhonePe's answer does not match the payment: {0}")]
    Mismatch(String),
}

/// Asks PhonePe about a pending PhonePe payment, records the check, and settles the payment if
/// PhonePe has decided. Answers the payment as it stands afterwards. Other payments are
/// answered as they are.
pub async fn check_status(state: &AppState, payment: &Payment) -> Result<Payment, CheckError> {
    if payment.provider != PHONEPE || payment.payment_state() != PaymentState::Pending {
        return Ok(payment.clone());
    }
    let client = phonepe_client(&state.config).ok_or(CheckError::NotConfigured)?;
    {
        let mut conn = pool::connection(&state.pool).await?;
        payments::record_check(&mut conn, payment.id, state.clock.now()).await?;
    }
    let answer = client.status(&payment.merchant_transaction_id).await?;
    let outcome = match answer.verdict() {
        Verdict::Succeeded => Outcome::Succeeded,
        Verdict::Failed(code) => Outcome::Failed(code),
        Verdict::Pending => return Ok(payment.clone()),
    };
    let data = answer.data.as_ref();
    if data.is_none_or(|d| d.merchant_transaction_id != payment.merchant_transaction_id) {
        return Err(CheckError::Mismatch("merchantTransactionId".to_owned()));
    }
    if outcome == Outcome::Succeeded && data.and_then(|d| d.amount) != payment.amount_paise() {
        return Err(CheckError::Mismatch("amount".to_owned()));
    }
    settle(state, payment, &outcome, data.and_then(|d| d.transaction_id.as_deref())).await?;
    let mut conn = pool::connection(&state.pool).await?;
    Ok(payments::find(&mut conn, payment.id).await?.unwrap_or_else(|| payment.clone()))
}

/// Why a PhonePe callback was refused (answered 400; nothing changed).
#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    /// PhonePe is not configured here.
    #[error("PhonePe is not configured")]
    NotConfigured,
    /// The body is not a PhonePe callback.
    #[error("malformed callback: {0}")]
    Malformed(#[from] phonepe::DecodeError),
    /// `X-VERIFY` is missing or wrong.
    #[error("bad checksum")]
    BadChecksum,
    /// The callback is for another merchant.
    #[error("callback for another merchant")]
    WrongMerchant,
    /// No payment has this merchant transaction ID.
    #[error("unknown merchantTransactionId {0}")]
    UnknownTransaction(String),
    /// The amount is not the payment's.
    #[error("amount {got:?} paise does not match the payment's {expected:?}")]
    AmountMismatch {
        /// What the callback says.
        got: Option<i64>,
        /// What we asked for.
        expected: Option<i64>,
    },
    /// The database failed (answered 5xx, not 400).
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl CallbackError {
    /// A stable code for responses, logs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            CallbackError::NotConfigured => "phonepe_not_configured",
            CallbackError::Malformed(_) => "malformed_callback",
            CallbackError::BadChecksum => "invalid_checksum",
            CallbackError::WrongMerchant => "wrong_merchant",
            CallbackError::UnknownTransaction(_) => "unknown_transaction",
            CallbackError::AmountMismatch { .. } => "amount_mismatch",
            CallbackError::Store(_) => "internal_error",
        }
    }
}

/// Handles PhonePe's server-to-server callback: verifies `X-VERIFY` before anything else, then
/// finds the payment, checks merchant and amount, and settles it per PhonePe's verdict (a
/// pending verdict changes nothing). Answers the payment's state afterwards.
pub async fn handle_callback(
    state: &AppState,
    x_verify: Option<&str>,
    body: &[u8],
) -> Result<PaymentState, CallbackError> {
    let client = phonepe_client(&state.config).ok_or(CallbackError::NotConfigured)?;
    let envelope = phonepe::callback_envelope(body)?;
    if !x_verify.is_some_and(|header| client.verify_callback(header, &envelope.response)) {
        return Err(CallbackError::BadChecksum);
    }
    let answer = phonepe::decode_response(&envelope.response)?;
    let data = answer.data.as_ref().ok_or(CallbackError::Malformed(phonepe::DecodeError::Json("no data".into())))?;
    if data.merchant_id.as_deref().is_some_and(|m| m != client.merchant_id()) {
        return Err(CallbackError::WrongMerchant);
    }
    let payment = {
        let mut conn = pool::connection(&state.pool).await?;
        payments::find_by_merchant_transaction_id(&mut conn, &data.merchant_transaction_id).await?
    };
    let payment = payment
        .filter(|p| p.provider == PHONEPE)
        .ok_or_else(|| CallbackError::UnknownTransaction(data.merchant_transaction_id.clone()))?;
    if data.amount != payment.amount_paise() {
        return Err(CallbackError::AmountMismatch { got: data.amount, expected: payment.amount_paise() });
    }
    let outcome = match answer.verdict() {
        Verdict::Succeeded => Outcome::Succeeded,
        Verdict::Failed(code) => Outcome::Failed(code),
        Verdict::Pending => {
            tracing::info!(payment_id = payment.id, code = %answer.code, "PhonePe callback: still pending");
            return Ok(payment.payment_state());
        }
    };
    Ok(match settle(state, &payment, &outcome, data.transaction_id.as_deref()).await? {
        Completion::Credited { .. } => PaymentState::Succeeded,
        Completion::Failed => PaymentState::Failed,
        Completion::Expired => PaymentState::Expired,
        Completion::AlreadyFinal(already) => already,
    })
}

/// What one reconciliation pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// Payments looked at.
    pub checked: usize,
    /// Of those, settled as succeeded or failed.
    pub settled: usize,
    /// Of those, expired.
    pub expired: usize,
    /// Of those, whose check failed (left pending).
    pub errors: usize,
}

/// How many payments one pass looks at.
const RECONCILE_BATCH: i64 = 100;

/// One reconciliation pass: asks PhonePe about pending payments due for a check and settles
/// those it has decided; expires payments still pending [`EXPIRE_AFTER`] after they began.
pub async fn reconcile_pending(state: &AppState) -> Result<Reconciled, StoreError> {
    let now = state.clock.now();
    let due = {
        let mut conn = pool::connection(&state.pool).await?;
        payments::due_for_check(&mut conn, now, now - EXPIRE_AFTER, PHONEPE, RECONCILE_BATCH).await?
    };
    let mut report = Reconciled::default();
    for payment in due {
        report.checked += 1;
        let current = match check_status(state, &payment).await {
            Ok(current) => current,
            Err(CheckError::Store(error)) => return Err(error),
            Err(error) => {
                report.errors += 1;
                tracing::warn!(payment_id = payment.id, %error, "payment status check failed; still pending");
                payment.clone()
            }
        };
        match current.payment_state() {
            PaymentState::Pending if current.created_at <= now - EXPIRE_AFTER => {
                let reason = Outcome::Expired("still pending after 24 hours".to_owned());
                if settle(state, &current, &reason, None).await? == Completion::Expired {
                    report.expired += 1;
                }
            }
            PaymentState::Pending => {}
            _ => report.settled += 1,
        }
    }
    Ok(report)
}

/// Runs [`reconcile_pending`] every minute, for ever (spawned at start-up).
pub async fn reconcile_forever(state: AppState) {
    let mut every_minute = tokio::time::interval(std::time::Duration::from_secs(60));
    every_minute.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every_minute.tick().await;
        match reconcile_pending(&state).await {
            Ok(report) if report.checked == 0 => {}
            Ok(report) => tracing::info!(
                checked = report.checked,
                settled = report.settled,
                expired = report.expired,
                errors = report.errors,
                "reconciled pending payments"
            ),
            Err(error) => tracing::warn!(%error, "could not reconcile pending payments"),
        }
    }
}
