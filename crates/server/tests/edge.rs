//! `reroute edge` in front of a core (`serve --edge-socket --unix-socket`):
//! the edge answers what the core answers, validates on its own, never
//! answers 202 without the core's word, tells an unknown outcome from a
//! refusal, and picks up a restarted core.

mod common;

use std::path::{Path, PathBuf};

use axum::http::StatusCode;
use common::*;
use reroute_server::{BoundEdge, EdgeArgs};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

struct Edge {
    url: String,
    stop: CancellationToken,
    done: tokio::task::JoinHandle<()>,
}

impl Edge {
    fn start(core: &Path) -> Self {
        let bound = BoundEdge::bind(EdgeArgs {
            unix_socket: None,
            port: Some(0),
            host: Some("127.0.0.1".parse().unwrap()),
            core_socket: core.join("core.sock"),
            core_http_socket: core.join("http.sock"),
            core_timeout_ms: 2_000,
        })
        .expect("edge binds");
        let url = format!("http://{}", bound.addr().unwrap());
        let stop = CancellationToken::new();
        let running = stop.clone();
        let done = tokio::spawn(async move { bound.run(running).await.expect("edge runs") });
        Self { url, stop, done }
    }

    async fn stop(self) {
        self.stop.cancel();
        self.done.await.unwrap();
    }

    async fn pay(&self, http: &Http, id: &str, amount: &str) -> (StatusCode, serde_json::Value) {
        http.post_json(
            &format!("{}/payments", self.url),
            &format!(r#"{{"correlationId":"{id}","amount":{amount}}}"#),
        )
        .await
    }
}

/// A core on the embedded store at `dir/core.db`, with its sockets in `dir`.
async fn core(sims: &Sims, dir: &Path) -> TestApp {
    core_with(sims, dir, &[]).await
}

async fn core_with(sims: &Sims, dir: &Path, extra: &[&str]) -> TestApp {
    let sockets = |name: &str| dir.join(name).display().to_string();
    let (edges, http) = (sockets("core.sock"), sockets("http.sock"));
    let sockets = ["--edge-socket", &edges, "--unix-socket", &http];
    let args = [&sockets[..], extra].concat();
    TestApp::start(config(sims, &dir.join("core.db"), &args)).await
}

#[tokio::test]
async fn an_edge_answers_what_its_core_answers() {
    let sims = Sims::start().await;
    let dir = tempfile::tempdir().unwrap();
    let core = core(&sims, dir.path()).await;
    let edges = [Edge::start(dir.path()), Edge::start(dir.path())];
    let http = Http::default();
    let id = new_id();

    let (status, body) = edges[0].pay(&http, &id, "19.90").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["status"], "accepted");
    // The other edge, and the core itself, know it.
    let (status, body) = edges[1].pay(&http, &id, "19.90").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "duplicate");
    let (status, body) = core.pay(&http, &id, "19.90").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = edges[1].pay(&http, &id, "25.00").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["field"], "amount");
    // Validated at the edge, with the core's words.
    let (status, body) = edges[0].pay(&http, "not-a-uuid", "1.00").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["field"], "correlationId");

    // Every other request is the core's own answer.
    eventually(
        "the payment is paid",
        std::time::Duration::from_secs(10),
        || async {
            let (_, v) = http.get(&format!("{}/payments-summary", core.url)).await;
            (v["default"]["totalRequests"] == 1).then_some(())
        },
    )
    .await;
    let (status, from_core) = http.get(&format!("{}/payments-summary", core.url)).await;
    assert_eq!(status, StatusCode::OK);
    for edge in &edges {
        let (status, from_edge) = http.get(&format!("{}/payments-summary", edge.url)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(from_edge, from_core);
        let (status, body) = http.get(&format!("{}/payments/{id}", edge.url)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["state"], "processed", "{body}");
    }
    for edge in edges {
        edge.stop().await;
    }
    core.stop().await;
}

#[tokio::test]
async fn an_edge_never_answers_202_without_its_core_and_picks_up_a_restarted_one() {
    let sims = Sims::start().await;
    let dir = tempfile::tempdir().unwrap();
    let edge = Edge::start(dir.path());
    let http = Http::default();
    let first = new_id();

    // No core yet: refused, and said to have changed nothing.
    let (status, body) = edge.pay(&http, &first, "10.00").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(
        error.contains("unreachable") && error.contains("nothing was done"),
        "{error}"
    );
    assert!(body.get("outcome").is_none(), "{body}");
    let (status, _) = http.get(&format!("{}/payments-summary", edge.url)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);

    // A core comes up: the same edge takes payments, no restart.
    let up = core(&sims, dir.path()).await;
    let (status, body) = edge.pay(&http, &first, "10.00").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    up.stop().await;
    let (status, _) = edge.pay(&http, &new_id(), "10.00").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);

    // Another core on the same store: it knows the first payment.
    let again = core(&sims, dir.path()).await;
    let (status, body) = edge.pay(&http, &first, "10.00").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "duplicate");
    edge.stop().await;
    again.stop().await;
}

/// At `os` the store's writer runs on the core's accept thread: a core that
/// has stopped has let go of its store, so one started at once on the same
/// file opens it (a multi-thread runtime, as `reroute serve` runs on).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_core_at_os_has_let_go_of_its_store_once_stopped() {
    let sims = Sims::start().await;
    let dir = tempfile::tempdir().unwrap();
    let edge = Edge::start(dir.path());
    let http = Http::default();
    let id = new_id();
    for round in 0..5 {
        let core = core_with(&sims, dir.path(), &["--durability", "os"]).await;
        let (status, body) = edge.pay(&http, &id, "10.00").await;
        let expected = if round == 0 {
            StatusCode::ACCEPTED
        } else {
            StatusCode::OK
        };
        assert_eq!(status, expected, "round {round}: {body}");
        core.stop().await;
    }
    edge.stop().await;
}

/// A stand-in core at `dir/core.sock` that says `hello`, reads one frame's
/// worth of bytes and hangs up without answering.
fn vanishing_core(dir: &Path, hello: [u8; 4]) -> PathBuf {
    let path = dir.join("core.sock");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut theirs = [0u8; 4];
        stream.read_exact(&mut theirs).await.unwrap();
        stream.write_all(&hello).await.unwrap();
        let mut frame = [0u8; 8];
        let _ = stream.read_exact(&mut frame).await;
        drop(stream);
    });
    path
}

#[tokio::test]
async fn a_payment_whose_core_vanished_with_it_is_unknown_not_refused() {
    let dir = tempfile::tempdir().unwrap();
    vanishing_core(dir.path(), reroute_server::wire::HELLO);
    let edge = Edge::start(dir.path());
    let http = Http::default();
    let (status, body) = edge.pay(&http, &new_id(), "10.00").await;
    // The frame reached the core: it may have stored the payment.
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["outcome"], "unknown", "{body}");
    assert_eq!(body["retrySafe"], true, "{body}");
    edge.stop().await;
}

#[tokio::test]
async fn an_edge_and_a_core_of_other_versions_say_so_and_accept_nothing() {
    let dir = tempfile::tempdir().unwrap();
    vanishing_core(dir.path(), *b"RRC\x07");
    let edge = Edge::start(dir.path());
    let http = Http::default();
    let (status, body) = edge.pay(&http, &new_id(), "10.00").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(error.contains("version 7"), "{error}");
    assert!(body.get("outcome").is_none(), "{body}");
    edge.stop().await;
}
