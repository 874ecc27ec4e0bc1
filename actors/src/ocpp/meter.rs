//! Reading meter values: a [`SampledValue`] in base units (Wh, W, var, varh, VA) with the spec's
//! defaults applied, and picking the energy register, power and state of charge out of the
//! [`MeterValue`]s of a MeterValues.req or StopTransaction.req.
//!
//! Defaults (OCPP 1.6 section 7.45 SampledValue): measurand `Energy.Active.Import.Register`,
//! context `Sample.Periodic`, format `Raw`, location `Outlet`, unit `Wh` for energy measurands.
//! The spec gives no default unit for power or SoC; an absent unit is read as `W` and `Percent`,
//! which is what chargers that leave it out mean. `SignedData` values cannot be read as numbers
//! and give `None`.

use rust_decimal::{Decimal, RoundingStrategy};

use super::enums::{Location, Measurand, Phase, ReadingContext, UnitOfMeasure, ValueFormat};
use super::types::{MeterValue, SampledValue};

impl SampledValue {
    /// The measurand, `Energy.Active.Import.Register` when absent.
    pub fn measurand_or_default(&self) -> Measurand {
        self.measurand.unwrap_or(Measurand::EnergyActiveImportRegister)
    }

    /// The reading context, `Sample.Periodic` when absent.
    pub fn context_or_default(&self) -> ReadingContext {
        self.context.unwrap_or(ReadingContext::SamplePeriodic)
    }

    /// The value format, `Raw` when absent.
    pub fn format_or_default(&self) -> ValueFormat {
        self.format.unwrap_or(ValueFormat::Raw)
    }

    /// The location, `Outlet` when absent.
    pub fn location_or_default(&self) -> Location {
        self.location.unwrap_or(Location::Outlet)
    }

    /// The unit: as given, else `Wh` for energy measurands (spec), `W` for power measurands and
    /// `Percent` for SoC (assumed), else unknown.
    pub fn unit_or_default(&self) -> Option<UnitOfMeasure> {
        if self.unit.is_some() {
            return self.unit;
        }
        let measurand = self.measurand_or_default();
        if is_energy(measurand) {
            Some(UnitOfMeasure::Wh)
        } else if is_active_power(measurand) {
            Some(UnitOfMeasure::W)
        } else if measurand == Measurand::SoC {
            Some(UnitOfMeasure::Percent)
        } else {
            None
        }
    }

    /// The number, if the format is `Raw` and the value is a decimal number (plain or with an
    /// exponent, surrounding whitespace ignored).
    pub fn numeric_value(&self) -> Option<Decimal> {
        if self.format_or_default() != ValueFormat::Raw {
            return None;
        }
        let text = self.value.trim();
        text.parse::<Decimal>().ok().or_else(|| Decimal::from_scientific(text).ok())
    }

    /// The value in its base unit: kWh → Wh, kvarh → varh, kW → W, kvar → var, kVA → VA (× 1000);
    /// other units unchanged. `None` if the value is not a number or the unit is unknown.
    pub fn base_value(&self) -> Option<(Decimal, UnitOfMeasure)> {
        let value = self.numeric_value()?;
        let unit = self.unit_or_default()?;
        let thousand = Decimal::ONE_THOUSAND;
        let (factor, base) = match unit {
            UnitOfMeasure::KWh => (thousand, UnitOfMeasure::Wh),
            UnitOfMeasure::Kvarh => (thousand, UnitOfMeasure::Varh),
            UnitOfMeasure::KW => (thousand, UnitOfMeasure::W),
            UnitOfMeasure::Kvar => (thousand, UnitOfMeasure::Var),
            UnitOfMeasure::KVa => (thousand, UnitOfMeasure::Va),
            other => (Decimal::ONE, other),
        };
        Some((value.checked_mul(factor)?, base))
    }

    /// An active energy value (`Energy.Active.*`) in whole Wh, rounded half away from zero.
    pub fn energy_wh(&self) -> Option<i64> {
        if !matches!(
            self.measurand_or_default(),
            Measurand::EnergyActiveImportRegister
                | Measurand::EnergyActiveExportRegister
                | Measurand::EnergyActiveImportInterval
                | Measurand::EnergyActiveExportInterval
        ) {
            return None;
        }
        match self.base_value()? {
            (wh, UnitOfMeasure::Wh) => {
                wh.round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero).try_into().ok()
            }
            _ => None,
        }
    }

    /// An active power value (`Power.Active.*`, `Power.Offered`) in W.
    pub fn power_w(&self) -> Option<Decimal> {
        if !is_active_power(self.measurand_or_default()) {
            return None;
        }
        match self.base_value()? {
            (w, UnitOfMeasure::W) => Some(w),
            _ => None,
        }
    }

    /// A state of charge (`SoC`) in percent.
    pub fn soc_percent(&self) -> Option<Decimal> {
        if self.measurand_or_default() != Measurand::SoC {
            return None;
        }
        match self.base_value()? {
            (percent, UnitOfMeasure::Percent) => Some(percent),
            _ => None,
        }
    }
}

