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
//!
//! Latency is the third signal, because a processor that answers in 2 s where
//! it used to answer in 3 ms is in trouble although every answer is an
//! approval (the status table, which is the seed's, cannot see it). "Now" is
//! the median of the last `latency_samples` latencies (a median, so that one
//! stray timeout is not an episode); the baseline is a slow EWMA
//! (`slow_alpha`) of that median, learnt only while no episode is open, so
//! that a long slowdown does not become the new normal and the episode ends
//! only when latency really returns. After `warmup` latencies, the processor
//! is *slow* when the median is at least `latency_factor` times the baseline
//! *and* at least `latency_min_ms` above it (3 ms to 6 ms is not news), and
//! back when the median no longer passes the same test with half the margins
//! (`(1 + factor) / 2` times, `min_ms / 2` above). Unlike the rates, a latency
//! episode reports both ends: one alert when it starts, one when it ends.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::outcome::Outcome;
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
    /// Samples a rate (or the latency) needs before it can raise an alert.
    pub warmup: u32,
    /// Latencies whose median is "now".
    pub latency_samples: usize,
    /// How many times its baseline the median must be to be slow.
    pub latency_factor: f64,
    /// How far above its baseline, in ms, the median must also be.
    pub latency_min_ms: u32,
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
            latency_samples: 20,
            latency_factor: 3.0,
            latency_min_ms: 100,
        }
    }
}

/// Which rate departed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    AuthorizationRate,
    ErrorRate,
    /// The median latency, in ms.
    Latency,
}

/// A departure from the baseline (or, for latency, its end).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Anomaly {
    pub metric: Metric,
    /// The fast average (latency: the recent median, in ms).
    pub current: f64,
    /// The slow average (latency: in ms).
    pub baseline: f64,
    /// The departure in standard deviations of the fast average (latency:
    /// the ratio of the median to the baseline).
    pub z: f64,
    /// The departure ended: the metric is back near its baseline.
    pub recovered: bool,
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
            Metric::Latency if self.recovered => format!(
                "Recovered: p50 latency {} ms, back near its baseline of {} ms",
                millis(self.current),
                millis(self.baseline)
            ),
            Metric::Latency => format!(
                "Anomaly: p50 latency {} ms against a baseline of {} ms",
                millis(self.current),
                millis(self.baseline)
            ),
        }
    }
}

/// `2010.0` -> `2,010`, `3.0` -> `3`, `0.44` -> `0.4`: whole milliseconds
/// with thousands separators, one decimal below 10 ms where it matters.
fn millis(ms: f64) -> String {
    let ms = ms.max(0.0);
    let tenths = (ms * 10.0).round();
    if ms < 10.0 && tenths % 10.0 != 0.0 {
        return format!("{:.1}", tenths / 10.0);
    }
    // Saturating: no latency of a u32 of milliseconds overflows a u64.
    let whole = ms.round() as u64;
    let digits = whole.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(d);
    }
    out
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
                recovered: false,
            });
        }
        None
    }
}

/// The recent latencies, their median and its baseline.
#[derive(Debug, Clone, Default)]
struct Latencies {
    recent: VecDeque<u32>,
    /// Reused to find the median without allocating on every transaction.
    scratch: Vec<u32>,
    baseline: f64,
    samples: u32,
    /// Slow now: the baseline is held until the median returns.
    slow: bool,
}

impl Latencies {
    /// Whether `median` departs from `baseline` by `factor` times and
    /// `min_ms`.
    fn departs(median: f64, baseline: f64, factor: f64, min_ms: f64) -> bool {
        median >= baseline * factor && median - baseline >= min_ms
    }

    fn observe(&mut self, ms: u32, config: &AnomalyConfig) -> Option<Anomaly> {
        let capacity = config.latency_samples.max(1);
        while self.recent.len() >= capacity {
            self.recent.pop_front();
        }
        self.recent.push_back(ms);
        self.samples = self.samples.saturating_add(1);
        let median = self.median();
        let anomaly = |recovered| Anomaly {
            metric: Metric::Latency,
            current: median,
            baseline: self.baseline,
            z: median / self.baseline.max(1.0),
            recovered,
        };
        let min_ms = f64::from(config.latency_min_ms);
        if self.slow {
            let half_factor = 1.0 + (config.latency_factor - 1.0) / 2.0;
            if !Self::departs(median, self.baseline, half_factor, min_ms / 2.0) {
                self.slow = false;
                return Some(anomaly(true));
            }
            return None;
        }
        if self.samples > config.warmup
            && Self::departs(median, self.baseline, config.latency_factor, min_ms)
        {
            self.slow = true;
            return Some(anomaly(false));
        }
        let running = 1.0 / f64::from(self.samples);
        self.baseline += config.slow_alpha.max(running) * (median - self.baseline);
        None
    }

