//! Which status changes become alerts. A window hovering at a threshold
//! changes status back and forth (at a steady 30% of errors, the seed's
//! table flipped HEALTHY/DEGRADED 14 to 33 times in 30 s), and an operator
//! paged on every flip stops reading the pages. Two dampers: one on the
//! status (in the engine's tracker), one here on the alerts. The status
//! itself, which routing and `GET /health` see, is never held back here.
//!
//! The status (the seed's table decides; these rows decide *when*):
//!
//! | status now | the window says | the status | why |
//! |---|---|---|---|
//! | any | worse | changes at once (from 10 transactions) | the seed: worse is news now |
//! | any | better, fewer than `recovery_dwell` (10) transactions since the last change | stays | the seed's recovery dwell |
//! | any | better, but not by `recovery_margin` (5 points) past the threshold that holds it | stays | hysteresis: DEGRADED by errors is left below 25%, DOWN below 45% |
//! | any | better by the margin, after the dwell | becomes what the table says | |
//!
//! The alerts (`announced` is the status the last alert said):
//!
//! | state | event | alert | next |
//! |---|---|---|---|
//! | steady | change to worse than announced | transition, at once | steady |
//! | steady | change to better, the announced status had held `flap_span_ms` (60 s) | transition, at once | steady |
//! | steady | change to better, sooner | none yet | held |
//! | held | better than announced for `flap_hold_ms` (10 s) | transition to the worst status of that spell | steady (or held again, if better still) |
//! | held | back to the announced status | none: a blip | steady |
//! | steady, held | the `flap_transitions`-th (4th) change into or out of DOWN within `flap_span_ms` | one `flapping` alert: the count and the span | flapping |
//! | flapping | change, not worse than the worst of the episode | none | flapping |
//! | flapping | change to worse than the worst of the episode | transition, at once | steady |
//! | flapping | no change into or out of DOWN for `flap_hold_ms` | one transition: "Settled at ... after N transitions in S s" | steady |
//! | any | the processor's own health check changes the status | transition, at once | steady |
//!
//! Worse is always announced at once, and so is a recovery from a status
//! that had held for a minute (the seed's outage and recovery). What waits
//! is a recovery right after a change, which is how flip-flopping starts:
//! it is announced once it has lasted, and a blip that returns says
//! nothing. Only changes into and out of DOWN count as flapping, because
//! DOWN is where routing changes (the gate closes and payments move);
//! HEALTHY/DEGRADED flips at a threshold are hovering, announced once as the
//! worse of the two. The seed's own tests bound the status dampers: worse
//! must be reported at once (60% approved after a HEALTHY window of 10), and
//! DEGRADED must be left at 24.4% errors after the dwell, so the margin can
//! be at most about 5 points; the alert damper does the rest. Settling is
//! noticed when a transaction or a health check arrives: the engine has no
//! clock of its own.

use std::collections::VecDeque;

use crate::Timestamp;

use super::status::{Rule, Status};

/// The alert damper's settings (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FlapSettings {
    /// How long a recovery must last to be announced, and the quiet time
    /// that ends a flapping episode; 0 turns the damper off.
    pub hold_ms: i64,
    /// Changes into or out of DOWN within `span_ms` that make flapping.
    pub transitions: u32,
    /// The span those changes are counted over; a status held this long
    /// is left with an alert at once.
    pub span_ms: i64,
}

/// What the damper lets through.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Notice {
    /// A status change to announce; `from` is the status last announced.
    Transition {
        from: Status,
        to: Status,
        rule: Rule,
    },
    /// The status keeps going in and out of DOWN: one alert for it all.
    Flapping {
        from: Status,
        to: Status,
        transitions: u32,
        span_ms: i64,
    },
    /// A flapping episode ended at `to`.
    Settled {
        from: Status,
        to: Status,
        rule: Rule,
        transitions: u32,
        span_ms: i64,
    },
}

