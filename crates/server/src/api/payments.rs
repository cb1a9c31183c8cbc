//! Surface 1, the Rinha-compatible payments API: `POST /payments`,
//! `GET /payments-summary`, `POST /purge-payments`.
//!
//! A payment is parsed into domain types here, once; it is answered 2xx only
//! after [`reroute_store::Store::accept`] has made it durable, and then
//! queued ([`crate::queue`]) for a [`crate::worker`] to pay. The body's
//! reading and the admin token are [`super::request`]'s.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use reroute_core::{CorrelationId, Money, Timestamp, Window};
use reroute_store::{Acceptance, NewPayment, PaymentRecord, StoreError};
use serde_json::value::RawValue;
use tracing::Instrument;

use super::accepts::accept_and_queue;
use super::error::{ApiError, ErrorBody};
use super::openapi::errors;
use super::request::{self, presented_token, read_configured_body, require_json, require_token};
use crate::state::Shared;

// The body as sent, fields still raw so that each problem can be named.
/// A payment to accept.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[schema(as = PaymentRequest)]
pub(crate) struct PaymentBody<'a> {
    /// The client's id for the payment; a repeat with the same amount is a
    /// duplicate, with another amount a conflict.
    #[serde(rename = "correlationId", borrow, default)]
    #[schema(value_type = String, format = "uuid", required)]
    correlation_id: Option<&'a RawValue>,
    /// Greater than zero, at most 1,000,000,000.00, exact to the cent (at
    /// most two decimals).
    #[serde(borrow, default)]
    #[schema(value_type = f64, required, example = 19.9, exclusive_minimum = 0, maximum = 1_000_000_000)]
    amount: Option<&'a RawValue>,
    /// 1-32 letters, digits, `_` or `-`; limits the processors that may take it.
    #[serde(rename = "paymentMethod", default)]
    #[schema(example = "pix", pattern = "^[A-Za-z0-9_-]{1,32}$")]
    payment_method: Option<String>,
    /// ISO 3166-1 alpha-2.
    #[serde(default)]
    #[schema(example = "BR", pattern = "^[A-Za-z]{2}$")]
    country: Option<String>,
}

/// Parses and validates a payment request body.
pub fn parse_payment(body: &[u8], now: Timestamp) -> Result<NewPayment, ApiError> {
    // serde would also read a struct from a JSON array, positionally.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::Invalid {
            field: None,
            message: "body must be a JSON object".into(),
        });
    }
    let raw: PaymentBody<'_> = serde_json::from_slice(body).map_err(|e| ApiError::Invalid {
        field: None,
        message: format!("body must be a JSON object: {e}"),
    })?;
    let id_text = raw
        .correlation_id
        .ok_or_else(|| ApiError::invalid("correlationId", "correlationId is required"))?;
    // Borrowed when the string has no escapes (the usual case), decoded
    // into a new one when it has (`"\u0034a79..."` is the same id).
    let id = serde_json::from_str::<&str>(id_text.get())
        .map(Cow::Borrowed)
        .or_else(|_| serde_json::from_str::<String>(id_text.get()).map(Cow::Owned))
        .ok()
        .and_then(|s| s.parse::<CorrelationId>().ok())
        .ok_or_else(|| ApiError::invalid("correlationId", "correlationId must be a UUID string"))?;
    let amount_text = raw
        .amount
        .ok_or_else(|| ApiError::invalid("amount", "amount is required"))?;
    let amount = request::amount(amount_text.get(), "19.90")?;
    let payment_method =
        optional_code(raw.payment_method, "paymentMethod")?.map(|m| m.to_ascii_lowercase());
    let country = optional_code(raw.country, "country")?.map(|c| c.to_ascii_uppercase());
    if country
        .as_ref()
        .is_some_and(|c| c.len() != 2 || !c.bytes().all(|b| b.is_ascii_alphabetic()))
    {
        return Err(ApiError::invalid(
            "country",
            "country must be an ISO 3166-1 alpha-2 code, e.g. BR",
        ));
    }
    Ok(NewPayment {
        id,
        amount,
        payment_method,
        country,
        accepted_at: now,
    })
}

fn optional_code(value: Option<String>, field: &'static str) -> Result<Option<String>, ApiError> {
    match value {
        None => Ok(None),
        Some(v)
            if !v.is_empty()
                && v.len() <= 32
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') =>
        {
            Ok(Some(v))
        }
        Some(_) => Err(ApiError::invalid(
            field,
            format!("{field} must be 1-32 letters, digits, '_' or '-'"),
        )),
    }
}

