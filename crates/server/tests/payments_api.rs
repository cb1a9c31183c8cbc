//! End to end: the router on port 0 against the simulators, exercising the
//! payments API's contract: a payment accepted and processed exactly once,
//! a repeated correlation id (the same amount or a conflicting one), every
//! bad input refused with the field it names and nothing stored, the
//! summary's bounds, and the token that guards the purge. Each test runs on
//! both stores.

mod common;

use common::*;
use hyper::{Method, StatusCode};

async fn an_accepted_payment_is_processed_on_default_and_summarised_exactly(backing: Backing) {
    let (sims, http) = (Sims::start().await, Http::default());
    let app = TestApp::start_on(&backing, config(&sims, &backing.db(), &[])).await;
    for amount in ["19.90", "0.01", "1000"] {
        let (status, body) = app.pay(&http, &new_id(), amount).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        assert_eq!(body["status"], "accepted");
    }
    processed_on(&app, &http, "default", 3).await;
    let (_, summary) = http.get(&format!("{}/payments-summary", app.url)).await;
    assert_eq!(
        summary,
        serde_json::json!({"default": {"totalRequests": 3, "totalAmount": 1019.91},
                           "fallback": {"totalRequests": 0, "totalAmount": 0.0}})
    );
    assert_eq!(sims.books(&http, &sims.default).await, (3, 1019.91));
    assert_eq!(sims.books(&http, &sims.fallback).await.0, 0);
    app.stop().await;
}

async fn a_repeated_correlation_id_is_not_charged_again_and_a_different_amount_conflicts(
    backing: Backing,
) {
    let (sims, http) = (Sims::start().await, Http::default());
    let app = TestApp::start_on(&backing, config(&sims, &backing.db(), &[])).await;
    let id = new_id();
    assert_eq!(app.pay(&http, &id, "19.90").await.0, StatusCode::ACCEPTED);
    let (status, body) = app.pay(&http, &id, "19.90").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "duplicate");
    let (status, body) = app.pay(&http, &id, "20.00").await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["field"], "amount");
    assert!(body["error"].as_str().unwrap().contains("19.90"), "{body}");
    processed_on(&app, &http, "default", 1).await;
    assert_eq!(app.pay(&http, &id, "19.90").await.0, StatusCode::OK);
    assert_eq!(sims.books(&http, &sims.default).await, (1, 19.9));
    // Where it stands: processed once, at default, as first accepted.
    let (status, record) = http.get(&format!("{}/payments/{id}", app.url)).await;
    assert_eq!(status, StatusCode::OK, "{record}");
    assert_eq!(record["correlationId"], id.as_str());
    assert_eq!(record["state"], "processed");
    assert_eq!(record["amount"], 19.9);
    assert_eq!(record["processor"], "default");
    assert!(
        record["requestedAt"].as_str().unwrap().ends_with('Z'),
        "{record}"
    );
    assert!(
        record["acceptedAt"].as_str().unwrap().ends_with('Z'),
        "{record}"
    );
    let (status, _) = http
        .get(&format!("{}/payments/{}", app.url, new_id()))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    app.stop().await;
}

