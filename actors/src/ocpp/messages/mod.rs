//! All OCPP 1.6 edition 2 payloads (28 actions, a request and a response each), grouped by
//! feature profile, and the four dispatch enums that map an action name to its payload type:
//!
//! | enum | sent by | covers |
//! | --- | --- | --- |
//! | [`ChargePointRequest`] | charger | the 10 CALLs a charger sends us |
//! | [`CentralSystemResponse`] | us | our CALLRESULTs to those |
//! | [`CentralSystemRequest`] | us | the 19 commands we send a charger |
//! | [`ChargePointResponse`] | charger | the charger's CALLRESULTs to those |
//!
//! Every `parse` validates against the official schema first (see [`wire`](super::wire) for how
//! failures map to error codes) and never panics.

pub mod core;
pub mod firmware;
pub mod local_auth;
pub mod remote_trigger;
pub mod reservation;
pub mod smart_charging;

pub use self::core::*;
pub use self::firmware::*;
pub use self::local_auth::*;
pub use self::remote_trigger::*;
pub use self::reservation::*;
pub use self::smart_charging::*;

use serde_json::Value;

use super::frame::Call;
use super::wire::support::*;

/// Every OCPP 1.6 action name, both directions (DataTransfer goes both ways).
pub const ALL_ACTIONS: [&str; 28] = [
    "Authorize",
    "BootNotification",
    "CancelReservation",
    "ChangeAvailability",
    "ChangeConfiguration",
    "ClearCache",
    "ClearChargingProfile",
    "DataTransfer",
    "DiagnosticsStatusNotification",
    "FirmwareStatusNotification",
    "GetCompositeSchedule",
    "GetConfiguration",
    "GetDiagnostics",
    "GetLocalListVersion",
    "Heartbeat",
    "MeterValues",
    "RemoteStartTransaction",
    "RemoteStopTransaction",
    "ReserveNow",
    "Reset",
    "SendLocalList",
    "SetChargingProfile",
    "StartTransaction",
    "StatusNotification",
    "StopTransaction",
    "TriggerMessage",
    "UnlockConnector",
    "UpdateFirmware",
];

/// Whether `action` is an OCPP 1.6 action name (case-sensitive, as the spec requires).
pub fn is_ocpp16_action(action: &str) -> bool {
    ALL_ACTIONS.contains(&action)
}

/// The error for an action a dispatch enum does not cover: `NotSupported` for a known OCPP 1.6
/// action ("recognized but not supported by the receiver" — here, not accepted in this
/// direction, e.g. a `Reset` CALL arriving from a charger), `NotImplemented` for anything else
/// ("not known by receiver").
fn unknown_action(action: &str, direction: &str) -> CallError {
    let shown = super::wire::quote(action);
    if is_ocpp16_action(action) {
        CallError::not_supported(format!("action {shown} is not accepted as a {direction}"))
    } else {
        CallError::not_implemented(format!("unknown action {shown}"))
    }
}

ocpp_dispatch! {
    /// A CALL a charger sends to the central system, validated and typed.
    pub enum ChargePointRequest ("request from a charge point") {
        Authorize(AuthorizeRequest),
        BootNotification(BootNotificationRequest),
        DataTransfer(DataTransferRequest),
        DiagnosticsStatusNotification(DiagnosticsStatusNotificationRequest),
        FirmwareStatusNotification(FirmwareStatusNotificationRequest),
        Heartbeat(HeartbeatRequest),
        MeterValues(MeterValuesRequest),
        StartTransaction(StartTransactionRequest),
        StatusNotification(StatusNotificationRequest),
        StopTransaction(StopTransactionRequest),
    }
}

ocpp_dispatch! {
    /// The central system's CALLRESULT payload for a [`ChargePointRequest`].
    pub enum CentralSystemResponse ("response from the central system") {
        Authorize(AuthorizeResponse),
        BootNotification(BootNotificationResponse),
        DataTransfer(DataTransferResponse),
        DiagnosticsStatusNotification(DiagnosticsStatusNotificationResponse),
        FirmwareStatusNotification(FirmwareStatusNotificationResponse),
        Heartbeat(HeartbeatResponse),
        MeterValues(MeterValuesResponse),
        StartTransaction(StartTransactionResponse),
        StatusNotification(StatusNotificationResponse),
        StopTransaction(StopTransactionResponse),
    }
}

