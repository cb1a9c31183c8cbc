//! The per-client rate limit, end to end: a router on port 0, clients on
//! distinct loopback addresses (127.0.0.1 and 127.0.0.2 are two clients to
//! it).
//!
//! The limits used refill one request a second; "until refused" loops stop
//! at the first refusal, so a slow machine only makes them send a little
//! more, never fail.

mod common;

use std::net::{IpAddr, Ipv4Addr};

use common::*;
use hyper::{HeaderMap, Method, StatusCode};
use serde_json::Value;

const A: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
const B: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

/// At most this many requests are sent looking for a refusal: at one
/// refill a second, a limited client cannot see them all through.
const TRIES: usize = 50;

/// Sends requests made by `request(n)` until one is refused: how many got
/// through before it, and the refusal.
async fn until_refused<F, Fut>(mut request: F) -> Option<(usize, HeaderMap, Value)>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = (StatusCode, HeaderMap, Value)>,
{
    for n in 0..TRIES {
        let (status, headers, body) = request(n).await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            return Some((n, headers, body));
        }
        assert!(status.is_success(), "{status}: {body}");
    }
    None
}

/// A new payment of 1.00.
async fn pay(http: &Http, url: &str) -> (StatusCode, HeaderMap, Value) {
    let body = format!(r#"{{"correlationId":"{}","amount":1.00}}"#, new_id());
    http.send_with_headers(
        Method::POST,
        url,
        &[("content-type", "application/json")],
        &body,
    )
    .await
}

fn value_of(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_over_its_limit_is_refused_and_another_is_not() {
    let (sims, backing) = (Sims::start().await, Backing::embedded());
    let app = TestApp::start_on(
        &backing,
        config(
            &sims,
            &backing.db(),
            &["--rate-limit-per-second", "1", "--rate-limit-burst", "3"],
        ),
    )
    .await;
    let (a, b) = (Http::bound_to(A), Http::bound_to(B));
    let payments = format!("{}/payments", app.url);
    let (passed, headers, body) = until_refused(|_| pay(&a, &payments))
        .await
        .expect("client A is refused once over its limit");
    assert!(passed >= 3, "the burst of 3 passes first, {passed} did");
    let retry_after: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    // Whole seconds, rounded up: one request's refill is at most 1 s.
    assert_eq!(retry_after, 1);
    assert_eq!(headers["content-type"], "application/json");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("too many requests from this client"),
        "{body}"
    );
    assert!(body.get("field").is_none(), "{body}");

    // Another client has its own bucket: its first request passes.
    let (status, _, body) = pay(&b, &payments).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");

    // The intelligence API counts against the same bucket as the payments.
    let processors = format!("{}/api/v1/processors", app.url);
    until_refused(|_| a.send_with_headers(Method::GET, &processors, &[], ""))
        .await
        .expect("the intelligence API is limited too");

    // Operations endpoints are never limited, even for a refused client.
    for path in ["/livez", "/readyz", "/metrics"] {
        for _ in 0..10 {
            let (status, _) = a.get_text(&format!("{}{path}", app.url)).await;
            assert_eq!(status, StatusCode::OK, "{path}");
        }
    }

    let (_, metrics) = a.get_text(&format!("{}/metrics", app.url)).await;
    for (series, at_least) in [
        (r#"reroute_rate_limited_total{route="/payments"}"#, 1.0),
        (
            r#"reroute_rate_limited_total{route="/api/v1/processors"}"#,
            1.0,
        ),
        (
            r#"reroute_http_requests_total{route="/payments",method="POST",status="429"}"#,
            1.0,
        ),
    ] {
        let value = value_of(&metrics, series).unwrap_or_else(|| panic!("no {series}"));
        assert!(value >= at_least, "{series} = {value}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_configured_limit_nothing_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let backing = Backing::embedded();
    let registry = techcart_advisory(dir.path());
    let app = TestApp::start_on(
        &backing,
        config_with_registry(&backing.db(), &registry, &[]),
    )
    .await;
    let http = Http::bound_to(A);
    for path in ["/payments-summary", "/api/v1/health"] {
        for _ in 0..(2 * TRIES) {
            let (status, _, body) = http
                .send_with_headers(Method::GET, &format!("{}{path}", app.url), &[], "")
                .await;
            assert_eq!(status, StatusCode::OK, "{path}: {body}");
        }
    }
    let (_, metrics) = http.get_text(&format!("{}/metrics", app.url)).await;
    assert!(
        !metrics.contains("reroute_rate_limited_total{"),
        "{metrics}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_for_names_the_client_only_when_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let registry = techcart_advisory(dir.path());
    let limit = ["--rate-limit-per-second", "1", "--rate-limit-burst", "2"];
    let http = Http::bound_to(A);
    let forwarded = |n: usize| format!("198.51.100.{}", n % 250 + 1);

    // Untrusted: every request is the peer's, whatever it claims.
    let backing = Backing::embedded();
    let app = TestApp::start_on(
        &backing,
        config_with_registry(&backing.db(), &registry, &limit),
    )
    .await;
    let summary = format!("{}/payments-summary", app.url);
    until_refused(|n| {
        let xff = forwarded(n);
        let (http, url) = (&http, summary.clone());
        async move {
            http.send_with_headers(Method::GET, &url, &[("x-forwarded-for", &xff)], "")
                .await
        }
    })
    .await
    .expect("a client cannot escape its limit by writing X-Forwarded-For");
    app.stop().await;

    // Trusted: the last X-Forwarded-For address is the client.
    let backing = Backing::embedded();
    let mut trusted = limit.to_vec();
    trusted.push("--trust-forwarded-for");
    let app = TestApp::start_on(
        &backing,
        config_with_registry(&backing.db(), &registry, &trusted),
    )
    .await;
    let summary = format!("{}/payments-summary", app.url);
    for n in 0..TRIES {
        let xff = format!("10.9.8.7, {}", forwarded(n));
        let (status, _, body) = http
            .send_with_headers(Method::GET, &summary, &[("x-forwarded-for", &xff)], "")
            .await;
        assert_eq!(status, StatusCode::OK, "client {xff}: {body}");
    }
    let one = [("x-forwarded-for", "203.0.113.7")];
    until_refused(|_| http.send_with_headers(Method::GET, &summary, &one, ""))
        .await
        .expect("one forwarded client is limited");
    let (status, _, _) = http
        .send_with_headers(
            Method::GET,
            &summary,
            &[("x-forwarded-for", "203.0.113.8")],
            "",
        )
        .await;
    assert_eq!(status, StatusCode::OK, "another forwarded client is not");
    app.stop().await;
}
