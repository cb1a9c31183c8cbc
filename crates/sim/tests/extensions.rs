//! The endpoints the router's tests rely on: the books in full and counters.

mod common;

use std::collections::BTreeSet;

use common::{Http, spawn_rinha};
use hyper::StatusCode;
use reroute_core::CorrelationId;

#[tokio::test]
async fn admin_payments_lists_every_stored_payment() {
    let sim = spawn_rinha().await;
    let http = Http::default();
    let base = sim.url("default");
    let mut sent = BTreeSet::new();
    for at in [
        "2025-07-15T12:00:02.000Z",
        "2025-07-15T12:00:01.000Z",
        "2025-07-15T12:00:03.000Z",
    ] {
        let id = CorrelationId::new_random();
        assert_eq!(
            http.pay(&base, id, "19.90", at).await.status,
            StatusCode::OK
        );
        sent.insert(id.to_string());
    }

    let listed = http.admin_get(&format!("{base}/admin/payments")).await;
    assert_eq!(listed.status, StatusCode::OK);
    let listed = listed.json();
    let listed = listed.as_array().unwrap();
    let ids: BTreeSet<String> = listed
        .iter()
        .map(|p| p["correlationId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, sent);
    let instants: Vec<&str> = listed
        .iter()
        .map(|p| p["requestedAt"].as_str().unwrap())
        .collect();
    assert_eq!(
        instants,
        [
            "2025-07-15T12:00:01.000Z",
            "2025-07-15T12:00:02.000Z",
            "2025-07-15T12:00:03.000Z"
        ]
    );
    assert!(
        listed
            .iter()
            .all(|p| p["amount"] == serde_json::json!(19.90))
    );

    let window = "?from=2025-07-15T12:00:02.000Z&to=2025-07-15T12:00:03.000Z";
    let filtered = http
        .admin_get(&format!("{base}/admin/payments{window}"))
        .await
        .json();
    assert_eq!(filtered.as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn admin_stats_count_what_happened() {
    let sim = spawn_rinha().await;
    let http = Http::default();
    let base = sim.url("default");
    let (id, _) = http.pay_one(&base).await;
    http.pay(&base, id, "19.90", "2025-07-15T12:00:00Z").await;
    http.set_failure(&base, true).await;
    http.pay_one(&base).await;
    http.get(&format!("{base}/payments/service-health")).await;
    http.get(&format!("{base}/payments/{id}")).await;

    let stats = http.stats(&base).await;
    let expected = [
        ("payments_received", 3),
        ("payments_stored", 1),
        ("payments_duplicate", 1),
        ("payments_failed", 1),
        ("payments_declined", 0),
        ("payments_throttled", 0),
        ("payments_storm_refused", 0),
        ("payments_looked_up", 1),
        ("health_calls", 1),
        ("health_answered", 1),
        ("health_throttled", 0),
        ("health_storm_refused", 0),
        ("health_max_per_window", 1),
    ];
    for (counter, value) in expected {
        assert_eq!(stats[counter], value, "{counter} in {stats}");
    }
}

#[tokio::test]
async fn resetting_stats_zeroes_every_counter() {
    let sim = spawn_rinha().await;
    let http = Http::default();
    let base = sim.url("default");
    http.pay_one(&base).await;
    let reset = http.admin_post(&format!("{base}/admin/stats/reset")).await;
    assert_eq!(reset.status, StatusCode::NO_CONTENT);
    let stats = http.stats(&base).await;
    assert!(
        stats.as_object().unwrap().values().all(|v| v == 0),
        "{stats}"
    );
    // The books are not touched.
    assert_eq!(http.summary(&base, "").await["totalRequests"], 1);
}

#[tokio::test]
async fn processors_can_be_driven_directly_from_a_test() {
    let sim = spawn_rinha().await;
    let http = Http::default();
    let default = sim.processor("default");
    default.set_failure(true);
    assert_eq!(
        http.pay_one(&sim.url("default")).await.1.status,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    default.set_failure(false);
    let (id, _) = http.pay_one(&sim.url("default")).await;
    assert_eq!(
        default.payments(reroute_core::Window::ALL)[0].correlation_id,
        id
    );
    assert_eq!(default.stats().payments_failed, 1);
}
