//! The report's tests, and the reports they build, which the summary's
//! tests read too: a preview with the best score, and a final with its
//! stages.

use super::*;
use crate::score::tests::{d, share};

/// A processor's summary of `requests` totalling `amount` at fee `rate`.
fn books(requests: u64, amount: Decimal, rate: &str) -> ProcessorSummary {
    ProcessorSummary {
        total_requests: requests,
        total_amount: amount,
        total_fee: amount * d(rate),
        fee_per_transaction: d(rate),
    }
}

/// The details of a run of `scenario` that accepted every payment it sent
/// and answered every request 202.
fn details(scenario: Scenario, seconds: u64, max_users: u32, payments: u64) -> RunDetails {
    let at = Timestamp::from_millis(1_752_150_896_789);
    RunDetails {
        scenario,
        started_at: at,
        finished_at: at,
        backend: "http://127.0.0.1:9999".to_owned(),
        default: "http://127.0.0.1:8001".to_owned(),
        fallback: "http://127.0.0.1:8002".to_owned(),
        duration_ms: seconds * 1000,
        max_users,
        users_started: u64::from(max_users) - 1,
        p99_ms_exact: Decimal::ZERO,
        http: HttpDetails {
            requests: 0,
            expected_responses: 0,
            timeouts: 0,
            errors: 0,
        },
        payments: PaymentDetails {
            sent: payments,
            accepted: payments,
            failed: 0,
            statuses: BTreeMap::from([(202, payments)]),
        },
        audits: Vec::new(),
        teardown: TeardownDetails {
            from: at,
            to: at,
            backend: BackendSummary::default(),
            default: ProcessorSummary::default(),
            fallback: ProcessorSummary::default(),
        },
        stages: Vec::new(),
        warnings: Vec::new(),
    }
}

/// The published best run: 16,752 payments on default, p99 1.25 ms.
pub(crate) fn best_run(warnings: Vec<String>) -> RinhaReport {
    let amount = d("19.90") * Decimal::from(16_752);
    let inputs = ScoreInputs {
        p99_ms: d("1.2471"),
        inconsistencies: 0,
        accepted: 16_752,
        default: share(16_752, amount, "0.05"),
        fallback: share(0, Decimal::ZERO, "0.15"),
    };
    let mut details = details(Scenario::Preview, 60, 550, 16_752);
    details.p99_ms_exact = d("1.2471");
    details.http.requests = 16_790;
    details.http.expected_responses = 16_790;
    details.teardown.default = books(16_752, amount, "0.05");
    details.teardown.fallback = books(0, Decimal::ZERO, "0.15");
    details.warnings = warnings;
    RinhaReport::new("best".to_owned(), &inputs, details)
}

pub(crate) fn final_run() -> RinhaReport {
    let (default_amount, fallback_amount) = (
        d("20.05") * Decimal::from(800),
        d("20.05") * Decimal::from(150),
    );
    let inputs = ScoreInputs {
        p99_ms: d("3.07"),
        inconsistencies: 0,
        accepted: 1000,
        default: share(800, default_amount, "0.07"),
        fallback: share(150, fallback_amount, "0.10"),
    };
    let timeline = Timeline::new(
        &crate::rinha::scenario::FINAL,
        std::time::Duration::from_secs(30),
        60,
        crate::rinha::scenario::FINAL.stages,
    );
    let tallies = (0..10)
        .map(|i| StageTally {
            sent: 100,
            accepted: 100,
            durations: vec![1_000_000 * (i + 1); 100],
        })
        .collect();
    let mut booked = vec![(80, 0); 10];
    booked[3] = (0, 80);
    booked[4] = (10, 70);
    let totals = |requests, amount| crate::rinha::api::Totals {
        total_requests: requests,
        total_amount: amount,
    };
    let mut details = details(Scenario::Final, 30, 60, 1000);
    details.p99_ms_exact = d("3.07");
    details.http.requests = 1100;
    details.http.expected_responses = 1100;
    details.teardown.backend = BackendSummary {
        default: totals(800, default_amount),
        fallback: totals(160, d("20.05") * Decimal::from(160)),
    };
    details.teardown.default = books(800, default_amount, "0.07");
    details.teardown.fallback = books(150, fallback_amount, "0.10");
    details.stages = StageRow::build(&timeline, tallies, &booked);
    RinhaReport::new("final".to_owned(), &inputs, details)
}

