//! A simulated OCPP 1.6J charge point for end-to-end tests: it connects to a central system
//! over a real WebSocket, sends CALLs and waits for their answers, answers the central
//! system's CALLs through a replaceable responder (recording each one), and can send raw
//! frames, close the socket or go silent to test how the server copes.
//!
//! One local task owns the socket: it writes what the [`ChargePoint`] queues, answers pings,
//! routes CALLRESULT/CALLERROR frames to the waiting [`ChargePoint::call`], answers server CALLs
//! and keeps everything else for [`ChargePoint::next_unsolicited`]. A test awaiting a `call()`
//! therefore never stops server CALLs from being answered. awc is `!Send`, so all of this runs
//! on the actix test runtime (`#[actix_web::test]`).
//!
//! Dropping a `ChargePoint` drops the TCP connection without a close frame (an abrupt
//! disconnect); [`ChargePoint::close`] closes it cleanly.

#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::rc::Rc;
use std::time::Duration;

use awc::error::{WsClientError, WsProtocolError};
use awc::ws::{CloseCode, CloseReason, Frame as WsFrame, Message};
use chrono::{DateTime, SecondsFormat, Utc};
use futures_util::{Sink, SinkExt as _, Stream, StreamExt as _};
use kilowatt_actors::clock::Clock;
use kilowatt_actors::ocpp::{
    CallError, Disposition, ErrorCode, Frame, call_error_frame, call_frame, call_result_frame,
};
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc, oneshot};

/// How long [`ChargePoint::call`] waits for the answer.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// How long [`ChargePoint::close`] waits for the server to answer the close frame.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// The `code` of a [`CallErrorReply`] made up by this client when no answer came in time.
pub const TIMEOUT_CODE: &str = "ClientTimeout";

/// The `code` of a [`CallErrorReply`] made up by this client when the connection is gone.
pub const CONNECTION_CLOSED_CODE: &str = "ConnectionClosed";

/// The feature profiles the simulated charger claims in `SupportedFeatureProfiles`.
pub const SUPPORTED_FEATURE_PROFILES: &str =
    "Core,FirmwareManagement,LocalAuthListManagement,Reservation,SmartCharging,RemoteTrigger";

/// How to open the connection.
#[derive(Clone)]
pub struct ConnectOptions {
    /// Basic-auth password (OCPP 1.6 security profile 1); the user name is the charger id.
    pub password: Option<String>,
    /// Subprotocols offered in `Sec-WebSocket-Protocol`; empty sends no header.
    pub protocols: Vec<String>,
    /// Path before `/{id}`, e.g. `""` or `"/ocpp"`.
    pub path_prefix: String,
    /// Largest inbound frame accepted, in bytes.
    pub max_frame_size: usize,
    /// Where timestamps in generated payloads come from (pass the test server's clock).
    pub clock: Clock,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            password: None,
            protocols: vec!["ocpp1.6".to_owned()],
            path_prefix: String::new(),
            max_frame_size: 1024 * 1024,
            clock: Clock::system(),
        }
    }
}

impl fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectOptions")
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .field("protocols", &self.protocols)
            .field("path_prefix", &self.path_prefix)
            .field("max_frame_size", &self.max_frame_size)
            .field("clock", &self.clock)
            .finish()
    }
}

/// Why the WebSocket could not be opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectError {
    /// The server refused the handshake with this HTTP status.
    Http(u16),
    /// Anything else (connection refused, bad URL, broken handshake).
    Other(String),
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::Http(status) => write!(f, "handshake refused with HTTP {status}"),
            ConnectError::Other(reason) => write!(f, "cannot connect: {reason}"),
        }
    }
}

impl std::error::Error for ConnectError {}

/// A CALLERROR received for a CALL, or one made up by this client ([`TIMEOUT_CODE`],
/// [`CONNECTION_CLOSED_CODE`], or the parse error code of a malformed answer).
#[derive(Debug, Clone, PartialEq)]
pub struct CallErrorReply {
    /// The errorCode, e.g. `"NotImplemented"`.
    pub code: String,
    /// The errorDescription.
    pub description: String,
    /// The errorDetails object.
    pub details: Value,
}

impl CallErrorReply {
    fn client(code: &str, description: impl Into<String>) -> Self {
        CallErrorReply { code: code.to_owned(), description: description.into(), details: json!({}) }
    }

