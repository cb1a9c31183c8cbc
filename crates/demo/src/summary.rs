//! The end of the demo: what happened, in figures, and whether it is the story
//! the demo promises (the exit code says so). Pure: computed from the
//! [`History`] the observer kept and the counters read at the end.

use std::fmt;

use crate::clock::{Compression, clock_text, duration_text};
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

/// The summary as printed.
pub struct Report<'a> {
    pub findings: &'a Findings,
    pub totals: &'a Totals,
    pub compression: Compression,
    pub wall_ms: i64,
    pub story_ms: i64,
    /// Stopped by Ctrl-C before the end of the story.
    pub interrupted: bool,
}

impl Report<'_> {
    /// A story duration, with its wall-clock length when compressed.
    fn took(&self, story_ms: i64) -> String {
        let speed = self.compression.speed();
        if speed == 1 {
            duration_text(story_ms)
        } else {
            format!(
                "{} ({:.1} s wall)",
                duration_text(story_ms),
                story_ms as f64 / f64::from(speed) / 1000.0
            )
        }
    }
}

impl Report<'_> {
    /// The slow act's lines: the lane, the spill share, the return.
    fn slow_act(&self, f: &mut fmt::Formatter<'_>, act: &SlowAct) -> fmt::Result {
        let segment = MIX[story::RUSH_SEGMENT].label();
        write!(
            f,
            "  slow         {} answered in {} from {}",
            story::SLOW,
            duration_text(story::SLOW_DELAY_MS),
            clock_text(act.slowed_ms)
        )?;
        match act.fast_ms {
            Some(fast) => write!(f, " to {}", clock_text(fast))?,
            None => write!(f, " to the end")?,
        }
        match (act.limit_before, act.limit_peak) {
            (Some(before), Some((at, peak))) if peak > before => writeln!(
                f,
                "; its lane grew from {before} to {peak} sends in flight in {} ({})",
                self.took(at - act.slowed_ms),
                clock_text(at)
            )?,
            (Some(before), _) => writeln!(f, "; its lane stayed at {before} sends in flight")?,
            _ => writeln!(f)?,
        }
        let whole = act.kept + act.spilled;
        match (&act.spilled_to, act.spill_began) {
            (Some(to), Some(began)) => writeln!(
                f,
                "               {segment} while it was slow: {} on {}, {} spilled to {to} ({}), from {}, {} after it slowed",
                act.kept,
                story::SLOW,
                act.spilled,
                share(act.spilled, whole),
                clock_text(began),
                self.took(began - act.slowed_ms)
            )?,
            _ => writeln!(
                f,
                "               {segment} while it was slow: {} on {}, none spilled",
                act.kept,
                story::SLOW
            )?,
        }
        match (act.fast_ms, act.spill_over) {
            (Some(fast), Some(over)) => writeln!(
                f,
                "               back: every {segment} payment on {} from {}, {} after it was fast again",
                story::SLOW,
                clock_text(over),
                self.took(over - fast)
            ),
            (Some(_), None) if act.spilled > 0 => writeln!(
                f,
                "               back: {segment} payments never all came back to {}",
                story::SLOW
            ),
            _ => Ok(()),
        }
    }
}

