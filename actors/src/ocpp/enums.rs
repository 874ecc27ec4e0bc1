//! Every enumeration of OCPP 1.6 edition 2, with exactly the values of the official JSON
//! schemas (`urn:OCPP:1.6:2019:12:*`), in schema order.

use super::wire::support::*;

ocpp_enum! {
    /// Status in a response to an Authorize.req (`IdTagInfo.status`).
    pub enum AuthorizationStatus {
        /// Identifier is allowed for charging.
        Accepted = "Accepted",
        /// Identifier has been blocked.
        Blocked = "Blocked",
        /// Identifier has expired.
        Expired = "Expired",
        /// Identifier is unknown.
        Invalid = "Invalid",
        /// Identifier is already involved in another transaction.
        ConcurrentTx = "ConcurrentTx",
    }
}

ocpp_enum! {
    /// Result of registration in response to a BootNotification.req.
    pub enum RegistrationStatus {
        /// Charge point is accepted.
        Accepted = "Accepted",
        /// Central system is not yet ready to accept the charge point.
        Pending = "Pending",
        /// Charge point is not accepted.
        Rejected = "Rejected",
    }
}

ocpp_enum! {
    /// Status in CancelReservation.conf.
    pub enum CancelReservationStatus {
        /// Reservation for the identifier has been cancelled.
        Accepted = "Accepted",
        /// Reservation could not be cancelled (e.g. no reservation with that id).
        Rejected = "Rejected",
    }
}

ocpp_enum! {
    /// Requested availability change in ChangeAvailability.req.
    pub enum AvailabilityType {
        /// Charge point is not available for charging.
        Inoperative = "Inoperative",
        /// Charge point is available for charging.
        Operative = "Operative",
    }
}

ocpp_enum! {
    /// Status in ChangeAvailability.conf.
    pub enum AvailabilityStatus {
        /// Request has been accepted and will be executed.
        Accepted = "Accepted",
        /// Request has not been accepted and will not be executed.
        Rejected = "Rejected",
        /// Accepted, to be executed when the running transaction(s) finish.
        Scheduled = "Scheduled",
    }
}

ocpp_enum! {
    /// Status in ChangeConfiguration.conf.
    pub enum ConfigurationStatus {
        /// Configuration key is supported and the setting has been changed.
        Accepted = "Accepted",
        /// Configuration key is supported, but the setting could not be changed.
        Rejected = "Rejected",
        /// Changed, but only takes effect after a reboot.
        RebootRequired = "RebootRequired",
        /// The configuration key is not supported.
        NotSupported = "NotSupported",
    }
}

ocpp_enum! {
    /// Status in ClearCache.conf.
    pub enum ClearCacheStatus {
        /// Command has been executed.
        Accepted = "Accepted",
        /// Command has not been executed.
        Rejected = "Rejected",
    }
}

ocpp_enum! {
    /// Purpose of a charging profile.
    pub enum ChargingProfilePurposeType {
        /// Overall limit for the whole charge point.
        ChargePointMaxProfile = "ChargePointMaxProfile",
        /// Default profile for new transactions.
        TxDefaultProfile = "TxDefaultProfile",
        /// Profile for one transaction.
        TxProfile = "TxProfile",
    }
}

ocpp_enum! {
    /// Kind of a charging profile.
    pub enum ChargingProfileKindType {
        /// Periods relative to a fixed point in time.
        Absolute = "Absolute",
        /// The schedule restarts periodically.
        Recurring = "Recurring",
        /// Periods relative to the start of the transaction.
        Relative = "Relative",
    }
}

ocpp_enum! {
    /// Recurrence of a `Recurring` charging profile.
    pub enum RecurrencyKindType {
        /// Restarts every 24 hours.
        Daily = "Daily",
        /// Restarts every 7 days.
        Weekly = "Weekly",
    }
}

ocpp_enum! {
    /// Unit of a charging schedule's limits.
    pub enum ChargingRateUnitType {
        /// Amperes (current).
        A = "A",
        /// Watts (power).
        W = "W",
    }
}

ocpp_enum! {
    /// Status in ClearChargingProfile.conf.
    pub enum ClearChargingProfileStatus {
        /// Request has been accepted and will be executed.
        Accepted = "Accepted",
        /// No charging profile(s) matched the request.
        Unknown = "Unknown",
    }
}

