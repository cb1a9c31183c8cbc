//! The HTTP client that talks to processors: payments, status queries and
//! health probes, each with a timeout, over pooled keep-alive connections.
//! In the data path it is the step between a worker's place in a lane
//! ([`crate::lanes`]) and what the answer proves ([`crate::resolution`]).
//!
//! Its job is to turn every answer (or the lack of one) into an
//! [`AttemptResult`] that says what is known about the payment: in
//! particular, a failure *after* the request may have reached the processor
//! is [`AttemptResult::Unknown`], never a failure.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use hyper_util::rt::TokioExecutor;
use reroute_core::{CorrelationId, Money, Timestamp};
use reroute_store::NewPayment;

/// What one POST /payments told us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptResult {
    /// Stored by the processor now.
    Approved,
    /// The processor already had this correlationId (422).
    AlreadyProcessed,
    /// Refused for good (a decline); nothing charged.
    Declined,
    /// This request was refused before it was processed: the connection was
    /// refused (nothing sent), or a 429 or another 4xx. Proves only that
    /// *this* send was not stored: an earlier send of the same attempt may
    /// still be.
    Refused,
    /// The processor answered a failure (a 5xx other than a gateway's): it
    /// says it did not store this request, but only a lookup proves it
    /// (a real processor, or a proxy in front of it, may have stored it).
    Failed,
    /// Maybe processed, maybe still to be: timeout, connection lost after
    /// sending, or a gateway's 502/504. This send may still land.
    Unknown,
}

/// What GET /payments/{id} told us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    Found { requested_at: Timestamp },
    NotFound,
    Unknown,
}

/// What GET /payments/service-health told us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    Health {
        failing: bool,
        min_response_ms: u64,
    },
    /// Rate limited: do not ask again before this long.
    RetryAfter(Duration),
    Unreachable,
}

/// A pooled HTTP/1.1 client shared by every worker and probe.
#[derive(Clone)]
pub struct ProcessorClient {
    http: Client<HttpConnector, Full<Bytes>>,
    timeout: Duration,
}

impl ProcessorClient {
    /// `timeout` bounds every call: connect, send and the whole answer
    /// (a payment's send is given its own bound, [`ProcessorClient::pay`]).
    pub fn new(timeout: Duration) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(timeout));
        let http = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(512)
            .build(connector);
        Self { http, timeout }
    }

    /// Sends `payment` with the given `requestedAt`, and its `paymentMethod`
    /// and `country` when it has them (omitted when `None`; the Rinha
    /// processors ignore them, TechCart's read them). `wait` bounds this
    /// call instead of the client's timeout: a processor that announced a
    /// longer delay answers later ([`crate::resolution::Landing::send_wait`]).
    pub async fn pay(
        &self,
        base_url: &str,
        payment: &NewPayment,
        requested_at: Timestamp,
        wait: Duration,
    ) -> AttemptResult {
        let body = payment_body(
            payment.id,
            payment.amount,
            requested_at,
            payment.payment_method.as_deref(),
            payment.country.as_deref(),
        );
        let request = Request::builder()
            .method(Method::POST)
            .uri(format!("{base_url}/payments"))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .expect("a request built from valid parts");
        match self.call(request, wait).await {
            Call::Answered(answer) => classify(answer.status),
            Call::NotSent => AttemptResult::Refused,
            Call::Lost => AttemptResult::Unknown,
        }
    }

    /// Asks whether the processor has this payment.
    pub async fn lookup(&self, base_url: &str, id: CorrelationId) -> Lookup {
        let request = Request::get(format!("{base_url}/payments/{id}"))
            .body(Full::new(Bytes::new()))
            .expect("a request built from valid parts");
        match self.call(request, self.timeout).await {
            Call::Answered(a) if a.status == StatusCode::NOT_FOUND => Lookup::NotFound,
            Call::Answered(a) if a.status.is_success() => {
                #[derive(serde::Deserialize)]
                struct Found {
                    #[serde(rename = "requestedAt")]
                    requested_at: Timestamp,
                }
                match serde_json::from_slice::<Found>(&a.body) {
                    Ok(found) => Lookup::Found {
                        requested_at: found.requested_at,
                    },
                    Err(_) => Lookup::Unknown,
                }
            }
            _ => Lookup::Unknown,
        }
    }

    /// One call of the health endpoint.
    pub async fn probe(&self, base_url: &str) -> Probe {
        let request = Request::get(format!("{base_url}/payments/service-health"))
            .body(Full::new(Bytes::new()))
            .expect("a request built from valid parts");
        match self.call(request, self.timeout).await {
            Call::Answered(a) if a.status == StatusCode::TOO_MANY_REQUESTS => {
                Probe::RetryAfter(a.retry_after.unwrap_or(Duration::from_secs(5)))
            }
            Call::Answered(a) if a.status.is_success() => {
                #[derive(serde::Deserialize)]
                struct Health {
                    failing: bool,
                    #[serde(rename = "minResponseTime", default)]
                    min_response_time: u64,
                }
                match serde_json::from_slice::<Health>(&a.body) {
                    Ok(h) => Probe::Health {
                        failing: h.failing,
                        min_response_ms: h.min_response_time,
                    },
                    Err(_) => Probe::Unreachable,
                }
            }
            _ => Probe::Unreachable,
        }
    }

    async fn call(&self, request: Request<Full<Bytes>>, timeout: Duration) -> Call {
        let exchange = async {
            let response = self.http.request(request).await?;
            let status = response.status();
            let retry_after = response
                .headers()
                .get(hyper::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let body = response.into_body().collect().await?.to_bytes();
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(Answer {
                status,
                body,
                retry_after,
            })
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(Ok(answer)) => Call::Answered(answer),
            Ok(Err(e)) if is_connect_error(e.as_ref()) => Call::NotSent,
            Ok(Err(_)) | Err(_) => Call::Lost,
        }
    }
}

