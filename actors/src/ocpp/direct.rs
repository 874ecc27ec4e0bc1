//! Reading a charger's CALL straight from its text into typed values, without the JSON tree
//! ([`serde_json::Value`]) that [`super::frame`] and [`Wire::from_wire`] read it through.
//!
//! The tree costs an allocation for every key and string of the message, and another to free
//! it; a MeterValues with three samples is about fifty of each. Reading directly costs one per
//! string kept. It is the fast path for the common case only: [`read_call`] answers `None` for
//! anything it does not read cleanly — a broken frame, a payload that fails validation, a
//! duplicate key, an escaped key, a message type other than CALL — and the caller then parses
//! the text the usual way, which says exactly what is wrong. So a frame read here is one the
//! usual way accepts, read to the same value (the tests below compare the two on thousands of
//! broken variants of real messages).

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, SeqAccess, Visitor};

use super::frame::MAX_MESSAGE_ID_LEN;
use super::messages::ChargePointRequest;
use super::wire::Wire;

/// A CALL read directly: `[2, "<id>", "<action>", {payload}]` with its payload validated.
#[derive(Debug, Clone, PartialEq)]
pub struct DirectCall {
    /// The message id (at most [`MAX_MESSAGE_ID_LEN`] characters).
    pub message_id: String,
    /// The action name.
    pub action: String,
    /// The payload, validated as `action`'s request.
    pub request: ChargePointRequest,
}

/// Reads `text` as a valid CALL from a charge point, or answers `None` for the caller to parse
/// it with [`super::Frame::parse`] and [`ChargePointRequest::parse`], which say why it is not
/// one (or read what is not a CALL).
pub fn read_call(text: &str) -> Option<DirectCall> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let call = (&mut deserializer).deserialize_seq(CallVisitor).ok()?;
    deserializer.end().ok()?;
    Some(call)
}

struct CallVisitor;

impl<'de> Visitor<'de> for CallVisitor {
    type Value = DirectCall;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an OCPP-J CALL")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<DirectCall, A::Error> {
        if seq.next_element::<u64>()? != Some(2) {
            return Err(de::Error::custom("not a CALL"));
        }
        let message_id: String = seq.next_element()?.ok_or_else(|| de::Error::custom("no message id"))?;
        if message_id.chars().nth(MAX_MESSAGE_ID_LEN).is_some() {
            return Err(de::Error::custom("message id too long"));
        }
        let action: String = seq.next_element()?.ok_or_else(|| de::Error::custom("no action"))?;
        let request = seq.next_element_seed(RequestSeed(&action))?.ok_or_else(|| de::Error::custom("no payload"))?;
        if seq.next_element::<IgnoredAny>()?.is_some() {
            return Err(de::Error::custom("too many elements"));
        }
        Ok(DirectCall { message_id, action, request })
    }
}

/// Reads a payload as the request of the action it names.
struct RequestSeed<'a>(&'a str);

impl<'de> DeserializeSeed<'de> for RequestSeed<'_> {
    type Value = ChargePointRequest;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<ChargePointRequest, D::Error> {
        ChargePointRequest::read_direct(self.0, deserializer)
    }
}

/// Reads a `T` with [`Wire::read_direct`], where serde wants a seed (a list's element, a
/// structure's field).
pub struct DirectSeed<T>(pub PhantomData<T>);

impl<'de, T: Wire> DeserializeSeed<'de> for DirectSeed<T> {
    type Value = T;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<T, D::Error> {
        T::read_direct(deserializer)
    }
}

/// An optional field: `null` is `None`, as in [`Wire`] for `Option`.
pub struct OptionVisitor<T>(pub PhantomData<T>);

impl<'de, T: Wire> Visitor<'de> for OptionVisitor<T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a value or null")
    }

    fn visit_none<E: de::Error>(self) -> Result<Option<T>, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Option<T>, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Option<T>, D::Error> {
        T::read_direct(deserializer).map(Some)
    }
}

/// A JSON array of `T`.
pub struct SeqVisitor<T>(pub PhantomData<T>);

impl<'de, T: Wire> Visitor<'de> for SeqVisitor<T> {
    type Value = Vec<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(DirectSeed::<T>(PhantomData))? {
            items.push(item);
        }
        Ok(items)
    }
}

/// A JSON string turned into a value by `parse`, read in place (no copy of the string).
pub struct StrVisitor<F> {
    expecting: &'static str,
    parse: F,
}

impl<F> StrVisitor<F> {
    /// A visitor for what `expecting` names, read with `parse` (`None`: not one).
    pub fn new(expecting: &'static str, parse: F) -> Self {
        StrVisitor { expecting, parse }
    }
}

impl<'de, T, F: FnOnce(&str) -> Option<T>> Visitor<'de> for StrVisitor<F> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<T, E> {
        (self.parse)(s).ok_or_else(|| E::custom(self.expecting))
    }
}

/// An object's key, read in place. A key written with escapes is refused rather than copied:
/// no charger writes one, and the usual parse reads it.
pub struct DirectKey<'de>(&'de str);

impl<'de> DirectKey<'de> {
    /// The key.
    pub fn as_str(&self) -> &'de str {
        self.0
    }
}

