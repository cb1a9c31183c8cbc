//! Fault injection: the ways a processor misbehaves beyond the Rinha protocol.
//!
//! Every fault is off by default, so a simulator that nobody configures
//! behaves exactly like the reference processor. [`Faults`] says how often
//! each misbehaviour happens; [`Faults::roll`] turns one request into one
//! [`Fate`]; [`Controls`] holds a processor's adjustable settings (the Rinha
//! delay and failure flag plus the faults) and plays a timed [`ScheduleStep`]
//! list. Everything here is pure: time comes in as an argument, randomness as
//! an `Rng` (or, for even fates, a [`Dealer`] a processor keeps), so the
//! HTTP layer is the only place with effects.
//!
//! `fate` holds the rates and the roll, `schedule` the settings in force
//! and their timed changes.

mod fate;
mod schedule;

pub use fate::{Dealer, Fate, Faults, FaultsError};
pub use schedule::{
    Controls, ScheduleError, ScheduleState, ScheduleStep, Settings, validate_schedule,
};