    fn closed() -> Self {
        Self::client(CONNECTION_CLOSED_CODE, "the connection is closed")
    }

    /// Whether no answer came in time.
    pub fn is_timeout(&self) -> bool {
        self.code == TIMEOUT_CODE
    }

    /// Whether the connection was gone before an answer came.
    pub fn is_connection_closed(&self) -> bool {
        self.code == CONNECTION_CLOSED_CODE
    }
}

impl fmt::Display for CallErrorReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} {}", self.code, self.description, self.details)
    }
}

impl std::error::Error for CallErrorReply {}

/// How the simulated charger answers a CALL from the central system.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// A CALLRESULT with this payload.
    Result(Value),
    /// A CALLERROR with this code and description.
    Error(ErrorCode, String),
    /// This text frame as the answer, sent as is (to test how the server takes a broken one).
    Raw(String),
    /// No answer at all (to test the server's timeouts).
    NoAnswer,
}

/// Decides the answer to a server CALL: `(action, payload) -> Reply`.
type Responder = Rc<dyn Fn(&str, &Value) -> Reply>;

/// CALLs to send after answering a server CALL: `(action, payload, reply) -> [(action, payload)]`.
type FollowUp = Rc<dyn Fn(&str, &Value, &Reply) -> Vec<(String, Value)>>;

/// The answer waited for by one pending CALL.
type Answer = Result<Value, CallErrorReply>;

/// What the socket task is asked to do.
enum Outbound {
    Text(String),
    Close,
    Shutdown,
}

/// State shared by the [`ChargePoint`], its socket task and follow-up tasks (all on one thread).
struct Shared {
    clock: Clock,
    negotiated_protocol: Option<String>,
    outbound: mpsc::UnboundedSender<Outbound>,
    id_prefix: String,
    next_id: Cell<u64>,
    pending: RefCell<HashMap<String, oneshot::Sender<Answer>>>,
    unsolicited: RefCell<VecDeque<Value>>,
    received_calls: RefCell<Vec<(String, Value)>>,
    unclaimed_calls: RefCell<VecDeque<(String, Value)>>,
    follow_up_answers: RefCell<Vec<(String, Answer)>>,
    responder: RefCell<Responder>,
    follow_up: RefCell<FollowUp>,
    /// `Some(code)` once the connection is over.
    closed: Cell<Option<Option<u16>>>,
    silent: Cell<bool>,
    /// Wakes the socket task when it must go silent.
    silence: Notify,
    /// Wakes waiters whenever something arrives or the connection ends.
    changed: Notify,
}

impl Shared {
    fn now(&self) -> String {
        timestamp(self.clock.now())
    }

    fn fresh_message_id(&self) -> String {
        let n = self.next_id.get() + 1;
        self.next_id.set(n);
        format!("{}-{n}", self.id_prefix)
    }

    async fn call(&self, action: &str, payload: &Value, timeout: Duration) -> Answer {
        if self.closed.get().is_some() {
            return Err(CallErrorReply::closed());
        }
        let id = self.fresh_message_id();
        let (sender, receiver) = oneshot::channel();
        self.pending.borrow_mut().insert(id.clone(), sender);
        if self.outbound.send(Outbound::Text(call_frame(&id, action, payload))).is_err() {
            self.pending.borrow_mut().remove(&id);
            return Err(CallErrorReply::closed());
        }
        match tokio::time::timeout(timeout, receiver).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(CallErrorReply::closed()),
            Err(_) => {
                self.pending.borrow_mut().remove(&id);
                Err(CallErrorReply::client(
                    TIMEOUT_CODE,
                    format!("no answer to {action} (message id {id}) within {timeout:?}"),
                ))
            }
        }
    }

    /// Waits until `check` gives a value, or the timeout passes.
    async fn wait_for<T>(&self, timeout: Duration, mut check: impl FnMut(&Self) -> Option<T>) -> Option<T> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let changed = self.changed.notified();
            if let Some(found) = check(self) {
                return Some(found);
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return check(self);
            }
        }
    }

    fn answer_pending(&self, message_id: &str, answer: Answer) -> bool {
        let Some(sender) = self.pending.borrow_mut().remove(message_id) else {
            return false;
        };
        // The caller may have given up (timeout) in the meantime; nothing to do then.
        let _ = sender.send(answer);
        true
    }

    fn push_unsolicited(&self, value: Value) {
        self.unsolicited.borrow_mut().push_back(value);
        self.changed.notify_waiters();
    }

    /// Marks the connection over and fails every pending CALL.
    fn finish(&self, code: Option<u16>) {
        if self.closed.get().is_none() {
            self.closed.set(Some(code));
        }
        for (_, sender) in self.pending.borrow_mut().drain() {
            let _ = sender.send(Err(CallErrorReply::closed()));
        }
        self.changed.notify_waiters();
    }
}

