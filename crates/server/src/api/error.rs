//! The one place errors become HTTP answers: a status and the stable JSON
//! shape `{"error": "...", "field": "..."}` (plus `outcome` and `retrySafe`
//! on the one answer whose outcome is unknown: a 503 to `POST /payments`).

use axum::extract::rejection::QueryRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use reroute_store::StoreError;

/// Every error answer's body. `field` names the request field at fault
/// (`correlationId`, `amount`, `payment_method`, `processor_id`, ...) when
/// one is; it is absent otherwise.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[schema(as = Error, example = json!({"error": "amount must be greater than zero", "field": "amount"}))]
pub struct ErrorBody<'a> {
    /// What went wrong, for a person to read.
    pub error: String,
    /// The request field at fault; absent when no one field is.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub field: Option<&'a str>,
    /// `unknown` when the request's effect is not known: a 503 to `POST
    /// /payments` whose write the store could not confirm, so the payment
    /// may or may not have been stored (and, if it was, will be charged).
    /// Absent on every other error, whose request changed nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, example = "unknown")]
    pub outcome: Option<&'a str>,
    /// `true` when sending the same request again cannot do it twice: the
    /// same correlationId and amount to `POST /payments` answers 200
    /// `duplicate` if the first was stored, 202 if not. Present with
    /// `outcome`.
    #[serde(rename = "retrySafe", skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub retry_safe: Option<bool>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request's content is wrong; `field` names the culprit if one does.
    #[error("{message}")]
    Invalid {
        field: Option<&'static str>,
        message: String,
    },
    #[error("Content-Type must be application/json")]
    UnsupportedMediaType,
    #[error("request body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    /// The body broke off or its framing is malformed (bad chunked encoding).
    #[error("the request body could not be read: {0}")]
    UnreadableBody(String),
    /// The body did not arrive whole in time (a slow or stalled client).
    #[error("the request body did not arrive within {seconds} s")]
    BodyTimeout { seconds: u64 },
    #[error("correlationId was already accepted with amount {existing}")]
    Conflict { existing: String },
    #[error("no configured processor takes {0}")]
    Unroutable(String),
    #[error("a valid token is required (header X-Rinha-Token or Authorization: Bearer)")]
    Unauthorized,
    #[error("not found")]
    NotFound,
    /// A processor id that the registry does not have; `field` names where
    /// it came from when it was a body field.
    #[error("processor {id:?} is not in the registry (see GET /api/v1/processors)")]
    UnknownProcessor {
        id: String,
        field: Option<&'static str>,
    },
    #[error("the store is unavailable; retry later")]
    Unavailable(#[from] StoreError),
    /// `POST /payments` could not get the store to confirm the payment. The
    /// write may stand all the same: PostgreSQL may have applied a COMMIT
    /// whose answer was lost, and a store error does not tell that case
    /// from one where nothing reached the engine (see
    /// [`StoreError::Unavailable`]). A payment that stood is charged (the
    /// instance finds it held but never queued), so the client must not be
    /// told that nothing was accepted; the correlationId makes its retry
    /// safe, and the retry's answer tells which it was.
    #[error(
        "the store did not confirm the payment: it may or may not have been accepted. \
         Retrying with the same correlationId and amount is safe: 200 duplicate if it was \
         stored (it is charged once), 202 if not"
    )]
    AcceptUnconfirmed(StoreError),
    /// An edge could not reach its core: nothing was sent, nothing changed.
    #[error("{0}; nothing was done, retry later")]
    CoreUnreachable(String),
    /// An edge sent a request (other than a payment) to its core and got no
    /// answer: it may or may not have taken effect.
    #[error("the core did not answer ({0}); the request may or may not have taken effect")]
    CoreNoAnswer(String),
}

impl ApiError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        ApiError::Invalid {
            field: Some(field),
            message: message.into(),
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            ApiError::Invalid { .. } | ApiError::UnreadableBody(_) => StatusCode::BAD_REQUEST,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::Unroutable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::NotFound | ApiError::UnknownProcessor { .. } => StatusCode::NOT_FOUND,
            ApiError::Unavailable(_)
            | ApiError::AcceptUnconfirmed(_)
            | ApiError::CoreUnreachable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::CoreNoAnswer(_) => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// Answered before the body was read to its end: the rest of it is
    /// still on the connection, which therefore cannot carry another
    /// request. Saying `Connection: close` keeps clients from reusing it
    /// (and failing their next request on it).
    fn leaves_body_unread(&self) -> bool {
        matches!(
            self,
            ApiError::UnsupportedMediaType
                | ApiError::TooLarge { .. }
                | ApiError::UnreadableBody(_)
                | ApiError::BodyTimeout { .. }
        )
    }

    fn field(&self) -> Option<&'static str> {
        match self {
            ApiError::Invalid { field, .. } | ApiError::UnknownProcessor { field, .. } => *field,
            ApiError::Conflict { .. } => Some("amount"),
            _ => None,
        }
    }
}

impl From<QueryRejection> for ApiError {
    /// A query string that does not parse: a 400 with axum's explanation.
    fn from(e: QueryRejection) -> Self {
        ApiError::Invalid {
            field: None,
            message: e.body_text(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            ApiError::Unavailable(e) => tracing::error!(error = %e, "request failed on the store"),
            ApiError::AcceptUnconfirmed(e) => {
                tracing::error!(error = %e, "the store did not confirm a payment; outcome unknown")
            }
            ApiError::CoreUnreachable(e) | ApiError::CoreNoAnswer(e) => {
                tracing::error!(error = %e, "request failed on the core")
            }
            _ => {}
        }
        let unknown = matches!(self, ApiError::AcceptUnconfirmed(_));
        let body = ErrorBody {
            error: self.to_string(),
            field: self.field(),
            outcome: unknown.then_some("unknown"),
            retry_safe: unknown.then_some(true),
        };
        let mut response = (self.status(), axum::Json(body)).into_response();
        if self.leaves_body_unread() {
            response.headers_mut().insert(
                axum::http::header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
        }
        response
    }
}
