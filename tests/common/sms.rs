//! A fake SMS provider on loopback, started inside the test: `POST /messages` with
//! `{"to": …, "message": …}` and `Authorization: Bearer <key>`. It refuses a wrong or missing
//! key with 401, answers with a chosen status when told to fail, and keeps every message it
//! accepted.

use std::sync::{Arc, Mutex};

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::{Value, json};

/// One accepted SMS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sms {
    pub to: String,
    pub message: String,
}

#[derive(Debug, Default)]
struct FakeState {
    key: String,
    fail_with: Option<u16>,
    accepted: Vec<Sms>,
    requests: usize,
    unauthorized: usize,
}

/// A running fake provider.
pub struct FakeSms {
    /// Its endpoint (`KILOWATT_SMS_URL`).
    pub url: String,
    /// The key it expects (`KILOWATT_SMS_API_KEY`).
    pub key: String,
    state: Arc<Mutex<FakeState>>,
    handle: ServerHandle,
}

impl Drop for FakeSms {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
    }
}

async fn receive(
    request: HttpRequest,
    body: web::Json<Value>,
    state: web::Data<Arc<Mutex<FakeState>>>,
) -> HttpResponse {
    let mut state = state.lock().expect("fake SMS state");
    state.requests += 1;
    let expected = format!("Bearer {}", state.key);
    let given = request.headers().get("authorization").and_then(|v| v.to_str().ok());
    if given != Some(expected.as_str()) {
        state.unauthorized += 1;
        return HttpResponse::Unauthorized().json(json!({ "error": "bad key" }));
    }
    if let Some(code) = state.fail_with {
        let status = actix_web::http::StatusCode::from_u16(code).expect("status code");
        return HttpResponse::build(status).json(json!({ "error": "failing as told" }));
    }
    let (Some(to), Some(message)) = (body["to"].as_str(), body["message"].as_str()) else {
        return HttpResponse::BadRequest().json(json!({ "error": "to and message are required" }));
    };
    state.accepted.push(Sms { to: to.to_owned(), message: message.to_owned() });
    HttpResponse::Ok().json(json!({ "id": state.accepted.len() }))
}

impl FakeSms {
    /// Starts on a free port with API key `k`.
    pub async fn start() -> Self {
        let key = "k".to_owned();
        let state = Arc::new(Mutex::new(FakeState { key: key.clone(), ..FakeState::default() }));
        let data = web::Data::new(state.clone());
        let server =
            HttpServer::new(move || App::new().app_data(data.clone()).route("/messages", web::post().to(receive)))
                .workers(1)
                .disable_signals()
                .shutdown_timeout(1)
                .bind("127.0.0.1:0")
                .expect("bind fake SMS provider");
        let addr = server.addrs()[0];
        let server = server.run();
        let handle = server.handle();
        actix_rt::spawn(server);
        FakeSms { url: format!("http://{addr}/messages"), key, state, handle }
    }

    /// The settings that point a Kilowatt server at this fake.
    pub fn settings(&self) -> Vec<(&'static str, String)> {
        vec![
            ("KILOWATT_SMS_PROVIDER", "http".to_owned()),
            ("KILOWATT_SMS_URL", self.url.clone()),
            ("KILOWATT_SMS_API_KEY", self.key.clone()),
        ]
    }

    /// From now on answer every authorised request with `code` (`None`: accept again).
    pub fn fail_with(&self, code: Option<u16>) {
        self.state.lock().expect("fake SMS state").fail_with = code;
    }

    /// Every SMS accepted so far.
    pub fn messages(&self) -> Vec<Sms> {
        self.state.lock().expect("fake SMS state").accepted.clone()
    }

    /// SMS accepted for `phone`.
    pub fn messages_to(&self, phone: &str) -> Vec<Sms> {
        self.messages().into_iter().filter(|m| m.to == phone).collect()
    }

    /// Requests received, accepted or not.
    pub fn requests(&self) -> usize {
        self.state.lock().expect("fake SMS state").requests
    }

    /// Requests refused for a wrong or missing key.
    pub fn unauthorized(&self) -> usize {
        self.state.lock().expect("fake SMS state").unauthorized
    }
}
