//! Core profile payloads: Authorize, BootNotification, ChangeAvailability, ChangeConfiguration,
//! ClearCache, DataTransfer, GetConfiguration, Heartbeat, MeterValues, RemoteStartTransaction,
//! RemoteStopTransaction, Reset, StartTransaction, StatusNotification, StopTransaction and
//! UnlockConnector (requests and responses).

use chrono::{DateTime, Utc};

use super::super::enums::{
    AvailabilityStatus, AvailabilityType, ChargePointErrorCode, ChargePointStatus, ClearCacheStatus,
    ConfigurationStatus, DataTransferStatus, Reason, RegistrationStatus, RemoteStartStopStatus, ResetStatus, ResetType,
    UnlockStatus,
};
use super::super::types::{ChargingProfile, IdTagInfo, KeyValue, MeterValue};
use super::super::wire::support::*;
use super::super::wire::{CiString20, CiString25, CiString50, CiString255, CiString500, IdToken};

ocpp_struct! {
    /// Authorize.req: may this identifier charge? (charge point → central system)
    pub struct AuthorizeRequest {
        /// The identifier to authorize.
        "idTag" id_tag: IdToken,
    }
}

ocpp_struct! {
    /// Authorize.conf.
    pub struct AuthorizeResponse {
        /// Authorization status, expiry and parent id.
        "idTagInfo" id_tag_info: IdTagInfo,
    }
}

ocpp_struct! {
    /// BootNotification.req: sent after every (re)boot, before anything else.
    pub struct BootNotificationRequest {
        /// Serial number of the charge box (deprecated).
        "chargeBoxSerialNumber" charge_box_serial_number: Option<CiString25>,
        /// Model of the charge point.
        "chargePointModel" charge_point_model: CiString20,
        /// Serial number of the charge point.
        "chargePointSerialNumber" charge_point_serial_number: Option<CiString25>,
        /// Vendor of the charge point.
        "chargePointVendor" charge_point_vendor: CiString20,
        /// Firmware version.
        "firmwareVersion" firmware_version: Option<CiString50>,
        /// ICCID of the modem's SIM card.
        "iccid" iccid: Option<CiString20>,
        /// IMSI of the modem's SIM card.
        "imsi" imsi: Option<CiString20>,
        /// Serial number of the main electrical meter.
        "meterSerialNumber" meter_serial_number: Option<CiString25>,
        /// Type of the main electrical meter.
        "meterType" meter_type: Option<CiString25>,
    }
}

ocpp_struct! {
    /// BootNotification.conf.
    pub struct BootNotificationResponse {
        /// The central system's current time.
        "currentTime" current_time: DateTime<Utc>,
        /// Heartbeat interval in seconds when accepted; otherwise the minimum wait before the
        /// next BootNotification.
        "interval" interval: i32,
        /// Registration result.
        "status" status: RegistrationStatus,
    }
}

ocpp_struct! {
    /// ChangeAvailability.req (central system → charge point).
    pub struct ChangeAvailabilityRequest {
        /// Connector (>= 0); 0 means the whole charge point.
        "connectorId" connector_id: u32,
        /// Requested availability.
        "type" kind: AvailabilityType,
    }
}

ocpp_struct! {
    /// ChangeAvailability.conf.
    pub struct ChangeAvailabilityResponse {
        /// Whether the change is accepted.
        "status" status: AvailabilityStatus,
    }
}

ocpp_struct! {
    /// ChangeConfiguration.req (central system → charge point).
    pub struct ChangeConfigurationRequest {
        /// Configuration key.
        "key" key: CiString50,
        /// New value.
        "value" value: CiString500,
    }
}

ocpp_struct! {
    /// ChangeConfiguration.conf.
    pub struct ChangeConfigurationResponse {
        /// Result of the change.
        "status" status: ConfigurationStatus,
    }
}

ocpp_struct! {
    /// ClearCache.req (central system → charge point); no fields.
    pub struct ClearCacheRequest {}
}

ocpp_struct! {
    /// ClearCache.conf.
    pub struct ClearCacheResponse {
        /// Whether the cache was cleared.
        "status" status: ClearCacheStatus,
    }
}

ocpp_struct! {
    /// DataTransfer.req: vendor-specific data, in either direction.
    pub struct DataTransferRequest {
        /// Vendor identifier.
        "vendorId" vendor_id: CiString255,
        /// Vendor-specific message identifier.
        "messageId" message_id: Option<CiString50>,
        /// Data, of undefined length and format (a string per the schema).
        "data" data: Option<String>,
    }
}

ocpp_struct! {
    /// DataTransfer.conf.
    pub struct DataTransferResponse {
        /// Result.
        "status" status: DataTransferStatus,
        /// Data in response.
        "data" data: Option<String>,
    }
}

ocpp_struct! {
    /// GetConfiguration.req (central system → charge point).
    pub struct GetConfigurationRequest {
        /// Keys to report; absent means all.
        "key" key: Option<Vec<CiString50>>,
    }
}

ocpp_struct! {
    /// GetConfiguration.conf.
    pub struct GetConfigurationResponse {
        /// Known keys with their values.
        "configurationKey" configuration_key: Option<Vec<KeyValue>>,
        /// Requested keys that are unknown.
        "unknownKey" unknown_key: Option<Vec<CiString50>>,
    }
}

ocpp_struct! {
    /// Heartbeat.req; no fields.
    pub struct HeartbeatRequest {}
}

