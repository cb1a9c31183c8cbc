//! The crash test: `reroute bench crash`, short. `reroute serve` under load
//! is killed with SIGKILL at random moments at least twenty times and
//! restarted on the same store each time; then the payments answered 2xx,
//! the router's ledger and the processors' books must be the same set of
//! correlationIds, nothing charged twice, nothing left pending. The second
//! test does the same with two instances over PostgreSQL (a private cluster
//! of the bench's own), and restarts PostgreSQL once mid-run; the third with
//! the shipped Rinha topology: a core on the embedded store and two edges in
//! front of it, behind nginx, the load sent through nginx, at `--durability
//! os` (the compose file's); kills hit the core and the edges.
//!
//! The seed is random and printed in the report; `reroute bench crash
//! --seed N` replays the same kill schedule.

use clap::Parser;
use reroute_faults::crash::{self, BalancerKind, CrashArgs, CrashReport};

mod common;

fn args(extra: &[&str]) -> CrashArgs {
    let base = ["crash", "--reroute-bin", env!("CARGO_BIN_EXE_reroute")];
    CrashArgs::parse_from(base.iter().chain(extra))
}

/// Every accepted payment charged once, and only those: the 2xx set equals
/// the books and the ledger, by correlationId.
fn assert_exact(report: &CrashReport) {
    let audit = &report.audit;
    common::assert_charged_once(audit, report);
    assert_eq!(audit.wrong_amount, 0, "{report}");
    assert_eq!(
        audit.payments.unresolved, 0,
        "every payment got a definite answer\n{report}"
    );
    assert!(report.drain_settled, "{report}");
    assert!(report.passed, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_kills_of_the_router_lose_nothing_and_charge_nothing_twice() {
    let report = crash::run(args(&[
        "--kills",
        "20",
        "--duration",
        "24s",
        "--rate",
        "100",
        "--users",
        "8",
    ]))
    .await
    .expect("the crash bench runs");
    assert!(report.kills.len() >= 20, "{report}");
    assert!(
        report.audit.payments.accepted >= 1000,
        "too little load to judge\n{report}"
    );
    assert!(
        report
            .kills
            .iter()
            .filter(|k| k.recovery_ms.is_some())
            .count()
            >= 10,
        "most restarts took payments again\n{report}"
    );
    assert_exact(&report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instance_kills_and_a_postgres_restart_lose_nothing_and_charge_nothing_twice() {
    let report = crash::run(args(&[
        "--instances",
        "2",
        "--restart-postgres",
        "--kills",
        "6",
        "--duration",
        "18s",
        "--rate",
        "80",
        "--users",
        "8",
    ]))
    .await
    .expect("the crash bench runs (it needs the PostgreSQL binaries: see --pg-bin)");
    assert_eq!(report.store, "private-postgres");
    assert_eq!(report.kills.len(), 6, "{report}");
    assert_eq!(report.pg_restarts.len(), 1, "{report}");
    assert!(
        report.pg_restarts[0].recovery_ms.is_some(),
        "payments were accepted again after PostgreSQL came back\n{report}"
    );
    assert!(report.audit.payments.accepted >= 500, "{report}");
    assert_exact(&report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kills_of_the_core_and_its_edges_behind_nginx_lose_nothing_and_charge_nothing_twice() {
    common::need_nginx();
    let report = crash::run(args(&[
        "--instances",
        "3",
        "--store",
        "edges",
        "--balancer",
        "nginx",
        // The level the shipped compose file runs at: a 2xx survives kill -9.
        "--serve-arg=--durability=os",
        // A fixed schedule (the seed picks the instances): among its 8
        // kills, the core's and the edges'. A random one would kill only
        // edges once in 26 runs.
        "--seed",
        "20261206",
        "--kills",
        "8",
        "--duration",
        "16s",
        "--rate",
        "80",
        "--users",
        "8",
    ]))
    .await
    .expect("the crash bench runs");
    assert_eq!(report.balancer, BalancerKind::Nginx);
    assert!(report.store.starts_with("edges"), "{report}");
    // Both kinds of process were killed: the core (instance 1) and an edge.
    assert!(
        report.kills.iter().any(|k| k.instance == "api1"),
        "{report}"
    );
    assert!(
        report.kills.iter().any(|k| k.instance != "api1"),
        "{report}"
    );
    assert_eq!(report.kills.len(), 8, "{report}");
    assert!(report.audit.payments.accepted >= 500, "{report}");
    assert_exact(&report);
}
