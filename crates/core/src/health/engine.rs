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
use std::fmt;
use std::sync::{Mutex, MutexGuard};

use crate::circuit::Gate;
use crate::{Money, ProcessorId, Registry, Timestamp};

use super::Outcome;
use super::anomaly::AnomalyDetector;
use super::config::HealthConfig;
use super::probation::{Probation, Trials};
use super::recommend::{Candidate, Recommendation, Scope, rank};
use super::status::{Rule, Status};
use super::window::{Counts, Latency, OutcomeWindow, Sample};

/// One transaction outcome, as recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transaction<'a> {
    pub payment_method: Option<&'a str>,
    pub country: Option<&'a str>,
    pub outcome: Outcome,
    pub latency_ms: Option<u32>,
    pub amount: Option<Money>,
    pub currency: Option<&'a str>,
    /// When it happened.
    pub at: Timestamp,
}

impl<'a> Transaction<'a> {
    /// An outcome with no attributes, at `at`.
    pub fn new(outcome: Outcome, at: Timestamp) -> Self {
        Self {
            payment_method: None,
            country: None,
            outcome,
            latency_ms: None,
            amount: None,
            currency: None,
            at,
        }
    }
}

/// A segment's attributes, upper-cased. `None` is "not given".
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SegmentKey {
    pub payment_method: Option<String>,
    pub country: Option<String>,
}

impl SegmentKey {
    fn new(method: Option<&str>, country: Option<&str>) -> Self {
        Self {
            payment_method: method.map(str::to_ascii_uppercase),
            country: country.map(str::to_ascii_uppercase),
        }
    }

    fn matches(&self, method: Option<&str>, country: Option<&str>) -> bool {
        let same = |mine: &Option<String>, theirs: Option<&str>| match (mine, theirs) {
            (None, None) => true,
            (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
            _ => false,
        };
        same(&self.payment_method, method) && same(&self.country, country)
    }
}

impl fmt::Display for SegmentKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let method = self.payment_method.as_deref().unwrap_or("*");
        let country = self.country.as_deref().unwrap_or("*");
        write!(f, "{method}/{country}")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertKind {
    /// The status changed.
    Transition,
    /// A rate departed from its baseline; the status did not change.
    Anomaly,
}

/// A status transition (or an anomaly), with the rule that fired.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// Increasing in the order alerts were raised.
    pub id: u64,
    pub processor: ProcessorId,
    /// `None` for the processor as a whole.
    pub segment: Option<SegmentKey>,
    pub kind: AlertKind,
    pub from: Status,
    pub to: Status,
    pub at: Timestamp,
    pub reason: String,
    pub authorization_rate: Option<f64>,
    pub error_rate: Option<f64>,
    /// Transactions in the window when it fired.
    pub transactions: u32,
}

/// One transaction of a processor's recent history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionRecord {
    pub payment_method: Option<String>,
    pub country: Option<String>,
    pub outcome: Outcome,
    pub latency_ms: Option<u32>,
    pub amount: Option<Money>,
    pub currency: Option<String>,
    pub at: Timestamp,
}

/// A window's health as read.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthReport {
    pub status: Status,
    /// The last transition, if any.
    pub since: Option<Timestamp>,
    pub counts: Counts,
    pub latency: Option<Latency>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SegmentReport {
    pub key: SegmentKey,
    pub health: HealthReport,
}

/// A processor's health, rolled up and per segment.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessorReport {
    /// Index in the fee-ordered registry.
    pub processor: usize,
    pub health: HealthReport,
    pub segments: Vec<SegmentReport>,
}

/// What recording a transaction did.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    /// The processor's status afterwards.
    pub status: Status,
    /// The segment's status afterwards (`None`: no segment attributes, or
    /// too many segments).
    pub segment_status: Option<Status>,
    /// Alerts this transaction raised.
    pub alerts: Vec<Alert>,
    /// This transaction reopened a DOWN segment's (or processor's) gate:
    /// payments waiting for it may go now.
    pub opened: bool,
}

