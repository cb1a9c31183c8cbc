//! Operations surface: Prometheus metrics, liveness and readiness.

mod common;

use std::time::Duration;

use common::*;

const WAIT: Duration = Duration::from_secs(15);
use hyper::StatusCode;

async fn metrics_text(http: &Http, app: &TestApp) -> String {
    let (status, text) = http.get_text(&format!("{}/metrics", app.url)).await;
    assert_eq!(status, StatusCode::OK);
    text
}

fn value_of(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn metrics_count_requests_attempts_and_the_ledger() {
    let (sims, http) = (Sims::start().await, Http::default());
    let (app, _dir) = start_app(&sims, &[]).await;
    let id = new_id();
    assert_eq!(app.pay(&http, &id, "19.90").await.0, StatusCode::ACCEPTED);
    assert_eq!(app.pay(&http, &id, "19.90").await.0, StatusCode::OK);
    assert_eq!(
        app.pay(&http, "nope", "19.90").await.0,
        StatusCode::BAD_REQUEST
    );
    eventually(
        "the payment in the ledger",
        Duration::from_secs(10),
        || async { (app.summary(&http, "default").await.0 == 1).then_some(()) },
    )
    .await;
    let text = metrics_text(&http, &app).await;
    let expect = [
        (
            r#"reroute_http_requests_total{route="/payments",method="POST",status="202"}"#,
            1.0,
        ),
        (
            r#"reroute_http_requests_total{route="/payments",method="POST",status="200"}"#,
            1.0,
        ),
        (
            r#"reroute_http_requests_total{route="/payments",method="POST",status="400"}"#,
            1.0,
        ),
        (r#"reroute_payments_accepted_total{result="accepted"}"#, 1.0),
        (
            r#"reroute_payments_accepted_total{result="duplicate"}"#,
            1.0,
        ),
        (
            r#"reroute_payment_attempts_total{processor="default",outcome="approved"}"#,
            1.0,
        ),
        (r#"reroute_ledger_payments{processor="default"}"#, 1.0),
        (r#"reroute_ledger_amount{processor="default"}"#, 19.9),
        (r#"reroute_processor_up{processor="default"}"#, 1.0),
        (
            r#"reroute_processor_health_status{processor="default",status="HEALTHY"}"#,
            1.0,
        ),
        ("reroute_queue_depth", 0.0),
        ("reroute_attempts_in_flight", 0.0),
        ("reroute_store_up", 1.0),
        ("reroute_outcomes_recording", 0.0),
        ("reroute_summaries_settling", 0.0),
        (
            r#"reroute_store_operation_duration_seconds_count{operation="accept"}"#,
            2.0,
        ),
        (
            r#"reroute_store_operation_duration_seconds_count{operation="finish"}"#,
            1.0,
        ),
    ];
    for (series, want) in expect {
        assert_eq!(value_of(&text, series), Some(want), "{series} in\n{text}");
    }
    assert!(
        text.contains("# TYPE reroute_http_request_duration_seconds histogram"),
        "{text}"
    );
    eventually("a probe counted", Duration::from_secs(10), || async {
        let text = metrics_text(&http, &app).await;
        text.contains(r#"reroute_probes_total{processor="default",result="healthy"}"#)
            .then_some(())
    })
    .await;
    app.stop().await;
}

#[tokio::test]
async fn liveness_and_readiness_answer_with_the_store_state() {
    let (sims, http) = (Sims::start().await, Http::default());
    let (app, _dir) = start_app(&sims, &[]).await;
    let (status, body) = http.get(&format!("{}/livez", app.url)).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("ok"))
    );
    let (status, body) = http.get(&format!("{}/readyz", app.url)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["store"], "ok");
    assert_eq!(body["workers"], "running");
    app.stop().await;
}

/// A TCP relay to PostgreSQL that can be cut (every connection dropped,
/// nothing listening) and restored on the same port.
struct Link {
    addr: std::net::SocketAddr,
    target: std::net::SocketAddr,
    relay: tokio::task::JoinSet<()>,
}

impl Link {
    async fn open(target: std::net::SocketAddr) -> Link {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut link = Link {
            addr: listener.local_addr().unwrap(),
            target,
            relay: tokio::task::JoinSet::new(),
        };
        link.relay.spawn(Self::relay(listener, target));
        link
    }

    async fn cut(&mut self) {
        self.relay.abort_all();
        while self.relay.join_next().await.is_some() {}
    }

    async fn restore(&mut self) {
        let listener = tokio::net::TcpListener::bind(self.addr).await.unwrap();
        self.relay.spawn(Self::relay(listener, self.target));
    }

    async fn relay(listener: tokio::net::TcpListener, target: std::net::SocketAddr) {
        // Aborting this task drops the listener and every relayed connection.
        let mut connections = tokio::task::JoinSet::new();
        while let Ok((mut inbound, _)) = listener.accept().await {
            connections.spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_makes_the_instance_not_ready_and_it_recovers() {
    let (sims, http, dir) = (
        Sims::start().await,
        Http::default(),
        tempfile::tempdir().unwrap(),
    );
    let backing = Backing::postgres();
    let Backing::Postgres { url, schema } = &backing else {
        unreachable!("Backing::postgres is on PostgreSQL")
    };
    let pg: tokio_postgres::Config = url.parse().unwrap();
    let host = match &pg.get_hosts()[0] {
        tokio_postgres::config::Host::Tcp(host) => host.clone(),
        other => panic!("the test database must be reached over TCP, not {other:?}"),
    };
    let port = pg.get_ports().first().copied().unwrap_or(5432);
    let target = tokio::net::lookup_host((host.as_str(), port))
        .await
        .unwrap()
        .next()
        .unwrap();
    let mut link = Link::open(target).await;
    let via_link = format!(
        "host=127.0.0.1 port={} user={} dbname={}",
        link.addr.port(),
        pg.get_user().unwrap_or("postgres"),
        pg.get_dbname().unwrap_or("postgres"),
    );
    let store = reroute_store::PostgresStore::connect(reroute_store::PostgresConfig {
        instance: "outage".into(),
        lease: Duration::from_millis(1_500),
        statement_timeout: Duration::from_millis(500),
        schema: Some(schema.clone()),
        ..reroute_store::PostgresConfig::new(via_link)
    })
    .await
    .unwrap();
    let app = TestApp::start_with_store(
        config(&sims, &dir.path().join("unused.db"), &[]),
        std::sync::Arc::new(store),
    )
    .await;
    let ready = || async {
        let (status, body) = http.get(&format!("{}/readyz", app.url)).await;
        (status, body)
    };
    assert_eq!(ready().await.0, StatusCode::OK);
    assert_eq!(
        app.pay(&http, &new_id(), "10.00").await.0,
        StatusCode::ACCEPTED
    );

    link.cut().await;
    let body = eventually("not ready while the database is away", WAIT, || async {
        let (status, body) = ready().await;
        (status == StatusCode::SERVICE_UNAVAILABLE && body["leases"] == "lost").then_some(body)
    })
    .await;
    assert_eq!(body["store"], "unavailable", "{body}");
    assert_eq!(body["status"], "not ready", "{body}");
    let (status, v) = app.pay(&http, &new_id(), "10.00").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    // The instance cannot tell whether the write reached the database.
    assert_eq!(v["outcome"], "unknown", "{v}");
    assert!(!v["error"].as_str().unwrap().contains("127.0.0.1"), "{v}");

    link.restore().await;
    eventually("ready once the database is back", WAIT, || async {
        let (status, body) = ready().await;
        (status == StatusCode::OK && body["leases"] == "held").then_some(())
    })
    .await;
    assert_eq!(
        app.pay(&http, &new_id(), "10.00").await.0,
        StatusCode::ACCEPTED
    );
    // Nothing lost, nothing doubled: the two accepted payments, once each.
    eventually("both payments processed", WAIT, || async {
        (app.summary(&http, "default").await == (2, 20.0)).then_some(())
    })
    .await;
    assert_eq!(sims.books(&http, &sims.default).await, (2, 20.0));
    app.stop().await;
}
