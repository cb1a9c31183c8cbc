//! The HTTP surface: routes and the shared state they read.

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};

use crate::app::Shared;

pub mod error;
pub mod payments;

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/payments", post(payments::create))
        .route("/payments-summary", get(payments::summary))
        .route("/purge-payments", post(payments::purge))
        .fallback(|| async { error::ApiError::NotFound })
        .with_state(shared)
}
