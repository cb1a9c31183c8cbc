//! The verdict on one chaos scenario: the audit's invariants, completion,
//! no hot loop, health manners and the alerts an operator would read, each a
//! [`Check`] with a readable detail.

use std::collections::BTreeMap;
use std::time::Duration;

use reroute_sim::StatsSnapshot;
use serde::Serialize;

use crate::audit::Audit;
use crate::chaos::pause::PauseReport;
use crate::chaos::scenario::Scenario;
use crate::chaos::watch::Second;
use crate::drain::Drained;
use crate::router_api::Alert;

/// Sends during `both-down`, per second, that still count as holding the
/// queue: trials and probes, not the load.
pub const HELD_SENDS_PER_S: u64 = 20;

/// One judged property.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub passed: bool,
    pub detail: String,
}

/// What one scenario's run left to judge.
pub struct Observed<'a> {
    pub scenario: Scenario,
    pub rate: f64,
    pub workers: u32,
    pub health_interval_ms: u64,
    pub drain_timeout: Duration,
    pub audit: &'a Audit,
    pub drained: &'a Drained,
    pub seconds: &'a [Second],
    pub health: &'a BTreeMap<String, StatsSnapshot>,
    /// When the fault started and ended, since the load started.
    pub fault_from: Duration,
    pub fault_to: Duration,
    pub pause: Option<&'a PauseReport>,
    /// Processor-scope alerts, oldest first.
    pub alerts: &'a [Alert],
    pub final_status: &'a BTreeMap<String, String>,
}

/// The hot-loop figures: the largest per-second sends that charged nothing
/// and status queries, and the bound they are held to.
#[derive(Debug, Clone, Copy)]
pub struct HotLoop {
    pub max_wasted: u64,
    pub max_lookups: u64,
    pub bound: u64,
}

/// Every check of the scenario, in the report's order.
pub fn checks(r: &Observed<'_>) -> (Vec<Check>, HotLoop) {
    let bound = 3 * r.rate.ceil() as u64 + u64::from(r.workers) + 20;
    let wasted = |s: &Second| s.sends.saturating_sub(s.stored);
    let max_wasted = r.seconds.iter().map(wasted).max().unwrap_or(0);
    let max_lookups = r.seconds.iter().map(|s| s.lookups).max().unwrap_or(0);
    let mut checks = vec![
        Check {
            name: "invariants",
            passed: r.audit.passed(),
            detail: format!(
                "lost {}, doubled {}, charged-unaccepted {}, inconsistencies {}, stuck {:?}",
                r.audit.lost,
                r.audit.doubled,
                r.audit.unexpected,
                r.audit.inconsistencies,
                r.audit.stuck
            ),
        },
        Check {
            name: "completion",
            passed: r.drained.settled,
            detail: format!(
                "drained in {} ms (bound {} ms)",
                r.drained.took.as_millis(),
                r.drain_timeout.as_millis()
            ),
        },
        Check {
            name: "no hot loop",
            passed: max_wasted <= bound && max_lookups <= bound,
            detail: format!(
                "per second at most {max_wasted} sends that charged nothing and {max_lookups} status queries; bound {bound} (3 x rate + workers + 20)"
            ),
        },
    ];
    let limit_kept = r
        .health
        .values()
        .all(|s| s.health_throttled == 0 && s.health_max_per_window <= 1);
    checks.push(Check {
        name: "health rate limit",
        passed: limit_kept,
        detail: r
            .health
            .iter()
            .map(|(p, s)| {
                format!(
                    "{p}: {} calls, {} refused by the limit, at most {} per window",
                    s.health_calls, s.health_throttled, s.health_max_per_window
                )
            })
            .collect::<Vec<_>>()
            .join("; "),
    });
    // The whole seconds of the fault, after its first `settle` seconds.
    let during = |settle: u64| {
        move |s: &&Second| {
            let at = Duration::from_secs(s.at_s);
            at >= r.fault_from + Duration::from_secs(settle)
                && at + Duration::from_secs(1) <= r.fault_to
        }
    };
    match r.scenario {
        Scenario::BothDown => {
            // The first two seconds see the payments in flight fail and
            // the circuits open.
            let held = r
                .seconds
                .iter()
                .filter(during(2))
                .map(|s| s.sends)
                .max()
                .unwrap_or(0);
            checks.push(Check {
                name: "queue held",
                passed: held <= HELD_SENDS_PER_S,
                detail: format!(
                    "at most {held} sends per second while both were down (bound {HELD_SENDS_PER_S})"
                ),
            });
        }
        Scenario::Health429 => {
            let calls: u64 = r
                .seconds
                .iter()
                .filter(during(0))
                .map(|s| s.health_calls)
                .sum();
            let span = r.seconds.iter().filter(during(0)).count() as u64;
            // Retry-After is the window (the probe interval here): at most
            // one call per processor per interval, plus one at each edge.
            let per_processor = span * 1000 / r.health_interval_ms.max(1) + 2;
            let allowed = per_processor * 2;
            checks.push(Check {
                name: "retry-after honoured",
                passed: calls <= allowed,
                detail: format!(
                    "{calls} health calls in {span} s of storm, both processors (bound {allowed})"
                ),
            });
        }
        _ => {}
    }
    if let Some(pause) = r.pause {
        checks.push(Check {
            name: "taken over",
            passed: pause.taken_over(),
            detail: match pause.taken_over_after_ms {
                Some(ms) => format!(
                    "the {} payments pending at the pause were completed by the running instance {ms} ms after it",
                    pause.pending_at_pause
                ),
                None => format!(
                    "{} of the {} payments pending at the pause were still pending when {} was resumed",
                    pause.pending_at_resume, pause.pending_at_pause, pause.instance
                ),
            },
        });
    }
    checks.push(judge_alerts(r.scenario, r.alerts, r.final_status));
    (
        checks,
        HotLoop {
            max_wasted,
            max_lookups,
            bound,
        },
    )
}

