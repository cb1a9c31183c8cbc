//! Instances that each keep their own embedded store (`--peer`): every
//! instance answers the whole cluster's summary, and none answers a partial
//! one when a peer is away.

mod common;

use std::time::Duration;

use common::*;
use hyper::StatusCode;

const WAIT: Duration = Duration::from_secs(15);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Two instances, each with its own store in `dir`, naming each other; only
/// the first calls the health endpoints.
async fn pair(sims: &Sims, dir: &std::path::Path) -> (TestApp, TestApp) {
    let (port_a, port_b) = (free_port(), free_port());
    let peer = |port: u16| format!("http://127.0.0.1:{port}");
    let mut a = config(sims, &dir.join("a.db"), &["--peer", &peer(port_b)]);
    a.listen.set_port(port_a);
    let mut b = config(
        sims,
        &dir.join("b.db"),
        &["--peer", &peer(port_a), "--probes", "false"],
    );
    b.listen.set_port(port_b);
    (TestApp::start(a).await, TestApp::start(b).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_instance_sums_its_peers_and_refuses_a_partial_summary() {
    let (sims, http, dir) = (
        Sims::start().await,
        Http::default(),
        tempfile::tempdir().unwrap(),
    );
    let (a, b) = pair(&sims, dir.path()).await;

    for _ in 0..5 {
        assert_eq!(
            a.pay(&http, &new_id(), "10.00").await.0,
            StatusCode::ACCEPTED
        );
    }
    for _ in 0..7 {
        assert_eq!(
            b.pay(&http, &new_id(), "1.50").await.0,
            StatusCode::ACCEPTED
        );
    }
    // Both answer for the whole cluster, which is what the processors hold.
    for app in [&a, &b] {
        eventually(
            "the cluster's summary counts every payment",
            WAIT,
            || async { (app.summary(&http, "default").await == (12, 60.5)).then_some(()) },
        )
        .await;
    }
    assert_eq!(sims.books(&http, &sims.default).await, (12, 60.5));
    // `scope=local`: what each instance holds itself.
    let local = |app: &TestApp| {
        let url = format!("{}/payments-summary?scope=local", app.url);
        let http = &http;
        async move {
            let (status, v) = http.get(&url).await;
            assert_eq!(status, StatusCode::OK, "{v}");
            v["default"]["totalRequests"].as_u64().unwrap()
        }
    };
    assert_eq!(local(&a).await, 5);
    assert_eq!(local(&b).await, 7);
    // A window is passed on to the peers: nothing before the epoch.
    let (status, v) = http
        .get(&format!(
            "{}/payments-summary?from=1970-01-01T00:00:00.000Z&to=1970-01-01T00:00:01.000Z",
            a.url
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["default"]["totalRequests"], 0, "{v}");

    // Without its peer, an instance does not pretend to know the total.
    b.stop().await;
    let (status, v) = http.get(&format!("{}/payments-summary", a.url)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert!(v["error"].as_str().unwrap().contains("instance"), "{v}");
    assert!(
        !v["error"].as_str().unwrap().contains("127.0.0.1"),
        "no internal address in the answer: {v}"
    );
    assert_eq!(local(&a).await, 5);
    a.stop().await;
}

#[test]
fn peers_are_http_urls_and_not_for_a_shared_store() {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: reroute_server::ServeArgs,
    }
    // `--store` always given: DATABASE_URL may be set where tests run.
    let parse = |store: &str, args: &[&str]| {
        let mut argv = vec!["reroute", "--db", "/tmp/x.db", "--store", store];
        argv.extend_from_slice(args);
        Cli::parse_from(argv).serve.into_config()
    };
    let err = parse("", &["--peer", "ftp://x"]).unwrap_err().to_string();
    assert!(
        err.contains("REROUTE_PEERS") && err.contains("http://"),
        "{err}"
    );
    let err = parse("postgres://u@h/db", &["--peer", "http://b:9999"])
        .unwrap_err()
        .to_string();
    assert!(err.contains("shared ledger"), "{err}");
    let ok = parse("", &["--peer", "http://b:9999,http://c:9999"]).unwrap();
    assert_eq!(ok.peers, ["http://b:9999", "http://c:9999"]);
    assert!(ok.probes);
}

/// A client whose request was cut off by a crash of one instance re-sends
/// it, and the load balancer takes it to another: both instances then hold
/// the same payment in their own stores. The processor charges it once; the
/// cluster's summary must count it once too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_accepted_by_two_instances_is_charged_and_counted_once() {
    let (sims, http, dir) = (
        Sims::start().await,
        Http::default(),
        tempfile::tempdir().unwrap(),
    );
    let (a, b) = pair(&sims, dir.path()).await;

    let twice = new_id();
    assert_eq!(a.pay(&http, &twice, "10.00").await.0, StatusCode::ACCEPTED);
    assert_eq!(b.pay(&http, &twice, "10.00").await.0, StatusCode::ACCEPTED);
    let once = new_id();
    assert_eq!(b.pay(&http, &once, "1.00").await.0, StatusCode::ACCEPTED);
    eventually("the processor has both payments", WAIT, || async {
        (sims.books(&http, &sims.default).await == (2, 11.0)).then_some(())
    })
    .await;
    for app in [&a, &b] {
        eventually("the summary counts each payment once", WAIT, || async {
            (app.summary(&http, "default").await == (2, 11.0)).then_some(())
        })
        .await;
    }
    // One store records it, the other holds a duplicate of the same charge.
    let record = |app: &TestApp, id: String, scope: &'static str| {
        let url = format!("{}/payments/{id}{scope}", app.url);
        let http = &http;
        async move { http.get(&url).await }
    };
    let mut states = Vec::new();
    for app in [&a, &b] {
        let (status, v) = record(app, twice.clone(), "?scope=local").await;
        assert_eq!(status, StatusCode::OK, "{v}");
        assert_eq!(v["correlationId"], twice.as_str(), "{v}");
        assert_eq!(v["amount"], 10.0, "{v}");
        assert_eq!(v["processor"], "default", "{v}");
        states.push(v["state"].as_str().unwrap().to_owned());
    }
    states.sort();
    assert_eq!(states, ["duplicate", "processed"]);
    // Without `scope=local`, a payment held by a peer only is found there.
    let (status, v) = record(&a, once.clone(), "").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        (v["state"].as_str(), v["amount"].as_f64()),
        (Some("processed"), Some(1.0))
    );
    let (status, _) = record(&a, once.clone(), "?scope=local").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = record(&a, new_id(), "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, v) = record(&a, "not-a-uuid".into(), "").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["field"], "id", "{v}");
    // A peer away: whether it holds the payment cannot be said.
    b.stop().await;
    let (status, _) = record(&a, once, "").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    a.stop().await;
}