/// A status change, before it becomes an alert.
struct Transition {
    from: Status,
    to: Status,
    rule: Rule,
    counts: Counts,
}

/// The window, status and gate of one segment or of a processor's roll-up.
#[derive(Debug, Clone)]
struct Tracker {
    window: OutcomeWindow,
    status: Status,
    since: Option<Timestamp>,
    /// Transactions since the last transition (for the recovery dwell).
    observed: u32,
    probation: Probation,
    /// The processor's health check says it is failing: DOWN until it
    /// passes again, whatever the window says (roll-ups only).
    check_failing: bool,
}

impl Tracker {
    fn new(config: &HealthConfig) -> Self {
        Self {
            window: OutcomeWindow::new(config.window_size, config.window_age_ms),
            status: Status::Healthy,
            since: None,
            observed: 0,
            probation: Probation::default(),
            check_failing: false,
        }
    }

    fn trials(config: &HealthConfig) -> Trials {
        Trials {
            interval_ms: config.trial_interval_ms,
            close_after: config.trial_close_after,
        }
    }

    /// Takes a sample in; returns the transition it caused, if any, and
    /// whether it opened the gate.
    fn observe(
        &mut self,
        sample: Sample,
        config: &HealthConfig,
        now: Timestamp,
    ) -> (Option<Transition>, bool) {
        if !self.window.push(sample) {
            return (None, false);
        }
        self.observed = self.observed.saturating_add(1);
        let at = self.window.latest().unwrap_or(sample.at);
        let counts = self.window.counts_at(at);
        let mut transition = None;
        if counts.total() >= config.min_transactions && !self.check_failing {
            let verdict = config.thresholds.classify(&counts);
            let improving = verdict.status.is_better_than(self.status);
            let held = self.observed >= config.recovery_dwell;
            if verdict.status != self.status && (!improving || held) {
                transition = Some(Transition {
                    from: self.status,
                    to: verdict.status,
                    rule: verdict.rule,
                    counts,
                });
                self.status = verdict.status;
                self.since = Some(sample.at);
                self.observed = 0;
            }
        }
        let trials = Self::trials(config);
        let opened = match &transition {
            Some(t) => self.probation.on_transition(t.to, now, trials),
            None => self
                .probation
                .on_outcome(self.status, sample.outcome, now, trials),
        };
        (transition, opened)
    }

    /// Takes the processor's health-check answer in: failing forces DOWN
    /// (an outage the window cannot see when nothing is being sent), passing
    /// lifts that and leaves the status the window's, without the recovery
    /// dwell (the processor said so itself). Returns the transition and
    /// whether the gate opened.
    fn check(
        &mut self,
        failing: bool,
        config: &HealthConfig,
        now: Timestamp,
    ) -> (Option<Transition>, bool) {
        if failing == self.check_failing {
            return (None, false);
        }
        self.check_failing = failing;
        let counts = self.counts(now);
        let (to, rule) = if failing {
            (Status::Down, Rule::HealthCheckFailing)
        } else if counts.total() >= config.min_transactions {
            let verdict = config.thresholds.classify(&counts);
            match verdict.status {
                Status::Healthy => (Status::Healthy, Rule::HealthCheckPassing),
                _ => (verdict.status, verdict.rule),
            }
        } else {
            (Status::Healthy, Rule::HealthCheckPassing)
        };
        if to == self.status {
            return (None, false);
        }
        let transition = Transition {
            from: self.status,
            to,
            rule,
            counts,
        };
        self.status = to;
        self.since = Some(now);
        self.observed = 0;
        let opened = self.probation.on_transition(to, now, Self::trials(config));
        (Some(transition), opened)
    }

    /// The instant a read at `now` evaluates the window at.
    fn read_at(&self, now: Timestamp) -> Timestamp {
        self.window.latest().map_or(now, |l| l.max(now))
    }

    fn counts(&self, now: Timestamp) -> Counts {
        self.window.counts_at(self.read_at(now))
    }

    fn report(&self, now: Timestamp) -> HealthReport {
        let at = self.read_at(now);
        HealthReport {
            status: self.status,
            since: self.since,
            counts: self.window.counts_at(at),
            latency: self.window.latency_at(at),
        }
    }
}

