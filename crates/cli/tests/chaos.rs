//! `reroute bench chaos`, short: each scenario on a fresh simulator and a
//! fresh `reroute serve`, with a 6-second fault under load. Every scenario
//! must keep the invariants (2xx = ledger = books by correlationId, nothing
//! doubled or pending), complete once the fault is over, never loop hot,
//! respect the processors' health-check limit, and raise the alerts an
//! operator would expect.

use clap::Parser;
use reroute_bench::chaos::{self, ChaosArgs, Scenario, ScenarioReport};

async fn run(scenario: Scenario) -> ScenarioReport {
    let args = ChaosArgs::parse_from([
        "chaos",
        "--reroute-bin",
        env!("CARGO_BIN_EXE_reroute"),
        "--scenario",
        scenario.name(),
        "--fault",
        "6s",
        "--warmup",
        "3s",
        "--recovery",
        "5s",
        "--drain-timeout",
        "30s",
    ]);
    let mut report = chaos::run(args).await.expect("the chaos bench runs");
    let work_dir = report.work_dir.clone();
    let scenario_report = report.scenarios.pop().expect("one scenario ran");
    if let Some(dir) = work_dir {
        eprintln!("logs kept in {}", dir.display());
    }
    scenario_report
}

/// Every check passed but those named in `except`.
fn assert_checks(report: &ScenarioReport, except: &[&str]) {
    for check in &report.checks {
        if !except.contains(&check.name) {
            assert!(check.passed, "{}: {}\n{report}", check.name, check.detail);
        }
    }
    // The invariants, spelled out.
    let audit = &report.audit;
    assert_eq!(
        (audit.lost, audit.doubled, audit.unexpected),
        (0, 0, 0),
        "{report}"
    );
    assert_eq!(audit.inconsistencies, 0, "{report}");
    assert_eq!(audit.stuck, Some(0), "{report}");
    assert!(
        audit.payments.accepted >= 500,
        "too little load to judge\n{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flapping_processor_loses_nothing_and_is_noticed() {
    let report = run(Scenario::Flapping).await;
    assert_checks(&report, &[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_processor_slower_than_the_timeout_is_resolved_where_it_stored_and_reported_down_then_recovered()
 {
    let report = run(Scenario::Slow).await;
    assert_checks(&report, &[]);
    // The payments that timed out were settled at default, where they were
    // stored late, not sent to fallback.
    assert_eq!(report.audit.books["fallback"].requests, 0, "{report}");
    assert!(
        report.max_lookups_per_s > 0,
        "timeouts were resolved by status queries\n{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_resets_before_and_after_storing_charge_each_payment_once() {
    let report = run(Scenario::Resets).await;
    assert_checks(&report, &[]);
    assert!(
        report.max_lookups_per_s > 0,
        "resets were resolved by status queries\n{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_both_processors_down_the_queue_is_held_without_hammering_reported_down_and_drains_after()
 {
    let report = run(Scenario::BothDown).await;
    // Including the alerts: both reported DOWN, then recovered.
    assert_checks(&report, &[]);
    assert!(
        report
            .checks
            .iter()
            .any(|c| c.name == "queue held" && c.passed),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_storm_on_the_health_endpoint_is_waited_out_and_is_not_an_outage() {
    let report = run(Scenario::Health429).await;
    assert_checks(&report, &[]);
    assert!(
        report
            .checks
            .iter()
            .any(|c| c.name == "retry-after honoured" && c.passed),
        "{report}"
    );
    let refused: u64 = report.health.values().map(|s| s.health_storm_refused).sum();
    assert!(refused > 0, "the storm refused health calls\n{report}");
}
