//! The rolling window of one segment's (or one processor's) outcomes: the
//! most recent `capacity` transactions, of which only those no older than
//! `max_age_ms` count ("last 50 transactions or last 10 minutes", whichever
//! is fewer).
//!
//! Samples are kept ordered by their own timestamp, so a client replaying
//! history slightly out of order still gets the right window. Counts are kept
//! incrementally for the whole ring; reading them at an instant subtracts the
//! expired prefix, so a write is O(1) amortised (O(window) only for an
//! out-of-order insert) and a read is O(expired) <= O(window), with no
//! allocation.

use std::collections::VecDeque;

use super::outcome::Outcome;
use crate::Timestamp;

/// One observed transaction, as the window keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    pub at: Timestamp,
    pub outcome: Outcome,
    /// How long the processor took to answer, when known.
    pub latency_ms: Option<u32>,
}

/// Outcome counts of a window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub approved: u32,
    pub declined: u32,
    pub errors: u32,
    pub timeouts: u32,
}

impl Counts {
    fn slot(&mut self, outcome: Outcome) -> &mut u32 {
        match outcome {
            Outcome::Approved => &mut self.approved,
            Outcome::Declined => &mut self.declined,
            Outcome::Error => &mut self.errors,
            Outcome::Timeout => &mut self.timeouts,
        }
    }

    pub fn add(&mut self, outcome: Outcome) {
        *self.slot(outcome) += 1;
    }

    fn remove(&mut self, outcome: Outcome) {
        let slot = self.slot(outcome);
        *slot = slot.saturating_sub(1);
    }

    pub fn total(&self) -> u32 {
        self.approved + self.declined + self.errors + self.timeouts
    }

    /// Technical failures: errors and timeouts (never declines).
    pub fn failures(&self) -> u32 {
        self.errors + self.timeouts
    }

    /// `approved / (approved + declined)`; `None` when nothing was decided
    /// (errors and timeouts are not declines).
    pub fn authorization_rate(&self) -> Option<f64> {
        let decided = self.approved + self.declined;
        (decided > 0).then(|| f64::from(self.approved) / f64::from(decided))
    }

    /// `(errors + timeouts) / total`; `None` for an empty window.
    pub fn error_rate(&self) -> Option<f64> {
        let total = self.total();
        (total > 0).then(|| f64::from(self.failures()) / f64::from(total))
    }
}

/// Latency percentiles of a window, in milliseconds (nearest rank).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Latency {
    pub p50: u32,
    pub p95: u32,
    pub p99: u32,
    /// How many samples had a latency.
    pub samples: u32,
}

/// The last `capacity` samples in timestamp order, with running counts.
#[derive(Debug, Clone)]
pub struct OutcomeWindow {
    capacity: usize,
    max_age_ms: i64,
    samples: VecDeque<Sample>,
    counts: Counts,
}

impl OutcomeWindow {
    /// `capacity` of at least 1 (a smaller one is raised to 1).
    pub fn new(capacity: usize, max_age_ms: i64) -> Self {
        let capacity = capacity.max(1);
        Self {
            capacity,
            max_age_ms,
            samples: VecDeque::with_capacity(capacity.min(1024)),
            counts: Counts::default(),
        }
    }

    /// Adds a sample in timestamp order (after any sample with the same
    /// timestamp) and evicts the oldest beyond capacity. Returns `false`, and
    /// changes nothing, when the window is full and the sample is older than
    /// all of it: it is not among the most recent.
    pub fn push(&mut self, sample: Sample) -> bool {
        let full = self.samples.len() >= self.capacity;
        if full && self.samples.front().is_some_and(|f| sample.at < f.at) {
            return false;
        }
        // Usually the newest: one comparison from the back.
        let position = self
            .samples
            .iter()
            .rposition(|s| s.at <= sample.at)
            .map_or(0, |i| i + 1);
        self.samples.insert(position, sample);
        self.counts.add(sample.outcome);
        if self.samples.len() > self.capacity
            && let Some(evicted) = self.samples.pop_front()
        {
            self.counts.remove(evicted.outcome);
        }
        true
    }

