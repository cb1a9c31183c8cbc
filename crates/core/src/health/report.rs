//! The health engine's vocabulary: a [`Transaction`] as it comes in (from
//! the intelligence API or the router's workers), and what comes out of
//! [`super::HealthEngine`]: [`Alert`]s, [`HealthReport`]s per segment and
//! per processor, and the [`Recorded`] answer to one outcome.

use std::fmt;

use crate::{Money, ProcessorId, Timestamp};

use super::outcome::Outcome;
use super::status::Status;
use super::window::{Counts, Latency};

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
    pub(super) fn new(method: Option<&str>, country: Option<&str>) -> Self {
        Self {
            payment_method: method.map(str::to_ascii_uppercase),
            country: country.map(str::to_ascii_uppercase),
        }
    }

    pub(super) fn matches(&self, method: Option<&str>, country: Option<&str>) -> bool {
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
    /// The status changed (or settled after flapping).
    Transition,
    /// A rate or the latency departed from its baseline (or the latency
    /// returned to it); the status did not change.
    Anomaly,
    /// The status keeps changing back and forth; the changes are folded
    /// into this one alert until it settles (see [`super::flapping`]).
    Flapping,
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
