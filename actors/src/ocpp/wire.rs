//! The [`Wire`] trait: checked conversion between JSON values and typed OCPP values, with the
//! failure mapped to the OCPP-J error code the spec asks for. Also the bounded [`CiString`]
//! type, the JSON [`Path`] used in error descriptions, and the per-field checks (`positive`,
//! `uri`, `one_decimal`) that the schemas' field tables add on top of JSON types.
//!
//! Error mapping, applied everywhere (OCPP-J 1.6 section 4.2.3, table 7):
//! - required field absent → `OccurenceConstraintViolation`;
//! - field of the wrong JSON type (string for integer, 1.5 for integer, …) →
//!   `TypeConstraintViolation`;
//! - right type, invalid value (string too long, unknown enum value, bad date-time, negative
//!   connector id, integer out of range) → `PropertyConstraintViolation`;
//! - the payload itself not an object → `FormationViolation` ("not conform the PDU structure");
//!   a nested object of the wrong type is a field with the wrong type → `TypeConstraintViolation`.
//!
//! Deliberate tolerance: unknown fields are ignored (the schemas forbid them, real chargers send
//! them); `null` for an *optional* field reads as absent; an integral float such as `5.0` is
//! accepted where an integer is expected (JSON Schema draft 6 and later count it an integer).

use std::fmt;
use std::ops::Deref;

use chrono::{DateTime, SecondsFormat, Utc};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Map, Number, Value};

use super::direct::{OptionVisitor, SeqVisitor, StrVisitor};
use super::error::{CallError, ErrorCode};

/// Where in a payload a value sits, for error descriptions: `meterValue[0].sampledValue[2].unit`.
#[derive(Debug, Clone, Copy)]
pub enum Path<'a> {
    /// The payload object itself.
    Root,
    /// A named field of the object at the parent path.
    Field(&'a Path<'a>, &'static str),
    /// An element of the array at the parent path.
    Index(&'a Path<'a>, usize),
}

impl<'a> Path<'a> {
    /// The path of field `name` below this one.
    pub fn field(&'a self, name: &'static str) -> Path<'a> {
        Path::Field(self, name)
    }

    /// The path of element `index` below this one.
    pub fn index(&'a self, index: usize) -> Path<'a> {
        Path::Index(self, index)
    }

    /// Whether this is the payload itself.
    pub fn is_root(&self) -> bool {
        matches!(self, Path::Root)
    }

    fn write_inner(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root => Ok(()),
            Path::Field(parent, name) => {
                if parent.is_root() {
                    f.write_str(name)
                } else {
                    parent.write_inner(f)?;
                    write!(f, ".{name}")
                }
            }
            Path::Index(parent, index) => {
                parent.write_inner(f)?;
                write!(f, "[{index}]")
            }
        }
    }
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_root() { f.write_str("payload") } else { self.write_inner(f) }
    }
}

/// A `FormationViolation` for `path`.
pub fn formation(path: &Path<'_>, message: impl fmt::Display) -> CallError {
    CallError::new(ErrorCode::FormationViolation, format!("{path}: {message}"))
}

/// An `OccurenceConstraintViolation` for `path`.
pub fn occurrence(path: &Path<'_>, message: impl fmt::Display) -> CallError {
    CallError::new(ErrorCode::OccurenceConstraintViolation, format!("{path}: {message}"))
}

/// A `TypeConstraintViolation` for `path`: expected `expected`, found the JSON type of `found`.
pub fn wrong_type(path: &Path<'_>, expected: &str, found: &Value) -> CallError {
    CallError::new(ErrorCode::TypeConstraintViolation, format!("{path}: expected {expected}, got {}", json_type(found)))
}

/// A `PropertyConstraintViolation` for `path`.
pub fn property(path: &Path<'_>, message: impl fmt::Display) -> CallError {
    CallError::new(ErrorCode::PropertyConstraintViolation, format!("{path}: {message}"))
}

