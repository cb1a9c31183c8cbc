//! The calls the official script makes, one method each: the processors'
//! admin API (token, purge, delay, failure, summary) and the backend's
//! (purge, summary, payment body).
//!
//! Every call goes through the caller's own [`Connection`], so its duration
//! lands in that user's statistics: the p99 of the score covers every request
//! the test made, admin calls included, as k6's `http_req_duration` does.

use std::sync::Arc;

use bytes::Bytes;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Method, StatusCode};
use reroute_core::{CorrelationId, Timestamp, Window};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::scenario::REQUEST_TIMEOUT;
use crate::http::{BodyUse, Connection, Endpoint, Exchange, ExchangeError, HttpStats};

/// The token every processor starts with; the script always sets the token
/// with this one in the header.
pub const INITIAL_TOKEN: &str = "123";

const TOKEN_HEADER: HeaderName = HeaderName::from_static("x-rinha-token");

/// The body of one payment: `{"correlationId":"<new uuid>","amount":<amount>}`,
/// with the amount as the script's k6 writes it (`19.9`, `20.05`).
pub fn payment_body(id: CorrelationId, amount_json: &str) -> Bytes {
    let mut body = String::with_capacity(72);
    body.push_str(r#"{"correlationId":""#);
    body.push_str(&id.to_string());
    body.push_str(r#"","amount":"#);
    body.push_str(amount_json);
    body.push('}');
    Bytes::from(body)
}

/// A processor's own books for a window (`GET /admin/payments-summary`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcessorSummary {
    pub total_requests: u64,
    #[serde(with = "crate::json_number")]
    pub total_amount: Decimal,
    #[serde(with = "crate::json_number")]
    pub total_fee: Decimal,
    #[serde(with = "crate::json_number")]
    pub fee_per_transaction: Decimal,
}

/// What a backend says it sent to one processor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Totals {
    pub total_requests: u64,
    #[serde(with = "crate::json_number")]
    pub total_amount: Decimal,
}

/// The backend's `GET /payments-summary` answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BackendSummary {
    pub default: Totals,
    pub fallback: Totals,
}

/// A call that did not do what the script requires.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("{what} at {target}: {source}")]
    NoResponse {
        what: &'static str,
        target: String,
        #[source]
        source: ExchangeError,
    },
    #[error("{what} at {target}: HTTP {status}, expected {expected}")]
    Status {
        what: &'static str,
        target: String,
        status: u16,
        expected: u16,
    },
    #[error("{what} at {target}: unreadable answer: {detail}")]
    Body {
        what: &'static str,
        target: String,
        detail: String,
    },
}

impl CallError {
    fn status(what: &'static str, target: String, answer: &Exchange, expected: StatusCode) -> Self {
        CallError::Status {
            what,
            target,
            status: answer.status.as_u16(),
            expected: expected.as_u16(),
        }
    }
}

/// The answer's JSON body, or why it cannot be read.
fn read_json<T: serde::de::DeserializeOwned>(
    what: &'static str,
    target: String,
    answer: &Exchange,
) -> Result<T, CallError> {
    serde_json::from_slice(&answer.body).map_err(|e| CallError::Body {
        what,
        target,
        detail: e.to_string(),
    })
}

/// One payment processor, seen through one user's connection.
pub struct Processor {
    name: &'static str,
    connection: Connection,
    token: HeaderValue,
}

