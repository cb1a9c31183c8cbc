//! Surface 3, operations: `GET /metrics`, `GET /livez`, `GET /readyz`, and
//! the middleware that times every request.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::app::Shared;

pub async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let body = shared.metrics.render(&shared).await;
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// Liveness: the process answers HTTP.
pub async fn livez() -> Response {
    axum::Json(serde_json::json!({"status": "ok"})).into_response()
}

/// Readiness: the store answers and the workers are running. A load balancer
/// should send payments only to a ready instance.
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
    let status = if store_ok && workers_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::json!({
        "status": if status == StatusCode::OK { "ready" } else { "not ready" },
        "store": if store_ok { "ok" } else { "unavailable" },
        "workers": if workers_ok { "running" } else { "stopped" },
    });
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
