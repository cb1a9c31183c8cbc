//! One window's health, as the engine keeps it: a [`Tracker`] holds the
//! rolling window, the status the table gave it, the half-open probation
//! gate and the alert damper, for one segment or for a processor's roll-up.
//! [`ProcessorState`] is everything the engine keeps about one processor
//! (behind that processor's own lock in [`super::HealthEngine`]): its
//! roll-up, its segments, its anomaly detector and its recent history.
//!
//! Flow: an outcome's [`Sample`] enters [`Tracker::observe`] (or a health
//! check's answer [`Tracker::check`]); out come the damper's notices, which
//! the engine turns into alerts, and whether the gate opened.

use std::collections::VecDeque;

use crate::Timestamp;

use super::anomaly::AnomalyDetector;
use super::config::HealthConfig;
use super::flapping::{Fold, Notice};
use super::probation::{Probation, Trials};
use super::recommend::Scope;
use super::report::{HealthReport, SegmentKey, TransactionRecord};
use super::status::{Rule, Status};
use super::window::{Counts, OutcomeWindow, Sample};

/// What one sample (or health check) did to a tracker.
#[derive(Default)]
pub(super) struct Observed {
    /// The alerts to raise, in order: the end of an episode, then a change.
    pub(super) notices: [Option<Notice>; 2],
    /// The window when it was judged.
    pub(super) counts: Counts,
    /// The gate opened.
    pub(super) opened: bool,
}

/// The window, status and gate of one segment or of a processor's roll-up.
#[derive(Debug, Clone)]
pub(super) struct Tracker {
    pub(super) window: OutcomeWindow,
    pub(super) status: Status,
    pub(super) since: Option<Timestamp>,
    /// Transactions since the last transition (for the recovery dwell).
    pub(super) observed: u32,
    pub(super) probation: Probation,
    /// The processor's health check says it is failing: DOWN until it
    /// passes again, whatever the window says (roll-ups only).
    pub(super) check_failing: bool,
    /// Which changes of `status` become alerts.
    pub(super) fold: Fold,
}

impl Tracker {
    pub(super) fn new(config: &HealthConfig) -> Self {
        Self {
            window: OutcomeWindow::new(config.window_size, config.window_age_ms),
            status: Status::Healthy,
            since: None,
            observed: 0,
            probation: Probation::default(),
            check_failing: false,
            fold: Fold::new(Status::Healthy),
        }
    }

    pub(super) fn trials(config: &HealthConfig) -> Trials {
        Trials {
            interval_ms: config.trial_interval_ms,
            close_after: config.trial_close_after,
        }
    }

    /// Takes a sample in: the status may change (worse at once, better
    /// after the dwell and past the margin), and the alert damper decides
    /// what to announce.
    pub(super) fn observe(
        &mut self,
        sample: Sample,
        config: &HealthConfig,
        now: Timestamp,
    ) -> Observed {
        if !self.window.push(sample) {
            return Observed::default();
        }
        self.observed = self.observed.saturating_add(1);
        let at = self.window.latest().unwrap_or(sample.at);
        let counts = self.window.counts_at(at);
        let settings = config.flap_settings();
        let settled = self.fold.on_quiet(self.status, at, &settings);
        let mut changed = None;
        if counts.total() >= config.min_transactions && !self.check_failing {
            let verdict = config.thresholds.classify(&counts);
            let leave = if verdict.status.is_better_than(self.status) {
                let cleared = config
                    .thresholds
                    .tightened(config.recovery_margin)
                    .classify(&counts);
                self.observed >= config.recovery_dwell && cleared.status.is_better_than(self.status)
            } else {
                verdict.status != self.status
            };
            if leave {
                let from = self.status;
                self.status = verdict.status;
                self.since = Some(sample.at);
                self.observed = 0;
                changed =
                    Some(
                        self.fold
                            .on_change(from, verdict.status, verdict.rule, at, &settings),
                    );
            }
        }
        let trials = Self::trials(config);
        let opened = match changed {
            Some(_) => self.probation.on_transition(self.status, now, trials),
            None => self
                .probation
                .on_outcome(self.status, sample.outcome, now, trials),
        };
        Observed {
            notices: [settled, changed.flatten()],
            counts,
            opened,
        }
    }

    /// Takes the processor's health-check answer in: failing forces DOWN
    /// (an outage the window cannot see when nothing is being sent), passing
    /// lifts that and leaves the status the window's, without the recovery
    /// dwell (the processor said so itself). An answer that changes nothing
    /// may still end a quiet flapping episode.
    pub(super) fn check(
        &mut self,
        failing: bool,
        config: &HealthConfig,
        now: Timestamp,
    ) -> Observed {
        let counts = self.counts(now);
        let quiet = |tracker: &mut Self| Observed {
            notices: [
                tracker
                    .fold
                    .on_quiet(tracker.status, now, &config.flap_settings()),
                None,
            ],
            counts,
            opened: false,
        };
        if failing == self.check_failing {
            return quiet(self);
        }
        self.check_failing = failing;
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
            return quiet(self);
        }
        self.status = to;
        self.since = Some(now);
        self.observed = 0;
        let opened = self.probation.on_transition(to, now, Self::trials(config));
        Observed {
            notices: [Some(self.fold.on_check(to, rule, now)), None],
            counts,
            opened,
        }
    }

    /// The instant a read at `now` evaluates the window at.
    pub(super) fn read_at(&self, now: Timestamp) -> Timestamp {
        self.window.latest().map_or(now, |l| l.max(now))
    }

    pub(super) fn counts(&self, now: Timestamp) -> Counts {
        self.window.counts_at(self.read_at(now))
    }

    pub(super) fn report(&self, now: Timestamp) -> HealthReport {
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
pub(super) struct Segment {
    pub(super) key: SegmentKey,
    pub(super) tracker: Tracker,
}

#[derive(Debug)]
pub(super) struct ProcessorState {
    pub(super) overall: Tracker,
    pub(super) segments: Vec<Segment>,
    pub(super) anomaly: AnomalyDetector,
    pub(super) recent: VecDeque<TransactionRecord>,
}

impl ProcessorState {
    pub(super) fn segment(&self, method: Option<&str>, country: Option<&str>) -> Option<&Segment> {
        self.segments
            .iter()
            .find(|s| s.key.matches(method, country))
    }

    /// The tracker whose health applies to a payment with these attributes:
    /// the segment's when it has enough data in its window, else the roll-up.
    pub(super) fn applicable(
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
