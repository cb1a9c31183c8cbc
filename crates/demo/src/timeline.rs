//! What the demo prints while the story plays: one line per event, stamped
//! with the story clock. Pure formatting; [`crate::watch`] finds the events.

use std::fmt;

use crate::clock::{clock_text, duration_text};

/// Something worth a line.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The story moves on (the demo changed a processor's behaviour).
    Phase { number: usize, title: String },
    /// A status transition from `GET /api/v1/alerts`.
    Transition(Alert),
    /// An anomaly alert: a rate departed from the processor's baseline.
    Anomaly(Alert),
    /// The recommended processor for the watched segment changed
    /// (`GET /api/v1/routing/recommend`).
    Recommendation {
        segment: String,
        now: Option<Pick>,
        /// The previous pick and its status now.
        before: Option<Pick>,
    },
    /// The router now executes a segment's payments on another processor
    /// (seen in the processors' books).
    Route {
        segment: String,
        processor: String,
        previous: Option<String>,
    },
    /// Outcomes over the last stretch, from the processors' own counters.
    Traffic(TrafficLine),
    /// A processor's limit of sends in flight changed (the dashboard's
    /// snapshot).
    Lane {
        processor: String,
        from: u32,
        lane: Lane,
    },
    /// A segment's payments started to spill from a processor that cannot
    /// keep up to the next by fee (seen in the processors' books), with the
    /// lane that could not keep up as the router last showed it.
    Spill {
        segment: String,
        from: String,
        to: String,
        lane: Option<Lane>,
    },
    /// None of the segment's payments spill any more: all are on `processor`
    /// again.
    SpillOver {
        segment: String,
        processor: String,
        /// Spilled, and kept on `processor`, since the spill began.
        spilled: u64,
        kept: u64,
        lane: Option<Lane>,
    },
}

/// One processor's lane as the dashboard's snapshot shows it, in story
/// units (a rate per story second, a wait in story ms).
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Deserialize)]
pub struct Lane {
    pub limit: u32,
    pub in_flight: u64,
    pub waiting: u64,
    /// Payments per second it can carry at its limit and latency.
    pub throughput: f64,
    pub expected_wait_ms: u64,
    /// Payments spilled from it since the router started.
    pub spilled: u64,
}

impl Lane {
    /// The snapshot's figures (wall time) in story time.
    pub fn in_story_time(self, speed: u32) -> Self {
        Lane {
            throughput: self.throughput / f64::from(speed),
            expected_wait_ms: self.expected_wait_ms * u64::from(speed),
            ..self
        }
    }
}

impl fmt::Display for Lane {
    /// `8 in flight, 3 waiting, carries 3.9/s, expected wait 0.8 s`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} in flight, {} waiting, carries {:.1}/s, expected wait {}",
            self.in_flight,
            self.waiting,
            self.throughput,
            wait_text(self.expected_wait_ms)
        )
    }
}

fn wait_text(ms: u64) -> String {
    if ms == 0 {
        "none".to_owned()
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}

/// One alert as the API reports it.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct Alert {
    pub id: u64,
    pub processor_id: String,
    pub from_status: String,
    pub to_status: String,
    pub timestamp: reroute_core::Timestamp,
    pub reason: String,
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub scope: String,
    pub payment_method: Option<String>,
    pub country: Option<String>,
    #[serde(default)]
    pub authorization_rate: f64,
    #[serde(default)]
    pub error_rate: f64,
    #[serde(default)]
    pub total_transactions: u32,
}

impl Alert {
    pub fn is_processor_scope(&self) -> bool {
        self.scope != "segment"
    }

    pub fn segment(&self) -> Option<String> {
        match (&self.payment_method, &self.country) {
            (None, None) => None,
            (m, c) => Some(format!(
                "{}/{}",
                m.as_deref().unwrap_or("*"),
                c.as_deref().unwrap_or("*")
            )),
        }
    }
}

/// A recommendation line.
#[derive(Debug, Clone, PartialEq)]
pub struct Pick {
    pub processor: String,
    pub status: String,
    pub score: f64,
    pub authorization_rate: f64,
    pub transactions: u32,
}