/// The JSON type name of a value, as JSON Schema names it.
pub fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Quotes a received string for an error description, cut short so a hostile value cannot blow
/// up the CALLERROR we send back.
pub fn quote(s: &str) -> String {
    const MAX: usize = 40;
    match s.char_indices().nth(MAX) {
        Some((cut, _)) => format!("'{}…'", &s[..cut]),
        None => format!("'{s}'"),
    }
}

/// A value that can be read from and written to OCPP JSON, with schema-level validation.
///
/// Implemented by every OCPP type in this module (payloads, shared structures, enums) and by the
/// primitives they are built from. Payload structs and enums also implement serde's `Serialize`
/// and `Deserialize` through this trait, so both routes give the same result.
pub trait Wire: Sized {
    /// Reads and validates `value`, found at `path`.
    fn from_wire(value: &Value, path: &Path<'_>) -> Result<Self, CallError>;

    /// What an absent field of this type reads as: an `OccurenceConstraintViolation` for a
    /// required field; `Option<T>` overrides this to `None`.
    fn when_absent(path: &Path<'_>) -> Result<Self, CallError> {
        Err(occurrence(path, "required field is missing"))
    }

    /// The JSON form of this value.
    fn to_wire(&self) -> Value;

    /// Whether this field is left out when serialising (only a `None` is).
    fn is_absent(&self) -> bool {
        false
    }

    /// Reads and validates a whole payload: shorthand for `from_wire(payload, &Path::Root)`.
    fn from_payload(payload: &Value) -> Result<Self, CallError> {
        Self::from_wire(payload, &Path::Root)
    }

    /// Reads this value straight from the JSON text being parsed, without a [`Value`] tree
    /// (see [`super::direct`]). It must give exactly what [`Wire::from_wire`] gives wherever it
    /// succeeds, and fail (with a bare error: the caller reads the text again with `from_wire`
    /// to say what is wrong) at least wherever `from_wire` fails; it may fail more often. The
    /// default reads a `Value` and hands it to `from_wire`, which costs no allocation for
    /// numbers and booleans; structures, lists, options, strings, enums and date-times read
    /// without one.
    fn read_direct<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Self::from_wire(&value, &Path::Root.field("value")).map_err(serde::de::Error::custom)
    }
}

/// Reads a JSON object at `path`, for the struct macro. The payload itself (`Path::Root`) may be
/// `null`, which OCPP-J 1.6 section 4.2.1 allows for "no payload": it reads as `{}`.
pub fn expect_object<'v>(value: &'v Value, path: &Path<'_>) -> Result<Option<&'v Map<String, Value>>, CallError> {
    match value {
        Value::Object(map) => Ok(Some(map)),
        Value::Null if path.is_root() => Ok(None),
        other if path.is_root() => {
            Err(formation(path, format_args!("expected a JSON object, got {}", json_type(other))))
        }
        other => Err(wrong_type(path, "object", other)),
    }
}

/// Reads a JSON string at `path`.
pub fn expect_str<'v>(value: &'v Value, path: &Path<'_>) -> Result<&'v str, CallError> {
    value.as_str().ok_or_else(|| wrong_type(path, "string", value))
}

/// Reads one field of an object: present → [`Wire::from_wire`], absent → [`Wire::when_absent`].
pub fn read_field<T: Wire>(
    object: Option<&Map<String, Value>>,
    name: &'static str,
    parent: &Path<'_>,
) -> Result<T, CallError> {
    let path = parent.field(name);
    match object.and_then(|map| map.get(name)) {
        Some(value) => T::from_wire(value, &path),
        None => T::when_absent(&path),
    }
}

/// The `PropertyConstraintViolation` for a string that is not one of an enum's values.
pub fn bad_enum(path: &Path<'_>, found: &str, allowed: &[&str]) -> CallError {
    property(path, format_args!("{} is not one of {}", quote(found), allowed.join(", ")))
}

impl<T: Wire> Wire for Option<T> {
    fn from_wire(value: &Value, path: &Path<'_>) -> Result<Self, CallError> {
        match value {
            Value::Null => Ok(None),
            other => T::from_wire(other, path).map(Some),
        }
    }

    fn when_absent(_path: &Path<'_>) -> Result<Self, CallError> {
        Ok(None)
    }

