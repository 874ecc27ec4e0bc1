//! OCPP-J 1.6 RPC error codes (OCPP-J 1.6 section 4.2.3, table 7) and the [`CallError`] value
//! that a failed CALL is answered with.

use std::fmt;
use std::str::FromStr;

use serde_json::{Map, Value};

/// The error codes OCPP-J 1.6 allows in a CALLERROR frame, and no others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// Requested Action is not known by receiver.
    NotImplemented,
    /// Requested Action is recognized but not supported by the receiver.
    NotSupported,
    /// An internal error occurred and the receiver was not able to process the requested Action
    /// successfully.
    InternalError,
    /// Payload for Action is incomplete.
    ProtocolError,
    /// During the processing of Action a security issue occurred preventing receiver from
    /// completing the Action successfully.
    SecurityError,
    /// Payload for Action is syntactically incorrect or not conform the PDU structure for Action.
    FormationViolation,
    /// Payload is syntactically correct but at least one field contains an invalid value.
    PropertyConstraintViolation,
    /// Payload for Action is syntactically correct but at least one of the fields violates
    /// occurrence constraints. The wire spelling is the spec's own: `OccurenceConstraintViolation`.
    OccurenceConstraintViolation,
    /// Payload for Action is syntactically correct but at least one of the fields violates data
    /// type constraints (e.g. `"somestring": 12`).
    TypeConstraintViolation,
    /// Any other error not covered by the previous ones.
    GenericError,
}

impl ErrorCode {
    /// Every code, in the order of the spec's table.
    pub const ALL: [ErrorCode; 10] = [
        ErrorCode::NotImplemented,
        ErrorCode::NotSupported,
        ErrorCode::InternalError,
        ErrorCode::ProtocolError,
        ErrorCode::SecurityError,
        ErrorCode::FormationViolation,
        ErrorCode::PropertyConstraintViolation,
        ErrorCode::OccurenceConstraintViolation,
        ErrorCode::TypeConstraintViolation,
        ErrorCode::GenericError,
    ];

    /// The code as written in a CALLERROR frame.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::NotImplemented => "NotImplemented",
            ErrorCode::NotSupported => "NotSupported",
            ErrorCode::InternalError => "InternalError",
            ErrorCode::ProtocolError => "ProtocolError",
            ErrorCode::SecurityError => "SecurityError",
            ErrorCode::FormationViolation => "FormationViolation",
            ErrorCode::PropertyConstraintViolation => "PropertyConstraintViolation",
            ErrorCode::OccurenceConstraintViolation => "OccurenceConstraintViolation",
            ErrorCode::TypeConstraintViolation => "TypeConstraintViolation",
            ErrorCode::GenericError => "GenericError",
        }
    }

    /// Reads an error code received from a charger, forgivingly: the correct spelling
    /// `OccurrenceConstraintViolation` and OCPP 2.0's `FormatViolation` map to their 1.6
    /// equivalents, and anything else unknown becomes [`ErrorCode::GenericError`] ("any other
    /// error"), so a peer's odd code never makes its whole CALLERROR unreadable.
    pub fn from_wire_lenient(code: &str) -> ErrorCode {
        match code {
            "OccurrenceConstraintViolation" => ErrorCode::OccurenceConstraintViolation,
            "FormatViolation" => ErrorCode::FormationViolation,
            other => other.parse().unwrap_or(ErrorCode::GenericError),
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not one of the ten OCPP 1.6 error codes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown OCPP 1.6 error code `{0}`")]
pub struct UnknownErrorCode(pub String);

impl FromStr for ErrorCode {
    type Err = UnknownErrorCode;

    /// Strict, case-sensitive parse of the spec's spelling.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ErrorCode::ALL.into_iter().find(|code| code.as_str() == s).ok_or_else(|| UnknownErrorCode(s.to_owned()))
    }
}

impl serde::Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for ErrorCode {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Why a CALL could not be handled: the content of a CALLERROR frame (without its message id).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code}: {description}")]
pub struct CallError {
    /// One of the spec's error codes.
    pub code: ErrorCode,
    /// Human-readable cause, naming the offending field where there is one
    /// (e.g. `chargePointVendor: exceeds 20 characters`). May be empty.
    pub description: String,
    /// Free-form details; a JSON object, `{}` when there are none.
    pub details: Value,
}

impl CallError {
    /// An error with the given code and description and empty details (`{}`).
    pub fn new(code: ErrorCode, description: impl Into<String>) -> Self {
        CallError { code, description: description.into(), details: Value::Object(Map::new()) }
    }

    /// Replaces the details. The spec wants an object; anything else is wrapped as
    /// `{"value": …}` so the frame stays valid.
    #[must_use]
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = match details {
            Value::Object(_) => details,
            Value::Null => Value::Object(Map::new()),
            other => {
                let mut map = Map::new();
                map.insert("value".to_owned(), other);
                Value::Object(map)
            }
        };
        self
    }

    /// Shorthand for an [`ErrorCode::NotImplemented`] error.
    pub fn not_implemented(description: impl Into<String>) -> Self {
        CallError::new(ErrorCode::NotImplemented, description)
    }

    /// Shorthand for an [`ErrorCode::NotSupported`] error.
    pub fn not_supported(description: impl Into<String>) -> Self {
        CallError::new(ErrorCode::NotSupported, description)
    }

    /// Shorthand for an [`ErrorCode::InternalError`] error; keep internal detail out of the
    /// description, it is sent to the charger.
    pub fn internal(description: impl Into<String>) -> Self {
        CallError::new(ErrorCode::InternalError, description)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_use_the_spec_spelling_and_round_trip() {
        assert_eq!(ErrorCode::OccurenceConstraintViolation.as_str(), "OccurenceConstraintViolation");
        for code in ErrorCode::ALL {
            assert_eq!(code.as_str().parse::<ErrorCode>(), Ok(code));
            let json = serde_json::to_value(code).ok();
            assert_eq!(json, Some(Value::from(code.as_str())));
        }
        assert!("OccurrenceConstraintViolation".parse::<ErrorCode>().is_err());
    }

    #[test]
    fn lenient_parse_maps_near_misses_and_unknowns() {
        assert_eq!(
            ErrorCode::from_wire_lenient("OccurrenceConstraintViolation"),
            ErrorCode::OccurenceConstraintViolation
        );
        assert_eq!(ErrorCode::from_wire_lenient("FormatViolation"), ErrorCode::FormationViolation);
        assert_eq!(ErrorCode::from_wire_lenient("Whatever"), ErrorCode::GenericError);
        assert_eq!(ErrorCode::from_wire_lenient("SecurityError"), ErrorCode::SecurityError);
    }

    #[test]
    fn details_are_always_an_object() {
        let e = CallError::new(ErrorCode::GenericError, "x");
        assert_eq!(e.details, serde_json::json!({}));
        let e = e.with_details(serde_json::json!(5));
        assert_eq!(e.details, serde_json::json!({"value": 5}));
        let e = e.with_details(Value::Null);
        assert_eq!(e.details, serde_json::json!({}));
        assert_eq!(CallError::not_implemented("nope").to_string(), "NotImplemented: nope");
    }
}