/// A simulated charge point connected to a central system.
pub struct ChargePoint {
    /// The charge point identity (the last path segment of the URL, unencoded).
    pub id: String,
    shared: Rc<Shared>,
}

impl ChargePoint {
    /// Connects to `{base_ws_url}/{id}` offering subprotocol `ocpp1.6`, with the default
    /// responder and follow-ups.
    pub async fn connect(base_ws_url: &str, id: &str) -> Result<ChargePoint, ConnectError> {
        Self::connect_with(base_ws_url, id, ConnectOptions::default()).await
    }

    /// Connects to `{base_ws_url}{path_prefix}/{id}` (the id percent-encoded) with these options.
    pub async fn connect_with(
        base_ws_url: &str,
        id: &str,
        options: ConnectOptions,
    ) -> Result<ChargePoint, ConnectError> {
        let url = format!("{}{}/{}", base_ws_url.trim_end_matches('/'), options.path_prefix, encode_path_segment(id));
        let client = awc::Client::builder().timeout(Duration::from_secs(10)).finish();
        let mut request = client.ws(url.as_str()).max_frame_size(options.max_frame_size);
        if !options.protocols.is_empty() {
            request = request.protocols(&options.protocols);
        }
        if let Some(password) = &options.password {
            request = request.basic_auth(id, Some(password.as_str()));
        }
        let (response, socket) = request.connect().await.map_err(|e| match e {
            WsClientError::InvalidResponseStatus(status) => ConnectError::Http(status.as_u16()),
            other => ConnectError::Other(format!("{url}: {other}")),
        })?;
        let negotiated_protocol = response
            .headers()
            .get(awc::http::header::SEC_WEBSOCKET_PROTOCOL)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);