    fn read_direct<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_option(OptionVisitor(std::marker::PhantomData))
    }

    fn to_wire(&self) -> Value {
        self.as_ref().map_or(Value::Null, Wire::to_wire)
    }

    fn is_absent(&self) -> bool {
        self.is_none()
    }
}

impl<T: Wire> Wire for Vec<T> {
    fn from_wire(value: &Value, path: &Path<'_>) -> Result<Self, CallError> {
        let items = value.as_array().ok_or_else(|| wrong_type(path, "array", value))?;
        items.iter().enumerate().map(|(i, item)| T::from_wire(item, &path.index(i))).collect()
    }

    fn read_direct<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_seq(SeqVisitor(std::marker::PhantomData))
    }

    fn to_wire(&self) -> Value {
        Value::Array(self.iter().map(Wire::to_wire).collect())
    }
}

impl Wire for bool {
    fn from_wire(value: &Value, path: &Path<'_>) -> Result<Self, CallError> {
        value.as_bool().ok_or_else(|| wrong_type(path, "boolean", value))
    }

    fn to_wire(&self) -> Value {
        Value::Bool(*self)
    }
}

impl Wire for String {
    fn from_wire(value: &Value, path: &Path<'_>) -> Result<Self, CallError> {
        expect_str(value, path).map(str::to_owned)
    }

    fn read_direct<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)
    }

    fn to_wire(&self) -> Value {
        Value::String(self.clone())
    }
}

/// Reads a JSON integer as `i128` (so every range check below is exact). A float with a
/// fractional part, or any non-number, is a type error.
fn integer(value: &Value, path: &Path<'_>) -> Result<i128, CallError> {
    let Value::Number(n) = value else {
        return Err(wrong_type(path, "integer", value));
    };
    if let Some(i) = n.as_i64() {
        return Ok(i128::from(i));
    }
    if let Some(u) = n.as_u64() {
        return Ok(i128::from(u));
    }
    match n.as_f64() {
        Some(f) if f.is_finite() && f.fract() == 0.0 => {
            if f.abs() < 9.0e18 {
                // Exact: integral and well inside i64.
                Ok(f as i128)
            } else {
                Err(property(path, "integer out of range"))
            }
        }
        _ => Err(wrong_type(path, "integer", value)),
    }
}

macro_rules! wire_integer {
    ($($t:ty => $range:literal),+ $(,)?) => {$(
        impl Wire for $t {
            fn from_wire(value: &Value, path: &Path<'_>) -> Result<Self, CallError> {
                let i = integer(value, path)?;
                <$t>::try_from(i).map_err(|_| property(path, format_args!("{i} is out of range ({})", $range)))
            }

            fn to_wire(&self) -> Value {
                Value::from(*self)
            }
        }
    )+};
}

wire_integer! {
    i32 => "32-bit integer",
    i64 => "64-bit integer",
    u32 => "must be >= 0",
}

/// Converts a JSON number to a [`Decimal`] exactly as written (`0.1` stays `0.1`), if it fits.
pub fn number_to_decimal(n: &Number) -> Option<Decimal> {
    if let Some(i) = n.as_i64() {
        return Some(Decimal::from(i));
    }
    if let Some(u) = n.as_u64() {
        return Some(Decimal::from(u));
    }
    let text = n.to_string();
    text.parse::<Decimal>().ok().or_else(|| Decimal::from_scientific(&text).ok())
}

impl Wire for Decimal {
    fn from_wire(value: &Value, path: &Path<'_>) -> Result<Self, CallError> {
        let Value::Number(n) = value else {
            return Err(wrong_type(path, "number", value));
        };
        number_to_decimal(n).ok_or_else(|| property(path, "number out of range"))
    }

    /// Written as a JSON number (the schemas say `number`), whatever rust_decimal's own serde
    /// features are: `32.5` → `32.5`, `16` → `16`.
    fn to_wire(&self) -> Value {
        let normalized = self.normalize();
        if normalized.scale() == 0
            && let Ok(i) = i64::try_from(normalized)
        {
            return Value::from(i);
        }
        // Decimal's shortest string parses back to the nearest f64, which prints the same.
        normalized.to_string().parse::<f64>().ok().and_then(Number::from_f64).map_or(Value::Null, Value::Number)
    }
}