ocpp_enum! {
    /// Status in DataTransfer.conf.
    pub enum DataTransferStatus {
        /// Message has been accepted and the contained request is accepted.
        Accepted = "Accepted",
        /// Message has been accepted but the contained request is rejected.
        Rejected = "Rejected",
        /// Message could not be interpreted due to an unknown messageId string.
        UnknownMessageId = "UnknownMessageId",
        /// Message could not be interpreted due to an unknown vendorId string.
        UnknownVendorId = "UnknownVendorId",
    }
}

ocpp_enum! {
    /// Status in DiagnosticsStatusNotification.req.
    pub enum DiagnosticsStatus {
        /// Not busy uploading diagnostics (only in response to a TriggerMessage).
        Idle = "Idle",
        /// Diagnostics information has been uploaded.
        Uploaded = "Uploaded",
        /// Uploading diagnostics failed.
        UploadFailed = "UploadFailed",
        /// File is being uploaded.
        Uploading = "Uploading",
    }
}

ocpp_enum! {
    /// Status in FirmwareStatusNotification.req.
    pub enum FirmwareStatus {
        /// New firmware has been downloaded.
        Downloaded = "Downloaded",
        /// Firmware download failed.
        DownloadFailed = "DownloadFailed",
        /// Firmware is being downloaded.
        Downloading = "Downloading",
        /// Not busy (only in response to a TriggerMessage).
        Idle = "Idle",
        /// Installation of new firmware failed.
        InstallationFailed = "InstallationFailed",
        /// Firmware is being installed.
        Installing = "Installing",
        /// New firmware has been installed.
        Installed = "Installed",
    }
}

ocpp_enum! {
    /// Status in GetCompositeSchedule.conf.
    pub enum GetCompositeScheduleStatus {
        /// Request has been accepted and will be executed.
        Accepted = "Accepted",
        /// Request has not been accepted and will not be executed.
        Rejected = "Rejected",
    }
}

ocpp_enum! {
    /// Why a sampled value was taken. Default when absent: `Sample.Periodic`.
    pub enum ReadingContext {
        /// At the start of an interruption.
        InterruptionBegin = "Interruption.Begin",
        /// At the end of an interruption.
        InterruptionEnd = "Interruption.End",
        /// At a clock-aligned interval.
        SampleClock = "Sample.Clock",
        /// A periodic sample, relative to the start of a transaction.
        SamplePeriodic = "Sample.Periodic",
        /// At the start of a transaction.
        TransactionBegin = "Transaction.Begin",
        /// At the end of a transaction.
        TransactionEnd = "Transaction.End",
        /// In response to a TriggerMessage.req.
        Trigger = "Trigger",
        /// Any other reason.
        Other = "Other",
    }
}

ocpp_enum! {
    /// Format of a sampled value. Default when absent: `Raw`.
    pub enum ValueFormat {
        /// A decimal number.
        Raw = "Raw",
        /// A binary data block encoded as hex; cannot be read as a number.
        SignedData = "SignedData",
    }
}

ocpp_enum! {
    /// What a sampled value measures. Default when absent: `Energy.Active.Import.Register`.
    pub enum Measurand {
        /// Active energy exported (numerically increasing register), Wh or kWh.
        EnergyActiveExportRegister = "Energy.Active.Export.Register",
        /// Active energy imported (numerically increasing register), Wh or kWh.
        EnergyActiveImportRegister = "Energy.Active.Import.Register",
        /// Reactive energy exported (register), varh or kvarh.
        EnergyReactiveExportRegister = "Energy.Reactive.Export.Register",
        /// Reactive energy imported (register), varh or kvarh.
        EnergyReactiveImportRegister = "Energy.Reactive.Import.Register",
        /// Active energy exported during an interval.
        EnergyActiveExportInterval = "Energy.Active.Export.Interval",
        /// Active energy imported during an interval.
        EnergyActiveImportInterval = "Energy.Active.Import.Interval",
        /// Reactive energy exported during an interval.
        EnergyReactiveExportInterval = "Energy.Reactive.Export.Interval",
        /// Reactive energy imported during an interval.
        EnergyReactiveImportInterval = "Energy.Reactive.Import.Interval",
        /// Instantaneous active power exported by the EV, W or kW.
        PowerActiveExport = "Power.Active.Export",
        /// Instantaneous active power imported by the EV, W or kW.
        PowerActiveImport = "Power.Active.Import",
        /// Maximum power offered to the EV.
        PowerOffered = "Power.Offered",
        /// Instantaneous reactive power exported.
        PowerReactiveExport = "Power.Reactive.Export",
        /// Instantaneous reactive power imported.
        PowerReactiveImport = "Power.Reactive.Import",
        /// Instantaneous power factor.
        PowerFactor = "Power.Factor",
        /// Current into the EV, A.
        CurrentImport = "Current.Import",
        /// Current from the EV, A.
        CurrentExport = "Current.Export",
        /// Maximum current offered to the EV.
        CurrentOffered = "Current.Offered",
        /// Instantaneous AC RMS supply voltage, V.
        Voltage = "Voltage",
        /// Instantaneous reading of powerline frequency.
        Frequency = "Frequency",
        /// Temperature reading inside the charge point.
        Temperature = "Temperature",
        /// State of charge of the EV, percent.
        SoC = "SoC",
        /// Fan speed, RPM.
        Rpm = "RPM",
    }
}