ocpp_dispatch! {
    /// A command (CALL) the central system sends to a charger.
    pub enum CentralSystemRequest ("request from the central system") {
        CancelReservation(CancelReservationRequest),
        ChangeAvailability(ChangeAvailabilityRequest),
        ChangeConfiguration(ChangeConfigurationRequest),
        ClearCache(ClearCacheRequest),
        ClearChargingProfile(ClearChargingProfileRequest),
        DataTransfer(DataTransferRequest),
        GetCompositeSchedule(GetCompositeScheduleRequest),
        GetConfiguration(GetConfigurationRequest),
        GetDiagnostics(GetDiagnosticsRequest),
        GetLocalListVersion(GetLocalListVersionRequest),
        RemoteStartTransaction(RemoteStartTransactionRequest),
        RemoteStopTransaction(RemoteStopTransactionRequest),
        ReserveNow(ReserveNowRequest),
        Reset(ResetRequest),
        SendLocalList(SendLocalListRequest),
        SetChargingProfile(SetChargingProfileRequest),
        TriggerMessage(TriggerMessageRequest),
        UnlockConnector(UnlockConnectorRequest),
        UpdateFirmware(UpdateFirmwareRequest),
    }
}

ocpp_dispatch! {
    /// A charger's CALLRESULT payload for a [`CentralSystemRequest`].
    pub enum ChargePointResponse ("response from a charge point") {
        CancelReservation(CancelReservationResponse),
        ChangeAvailability(ChangeAvailabilityResponse),
        ChangeConfiguration(ChangeConfigurationResponse),
        ClearCache(ClearCacheResponse),
        ClearChargingProfile(ClearChargingProfileResponse),
        DataTransfer(DataTransferResponse),
        GetCompositeSchedule(GetCompositeScheduleResponse),
        GetConfiguration(GetConfigurationResponse),
        GetDiagnostics(GetDiagnosticsResponse),
        GetLocalListVersion(GetLocalListVersionResponse),
        RemoteStartTransaction(RemoteStartTransactionResponse),
        RemoteStopTransaction(RemoteStopTransactionResponse),
        ReserveNow(ReserveNowResponse),
        Reset(ResetResponse),
        SendLocalList(SendLocalListResponse),
        SetChargingProfile(SetChargingProfileResponse),
        TriggerMessage(TriggerMessageResponse),
        UnlockConnector(UnlockConnectorResponse),
        UpdateFirmware(UpdateFirmwareResponse),
    }
}

impl CentralSystemRequest {
    /// Validates a command given as an action name and a JSON payload (e.g. from an owner-facing
    /// HTTP endpoint) exactly as a charger would: same schema checks, same error codes. A
    /// charger-to-central-system action (e.g. `"BootNotification"`) is `NotSupported`; an unknown
    /// one is `NotImplemented`.
    pub fn from_action(action: &str, payload: &Value) -> Result<Self, CallError> {
        Self::parse(action, payload)
    }

    /// The CALL frame for this command with the given message id (at most 36 characters).
    pub fn to_call(&self, message_id: impl Into<String>) -> Call {
        Call::new(message_id, self.action(), self.payload())
    }

    /// Validates the charger's CALLRESULT payload for this command.
    pub fn parse_response(&self, payload: &Value) -> Result<ChargePointResponse, CallError> {
        ChargePointResponse::parse(self.action(), payload)
    }
}

impl ChargePointRequest {
    /// The CALL frame for this request (for charger simulators and tests).
    pub fn to_call(&self, message_id: impl Into<String>) -> Call {
        Call::new(message_id, self.action(), self.payload())
    }
}

/// Validates a charger's CALLRESULT payload for the command `action` we sent it.
pub fn parse_response(action: &str, payload: &Value) -> Result<ChargePointResponse, CallError> {
    ChargePointResponse::parse(action, payload)
}
