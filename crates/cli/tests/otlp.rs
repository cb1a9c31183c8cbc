//! OpenTelemetry export through the binary: `reroute serve` with
//! OTEL_EXPORTER_OTLP_ENDPOINT sends its spans, OTLP/HTTP protobuf, to a
//! fake collector started here; the payment's span (with its correlation
//! id) is there once the router has stopped on SIGTERM, which flushes
//! whatever was still batched. Without an endpoint nothing is sent.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::{Span, span::SpanKind};
use prost::Message;
use tokio::net::TcpListener;

mod common;
use common::*;

/// What the fake collector received: each request's content type and
/// decoded body.
type Received = Arc<Mutex<Vec<(String, ExportTraceServiceRequest)>>>;

/// An OTLP/HTTP collector that accepts `POST /v1/traces` (protobuf) and
/// keeps what it is sent.
async fn collector() -> (SocketAddr, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let received = Received::default();
    let kept = Arc::clone(&received);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let kept = Arc::clone(&kept);
            let service =
                hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
                    let kept = Arc::clone(&kept);
                    async move {
                        let route = (request.method().clone(), request.uri().path().to_owned());
                        let content_type = request
                            .headers()
                            .get("content-type")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned();
                        let body = request.into_body().collect().await?.to_bytes();
                        let status = if route != (Method::POST, "/v1/traces".to_owned()) {
                            StatusCode::NOT_FOUND
                        } else {
                            match ExportTraceServiceRequest::decode(body) {
                                Ok(export) => {
                                    kept.lock().unwrap().push((content_type, export));
                                    StatusCode::OK
                                }
                                Err(_) => StatusCode::BAD_REQUEST,
                            }
                        };
                        Ok::<_, hyper::Error>(
                            Response::builder()
                                .status(status)
                                .header("content-type", "application/x-protobuf")
                                .body(Full::new(Bytes::new()))
                                .unwrap(),
                        )
                    }
                });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service),
            );
        }
    });
    (addr, received)
}

/// `reroute serve` against the simulators, with `env`; its logs go to
/// `dir/router.log`.
fn router(dir: &Path, port: u16, sim: &reroute_sim::Sim, env: &[(&str, String)]) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_reroute"));
    command
        .args(["serve", "--host", "127.0.0.1", "--port", &port.to_string()])
        .arg("--db")
        .arg(dir.join("r.db"))
        .args(["--default-url", &sim.url("default")])
        .args(["--fallback-url", &sim.url("fallback")])
        .args(["--instance", "otlp-test"]);
    for name in [
        "DATABASE_URL",
        "REROUTE_CONFIG",
        "REROUTE_LOG_FORMAT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_SERVICE_NAME",
    ] {
        command.env_remove(name);
    }
    command
        .env("RUST_LOG", "info")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("router.log")).unwrap())
        .spawn()
        .expect("reroute starts")
}

/// A router started with `env` on a fresh store, before the simulator's
/// processors: pays once, waits for the payment to settle, stops the router
/// gracefully (its exporter flushes then). The payment's correlationId.
async fn pay_once_through_a_router(env: &[(&str, String)]) -> String {
    let sim = reroute_sim::spawn(reroute_sim::SimConfig::rinha_on_free_ports())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let child = router(dir.path(), port, &sim, env);
    let http = http();
    wait_ready(&http, &base).await;
    let id = pay_and_settle(&http, &base).await;
    stop(child, &dir.path().join("router.log")).await;
    sim.shutdown().await;
    id
}

/// Pays once through the router at `base` and waits until the payment is
/// in the ledger (its span has ended then).
async fn pay_and_settle(http: &Http, base: &str) -> String {
    let id = reroute_core::CorrelationId::new_random().to_string();
    let body = format!(r#"{{"correlationId":"{id}","amount":19.90}}"#);
    let (status, _) = call(http, Method::POST, &format!("{base}/payments"), &body)
        .await
        .expect("the router answers");
    assert_eq!(status, 202);
    for _ in 0..400 {
        let (_, summary) = call(http, Method::GET, &format!("{base}/payments-summary"), "")
            .await
            .expect("the router answers");
        if summary["default"]["totalRequests"] == 1 {
            return id;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the payment was never processed");
}

/// SIGTERM, then the exit status: a graceful stop.
async fn stop(mut child: Child, log: &Path) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exited = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(
        exited.success(),
        "{exited}: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

fn attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

fn text(value: &str) -> any_value::Value {
    any_value::Value::StringValue(value.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payments_span_reaches_the_collector_by_the_time_the_router_stops() {
    let (collector, received) = collector().await;
    let id = pay_once_through_a_router(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{collector}")),
        ("OTEL_SERVICE_NAME", "reroute-otlp-test".to_owned()),
    ])
    .await;
    let received = std::mem::take(&mut *received.lock().unwrap());
    assert!(!received.is_empty(), "the collector received nothing");
    for (content_type, _) in received.iter() {
        assert_eq!(content_type, "application/x-protobuf");
    }
    let resources: Vec<_> = received
        .iter()
        .flat_map(|(_, export)| &export.resource_spans)
        .collect();
    for resource in &resources {
        let attributes = &resource.resource.as_ref().unwrap().attributes;
        assert_eq!(
            attribute(attributes, "service.name"),
            Some(&text("reroute-otlp-test"))
        );
        assert_eq!(
            attribute(attributes, "service.instance.id"),
            Some(&text("otlp-test"))
        );
    }
    let spans: Vec<&Span> = resources
        .iter()
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
        .collect();
    let payment = spans
        .iter()
        .find(|s| {
            s.name == "payment" && attribute(&s.attributes, "correlation_id") == Some(&text(&id))
        })
        .unwrap_or_else(|| {
            let names: Vec<_> = spans.iter().map(|s| &s.name).collect();
            panic!("no span for payment {id} among {names:?}")
        });
    assert!(payment.end_time_unix_nano >= payment.start_time_unix_nano);
    let request = spans
        .iter()
        .find(|s| {
            s.name == "POST /payments"
                && attribute(&s.attributes, "http.response.status_code")
                    == Some(&any_value::Value::IntValue(202))
        })
        .unwrap_or_else(|| {
            let seen: Vec<_> = spans.iter().map(|s| (&s.name, &s.attributes)).collect();
            panic!("no span for the POST /payments request among {seen:?}")
        });
    assert_eq!(request.kind, SpanKind::Server as i32);
    assert_eq!(
        attribute(&request.attributes, "http.route"),
        Some(&text("/payments"))
    );
    // The readiness polls made no spans.
    assert!(!spans.iter().any(|s| s.name == "GET /readyz"), "{spans:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_endpoint_nothing_is_sent() {
    let (collector, received) = collector().await;
    // The SDK's own per-signal variable, which an exporter built on its
    // defaults would follow: the router builds none.
    pay_once_through_a_router(&[(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        format!("http://{collector}/v1/traces"),
    )])
    .await;
    assert_eq!(received.lock().unwrap().len(), 0);
}
