//! `reroute edge` in front of a core (`serve --edge-socket --unix-socket`):
//! the edge answers what the core answers, validates on its own, never
//! answers 202 without the core's word, tells an unknown outcome from a
//! refusal, and picks up a restarted core.

mod common;

use std::path::{Path, PathBuf};

use axum::http::StatusCode;
use common::*;
use reroute_server::accepts::{AcceptTable, Probe};
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
fn vanishing_core(dir: &Path, hello: &'static [u8]) -> PathBuf {
    let path = dir.join("core.sock");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut theirs = [0u8; 4];
        stream.read_exact(&mut theirs).await.unwrap();
        stream.write_all(hello).await.unwrap();
        let mut frame = [0u8; 8];
        let _ = stream.read_exact(&mut frame).await;
        drop(stream);
    });
    path
}

#[tokio::test]
async fn a_payment_whose_core_vanished_with_it_is_unknown_not_refused() {
    let dir = tempfile::tempdir().unwrap();
    // This release's hello, and no accept table.
    const HELLO: [u8; 6] = {
        let h = reroute_server::wire::HELLO;
        [h[0], h[1], h[2], h[3], 0, 0]
    };
    vanishing_core(dir.path(), &HELLO);
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
    vanishing_core(dir.path(), b"RRC\x07");
    let edge = Edge::start(dir.path());
    let http = Http::default();
    let (status, body) = edge.pay(&http, &new_id(), "10.00").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(error.contains("version 7"), "{error}");
    assert!(body.get("outcome").is_none(), "{body}");
    edge.stop().await;
}

/// A core at `os` with an accept table at `dir/core.accepts`.
async fn core_with_table(sims: &Sims, dir: &Path) -> TestApp {
    let table = dir.join("core.accepts").display().to_string();
    core_with(sims, dir, &["--durability", "os", "--accept-table", &table]).await
}

async fn paid(http: &Http, core: &TestApp, count: u64) {
    eventually(
        "the payments are paid",
        std::time::Duration::from_secs(10),
        || async {
            let (_, v) = http.get(&format!("{}/payments-summary", core.url)).await;
            (v["default"]["totalRequests"] == count).then_some(())
        },
    )
    .await;
}

/// Claims, writes and pushes a payment into the table as an edge would,
/// without a word to the core; publishes it if `publish`.
fn accept_quietly(table: &AcceptTable, id: &str, minor: i64, publish: bool) {
    let payment = reroute_store::NewPayment {
        id: id.parse().unwrap(),
        amount: reroute_core::Money::from_minor(minor),
        payment_method: None,
        country: None,
        accepted_at: reroute_core::Timestamp::now(),
    };
    let Probe::Claimed(claim) = table.probe(&payment.id) else {
        panic!("a new id is claimed")
    };
    table.write(&claim, &payment);
    assert!(table.push(&claim, payment.accepted_at));
    if publish {
        table.publish(claim);
    }
}

