//! Which processor a payment goes to next: the cheapest one that is up; a
//! pricier one only once the payment has waited longer than the patience
//! (the cheap one is down), or when the cheap one is up but would take too
//! long to pay it (the payment *spills*: [`Policy::spill`]).
//!
//! Pure: it reads the circuits (taking a trial slot when it uses one) and the
//! payment's age; the worker does the waiting and the sending.

use crate::Timestamp;
use crate::circuit::{Circuit, Gate};

/// The routing policy's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// How long (ms) a payment may wait for a cheaper processor to recover
    /// before a pricier one is used.
    pub patience_ms: i64,
    /// How long (ms) a payment may expect to take to be paid at a processor
    /// that is up (its wait for a free send plus the processor's latency)
    /// before it spills to the next one by fee.
    pub spill_wait_ms: u64,
}

/// What to do with a payment now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Send to the processor at this index of the fee-ordered registry;
    /// `trial` when it is the half-open trial of a down processor.
    Send { processor: usize, trial: bool },
    /// Nothing can take it before this instant (or a health change).
    WaitUntil(Timestamp),
    /// No processor of the registry can take this payment at all.
    NoCandidate,
}

impl Policy {
    /// The rule over any gate: `gate(index)` is asked at most once per
    /// processor, cheapest first, and only while the payment may use that
    /// processor; it may take a trial slot (the decision then sends the
    /// payment there). The router's gate combines each processor's circuit
    /// with the health engine's gate for the payment's segment.
    pub fn choose_by(
        &self,
        eligible: &[bool],
        mut gate: impl FnMut(usize) -> Gate,
        accepted_at: Timestamp,
        now: Timestamp,
    ) -> Decision {
        let out_of_patience = accepted_at.plus_millis(self.patience_ms);
        let mut wake: Option<Timestamp> = None;
        let mut earlier = |t: Timestamp| wake = Some(wake.map_or(t, |w| w.min(t)));
        let mut cheapest = true;
        for (index, _) in eligible.iter().enumerate().filter(|(_, e)| **e) {
            if !cheapest && now < out_of_patience {
                earlier(out_of_patience);
                break;
            }
            match gate(index) {
                Gate::Go => {
                    return Decision::Send {
                        processor: index,
                        trial: false,
                    };
                }
                Gate::Trial => {
                    return Decision::Send {
                        processor: index,
                        trial: true,
                    };
                }
                Gate::WaitUntil(t) => earlier(t),
            }
            cheapest = false;
        }
        match wake {
            Some(t) => Decision::WaitUntil(t),
            None => Decision::NoCandidate,
        }
    }

    /// Where a payment the policy sent to `chosen` goes when `chosen` would
    /// take too long: the first processor from `chosen` on, by fee, that the
    /// payment may use (`eligible`), whose expected time to pay it
    /// (`wait_ms`: the wait for a free send plus its latency) is within
    /// [`Policy::spill_wait_ms`] and that is open to it now (`open`, asked
    /// only of such a processor, at most once, so that it may take a trial
    /// slot for this payment: a processor this instance has not used for a
    /// while gets its health back by the payments that spill to it).
    /// `chosen` itself when it is quick enough, or when nobody else is
    /// (waiting at the cheapest then costs no more than waiting anywhere).
    pub fn spill(
        &self,
        chosen: usize,
        eligible: &[bool],
        mut open: impl FnMut(usize) -> bool,
        mut wait_ms: impl FnMut(usize) -> u64,
    ) -> usize {
        if wait_ms(chosen) <= self.spill_wait_ms {
            return chosen;
        }
        (chosen + 1..eligible.len())
            .filter(|&i| eligible[i])
            .find(|&i| wait_ms(i) <= self.spill_wait_ms && open(i))
            .unwrap_or(chosen)
    }

