//! Firmware Management profile payloads: GetDiagnostics, DiagnosticsStatusNotification,
//! FirmwareStatusNotification and UpdateFirmware (requests and responses).

use chrono::{DateTime, Utc};

use super::super::enums::{DiagnosticsStatus, FirmwareStatus};
use super::super::wire::CiString255;
use super::super::wire::support::*;

ocpp_struct! {
    /// GetDiagnostics.req (central system → charge point): upload a diagnostics file.
    pub struct GetDiagnosticsRequest {
        /// Directory URI to upload the file to.
        "location" location: String [uri],
        /// How many times to try the upload.
        "retries" retries: Option<i32>,
        /// Seconds between attempts.
        "retryInterval" retry_interval: Option<i32>,
        /// Oldest logging information to include.
        "startTime" start_time: Option<DateTime<Utc>>,
        /// Latest logging information to include.
        "stopTime" stop_time: Option<DateTime<Utc>>,
    }
}

ocpp_struct! {
    /// GetDiagnostics.conf.
    pub struct GetDiagnosticsResponse {
        /// Name of the file that will be uploaded; absent when there is nothing to upload.
        "fileName" file_name: Option<CiString255>,
    }
}

ocpp_struct! {
    /// DiagnosticsStatusNotification.req: progress of a diagnostics upload.
    pub struct DiagnosticsStatusNotificationRequest {
        /// Upload status.
        "status" status: DiagnosticsStatus,
    }
}

ocpp_struct! {
    /// DiagnosticsStatusNotification.conf; no fields.
    pub struct DiagnosticsStatusNotificationResponse {}
}

ocpp_struct! {
    /// FirmwareStatusNotification.req: progress of a firmware update.
    pub struct FirmwareStatusNotificationRequest {
        /// Firmware update status.
        "status" status: FirmwareStatus,
    }
}

ocpp_struct! {
    /// FirmwareStatusNotification.conf; no fields.
    pub struct FirmwareStatusNotificationResponse {}
}

ocpp_struct! {
    /// UpdateFirmware.req (central system → charge point).
    pub struct UpdateFirmwareRequest {
        /// URI to download the firmware from.
        "location" location: String [uri],
        /// How many times to try the download.
        "retries" retries: Option<i32>,
        /// Earliest time to download the firmware.
        "retrieveDate" retrieve_date: DateTime<Utc>,
        /// Seconds between attempts.
        "retryInterval" retry_interval: Option<i32>,
    }
}

ocpp_struct! {
    /// UpdateFirmware.conf; no fields.
    pub struct UpdateFirmwareResponse {}
}
