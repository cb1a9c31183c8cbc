//! The live dashboard over HTTP: the page, one snapshot, and the
//! Server-Sent Events feed that pushes a status change within a second.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, StatusCode, header};
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

/// Records one outcome; answers the processor's status after it.
async fn record(app: &TestApp, http: &Http, processor: &str, result: &str) -> String {
    let (s, v) = http
        .post_json(
            &format!("{}/api/v1/transactions", app.url),
            &json!({"processor_id": processor, "result": result,
                    "payment_method": "PIX", "country": "BR", "latency_ms": 40})
            .to_string(),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v["status"].as_str().unwrap().to_owned()
}

/// An open `text/event-stream` response, read event by event.
struct EventStream {
    body: Incoming,
    buffer: String,
}

/// One server-sent event: its name and its data parsed as JSON.
struct SseEvent {
    name: String,
    data: Value,
    retry: Option<u64>,
}

impl EventStream {
    /// Opens the dashboard feed of `app` with `query` (`""` or `?...`),
    /// which must be served.
    async fn served(app: &TestApp, query: &str) -> EventStream {
        let url = format!("{}/dashboard/events{query}", app.url);
        EventStream::open(&url, &[])
            .await
            .unwrap_or_else(|e| panic!("{e:?}"))
    }

    /// Opens `url`; the status and either the stream or the (error) body.
    async fn open(url: &str, headers: &[(&str, &str)]) -> Result<EventStream, (StatusCode, Value)> {
        let client: Client<HttpConnector, Full<Bytes>> =
            Client::builder(TokioExecutor::new()).build(HttpConnector::new());
        let mut req = Request::get(url).header(header::ACCEPT, "text/event-stream");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = tokio::time::timeout(
            Duration::from_secs(10),
            client.request(req.body(Full::new(Bytes::new())).unwrap()),
        )
        .await
        .expect("request timed out")
        .expect("request failed");
        let status = res.status();
        if status != StatusCode::OK {
            let bytes = res.into_body().collect().await.unwrap().to_bytes();
            return Err((
                status,
                serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            ));
        }
        let content_type = res.headers()[header::CONTENT_TYPE].to_str().unwrap();
        assert_eq!(content_type, "text/event-stream");
        Ok(EventStream {
            body: res.into_body(),
            buffer: String::new(),
        })
    }

    /// The next event (comments skipped); `None` when the stream ends.
    async fn next(&mut self, within: Duration) -> Option<SseEvent> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut name, mut data, mut retry) =
                    (String::from("message"), String::new(), None);
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.strip_prefix(' ').unwrap_or(v));
                    } else if let Some(v) = line.strip_prefix("retry:") {
                        retry = v.trim().parse().ok();
                    }
                }
                if data.is_empty() {
                    continue;
                }
                let data = serde_json::from_str(&data).expect("event data is JSON");
                return Some(SseEvent { name, data, retry });
            }
            let frame = tokio::time::timeout_at(deadline, self.body.frame())
                .await
                .expect("no event in time");
            // The end of the body, or of the connection.
            let Some(Ok(frame)) = frame else {
                return None;
            };
            if let Ok(bytes) = frame.into_data() {
                self.buffer.push_str(std::str::from_utf8(&bytes).unwrap());
            }
        }
    }
}

fn processor<'a>(snapshot: &'a Value, id: &str) -> &'a Value {
    snapshot["processors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["processor_id"] == id)
        .unwrap_or_else(|| panic!("no {id} in {snapshot}"))
}

fn assert_snapshot_shape(s: &Value) {
    for key in [
        "timestamp",
        "processors",
        "queue",
        "alerts",
        "recommendation",
        "options",
    ] {
        assert!(s.get(key).is_some(), "no {key} in {s}");
    }
    let p = &s["processors"][0];
    for key in [
        "processor_id",
        "name",
        "status",
        "authorization_rate",
        "error_rate",
        "total_transactions",
        "latency_ms",
        "status_since",
        "segments",
        "fee",
        "executes_payments",
        "circuit_up",
        "lane",
    ] {
        assert!(p.get(key).is_some(), "no {key} in {p}");
    }
    for p in s["processors"].as_array().unwrap() {
        if p["executes_payments"] == true {
            assert_lane_shape(&p["lane"]);
        } else {
            assert_eq!(
                p["lane"],
                Value::Null,
                "an advisory processor has no lane: {p}"
            );
        }
    }
    assert!(s["queue"]["depth"].is_u64(), "{s}");
    assert!(s["queue"].get("oldest_age_ms").is_some(), "{s}");
    assert!(s["options"]["payment_methods"].is_array(), "{s}");
    assert!(s["options"]["countries"].is_array(), "{s}");
}