#[tokio::test]
async fn edges_accept_in_the_cores_table_and_every_door_agrees_on_an_id() {
    let sims = Sims::start().await;
    let dir = tempfile::tempdir().unwrap();
    let core = core_with_table(&sims, dir.path()).await;
    let edges = [Edge::start(dir.path()), Edge::start(dir.path())];
    let http = Http::default();

    // Posted four times, then with another amount, at alternate edges.
    let id = new_id();
    let mut statuses = Vec::new();
    for (i, amount) in ["19.90", "19.90", "19.90", "19.90", "25.00", "25.00"]
        .iter()
        .enumerate()
    {
        statuses.push(edges[i % 2].pay(&http, &id, amount).await.0.as_u16());
    }
    assert_eq!(statuses, [202, 200, 200, 200, 409, 409]);
    // The edge decided in the table: the id is there with its amount.
    let (table, _) = AcceptTable::open(&dir.path().join("core.accepts"), false).unwrap();
    assert_eq!(
        table.probe(&id.parse().unwrap()),
        Probe::Known(reroute_core::Money::from_minor(1990))
    );
    // Through the edges' rings, not by frame.
    let handed: u32 = (0..reroute_server::accepts::owners::MAX_OWNERS)
        .map(|owner| table.ring(owner).1)
        .sum();
    assert_eq!(handed, 1, "the edges pushed the one new id");
    // The core's own door agrees, and an id it accepted first is known
    // at the edges.
    assert_eq!(core.pay(&http, &id, "19.90").await.0, StatusCode::OK);
    let first_at_core = new_id();
    assert_eq!(
        core.pay(&http, &first_at_core, "5.00").await.0,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        edges[1].pay(&http, &first_at_core, "5.00").await.0,
        StatusCode::OK
    );
    assert_eq!(
        edges[0].pay(&http, &first_at_core, "6.00").await.0,
        StatusCode::CONFLICT
    );

    // One new id, 32 times at once at both edges: one 202.
    let racing = new_id();
    let answers =
        futures_util::future::join_all((0..32).map(|i| edges[i % 2].pay(&http, &racing, "1.00")))
            .await;
    let accepted = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::ACCEPTED)
        .count();
    let duplicates = answers.iter().filter(|(s, _)| *s == StatusCode::OK).count();
    assert_eq!((accepted, duplicates), (1, 31), "{answers:?}");

    // Each is paid once, and every answer is counted in the core's
    // metrics: 3 accepted; 36 duplicates, 35 of them answered by edges.
    paid(&http, &core, 3).await;
    let (_, summary) = http.get(&format!("{}/payments-summary", core.url)).await;
    assert_eq!(summary["default"]["totalAmount"], 25.9, "{summary}");
    eventually(
        "the edges' duplicates are counted",
        std::time::Duration::from_secs(5),
        || async {
            let (_, text) = http.get_text(&format!("{}/metrics", core.url)).await;
            let counted = |result: &str| {
                let key = format!("reroute_payments_accepted_total{{result=\"{result}\"}} ");
                text.lines()
                    .find_map(|l| l.strip_prefix(key.as_str()))
                    .map(str::to_owned)
            };
            (counted("accepted").as_deref() == Some("3")
                && counted("duplicate").as_deref() == Some("36"))
            .then_some(())
        },
    )
    .await;
    for edge in edges {
        edge.stop().await;
    }
    core.stop().await;
}

#[tokio::test]
async fn what_an_edge_left_in_the_table_is_stored_and_paid_once() {
    let sims = Sims::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("core.accepts");
    let core = core_with_table(&sims, dir.path()).await;
    let edge = Edge::start(dir.path());
    let http = Http::default();

    // An edge published a payment and died before it told the core.
    let (quiet, _) = AcceptTable::open(&path, false).unwrap();
    let told_nobody = new_id();
    accept_quietly(&quiet, &told_nobody, 700, true);
    // Another claimed an id, wrote it and died before publishing: nothing
    // was answered for it, so the client's retry is accepted.
    let never_answered = new_id();
    accept_quietly(&quiet, &never_answered, 300, false);
    drop(quiet);

    let (status, body) = edge.pay(&http, &never_answered, "3.00").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let (status, body) = edge.pay(&http, &told_nobody, "7.00").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    paid(&http, &core, 2).await;
    core.stop().await;

    // Published while the core was down: the next core stores it first.
    let (quiet, _) = AcceptTable::open(&path, false).unwrap();
    accept_quietly(&quiet, &new_id(), 100, true);
    drop(quiet);
    let core = core_with_table(&sims, dir.path()).await;
    paid(&http, &core, 3).await;
    let (_, summary) = http.get(&format!("{}/payments-summary", core.url)).await;
    assert_eq!(summary["default"]["totalAmount"], 11.0, "{summary}");
    edge.stop().await;
    core.stop().await;
}

