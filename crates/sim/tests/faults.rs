//! Fault injection: off by default, set through `/admin/faults`, the
//! schedule endpoint or the config file.

mod common;

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::Duration;

use common::{Http, eventually, payment_body, spawn, spawn_rinha};
use hyper::StatusCode;
use reroute_core::{CorrelationId, Timestamp};
use reroute_sim::SimConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

async fn set_faults(http: &Http, base: &str, faults: &str) {
    let reply = http
        .admin_put(&format!("{base}/admin/faults"), faults)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
}

/// Sends a payment over a bare TCP connection and reads until the server
/// closes it: what a client sees when no HTTP answer comes.
async fn pay_raw(addr: SocketAddr, id: CorrelationId) -> std::io::Result<Vec<u8>> {
    let body = payment_body(id, "19.90", &Timestamp::now().to_string());
    let request = format!(
        "POST /payments HTTP/1.1\r\nHost: sim\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut stream = TcpStream::connect(addr).await?;
    stream.write_all(request.as_bytes()).await?;
    let mut received = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut received))
        .await
        .expect("the connection is closed, not left open")?;
    Ok(received)
}

#[tokio::test]
async fn faults_are_off_by_default() {
    let sim = spawn_rinha().await;
    let http = Http::default();
    let view = http
        .admin_get(&format!("{}/admin/faults", sim.url("default")))
        .await
        .json();
    assert_eq!(
        view["faults"],
        serde_json::json!({
            "error_rate": 0.0, "decline_rate": 0.0, "latency_ms": 0, "jitter_ms": 0,
            "hang_rate": 0.0, "reset_rate": 0.0, "reset_after_store": false,
            "throttle_rate": 0.0, "health_throttle_rate": 0.0, "even": false
        })
    );
    assert_eq!(
        (view["delay"].clone(), view["failure"].clone()),
        (0.into(), false.into())
    );
}