fn assert_lane_shape(lane: &Value) {
    for key in [
        "limit",
        "in_flight",
        "waiting",
        "expected_wait_ms",
        "spilled",
    ] {
        assert!(lane[key].is_u64(), "no {key} in {lane}");
    }
    assert!(lane["throughput"].is_number(), "no throughput in {lane}");
}

/// One counter or gauge of `/metrics`, by its exact labels.
async fn metric(app: &TestApp, http: &Http, series: &str) -> f64 {
    let (_, text) = http.get_text(&format!("{}/metrics", app.url)).await;
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in /metrics"))
}

#[tokio::test]
async fn the_page_is_one_self_contained_document() {
    let (app, http, _dir) = techcart(&["--admin-token", "s3cret"]).await;
    // No token needed for the page itself: it asks for one.
    let (s, page) = http.get_text(&format!("{}/dashboard", app.url)).await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.starts_with("<!doctype html>"), "{}", &page[..40]);
    for part in ["<style>", "<script>", "<canvas", "EventSource", "token"] {
        assert!(page.contains(part), "the page has no {part}");
    }
    for outside in ["<script src", "<link", "http://", "https://", "@import"] {
        assert!(!page.contains(outside), "the page loads {outside}");
    }
    app.stop().await;
}

#[tokio::test]
async fn the_feed_sends_a_full_snapshot_at_once() {
    let (app, http, _dir) = techcart(&[]).await;
    for _ in 0..3 {
        record(&app, &http, "processor_a", "approved").await;
    }
    let started = Instant::now();
    let mut feed = EventStream::served(&app, "?payment_method=pix&country=br").await;
    let event = feed.next(Duration::from_secs(2)).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(event.name, "snapshot");
    assert_eq!(event.retry, Some(1000));
    let s = &event.data;
    assert_snapshot_shape(s);
    assert_eq!(s["processors"].as_array().unwrap().len(), 5);
    let a = processor(s, "processor_a");
    assert_eq!(a["status"], "HEALTHY");
    assert_eq!(a["total_transactions"], 3);
    assert_eq!(a["latency_ms"]["p50"], 40);
    assert_eq!(a["segments"][0]["payment_method"], "PIX");
    assert_eq!(a["executes_payments"], false);
    assert_eq!(s["queue"], json!({"depth": 0, "oldest_age_ms": null}));
    // The recommendation is the intelligence API's, for the selection.
    let r = &s["recommendation"];
    assert_eq!(r["payment_method"], "PIX");
    assert_eq!(r["country"], "BR");
    assert!(r["recommended"].is_string(), "{r}");
    let (_, api) = get(&app, &http, RECOMMEND_PIX_IN_BRAZIL).await;
    assert_eq!(r["recommended"], api["recommended"]);
    assert_eq!(r["count"], api["count"]);
    assert!(
        s["options"]["payment_methods"]
            .as_array()
            .unwrap()
            .contains(&json!("PIX")),
        "{s}"
    );
    // Then one a second, even when nothing changes.
    let next = feed.next(Duration::from_millis(1500)).await.unwrap();
    assert_eq!(next.name, "snapshot");
    assert_eq!(next.data["alerts"], json!([]));
    // Without a selection there is no recommendation.
    let (st, one) = http.get(&format!("{}/dashboard/snapshot", app.url)).await;
    assert_eq!(st, StatusCode::OK);
    assert_snapshot_shape(&one);
    assert_eq!(one["recommendation"], Value::Null);
    app.stop().await;
}

