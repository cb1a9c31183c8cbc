//! The health engine: every transaction outcome goes in (reported by a
//! merchant through the intelligence API, or observed by the router's own
//! workers), and out come statuses per segment and per processor, alerts,
//! recommendations and the gates the router uses.
//!
//! Concurrency: each processor's state (its roll-up, its segments, its
//! anomaly detector and recent history) sits behind its own mutex, held for
//! the few hundred nanoseconds of one update or read; the alert log has its
//! own, taken only when an alert is raised or read. Nothing locks two
//! processors at once, so there is no global lock on the hot path and no
//! lock ordering to get wrong.
//!
//! Time: the caller passes `now` (the server's clock) and each transaction
//! carries its own instant `at` (now, or a replayed timestamp). A window is
//! evaluated at its newest transaction when recording, so replayed history
//! produces the transitions it produced then; reads evaluate at
//! `max(now, newest)`, so transactions age out of the 10-minute window as
//! time passes. A status only changes when a transaction is recorded.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};

use crate::circuit::Gate;
use crate::{Registry, Timestamp};

use super::anomaly::AnomalyDetector;
use super::config::HealthConfig;
use super::flapping::{Notice, seconds};
use super::recommend::{Candidate, Recommendation, rank};
use super::status::Status;
use super::tracker::{Observed, ProcessorState, Segment, Tracker};
use super::window::{Counts, Sample};

pub use super::report::{
    Alert, AlertKind, HealthReport, ProcessorReport, Recorded, SegmentKey, SegmentReport,
    Transaction, TransactionRecord,
};

/// See the module documentation.
pub struct HealthEngine {
    config: HealthConfig,
    registry: Registry,
    /// Indexed like the fee-ordered registry.
    processors: Vec<Mutex<ProcessorState>>,
    alerts: Mutex<AlertLog>,
}

struct AlertLog {
    next_id: u64,
    alerts: VecDeque<Alert>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every update under these locks leaves the state consistent between
    // statements (counts and samples change together), so a panic elsewhere
    // cannot leave it half-updated in a way that matters.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl HealthEngine {
    /// Every processor of `registry` starts HEALTHY with an empty window.
    /// `config` should have been validated.
    pub fn new(registry: &Registry, config: HealthConfig) -> Self {
        let processors = registry
            .by_fee()
            .iter()
            .map(|_| {
                Mutex::new(ProcessorState {
                    overall: Tracker::new(&config),
                    segments: Vec::new(),
                    anomaly: AnomalyDetector::default(),
                    recent: VecDeque::new(),
                })
            })
            .collect();
        Self {
            alerts: Mutex::new(AlertLog {
                next_id: 1,
                alerts: VecDeque::new(),
            }),
            config,
            registry: registry.clone(),
            processors,
        }
    }

    pub fn config(&self) -> &HealthConfig {
        &self.config
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    fn state(&self, processor: usize) -> MutexGuard<'_, ProcessorState> {
        lock(&self.processors[processor])
    }

