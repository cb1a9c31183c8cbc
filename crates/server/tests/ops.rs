//! Operations surface: Prometheus metrics, liveness and readiness.

mod common;

use std::time::Duration;

use common::*;
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
    let (sims, http, dir) = (
        Sims::start().await,
        Http::default(),
        tempfile::tempdir().unwrap(),
    );
    let app = TestApp::start(config(&sims, &dir.path().join("r.db"), &[])).await;
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
    let (sims, http, dir) = (
        Sims::start().await,
        Http::default(),
        tempfile::tempdir().unwrap(),
    );
    let app = TestApp::start(config(&sims, &dir.path().join("r.db"), &[])).await;
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
