//! The rule for unknown outcomes: what one send's answer and one lookup
//! prove about a payment, and when an attempt that may still be in a
//! processor's hands lets the payment go elsewhere. The table it follows is
//! in RELIABILITY.md ("Unknown outcomes"); every row has a test below.
//!
//! The worker ([`crate::worker`]) does the I/O and asks this module what it
//! may conclude. Pure: instants come in as arguments.
//!
//! The bound on "an earlier send can still land": a send that left at `t`
//! and was not answered is assumed to be stored, if ever, by
//! `t + max(processor timeout, largest delay the processor announced) +
//! landing margin` ([`Landing::deadline`]). The announced delay is the
//! `minResponseTime` of its health endpoint, over the reports from two probe
//! intervals before `t` until now (the report in force when the send left is
//! among them). The margin covers what the processor adds to its delay
//! (queueing, the network) and a delay changed and restored between two
//! probes; it is configurable (`--landing-margin-ms`).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use reroute_core::Timestamp;
use reroute_core::concurrency::Announced;

use crate::processor::{AttemptResult, Lookup};

/// The latest instant a send of the open attempt left that may have been
/// stored without this instance seeing it (a timeout, a connection lost
/// after sending, a payment taken over from a process that is gone). While
/// there is such a send, a processor's "not found" proves nothing until
/// that send's [`Landing::deadline`] has passed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Doubt(Option<Timestamp>);

impl Doubt {
    /// Nothing sent, or every send known not stored.
    pub const CLEAR: Doubt = Doubt(None);

    /// A send may have left as late as `left`.
    pub fn since(left: Timestamp) -> Doubt {
        Doubt(Some(left))
    }

    pub fn is_clear(self) -> bool {
        self.0.is_none()
    }

    /// After a send that left at `left` and was answered `result`: only an
    /// unanswered send adds doubt. A refusal or a failure answer says
    /// nothing about earlier sends, so the doubt they left stays.
    pub fn after_send(self, result: AttemptResult, left: Timestamp) -> Doubt {
        match (result, self.0) {
            (AttemptResult::Unknown, Some(since)) => Doubt(Some(since.max(left))),
            (AttemptResult::Unknown, None) => Doubt(Some(left)),
            _ => self,
        }
    }

    /// After a lookup that left at `looked_at` following a send answered
    /// `sent`: a failure answer the lookup could not confirm is treated as
    /// a send that may still land, so that a later refusal cannot free the
    /// payment before a lookup has answered.
    pub fn after_lookup(
        self,
        sent: Option<AttemptResult>,
        found: Lookup,
        looked_at: Timestamp,
    ) -> Doubt {
        match (sent, found) {
            (Some(AttemptResult::Failed), Lookup::Unknown) => {
                self.after_send(AttemptResult::Unknown, looked_at)
            }
            _ => self,
        }
    }

    /// When every doubtful send has landed or never will, by `landing`.
    pub fn deadline(self, landing: impl FnOnce(Timestamp) -> Timestamp) -> Option<Timestamp> {
        self.0.map(landing)
    }
}

/// What a send's answer decides before any lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Decided: no lookup needed.
    Settled(Verdict),
    /// Ask the processor whether it has the payment.
    LookUp,
}

/// What may be concluded about the payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The processor has it, with this `requestedAt` (what its books count).
    Processed(Timestamp),
    /// Refused for good; nothing charged.
    Declined,
    /// No send of the attempt is stored or can still be: the payment may go
    /// to any processor, with a new attempt.
    Free,
    /// Still in the processor's hands: resolve it there again. `until`: the
    /// instant from which a "not found" frees it (the doubt's deadline);
    /// `None` when only a failed lookup stands in the way.
    Pinned { until: Option<Timestamp> },
}

/// The send of an attempt with `requested_at` was answered `result`;
/// `doubt` already includes this send ([`Doubt::after_send`]).
pub fn on_answer(result: AttemptResult, doubt: Doubt, requested_at: Timestamp) -> Answer {
    match result {
        AttemptResult::Approved => Answer::Settled(Verdict::Processed(requested_at)),
        AttemptResult::Declined => Answer::Settled(Verdict::Declined),
        // This send was not stored, and no other one can be.
        AttemptResult::Refused if doubt.is_clear() => Answer::Settled(Verdict::Free),
        // 422: stored, but with which requestedAt only the books say. A
        // failure answer is confirmed by a lookup; an unanswered send or an
        // earlier doubtful one may have been stored.
        AttemptResult::AlreadyProcessed
        | AttemptResult::Failed
        | AttemptResult::Refused
        | AttemptResult::Unknown => Answer::LookUp,
    }
}

