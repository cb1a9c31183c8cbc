//! Building answers and reading bodies, in one place so every endpoint
//! answers errors the same way: `{"error": "...", "field": "..."}`.
//!
//! The endpoints read bodies themselves rather than through axum's `Json`
//! and `Bytes` extractors: the reference accepts a body whatever its
//! `Content-Type`, and a refusal must keep this shape and its 64 KiB limit.

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::StatusCode;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use serde::Serialize;

pub type Reply = Response;

/// Large enough for any payment or setting, small enough to refuse abuse.
const MAX_BODY: usize = 64 * 1024;

const JSON: HeaderValue = HeaderValue::from_static("application/json; charset=utf-8");
const TEXT: HeaderValue = HeaderValue::from_static("text/plain; charset=utf-8");

fn with_body(status: StatusCode, content_type: HeaderValue, body: Bytes) -> Reply {
    let mut reply = Response::new(Body::from(body));
    *reply.status_mut() = status;
    reply.headers_mut().insert(CONTENT_TYPE, content_type);
    reply
}

/// A JSON body known at compile time (the hot path's answers).
pub fn json_static(status: StatusCode, body: &'static str) -> Reply {
    with_body(status, JSON, Bytes::from_static(body.as_bytes()))
}

pub fn json<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> Reply {
    match serde_json::to_vec(value) {
        Ok(body) => with_body(status, JSON, Bytes::from(body)),
        Err(_) => empty(StatusCode::INTERNAL_SERVER_ERROR),
    }
}

pub fn text(status: StatusCode, body: &'static str) -> Reply {
    with_body(status, TEXT, Bytes::from_static(body.as_bytes()))
}

pub fn empty(status: StatusCode) -> Reply {
    let mut reply = Response::new(Body::empty());
    *reply.status_mut() = status;
    reply
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

/// A 4xx naming what was wrong and, when known, which field.
pub fn error(status: StatusCode, error: &str, field: Option<&str>) -> Reply {
    json(status, &ErrorBody { error, field })
}

/// A request an endpoint refuses: one status, what was wrong, and which
/// field when it is known. Endpoints return it with `?`; it becomes a
/// [`Reply`] in one place.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    pub status: StatusCode,
    pub message: String,
    pub field: Option<&'static str>,
}

impl Refusal {
    pub fn bad_request(message: impl Into<String>, field: Option<&'static str>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            field,
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Reply {
        error(self.status, &self.message, self.field)
    }
}

/// The whole body, or why it cannot be read.
pub async fn read_body(body: Body) -> Result<Bytes, Refusal> {
    match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(Refusal {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            message: format!("body is larger than {MAX_BODY} bytes"),
            field: None,
        }),
        Err(_) => Err(Refusal::bad_request("body could not be read", None)),
    }
}

/// The whole body read as JSON of the shape `T`, or a refusal naming the
/// problem.
pub async fn read_json<T: serde::de::DeserializeOwned>(body: Body) -> Result<T, Refusal> {
    let body = read_body(body).await?;
    serde_json::from_slice(&body).map_err(|e| {
        Refusal::bad_request(
            format!("body must be JSON of the documented shape: {e}"),
            None,
        )
    })
}
