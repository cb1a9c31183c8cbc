//! The HTTP surface: routes and the shared state they read. [`payments`] is
//! surface 1 (Rinha), [`intel`] surface 2 (failover intelligence),
//! [`ops`] and [`dashboard`] surface 3 (metrics, liveness, readiness, the
//! live dashboard); [`openapi`] describes them all.

use std::sync::Arc;

use axum::Router;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::Shared;

pub mod dashboard;
pub mod error;
pub mod frames;
pub mod intel;
pub mod openapi;
pub mod ops;
pub mod payments;

/// Every route, registered once: each `routes!` mounts its handlers and adds
/// their operations (from their `#[utoipa::path]`) to the OpenAPI document,
/// so the router and the document cannot drift apart.
pub(crate) fn routes() -> OpenApiRouter<Arc<Shared>> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(payments::create))
        .routes(routes!(payments::summary))
        .routes(routes!(payments::find))
        .routes(routes!(payments::purge))
        .routes(routes!(intel::record))
        .routes(routes!(intel::health))
        .routes(routes!(intel::processor))
        .routes(routes!(intel::recommend_query, intel::recommend_body))
        .routes(routes!(intel::alerts))
        .routes(routes!(intel::processors))
        .routes(routes!(ops::metrics))
        .routes(routes!(ops::livez))
        .routes(routes!(ops::readyz))
        .routes(routes!(openapi::openapi_json))
        .routes(routes!(dashboard::page))
        .routes(routes!(dashboard::snapshot))
        .routes(routes!(dashboard::events))
}

pub fn router(shared: Arc<Shared>) -> Router {
    let (router, _document) = routes().split_for_parts();
    router
        .fallback(|| async { error::ApiError::NotFound })
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&shared),
            ops::track,
        ))
        .with_state(shared)
}