fn is_energy(measurand: Measurand) -> bool {
    measurand.as_str().starts_with("Energy.")
}

fn is_active_power(measurand: Measurand) -> bool {
    matches!(measurand, Measurand::PowerActiveImport | Measurand::PowerActiveExport | Measurand::PowerOffered)
}

/// How much a reading's context is trusted as "the" value when several share a timestamp:
/// end of transaction first, then periodic and clock-aligned samples.
fn context_rank(context: ReadingContext) -> u8 {
    match context {
        ReadingContext::TransactionEnd => 7,
        ReadingContext::SamplePeriodic => 6,
        ReadingContext::SampleClock => 5,
        ReadingContext::TransactionBegin => 4,
        ReadingContext::Trigger => 3,
        ReadingContext::InterruptionEnd => 2,
        ReadingContext::InterruptionBegin => 1,
        ReadingContext::Other => 0,
    }
}

/// Meters at the connector (the default) are what the EV received; the grid inlet is next best.
fn location_rank(location: Location) -> u8 {
    match location {
        Location::Outlet => 3,
        Location::Inlet => 2,
        Location::Cable | Location::Body => 1,
        Location::Ev => 0,
    }
}

/// Picks, among the phase-less sampled values for `measurand` that `read` can interpret, the
/// best one: best location, then latest timestamp, then best context.
fn pick<T: Copy>(
    meter_values: &[MeterValue],
    measurand: Measurand,
    read: impl Fn(&SampledValue) -> Option<T>,
) -> Option<T> {
    meter_values
        .iter()
        .flat_map(|mv| mv.sampled_value.iter().map(move |sv| (mv.timestamp, sv)))
        .filter(|(_, sv)| sv.measurand_or_default() == measurand && sv.phase.is_none())
        .filter_map(|(timestamp, sv)| {
            let value = read(sv)?;
            let rank = (location_rank(sv.location_or_default()), timestamp, context_rank(sv.context_or_default()));
            Some((rank, value))
        })
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, value)| value)
}

/// The `Energy.Active.Import.Register` reading (the default measurand) in Wh: the latest
/// phase-less `Raw` value, preferring the connector's meter and, at equal times,
/// `Transaction.End` over `Sample.Periodic` over `Sample.Clock` and so on. `None` when there is
/// no such reading (per-phase registers alone are not summed).
pub fn energy_register_wh(meter_values: &[MeterValue]) -> Option<i64> {
    pick(meter_values, Measurand::EnergyActiveImportRegister, SampledValue::energy_wh)
}

/// The latest phase-less `Power.Active.Import` reading, in W.
pub fn power_active_import_w(meter_values: &[MeterValue]) -> Option<Decimal> {
    pick(meter_values, Measurand::PowerActiveImport, SampledValue::power_w)
}

/// The latest state-of-charge reading, in percent (usually reported with location `EV`).
pub fn soc_percent(meter_values: &[MeterValue]) -> Option<Decimal> {
    meter_values
        .iter()
        .flat_map(|mv| mv.sampled_value.iter().map(move |sv| (mv.timestamp, sv)))
        .filter_map(|(timestamp, sv)| Some(((timestamp, context_rank(sv.context_or_default())), sv.soc_percent()?)))
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, value)| value)
}

