//! End to end: the failover-intelligence API over processors that execute
//! payments (the Rinha simulator pair): payments executed through the
//! router feed the same health engine, and routing follows it — away from
//! a segment that went down, and back once a trial succeeds.

mod common;

use std::time::Duration;

use common::*;
use hyper::{Method, StatusCode};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(15);

#[tokio::test]
async fn the_rinha_pair_is_served_by_the_same_api() {
    let (sims, http) = (Sims::start().await, Http::default());
    let (app, _dir) = start_app(&sims, &[]).await;
    let (_, v) = get(&app, &http, "/api/v1/processors").await;
    assert_eq!(v["processors"][0]["processor_id"], "default");
    assert_eq!(v["processors"][0]["executes_payments"], true);
    assert_eq!(v["processors"][0]["countries"], json!([]));
    // Payments without method and country feed the processor's roll-up.
    for _ in 0..3 {
        assert_eq!(
            app.pay(&http, &new_id(), "10.00").await.0,
            StatusCode::ACCEPTED
        );
    }
    let v = eventually("three attempts on default", WAIT, || async {
        let (_, v) = get(&app, &http, "/api/v1/health/default").await;
        (v["success_count"] == 3).then_some(v)
    })
    .await;
    assert_eq!(v["segments"], json!([]));
    assert!(v["latency_ms"]["p99"].is_u64(), "{v}");
    assert!(v["recent_transactions"][0]["amount"] == 10.0, "{v}");
    // Empty lists take anything: both are candidates.
    let (_, v) = get(&app, &http, RECOMMEND_PIX_IN_BRAZIL).await;
    assert_eq!(v["count"], 2, "{v}");
    app.stop().await;
}

/// A registry where both Rinha simulators take PIX in Brazil.
fn pix_registry(dir: &std::path::Path, sims: &Sims) -> std::path::PathBuf {
    let path = dir.join("pix.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[[processors]]
id = "default"
url = "{}"
fee = 0.05
countries = ["BR"]
payment_methods = ["PIX"]

[[processors]]
id = "fallback"
url = "{}"
fee = 0.15
countries = ["BR"]
payment_methods = ["PIX", "CARD"]
"#,
            sims.default, sims.fallback
        ),
    )
    .unwrap();
    path
}

#[tokio::test]
async fn executed_payments_feed_the_engine_avoid_a_down_segment_and_recover_by_trial() {
    let (sims, http, dir) = (
        Sims::start().await,
        Http::default(),
        tempfile::tempdir().unwrap(),
    );
    let registry = pix_registry(dir.path(), &sims);
    let config = config_with_registry(
        &dir.path().join("r.db"),
        &registry,
        &[
            "--patience-ms",
            "0",
            "--health-trial-interval-ms",
            "200",
            // The circuit would isolate default on its own: make it slow so
            // that the health engine is what does it.
            "--trip-after",
            "1000",
            "--processor-timeout-ms",
            "1000",
        ],
    );
    let app = TestApp::start(config).await;
    let sent = std::sync::atomic::AtomicU64::new(0);
    let pay = |id: String| {
        let http = &http;
        let url = format!("{}/payments", app.url);
        sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        async move {
            let body = format!(
                r#"{{"correlationId":"{id}","amount":10.00,"paymentMethod":"PIX","country":"BR"}}"#
            );
            let (s, v) = http.post_json(&url, &body).await;
            assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        }
    };
    // default fails every payment (its health endpoint still says fine):
    // its PIX/BR segment goes DOWN, payments go to fallback.
    let errors = |rate: f64| {
        let http = &http;
        let url = format!("{}/admin/faults", sims.default);
        async move {
            let body = format!(r#"{{"error_rate":{rate}}}"#);
            let (s, v) = http.admin(Method::PUT, &url, &body).await;
            assert!(s.is_success(), "{v}");
        }
    };
    errors(1.0).await;
    let v = eventually("default DOWN", WAIT, || async {
        pay(new_id()).await;
        let (_, v) = get(&app, &http, "/api/v1/health/default").await;
        (v["status"] == "DOWN").then_some(v)
    })
    .await;
    assert!(v["error_count"].as_u64().unwrap() >= 10, "{v}");
    assert_eq!(v["success_count"], 0, "{v}");
    // While DOWN, default sees one trial per interval, not the traffic.
    let errors_before = v["error_count"].as_u64().unwrap();
    for _ in 0..20 {
        pay(new_id()).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, v) = get(&app, &http, "/api/v1/health/default").await;
    let trials = v["error_count"].as_u64().unwrap() - errors_before;
    assert!(
        trials <= 4,
        "{trials} attempts on a DOWN segment in ~0.3 s: {v}"
    );
    assert_eq!(v["segments"][0]["payment_method"], "PIX");
    assert_eq!(v["segments"][0]["status"], "DOWN");
    let (_, rec) = get(&app, &http, RECOMMEND_PIX_IN_BRAZIL).await;
    assert_eq!(rec["recommended"], "fallback", "{rec}");
    let (_, alerts) = get(&app, &http, "/api/v1/alerts").await;
    assert!(
        alerts["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["processor_id"] == "default" && a["to_status"] == "DOWN"),
        "{alerts}"
    );
    // default recovers: a trial payment finds out, and payments return to it.
    errors(0.0).await;
    eventually("payments back on default", WAIT, || async {
        pay(new_id()).await;
        (app.summary(&http, "default").await.0 >= 3).then_some(())
    })
    .await;
    // Every payment processed exactly once: the router's books equal the
    // processors'.
    let sent = sent.load(std::sync::atomic::Ordering::Relaxed);
    eventually("every payment processed", WAIT, || async {
        let d = app.summary(&http, "default").await.0;
        let f = app.summary(&http, "fallback").await.0;
        (d + f == sent).then_some(())
    })
    .await;
    for (name, url) in [("default", &sims.default), ("fallback", &sims.fallback)] {
        assert_eq!(
            sims.books(&http, url).await.0,
            app.summary(&http, name).await.0,
            "{name}"
        );
    }
    app.stop().await;
}