/// What the operator should read in the alerts: see [`Expectation`].
/// `alerts` are the processor-scope alerts, transitions and anomalies.
fn judge_alerts(
    scenario: Scenario,
    alerts: &[Alert],
    final_status: &BTreeMap<String, String>,
) -> Check {
    let expected = scenario.expectation();
    let transitions: Vec<&Alert> = alerts.iter().filter(|a| a.kind == "transition").collect();
    let mut problems = Vec::new();
    for p in expected.down {
        if !transitions
            .iter()
            .any(|a| a.processor_id == *p && a.to_status == "DOWN")
        {
            problems.push(format!("{p} never reported DOWN"));
        }
    }
    for p in expected.noticed {
        if !alerts.iter().any(|a| a.processor_id == *p) {
            problems.push(format!("no alert about {p}"));
        }
    }
    if expected.never_down {
        for a in transitions.iter().filter(|a| a.to_status == "DOWN") {
            problems.push(format!("{} reported DOWN ({})", a.processor_id, a.reason));
        }
    }
    let mut went_down: Vec<&str> = transitions
        .iter()
        .filter(|a| a.to_status == "DOWN")
        .map(|a| a.processor_id.as_str())
        .collect();
    went_down.sort_unstable();
    went_down.dedup();
    for p in went_down {
        let last_down = transitions
            .iter()
            .rposition(|a| a.processor_id == p && a.to_status == "DOWN");
        let recovered = last_down.is_some_and(|i| {
            transitions[i + 1..]
                .iter()
                .any(|a| a.processor_id == p && a.from_status == "DOWN")
        });
        if !recovered {
            problems.push(format!("{p} went DOWN and no recovery was reported"));
        }
    }
    for (p, status) in final_status {
        if status == "DOWN" {
            problems.push(format!("{p} still DOWN at the end"));
        }
    }
    let mut seen: BTreeMap<&str, (Vec<String>, usize)> = BTreeMap::new();
    for a in alerts {
        let entry = seen.entry(a.processor_id.as_str()).or_default();
        if a.kind == "transition" {
            entry.0.push(format!("{}->{}", a.from_status, a.to_status));
        } else {
            entry.1 += 1;
        }
    }
    let seen: Vec<String> = seen
        .iter()
        .map(|(p, (moves, anomalies))| {
            let shown = if moves.len() > 8 {
                format!("{} ... ({} transitions)", moves[..6].join(" "), moves.len())
            } else {
                moves.join(" ")
            };
            format!("{p}: {shown} + {anomalies} anomalies")
        })
        .collect();
    let seen = if seen.is_empty() {
        "none".to_owned()
    } else {
        seen.join("; ")
    };
    Check {
        name: "alerts",
        passed: problems.is_empty(),
        detail: if problems.is_empty() {
            format!("as expected: {seen}")
        } else {
            format!("{} (alerts: {seen})", problems.join("; "))
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reroute_core::Timestamp;

    fn alert(p: &str, from: &str, to: &str) -> Alert {
        Alert {
            processor_id: p.into(),
            from_status: from.into(),
            to_status: to.into(),
            timestamp: Timestamp::from_millis(0),
            reason: "r".into(),
            kind: "transition".into(),
            scope: "processor".into(),
        }
    }

    fn statuses(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(p, s)| (p.to_string(), s.to_string()))
            .collect()
    }

    #[test]
    fn a_down_processor_must_be_reported_recovered() {
        let both = |from: &str, to: &str| [alert("default", from, to), alert("fallback", from, to)];
        let fine: Vec<Alert> = both("HEALTHY", "DOWN")
            .into_iter()
            .chain(both("DOWN", "DEGRADED"))
            .collect();
        let check = judge_alerts(
            Scenario::BothDown,
            &fine,
            &statuses(&[("default", "DEGRADED"), ("fallback", "DEGRADED")]),
        );
        assert!(check.passed, "{check:?}");

        let stuck = both("HEALTHY", "DOWN");
        let check = judge_alerts(
            Scenario::BothDown,
            &stuck,
            &statuses(&[("default", "DOWN"), ("fallback", "HEALTHY")]),
        );
        assert!(!check.passed);
        assert!(check.detail.contains("no recovery"), "{}", check.detail);
        assert!(check.detail.contains("still DOWN"), "{}", check.detail);

        let never = judge_alerts(Scenario::Slow, &[], &statuses(&[("default", "HEALTHY")]));
        assert!(!never.passed);
        assert!(never.detail.contains("never reported DOWN"));
    }

    #[test]
    fn an_anomaly_is_enough_to_notice_a_flapping_processor() {
        let mut anomaly = alert("default", "HEALTHY", "HEALTHY");
        anomaly.kind = "anomaly".into();
        let ok = judge_alerts(
            Scenario::Flapping,
            &[anomaly],
            &statuses(&[("default", "HEALTHY")]),
        );
        assert!(ok.passed, "{ok:?}");
        let silent = judge_alerts(
            Scenario::Flapping,
            &[],
            &statuses(&[("default", "HEALTHY")]),
        );
        assert!(!silent.passed);
        assert!(silent.detail.contains("no alert about default"));
    }

    #[test]
    fn a_rate_limited_health_endpoint_is_not_a_down_processor() {
        let down = [
            alert("fallback", "HEALTHY", "DOWN"),
            alert("fallback", "DOWN", "HEALTHY"),
        ];
        let check = judge_alerts(
            Scenario::Health429,
            &down,
            &statuses(&[("fallback", "HEALTHY")]),
        );
        assert!(!check.passed);
        let quiet = judge_alerts(
            Scenario::Health429,
            &[],
            &statuses(&[("fallback", "HEALTHY")]),
        );
        assert!(quiet.passed);
    }
}
