//! OCPP-J 1.6 RPC framing (OCPP-J 1.6 section 4): parsing a WebSocket text message into a
//! CALL `[2, id, action, payload]`, CALLRESULT `[3, id, payload]` or CALLERROR
//! `[4, id, errorCode, errorDescription, errorDetails]`, and writing them.
//!
//! A frame that cannot be parsed gives a [`FrameError`] that says what to do about it
//! ([`Disposition`]) and carries the message id whenever it can be recovered, even from text that
//! is not valid JSON. Codes chosen (the spec's table 7 gives descriptions, not a mapping):
//! - not valid JSON → `FormationViolation` ("syntactically incorrect");
//! - valid JSON but not an array, a message type that is not an integer, an element of the wrong
//!   JSON type, a message id longer than 36 characters, or too many elements →
//!   `FormationViolation` ("not conform the PDU structure");
//! - too few elements → `ProtocolError` ("Payload for Action is incomplete");
//! - a message type number other than 2, 3 or 4 → [`Disposition::Ignore`]: section 4.1.3 says
//!   "When a server receives a message with a Message Type Number not in this list, it SHALL
//!   ignore the message payload", and 1.6 has no `MessageTypeNotSupported` code (OCPP 2.0 added
//!   it), so no CALLERROR is sent. The code recorded for logs is `FormationViolation`.
//!
//! Only a broken CALL is answered: 1.6 defines CALLERROR as the reply to a CALL, so a broken
//! CALLRESULT or CALLERROR fails the pending request instead ([`Disposition::FailPending`]).
//!
//! Tolerated: a `null` payload reads as `{}` (section 4.2.1 allows both notations), and a
//! CALLERROR without its `errorDetails` element or with `null` details reads as `{}`.

use std::fmt;

use serde_json::{Map, Value};

use super::error::{CallError, ErrorCode};

/// Maximum length of a message id (OCPP-J 1.6 table 3: "to allow for GUIDs").
pub const MAX_MESSAGE_ID_LEN: usize = 36;

/// Maximum length of an errorDescription we send. 1.6 sets none; 255 matches OCPP 2.0.1's
/// limit and keeps an echoed hostile value from bloating the frame.
pub const MAX_ERROR_DESCRIPTION_LEN: usize = 255;

/// The message type number, the first element of every frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// `2`: a request.
    Call,
    /// `3`: a successful response.
    CallResult,
    /// `4`: an error response.
    CallError,
}

impl MessageType {
    /// The number on the wire.
    pub const fn number(self) -> u64 {
        match self {
            MessageType::Call => 2,
            MessageType::CallResult => 3,
            MessageType::CallError => 4,
        }
    }

    /// The type for a wire number, if it is one of the three.
    pub const fn from_number(n: u64) -> Option<Self> {
        match n {
            2 => Some(MessageType::Call),
            3 => Some(MessageType::CallResult),
            4 => Some(MessageType::CallError),
            _ => None,
        }
    }
}

/// A CALL: `[2, "<id>", "<action>", {payload}]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// Unique id (at most 36 characters), echoed by the response.
    pub message_id: String,
    /// The action name, e.g. `"BootNotification"` (case-sensitive).
    pub action: String,
    /// The payload object (a received `null` is stored as `{}`).
    pub payload: Value,
}

impl Call {
    /// A CALL frame. The caller keeps `message_id` within [`MAX_MESSAGE_ID_LEN`].
    pub fn new(message_id: impl Into<String>, action: impl Into<String>, payload: Value) -> Self {
        Call { message_id: message_id.into(), action: action.into(), payload }
    }

    /// The frame as JSON text.
    pub fn to_json(&self) -> String {
        call_frame(&self.message_id, &self.action, &self.payload)
    }
}

/// A CALLRESULT: `[3, "<id>", {payload}]`.
#[derive(Debug, Clone, PartialEq)]
pub struct CallResult {
    /// Id of the CALL this answers.
    pub message_id: String,
    /// The response payload object (a received `null` is stored as `{}`).
    pub payload: Value,
}

impl CallResult {
    /// A CALLRESULT frame.
    pub fn new(message_id: impl Into<String>, payload: Value) -> Self {
        CallResult { message_id: message_id.into(), payload }
    }