#[tokio::test]
async fn an_error_rate_of_one_answers_500_and_stores_nothing() {
    let sim = spawn_rinha().await;
    let http = Http::default();
    let base = sim.url("default");
    let set = http
        .admin_put(&format!("{base}/admin/faults"), r#"{"error_rate": 1.0}"#)
        .await;
    let set = set.json();
    assert_eq!(
        (set["config"].clone(), set["was"]["error_rate"].clone()),
        ("faults".into(), 0.0.into())
    );
    assert_eq!(set["is"]["error_rate"], 1.0);

    let (id, reply) = http.pay_one(&base).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(!http.is_stored(&base, id).await);
    assert_eq!(http.stats(&base).await["payments_failed"], 1);
    // The health check still reports the Rinha flag only.
    let health = http.health(&base).await;
    assert_eq!(health["failing"], false);
}

#[tokio::test]
async fn a_decline_rate_of_one_answers_402_declined_and_stores_nothing() {
    let sim = spawn_rinha().await;
    let http = Http::default();
    let base = sim.url("default");
    set_faults(&http, &base, r#"{"decline_rate": 1.0}"#).await;

    let (id, reply) = http.pay_one(&base).await;
    assert_eq!(reply.status, StatusCode::PAYMENT_REQUIRED);
    let body = reply.json();
    assert_eq!(body["declined"], true);
    assert_eq!(body["reason"], "do_not_honor");
    assert_eq!(body["correlationId"], id.to_string());
    assert!(!http.is_stored(&base, id).await);
    assert_eq!(http.stats(&base).await["payments_declined"], 1);
}

#[tokio::test]
async fn injected_latency_delays_the_answer_by_at_least_its_fixed_part() {
    let sim = spawn_rinha().await;
    let http = Http::default();
    let base = sim.url("default");
    set_faults(&http, &base, r#"{"latency_ms": 250, "jitter_ms": 50}"#).await;

    let started = Instant::now();
    let (id, reply) = http.pay_one(&base).await;
    let took = started.elapsed();
    assert_eq!(reply.status, StatusCode::OK);
    assert!(took >= Duration::from_millis(250), "{took:?}");
    assert!(http.is_stored(&base, id).await);
}

#[tokio::test]
async fn a_hanging_processor_never_answers_and_stores_nothing() {
    let sim = spawn_rinha().await;
    let http = Http::default();
    let base = sim.url("default");
    set_faults(&http, &base, r#"{"hang_rate": 1.0}"#).await;

    let id = CorrelationId::new_random();
    let gave_up = tokio::time::timeout(
        Duration::from_millis(300),
        http.pay(&base, id, "19.90", &Timestamp::now().to_string()),
    )
    .await;
    assert!(gave_up.is_err(), "no answer came");
    eventually("the hang is counted", || async {
        http.stats(&base).await["payments_hung"] == 1
    })
    .await;
    assert!(!http.is_stored(&base, id).await);
}

#[tokio::test]
async fn a_reset_drops_the_connection_without_any_response_and_stores_nothing() {
    let sim = spawn_rinha().await;
    let http = Http::default();
    let base = sim.url("default");
    set_faults(&http, &base, r#"{"reset_rate": 1.0}"#).await;

    let id = CorrelationId::new_random();
    match pay_raw(sim.addr("default"), id).await {
        Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{e}"),
        Ok(bytes) => panic!(
            "expected a reset, got {:?}",
            String::from_utf8_lossy(&bytes)
        ),
    }
    assert!(!http.is_stored(&base, id).await);
    assert_eq!(http.stats(&base).await["payments_reset"], 1);
}

#[tokio::test]
async fn a_reset_after_store_leaves_the_payment_stored_but_unanswered() {
    let sim = spawn_rinha().await;
    let http = Http::default();
    let base = sim.url("default");
    set_faults(
        &http,
        &base,
        r#"{"reset_rate": 1.0, "reset_after_store": true}"#,
    )
    .await;

    let id = CorrelationId::new_random();
    let outcome = pay_raw(sim.addr("default"), id).await;
    assert!(
        matches!(&outcome, Err(e) if e.kind() == ErrorKind::ConnectionReset),
        "{outcome:?}"
    );
    assert!(http.is_stored(&base, id).await);
}

#[tokio::test]
async fn a_throttle_rate_of_one_answers_429_at_once_whatever_the_delay_and_stores_nothing() {
    let sim = spawn_rinha().await;
    let http = Http::default();
    let base = sim.url("default");
    http.set_delay(&base, 2000).await;
    set_faults(&http, &base, r#"{"throttle_rate": 1.0}"#).await;

    let started = Instant::now();
    let (id, reply) = http.pay_one(&base).await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        started.elapsed() < Duration::from_millis(2000),
        "refused before the delay: {:?}",
        started.elapsed()
    );
    assert!(!http.is_stored(&base, id).await);
    let stats = http.stats(&base).await;
    assert_eq!(
        (
            stats["payments_storm_refused"].clone(),
            stats["payments_throttled"].clone()
        ),
        (1.into(), 0.into())
    );
}

#[tokio::test]
async fn a_429_storm_while_a_first_send_sleeps_does_not_stop_it_being_stored() {
    let sim = spawn_rinha().await;
    let http = Http::default();
    let base = sim.url("default");
    http.set_delay(&base, 1000).await;
    let id = CorrelationId::new_random();
    let at = Timestamp::now().to_string();
    let first = tokio::spawn({
        let (http, base, at) = (http.clone(), base.clone(), at.clone());
        async move { http.pay(&base, id, "19.90", &at).await.status }
    });
    http.until_received(&base, 1, "the first send has arrived")
        .await;

    // What a router sees if it re-sends now: an instant 429, and a lookup
    // that finds nothing, although the first send will be stored.
    set_faults(&http, &base, r#"{"throttle_rate": 1.0}"#).await;
    let again = http.pay(&base, id, "19.90", &at).await;
    assert_eq!(again.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(!http.is_stored(&base, id).await);
    set_faults(&http, &base, "{}").await;

    assert_eq!(first.await.unwrap(), StatusCode::OK);
    assert!(http.is_stored(&base, id).await);
}

#[tokio::test]
async fn a_schedule_switches_fault_settings_at_its_times() {
    let sim = spawn_rinha().await;
    let http = Http::default();
    let base = sim.url("default");
    let schedule = r#"{"steps": [
        {"after_ms": 0, "settings": {"error_rate": 1.0}},
        {"after_ms": 1500, "settings": {}}
    ]}"#;
    let set = http
        .admin_put(&format!("{base}/admin/faults/schedule"), schedule)
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.text());
    assert_eq!(set.json()["applied"], 1);

    assert_eq!(
        http.pay_one(&base).await.1.status,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    eventually("the second step turns errors off", || async {
        http.pay_one(&base).await.1.status == StatusCode::OK
    })
    .await;
    let view = http.admin_get(&format!("{base}/admin/faults")).await.json();
    assert_eq!(view["schedule"]["applied"], 2);
    assert_eq!(view["faults"]["error_rate"], 0.0);
}

#[tokio::test]
async fn a_schedule_can_script_the_rinha_delay_and_failure() {
    let sim = spawn_rinha().await;
    let http = Http::default();
    let base = sim.url("fallback");
    let schedule = r#"[
        {"after_ms": 0, "delay": 100, "failure": true},
        {"after_ms": 1500, "delay": 0, "failure": false}
    ]"#;
    http.admin_put(&format!("{base}/admin/faults/schedule"), schedule)
        .await;
    let view = http.admin_get(&format!("{base}/admin/faults")).await.json();
    assert_eq!(
        (view["delay"].clone(), view["failure"].clone()),
        (100.into(), true.into())
    );
    eventually("the failure is lifted", || async {
        let view = http.admin_get(&format!("{base}/admin/faults")).await.json();
        view["failure"] == false && view["delay"] == 0
    })
    .await;
}

#[tokio::test]
async fn invalid_fault_settings_are_refused_naming_the_field() {
    let sim = spawn_rinha().await;
    let http = Http::default();
    let url = format!("{}/admin/faults", sim.url("default"));
    let reply = http.admin_put(&url, r#"{"error_rate": 2}"#).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.json()["field"], "error_rate");
    let reply = http.admin_put(&url, r#"{"throttle_rate": 1.5}"#).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.json()["field"], "throttle_rate");
    for bad in [
        r#"{"error_rate": 0.6, "decline_rate": 0.6}"#,
        r#"{"throttle_rate": 0.5, "hang_rate": 0.6}"#,
        r#"{"eror_rate": 1}"#,
        r#""fast""#,
    ] {
        assert_eq!(
            http.admin_put(&url, bad).await.status,
            StatusCode::BAD_REQUEST,
            "{bad}"
        );
    }
    let schedule = format!("{url}/schedule");
    let unordered = r#"[{"after_ms": 5}, {"after_ms": 1}]"#;
    assert_eq!(
        http.admin_put(&schedule, unordered).await.status,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn faults_declared_in_the_config_file_apply_from_start_up() {
    let config = SimConfig::from_toml_str(
        r#"
        [[processors]]
        id = "processor_c"
        name = "PixMaster"
        port = 0
        fee = 0.02
        countries = ["BR"]
        payment_methods = ["PIX"]
        faults = { decline_rate = 1.0 }
        "#,
    )
    .unwrap();
    let sim = spawn(config).await;
    let http = Http::default();
    let (_, reply) = http.pay_one(&sim.url("processor_c")).await;
    assert_eq!(reply.status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(reply.json()["reason"], "do_not_honor");
}

#[tokio::test]
async fn a_payment_method_the_processor_does_not_serve_is_declined() {
    let config = SimConfig::from_toml_str(
        r#"
        [[processors]]
        id = "processor_c"
        port = 0
        fee = 0.02
        payment_methods = ["PIX"]
        "#,
    )
    .unwrap();
    let sim = spawn(config).await;
    let http = Http::default();
    let base = sim.url("processor_c");
    let body = |method: &str| {
        format!(
            r#"{{"correlationId":"{}","amount":10.00,"requestedAt":"2025-07-15T12:00:00Z","paymentMethod":"{method}","country":"BR"}}"#,
            CorrelationId::new_random()
        )
    };
    let card = http
        .send(
            hyper::Method::POST,
            &format!("{base}/payments"),
            None,
            Some(body("CARD")),
        )
        .await;
    assert_eq!(card.status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(card.json()["reason"], "unsupported_payment_method");
    let pix = http
        .send(
            hyper::Method::POST,
            &format!("{base}/payments"),
            None,
            Some(body("PIX")),
        )
        .await;
    assert_eq!(pix.status, StatusCode::OK);
}