/// The phase-specific values of `measurand` in the latest meter value that has any, e.g. the
/// per-phase currents, keyed by phase.
pub fn per_phase(meter_values: &[MeterValue], measurand: Measurand) -> Vec<(Phase, Decimal)> {
    let latest = meter_values
        .iter()
        .filter(|mv| mv.sampled_value.iter().any(|sv| sv.measurand_or_default() == measurand && sv.phase.is_some()))
        .max_by_key(|mv| mv.timestamp);
    latest
        .map(|mv| {
            mv.sampled_value
                .iter()
                .filter(|sv| sv.measurand_or_default() == measurand)
                .filter_map(|sv| Some((sv.phase?, sv.base_value()?.0)))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::super::wire::Wire;
    use super::*;
    use chrono::{DateTime, TimeZone, Utc};
    use serde_json::json;

    fn at(seconds: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_714_564_800 + seconds, 0).single().unwrap_or_default()
    }

    fn sv(value: &str, measurand: Option<Measurand>, unit: Option<UnitOfMeasure>) -> SampledValue {
        SampledValue { measurand, unit, ..SampledValue::raw(value) }
    }

    #[test]
    fn energy_normalises_to_whole_wh() {
        let kwh = sv("12.3456", None, Some(UnitOfMeasure::KWh));
        assert_eq!(kwh.energy_wh(), Some(12_346));
        assert_eq!(sv("1234.5", None, None).energy_wh(), Some(1235));
        assert_eq!(sv(" 42 ", None, Some(UnitOfMeasure::Wh)).energy_wh(), Some(42));
        assert_eq!(sv("1.5e3", None, Some(UnitOfMeasure::Wh)).energy_wh(), Some(1500));
        assert_eq!(sv("abc", None, None).energy_wh(), None);
        // Reactive energy is not active energy.
        let varh = sv("5", Some(Measurand::EnergyReactiveImportRegister), Some(UnitOfMeasure::Varh));
        assert_eq!(varh.energy_wh(), None);
        // A register in kW is not energy.
        assert_eq!(sv("5", None, Some(UnitOfMeasure::KW)).energy_wh(), None);
        let signed = SampledValue { format: Some(ValueFormat::SignedData), ..SampledValue::raw("AB12CD") };
        assert_eq!(signed.energy_wh(), None);
        assert_eq!(sv("99999999999999999999999", None, None).energy_wh(), None);
    }

    #[test]
    fn power_and_soc_normalise() {
        let kw = sv("7.4", Some(Measurand::PowerActiveImport), Some(UnitOfMeasure::KW));
        assert_eq!(kw.power_w(), Some(Decimal::new(7400, 0)));
        let w = sv("3680", Some(Measurand::PowerActiveImport), None);
        assert_eq!(w.power_w(), Some(Decimal::new(3680, 0)));
        assert_eq!(sv("16", Some(Measurand::CurrentImport), Some(UnitOfMeasure::A)).power_w(), None);
        let soc = sv("81.5", Some(Measurand::SoC), Some(UnitOfMeasure::Percent));
        assert_eq!(soc.soc_percent(), Some(Decimal::new(815, 1)));
        assert_eq!(sv("81", Some(Measurand::SoC), None).soc_percent(), Some(Decimal::new(81, 0)));
    }

    #[test]
    fn register_picks_phaseless_latest_and_best_context() {
        let mut begin = sv("1000", None, Some(UnitOfMeasure::Wh));
        begin.context = Some(ReadingContext::TransactionBegin);
        let mut periodic = sv("2.5", Some(Measurand::EnergyActiveImportRegister), Some(UnitOfMeasure::KWh));
        periodic.context = Some(ReadingContext::SamplePeriodic);
        let mut trigger_same_time = sv("2400", None, None);
        trigger_same_time.context = Some(ReadingContext::Trigger);
        let mut phase = sv("9000", None, None);
        phase.phase = Some(Phase::L1);
        let mut ev = sv("9999", None, None);
        ev.location = Some(Location::Ev);
        let values = [
            MeterValue { timestamp: at(0), sampled_value: vec![begin] },
            MeterValue {
                timestamp: at(60),
                sampled_value: vec![
                    trigger_same_time,
                    periodic,
                    phase,
                    ev,
                    sv("3680", Some(Measurand::PowerActiveImport), Some(UnitOfMeasure::W)),
                    sv("55", Some(Measurand::SoC), None),
                ],
            },
        ];
        assert_eq!(energy_register_wh(&values), Some(2500));
        assert_eq!(energy_register_wh(&values[..1]), Some(1000));
        assert_eq!(energy_register_wh(&[]), None);
        assert_eq!(power_active_import_w(&values), Some(Decimal::new(3680, 0)));
        assert_eq!(soc_percent(&values), Some(Decimal::new(55, 0)));
        assert_eq!(per_phase(&values, Measurand::EnergyActiveImportRegister), vec![(Phase::L1, Decimal::new(9000, 0))]);
    }

    #[test]
    fn transaction_end_beats_periodic_at_the_same_time() {
        let mut end = sv("5000", None, None);
        end.context = Some(ReadingContext::TransactionEnd);
        let periodic = sv("4990", None, None);
        let values = [MeterValue { timestamp: at(0), sampled_value: vec![periodic, end] }];
        assert_eq!(energy_register_wh(&values), Some(5000));
    }

    #[test]
    fn reads_a_real_stop_transaction_payload() {
        let payload = json!([{
            "timestamp": "2024-05-01T14:00:00+02:00",
            "sampledValue": [
                {"value": "15.432", "context": "Transaction.End", "measurand": "Energy.Active.Import.Register", "unit": "kWh", "location": "Outlet"},
                {"value": "0", "context": "Transaction.End", "measurand": "Power.Active.Import", "unit": "W"}
            ]
        }]);
        let values = Vec::<MeterValue>::from_payload(&payload);
        let values = values.unwrap_or_default();
        assert_eq!(values.first().map(|v| v.timestamp), Some(at(0)));
        assert_eq!(energy_register_wh(&values), Some(15_432));
    }
}