    /// The frame as JSON text.
    pub fn to_json(&self) -> String {
        call_result_frame(&self.message_id, &self.payload)
    }
}

/// A CALLERROR: `[4, "<id>", "<errorCode>", "<errorDescription>", {errorDetails}]`.
#[derive(Debug, Clone, PartialEq)]
pub struct CallErrorFrame {
    /// Id of the CALL this answers.
    pub message_id: String,
    /// Code, description and details. A received code that is not one of the ten 1.6 codes is
    /// read with [`ErrorCode::from_wire_lenient`].
    pub error: CallError,
}

impl CallErrorFrame {
    /// A CALLERROR frame.
    pub fn new(message_id: impl Into<String>, error: CallError) -> Self {
        CallErrorFrame { message_id: message_id.into(), error }
    }

    /// The frame as JSON text.
    pub fn to_json(&self) -> String {
        call_error_frame(&self.message_id, &self.error)
    }
}

/// Any OCPP-J frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// A request.
    Call(Call),
    /// A successful response.
    CallResult(CallResult),
    /// An error response.
    CallError(CallErrorFrame),
}

impl Frame {
    /// Parses one WebSocket text message. Never panics.
    pub fn parse(text: &str) -> Result<Frame, FrameError> {
        parse_frame(text)
    }

    /// The message id.
    pub fn message_id(&self) -> &str {
        match self {
            Frame::Call(c) => &c.message_id,
            Frame::CallResult(r) => &r.message_id,
            Frame::CallError(e) => &e.message_id,
        }
    }

    /// The message type.
    pub fn message_type(&self) -> MessageType {
        match self {
            Frame::Call(_) => MessageType::Call,
            Frame::CallResult(_) => MessageType::CallResult,
            Frame::CallError(_) => MessageType::CallError,
        }
    }

    /// The frame as JSON text.
    pub fn to_json(&self) -> String {
        match self {
            Frame::Call(c) => c.to_json(),
            Frame::CallResult(r) => r.to_json(),
            Frame::CallError(e) => e.to_json(),
        }
    }
}

/// What the receiver of a broken frame should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// The frame was, or may have been, a CALL and its id is known: answer with a CALLERROR
    /// ([`FrameError::reply`]).
    Reply,
    /// The frame was a CALLRESULT or CALLERROR for the id: fail that pending request; send
    /// nothing (1.6 has no error reply to a response).
    FailPending,
    /// Nothing can be answered (no id) or the spec says to ignore the message: log and drop.
    Ignore,
}

/// Why a text message is not a valid OCPP-J frame.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameError {
    /// The message id, when it could be recovered.
    pub message_id: Option<String>,
    /// The error code for the CALLERROR (or for logs).
    pub code: ErrorCode,
    /// What is wrong.
    pub description: String,
    /// What to do about it. `Reply` and `FailPending` always come with a `message_id`.
    pub disposition: Disposition,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.description)?;
        if let Some(id) = &self.message_id {
            write!(f, " (message id {})", super::wire::quote(id))?;
        }
        Ok(())
    }
}

impl std::error::Error for FrameError {}

impl FrameError {
    fn new(
        code: ErrorCode,
        description: impl Into<String>,
        message_id: Option<String>,
        kind: Option<MessageType>,
    ) -> Self {
        let disposition = match (&message_id, kind) {
            (None, _) => Disposition::Ignore,
            (Some(_), Some(MessageType::CallResult | MessageType::CallError)) => Disposition::FailPending,
            (Some(_), _) => Disposition::Reply,
        };
        FrameError { message_id, code, description: description.into(), disposition }
    }

    /// The CALLERROR to send back, when the spec calls for one ([`Disposition::Reply`]).
    pub fn reply(&self) -> Option<CallErrorFrame> {
        match (&self.message_id, self.disposition) {
            (Some(id), Disposition::Reply) => {
                Some(CallErrorFrame::new(id.clone(), CallError::new(self.code, self.description.clone())))
            }
            _ => None,
        }
    }

    /// [`FrameError::reply`] as JSON text.
    pub fn reply_json(&self) -> Option<String> {
        self.reply().map(|frame| frame.to_json())
    }
}

