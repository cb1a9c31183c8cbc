//! The HTTP surface: routes and the shared state they read. [`payments`] is
//! surface 1 (Rinha), [`intel`] surface 2 (failover intelligence),
//! [`ops`] and [`dashboard`] surface 3 (metrics, liveness, readiness, the
//! live dashboard).

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};

use crate::app::Shared;

pub mod dashboard;
pub mod error;
pub mod intel;
pub mod ops;
pub mod payments;

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/payments", post(payments::create))
        .route("/payments-summary", get(payments::summary))
        .route("/purge-payments", post(payments::purge))
        .route("/api/v1/transactions", post(intel::record))
        .route("/api/v1/health", get(intel::health))
        .route("/api/v1/health/{processor_id}", get(intel::processor))
        .route(
            "/api/v1/routing/recommend",
            get(intel::recommend_query).post(intel::recommend_body),
        )
        .route("/api/v1/alerts", get(intel::alerts))
        .route("/api/v1/processors", get(intel::processors))
        .route("/metrics", get(ops::metrics))
        .route("/livez", get(ops::livez))
        .route("/readyz", get(ops::readyz))
        .route("/dashboard", get(dashboard::page))
        .route("/dashboard/snapshot", get(dashboard::snapshot))
        .route("/dashboard/events", get(dashboard::events))
        .fallback(|| async { error::ApiError::NotFound })
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&shared),
            ops::track,
        ))
        .with_state(shared)
}
