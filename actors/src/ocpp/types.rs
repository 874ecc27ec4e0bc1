//! Structures shared by several OCPP 1.6 messages: `IdTagInfo`, `AuthorizationData`,
//! `KeyValue`, `MeterValue`/`SampledValue` and `ChargingProfile`/`ChargingSchedule`/
//! `ChargingSchedulePeriod`. Field names, types and limits follow the official JSON schemas.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use super::enums::{
    AuthorizationStatus, ChargingProfileKindType, ChargingProfilePurposeType, ChargingRateUnitType, Location,
    Measurand, Phase, ReadingContext, RecurrencyKindType, UnitOfMeasure, ValueFormat,
};
use super::wire::support::*;
use super::wire::{CiString50, CiString500, IdToken};

ocpp_struct! {
    /// Status information about an identifier, returned in Authorize.conf, StartTransaction.conf
    /// and StopTransaction.conf, and stored in the local authorization list.
    pub struct IdTagInfo {
        /// When the idTag expires; absent means no expiry (or no caching, per the spec).
        "expiryDate" expiry_date: Option<DateTime<Utc>>,
        /// Parent identifier (group) of the idTag.
        "parentIdTag" parent_id_tag: Option<IdToken>,
        /// Whether the idTag is accepted.
        "status" status: AuthorizationStatus,
    }
}

impl IdTagInfo {
    /// An `IdTagInfo` with only a status.
    pub fn new(status: AuthorizationStatus) -> Self {
        IdTagInfo { expiry_date: None, parent_id_tag: None, status }
    }
}

ocpp_struct! {
    /// One entry of a local authorization list (SendLocalList.req).
    pub struct AuthorizationData {
        /// The identifier this entry is about.
        "idTag" id_tag: IdToken,
        /// Its status; absent in a differential update means "remove this idTag".
        "idTagInfo" id_tag_info: Option<IdTagInfo>,
    }
}

ocpp_struct! {
    /// A configuration key and its value (GetConfiguration.conf).
    pub struct KeyValue {
        /// Configuration key name.
        "key" key: CiString50,
        /// Whether the key is read-only.
        "readonly" readonly: bool,
        /// Current value; absent if the key is known but has no value set.
        "value" value: Option<CiString500>,
    }
}

ocpp_struct! {
    /// One measured value (MeterValues.req, StopTransaction.req). Use the methods in
    /// [`meter`](super::meter) to read it in base units with the spec's defaults applied.
    pub struct SampledValue {
        /// The value, as a string: a decimal number for `Raw`, hex data for `SignedData`.
        "value" value: String,
        /// Why it was taken; absent means `Sample.Periodic`.
        "context" context: Option<ReadingContext>,
        /// Raw or signed; absent means `Raw`.
        "format" format: Option<ValueFormat>,
        /// What was measured; absent means `Energy.Active.Import.Register`.
        "measurand" measurand: Option<Measurand>,
        /// Phase it applies to; absent means not phase-specific.
        "phase" phase: Option<Phase>,
        /// Where it was measured; absent means `Outlet`.
        "location" location: Option<Location>,
        /// Unit; absent means `Wh` for energy measurands.
        "unit" unit: Option<UnitOfMeasure>,
    }
}

impl SampledValue {
    /// A `Raw` value with everything else absent (that is, an energy register in Wh).
    pub fn raw(value: impl Into<String>) -> Self {
        SampledValue {
            value: value.into(),
            context: None,
            format: None,
            measurand: None,
            phase: None,
            location: None,
            unit: None,
        }
    }
}

ocpp_struct! {
    /// Sampled values taken at one point in time.
    pub struct MeterValue {
        /// When the values were sampled.
        "timestamp" timestamp: DateTime<Utc>,
        /// The values (the spec says one or more; the schema does not enforce it, nor do we).
        "sampledValue" sampled_value: Vec<SampledValue>,
    }
}

ocpp_struct! {
    /// One period of a charging schedule.
    pub struct ChargingSchedulePeriod {
        /// Start of the period, in seconds from the start of the schedule.
        "startPeriod" start_period: i32,
        /// Charging rate limit in the schedule's unit; at most one decimal (schema `multipleOf
        /// 0.1`).
        "limit" limit: Decimal [one_decimal],
        /// Number of phases that can be used; absent means 3.
        "numberPhases" number_phases: Option<i32>,
    }
}

ocpp_struct! {
    /// A charging schedule: limits over time.
    pub struct ChargingSchedule {
        /// Duration in seconds; absent means "until the end of the transaction" or indefinite.
        "duration" duration: Option<i32>,
        /// Start of the schedule (absolute profiles).
        "startSchedule" start_schedule: Option<DateTime<Utc>>,
        /// Unit of the limits.
        "chargingRateUnit" charging_rate_unit: ChargingRateUnitType,
        /// The periods, in increasing `startPeriod` order.
        "chargingSchedulePeriod" charging_schedule_period: Vec<ChargingSchedulePeriod>,
        /// Minimum charging rate supported by the EV; at most one decimal.
        "minChargingRate" min_charging_rate: Option<Decimal> [one_decimal],
    }
}

ocpp_struct! {
    /// A charging profile (RemoteStartTransaction.req, SetChargingProfile.req).
    pub struct ChargingProfile {
        /// Unique identifier of this profile.
        "chargingProfileId" charging_profile_id: i32,
        /// Only for `TxProfile`: the transaction it applies to.
        "transactionId" transaction_id: Option<i32>,
        /// Stack level (>= 0); higher levels take precedence.
        "stackLevel" stack_level: u32,
        /// Purpose of the profile.
        "chargingProfilePurpose" charging_profile_purpose: ChargingProfilePurposeType,
        /// Kind of schedule.
        "chargingProfileKind" charging_profile_kind: ChargingProfileKindType,
        /// Recurrence, for `Recurring` profiles.
        "recurrencyKind" recurrency_kind: Option<RecurrencyKindType>,
        /// Start of validity; absent means valid from receipt.
        "validFrom" valid_from: Option<DateTime<Utc>>,
        /// End of validity; absent means valid until replaced.
        "validTo" valid_to: Option<DateTime<Utc>>,
        /// The schedule.
        "chargingSchedule" charging_schedule: ChargingSchedule,
    }
}
