//! Where `tracing`'s events and spans go: logs to stderr (JSON lines or
//! text) and, when an OTLP endpoint is configured, spans to an
//! OpenTelemetry collector over OTLP/HTTP (protobuf).
//!
//! The exported spans are the ones the code already opens: one per payment
//! as a worker carries it (`payment{correlation_id}`, from claim to known
//! outcome), and — only while exporting — one per HTTP request
//! (`POST /payments`, with `http.route`, `http.request.method` and
//! `http.response.status_code`; none for `/livez`, `/readyz` and `/metrics`,
//! which machines poll). `RUST_LOG` filters them as it filters logs.
//!
//! Off by default: without an endpoint no exporter is built and nothing is
//! sent anywhere. With one, finished spans are batched and sent from the
//! SDK's own thread (every 5 s, or sooner when 512 are waiting); the HTTP
//! calls run on the router's runtime with hyper's HTTP/1.1 client, which the
//! router already uses for processors, so no second HTTP stack (and no gRPC)
//! comes in. [`Telemetry::shutdown`] sends what is left on a graceful stop.
//! `OTEL_EXPORTER_OTLP_HEADERS` (e.g. an authorization header) and the
//! `OTEL_BSP_*` batch settings are honoured, as the SDK reads them.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_http::{
    Bytes, HttpClient, HttpError, Request as HttpRequest, Response as HttpResponse,
};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Instrument;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// How long one export may take (connect, send, answer).
const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a stop waits for the last spans to be sent.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line, with the current span.
    Json,
    /// Readable lines.
    Text,
}

impl LogFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Json => "json",
            LogFormat::Text => "text",
        }
    }
}

/// `reroute serve`'s logs and traces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelemetryConfig {
    pub log_format: LogFormat,
    /// Where spans are exported; `None`: nowhere.
    pub otlp: Option<OtlpConfig>,
}

/// An OTLP/HTTP destination for spans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtlpConfig {
    /// The collector's base URL (`http://collector:4318`); spans go to
    /// `{endpoint}/v1/traces`.
    pub endpoint: String,
    /// The spans' `service.name`.
    pub service_name: String,
    /// The spans' `service.instance.id`: the instance's name.
    pub instance: String,
}

impl OtlpConfig {
    /// Where the spans are posted.
    pub fn traces_url(&self) -> String {
        format!("{}/v1/traces", self.endpoint.trim_end_matches('/'))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("cannot build the OTLP exporter for {url}: {source}")]
    Exporter {
        url: String,
        source: opentelemetry_otlp::ExporterBuildError,
    },
    #[error("cannot install the log subscriber: {0}")]
    Install(#[from] tracing_subscriber::util::TryInitError),
}

/// The installed subscriber's exporter, to be shut down on stop.
#[must_use = "shut it down on stop, or the last spans are lost"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Installs the process's subscriber: events and spans filtered by
    /// `filter`, written to stderr as `format` says and, with `otlp`,
    /// spans exported there, the exporter's HTTP calls running on
    /// `runtime`.
    pub fn init(
        format: LogFormat,
        filter: EnvFilter,
        otlp: Option<(&OtlpConfig, tokio::runtime::Handle)>,
    ) -> Result<Telemetry, TelemetryError> {
        let provider = match otlp {
            Some((config, runtime)) => Some(tracer_provider(config, runtime)?),
            None => None,
        };
        let spans = provider
            .as_ref()
            .map(|provider| tracing_opentelemetry::layer().with_tracer(provider.tracer("reroute")));
        let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
        let logs = match format {
            LogFormat::Json => logs
                .json()
                .with_current_span(true)
                .with_span_list(false)
                .boxed(),
            LogFormat::Text => logs.boxed(),
        };
        tracing_subscriber::registry()
            .with(filter)
            .with(logs)
            .with(spans)
            .try_init()?;
        Ok(Telemetry { provider })
    }

    /// Whether spans are exported.
    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }

    /// Sends the spans not sent yet and stops the exporter (at most
    /// `SHUTDOWN_TIMEOUT`). Call it from the runtime given to
    /// [`Telemetry::init`], which must still run.
    pub async fn shutdown(self) {
        let Some(provider) = self.provider else {
            return;
        };
        // The SDK blocks until its thread has exported the last batch, and
        // that export runs on this runtime: wait off the runtime's threads.
        let stopped =
            tokio::task::spawn_blocking(move || provider.shutdown_with_timeout(SHUTDOWN_TIMEOUT))
                .await;
        match stopped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("reroute: the last spans may not have been exported: {e}"),
            Err(e) => eprintln!("reroute: the span exporter did not stop: {e}"),
        }
    }
}