        let (outbound, outbound_rx) = mpsc::unbounded_channel();
        let shared = Rc::new(Shared {
            clock: options.clock,
            negotiated_protocol,
            outbound,
            id_prefix: format!("{:08x}", rand::random::<u32>()),
            next_id: Cell::new(0),
            pending: RefCell::default(),
            unsolicited: RefCell::default(),
            received_calls: RefCell::default(),
            unclaimed_calls: RefCell::default(),
            follow_up_answers: RefCell::default(),
            responder: RefCell::new(Rc::new(default_reply)),
            follow_up: RefCell::new(Rc::new(default_follow_up)),
            closed: Cell::new(None),
            silent: Cell::new(false),
            silence: Notify::new(),
            changed: Notify::new(),
        });
        actix_web::rt::spawn(run_socket(shared.clone(), socket, outbound_rx));
        Ok(ChargePoint { id: id.to_owned(), shared })
    }

    /// The `Sec-WebSocket-Protocol` the server answered, if any.
    pub fn negotiated_protocol(&self) -> Option<String> {
        self.shared.negotiated_protocol.clone()
    }

    /// Sends a CALL with a fresh unique id and waits up to [`DEFAULT_CALL_TIMEOUT`] for its
    /// CALLRESULT (the payload) or CALLERROR.
    pub async fn call(&self, action: &str, payload: Value) -> Result<Value, CallErrorReply> {
        self.shared.call(action, &payload, DEFAULT_CALL_TIMEOUT).await
    }

    /// [`ChargePoint::call`] with another timeout.
    pub async fn call_with_timeout(
        &self,
        action: &str,
        payload: Value,
        timeout: Duration,
    ) -> Result<Value, CallErrorReply> {
        self.shared.call(action, &payload, timeout).await
    }

    /// BootNotification with a realistic vendor, model, serial numbers and firmware.
    pub async fn boot(&self) -> Result<Value, CallErrorReply> {
        self.call("BootNotification", boot_payload(&self.id)).await
    }

    /// Heartbeat.
    pub async fn heartbeat(&self) -> Result<Value, CallErrorReply> {
        self.call("Heartbeat", json!({})).await
    }

    /// StatusNotification, e.g. `status(1, "Charging", "NoError")`; connector 0 is the whole
    /// charger. The timestamp comes from the options' clock.
    pub async fn status(&self, connector: u32, status: &str, error_code: &str) -> Result<Value, CallErrorReply> {
        let payload = json!({
            "connectorId": connector,
            "status": status,
            "errorCode": error_code,
            "timestamp": self.shared.now(),
        });
        self.call("StatusNotification", payload).await
    }

    /// Authorize.
    pub async fn authorize(&self, id_tag: &str) -> Result<Value, CallErrorReply> {
        self.call("Authorize", json!({ "idTag": id_tag })).await
    }

    /// StartTransaction, answering the transaction id and the idTagInfo. Panics (fails the
    /// test) if the answer has no integer `transactionId`, which the spec requires.
    pub async fn start_transaction(
        &self,
        connector: u32,
        id_tag: &str,
        meter_start: i64,
        timestamp_at: DateTime<Utc>,
    ) -> Result<(i32, Value), CallErrorReply> {
        let payload = json!({
            "connectorId": connector,
            "idTag": id_tag,
            "meterStart": meter_start,
            "timestamp": timestamp(timestamp_at),
        });
        let answer = self.call("StartTransaction", payload).await?;
        let transaction_id = answer["transactionId"]
            .as_i64()
            .and_then(|id| i32::try_from(id).ok())
            .unwrap_or_else(|| panic!("StartTransaction answer without an integer transactionId: {answer}"));
        Ok((transaction_id, answer["idTagInfo"].clone()))
    }

    /// MeterValues with the energy register in Wh, and optionally power (W) and state of charge
    /// (%), stamped with the options' clock.
    pub async fn meter_values(
        &self,
        connector: u32,
        transaction_id: Option<i32>,
        wh: i64,
        power_w: Option<i64>,
        soc: Option<u8>,
    ) -> Result<Value, CallErrorReply> {
        let payload = meter_values_payload(connector, transaction_id, wh, power_w, soc, &self.shared.now());
        self.call("MeterValues", payload).await
    }

    /// StopTransaction; `reason` is e.g. `"Local"`, `"EVDisconnected"` or `"Remote"`.
    pub async fn stop_transaction(
        &self,
        transaction_id: i32,
        meter_stop: i64,
        timestamp_at: DateTime<Utc>,
        reason: &str,
        id_tag: Option<&str>,
    ) -> Result<Value, CallErrorReply> {
        let mut payload = json!({
            "transactionId": transaction_id,
            "meterStop": meter_stop,
            "timestamp": timestamp(timestamp_at),
            "reason": reason,
        });
        if let Some(id_tag) = id_tag {
            payload["idTag"] = json!(id_tag);
        }
        self.call("StopTransaction", payload).await
    }

    /// Sends one text frame exactly as given (for malformed-input tests).
    pub async fn send_raw(&self, text: &str) {
        // A closed connection drops it, as a real socket would.
        let _ = self.shared.outbound.send(Outbound::Text(text.to_owned()));
    }

    /// The next inbound frame that was neither a server CALL nor the answer to a pending
    /// [`ChargePoint::call`] (e.g. the CALLERROR answering a [`ChargePoint::send_raw`]), parsed
    /// as JSON; text that is not JSON comes as a JSON string.
    pub async fn next_unsolicited(&self, timeout: Duration) -> Option<Value> {
        self.shared.wait_for(timeout, |shared| shared.unsolicited.borrow_mut().pop_front()).await
    }

    /// Replaces how server CALLs are answered (see [`default_reply`], which a responder can
    /// fall back to). Every server CALL is recorded whatever the answer.
    pub fn set_responder(&self, f: impl Fn(&str, &Value) -> Reply + 'static) {
        *self.shared.responder.borrow_mut() = Rc::new(f);
    }

    /// Replaces what is sent after answering a server CALL (see [`default_follow_up`]): each
    /// `(action, payload)` returned is sent as a CALL in the background; answers are kept in
    /// [`ChargePoint::follow_up_answers`].
    pub fn set_follow_up(&self, f: impl Fn(&str, &Value, &Reply) -> Vec<(String, Value)> + 'static) {
        *self.shared.follow_up.borrow_mut() = Rc::new(f);
    }

    /// Waits for the next server CALL with this action not yet claimed by an earlier
    /// `expect_call` (it has already been answered by the responder), answering its payload.
    pub async fn expect_call(&self, action: &str, timeout: Duration) -> Option<Value> {
        self.shared
            .wait_for(timeout, |shared| {
                let mut unclaimed = shared.unclaimed_calls.borrow_mut();
                let index = unclaimed.iter().position(|(name, _)| name == action)?;
                unclaimed.remove(index).map(|(_, payload)| payload)
            })
            .await
    }

    /// Every server CALL received so far, in order: `(action, payload)`.
    pub fn received_calls(&self) -> Vec<(String, Value)> {
        self.shared.received_calls.borrow().clone()
    }

    /// The answers to follow-up CALLs sent so far: `(action, answer)`.
    pub fn follow_up_answers(&self) -> Vec<(String, Result<Value, CallErrorReply>)> {
        self.shared.follow_up_answers.borrow().clone()
    }

    /// Waits until the connection is over: `Some(Some(code))` if a close frame came,
    /// `Some(None)` if it dropped without one, `None` if still open after `timeout`.
    pub async fn closed(&self, timeout: Duration) -> Option<Option<u16>> {
        self.shared.wait_for(timeout, |shared| shared.closed.get()).await
    }

    /// Whether the connection is over.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.get().is_some()
    }

    /// Sends a normal (1000) close frame and waits briefly for the server's close frame.
    pub async fn close(self) {
        if self.shared.outbound.send(Outbound::Close).is_ok() {
            self.closed(CLOSE_TIMEOUT).await;
        }
    }

    /// Stops reading and answering pings, to simulate a dead peer: the TCP connection stays
    /// open but nothing is read or written any more (queued CALLs are dropped and time out),
    /// so a close from the server goes unnoticed too.
    pub fn go_silent(&self) {
        self.shared.silent.set(true);
        self.shared.silence.notify_one();
    }
}

