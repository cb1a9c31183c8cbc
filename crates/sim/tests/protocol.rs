//! The Rinha processor protocol, one behaviour per test (PROTOCOL.md's table).

mod common;

use std::time::Duration;

use common::{Http, TOKEN, eventually, rinha_config, spawn, spawn_rinha};
use hyper::{Method, StatusCode};
use reroute_core::CorrelationId;
use tokio::time::Instant;

#[tokio::test]
async fn a_payment_is_stored_and_answered_200_with_a_message() {
    let sim = spawn_rinha().await;
    let http = Http::default();
    let base = sim.url("default");
    let id = CorrelationId::new_random();
    let reply = http
        .pay(&base, id, "19.90", "2025-07-15T12:34:56.000Z")
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.json(),
        serde_json::json!({"message": "payment processed successfully"})
    );

    let stored = http.get(&format!("{base}/payments/{id}")).await;
    assert_eq!(stored.status, StatusCode::OK);
    assert_eq!(
        stored.text(),
        format!(
            r#"{{"correlationId":"{id}","amount":19.90,"requestedAt":"2025-07-15T12:34:56.000Z"}}"#
        )
    );
}

#[tokio::test]
async fn an_unknown_payment_is_404_and_a_malformed_id_is_400() {
    let sim = spawn_rinha().await;
    let http = Http::default();
    let base = sim.url("default");
    let unknown = http
        .get(&format!("{base}/payments/{}", CorrelationId::new_random()))
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let malformed = http.get(&format!("{base}/payments/not-a-uuid")).await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_payment_missing_a_field_is_400_naming_the_field() {
    let sim = spawn_rinha().await;
    let http = Http::default();
    let body = format!(
        r#"{{"correlationId":"{}","amount":19.90}}"#,
        CorrelationId::new_random()
    );
    let reply = http
        .send(
            Method::POST,
            &format!("{}/payments", sim.url("default")),
            None,
            Some(body),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.json()["field"], "requestedAt");
}

#[tokio::test]
async fn a_repeated_correlation_id_is_422_and_changes_nothing() {
    let sim = spawn_rinha().await;
    let http = Http::default();
    let base = sim.url("default");
    let id = CorrelationId::new_random();
    assert_eq!(
        http.pay(&base, id, "19.90", "2025-07-15T12:00:00.000Z")
            .await
            .status,
        StatusCode::OK
    );

    let again = http
        .pay(&base, id, "5.00", "2025-07-15T13:00:00.000Z")
        .await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        again.json()["message"]
            .as_str()
            .unwrap()
            .contains(&id.to_string())
    );

    let stored = http.get(&format!("{base}/payments/{id}")).await.json();
    assert_eq!(stored["amount"], serde_json::json!(19.90));
    assert_eq!(stored["requestedAt"], "2025-07-15T12:00:00.000Z");
    assert_eq!(http.summary(&base, "").await["totalRequests"], 1);
}

