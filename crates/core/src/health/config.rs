//! The health engine's settings. Every default is the seed's value where the
//! seed has one; the rest are documented in `docs/intelligence.md`.
//!
//! The struct deserializes from the `[health]` table of a registry file, every
//! key optional, unknown keys refused.

use serde::{Deserialize, Serialize};

use super::anomaly::AnomalyConfig;
use super::flapping::FlapSettings;
use super::recommend::Scoring;
use super::status::Thresholds;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthConfig {
    /// Transactions in a window (50).
    pub window_size: usize,
    /// Oldest transaction a window counts, in ms (10 minutes).
    pub window_age_ms: i64,
    /// Transactions a window needs before its status may change (10).
    pub min_transactions: u32,
    /// Transactions that must be observed after a transition before the
    /// status may *improve* (hysteresis: worse is reported at once, better
    /// only once it has held). 0 disables it.
    pub recovery_dwell: u32,
    /// How far (a fraction: 0.05 is 5 points) past a threshold the window
    /// must be before the status it holds is left for a better one
    /// (hysteresis; see `health::flapping`). 0: the table's own thresholds.
    pub recovery_margin: f64,
    /// How long (ms) a recovery must last before it is announced (unless
    /// the status it leaves had held for `flap_span_ms`), and how long
    /// without going in or out of DOWN ends a flapping episode; 0 announces
    /// every change at once and never folds.
    pub flap_hold_ms: i64,
    /// Changes into or out of DOWN within `flap_span_ms` that raise one
    /// `flapping` alert and fold the changes after it.
    pub flap_transitions: u32,
    /// The span (ms) `flap_transitions` are counted over.
    pub flap_span_ms: i64,
    /// Interval between two trial payments to a DOWN segment, in ms.
    pub trial_interval_ms: i64,
    /// Consecutive non-approvals that close a DOWN segment again after an
    /// approved trial opened it.
    pub trial_close_after: u32,
    /// Alerts kept (the oldest are dropped beyond).
    pub alert_capacity: usize,
    /// Recent transactions kept per processor for `GET /health/{id}`.
    pub history_size: usize,
    /// Distinct (payment method, country) segments tracked per processor;
    /// beyond, transactions count for the processor only.
    pub max_segments: usize,
    pub thresholds: Thresholds,
    pub scoring: Scoring,
    pub anomaly: AnomalyConfig,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            window_size: 50,
            window_age_ms: 10 * 60 * 1000,
            min_transactions: 10,
            recovery_dwell: 10,
            recovery_margin: 0.05,
            flap_hold_ms: 10_000,
            flap_transitions: 4,
            flap_span_ms: 60_000,
            trial_interval_ms: 1_000,
            trial_close_after: 3,
            alert_capacity: 1_000,
            history_size: 50,
            max_segments: 256,
            thresholds: Thresholds::default(),
            scoring: Scoring::default(),
            anomaly: AnomalyConfig::default(),
        }
    }
}

/// A setting out of range; `key` is its path in the `[health]` table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("health.{key}: {problem}")]
pub struct HealthConfigError {
    pub key: &'static str,
    pub problem: String,
}

impl HealthConfig {
    /// The alert damper's share of the settings.
    pub fn flap_settings(&self) -> FlapSettings {
        FlapSettings {
            hold_ms: self.flap_hold_ms,
            transitions: self.flap_transitions,
            span_ms: self.flap_span_ms,
        }
    }

