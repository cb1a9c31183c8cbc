//! The crash test: `reroute serve` under load is killed with SIGKILL several
//! times and restarted on the same database. Afterwards every payment that
//! got a 2xx is in a processor's books exactly once, no payment is in two
//! processors' books, and the router's summary equals the books.

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::Method;

mod common;
use common::*;

struct Router {
    child: Child,
}

impl Router {
    fn start(port: u16, db: &std::path::Path, default: &str, fallback: &str) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_reroute"))
            .args(["serve", "--host", "127.0.0.1", "--port", &port.to_string()])
            .arg("--db")
            .arg(db)
            .args(["--default-url", default, "--fallback-url", fallback])
            .args([
                "--health-interval-ms",
                "500",
                "--processor-timeout-ms",
                "1000",
            ])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("reroute starts");
        Self { child }
    }

    fn kill9(mut self) {
        // Child::kill sends SIGKILL on Unix: no shutdown code runs.
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_router_loses_nothing_and_charges_nothing_twice() {
    let sim = reroute_sim::spawn(reroute_sim::SimConfig::rinha_on_free_ports())
        .await
        .unwrap();
    let (default, fallback) = (sim.url("default"), sim.url("fallback"));
    let http = http();
    // Some latency, so that kills land while attempts are in flight.
    call(
        &http,
        Method::PUT,
        &format!("{default}/admin/configurations/delay"),
        r#"{"delay":20}"#,
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crash.db");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");

    let accepted = Arc::new(Mutex::new(HashSet::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut load = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (http, base, accepted, stop) =
            (http.clone(), base.clone(), accepted.clone(), stop.clone());
        load.spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let id = reroute_core::CorrelationId::new_random().to_string();
                let body = format!(r#"{{"correlationId":"{id}","amount":19.90}}"#);
                match call(&http, Method::POST, &format!("{base}/payments"), &body).await {
                    Some((s, _)) if (200..300).contains(&s) => {
                        accepted.lock().unwrap().insert(id);
                    }
                    Some(_) => {}
                    None => tokio::time::sleep(Duration::from_millis(10)).await,
                }
            }
        });
    }

    const KILLS: usize = 3;
    for round in 0..=KILLS {
        let router = Router::start(port, &db, &default, &fallback);
        wait_ready(&http, &base).await;
        let target = accepted.lock().unwrap().len() + 150;
        while accepted.lock().unwrap().len() < target {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if round < KILLS {
            router.kill9();
        } else {
            stop.store(true, Ordering::Relaxed);
            while load.join_next().await.is_some() {}
            let accepted = accepted.lock().unwrap().clone();
            assert!(
                accepted.len() >= 600,
                "only {} payments accepted",
                accepted.len()
            );
            drain_and_audit(&http, &base, &default, &fallback, &accepted).await;
            router.kill9();
        }
    }
    sim.shutdown().await;
}
