//! The ChargerActor: one per connected charger. It owns the WebSocket (framing, ping/pong,
//! close), keeps at most one outgoing CALL in flight with a timeout, and feeds incoming CALLs
//! one at a time, in order, to the plain functions in [`handlers`]. It registers with the
//! Registry when it starts and unregisters when it stops, on every exit path.

pub mod command;
pub mod handlers;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_web::{HttpRequest, HttpResponse, web};
use actix_web_actors::ws;
use chrono::{DateTime, Utc};
use serde_json::json;
use tokio::sync::{mpsc, oneshot};

use self::command::{CommandError, CommandQueue, InFlight, Pending, SendCommand};
use self::handlers::ConnectionState;
use crate::bus::{Bus, charger_topic};
use crate::clock::Clock;
use crate::ocpp::messages::TriggerMessageRequest;
use crate::ocpp::{
    CallError, CentralSystemRequest, ChargePointRequest, Disposition, ErrorCode, Frame, MessageTrigger,
    call_error_frame, call_result_frame,
};
use crate::registry::{CloseConnection, CloseReason, ConnectionHandle, RegisterCharger, Registry, UnregisterCharger};
use crate::store::chargers::{self, ChargerIdentity};
use crate::store::ocpp_log::{LoggedFrame, OcppLog};
use crate::store::{DbPool, pool};

/// Settings for charger connections.
#[derive(Debug, Clone)]
pub struct ChargerSettings {
    /// Heartbeat interval given at boot.
    pub heartbeat_interval: Duration,
    /// WebSocket ping interval; a peer silent for two intervals is dropped.
    pub ping_interval: Duration,
    /// How long a command waits for the charger's answer.
    pub call_timeout: Duration,
    /// Largest frame accepted; larger ones close the socket with 1009.
    pub max_frame_bytes: usize,
    /// A driver's idTag is refused (Blocked) when the wallet holds less than this.
    pub min_start_balance: rust_decimal::Decimal,
}

/// What every charger connection shares.
pub struct ChargerEnv {
    /// Database.
    pub pool: DbPool,
    /// Time.
    pub clock: Clock,
    /// Live updates.
    pub bus: Bus,
    /// The registry.
    pub registry: Addr<Registry>,
    /// The message log.
    pub log: OcppLog,
    /// Settings.
    pub settings: ChargerSettings,
}

/// Incoming CALLs a connection may have queued before it answers "busy".
const INBOX: usize = 64;

static CONNECTION_TOKENS: AtomicU64 = AtomicU64::new(1);

/// A CALL waiting to be handled.
struct IncomingCall {
    message_id: String,
    action: String,
    payload: serde_json::Value,
    received: Instant,
}

/// What the message log records about a frame, known where the frame is made or read
/// (so nothing is parsed twice just to log it).
#[derive(Debug, Default)]
struct FrameMeta {
    message_type: Option<i16>,
    message_id: Option<String>,
    action: Option<String>,
    error_code: Option<String>,
}

impl FrameMeta {
    fn call(message_id: &str, action: &str) -> Self {
        Self {
            message_type: Some(2),
            message_id: Some(message_id.into()),
            action: Some(action.into()),
            error_code: None,
        }
    }

    fn result(message_id: &str, action: Option<&str>) -> Self {
        Self {
            message_type: Some(3),
            message_id: Some(message_id.into()),
            action: action.map(Into::into),
            error_code: None,
        }
    }

    fn error(message_id: &str, action: Option<&str>, code: ErrorCode) -> Self {
        Self {
            message_type: Some(4),
            message_id: Some(message_id.into()),
            action: action.map(Into::into),
            error_code: Some(code.as_str().into()),
        }
    }

    fn of(frame: &Frame, action: Option<&str>) -> Self {
        match frame {
            Frame::Call(call) => Self::call(&call.message_id, &call.action),
            Frame::CallResult(result) => Self::result(&result.message_id, action),
            Frame::CallError(error) => Self::error(&error.message_id, action, error.error.code),
        }
    }
}

/// A frame the worker wants sent.
#[derive(Message)]
#[rtype(result = "()")]
struct Outbound(String, FrameMeta);