/// `POST /payments`: accepts a payment durably; a worker pays it later.
#[utoipa::path(
    post,
    path = "/payments",
    operation_id = "create_payment",
    tag = "payments",
    request_body(content = PaymentBody, content_type = "application/json"),
    responses(
        errors::RateLimited,
        (status = 202, description = "Accepted: stored durably, to be paid.", body = PaymentReceipt),
        (status = 200, description = "A duplicate of an accepted payment (same id and amount).", body = PaymentReceipt),
        (status = 400, description = "The body is not a valid payment; `field` names the culprit.", body = ErrorBody),
        (status = 409, description = "The correlationId was accepted with another amount.", body = ErrorBody),
        errors::BodyRefused,
        (status = 415, description = "Content-Type is not application/json.", body = ErrorBody),
        (status = 422, description = "No configured processor takes this method in this country.", body = ErrorBody),
        (status = 503, description = "The store did not confirm the payment: its outcome is unknown (`\"outcome\": \"unknown\"`), it may or may not have been stored, and if it was it will be charged. Retrying with the same correlationId and amount is safe (`\"retrySafe\": true`): the retry answers 200 `duplicate` if it was stored, 202 if not.", body = ErrorBody),
    )
)]
pub async fn create(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    require_json(&headers)?;
    let body = read_configured_body(body, &shared.config).await?;
    let payment = parse_payment(&body, Timestamp::now())?;
    routable(&shared, &payment)?;
    let id = payment.id;
    let span = tracing::debug_span!("payment", correlation_id = %id);
    // In a task of its own: a client that hangs up while the store commits
    // drops this handler, and a payment the store took must reach the
    // queue all the same (else it waits, pending, for the next restart,
    // while a retry is told "duplicate").
    let accepted = tokio::spawn(accept_and_queue(Arc::clone(&shared), payment))
        .instrument(span.clone())
        .await
        .map_err(|e| StoreError::Unavailable(format!("accepting the payment failed: {e}")))
        .and_then(|accepted| accepted);
    span.in_scope(|| tracing::debug!(?accepted, "payment received"));
    let (status, body) = receipt(&shared, id, accepted)?;
    Ok((status, [(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// Whether a processor of the registry takes this payment: a 422 if none.
pub(crate) fn routable(shared: &Shared, payment: &NewPayment) -> Result<(), ApiError> {
    let method = payment.payment_method.as_deref();
    if !crate::routing::takes(shared, method, payment.country.as_deref()) {
        let what = format!(
            "paymentMethod {} in country {}",
            payment.payment_method.as_deref().unwrap_or("(any)"),
            payment.country.as_deref().unwrap_or("(any)")
        );
        return Err(ApiError::Unroutable(what));
    }
    Ok(())
}

/// The answer to a payment the store was asked to accept: its status and
/// JSON body, as `POST /payments` and the edge protocol both send them.
/// Whatever went wrong, the write may have reached the store: the answer
/// then says the outcome is unknown (a retry of the same id tells).
pub(crate) fn receipt(
    shared: &Shared,
    id: CorrelationId,
    accepted: Result<Acceptance, StoreError>,
) -> Result<(StatusCode, String), ApiError> {
    match accepted.map_err(ApiError::AcceptUnconfirmed)? {
        Acceptance::New => Ok((StatusCode::ACCEPTED, receipt_body(id, "accepted"))),
        Acceptance::Duplicate => {
            shared.metrics.accepted("duplicate");
            Ok((StatusCode::OK, receipt_body(id, "duplicate")))
        }
        Acceptance::Conflict { existing } => Err(ApiError::Conflict {
            existing: existing.to_string(),
        }),
    }
}

/// The answer to `POST /payments`, as [`receipt_body`] writes it by hand (the hot
/// path skips a serializer); described here for the API document.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub(crate) struct PaymentReceipt {
    #[schema(rename = "correlationId", format = "uuid")]
    correlation_id: String,
    /// `accepted` or `duplicate`.
    #[schema(example = "accepted")]
    status: String,
}

pub(crate) fn receipt_body(id: CorrelationId, what: &str) -> String {
    format!(r#"{{"correlationId":"{id}","status":"{what}"}}"#)
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SummaryQuery {
    /// Start of the window (inclusive), ISO-8601 UTC, e.g. 2025-07-10T12:34:56.000Z.
    #[param(format = DateTime)]
    from: Option<String>,
    /// End of the window (inclusive), ISO-8601 UTC.
    #[param(format = DateTime)]
    to: Option<String>,
}

/// One processor's paid payments in the window.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct SummaryLine {
    #[serde(rename = "totalRequests")]
    total_requests: u64,
    #[serde(rename = "totalAmount")]
    #[schema(value_type = super::openapi::wire::Money)]
    total_amount: Money,
}

fn bound(value: Option<&str>, field: &'static str) -> Result<Option<Timestamp>, ApiError> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => text.parse().map(Some).map_err(|_| {
            ApiError::invalid(
                field,
                format!("{field} must be an ISO-8601 UTC timestamp, e.g. 2025-07-10T12:34:56.000Z"),
            )
        }),
    }
}

/// How long a summary waits for the outcomes in its window that processors
/// have answered and the store has not committed yet
/// ([`crate::recording`]); past it, it answers with what is committed.
pub const SUMMARY_SETTLE: std::time::Duration = std::time::Duration::from_secs(2);

/// `GET /payments-summary`: the ledger's totals per processor (every
/// processor of the registry, keyed by id, e.g. `default` and `fallback`),
/// once the outcomes in the window that processors had answered when it
/// arrived are committed. On a store shared by several instances it reads
/// `--summary-settle-ms` after it arrived and counts only the outcomes
/// answered by then, whichever instance got them.
#[utoipa::path(
    get,
    path = "/payments-summary",
    operation_id = "payments_summary",
    tag = "payments",
    params(SummaryQuery),
    responses(
        errors::RateLimited,
        (status = 200, description = "Totals keyed by processor id.", body = BTreeMap<String, SummaryLine>),
        (status = 400, description = "`from` or `to` is not a timestamp.", body = ErrorBody),
        errors::StoreUnavailable,
    )
)]
pub async fn summary(
    State(shared): State<Arc<Shared>>,
    query: Result<Query<SummaryQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query?;
    let (from, to) = (
        bound(query.from.as_deref(), "from")?,
        bound(query.to.as_deref(), "to")?,
    );
    let window = Window::new(from, to);
    let (asked, asked_instant) = (Timestamp::now(), tokio::time::Instant::now());
    // A payment its processor had answered when the summary arrived is in
    // the processor's books already: wait for its outcome's commit.
    if !shared.recording.settled(window, SUMMARY_SETTLE).await {
        tracing::warn!(
            waited_ms = SUMMARY_SETTLE.as_millis() as u64,
            "summary answered while outcomes in its window are still being recorded"
        );
    }
    if !shared.store.exclusive() {
        // Other instances record outcomes this one cannot see: give them
        // the settle to commit what they had been answered.
        shared
            .recording
            .hold_until(asked_instant + shared.config.summary_settle)
            .await;
    }
    // Nothing answered after the summary was asked counts, even if it was
    // committed while the summary waited: the processors, asked at the same
    // moment, did not have it.
    let totals = shared.store.summary_answered_by(window, asked).await?;
    let mut lines: BTreeMap<&str, SummaryLine> = shared
        .registry
        .by_fee()
        .iter()
        .map(|p| {
            (
                p.id.as_str(),
                SummaryLine {
                    total_requests: 0,
                    total_amount: Money::ZERO,
                },
            )
        })
        .collect();
    for t in &totals {
        if let Some(line) = lines.get_mut(t.processor.as_str()) {
            line.total_requests += t.requests;
            line.total_amount = line.total_amount.checked_add(t.amount).ok_or_else(|| {
                ApiError::invalid(
                    "from",
                    "the totals of this window overflow; ask for a shorter one",
                )
            })?;
        }
    }
    Ok(axum::Json(lines).into_response())
}

