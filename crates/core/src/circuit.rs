//! Whether a processor may be sent payments right now: a circuit breaker fed
//! by attempt outcomes (passive) and health probes (active).
//!
//! `Up` lets every payment through. Enough consecutive failures (or a probe
//! that reports failing) make it `Down`: payments wait, and one trial attempt
//! is let through per backoff period (half-open), so a down processor is never
//! hammered. A successful trial or a healthy probe brings it back `Up` at once.
//! Pure: the caller passes `now` and the jitter.

use crate::Timestamp;

/// What a processor's attempt or probe told us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// The processor answered (approved, declined or "already processed").
    Answered,
    /// A definite failure (5xx, connection refused) or an unknown outcome
    /// (timeout, reset after sending).
    Failed,
    /// The health endpoint reports the processor healthy.
    ProbeHealthy,
    /// The health endpoint reports the processor failing.
    ProbeFailing,
}

/// Tuning of the breaker; the defaults suit processors answering in
/// milliseconds to seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CircuitConfig {
    /// Consecutive failures that take an `Up` processor `Down`.
    pub trip_after: u32,
    /// First wait before a trial attempt, in ms; doubles on each failed trial.
    pub base_backoff_ms: i64,
    /// The longest wait between trial attempts, in ms.
    pub max_backoff_ms: i64,
}

impl Default for CircuitConfig {
    fn default() -> Self {
        Self {
            trip_after: 3,
            base_backoff_ms: 100,
            max_backoff_ms: 2_000,
        }
    }
}

/// Whether a payment may go to this processor now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Up: send.
    Go,
    /// Down, but a trial is due: one payment may go.
    Trial,
    /// Down: nothing before this instant.
    WaitUntil(Timestamp),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Up,
    Down { next_trial: Timestamp },
}

/// One processor's breaker.
#[derive(Debug, Clone)]
pub struct Circuit {
    config: CircuitConfig,
    state: State,
    consecutive_failures: u32,
    backoff_ms: i64,
}

impl Circuit {
    /// A new processor is presumed up.
    pub fn new(config: CircuitConfig) -> Self {
        Self {
            config,
            state: State::Up,
            consecutive_failures: 0,
            backoff_ms: config.base_backoff_ms,
        }
    }

    pub fn is_up(&self) -> bool {
        self.state == State::Up
    }

    /// The gate, without taking a trial slot.
    pub fn peek(&self, now: Timestamp) -> Gate {
        match self.state {
            State::Up => Gate::Go,
            State::Down { next_trial } if now >= next_trial => Gate::Trial,
            State::Down { next_trial } => Gate::WaitUntil(next_trial),
        }
    }

    /// The gate, taking the trial slot if one is due: the next trial is then
    /// one backoff away, whatever becomes of this one.
    pub fn claim(&mut self, now: Timestamp) -> Gate {
        let gate = self.peek(now);
        if gate == Gate::Trial {
            self.state = State::Down {
                next_trial: now.plus_millis(self.backoff_ms),
            };
        }
        gate
    }

    /// Takes a signal in; `jitter` in `[0, 1)` spreads the next trial over up to
    /// half a backoff so that instances do not retry in lockstep. Returns
    /// whether the processor went from down to up or the reverse.
    pub fn observe(&mut self, signal: Signal, now: Timestamp, jitter: f64) -> bool {
        let was_up = self.is_up();
        match signal {
            Signal::Answered | Signal::ProbeHealthy => {
                self.state = State::Up;
                self.consecutive_failures = 0;
                self.backoff_ms = self.config.base_backoff_ms;
            }
            Signal::Failed => {
                self.consecutive_failures = self.consecutive_failures.saturating_add(1);
                match self.state {
                    State::Up if self.consecutive_failures >= self.config.trip_after => {
                        self.trip(now, jitter)
                    }
                    State::Up => {}
                    State::Down { .. } => {
                        self.backoff_ms = (self.backoff_ms * 2).min(self.config.max_backoff_ms);
                        self.trip(now, jitter);
                    }
                }
            }
            Signal::ProbeFailing => {
                if was_up {
                    self.trip(now, jitter)
                }
            }
        }
        was_up != self.is_up()
    }

    fn trip(&mut self, now: Timestamp, jitter: f64) {
        let spread = (self.backoff_ms as f64 * 0.5 * jitter.clamp(0.0, 1.0)) as i64;
        self.state = State::Down {
            next_trial: now.plus_millis(self.backoff_ms + spread),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: i64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    #[test]
    fn a_new_processor_is_up() {
        assert_eq!(Circuit::new(CircuitConfig::default()).peek(t(0)), Gate::Go);
    }

    #[test]
    fn consecutive_failures_trip_it_and_one_success_resets_the_count() {
        let mut c = Circuit::new(CircuitConfig::default());
        assert!(!c.observe(Signal::Failed, t(0), 0.0));
        assert!(!c.observe(Signal::Failed, t(0), 0.0));
        c.observe(Signal::Answered, t(0), 0.0);
        assert!(!c.observe(Signal::Failed, t(0), 0.0));
        assert!(!c.observe(Signal::Failed, t(0), 0.0));
        assert!(c.observe(Signal::Failed, t(10), 0.0));
        assert_eq!(c.peek(t(10)), Gate::WaitUntil(t(110)));
    }

    #[test]
    fn down_lets_exactly_one_trial_through_per_backoff() {
        let mut c = Circuit::new(CircuitConfig::default());
        c.observe(Signal::ProbeFailing, t(0), 0.0);
        assert_eq!(c.claim(t(50)), Gate::WaitUntil(t(100)));
        assert_eq!(c.claim(t(100)), Gate::Trial);
        assert_eq!(c.claim(t(101)), Gate::WaitUntil(t(200)));
    }

    #[test]
    fn failed_trials_double_the_backoff_up_to_the_cap() {
        let mut c = Circuit::new(CircuitConfig::default());
        c.observe(Signal::ProbeFailing, t(0), 0.0);
        let mut now = 0;
        let mut waits = Vec::new();
        for _ in 0..7 {
            let Gate::WaitUntil(next) = c.peek(t(now)) else {
                panic!("should be down")
            };
            waits.push(next.millis() - now);
            now = next.millis();
            assert_eq!(c.claim(t(now)), Gate::Trial);
            c.observe(Signal::Failed, t(now), 0.0);
        }
        assert_eq!(waits, [100, 200, 400, 800, 1600, 2000, 2000]);
    }

    #[test]
    fn jitter_spreads_the_trial_over_half_a_backoff() {
        let mut c = Circuit::new(CircuitConfig::default());
        c.observe(Signal::ProbeFailing, t(0), 0.999);
        assert_eq!(c.peek(t(0)), Gate::WaitUntil(t(149)));
    }

    #[test]
    fn a_successful_trial_or_healthy_probe_brings_it_back_up() {
        let mut c = Circuit::new(CircuitConfig::default());
        c.observe(Signal::ProbeFailing, t(0), 0.0);
        assert!(c.observe(Signal::Answered, t(150), 0.0));
        assert_eq!(c.peek(t(150)), Gate::Go);
        c.observe(Signal::ProbeFailing, t(200), 0.0);
        assert!(c.observe(Signal::ProbeHealthy, t(201), 0.0));
        assert!(c.is_up());
    }
}
