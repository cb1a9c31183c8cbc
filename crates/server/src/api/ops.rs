//! Surface 3, operations, beside the data path: `GET /metrics` (the
//! [`crate::metrics`] the path updated, and gauges of the live state),
//! `GET /livez`, `GET /readyz`, and the middleware that times every request.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::state::Shared;

/// `GET /metrics`: Prometheus / OpenMetrics text.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "operations",
    responses((status = 200, description = "Metrics in the OpenMetrics text format.",
        content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8", body = String))
)]
pub async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let body = shared.metrics.render(shared.live()).await;
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// The answer to `GET /livez`.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[schema(as = Liveness)]
struct LivenessJson {
    #[schema(example = "ok")]
    status: &'static str,
}

/// Liveness: the process answers HTTP.
#[utoipa::path(
    get,
    path = "/livez",
    operation_id = "livez",
    tag = "operations",
    responses((status = 200, description = "The process answers HTTP.", body = LivenessJson))
)]
pub async fn livez() -> Response {
    axum::Json(LivenessJson { status: "ok" }).into_response()
}

/// The answer to `GET /readyz`.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[schema(as = Readiness)]
struct ReadinessJson {
    /// `ready` or `not ready`.
    #[schema(example = "ready")]
    status: &'static str,
    /// `ok` or `unavailable`.
    #[schema(example = "ok")]
    store: &'static str,
    /// `running` or `stopped`.
    #[schema(example = "running")]
    workers: &'static str,
    /// `held`, or `lost` when the last renewal of this instance's leases
    /// failed (PostgreSQL store): other instances may take its payments.
    #[schema(example = "held")]
    leases: &'static str,
}

/// Readiness: the store answers, the workers are running and this instance's
/// leases are renewed. A load balancer should send payments only to a ready
/// instance.
#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "readyz",
    tag = "operations",
    responses(
        (status = 200, description = "Ready: the store answers, the workers run, the leases are renewed.", body = ReadinessJson),
        (status = 503, description = "Not ready; the body says which part is not.", body = ReadinessJson),
    )
)]
pub async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    let store = shared.store.summary(reroute_core::Window::new(
        Some(reroute_core::Timestamp::from_millis(0)),
        Some(reroute_core::Timestamp::from_millis(0)),
    ));
    let store_ok = matches!(
        tokio::time::timeout(std::time::Duration::from_secs(2), store).await,
        Ok(Ok(_))
    );
    let workers_ok = !shared.stopping.is_cancelled();
    let leases_ok = shared
        .leases_renewed
        .load(std::sync::atomic::Ordering::Relaxed);
    let status = if store_ok && workers_ok && leases_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = ReadinessJson {
        status: if status == StatusCode::OK {
            "ready"
        } else {
            "not ready"
        },
        store: if store_ok { "ok" } else { "unavailable" },
        workers: if workers_ok { "running" } else { "stopped" },
        leases: if leases_ok { "held" } else { "lost" },
    };
    (status, axum::Json(body)).into_response()
}

/// Counts and times every request under its route template (`/api/v1/health/{processor_id}`,
/// never the raw path, so label values stay bounded).
pub async fn track(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let method = request.method().as_str().to_owned();
    let response = next.run(request).await;
    shared.metrics.http(
        &route,
        &method,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}