#[tokio::test]
async fn a_purge_empties_the_table_with_the_store() {
    let sims = Sims::start().await;
    let dir = tempfile::tempdir().unwrap();
    let core = core_with_table(&sims, dir.path()).await;
    let edge = Edge::start(dir.path());
    let http = Http::default();
    let id = new_id();
    assert_eq!(edge.pay(&http, &id, "1.00").await.0, StatusCode::ACCEPTED);
    paid(&http, &core, 1).await;
    let (status, _) = http
        .post_json(&format!("{}/purge-payments", edge.url), "")
        .await;
    assert_eq!(status, StatusCode::OK);
    // The same id is new again, with any amount.
    assert_eq!(edge.pay(&http, &id, "2.00").await.0, StatusCode::ACCEPTED);
    paid(&http, &core, 1).await;
    let (_, summary) = http.get(&format!("{}/payments-summary", core.url)).await;
    assert_eq!(summary["default"]["totalAmount"], 2.0, "{summary}");
    edge.stop().await;
    core.stop().await;
}

#[tokio::test]
async fn an_edge_maps_the_table_a_restarted_core_made_anew() {
    let sims = Sims::start().await;
    let dir = tempfile::tempdir().unwrap();
    let core = core_with_table(&sims, dir.path()).await;
    let edge = Edge::start(dir.path());
    let http = Http::default();
    assert_eq!(
        edge.pay(&http, &new_id(), "1.00").await.0,
        StatusCode::ACCEPTED
    );
    paid(&http, &core, 1).await;
    core.stop().await;
    // The table is lost; the next core makes it anew from its store.
    std::fs::remove_file(dir.path().join("core.accepts")).unwrap();
    let core = core_with_table(&sims, dir.path()).await;
    let id = new_id();
    assert_eq!(core.pay(&http, &id, "2.00").await.0, StatusCode::ACCEPTED);
    // The edge, still running, reconnects and reads the new file: it
    // knows the id the new core accepted.
    let (status, body) = edge.pay(&http, &id, "2.00").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    paid(&http, &core, 2).await;
    edge.stop().await;
    core.stop().await;
}

#[tokio::test]
async fn a_table_new_beside_a_store_with_payments_is_filled_from_it_first() {
    let sims = Sims::start().await;
    let dir = tempfile::tempdir().unwrap();
    let http = Http::default();
    // A core at `os` without a table takes two payments.
    let core = core_with(&sims, dir.path(), &["--durability", "os"]).await;
    let (first, second) = (new_id(), new_id());
    assert_eq!(
        core.pay(&http, &first, "1.00").await.0,
        StatusCode::ACCEPTED
    );
    paid(&http, &core, 1).await;
    assert_eq!(
        core.pay(&http, &second, "2.00").await.0,
        StatusCode::ACCEPTED
    );
    paid(&http, &core, 2).await;
    core.stop().await;
    // The next one keeps a table: the edges know both at once.
    let core = core_with_table(&sims, dir.path()).await;
    let edge = Edge::start(dir.path());
    let (table, _) = AcceptTable::open(&dir.path().join("core.accepts"), false).unwrap();
    assert!(table.trusted(), "filled before the core serves");
    assert_eq!(edge.pay(&http, &first, "1.00").await.0, StatusCode::OK);
    assert_eq!(
        edge.pay(&http, &second, "3.00").await.0,
        StatusCode::CONFLICT
    );
    let handed: u32 = (0..reroute_server::accepts::owners::MAX_OWNERS)
        .map(|owner| table.ring(owner).1)
        .sum();
    assert_eq!(handed, 0, "nothing new was accepted");
    edge.stop().await;
    core.stop().await;
}