/// Per processor: approved, declined, errors over a stretch of the story.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TrafficLine {
    pub stretch_ms: i64,
    /// (processor id, approved, declined, errors), in registry order.
    pub processors: Vec<(String, u64, u64, u64)>,
    pub accepted_so_far: u64,
    /// (processor id, payments the router spilled from it over the
    /// stretch), those with any.
    pub spilled: Vec<(String, u64)>,
}

/// An event at a story instant.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub at_ms: i64,
    pub event: Event,
}

fn percent(rate: f64) -> String {
    format!("{:.0}%", rate * 100.0)
}

/// `processor_a` -> `a`, for the compact traffic line.
fn short(id: &str) -> &str {
    id.strip_prefix("processor_").unwrap_or(id)
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = clock_text(self.at_ms);
        match &self.event {
            Event::Phase { number, title } => write!(f, "{at}  == {number}. {title}"),
            Event::Transition(a) => {
                let figures = format!(
                    "error rate {}, authorization {}, {} tx in window",
                    percent(a.error_rate),
                    percent(a.authorization_rate),
                    a.total_transactions
                );
                match a.segment().filter(|_| !a.is_processor_scope()) {
                    None => write!(
                        f,
                        "{at}  !! {} {} -> {}: {} ({figures})",
                        a.processor_id, a.from_status, a.to_status, a.reason
                    ),
                    Some(segment) => write!(
                        f,
                        "{at}     {} segment {segment} {} -> {}: {}",
                        a.processor_id, a.from_status, a.to_status, a.reason
                    ),
                }
            }
            Event::Anomaly(a) => write!(
                f,
                "{at}  ~~ {} ({}): {}",
                a.processor_id, a.to_status, a.reason
            ),
            Event::Recommendation {
                segment,
                now,
                before,
            } => {
                write!(f, "{at}  >> {segment} recommendation: ")?;
                match now {
                    Some(p) if p.transactions == 0 => {
                        write!(f, "{} (no transactions yet)", p.processor)?
                    }
                    Some(p) => write!(
                        f,
                        "{} ({}, authorization {}, score {:.1})",
                        p.processor,
                        p.status,
                        percent(p.authorization_rate),
                        p.score
                    )?,
                    None => write!(f, "none: every processor is DOWN")?,
                }
                if let Some(b) = before {
                    write!(f, "; was {} (now {})", b.processor, b.status)?;
                }
                Ok(())
            }
            Event::Route {
                segment,
                processor,
                previous,
            } => match previous {
                None => write!(
                    f,
                    "{at}  -> router: {segment} payments executed by {processor}"
                ),
                Some(p) => write!(
                    f,
                    "{at}  -> router: {segment} payments now executed by {processor} (was {p})"
                ),
            },
            Event::Traffic(t) => {
                let approved: Vec<String> = t
                    .processors
                    .iter()
                    .map(|(id, ok, _, _)| format!("{} {ok}", short(id)))
                    .collect();
                let declined: u64 = t.processors.iter().map(|(_, _, d, _)| d).sum();
                let errors: u64 = t.processors.iter().map(|(_, _, _, e)| e).sum();
                write!(
                    f,
                    "{at}     last {}: approved {} | declined {declined} | errors {errors}",
                    duration_text(t.stretch_ms),
                    approved.join(" ")
                )?;
                let failing: Vec<String> = t
                    .processors
                    .iter()
                    .filter(|(_, _, _, e)| *e > 0)
                    .map(|(id, _, _, e)| format!("{id} {e}"))
                    .collect();
                if !failing.is_empty() {
                    write!(f, " ({})", failing.join(", "))?;
                }
                if !t.spilled.is_empty() {
                    let spills: Vec<String> = t
                        .spilled
                        .iter()
                        .map(|(id, n)| format!("{id} {n}"))
                        .collect();
                    let total: u64 = t.spilled.iter().map(|(_, n)| n).sum();
                    write!(f, " | spilled {total} (from {})", spills.join(", "))?;
                }
                write!(f, " | {} payments accepted", t.accepted_so_far)
            }
            Event::Lane {
                processor,
                from,
                lane,
            } => {
                let verb = if lane.limit > *from {
                    "grows"
                } else {
                    "backs off"
                };
                write!(
                    f,
                    "{at}  || {processor} lane {verb}: {from} -> {} sends in flight ({lane})",
                    lane.limit
                )
            }
            Event::Spill {
                segment,
                from,
                to,
                lane,
            } => {
                write!(
                    f,
                    "{at}  -> router: {segment} payments spill from {from} to {to}: {from} cannot keep up"
                )?;
                match lane {
                    Some(l) => write!(
                        f,
                        " ({} of {} sends in flight, {} waiting, expected wait {})",
                        l.in_flight,
                        l.limit,
                        l.waiting,
                        wait_text(l.expected_wait_ms)
                    ),
                    None => Ok(()),
                }
            }
            Event::SpillOver {
                segment,
                processor,
                spilled,
                kept,
                lane,
            } => {
                write!(
                    f,
                    "{at}  -> router: {segment} payments all on {processor} again: it keeps up ({spilled} spilled, {kept} kept since the spill began)"
                )?;
                match lane {
                    Some(l) => write!(f, "; lane {} sends, {l}", l.limit),
                    None => Ok(()),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(scope: &str, to: &str) -> Alert {
        Alert {
            id: 1,
            processor_id: "processor_a".into(),
            from_status: "HEALTHY".into(),
            to_status: to.into(),
            timestamp: reroute_core::Timestamp::from_millis(0),
            reason: "High error/timeout rate (>50%)".into(),
            kind: "transition".into(),
            scope: scope.into(),
            payment_method: (scope == "segment").then(|| "CARD".into()),
            country: (scope == "segment").then(|| "BR".into()),
            authorization_rate: 0.95,
            error_rate: 0.52,
            total_transactions: 50,
        }
    }

    fn at(at_ms: i64, event: Event) -> String {
        Entry { at_ms, event }.to_string()
    }

    #[test]
    fn a_processor_transition_names_the_rule_and_the_figures() {
        let line = at(161_000, Event::Transition(alert("processor", "DOWN")));
        assert_eq!(
            line,
            "02:41  !! processor_a HEALTHY -> DOWN: High error/timeout rate (>50%) (error rate 52%, authorization 95%, 50 tx in window)"
        );
    }

    #[test]
    fn a_segment_transition_is_indented_under_its_processor() {
        let line = at(161_000, Event::Transition(alert("segment", "DOWN")));
        assert_eq!(
            line,
            "02:41     processor_a segment CARD/BR HEALTHY -> DOWN: High error/timeout rate (>50%)"
        );
    }

    #[test]
    fn a_recommendation_change_says_what_it_was() {
        let pick = |p: &str, status: &str| Pick {
            processor: p.into(),
            status: status.into(),
            score: 85.04,
            authorization_rate: 0.8004,
            transactions: 50,
        };
        let line = at(
            161_500,
            Event::Recommendation {
                segment: "PIX/BR".into(),
                now: Some(pick("processor_c", "HEALTHY")),
                before: Some(pick("processor_a", "DOWN")),
            },
        );
        assert_eq!(
            line,
            "02:41  >> PIX/BR recommendation: processor_c (HEALTHY, authorization 80%, score 85.0); was processor_a (now DOWN)"
        );
        let none = at(
            0,
            Event::Recommendation {
                segment: "PIX/BR".into(),
                now: None,
                before: None,
            },
        );
        assert!(none.ends_with("none: every processor is DOWN"), "{none}");
    }

    #[test]
    fn routes_and_phases_read_plainly() {
        assert_eq!(
            at(
                150_400,
                Event::Route {
                    segment: "CARD/BR".into(),
                    processor: "processor_b".into(),
                    previous: Some("processor_a".into()),
                }
            ),
            "02:30  -> router: CARD/BR payments now executed by processor_b (was processor_a)"
        );
        assert_eq!(
            at(
                0,
                Event::Phase {
                    number: 1,
                    title: "Normal".into()
                }
            ),
            "00:00  == 1. Normal"
        );
    }

    /// A 30-second traffic line: (processor, approved, declined, errors) in
    /// registry order, and (processor, payments spilled from it).
    fn traffic(
        processors: &[(&str, u64, u64, u64)],
        spilled: &[(&str, u64)],
        accepted_so_far: u64,
    ) -> Event {
        Event::Traffic(TrafficLine {
            stretch_ms: 30_000,
            processors: processors
                .iter()
                .map(|&(p, approved, declined, errors)| (p.into(), approved, declined, errors))
                .collect(),
            accepted_so_far,
            spilled: spilled.iter().map(|&(p, n)| (p.into(), n)).collect(),
        })
    }

    #[test]
    fn a_traffic_line_counts_per_processor_and_names_the_failing_ones() {
        let counts = [
            ("processor_c", 18, 4, 0),
            ("processor_a", 1, 0, 31),
            ("processor_b", 17, 5, 0),
        ];
        assert_eq!(
            at(180_000, traffic(&counts, &[], 450)),
            "03:00     last 30 s: approved c 18 a 1 b 17 | declined 9 | errors 31 (processor_a 31) | 450 payments accepted"
        );
        let counts = [("processor_c", 90, 16, 0), ("processor_a", 50, 1, 0)];
        assert_eq!(
            at(660_000, traffic(&counts, &[("processor_c", 30)], 1_900)),
            "11:00     last 30 s: approved c 90 a 50 | declined 17 | errors 0 | spilled 30 (from processor_c 30) | 1900 payments accepted"
        );
    }

    fn lane(limit: u32, in_flight: u64, waiting: u64) -> Lane {
        Lane {
            limit,
            in_flight,
            waiting,
            throughput: 3.94,
            expected_wait_ms: 1_520,
            spilled: 12,
        }
    }

    #[test]
    fn a_lane_line_says_whether_the_limit_grows_or_backs_off_with_its_figures() {
        let grows = Event::Lane {
            processor: "processor_c".into(),
            from: 4,
            lane: lane(6, 6, 3),
        };
        assert_eq!(
            at(622_000, grows),
            "10:22  || processor_c lane grows: 4 -> 6 sends in flight (6 in flight, 3 waiting, carries 3.9/s, expected wait 1.5 s)"
        );
        let backs_off = Event::Lane {
            processor: "processor_c".into(),
            from: 4,
            lane: Lane {
                expected_wait_ms: 0,
                ..lane(3, 3, 0)
            },
        };
        assert_eq!(
            at(621_000, backs_off),
            "10:21  || processor_c lane backs off: 4 -> 3 sends in flight (3 in flight, 0 waiting, carries 3.9/s, expected wait none)"
        );
    }

    #[test]
    fn a_spill_and_its_end_name_the_segment_the_processors_and_the_lane() {
        let spill = Event::Spill {
            segment: "PIX/BR".into(),
            from: "processor_c".into(),
            to: "processor_a".into(),
            lane: Some(lane(8, 8, 6)),
        };
        assert_eq!(
            at(623_000, spill),
            "10:23  -> router: PIX/BR payments spill from processor_c to processor_a: processor_c cannot keep up (8 of 8 sends in flight, 6 waiting, expected wait 1.5 s)"
        );
        let over = Event::SpillOver {
            segment: "PIX/BR".into(),
            processor: "processor_c".into(),
            spilled: 70,
            kept: 210,
            lane: Some(Lane {
                expected_wait_ms: 0,
                ..lane(8, 0, 0)
            }),
        };
        assert_eq!(
            at(681_000, over),
            "11:21  -> router: PIX/BR payments all on processor_c again: it keeps up (70 spilled, 210 kept since the spill began); lane 8 sends, 0 in flight, 0 waiting, carries 3.9/s, expected wait none"
        );
    }

    #[test]
    fn lane_figures_are_told_in_story_time() {
        let wall = lane(8, 8, 6);
        let story = wall.in_story_time(10);
        assert!((story.throughput - 0.394).abs() < 1e-9);
        assert_eq!(story.expected_wait_ms, 15_200);
        assert_eq!(story.limit, 8);
    }
}