impl Drop for ChargePoint {
    fn drop(&mut self) {
        let _ = self.shared.outbound.send(Outbound::Shutdown);
    }
}

/// The default answer to every central-system action of OCPP 1.6: a plausible CALLRESULT
/// (mostly `Accepted`), and `NotImplemented` for anything else.
pub fn default_reply(action: &str, payload: &Value) -> Reply {
    let accepted = json!({ "status": "Accepted" });
    Reply::Result(match action {
        "RemoteStartTransaction"
        | "RemoteStopTransaction"
        | "Reset"
        | "ChangeAvailability"
        | "ChangeConfiguration"
        | "ClearCache"
        | "ReserveNow"
        | "CancelReservation"
        | "SetChargingProfile"
        | "ClearChargingProfile"
        | "SendLocalList"
        | "TriggerMessage"
        | "DataTransfer"
        | "GetCompositeSchedule" => accepted,
        "UnlockConnector" => json!({ "status": "Unlocked" }),
        "GetConfiguration" => configuration(payload),
        "GetLocalListVersion" => json!({ "listVersion": 0 }),
        "GetDiagnostics" => json!({ "fileName": "diag.log" }),
        "UpdateFirmware" => json!({}),
        other => return Reply::Error(ErrorCode::NotImplemented, format!("{other} is not implemented")),
    })
}

/// The default follow-up: after accepting a TriggerMessage for StatusNotification (the
/// request's connector, or 1, as `Available`), Heartbeat or BootNotification, send that message.
pub fn default_follow_up(action: &str, payload: &Value, reply: &Reply) -> Vec<(String, Value)> {
    let accepted = matches!(reply, Reply::Result(result) if result["status"] == "Accepted");
    if action != "TriggerMessage" || !accepted {
        return Vec::new();
    }
    let message = match payload["requestedMessage"].as_str() {
        Some("StatusNotification") => json!({
            "connectorId": payload["connectorId"].as_u64().unwrap_or(1),
            "status": "Available",
            "errorCode": "NoError",
        }),
        Some("Heartbeat") => json!({}),
        // The identity is not known here; a generic one does for a re-boot on request.
        Some("BootNotification") => boot_payload("simulated"),
        _ => return Vec::new(),
    };
    let requested = payload["requestedMessage"].as_str().unwrap_or_default().to_owned();
    vec![(requested, message)]
}