/// Logs and counts a CALLERROR we answer a charger's CALL with.
fn record_rejection(charge_point_id: &str, action: &str, error: &CallError) {
    tracing::warn!(
        %charge_point_id,
        %action,
        code = error.code.as_str(),
        description = %error.description,
        "rejected message from charger"
    );
    metrics::counter!("ocpp_messages_total", "action" => action.to_string(), "outcome" => "rejected").increment(1);
    metrics::counter!("ocpp_call_errors_total", "code" => error.code.as_str(), "direction" => "out").increment(1);
}

/// The actor serving one charger's socket.
pub struct ChargerActor {
    identity: ChargerIdentity,
    env: Arc<ChargerEnv>,
    token: u64,
    connected_at: DateTime<Utc>,
    inbox: Option<mpsc::Sender<IncomingCall>>,
    commands: CommandQueue,
    last_heard: Instant,
    fragment: Option<String>,
}

/// Upgrades the request to an OCPP 1.6J WebSocket served by a new [`ChargerActor`]. The caller
/// has already authenticated the charger and checked the sub-protocol.
pub fn start(
    identity: ChargerIdentity,
    env: Arc<ChargerEnv>,
    req: &HttpRequest,
    stream: web::Payload,
) -> Result<HttpResponse, actix_web::Error> {
    let max_frame = env.settings.max_frame_bytes;
    let actor = ChargerActor {
        identity,
        env: env.clone(),
        token: CONNECTION_TOKENS.fetch_add(1, Ordering::Relaxed),
        // Wall-clock time, not the (possibly manual) clock: it tells connections apart.
        connected_at: Utc::now(),
        inbox: None,
        commands: CommandQueue::default(),
        last_heard: Instant::now(),
        fragment: None,
    };
    ws::WsResponseBuilder::new(actor, req, stream).protocols(&["ocpp1.6"]).frame_size(max_frame).start()
}

impl ChargerActor {
    fn log(&self, direction: &'static str, text: &str, meta: FrameMeta) {
        self.env.log.record(LoggedFrame {
            charge_point_id: self.identity.charge_point_id.clone(),
            direction,
            message_type: meta.message_type,
            message_id: meta.message_id,
            action: meta.action,
            payload: text.to_string(),
            error_code: meta.error_code,
            created_at: self.env.clock.now(),
        });
    }

    fn send_text(&mut self, text: String, meta: FrameMeta, ctx: &mut ws::WebsocketContext<Self>) {
        self.log("out", &text, meta);
        ctx.text(text);
    }

