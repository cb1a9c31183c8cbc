//! What every handler does with a request before it reads its meaning: the
//! body read whole within its size and time limits, the `Content-Type`
//! checked, the admin token compared; and the amount, which payments and
//! the intelligence API's bodies both carry, read exactly. A payment passes here between the
//! socket and its parsing ([`super::payments`]), as do recorded
//! transactions ([`super::intel`]) and an edge's requests ([`crate::edge`]);
//! the admin endpoints and the dashboard check the token here.

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, header};
use reroute_core::{Money, MoneyError};

use super::error::ApiError;
use crate::config::ServeConfig;

/// Refuses a body that does not say it is JSON (415).
pub(crate) fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if is_json {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType)
    }
}

/// Reads a whole request body: past `limit` it is a 413; a body that cannot
/// be read (malformed chunked encoding, a client that broke off) is a 400.
pub(crate) async fn read_body(
    body: Body,
    limit: usize,
    timeout: std::time::Duration,
) -> Result<Bytes, ApiError> {
    let read = tokio::time::timeout(timeout, axum::body::to_bytes(body, limit))
        .await
        .map_err(|_| ApiError::BodyTimeout {
            seconds: timeout.as_secs().max(1),
        })?;
    read.map_err(|e| {
        let too_large = std::error::Error::source(&e)
            .is_some_and(|source| source.is::<http_body_util::LengthLimitError>());
        if too_large {
            ApiError::TooLarge { limit }
        } else {
            ApiError::UnreadableBody(e.to_string())
        }
    })
}

/// Reads a handler's body within the configured limits (`max_body_bytes`,
/// `body_read_timeout`); an edge calls [`read_body`] with its fixed ones.
pub(crate) async fn read_configured_body(
    body: Body,
    config: &ServeConfig,
) -> Result<Bytes, ApiError> {
    read_body(body, config.max_body_bytes, config.body_read_timeout).await
}

/// A positive amount, exact to the cent, from a JSON number's text; a
/// refusal names the `amount` field and shows `example`.
pub(crate) fn amount(text: &str, example: &str) -> Result<Money, ApiError> {
    let amount = Money::parse_exact(text).map_err(|e| {
        let message = match e {
            MoneyError::NotANumber => format!("amount must be a JSON number, e.g. {example}"),
            other => other.to_string(),
        };
        ApiError::invalid("amount", message)
    })?;
    if !amount.is_positive() {
        return Err(ApiError::invalid(
            "amount",
            "amount must be greater than zero",
        ));
    }
    Ok(amount)
}

/// The admin token a request presents: `X-Rinha-Token`, else
/// `Authorization: Bearer`.
pub(crate) fn presented_token(headers: &HeaderMap) -> Option<&str> {
    if let Some(t) = headers.get("x-rinha-token").and_then(|v| v.to_str().ok()) {
        return Some(t);
    }
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

/// Lets a request through when no admin token is configured (`expected`)
/// or when it presents that one; a 401 otherwise.
pub(crate) fn require_token(
    expected: Option<&str>,
    presented: Option<&str>,
) -> Result<(), ApiError> {
    match expected {
        None => Ok(()),
        Some(expected)
            if presented.is_some_and(|t| constant_time_eq(t.as_bytes(), expected.as_bytes())) =>
        {
            Ok(())
        }
        Some(_) => Err(ApiError::Unauthorized),
    }
}

/// Compares secrets without an early exit that would leak, through timing,
/// how many leading bytes matched.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
    }

    #[test]
    fn a_token_is_needed_only_when_one_is_configured() {
        assert!(require_token(None, None).is_ok());
        assert!(require_token(None, Some("anything")).is_ok());
        assert!(require_token(Some("secret"), Some("secret")).is_ok());
        for presented in [None, Some("secreT"), Some("")] {
            assert!(matches!(
                require_token(Some("secret"), presented),
                Err(ApiError::Unauthorized)
            ));
        }
    }
}
