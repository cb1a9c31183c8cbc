//! The story's findings and report, from a made-up history.

use super::*;
use crate::clock::Compression;
use crate::timeline::Alert;
use crate::watch::History;
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
