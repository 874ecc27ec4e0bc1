//! Module-level tests: every OCPP 1.6 payload round-trips from a realistic example, and every
//! validation failure maps to the error code the spec asks for.

use std::collections::BTreeSet;

use chrono::{TimeZone, Utc};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::*;

/// (action, request, response) for the 10 charger-initiated actions.
fn charge_point_examples() -> Vec<(&'static str, Value, Value)> {
    vec![
        (
            "Authorize",
            json!({"idTag": "04A2B3C4D5E6F7"}),
            json!({"idTagInfo": {"status": "Accepted", "expiryDate": "2024-06-01T00:00:00.000Z", "parentIdTag": "FLEET-1"}}),
        ),
        (
            "BootNotification",
            json!({
                "chargePointVendor": "Alfen BV",
                "chargePointModel": "NG920-61023",
                "chargePointSerialNumber": "ACE0012345",
                "chargeBoxSerialNumber": "ACE0012345",
                "firmwareVersion": "6.4.0-4013",
                "iccid": "8931088619092203123",
                "imsi": "204080916234567",
                "meterType": "Eastron SDM630",
                "meterSerialNumber": "M123456"
            }),
            json!({"currentTime": "2024-05-01T12:00:00.000Z", "interval": 300, "status": "Accepted"}),
        ),
        (
            "DataTransfer",
            json!({"vendorId": "com.example", "messageId": "ping", "data": "{\"a\":1}"}),
            json!({"status": "Accepted", "data": "pong"}),
        ),
        ("DiagnosticsStatusNotification", json!({"status": "Uploaded"}), json!({})),
        ("FirmwareStatusNotification", json!({"status": "Installed"}), json!({})),
        ("Heartbeat", json!({}), json!({"currentTime": "2024-05-01T12:00:00.123Z"})),
        (
            "MeterValues",
            json!({
                "connectorId": 1,
                "transactionId": 42,
                "meterValue": [{
                    "timestamp": "2024-05-01T12:15:00.000Z",
                    "sampledValue": [
                        {"value": "1523.4", "context": "Sample.Periodic", "format": "Raw", "measurand": "Energy.Active.Import.Register", "location": "Outlet", "unit": "kWh"},
                        {"value": "11040", "measurand": "Power.Active.Import", "unit": "W"},
                        {"value": "16.02", "measurand": "Current.Import", "phase": "L1", "unit": "A"},
                        {"value": "230.1", "measurand": "Voltage", "phase": "L1-N", "unit": "V"},
                        {"value": "34", "measurand": "Temperature", "location": "Body", "unit": "Celsius"},
                        {"value": "67", "measurand": "SoC", "location": "EV", "unit": "Percent"}
                    ]
                }]
            }),
            json!({}),
        ),
        (
            "StartTransaction",
            json!({"connectorId": 1, "idTag": "APP_USER", "meterStart": 1523400, "reservationId": 7, "timestamp": "2024-05-01T12:00:00.000Z"}),
            json!({"idTagInfo": {"status": "Accepted"}, "transactionId": 12345}),
        ),
        (
            "StatusNotification",
            json!({"connectorId": 1, "errorCode": "EVCommunicationError", "info": "CP signal lost", "status": "SuspendedEVSE", "timestamp": "2024-05-01T12:00:00.000Z", "vendorId": "com.example", "vendorErrorCode": "E042"}),
            json!({}),
        ),
        (
            "StopTransaction",
            json!({
                "idTag": "APP_USER",
                "meterStop": 1538832,
                "timestamp": "2024-05-01T13:00:00.000Z",
                "transactionId": 12345,
                "reason": "EVDisconnected",
                "transactionData": [
                    {"timestamp": "2024-05-01T12:00:00.000Z", "sampledValue": [{"value": "1523400", "context": "Transaction.Begin"}]},
                    {"timestamp": "2024-05-01T13:00:00.000Z", "sampledValue": [{"value": "1538.832", "context": "Transaction.End", "unit": "kWh"}]}
                ]
            }),
            json!({"idTagInfo": {"status": "Accepted"}}),
        ),
    ]
}