/// One payment as the router holds it (`GET /payments/{id}`).
#[derive(serde::Serialize, serde::Deserialize, utoipa::ToSchema, Debug, Clone, PartialEq)]
pub struct PaymentView {
    #[serde(rename = "correlationId")]
    #[schema(value_type = String, format = "uuid")]
    pub correlation_id: CorrelationId,
    #[schema(value_type = super::openapi::wire::Money)]
    pub amount: Money,
    /// `pending` (accepted, outcome not yet known), `processed` (charged:
    /// in the ledger), `declined` (refused by the processor; nothing
    /// charged) or `duplicate` (recorded by an earlier version that ran
    /// instances with stores of their own: another instance recorded it).
    pub state: String,
    #[serde(rename = "acceptedAt")]
    #[schema(value_type = String, format = DateTime)]
    pub accepted_at: Timestamp,
    /// The processor of the outcome, or of the open attempt while pending.
    pub processor: Option<String>,
    /// The `requestedAt` sent to that processor.
    #[serde(rename = "requestedAt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub requested_at: Option<Timestamp>,
    /// The instance whose store holds this record (`--instance`).
    pub instance: String,
}

impl PaymentView {
    fn of(record: PaymentRecord, instance: &str) -> Self {
        let (processor, requested_at) = record
            .attempt
            .map_or((None, None), |a| (Some(a.processor), Some(a.requested_at)));
        Self {
            correlation_id: record.payment.id,
            amount: record.payment.amount,
            state: record.state.as_str().to_owned(),
            accepted_at: record.payment.accepted_at,
            processor,
            requested_at,
            instance: instance.to_owned(),
        }
    }
}

