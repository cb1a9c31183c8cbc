//! Where the demo's payments went, payment by payment: a segment's route
//! (which processor executes it, moved only by a run of approvals
//! elsewhere) and the slow processor's spills (its segment's payments sent
//! elsewhere while it is slow, until it keeps up again). The observer feeds
//! both from the processors' books; the summary reads what they saw.

/// A segment's route changes once this many approved payments in a row went
/// to another processor: one trial payment is not a reroute.
pub const SWITCH_AFTER: u32 = 3;

/// Which processor executes a segment's payments, from the approved payments
/// in the order they were sent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RouteTracker {
    current: Option<usize>,
    /// Another processor, how many in a row, and when the first was sent.
    streak: Option<(usize, u32, i64)>,
}

/// A segment's payments moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Switch {
    pub from: Option<usize>,
    pub to: usize,
    /// When the first payment of the new route was sent (story ms).
    pub since_ms: i64,
}

impl RouteTracker {
    pub fn current(&self) -> Option<usize> {
        self.current
    }

    /// One approved payment of the segment, executed by `processor`.
    pub fn observe(&mut self, processor: usize, at_ms: i64) -> Option<Switch> {
        match self.current {
            None => {
                self.current = Some(processor);
                Some(Switch {
                    from: None,
                    to: processor,
                    since_ms: at_ms,
                })
            }
            Some(current) if current == processor => {
                self.streak = None;
                None
            }
            Some(current) => {
                let (count, since) = match self.streak {
                    Some((p, n, since)) if p == processor => (n + 1, since),
                    _ => (1, at_ms),
                };
                if count >= SWITCH_AFTER {
                    self.current = Some(processor);
                    self.streak = None;
                    Some(Switch {
                        from: Some(current),
                        to: processor,
                        since_ms: since,
                    })
                } else {
                    self.streak = Some((processor, count, since));
                    None
                }
            }
        }
    }
}

/// Tells a slow processor's spills from a route change, in one segment's
/// approved payments (in the order they were sent).
///
/// Once the processor is slow, a payment of the segment executed elsewhere
/// is one that spilled, not a new route: the rest of the segment still goes
/// to the slow processor, and spills come in runs (one free send lets a few
/// waiting payments through, then the next ones spill), which a
/// [`RouteTracker`] would read as the route moving back and forth. The spill
/// is over once the processor is fast again and [`SWITCH_AFTER`] payments
/// in a row stayed on it.
#[derive(Debug, Clone, PartialEq)]
pub struct SpillTracker {
    /// The slow processor (index in the registry's order), its segment.
    pub processor: usize,
    pub segment: usize,
    pub began: Option<i64>,
    pub over: Option<i64>,
    /// Since the spill began.
    pub spilled: u64,
    pub kept: u64,
    /// Payments in a row on the processor since it is fast again, and when
    /// the first of them was sent.
    streak: Option<(u32, i64)>,
}

/// What one payment is to a [`SpillTracker`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Not the slow processor's segment, or not while it is slow: a route
    /// tracker's business.
    Elsewhere,
    /// On the slow processor; `over`: the spill is over, since then.
    Kept { over: Option<i64> },
    /// Spilled; `first`: the spill begins with it.
    Spilled { first: bool },
}

impl SpillTracker {
    pub fn new(processor: usize, segment: usize) -> Self {
        Self {
            processor,
            segment,
            began: None,
            over: None,
            spilled: 0,
            kept: 0,
            streak: None,
        }
    }