#[tokio::test]
async fn a_status_change_is_pushed_within_a_second() {
    let (app, http, _dir) = techcart(&[]).await;
    let mut feed = EventStream::served(&app, "?payment_method=PIX&country=BR").await;
    let first = feed.next(Duration::from_secs(2)).await.unwrap();
    assert_eq!(processor(&first.data, "processor_a")["status"], "HEALTHY");
    let mut errors = 0;
    while record(&app, &http, "processor_a", "error").await != "DOWN" {
        errors += 1;
        assert!(errors < 60, "processor_a never went DOWN");
    }
    let down_at = Instant::now();
    let mut alerts = Vec::new();
    loop {
        let event = feed.next(Duration::from_secs(2)).await.unwrap();
        alerts.extend(event.data["alerts"].as_array().unwrap().iter().cloned());
        if processor(&event.data, "processor_a")["status"] == "DOWN" {
            break;
        }
    }
    let took = down_at.elapsed();
    assert!(took < Duration::from_secs(1), "DOWN pushed after {took:?}");
    let later = feed.next(Duration::from_millis(1500)).await.unwrap();
    alerts.extend(later.data["alerts"].as_array().unwrap().iter().cloned());
    assert!(
        alerts
            .iter()
            .any(|a| a["processor_id"] == "processor_a" && a["to_status"] == "DOWN"),
        "{alerts:?}"
    );
    // Each alert is sent once: later snapshots carry only newer ones.
    let mut ids: Vec<u64> = alerts.iter().map(|a| a["id"].as_u64().unwrap()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), alerts.len(), "{alerts:?}");
    assert_ne!(
        later.data["recommendation"]["recommended"], "processor_a",
        "{}",
        later.data
    );
    app.stop().await;
}

/// Default answers in 2 s and may have 8 sends in flight; payments wait at
/// most 2.5 s for it (the spill wait) before they go to fallback: a burst
/// fills its lane, a short backlog forms (a payment waiting 250 ms for a free
/// send is paid within 2.5 s), and the rest spills. The feed shows all of it,
/// with the figures of `/metrics`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_shows_each_lane_its_backlog_and_its_spills() {
    let (sims, http) = (Sims::start().await, Http::default());
    sims.set_delay(&http, &sims.default, 2_000).await;
    let (app, _dir) = start_app(
        &sims,
        &[
            "--max-in-flight",
            "8",
            "--spill-wait-ms",
            "2500",
            "--processor-timeout-ms",
            "5000",
        ],
    )
    .await;
    // The router learns default's delay from its health endpoint.
    eventually(
        "default's delay announced",
        Duration::from_secs(10),
        || async {
            let (_, text) = http.get_text(&format!("{}/metrics", app.url)).await;
            text.contains("reroute_probes_total{processor=\"default\",result=\"healthy\"}")
                .then_some(())
        },
    )
    .await;
    let mut feed = EventStream::served(&app, "").await;
    let first = feed.next(Duration::from_secs(2)).await.unwrap();
    let idle = &processor(&first.data, "default")["lane"];
    assert_eq!(idle["limit"], 8, "{idle}");
    assert_eq!(idle["in_flight"], 0, "{idle}");
    assert_eq!(idle["waiting"], 0, "{idle}");
    assert_eq!(idle["spilled"], 0, "{idle}");

    let mut posts = tokio::task::JoinSet::new();
    for _ in 0..60 {
        let url = app.url.clone();
        posts.spawn(async move {
            let body = format!(r#"{{"correlationId":"{}","amount":1.00}}"#, new_id());
            Http::default()
                .post_json(&format!("{url}/payments"), &body)
                .await
                .0
        });
    }
    for status in posts.join_all().await {
        assert_eq!(status, StatusCode::ACCEPTED);
    }
    // A snapshot while default is full (its first 8 sends take 2 s): 8 in
    // flight, a few waiting, the rest spilled.
    let mut seen = Vec::new();
    let busy = loop {
        let event = feed.next(Duration::from_secs(3)).await.unwrap();
        let lane = processor(&event.data, "default")["lane"].clone();
        if lane["in_flight"] == 8 && lane["spilled"].as_u64() > Some(0) {
            break lane;
        }
        seen.push(lane);
        assert!(
            seen.len() < 10,
            "default never showed full and spilling: {seen:?}"
        );
    };
    assert_eq!(busy["limit"], 8, "{busy}");
    // 8 sends in flight at 2 s each.
    let throughput = busy["throughput"].as_f64().unwrap();
    assert!((3.0..=4.5).contains(&throughput), "{busy}");
    let waiting = busy["waiting"].as_u64().unwrap();
    let expected = busy["expected_wait_ms"].as_u64().unwrap();
    assert!(waiting <= 60, "{busy}");
    assert!(
        (waiting == 0) == (expected == 0),
        "a backlog and its expected wait go together: {busy}"
    );
    eventually(
        "the 60 payments processed",
        Duration::from_secs(30),
        || async {
            let (d, f) = (
                app.summary(&http, "default").await.0,
                app.summary(&http, "fallback").await.0,
            );
            (d + f == 60).then_some(())
        },
    )
    .await;
    // The count is the router's own, as /metrics exports it.
    let (_, after) = http.get(&format!("{}/dashboard/snapshot", app.url)).await;
    let spilled = processor(&after, "default")["lane"]["spilled"].clone();
    assert_eq!(
        spilled.as_f64(),
        Some(
            metric(
                &app,
                &http,
                "reroute_spilled_total{processor=\"default\",to=\"fallback\"}"
            )
            .await
        ),
        "{after}"
    );
    assert_eq!(
        spilled.as_u64(),
        Some(app.summary(&http, "fallback").await.0),
        "every spilled payment was processed at fallback"
    );
    let fallback = &processor(&after, "fallback")["lane"];
    assert_eq!(fallback["spilled"], 0, "{fallback}");
    app.stop().await;
}