/// `GET /payments/{id}`: where one payment stands.
#[utoipa::path(
    get,
    path = "/payments/{id}",
    operation_id = "find_payment",
    tag = "payments",
    params(("id" = String, Path, description = "The payment's correlationId (a UUID).")),
    responses(
        errors::RateLimited,
        (status = 200, description = "The payment.", body = PaymentView),
        (status = 400, description = "`id` is not a UUID.", body = ErrorBody),
        (status = 404, description = "No such payment was accepted.", body = ErrorBody),
        errors::StoreUnavailable,
    )
)]
pub async fn find(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id: CorrelationId = id
        .parse()
        .map_err(|_| ApiError::invalid("id", "id must be a UUID"))?;
    let record = shared.store.find(id).await?.ok_or(ApiError::NotFound)?;
    Ok(axum::Json(PaymentView::of(record, &shared.config.instance)).into_response())
}

/// `POST /purge-payments`: empties the ledger and the queue. Needs the admin
/// token when one is configured. Sends already in flight go on, and what
/// they charge is recorded after the purge, as the processors' books have
/// it (RELIABILITY.md, "The ledger agrees with the processors' books").
#[utoipa::path(
    post,
    path = "/purge-payments",
    operation_id = "purge_payments",
    tag = "payments",
    security((), ("bearer" = []), ("rinha_token" = [])),
    responses(
        (status = 200, description = "Purged.", body = Message),
        errors::TokenMissing,
        errors::StoreUnavailable,
    )
)]
pub async fn purge(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require_token(
        shared.config.admin_token.as_deref(),
        presented_token(&headers),
    )?;
    // The table first: an edge's accept published meanwhile is of the old
    // generation, which the core no longer stores; one stored before is
    // purged with the store.
    if let Some(table) = &shared.accepts {
        table.purge().map_err(|e| {
            StoreError::Unavailable(format!("putting the accept table's purge on disk: {e}"))
        })?;
    }
    shared.store.purge().await?;
    let dropped = shared.queue.clear();
    tracing::warn!(dropped, "ledger and queue purged");
    Ok(axum::Json(Message {
        message: "All payments purged.",
    })
    .into_response())
}

/// A one-line confirmation.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct Message {
    #[schema(example = "All payments purged.")]
    message: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "4a7901b8-7d26-4d9d-aa19-4dc1c7cf60b3";

    fn field_of(body: &str) -> Option<&'static str> {
        match parse_payment(body.as_bytes(), Timestamp::from_millis(0)) {
            Err(ApiError::Invalid { field, .. }) => field,
            other => panic!("{body}: expected an invalid-field error, got {other:?}"),
        }
    }

    #[test]
    fn a_valid_payment_parses_into_domain_types() {
        let body = format!(
            r#"{{"correlationId":"{ID}","amount":19.90,"paymentMethod":"PIX","country":"br"}}"#
        );
        let p = parse_payment(body.as_bytes(), Timestamp::from_millis(7)).unwrap();
        assert_eq!(p.id.to_string(), ID);
        assert_eq!(p.amount, Money::from_minor(1990));
        assert_eq!(p.payment_method.as_deref(), Some("pix"));
        assert_eq!(p.country.as_deref(), Some("BR"));
        assert_eq!(p.accepted_at, Timestamp::from_millis(7));
    }

    #[test]
    fn each_bad_input_names_its_field() {
        let cases = [
            (r#"{"amount":19.90}"#.to_owned(), Some("correlationId")),
            (
                r#"{"correlationId":"nope","amount":19.90}"#.to_owned(),
                Some("correlationId"),
            ),
            (
                r#"{"correlationId":42,"amount":19.90}"#.to_owned(),
                Some("correlationId"),
            ),
            (format!(r#"{{"correlationId":"{ID}"}}"#), Some("amount")),
            (
                format!(r#"{{"correlationId":"{ID}","amount":0}}"#),
                Some("amount"),
            ),
            (
                format!(r#"{{"correlationId":"{ID}","amount":-1}}"#),
                Some("amount"),
            ),
            (
                format!(r#"{{"correlationId":"{ID}","amount":"19.90"}}"#),
                Some("amount"),
            ),
            (
                format!(r#"{{"correlationId":"{ID}","amount":19.999}}"#),
                Some("amount"),
            ),
            (
                format!(r#"{{"correlationId":"{ID}","amount":1e12}}"#),
                Some("amount"),
            ),
            (
                format!(r#"{{"correlationId":"{ID}","amount":null}}"#),
                Some("amount"),
            ),
            (
                format!(r#"{{"correlationId":"{ID}","amount":1,"country":"Brazil"}}"#),
                Some("country"),
            ),
            (
                format!(r#"{{"correlationId":"{ID}","amount":1,"paymentMethod":"a b"}}"#),
                Some("paymentMethod"),
            ),
            ("{not json".to_owned(), None),
            ("[]".to_owned(), None),
        ];
        for (body, want) in cases {
            assert_eq!(field_of(&body), want, "{body}");
        }
    }
}