fn charging_profile() -> Value {
    json!({
        "chargingProfileId": 100,
        "transactionId": 12345,
        "stackLevel": 0,
        "chargingProfilePurpose": "TxProfile",
        "chargingProfileKind": "Absolute",
        "validFrom": "2024-05-01T12:00:00.000Z",
        "validTo": "2024-05-02T12:00:00.000Z",
        "chargingSchedule": {
            "duration": 7200,
            "startSchedule": "2024-05-01T12:00:00.000Z",
            "chargingRateUnit": "A",
            "chargingSchedulePeriod": [
                {"startPeriod": 0, "limit": 16, "numberPhases": 3},
                {"startPeriod": 3600, "limit": 10.5}
            ],
            "minChargingRate": 6.5
        }
    })
}

/// (action, request, response) for the 19 central-system-initiated actions.
fn central_system_examples() -> Vec<(&'static str, Value, Value)> {
    vec![
        ("CancelReservation", json!({"reservationId": 7}), json!({"status": "Accepted"})),
        ("ChangeAvailability", json!({"connectorId": 0, "type": "Inoperative"}), json!({"status": "Scheduled"})),
        (
            "ChangeConfiguration",
            json!({"key": "HeartbeatInterval", "value": "300"}),
            json!({"status": "RebootRequired"}),
        ),
        ("ClearCache", json!({}), json!({"status": "Accepted"})),
        (
            "ClearChargingProfile",
            json!({"id": 3, "connectorId": 1, "chargingProfilePurpose": "TxProfile", "stackLevel": 0}),
            json!({"status": "Unknown"}),
        ),
        (
            "DataTransfer",
            json!({"vendorId": "com.example", "messageId": "setPrice", "data": "0.35"}),
            json!({"status": "UnknownVendorId"}),
        ),
        (
            "GetCompositeSchedule",
            json!({"connectorId": 1, "duration": 3600, "chargingRateUnit": "W"}),
            json!({
                "status": "Accepted",
                "connectorId": 1,
                "scheduleStart": "2024-05-01T12:00:00.000Z",
                "chargingSchedule": {
                    "duration": 3600,
                    "startSchedule": "2024-05-01T12:00:00.000Z",
                    "chargingRateUnit": "W",
                    "chargingSchedulePeriod": [
                        {"startPeriod": 0, "limit": 11000, "numberPhases": 3},
                        {"startPeriod": 1800, "limit": 7400.5}
                    ],
                    "minChargingRate": 1380
                }
            }),
        ),
        (
            "GetConfiguration",
            json!({"key": ["HeartbeatInterval", "MeterValueSampleInterval"]}),
            json!({
                "configurationKey": [
                    {"key": "HeartbeatInterval", "readonly": false, "value": "300"},
                    {"key": "NumberOfConnectors", "readonly": true, "value": "2"},
                    {"key": "AuthorizationKey", "readonly": false}
                ],
                "unknownKey": ["MeterValueSampleInterval"]
            }),
        ),
        (
            "GetDiagnostics",
            json!({"location": "ftp://user:pw@diag.example.com/upload/", "retries": 3, "retryInterval": 60, "startTime": "2024-04-30T00:00:00.000Z", "stopTime": "2024-05-01T00:00:00.000Z"}),
            json!({"fileName": "diag-2024-05-01.zip"}),
        ),
        ("GetLocalListVersion", json!({}), json!({"listVersion": 5})),
        (
            "RemoteStartTransaction",
            json!({"connectorId": 1, "idTag": "APP_USER", "chargingProfile": charging_profile()}),
            json!({"status": "Accepted"}),
        ),
        ("RemoteStopTransaction", json!({"transactionId": 12345}), json!({"status": "Rejected"})),
        (
            "ReserveNow",
            json!({"connectorId": 0, "expiryDate": "2024-05-01T12:30:00.000Z", "idTag": "APP_USER", "parentIdTag": "FLEET-1", "reservationId": 9}),
            json!({"status": "Occupied"}),
        ),
        ("Reset", json!({"type": "Soft"}), json!({"status": "Accepted"})),
        (
            "SendLocalList",
            json!({
                "listVersion": 6,
                "updateType": "Differential",
                "localAuthorizationList": [
                    {"idTag": "04A2B3C4D5E6F7", "idTagInfo": {"status": "Blocked"}},
                    {"idTag": "OLDCARD"}
                ]
            }),
            json!({"status": "VersionMismatch"}),
        ),
        (
            "SetChargingProfile",
            json!({
                "connectorId": 0,
                "csChargingProfiles": {
                    "chargingProfileId": 1,
                    "stackLevel": 2,
                    "chargingProfilePurpose": "ChargePointMaxProfile",
                    "chargingProfileKind": "Recurring",
                    "recurrencyKind": "Daily",
                    "chargingSchedule": {
                        "startSchedule": "2024-05-01T00:00:00.000Z",
                        "chargingRateUnit": "W",
                        "chargingSchedulePeriod": [
                            {"startPeriod": 0, "limit": 22000},
                            {"startPeriod": 64800, "limit": 11000.5, "numberPhases": 1}
                        ]
                    }
                }
            }),
            json!({"status": "NotSupported"}),
        ),
        (
            "TriggerMessage",
            json!({"requestedMessage": "StatusNotification", "connectorId": 2}),
            json!({"status": "NotImplemented"}),
        ),
        ("UnlockConnector", json!({"connectorId": 1}), json!({"status": "UnlockFailed"})),
        (
            "UpdateFirmware",
            json!({"location": "https://fw.example.com/ng9xx-6.5.0.bin", "retries": 2, "retrieveDate": "2024-05-02T03:00:00.000Z", "retryInterval": 120}),
            json!({}),
        ),
    ]
}

