//! Billing arithmetic: exact decimals, never floats. A session costs energy × price per kWh,
//! rounded to the paisa (half away from zero).

use rust_decimal::{Decimal, RoundingStrategy};

/// The cost of `energy_wh` at `price_per_kwh` INR, rounded to paise.
pub fn cost(energy_wh: i64, price_per_kwh: Decimal) -> Decimal {
    let kwh = Decimal::from(energy_wh.max(0)) / Decimal::from(1000);
    (kwh * price_per_kwh).round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

/// Average power in W over `seconds` for `energy_wh` (0 for an empty interval).
pub fn average_power_w(energy_wh: i64, seconds: i64) -> i64 {
    if seconds <= 0 { 0 } else { energy_wh.max(0).saturating_mul(3600) / seconds }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).expect("decimal")
    }

    #[test]
    fn cost_is_energy_times_price_rounded_to_paise() {
        assert_eq!(cost(12_345, d("18.50")), d("228.38")); // 12.345 kWh × 18.50 = 228.3825
        assert_eq!(cost(1_000, d("16.00")), d("16.00"));
        assert_eq!(cost(1, d("0.01")), d("0.00"));
        assert_eq!(cost(500, d("0.01")), d("0.01")); // 0.005 rounds away from zero
        assert_eq!(cost(-50, d("18.50")), d("0.00"));
        // A float would drift here; decimals do not.
        assert_eq!(cost(3_333, d("0.30")), d("1.00"));
    }

    #[test]
    fn average_power_handles_empty_intervals() {
        assert_eq!(average_power_w(11_000, 3600), 11_000);
        assert_eq!(average_power_w(500, 0), 0);
    }
}
