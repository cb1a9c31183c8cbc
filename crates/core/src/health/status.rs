//! The status table: a window's counts become HEALTHY, DEGRADED or DOWN, and
//! the rule that decided is kept so that an alert can name it.
//!
//! | status   | authorization rate | error/timeout rate |
//! |----------|--------------------|--------------------|
//! | HEALTHY  | >= 65%             | < 30%              |
//! | DEGRADED | 30% to < 65%       | 30% to 50%         |
//! | DOWN     | < 30%              | > 50%              |
//!
//! Precedence: the DOWN rules are checked first (error rate, then
//! authorization rate), then the DEGRADED rules in the same order; HEALTHY is
//! what remains. A window with no approved or declined transaction has no
//! authorization rate, so only the error-rate rules can fire on it.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::window::Counts;

/// A processor's (or segment's) health.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Healthy,
    Degraded,
    Down,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Healthy => "HEALTHY",
            Status::Degraded => "DEGRADED",
            Status::Down => "DOWN",
        }
    }

    /// Whether `self` is a better status than `other`.
    pub fn is_better_than(self, other: Status) -> bool {
        self < other
    }

    /// Whether `self` is a worse status than `other`.
    pub fn is_worse_than(self, other: Status) -> bool {
        self > other
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The rule of the table that decided a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Error/timeout rate above the DOWN threshold.
    HighErrorRate,
    /// Authorization rate below the DOWN threshold.
    VeryLowAuthorizationRate,
    /// Error/timeout rate at or above the DEGRADED threshold.
    ElevatedErrorRate,
    /// Authorization rate below the HEALTHY threshold.
    LowAuthorizationRate,
    /// Every rate within the HEALTHY thresholds.
    WithinThresholds,
    /// The processor's own health check reports it failing (a processor-
    /// level override: DOWN whatever the window says).
    HealthCheckFailing,
    /// The health check passes again and the window does not say worse.
    HealthCheckPassing,
}

/// The thresholds of the status table, as fractions. The defaults are the
/// seed's.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Thresholds {
    /// DOWN when the authorization rate is below this (0.30).
    pub down_authorization_below: f64,
    /// DOWN when the error/timeout rate is above this (0.50).
    pub down_error_above: f64,
    /// DEGRADED when the authorization rate is below this (0.65).
    pub degraded_authorization_below: f64,
    /// DEGRADED when the error/timeout rate is at or above this (0.30).
    pub degraded_error_from: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            down_authorization_below: 0.30,
            down_error_above: 0.50,
            degraded_authorization_below: 0.65,
            degraded_error_from: 0.30,
        }
    }
}

/// What the table says about a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub status: Status,
    pub rule: Rule,
}

/// `0.5` -> `50`, `0.295` -> `29.5`.
pub(crate) fn percent(fraction: f64) -> String {
    let p = (fraction * 1000.0).round() / 10.0;
    format!("{p}")
}

impl Thresholds {
    /// The table with every threshold moved `margin` (a fraction) towards
    /// the better side: a window that this table still calls better has
    /// cleared the real thresholds by the margin (the hysteresis of
    /// leaving a status; see [`super::flapping`]).
    pub fn tightened(&self, margin: f64) -> Thresholds {
        Thresholds {
            down_authorization_below: self.down_authorization_below + margin,
            down_error_above: self.down_error_above - margin,
            degraded_authorization_below: self.degraded_authorization_below + margin,
            degraded_error_from: self.degraded_error_from - margin,
        }
    }

    /// The status the counts call for, ignoring the minimum-transactions
    /// rule (the engine applies it).
    pub fn classify(&self, counts: &Counts) -> Verdict {
        let auth = counts.authorization_rate();
        let errors = counts.error_rate().unwrap_or(0.0);
        let verdict = |status, rule| Verdict { status, rule };
        if errors > self.down_error_above {
            return verdict(Status::Down, Rule::HighErrorRate);
        }
        if auth.is_some_and(|a| a < self.down_authorization_below) {
            return verdict(Status::Down, Rule::VeryLowAuthorizationRate);
        }
        if errors >= self.degraded_error_from {
            return verdict(Status::Degraded, Rule::ElevatedErrorRate);
        }
        if auth.is_some_and(|a| a < self.degraded_authorization_below) {
            return verdict(Status::Degraded, Rule::LowAuthorizationRate);
        }
        verdict(Status::Healthy, Rule::WithinThresholds)
    }