#[test]
fn the_json_has_the_official_fields_and_values() {
    let json = serde_json::to_value(best_run(Vec::new())).unwrap();
    let text = serde_json::to_string(&json).unwrap();
    assert!(text.contains(r#""total_liquido":380035.872"#), "{text}");
    assert!(text.contains(r#""total_bruto":333364.8"#), "{text}");
    assert!(text.contains(r#""total_taxas":16668.24"#), "{text}");
    assert_eq!(json["participante"], "best");
    assert_eq!(json["p99"]["valor"], "1.25ms");
    assert_eq!(json["p99"]["bonus"], "20%");
    assert_eq!(json["p99"]["max_requests"], 550);
    assert_eq!(json["multa"]["porcentagem"], 0);
    assert_eq!(json["multa"]["total"], 0);
    assert_eq!(json["multa"]["composicao"]["num_inconsistencias"], 0);
    assert_eq!(json["caixa_dois"]["detectado"], false);
    assert_eq!(json["lag"]["num_pagamentos_total"], 16_752);
    assert_eq!(json["lag"]["num_pagamentos_solicitados"], 16_752);
    assert_eq!(json["lag"]["lag"], 0);
    assert_eq!(json["pagamentos_solicitados"]["qtd_sucesso"], 16_752);
    assert_eq!(json["pagamentos_solicitados"]["qtd_falha"], 0);
    assert_eq!(
        json["pagamentos_realizados_default"]["num_pagamentos"],
        16_752
    );
    assert_eq!(json["pagamentos_realizados_fallback"]["total_bruto"], 0);
    assert_eq!(json["reroute"]["payments"]["statuses"]["202"], 16_752);
    // The preview's result says so, and has no timestamp.
    assert_eq!(json["reroute"]["scenario"], "preview");
    assert!(json.get("timestamp").is_none());
    // Fields come in the official order, the extra section last.
    let direct = serde_json::to_string(&best_run(Vec::new())).unwrap();
    assert!(
        direct.starts_with(r#"{"participante":"best","total_liquido":"#),
        "{direct}"
    );
    assert!(direct.find(r#""pagamentos_realizados_fallback""#) < direct.find(r#""reroute""#));
}

#[test]
fn a_final_result_has_its_timestamp_scenario_fees_and_stages() {
    let report = final_run();
    // gross 19,047.50; fees 1,122.80 + 300.75; bonus 16%.
    assert_eq!(report.gross, d("19047.50"));
    assert_eq!(report.fees, d("1423.55"));
    assert_eq!(report.lag.lag, 50);
    let json = serde_json::to_value(&report).unwrap();
    let direct = serde_json::to_string(&report).unwrap();
    assert!(
        direct.starts_with(r#"{"timestamp":"2025-07-10T12:34:56.789Z","participante":"final""#),
        "{direct}"
    );
    assert_eq!(json["reroute"]["scenario"], "final");
    assert_eq!(json["p99"]["bonus"], "16%");
    assert_eq!(json["pagamentos_realizados_default"]["num_pagamentos"], 800);
    assert!(
        json["pagamentos_realizados_fallback"]["descricao"]
            .as_str()
            .unwrap()
            .contains("processor booked")
    );
    let stages = json["reroute"]["stages"].as_array().unwrap();
    assert_eq!(stages.len(), 10);
    assert_eq!(stages[3]["at_ms"], 9000);
    assert_eq!(stages[3]["default"]["delay_ms"], 2000);
    assert_eq!(stages[3]["default"]["failing"], true);
    assert_eq!(stages[3]["booked_fallback"], 80);
}

#[test]
fn stage_rows_pair_each_stage_with_its_tally_and_books() {
    let timeline = Timeline::new(
        &crate::rinha::scenario::FINAL,
        std::time::Duration::from_secs(30),
        60,
        crate::rinha::scenario::FINAL.stages,
    );
    let tally = StageTally {
        sent: 3,
        accepted: 2,
        durations: vec![3_000_000, 1_000_000],
    };
    let rows = StageRow::build(&timeline, vec![tally], &[(2, 1)]);
    assert_eq!(rows.len(), 10);
    assert_eq!(rows[0].at_ms, 100);
    assert_eq!((rows[0].from_ms, rows[0].to_ms), (0, 3000));
    assert_eq!((rows[0].sent, rows[0].accepted), (3, 2));
    assert_eq!(rows[0].p99_ms, d("2.98"));
    assert_eq!((rows[0].booked_default, rows[0].booked_fallback), (2, 1));
    assert_eq!(rows[0].fallback_percent(), Some(33));
    // Nothing tallied or booked: zeros, and no share.
    assert_eq!((rows[9].sent, rows[9].p99_ms), (0, Decimal::ZERO));
    assert_eq!((rows[9].from_ms, rows[9].to_ms), (27_000, 30_000));
    assert_eq!(rows[9].fallback_percent(), None);
}