    fn on_text(&mut self, text: &str, ctx: &mut ws::WebsocketContext<Self>) {
        let frame = match Frame::parse(text) {
            Ok(frame) => frame,
            Err(error) => {
                self.log("in", text, FrameMeta { message_id: error.message_id.clone(), ..FrameMeta::default() });
                tracing::warn!(
                    charge_point_id = %self.identity.charge_point_id,
                    code = error.code.as_str(),
                    description = %error.description,
                    "malformed frame from charger"
                );
                metrics::counter!("ocpp_frames_rejected_total", "code" => error.code.as_str()).increment(1);
                match error.disposition {
                    Disposition::Reply => {
                        if let (Some(reply), Some(id)) = (error.reply_json(), error.message_id.as_deref()) {
                            metrics::counter!("ocpp_call_errors_total", "code" => error.code.as_str(), "direction" => "out").increment(1);
                            self.send_text(reply, FrameMeta::error(id, None, error.code), ctx);
                        }
                    }
                    Disposition::FailPending => {
                        if let Some(in_flight) = error.message_id.as_deref().and_then(|id| self.commands.take_if(id)) {
                            ctx.cancel_future(in_flight.timeout);
                            let action = in_flight.pending.request.action().to_string();
                            let reason = error.description.clone();
                            let _ = in_flight.pending.reply.send(Err(CommandError::InvalidResponse { action, reason }));
                            self.pump(ctx);
                        }
                    }
                    Disposition::Ignore => {}
                }
                return;
            }
        };
        // A result or error answers our in-flight CALL, whose action names it in the log.
        let answered_action = match &frame {
            Frame::Call(_) => None,
            other => self
                .commands
                .in_flight
                .as_ref()
                .filter(|f| f.message_id == other.message_id())
                .map(|f| f.pending.request.action()),
        };
        self.log("in", text, FrameMeta::of(&frame, answered_action));
        match frame {
            Frame::Call(call) => {
                let Some(inbox) = &self.inbox else { return };
                let message_id = call.message_id.clone();
                let action = call.action.clone();
                let incoming = IncomingCall {
                    message_id: call.message_id,
                    action: call.action,
                    payload: call.payload,
                    received: Instant::now(),
                };
                if inbox.try_send(incoming).is_err() {
                    let error =
                        CallError::new(ErrorCode::GenericError, "Too many messages in flight; slow down and retry.");
                    record_rejection(&self.identity.charge_point_id, &action, &error);
                    let meta = FrameMeta::error(&message_id, Some(&action), error.code);
                    self.send_text(call_error_frame(&message_id, &error), meta, ctx);
                }
            }
            Frame::CallResult(result) => {
                let Some(in_flight) = self.commands.take_if(&result.message_id) else {
                    tracing::warn!(charge_point_id = %self.identity.charge_point_id, message_id = %result.message_id, "CALLRESULT for no outstanding CALL: ignored");
                    return;
                };
                ctx.cancel_future(in_flight.timeout);
                let action = in_flight.pending.request.action().to_string();
                let outcome = match in_flight.pending.request.parse_response(&result.payload) {
                    Ok(_) => {
                        metrics::counter!("ocpp_commands_total", "action" => action.clone(), "result" => "answered")
                            .increment(1);
                        Ok(result.payload)
                    }
                    Err(error) => {
                        metrics::counter!("ocpp_commands_total", "action" => action.clone(), "result" => "invalid")
                            .increment(1);
                        Err(CommandError::InvalidResponse { action, reason: error.description })
                    }
                };
                let _ = in_flight.pending.reply.send(outcome);
                self.pump(ctx);
            }
            Frame::CallError(error) => {
                let Some(in_flight) = self.commands.take_if(&error.message_id) else { return };
                ctx.cancel_future(in_flight.timeout);
                let action = in_flight.pending.request.action().to_string();
                metrics::counter!("ocpp_commands_total", "action" => action.clone(), "result" => "rejected")
                    .increment(1);
                metrics::counter!("ocpp_call_errors_total", "code" => error.error.code.as_str(), "direction" => "in")
                    .increment(1);
                let _ = in_flight.pending.reply.send(Err(CommandError::Rejected {
                    action,
                    code: error.error.code.as_str().to_string(),
                    description: error.error.description,
                }));
                self.pump(ctx);
            }
        }
    }

    /// Sends the next waiting command if none is in flight.
    fn pump(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        if self.commands.in_flight.is_some() {
            return;
        }
        let Some(pending) = self.commands.waiting.pop_front() else { return };
        if pending.reply.is_closed() {
            return self.pump(ctx);
        }
        let message_id = self.commands.next_message_id();
        let text = pending.request.to_call(message_id.clone()).to_json();
        let meta = FrameMeta::call(&message_id, pending.request.action());
        self.send_text(text, meta, ctx);
        let timeout = self.env.settings.call_timeout;
        let id_for_timeout = message_id.clone();
        let handle = ctx.run_later(timeout, move |actor, ctx| {
            if let Some(in_flight) = actor.commands.take_if(&id_for_timeout) {
                let action = in_flight.pending.request.action().to_string();
                tracing::warn!(charge_point_id = %actor.identity.charge_point_id, %action, "command timed out");
                metrics::counter!("ocpp_commands_total", "action" => action.clone(), "result" => "timeout")
                    .increment(1);
                let _ = in_flight.pending.reply.send(Err(CommandError::Timeout { action, seconds: timeout.as_secs() }));
                actor.pump(ctx);
            }
        });
        self.commands.in_flight = Some(InFlight { message_id, pending, timeout: handle });
    }

    /// Asks the charger for its current state after a reconnect, so our view is never stale.
    fn request_status(&self, ctx: &mut ws::WebsocketContext<Self>) {
        let request = CentralSystemRequest::TriggerMessage(TriggerMessageRequest {
            requested_message: MessageTrigger::StatusNotification,
            connector_id: None,
        });
        let addr = ctx.address();
        let charge_point_id = self.identity.charge_point_id.clone();
        actix_rt::spawn(async move {
            if let Ok(Err(error)) = addr.send(SendCommand(request)).await {
                tracing::info!(%charge_point_id, %error, "status refresh after reconnect not answered");
            }
        });
    }
}

