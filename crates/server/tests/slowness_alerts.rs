//! End to end: a processor that slows down while approving everything is
//! reported slow against its own baseline, where operators read the other
//! alerts (`GET /api/v1/alerts`, the metrics' alert counter), and reported
//! back when it returns; its status stays what the seed's table says.

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(40);

/// The anomaly alerts about `default` whose reason starts with `prefix`.
async fn latency_alerts(app: &TestApp, http: &Http, prefix: &str) -> Vec<Value> {
    let (_, v) = http.get(&format!("{}/api/v1/alerts", app.url)).await;
    v["alerts"]
        .as_array()
        .expect("alerts is a list")
        .iter()
        .filter(|a| {
            a["processor_id"] == "default"
                && a["type"] == "anomaly"
                && a["reason"].as_str().is_some_and(|r| r.starts_with(prefix))
        })
        .cloned()
        .collect()
}

/// Waits for `what`: the first alerts of [`latency_alerts`] for `prefix`.
async fn raised(app: &TestApp, http: &Http, what: &str, prefix: &str) -> Vec<Value> {
    eventually(what, WAIT, || async {
        let alerts = latency_alerts(app, http, prefix).await;
        (!alerts.is_empty()).then_some(alerts)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_processor_slowed_to_two_seconds_raises_a_slowness_alert_and_one_when_it_returns() {
    let (sims, http) = (Sims::start().await, Http::default());
    let (app, _dir) = start_app(&sims, SLOW_BUT_WAITED_FOR).await;
    // The baseline: default answers at once.
    burst(&app, 150).await;
    eventually("150 payments at default", WAIT, || async {
        (app.summary(&http, "default").await.0 == 150).then_some(())
    })
    .await;
    assert!(
        latency_alerts(&app, &http, "Anomaly: p50 latency")
            .await
            .is_empty()
    );

    sims.set_delay(&http, &sims.default, 2_000).await;
    burst(&app, 40).await;
    let slow = raised(&app, &http, "a slowness alert", "Anomaly: p50 latency").await;
    assert_eq!(slow.len(), 1, "{slow:?}");
    let reason = slow[0]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("Anomaly: p50 latency 2,0")
            && reason.contains(" ms against a baseline of "),
        "{reason}"
    );
    // Slow is not a status: every answer is an approval.
    assert_eq!(slow[0]["from_status"], "HEALTHY");
    assert_eq!(slow[0]["to_status"], "HEALTHY");
    let (_, metrics) = http.get_text(&format!("{}/metrics", app.url)).await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("reroute_alerts_total{")
                && l.contains("processor=\"default\"")
                && l.contains("kind=\"anomaly\"")),
        "{metrics}"
    );

    sims.set_delay(&http, &sims.default, 0).await;
    eventually("190 payments at default", WAIT, || async {
        (app.summary(&http, "default").await.0 == 190).then_some(())
    })
    .await;
    burst(&app, 40).await;
    let back = raised(&app, &http, "a recovery alert", "Recovered: p50 latency").await;
    assert_eq!(back.len(), 1, "{back:?}");
    assert_eq!(
        latency_alerts(&app, &http, "Anomaly: p50 latency")
            .await
            .len(),
        1
    );
    app.stop().await;
}
