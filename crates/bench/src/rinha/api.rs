//! The backend's side of the calls the official script makes (purge,
//! summary, payment body); the processors' side is
//! [`crate::processors::ProcessorAdmin`].
//!
//! Every call goes through the caller's own [`Connection`], so its duration
//! lands in that user's statistics: the p99 of the score covers every request
//! the test made, admin calls included, as k6's `http_req_duration` does.

use std::sync::Arc;

use anyhow::Context;
use bytes::Bytes;
use hyper::header::HeaderValue;
use hyper::{Method, StatusCode};
use reroute_core::{CorrelationId, Timestamp, Window};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::scenario::REQUEST_TIMEOUT;
use crate::http::{BodyUse, Connection, Endpoint, HttpStats};
use crate::processors::{ProcessorAdmin, summary_path};

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

/// The three services of a run and the processors' admin token.
pub struct Services {
    pub backend: Arc<Endpoint>,
    pub default: Arc<Endpoint>,
    pub fallback: Arc<Endpoint>,
    pub token: HeaderValue,
}

impl Services {
    /// Both processors' admin APIs, on connections of a user of their own.
    pub fn processors(&self) -> (ProcessorAdmin, ProcessorAdmin) {
        let admin = |id, endpoint: &Arc<Endpoint>| {
            ProcessorAdmin::new(id, endpoint.clone(), &self.token, REQUEST_TIMEOUT)
        };
        (
            admin("default", &self.default),
            admin("fallback", &self.fallback),
        )
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
    pub async fn purge(&mut self) -> anyhow::Result<()> {
        let endpoint = self.connection.endpoint();
        let request = endpoint.request(Method::POST, "/purge-payments", None);
        let answer = self
            .connection
            .exchange(request, BodyUse::Discard, REQUEST_TIMEOUT)
            .await
            .context("purging the backend's payments")?;
        anyhow::ensure!(
            answer.is_expected(),
            "purging the backend's payments: HTTP {}",
            answer.status
        );
        Ok(())
    }

    /// `GET /payments-summary?from&to`, expecting 200 and
    /// `{"default":{totalRequests,totalAmount},"fallback":{...}}`.
    pub async fn summary(&mut self, window: Window) -> anyhow::Result<BackendSummary> {
        let path = summary_path("/payments-summary", window);
        let request = self.connection.endpoint().request(Method::GET, &path, None);
        let ok = Some(StatusCode::OK);
        let body = self.connection.call(request, ok, REQUEST_TIMEOUT).await?;
        serde_json::from_slice(&body).context("reading the backend's summary")
    }

    pub fn into_stats(self) -> HttpStats {
        self.connection.into_stats()
    }
}

/// A summary the script could not read counts as zeros, as in the script;
/// the reason becomes a warning of `stage` (setup, audit, teardown).
pub fn zeros_on_error<T: Default>(
    read: anyhow::Result<T>,
    stage: &str,
    warnings: &mut Vec<String>,
) -> T {
    read.unwrap_or_else(|e| {
        warnings.push(format!("{stage}: {e:#}; counted as zeros"));
        T::default()
    })
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
    fn backend_summaries_parse_from_the_wire_shape() {
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
}
