//! Which endpoint answers a request.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};

use super::reply::{self, Reply};
use super::server::Connection;
use super::{admin, health, payments};
use crate::processor::Processor;

pub async fn handle(
    processor: Arc<Processor>,
    connection: Arc<Connection>,
    request: Request<Incoming>,
) -> Reply {
    let path = request.uri().path();
    let method = request.method();
    if path == "/payments" {
        return match *method {
            Method::POST => payments::create(processor, connection, request).await,
            _ => reply::empty(StatusCode::METHOD_NOT_ALLOWED),
        };
    }
    if path == "/payments/service-health" {
        return match *method {
            Method::GET => health::check(processor).await,
            _ => reply::empty(StatusCode::METHOD_NOT_ALLOWED),
        };
    }
    if let Some(id) = path.strip_prefix("/payments/") {
        return match *method {
            Method::GET => payments::get(&processor, id),
            _ => reply::empty(StatusCode::METHOD_NOT_ALLOWED),
        };
    }
    if path.starts_with("/admin/") {
        return admin::handle(processor, request).await;
    }
    reply::empty(StatusCode::NOT_FOUND)
}
