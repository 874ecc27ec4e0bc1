//! PhonePe standard checkout (PG v1, "pay page"): the pay request, the status API and the
//! server-to-server callback, with their `X-VERIFY` checksums
//! (`sha256hex(material + saltKey) + "###" + saltIndex`). The checksum and decoding functions
//! are pure and unit-tested; the client makes every call with a timeout.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use kilowatt_actors::store::payments::Payment;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::PhonePeConfig;

/// The pay endpoint's path (also part of its checksum).
pub const PAY_PATH: &str = "/pg/v1/pay";

/// How long one call to PhonePe may take, connect to last byte.
const CALL_TIMEOUT: Duration = Duration::from_secs(15);

/// Largest response body we read from PhonePe.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Lowercase hex SHA-256 of `input`.
pub fn sha256_hex(input: &[u8]) -> String {
    Sha256::digest(input).iter().map(|byte| format!("{byte:02x}")).collect()
}

/// An `X-VERIFY` value: `sha256hex(material + salt_key) + "###" + salt_index`.
pub fn x_verify(material: &str, salt_key: &str, salt_index: u32) -> String {
    format!("{}###{salt_index}", sha256_hex(format!("{material}{salt_key}").as_bytes()))
}

/// The pay request's checksum over its base64 payload.
pub fn pay_checksum(payload_base64: &str, salt_key: &str, salt_index: u32) -> String {
    x_verify(&format!("{payload_base64}{PAY_PATH}"), salt_key, salt_index)
}

/// The status API's path for a transaction.
pub fn status_path(merchant_id: &str, merchant_transaction_id: &str) -> String {
    format!("/pg/v1/status/{merchant_id}/{merchant_transaction_id}")
}

/// The status API's checksum.
pub fn status_checksum(merchant_id: &str, merchant_transaction_id: &str, salt_key: &str, salt_index: u32) -> String {
    x_verify(&status_path(merchant_id, merchant_transaction_id), salt_key, salt_index)
}

/// The callback's checksum over its base64 `response`.
pub fn callback_checksum(response_base64: &str, salt_key: &str, salt_index: u32) -> String {
    x_verify(response_base64, salt_key, salt_index)
}

/// Whether a callback's `X-VERIFY` header is the right checksum for its `response`, compared
/// in constant time.
pub fn verify_callback(header: &str, response_base64: &str, salt_key: &str, salt_index: u32) -> bool {
    let expected = callback_checksum(response_base64, salt_key, salt_index);
    let given = header.trim().as_bytes();
    given.len() == expected.len() && given.iter().zip(expected.as_bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

/// The pay request's payload, before base64.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PayPayload {
    /// Our merchant ID.
    pub merchant_id: String,
    /// Our reference for this payment.
    pub merchant_transaction_id: String,
    /// Our reference for the payer.
    pub merchant_user_id: String,
    /// Paise.
    pub amount: i64,
    /// Where PhonePe sends the browser back.
    pub redirect_url: String,
    /// `REDIRECT` (GET) or `POST`.
    pub redirect_mode: String,
    /// Where PhonePe POSTs the server-to-server callback.
    pub callback_url: String,
    /// The payer's 10-digit mobile number, to prefill the pay page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mobile_number: Option<String>,
    /// Always `{"type": "PAY_PAGE"}`.
    pub payment_instrument: PaymentInstrument,
}

/// How the driver pays: on PhonePe's page.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PaymentInstrument {
    /// `PAY_PAGE`.
    #[serde(rename = "type")]
    pub kind: String,
}

/// The body PhonePe answers the status API with, and the decoded callback `response`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct StatusResponse {
    /// Whether the API call (not necessarily the payment) succeeded.
    #[serde(default)]
    pub success: bool,
    /// `PAYMENT_SUCCESS`, `PAYMENT_ERROR`, `PAYMENT_PENDING`, …
    pub code: String,
    /// For people.
    #[serde(default)]
    pub message: Option<String>,
    /// The transaction, when there is one.
    #[serde(default)]
    pub data: Option<TransactionData>,
}

/// The transaction part of a status answer or callback.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct TransactionData {
    /// The merchant it belongs to.
    #[serde(default)]
    pub merchant_id: Option<String>,
    /// Our reference.
    pub merchant_transaction_id: String,
    /// PhonePe's reference.
    #[serde(default)]
    pub transaction_id: Option<String>,
    /// Paise.
    #[serde(default)]
    pub amount: Option<i64>,
    /// `COMPLETED`, `FAILED` or `PENDING`.
    #[serde(default)]
    pub state: Option<String>,
    /// A finer-grained code (e.g. `SUCCESS`, `PAYMENT_DECLINED`).
    #[serde(default)]
    pub response_code: Option<String>,
}