    /// The rule over circuit breakers alone; `circuits` and `eligible` are
    /// indexed like the fee-ordered registry.
    pub fn choose(
        &self,
        circuits: &mut [Circuit],
        eligible: &[bool],
        accepted_at: Timestamp,
        now: Timestamp,
    ) -> Decision {
        self.choose_by(eligible, |i| circuits[i].claim(now), accepted_at, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::circuit::{CircuitConfig, Signal};

    fn t(ms: i64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    fn circuits(n: usize) -> Vec<Circuit> {
        (0..n)
            .map(|_| Circuit::new(CircuitConfig::default()))
            .collect()
    }

    /// To the processor at `processor`, as a payment like any other.
    fn send(processor: usize) -> Decision {
        Decision::Send {
            processor,
            trial: false,
        }
    }

    /// To the processor at `processor`, as its half-open trial.
    fn trial(processor: usize) -> Decision {
        Decision::Send {
            processor,
            trial: true,
        }
    }

    const POLICY: Policy = Policy {
        patience_ms: 10_000,
        spill_wait_ms: 500,
    };

    #[test]
    fn the_cheapest_up_processor_is_chosen() {
        let mut c = circuits(2);
        assert_eq!(POLICY.choose(&mut c, &[true, true], t(0), t(0)), send(0));
    }

    #[test]
    fn a_pricier_processor_waits_for_patience_to_run_out() {
        let mut c = circuits(2);
        c[0].observe(Signal::ProbeFailing, t(0), 0.0);
        // The cheap one's trial is due at 100 ms: wait for it, not for fallback.
        assert_eq!(
            POLICY.choose(&mut c, &[true, true], t(0), t(50)),
            Decision::WaitUntil(t(100))
        );
        assert_eq!(POLICY.choose(&mut c, &[true, true], t(0), t(100)), trial(0));
        // Its trial taken, the next payment waits for the next trial.
        assert_eq!(
            POLICY.choose(&mut c, &[true, true], t(0), t(120)),
            Decision::WaitUntil(t(200))
        );
        // A payment out of patience goes to the pricier processor meanwhile.
        assert_eq!(
            POLICY.choose(&mut c, &[true, true], t(-10_000), t(150)),
            send(1)
        );
    }

    #[test]
    fn patience_deadline_wakes_the_payment_if_it_comes_first() {
        let mut c = circuits(2);
        c[0].observe(Signal::ProbeFailing, t(0), 0.0);
        let policy = Policy {
            patience_ms: 30,
            ..POLICY
        };
        assert_eq!(
            policy.choose(&mut c, &[true, true], t(0), t(10)),
            Decision::WaitUntil(t(30))
        );
    }

    #[test]
    fn ineligible_processors_are_skipped() {
        let mut c = circuits(3);
        assert_eq!(
            POLICY.choose(&mut c, &[false, true, true], t(0), t(0)),
            send(1)
        );
        assert_eq!(
            POLICY.choose(&mut c, &[false, false, false], t(0), t(0)),
            Decision::NoCandidate
        );
    }

    #[test]
    fn when_all_are_down_the_payment_waits_for_the_earliest_trial() {
        let mut c = circuits(2);
        c[0].observe(Signal::ProbeFailing, t(0), 0.0);
        c[1].observe(Signal::ProbeFailing, t(0), 0.0);
        // Another worker took fallback's trial; default's is still due.
        c[1].claim(t(100));
        assert_eq!(POLICY.choose(&mut c, &[true, true], t(0), t(100)), trial(0));
        assert_eq!(
            POLICY.choose(&mut c, &[true, true], t(-20_000), t(150)),
            Decision::WaitUntil(t(200))
        );
    }

    #[test]
    fn a_processor_that_keeps_up_keeps_its_payments() {
        let chosen = POLICY.spill(0, &[true, true], |_| true, |i| [500, 0][i]);
        assert_eq!(chosen, 0);
    }

    #[test]
    fn the_overflow_of_a_processor_that_cannot_keep_up_goes_to_the_next_by_fee() {
        let chosen = POLICY.spill(0, &[true, true, true], |_| true, |i| [501, 0, 0][i]);
        assert_eq!(chosen, 1);
    }

    #[test]
    fn a_spill_skips_processors_down_full_or_not_eligible() {
        let waits = [9_000, 0, 9_000, 0, 0];
        // 1 is down, 2 is as full as 0, 3 does not take the payment.
        let chosen = POLICY.spill(
            0,
            &[true, true, true, false, true],
            |i| i != 1,
            |i| waits[i],
        );
        assert_eq!(chosen, 4);
    }

    #[test]
    fn with_no_room_anywhere_the_payment_waits_for_the_cheapest() {
        let chosen = POLICY.spill(0, &[true, true], |_| true, |_| 9_000);
        assert_eq!(chosen, 0);
        let chosen = POLICY.spill(0, &[true, true], |_| false, |i| [9_000, 0][i]);
        assert_eq!(chosen, 0);
    }

    #[test]
    fn only_a_processor_quick_enough_is_asked_whether_it_is_open() {
        let mut asked = Vec::new();
        let chosen = POLICY.spill(
            0,
            &[true, true, true],
            |i| {
                asked.push(i);
                true
            },
            |i| [9_000, 9_000, 0][i],
        );
        assert_eq!(chosen, 2);
        assert_eq!(
            asked,
            [2],
            "a trial slot is taken only where the payment goes"
        );
    }

    #[test]
    fn a_spill_never_goes_to_a_cheaper_processor() {
        let chosen = POLICY.spill(1, &[true, true, true], |_| true, |i| [0, 9_000, 9_000][i]);
        assert_eq!(chosen, 1);
    }
}
