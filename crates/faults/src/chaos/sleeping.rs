//! The schedules of `resend-refused`, `delay-drop` and `storm-429`: first
//! sends sleep at `default` beyond the router's processor timeout, and while
//! they sleep the re-sends of the same payments get quick answers that prove
//! nothing about them; then the first sends wake and are stored.
//!
//! A router that takes such an answer (a 500, a 429) plus a lookup that
//! finds nothing ("404: the first send is still sleeping") for "not
//! processed" frees the payment to `fallback`, and the first send charges it
//! a second time when it wakes. Each scenario repeats one cycle, in ms from
//! the cycle's start, `T` being the router's processor timeout:
//!
//! ```text
//! 0          default sleeps `long_delay` (> T) on what arrives now: as
//!            extra latency its health check does not announce (a router
//!            waits out an announced delay), except in `delay-drop`
//! slow       (just under T) the answers change (below); the first sends
//!            time out from T on, are looked up (404) and re-sent
//! until      back to normal answers, delay 0 (every first send has timed
//!            out, been looked up and re-sent by now)
//! long_delay the first sends of [0, slow) wake, as late as slow + long_delay,
//!            and are stored (after `until`, so nothing refuses them)
//! length     the next cycle
//! ```
//!
//! `slow` is just under `T`: the refusals start as the first sends time
//! out, so that all of them are looked up and re-sent while refused, and as
//! many payments as possible sleep at `default` meanwhile.
//!
//! | scenario | from `slow` to `until` |
//! | --- | --- |
//! | `resend-refused` | no latency, delay 0 and failing: every re-send refused at once (500), the health check says `failing` |
//! | `delay-drop` | (the long sleep is the announced delay) delay 0, half of the answers 500 (`error_rate` 0.5): the delay lowered mid-flight, the health check says `minResponseTime: 0` |
//! | `storm-429` | every payment refused at once with 429 (`throttle_rate` 1): the health check sees nothing |
//!
//! The seed moves each cycle's phases a little (the slow phase, the end of
//! the window, the start), so that several seeds meet the router's probes
//! and breaker at different moments; the order above always holds
//! ([`Cycle::holds`]).

use rand::Rng;
use reroute_sim::{Faults, ScheduleStep};

/// What `default` answers between `slow` and `until`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Delay 0 and the failure flag on: 500 at once.
    Failing,
    /// Delay 0, half of the answers 500 at once.
    DelayDrop,
    /// The delay unchanged, every answer 429 at once.
    Storm,
}

/// One cycle's instants, in ms from the cycle's start (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cycle {
    /// When the cycle starts, from the fault's start.
    pub start_ms: u64,
    pub slow_ms: u64,
    pub until_ms: u64,
    pub long_delay_ms: u64,
    pub length_ms: u64,
}

impl Cycle {
    /// A cycle for the processor timeout `timeout_ms`, its phases moved by
    /// `rng` within the bounds that keep [`Cycle::holds`] true.
    pub fn draw(index: u64, timeout_ms: u64, rng: &mut impl Rng) -> Self {
        let t = timeout_ms.max(1);
        let length_ms = 6 * t;
        let start_ms = index * length_ms + rng.random_range(0..=t / 5);
        // The refusals start as the first sends time out (see the module
        // doc), and all of them time out inside the window.
        let slow_ms = t - rng.random_range(0..=t / 10);
        // The last first send (sent at `slow`) times out at slow + T, is
        // looked up and re-sent: the window covers that, with a margin.
        let until_ms = slow_ms + t + t / 5 + rng.random_range(0..=t / 5);
        // Every first send wakes after the window, so it is stored.
        let long_delay_ms = until_ms + 2 * t / 5;
        Self {
            start_ms,
            slow_ms,
            until_ms,
            long_delay_ms,
            length_ms,
        }
    }

    /// The order the scenario relies on: first sends time out (`T`) and are
    /// re-sent inside the window; they wake after it; all of them have woken
    /// (with 1.5 T to spare for the router to settle) before the next cycle.
    pub fn holds(&self, timeout_ms: u64) -> bool {
        let within_cycle = self.start_ms % self.length_ms;
        self.slow_ms > 0
            && self.slow_ms <= timeout_ms
            && self.long_delay_ms > timeout_ms
            && self.until_ms >= self.slow_ms + timeout_ms + timeout_ms / 5
            && self.long_delay_ms > self.until_ms
            && within_cycle + self.slow_ms + self.long_delay_ms + 3 * timeout_ms / 2
                <= self.length_ms
    }