/// Runs the connection's incoming CALLs one at a time, in arrival order.
async fn serve_calls(
    env: Arc<ChargerEnv>,
    mut state: ConnectionState,
    addr: Addr<ChargerActor>,
    mut inbox: mpsc::Receiver<IncomingCall>,
) {
    while let Some(call) = inbox.recv().await {
        let reply = match ChargePointRequest::parse(&call.action, &call.payload) {
            Err(error) => Err(error),
            Ok(request) => handlers::handle(&env, &mut state, request).await,
        };
        let elapsed = call.received.elapsed().as_secs_f64();
        let (text, meta) = match reply {
            Ok(response) => {
                metrics::counter!("ocpp_messages_total", "action" => call.action.clone(), "outcome" => "ok")
                    .increment(1);
                (
                    call_result_frame(&call.message_id, &response.payload()),
                    FrameMeta::result(&call.message_id, Some(&call.action)),
                )
            }
            Err(error) => {
                record_rejection(&state.charge_point_id, &call.action, &error);
                let meta = FrameMeta::error(&call.message_id, Some(&call.action), error.code);
                (call_error_frame(&call.message_id, &error), meta)
            }
        };
        metrics::histogram!("ocpp_message_duration_seconds", "action" => call.action).record(elapsed);
        addr.do_send(Outbound(text, meta));
    }
}

impl Actor for ChargerActor {
    type Context = ws::WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(256);
        let addr = ctx.address();
        self.env.registry.do_send(RegisterCharger {
            charge_point_id: self.identity.charge_point_id.clone(),
            handle: ConnectionHandle {
                token: self.token,
                close: addr.clone().recipient(),
                commands: addr.clone().recipient(),
            },
        });
        metrics::gauge!("ocpp_connected_chargers").increment(1.0);
        tracing::info!(charge_point_id = %self.identity.charge_point_id, "charger connected");

        let (sender, receiver) = mpsc::channel(INBOX);
        self.inbox = Some(sender);
        let state = ConnectionState {
            charger_id: self.identity.id,
            charge_point_id: self.identity.charge_point_id.clone(),
            registration_status: self.identity.registration_status.clone(),
            last_seen_written: Some(self.connected_at),
        };
        let env = self.env.clone();
        let (charger_id, connected_at) = (self.identity.id, self.connected_at);
        let charge_point_id = self.identity.charge_point_id.clone();
        ctx.spawn(
            async move {
                // Online before the first message is handled, so nothing reads a stale "offline".
                match pool::connection(&env.pool).await {
                    Ok(mut conn) => {
                        if let Err(error) = chargers::mark_connected(&mut conn, charger_id, connected_at).await {
                            tracing::error!(%charge_point_id, %error, "could not mark charger online");
                        }
                    }
                    Err(error) => tracing::error!(%charge_point_id, %error, "could not mark charger online"),
                }
                env.bus.publish(
                    charger_topic(&charge_point_id),
                    "chargerOnline",
                    json!({ "chargePointId": charge_point_id, "online": true }),
                );
                serve_calls(env, state, addr, receiver).await;
            }
            .into_actor(self),
        );

