//! Anomaly detection: a processor whose authorization rate falls, or whose
//! error/timeout rate rises, sharply against its own recent baseline, even
//! while the status table still says HEALTHY (95% approved falling to 70% is
//! news although 70% is above the 65% threshold).
//!
//! Method: for each rate, two exponentially weighted moving averages of the
//! per-transaction indicator (1 = approved, or 1 = error/timeout): a fast one
//! (`fast_alpha`, about the last 20 transactions) is "now", a slow one
//! (`slow_alpha`, about the last 200) is the baseline. Both start as plain
//! running means (the weight is `max(alpha, 1/n)`), so the first samples do
//! not bias them. After `warmup` samples, an anomaly fires when the fast mean
//! departs from the baseline in the harmful direction by at least `min_delta`
//! *and* by at least `z` standard deviations of the fast mean, the deviation
//! of an EWMA of Bernoulli draws being `sqrt(p (1 - p) a / (2 - a))` with `p`
//! the baseline (clamped to [0.02, 0.98] so that a perfect baseline does not
//! make every blip significant). One alert per episode: the detector re-arms
//! once the deviation is back under half of `min_delta`.

use serde::{Deserialize, Serialize};

use super::Outcome;
use super::status::percent;

/// The detector's parameters; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnomalyConfig {
    pub enabled: bool,
    /// Weight of a new transaction in the fast ("now") average.
    pub fast_alpha: f64,
    /// Weight of a new transaction in the slow (baseline) average.
    pub slow_alpha: f64,
    /// Standard deviations of the fast average a departure must exceed.
    pub z: f64,
    /// The smallest departure (absolute, as a fraction) worth an alert.
    pub min_delta: f64,
    /// Samples a rate needs before it can raise an alert.
    pub warmup: u32,
}

impl Default for AnomalyConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            fast_alpha: 0.05,
            slow_alpha: 0.005,
            z: 3.0,
            min_delta: 0.10,
            warmup: 100,
        }
    }
}

/// Which rate departed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    AuthorizationRate,
    ErrorRate,
}

/// A departure from the baseline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Anomaly {
    pub metric: Metric,
    /// The fast average.
    pub current: f64,
    /// The slow average.
    pub baseline: f64,
    /// The departure in standard deviations of the fast average.
    pub z: f64,
}

impl Anomaly {
    /// The alert's reason.
    pub fn reason(&self) -> String {
        match self.metric {
            Metric::AuthorizationRate => format!(
                "Anomaly: authorization rate fell to {}% from a baseline of {}%",
                percent(self.current),
                percent(self.baseline)
            ),
            Metric::ErrorRate => format!(
                "Anomaly: error/timeout rate rose to {}% from a baseline of {}%",
                percent(self.current),
                percent(self.baseline)
            ),
        }
    }
}

/// Fast and slow averages of one indicator.
#[derive(Debug, Clone, Copy)]
struct Averages {
    fast: f64,
    slow: f64,
    samples: u32,
    armed: bool,
}

impl Default for Averages {
    fn default() -> Self {
        Self {
            fast: 0.0,
            slow: 0.0,
            samples: 0,
            armed: true,
        }
    }
}

impl Averages {
    fn update(&mut self, x: f64, config: &AnomalyConfig) {
        self.samples = self.samples.saturating_add(1);
        let running = 1.0 / f64::from(self.samples);
        self.fast += config.fast_alpha.max(running) * (x - self.fast);
        self.slow += config.slow_alpha.max(running) * (x - self.slow);
    }

    /// `harm` is +1 when a rise is harmful, -1 when a fall is.
    fn check(&mut self, harm: f64, metric: Metric, config: &AnomalyConfig) -> Option<Anomaly> {
        let deviation = harm * (self.fast - self.slow);
        if deviation < config.min_delta / 2.0 {
            self.armed = true;
        }
        if self.samples < config.warmup || !self.armed {
            return None;
        }
        let p = self.slow.clamp(0.02, 0.98);
        let a = config.fast_alpha;
        let sigma = (p * (1.0 - p) * a / (2.0 - a)).sqrt();
        let z = deviation / sigma;
        if deviation >= config.min_delta && z >= config.z {
            self.armed = false;
            return Some(Anomaly {
                metric,
                current: self.fast,
                baseline: self.slow,
                z,
            });
        }
        None
    }
}