/// What a status answer or callback says about the payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Paid.
    Succeeded,
    /// Declined or errored, with the code.
    Failed(String),
    /// Not decided yet (or PhonePe cannot tell now): ask again later.
    Pending,
}

impl StatusResponse {
    /// The verdict: success needs `success`, `PAYMENT_SUCCESS` and (if given) state
    /// `COMPLETED`; a payment error or state `FAILED` is a failure; anything else (pending,
    /// PhonePe's internal errors, an unknown transaction) is left for a later check.
    pub fn verdict(&self) -> Verdict {
        let state = self.data.as_ref().and_then(|d| d.state.as_deref());
        match (self.code.as_str(), state) {
            ("PAYMENT_SUCCESS", None | Some("COMPLETED")) if self.success => Verdict::Succeeded,
            (_, Some("FAILED")) | ("PAYMENT_ERROR" | "PAYMENT_DECLINED" | "TIMED_OUT" | "AUTHORIZATION_FAILED", _) => {
                let response_code = self.data.as_ref().and_then(|d| d.response_code.as_deref());
                Verdict::Failed(response_code.filter(|c| !c.is_empty()).unwrap_or(&self.code).to_owned())
            }
            _ => Verdict::Pending,
        }
    }
}

/// Why a callback body could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The body is not `{"response": "<base64>"}`.
    #[error("the body is not {{\"response\": \"<base64>\"}}")]
    Envelope,
    /// `response` is not base64.
    #[error("the response is not base64")]
    Base64,
    /// The decoded response is not the expected JSON.
    #[error("the decoded response is not a PhonePe status: {0}")]
    Json(String),
}

/// The callback's body, `{"response": "<base64 JSON>"}`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct CallbackEnvelope {
    /// The base64 JSON the checksum covers.
    pub response: String,
}

/// Reads the `response` out of a callback body (before the checksum is checked).
pub fn callback_envelope(body: &[u8]) -> Result<CallbackEnvelope, DecodeError> {
    serde_json::from_slice(body).map_err(|_| DecodeError::Envelope)
}

/// Decodes a callback's base64 `response` (after its checksum was verified).
pub fn decode_response(response_base64: &str) -> Result<StatusResponse, DecodeError> {
    let json = BASE64.decode(response_base64.trim()).map_err(|_| DecodeError::Base64)?;
    serde_json::from_slice(&json).map_err(|e| DecodeError::Json(e.to_string()))
}

/// Why a call to PhonePe did not give a usable answer.
#[derive(Debug, thiserror::Error)]
pub enum PhonePeError {
    /// No answer in time, or the connection failed.
    #[error("PhonePe did not answer: {0}")]
    Transport(String),
    /// An answer we cannot read.
    #[error("PhonePe answered HTTP {status} with an unreadable body: {detail}")]
    Unreadable {
        /// HTTP status.
        status: u16,
        /// What was wrong.
        detail: String,
    },
    /// A well-formed refusal.
    #[error("PhonePe refused the request: HTTP {status} {code}: {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// PhonePe's code.
        code: String,
        /// PhonePe's message.
        message: String,
    },
}

/// The pay endpoint's answer; `data` is only read on success.
#[derive(Debug, Deserialize)]
struct PayResponse {
    #[serde(default)]
    success: bool,
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    data: Option<serde_json::Value>,
}

/// A PhonePe client for one merchant.
#[derive(Debug, Clone)]
pub struct PhonePe {
    config: PhonePeConfig,
}

thread_local! {
    /// awc clients are per thread (not `Send`); one per worker keeps its connection pool warm.
    static CLIENT: awc::Client = awc::Client::builder().timeout(CALL_TIMEOUT).disable_redirects().finish();
}

impl PhonePe {
    /// A client for the configured merchant.
    pub fn new(config: PhonePeConfig) -> Self {
        Self { config }
    }