impl Wire for DateTime<Utc> {
    /// Accepts RFC 3339 date-times (JSON Schema's `date-time` format) with any offset and
    /// normalises them to UTC.
    fn from_wire(value: &Value, path: &Path<'_>) -> Result<Self, CallError> {
        let s = expect_str(value, path)?;
        date_time(s).ok_or_else(|| property(path, format_args!("{} is not an RFC 3339 date-time", quote(s))))
    }

    fn read_direct<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(StrVisitor::new("an RFC 3339 date-time", date_time))
    }

    /// Written as UTC with millisecond precision and a `Z`, e.g. `2024-05-01T12:00:00.000Z`,
    /// the form OCPP 1.6 examples use and the one chargers parse most reliably.
    fn to_wire(&self) -> Value {
        Value::String(self.to_rfc3339_opts(SecondsFormat::Millis, true))
    }
}

/// An RFC 3339 date-time with any offset, in UTC.
fn date_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc))
}

/// The error a [`CiString`] constructor returns for a string that is too long.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("exceeds {max} characters")]
pub struct CiStringTooLong {
    /// The maximum length of the type.
    pub max: usize,
}

/// OCPP's `CiStringNType`: a string of at most `N` characters ("case-insensitive" by spec, so
/// compare identifiers with [`CiString::eq_ignore_case`]; equality and hashing here are exact,
/// so values round-trip unchanged).
///
/// The length is counted in characters (Unicode scalar values), as JSON Schema's `maxLength`
/// does. The spec limits these strings to printable ASCII but the schemas do not check it, and
/// neither does this type.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct CiString<const N: usize>(String);

/// `CiString20Type`.
pub type CiString20 = CiString<20>;
/// `CiString25Type`.
pub type CiString25 = CiString<25>;
/// `CiString50Type`.
pub type CiString50 = CiString<50>;
/// `CiString255Type`.
pub type CiString255 = CiString<255>;
/// `CiString500Type`.
pub type CiString500 = CiString<500>;
/// `IdToken`: an RFID uid or other identifier, `CiString20Type`.
pub type IdToken = CiString20;

impl<const N: usize> CiString<N> {
    /// The maximum length in characters.
    pub const MAX_LEN: usize = N;

    /// Wraps `s` if it has at most `N` characters.
    pub fn new(s: impl Into<String>) -> Result<Self, CiStringTooLong> {
        let s = s.into();
        if s.chars().nth(N).is_some() { Err(CiStringTooLong { max: N }) } else { Ok(CiString(s)) }
    }

    /// The string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The owned string.
    pub fn into_string(self) -> String {
        self.0
    }

    /// ASCII case-insensitive comparison, the spec's notion of equality for these strings.
    pub fn eq_ignore_case(&self, other: &str) -> bool {
        self.0.eq_ignore_ascii_case(other)
    }
}

impl<const N: usize> Deref for CiString<N> {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl<const N: usize> AsRef<str> for CiString<N> {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl<const N: usize> fmt::Display for CiString<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<const N: usize> TryFrom<String> for CiString<N> {
    type Error = CiStringTooLong;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        CiString::new(s)
    }
}

impl<const N: usize> TryFrom<&str> for CiString<N> {
    type Error = CiStringTooLong;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        CiString::new(s)
    }
}

impl<const N: usize> From<CiString<N>> for String {
    fn from(s: CiString<N>) -> String {
        s.0
    }
}

impl<const N: usize> PartialEq<str> for CiString<N> {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl<const N: usize> PartialEq<&str> for CiString<N> {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl<const N: usize> Wire for CiString<N> {
    fn from_wire(value: &Value, path: &Path<'_>) -> Result<Self, CallError> {
        let s = expect_str(value, path)?;
        CiString::new(s).map_err(|e| property(path, e))
    }

    fn read_direct<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        CiString::new(String::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }

