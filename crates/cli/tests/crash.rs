//! The crash test: `reroute serve` under load is killed with SIGKILL several
//! times and restarted on the same database. Afterwards every payment that
//! got a 2xx is in a processor's books exactly once, no payment is in two
//! processors' books, and the router's summary equals the books.

use std::collections::HashSet;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

type Http = Client<HttpConnector, Full<Bytes>>;

async fn call(http: &Http, method: Method, url: &str, body: &str) -> Option<(u16, Value)> {
    let req = Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", "application/json")
        .header("x-rinha-token", "123")
        .body(Full::new(Bytes::from(body.to_owned())))
        .ok()?;
    let res = tokio::time::timeout(Duration::from_secs(5), http.request(req))
        .await
        .ok()?
        .ok()?;
    let status = res.status().as_u16();
    let bytes = res.into_body().collect().await.ok()?.to_bytes();
    Some((
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    ))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

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

async fn wait_ready(http: &Http, base: &str) {
    for _ in 0..400 {
        if let Some((200, _)) =
            call(http, Method::GET, &format!("{base}/payments-summary"), "").await
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("router at {base} never became ready");
}

async fn book_ids(http: &Http, url: &str) -> Vec<String> {
    let (_, v) = call(http, Method::GET, &format!("{url}/admin/payments"), "")
        .await
        .unwrap();
    let list = v
        .as_array()
        .or_else(|| v["payments"].as_array())
        .expect("payment list")
        .clone();
    list.iter()
        .map(|p| p["correlationId"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_router_loses_nothing_and_charges_nothing_twice() {
    let sim = reroute_sim::spawn(reroute_sim::SimConfig::rinha_on_free_ports())
        .await
        .unwrap();
    let (default, fallback) = (sim.url("default"), sim.url("fallback"));
    let http: Http = Client::builder(TokioExecutor::new()).build(HttpConnector::new());
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
            // Drain: wait until the ledger holds everything the books hold
            // and every accepted payment is in the books.
            let accepted = accepted.lock().unwrap().clone();
            let mut settled = false;
            for _ in 0..600 {
                let books: HashSet<String> = book_ids(&http, &default)
                    .await
                    .into_iter()
                    .chain(book_ids(&http, &fallback).await)
                    .collect();
                let (_, summary) =
                    call(&http, Method::GET, &format!("{base}/payments-summary"), "")
                        .await
                        .unwrap();
                let ledger = summary["default"]["totalRequests"].as_u64().unwrap()
                    + summary["fallback"]["totalRequests"].as_u64().unwrap();
                if accepted.is_subset(&books) && ledger == books.len() as u64 {
                    settled = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            assert!(settled, "the router never caught up with the books");
            let d: HashSet<String> = book_ids(&http, &default).await.into_iter().collect();
            let f: HashSet<String> = book_ids(&http, &fallback).await.into_iter().collect();
            assert!(
                d.is_disjoint(&f),
                "a payment was charged on both processors"
            );
            assert!(
                accepted.len() >= 600,
                "only {} payments accepted",
                accepted.len()
            );
            let (_, summary) = call(&http, Method::GET, &format!("{base}/payments-summary"), "")
                .await
                .unwrap();
            assert_eq!(
                summary["default"]["totalRequests"].as_u64().unwrap(),
                d.len() as u64
            );
            assert_eq!(
                summary["fallback"]["totalRequests"].as_u64().unwrap(),
                f.len() as u64
            );
            let (_, books) = call(
                &http,
                Method::GET,
                &format!("{default}/admin/payments-summary"),
                "",
            )
            .await
            .unwrap();
            assert_eq!(summary["default"]["totalAmount"], books["totalAmount"]);
            router.kill9();
        }
    }
    sim.shutdown().await;
}