#[derive(Debug, Clone)]
struct Segment {
    key: SegmentKey,
    tracker: Tracker,
}

#[derive(Debug)]
struct ProcessorState {
    overall: Tracker,
    segments: Vec<Segment>,
    anomaly: AnomalyDetector,
    recent: VecDeque<TransactionRecord>,
}

impl ProcessorState {
    fn segment(&self, method: Option<&str>, country: Option<&str>) -> Option<&Segment> {
        self.segments
            .iter()
            .find(|s| s.key.matches(method, country))
    }

    /// The tracker whose health applies to a payment with these attributes:
    /// the segment's when it has enough data in its window, else the roll-up.
    fn applicable(
        &mut self,
        method: Option<&str>,
        country: Option<&str>,
        now: Timestamp,
        min: u32,
    ) -> (&mut Tracker, Scope) {
        let position = self
            .segments
            .iter()
            .position(|s| s.key.matches(method, country) && s.tracker.counts(now).total() >= min);
        match position {
            Some(i) => (&mut self.segments[i].tracker, Scope::Segment),
            None => (&mut self.overall, Scope::Processor),
        }
    }
}

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
        let transition =
            |segment, t: Transition| self.transition_alert(processor, segment, t, tx.at);
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
                    let (changed, segment_opened) = segment.tracker.observe(sample, config, now);
                    if let Some(t) = changed {
                        raised.push(transition(Some(segment.key.clone()), t));
                    }
                    opened |= segment_opened;
                    segment_status = Some(segment.tracker.status);
                }
            }
            let (changed, overall_opened) = state.overall.observe(sample, config, now);
            opened |= overall_opened;
            // Always fed, so that the baseline keeps learning; an anomaly is
            // only news when no transition says more and the processor is
            // not already DOWN.
            let anomaly = state.anomaly.observe(tx.outcome, &config.anomaly);
            match changed {
                Some(t) => raised.push(transition(None, t)),
                None if state.overall.status != Status::Down => {
                    if let Some(a) = anomaly {
                        let status = state.overall.status;
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
                }
                None => {}
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

    /// The alert a status change raises (numbered when logged).
    fn transition_alert(
        &self,
        processor: usize,
        segment: Option<SegmentKey>,
        t: Transition,
        at: Timestamp,
    ) -> Alert {
        Alert {
            id: 0,
            processor: self.registry.by_fee()[processor].id.clone(),
            segment,
            kind: AlertKind::Transition,
            from: t.from,
            to: t.to,
            at,
            reason: self.config.thresholds.reason(t.rule),
            authorization_rate: t.counts.authorization_rate(),
            error_rate: t.counts.error_rate(),
            transactions: t.counts.total(),
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
    /// something raise an alert. Segments keep their own windows' status.
    pub fn health_check(&self, processor: usize, failing: bool, now: Timestamp) -> Recorded {
        let mut state = self.state(processor);
        let (changed, opened) = state.overall.check(failing, &self.config, now);
        let status = state.overall.status;
        drop(state);
        let mut alerts: Vec<Alert> = changed
            .into_iter()
            .map(|t| self.transition_alert(processor, None, t, now))
            .collect();
        self.log(&mut alerts);
        Recorded {
            status,
            segment_status: None,
            alerts,
            opened,
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
        let min = self.config.min_transactions;
        let mut state = self.state(processor);
        let (tracker, _) = state.applicable(method, country, now, min);
        tracker.probation.peek(tracker.status, now)
    }

    /// As [`HealthEngine::gate`], taking the trial slot when one is due.
    pub fn claim(
        &self,
        processor: usize,
        method: Option<&str>,
        country: Option<&str>,
        now: Timestamp,
    ) -> Gate {
        let min = self.config.min_transactions;
        let trials = Tracker::trials(&self.config);
        let mut state = self.state(processor);
        let (tracker, _) = state.applicable(method, country, now, min);
        let status = tracker.status;
        tracker.probation.claim(status, now, trials)
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