ocpp_enum! {
    /// Phase (or phase pair) a sampled value applies to. Absent means "not phase-specific".
    pub enum Phase {
        /// Measured on L1.
        L1 = "L1",
        /// Measured on L2.
        L2 = "L2",
        /// Measured on L3.
        L3 = "L3",
        /// Measured on neutral.
        N = "N",
        /// Measured between L1 and N.
        L1N = "L1-N",
        /// Measured between L2 and N.
        L2N = "L2-N",
        /// Measured between L3 and N.
        L3N = "L3-N",
        /// Measured between L1 and L2.
        L1L2 = "L1-L2",
        /// Measured between L2 and L3.
        L2L3 = "L2-L3",
        /// Measured between L3 and L1.
        L3L1 = "L3-L1",
    }
}

ocpp_enum! {
    /// Where a sampled value was measured. Default when absent: `Outlet`.
    pub enum Location {
        /// Measured in the cable.
        Cable = "Cable",
        /// Measured by the EV.
        Ev = "EV",
        /// Measured at the network ("grid") inlet.
        Inlet = "Inlet",
        /// Measured at a connector.
        Outlet = "Outlet",
        /// Measured inside the charge point's body.
        Body = "Body",
    }
}

ocpp_enum! {
    /// Unit of a sampled value. Default when absent: `Wh` for energy measurands.
    ///
    /// Both `Celcius` (the 1.6 spelling, the only one in the StopTransaction schema) and
    /// `Celsius` (added to the MeterValues schema by the 2019 errata) are accepted everywhere and
    /// written back as received.
    pub enum UnitOfMeasure {
        /// Watt-hours (energy).
        Wh = "Wh",
        /// Kilowatt-hours (energy).
        KWh = "kWh",
        /// Var-hours (reactive energy).
        Varh = "varh",
        /// Kilovar-hours (reactive energy).
        Kvarh = "kvarh",
        /// Watts (power).
        W = "W",
        /// Kilowatts (power).
        KW = "kW",
        /// Volt-amperes (apparent power).
        Va = "VA",
        /// Kilovolt-amperes (apparent power).
        KVa = "kVA",
        /// Vars (reactive power).
        Var = "var",
        /// Kilovars (reactive power).
        Kvar = "kvar",
        /// Amperes (current).
        A = "A",
        /// Volts (voltage).
        V = "V",
        /// Kelvin (temperature).
        K = "K",
        /// Degrees Celsius, in the spec's own misspelling.
        Celcius = "Celcius",
        /// Degrees Celsius.
        Celsius = "Celsius",
        /// Degrees Fahrenheit.
        Fahrenheit = "Fahrenheit",
        /// Percentage.
        Percent = "Percent",
    }
}

ocpp_enum! {
    /// Status in RemoteStartTransaction.conf and RemoteStopTransaction.conf.
    pub enum RemoteStartStopStatus {
        /// Command will be executed.
        Accepted = "Accepted",
        /// Command will not be executed.
        Rejected = "Rejected",
    }
}