    /// One approved payment sent at `at_ms`; `slowed` and `fast`: when the
    /// processor slowed down and when it was fast again, once they happened.
    pub fn observe(
        &mut self,
        segment: usize,
        processor: usize,
        at_ms: i64,
        slowed: Option<i64>,
        fast: Option<i64>,
    ) -> Seen {
        if segment != self.segment || slowed.is_none_or(|s| at_ms < s) {
            return Seen::Elsewhere;
        }
        if processor != self.processor {
            self.streak = None;
            let first = self.began.is_none();
            self.began.get_or_insert(at_ms);
            self.spilled += 1;
            return Seen::Spilled { first };
        }
        if self.began.is_some() {
            self.kept += 1;
        }
        if self.began.is_none() || self.over.is_some() || fast.is_none_or(|f| at_ms < f) {
            return Seen::Kept { over: None };
        }
        let (count, since) = match self.streak {
            Some((n, since)) => (n + 1, since),
            None => (1, at_ms),
        };
        if count >= SWITCH_AFTER {
            self.over = Some(since);
            self.streak = None;
            return Seen::Kept { over: Some(since) };
        }
        self.streak = Some((count, since));
        Seen::Kept { over: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_payment_sets_the_route() {
        let mut r = RouteTracker::default();
        assert_eq!(
            r.observe(2, 100),
            Some(Switch {
                from: None,
                to: 2,
                since_ms: 100
            })
        );
        assert_eq!(r.observe(2, 200), None);
        assert_eq!(r.current(), Some(2));
    }

    #[test]
    fn a_route_moves_after_three_in_a_row_dated_from_the_first() {
        let mut r = RouteTracker::default();
        r.observe(1, 0);
        assert_eq!(r.observe(4, 1_000), None);
        assert_eq!(r.observe(4, 1_400), None);
        assert_eq!(
            r.observe(4, 1_800),
            Some(Switch {
                from: Some(1),
                to: 4,
                since_ms: 1_000
            })
        );
        assert_eq!(r.current(), Some(4));
    }

    /// One approved payment, (segment, processor, sent at, slowed, fast),
    /// and what a [`SpillTracker`] must make of it.
    type Step = (usize, usize, i64, Option<i64>, Option<i64>, Seen);

    fn play(t: &mut SpillTracker, steps: &[Step]) {
        for &(segment, processor, at, slowed, fast, seen) in steps {
            let got = t.observe(segment, processor, at, slowed, fast);
            assert_eq!(got, seen, "payment to {processor} at {at}");
        }
    }

    #[test]
    fn payments_elsewhere_while_the_processor_is_slow_are_spills_until_it_keeps_up() {
        use Seen::{Elsewhere, Kept, Spilled};
        const KEPT: Seen = Kept { over: None };
        let mut t = SpillTracker::new(0, 0);
        let (slowed, fast) = (Some(10_000), Some(70_000));
        play(
            &mut t,
            &[
                // Before it slows, and in other segments: not its business.
                (0, 1, 9_000, slowed, None, Elsewhere),
                (0, 1, 9_000, None, None, Elsewhere),
                (1, 1, 11_000, slowed, None, Elsewhere),
                (0, 0, 11_000, slowed, None, KEPT),
                (0, 1, 12_000, slowed, None, Spilled { first: true }),
                (0, 1, 12_100, slowed, None, Spilled { first: false }),
            ],
        );
        // Runs on the slow processor while it is slow do not end the spill.
        for at in [13_000, 13_100, 13_200, 13_300] {
            play(&mut t, &[(0, 0, at, slowed, None, KEPT)]);
        }
        assert_eq!(t.began, Some(12_000));
        assert_eq!((t.spilled, t.kept), (2, 4));
        // Fast again: a late spill resets the run; three in a row end it,
        // dated from the first of them.
        play(
            &mut t,
            &[
                (0, 0, 70_100, slowed, fast, KEPT),
                (0, 1, 70_200, slowed, fast, Spilled { first: false }),
                (0, 0, 70_300, slowed, fast, KEPT),
                (0, 0, 70_400, slowed, fast, KEPT),
                (0, 0, 70_500, slowed, fast, Kept { over: Some(70_300) }),
            ],
        );
        assert_eq!(t.over, Some(70_300));
        play(&mut t, &[(0, 0, 70_600, slowed, fast, KEPT)]);
    }

    #[test]
    fn a_lone_trial_payment_does_not_move_the_route() {
        let mut r = RouteTracker::default();
        r.observe(4, 0);
        assert_eq!(r.observe(1, 100), None);
        assert_eq!(r.observe(1, 200), None);
        assert_eq!(r.observe(4, 300), None);
        assert_eq!(r.observe(1, 400), None);
        assert_eq!(r.current(), Some(4));
    }
}
