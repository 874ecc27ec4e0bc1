//! The charging curve of a simulated vehicle: constant power up to a state of charge (80 % by
//! default), then power falling linearly with the state of charge to a floor (10 % of the
//! maximum) at 100 %, and nothing once the battery is full.
//!
//! Because power is linear in the state of charge in the taper, the state of charge there
//! follows a closed form (an exponential approach in time), so [`Curve::advance`] is exact for
//! any step length — a meter interval of 60 s or 0.1 s gives the same energy over the same time,
//! with no loop per step.

/// One vehicle's charging curve on one connector.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Curve {
    /// Battery capacity, Wh.
    pub battery_wh: f64,
    /// Power into the battery on the flat part, W (the lower of the charger's and the car's).
    pub max_power_w: f64,
    /// State of charge (0–1) where the taper begins.
    pub taper_from: f64,
    /// Power at 100 % as a fraction of the maximum.
    pub floor: f64,
}

/// What a step of charging did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    /// State of charge after the step (0–1).
    pub soc: f64,
    /// Energy into the battery during the step, Wh.
    pub energy_wh: f64,
    /// Power into the battery at the end of the step, W.
    pub power_w: f64,
}

impl Curve {
    /// A curve with the usual shape: flat to 80 %, tapering to 10 % of the maximum at 100 %.
    pub fn new(battery_wh: f64, max_power_w: f64) -> Self {
        Curve { battery_wh, max_power_w, taper_from: 0.8, floor: 0.1 }
    }

    /// How steeply power falls in the taper, per unit of state of charge (as a fraction of max).
    fn slope(&self) -> f64 {
        (1.0 - self.floor) / (1.0 - self.taper_from)
    }

    /// Power into the battery at this state of charge, W.
    pub fn power_at(&self, soc: f64) -> f64 {
        if soc >= 1.0 {
            0.0
        } else if soc <= self.taper_from {
            self.max_power_w
        } else {
            self.max_power_w * (1.0 - self.slope() * (soc - self.taper_from))
        }
    }

    /// Charges for `seconds` from `soc`: the state of charge after, the energy delivered and
    /// the power at the end.
    pub fn advance(&self, soc: f64, seconds: f64) -> Step {
        let start = soc.clamp(0.0, 1.0);
        if self.battery_wh <= 0.0 || self.max_power_w <= 0.0 || seconds <= 0.0 || start >= 1.0 {
            return Step { soc: start, energy_wh: 0.0, power_w: self.power_at(start) };
        }
        // Energy in watt-seconds: capacity × 3600.
        let capacity_ws = self.battery_wh * 3600.0;
        let mut soc = start;
        let mut left = seconds;
        if soc < self.taper_from {
            let to_taper = (self.taper_from - soc) * capacity_ws / self.max_power_w;
            if left <= to_taper {
                soc += self.max_power_w * left / capacity_ws;
                left = 0.0;
            } else {
                soc = self.taper_from;
                left -= to_taper;
            }
        }
        if left > 0.0 {
            // u = P / Pmax = 1 - k (soc - s0); dsoc/dt = Pmax u / C  =>  u(t) = u0 e^(-k Pmax t / C).
            let k = self.slope();
            let u0 = 1.0 - k * (soc - self.taper_from);
            let u1 = u0 * (-k * self.max_power_w * left / capacity_ws).exp();
            soc = (self.taper_from + (1.0 - u1) / k).min(1.0);
        }
        // Reaching 100 % (u = floor) ends charging; rounding must not leave a trickle above it.
        if soc > 1.0 - 1e-9 {
            soc = 1.0;
        }
        Step { soc, energy_wh: (soc - start) * self.battery_wh, power_w: self.power_at(soc) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BATTERY_WH: f64 = 60_000.0;
    const POWER_W: f64 = 22_000.0;

    fn close(a: f64, b: f64, tolerance: f64) -> bool {
        (a - b).abs() <= tolerance
    }

    #[test]
    fn power_is_flat_to_eighty_percent_then_tapers_to_a_tenth_and_stops_when_full() {
        let curve = Curve::new(BATTERY_WH, POWER_W);
        assert_eq!(curve.power_at(0.1), POWER_W);
        assert_eq!(curve.power_at(0.8), POWER_W);
        assert!(close(curve.power_at(0.9), 0.55 * POWER_W, 1e-6));
        assert!(close(curve.power_at(0.999_999), 0.1 * POWER_W, 1.0));
        assert_eq!(curve.power_at(1.0), 0.0);
    }

    #[test]
    fn the_flat_part_delivers_power_times_time() {
        let curve = Curve::new(BATTERY_WH, POWER_W);
        let step = curve.advance(0.2, 600.0);
        // 22 kW for 10 minutes = 3.667 kWh.
        assert!(close(step.energy_wh, 22_000.0 / 6.0, 1e-6), "{step:?}");
        assert!(close(step.soc, 0.2 + 22_000.0 / 6.0 / BATTERY_WH, 1e-12));
        assert_eq!(step.power_w, POWER_W);
    }

    #[test]
    fn one_long_step_equals_many_short_ones_across_the_taper() {
        let curve = Curve::new(BATTERY_WH, POWER_W);
        let long = curve.advance(0.5, 3.0 * 3600.0);
        let (mut soc, mut energy) = (0.5, 0.0);
        for _ in 0..(3 * 3600 * 10) {
            let step = curve.advance(soc, 0.1);
            soc = step.soc;
            energy += step.energy_wh;
        }
        assert!(close(long.soc, soc, 1e-6), "{} vs {soc}", long.soc);
        assert!(close(long.energy_wh, energy, 0.5), "{} vs {energy}", long.energy_wh);
    }

    #[test]
    fn the_taper_matches_a_numerical_integration_of_the_power() {
        let curve = Curve::new(BATTERY_WH, POWER_W);
        let step = curve.advance(0.8, 1800.0);
        // Euler with 10 ms steps.
        let (mut soc, dt) = (0.8, 0.01);
        for _ in 0..180_000 {
            soc += curve.power_at(soc) * dt / (BATTERY_WH * 3600.0);
        }
        assert!(close(step.soc, soc, 1e-5), "{} vs {soc}", step.soc);
        assert!(step.power_w < POWER_W && step.power_w > 0.1 * POWER_W);
    }

    #[test]
    fn charging_never_goes_past_full_and_energy_matches_the_charge_added() {
        let curve = Curve::new(BATTERY_WH, POWER_W);
        let step = curve.advance(0.95, 24.0 * 3600.0);
        assert_eq!(step.soc, 1.0);
        assert!(close(step.energy_wh, 0.05 * BATTERY_WH, 1e-6));
        assert_eq!(step.power_w, 0.0);
        let after = curve.advance(1.0, 600.0);
        assert_eq!((after.soc, after.energy_wh, after.power_w), (1.0, 0.0, 0.0));
    }

    #[test]
    fn power_never_rises_as_the_battery_fills() {
        let curve = Curve::new(40_000.0, 50_000.0);
        let (mut soc, mut last) = (0.1, f64::INFINITY);
        for _ in 0..500 {
            let step = curve.advance(soc, 30.0);
            assert!(step.power_w <= last + 1e-9);
            assert!(step.soc >= soc);
            last = step.power_w;
            soc = step.soc;
        }
        assert_eq!(soc, 1.0);
    }
}