#[tokio::test]
async fn a_refill_knows_the_payments_that_ended_refused() {
    let sims = Sims::start().await;
    let dir = tempfile::tempdir().unwrap();
    let http = Http::default();
    // The store already holds a payment the processor refused for good.
    let refused = new_id();
    {
        use reroute_store::{Acceptance, Attempt, Outcome, SqliteStore, Store};
        let store = SqliteStore::open(dir.path().join("core.db")).unwrap();
        let payment = reroute_store::NewPayment {
            id: refused.parse().unwrap(),
            amount: reroute_core::Money::from_minor(450),
            payment_method: None,
            country: None,
            accepted_at: reroute_core::Timestamp::now(),
        };
        assert_eq!(store.accept(payment).await.unwrap(), Acceptance::New);
        let attempt = Attempt {
            processor: "default".into(),
            requested_at: reroute_core::Timestamp::now(),
        };
        let id = refused.parse().unwrap();
        assert!(store.finish(id, Outcome::Declined(attempt)).await.unwrap());
    }
    // A core with a new table fills it before edges decide: the refused
    // id is a duplicate at an edge as it is at the store, not a new payment.
    let core = core_with_table(&sims, dir.path()).await;
    let edge = Edge::start(dir.path());
    assert_eq!(edge.pay(&http, &refused, "4.50").await.0, StatusCode::OK);
    assert_eq!(
        edge.pay(&http, &refused, "5.00").await.0,
        StatusCode::CONFLICT
    );
    edge.stop().await;
    core.stop().await;
}

#[tokio::test]
async fn at_stable_the_edges_accept_in_the_table_too() {
    let sims = Sims::start().await;
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("core.accepts").display().to_string();
    // `stable` is the default durability.
    let core = core_with(&sims, dir.path(), &["--accept-table", &table]).await;
    let edge = Edge::start(dir.path());
    let http = Http::default();
    let id = new_id();
    let mut statuses = Vec::new();
    for amount in ["19.90", "19.90", "25.00"] {
        statuses.push(edge.pay(&http, &id, amount).await.0.as_u16());
    }
    assert_eq!(statuses, [202, 200, 409]);
    let (table, _) = AcceptTable::open(&dir.path().join("core.accepts"), false).unwrap();
    assert!(table.is_stable(), "the core told the edges");
    let handed: u32 = (0..reroute_server::accepts::owners::MAX_OWNERS)
        .map(|owner| table.ring(owner).1)
        .sum();
    assert_eq!(handed, 1, "decided in the table, not by frame");
    paid(&http, &core, 1).await;
    edge.stop().await;
    core.stop().await;
}

#[tokio::test]
async fn after_a_kernel_crash_a_slot_answered_2xx_is_stored_though_its_ring_lost_it() {
    let sims = Sims::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("core.accepts");
    let args = ["--accept-table", path.to_str().unwrap()];
    let core = core_with(&sims, dir.path(), &args).await;
    let http = Http::default();
    assert_eq!(
        core.pay(&http, &new_id(), "1.00").await.0,
        StatusCode::ACCEPTED
    );
    paid(&http, &core, 1).await;
    core.stop().await;
    // An edge published a slot (and synced it: at `stable` its 202 came
    // after); the kernel crashed before the page of its ring entry reached
    // the disk; the machine booted again.
    let (quiet, _) = AcceptTable::open(&path, false).unwrap();
    let payment = reroute_store::NewPayment {
        id: new_id().parse().unwrap(),
        amount: reroute_core::Money::from_minor(700),
        payment_method: None,
        country: None,
        accepted_at: reroute_core::Timestamp::now(),
    };
    let Probe::Claimed(claim) = quiet.probe(&payment.id) else {
        panic!("a new id is claimed")
    };
    quiet.write(&claim, &payment);
    quiet.publish(claim);
    let (_, store) = quiet.filled_for();
    quiet.set_filled_for(&[b'x'; reroute_server::accepts::table::BOOT_ID_LEN], store);
    drop(quiet);
    let core = core_with(&sims, dir.path(), &args).await;
    paid(&http, &core, 2).await;
    let (_, summary) = http.get(&format!("{}/payments-summary", core.url)).await;
    assert_eq!(summary["default"]["totalAmount"], 8.0, "{summary}");
    core.stop().await;
}
