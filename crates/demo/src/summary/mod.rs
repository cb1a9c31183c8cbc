//! The end of the demo: what happened, in figures, and whether it is the story
//! the demo promises (the exit code says so). Pure: computed from the
//! [`History`](crate::watch::History) the observer kept and the counters read at the end.
//!
//! `findings` reads the history into milestones and problems; `report`
//! prints them with the totals.

mod findings;
mod report;

pub use findings::{Findings, ProcessorTotals, Reroute, SlowAct, Totals};
pub use report::Report;

#[cfg(test)]
mod tests;