    /// Records one outcome of the processor at `processor` (its index in the
    /// fee-ordered registry; panics if out of range). O(1) amortised, O(window)
    /// for an out-of-order timestamp.
    pub fn record(&self, processor: usize, tx: &Transaction<'_>, now: Timestamp) -> Recorded {
        let config = &self.config;
        let sample = Sample {
            at: tx.at,
            outcome: tx.outcome,
            latency_ms: tx.latency_ms,
        };
        let id = &self.registry.by_fee()[processor].id;
        let mut raised: Vec<Alert> = Vec::new();
        let alert = |segment, kind, from, to, reason, counts: Counts| Alert {
            id: 0,
            processor: id.clone(),
            segment,
            kind,
            from,
            to,
            at: tx.at,
            reason,
            authorization_rate: counts.authorization_rate(),
            error_rate: counts.error_rate(),
            transactions: counts.total(),
        };
        let announce = |raised: &mut Vec<Alert>, segment: Option<SegmentKey>, o: &Observed| {
            for notice in o.notices.iter().flatten() {
                raised.push(self.notice_alert(processor, segment.clone(), notice, o.counts, tx.at));
            }
        };
        let recorded = {
            let mut state = self.state(processor);
            let state = &mut *state;
            let mut segment_status = None;
            let mut opened = false;
            if tx.payment_method.is_some() || tx.country.is_some() {
                let existing = state
                    .segments
                    .iter()
                    .position(|s| s.key.matches(tx.payment_method, tx.country));
                let index = match existing {
                    Some(i) => Some(i),
                    None if state.segments.len() < config.max_segments => {
                        state.segments.push(Segment {
                            key: SegmentKey::new(tx.payment_method, tx.country),
                            tracker: Tracker::new(config),
                        });
                        Some(state.segments.len() - 1)
                    }
                    None => None,
                };
                if let Some(i) = index {
                    let segment = &mut state.segments[i];
                    let observed = segment.tracker.observe(sample, config, now);
                    announce(&mut raised, Some(segment.key.clone()), &observed);
                    opened |= observed.opened;
                    segment_status = Some(segment.tracker.status);
                }
            }
            let observed = state.overall.observe(sample, config, now);
            opened |= observed.opened;
            // Always fed, so that the baselines keep learning. A rate
            // anomaly is only news when no status change of the processor
            // says more and the processor is not already DOWN; slowness is
            // news whatever the status (the table cannot see it).
            let departures = state
                .anomaly
                .observe(tx.outcome, tx.latency_ms, &config.anomaly);
            let status = state.overall.status;
            let quiet = observed.notices.iter().all(Option::is_none);
            announce(&mut raised, None, &observed);
            let rate = departures.rate.filter(|_| quiet && status != Status::Down);
            for a in rate.into_iter().chain(departures.latency) {
                let counts = state.overall.counts(now);
                raised.push(alert(
                    None,
                    AlertKind::Anomaly,
                    status,
                    status,
                    a.reason(),
                    counts,
                ));
            }
            if config.history_size > 0 {
                if state.recent.len() >= config.history_size {
                    state.recent.pop_front();
                }
                let key = SegmentKey::new(tx.payment_method, tx.country);
                state.recent.push_back(TransactionRecord {
                    payment_method: key.payment_method,
                    country: key.country,
                    outcome: tx.outcome,
                    latency_ms: tx.latency_ms,
                    amount: tx.amount,
                    currency: tx.currency.map(str::to_ascii_uppercase),
                    at: tx.at,
                });
            }
            Recorded {
                status: state.overall.status,
                segment_status,
                alerts: Vec::new(),
                opened,
            }
        };
        if raised.is_empty() {
            return recorded;
        }
        self.log(&mut raised);
        Recorded {
            alerts: raised,
            ..recorded
        }
    }

    /// The alert a notice of the damper raises (numbered when logged).
    fn notice_alert(
        &self,
        processor: usize,
        segment: Option<SegmentKey>,
        notice: &Notice,
        counts: Counts,
        at: Timestamp,
    ) -> Alert {
        let reason = |rule| self.config.thresholds.reason(rule);
        let (kind, from, to, reason) = match *notice {
            Notice::Transition { from, to, rule } => {
                (AlertKind::Transition, from, to, reason(rule))
            }
            Notice::Flapping {
                from,
                to,
                transitions,
                span_ms,
            } => (
                AlertKind::Flapping,
                from,
                to,
                format!(
                    "Flapping in and out of DOWN: {transitions} transitions in {}; \
                     further changes are held until it settles",
                    seconds(span_ms)
                ),
            ),
            Notice::Settled {
                from,
                to,
                rule,
                transitions,
                span_ms,
            } => (
                AlertKind::Transition,
                from,
                to,
                format!(
                    "Settled at {to} after {transitions} transitions in {}: {}",
                    seconds(span_ms),
                    reason(rule)
                ),
            ),
        };
        Alert {
            id: 0,
            processor: self.registry.by_fee()[processor].id.clone(),
            segment,
            kind,
            from,
            to,
            at,
            reason,
            authorization_rate: counts.authorization_rate(),
            error_rate: counts.error_rate(),
            transactions: counts.total(),
        }
    }

    /// Numbers alerts and keeps them in the log.
    fn log(&self, raised: &mut [Alert]) {
        let mut log = lock(&self.alerts);
        for a in raised {
            a.id = log.next_id;
            log.next_id += 1;
            if log.alerts.len() >= self.config.alert_capacity {
                log.alerts.pop_front();
            }
            log.alerts.push_back(a.clone());
        }
    }

    /// Records the answer of the processor's own health check (see
    /// [`Tracker::check`]): a failing check holds the processor DOWN, with a
    /// transition alert, until a check passes. Only answers that change
    /// something raise an alert, except that a check in a quiet spell may
    /// end a flapping episode (the engine's only other chance to notice
    /// one has settled when no payment is sent). Segments keep their own
    /// windows' status.
    pub fn health_check(&self, processor: usize, failing: bool, now: Timestamp) -> Recorded {
        let mut state = self.state(processor);
        let observed = state.overall.check(failing, &self.config, now);
        let status = state.overall.status;
        drop(state);
        let mut alerts: Vec<Alert> = observed
            .notices
            .iter()
            .flatten()
            .map(|n| self.notice_alert(processor, None, n, observed.counts, now))
            .collect();
        self.log(&mut alerts);
        Recorded {
            status,
            segment_status: None,
            alerts,
            opened: observed.opened,
        }
    }