    fn to_wire(&self) -> Value {
        Value::String(self.0.clone())
    }
}

impl<const N: usize> serde::Serialize for CiString<N> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de, const N: usize> serde::Deserialize<'de> for CiString<N> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        CiString::new(s).map_err(serde::de::Error::custom)
    }
}

/// Integer fields (plain or optional) that a field check can inspect.
pub trait IntField {
    /// The value, if present.
    fn int_value(&self) -> Option<i64>;
}

impl IntField for u32 {
    fn int_value(&self) -> Option<i64> {
        Some(i64::from(*self))
    }
}

impl IntField for i32 {
    fn int_value(&self) -> Option<i64> {
        Some(i64::from(*self))
    }
}

impl<T: IntField> IntField for Option<T> {
    fn int_value(&self) -> Option<i64> {
        self.as_ref().and_then(IntField::int_value)
    }
}

/// String fields (plain or optional) that a field check can inspect.
pub trait StrField {
    /// The value, if present.
    fn str_value(&self) -> Option<&str>;
}

impl StrField for String {
    fn str_value(&self) -> Option<&str> {
        Some(self)
    }
}

impl<T: StrField> StrField for Option<T> {
    fn str_value(&self) -> Option<&str> {
        self.as_ref().and_then(StrField::str_value)
    }
}

/// Decimal fields (plain or optional) that a field check can inspect.
pub trait DecimalField {
    /// The value, if present.
    fn decimal_value(&self) -> Option<Decimal>;
}

impl DecimalField for Decimal {
    fn decimal_value(&self) -> Option<Decimal> {
        Some(*self)
    }
}

impl<T: DecimalField> DecimalField for Option<T> {
    fn decimal_value(&self) -> Option<Decimal> {
        self.as_ref().and_then(DecimalField::decimal_value)
    }
}

/// Field check for "connectorId > 0" and the like (spec field tables).
pub fn positive<T: IntField>(value: &T, path: &Path<'_>) -> Result<(), CallError> {
    match value.int_value() {
        Some(i) if i <= 0 => Err(property(path, format_args!("{i} must be > 0"))),
        _ => Ok(()),
    }
}

/// Field check for JSON Schema's `uri` format (the spec's `anyURI`): a scheme (`ALPHA *( ALPHA
/// / DIGIT / "+" / "-" / "." )`) followed by `:` and no whitespace or control characters.
pub fn uri<T: StrField>(value: &T, path: &Path<'_>) -> Result<(), CallError> {
    let Some(s) = value.str_value() else {
        return Ok(());
    };
    let valid = s.split_once(':').is_some_and(|(scheme, _)| {
        let mut chars = scheme.chars();
        chars.next().is_some_and(|c| c.is_ascii_alphabetic())
            && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    }) && !s.chars().any(|c| c.is_whitespace() || c.is_control());
    if valid { Ok(()) } else { Err(property(path, format_args!("{} is not a URI", quote(s)))) }
}

/// Field check for the schemas' `multipleOf: 0.1` ("accepts at most one digit fraction").
pub fn one_decimal<T: DecimalField>(value: &T, path: &Path<'_>) -> Result<(), CallError> {
    match value.decimal_value() {
        Some(d) if d.normalize().scale() > 1 => {
            Err(property(path, format_args!("{d} has more than one decimal (must be a multiple of 0.1)")))
        }
        _ => Ok(()),
    }
}

/// The names the declaration macros expand to; glob-import this where the macros are used.
pub mod support {
    pub use super::super::direct::{DirectKey, DirectSeed, StrVisitor};
    pub use super::super::error::CallError;
    pub use super::{Path, Wire, bad_enum, expect_object, expect_str, one_decimal, positive, read_field, uri};
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn code<T: Wire + fmt::Debug>(v: Value) -> ErrorCode {
        match T::from_wire(&v, &Path::Root.field("f")) {
            Ok(x) => panic!("expected an error, got {x:?}"),
            Err(e) => e.code,
        }
    }

