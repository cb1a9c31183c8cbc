//! The routing table: every handler of the three surfaces mounted once on
//! one axum router, the OpenAPI document built from the same registration,
//! and the middleware every request passes (timing, then the handler). A
//! request from the socket reaches its handler here; [`crate::App`] adds the
//! rate limit and tracing layers around it.

use std::sync::{Arc, LazyLock};

use axum::Router;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{dashboard, error, intel, openapi, ops, payments};
use crate::state::Shared;

/// Every route, registered once: each `routes!` mounts its handlers and adds
/// their operations (from their `#[utoipa::path]`) to the OpenAPI document,
/// so the router and the document cannot drift apart.
pub(crate) fn routes() -> OpenApiRouter<Arc<Shared>> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(payments::create))
        .routes(routes!(payments::summary))
        .routes(routes!(payments::find))
        .routes(routes!(payments::purge))
        .routes(routes!(intel::transactions::record))
        .routes(routes!(intel::health::health))
        .routes(routes!(intel::health::processor))
        .routes(routes!(
            intel::recommend::recommend_query,
            intel::recommend::recommend_body
        ))
        .routes(routes!(intel::health::alerts))
        .routes(routes!(intel::health::processors))
        .routes(routes!(ops::metrics))
        .routes(routes!(ops::livez))
        .routes(routes!(ops::readyz))
        .routes(routes!(openapi_json))
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

/// The whole document, built once from the same registration that builds
/// the router.
pub fn document() -> utoipa::openapi::OpenApi {
    routes().split_for_parts().1
}

static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    document()
        .to_json()
        .expect("an OpenAPI document of strings and maps always serializes")
});

/// `GET /openapi.json`: this document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "openapi",
    tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API.", content_type = "application/json", body = Object))
)]
pub async fn openapi_json() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        DOCUMENT.as_str(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_document_is_json_and_describes_itself() {
        let doc: serde_json::Value = serde_json::from_str(&super::DOCUMENT).unwrap();
        assert!(doc["paths"]["/openapi.json"]["get"].is_object());
    }
}
