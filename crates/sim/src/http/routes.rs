//! Which endpoint answers a request: one [`axum::Router`] per processor,
//! with the processor as its state.
//!
//! Every endpoint is listed here. Unknown paths answer 404 and known paths
//! with another method 405, both with an empty body. Everything under
//! `/admin` needs the token first ([`super::admin::require_token`]), then
//! answers 404 for an unknown path or method.

use std::sync::Arc;

use axum::Router;
use axum::handler::Handler;
use axum::middleware;
use axum::routing::{MethodRouter, get, post, put};
use hyper::StatusCode;

use super::reply::{self, Reply};
use super::{admin, health, payments};
use crate::processor::Processor;

pub fn router(processor: Arc<Processor>) -> Router {
    Router::new()
        .route("/payments", post(payments::create))
        .route(
            "/payments/service-health",
            get_only(health::check, method_not_allowed),
        )
        // A catch-all, so that any id, even one with a `/`, is looked up and
        // refused as not a UUID.
        .route(
            "/payments/{*id}",
            get_only(payments::lookup, method_not_allowed),
        )
        .nest_service("/admin", admin_router(processor.clone()))
        .with_state(processor)
}

/// The `/admin/*` routes, relative to `/admin`. A path that does not exist,
/// or a method a path does not take, answers 404 once the token is right.
fn admin_router(processor: Arc<Processor>) -> Router {
    use admin::not_found;
    Router::new()
        .route("/payments-summary", get_only(admin::summary, not_found))
        .route("/configurations/token", put(admin::set_token))
        .route("/configurations/delay", put(admin::set_delay))
        .route("/configurations/failure", put(admin::set_failure))
        .route("/purge-payments", post(admin::purge))
        // Extensions.
        .route(
            "/faults",
            get_only(admin::faults, not_found).put(admin::set_faults),
        )
        .route("/faults/schedule", put(admin::set_schedule))
        .route("/payments", get_only(admin::payments, not_found))
        .route("/stats", get_only(admin::stats, not_found))
        .route("/stats/reset", post(admin::reset_stats))
        .fallback(not_found)
        .method_not_allowed_fallback(not_found)
        // Around the fallbacks too: without the token, even a path that
        // does not exist answers 401.
        .layer(middleware::from_fn_with_state(
            processor.clone(),
            admin::require_token,
        ))
        .with_state(processor)
}

/// GET and not HEAD, which `refuse` answers. axum answers HEAD with a GET
/// route's handler; the reference has no HEAD routes, and a HEAD must not
/// spend a health-check permit.
fn get_only<H, T, R, U>(handler: H, refuse: R) -> MethodRouter<Arc<Processor>>
where
    H: Handler<T, Arc<Processor>>,
    R: Handler<U, Arc<Processor>>,
    T: 'static,
    U: 'static,
{
    get(handler).head(refuse)
}

async fn method_not_allowed() -> Reply {
    reply::empty(StatusCode::METHOD_NOT_ALLOWED)
}
