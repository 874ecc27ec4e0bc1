//! Smart Charging profile payloads: ClearChargingProfile, GetCompositeSchedule and
//! SetChargingProfile (requests and responses).

use chrono::{DateTime, Utc};

use super::super::enums::{
    ChargingProfilePurposeType, ChargingProfileStatus, ChargingRateUnitType, ClearChargingProfileStatus,
    GetCompositeScheduleStatus,
};
use super::super::types::{ChargingProfile, ChargingSchedule};
use super::super::wire::support::*;

ocpp_struct! {
    /// ClearChargingProfile.req (central system → charge point); the fields select which
    /// profiles to clear, all absent means all.
    pub struct ClearChargingProfileRequest {
        /// Id of the profile to clear.
        "id" id: Option<i32>,
        /// Connector (>= 0) whose profiles to clear; 0 is the charge point.
        "connectorId" connector_id: Option<u32>,
        /// Purpose of the profiles to clear.
        "chargingProfilePurpose" charging_profile_purpose: Option<ChargingProfilePurposeType>,
        /// Stack level of the profiles to clear.
        "stackLevel" stack_level: Option<i32>,
    }
}

ocpp_struct! {
    /// ClearChargingProfile.conf.
    pub struct ClearChargingProfileResponse {
        /// Result.
        "status" status: ClearChargingProfileStatus,
    }
}

ocpp_struct! {
    /// GetCompositeSchedule.req (central system → charge point).
    pub struct GetCompositeScheduleRequest {
        /// Connector (>= 0); 0 asks for the grid connection's expected consumption.
        "connectorId" connector_id: u32,
        /// Length of the requested schedule in seconds.
        "duration" duration: i32,
        /// Force a power or current schedule.
        "chargingRateUnit" charging_rate_unit: Option<ChargingRateUnitType>,
    }
}

ocpp_struct! {
    /// GetCompositeSchedule.conf.
    pub struct GetCompositeScheduleResponse {
        /// Whether the request could be processed.
        "status" status: GetCompositeScheduleStatus,
        /// Connector the schedule applies to.
        "connectorId" connector_id: Option<u32>,
        /// Start of the schedule; periods are relative to it.
        "scheduleStart" schedule_start: Option<DateTime<Utc>>,
        /// The composite schedule.
        "chargingSchedule" charging_schedule: Option<ChargingSchedule>,
    }
}

ocpp_struct! {
    /// SetChargingProfile.req (central system → charge point).
    pub struct SetChargingProfileRequest {
        /// Connector (>= 0); 0 sets an overall limit for the charge point.
        "connectorId" connector_id: u32,
        /// The profile.
        "csChargingProfiles" cs_charging_profiles: ChargingProfile,
    }
}

ocpp_struct! {
    /// SetChargingProfile.conf.
    pub struct SetChargingProfileResponse {
        /// Result.
        "status" status: ChargingProfileStatus,
    }
}