    /// The median of the recent latencies (the upper one of an even count).
    fn median(&mut self) -> f64 {
        self.scratch.clear();
        self.scratch.extend(self.recent.iter().copied());
        let middle = self.scratch.len() / 2;
        if middle >= self.scratch.len() {
            return 0.0;
        }
        let (_, m, _) = self.scratch.select_nth_unstable(middle);
        f64::from(*m)
    }
}

/// What one outcome revealed.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Departures {
    /// The authorization or error rate departed from its baseline.
    pub rate: Option<Anomaly>,
    /// The latency left its baseline, or returned to it.
    pub latency: Option<Anomaly>,
}

/// One processor's detector.
#[derive(Debug, Clone, Default)]
pub struct AnomalyDetector {
    authorization: Averages,
    errors: Averages,
    latency: Latencies,
}

impl AnomalyDetector {
    /// Takes one outcome and its latency (when known) in; returns what
    /// this transaction revealed.
    pub fn observe(
        &mut self,
        outcome: Outcome,
        latency_ms: Option<u32>,
        config: &AnomalyConfig,
    ) -> Departures {
        if !config.enabled {
            return Departures::default();
        }
        Departures {
            rate: self.rates(outcome, config),
            latency: latency_ms.and_then(|ms| self.latency.observe(ms, config)),
        }
    }

    fn rates(&mut self, outcome: Outcome, config: &AnomalyConfig) -> Option<Anomaly> {
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
                d.observe(o, None, &config).rate
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
                found.extend(d.observe(o, None, &AnomalyConfig::default()).rate);
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
            assert_eq!(
                d.observe(Outcome::Approved, Some(1), &config),
                Departures::default()
            );
        }
        for _ in 0..100 {
            assert_eq!(
                d.observe(Outcome::Error, Some(5_000), &config),
                Departures::default()
            );
        }
    }

    /// Feeds `n` latencies from `ms(i)`, all approved; returns the latency
    /// alerts.
    fn latencies(d: &mut AnomalyDetector, n: u32, ms: impl Fn(u32) -> u32) -> Vec<Anomaly> {
        let config = AnomalyConfig::default();
        (0..n)
            .filter_map(|i| d.observe(Outcome::Approved, Some(ms(i)), &config).latency)
            .collect()
    }

    #[test]
    fn a_processor_slowing_from_1_ms_to_2000_ms_is_slow_once_and_back_once() {
        let mut d = AnomalyDetector::default();
        assert!(latencies(&mut d, 300, |i| 1 + i % 3).is_empty());
        let slow = latencies(&mut d, 400, |i| 2_000 + i % 20);
        let [alert] = slow.as_slice() else {
            panic!("one slowness alert: {slow:?}");
        };
        assert_eq!(alert.metric, Metric::Latency);
        assert!(!alert.recovered);
        assert!(
            alert.current >= 2_000.0 && alert.baseline < 3.0,
            "{alert:?}"
        );
        assert!(
            alert.reason().starts_with("Anomaly: p50 latency 2,0"),
            "{}",
            alert.reason()
        );
        assert!(
            alert.reason().ends_with("against a baseline of 2 ms"),
            "{}",
            alert.reason()
        );
        // The baseline was held while slow: it is still about 2 ms.
        let back = latencies(&mut d, 300, |i| 1 + i % 3);
        let [alert] = back.as_slice() else {
            panic!("one recovery alert: {back:?}");
        };
        assert!(alert.recovered);
        assert!(alert.baseline < 3.0, "{alert:?}");
        assert!(alert.current <= 3.0, "{alert:?}");
        assert!(
            alert.reason().starts_with("Recovered: p50 latency ")
                && alert
                    .reason()
                    .ends_with(" ms, back near its baseline of 2 ms"),
            "{}",
            alert.reason()
        );
        // And it can happen again.
        assert_eq!(latencies(&mut d, 100, |_| 2_000).len(), 1);
    }

    #[test]
    fn stray_timeouts_and_small_rises_are_not_slowness() {
        let mut d = AnomalyDetector::default();
        // One answer in ten takes 5 s: the median does not move.
        let stray = latencies(&mut d, 1_000, |i| if i % 10 == 0 { 5_000 } else { 3 });
        assert!(stray.is_empty(), "{stray:?}");
        // 3 ms to 30 ms is ten times slower but not 100 ms slower.
        assert!(latencies(&mut d, 500, |_| 30).is_empty());
    }

    #[test]
    fn latency_is_not_judged_during_the_warmup() {
        let mut d = AnomalyDetector::default();
        assert!(latencies(&mut d, 50, |_| 1).is_empty());
        assert!(latencies(&mut d, 50, |_| 2_000).is_empty());
    }

    #[test]
    fn milliseconds_read_as_an_operator_writes_them() {
        assert_eq!(millis(2_010.0), "2,010");
        assert_eq!(millis(1_234_567.4), "1,234,567");
        assert_eq!(millis(3.0), "3");
        assert_eq!(millis(0.44), "0.4");
        assert_eq!(millis(999.6), "1,000");
    }
}