fn actions(examples: &[(&'static str, Value, Value)]) -> BTreeSet<&'static str> {
    examples.iter().map(|(action, _, _)| *action).collect()
}

#[test]
fn examples_cover_every_action_of_both_directions() {
    let cp = actions(&charge_point_examples());
    let cs = actions(&central_system_examples());
    assert_eq!(cp, ChargePointRequest::ACTIONS.iter().copied().collect());
    assert_eq!(cp, CentralSystemResponse::ACTIONS.iter().copied().collect());
    assert_eq!(cs, CentralSystemRequest::ACTIONS.iter().copied().collect());
    assert_eq!(cs, ChargePointResponse::ACTIONS.iter().copied().collect());
    let all: BTreeSet<&str> = cp.union(&cs).copied().collect();
    assert_eq!(all, ALL_ACTIONS.iter().copied().collect());
    // 28 actions, 56 payload types (DataTransfer counted once per direction pair).
    assert_eq!(cp.len() + cs.len(), 29);
}

#[test]
fn every_charge_point_message_round_trips() {
    for (action, request, response) in charge_point_examples() {
        let parsed = ChargePointRequest::parse(action, &request);
        let parsed = parsed.unwrap_or_else(|e| panic!("{action} request: {e}"));
        assert_eq!(parsed.action(), action);
        assert_eq!(parsed.payload(), request, "{action} request");

        // Through a frame and back.
        let text = parsed.to_call("msg-1").to_json();
        let Ok(Frame::Call(call)) = parse_frame(&text) else {
            panic!("{action}: frame did not re-parse: {text}");
        };
        assert_eq!(ChargePointRequest::parse(&call.action, &call.payload).as_ref(), Ok(&parsed));

        let parsed = CentralSystemResponse::parse(action, &response);
        let parsed = parsed.unwrap_or_else(|e| panic!("{action} response: {e}"));
        assert_eq!(parsed.payload(), response, "{action} response");
    }
}

#[test]
fn every_central_system_message_round_trips() {
    for (action, request, response) in central_system_examples() {
        let parsed = CentralSystemRequest::from_action(action, &request);
        let parsed = parsed.unwrap_or_else(|e| panic!("{action} request: {e}"));
        assert_eq!(parsed.action(), action);
        assert_eq!(parsed.payload(), request, "{action} request");

        let text = parsed.to_call("msg-2").to_json();
        let Ok(Frame::Call(call)) = parse_frame(&text) else {
            panic!("{action}: frame did not re-parse: {text}");
        };
        assert_eq!(call.action, action);
        assert_eq!(call.payload, request);

        let typed = parsed.parse_response(&response);
        let typed = typed.unwrap_or_else(|e| panic!("{action} response: {e}"));
        assert_eq!(typed.action(), action);
        assert_eq!(typed.payload(), response, "{action} response");
        assert_eq!(parse_response(action, &response), Ok(typed));
    }
}

#[test]
fn serde_gives_the_same_json_as_the_wire_layer() {
    for (action, request, _) in charge_point_examples() {
        let parsed = ChargePointRequest::parse(action, &request);
        let Ok(ChargePointRequest::StopTransaction(stop)) = parsed else {
            continue;
        };
        let via_serde = serde_json::to_value(&stop).ok();
        assert_eq!(via_serde.as_ref(), Some(&request));
        let back: Option<messages::StopTransactionRequest> = serde_json::from_value(request).ok();
        assert_eq!(back, Some(stop));
    }
    // Deserialize validates too.
    let bad: Result<messages::AuthorizeRequest, _> = serde_json::from_value(json!({"idTag": "x".repeat(21)}));
    assert!(bad.is_err());
}

#[test]
fn typed_fields_hold_the_values() {
    let examples = charge_point_examples();
    let boot = examples.iter().find(|e| e.0 == "BootNotification").map(|e| &e.1);
    let Some(Ok(ChargePointRequest::BootNotification(boot))) =
        boot.map(|p| ChargePointRequest::parse("BootNotification", p))
    else {
        panic!("BootNotification example did not parse");
    };
    assert_eq!(boot.charge_point_vendor, "Alfen BV");
    assert_eq!(boot.charge_point_model.as_str(), "NG920-61023");
    assert_eq!(boot.firmware_version.as_deref(), Some("6.4.0-4013"));

    let profile = types::ChargingProfile::from_payload(&charging_profile());
    let Ok(profile) = profile else {
        panic!("profile did not parse: {profile:?}");
    };
    assert_eq!(profile.charging_profile_purpose, ChargingProfilePurposeType::TxProfile);
    let limits: Vec<Decimal> = profile.charging_schedule.charging_schedule_period.iter().map(|p| p.limit).collect();
    assert_eq!(limits, vec![Decimal::new(16, 0), Decimal::new(105, 1)]);
    assert_eq!(profile.charging_schedule.min_charging_rate, Some(Decimal::new(65, 1)));
}

fn cp_error(action: &str, payload: Value) -> CallError {
    match ChargePointRequest::parse(action, &payload) {
        Ok(parsed) => panic!("expected {action} {payload} to fail, got {parsed:?}"),
        Err(e) => e,
    }
}

fn assert_error(error: CallError, code: ErrorCode, description: &str) {
    assert_eq!((error.code, error.description.as_str()), (code, description));
}

#[test]
fn missing_required_field_is_an_occurrence_violation() {
    assert_error(
        cp_error("BootNotification", json!({"chargePointVendor": "VendorX"})),
        ErrorCode::OccurenceConstraintViolation,
        "chargePointModel: required field is missing",
    );
    assert_error(
        cp_error(
            "MeterValues",
            json!({"connectorId": 1, "meterValue": [{"timestamp": "2024-05-01T12:00:00Z", "sampledValue": [{"unit": "Wh"}]}]}),
        ),
        ErrorCode::OccurenceConstraintViolation,
        "meterValue[0].sampledValue[0].value: required field is missing",
    );
    let e = CentralSystemResponse::parse("StartTransaction", &json!({"idTagInfo": {}, "transactionId": 1}));
    assert_eq!(
        e.err().map(|e| (e.code, e.description)),
        Some((ErrorCode::OccurenceConstraintViolation, "idTagInfo.status: required field is missing".to_owned()))
    );
    // A null payload means "no payload": fine for Heartbeat, missing fields for others.
    assert_eq!(
        ChargePointRequest::parse("Heartbeat", &Value::Null),
        Ok(ChargePointRequest::Heartbeat(messages::HeartbeatRequest {}))
    );
    assert_eq!(cp_error("Authorize", Value::Null).code, ErrorCode::OccurenceConstraintViolation);
}

#[test]
fn wrong_json_type_is_a_type_violation() {
    let base = json!({"connectorId": 1, "idTag": "A", "meterStart": 0, "timestamp": "2024-05-01T12:00:00Z"});
    for (field, bad, expected) in [
        ("connectorId", json!("1"), "connectorId: expected integer, got string"),
        ("meterStart", json!(12.5), "meterStart: expected integer, got number"),
        ("idTag", json!(123), "idTag: expected string, got integer"),
        ("timestamp", json!(1714564800), "timestamp: expected string, got integer"),
        ("reservationId", json!(true), "reservationId: expected integer, got boolean"),
    ] {
        let mut payload = base.clone();
        payload[field] = bad;
        assert_error(cp_error("StartTransaction", payload), ErrorCode::TypeConstraintViolation, expected);
    }
    assert_error(
        cp_error("MeterValues", json!({"connectorId": 1, "meterValue": {}})),
        ErrorCode::TypeConstraintViolation,
        "meterValue: expected array, got object",
    );
    let e = CentralSystemResponse::parse("Authorize", &json!({"idTagInfo": "Accepted"}));
    assert_eq!(e.err().map(|e| e.code), Some(ErrorCode::TypeConstraintViolation));
    let e = CentralSystemRequest::from_action(
        "SetChargingProfile",
        &json!({"connectorId": 1, "csChargingProfiles": {"chargingProfileId": 1, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile", "chargingProfileKind": "Relative", "chargingSchedule": {"chargingRateUnit": "A", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": "16"}]}}}),
    );
    assert_eq!(
        e.err().map(|e| (e.code, e.description)),
        Some((
            ErrorCode::TypeConstraintViolation,
            "csChargingProfiles.chargingSchedule.chargingSchedulePeriod[0].limit: expected number, got string"
                .to_owned()
        ))
    );
}

