//! `POST /payments` and `GET /payments/{id}`.
//!
//! The order of a payment's life is the reference's, and it matters to the
//! router: concurrency limit, read and parse, wait (delay + injected latency),
//! then failure flag, faults and the books. Once a payment has been read its
//! conclusion runs in its own task, so a client that gives up during the
//! delay does not stop the payment from being stored when the delay ends: a
//! timeout is an unknown outcome, not a failure.

use std::borrow::Cow;
use std::sync::Arc;

use axum::Extension;
use axum::body::Body as RequestBody;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use hyper::StatusCode;
use reroute_core::{CorrelationId, Money, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio::time::Instant;

use super::connection::Connection;
use super::reply::{self, Refusal, Reply};
use crate::book::Payment;
use crate::processor::{Outcome, PaymentRequest, Processor};

/// The concurrency limiter's 429 body, also given by an injected throttle.
const TOO_MANY: &str = "Too many payments in flight. Try again later.";

pub async fn create(
    State(processor): State<Arc<Processor>>,
    Extension(connection): Extension<Arc<Connection>>,
    body: RequestBody,
) -> Reply {
    processor.stats.payments_received.add();
    let Some(in_flight) = processor.concurrency.enter().await else {
        processor.stats.payments_throttled.add();
        return reply::text(StatusCode::TOO_MANY_REQUESTS, TOO_MANY);
    };
    let parsed = match reply::read_body(body).await {
        Ok(body) => parse(&body),
        Err(refusal) => Err(refusal),
    };
    let payment = match parsed {
        Ok(payment) => payment,
        Err(refusal) => {
            processor.stats.payments_invalid.add();
            return refusal.into_response();
        }
    };

    let plan = processor.plan(Instant::now());
    let conclude = {
        let processor = processor.clone();
        async move {
            if !plan.wait.is_zero() {
                tokio::time::sleep(plan.wait).await;
            }
            let outcome = processor.conclude(&payment, plan.fate, Instant::now());
            (outcome, payment.payment.correlation_id, in_flight)
        }
    };
    // With no wait there is no await point between here and the books, so
    // nothing can interrupt it; with a wait, a task of its own carries on
    // even if this handler is dropped because the client went away.
    let (outcome, id, in_flight) = if plan.wait.is_zero() {
        conclude.await
    } else {
        match tokio::spawn(conclude).await {
            Ok(done) => done,
            Err(_) => return reply::empty(StatusCode::INTERNAL_SERVER_ERROR),
        }
    };

    match outcome {
        Outcome::Stored => reply::json_static(
            StatusCode::OK,
            r#"{"message":"payment processed successfully"}"#,
        ),
        Outcome::Duplicate => {
            let message =
                format!("Payment could not be processed. CorrelationId already exists: {id}.");
            reply::json(
                StatusCode::UNPROCESSABLE_ENTITY,
                &Message { message: &message },
            )
        }
        Outcome::Failed => reply::empty(StatusCode::INTERNAL_SERVER_ERROR),
        // Word for word the limiter's refusal: a client cannot tell them apart.
        Outcome::Throttled => reply::text(StatusCode::TOO_MANY_REQUESTS, TOO_MANY),
        Outcome::Declined(reason) => reply::json(
            StatusCode::PAYMENT_REQUIRED,
            &Declined {
                declined: true,
                reason: reason.code(),
                message: "payment declined",
                correlation_id: id,
            },
        ),
        Outcome::Hang => {
            // Hold the request (and its place in flight) until the client
            // gives up and hyper drops this future.
            let _held = in_flight;
            std::future::pending().await
        }
        Outcome::Reset => {
            let _held = in_flight;
            connection.reset();
            std::future::pending().await
        }
    }
}

pub async fn lookup(State(processor): State<Arc<Processor>>, Path(id): Path<String>) -> Reply {
    processor.stats.payments_looked_up.add();
    let Ok(id) = id.parse::<CorrelationId>() else {
        return reply::error(StatusCode::BAD_REQUEST, "id must be a UUID", Some("id"));
    };
    match processor.payment(&id) {
        Some(payment) => reply::json(StatusCode::OK, &payment),
        None => reply::empty(StatusCode::NOT_FOUND),
    }
}

#[derive(Serialize)]
struct Message<'a> {
    message: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Declined {
    declined: bool,
    reason: &'static str,
    message: &'static str,
    correlation_id: CorrelationId,
}

/// The body as sent: each field kept raw so that an error names its field.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    #[serde(borrow)]
    correlation_id: Option<&'a RawValue>,
    #[serde(borrow)]
    amount: Option<&'a RawValue>,
    #[serde(borrow)]
    requested_at: Option<&'a RawValue>,
    payment_method: Option<String>,
    country: Option<String>,
}

