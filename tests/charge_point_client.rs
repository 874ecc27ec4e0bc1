//! The simulated charge point of `tests/common/charge_point.rs`, checked against a tiny fake
//! central system (actix-web-actors on loopback): subprotocol, CALL round trips, CALLERRORs,
//! server CALLs answered while a CALL of ours waits, trigger follow-ups, raw frames and both
//! ways of closing.

#[path = "common/charge_point.rs"]
mod charge_point;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::{Actor, ActorContext, StreamHandler};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use actix_web_actors::ws;
use charge_point::{ChargePoint, ConnectError, ConnectOptions};
use kilowatt_actors::ocpp::{CallError, ErrorCode, Frame, call_error_frame, call_frame, call_result_frame};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(5);

/// What the fake central system saw: every inbound frame as JSON, plus connection events.
type Seen = Arc<Mutex<Vec<Value>>>;

/// One charger connection to the fake central system.
struct FakeCentralSystem {
    seen: Seen,
    /// A Heartbeat held back until the charger answers our GetConfiguration.
    held_heartbeat: Option<String>,
}

impl FakeCentralSystem {
    fn answer_call(&mut self, message_id: &str, action: &str, payload: &Value, ctx: &mut ws::WebsocketContext<Self>) {
        let answer = match action {
            "BootNotification" => {
                Ok(json!({"status": "Accepted", "currentTime": "2026-01-01T00:00:00.000Z", "interval": 300}))
            }
            "StatusNotification" => Ok(json!({})),
            "Heartbeat" => {
                // Ask the charger something before answering: its reply must not wait on ours.
                self.held_heartbeat = Some(message_id.to_owned());
                ctx.text(call_frame("cs-2", "GetConfiguration", &json!({"key": ["HeartbeatInterval", "Nope"]})));
                return;
            }
            "DataTransfer" if payload["messageId"] == "close" => {
                ctx.text(call_result_frame(message_id, &json!({"status": "Accepted"})));
                ctx.close(Some(ws::CloseCode::Policy.into()));
                ctx.stop();
                return;
            }
            other => Err(CallError::new(ErrorCode::NotImplemented, format!("{other} is not known here"))),
        };
        ctx.text(match answer {
            Ok(result) => call_result_frame(message_id, &result),
            Err(error) => call_error_frame(message_id, &error),
        });
    }
}