/// A lookup that left at `looked_at` answered `found`. `sent`: the answer
/// of the send just before it (`None` when the lookup stands alone);
/// `deadline`: the doubt's, if any ([`Doubt::deadline`]).
pub fn on_lookup(
    sent: Option<AttemptResult>,
    found: Lookup,
    looked_at: Timestamp,
    deadline: Option<Timestamp>,
    requested_at: Timestamp,
) -> Verdict {
    match (found, sent) {
        (Lookup::Found { requested_at }, _) => Verdict::Processed(requested_at),
        // The processor says it has it and that it does not: its 422 is
        // the stronger word (it refused to store it again); the attempt's
        // own instant is the best known.
        (Lookup::NotFound, Some(AttemptResult::AlreadyProcessed)) => {
            Verdict::Processed(requested_at)
        }
        (Lookup::NotFound, _) => match deadline {
            Some(until) if until > looked_at => Verdict::Pinned { until: Some(until) },
            _ => Verdict::Free,
        },
        // Nothing learned: ask again.
        (Lookup::Unknown, _) => Verdict::Pinned { until: deadline },
    }
}

/// How long a send may take to land, per processor ([`Landing::deadline`]).
pub struct Landing {
    timeout: Duration,
    margin: Duration,
    /// The longest [`Landing::send_wait`] ([`longest_send_wait`]).
    longest_send: Duration,
    probe_interval: Duration,
    /// Indexed like the fee-ordered registry.
    history: Vec<Mutex<History>>,
}

impl Landing {
    pub fn new(
        processors: usize,
        timeout: Duration,
        margin: Duration,
        longest_send: Duration,
        probe_interval: Duration,
    ) -> Self {
        Landing {
            timeout,
            margin,
            longest_send,
            probe_interval,
            history: (0..processors)
                .map(|_| Mutex::new(History::default()))
                .collect(),
        }
    }

    fn history(&self, processor: usize) -> std::sync::MutexGuard<'_, History> {
        // Every update is a push or a pop: a poisoned lock holds a
        // consistent history.
        self.history[processor]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// A processor's health endpoint said its delay is `delay_ms`, at `at`,
    /// and whether it is `failing`.
    pub fn announce(&self, processor: usize, delay_ms: u32, at: Timestamp, failing: bool) {
        let mut history = self.history(processor);
        history.record(at, delay_ms);
        if !failing {
            history.working = Some((at, delay_ms));
        }
    }

    /// The delay `processor` announced last while it said it was working,
    /// and when: what a payment sent there may expect. A delay announced
    /// while it was failing describes the outage, not the processor once
    /// back (the landing bound, [`Landing::deadline`], still counts it).
    pub fn announced(&self, processor: usize) -> Announced {
        self.history(processor)
            .working
            .map_or(Announced::default(), |(at, delay_ms)| Announced {
                delay_ms,
                at: Some(at),
            })
    }

    /// How long a send to `processor` leaving at `now` waits for its
    /// answer: the processor timeout, or, when the processor announced a
    /// delay at least as long within two probe intervals, that delay and the
    /// margin (at most [`longest_send_wait`]). A shorter announced delay
    /// leaves the timeout as the operator set it. A send given up while the processor
    /// may still store it leaves the payment in doubt until a lookup after
    /// its landing bound, seconds in which the processor's books count a
    /// payment the ledger cannot; waiting as long as the processor said it
    /// takes gets its answer instead. A send that still times out has then
    /// passed its landing bound (unless the announced delay exceeds the
    /// cap), so the lookup that follows decides.
    pub fn send_wait(&self, processor: usize, now: Timestamp) -> Duration {
        let window_ms = i64::try_from(self.probe_interval.as_millis()).unwrap_or(i64::MAX);
        let since = now.plus_millis(-window_ms.saturating_mul(2));
        let announced =
            Duration::from_millis(u64::from(self.history(processor).largest_since(since, now)));
        if announced < self.timeout {
            return self.timeout;
        }
        self.timeout
            .max((announced + self.margin).min(self.longest_send))
    }