/// The BootNotification payload of a simulated charger.
pub fn boot_payload(id: &str) -> Value {
    let serial: String = id.chars().take(18).collect();
    json!({
        "chargePointVendor": "Kilowatt",
        "chargePointModel": "Simulator AC22",
        "chargePointSerialNumber": format!("KW-SIM-{serial}"),
        "chargeBoxSerialNumber": format!("KW-BOX-{serial}"),
        "firmwareVersion": "1.4.2",
        "meterType": "Simulated meter",
        "meterSerialNumber": format!("KW-MTR-{serial}"),
    })
}

/// A MeterValues payload with the energy register and optional power and SoC samples.
pub fn meter_values_payload(
    connector: u32,
    transaction_id: Option<i32>,
    wh: i64,
    power_w: Option<i64>,
    soc: Option<u8>,
    timestamp: &str,
) -> Value {
    let mut samples = vec![json!({
        "value": wh.to_string(),
        "context": "Sample.Periodic",
        "measurand": "Energy.Active.Import.Register",
        "location": "Outlet",
        "unit": "Wh",
    })];
    if let Some(power) = power_w {
        samples.push(json!({
            "value": power.to_string(),
            "context": "Sample.Periodic",
            "measurand": "Power.Active.Import",
            "location": "Outlet",
            "unit": "W",
        }));
    }
    if let Some(soc) = soc {
        samples.push(json!({
            "value": soc.to_string(),
            "context": "Sample.Periodic",
            "measurand": "SoC",
            "location": "EV",
            "unit": "Percent",
        }));
    }
    let mut payload = json!({
        "connectorId": connector,
        "meterValue": [{ "timestamp": timestamp, "sampledValue": samples }],
    });
    if let Some(transaction_id) = transaction_id {
        payload["transactionId"] = json!(transaction_id);
    }
    payload
}