#[tokio::test]
async fn amounts_are_rounded_to_two_decimals() {
    let sim = spawn_rinha().await;
    let http = Http::default();
    let base = sim.url("default");
    let cases = [
        ("19.905", "19.90"),
        ("19.915", "19.92"),
        ("77.8299999999999982946974341757595539093017578125", "77.83"),
    ];
    for (sent, kept) in cases {
        let id = CorrelationId::new_random();
        assert_eq!(
            http.pay(&base, id, sent, "2025-07-15T12:00:00.000Z")
                .await
                .status,
            StatusCode::OK
        );
        let stored = http.get(&format!("{base}/payments/{id}")).await.text();
        assert!(
            stored.contains(&format!(r#""amount":{kept},"#)),
            "{sent} -> {stored}"
        );
    }
    let summary = http
        .admin_get(&format!("{base}/admin/payments-summary"))
        .await
        .text();
    assert!(summary.contains(r#""totalAmount":117.65"#), "{summary}");
}

#[tokio::test]
async fn the_delay_comes_before_the_answer_and_is_reported() {
    let sim = spawn_rinha().await;
    let http = Http::default();
    let base = sim.url("default");
    let set = http.set_delay(&base, 300).await;
    assert_eq!(set.status, StatusCode::OK);
    assert_eq!(
        set.json(),
        serde_json::json!({"config": "delay", "was": 0, "is": 300})
    );

    let started = Instant::now();
    let (id, reply) = http.pay_one(&base).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
    assert!(http.is_stored(&base, id).await);

    let health = http.health(&base).await;
    assert_eq!(
        health,
        serde_json::json!({"failing": false, "minResponseTime": 300})
    );
}

#[tokio::test]
async fn failure_mode_answers_500_and_stores_nothing() {
    let sim = spawn_rinha().await;
    let http = Http::default();
    let base = sim.url("fallback");
    let set = http.set_failure(&base, true).await;
    assert_eq!(
        set.json(),
        serde_json::json!({"config": "failure", "was": false, "is": true})
    );

    let (id, reply) = http.pay_one(&base).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(!http.is_stored(&base, id).await);
    assert_eq!(http.summary(&base, "").await["totalRequests"], 0);
    let health = http.health(&base).await;
    assert_eq!(health["failing"], true);
}

#[tokio::test]
async fn the_failure_flag_is_read_when_the_delay_ends_not_on_arrival() {
    let sim = spawn_rinha().await;
    let http = Http::default();
    let base = sim.url("default");
    http.set_delay(&base, 1000).await;

    let in_flight = http.pay_one_in_background(&base);
    http.until_received(&base, 1, "the payment has arrived")
        .await;
    http.set_failure(&base, true).await;

    let (id, reply) = in_flight.await.unwrap();
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(!http.is_stored(&base, id).await);
}

#[tokio::test]
async fn a_request_sleeping_when_the_delay_is_changed_keeps_the_delay_it_arrived_with() {
    let sim = spawn_rinha().await;
    let http = Http::default();
    let base = sim.url("default");
    http.set_delay(&base, 1500).await;

    let started = Instant::now();
    let sleeping = http.pay_one_in_background(&base);
    http.until_received(&base, 1, "the first payment has arrived")
        .await;
    http.set_delay(&base, 0).await;

    // A new request is answered at the new delay, before the sleeping one.
    let (fresh, reply) = http.pay_one(&base).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(http.is_stored(&base, fresh).await);
    assert!(started.elapsed() < Duration::from_millis(1500));
    let (first, reply) = sleeping.await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "the sleeping request kept its 1500 ms: {:?}",
        started.elapsed()
    );
    assert_eq!(reply.status, StatusCode::OK);
    assert!(http.is_stored(&base, first).await);
}

#[tokio::test]
async fn a_delayed_payment_abandoned_by_its_client_is_still_stored_when_the_delay_ends() {
    let sim = spawn_rinha().await;
    let http = Http::default();
    let base = sim.url("default");
    http.set_delay(&base, 1500).await;

    let id = CorrelationId::new_random();
    let abandoned = tokio::time::timeout(
        Duration::from_millis(100),
        http.pay(&base, id, "19.90", "2025-07-15T12:00:00.000Z"),
    )
    .await;
    assert!(abandoned.is_err(), "the client gave up before the answer");
    assert!(
        !http.is_stored(&base, id).await,
        "not stored before the delay ends"
    );

    eventually("the abandoned payment is stored", || {
        http.is_stored(&base, id)
    })
    .await;
    assert_eq!(http.stats(&base).await["payments_stored"], 1);
}

#[tokio::test]
async fn admin_endpoints_answer_401_without_the_right_token() {
    let sim = spawn_rinha().await;
    let http = Http::default();
    let base = sim.url("default");
    let endpoints = [
        (Method::GET, "/admin/payments-summary", None),
        (
            Method::PUT,
            "/admin/configurations/token",
            Some(r#"{"token":"x"}"#),
        ),
        (
            Method::PUT,
            "/admin/configurations/delay",
            Some(r#"{"delay":1}"#),
        ),
        (
            Method::PUT,
            "/admin/configurations/failure",
            Some(r#"{"failure":true}"#),
        ),
        (Method::POST, "/admin/purge-payments", None),
        (Method::GET, "/admin/payments", None),
        (Method::GET, "/admin/stats", None),
        (Method::GET, "/admin/faults", None),
        (Method::PUT, "/admin/faults", Some(r#"{}"#)),
    ];
    for (method, path, body) in endpoints {
        for token in [None, Some("wrong")] {
            let reply = http
                .send(
                    method.clone(),
                    &format!("{base}{path}"),
                    token,
                    body.map(str::to_owned),
                )
                .await;
            assert_eq!(
                reply.status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} with {token:?}"
            );
        }
    }
    let settings = http.health(&base).await;
    assert_eq!(
        settings,
        serde_json::json!({"failing": false, "minResponseTime": 0}),
        "nothing changed"
    );
}

#[tokio::test]
async fn the_token_can_be_changed_and_the_old_one_stops_working() {
    let sim = spawn_rinha().await;
    let http = Http::default();
    let base = sim.url("default");
    let set = http
        .admin_put(
            &format!("{base}/admin/configurations/token"),
            r#"{"token":"s3cret"}"#,
        )
        .await;
    assert_eq!(set.status, StatusCode::NO_CONTENT);

    let summary = format!("{base}/admin/payments-summary");
    assert_eq!(
        http.send(Method::GET, &summary, Some(TOKEN), None)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        http.send(Method::GET, &summary, Some("s3cret"), None)
            .await
            .status,
        StatusCode::OK
    );
    // Each processor keeps its own token.
    let other = format!("{}/admin/payments-summary", sim.url("fallback"));
    assert_eq!(
        http.send(Method::GET, &other, Some(TOKEN), None)
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_summary_window_is_inclusive_at_both_ends() {
    let sim = spawn_rinha().await;
    let http = Http::default();
    let base = sim.url("default");
    for at in [
        "12:00:00.999",
        "12:00:01.000",
        "12:00:05.500",
        "12:00:10.000",
        "12:00:10.001",
    ] {
        let reply = http
            .pay(
                &base,
                CorrelationId::new_random(),
                "1.00",
                &format!("2025-07-15T{at}Z"),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    let summary = http
        .summary(
            &base,
            "?from=2025-07-15T12:00:01.000Z&to=2025-07-15T12:00:10.000Z",
        )
        .await;
    assert_eq!(summary["totalRequests"], 3);
    assert_eq!(summary["totalAmount"], serde_json::json!(3.00));
}

#[tokio::test]
async fn without_both_bounds_the_summary_counts_every_payment() {
    let sim = spawn_rinha().await;
    let http = Http::default();
    let base = sim.url("default");
    for at in ["2025-07-15T12:00:00.000Z", "2030-01-01T00:00:00.000Z"] {
        http.pay(&base, CorrelationId::new_random(), "1.00", at)
            .await;
    }
    for query in [
        "",
        "?from=2029-01-01T00:00:00.000Z",
        "?to=2000-01-01T00:00:00.000Z",
    ] {
        assert_eq!(
            http.summary(&base, query).await["totalRequests"],
            2,
            "{query}"
        );
    }
}

#[tokio::test]
async fn the_summary_reports_fees_exactly_per_processor() {
    let sim = spawn_rinha().await;
    let http = Http::default();
    for id in ["default", "fallback"] {
        let base = sim.url(id);
        for _ in 0..2 {
            http.pay_one(&base).await;
        }
    }
    let default = http
        .admin_get(&format!("{}/admin/payments-summary", sim.url("default")))
        .await
        .text();
    assert_eq!(
        default,
        r#"{"totalAmount":39.80,"totalRequests":2,"totalFee":1.9900,"feePerTransaction":0.05}"#
    );
    let fallback = http
        .admin_get(&format!("{}/admin/payments-summary", sim.url("fallback")))
        .await
        .text();
    assert_eq!(
        fallback,
        r#"{"totalAmount":39.80,"totalRequests":2,"totalFee":5.9700,"feePerTransaction":0.15}"#
    );
}

#[tokio::test]
async fn purge_removes_every_payment() {
    let sim = spawn_rinha().await;
    let http = Http::default();
    let base = sim.url("default");
    let (id, _) = http.pay_one(&base).await;
    let purged = http
        .admin_post(&format!("{base}/admin/purge-payments"))
        .await;
    assert_eq!(purged.status, StatusCode::OK);
    assert_eq!(
        purged.json(),
        serde_json::json!({"message": "All payments purged."})
    );
    assert_eq!(http.summary(&base, "").await["totalRequests"], 0);
    assert!(!http.is_stored(&base, id).await);
    // A purged id may be paid again.
    assert_eq!(
        http.pay(&base, id, "1.00", "2025-07-15T12:00:00Z")
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn beyond_the_in_flight_and_queued_limits_payments_are_refused_with_429() {
    let mut config = rinha_config();
    config.max_in_flight = 2;
    config.max_queued = 1;
    let sim = spawn(config).await;
    let http = Http::default();
    let base = sim.url("default");
    http.set_delay(&base, 2000).await;

    let waiting: Vec<_> = (0..3)
        .map(|_| {
            let (http, base) = (http.clone(), base.clone());
            tokio::spawn(async move { http.pay_one(&base).await.1.status })
        })
        .collect();
    http.until_received(&base, 3, "three payments are in flight or queued")
        .await;
    let (_, refused) = http.pay_one(&base).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    for status in waiting {
        assert_eq!(status.await.unwrap(), StatusCode::OK);
    }
    assert_eq!(http.stats(&base).await["payments_throttled"], 1);
}

#[tokio::test]
async fn unknown_routes_are_404_and_wrong_methods_405() {
    let sim = spawn_rinha().await;
    let http = Http::default();
    let base = sim.url("default");
    assert_eq!(
        http.get(&format!("{base}/nope")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        http.get(&format!("{base}/payments")).await.status,
        StatusCode::METHOD_NOT_ALLOWED
    );
    assert_eq!(
        http.admin_get(&format!("{base}/admin/nope")).await.status,
        StatusCode::NOT_FOUND
    );
}