    /// The newest sample's timestamp.
    pub fn latest(&self) -> Option<Timestamp> {
        self.samples.back().map(|s| s.at)
    }

    /// The oldest instant still inside the window when read at `at`.
    fn horizon(&self, at: Timestamp) -> Timestamp {
        at.plus_millis(-self.max_age_ms)
    }

    /// Number of leading samples too old to count at `at`.
    fn expired(&self, at: Timestamp) -> usize {
        let horizon = self.horizon(at);
        self.samples.partition_point(|s| s.at < horizon)
    }

    /// The counts of the samples that are no older than the maximum age at
    /// `at`.
    pub fn counts_at(&self, at: Timestamp) -> Counts {
        let mut counts = self.counts;
        for s in self.samples.iter().take(self.expired(at)) {
            counts.remove(s.outcome);
        }
        counts
    }

    /// The samples that count at `at`, oldest first.
    pub fn live(&self, at: Timestamp) -> impl Iterator<Item = &Sample> {
        self.samples.iter().skip(self.expired(at))
    }

    /// Latency percentiles of the samples that count at `at` and have one.
    pub fn latency_at(&self, at: Timestamp) -> Option<Latency> {
        let mut ms: Vec<u32> = self.live(at).filter_map(|s| s.latency_ms).collect();
        if ms.is_empty() {
            return None;
        }
        ms.sort_unstable();
        let rank = |q: f64| {
            let n = ms.len();
            let index = ((q * n as f64).ceil() as usize).clamp(1, n) - 1;
            ms[index]
        };
        Some(Latency {
            p50: rank(0.50),
            p95: rank(0.95),
            p99: rank(0.99),
            samples: u32::try_from(ms.len()).unwrap_or(u32::MAX),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample(ms: i64, outcome: Outcome) -> Sample {
        Sample {
            at: Timestamp::from_millis(ms),
            outcome,
            latency_ms: None,
        }
    }

    const MIN: i64 = 60_000;

    #[test]
    fn only_the_last_50_transactions_count() {
        let mut w = OutcomeWindow::new(50, 10 * MIN);
        for i in 0..30 {
            w.push(sample(i, Outcome::Error));
        }
        for i in 30..80 {
            w.push(sample(i, Outcome::Approved));
        }
        let c = w.counts_at(Timestamp::from_millis(80));
        assert_eq!(c.total(), 50);
        assert_eq!((c.approved, c.errors), (50, 0));
    }

    #[test]
    fn transactions_older_than_10_minutes_do_not_count() {
        let mut w = OutcomeWindow::new(50, 10 * MIN);
        for i in 0..20 {
            w.push(sample(i * 1_000, Outcome::Declined));
        }
        w.push(sample(11 * MIN, Outcome::Approved));
        // At 11 min, samples before 1 min are older than 10 minutes.
        let c = w.counts_at(Timestamp::from_millis(11 * MIN));
        assert_eq!((c.declined, c.approved), (0, 1));
        // Exactly 10 minutes old still counts.
        let c = w.counts_at(Timestamp::from_millis(10 * MIN + 19_000));
        assert_eq!(c.declined, 1);
    }

    #[test]
    fn rates_follow_the_seed_definitions() {
        let c = Counts {
            approved: 39,
            declined: 8,
            errors: 2,
            timeouts: 1,
        };
        assert_eq!(c.total(), 50);
        assert!((c.authorization_rate().unwrap() - 39.0 / 47.0).abs() < 1e-12);
        assert!((c.error_rate().unwrap() - 0.06).abs() < 1e-12);
        assert_eq!(Counts::default().authorization_rate(), None);
        assert_eq!(Counts::default().error_rate(), None);
        let only_errors = Counts {
            errors: 3,
            ..Counts::default()
        };
        assert_eq!(only_errors.authorization_rate(), None);
        assert_eq!(only_errors.error_rate(), Some(1.0));
    }

    #[test]
    fn out_of_order_samples_land_in_time_order() {
        let mut w = OutcomeWindow::new(3, MIN);
        w.push(sample(10, Outcome::Approved));
        w.push(sample(30, Outcome::Approved));
        w.push(sample(20, Outcome::Declined));
        assert_eq!(
            w.live(Timestamp::from_millis(30))
                .map(|s| s.at.millis())
                .collect::<Vec<_>>(),
            [10, 20, 30]
        );
        // Full, and older than everything: not among the last 3.
        assert!(!w.push(sample(5, Outcome::Error)));
        assert!(w.push(sample(15, Outcome::Error)));
        assert_eq!(w.counts_at(Timestamp::from_millis(30)).errors, 1);
        assert_eq!(w.counts_at(Timestamp::from_millis(30)).total(), 3);
    }

    #[test]
    fn latency_percentiles_use_nearest_rank() {
        let mut w = OutcomeWindow::new(200, MIN);
        for i in 1..=100 {
            w.push(Sample {
                at: Timestamp::from_millis(i),
                outcome: Outcome::Approved,
                latency_ms: Some(i as u32),
            });
        }
        w.push(sample(101, Outcome::Approved));
        let l = w.latency_at(Timestamp::from_millis(101)).unwrap();
        assert_eq!((l.p50, l.p95, l.p99, l.samples), (50, 95, 99, 100));
        assert_eq!(OutcomeWindow::new(5, MIN).latency_at(Timestamp::MIN), None);
    }

    fn outcome() -> impl Strategy<Value = Outcome> {
        prop_oneof![
            Just(Outcome::Approved),
            Just(Outcome::Declined),
            Just(Outcome::Error),
            Just(Outcome::Timeout),
        ]
    }

    proptest! {
        /// The window equals the model: every sample ever pushed, stably
        /// sorted by time, the last `capacity` of them, minus the expired.
        #[test]
        fn window_counts_match_a_brute_force_model(
            capacity in 1usize..60,
            max_age in 1i64..5_000,
            pushes in proptest::collection::vec((0i64..10_000, outcome()), 0..200),
            read_offset in 0i64..6_000,
        ) {
            let mut w = OutcomeWindow::new(capacity, max_age);
            let mut all: Vec<Sample> = Vec::new();
            for (at, outcome) in &pushes {
                let s = sample(*at, *outcome);
                w.push(s);
                all.push(s);
            }
            all.sort_by_key(|s| s.at); // stable: equal times keep push order
            let kept = &all[all.len().saturating_sub(capacity)..];
            let read_at = Timestamp::from_millis(
                kept.last().map_or(0, |s| s.at.millis()) + read_offset,
            );
            let horizon = read_at.millis() - max_age;
            let mut want = Counts::default();
            for s in kept.iter().filter(|s| s.at.millis() >= horizon) {
                want.add(s.outcome);
            }
            prop_assert_eq!(w.counts_at(read_at), want);
            prop_assert_eq!(w.live(read_at).count() as u32, want.total());
            prop_assert!(w.counts_at(read_at).total() as usize <= capacity);
            prop_assert_eq!(w.latest(), kept.last().map(|s| s.at));
        }

        #[test]
        fn rates_stay_within_zero_and_one(a in 0u32..1000, d in 0u32..1000, e in 0u32..1000, t in 0u32..1000) {
            let c = Counts { approved: a, declined: d, errors: e, timeouts: t };
            for rate in [c.authorization_rate(), c.error_rate()].into_iter().flatten() {
                prop_assert!((0.0..=1.0).contains(&rate));
            }
            prop_assert_eq!(c.authorization_rate().is_some(), a + d > 0);
        }
    }
}