    /// The alert reason naming a rule, with the configured threshold
    /// (`High error/timeout rate (>50%)` with the defaults).
    pub fn reason(&self, rule: Rule) -> String {
        match rule {
            Rule::HighErrorRate => format!(
                "High error/timeout rate (>{}%)",
                percent(self.down_error_above)
            ),
            Rule::VeryLowAuthorizationRate => format!(
                "Very low authorization rate (<{}%)",
                percent(self.down_authorization_below)
            ),
            Rule::ElevatedErrorRate => format!(
                "Elevated error/timeout rate (>={}%)",
                percent(self.degraded_error_from)
            ),
            Rule::LowAuthorizationRate => format!(
                "Low authorization rate (<{}%)",
                percent(self.degraded_authorization_below)
            ),
            Rule::WithinThresholds => format!(
                "Authorization rate >={}% and error/timeout rate <{}%",
                percent(self.degraded_authorization_below),
                percent(self.degraded_error_from)
            ),
            Rule::HealthCheckFailing => "Health check reports the processor failing".to_owned(),
            Rule::HealthCheckPassing => "Health check passes again".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(approved: u32, declined: u32, errors: u32, timeouts: u32) -> Counts {
        Counts {
            approved,
            declined,
            errors,
            timeouts,
        }
    }

    fn status(c: Counts) -> Status {
        Thresholds::default().classify(&c).status
    }

    #[test]
    fn eighty_percent_approved_is_healthy() {
        assert_eq!(status(counts(40, 10, 0, 0)), Status::Healthy);
    }

    #[test]
    fn fifty_percent_approved_is_degraded() {
        let v = Thresholds::default().classify(&counts(25, 25, 0, 0));
        assert_eq!(
            v,
            Verdict {
                status: Status::Degraded,
                rule: Rule::LowAuthorizationRate
            }
        );
    }

    #[test]
    fn twenty_percent_approved_is_down() {
        let v = Thresholds::default().classify(&counts(10, 40, 0, 0));
        assert_eq!(v.status, Status::Down);
        assert_eq!(v.rule, Rule::VeryLowAuthorizationRate);
    }

    #[test]
    fn more_than_half_errors_is_down_whatever_the_authorization_rate() {
        let v = Thresholds::default().classify(&counts(20, 0, 20, 6));
        assert_eq!(v.status, Status::Down);
        assert_eq!(v.rule, Rule::HighErrorRate);
        assert_eq!(
            Thresholds::default().reason(v.rule),
            "High error/timeout rate (>50%)"
        );
        // Only technical failures: no authorization rate, still DOWN.
        assert_eq!(status(counts(0, 0, 5, 5)), Status::Down);
    }

    #[test]
    fn boundaries_follow_the_table() {
        // Exactly 65% approved: HEALTHY; just below: DEGRADED.
        assert_eq!(status(counts(13, 7, 0, 0)), Status::Healthy);
        assert_eq!(status(counts(64, 36, 0, 0)), Status::Degraded);
        // Exactly 30% approved: DEGRADED; below: DOWN.
        assert_eq!(status(counts(3, 7, 0, 0)), Status::Degraded);
        assert_eq!(status(counts(29, 71, 0, 0)), Status::Down);
        // 30% errors: DEGRADED; 50% errors: still DEGRADED; above: DOWN.
        assert_eq!(status(counts(70, 0, 30, 0)), Status::Degraded);
        assert_eq!(status(counts(50, 0, 25, 25)), Status::Degraded);
        assert_eq!(status(counts(49, 0, 51, 0)), Status::Down);
        // Errors are not declines: 29% errors with every answer approved.
        assert_eq!(status(counts(71, 0, 29, 0)), Status::Healthy);
    }

    #[test]
    fn reasons_name_the_configured_thresholds() {
        let t = Thresholds::default();
        assert_eq!(
            t.reason(Rule::VeryLowAuthorizationRate),
            "Very low authorization rate (<30%)"
        );
        assert_eq!(
            t.reason(Rule::ElevatedErrorRate),
            "Elevated error/timeout rate (>=30%)"
        );
        assert_eq!(
            t.reason(Rule::LowAuthorizationRate),
            "Low authorization rate (<65%)"
        );
        let custom = Thresholds {
            down_error_above: 0.425,
            ..t
        };
        assert_eq!(
            custom.reason(Rule::HighErrorRate),
            "High error/timeout rate (>42.5%)"
        );
    }

    #[test]
    fn statuses_are_ordered_from_best_to_worst() {
        assert!(Status::Healthy.is_better_than(Status::Degraded));
        assert!(Status::Degraded.is_better_than(Status::Down));
        assert_eq!(serde_json::to_string(&Status::Down).unwrap(), "\"DOWN\"");
    }
}