impl<'de> de::Deserialize<'de> for DirectKey<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;

        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = DirectKey<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key without escapes")
            }

            fn visit_borrowed_str<E: de::Error>(self, key: &'de str) -> Result<DirectKey<'de>, E> {
                Ok(DirectKey(key))
            }
        }

        deserializer.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::super::frame::Frame;
    use super::*;

    /// What the usual route reads `text` as, if it is a valid CALL.
    fn usual(text: &str) -> Option<DirectCall> {
        let Ok(Frame::Call(call)) = Frame::parse(text) else { return None };
        let request = ChargePointRequest::parse(&call.action, &call.payload).ok()?;
        Some(DirectCall { message_id: call.message_id, action: call.action, request })
    }

    /// Real messages of every kind a charger sends often, as chargers write them.
    const MESSAGES: &[&str] = &[
        r#"[2,"m-1","MeterValues",{"connectorId":1,"transactionId":7,"meterValue":[{"timestamp":"2026-11-23T05:10:00.250Z","sampledValue":[{"value":"1234","context":"Sample.Periodic","measurand":"Energy.Active.Import.Register","location":"Outlet","unit":"Wh"},{"value":"7200","context":"Sample.Periodic","measurand":"Power.Active.Import","location":"Outlet","unit":"W"},{"value":"42","context":"Sample.Periodic","measurand":"SoC","location":"EV","unit":"Percent"}]}]}]"#,
        r#"[2, "m-2", "MeterValues", {"connectorId": 0, "meterValue": [{"timestamp": "2026-11-23T07:10:00+05:30", "sampledValue": [{"value": "12.5", "unit": "kWh", "phase": "L1", "format": "Raw"}]}], "vendorExtra": {"a": [1, 2]}}]"#,
        r#"[2,"h","Heartbeat",{}]"#,
        r#"[2,"b","BootNotification",{"chargePointVendor":"Acme","chargePointModel":"X-1","firmwareVersion":"1.2.3","meterSerialNumber":null}]"#,
        r#"[2,"s","StatusNotification",{"connectorId":2,"errorCode":"NoError","status":"Charging","timestamp":"2026-11-23T05:10:00Z","info":"ok"}]"#,
        r#"[2,"a","Authorize",{"idTag":"RFID-0001"}]"#,
        r#"[2,"t","StartTransaction",{"connectorId":1,"idTag":"RFID-0001","meterStart":1000,"reservationId":3,"timestamp":"2026-11-23T05:10:00Z"}]"#,
        r#"[2,"p","StopTransaction",{"transactionId":7,"meterStop":9000,"timestamp":"2026-11-23T06:10:00Z","reason":"Local","idTag":"RFID-0001","transactionData":[{"timestamp":"2026-11-23T06:10:00Z","sampledValue":[{"value":"9000"}]}]}]"#,
        r#"[2,"d","DataTransfer",{"vendorId":"acme","messageId":"x","data":"{\"k\":1}"}]"#,
        r#"[2,"f","FirmwareStatusNotification",{"status":"Installed"}]"#,
    ];

    #[test]
    fn real_messages_read_directly_to_what_the_usual_parse_reads() {
        for text in MESSAGES {
            let direct = read_call(text);
            assert!(direct.is_some(), "not read directly: {text}");
            assert_eq!(direct, usual(text), "{text}");
        }
    }

    /// Variants of `text`: every character removed, and every character replaced by each of a
    /// few that break JSON or change a type, a value or a key.
    fn variants(text: &str) -> impl Iterator<Item = String> + '_ {
        const REPLACEMENTS: &[&str] = &["", "0", "-", "\"", "{", "]", ",", "null", "1.5", "x", "\\u0041", " "];
        text.char_indices().flat_map(move |(i, c)| {
            REPLACEMENTS.iter().map(move |with| format!("{}{with}{}", &text[..i], &text[i + c.len_utf8()..]))
        })
    }

    #[test]
    fn what_reads_directly_is_exactly_what_the_usual_parse_accepts() {
        let mut checked = 0;
        let mut direct_reads = 0;
        for text in MESSAGES {
            for variant in variants(text) {
                if let Some(direct) = read_call(&variant) {
                    direct_reads += 1;
                    assert_eq!(Some(direct), usual(&variant), "{variant}");
                }
                checked += 1;
            }
        }
        // The variants include many valid messages (a changed digit or id), so both routes are
        // really compared, not only refused.
        assert!(checked > 15_000 && direct_reads > 1_000, "{checked} variants, {direct_reads} read directly");
    }

    #[test]
    fn anything_unusual_is_left_to_the_usual_parse() {
        for text in [
            r#"[2,"h","Heartbeat",null]"#,
            r#"[2,"h","Heartbeat",{},5]"#,
            r#"[2.0,"h","Heartbeat",{}]"#,
            r#"[3,"h",{}]"#,
            r#"[2,"s","StatusNotification",{"connectorId":1,"connectorId":2,"errorCode":"NoError","status":"Available"}]"#,
            r#"[2,"a","Authorize",{"id\u0054ag":"RFID-0001"}]"#,
            r#"[2,"a","Authorize",{"idTag":"RFID-0001"}] x"#,
            r#"[2,"a","Authorise",{"idTag":"RFID-0001"}]"#,
            r#"[2,"a","Authorize",{"idTag":"123456789012345678901"}]"#,
            r#"[2,"0123456789012345678901234567890123456","Heartbeat",{}]"#,
        ] {
            assert_eq!(read_call(text), None, "{text}");
        }
    }
}