    /// A processor's health at `now`, rolled up and per segment.
    pub fn report(&self, processor: usize, now: Timestamp) -> ProcessorReport {
        let state = self.state(processor);
        ProcessorReport {
            processor,
            health: state.overall.report(now),
            segments: state
                .segments
                .iter()
                .map(|s| SegmentReport {
                    key: s.key.clone(),
                    health: s.tracker.report(now),
                })
                .collect(),
        }
    }

    /// Every processor's report, in the registry's fee order.
    pub fn reports(&self, now: Timestamp) -> Vec<ProcessorReport> {
        (0..self.processors.len())
            .map(|i| self.report(i, now))
            .collect()
    }

    /// The processor's status as a whole.
    pub fn status(&self, processor: usize) -> Status {
        self.state(processor).overall.status
    }

    /// Up to `limit` of the processor's most recent transactions, newest first.
    pub fn recent(&self, processor: usize, limit: usize) -> Vec<TransactionRecord> {
        self.state(processor)
            .recent
            .iter()
            .rev()
            .take(limit)
            .cloned()
            .collect()
    }

    /// Alerts raised at or after `since` (all kept alerts for `None`), in
    /// the order they were raised.
    pub fn alerts_since(&self, since: Option<Timestamp>) -> Vec<Alert> {
        lock(&self.alerts)
            .alerts
            .iter()
            .filter(|a| since.is_none_or(|s| a.at >= s))
            .cloned()
            .collect()
    }

    /// The processors supporting `method` in `country`, ranked. Each is
    /// judged on the segment's health when the segment has at least
    /// `min_transactions` in its window, else on the processor's.
    pub fn recommend(&self, method: &str, country: &str, now: Timestamp) -> Recommendation {
        let min = self.config.min_transactions;
        let candidates = self
            .registry
            .by_fee()
            .iter()
            .enumerate()
            .filter(|(_, p)| p.supports(Some(method), Some(country)))
            .map(|(index, _)| {
                let mut state = self.state(index);
                let (tracker, scope) = state.applicable(Some(method), Some(country), now, min);
                let counts = tracker.counts(now);
                Candidate {
                    processor: index,
                    status: tracker.status,
                    authorization_rate: counts.authorization_rate(),
                    error_rate: counts.error_rate(),
                    transactions: counts.total(),
                    scope,
                }
            })
            .collect();
        rank(candidates, &self.config.scoring)
    }

    /// Whether a payment with these attributes may be executed on this
    /// processor now, by health alone: `Go` unless the applicable health is
    /// DOWN, then one `Trial` per interval (see [`super::probation`]).
    /// Does not take the trial slot.
    pub fn gate(
        &self,
        processor: usize,
        method: Option<&str>,
        country: Option<&str>,
        now: Timestamp,
    ) -> Gate {
        self.with_applicable(processor, method, country, now, |tracker| {
            tracker.probation.peek(tracker.status, now)
        })
    }

    /// As [`HealthEngine::gate`], taking the trial slot when one is due.
    pub fn claim(
        &self,
        processor: usize,
        method: Option<&str>,
        country: Option<&str>,
        now: Timestamp,
    ) -> Gate {
        let trials = Tracker::trials(&self.config);
        self.with_applicable(processor, method, country, now, |tracker| {
            let status = tracker.status;
            tracker.probation.claim(status, now, trials)
        })
    }

    /// Runs `f` on the tracker whose health applies to a payment with these
    /// attributes (see [`ProcessorState::applicable`]), under the
    /// processor's lock.
    fn with_applicable<R>(
        &self,
        processor: usize,
        method: Option<&str>,
        country: Option<&str>,
        now: Timestamp,
        f: impl FnOnce(&mut Tracker) -> R,
    ) -> R {
        let min = self.config.min_transactions;
        let mut state = self.state(processor);
        let (tracker, _) = state.applicable(method, country, now, min);
        f(tracker)
    }

    /// The segment's own status, if the processor has seen that segment.
    pub fn segment_status(
        &self,
        processor: usize,
        method: Option<&str>,
        country: Option<&str>,
    ) -> Option<Status> {
        self.state(processor)
            .segment(method, country)
            .map(|s| s.tracker.status)
    }
}

#[cfg(test)]
mod tests;
