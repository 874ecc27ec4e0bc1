//! A fake PhonePe PG v1 gateway on loopback, started inside the test process: it serves the
//! pay request (`POST /pg/v1/pay`) and the status API (`GET /pg/v1/status/{m}/{t}`), verifies
//! every `X-VERIFY` checksum (401 with PhonePe-style error JSON on a mismatch, and records it),
//! replies per merchant transaction ID as told (success, failure, pending, garbage or malformed
//! JSON), and fires server-to-server callbacks at Kilowatt: signed, forged, or replayed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// What the fake answers about a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// Paid (`PAYMENT_SUCCESS`, `COMPLETED`).
    Success,
    /// Declined (`PAYMENT_ERROR`, `FAILED`).
    Failure,
    /// Not decided (`PAYMENT_PENDING`, `PENDING`).
    Pending,
    /// Not JSON at all.
    Garbage,
    /// JSON, but not a PhonePe answer.
    Malformed,
}

/// How a fired callback is signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signature {
    /// With the merchant's salt key: genuine.
    Valid,
    /// With another key: forged.
    Forged,
    /// No `X-VERIFY` header.
    Missing,
}

/// A recorded checksum mismatch.
#[derive(Debug, Clone)]
pub struct ChecksumFailure {
    pub path: String,
    pub given: String,
}

#[derive(Default)]
struct FakeState {
    url: String,
    merchant_id: String,
    salt_key: String,
    salt_index: u32,
    status_replies: HashMap<String, Reply>,
    pay_reply: Option<Reply>,
    pay_requests: Vec<Value>,
    status_calls: Vec<String>,
    checksum_failures: Vec<ChecksumFailure>,
    last_callback: Option<(String, String, Option<String>)>,
}

/// A running fake gateway.
pub struct FakePhonePe {
    /// Its base URL (`KILOWATT_PHONEPE_BASE_URL`).
    pub url: String,
    pub merchant_id: String,
    pub salt_key: String,
    pub salt_index: u32,
    state: Arc<Mutex<FakeState>>,
    handle: ServerHandle,
    client: awc::Client,
}