ocpp_enum! {
    /// Status in ReserveNow.conf.
    pub enum ReservationStatus {
        /// Reservation has been made.
        Accepted = "Accepted",
        /// Reservation has not been made: connector or charge point is faulted.
        Faulted = "Faulted",
        /// Reservation has not been made: the connector is occupied or reserved.
        Occupied = "Occupied",
        /// Reservation has not been made: reservations are not accepted.
        Rejected = "Rejected",
        /// Reservation has not been made: connector or charge point is unavailable.
        Unavailable = "Unavailable",
    }
}

ocpp_enum! {
    /// Kind of reset requested in Reset.req.
    pub enum ResetType {
        /// Full reboot of the charge point software.
        Hard = "Hard",
        /// Return to initial status, gracefully terminating transactions.
        Soft = "Soft",
    }
}

ocpp_enum! {
    /// Status in Reset.conf.
    pub enum ResetStatus {
        /// Command will be executed.
        Accepted = "Accepted",
        /// Command will not be executed.
        Rejected = "Rejected",
    }
}

ocpp_enum! {
    /// Kind of local authorization list update in SendLocalList.req.
    pub enum UpdateType {
        /// Apply the changes to the current list.
        Differential = "Differential",
        /// Replace the current list.
        Full = "Full",
    }
}

ocpp_enum! {
    /// Status in SendLocalList.conf.
    pub enum UpdateStatus {
        /// Local authorization list successfully updated.
        Accepted = "Accepted",
        /// Failed to update the local authorization list.
        Failed = "Failed",
        /// Update of the local authorization list is not supported.
        NotSupported = "NotSupported",
        /// Version number in the request for a differential update is less than or equal to
        /// the version number of the current list.
        VersionMismatch = "VersionMismatch",
    }
}

ocpp_enum! {
    /// Status in SetChargingProfile.conf.
    pub enum ChargingProfileStatus {
        /// Request has been accepted and will be executed.
        Accepted = "Accepted",
        /// Request has not been accepted and will not be executed.
        Rejected = "Rejected",
        /// Charge point indicates that the request is not supported.
        NotSupported = "NotSupported",
    }
}

ocpp_enum! {
    /// Error code reported in StatusNotification.req.
    pub enum ChargePointErrorCode {
        /// Failure to lock or unlock the connector.
        ConnectorLockFailure = "ConnectorLockFailure",
        /// Communication failure with the vehicle.
        EvCommunicationError = "EVCommunicationError",
        /// Ground fault circuit interrupter has been activated.
        GroundFailure = "GroundFailure",
        /// Temperature inside the charge point is too high.
        HighTemperature = "HighTemperature",
        /// Error in internal hardware or software component.
        InternalError = "InternalError",
        /// The authorization information received from the central system conflicts with the
        /// local list.
        LocalListConflict = "LocalListConflict",
        /// No error to report.
        NoError = "NoError",
        /// Other type of error; more information in `vendorErrorCode`.
        OtherError = "OtherError",
        /// Over current protection device has tripped.
        OverCurrentFailure = "OverCurrentFailure",
        /// Failure to read the electrical meter.
        PowerMeterFailure = "PowerMeterFailure",
        /// Failure to control the power switch.
        PowerSwitchFailure = "PowerSwitchFailure",
        /// Failure with the idTag reader.
        ReaderFailure = "ReaderFailure",
        /// Unable to perform a reset.
        ResetFailure = "ResetFailure",
        /// Voltage has dropped below an acceptable level.
        UnderVoltage = "UnderVoltage",
        /// Voltage has risen above an acceptable level.
        OverVoltage = "OverVoltage",
        /// Wireless communication device reports a weak signal.
        WeakSignal = "WeakSignal",
    }
}

ocpp_enum! {
    /// Status of a connector (or of the charge point, connector 0) in StatusNotification.req.
    pub enum ChargePointStatus {
        /// Available for a new user.
        Available = "Available",
        /// Preparing: plugged in, authorising, or otherwise about to charge.
        Preparing = "Preparing",
        /// The contactor is closed and the EV is charging (or allowed to).
        Charging = "Charging",
        /// The EVSE does not allow charging (e.g. a smart charging limit).
        SuspendedEvse = "SuspendedEVSE",
        /// The EV does not take energy.
        SuspendedEv = "SuspendedEV",
        /// Transaction stopped, connector not yet available.
        Finishing = "Finishing",
        /// Reserved by a ReserveNow.req.
        Reserved = "Reserved",
        /// Not available for charging (ChangeAvailability).
        Unavailable = "Unavailable",
        /// Faulted: an error prevents charging.
        Faulted = "Faulted",
    }
}

