//! `POST /api/v1/transactions`: an outcome reported by a client, parsed
//! and checked against the registry, then fed to the health engine like a
//! worker's own outcome; the answer carries the statuses after it and the
//! alerts it raised.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use reroute_core::health::{Outcome, Transaction};
use reroute_core::{Money, Processor, Status, Timestamp};
use serde::Serialize;
use serde_json::value::RawValue;

use super::json::AlertJson;
use super::parse::{country, method, object, processor_index, raw_amount, required, text};
use crate::api::error::{ApiError, ErrorBody};
use crate::api::openapi::{errors, wire};
use crate::api::request::read_configured_body;
use crate::state::Shared;

// As sent, fields kept raw so that each problem can be named.
/// One transaction outcome to record.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[schema(as = TransactionRequest)]
pub(crate) struct TransactionBody<'a> {
    /// A processor of the registry (see `GET /api/v1/processors`).
    #[serde(borrow, default)]
    #[schema(value_type = String, required, example = "stripe_latam")]
    processor_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    #[schema(value_type = wire::Outcome, required)]
    result: Option<&'a RawValue>,
    /// 1-32 letters, digits, `_` or `-`; the processor must take it.
    #[serde(borrow, default)]
    #[schema(value_type = Option<String>, example = "PIX", pattern = "^[A-Za-z0-9_-]{1,32}$")]
    payment_method: Option<&'a RawValue>,
    /// ISO 3166-1 alpha-2; the processor must operate there.
    #[serde(borrow, default)]
    #[schema(value_type = Option<String>, example = "BR", pattern = "^[A-Za-z]{2}$")]
    country: Option<&'a RawValue>,
    #[serde(borrow, default)]
    #[schema(value_type = Option<wire::Money>)]
    amount: Option<&'a RawValue>,
    /// ISO 4217.
    #[serde(borrow, default)]
    #[schema(value_type = Option<String>, example = "BRL", pattern = "^[A-Za-z]{3}$")]
    currency: Option<&'a RawValue>,
    #[serde(borrow, default)]
    #[schema(value_type = Option<u32>)]
    latency_ms: Option<&'a RawValue>,
    /// When it happened; now if absent.
    #[serde(borrow, default)]
    #[schema(value_type = Option<wire::Timestamp>)]
    timestamp: Option<&'a RawValue>,
}

/// A transaction report, parsed and checked against the registry.
struct Report {
    processor: usize,
    outcome: Outcome,
    payment_method: Option<String>,
    country: Option<String>,
    amount: Option<Money>,
    currency: Option<String>,
    latency_ms: Option<u32>,
    at: Option<Timestamp>,
}

fn parse_report(shared: &Shared, body: &[u8]) -> Result<Report, ApiError> {
    let raw: TransactionBody<'_> = object(body)?;
    let id = required(text(raw.processor_id, "processor_id")?, "processor_id")?;
    let result = required(text(raw.result, "result")?, "result")?;
    let outcome: Outcome = result.parse().map_err(|_| {
        ApiError::invalid(
            "result",
            "result must be one of approved, declined, error, timeout",
        )
    })?;
    let payment_method = text(raw.payment_method, "payment_method")?
        .map(method)
        .transpose()?;
    let country = text(raw.country, "country")?.map(country).transpose()?;
    let amount = raw_amount(raw.amount)?;
    let currency = text(raw.currency, "currency")?
        .map(|c| {
            if c.len() == 3 && c.bytes().all(|b| b.is_ascii_alphabetic()) {
                Ok(c.to_ascii_uppercase())
            } else {
                Err(ApiError::invalid(
                    "currency",
                    "currency must be an ISO 4217 code, e.g. BRL",
                ))
            }
        })
        .transpose()?;
    let latency_ms = match raw.latency_ms {
        None => None,
        Some(r) if r.get() == "null" => None,
        Some(r) => Some(serde_json::from_str::<u32>(r.get()).map_err(|_| {
            ApiError::invalid(
                "latency_ms",
                "latency_ms must be a whole number of milliseconds",
            )
        })?),
    };
    let at = text(raw.timestamp, "timestamp")?
        .map(|t| {
            t.parse::<Timestamp>().map_err(|_| {
                ApiError::invalid(
                    "timestamp",
                    "timestamp must be an ISO-8601 / RFC 3339 date-time, e.g. 2024-02-20T12:30:00Z",
                )
            })
        })
        .transpose()?;
    // The processor last: a malformed body is a 400 whatever it names.
    let processor = processor_index(shared, &id, Some("processor_id"))?;
    let p: &Processor = &shared.registry.by_fee()[processor];
    if let Some(m) = &payment_method
        && !p.supports(Some(m), None)
    {
        return Err(ApiError::invalid(
            "payment_method",
            format!("processor {} does not take payment_method {m}", p.id),
        ));
    }
    if let Some(c) = &country
        && !p.supports(None, Some(c))
    {
        return Err(ApiError::invalid(
            "country",
            format!("processor {} does not operate in country {c}", p.id),
        ));
    }
    Ok(Report {
        processor,
        outcome,
        payment_method,
        country,
        amount,
        currency,
        latency_ms,
        at,
    })
}

/// The answer to `POST /api/v1/transactions`.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = TransactionRecorded)]
struct RecordedJson<'a> {
    #[schema(example = "Transaction recorded")]
    message: &'static str,
    processor_id: &'a str,
    #[schema(value_type = wire::Outcome)]
    result: Outcome,
    payment_method: Option<&'a str>,
    country: Option<&'a str>,
    #[schema(value_type = wire::Timestamp)]
    timestamp: Timestamp,
    /// The processor's status after this outcome.
    #[schema(value_type = wire::Status)]
    status: Status,
    /// The segment's status after it, when the transaction named one.
    #[schema(value_type = Option<wire::Status>)]
    segment_status: Option<Status>,
    alerts: Vec<AlertJson<'a>>,
}

/// `POST /api/v1/transactions`: records one outcome. 201 with the statuses
/// after it and any alert it raised.
#[utoipa::path(
    post,
    path = "/api/v1/transactions",
    operation_id = "record_transaction",
    tag = "intelligence",
    request_body(content = TransactionBody, content_type = "application/json"),
    responses(
        errors::RateLimited,
        (status = 201, description = "Recorded.", body = RecordedJson),
        (status = 400, description = "The body is not a valid transaction; `field` names the culprit.", body = ErrorBody),
        (status = 404, description = "`processor_id` is not in the registry.", body = ErrorBody),
        errors::BodyRefused,
    )
)]
pub async fn record(State(shared): State<Arc<Shared>>, body: Body) -> Result<Response, ApiError> {
    let body = read_configured_body(body, &shared.config).await?;
    let report = parse_report(&shared, &body)?;
    let now = Timestamp::now();
    let at = report.at.unwrap_or(now);
    let tx = Transaction {
        payment_method: report.payment_method.as_deref(),
        country: report.country.as_deref(),
        outcome: report.outcome,
        latency_ms: report.latency_ms,
        amount: report.amount,
        currency: report.currency.as_deref(),
        at,
    };
    let recorded = shared.health.record(report.processor, &tx, now);
    shared.raise(&recorded.alerts);
    if recorded.opened {
        shared.health_opened.notify_waiters();
    }
    let answer = RecordedJson {
        message: "Transaction recorded",
        processor_id: shared.registry.by_fee()[report.processor].id.as_str(),
        result: report.outcome,
        payment_method: tx.payment_method,
        country: tx.country,
        timestamp: at,
        status: recorded.status,
        segment_status: recorded.segment_status,
        alerts: recorded.alerts.iter().map(Into::into).collect(),
    };
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}
