//! What the demo's history says happened: the totals read at the end, and
//! the milestones (detection, reroute, recovery, the slow act) found in the
//! [`History`] the observer kept, with the problems that fail the story.

use crate::story::{self, MIX};
use crate::watch::History;

/// One processor's own counters, and what the router's ledger says of it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProcessorTotals {
    pub id: String,
    /// `POST /payments` calls it received (every attempt).
    pub attempts: u64,
    pub approved: u64,
    pub declined: u64,
    /// Answered 500.
    pub errors: u64,
    /// `totalRequests` of `GET /payments-summary` for it; `None` if unread.
    pub ledger: Option<u64>,
}

/// The counts at the end.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Totals {
    pub sent: u64,
    pub accepted: u64,
    pub refused: u64,
    pub unanswered: u64,
    pub processors: Vec<ProcessorTotals>,
}

impl Totals {
    pub fn approved(&self) -> u64 {
        self.processors.iter().map(|p| p.approved).sum()
    }

    pub fn declined(&self) -> u64 {
        self.processors.iter().map(|p| p.declined).sum()
    }

    /// Accepted payments without a known outcome yet.
    pub fn pending(&self) -> u64 {
        self.accepted
            .saturating_sub(self.approved() + self.declined())
    }

    /// `Some(true)` when the ledger equals every processor's books.
    pub fn ledger_matches(&self) -> Option<bool> {
        self.processors
            .iter()
            .map(|p| p.ledger.map(|l| l == p.approved))
            .collect::<Option<Vec<bool>>>()
            .map(|all| all.iter().all(|ok| *ok))
    }
}

/// A segment's payments moving to or from the failing processor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reroute {
    pub segment: String,
    pub from: String,
    pub to: String,
    pub at_ms: i64,
}

/// The story's milestones, found in the history.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Findings {
    pub outage_ms: Option<i64>,
    pub recovery_ms: Option<i64>,
    pub recovered_ms: Option<i64>,
    /// The failing processor's first transition after the outage began.
    pub first_alert: Option<(i64, String, String)>,
    /// Its first DOWN after the outage began, with the reason.
    pub down: Option<(i64, String)>,
    /// When it left that DOWN.
    pub down_until: Option<i64>,
    /// DEGRADED after the DOWN.
    pub degraded_ms: Option<i64>,
    /// HEALTHY after that DEGRADED.
    pub healthy_ms: Option<i64>,
    /// Its status at the end.
    pub final_status: String,
    /// The watched recommendation first moved to the alternative.
    pub recommendation_moved_ms: Option<i64>,
    /// The recommendation in force while the processor was DOWN was the
    /// alternative, throughout.
    pub recommended_alternative_while_down: bool,
    /// The recommendation came back to the failing processor.
    pub recommendation_back_ms: Option<i64>,
    /// Segments moved off the failing processor after the outage began.
    pub rerouted: Vec<Reroute>,
    /// Segments moved back to it.
    pub returned: Vec<Reroute>,
    /// The slow act, once the processor slowed down.
    pub slow: Option<SlowAct>,
}

/// The slow act's milestones and figures: the slow processor's lane, and
/// where its segment's payments went while it was slow.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SlowAct {
    pub slowed_ms: i64,
    /// When it was fast again.
    pub fast_ms: Option<i64>,
    /// Its limit of sends in flight when it slowed, and the highest after
    /// (when first reached).
    pub limit_before: Option<u32>,
    pub limit_peak: Option<(i64, u32)>,
    /// Its segment's approved payments sent while it was slow: kept on it,
    /// or spilled (and where to, most of them).
    pub kept: u64,
    pub spilled: u64,
    pub spilled_to: Option<String>,
    /// When the spill began, and when all its segment's payments were on
    /// it again.
    pub spill_began: Option<i64>,
    pub spill_over: Option<i64>,
}