/// A GetConfiguration answer: the requested keys (all when none are asked), unknown ones in
/// `unknownKey`.
fn configuration(payload: &Value) -> Value {
    let known = [
        ("HeartbeatInterval", false, "300"),
        ("MeterValueSampleInterval", false, "60"),
        ("NumberOfConnectors", true, "2"),
        ("AuthorizeRemoteTxRequests", false, "false"),
        ("SupportedFeatureProfiles", true, SUPPORTED_FEATURE_PROFILES),
    ];
    let entry =
        |(key, readonly, value): (&str, bool, &str)| json!({ "key": key, "readonly": readonly, "value": value });
    let requested: Vec<&str> =
        payload["key"].as_array().map(|keys| keys.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
    if requested.is_empty() {
        return json!({ "configurationKey": known.into_iter().map(entry).collect::<Vec<_>>() });
    }
    let (mut found, mut unknown) = (Vec::new(), Vec::new());
    for key in requested {
        match known.iter().find(|(name, _, _)| *name == key) {
            Some(&known_key) => found.push(entry(known_key)),
            None => unknown.push(json!(key)),
        }
    }
    json!({ "configurationKey": found, "unknownKey": unknown })
}

/// An OCPP timestamp: RFC 3339, UTC, milliseconds.
fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn encode_path_segment(segment: &str) -> String {
    let mut encoded = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// The socket task: writes what is queued, reads and dispatches what arrives, until the
/// connection ends or the [`ChargePoint`] is dropped.
async fn run_socket<S>(shared: Rc<Shared>, mut socket: S, mut outbound: mpsc::UnboundedReceiver<Outbound>)
where
    S: Stream<Item = Result<WsFrame, WsProtocolError>> + Sink<Message> + Unpin,
{
    let mut close_sent = false;
    loop {
        if shared.silent.get() {
            // Hold the socket without touching it until the ChargePoint goes away.
            while let Some(command) = outbound.recv().await {
                if matches!(command, Outbound::Shutdown) {
                    break;
                }
            }
            shared.finish(None);
            return;
        }
        tokio::select! {
            command = outbound.recv() => match command {
                Some(Outbound::Text(text)) if !close_sent => {
                    if socket.send(Message::Text(text.into())).await.is_err() {
                        break;
                    }
                }
                Some(Outbound::Text(_)) => {}
                Some(Outbound::Close) if !close_sent => {
                    close_sent = true;
                    let reason = CloseReason { code: CloseCode::Normal, description: None };
                    if socket.send(Message::Close(Some(reason))).await.is_err() {
                        break;
                    }
                }
                Some(Outbound::Close) => {}
                Some(Outbound::Shutdown) | None => break,
            },
            frame = socket.next() => match frame {
                Some(Ok(WsFrame::Text(bytes))) => on_text(&shared, &String::from_utf8_lossy(&bytes)),
                Some(Ok(WsFrame::Ping(data))) => {
                    if socket.send(Message::Pong(data)).await.is_err() {
                        break;
                    }
                }
                Some(Ok(WsFrame::Pong(_))) => {}
                Some(Ok(WsFrame::Close(reason))) => {
                    if !close_sent {
                        // Echo the close, as RFC 6455 requires; the server may already be gone.
                        let _ = socket.send(Message::Close(reason.clone())).await;
                    }
                    shared.finish(Some(reason.map_or(1005, |reason| u16::from(reason.code))));
                    return;
                }
                // OCPP-J uses text frames only; fragmented frames are not reassembled here.
                Some(Ok(WsFrame::Binary(bytes))) => {
                    shared.push_unsolicited(json!({ "unexpectedBinaryFrame": bytes.len() }));
                }
                Some(Ok(WsFrame::Continuation(_))) => {
                    shared.push_unsolicited(json!({ "unexpectedContinuationFrame": true }));
                }
                Some(Err(_)) | None => break,
            },
            () = shared.silence.notified() => {}
        }
    }
    shared.finish(None);
}

/// Dispatches one inbound text frame.
fn on_text(shared: &Rc<Shared>, text: &str) {
    match Frame::parse(text) {
        Ok(Frame::Call(call)) => on_server_call(shared, call.message_id, call.action, call.payload),
        Ok(Frame::CallResult(result)) => {
            if !shared.answer_pending(&result.message_id, Ok(result.payload)) {
                shared.push_unsolicited(raw_value(text));
            }
        }
        Ok(Frame::CallError(error)) => {
            let reply = CallErrorReply {
                code: error.error.code.as_str().to_owned(),
                description: error.error.description,
                details: error.error.details,
            };
            if !shared.answer_pending(&error.message_id, Err(reply)) {
                shared.push_unsolicited(raw_value(text));
            }
        }
        Err(error) => {
            // A broken answer to one of our CALLs fails that CALL; anything else is kept.
            let failed = error.disposition == Disposition::FailPending
                && error.message_id.as_deref().is_some_and(|id| {
                    let reply = CallErrorReply {
                        code: error.code.as_str().to_owned(),
                        description: format!("malformed answer: {}", error.description),
                        details: json!({ "frame": text }),
                    };
                    shared.answer_pending(id, Err(reply))
                });
            if !failed {
                shared.push_unsolicited(raw_value(text));
            }
        }
    }
}

/// Records a server CALL, answers it through the responder and starts its follow-ups.
fn on_server_call(shared: &Rc<Shared>, message_id: String, action: String, payload: Value) {
    shared.received_calls.borrow_mut().push((action.clone(), payload.clone()));
    let responder = shared.responder.borrow().clone();
    let reply = responder(&action, &payload);
    let frame = match &reply {
        Reply::Result(result) => Some(call_result_frame(&message_id, result)),
        Reply::Error(code, description) => Some(call_error_frame(&message_id, &CallError::new(*code, description))),
        Reply::Raw(text) => Some(text.clone()),
        Reply::NoAnswer => None,
    };
    if let Some(frame) = frame {
        let _ = shared.outbound.send(Outbound::Text(frame));
    }
    let follow_up = shared.follow_up.borrow().clone();
    let calls = follow_up(&action, &payload, &reply);
    shared.unclaimed_calls.borrow_mut().push_back((action, payload));
    shared.changed.notify_waiters();
    for (action, payload) in calls {
        let shared = shared.clone();
        actix_web::rt::spawn(async move {
            let answer = shared.call(&action, &payload, DEFAULT_CALL_TIMEOUT).await;
            shared.follow_up_answers.borrow_mut().push((action, answer));
            shared.changed.notify_waiters();
        });
    }
}

/// Inbound text as JSON, or as a JSON string when it is not JSON.
fn raw_value(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}