    /// The instant by which a send to `processor` that left at `left` has
    /// landed, if it ever does, as far as is known at `now`.
    pub fn deadline(&self, processor: usize, left: Timestamp, now: Timestamp) -> Timestamp {
        let window_ms = i64::try_from(self.probe_interval.as_millis()).unwrap_or(i64::MAX);
        let since = left.plus_millis(-window_ms.saturating_mul(2));
        let announced = self.history(processor).largest_since(since, now);
        let longest = self
            .timeout
            .max(Duration::from_millis(u64::from(announced)));
        let ms = i64::try_from((longest + self.margin).as_millis()).unwrap_or(i64::MAX);
        left.plus_millis(ms)
    }
}

/// The longest a send waits for its answer whatever delay its processor
/// announced: a lane's place is not held for longer on a processor's word.
const LONGEST_SEND_WAIT: Duration = Duration::from_secs(60);

/// The longest a send may wait for its answer, on a store whose payments
/// are held under `lease` (shared storage) or not. A leased payment may be
/// taken over by another instance once its holder stops renewing; its
/// holder's send must have been answered or given up by then, which the
/// lease check at start-up guarantees for the processor timeout
/// ([`crate::config::lease_renewal_interval`]: the lease left when a send
/// leaves). A send waiting for an announced delay stays within the same
/// bound.
pub fn longest_send_wait(lease: Option<Duration>) -> Duration {
    lease.map_or(LONGEST_SEND_WAIT, |lease| {
        let left = lease.saturating_sub(crate::config::lease_renewal_interval(lease));
        // Whole milliseconds, strictly below what is left.
        let ms = u64::try_from(left.as_millis().saturating_sub(1)).unwrap_or(u64::MAX);
        Duration::from_millis(ms).min(LONGEST_SEND_WAIT)
    })
}

/// One processor's announced delays, kept for [`HORIZON_MS`].
#[derive(Debug, Default)]
struct History {
    reports: VecDeque<(Timestamp, u32)>,
    /// The latest report made while the processor said it was working.
    working: Option<(Timestamp, u32)>,
}

/// How long announced delays are kept. A doubt older than that is judged
/// on every delay still kept (the largest of them), never on none.
const HORIZON_MS: i64 = 10 * 60 * 1000;

impl History {
    fn record(&mut self, at: Timestamp, delay_ms: u32) {
        self.reports.push_back((at, delay_ms));
        while self
            .reports
            .front()
            .is_some_and(|(first, _)| first.millis() < at.millis() - HORIZON_MS)
        {
            self.reports.pop_front();
        }
    }

    /// The largest delay announced from `since` on, or, if `since` is older
    /// than what is kept, the largest kept.
    fn largest_since(&self, since: Timestamp, now: Timestamp) -> u32 {
        let all_kept = self
            .reports
            .front()
            .is_none_or(|(first, _)| since < *first || now.millis() - since.millis() > HORIZON_MS);
        self.reports
            .iter()
            .filter(|(at, _)| all_kept || *at >= since)
            .map(|&(_, ms)| ms)
            .max()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AttemptResult::*;

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_millis(1_700_000_000_000 + ms)
    }

    const OURS: i64 = 5;

    fn found(ms: i64) -> Lookup {
        Lookup::Found {
            requested_at: at(ms),
        }
    }

    // --- What a send's answer decides (RELIABILITY.md, first table) ---

    #[test]
    fn a_200_is_processed_with_the_attempts_instant() {
        assert_eq!(
            on_answer(Approved, Doubt::since(at(0)), at(OURS)),
            Answer::Settled(Verdict::Processed(at(OURS)))
        );
    }

    #[test]
    fn a_402_is_declined() {
        assert_eq!(
            on_answer(Declined, Doubt::CLEAR, at(OURS)),
            Answer::Settled(Verdict::Declined)
        );
    }

    #[test]
    fn a_refusal_with_no_send_in_doubt_frees_the_payment_without_a_lookup() {
        assert_eq!(
            on_answer(Refused, Doubt::CLEAR, at(OURS)),
            Answer::Settled(Verdict::Free)
        );
    }