impl SlowAct {
    fn find(history: &History, ids: &[String]) -> Option<Self> {
        let slowed_ms = history.phases.get(story::SLOWED).copied()?;
        let fast_ms = history.phases.get(story::FAST_AGAIN).copied();
        let slow = ids.iter().position(|id| id == story::SLOW)?;
        let limit_before = history
            .lanes
            .iter()
            .rfind(|(at, _)| *at < slowed_ms)
            .map(|(_, l)| l.limit);
        let limit_peak = history
            .lanes
            .iter()
            .filter(|(at, _)| *at >= slowed_ms)
            .fold(None, |peak: Option<(i64, u32)>, (at, l)| match peak {
                Some((_, most)) if most >= l.limit => peak,
                _ => Some((*at, l.limit)),
            });
        let while_slow = |at: i64| at >= slowed_ms && fast_ms.is_none_or(|f| at < f);
        let mut kept = 0;
        let mut spilled_to = vec![0u64; ids.len()];
        for (at, segment, processor) in &history.payments {
            if *segment != story::RUSH_SEGMENT || !while_slow(*at) {
                continue;
            }
            if *processor == slow {
                kept += 1;
            } else {
                spilled_to[*processor] += 1;
            }
        }
        let spilled = spilled_to.iter().sum();
        let spilled_to = spilled_to
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .max_by_key(|(_, n)| **n)
            .map(|(i, _)| ids[i].clone());
        Some(SlowAct {
            slowed_ms,
            fast_ms,
            limit_before,
            limit_peak,
            kept,
            spilled,
            spilled_to,
            spill_began: history.spill_began,
            spill_over: history.spill_over,
        })
    }

    /// What did not happen as the slow act says.
    fn problems(&self) -> Vec<String> {
        let (slow, segment) = (story::SLOW, MIX[story::RUSH_SEGMENT].label());
        let mut problems = Vec::new();
        let grew = match (self.limit_before, self.limit_peak) {
            (Some(before), Some((_, peak))) => peak > before,
            _ => false,
        };
        if !grew {
            problems.push(format!("{slow}'s lane never grew while it was slow"));
        }
        if self.spilled == 0 {
            problems.push(format!(
                "no {segment} payment spilled while {slow} was slow"
            ));
        }
        if self.kept == 0 {
            problems.push(format!(
                "{slow} kept none of the {segment} payments while it was slow"
            ));
        }
        if self.spilled > 0 && self.fast_ms.is_some() && self.spill_over.is_none() {
            problems.push(format!("{segment} payments never all came back to {slow}"));
        }
        problems
    }
}