/// Parses one WebSocket text message into a frame. Never panics.
pub fn parse_frame(text: &str) -> Result<Frame, FrameError> {
    let value: Value = match serde_json::from_str(text) {
        Ok(value) => value,
        Err(e) => {
            let (kind, id) = recover_prefix(text);
            return Err(match kind {
                Some(Ok(kind)) => {
                    FrameError::new(ErrorCode::FormationViolation, format!("not valid JSON: {e}"), id, Some(kind))
                }
                // An unknown type number: ignore, as for valid JSON.
                Some(Err(n)) => unknown_type(n, id),
                None => FrameError::new(ErrorCode::FormationViolation, format!("not valid JSON: {e}"), id, None),
            });
        }
    };
    let Value::Array(items) = value else {
        return Err(FrameError::new(
            ErrorCode::FormationViolation,
            format!("expected a JSON array, got {}", super::wire::json_type(&value)),
            None,
            None,
        ));
    };
    from_elements(items)
}

fn unknown_type(number: u64, id: Option<String>) -> FrameError {
    let mut error = FrameError::new(
        ErrorCode::FormationViolation,
        format!("unknown message type number {number}; ignored (OCPP-J 1.6 section 4.1.3)"),
        id,
        None,
    );
    error.disposition = Disposition::Ignore;
    error
}

fn from_elements(items: Vec<Value>) -> Result<Frame, FrameError> {
    let Some(first) = items.first() else {
        return Err(FrameError::new(
            ErrorCode::ProtocolError,
            "empty array: message type and id are missing",
            None,
            None,
        ));
    };
    let number = first.as_u64();
    let kind = number.and_then(MessageType::from_number);
    // Recovered even when the frame is otherwise broken, so the peer can be answered.
    let id = items.get(1).and_then(Value::as_str).map(str::to_owned);

    let Some(kind) = kind else {
        return Err(match number {
            Some(n) => unknown_type(n, id),
            None => FrameError::new(
                ErrorCode::FormationViolation,
                format!("message type must be the integer 2, 3 or 4, got {}", super::wire::json_type(first)),
                id,
                None,
            ),
        });
    };

    let err = |code: ErrorCode, description: String| FrameError::new(code, description, id.clone(), Some(kind));
    let (min, max) = match kind {
        MessageType::Call => (4, 4),
        MessageType::CallResult => (3, 3),
        MessageType::CallError => (4, 5),
    };
    if items.len() < min {
        return Err(err(
            ErrorCode::ProtocolError,
            format!("incomplete frame: {} elements, message type {} needs {min}", items.len(), kind.number()),
        ));
    }
    if items.len() > max {
        return Err(err(
            ErrorCode::FormationViolation,
            format!("{} elements, message type {} has {max}", items.len(), kind.number()),
        ));
    }
    let Some(message_id) = id.clone() else {
        return Err(err(
            ErrorCode::FormationViolation,
            format!("message id must be a string, got {}", items.get(1).map_or("nothing", super::wire::json_type)),
        ));
    };
    if message_id.chars().count() > MAX_MESSAGE_ID_LEN {
        return Err(err(ErrorCode::FormationViolation, format!("message id exceeds {MAX_MESSAGE_ID_LEN} characters")));
    }

    let mut rest = items.into_iter().skip(2);
    let mut next = || rest.next().unwrap_or(Value::Null);
    match kind {
        MessageType::Call => {
            let action = match next() {
                Value::String(action) => action,
                other => {
                    return Err(err(
                        ErrorCode::FormationViolation,
                        format!("action must be a string, got {}", super::wire::json_type(&other)),
                    ));
                }
            };
            let payload = payload_object(next()).map_err(|d| err(ErrorCode::FormationViolation, d))?;
            Ok(Frame::Call(Call { message_id, action, payload }))
        }
        MessageType::CallResult => {
            let payload = payload_object(next()).map_err(|d| err(ErrorCode::FormationViolation, d))?;
            Ok(Frame::CallResult(CallResult { message_id, payload }))
        }
        MessageType::CallError => {
            let code = match next() {
                Value::String(code) => ErrorCode::from_wire_lenient(&code),
                other => {
                    return Err(err(
                        ErrorCode::FormationViolation,
                        format!("errorCode must be a string, got {}", super::wire::json_type(&other)),
                    ));
                }
            };
            let description = match next() {
                Value::String(description) => description,
                other => {
                    return Err(err(
                        ErrorCode::FormationViolation,
                        format!("errorDescription must be a string, got {}", super::wire::json_type(&other)),
                    ));
                }
            };
            let details = payload_object(next())
                .map_err(|d| err(ErrorCode::FormationViolation, d.replace("payload", "errorDetails")))?;
            Ok(Frame::CallError(CallErrorFrame { message_id, error: CallError { code, description, details } }))
        }
    }
}