impl Actor for FakeCentralSystem {
    type Context = ws::WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let trigger = json!({"requestedMessage": "StatusNotification", "connectorId": 2});
        ctx.text(call_frame("cs-1", "TriggerMessage", &trigger));
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for FakeCentralSystem {
    fn handle(&mut self, message: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        let text = match message {
            Ok(ws::Message::Text(text)) => text,
            Ok(ws::Message::Ping(data)) => return ctx.pong(&data),
            Ok(ws::Message::Close(reason)) => {
                let code = reason.as_ref().map(|reason| u16::from(reason.code));
                self.seen.lock().expect("lock").push(json!({"closedByCharger": code}));
                ctx.close(reason);
                return ctx.stop();
            }
            Ok(_) => return,
            Err(_) => return ctx.stop(),
        };
        self.seen.lock().expect("lock").push(serde_json::from_str(&text).unwrap_or(Value::Null));
        match Frame::parse(&text) {
            Ok(Frame::Call(call)) => self.answer_call(&call.message_id, &call.action, &call.payload, ctx),
            Ok(Frame::CallResult(result)) if result.message_id == "cs-2" => {
                if let Some(id) = self.held_heartbeat.take() {
                    ctx.text(call_result_frame(&id, &json!({"currentTime": "2026-01-01T00:00:00.000Z"})));
                }
            }
            Ok(_) => {}
            Err(error) => {
                if let Some(reply) = error.reply_json() {
                    ctx.text(reply);
                }
            }
        }
    }
}

async fn ocpp(req: HttpRequest, stream: web::Payload, seen: web::Data<Seen>) -> Result<HttpResponse, actix_web::Error> {
    if req.path().ends_with("/refused") {
        return Ok(HttpResponse::Unauthorized().finish());
    }
    seen.lock().expect("lock").push(json!({"connected": req.path()}));
    let actor = FakeCentralSystem { seen: seen.get_ref().clone(), held_heartbeat: None };
    ws::WsResponseBuilder::new(actor, &req, stream).protocols(&["ocpp1.6"]).start()
}

/// Starts the fake central system on a free loopback port: its `ws://` base URL and its log.
fn start_fake_central_system() -> (String, Seen) {
    let seen = Seen::default();
    let data = web::Data::new(seen.clone());
    let server = HttpServer::new(move || App::new().app_data(data.clone()).route("/{path:.*}", web::get().to(ocpp)))
        .workers(1)
        .disable_signals()
        .bind("127.0.0.1:0")
        .expect("bind the fake central system");
    let addr = server.addrs()[0];
    actix_web::rt::spawn(server.run());
    (format!("ws://{addr}"), seen)
}

/// Waits until the fake central system has seen a frame matching `found`.
async fn wait_seen(seen: &Seen, what: &str, found: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..100 {
        if let Some(value) = seen.lock().expect("lock").iter().find(|value| found(value)).cloned() {
            return value;
        }
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the fake central system never saw {what}: {:?}", seen.lock().expect("lock"));
}

#[actix_web::test]
async fn talks_ocpp_with_a_central_system_and_notices_the_close() {
    let (url, seen) = start_fake_central_system();
    let cp = ChargePoint::connect(&url, "CP-1").await.expect("connects");
    assert_eq!(cp.negotiated_protocol().as_deref(), Some("ocpp1.6"));

    // The server's TriggerMessage is answered, recorded, and followed by the StatusNotification.
    let trigger = cp.expect_call("TriggerMessage", WAIT).await.expect("TriggerMessage arrives");
    assert_eq!(trigger["requestedMessage"], "StatusNotification");
    assert_eq!(cp.received_calls()[0].0, "TriggerMessage");
    let answer = wait_seen(&seen, "the TriggerMessage answer", |v| v[0] == 3 && v[1] == "cs-1").await;
    assert_eq!(answer[2], json!({"status": "Accepted"}));
    let status = wait_seen(&seen, "the StatusNotification", |v| v[0] == 2 && v[2] == "StatusNotification").await;
    assert_eq!((&status[3]["connectorId"], &status[3]["status"]), (&json!(2), &json!("Available")));

    let boot = cp.boot().await.expect("boot accepted");
    assert_eq!((&boot["status"], &boot["interval"]), (&json!("Accepted"), &json!(300)));

    // Answered only after the charger answers a GetConfiguration sent meanwhile.
    let heartbeat = cp.heartbeat().await.expect("heartbeat answered");
    assert!(heartbeat["currentTime"].is_string());
    let config = cp.expect_call("GetConfiguration", WAIT).await.expect("GetConfiguration arrives");
    assert_eq!(config["key"][1], "Nope");
    let config_answer = wait_seen(&seen, "the GetConfiguration answer", |v| v[1] == "cs-2").await;
    assert_eq!(config_answer[2]["configurationKey"][0]["key"], "HeartbeatInterval");
    assert_eq!(config_answer[2]["unknownKey"], json!(["Nope"]));

    let error = cp.call("Nonsense", json!({})).await.expect_err("unknown action refused");
    assert_eq!(error.code, "NotImplemented");

    cp.send_raw(r#"[2,"raw-1","Heartbeat",{"#).await;
    let unsolicited = cp.next_unsolicited(WAIT).await.expect("CALLERROR for the raw frame");
    assert_eq!(
        (&unsolicited[0], &unsolicited[1], &unsolicited[2]),
        (&json!(4), &json!("raw-1"), &json!("FormationViolation"))
    );
    assert_eq!(cp.next_unsolicited(Duration::from_millis(100)).await, None);

    assert!(!cp.is_closed());
    let bye = cp.call("DataTransfer", json!({"vendorId": "test", "messageId": "close"})).await;
    assert_eq!(bye.expect("answered before the close")["status"], "Accepted");
    assert_eq!(cp.closed(WAIT).await, Some(Some(1008)));
    assert!(cp.is_closed());
    assert!(cp.heartbeat().await.expect_err("closed").is_connection_closed());
    assert!(cp.follow_up_answers().iter().any(|(action, answer)| action == "StatusNotification" && answer.is_ok()));
}

#[actix_web::test]
async fn connects_under_a_prefix_closes_cleanly_and_reports_refusals() {
    let (url, seen) = start_fake_central_system();
    let options = ConnectOptions { path_prefix: "/ocpp".to_owned(), ..ConnectOptions::default() };
    let cp = ChargePoint::connect_with(&url, "CP 2", options).await.expect("connects");
    assert_eq!(cp.id, "CP 2");
    wait_seen(&seen, "the connection", |v| v["connected"] == "/ocpp/CP%202").await;
    cp.close().await;
    wait_seen(&seen, "the close", |v| v["closedByCharger"] == 1000).await;

    match ChargePoint::connect(&url, "refused").await {
        Err(error) => assert_eq!(error, ConnectError::Http(401)),
        Ok(_) => panic!("the handshake should be refused"),
    }
}
