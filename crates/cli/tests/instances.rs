//! Two `reroute serve` instances over one PostgreSQL database, under load
//! spread across both (as a load balancer would). One is killed with SIGKILL
//! mid-run: its payments are taken over by the other once its lease runs
//! out, nothing is lost or charged twice, and the books equal the ledger. The
//! health-probe leadership moves to the survivor, and the processors' rate
//! limit (one health call per window) is never exceeded.

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::Method;

mod common;
use common::*;

fn start(port: u16, name: &str, db: &str, default: &str, fallback: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_reroute"))
        .args(["serve", "--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--store", db, "--instance", name, "--lease-ms", "2000"])
        .args(["--default-url", default, "--fallback-url", fallback])
        .args([
            "--health-interval-ms",
            "1000",
            "--processor-timeout-ms",
            "500",
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("reroute starts")
}

async fn stat(http: &Http, url: &str, name: &str) -> u64 {
    let (_, v) = call(http, Method::GET, &format!("{url}/admin/stats"), "")
        .await
        .unwrap();
    v[name]
        .as_u64()
        .unwrap_or_else(|| panic!("no {name} in {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_the_work_and_survive_the_death_of_one() {
    let mut sim_config = reroute_sim::SimConfig::rinha_on_free_ports();
    sim_config.health_window = Duration::from_millis(1000);
    let sim = reroute_sim::spawn(sim_config).await.unwrap();
    let (default, fallback) = (sim.url("default"), sim.url("fallback"));
    let http = http();
    call(
        &http,
        Method::PUT,
        &format!("{default}/admin/configurations/delay"),
        r#"{"delay":30}"#,
    )
    .await
    .unwrap();
    let database = Database::create().await;
    let db = database.url();
    let ports = [free_port(), free_port()];
    let bases: Vec<String> = ports
        .iter()
        .map(|p| format!("http://127.0.0.1:{p}"))
        .collect();
    let mut first = start(ports[0], "api1", &db, &default, &fallback);
    wait_ready(&http, &bases[0]).await;
    let mut second = start(ports[1], "api2", &db, &default, &fallback);
    wait_ready(&http, &bases[1]).await;

    // Load, round robin over the instances that are alive.
    let accepted = Arc::new(Mutex::new(HashSet::new()));
    let alive = Arc::new(AtomicUsize::new(2));
    let stop = Arc::new(AtomicBool::new(false));
    let mut load = tokio::task::JoinSet::new();
    for worker in 0..8usize {
        let (http, bases, accepted, alive, stop) = (
            http.clone(),
            bases.clone(),
            accepted.clone(),
            alive.clone(),
            stop.clone(),
        );
        load.spawn(async move {
            let mut n = worker;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                // While both live, alternate; once the first is dead, only the second.
                let base = if alive.load(Ordering::Relaxed) == 2 {
                    &bases[n % 2]
                } else {
                    &bases[1]
                };
                let id = reroute_core::CorrelationId::new_random().to_string();
                let body = format!(r#"{{"correlationId":"{id}","amount":19.90}}"#);
                let answer = call(&http, Method::POST, &format!("{base}/payments"), &body).await;
                if answer.is_some_and(|(s, _)| (200..300).contains(&s)) {
                    accepted.lock().unwrap().insert(id);
                }
            }
        });
    }
    let wait_accepted = |n: usize| {
        let accepted = accepted.clone();
        async move {
            while accepted.lock().unwrap().len() < n {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    wait_accepted(300).await;
    // Kill the first instance mid-run (it holds payments in flight).
    alive.store(1, Ordering::Relaxed);
    first.kill().unwrap();
    first.wait().unwrap();
    let calls_at_kill = stat(&http, &default, "health_calls").await;
    wait_accepted(600).await;
    stop.store(true, Ordering::Relaxed);
    while load.join_next().await.is_some() {}

    // Drain: the survivor takes over the dead one's payments after its lease.
    let accepted = accepted.lock().unwrap().clone();
    // The survivor takes over the dead one's payments after its lease.
    drain_and_audit(&http, &bases[1], &default, &fallback, &accepted).await;

    // Probes went on from the survivor, within the processors' rate limit.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while stat(&http, &default, "health_calls").await <= calls_at_kill + 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no probe since the leader died"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for url in [&default, &fallback] {
        assert_eq!(
            stat(&http, url, "health_throttled").await,
            0,
            "a 429 on {url}"
        );
        assert!(
            stat(&http, url, "health_max_per_window").await <= 1,
            "two probes in one window on {url}"
        );
    }
    second.kill().unwrap();
    second.wait().unwrap();
    sim.shutdown().await;
}
