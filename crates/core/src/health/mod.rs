//! Processor health: what the outcomes of recent transactions say about each
//! processor, per segment (processor x payment method x country) and rolled
//! up per processor.
//!
//! Flow: an outcome ([`Outcome`]) enters [`HealthEngine::record`], lands in a
//! rolling [`window`] (last 50 transactions or last 10 minutes), the
//! [`status`] table turns the window's rates into HEALTHY / DEGRADED / DOWN
//! (no change below 10 transactions, a better status only past a margin), a
//! change becomes an [`Alert`] unless it is part of a flip-flop, which
//! [`flapping`] folds into one alert, and the [`anomaly`] detector watches
//! for sharp departures from the processor's own baseline: its rates, and its
//! latency (slowness is a signal of its own, outside the status table). Readers get reports, [`recommend`]ations ranked by the seed's
//! score, and, for the router, gates with half-open [`probation`] so that a
//! DOWN segment still gets trial payments and can recover; the router combines
//! those gates with the circuit breakers under the patience rule
//! ([`crate::Policy::choose_by`]).
//!
//! Pure: no I/O, no clock (`now` is an argument), no async. The engine is
//! `Sync` and locks per processor, so the server shares one across all
//! requests and workers.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub mod anomaly;
pub mod config;
pub mod engine;
pub mod flapping;
mod probation;
pub mod recommend;
mod report;
pub mod status;
mod tracker;
pub mod window;

pub use anomaly::{Anomaly, AnomalyConfig, Departures, Metric};
pub use config::{HealthConfig, HealthConfigError};
pub use engine::{
    Alert, AlertKind, HealthEngine, HealthReport, ProcessorReport, Recorded, SegmentKey,
    SegmentReport, Transaction, TransactionRecord,
};
pub use recommend::{Candidate, Ranked, Reason, Recommendation, Scope, Scoring};
pub use status::{Rule, Status, Thresholds, Verdict};
pub use window::{Counts, Latency, OutcomeWindow, Sample};

/// What became of one transaction at a processor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Authorized.
    Approved,
    /// Refused for a business reason (a decline counts against the
    /// authorization rate).
    Declined,
    /// A technical failure: definitely not processed.
    Error,
    /// No answer in time: maybe processed. A technical failure too.
    Timeout,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Approved => "approved",
            Outcome::Declined => "declined",
            Outcome::Error => "error",
            Outcome::Timeout => "timeout",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a result was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("result must be one of approved, declined, error, timeout")]
pub struct InvalidOutcome;

impl FromStr for Outcome {
    type Err = InvalidOutcome;

    /// The seed's lower-case words; case is ignored.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            Outcome::Approved,
            Outcome::Declined,
            Outcome::Error,
            Outcome::Timeout,
        ]
        .into_iter()
        .find(|o| o.as_str().eq_ignore_ascii_case(s.trim()))
        .ok_or(InvalidOutcome)
    }
}

#[cfg(test)]
mod tests;