ocpp_enum! {
    /// Why a transaction stopped (StopTransaction.req). Absent means `Local`.
    pub enum Reason {
        /// Emergency stop button was used.
        EmergencyStop = "EmergencyStop",
        /// Disconnecting of the cable was detected.
        EvDisconnected = "EVDisconnected",
        /// A hard reset command was received.
        HardReset = "HardReset",
        /// Stopped locally on request of the user (e.g. presented the same idTag).
        Local = "Local",
        /// Any other reason.
        Other = "Other",
        /// Complete loss of power.
        PowerLoss = "PowerLoss",
        /// A locally initiated reset/reboot.
        Reboot = "Reboot",
        /// Stopped remotely on request of the user (RemoteStopTransaction).
        Remote = "Remote",
        /// A soft reset command was received.
        SoftReset = "SoftReset",
        /// Central system sent an UnlockConnector.req.
        UnlockCommand = "UnlockCommand",
        /// The transaction was stopped because the idTag was deauthorized.
        DeAuthorized = "DeAuthorized",
    }
}

ocpp_enum! {
    /// Message the central system asks for in TriggerMessage.req.
    pub enum MessageTrigger {
        /// A BootNotification.req.
        BootNotification = "BootNotification",
        /// A DiagnosticsStatusNotification.req.
        DiagnosticsStatusNotification = "DiagnosticsStatusNotification",
        /// A FirmwareStatusNotification.req.
        FirmwareStatusNotification = "FirmwareStatusNotification",
        /// A Heartbeat.req.
        Heartbeat = "Heartbeat",
        /// A MeterValues.req.
        MeterValues = "MeterValues",
        /// A StatusNotification.req.
        StatusNotification = "StatusNotification",
    }
}

ocpp_enum! {
    /// Status in TriggerMessage.conf.
    pub enum TriggerMessageStatus {
        /// Requested notification will be sent.
        Accepted = "Accepted",
        /// Requested notification will not be sent.
        Rejected = "Rejected",
        /// Requested notification cannot be sent because it is not implemented or unknown.
        NotImplemented = "NotImplemented",
    }
}

ocpp_enum! {
    /// Status in UnlockConnector.conf.
    pub enum UnlockStatus {
        /// Connector has successfully been unlocked.
        Unlocked = "Unlocked",
        /// Failed to unlock the connector.
        UnlockFailed = "UnlockFailed",
        /// Charge point has no connector lock.
        NotSupported = "NotSupported",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn enum_values_round_trip_and_reject_unknowns() {
        for value in Measurand::VALUES {
            let parsed = Measurand::from_wire(&json!(value), &Path::Root).ok();
            assert_eq!(parsed.map(|m| m.as_str()), Some(*value));
        }
        assert_eq!(Measurand::VALUES.len(), 22);
        assert_eq!(UnitOfMeasure::VALUES.len(), 17);
        assert_eq!(ChargePointErrorCode::VALUES.len(), 16);
        assert_eq!(Reason::VALUES.len(), 11);
        assert_eq!(Phase::from_wire_str("L1-N"), Some(Phase::L1N));
        assert_eq!(ChargePointStatus::from_wire_str("available"), None);

        let err = ChargePointStatus::from_wire(&json!("Broken"), &Path::Root.field("status")).err();
        let err = err.map(|e| (e.code.as_str(), e.description));
        assert_eq!(
            err,
            Some((
                "PropertyConstraintViolation",
                "status: 'Broken' is not one of Available, Preparing, Charging, SuspendedEVSE, \
                 SuspendedEV, Finishing, Reserved, Unavailable, Faulted"
                    .to_owned()
            ))
        );
        let err = ChargePointStatus::from_wire(&json!(3), &Path::Root.field("status")).err();
        assert_eq!(err.map(|e| e.code.as_str()), Some("TypeConstraintViolation"));
    }

    #[test]
    fn enums_serialise_with_serde_as_wire_strings() {
        assert_eq!(
            serde_json::to_value(ChargePointErrorCode::EvCommunicationError).ok(),
            Some(json!("EVCommunicationError"))
        );
        let back: Option<Location> = serde_json::from_value(json!("EV")).ok();
        assert_eq!(back, Some(Location::Ev));
    }
}