    /// The merchant ID.
    pub fn merchant_id(&self) -> &str {
        &self.config.merchant_id
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.config.base_url.trim_end_matches('/'))
    }

    /// The pay request's payload for a payment.
    pub fn pay_payload(
        &self,
        payment: &Payment,
        redirect_url: String,
        callback_url: String,
        mobile_number: Option<String>,
    ) -> Option<PayPayload> {
        Some(PayPayload {
            merchant_id: self.config.merchant_id.clone(),
            merchant_transaction_id: payment.merchant_transaction_id.clone(),
            merchant_user_id: format!("KWU{}", payment.user_id),
            amount: payment.amount_paise()?,
            redirect_url,
            redirect_mode: "REDIRECT".to_owned(),
            callback_url,
            mobile_number,
            payment_instrument: PaymentInstrument { kind: "PAY_PAGE".to_owned() },
        })
    }

    /// Sends the pay request; answers the pay page URL to send the driver to.
    pub async fn pay(&self, payload: &PayPayload) -> Result<String, PhonePeError> {
        let json = serde_json::to_vec(payload).map_err(|e| PhonePeError::Transport(e.to_string()))?;
        let payload_base64 = BASE64.encode(json);
        let checksum = pay_checksum(&payload_base64, self.config.salt_key.expose(), self.config.salt_index);
        let body = serde_json::json!({ "request": payload_base64 });
        let request = CLIENT.with(|client| {
            client
                .post(self.url(PAY_PATH))
                .insert_header(("X-VERIFY", checksum))
                .insert_header(("Accept", "application/json"))
        });
        let (status, bytes) = call(request.send_json(&body)).await?;
        let answer: PayResponse =
            serde_json::from_slice(&bytes).map_err(|e| PhonePeError::Unreadable { status, detail: e.to_string() })?;
        if !(200..300).contains(&status) || !answer.success {
            return Err(PhonePeError::Refused {
                status,
                code: answer.code,
                message: answer.message.unwrap_or_default(),
            });
        }
        let url = answer
            .data
            .as_ref()
            .and_then(|d| d.pointer("/instrumentResponse/redirectInfo/url"))
            .and_then(|u| u.as_str())
            .filter(|u| is_http_url(u))
            .map(str::to_owned);
        url.ok_or_else(|| PhonePeError::Unreadable { status, detail: "no redirect URL in the answer".to_owned() })
    }

    /// Asks the status API about a transaction.
    pub async fn status(&self, merchant_transaction_id: &str) -> Result<StatusResponse, PhonePeError> {
        let path = status_path(&self.config.merchant_id, merchant_transaction_id);
        let checksum = status_checksum(
            &self.config.merchant_id,
            merchant_transaction_id,
            self.config.salt_key.expose(),
            self.config.salt_index,
        );
        let request = CLIENT.with(|client| {
            client
                .get(self.url(&path))
                .insert_header(("X-VERIFY", checksum))
                .insert_header(("X-MERCHANT-ID", self.config.merchant_id.as_str()))
                .insert_header(("Accept", "application/json"))
        });
        let (status, bytes) = call(request.send()).await?;
        let answer: StatusResponse =
            serde_json::from_slice(&bytes).map_err(|e| PhonePeError::Unreadable { status, detail: e.to_string() })?;
        // PhonePe answers a pending or failed payment with a non-2xx status and a body that
        // still reads as a status: only a server error without one is a transport problem.
        if status >= 500 && answer.data.is_none() {
            return Err(PhonePeError::Refused {
                status,
                code: answer.code,
                message: answer.message.unwrap_or_default(),
            });
        }
        Ok(answer)
    }

    /// Whether a callback's `X-VERIFY` header matches its `response`.
    pub fn verify_callback(&self, header: &str, response_base64: &str) -> bool {
        verify_callback(header, response_base64, self.config.salt_key.expose(), self.config.salt_index)
    }
}

fn is_http_url(url: &str) -> bool {
    url.starts_with("https://") || url.starts_with("http://")
}

