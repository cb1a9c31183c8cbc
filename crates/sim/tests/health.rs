//! The health check and its fixed-window rate limit.

mod common;

use std::time::Duration;

use common::{Http, rinha_config, spawn, spawn_rinha};
use hyper::StatusCode;
use hyper::header::RETRY_AFTER;
use tokio::time::Instant;

#[tokio::test]
async fn health_reports_the_failure_flag_and_the_delay() {
    let sim = spawn_rinha().await;
    let http = Http::default();
    let reply = http
        .get(&format!("{}/payments/service-health", sim.url("default")))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), r#"{"failing":false,"minResponseTime":0}"#);
}

#[tokio::test]
async fn one_health_call_per_window_two_wait_for_later_windows_and_the_rest_get_429() {
    let mut config = rinha_config();
    config.health_window = Duration::from_secs(1);
    // Windows are counted from the processor's start-up, which is after
    // `before`: an answer at the start of window n comes at least n seconds
    // after `before`.
    let before = Instant::now();
    let sim = spawn(config).await;
    let http = Http::default();
    let url = format!("{}/payments/service-health", sim.url("default"));

    let calls: Vec<_> = (0..4)
        .map(|_| {
            let (http, url) = (http.clone(), url.clone());
            tokio::spawn(async move {
                let reply = http.get(&url).await;
                (reply, before.elapsed())
            })
        })
        .collect();
    let mut answered = Vec::new();
    let mut refused = Vec::new();
    for call in calls {
        let (reply, at) = call.await.unwrap();
        match reply.status {
            StatusCode::OK => answered.push(at),
            StatusCode::TOO_MANY_REQUESTS => refused.push((reply, at)),
            other => panic!("unexpected {other}"),
        }
    }
    answered.sort();
    assert_eq!(
        (answered.len(), refused.len()),
        (3, 1),
        "answered {answered:?}"
    );
    // The first call is answered in window 0, the queued ones at the starts
    // of windows 1 and 2.
    assert!(answered[0] < Duration::from_secs(1), "{answered:?}");
    assert!(answered[1] >= Duration::from_secs(1), "{answered:?}");
    assert!(answered[2] >= Duration::from_secs(2), "{answered:?}");

    let (reply, took) = &refused[0];
    assert!(
        *took < Duration::from_millis(500),
        "the refusal is immediate: {took:?}"
    );
    assert_eq!(reply.headers.get(RETRY_AFTER).unwrap(), "1");

    let stats = http.stats(&sim.url("default")).await;
    assert_eq!(stats["health_calls"], 4);
    assert_eq!(stats["health_answered"], 3);
    assert_eq!(stats["health_throttled"], 1);
    assert_eq!(stats["health_max_per_window"], 1);
}

#[tokio::test]
async fn the_retry_after_header_is_the_window_in_seconds() {
    let mut config = rinha_config();
    config.health_window = Duration::from_secs(5);
    config.health_queue = 0;
    let sim = spawn(config).await;
    let http = Http::default();
    let url = format!("{}/payments/service-health", sim.url("fallback"));
    assert_eq!(http.get(&url).await.status, StatusCode::OK);
    let refused = http.get(&url).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.headers.get(RETRY_AFTER).unwrap(), "5");
}

#[tokio::test]
async fn a_health_storm_answers_429_without_using_the_window() {
    let mut config = rinha_config();
    config.health_window = Duration::from_secs(5);
    let sim = spawn(config).await;
    let http = Http::default();
    let base = sim.url("default");
    let set = http
        .admin_put(
            &format!("{base}/admin/faults"),
            r#"{"health_throttle_rate": 1.0}"#,
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.text());
    let url = format!("{base}/payments/service-health");
    for _ in 0..5 {
        let refused = http.get(&url).await;
        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(refused.headers.get(RETRY_AFTER).unwrap(), "5");
    }
    // Payments are not affected.
    assert_eq!(http.pay_one(&base).await.1.status, StatusCode::OK);
    // Once the storm is over, the window's permit is still there.
    http.admin_put(&format!("{base}/admin/faults"), "{}").await;
    assert_eq!(http.get(&url).await.status, StatusCode::OK);
    let stats = http.stats(&base).await;
    assert_eq!(stats["health_calls"], 6);
    assert_eq!(stats["health_storm_refused"], 5);
    assert_eq!(
        stats["health_throttled"], 0,
        "the limit itself refused nothing"
    );
    assert_eq!(stats["health_answered"], 1);
}