ocpp_struct! {
    /// Heartbeat.conf.
    pub struct HeartbeatResponse {
        /// The central system's current time.
        "currentTime" current_time: DateTime<Utc>,
    }
}

ocpp_struct! {
    /// MeterValues.req: sampled meter values, in or outside a transaction.
    pub struct MeterValuesRequest {
        /// Connector (>= 0); 0 is the main meter.
        "connectorId" connector_id: u32,
        /// Transaction these samples belong to.
        "transactionId" transaction_id: Option<i32>,
        /// The samples.
        "meterValue" meter_value: Vec<MeterValue>,
    }
}

ocpp_struct! {
    /// MeterValues.conf; no fields.
    pub struct MeterValuesResponse {}
}

ocpp_struct! {
    /// RemoteStartTransaction.req (central system → charge point).
    pub struct RemoteStartTransactionRequest {
        /// Connector to start on (> 0); absent lets the charge point choose.
        "connectorId" connector_id: Option<u32> [positive],
        /// Identifier to start the transaction for.
        "idTag" id_tag: IdToken,
        /// Profile for this transaction; its purpose must be `TxProfile`.
        "chargingProfile" charging_profile: Option<ChargingProfile>,
    }
}

ocpp_struct! {
    /// RemoteStartTransaction.conf.
    pub struct RemoteStartTransactionResponse {
        /// Whether the charge point will try to start.
        "status" status: RemoteStartStopStatus,
    }
}

ocpp_struct! {
    /// RemoteStopTransaction.req (central system → charge point).
    pub struct RemoteStopTransactionRequest {
        /// Transaction to stop.
        "transactionId" transaction_id: i32,
    }
}

ocpp_struct! {
    /// RemoteStopTransaction.conf.
    pub struct RemoteStopTransactionResponse {
        /// Whether the charge point will stop the transaction.
        "status" status: RemoteStartStopStatus,
    }
}

ocpp_struct! {
    /// Reset.req (central system → charge point).
    pub struct ResetRequest {
        /// Hard or soft.
        "type" kind: ResetType,
    }
}

ocpp_struct! {
    /// Reset.conf.
    pub struct ResetResponse {
        /// Whether the reset will be performed.
        "status" status: ResetStatus,
    }
}

ocpp_struct! {
    /// StartTransaction.req: a transaction has started.
    pub struct StartTransactionRequest {
        /// Connector used (> 0).
        "connectorId" connector_id: u32 [positive],
        /// Identifier the transaction was started for.
        "idTag" id_tag: IdToken,
        /// Meter value in Wh at the start.
        "meterStart" meter_start: i64,
        /// Reservation this transaction ends.
        "reservationId" reservation_id: Option<i32>,
        /// When the transaction started.
        "timestamp" timestamp: DateTime<Utc>,
    }
}

ocpp_struct! {
    /// StartTransaction.conf.
    pub struct StartTransactionResponse {
        /// Authorization status of the idTag.
        "idTagInfo" id_tag_info: IdTagInfo,
        /// Transaction id assigned by the central system.
        "transactionId" transaction_id: i32,
    }
}

ocpp_struct! {
    /// StatusNotification.req: a connector's (or the charge point's) status changed.
    pub struct StatusNotificationRequest {
        /// Connector (>= 0); 0 is the charge point's main controller.
        "connectorId" connector_id: u32,
        /// Error code (`NoError` when fine).
        "errorCode" error_code: ChargePointErrorCode,
        /// Free-form information about the error.
        "info" info: Option<CiString50>,
        /// The new status.
        "status" status: ChargePointStatus,
        /// When the status was reported; absent means time of receipt.
        "timestamp" timestamp: Option<DateTime<Utc>>,
        /// Vendor identifier for `vendorErrorCode`.
        "vendorId" vendor_id: Option<CiString255>,
        /// Vendor-specific error code.
        "vendorErrorCode" vendor_error_code: Option<CiString50>,
    }
}

ocpp_struct! {
    /// StatusNotification.conf; no fields.
    pub struct StatusNotificationResponse {}
}

ocpp_struct! {
    /// StopTransaction.req: a transaction has stopped.
    pub struct StopTransactionRequest {
        /// Identifier that requested the stop, if known.
        "idTag" id_tag: Option<IdToken>,
        /// Meter value in Wh at the end.
        "meterStop" meter_stop: i64,
        /// When the transaction stopped.
        "timestamp" timestamp: DateTime<Utc>,
        /// Transaction id from StartTransaction.conf.
        "transactionId" transaction_id: i32,
        /// Why it stopped; absent means `Local`.
        "reason" reason: Option<Reason>,
        /// Meter values for billing.
        "transactionData" transaction_data: Option<Vec<MeterValue>>,
    }
}

ocpp_struct! {
    /// StopTransaction.conf.
    pub struct StopTransactionResponse {
        /// Authorization status of the idTag, if one was sent.
        "idTagInfo" id_tag_info: Option<IdTagInfo>,
    }
}

ocpp_struct! {
    /// UnlockConnector.req (central system → charge point).
    pub struct UnlockConnectorRequest {
        /// Connector to unlock (> 0).
        "connectorId" connector_id: u32 [positive],
    }
}

ocpp_struct! {
    /// UnlockConnector.conf.
    pub struct UnlockConnectorResponse {
        /// Result.
        "status" status: UnlockStatus,
    }
}
