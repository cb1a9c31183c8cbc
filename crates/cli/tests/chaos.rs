//! `reroute bench chaos`, short: each scenario on a fresh simulator and a
//! fresh `reroute serve`, with a 6-second fault under load. Every scenario
//! must keep the invariants (2xx = ledger = books by correlationId, nothing
//! doubled or pending), complete once the fault is over, never loop hot,
//! respect the processors' health-check limit, and raise the alerts an
//! operator would expect.

use clap::Parser;
use reroute_faults::chaos::{self, ChaosArgs, Scenario, ScenarioReport};

mod common;

/// `reroute bench chaos` with `extra` arguments (one scenario); says where
/// its logs were kept and the seed that replays it.
async fn run(extra: &[&str]) -> ScenarioReport {
    let base = ["chaos", "--reroute-bin", env!("CARGO_BIN_EXE_reroute")];
    let args = ChaosArgs::parse_from(base.iter().chain(extra));
    let mut report = chaos::run(args).await.expect("the chaos bench runs");
    if let Some(dir) = &report.work_dir {
        eprintln!("logs kept in {}", dir.display());
    }
    eprintln!("seed {}", report.seed);
    report.scenarios.pop().expect("one scenario ran")
}

/// `scenario` with a 6-second fault under load, having passed every check
/// of the bench and kept the invariants.
async fn passes_every_check(scenario: Scenario) -> ScenarioReport {
    let report = run(&[
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
        // A recovery is announced once it has held this long (the health
        // engine's damping, 10 s by default): within the 5 s recovery.
        "--serve-arg=--health-flap-hold-ms",
        "--serve-arg=2000",
    ])
    .await;
    for check in &report.checks {
        assert!(check.passed, "{}: {}\n{report}", check.name, check.detail);
    }
    // The invariants, spelled out.
    common::assert_nothing_lost_doubled_or_stuck(&report.audit, &report);
    assert!(
        report.audit.payments.accepted >= 500,
        "too little load to judge\n{report}"
    );
    report
}

/// The bench made the check called `name`, and it passed.
fn passed(report: &ScenarioReport, name: &str) -> bool {
    report.checks.iter().any(|c| c.name == name && c.passed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flapping_processor_loses_nothing_and_is_noticed() {
    passes_every_check(Scenario::Flapping).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_processor_slower_than_the_timeout_is_resolved_where_it_stored_and_reported_down_then_recovered()
 {
    let report = passes_every_check(Scenario::Slow).await;
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
    let report = passes_every_check(Scenario::Resets).await;
    assert!(
        report.max_lookups_per_s > 0,
        "resets were resolved by status queries\n{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_both_processors_down_the_queue_is_held_without_hammering_reported_down_and_drains_after()
 {
    // Including the alerts: both reported DOWN, then recovered.
    let report = passes_every_check(Scenario::BothDown).await;
    assert!(passed(&report, "queue held"), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_storm_on_the_health_endpoint_is_waited_out_and_is_not_an_outage() {
    let report = passes_every_check(Scenario::Health429).await;
    assert!(passed(&report, "retry-after honoured"), "{report}");
    let refused: u64 = report.health.values().map(|s| s.health_storm_refused).sum();
    assert!(refused > 0, "the storm refused health calls\n{report}");
}

/// Mission rule 2 against the answers that prove nothing (issue 15): a 500
/// or a 429 to a re-send while the first send still sleeps, a lookup that
/// answers 404 meanwhile, a PostgreSQL holder that wakes after its lease.
/// On 38a33e7 they fail with payments charged twice (`doubled` > 0); they
/// pass once an unknown outcome stays pinned to its processor until it is
/// proved and a holder that lost its lease stops sending. Alone:
/// `cargo test -p reroute --test chaos at_most_one_charge`. The PostgreSQL
/// ones need `DATABASE_URL` (a scratch database is created there and
/// dropped). The seed is random and printed; `reroute bench chaos --seed N`
/// replays the same phases.
mod at_most_one_charge {
    use reroute_faults::chaos::{Scenario, ScenarioReport};

    use crate::common;

    async fn run(scenario: Scenario, store: &str, fault: &str) -> ScenarioReport {
        super::run(&[
            "--scenario",
            scenario.name(),
            "--store",
            store,
            "--fault",
            fault,
            "--warmup",
            "3s",
            "--recovery",
            "4s",
            "--drain-timeout",
            "15s",
        ])
        .await
    }

    /// As every other test: `DATABASE_URL`, or the local test database.
    fn database_url() -> String {
        std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
    }

    /// Each accepted payment charged exactly once, and the ledger says so.
    fn assert_charged_once(report: &ScenarioReport) {
        common::assert_charged_once(&report.audit, report);
        assert!(report.drain_settled, "{report}");
        assert!(
            report.audit.payments.accepted >= 300,
            "too little load to judge\n{report}"
        );
    }

    /// The schedule bit: first sends timed out and were looked up at
    /// default, and some payments there were refused.
    fn assert_sends_were_refused_while_others_slept(report: &ScenarioReport, refused: u64) {
        let default = &report.health["default"];
        assert!(
            default.payments_looked_up > 0,
            "no timeout was looked up\n{report}"
        );
        assert!(refused > 0, "nothing was refused at default\n{report}");
    }

    /// A scenario whose first sends sleep at default beyond the timeout,
    /// run for 12 s on `store`: sends were refused meanwhile (`refused`
    /// reads how many from default's counters) and yet every payment was
    /// charged once.
    async fn charged_once_while_first_sends_sleep(
        scenario: Scenario,
        store: &str,
        refused: fn(&ScenarioReport) -> u64,
    ) {
        let report = run(scenario, store, "12s").await;
        assert_sends_were_refused_while_others_slept(&report, refused(&report));
        assert_charged_once(&report);
    }

    fn failed_at_default(report: &ScenarioReport) -> u64 {
        report.health["default"].payments_failed
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn re_sends_refused_while_the_first_sends_sleep_charge_each_payment_once() {
        charged_once_while_first_sends_sleep(Scenario::ResendRefused, "sqlite", failed_at_default)
            .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn re_sends_refused_while_the_first_sends_sleep_charge_each_payment_once_on_postgres() {
        let store = database_url();
        charged_once_while_first_sends_sleep(Scenario::ResendRefused, &store, failed_at_default)
            .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_delay_lowered_while_the_first_sends_sleep_charges_each_payment_once() {
        charged_once_while_first_sends_sleep(Scenario::DelayDrop, "sqlite", failed_at_default)
            .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_429_storm_while_the_first_sends_sleep_charges_each_payment_once() {
        charged_once_while_first_sends_sleep(Scenario::Storm429, "sqlite", |report| {
            report.health["default"].payments_storm_refused
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_postgres_holder_paused_past_its_lease_sends_nothing_once_resumed() {
        let report = run(Scenario::PgPause, &database_url(), "10s").await;
        let pause = report.pause.as_ref().expect("the pause was played");
        assert!(
            pause.pending_at_pause > 0,
            "the paused instance held no payment\n{report}"
        );
        assert!(
            pause.taken_over(),
            "the running instance did not complete the paused one's payments\n{report}"
        );
        assert_charged_once(&report);
    }
}