        let ping_interval = self.env.settings.ping_interval;
        ctx.run_interval(ping_interval, move |actor, ctx| {
            if actor.last_heard.elapsed() > ping_interval * 2 {
                tracing::warn!(charge_point_id = %actor.identity.charge_point_id, "no sign of life for two ping intervals: dropping the connection");
                ctx.close(Some(ws::CloseReason { code: ws::CloseCode::Away, description: Some("no pong".into()) }));
                ctx.stop();
            } else {
                ctx.ping(b"kw");
            }
        });
        if self.identity.registration_status == "accepted" {
            self.request_status(ctx);
        }
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        self.commands.fail_all();
        metrics::gauge!("ocpp_connected_chargers").decrement(1.0);
        self.env
            .registry
            .do_send(UnregisterCharger { charge_point_id: self.identity.charge_point_id.clone(), token: self.token });
        let env = self.env.clone();
        let (charger_id, connected_at) = (self.identity.id, self.connected_at);
        let charge_point_id = self.identity.charge_point_id.clone();
        tracing::info!(%charge_point_id, "charger disconnected");
        actix_rt::spawn(async move {
            let now = env.clock.now();
            let marked = match pool::connection(&env.pool).await {
                Ok(mut conn) => chargers::mark_disconnected(&mut conn, charger_id, connected_at, now).await,
                Err(error) => Err(error),
            };
            match marked {
                Ok(true) => env.bus.publish(
                    charger_topic(&charge_point_id),
                    "chargerOffline",
                    json!({ "chargePointId": charge_point_id, "online": false }),
                ),
                Ok(false) => {}
                Err(error) => tracing::error!(%charge_point_id, %error, "could not mark charger offline"),
            }
        });
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for ChargerActor {
    fn handle(&mut self, message: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        self.last_heard = Instant::now();
        match message {
            Ok(ws::Message::Text(text)) => self.on_text(&text, ctx),
            Ok(ws::Message::Ping(bytes)) => ctx.pong(&bytes),
            Ok(ws::Message::Pong(_)) => {}
            Ok(ws::Message::Binary(_)) => {
                tracing::warn!(charge_point_id = %self.identity.charge_point_id, "binary frame from charger: OCPP-J is text only; ignored");
                metrics::counter!("ocpp_frames_rejected_total", "code" => "BinaryFrame").increment(1);
            }
            Ok(ws::Message::Continuation(item)) => self.on_continuation(item, ctx),
            Ok(ws::Message::Close(reason)) => {
                ctx.close(reason);
                ctx.stop();
            }
            Ok(ws::Message::Nop) => {}
            Err(ws::ProtocolError::Overflow) => {
                tracing::warn!(charge_point_id = %self.identity.charge_point_id, max = self.env.settings.max_frame_bytes, "frame too large: closing with 1009");
                metrics::counter!("ocpp_frames_rejected_total", "code" => "FrameTooLarge").increment(1);
                ctx.close(Some(ws::CloseReason {
                    code: ws::CloseCode::Size,
                    description: Some("frame too large".into()),
                }));
                ctx.stop();
            }
            Err(error) => {
                tracing::warn!(charge_point_id = %self.identity.charge_point_id, %error, "WebSocket protocol error: closing");
                ctx.close(Some(ws::CloseReason { code: ws::CloseCode::Protocol, description: None }));
                ctx.stop();
            }
        }
    }
}

impl ChargerActor {
    fn on_continuation(&mut self, item: actix_http::ws::Item, ctx: &mut ws::WebsocketContext<Self>) {
        let max = self.env.settings.max_frame_bytes;
        let append = |buffer: &mut String, bytes: &[u8]| -> bool {
            buffer.push_str(&String::from_utf8_lossy(bytes));
            buffer.len() <= max
        };
        let ok = match item {
            actix_http::ws::Item::FirstText(bytes) => {
                let mut buffer = String::new();
                let ok = append(&mut buffer, &bytes);
                self.fragment = Some(buffer);
                ok
            }
            actix_http::ws::Item::FirstBinary(_) => {
                self.fragment = None;
                true
            }
            actix_http::ws::Item::Continue(bytes) => self.fragment.as_mut().is_none_or(|buffer| append(buffer, &bytes)),
            actix_http::ws::Item::Last(bytes) => {
                if let Some(mut buffer) = self.fragment.take() {
                    if !append(&mut buffer, &bytes) {
                        false
                    } else {
                        self.on_text(&buffer, ctx);
                        true
                    }
                } else {
                    true
                }
            }
        };
        if !ok {
            self.fragment = None;
            ctx.close(Some(ws::CloseReason {
                code: ws::CloseCode::Size,
                description: Some("message too large".into()),
            }));
            ctx.stop();
        }
    }
}

impl Handler<Outbound> for ChargerActor {
    type Result = ();

    fn handle(&mut self, msg: Outbound, ctx: &mut Self::Context) {
        self.send_text(msg.0, msg.1, ctx);
    }
}

impl Handler<SendCommand> for ChargerActor {
    type Result = ResponseFuture<Result<serde_json::Value, CommandError>>;

    fn handle(&mut self, msg: SendCommand, ctx: &mut Self::Context) -> Self::Result {
        let (reply, answer) = oneshot::channel();
        self.commands.waiting.push_back(Pending { request: msg.0, reply });
        self.pump(ctx);
        Box::pin(async move { answer.await.unwrap_or(Err(CommandError::Disconnected)) })
    }
}

impl Handler<CloseConnection> for ChargerActor {
    type Result = ();

    fn handle(&mut self, msg: CloseConnection, ctx: &mut Self::Context) {
        let (code, description) = match msg.0 {
            CloseReason::Shutdown => (ws::CloseCode::Away, "central system shutting down"),
            CloseReason::Replaced => (ws::CloseCode::Policy, "replaced by a newer connection"),
        };
        ctx.close(Some(ws::CloseReason { code, description: Some(description.into()) }));
        ctx.stop();
    }
}
