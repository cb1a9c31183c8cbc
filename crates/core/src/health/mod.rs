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

pub mod anomaly;
pub mod config;
pub mod engine;
pub mod flapping;
mod outcome;
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
pub use outcome::{InvalidOutcome, Outcome};
pub use recommend::{Candidate, Ranked, Reason, Recommendation, Scope, Scoring};
pub use status::{Rule, Status, Thresholds, Verdict};
pub use window::{Counts, Latency, OutcomeWindow, Sample};

#[cfg(test)]
mod tests;