fn tracer_provider(
    config: &OtlpConfig,
    runtime: tokio::runtime::Handle,
) -> Result<SdkTracerProvider, TelemetryError> {
    let url = config.traces_url();
    let client = OnRuntime::new(runtime);
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(client)
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(url.clone())
        .with_timeout(EXPORT_TIMEOUT)
        .build()
        .map_err(|source| TelemetryError::Exporter { url, source })?;
    let resource = Resource::builder_empty()
        .with_service_name(config.service_name.clone())
        .with_attributes([
            KeyValue::new("service.instance.id", config.instance.clone()),
            KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
        ])
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

/// Largest collector answer read (an OTLP answer is a few bytes).
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// The exporter's HTTP client: hyper's, HTTP/1.1, its calls spawned on the
/// router's runtime — the SDK's batch thread runs exports outside any
/// runtime, where hyper cannot run.
#[derive(Debug)]
struct OnRuntime {
    client: Client<HttpConnector, Full<Bytes>>,
    runtime: tokio::runtime::Handle,
}

impl OnRuntime {
    fn new(runtime: tokio::runtime::Handle) -> Self {
        Self {
            client: Client::builder(TokioExecutor::new()).build(HttpConnector::new()),
            runtime,
        }
    }
}

impl HttpClient for OnRuntime {
    // `HttpClient` is an `async_trait`; this is the signature it expands to.
    fn send_bytes<'a, 'b>(
        &'a self,
        request: HttpRequest<Bytes>,
    ) -> Pin<Box<dyn Future<Output = Result<HttpResponse<Bytes>, HttpError>> + Send + 'b>>
    where
        'a: 'b,
        Self: 'b,
    {
        let client = self.client.clone();
        let call = self.runtime.spawn(async move {
            let exchange = async {
                let response = client.request(request.map(Full::new)).await?;
                let (parts, body) = response.into_parts();
                let body = Limited::new(body, MAX_ANSWER_BYTES).collect().await?;
                Ok::<_, HttpError>(HttpResponse::from_parts(parts, body.to_bytes()))
            };
            tokio::time::timeout(EXPORT_TIMEOUT, exchange).await?
        });
        Box::pin(async move { call.await? })
    }
}

/// `router` with a span around each request when spans are exported;
/// `router` itself otherwise (the logs stay as they are).
pub fn layer(router: Router, config: &TelemetryConfig) -> Router {
    if config.otlp.is_none() {
        return router;
    }
    router.layer(axum::middleware::from_fn(request_span))
}

/// Routes polled by machines (load balancers, Prometheus): a span each
/// would only bury the others.
const UNTRACED: [&str; 3] = ["/livez", "/readyz", "/metrics"];

/// One span per request, named and described as OpenTelemetry's HTTP
/// conventions say (route template, never the raw path or query).
async fn request_span(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str());
    if UNTRACED.contains(&route) {
        return next.run(request).await;
    }
    let method = request.method().as_str();
    let span = tracing::info_span!(
        "http_request",
        otel.name = %format_args!("{method} {route}"),
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        http.request.method = %method,
        http.route = %route,
        http.response.status_code = tracing::field::Empty,
    );
    let response = next.run(request).instrument(span.clone()).await;
    let status = response.status();
    // As i64: the OpenTelemetry layer writes unsigned integers as text.
    span.record("http.response.status_code", i64::from(status.as_u16()));
    if status.is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_go_to_the_traces_path_of_the_endpoint() {
        let config = OtlpConfig {
            endpoint: "http://collector:4318/".into(),
            service_name: "reroute".into(),
            instance: "a".into(),
        };
        assert_eq!(config.traces_url(), "http://collector:4318/v1/traces");
    }

    #[test]
    fn without_an_endpoint_nothing_is_exported() {
        // The subscriber is global to the test binary: this is its only
        // installer.
        let telemetry = Telemetry::init(LogFormat::Text, EnvFilter::new("off"), None).unwrap();
        assert!(!telemetry.exporting());
    }
}