/// A recovery not announced yet.
#[derive(Debug, Clone, Copy)]
struct Held {
    /// Since when the status has been better than the announced one.
    since: Timestamp,
    /// The worst status since then (still better than the announced one):
    /// what the recovery is announced as, so that a status hovering between
    /// DEGRADED and HEALTHY is announced DEGRADED, not HEALTHY and then
    /// DEGRADED again.
    floor: Status,
    /// The rule of the latest change (what the status is based on now).
    rule: Rule,
}

#[derive(Debug, Clone, Copy)]
struct Flapping {
    began: Timestamp,
    /// The latest change into or out of DOWN.
    last: Timestamp,
    /// Every change since `began`.
    transitions: u32,
    rule: Rule,
    /// The worst status of the episode: anything worse is news.
    worst: Status,
}

/// One tracker's alert damper.
#[derive(Debug, Clone)]
pub(crate) struct Fold {
    /// What the last alert said the status was.
    announced: Status,
    /// When the status last changed.
    changed: Option<Timestamp>,
    held: Option<Held>,
    /// Changes into or out of DOWN within the last `span_ms`.
    downs: VecDeque<Timestamp>,
    flapping: Option<Flapping>,
}

impl Fold {
    pub(crate) fn new(status: Status) -> Self {
        Self {
            announced: status,
            changed: None,
            held: None,
            downs: VecDeque::new(),
            flapping: None,
        }
    }

    fn announce(&mut self, to: Status, rule: Rule) -> Notice {
        self.held = None;
        let from = std::mem::replace(&mut self.announced, to);
        Notice::Transition { from, to, rule }
    }

    /// The status changed from `from` to `to` (by `rule`) at `at` because
    /// of the window.
    pub(crate) fn on_change(
        &mut self,
        from: Status,
        to: Status,
        rule: Rule,
        at: Timestamp,
        s: &FlapSettings,
    ) -> Option<Notice> {
        let previous = self.changed.replace(at);
        if s.hold_ms <= 0 {
            return Some(self.announce(to, rule));
        }
        let crosses_down = (from == Status::Down) != (to == Status::Down);
        if crosses_down {
            while self
                .downs
                .front()
                .is_some_and(|t| at.millis() - t.millis() >= s.span_ms)
            {
                self.downs.pop_front();
            }
            self.downs.push_back(at);
        }
        if let Some(f) = &mut self.flapping {
            f.transitions = f.transitions.saturating_add(1);
            f.rule = rule;
            if crosses_down {
                f.last = at;
            }
            if !to.is_worse_than(f.worst) {
                return None;
            }
            // Worse than anything in the episode: news, and the end of it.
            self.flapping = None;
            self.downs.clear();
            return Some(self.announce(to, rule));
        }
        let count = u32::try_from(self.downs.len()).unwrap_or(u32::MAX);
        if crosses_down && count >= s.transitions {
            let began = self.downs.front().copied().unwrap_or(at);
            self.downs.clear();
            self.held = None;
            self.flapping = Some(Flapping {
                began,
                last: at,
                transitions: count,
                rule,
                worst: self.announced.max(from).max(to),
            });
            return Some(Notice::Flapping {
                from: self.announced,
                to,
                transitions: count,
                span_ms: at.millis() - began.millis(),
            });
        }
        if to.is_worse_than(self.announced) {
            return Some(self.announce(to, rule));
        }
        if to == self.announced {
            // A held recovery reversed: nothing was said, nothing to say.
            self.held = None;
            return None;
        }
        if let Some(h) = &mut self.held {
            h.rule = rule;
            h.floor = h.floor.max(to);
            return None;
        }
        let long_held = previous.is_none_or(|p| at.millis() - p.millis() >= s.span_ms);
        if long_held {
            return Some(self.announce(to, rule));
        }
        self.held = Some(Held {
            since: at,
            rule,
            floor: to,
        });
        None
    }