pub fn sha256_hex(input: &str) -> String {
    Sha256::digest(input.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn checksum(material: &str, salt_key: &str, salt_index: u32) -> String {
    format!("{}###{salt_index}", sha256_hex(&format!("{material}{salt_key}")))
}

fn unauthorized(state: &mut FakeState, path: &str, given: &str) -> HttpResponse {
    state.checksum_failures.push(ChecksumFailure { path: path.to_owned(), given: given.to_owned() });
    HttpResponse::Unauthorized().json(json!({
        "success": false,
        "code": "AUTHORIZATION_FAILED",
        "message": "Checksum verification failed",
        "data": {}
    }))
}

fn header<'a>(req: &'a HttpRequest, name: &str) -> &'a str {
    req.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// The decoded status a reply stands for.
fn status_json(state: &FakeState, merchant_transaction_id: &str, reply: Reply, amount: Option<i64>) -> Value {
    let amount = amount.or_else(|| paid_amount(state, merchant_transaction_id)).unwrap_or(0);
    let (success, code, tx_state, response_code) = match reply {
        Reply::Success => (true, "PAYMENT_SUCCESS", "COMPLETED", "SUCCESS"),
        Reply::Failure => (false, "PAYMENT_ERROR", "FAILED", "PAYMENT_DECLINED"),
        _ => (false, "PAYMENT_PENDING", "PENDING", "PENDING"),
    };
    json!({
        "success": success,
        "code": code,
        "message": "Your request has been processed",
        "data": {
            "merchantId": state.merchant_id,
            "merchantTransactionId": merchant_transaction_id,
            "transactionId": format!("T{merchant_transaction_id}"),
            "amount": amount,
            "state": tx_state,
            "responseCode": response_code,
            "paymentInstrument": { "type": "UPI", "utr": "206378866112" }
        }
    })
}

fn paid_amount(state: &FakeState, merchant_transaction_id: &str) -> Option<i64> {
    state
        .pay_requests
        .iter()
        .rev()
        .find(|p| p["merchantTransactionId"] == merchant_transaction_id)
        .and_then(|p| p["amount"].as_i64())
}

async fn pay(req: HttpRequest, body: web::Bytes, state: web::Data<Arc<Mutex<FakeState>>>) -> HttpResponse {
    let mut state = state.lock().expect("fake state");
    let Ok(envelope) = serde_json::from_slice::<Value>(&body) else {
        return HttpResponse::BadRequest()
            .json(json!({"success": false, "code": "BAD_REQUEST", "message": "Invalid JSON"}));
    };
    let request = envelope["request"].as_str().unwrap_or("").to_owned();
    let given = header(&req, "X-VERIFY").to_owned();
    if given != checksum(&format!("{request}/pg/v1/pay"), &state.salt_key, state.salt_index) {
        return unauthorized(&mut state, "/pg/v1/pay", &given);
    }
    let Some(payload) = BASE64.decode(&request).ok().and_then(|json| serde_json::from_slice::<Value>(&json).ok())
    else {
        return HttpResponse::BadRequest()
            .json(json!({"success": false, "code": "BAD_REQUEST", "message": "Bad payload"}));
    };
    if payload["merchantId"] != state.merchant_id.as_str() {
        return HttpResponse::BadRequest()
            .json(json!({"success": false, "code": "BAD_REQUEST", "message": "Unknown merchant"}));
    }
    state.pay_requests.push(payload.clone());
    let mtid = payload["merchantTransactionId"].as_str().unwrap_or("").to_owned();
    match state.pay_reply {
        Some(Reply::Garbage) => return HttpResponse::BadGateway().body("<html>upstream exploded</html>"),
        Some(Reply::Failure) => {
            return HttpResponse::BadRequest().json(json!({
                "success": false, "code": "BAD_REQUEST", "message": "Please check the inputs you have provided.", "data": {}
            }));
        }
        _ => {}
    }
    HttpResponse::Ok().json(json!({
        "success": true,
        "code": "PAYMENT_INITIATED",
        "message": "Payment initiated",
        "data": {
            "merchantId": state.merchant_id,
            "merchantTransactionId": mtid,
            "instrumentResponse": {
                "type": "PAY_PAGE",
                "redirectInfo": { "url": format!("{}/pay-page/{mtid}", state.url), "method": "GET" }
            }
        }
    }))
}

async fn status(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<Arc<Mutex<FakeState>>>,
) -> HttpResponse {
    let (merchant_id, mtid) = path.into_inner();
    let mut state = state.lock().expect("fake state");
    let status_path = format!("/pg/v1/status/{merchant_id}/{mtid}");
    let given = header(&req, "X-VERIFY").to_owned();
    if given != checksum(&status_path, &state.salt_key, state.salt_index)
        || header(&req, "X-MERCHANT-ID") != merchant_id
        || merchant_id != state.merchant_id
    {
        return unauthorized(&mut state, &status_path, &given);
    }
    state.status_calls.push(mtid.clone());
    let reply = state.status_replies.get(&mtid).copied().unwrap_or(Reply::Pending);
    match reply {
        Reply::Garbage => {
            HttpResponse::Ok().content_type("text/html").body("<html><body>502 Bad Gateway</body></html>")
        }
        Reply::Malformed => HttpResponse::Ok().json(json!({ "success": "yes", "data": [1, 2, 3] })),
        reply => HttpResponse::Ok().json(status_json(&state, &mtid, reply, None)),
    }
}

impl FakePhonePe {
    /// Starts the fake on a free loopback port.
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(FakeState {
            merchant_id: "KWTESTMERCHANT".to_owned(),
            salt_key: "4a1b2c3d-5e6f-7a8b-9c0d-e1f2a3b4c5d6".to_owned(),
            salt_index: 1,
            ..FakeState::default()
        }));
        let data = web::Data::new(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/pg/v1/pay", web::post().to(pay))
                .route("/pg/v1/status/{merchant}/{transaction}", web::get().to(status))
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(1)
        .bind("127.0.0.1:0")
        .expect("bind fake PhonePe");
        let addr = server.addrs()[0];
        let server = server.run();
        let handle = server.handle();
        actix_rt::spawn(server);
        let url = format!("http://{addr}");
        let (merchant_id, salt_key, salt_index) = {
            let mut s = state.lock().expect("fake state");
            s.url = url.clone();
            (s.merchant_id.clone(), s.salt_key.clone(), s.salt_index)
        };
        let client = awc::Client::builder().timeout(Duration::from_secs(30)).finish();
        Self { url, merchant_id, salt_key, salt_index, state, handle, client }
    }

    /// The settings that point a Kilowatt server at this fake.
    pub fn settings(&self) -> Vec<(&'static str, String)> {
        vec![
            ("KILOWATT_PAYMENT_PROVIDER", "phonepe".to_owned()),
            ("KILOWATT_PHONEPE_MERCHANT_ID", self.merchant_id.clone()),
            ("KILOWATT_PHONEPE_SALT_KEY", self.salt_key.clone()),
            ("KILOWATT_PHONEPE_SALT_INDEX", self.salt_index.to_string()),
            ("KILOWATT_PHONEPE_BASE_URL", self.url.clone()),
        ]
    }

    /// Tells the status API what to answer about a transaction (default: pending).
    pub fn set_status(&self, merchant_transaction_id: &str, reply: Reply) {
        self.state.lock().expect("fake state").status_replies.insert(merchant_transaction_id.to_owned(), reply);
    }

    /// Tells the pay endpoint to refuse (`Failure`), answer garbage (`Garbage`) or accept (`Success`).
    pub fn set_pay_reply(&self, reply: Reply) {
        self.state.lock().expect("fake state").pay_reply = Some(reply);
    }

    /// Decoded payloads of pay requests that passed the checksum.
    pub fn pay_requests(&self) -> Vec<Value> {
        self.state.lock().expect("fake state").pay_requests.clone()
    }

    /// Merchant transaction IDs the status API was asked about (checksum passed).
    pub fn status_calls(&self) -> Vec<String> {
        self.state.lock().expect("fake state").status_calls.clone()
    }

    /// Requests refused for a bad checksum.
    pub fn checksum_failures(&self) -> Vec<ChecksumFailure> {
        self.state.lock().expect("fake state").checksum_failures.clone()
    }

    /// Fires a callback at `target` (Kilowatt's callback URL) saying `reply` about a
    /// transaction, for the amount it was paid with unless `amount` (paise) overrides it.
    pub async fn fire_callback(
        &self,
        target: &str,
        merchant_transaction_id: &str,
        reply: Reply,
        signature: Signature,
        amount: Option<i64>,
    ) -> (u16, Value) {
        let (response, x_verify) = {
            let state = self.state.lock().expect("fake state");
            let decoded = status_json(&state, merchant_transaction_id, reply, amount);
            let response = BASE64.encode(decoded.to_string());
            let x_verify = match signature {
                Signature::Valid => Some(checksum(&response, &state.salt_key, state.salt_index)),
                Signature::Forged => Some(checksum(&response, "forged-salt-key", state.salt_index)),
                Signature::Missing => None,
            };
            (response, x_verify)
        };
        let body = json!({ "response": response }).to_string();
        self.state.lock().expect("fake state").last_callback =
            Some((target.to_owned(), body.clone(), x_verify.clone()));
        self.send(target, body, x_verify).await
    }

    /// Sends the last callback again, byte for byte.
    pub async fn replay_last_callback(&self) -> (u16, Value) {
        let (target, body, x_verify) =
            self.state.lock().expect("fake state").last_callback.clone().expect("a callback was fired");
        self.send(&target, body, x_verify).await
    }

    async fn send(&self, target: &str, body: String, x_verify: Option<String>) -> (u16, Value) {
        let mut request = self.client.post(target).insert_header(("content-type", "application/json"));
        if let Some(x_verify) = x_verify {
            request = request.insert_header(("X-VERIFY", x_verify));
        }
        let mut response = request.send_body(body).await.expect("callback sent");
        let bytes = response.body().await.expect("callback answer");
        (response.status().as_u16(), serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    /// Stops the fake.
    pub async fn stop(&self) {
        self.handle.stop(false).await;
    }
}