    #[test]
    fn integers_distinguish_type_from_range() {
        assert_eq!(i32::from_wire(&json!(7), &Path::Root).ok(), Some(7));
        assert_eq!(i32::from_wire(&json!(7.0), &Path::Root).ok(), Some(7));
        assert_eq!(code::<i32>(json!(1.5)), ErrorCode::TypeConstraintViolation);
        assert_eq!(code::<i32>(json!("7")), ErrorCode::TypeConstraintViolation);
        assert_eq!(code::<i32>(json!(3_000_000_000u64)), ErrorCode::PropertyConstraintViolation);
        assert_eq!(code::<u32>(json!(-1)), ErrorCode::PropertyConstraintViolation);
        assert_eq!(code::<i64>(json!(1e300)), ErrorCode::PropertyConstraintViolation);
        assert_eq!(i64::from_wire(&json!(u64::MAX), &Path::Root).ok(), None);
    }

    #[test]
    fn decimals_are_exact_and_written_as_numbers() {
        let d = Decimal::from_wire(&json!(0.1), &Path::Root).ok();
        assert_eq!(d, Some(Decimal::new(1, 1)));
        assert_eq!(Decimal::new(325, 1).to_wire(), json!(32.5));
        assert_eq!(Decimal::new(1600, 2).to_wire(), json!(16));
        assert_eq!(code::<Decimal>(json!("32.5")), ErrorCode::TypeConstraintViolation);
        assert!(one_decimal(&Decimal::new(805, 2), &Path::Root).is_err());
        assert!(one_decimal(&Decimal::new(810, 2), &Path::Root).is_ok());
        assert!(one_decimal(&Some(Decimal::new(81, 1)), &Path::Root).is_ok());
    }

    #[test]
    fn date_times_normalise_to_utc_and_print_with_z() {
        let t = DateTime::<Utc>::from_wire(&json!("2024-05-01T14:00:00.250+02:00"), &Path::Root);
        let t = t.ok();
        assert_eq!(t.map(|t| t.to_wire()), Some(json!("2024-05-01T12:00:00.250Z")));
        assert_eq!(code::<DateTime<Utc>>(json!("2024-05-01 noon")), ErrorCode::PropertyConstraintViolation);
        assert_eq!(code::<DateTime<Utc>>(json!("2024-05-01T12:00:00")), ErrorCode::PropertyConstraintViolation);
        assert_eq!(code::<DateTime<Utc>>(json!(1714564800)), ErrorCode::TypeConstraintViolation);
    }

    #[test]
    fn ci_strings_count_characters() {
        assert!(CiString20::new("é".repeat(20)).is_ok());
        assert_eq!(CiString20::new("x".repeat(21)), Err(CiStringTooLong { max: 20 }));
        let e = CiString20::from_wire(&json!("x".repeat(21)), &Path::Root.field("idTag"));
        assert_eq!(
            e.err().map(|e| (e.code, e.description)),
            Some((ErrorCode::PropertyConstraintViolation, "idTag: exceeds 20 characters".to_owned()))
        );
        let tag = IdToken::new("AbC").ok();
        assert!(tag.is_some_and(|t| t.eq_ignore_case("abc") && t != "abc"));
    }

    #[test]
    fn paths_print_like_json_pointers_for_humans() {
        let root = Path::Root;
        let mv = root.field("meterValue");
        let first = mv.index(0);
        let sv = first.field("sampledValue");
        let second = sv.index(2);
        let unit = second.field("unit");
        assert_eq!(unit.to_string(), "meterValue[0].sampledValue[2].unit");
        assert_eq!(root.to_string(), "payload");
    }

    #[test]
    fn uri_check() {
        let p = Path::Root;
        assert!(uri(&"ftp://example.com/diag/".to_owned(), &p).is_ok());
        assert!(uri(&"not a uri".to_owned(), &p).is_err());
        assert!(uri(&"/relative/path".to_owned(), &p).is_err());
        assert!(uri(&None::<String>, &p).is_ok());
    }

    #[test]
    fn long_values_are_cut_in_descriptions() {
        let q = quote(&"x".repeat(1000));
        assert!(q.chars().count() < 50);
    }
}