    /// The status is `status` at `at` and did not change: announces a held
    /// recovery that has lasted `hold_ms`, or ends a flapping episode that
    /// has not been in or out of DOWN for `hold_ms`.
    pub(crate) fn on_quiet(
        &mut self,
        status: Status,
        at: Timestamp,
        s: &FlapSettings,
    ) -> Option<Notice> {
        if let Some(f) = self.flapping {
            if at.millis() - f.last.millis() < s.hold_ms {
                return None;
            }
            self.flapping = None;
            self.held = None;
            let from = std::mem::replace(&mut self.announced, status);
            return Some(Notice::Settled {
                from,
                to: status,
                rule: f.rule,
                transitions: f.transitions,
                span_ms: f.last.millis() - f.began.millis(),
            });
        }
        let h = self.held?;
        if at.millis() - h.since.millis() < s.hold_ms || !status.is_better_than(self.announced) {
            return None;
        }
        let notice = self.announce(h.floor, h.rule);
        if status.is_better_than(h.floor) {
            // Better still than what was announced: held in turn.
            self.held = Some(Held {
                since: at,
                rule: h.rule,
                floor: status,
            });
        }
        Some(notice)
    }

    /// The processor's own health check changed the status: always news,
    /// and it ends any episode.
    pub(crate) fn on_check(&mut self, to: Status, rule: Rule, at: Timestamp) -> Notice {
        self.changed = Some(at);
        self.flapping = None;
        self.downs.clear();
        self.announce(to, rule)
    }
}