/// A payload (or errorDetails) element: an object, or `null` read as `{}`.
fn payload_object(value: Value) -> Result<Value, String> {
    match value {
        Value::Object(_) => Ok(value),
        Value::Null => Ok(Value::Object(Map::new())),
        other => Err(format!("payload must be a JSON object, got {}", super::wire::json_type(&other))),
    }
}

/// Best-effort recovery of the message type and id from text that is not valid JSON, e.g.
/// `[2, "abc", "Heartbeat", {` → (`Some(Ok(Call))`, `Some("abc")`). The type is `Err(n)` for an
/// unknown number.
fn recover_prefix(text: &str) -> (Option<Result<MessageType, u64>>, Option<String>) {
    let Some(rest) = text.trim_start().strip_prefix('[') else {
        return (None, None);
    };
    let rest = rest.trim_start();
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let (number, rest) = rest.split_at(digits);
    let Ok(number) = number.parse::<u64>() else {
        return (None, None);
    };
    let kind = Some(MessageType::from_number(number).ok_or(number));
    let Some(rest) = rest.trim_start().strip_prefix(',') else {
        return (kind, None);
    };
    let rest = rest.trim_start();
    if !rest.starts_with('"') {
        return (kind, None);
    }
    let mut escaped = false;
    for (i, b) in rest.bytes().enumerate().skip(1) {
        if escaped {
            escaped = false;
        } else if b == b'\\' {
            escaped = true;
        } else if b == b'"' {
            let id = rest.get(..=i).and_then(|literal| serde_json::from_str::<String>(literal).ok());
            return (kind, id);
        }
    }
    (kind, None)
}

/// JSON text of a string (quoted and escaped).
fn json_string(s: &str) -> Value {
    Value::String(s.to_owned())
}

/// Writes a CALL frame: `[2,"<id>","<action>",{payload}]`.
pub fn call_frame(message_id: &str, action: &str, payload: &Value) -> String {
    format!("[2,{},{},{}]", json_string(message_id), json_string(action), payload)
}

/// Writes a CALLRESULT frame: `[3,"<id>",{payload}]`.
pub fn call_result_frame(message_id: &str, payload: &Value) -> String {
    format!("[3,{},{}]", json_string(message_id), payload)
}

