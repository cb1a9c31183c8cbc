//! The routing state shared by every worker and probe: one circuit breaker
//! per processor and the policy that reads them.
//!
//! Workers that must wait (everything down, or patience not yet run out) wait
//! on [`Breakers::changed`] as well as on a deadline, so a processor coming
//! back up releases the queue at once instead of at the next poll.

use std::sync::Mutex;

use reroute_core::{Circuit, CircuitConfig, Decision, Gate, Policy, Signal, Timestamp};
use tokio::sync::Notify;
use tokio::sync::futures::Notified;

pub struct Breakers {
    /// Indexed like the fee-ordered registry. One short lock per decision:
    /// the policy compares processors, so it needs them all at once.
    circuits: Mutex<Vec<Circuit>>,
    policy: Policy,
    changed: Notify,
}

impl Breakers {
    pub fn new(processors: usize, config: CircuitConfig, policy: Policy) -> Self {
        Self {
            circuits: Mutex::new(vec![Circuit::new(config); processors]),
            policy,
            changed: Notify::new(),
        }
    }

    fn circuits(&self) -> std::sync::MutexGuard<'_, Vec<Circuit>> {
        // A panic while holding this lock cannot leave a circuit half-updated
        // in a way that matters: every update is a plain assignment.
        self.circuits.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Where a fresh payment goes now (see [`Policy::choose`]).
    pub fn choose(&self, eligible: &[bool], accepted_at: Timestamp, now: Timestamp) -> Decision {
        self.policy
            .choose(&mut self.circuits(), eligible, accepted_at, now)
    }

    /// The gate of one processor, for payments pinned to it.
    pub fn claim(&self, processor: usize, now: Timestamp) -> Gate {
        self.circuits()[processor].claim(now)
    }

    pub fn is_up(&self, processor: usize) -> bool {
        self.circuits()[processor].is_up()
    }

    /// Feeds a signal in; wakes waiting workers when a processor comes back up.
    pub fn observe(&self, processor: usize, signal: Signal, now: Timestamp) {
        let (flipped, up) = {
            let mut circuits = self.circuits();
            let flipped = circuits[processor].observe(signal, now, rand::random::<f64>());
            (flipped, circuits[processor].is_up())
        };
        if flipped {
            if up {
                tracing::info!(processor, "processor is up");
                self.changed.notify_waiters();
            } else {
                tracing::warn!(processor, ?signal, "processor is down");
            }
        }
    }

    /// Resolves when some processor comes back up. Create it *before* reading
    /// the state it guards, so that no wake-up is missed in between.
    pub fn changed(&self) -> Notified<'_> {
        self.changed.notified()
    }
}
