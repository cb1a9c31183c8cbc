//! End to end: the failover-intelligence API (the TechCart contract) on a
//! router on port 0 over the five TechCart processors, advisory only:
//! recording transactions (and refusing bad ones), health per processor and
//! segment, alerts, the registry, and recommendations ranked by score that
//! move away from a processor that goes down.

mod common;

use common::*;
use hyper::StatusCode;
use serde_json::{Value, json};

async fn record(app: &TestApp, http: &Http, body: Value) -> (StatusCode, Value) {
    http.post_json(
        &format!("{}/api/v1/transactions", app.url),
        &body.to_string(),
    )
    .await
}

/// `n` transactions of `result` for a processor on a method and country.
async fn record_n(
    app: &TestApp,
    http: &Http,
    n: usize,
    processor: &str,
    method: &str,
    country: &str,
    result: &str,
) {
    for _ in 0..n {
        let (s, v) = record(
            app,
            http,
            json!({"processor_id": processor, "result": result,
                   "payment_method": method, "country": country,
                   "amount": 150.00, "currency": "BRL"}),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
}

#[tokio::test]
async fn a_recorded_transaction_answers_201_with_the_statuses() {
    let (app, http, _dir) = techcart(&[]).await;
    let (s, v) = record(
        &app,
        &http,
        json!({"processor_id": "processor_a", "result": "approved",
               "payment_method": "pix", "country": "br",
               "amount": 150.00, "currency": "BRL", "latency_ms": 42}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["message"], "Transaction recorded");
    assert_eq!(v["processor_id"], "processor_a");
    assert_eq!(v["result"], "approved");
    assert_eq!(v["payment_method"], "PIX");
    assert_eq!(v["country"], "BR");
    assert_eq!(v["status"], "HEALTHY");
    assert_eq!(v["segment_status"], "HEALTHY");
    assert_eq!(v["alerts"], json!([]));
    // Method and country are optional: the processor's roll-up only.
    let (s, v) = record(
        &app,
        &http,
        json!({"processor_id": "processor_b", "result": "TIMEOUT"}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["segment_status"], Value::Null);
    app.stop().await;
}

#[tokio::test]
async fn every_bad_transaction_gets_a_4xx_naming_the_problem() {
    let (app, http, _dir) = techcart(&[]).await;
    let ok = json!({"processor_id": "processor_a", "result": "approved",
                    "payment_method": "PIX", "country": "BR"});
    let with = |key: &str, value: Value| {
        let mut v = ok.clone();
        v[key] = value;
        v
    };
    let without = |key: &str| {
        let mut v = ok.clone();
        v.as_object_mut().unwrap().remove(key);
        v
    };
    let cases = [
        (without("processor_id"), Some("processor_id")),
        (with("processor_id", json!(7)), Some("processor_id")),
        (without("result"), Some("result")),
        (with("result", json!("failed")), Some("result")),
        (with("result", json!(true)), Some("result")),
        (
            with("payment_method", json!("P I X")),
            Some("payment_method"),
        ),
        (
            with("payment_method", json!("OXXO")),
            Some("payment_method"),
        ),
        (with("country", json!("Brazil")), Some("country")),
        (with("country", json!("MX")), Some("country")),
        (with("amount", json!("150.00")), Some("amount")),
        (with("amount", json!(-1)), Some("amount")),
        (with("amount", json!(0)), Some("amount")),
        (with("amount", json!(1.999)), Some("amount")),
        (with("currency", json!("REAIS")), Some("currency")),
        (with("latency_ms", json!(-5)), Some("latency_ms")),
        (with("latency_ms", json!(1.5)), Some("latency_ms")),
        (with("timestamp", json!("yesterday")), Some("timestamp")),
    ];
    for (body, field) in cases {
        let (s, v) = record(&app, &http, body.clone()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {v}");
        assert_eq!(v["field"].as_str(), field, "{body}: {v}");
        assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{v}");
    }
    let url = format!("{}/api/v1/transactions", app.url);
    for raw in ["{not json", "[]", "", "null"] {
        let (s, v) = http.post_json(&url, raw).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{raw:?}: {v}");
        assert_eq!(v["field"], Value::Null, "{v}");
    }
    // Unknown processor: 404, naming the field.
    let (s, v) = record(&app, &http, with("processor_id", json!("processor_z"))).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    assert_eq!(v["field"], "processor_id");
    assert!(v["error"].as_str().unwrap().contains("processor_z"), "{v}");
    // Too large.
    let big = format!(
        r#"{{"processor_id":"processor_a","result":"approved","pad":"{}"}}"#,
        "x".repeat(20_000)
    );
    assert_eq!(
        http.post_json(&url, &big).await.0,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    // Nothing of the above was recorded.
    let (_, v) = get(&app, &http, "/api/v1/health/processor_a").await;
    assert_eq!(v["total_transactions"], 0, "{v}");
    app.stop().await;
}

#[tokio::test]
async fn health_lists_every_processor_with_the_seed_fields() {
    let (app, http, _dir) = techcart(&[]).await;
    record_n(&app, &http, 39, "processor_a", "PIX", "BR", "approved").await;
    record_n(&app, &http, 8, "processor_a", "PIX", "BR", "declined").await;
    record_n(&app, &http, 2, "processor_a", "CARD", "BR", "error").await;
    record_n(&app, &http, 1, "processor_a", "CARD", "BR", "timeout").await;
    let (s, v) = get(&app, &http, "/api/v1/health").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["count"], 5);
    assert!(v["timestamp"].as_str().unwrap().ends_with('Z'));
    let processors = v["processors"].as_array().unwrap();
    assert_eq!(processors.len(), 5);
    let a = processors
        .iter()
        .find(|p| p["processor_id"] == "processor_a")
        .unwrap();
    assert_eq!(a["status"], "HEALTHY");
    assert_eq!(a["name"], "GlobalPay_BR");
    assert_eq!(a["total_transactions"], 50);
    assert_eq!(a["success_count"], 39);
    assert_eq!(a["failure_count"], 8);
    assert_eq!(a["error_count"], 3);
    assert_eq!(a["timeout_count"], 1);
    assert_eq!(a["authorization_rate"], 0.8298); // 39 / 47
    assert_eq!(a["error_rate"], 0.06);
    assert_eq!(a["segments"].as_array().unwrap().len(), 2);
    for p in processors
        .iter()
        .filter(|p| p["processor_id"] != "processor_a")
    {
        assert_eq!(p["status"], "HEALTHY", "a new processor starts HEALTHY");
        assert_eq!(p["total_transactions"], 0);
    }
    app.stop().await;
}

#[tokio::test]
async fn a_failing_processor_goes_down_with_an_alert_and_its_history() {
    let (app, http, _dir) = techcart(&[]).await;
    record_n(&app, &http, 9, "processor_a", "PIX", "BR", "error").await;
    let (_, v) = get(&app, &http, "/api/v1/health/processor_a").await;
    assert_eq!(v["status"], "HEALTHY", "no change below 10 transactions");
    record_n(&app, &http, 1, "processor_a", "PIX", "BR", "error").await;
    let (s, v) = get(&app, &http, "/api/v1/health/processor_a").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["processor_id"], "processor_a");
    assert_eq!(v["status"], "DOWN");
    assert_eq!(v["error_count"], 10);
    assert!(v["status_since"].is_string());
    let segment = &v["segments"][0];
    assert_eq!(
        (
            &segment["payment_method"],
            &segment["country"],
            &segment["status"]
        ),
        (&json!("PIX"), &json!("BR"), &json!("DOWN"))
    );
    let recent = v["recent_transactions"].as_array().unwrap();
    assert_eq!(recent.len(), 10);
    assert_eq!(recent[0]["result"], "error");
    assert_eq!(recent[0]["amount"], 150.0);
    assert_eq!(recent[0]["currency"], "BRL");
    let (_, alerts) = get(&app, &http, "/api/v1/alerts").await;
    assert_eq!(alerts["count"], 2, "{alerts}");
    let processor_alert = alerts["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["scope"] == "processor")
        .unwrap();
    assert_eq!(processor_alert["processor_id"], "processor_a");
    assert_eq!(processor_alert["from_status"], "HEALTHY");
    assert_eq!(processor_alert["to_status"], "DOWN");
    assert_eq!(processor_alert["reason"], "High error/timeout rate (>50%)");
    assert_eq!(processor_alert["type"], "transition");
    assert!(processor_alert["timestamp"].is_string());
    app.stop().await;
}

#[tokio::test]
async fn health_of_an_unknown_processor_is_404() {
    let (app, http, _dir) = techcart(&[]).await;
    let (s, v) = get(&app, &http, "/api/v1/health/processor_z").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(v["error"].as_str().unwrap().contains("processor_z"), "{v}");
    app.stop().await;
}

/// The recommendation's processors in rank order, each with whether it is
/// recommended.
fn ranking(v: &Value) -> Vec<(&str, bool)> {
    v["recommendations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["processor_id"].as_str().unwrap(),
                l["recommended"].as_bool().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn recommendations_rank_by_score_and_move_away_from_a_down_processor() {
    let (app, http, _dir) = techcart(&[]).await;
    record_n(&app, &http, 39, "processor_a", "PIX", "BR", "approved").await;
    record_n(&app, &http, 11, "processor_a", "PIX", "BR", "declined").await;
    record_n(&app, &http, 41, "processor_c", "PIX", "BR", "approved").await;
    record_n(&app, &http, 9, "processor_c", "PIX", "BR", "declined").await;
    let (s, v) = get(&app, &http, RECOMMEND_PIX_IN_BRAZIL).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(ranking(&v), [("processor_c", true), ("processor_a", false)]);
    let best = &v["recommendations"][0];
    assert_eq!(best["rank"], 1);
    assert_eq!(best["status"], "HEALTHY");
    assert_eq!(best["authorization_rate"], 0.82);
    assert_eq!(best["score"], 87.0);
    assert_eq!(best["health_scope"], "segment");
    assert_eq!(best["reason"], "Best option - highest authorization rate");
    assert_eq!(v["payment_method"], "PIX");
    assert_eq!(v["country"], "BR");
    assert_eq!(v["recommended"], "processor_c");
    assert!(v.get("warning").is_none());
    // The outage: processor_a fails on PIX/BR.
    record_n(&app, &http, 40, "processor_a", "PIX", "BR", "error").await;
    let (s, v) = http
        .post_json(
            &format!("{}/api/v1/routing/recommend", app.url),
            r#"{"payment_method": "pix", "country": "br", "amount": 100.00}"#,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(ranking(&v), [("processor_c", true), ("processor_a", false)]);
    let down = &v["recommendations"][1];
    assert_eq!(down["status"], "DOWN");
    assert_eq!(down["score"], 0.0);
    assert_eq!(down["reason"], "Processor is DOWN - not recommended");
    app.stop().await;
}

#[tokio::test]
async fn recommendations_filter_by_method_and_by_country() {
    let (app, http, _dir) = techcart(&[]).await;
    let ids = |v: &Value| {
        let mut ids: Vec<String> = ranking(v)
            .into_iter()
            .map(|(id, _)| id.to_owned())
            .collect();
        ids.sort();
        ids
    };
    for (query, want) in [
        (
            "payment_method=PIX&country=BR",
            vec!["processor_a", "processor_c"],
        ),
        (
            "payment_method=CARD&country=BR",
            vec!["processor_a", "processor_b"],
        ),
        (
            "payment_method=CARD&country=MX",
            vec!["processor_b", "processor_d"],
        ),
        ("payment_method=OXXO&country=MX", vec!["processor_d"]),
        ("payment_method=PSE&country=CO", vec!["processor_e"]),
    ] {
        let (s, v) = get(&app, &http, &format!("/api/v1/routing/recommend?{query}")).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(ids(&v), want, "{query}");
        assert_eq!(
            ranking(&v).iter().filter(|(_, r)| *r).count(),
            1,
            "exactly one recommended: {v}"
        );
    }
    // No processor takes PIX in Mexico: an empty list and a message.
    let (s, v) = get(
        &app,
        &http,
        "/api/v1/routing/recommend?payment_method=PIX&country=MX",
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["recommendations"], json!([]));
    assert_eq!(v["count"], 0);
    assert_eq!(v["recommended"], Value::Null);
    assert_eq!(v["message"], "No processor supports PIX in MX");
    app.stop().await;
}

#[tokio::test]
async fn when_all_are_down_nothing_is_recommended_and_a_warning_says_so() {
    let (app, http, _dir) = techcart(&[]).await;
    record_n(&app, &http, 10, "processor_a", "PIX", "BR", "error").await;
    record_n(&app, &http, 10, "processor_c", "PIX", "BR", "declined").await;
    let (s, v) = get(&app, &http, RECOMMEND_PIX_IN_BRAZIL).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(ranking(&v).iter().all(|(_, r)| !r), "{v}");
    assert_eq!(v["recommended"], Value::Null);
    assert!(v["warning"].as_str().unwrap().contains("DOWN"), "{v}");
    app.stop().await;
}

#[tokio::test]
async fn recommendation_parameters_are_required_and_checked() {
    let (app, http, _dir) = techcart(&[]).await;
    for (query, field) in [
        ("", "payment_method"),
        ("country=BR", "payment_method"),
        ("payment_method=PIX", "country"),
        ("payment_method=&country=BR", "payment_method"),
        ("payment_method=PIX&country=Brazil", "country"),
        ("payment_method=P%20X&country=BR", "payment_method"),
        ("payment_method=PIX&country=BR&amount=abc", "amount"),
        ("payment_method=PIX&country=BR&amount=-3", "amount"),
    ] {
        let (s, v) = get(&app, &http, &format!("/api/v1/routing/recommend?{query}")).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{query}: {v}");
        assert_eq!(v["field"], field, "{query}: {v}");
    }
    let url = format!("{}/api/v1/routing/recommend", app.url);
    for (body, field) in [
        (r#"{"country":"BR"}"#, Some("payment_method")),
        (r#"{"payment_method":"PIX"}"#, Some("country")),
        (r#"{"payment_method":"PIX","country":7}"#, Some("country")),
        (
            r#"{"payment_method":"PIX","country":"BR","amount":"1"}"#,
            Some("amount"),
        ),
        ("{oops", None),
        ("[]", None),
    ] {
        let (s, v) = http.post_json(&url, body).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {v}");
        assert_eq!(v["field"].as_str(), field, "{body}: {v}");
    }
    app.stop().await;
}

#[tokio::test]
async fn alerts_since_filters_by_time_and_a_bad_since_is_400() {
    let (app, http, _dir) = techcart(&[]).await;
    // Replayed history: processor_c went DOWN an hour ago...
    let hour_ago = "2020-01-01T10:00:00.000Z";
    for i in 0..10 {
        let (s, v) = record(
            &app,
            &http,
            json!({"processor_id": "processor_c", "result": "declined",
                   "timestamp": format!("2020-01-01T10:00:{i:02}.000Z")}),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    // ...and processor_a now.
    record_n(&app, &http, 10, "processor_a", "PIX", "BR", "error").await;
    let (_, all) = get(&app, &http, "/api/v1/alerts").await;
    assert_eq!(all["count"], 3, "{all}");
    let first = &all["alerts"][0];
    assert_eq!(first["processor_id"], "processor_c");
    assert_eq!(first["timestamp"], "2020-01-01T10:00:09.000Z");
    assert_eq!(first["reason"], "Very low authorization rate (<30%)");
    let (s, recent) = get(&app, &http, "/api/v1/alerts?since=2021-01-01T00:00:00Z").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(recent["count"], 2, "{recent}");
    assert!(
        recent["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["processor_id"] == "processor_a")
    );
    let (_, exact) = get(&app, &http, &format!("/api/v1/alerts?since={hour_ago}")).await;
    assert_eq!(exact["count"], 3);
    // The replayed window has aged out by now; the status stays.
    let (_, c) = get(&app, &http, "/api/v1/health/processor_c").await;
    assert_eq!(
        (c["status"].as_str(), c["total_transactions"].as_u64()),
        (Some("DOWN"), Some(0))
    );
    for bad in ["yesterday", "2024-13-01T00:00:00Z", "1700000000"] {
        let (s, v) = get(&app, &http, &format!("/api/v1/alerts?since={bad}")).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {v}");
        assert_eq!(v["field"], "since");
    }
    app.stop().await;
}

#[tokio::test]
async fn processors_lists_the_registry_cheapest_first() {
    let (app, http, _dir) = techcart(&[]).await;
    record_n(&app, &http, 10, "processor_e", "PSE", "CO", "timeout").await;
    let (s, v) = get(&app, &http, "/api/v1/processors").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["count"], 5);
    let ids: Vec<_> = v["processors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["processor_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "processor_c",
            "processor_a",
            "processor_e",
            "processor_d",
            "processor_b"
        ]
    );
    let e = &v["processors"][2];
    assert_eq!(e["name"], "ColombiaPS");
    assert_eq!(e["countries"], json!(["CO"]));
    assert_eq!(e["payment_methods"], json!(["PSE", "CARD"]));
    assert_eq!(e["fee"], 0.03);
    assert_eq!(e["executes_payments"], false);
    assert!(e.get("url").is_none());
    assert_eq!(e["status"], "DOWN");
    app.stop().await;
}
