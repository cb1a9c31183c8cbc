//! The passive/active health state shared by every worker and probe: one
//! circuit breaker per processor, each behind its own lock. A worker's send
//! ([`crate::routing::gate`]) asks it before going out and feeds it the
//! answer; a probe feeds it what the health endpoint says.
//!
//! Workers that must wait (everything down, or patience not yet run out) wait
//! on [`Breakers::changed`] as well as on a deadline, so a processor coming
//! back up releases the queue at once instead of at the next poll.

use std::sync::Mutex;

use reroute_core::{Circuit, CircuitConfig, Gate, Signal, Timestamp};
use tokio::sync::Notify;
use tokio::sync::futures::Notified;

pub struct Breakers {
    /// Indexed like the fee-ordered registry.
    circuits: Vec<Mutex<Circuit>>,
    changed: Notify,
}

impl Breakers {
    pub fn new(processors: usize, config: CircuitConfig) -> Self {
        Self {
            circuits: (0..processors)
                .map(|_| Mutex::new(Circuit::new(config)))
                .collect(),
            changed: Notify::new(),
        }
    }

    fn circuit(&self, processor: usize) -> std::sync::MutexGuard<'_, Circuit> {
        // A panic while holding this lock cannot leave the circuit
        // half-updated in a way that matters: every update is an assignment.
        self.circuits[processor]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// The gate of one processor (taking its trial slot if one is due).
    pub fn claim(&self, processor: usize, now: Timestamp) -> Gate {
        self.circuit(processor).claim(now)
    }

    /// The gate of one processor, without taking a trial slot.
    pub fn peek(&self, processor: usize, now: Timestamp) -> Gate {
        self.circuit(processor).peek(now)
    }

    pub fn is_up(&self, processor: usize) -> bool {
        self.circuit(processor).is_up()
    }

    /// Feeds a signal in; wakes waiting workers when a processor comes back up.
    pub fn observe(&self, processor: usize, signal: Signal, now: Timestamp) {
        let (flipped, up) = {
            let mut circuit = self.circuit(processor);
            let flipped = circuit.observe(signal, now, rand::random::<f64>());
            (flipped, circuit.is_up())
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