    pub fn validate(&self) -> Result<(), HealthConfigError> {
        let fail = |key, problem: &str| {
            Err(HealthConfigError {
                key,
                problem: problem.to_owned(),
            })
        };
        let fraction = |x: f64| (0.0..=1.0).contains(&x);
        if !(1..=100_000).contains(&self.window_size) {
            return fail("window_size", "must be between 1 and 100000");
        }
        if self.window_age_ms < 1 {
            return fail("window_age_ms", "must be at least 1 ms");
        }
        if !(0.0..0.5).contains(&self.recovery_margin) {
            return fail("recovery_margin", "must be a fraction from 0 to below 0.5");
        }
        if self.flap_hold_ms < 0 {
            return fail("flap_hold_ms", "must be at least 0 ms");
        }
        if self.flap_transitions < 2 {
            return fail("flap_transitions", "must be at least 2");
        }
        if self.flap_span_ms < 1 {
            return fail("flap_span_ms", "must be at least 1 ms");
        }
        if self.trial_interval_ms < 1 {
            return fail("trial_interval_ms", "must be at least 1 ms");
        }
        if self.trial_close_after < 1 {
            return fail("trial_close_after", "must be at least 1");
        }
        if self.alert_capacity < 1 {
            return fail("alert_capacity", "must be at least 1");
        }
        if self.history_size > 10_000 {
            return fail("history_size", "must be at most 10000");
        }
        let t = &self.thresholds;
        for (key, value) in [
            (
                "thresholds.down_authorization_below",
                t.down_authorization_below,
            ),
            ("thresholds.down_error_above", t.down_error_above),
            (
                "thresholds.degraded_authorization_below",
                t.degraded_authorization_below,
            ),
            ("thresholds.degraded_error_from", t.degraded_error_from),
            ("anomaly.min_delta", self.anomaly.min_delta),
        ] {
            if !fraction(value) {
                return fail(key, "must be a fraction between 0 and 1");
            }
        }
        if t.down_authorization_below > t.degraded_authorization_below {
            return fail(
                "thresholds.down_authorization_below",
                "must not exceed degraded_authorization_below",
            );
        }
        if t.degraded_error_from > t.down_error_above {
            return fail(
                "thresholds.degraded_error_from",
                "must not exceed down_error_above",
            );
        }
        let s = &self.scoring;
        if !(s.degraded_factor.is_finite() && s.degraded_factor >= 0.0) {
            return fail("scoring.degraded_factor", "must be a number >= 0");
        }
        if !(s.confidence_bonus.is_finite() && s.confidence_bonus >= 0.0) {
            return fail("scoring.confidence_bonus", "must be a number >= 0");
        }
        let a = &self.anomaly;
        let alpha = |x: f64| x > 0.0 && x <= 1.0;
        if !alpha(a.fast_alpha) {
            return fail("anomaly.fast_alpha", "must be in (0, 1]");
        }
        if !alpha(a.slow_alpha) || a.slow_alpha >= a.fast_alpha {
            return fail(
                "anomaly.slow_alpha",
                "must be in (0, 1] and smaller than fast_alpha",
            );
        }
        if !(a.z.is_finite() && a.z > 0.0) {
            return fail("anomaly.z", "must be a number > 0");
        }
        if !(1..=1_000).contains(&a.latency_samples) {
            return fail("anomaly.latency_samples", "must be between 1 and 1000");
        }
        if !(a.latency_factor.is_finite() && a.latency_factor > 1.0) {
            return fail("anomaly.latency_factor", "must be a number > 1");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_seed_values_and_valid() {
        let c = HealthConfig::default();
        c.validate().unwrap();
        assert_eq!(c.window_size, 50);
        assert_eq!(c.window_age_ms, 600_000);
        assert_eq!(c.min_transactions, 10);
        assert_eq!(c.thresholds.degraded_authorization_below, 0.65);
        assert_eq!(c.scoring.confidence_bonus, 5.0);
        assert_eq!(c.scoring.confidence_above, 30);
    }

    #[test]
    fn out_of_range_settings_name_their_key() {
        let c = HealthConfig {
            window_size: 0,
            ..HealthConfig::default()
        };
        assert_eq!(c.validate().unwrap_err().key, "window_size");
        let mut c = HealthConfig::default();
        c.thresholds.down_error_above = 0.2;
        assert_eq!(
            c.validate().unwrap_err().to_string(),
            "health.thresholds.degraded_error_from: must not exceed down_error_above"
        );
        let mut c = HealthConfig::default();
        c.anomaly.slow_alpha = 0.5;
        assert_eq!(c.validate().unwrap_err().key, "anomaly.slow_alpha");
    }
}
