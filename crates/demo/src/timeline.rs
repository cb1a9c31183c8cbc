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
                write!(f, " | {} payments accepted", t.accepted_so_far)
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

    #[test]
    fn a_traffic_line_counts_per_processor_and_names_the_failing_ones() {
        let line = at(
            180_000,
            Event::Traffic(TrafficLine {
                stretch_ms: 30_000,
                processors: vec![
                    ("processor_c".into(), 18, 4, 0),
                    ("processor_a".into(), 1, 0, 31),
                    ("processor_b".into(), 17, 5, 0),
                ],
                accepted_so_far: 450,
            }),
        );
        assert_eq!(
            line,
            "03:00     last 30 s: approved c 18 a 1 b 17 | declined 9 | errors 31 (processor_a 31) | 450 payments accepted"
        );
    }
}