/// The JSON of `POST /payments`. Method and country were validated at the
/// edge (letters, digits, `_`, `-`), so they need no escaping.
fn payment_body(
    id: CorrelationId,
    amount: Money,
    requested_at: Timestamp,
    payment_method: Option<&str>,
    country: Option<&str>,
) -> String {
    let mut body =
        format!(r#"{{"correlationId":"{id}","amount":{amount},"requestedAt":"{requested_at}""#);
    if let Some(method) = payment_method {
        body.push_str(&format!(r#","paymentMethod":"{method}""#));
    }
    if let Some(country) = country {
        body.push_str(&format!(r#","country":"{country}""#));
    }
    body.push('}');
    body
}

struct Answer {
    status: StatusCode,
    body: Bytes,
    retry_after: Option<Duration>,
}

enum Call {
    Answered(Answer),
    /// The connection could not be made: nothing was sent.
    NotSent,
    /// Timed out or broken after (maybe) sending.
    Lost,
}

fn is_connect_error(e: &(dyn std::error::Error + 'static)) -> bool {
    e.downcast_ref::<hyper_util::client::legacy::Error>()
        .is_some_and(|e| e.is_connect())
}

/// The meaning of a POST /payments status.
fn classify(status: StatusCode) -> AttemptResult {
    match status.as_u16() {
        200..=299 => AttemptResult::Approved,
        422 => AttemptResult::AlreadyProcessed,
        402 => AttemptResult::Declined,
        // A gateway in front of the processor may have forwarded the request.
        502 | 504 => AttemptResult::Unknown,
        // Turned away before processing: the reference's concurrency limit
        // (429) and requests the processor could not read.
        400..=499 => AttemptResult::Refused,
        _ => AttemptResult::Failed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_and_country_are_sent_only_when_known() {
        let id: CorrelationId = "4a7901b8-7d26-4d9d-aa19-4dc1c7cf60b3".parse().unwrap();
        let amount = Money::parse_exact("19.90").unwrap();
        let at: Timestamp = "2025-07-15T12:34:56.000Z".parse().unwrap();
        let bare = payment_body(id, amount, at, None, None);
        assert_eq!(
            bare,
            r#"{"correlationId":"4a7901b8-7d26-4d9d-aa19-4dc1c7cf60b3","amount":19.90,"requestedAt":"2025-07-15T12:34:56.000Z"}"#
        );
        let full = payment_body(id, amount, at, Some("pix"), Some("BR"));
        let json: serde_json::Value = serde_json::from_str(&full).unwrap();
        assert_eq!(json["paymentMethod"], "pix");
        assert_eq!(json["country"], "BR");
        let only_country = payment_body(id, amount, at, None, Some("MX"));
        let json: serde_json::Value = serde_json::from_str(&only_country).unwrap();
        assert!(json.get("paymentMethod").is_none());
        assert_eq!(json["country"], "MX");
    }

    #[test]
    fn statuses_map_to_what_is_known_of_the_payment() {
        for (status, known) in [
            (StatusCode::OK, AttemptResult::Approved),
            (StatusCode::CREATED, AttemptResult::Approved),
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                AttemptResult::AlreadyProcessed,
            ),
            (StatusCode::PAYMENT_REQUIRED, AttemptResult::Declined),
            (StatusCode::INTERNAL_SERVER_ERROR, AttemptResult::Failed),
            (StatusCode::TOO_MANY_REQUESTS, AttemptResult::Refused),
            (StatusCode::BAD_REQUEST, AttemptResult::Refused),
            (StatusCode::SERVICE_UNAVAILABLE, AttemptResult::Failed),
            (StatusCode::GATEWAY_TIMEOUT, AttemptResult::Unknown),
        ] {
            assert_eq!(classify(status), known, "{status}");
        }
    }
}