fn share(part: u64, whole: u64) -> String {
    if whole == 0 {
        "-".to_owned()
    } else {
        format!("{:.1}%", part as f64 * 100.0 / whole as f64)
    }
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (t, x) = (self.totals, self.findings);
        writeln!(
            f,
            "summary ({} of story in {:.1} s)",
            duration_text(self.story_ms),
            self.wall_ms as f64 / 1000.0
        )?;
        writeln!(
            f,
            "  payments     {} sent through POST /payments: {} accepted, {} refused, {} unanswered",
            t.sent, t.accepted, t.refused, t.unanswered
        )?;
        let concluded = t.approved() + t.declined();
        writeln!(
            f,
            "               {} approved ({}), {} declined, {} pending",
            t.approved(),
            share(t.approved(), concluded),
            t.declined(),
            t.pending()
        )?;
        writeln!(
            f,
            "  processors   (each one's own counters; attempts include errors the router retried)"
        )?;
        writeln!(
            f,
            "               {:<12} {:>8} {:>8} {:>8} {:>7} {:>7}",
            "", "attempts", "approved", "declined", "errors", "ledger"
        )?;
        for p in &t.processors {
            let ledger = p.ledger.map_or("?".to_owned(), |l| l.to_string());
            writeln!(
                f,
                "               {:<12} {:>8} {:>8} {:>8} {:>7} {:>7}",
                p.id, p.attempts, p.approved, p.declined, p.errors, ledger
            )?;
        }
        match t.ledger_matches() {
            Some(true) => writeln!(
                f,
                "  ledger       GET /payments-summary equals every processor's books ({} payments)",
                t.approved()
            )?,
            Some(false) => writeln!(
                f,
                "  ledger       GET /payments-summary DIFFERS from the processors' books"
            )?,
            None => writeln!(f, "  ledger       could not be read")?,
        }
        let Some(outage) = x.outage_ms else {
            return writeln!(f, "  outage       the story stopped before the outage");
        };
        let since = |at: i64| self.took(at - outage);
        writeln!(
            f,
            "  outage       {} failing from {}{}{}",
            story::FAILING,
            clock_text(outage),
            x.recovery_ms.map_or(String::new(), |r| format!(
                ", recovering from {}",
                clock_text(r)
            )),
            x.recovered_ms.map_or(String::new(), |r| format!(
                ", recovered from {}",
                clock_text(r)
            ))
        )?;
        match &x.first_alert {
            Some((at, status, reason)) => {
                write!(
                    f,
                    "  detected     {} after it began: {status} at {} ({reason})",
                    since(*at),
                    clock_text(*at)
                )?;
                match &x.down {
                    Some((down, reason)) if *down != *at => writeln!(
                        f,
                        "; DOWN at {}, {} after it began ({reason})",
                        clock_text(*down),
                        since(*down)
                    )?,
                    _ => writeln!(f)?,
                }
            }
            None => writeln!(f, "  detected     never")?,
        }
        match x.rerouted.first() {
            Some(r) => writeln!(
                f,
                "  rerouted     router: first {} payment on {} {} after it began ({})",
                r.segment,
                r.to,
                since(r.at_ms),
                clock_text(r.at_ms)
            )?,
            None => writeln!(f, "  rerouted     router: never")?,
        }
        match x.recommendation_moved_ms {
            Some(at) => writeln!(
                f,
                "               recommendation: {}/{} -> {} {} after it began ({})",
                story::WATCHED_METHOD,
                story::WATCHED_COUNTRY,
                story::ALTERNATIVE,
                since(at),
                clock_text(at)
            )?,
            None => writeln!(
                f,
                "               recommendation: never moved to {}",
                story::ALTERNATIVE
            )?,
        }
        match (x.recovery_ms, x.degraded_ms, x.healthy_ms) {
            (Some(recovery), Some(degraded), Some(healthy)) => {
                write!(
                    f,
                    "  recovered    DEGRADED {} after recovery began ({}), HEALTHY {} after it began ({})",
                    self.took(degraded - recovery),
                    clock_text(degraded),
                    self.took(healthy - recovery),
                    clock_text(healthy)
                )?;
                match x.recovered_ms {
                    Some(back) if healthy >= back => writeln!(
                        f,
                        ", {} after the processor was fully back",
                        self.took(healthy - back)
                    )?,
                    _ => writeln!(f)?,
                }
                if let Some(r) = x.returned.first() {
                    writeln!(
                        f,
                        "               router: {} payments back on {} at {}",
                        r.segment,
                        r.to,
                        clock_text(r.at_ms)
                    )?;
                }
                if let Some(back) = x.recommendation_back_ms {
                    writeln!(
                        f,
                        "               recommendation: {}/{} back to {} at {}",
                        story::WATCHED_METHOD,
                        story::WATCHED_COUNTRY,
                        story::FAILING,
                        clock_text(back)
                    )?;
                }
            }
            _ => writeln!(
                f,
                "  recovered    no (status at the end: {})",
                x.final_status
            )?,
        }
        match &x.slow {
            Some(act) => self.slow_act(f, act)?,
            None => writeln!(f, "  slow         the story stopped before the slow act")?,
        }
        let problems = x.problems(t);
        if self.interrupted {
            writeln!(
                f,
                "  verdict      interrupted at {}: the story did not finish",
                clock_text(self.story_ms)
            )
        } else if problems.is_empty() {
            let spill = x.slow.as_ref().map_or(String::new(), |act| {
                format!(
                    "; {} slow -> {} of {} spilled to {} -> back",
                    story::SLOW,
                    share(act.spilled, act.spilled + act.kept),
                    MIX[story::RUSH_SEGMENT].label(),
                    act.spilled_to.as_deref().unwrap_or("-")
                )
            });
            writeln!(
                f,
                "  verdict      the story happened: {} DOWN -> {}/{} on {} -> DEGRADED -> HEALTHY{spill}",
                story::FAILING,
                story::WATCHED_METHOD,
                story::WATCHED_COUNTRY,
                story::ALTERNATIVE
            )
        } else {
            writeln!(f, "  verdict      the story did NOT happen as expected:")?;
            for p in problems {
                writeln!(f, "               - {p}")?;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::Alert;
    use crate::watch::Switch;

    fn ids() -> Vec<String> {
        [
            "processor_c",
            "processor_a",
            "processor_e",
            "processor_d",
            "processor_b",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    fn transition(at: i64, processor: &str, from: &str, to: &str) -> (i64, Alert) {
        (
            at,
            Alert {
                id: at as u64,
                processor_id: processor.into(),
                from_status: from.into(),
                to_status: to.into(),
                timestamp: reroute_core::Timestamp::from_millis(at),
                reason: format!("rule for {to}"),
                kind: "transition".into(),
                scope: "processor".into(),
                payment_method: None,
                country: None,
                authorization_rate: 0.9,
                error_rate: 0.1,
                total_transactions: 50,
            },
        )
    }

    /// The story as it should go.
    fn history() -> History {
        History {
            alerts: vec![
                transition(160_000, "processor_a", "HEALTHY", "DEGRADED"),
                transition(165_000, "processor_a", "DEGRADED", "DOWN"),
                transition(340_000, "processor_a", "DOWN", "DEGRADED"),
                transition(440_000, "processor_a", "DEGRADED", "HEALTHY"),
            ],
            recommendations: vec![
                (0, Some("processor_c".into())),
                (20_000, Some("processor_a".into())),
                (160_100, Some("processor_c".into())),
                (445_000, Some("processor_a".into())),
            ],
            routes: vec![
                (
                    1,
                    Switch {
                        from: None,
                        to: 1,
                        since_ms: 400,
                    },
                ),
                (
                    1,
                    Switch {
                        from: Some(1),
                        to: 4,
                        since_ms: 150_400,
                    },
                ),
                (
                    1,
                    Switch {
                        from: Some(4),
                        to: 1,
                        since_ms: 320_000,
                    },
                ),
            ],
            phases: vec![0, 150_000, 300_000, 420_000, 600_000, 620_000, 680_000],
            payments: vec![
                (400, 1, 1),
                (149_000, 1, 1),
                (150_100, 0, 0),
                (150_400, 1, 4),
                (150_800, 1, 1),
                (151_200, 1, 4),
                // PIX/BR while processor_c is slow: 3 kept, 2 spilled to
                // processor_a; then back.
                (621_000, 0, 0),
                (621_500, 0, 1),
                (622_000, 0, 1),
                (623_000, 0, 0),
                (624_000, 0, 0),
                (681_000, 0, 0),
            ],
            lanes: vec![
                (610_000, lane(4)),
                (622_000, lane(6)),
                (626_000, lane(8)),
                (690_000, lane(8)),
            ],
            spill_began: Some(621_500),
            spill_over: Some(681_000),
        }
    }

    fn lane(limit: u32) -> crate::timeline::Lane {
        crate::timeline::Lane {
            limit,
            in_flight: u64::from(limit),
            ..Default::default()
        }
    }

    fn totals() -> Totals {
        Totals {
            sent: 1_500,
            accepted: 1_500,
            refused: 0,
            unanswered: 0,
            processors: vec![ProcessorTotals {
                id: "processor_a".into(),
                attempts: 700,
                approved: 1_200,
                declined: 300,
                errors: 200,
                ledger: Some(1_200),
            }],
        }
    }

    #[test]
    fn the_expected_story_has_its_milestones_and_no_problem() {
        let x = Findings::find(&history(), &ids());
        assert_eq!(x.outage_ms, Some(150_000));
        assert_eq!(x.first_alert.as_ref().map(|a| a.0), Some(160_000));
        assert_eq!(x.down.as_ref().map(|d| d.0), Some(165_000));
        assert_eq!(x.down_until, Some(340_000));
        assert_eq!(x.degraded_ms, Some(340_000));
        assert_eq!(x.healthy_ms, Some(440_000));
        assert_eq!(x.final_status, "HEALTHY");
        assert_eq!(x.recommendation_moved_ms, Some(160_100));
        assert!(x.recommended_alternative_while_down);
        assert_eq!(x.recommendation_back_ms, Some(445_000));
        assert_eq!(
            x.rerouted,
            vec![Reroute {
                segment: "CARD/BR".into(),
                from: "processor_a".into(),
                to: "processor_b".into(),
                at_ms: 150_400
            }]
        );
        assert_eq!(x.returned.len(), 1);
        assert_eq!(x.problems(&totals()), Vec::<String>::new());
    }

    #[test]
    fn the_slow_act_reports_the_lane_the_spill_share_and_the_return() {
        let x = Findings::find(&history(), &ids());
        let act = x.slow.clone().unwrap();
        assert_eq!(act.limit_before, Some(4));
        assert_eq!(act.limit_peak, Some((626_000, 8)));
        assert_eq!((act.kept, act.spilled), (3, 2));
        assert_eq!(act.spilled_to.as_deref(), Some("processor_a"));
        let t = totals();
        let report = Report {
            findings: &x,
            totals: &t,
            compression: Compression::new(10).unwrap(),
            wall_ms: 71_000,
            story_ms: 710_000,
            interrupted: false,
        }
        .to_string();
        for part in [
            "slow         processor_c answered in 2.0 s from 10:20 to 11:20; its lane grew from 4 to 8 sends in flight in 6.0 s (0.6 s wall) (10:26)",
            "PIX/BR while it was slow: 3 on processor_c, 2 spilled to processor_a (40.0%), from 10:21, 1.5 s (0.1 s wall) after it slowed",
            "back: every PIX/BR payment on processor_c from 11:21, 1.0 s (0.1 s wall) after it was fast again",
            "processor_c slow -> 40.0% of PIX/BR spilled to processor_a -> back",
        ] {
            assert!(report.contains(part), "{part}\n{report}");
        }
    }

    #[test]
    fn a_slow_act_without_growth_spill_or_return_fails_the_story() {
        let mut h = history();
        h.lanes = vec![(610_000, lane(4)), (630_000, lane(4))];
        h.payments
            .retain(|(at, s, p)| !(*s == 0 && *at > 600_000 && *p == 1));
        let problems = Findings::find(&h, &ids()).problems(&totals());
        let text = problems.join("\n");
        assert!(text.contains("processor_c's lane never grew"), "{text}");
        assert!(text.contains("no PIX/BR payment spilled"), "{text}");
        let mut h = history();
        h.spill_over = None;
        let problems = Findings::find(&h, &ids()).problems(&totals());
        assert!(
            problems
                .iter()
                .any(|p| p.contains("never all came back to processor_c")),
            "{problems:?}"
        );
        let mut h = history();
        h.phases.truncate(5);
        let problems = Findings::find(&h, &ids()).problems(&totals());
        assert!(
            problems.iter().any(|p| p.contains("never slowed down")),
            "{problems:?}"
        );
    }

    #[test]
    fn a_processor_that_never_goes_down_fails_the_story() {
        let mut h = history();
        h.alerts
            .retain(|(_, a)| a.to_status != "DOWN" && a.from_status != "DOWN");
        let problems = Findings::find(&h, &ids()).problems(&totals());
        assert!(
            problems.iter().any(|p| p.contains("never went DOWN")),
            "{problems:?}"
        );
    }

    #[test]
    fn a_recommendation_that_stays_on_the_failing_processor_fails_the_story() {
        let mut h = history();
        h.recommendations = vec![(0, Some("processor_a".into()))];
        let problems = Findings::find(&h, &ids()).problems(&totals());
        assert!(
            problems
                .iter()
                .any(|p| p.contains("recommendation was not processor_c")),
            "{problems:?}"
        );
    }

    #[test]
    fn ending_degraded_or_short_of_payments_or_books_fails_the_story() {
        let mut h = history();
        h.alerts.pop();
        let mut t = totals();
        t.accepted = 900;
        t.processors[0].ledger = Some(1_199);
        let problems = Findings::find(&h, &ids()).problems(&t);
        let text = problems.join("\n");
        assert!(text.contains("did not get back to HEALTHY"), "{text}");
        assert!(text.contains("ended DEGRADED"), "{text}");
        assert!(text.contains("only 900 payments"), "{text}");
        assert!(text.contains("ledger disagrees"), "{text}");
    }

    #[test]
    fn payments_without_an_outcome_are_pending() {
        let mut t = totals();
        t.accepted = 1_510;
        assert_eq!(t.pending(), 10);
        assert!(
            Findings::find(&history(), &ids())
                .problems(&t)
                .iter()
                .any(|p| p.contains("10 accepted payments never reached"))
        );
    }

    #[test]
    fn the_report_gives_detection_reroute_and_recovery_times() {
        let x = Findings::find(&history(), &ids());
        let t = totals();
        let report = Report {
            findings: &x,
            totals: &t,
            compression: Compression::new(10).unwrap(),
            wall_ms: 61_000,
            story_ms: 600_000,
            interrupted: false,
        }
        .to_string();
        assert!(
            report.contains("detected     10 s (1.0 s wall) after it began: DEGRADED at 02:40"),
            "{report}"
        );
        assert!(
            report.contains("DOWN at 02:45, 15 s (1.5 s wall) after it began"),
            "{report}"
        );
        assert!(
            report.contains("router: first CARD/BR payment on processor_b 0.4 s (0.0 s wall)"),
            "{report}"
        );
        assert!(
            report.contains("recommendation: PIX/BR -> processor_c 10 s"),
            "{report}"
        );
        assert!(
            report.contains("HEALTHY 2:20 min (14.0 s wall) after it began (07:20)"),
            "{report}"
        );
        assert!(
            report.contains("verdict      the story happened"),
            "{report}"
        );
    }

    #[test]
    fn an_interrupted_story_says_so_rather_than_listing_what_did_not_happen() {
        let mut h = history();
        h.phases.truncate(2);
        h.alerts.truncate(2);
        let x = Findings::find(&h, &ids());
        let t = totals();
        let report = Report {
            findings: &x,
            totals: &t,
            compression: Compression::new(10).unwrap(),
            wall_ms: 20_000,
            story_ms: 200_000,
            interrupted: true,
        }
        .to_string();
        assert!(
            report.contains("verdict      interrupted at 03:20"),
            "{report}"
        );
        assert!(!report.contains("did NOT happen"), "{report}");
    }
}