/// `12_345` -> `12.3 s`.
pub(crate) fn seconds(ms: i64) -> String {
    format!("{:.1} s", ms as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: FlapSettings = FlapSettings {
        hold_ms: 10_000,
        transitions: 4,
        span_ms: 60_000,
    };

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_millis(1_700_000_000_000 + ms)
    }

    /// A fold that has announced `status` at time 0.
    fn announced(status: Status) -> Fold {
        let mut f = Fold::new(Status::Healthy);
        if status != Status::Healthy {
            f.on_change(Status::Healthy, status, Rule::HighErrorRate, at(0), &S);
        }
        f
    }

    fn transition(from: Status, to: Status, rule: Rule) -> Option<Notice> {
        Some(Notice::Transition { from, to, rule })
    }

    use Status::{Degraded, Down, Healthy};

    #[test]
    fn worse_is_announced_at_once() {
        let mut f = Fold::new(Healthy);
        let n = f.on_change(Healthy, Degraded, Rule::ElevatedErrorRate, at(1), &S);
        assert_eq!(n, transition(Healthy, Degraded, Rule::ElevatedErrorRate));
        let n = f.on_change(Degraded, Down, Rule::HighErrorRate, at(2), &S);
        assert_eq!(n, transition(Degraded, Down, Rule::HighErrorRate));
    }

    #[test]
    fn a_recovery_after_a_status_held_for_the_span_is_announced_at_once() {
        let mut f = announced(Down);
        let n = f.on_change(Down, Healthy, Rule::WithinThresholds, at(60_000), &S);
        assert_eq!(n, transition(Down, Healthy, Rule::WithinThresholds));
    }

    #[test]
    fn a_recovery_soon_after_a_change_is_announced_once_it_has_lasted_the_hold() {
        let mut f = announced(Down);
        let rule = Rule::WithinThresholds;
        assert_eq!(f.on_change(Down, Healthy, rule, at(5_000), &S), None);
        assert_eq!(f.on_quiet(Healthy, at(14_999), &S), None);
        assert_eq!(
            f.on_quiet(Healthy, at(15_000), &S),
            transition(Down, Healthy, rule)
        );
        assert_eq!(f.on_quiet(Healthy, at(30_000), &S), None);
    }

    #[test]
    fn a_blip_back_to_the_announced_status_says_nothing() {
        let mut f = announced(Degraded);
        assert_eq!(
            f.on_change(Degraded, Healthy, Rule::WithinThresholds, at(2_000), &S),
            None
        );
        assert_eq!(
            f.on_change(Healthy, Degraded, Rule::ElevatedErrorRate, at(3_000), &S),
            None
        );
        assert_eq!(f.on_quiet(Degraded, at(60_000), &S), None);
    }

    #[test]
    fn a_recovery_hovering_between_degraded_and_healthy_is_announced_as_degraded() {
        let mut f = announced(Down);
        let mut t = 1_000;
        let mut status = Down;
        for to in [Degraded, Healthy, Degraded, Healthy] {
            assert_eq!(
                f.on_change(status, to, Rule::WithinThresholds, at(t), &S),
                None
            );
            status = to;
            t += 1_000;
        }
        let n = f.on_quiet(Healthy, at(11_000), &S);
        assert_eq!(n, transition(Down, Degraded, Rule::WithinThresholds));
        // HEALTHY now, but only just: held in turn.
        assert_eq!(f.on_quiet(Healthy, at(12_000), &S), None);
        assert_eq!(
            f.on_quiet(Healthy, at(21_000), &S),
            transition(Degraded, Healthy, Rule::WithinThresholds)
        );
    }

    #[test]
    fn four_changes_in_and_out_of_down_raise_one_flapping_alert_then_one_settled() {
        let mut f = announced(Down);
        let rule = Rule::HighErrorRate;
        assert_eq!(f.on_change(Down, Healthy, rule, at(1_000), &S), None);
        assert_eq!(f.on_change(Healthy, Down, rule, at(2_000), &S), None);
        let n = f.on_change(Down, Healthy, rule, at(3_000), &S);
        assert_eq!(
            n,
            Some(Notice::Flapping {
                from: Down,
                to: Healthy,
                transitions: 4,
                span_ms: 3_000,
            })
        );
        for k in 0..10 {
            let (from, to) = if k % 2 == 0 {
                (Healthy, Down)
            } else {
                (Down, Healthy)
            };
            assert_eq!(f.on_change(from, to, rule, at(4_000 + k * 1_000), &S), None);
        }
        // Quiet for the hold after the last change (at 13 s): settled.
        assert_eq!(f.on_quiet(Healthy, at(22_999), &S), None);
        assert_eq!(
            f.on_quiet(Healthy, at(23_000), &S),
            Some(Notice::Settled {
                from: Down,
                to: Healthy,
                rule,
                transitions: 14,
                span_ms: 13_000,
            })
        );
    }

    #[test]
    fn flapping_folds_everything_but_a_change_worse_than_the_episode() {
        let mut f = announced(Degraded);
        let rule = Rule::ElevatedErrorRate;
        let mut status = Degraded;
        let mut flapping = 0;
        for (k, to) in [Down, Degraded, Down, Degraded].into_iter().enumerate() {
            let n = f.on_change(status, to, rule, at(1_000 * (k as i64 + 1)), &S);
            flapping += usize::from(matches!(n, Some(Notice::Flapping { .. })));
            status = to;
        }
        assert_eq!(flapping, 1);
        // Better than the episode, or as bad: folded.
        assert_eq!(f.on_change(Degraded, Healthy, rule, at(5_500), &S), None);
        assert_eq!(f.on_change(Healthy, Down, rule, at(6_000), &S), None);
    }

    #[test]
    fn a_health_check_is_always_news_and_ends_an_episode() {
        let mut f = announced(Down);
        assert_eq!(
            f.on_change(Down, Healthy, Rule::WithinThresholds, at(1_000), &S),
            None
        );
        let n = f.on_check(Down, Rule::HealthCheckFailing, at(1_500));
        assert_eq!(Some(n), transition(Down, Down, Rule::HealthCheckFailing));
        let n = f.on_check(Healthy, Rule::HealthCheckPassing, at(2_000));
        assert_eq!(Some(n), transition(Down, Healthy, Rule::HealthCheckPassing));
    }

    #[test]
    fn a_zero_hold_announces_every_change() {
        let off = FlapSettings { hold_ms: 0, ..S };
        let mut f = Fold::new(Healthy);
        let mut status = Healthy;
        for (k, to) in [Down, Healthy, Down, Healthy, Down].into_iter().enumerate() {
            let n = f.on_change(status, to, Rule::HighErrorRate, at(k as i64), &off);
            assert_eq!(n, transition(status, to, Rule::HighErrorRate));
            status = to;
        }
    }

    #[test]
    fn seconds_have_one_decimal() {
        assert_eq!(seconds(12_345), "12.3 s");
        assert_eq!(seconds(0), "0.0 s");
    }
}