impl Findings {
    /// `ids`: processor ids in registry order (the history's indices).
    pub fn find(history: &History, ids: &[String]) -> Self {
        let phase = |i: usize| history.phases.get(i).copied();
        let outage_ms = phase(story::OUTAGE);
        let failing: Vec<(i64, &crate::timeline::Alert)> = history
            .alerts
            .iter()
            .filter(|(_, a)| {
                a.processor_id == story::FAILING && a.is_processor_scope() && a.kind != "anomaly"
            })
            .map(|(at, a)| (*at, a))
            .collect();
        let after = |from: Option<i64>| {
            let from = from.unwrap_or(i64::MAX);
            failing.iter().filter(move |(at, _)| *at >= from)
        };
        let first_alert = after(outage_ms)
            .next()
            .map(|(at, a)| (*at, a.to_status.clone(), a.reason.clone()));
        let down = after(outage_ms)
            .find(|(_, a)| a.to_status == "DOWN")
            .map(|(at, a)| (*at, a.reason.clone()));
        let down_at = down.as_ref().map(|(at, _)| *at);
        let down_until = after(down_at)
            .find(|(_, a)| a.from_status == "DOWN")
            .map(|(at, _)| *at);
        let degraded_ms = after(down_at)
            .find(|(_, a)| a.to_status == "DEGRADED")
            .map(|(at, _)| *at);
        let healthy_ms = after(degraded_ms)
            .find(|(_, a)| a.to_status == "HEALTHY")
            .map(|(at, _)| *at);
        let final_status = failing
            .last()
            .map_or("HEALTHY".to_owned(), |(_, a)| a.to_status.clone());

        let recs = &history.recommendations;
        let is_alternative = |p: &Option<String>| p.as_deref() == Some(story::ALTERNATIVE);
        let recommendation_moved_ms = recs
            .iter()
            .find(|(at, p)| outage_ms.is_some_and(|o| *at >= o) && is_alternative(p))
            .map(|(at, _)| *at);
        let recommended_alternative_while_down = match down_at {
            None => false,
            Some(down) => {
                let until = down_until.unwrap_or(i64::MAX);
                // In force at the end of the DOWN stretch, and every change
                // within it: the alternative.
                let in_force = recs.iter().rev().find(|(at, _)| *at < until);
                in_force.is_some_and(|(_, p)| is_alternative(p))
                    && recs
                        .iter()
                        .filter(|(at, _)| *at >= down && *at < until)
                        .all(|(_, p)| is_alternative(p))
            }
        };
        let recommendation_back_ms = recs
            .iter()
            .find(|(at, p)| {
                recommendation_moved_ms.is_some_and(|m| *at > m)
                    && p.as_deref() == Some(story::FAILING)
            })
            .map(|(at, _)| *at);

        let recovery_ms = phase(story::RECOVERY);
        let failing_index = ids.iter().position(|id| id == story::FAILING);
        let reroute = |segment: usize, from: usize, to: usize, at_ms: i64| Reroute {
            segment: MIX[segment].label(),
            from: ids[from].clone(),
            to: ids[to].clone(),
            at_ms,
        };
        // The failing processor's segments (their route when the outage
        // began), and the first payment of each executed elsewhere after.
        let mut rerouted = Vec::new();
        if let (Some(outage), Some(failing)) = (outage_ms, failing_index) {
            for segment in 0..MIX.len() {
                let route_then = history
                    .routes
                    .iter()
                    .rfind(|(s, sw)| *s == segment && sw.since_ms < outage)
                    .map(|(_, sw)| sw.to);
                if route_then != Some(failing) {
                    continue;
                }
                let first_elsewhere = history
                    .payments
                    .iter()
                    .filter(|(at, s, p)| *s == segment && *at >= outage && *p != failing)
                    .min_by_key(|(at, _, _)| *at);
                if let Some((at, _, p)) = first_elsewhere {
                    rerouted.push(reroute(segment, failing, *p, *at));
                }
            }
            rerouted.sort_by_key(|r| r.at_ms);
        }
        // Its segments' routes coming back to it once it recovers.
        let returned: Vec<Reroute> = history
            .routes
            .iter()
            .filter(|(_, sw)| {
                Some(sw.to) == failing_index
                    && sw.from.is_some()
                    && recovery_ms.is_some_and(|r| sw.since_ms >= r)
            })
            .map(|(segment, sw)| {
                reroute(
                    *segment,
                    sw.from.expect("filtered on a previous route"),
                    sw.to,
                    sw.since_ms,
                )
            })
            .collect();
        Self {
            outage_ms,
            recovery_ms,
            recovered_ms: phase(story::RECOVERY + 1),
            first_alert,
            down,
            down_until,
            degraded_ms,
            healthy_ms,
            final_status,
            recommendation_moved_ms,
            recommended_alternative_while_down,
            recommendation_back_ms,
            rerouted,
            returned,
            slow: SlowAct::find(history, ids),
        }
    }

    /// What did not happen as the story says; empty when all did.
    pub fn problems(&self, totals: &Totals) -> Vec<String> {
        let f = story::FAILING;
        let mut problems = Vec::new();
        if self.down.is_none() {
            problems.push(format!("{f} never went DOWN during the outage"));
        } else if !self.recommended_alternative_while_down {
            problems.push(format!(
                "the {}/{} recommendation was not {} while {f} was DOWN",
                story::WATCHED_METHOD,
                story::WATCHED_COUNTRY,
                story::ALTERNATIVE
            ));
        }
        if self.down.is_some() && self.rerouted.is_empty() {
            problems.push(format!("the router never moved {f}'s payments elsewhere"));
        }
        if self.down.is_some() && self.degraded_ms.is_none() {
            problems.push(format!("{f} did not recover through DEGRADED"));
        }
        if self.degraded_ms.is_some() && self.healthy_ms.is_none() {
            problems.push(format!("{f} did not get back to HEALTHY"));
        }
        if self.final_status != "HEALTHY" {
            problems.push(format!("{f} ended {}", self.final_status));
        }
        match &self.slow {
            Some(act) => problems.extend(act.problems()),
            None => problems.push(format!("{} never slowed down", story::SLOW)),
        }
        if totals.accepted < story::MIN_PAYMENTS {
            problems.push(format!(
                "only {} payments were accepted (the story needs {})",
                totals.accepted,
                story::MIN_PAYMENTS
            ));
        }
        if totals.pending() > 0 {
            problems.push(format!(
                "{} accepted payments never reached a known outcome",
                totals.pending()
            ));
        }
        if totals.ledger_matches() == Some(false) {
            problems.push("the router's ledger disagrees with the processors' books".to_owned());
        }
        problems
    }
}
