//! What the end-to-end tests of the binary share: a small HTTP client, a
//! free port, the simulator's books by correlationId, the audit every crash
//! and chaos run must pass, a PostgreSQL database of a test's own, and
//! nginx.
#![allow(dead_code)]

use std::collections::HashSet;
use std::fmt::Display;
use std::net::TcpListener;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use hyper_util::rt::TokioExecutor;
use reroute_faults::audit::Audit;
use serde_json::Value;

pub type Http = Client<HttpConnector, Full<Bytes>>;

pub fn http() -> Http {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

/// One JSON call (with the simulator's admin token); `None` when no answer
/// came within 5 s.
pub async fn call(http: &Http, method: Method, url: &str, body: &str) -> Option<(u16, Value)> {
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

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The correlationIds a simulated processor has stored.
pub async fn book_ids(http: &Http, url: &str) -> HashSet<String> {
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

/// Waits until the router at `base` reports ready.
pub async fn wait_ready(http: &Http, base: &str) {
    for _ in 0..400 {
        if let Some((200, _)) = call(http, Method::GET, &format!("{base}/readyz"), "").await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{base} never became ready");
}

/// Waits until every accepted payment is in a processor's books and the
/// router at `base` summarises exactly the books, then checks that no
/// payment was charged twice and that counts and amounts agree.
pub async fn drain_and_audit(
    http: &Http,
    base: &str,
    default: &str,
    fallback: &str,
    accepted: &HashSet<String>,
) {
    let summary = || async {
        call(http, Method::GET, &format!("{base}/payments-summary"), "")
            .await
            .expect("the router answers its summary")
            .1
    };
    let count = |s: &Value, p: &str| s[p]["totalRequests"].as_u64().unwrap();
    let mut settled = false;
    for _ in 0..600 {
        let books: HashSet<String> = book_ids(http, default)
            .await
            .union(&book_ids(http, fallback).await)
            .cloned()
            .collect();
        let s = summary().await;
        if accepted.is_subset(&books)
            && count(&s, "default") + count(&s, "fallback") == books.len() as u64
        {
            settled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(settled, "the router never caught up with the books");
    let (d, f) = (
        book_ids(http, default).await,
        book_ids(http, fallback).await,
    );
    assert!(
        d.is_disjoint(&f),
        "a payment was charged on both processors"
    );
    let s = summary().await;
    assert_eq!(count(&s, "default"), d.len() as u64);
    assert_eq!(count(&s, "fallback"), f.len() as u64);
    let (_, books) = call(
        http,
        Method::GET,
        &format!("{default}/admin/payments-summary"),
        "",
    )
    .await
    .unwrap();
    assert_eq!(s["default"]["totalAmount"], books["totalAmount"]);
}

/// The audit of a bench run (`report` prints it): nothing lost, charged
/// twice or charged without a 2xx, the ledger and the summary agreeing with
/// the books, nothing left pending.
pub fn assert_nothing_lost_doubled_or_stuck(audit: &Audit, report: &dyn Display) {
    assert_eq!(audit.lost, 0, "accepted payments never charged\n{report}");
    assert_eq!(audit.doubled, 0, "payments charged twice\n{report}");
    assert_eq!(audit.unexpected, 0, "charged but not accepted\n{report}");
    assert_eq!(
        audit.inconsistencies, 0,
        "ledger or summary differ from the books\n{report}"
    );
    assert_eq!(audit.stuck, Some(0), "payments left pending\n{report}");
}

/// As [`assert_nothing_lost_doubled_or_stuck`], and the 2xx set is exactly
/// the books and the ledger: every accepted payment charged once, and no
/// other (none whose answer the client never got).
pub fn assert_charged_once(audit: &Audit, report: &dyn Display) {
    assert_nothing_lost_doubled_or_stuck(audit, report);
    let charged: u64 = audit.books.values().map(|t| t.requests).sum();
    assert_eq!(
        charged, audit.payments.accepted,
        "2xx set = books\n{report}"
    );
    let ledger = audit.ledger.expect("the store was read back");
    assert_eq!(
        ledger.entries, audit.payments.accepted,
        "2xx set = ledger\n{report}"
    );
}

/// A database of the test's own, dropped at the end.
pub struct Database {
    admin_url: String,
    name: String,
}

impl Database {
    pub async fn create() -> Self {
        let admin_url = std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let id = reroute_core::CorrelationId::new_random()
            .to_string()
            .replace('-', "");
        let name = format!("reroute_it_{}", &id[..12]);
        let (client, connection) = tokio_postgres::connect(&admin_url, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| {
                panic!("cannot reach PostgreSQL at {admin_url} (set DATABASE_URL): {e}")
            });
        tokio::spawn(connection);
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        Self { admin_url, name }
    }

    pub fn url(&self) -> String {
        let base = self
            .admin_url
            .rsplit_once('/')
            .map_or(self.admin_url.as_str(), |(b, _)| b);
        format!("{base}/{}", self.name)
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let (url, name) = (self.admin_url.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let (client, connection) =
                    tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
                tokio::spawn(connection);
                client
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
            })
        })
        .join();
    }
}

/// The project's scripts directory.
pub fn scripts() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts")
}

/// Makes sure nginx is installed (`scripts/need-nginx.sh`: Debian's
/// nginx-light, when missing); panics with the script's output if it cannot.
pub fn need_nginx() {
    let out = std::process::Command::new("bash")
        .arg(scripts().join("need-nginx.sh"))
        .stdin(std::process::Stdio::null())
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "scripts/need-nginx.sh failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `command` to its end with its output captured, or kills it after
/// `within` (SIGKILL) and says so with `None`.
pub fn finish_within(
    mut command: std::process::Command,
    within: Duration,
) -> Option<std::process::Output> {
    let child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("reroute runs");
    let pid = child.id();
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || done.send(child.wait_with_output()));
    match finished.recv_timeout(within) {
        Ok(output) => Some(output.expect("its output")),
        Err(_) => {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            None
        }
    }
}