#[tokio::test]
async fn with_a_token_configured_the_data_needs_it() {
    let (app, http, _dir) = techcart(&["--admin-token", "s3cret"]).await;
    let events = format!("{}/dashboard/events", app.url);
    let snapshot = format!("{}/dashboard/snapshot", app.url);
    for (url, headers) in [
        (events.clone(), vec![]),
        (format!("{events}?token=wrong"), vec![]),
        (events.clone(), vec![("authorization", "Bearer s3cre")]),
    ] {
        let (status, body) = EventStream::open(&url, &headers)
            .await
            .err()
            .expect("refused");
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{url}");
        assert!(body["error"].is_string(), "{body}");
    }
    assert_eq!(http.get(&snapshot).await.0, StatusCode::UNAUTHORIZED);
    // With it: as a query parameter (what a browser's EventSource can send)
    // or as a header.
    for (url, headers) in [
        (format!("{events}?token=s3cret"), vec![]),
        (events.clone(), vec![("authorization", "Bearer s3cret")]),
        (events.clone(), vec![("x-rinha-token", "s3cret")]),
    ] {
        let mut feed = EventStream::open(&url, &headers)
            .await
            .unwrap_or_else(|e| panic!("{url}: {e:?}"));
        assert_snapshot_shape(&feed.next(Duration::from_secs(2)).await.unwrap().data);
    }
    let (s, v) = http
        .send(
            hyper::Method::GET,
            &snapshot,
            &[("authorization", "Bearer s3cret")],
            "",
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    app.stop().await;
}

#[tokio::test]
async fn a_bad_selection_is_400_naming_the_field() {
    let (app, http, _dir) = techcart(&[]).await;
    for (query, field) in [
        ("payment_method=PIX", "country"),
        ("country=BR", "payment_method"),
        ("payment_method=PIX&country=Brazil", "country"),
        ("payment_method=P%20X&country=BR", "payment_method"),
    ] {
        let (s, v) = http
            .get(&format!("{}/dashboard/snapshot?{query}", app.url))
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{query}: {v}");
        assert_eq!(v["field"], field, "{query}: {v}");
        let (s, _) = EventStream::open(&format!("{}/dashboard/events?{query}", app.url), &[])
            .await
            .err()
            .expect("refused");
        assert_eq!(s, StatusCode::BAD_REQUEST, "{query}");
    }
    app.stop().await;
}

#[tokio::test]
async fn an_open_feed_ends_when_the_router_stops() {
    let (app, _http, _dir) = techcart(&[]).await;
    let mut feed = EventStream::served(&app, "").await;
    feed.next(Duration::from_secs(2)).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), app.stop())
        .await
        .expect("the router stopped with a feed open");
    let mut ended = false;
    for _ in 0..5 {
        if feed.next(Duration::from_secs(2)).await.is_none() {
            ended = true;
            break;
        }
    }
    assert!(ended, "the feed went on after the stop");
}