impl Processor {
    /// `token` must be a valid header value (checked when options are built).
    pub fn new(name: &'static str, endpoint: Arc<Endpoint>, token: &HeaderValue) -> Self {
        Self {
            name,
            connection: Connection::new(endpoint),
            token: token.clone(),
        }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// `PUT /admin/configurations/token`, authorised with the initial token,
    /// expecting 204. If the processor already holds our token (a second run
    /// with a custom `--token`) the initial one is refused with 401; the call
    /// is then repeated with ours, where the script would stop.
    pub async fn set_token(&mut self) -> Result<(), CallError> {
        const WHAT: &str = "setting the token";
        let body = Bytes::from(format!(r#"{{"token":{}}}"#, json_string(&self.token)));
        let initial = HeaderValue::from_static(INITIAL_TOKEN);
        let mut answer = self
            .call(
                WHAT,
                Method::PUT,
                "/admin/configurations/token",
                Some(body.clone()),
                &initial,
            )
            .await?;
        if answer.status == StatusCode::UNAUTHORIZED && self.token != initial {
            let token = self.token.clone();
            answer = self
                .call(
                    WHAT,
                    Method::PUT,
                    "/admin/configurations/token",
                    Some(body),
                    &token,
                )
                .await?;
        }
        self.expect(WHAT, &answer, StatusCode::NO_CONTENT)
    }

    /// `POST /admin/purge-payments`, expecting 200.
    pub async fn purge(&mut self) -> Result<(), CallError> {
        const WHAT: &str = "purging payments";
        let token = self.token.clone();
        let answer = self
            .call(WHAT, Method::POST, "/admin/purge-payments", None, &token)
            .await?;
        self.expect(WHAT, &answer, StatusCode::OK)
    }

    /// `PUT /admin/configurations/delay {"delay": ms}`, expecting 200.
    pub async fn set_delay(&mut self, delay_ms: u64) -> Result<(), CallError> {
        let body = format!(r#"{{"delay":{delay_ms}}}"#);
        self.configure("setting the delay", "/admin/configurations/delay", body)
            .await
    }

    /// `PUT /admin/configurations/failure {"failure": bool}`, expecting 200.
    pub async fn set_failure(&mut self, failing: bool) -> Result<(), CallError> {
        let body = format!(r#"{{"failure":{failing}}}"#);
        self.configure(
            "setting the failure mode",
            "/admin/configurations/failure",
            body,
        )
        .await
    }

    /// One `PUT /admin/configurations/…` with the token, expecting 200.
    async fn configure(
        &mut self,
        what: &'static str,
        path: &'static str,
        body: String,
    ) -> Result<(), CallError> {
        let token = self.token.clone();
        let answer = self
            .call(what, Method::PUT, path, Some(Bytes::from(body)), &token)
            .await?;
        self.expect(what, &answer, StatusCode::OK)
    }

    /// `GET /admin/payments-summary?from&to`, expecting 200 and the summary.
    /// The script counts a failed summary as all zeros; callers do the same.
    pub async fn summary(&mut self, window: Window) -> Result<ProcessorSummary, CallError> {
        const WHAT: &str = "reading the payments summary";
        let path = summary_path("/admin/payments-summary", window);
        let token = self.token.clone();
        let answer = self.call(WHAT, Method::GET, &path, None, &token).await?;
        self.expect(WHAT, &answer, StatusCode::OK)?;
        read_json(WHAT, self.target(), &answer)
    }

    pub fn into_stats(self) -> HttpStats {
        self.connection.into_stats()
    }

    async fn call(
        &mut self,
        what: &'static str,
        method: Method,
        path: &str,
        body: Option<Bytes>,
        token: &HeaderValue,
    ) -> Result<Exchange, CallError> {
        let mut request = self.connection.endpoint().request(method, path, body);
        request.headers_mut().insert(TOKEN_HEADER, token.clone());
        self.connection
            .exchange(request, BodyUse::Keep, REQUEST_TIMEOUT)
            .await
            .map_err(|source| CallError::NoResponse {
                what,
                target: self.target(),
                source,
            })
    }

    fn expect(
        &self,
        what: &'static str,
        answer: &Exchange,
        expected: StatusCode,
    ) -> Result<(), CallError> {
        if answer.status == expected {
            Ok(())
        } else {
            Err(CallError::status(what, self.target(), answer, expected))
        }
    }

    fn target(&self) -> String {
        format!("processor {} ({})", self.name, self.connection.endpoint())
    }
}

/// The backend under test, seen through one user's connection.
pub struct Backend {
    connection: Connection,
}

impl Backend {
    pub fn new(endpoint: Arc<Endpoint>) -> Self {
        Self {
            connection: Connection::new(endpoint),
        }
    }

    /// `POST /purge-payments`. Optional for a backend: the script ignores
    /// whatever happens, and so should the caller.
    pub async fn purge(&mut self) -> Result<(), CallError> {
        const WHAT: &str = "purging payments";
        let answer = self.call(WHAT, Method::POST, "/purge-payments").await?;
        if answer.is_expected() {
            Ok(())
        } else {
            Err(CallError::status(
                WHAT,
                self.target(),
                &answer,
                StatusCode::OK,
            ))
        }
    }

    /// `GET /payments-summary?from&to`, expecting 200 and
    /// `{"default":{totalRequests,totalAmount},"fallback":{...}}`.
    pub async fn summary(&mut self, window: Window) -> Result<BackendSummary, CallError> {
        const WHAT: &str = "reading the payments summary";
        let answer = self
            .call(
                WHAT,
                Method::GET,
                &summary_path("/payments-summary", window),
            )
            .await?;
        if answer.status != StatusCode::OK {
            return Err(CallError::status(
                WHAT,
                self.target(),
                &answer,
                StatusCode::OK,
            ));
        }
        read_json(WHAT, self.target(), &answer)
    }

    pub fn into_stats(self) -> HttpStats {
        self.connection.into_stats()
    }

    async fn call(
        &mut self,
        what: &'static str,
        method: Method,
        path: &str,
    ) -> Result<Exchange, CallError> {
        let request = self.connection.endpoint().request(method, path, None);
        self.connection
            .exchange(request, BodyUse::Keep, REQUEST_TIMEOUT)
            .await
            .map_err(|source| CallError::NoResponse {
                what,
                target: self.target(),
                source,
            })
    }

    fn target(&self) -> String {
        format!("backend ({})", self.connection.endpoint())
    }
}

/// `path?from=<ISO>&to=<ISO>`, timestamps as JavaScript's `toISOString()`
/// writes them (`2025-07-10T12:34:56.789Z`), unescaped as the script sends them.
fn summary_path(path: &str, window: Window) -> String {
    format!("{path}?from={}&to={}", window.from, window.to)
}

/// `value` as a JSON string literal.
fn json_string(value: &HeaderValue) -> String {
    let text = String::from_utf8_lossy(value.as_bytes());
    serde_json::to_string(&*text).expect("a string always serialises")
}

/// The instant `ago` before `now`, on the millisecond clock of the wire.
pub fn before(now: Timestamp, ago: std::time::Duration) -> Timestamp {
    now.plus_millis(-i64::try_from(ago.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rinha::scenario::{FINAL, PREVIEW};

    #[test]
    fn a_payment_body_is_what_k6_sends_in_each_script() {
        let id: CorrelationId = "4a7901b8-7d26-4d9d-aa19-4dc1c7cf60b3".parse().unwrap();
        assert_eq!(
            &payment_body(id, PREVIEW.amount_json)[..],
            br#"{"correlationId":"4a7901b8-7d26-4d9d-aa19-4dc1c7cf60b3","amount":19.9}"#
        );
        assert_eq!(
            &payment_body(id, FINAL.amount_json)[..],
            br#"{"correlationId":"4a7901b8-7d26-4d9d-aa19-4dc1c7cf60b3","amount":20.05}"#
        );
    }

    #[test]
    fn summary_windows_are_written_to_the_millisecond() {
        let to = Timestamp::from_millis(1_752_150_896_789);
        let from = before(to, std::time::Duration::from_secs(15));
        assert_eq!(
            summary_path("/payments-summary", Window { from, to }),
            "/payments-summary?from=2025-07-10T12:34:41.789Z&to=2025-07-10T12:34:56.789Z"
        );
    }

    #[test]
    fn summaries_parse_from_the_wire_shapes() {
        let p: ProcessorSummary = serde_json::from_str(
            r#"{"totalRequests":3,"totalAmount":59.7,"totalFee":2.985,"feePerTransaction":0.05}"#,
        )
        .unwrap();
        assert_eq!(p.total_requests, 3);
        assert_eq!(p.total_fee, "2.985".parse().unwrap());
        assert_eq!(p.fee_per_transaction, "0.05".parse().unwrap());

        let b: BackendSummary = serde_json::from_str(
            r#"{"default":{"totalRequests":2,"totalAmount":39.80},
                "fallback":{"totalRequests":0,"totalAmount":0},"extra":1}"#,
        )
        .unwrap();
        assert_eq!(b.default.total_requests, 2);
        assert_eq!(b.default.total_amount, "39.8".parse().unwrap());
        assert_eq!(b.fallback, Totals::default());

        assert!(serde_json::from_str::<BackendSummary>(r#"{"default":{}}"#).is_err());
    }

    #[test]
    fn tokens_are_quoted_as_json() {
        assert_eq!(json_string(&HeaderValue::from_static("123")), r#""123""#);
        assert_eq!(
            json_string(&HeaderValue::from_static(r#"a"b"#)),
            r#""a\"b""#
        );
    }
}