/// Writes a CALLERROR frame: `[4,"<id>","<code>","<description>",{details}]`. The description
/// is cut to [`MAX_ERROR_DESCRIPTION_LEN`] characters and details that are not an object are
/// written as `{}`, as the spec requires.
pub fn call_error_frame(message_id: &str, error: &CallError) -> String {
    let description = match error.description.char_indices().nth(MAX_ERROR_DESCRIPTION_LEN) {
        Some((cut, _)) => &error.description[..cut],
        None => error.description.as_str(),
    };
    let empty = Value::Object(Map::new());
    let details = if error.details.is_object() { &error.details } else { &empty };
    format!(
        "[4,{},{},{},{}]",
        json_string(message_id),
        json_string(error.code.as_str()),
        json_string(description),
        details
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse_err(text: &str) -> FrameError {
        match parse_frame(text) {
            Ok(frame) => panic!("expected an error for {text}, got {frame:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn parses_the_three_frame_kinds() {
        let call = parse_frame(
            r#"[2, "19223201", "BootNotification", {"chargePointVendor": "VendorX", "chargePointModel": "SingleSocketCharger"}]"#,
        );
        assert_eq!(
            call,
            Ok(Frame::Call(Call::new(
                "19223201",
                "BootNotification",
                json!({"chargePointVendor": "VendorX", "chargePointModel": "SingleSocketCharger"})
            )))
        );
        let result = parse_frame(r#"[3,"19223201",{"status":"Accepted"}]"#);
        assert_eq!(result, Ok(Frame::CallResult(CallResult::new("19223201", json!({"status": "Accepted"})))));
        let error = parse_frame(r#"[4,"7","NotSupported","nope",{"a":1}]"#);
        assert_eq!(
            error,
            Ok(Frame::CallError(CallErrorFrame::new(
                "7",
                CallError::new(ErrorCode::NotSupported, "nope").with_details(json!({"a": 1}))
            )))
        );
    }

    #[test]
    fn null_payload_reads_as_empty_object_and_missing_error_details_are_tolerated() {
        let call = parse_frame(r#"[2,"1","Heartbeat",null]"#);
        assert_eq!(call, Ok(Frame::Call(Call::new("1", "Heartbeat", json!({})))));
        let error = parse_frame(r#"[4,"1","FormationViolation","bad"]"#);
        assert_eq!(error.map(|f| f.to_json()), Ok(r#"[4,"1","FormationViolation","bad",{}]"#.to_owned()));
    }

    #[test]
    fn frames_serialise_and_reparse() {
        let frames = [
            Frame::Call(Call::new("a\"b", "Heartbeat", json!({}))),
            Frame::CallResult(CallResult::new("x", json!({"currentTime": "2024-01-01T00:00:00.000Z"}))),
            Frame::CallError(CallErrorFrame::new(
                "y",
                CallError::new(ErrorCode::OccurenceConstraintViolation, "idTag: required field is missing"),
            )),
        ];
        for frame in frames {
            assert_eq!(parse_frame(&frame.to_json()), Ok(frame.clone()));
        }
        assert_eq!(call_frame("1", "Heartbeat", &json!({})), r#"[2,"1","Heartbeat",{}]"#);
        assert_eq!(call_result_frame("1", &json!({})), r#"[3,"1",{}]"#);
    }

    #[test]
    fn call_error_frame_caps_description_and_forces_object_details() {
        let mut error = CallError::new(ErrorCode::GenericError, "é".repeat(1000));
        error.details = json!([1, 2]);
        let text = call_error_frame("1", &error);
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        assert_eq!(value.get(3).and_then(Value::as_str).map(|s| s.chars().count()), Some(MAX_ERROR_DESCRIPTION_LEN));
        assert_eq!(value.get(4), Some(&json!({})));
    }

    #[test]
    fn not_json_without_recoverable_id_is_ignored() {
        let e = parse_err("this is not json");
        assert_eq!(e.code, ErrorCode::FormationViolation);
        assert_eq!(e.message_id, None);
        assert_eq!(e.disposition, Disposition::Ignore);
        assert_eq!(e.reply(), None);
    }

    #[test]
    fn not_json_with_recoverable_id_is_answered() {
        let e = parse_err(r#"[2, "abc\"1", "Heartbeat", {"#);
        assert_eq!(e.code, ErrorCode::FormationViolation);
        assert_eq!(e.message_id.as_deref(), Some("abc\"1"));
        assert_eq!(e.disposition, Disposition::Reply);
        let reply = e.reply_json().unwrap_or_default();
        assert!(reply.starts_with(r#"[4,"abc\"1","FormationViolation","#), "{reply}");

        let e = parse_err(r#"[3,"r1",{"status":"#);
        assert_eq!(e.disposition, Disposition::FailPending);
        assert_eq!(e.message_id.as_deref(), Some("r1"));
        assert_eq!(e.reply(), None);
    }

    #[test]
    fn not_an_array_is_a_formation_violation() {
        let e = parse_err(r#"{"id": "1"}"#);
        assert_eq!(e.code, ErrorCode::FormationViolation);
        assert_eq!(e.disposition, Disposition::Ignore);
        assert_eq!(parse_err("\"2\"").code, ErrorCode::FormationViolation);
    }

    #[test]
    fn missing_elements_are_protocol_errors() {
        let e = parse_err("[]");
        assert_eq!((e.code, e.disposition), (ErrorCode::ProtocolError, Disposition::Ignore));
        let e = parse_err("[2]");
        assert_eq!((e.code, e.message_id.clone()), (ErrorCode::ProtocolError, None));
        let e = parse_err(r#"[2,"m1","Heartbeat"]"#);
        assert_eq!(e.code, ErrorCode::ProtocolError);
        assert_eq!(e.message_id.as_deref(), Some("m1"));
        assert_eq!(e.disposition, Disposition::Reply);
        let e = parse_err(r#"[3,"m2"]"#);
        assert_eq!((e.code, e.disposition), (ErrorCode::ProtocolError, Disposition::FailPending));
    }

    #[test]
    fn wrong_element_types_and_counts_are_formation_violations() {
        let e = parse_err(r#"[2,"m1","Heartbeat",{},{}]"#);
        assert_eq!((e.code, e.disposition), (ErrorCode::FormationViolation, Disposition::Reply));
        let e = parse_err(r#"[2,"m1",7,{}]"#);
        assert_eq!((e.code, e.disposition), (ErrorCode::FormationViolation, Disposition::Reply));
        let e = parse_err(r#"[2,"m1","Heartbeat","payload"]"#);
        assert_eq!((e.code, e.disposition), (ErrorCode::FormationViolation, Disposition::Reply));
        let e = parse_err(r#"[2,"m1","Heartbeat",[]]"#);
        assert_eq!(e.code, ErrorCode::FormationViolation);
        // Message id not a string: not recoverable, nothing to answer.
        let e = parse_err(r#"[2,12345,"Heartbeat",{}]"#);
        assert_eq!(
            (e.code, e.message_id.clone(), e.disposition),
            (ErrorCode::FormationViolation, None, Disposition::Ignore)
        );
        // Message type not an integer, id recoverable: answered.
        let e = parse_err(r#"["2","m9","Heartbeat",{}]"#);
        assert_eq!((e.code, e.disposition), (ErrorCode::FormationViolation, Disposition::Reply));
        assert_eq!(e.message_id.as_deref(), Some("m9"));
        let e = parse_err(r#"[4,"m1",5,"x",{}]"#);
        assert_eq!((e.code, e.disposition), (ErrorCode::FormationViolation, Disposition::FailPending));
    }

    #[test]
    fn message_id_longer_than_36_is_rejected_with_the_id() {
        let id = "x".repeat(37);
        let e = parse_err(&format!(r#"[2,"{id}","Heartbeat",{{}}]"#));
        assert_eq!(e.code, ErrorCode::FormationViolation);
        assert_eq!(e.message_id.as_deref(), Some(id.as_str()));
        assert_eq!(e.disposition, Disposition::Reply);
        let ok = "y".repeat(36);
        assert!(parse_frame(&format!(r#"[2,"{ok}","Heartbeat",{{}}]"#)).is_ok());
    }

    #[test]
    fn unknown_message_type_number_is_ignored_per_spec() {
        for text in [r#"[5,"m1","Heartbeat",{}]"#, r#"[6,"m1","x",{}]"#, r#"[5,"m1",{"#] {
            let e = parse_err(text);
            assert_eq!(e.disposition, Disposition::Ignore, "{text}");
            assert_eq!(e.reply(), None);
            assert_eq!(e.message_id.as_deref(), Some("m1"));
        }
    }

    #[test]
    fn never_panics_on_odd_input() {
        let inputs = [
            "",
            " ",
            "[",
            "[2",
            "[2,",
            "[2,\"",
            "[2,\"\\",
            "[2,\"\\\"",
            "[-1,\"a\"]",
            "[2.0,\"a\",\"b\",{}]",
            "[18446744073709551616,\"a\"]",
            "null",
            "[null]",
            "[4,\"a\",\"b\",\"c\",null]",
            "[2,\"é\u{0}\",\"A\",{}]",
            "\u{feff}[2,\"a\",\"b\",{}]",
        ];
        for text in inputs {
            let _ = parse_frame(text);
        }
        let e = parse_err("[2.0,\"a\",\"Heartbeat\",{}]");
        assert_eq!(e.code, ErrorCode::FormationViolation);
    }
}