    /// `default`'s steps for this cycle, from the fault's start.
    pub fn steps(&self, refusal: Refusal) -> Vec<ScheduleStep> {
        let at = |ms: u64| self.start_ms + ms;
        let window = match refusal {
            Refusal::Failing => step(
                at(self.slow_ms),
                Some(Faults::default()),
                Some(0),
                Some(true),
            ),
            Refusal::DelayDrop => step(
                at(self.slow_ms),
                Some(Faults {
                    error_rate: 0.5,
                    ..Faults::default()
                }),
                Some(0),
                None,
            ),
            Refusal::Storm => step(
                at(self.slow_ms),
                Some(Faults {
                    throttle_rate: 1.0,
                    ..Faults::default()
                }),
                None,
                None,
            ),
        };
        let sleep = match refusal {
            // The health check announces the long delay, then 0: the landing
            // bound must count the delay in force when the first sends left.
            Refusal::DelayDrop => {
                let delay = i64::try_from(self.long_delay_ms).unwrap_or(i64::MAX);
                step(at(0), Some(Faults::default()), Some(delay), Some(false))
            }
            // The first sends sleep without the health check saying so (extra
            // latency, not the delay): a router waits out a delay announced
            // at least as long as its timeout (RELIABILITY.md), so only an
            // unannounced one is sure to outlast the timeout.
            Refusal::Failing | Refusal::Storm => step(
                at(0),
                Some(Faults {
                    latency_ms: self.long_delay_ms,
                    ..Faults::default()
                }),
                Some(0),
                Some(false),
            ),
        };
        vec![sleep, window, normal(at(self.until_ms))]
    }
}

/// One step of a processor's schedule.
pub fn step(
    after_ms: u64,
    settings: Option<Faults>,
    delay: Option<i64>,
    failure: Option<bool>,
) -> ScheduleStep {
    ScheduleStep {
        after_ms,
        settings,
        delay,
        failure,
    }
}

/// The step back to normal: no fault, no delay, not failing.
pub fn normal(after_ms: u64) -> ScheduleStep {
    step(after_ms, Some(Faults::default()), Some(0), Some(false))
}

/// The cycles that fit in `fault_ms` (at least one: the fault then lasts
/// the cycle).
pub fn cycles(fault_ms: u64, timeout_ms: u64, rng: &mut impl Rng) -> Vec<Cycle> {
    let length = 6 * timeout_ms.max(1);
    let count = (fault_ms / length).max(1);
    (0..count)
        .map(|index| Cycle::draw(index, timeout_ms, rng))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn every_seed_keeps_the_order_the_scenarios_rely_on() {
        for timeout_ms in [500, 1000, 2000, 3333] {
            for seed in 0..200 {
                let mut rng = StdRng::seed_from_u64(seed);
                for cycle in cycles(60_000, timeout_ms, &mut rng) {
                    assert!(
                        cycle.holds(timeout_ms),
                        "{timeout_ms} ms, seed {seed}: {cycle:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_issue_s_single_payment_timeline_is_one_such_cycle() {
        // Timeout 2 s, default's delay 3 s; refused from 1.8 s to 2.5 s.
        // The window ends before the first send of 1.8 s would time out
        // (3.8 s): that one would not be re-sent inside it.
        let issue = Cycle {
            start_ms: 0,
            slow_ms: 1_800,
            until_ms: 2_500,
            long_delay_ms: 3_000,
            length_ms: 12_000,
        };
        assert!(!issue.holds(2_000));
        let ours = Cycle {
            until_ms: 4_200,
            long_delay_ms: 5_000,
            ..issue
        };
        assert!(ours.holds(2_000));
    }

    #[test]
    fn a_cycle_ends_with_default_back_to_normal() {
        let mut rng = StdRng::seed_from_u64(7);
        let cycle = Cycle::draw(1, 1000, &mut rng);
        for refusal in [Refusal::Failing, Refusal::DelayDrop, Refusal::Storm] {
            let steps = cycle.steps(refusal);
            reroute_sim::faults::validate_schedule(&steps).unwrap();
            assert!(
                steps[0].after_ms >= 6000,
                "the second cycle starts after the first"
            );
            let long = i64::try_from(cycle.long_delay_ms).unwrap();
            let (delay, latency) = match refusal {
                Refusal::DelayDrop => (Some(long), 0),
                _ => (Some(0), cycle.long_delay_ms),
            };
            assert_eq!(steps[0].delay, delay, "{refusal:?}");
            assert_eq!(
                steps[0].settings.unwrap().latency_ms,
                latency,
                "{refusal:?}"
            );
            let last = steps.last().unwrap();
            assert_eq!(
                (last.settings, last.delay, last.failure),
                (Some(Faults::default()), Some(0), Some(false))
            );
        }
        let failing = &cycle.steps(Refusal::Failing)[1];
        assert_eq!((failing.delay, failing.failure), (Some(0), Some(true)));
        assert_eq!(
            failing.settings,
            Some(Faults::default()),
            "re-sends are refused at once, without the first sends' latency"
        );
        let storm = &cycle.steps(Refusal::Storm)[1];
        assert_eq!(storm.settings.unwrap().throttle_rate, 1.0);
        assert_eq!(storm.delay, None, "the delay is unchanged during the storm");
    }

    #[test]
    fn a_fault_shorter_than_a_cycle_still_gets_one() {
        let mut rng = StdRng::seed_from_u64(1);
        assert_eq!(cycles(1_000, 1_000, &mut rng).len(), 1);
        assert_eq!(cycles(12_000, 1_000, &mut rng).len(), 2);
        assert_eq!(cycles(11_999, 1_000, &mut rng).len(), 1);
    }
}
