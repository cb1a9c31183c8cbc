//! Half-open recovery for DOWN processors that execute payments.
//!
//! A DOWN segment would never recover if no payment ever went to it again:
//! its window only changes when transactions arrive. So a DOWN segment is
//! *closed* (payments wait or go elsewhere) but hands out one trial payment
//! per `trial_interval_ms`. An approved trial opens it: payments flow again
//! and refill the window, and the status table decides when it is DEGRADED
//! or HEALTHY again. While it is still DOWN and open, `trial_close_after`
//! consecutive outcomes that are not approvals close it again.
//!
//! This is independent of the circuit breaker ([`crate::circuit`]), which
//! reacts to consecutive technical failures of a whole processor within
//! milliseconds; this reacts to a segment's rates over its window.

use crate::Timestamp;
use crate::circuit::Gate;

use super::outcome::Outcome;
use super::status::Status;

/// The gate of one health unit (segment or processor).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Probation {
    /// Payments may go; `misses` counts consecutive non-approvals while DOWN.
    Open { misses: u32 },
    /// Only a trial may go, from this instant.
    Closed { next_trial: Timestamp },
}

impl Default for Probation {
    fn default() -> Self {
        Probation::Open { misses: 0 }
    }
}

/// The settings the gate needs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Trials {
    pub interval_ms: i64,
    pub close_after: u32,
}

impl Probation {
    fn is_closed(&self) -> bool {
        matches!(self, Probation::Closed { .. })
    }

    /// The status changed: DOWN closes the gate, anything else opens it.
    /// Returns whether a closed gate opened.
    pub fn on_transition(&mut self, to: Status, now: Timestamp, trials: Trials) -> bool {
        let was_closed = self.is_closed();
        *self = match to {
            Status::Down => Probation::Closed {
                next_trial: now.plus_millis(trials.interval_ms),
            },
            _ => Probation::Open { misses: 0 },
        };
        was_closed && !self.is_closed()
    }

    /// An outcome arrived and the status stayed `status`. Returns whether a
    /// closed gate opened.
    pub fn on_outcome(
        &mut self,
        status: Status,
        outcome: Outcome,
        now: Timestamp,
        trials: Trials,
    ) -> bool {
        let was_closed = self.is_closed();
        if status != Status::Down {
            *self = Probation::Open { misses: 0 };
            return was_closed;
        }
        let approved = outcome == Outcome::Approved;
        *self = match *self {
            Probation::Closed { .. } if approved => Probation::Open { misses: 0 },
            closed @ Probation::Closed { .. } => closed,
            Probation::Open { .. } if approved => Probation::Open { misses: 0 },
            Probation::Open { misses } if misses + 1 >= trials.close_after => Probation::Closed {
                next_trial: now.plus_millis(trials.interval_ms),
            },
            Probation::Open { misses } => Probation::Open { misses: misses + 1 },
        };
        was_closed && !self.is_closed()
    }

    /// The gate at `now`, without taking the trial slot.
    pub fn peek(&self, status: Status, now: Timestamp) -> Gate {
        match *self {
            _ if status != Status::Down => Gate::Go,
            Probation::Open { .. } => Gate::Go,
            Probation::Closed { next_trial } if now >= next_trial => Gate::Trial,
            Probation::Closed { next_trial } => Gate::WaitUntil(next_trial),
        }
    }

    /// The gate at `now`, taking the trial slot if one is due.
    pub fn claim(&mut self, status: Status, now: Timestamp, trials: Trials) -> Gate {
        let gate = self.peek(status, now);
        if gate == Gate::Trial {
            *self = Probation::Closed {
                next_trial: now.plus_millis(trials.interval_ms),
            };
        }
        gate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRIALS: Trials = Trials {
        interval_ms: 1_000,
        close_after: 3,
    };

    fn t(ms: i64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    #[test]
    fn only_down_closes_the_gate() {
        let mut p = Probation::default();
        assert_eq!(p.peek(Status::Degraded, t(0)), Gate::Go);
        p.on_transition(Status::Down, t(0), TRIALS);
        assert_eq!(p.peek(Status::Down, t(10)), Gate::WaitUntil(t(1_000)));
        assert!(p.on_transition(Status::Degraded, t(20), TRIALS));
        assert_eq!(p.peek(Status::Degraded, t(20)), Gate::Go);
    }

    #[test]
    fn a_down_segment_gets_one_trial_per_interval() {
        let mut p = Probation::default();
        p.on_transition(Status::Down, t(0), TRIALS);
        assert_eq!(
            p.claim(Status::Down, t(999), TRIALS),
            Gate::WaitUntil(t(1_000))
        );
        assert_eq!(p.claim(Status::Down, t(1_000), TRIALS), Gate::Trial);
        assert_eq!(
            p.claim(Status::Down, t(1_001), TRIALS),
            Gate::WaitUntil(t(2_000))
        );
        // The trial failed: still closed until the next slot.
        p.on_outcome(Status::Down, Outcome::Error, t(1_050), TRIALS);
        assert_eq!(p.peek(Status::Down, t(1_500)), Gate::WaitUntil(t(2_000)));
        assert_eq!(p.claim(Status::Down, t(2_000), TRIALS), Gate::Trial);
    }

    #[test]
    fn an_approved_trial_opens_it_and_repeated_misses_close_it_again() {
        let mut p = Probation::default();
        p.on_transition(Status::Down, t(0), TRIALS);
        assert_eq!(p.claim(Status::Down, t(1_000), TRIALS), Gate::Trial);
        assert!(p.on_outcome(Status::Down, Outcome::Approved, t(1_010), TRIALS));
        assert_eq!(p.peek(Status::Down, t(1_011)), Gate::Go);
        p.on_outcome(Status::Down, Outcome::Error, t(1_020), TRIALS);
        p.on_outcome(Status::Down, Outcome::Approved, t(1_030), TRIALS);
        p.on_outcome(Status::Down, Outcome::Declined, t(1_040), TRIALS);
        p.on_outcome(Status::Down, Outcome::Timeout, t(1_050), TRIALS);
        assert_eq!(p.peek(Status::Down, t(1_060)), Gate::Go);
        assert!(!p.on_outcome(Status::Down, Outcome::Error, t(1_070), TRIALS));
        assert_eq!(p.peek(Status::Down, t(1_080)), Gate::WaitUntil(t(2_070)));
    }
}
