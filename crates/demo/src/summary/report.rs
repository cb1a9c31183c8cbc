//! The summary as printed at the end of the demo: per-processor counts,
//! ledger against books, and the story's milestones in story and wall time.

use std::fmt;

use crate::clock::{Compression, clock_text, duration_text};
use crate::story::{self, MIX};

use super::findings::{Findings, SlowAct, Totals};

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