/// One processor's detector.
#[derive(Debug, Clone, Copy, Default)]
pub struct AnomalyDetector {
    authorization: Averages,
    errors: Averages,
}

impl AnomalyDetector {
    /// Takes one outcome in; returns a departure if this outcome revealed one.
    pub fn observe(&mut self, outcome: Outcome, config: &AnomalyConfig) -> Option<Anomaly> {
        if !config.enabled {
            return None;
        }
        let failed = matches!(outcome, Outcome::Error | Outcome::Timeout);
        self.errors.update(if failed { 1.0 } else { 0.0 }, config);
        let mut found = self.errors.check(1.0, Metric::ErrorRate, config);
        if !failed {
            let approved = outcome == Outcome::Approved;
            self.authorization
                .update(if approved { 1.0 } else { 0.0 }, config);
            let auth = self
                .authorization
                .check(-1.0, Metric::AuthorizationRate, config);
            found = found.or(auth);
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` outcomes where every `every`-th one is `odd` and the rest `usual`.
    fn feed(
        d: &mut AnomalyDetector,
        n: usize,
        every: usize,
        odd: Outcome,
        usual: Outcome,
    ) -> Vec<Anomaly> {
        let config = AnomalyConfig::default();
        (0..n)
            .filter_map(|i| {
                let o = if every > 0 && i % every == 0 {
                    odd
                } else {
                    usual
                };
                d.observe(o, &config)
            })
            .collect()
    }

    #[test]
    fn a_steady_processor_raises_nothing() {
        let mut d = AnomalyDetector::default();
        // 80% approved, forever.
        let found = feed(&mut d, 2_000, 5, Outcome::Declined, Outcome::Approved);
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn a_sharp_fall_inside_the_thresholds_raises_one_alert() {
        let mut d = AnomalyDetector::default();
        // 95% approved, then 70%: still HEALTHY by the table.
        assert!(feed(&mut d, 400, 20, Outcome::Declined, Outcome::Approved).is_empty());
        let mut found = Vec::new();
        for _ in 0..20 {
            for o in [
                Outcome::Declined,
                Outcome::Approved,
                Outcome::Approved,
                Outcome::Declined,
                Outcome::Approved,
                Outcome::Approved,
                Outcome::Approved,
                Outcome::Declined,
                Outcome::Approved,
                Outcome::Approved,
            ] {
                found.extend(d.observe(o, &AnomalyConfig::default()));
            }
        }
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].metric, Metric::AuthorizationRate);
        assert!(
            found[0].baseline > 0.85 && found[0].current < 0.85,
            "{found:?}"
        );
        assert!(
            found[0]
                .reason()
                .starts_with("Anomaly: authorization rate fell to")
        );
    }

    #[test]
    fn a_rise_in_errors_raises_an_alert_and_rearms_after_recovery() {
        let mut d = AnomalyDetector::default();
        assert!(feed(&mut d, 300, 100, Outcome::Error, Outcome::Approved).is_empty());
        // 25% errors: below the 30% DEGRADED threshold, far above baseline.
        let found = feed(&mut d, 60, 4, Outcome::Error, Outcome::Approved);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].metric, Metric::ErrorRate);
        // Back to normal long enough to re-arm, then again.
        assert!(feed(&mut d, 300, 100, Outcome::Error, Outcome::Approved).is_empty());
        let again = feed(&mut d, 60, 4, Outcome::Error, Outcome::Approved);
        assert_eq!(again.len(), 1, "{again:?}");
    }

    #[test]
    fn improvements_and_the_warmup_raise_nothing() {
        let mut d = AnomalyDetector::default();
        // Terrible start (inside the warm-up), then excellent.
        assert!(feed(&mut d, 50, 1, Outcome::Error, Outcome::Approved).is_empty());
        assert!(feed(&mut d, 500, 0, Outcome::Approved, Outcome::Approved).is_empty());
    }

    #[test]
    fn a_disabled_detector_is_silent() {
        let mut d = AnomalyDetector::default();
        let config = AnomalyConfig {
            enabled: false,
            ..AnomalyConfig::default()
        };
        for _ in 0..500 {
            assert!(d.observe(Outcome::Approved, &config).is_none());
        }
        for _ in 0..100 {
            assert!(d.observe(Outcome::Error, &config).is_none());
        }
    }
}