    #[test]
    fn a_refused_resend_proves_nothing_about_an_earlier_send() {
        assert_eq!(
            on_answer(Refused, Doubt::since(at(0)), at(OURS)),
            Answer::LookUp
        );
    }

    #[test]
    fn a_5xx_a_422_and_a_lost_answer_are_looked_up() {
        for result in [Failed, AlreadyProcessed, Unknown] {
            assert_eq!(
                on_answer(result, Doubt::CLEAR, at(OURS)),
                Answer::LookUp,
                "{result:?}"
            );
        }
    }

    #[test]
    fn only_an_unanswered_send_adds_doubt_and_the_latest_counts() {
        let d = Doubt::CLEAR.after_send(Failed, at(10));
        assert!(d.is_clear());
        let d = d.after_send(Unknown, at(20));
        assert_eq!(d, Doubt::since(at(20)));
        assert_eq!(d.after_send(Refused, at(30)), Doubt::since(at(20)));
        assert_eq!(d.after_send(Unknown, at(40)), Doubt::since(at(40)));
    }

    #[test]
    fn a_5xx_the_lookup_could_not_confirm_is_in_doubt() {
        let d = Doubt::CLEAR.after_lookup(Some(Failed), Lookup::Unknown, at(10));
        assert_eq!(d, Doubt::since(at(10)));
        for (sent, found) in [
            (Some(Failed), Lookup::NotFound),
            (Some(Refused), Lookup::Unknown),
            (None, Lookup::Unknown),
        ] {
            assert!(Doubt::CLEAR.after_lookup(sent, found, at(10)).is_clear());
        }
    }

    // --- What a lookup decides (RELIABILITY.md, second table) ---

    #[test]
    fn found_is_processed_with_the_books_instant_whatever_was_sent() {
        for sent in [None, Some(Failed), Some(Refused), Some(Unknown)] {
            assert_eq!(
                on_lookup(sent, found(3), at(100), Some(at(9_000)), at(OURS)),
                Verdict::Processed(at(3))
            );
        }
    }

    #[test]
    fn not_found_after_a_5xx_with_nothing_in_doubt_frees_the_payment() {
        assert_eq!(
            on_lookup(Some(Failed), Lookup::NotFound, at(100), None, at(OURS)),
            Verdict::Free
        );
    }

    #[test]
    fn not_found_while_an_earlier_send_may_still_land_keeps_the_payment_pinned() {
        assert_eq!(
            on_lookup(
                Some(Refused),
                Lookup::NotFound,
                at(2_000),
                Some(at(5_000)),
                at(OURS)
            ),
            Verdict::Pinned {
                until: Some(at(5_000))
            }
        );
    }

    #[test]
    fn not_found_once_every_earlier_send_has_landed_frees_the_payment() {
        for looked_at in [5_000, 6_000] {
            assert_eq!(
                on_lookup(
                    None,
                    Lookup::NotFound,
                    at(looked_at),
                    Some(at(5_000)),
                    at(OURS)
                ),
                Verdict::Free
            );
        }
    }

    #[test]
    fn a_422_contradicted_by_the_lookup_is_processed_with_the_attempts_instant() {
        assert_eq!(
            on_lookup(
                Some(AlreadyProcessed),
                Lookup::NotFound,
                at(100),
                None,
                at(OURS)
            ),
            Verdict::Processed(at(OURS))
        );
    }

    #[test]
    fn a_failed_lookup_decides_nothing() {
        for sent in [Some(AlreadyProcessed), Some(Failed), Some(Unknown), None] {
            assert_eq!(
                on_lookup(sent, Lookup::Unknown, at(100), None, at(OURS)),
                Verdict::Pinned { until: None }
            );
        }
        assert_eq!(
            on_lookup(None, Lookup::Unknown, at(100), Some(at(7)), at(OURS)),
            Verdict::Pinned { until: Some(at(7)) }
        );
    }

    // --- The landing bound ---

    fn landing() -> Landing {
        Landing::new(
            2,
            Duration::from_millis(2_000),
            Duration::from_millis(1_000),
            Duration::from_millis(10_000),
            Duration::from_millis(5_000),
        )
    }

    #[test]
    fn with_nothing_announced_a_send_lands_within_the_timeout_and_the_margin() {
        assert_eq!(landing().deadline(0, at(0), at(100)), at(3_000));
    }