fn parse(body: &[u8]) -> Result<PaymentRequest, Refusal> {
    let body: Body = serde_json::from_slice(body)
        .map_err(|_| Refusal::bad_request("body must be a JSON object", None))?;
    fn required<'a>(
        raw: Option<&'a RawValue>,
        field: &'static str,
    ) -> Result<&'a RawValue, Refusal> {
        raw.ok_or_else(|| Refusal::bad_request(format!("{field} is required"), Some(field)))
    }

    let correlation_id = required(body.correlation_id, "correlationId")?;
    let correlation_id: CorrelationId = serde_json::from_str(correlation_id.get())
        .map_err(|_| Refusal::bad_request("correlationId must be a UUID", Some("correlationId")))?;
    let amount = required(body.amount, "amount")?;
    // Rounded to cents, as the processor keeps two decimals.
    let amount = Money::parse_rounded(&shorten_decimal(amount.get()))
        .map_err(|e| Refusal::bad_request(e.to_string(), Some("amount")))?;
    let requested_at = required(body.requested_at, "requestedAt")?;
    let requested_at: Timestamp = serde_json::from_str(requested_at.get()).map_err(|_| {
        Refusal::bad_request(
            "requestedAt must be an ISO-8601 timestamp such as 2025-07-15T12:34:56.000Z",
            Some("requestedAt"),
        )
    })?;

    Ok(PaymentRequest {
        payment: Payment {
            correlation_id,
            amount,
            requested_at,
        },
        payment_method: body.payment_method,
        country: body.country,
    })
}

/// Clients sometimes send a float's full expansion
/// (`77.8299999999999982946974341757595539093017578125`), more digits than
/// [`Money`]'s parser holds. Past the 20th decimal, digits cannot change a
/// rounding to cents except by being non-zero, so they are kept as one
/// sticky `1`: the rounding (half to even included) is unchanged.
fn shorten_decimal(text: &str) -> Cow<'_, str> {
    const KEPT: usize = 20;
    let Some((int, frac)) = text.split_once('.') else {
        return Cow::Borrowed(text);
    };
    if frac.len() <= KEPT || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Cow::Borrowed(text);
    }
    let (kept, dropped) = frac.split_at(KEPT);
    let sticky = if dropped.bytes().any(|b| b != b'0') {
        "1"
    } else {
        ""
    };
    Cow::Owned(format!("{int}.{kept}{sticky}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rinha_payment_parses_with_its_amount_rounded() {
        let p = parse(
            br#"{"correlationId":"4a7901b8-7d26-4d9d-aa19-4dc1c7cf60b3","amount":19.905,"requestedAt":"2025-07-15T12:34:56.000Z"}"#,
        )
        .unwrap();
        assert_eq!(p.payment.amount, Money::from_minor(1990));
        assert_eq!(
            p.payment.requested_at.to_string(),
            "2025-07-15T12:34:56.000Z"
        );
        assert_eq!(p.payment_method, None);
    }

    #[test]
    fn long_expansions_round_as_their_exact_value_would() {
        let round = |text: &str| {
            Money::parse_rounded(&shorten_decimal(text))
                .unwrap()
                .minor()
        };
        assert_eq!(
            round("77.8299999999999982946974341757595539093017578125"),
            7783
        );
        assert_eq!(round("0.005000000000000000000000000000000000000000001"), 1);
        assert_eq!(round("0.005000000000000000000000000000000000000000000"), 0);
        assert_eq!(round("0.015000000000000000000000000000000000000000000"), 2);
        assert_eq!(round("19.90"), 1990);
    }

    #[test]
    fn each_bad_field_is_named() {
        let cases = [
            (
                r#"{"amount":1,"requestedAt":"2025-07-15T12:34:56Z"}"#,
                "correlationId",
            ),
            (
                r#"{"correlationId":"x","amount":1,"requestedAt":"2025-07-15T12:34:56Z"}"#,
                "correlationId",
            ),
            (
                r#"{"correlationId":"4a7901b8-7d26-4d9d-aa19-4dc1c7cf60b3","amount":"1","requestedAt":"2025-07-15T12:34:56Z"}"#,
                "amount",
            ),
            (
                r#"{"correlationId":"4a7901b8-7d26-4d9d-aa19-4dc1c7cf60b3","amount":1}"#,
                "requestedAt",
            ),
            (
                r#"{"correlationId":"4a7901b8-7d26-4d9d-aa19-4dc1c7cf60b3","amount":1,"requestedAt":"soon"}"#,
                "requestedAt",
            ),
        ];
        for (body, field) in cases {
            let refusal = parse(body.as_bytes()).unwrap_err();
            assert_eq!(refusal.status, StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(refusal.field, Some(field), "{body}");
        }
        assert_eq!(
            parse(b"not json").unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
    }
}