async fn every_bad_input_gets_a_4xx_naming_the_problem_and_nothing_is_stored(backing: Backing) {
    let (sims, http) = (Sims::start().await, Http::default());
    let app = TestApp::start_on(&backing, config(&sims, &backing.db(), &[])).await;
    let url = format!("{}/payments", app.url);
    let id = new_id();
    let json = [("content-type", "application/json")];
    let with_amount = |amount: &str| format!(r#"{{"correlationId":"{id}","amount":{amount}}}"#);
    let big = format!(
        r#"{{"correlationId":"{id}","amount":1,"pad":"{}"}}"#,
        "x".repeat(20_000)
    );
    // (headers, body, expected status, field named in the error)
    type Case<'a> = (Vec<(&'a str, &'a str)>, String, StatusCode, Option<&'a str>);
    let mut cases: Vec<Case> = vec![
        (
            json.to_vec(),
            r#"{"amount":19.90}"#.into(),
            StatusCode::BAD_REQUEST,
            Some("correlationId"),
        ),
        (
            json.to_vec(),
            r#"{"correlationId":"x","amount":19.90}"#.into(),
            StatusCode::BAD_REQUEST,
            Some("correlationId"),
        ),
        (
            json.to_vec(),
            format!(r#"{{"correlationId":"{id}"}}"#),
            StatusCode::BAD_REQUEST,
            Some("amount"),
        ),
    ];
    // Zero, negative, not a number, finer than a cent, too large.
    for amount in ["0", "-5", r#""abc""#, "1.999", "99999999999999"] {
        let body = with_amount(amount);
        cases.push((json.to_vec(), body, StatusCode::BAD_REQUEST, Some("amount")));
    }
    cases.extend([
        (
            json.to_vec(),
            "{\"correlationId\":".into(),
            StatusCode::BAD_REQUEST,
            None,
        ),
        (
            vec![("content-type", "text/plain")],
            with_amount("1"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            None,
        ),
        (
            vec![],
            with_amount("1"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            None,
        ),
        (json.to_vec(), big, StatusCode::PAYLOAD_TOO_LARGE, None),
    ]);
    for (headers, body, want, field) in cases {
        let (status, answer) = http.send(Method::POST, &url, &headers, &body).await;
        assert_eq!(status, want, "{body:.80}: {answer}");
        assert!(
            answer["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{answer}"
        );
        assert_eq!(answer["field"].as_str(), field, "{body:.80}: {answer}");
    }
    // The same id, once valid, is new: none of the above was stored.
    assert_eq!(app.pay(&http, &id, "1").await.0, StatusCode::ACCEPTED);
    processed_on(&app, &http, "default", 1).await;
    app.stop().await;
}

async fn summary_bounds_are_inclusive_optional_and_validated(backing: Backing) {
    let (sims, http) = (Sims::start().await, Http::default());
    let app = TestApp::start_on(&backing, config(&sims, &backing.db(), &[])).await;
    assert_eq!(
        app.pay(&http, &new_id(), "10").await.0,
        StatusCode::ACCEPTED
    );
    processed_on(&app, &http, "default", 1).await;
    let (_, list) = http
        .admin(Method::GET, &format!("{}/admin/payments", sims.default), "")
        .await;
    let requested_at = list
        .as_array()
        .or_else(|| list["payments"].as_array())
        .expect("the simulator lists its payments")[0]["requestedAt"]
        .as_str()
        .unwrap()
        .to_owned();
    let summary_url = |q: &str| format!("{}/payments-summary?{q}", app.url);
    let (s, v) = http
        .get(&summary_url(&format!(
            "from={requested_at}&to={requested_at}"
        )))
        .await;
    assert_eq!(
        (s, v["default"]["totalRequests"].as_u64()),
        (StatusCode::OK, Some(1)),
        "{v}"
    );
    let (_, v) = http.get(&summary_url(&format!("to={requested_at}"))).await;
    assert_eq!(v["default"]["totalRequests"], 1);
    let (_, v) = http
        .get(&summary_url(
            "from=2000-01-01T00:00:00.000Z&to=2000-01-02T00:00:00.000Z",
        ))
        .await;
    assert_eq!(v["default"]["totalRequests"], 0);
    let (s, v) = http.get(&summary_url("from=yesterday")).await;
    assert_eq!(
        (s, v["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("from"))
    );
    app.stop().await;
}

async fn purge_requires_the_token_when_one_is_configured(backing: Backing) {
    let (sims, http) = (Sims::start().await, Http::default());
    let app = TestApp::start_on(
        &backing,
        config(&sims, &backing.db(), &["--admin-token", "s3cret"]),
    )
    .await;
    assert_eq!(
        app.pay(&http, &new_id(), "10").await.0,
        StatusCode::ACCEPTED
    );
    processed_on(&app, &http, "default", 1).await;
    let url = format!("{}/purge-payments", app.url);
    assert_eq!(
        http.send(Method::POST, &url, &[], "").await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        http.send(Method::POST, &url, &[("x-rinha-token", "nope")], "")
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.summary(&http, "default").await.0, 1);
    let (s, _) = http
        .send(
            Method::POST,
            &url,
            &[("authorization", "Bearer s3cret")],
            "",
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(app.summary(&http, "default").await.0, 0);
    app.stop().await;
}

on_both_stores!(
    an_accepted_payment_is_processed_on_default_and_summarised_exactly,
    a_repeated_correlation_id_is_not_charged_again_and_a_different_amount_conflicts,
    every_bad_input_gets_a_4xx_naming_the_problem_and_nothing_is_stored,
    summary_bounds_are_inclusive_optional_and_validated,
    purge_requires_the_token_when_one_is_configured,
);