    #[test]
    fn a_longer_announced_delay_extends_the_bound() {
        let l = landing();
        // In force when the send left, and changed since: the longest counts.
        l.announce(0, 3_000, at(-4_000), false);
        l.announce(0, 0, at(1_000), false);
        assert_eq!(l.deadline(0, at(0), at(2_000)), at(4_000));
        // Another processor's delay does not count.
        assert_eq!(l.deadline(1, at(0), at(2_000)), at(3_000));
    }

    /// The preview's outage as the probes see it: 100 ms while working,
    /// then 2 s while failing. The lanes expect 100 ms (a recovered
    /// processor is not taken for a slow one), the landing bound counts 2 s
    /// (a send made during the outage may land that late).
    #[test]
    fn a_delay_announced_while_failing_bounds_landings_but_is_not_expected() {
        let l = landing();
        l.announce(0, 100, at(0), false);
        l.announce(0, 2_000, at(5_000), true);
        assert_eq!(
            l.announced(0),
            Announced {
                delay_ms: 100,
                at: Some(at(0))
            }
        );
        assert_eq!(l.deadline(0, at(6_000), at(6_100)), at(9_000));
        l.announce(0, 20, at(10_000), false);
        assert_eq!(l.announced(0).delay_ms, 20);
    }

    #[test]
    fn a_send_waits_the_timeout_unless_a_longer_delay_was_announced() {
        let l = landing();
        assert_eq!(l.send_wait(0, at(0)), Duration::from_millis(2_000));
        // A shorter delay announced: the timeout, even where the delay and
        // the margin together are longer.
        l.announce(0, 0, at(-1_000), false);
        assert_eq!(l.send_wait(0, at(0)), Duration::from_millis(2_000));
        l.announce(0, 1_500, at(-900), false);
        assert_eq!(l.send_wait(0, at(0)), Duration::from_millis(2_000));
        // Equal to the timeout, while failing too (the reference processor
        // sleeps before it checks its failure flag): delay and margin.
        l.announce(0, 2_000, at(-500), true);
        assert_eq!(l.send_wait(0, at(0)), Duration::from_millis(3_000));
        // A send that waited that long has passed its landing bound.
        assert_eq!(l.deadline(0, at(0), at(0)), at(3_000));
        // Another processor's delay does not count.
        assert_eq!(l.send_wait(1, at(0)), Duration::from_millis(2_000));
        // Capped, whatever the processor says.
        l.announce(0, u32::MAX, at(0), false);
        assert_eq!(l.send_wait(0, at(0)), Duration::from_millis(10_000));
    }

    #[test]
    fn a_leased_payments_send_ends_before_another_instance_may_take_it_over() {
        assert_eq!(longest_send_wait(None), LONGEST_SEND_WAIT);
        // A 10 s lease renewed every 3,333.3 ms: 6,666.7 ms left at worst
        // when a send leaves; the send ends before.
        assert_eq!(
            longest_send_wait(Some(Duration::from_secs(10))),
            Duration::from_millis(6_665)
        );
        assert_eq!(
            longest_send_wait(Some(Duration::from_secs(600))),
            LONGEST_SEND_WAIT
        );
    }

    #[test]
    fn a_delay_announced_long_before_the_send_no_longer_counts() {
        let l = landing();
        l.announce(0, 9_000, at(-60_000), false);
        l.announce(0, 0, at(-5_000), false);
        assert_eq!(l.deadline(0, at(0), at(100)), at(3_000));
    }

    #[test]
    fn a_doubt_older_than_the_kept_history_is_judged_on_all_of_it() {
        let l = landing();
        l.announce(0, 4_000, at(0), false);
        let old = at(-HORIZON_MS - 1);
        assert_eq!(l.deadline(0, old, at(1_000)), old.plus_millis(5_000));
    }

    #[test]
    fn announced_delays_are_kept_for_the_horizon_only() {
        let mut a = History::default();
        a.record(at(0), 7_000);
        a.record(at(HORIZON_MS + 1), 100);
        assert_eq!(a.reports.len(), 1);
        assert_eq!(a.largest_since(at(HORIZON_MS), at(HORIZON_MS + 2)), 100);
    }
}