#[test]
fn invalid_values_are_property_violations() {
    assert_error(
        cp_error("BootNotification", json!({"chargePointVendor": "V".repeat(21), "chargePointModel": "M"})),
        ErrorCode::PropertyConstraintViolation,
        "chargePointVendor: exceeds 20 characters",
    );
    // Exactly at the limit is fine.
    assert!(
        ChargePointRequest::parse(
            "BootNotification",
            &json!({"chargePointVendor": "V".repeat(20), "chargePointModel": "M", "firmwareVersion": "f".repeat(50)})
        )
        .is_ok()
    );
    assert_error(
        cp_error("StatusNotification", json!({"connectorId": 1, "errorCode": "NoError", "status": "Broken"})),
        ErrorCode::PropertyConstraintViolation,
        "status: 'Broken' is not one of Available, Preparing, Charging, SuspendedEVSE, SuspendedEV, Finishing, Reserved, Unavailable, Faulted",
    );
    assert_error(
        cp_error(
            "StartTransaction",
            json!({"connectorId": 1, "idTag": "A", "meterStart": 0, "timestamp": "yesterday"}),
        ),
        ErrorCode::PropertyConstraintViolation,
        "timestamp: 'yesterday' is not an RFC 3339 date-time",
    );
    assert_error(
        cp_error("StatusNotification", json!({"connectorId": -1, "errorCode": "NoError", "status": "Available"})),
        ErrorCode::PropertyConstraintViolation,
        "connectorId: -1 is out of range (must be >= 0)",
    );
    assert_error(
        cp_error(
            "StartTransaction",
            json!({"connectorId": 0, "idTag": "A", "meterStart": 0, "timestamp": "2024-05-01T12:00:00Z"}),
        ),
        ErrorCode::PropertyConstraintViolation,
        "connectorId: 0 must be > 0",
    );
    let e = cp_error(
        "MeterValues",
        json!({"connectorId": 1, "meterValue": [{"timestamp": "2024-05-01T12:00:00Z", "sampledValue": [{"value": "1", "unit": "MWh"}]}]}),
    );
    assert_eq!(e.code, ErrorCode::PropertyConstraintViolation);
    assert!(e.description.starts_with("meterValue[0].sampledValue[0].unit: 'MWh' is not one of"));

    let e = CentralSystemRequest::from_action("GetDiagnostics", &json!({"location": "not a uri"}));
    assert_eq!(e.err().map(|e| e.code), Some(ErrorCode::PropertyConstraintViolation));
    let e = CentralSystemRequest::from_action(
        "RemoteStartTransaction",
        &json!({"idTag": "A", "chargingProfile": {"chargingProfileId": 1, "stackLevel": -1, "chargingProfilePurpose": "TxProfile", "chargingProfileKind": "Relative", "chargingSchedule": {"chargingRateUnit": "A", "chargingSchedulePeriod": []}}}),
    );
    assert_eq!(
        e.err().map(|e| (e.code, e.description)),
        Some((
            ErrorCode::PropertyConstraintViolation,
            "chargingProfile.stackLevel: -1 is out of range (must be >= 0)".to_owned()
        ))
    );
    let e = CentralSystemRequest::from_action(
        "SetChargingProfile",
        &json!({"connectorId": 1, "csChargingProfiles": {"chargingProfileId": 1, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile", "chargingProfileKind": "Relative", "chargingSchedule": {"chargingRateUnit": "A", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.05}]}}}),
    );
    assert_eq!(e.err().map(|e| e.code), Some(ErrorCode::PropertyConstraintViolation));
    let e = parse_response("Reset", &json!({"status": "Maybe"}));
    assert_eq!(e.err().map(|e| e.code), Some(ErrorCode::PropertyConstraintViolation));
    let e = parse_response("Reset", &json!({}));
    assert_eq!(e.err().map(|e| e.code), Some(ErrorCode::OccurenceConstraintViolation));
}

#[test]
fn payload_that_is_not_an_object_is_a_formation_violation() {
    for payload in [json!([]), json!("x"), json!(1), json!(true)] {
        assert_eq!(cp_error("Heartbeat", payload.clone()).code, ErrorCode::FormationViolation);
        let e = CentralSystemRequest::from_action("ClearCache", &payload);
        assert_eq!(e.err().map(|e| e.code), Some(ErrorCode::FormationViolation));
    }
    assert_error(
        cp_error("Authorize", json!(["idTag"])),
        ErrorCode::FormationViolation,
        "payload: expected a JSON object, got array",
    );
}

#[test]
fn unknown_and_wrong_direction_actions() {
    assert_eq!(cp_error("FooBar", json!({})).code, ErrorCode::NotImplemented);
    // Action names are case-sensitive.
    assert_eq!(cp_error("heartbeat", json!({})).code, ErrorCode::NotImplemented);
    // Known 1.6 actions that only the central system sends: recognised, not supported here.
    assert_eq!(cp_error("Reset", json!({"type": "Hard"})).code, ErrorCode::NotSupported);
    assert_eq!(cp_error("RemoteStartTransaction", json!({})).code, ErrorCode::NotSupported);
    let e = CentralSystemRequest::from_action("BootNotification", &json!({}));
    assert_eq!(e.err().map(|e| e.code), Some(ErrorCode::NotSupported));
    let e = CentralSystemRequest::from_action("GetLog", &json!({}));
    assert_eq!(e.err().map(|e| e.code), Some(ErrorCode::NotImplemented));
    let e = parse_response("Heartbeat", &json!({}));
    assert_eq!(e.err().map(|e| e.code), Some(ErrorCode::NotSupported));
    let long = "A".repeat(10_000);
    assert!(cp_error(&long, json!({})).description.len() < 100);
}

#[test]
fn extra_fields_are_tolerated_and_dropped() {
    let payload = json!({
        "connectorId": 1,
        "vendorSpecific": {"x": [1, 2]},
        "meterValue": [{
            "timestamp": "2024-05-01T12:00:00.000Z",
            "extra": true,
            "sampledValue": [{"value": "10", "signature": "abc"}]
        }]
    });
    let parsed = ChargePointRequest::parse("MeterValues", &payload);
    let Ok(parsed) = parsed else {
        panic!("extras rejected: {parsed:?}");
    };
    assert_eq!(
        parsed.payload(),
        json!({"connectorId": 1, "meterValue": [{"timestamp": "2024-05-01T12:00:00.000Z", "sampledValue": [{"value": "10"}]}]})
    );
    // Explicit nulls for optional fields read as absent.
    let parsed = ChargePointRequest::parse(
        "StopTransaction",
        &json!({"meterStop": 10, "timestamp": "2024-05-01T12:00:00Z", "transactionId": 1, "idTag": null, "reason": null}),
    );
    assert!(parsed.is_ok(), "{parsed:?}");
}

#[test]
fn date_times_with_offsets_are_normalised_to_utc() {
    let parsed = ChargePointRequest::parse(
        "StartTransaction",
        &json!({"connectorId": 2, "idTag": "A", "meterStart": 5, "timestamp": "2024-05-01T14:30:00.5+02:00"}),
    );
    let Ok(ChargePointRequest::StartTransaction(start)) = parsed else {
        panic!("did not parse: {parsed:?}");
    };
    let expected =
        Utc.with_ymd_and_hms(2024, 5, 1, 12, 30, 0).single().map(|t| t + chrono::Duration::milliseconds(500));
    assert_eq!(Some(start.timestamp), expected);
    assert_eq!(ChargePointRequest::StartTransaction(start).payload()["timestamp"], json!("2024-05-01T12:30:00.500Z"));
    // Negative offset, no fractional seconds, lowercase z elsewhere.
    let parsed = CentralSystemResponse::parse("Heartbeat", &json!({"currentTime": "2024-04-30T23:00:00-05:00"}));
    assert_eq!(parsed.map(|p| p.payload()), Ok(json!({"currentTime": "2024-05-01T04:00:00.000Z"})));
}

#[test]
fn decimals_are_written_as_json_numbers() {
    let period = types::ChargingSchedulePeriod { start_period: 0, limit: Decimal::new(320, 1), number_phases: None };
    assert_eq!(period.to_wire(), json!({"startPeriod": 0, "limit": 32}));
    let period = types::ChargingSchedulePeriod { limit: Decimal::new(75, 1), ..period };
    assert_eq!(period.to_wire(), json!({"startPeriod": 0, "limit": 7.5}));
}

#[test]
fn end_to_end_bad_call_gets_a_call_error_frame() {
    let text =
        r#"[2,"m-77","BootNotification",{"chargePointVendor":"AVeryLongVendorNameIndeed","chargePointModel":"X"}]"#;
    let Ok(Frame::Call(call)) = parse_frame(text) else {
        panic!("frame did not parse");
    };
    let error = ChargePointRequest::parse(&call.action, &call.payload).err();
    let reply = error.map(|e| call_error_frame(&call.message_id, &e));
    assert_eq!(
        reply.as_deref(),
        Some(r#"[4,"m-77","PropertyConstraintViolation","chargePointVendor: exceeds 20 characters",{}]"#)
    );
}

#[test]
fn building_outgoing_commands() {
    let command = CentralSystemRequest::from(messages::RemoteStartTransactionRequest {
        connector_id: Some(1),
        id_tag: IdToken::new("APP_USER").unwrap_or_default(),
        charging_profile: None,
    });
    assert_eq!(
        command.to_call("c1").to_json(),
        r#"[2,"c1","RemoteStartTransaction",{"connectorId":1,"idTag":"APP_USER"}]"#
    );
    let reply = CentralSystemResponse::from(messages::BootNotificationResponse {
        current_time: Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).single().unwrap_or_default(),
        interval: 300,
        status: RegistrationStatus::Accepted,
    });
    assert_eq!(
        call_result_frame("b1", &reply.payload()),
        r#"[3,"b1",{"currentTime":"2024-05-01T12:00:00.000Z","interval":300,"status":"Accepted"}]"#
    );
}

/// JSON pointers to every node below the root of `value`.
fn pointers(value: &Value, prefix: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let pointer = format!("{prefix}/{key}");
                out.push(pointer.clone());
                pointers(child, pointer, out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                let pointer = format!("{prefix}/{i}");
                out.push(pointer.clone());
                pointers(child, pointer, out);
            }
        }
        _ => {}
    }
}

/// Replaces every node of every example with values of every JSON type (and edge values):
/// parsing never panics, and a failure is always one of the three field-level codes.
#[test]
fn mutated_payloads_never_panic_and_fail_with_field_codes() {
    let replacements = [
        Value::Null,
        json!(true),
        json!(0),
        json!(-1),
        json!(1.5),
        json!(1e300),
        json!(u64::MAX),
        json!(""),
        json!("x".repeat(501)),
        json!("2024-13-45T99:00:00Z"),
        json!([]),
        json!([{}]),
        json!({}),
    ];
    let field_codes = [
        ErrorCode::OccurenceConstraintViolation,
        ErrorCode::TypeConstraintViolation,
        ErrorCode::PropertyConstraintViolation,
    ];
    let mut checked = 0;
    let mut failures = 0;
    let cases = charge_point_examples()
        .into_iter()
        .flat_map(|(a, req, res)| [(a, true, true, req), (a, true, false, res)])
        .chain(
            central_system_examples()
                .into_iter()
                .flat_map(|(a, req, res)| [(a, false, true, req), (a, false, false, res)]),
        );
    for (action, from_charger_side, is_request, payload) in cases {
        let parse = |p: &Value| -> Result<(), CallError> {
            match (from_charger_side, is_request) {
                (true, true) => ChargePointRequest::parse(action, p).map(drop),
                (true, false) => CentralSystemResponse::parse(action, p).map(drop),
                (false, true) => CentralSystemRequest::parse(action, p).map(drop),
                (false, false) => ChargePointResponse::parse(action, p).map(drop),
            }
        };
        let mut all = Vec::new();
        pointers(&payload, String::new(), &mut all);
        for pointer in &all {
            for replacement in &replacements {
                let mut mutated = payload.clone();
                if let Some(node) = mutated.pointer_mut(pointer) {
                    *node = replacement.clone();
                }
                checked += 1;
                if let Err(e) = parse(&mutated) {
                    failures += 1;
                    assert!(field_codes.contains(&e.code), "{action} {pointer}: {e}");
                    assert!(!e.description.is_empty());
                }
            }
            // Removing the node: fine if optional, an occurrence violation if required.
            let (parent, key) = pointer.rsplit_once('/').unwrap_or_default();
            let mut removed = payload.clone();
            if let Some(Value::Object(map)) = removed.pointer_mut(parent) {
                map.remove(key);
                if let Err(e) = parse(&removed) {
                    assert_eq!(e.code, ErrorCode::OccurenceConstraintViolation, "{action} {pointer}");
                }
            }
        }
    }
    assert!(checked > 2_500, "only {checked} mutations");
    assert!(failures > checked / 2, "only {failures} of {checked} mutations failed");
}