/// Sends a request and reads the body, all within [`CALL_TIMEOUT`].
async fn call(send: awc::SendClientRequest) -> Result<(u16, actix_web::web::Bytes), PhonePeError> {
    let exchange = async {
        let mut response = send.await.map_err(|e| PhonePeError::Transport(e.to_string()))?;
        let status = response.status().as_u16();
        let bytes = response
            .body()
            .limit(MAX_RESPONSE_BYTES)
            .await
            .map_err(|e| PhonePeError::Unreadable { status, detail: e.to_string() })?;
        Ok((status, bytes))
    };
    tokio::time::timeout(CALL_TIMEOUT, exchange).await.map_err(|_| PhonePeError::Transport("timed out".to_owned()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    const SALT: &str = "099eb0cd-02cf-4e2a-8aca-3e6c6aff0399";

    #[test]
    fn sha256_hex_matches_known_vectors() {
        assert_eq!(sha256_hex(b""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn checksums_cover_the_documented_material() {
        let payload = "eyJhIjoxfQ==";
        assert_eq!(
            pay_checksum(payload, SALT, 1),
            format!("{}###1", sha256_hex(format!("{payload}/pg/v1/pay{SALT}").as_bytes()))
        );
        assert_eq!(
            status_checksum("M1", "KW1TX", SALT, 2),
            format!("{}###2", sha256_hex(format!("/pg/v1/status/M1/KW1TX{SALT}").as_bytes()))
        );
        assert_eq!(
            callback_checksum(payload, SALT, 1),
            format!("{}###1", sha256_hex(format!("{payload}{SALT}").as_bytes()))
        );
    }

    #[test]
    fn callbacks_verify_only_with_the_right_salt_and_index() {
        let response = BASE64.encode(br#"{"success":true,"code":"PAYMENT_SUCCESS"}"#);
        let header = callback_checksum(&response, SALT, 1);
        assert!(verify_callback(&header, &response, SALT, 1));
        assert!(verify_callback(&format!(" {header} "), &response, SALT, 1));
        assert!(!verify_callback(&header, &response, "another-salt", 1));
        assert!(!verify_callback(&header, &response, SALT, 2));
        assert!(!verify_callback(&header, &format!("{response}x"), SALT, 1));
        assert!(!verify_callback("", &response, SALT, 1));
        assert!(!verify_callback(&header.to_uppercase(), &response, SALT, 1));
    }

    fn status(success: bool, code: &str, state: Option<&str>) -> StatusResponse {
        StatusResponse {
            success,
            code: code.to_owned(),
            message: None,
            data: Some(TransactionData {
                merchant_id: Some("M1".to_owned()),
                merchant_transaction_id: "KW1TX".to_owned(),
                transaction_id: Some("T1".to_owned()),
                amount: Some(100_000),
                state: state.map(str::to_owned),
                response_code: None,
            }),
        }
    }

    #[test]
    fn verdicts_follow_code_and_state() {
        assert_eq!(status(true, "PAYMENT_SUCCESS", Some("COMPLETED")).verdict(), Verdict::Succeeded);
        assert_eq!(status(true, "PAYMENT_SUCCESS", None).verdict(), Verdict::Succeeded);
        // A success code with success=false or a pending state is not paid yet.
        assert_eq!(status(false, "PAYMENT_SUCCESS", Some("COMPLETED")).verdict(), Verdict::Pending);
        assert_eq!(status(true, "PAYMENT_SUCCESS", Some("PENDING")).verdict(), Verdict::Pending);
        assert_eq!(status(false, "PAYMENT_ERROR", Some("FAILED")).verdict(), Verdict::Failed("PAYMENT_ERROR".into()));
        assert_eq!(status(false, "PAYMENT_DECLINED", None).verdict(), Verdict::Failed("PAYMENT_DECLINED".into()));
        assert_eq!(status(false, "PAYMENT_PENDING", Some("PENDING")).verdict(), Verdict::Pending);
        assert_eq!(status(false, "INTERNAL_SERVER_ERROR", None).verdict(), Verdict::Pending);
        assert_eq!(status(false, "TRANSACTION_NOT_FOUND", None).verdict(), Verdict::Pending);
    }

    #[test]
    fn callback_bodies_decode_or_say_why_not() {
        let json = r#"{"success":true,"code":"PAYMENT_SUCCESS","message":"ok","data":{"merchantId":"M1",
            "merchantTransactionId":"KW1TX","transactionId":"T1","amount":100000,"state":"COMPLETED",
            "responseCode":"SUCCESS","paymentInstrument":{"type":"UPI"}}}"#;
        let encoded = BASE64.encode(json);
        let body = serde_json::to_vec(&serde_json::json!({ "response": encoded })).expect("json");
        let envelope = callback_envelope(&body).expect("envelope");
        let decoded = decode_response(&envelope.response).expect("decodes");
        assert_eq!(decoded.verdict(), Verdict::Succeeded);
        assert_eq!(decoded.data.as_ref().and_then(|d| d.amount), Some(100_000));
        assert_eq!(callback_envelope(b"not json").err(), Some(DecodeError::Envelope));
        assert_eq!(callback_envelope(br#"{"response": 5}"#).err(), Some(DecodeError::Envelope));
        assert_eq!(decode_response("%%%").err(), Some(DecodeError::Base64));
        assert!(matches!(decode_response(&BASE64.encode("[1,2]")), Err(DecodeError::Json(_))));
    }

    #[test]
    fn pay_payloads_carry_paise_and_the_pay_page_instrument() {
        let payload = PayPayload {
            merchant_id: "M1".into(),
            merchant_transaction_id: "KW1TX".into(),
            merchant_user_id: "KWU7".into(),
            amount: 50_050,
            redirect_url: "https://kw.example/payments/phonepe/return/KW1TX".into(),
            redirect_mode: "REDIRECT".into(),
            callback_url: "https://kw.example/api/payments/phonepe/callback".into(),
            mobile_number: None,
            payment_instrument: PaymentInstrument { kind: "PAY_PAGE".into() },
        };
        let json = serde_json::to_value(&payload).expect("json");
        assert_eq!(json["amount"], 50_050);
        assert_eq!(json["merchantTransactionId"], "KW1TX");
        assert_eq!(json["paymentInstrument"]["type"], "PAY_PAGE");
        assert!(json.get("mobileNumber").is_none());
    }
}
