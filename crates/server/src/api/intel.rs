//! Surface 2, the failover-intelligence API (the TechCart contract):
//! record transaction outcomes, read processor health and alerts, and get
//! ranked routing recommendations for a payment method and country.
//!
//! Requests are parsed into domain values here (an [`Outcome`], an upper-case
//! method and country the processor supports, [`Money`], [`Timestamp`]); the
//! [`reroute_core::HealthEngine`] does the rest. Field names, status words and
//! reasons are the seed's; fields beyond the seed's are additions, never
//! renames. The contract is documented in `docs/intelligence.md`.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use reroute_core::health::{
    Alert, Counts, HealthReport, Latency, Outcome, Ranked, Scope, Transaction, TransactionRecord,
};
use reroute_core::{Money, MoneyError, Processor, Status, Timestamp};
use serde::Serialize;
use serde_json::value::RawValue;

use super::error::{ApiError, ErrorBody};
use super::openapi::wire;
use super::request::read_body;
use crate::alerts;
use crate::config::{is_country, is_method};
use crate::state::Shared;

// ---------------------------------------------------------------- parsing

/// Reads a JSON object whose fields are kept raw, so that each problem can
/// be named.
fn object<'a, T: serde::Deserialize<'a>>(body: &'a [u8]) -> Result<T, ApiError> {
    let not_object = |detail: String| ApiError::Invalid {
        field: None,
        message: format!("body must be a JSON object{detail}"),
    };
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(not_object(String::new()));
    }
    serde_json::from_slice(body).map_err(|e| not_object(format!(": {e}")))
}

/// A JSON string field; `null` counts as absent.
fn text(raw: Option<&RawValue>, field: &'static str) -> Result<Option<String>, ApiError> {
    match raw {
        None => Ok(None),
        Some(raw) if raw.get() == "null" => Ok(None),
        Some(raw) => serde_json::from_str::<String>(raw.get())
            .map(Some)
            .map_err(|_| ApiError::invalid(field, format!("{field} must be a string"))),
    }
}

fn required(value: Option<String>, field: &'static str) -> Result<String, ApiError> {
    value
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| ApiError::invalid(field, format!("{field} is required")))
}

pub(crate) fn method(value: String) -> Result<String, ApiError> {
    if is_method(&value) {
        Ok(value.to_ascii_uppercase())
    } else {
        Err(ApiError::invalid(
            "payment_method",
            "payment_method must be 1-32 letters, digits, '_' or '-', e.g. PIX",
        ))
    }
}

pub(crate) fn country(value: String) -> Result<String, ApiError> {
    if is_country(&value) {
        Ok(value.to_ascii_uppercase())
    } else {
        Err(ApiError::invalid(
            "country",
            "country must be an ISO 3166-1 alpha-2 code, e.g. BR",
        ))
    }
}

/// A positive amount, exact to the cent, from a JSON number's text.
fn amount(text: &str) -> Result<Money, ApiError> {
    let amount = Money::parse_exact(text).map_err(|e| {
        let message = match e {
            MoneyError::NotANumber => "amount must be a JSON number, e.g. 150.00".to_owned(),
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

fn raw_amount(raw: Option<&RawValue>) -> Result<Option<Money>, ApiError> {
    match raw {
        None => Ok(None),
        Some(raw) if raw.get() == "null" => Ok(None),
        Some(raw) => amount(raw.get()).map(Some),
    }
}

fn processor_index(
    shared: &Shared,
    id: &str,
    field: Option<&'static str>,
) -> Result<usize, ApiError> {
    shared
        .registry
        .index_of(id)
        .ok_or_else(|| ApiError::UnknownProcessor {
            id: id.to_owned(),
            field,
        })
}

// ---------------------------------------------------------------- JSON out

/// A rate for the wire: 4 decimals; no data is 0 (see `total_transactions`).
fn rate(value: Option<f64>) -> f64 {
    (value.unwrap_or(0.0) * 10_000.0).round() / 10_000.0
}

/// Latency percentiles in milliseconds.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Latency)]
struct LatencyJson {
    p50: u32,
    p95: u32,
    p99: u32,
}

impl From<Latency> for LatencyJson {
    fn from(l: Latency) -> Self {
        Self {
            p50: l.p50,
            p95: l.p95,
            p99: l.p99,
        }
    }
}

/// The seed's health fields plus error rate, timeouts, latency and the time
/// of the last transition. `error_count` is errors + timeouts (the seed's
/// technical failures); `timeout_count` says how many of them were timeouts.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Health)]
struct HealthJson {
    #[schema(value_type = wire::Status)]
    status: Status,
    authorization_rate: f64,
    error_rate: f64,
    total_transactions: u32,
    success_count: u32,
    failure_count: u32,
    error_count: u32,
    timeout_count: u32,
    latency_ms: Option<LatencyJson>,
    /// When the status last changed; `null` if it never has.
    #[schema(value_type = Option<wire::Timestamp>)]
    status_since: Option<Timestamp>,
}

impl From<&HealthReport> for HealthJson {
    fn from(h: &HealthReport) -> Self {
        let c: &Counts = &h.counts;
        Self {
            status: h.status,
            authorization_rate: rate(c.authorization_rate()),
            error_rate: rate(c.error_rate()),
            total_transactions: c.total(),
            success_count: c.approved,
            failure_count: c.declined,
            error_count: c.failures(),
            timeout_count: c.timeouts,
            latency_ms: h.latency.map(Into::into),
            status_since: h.since,
        }
    }
}

/// The health of one (method, country) segment of a processor.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = SegmentHealth)]
struct SegmentJson {
    payment_method: Option<String>,
    country: Option<String>,
    #[serde(flatten)]
    health: HealthJson,
}

/// A processor's health as a whole, and per segment.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = ProcessorHealth)]
pub(crate) struct ProcessorHealthJson<'a> {
    processor_id: &'a str,
    name: &'a str,
    #[serde(flatten)]
    health: HealthJson,
    segments: Vec<SegmentJson>,
}

pub(crate) fn processor_health<'a>(
    shared: &'a Shared,
    index: usize,
    now: Timestamp,
) -> ProcessorHealthJson<'a> {
    let processor = &shared.registry.by_fee()[index];
    let report = shared.health.report(index, now);
    ProcessorHealthJson {
        processor_id: processor.id.as_str(),
        name: &processor.name,
        health: (&report.health).into(),
        segments: report
            .segments
            .iter()
            .map(|s| SegmentJson {
                payment_method: s.key.payment_method.clone(),
                country: s.key.country.clone(),
                health: (&s.health).into(),
            })
            .collect(),
    }
}

/// A health transition or anomaly.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Alert)]
pub(crate) struct AlertJson<'a> {
    id: u64,
    processor_id: &'a str,
    #[schema(value_type = wire::Status)]
    from_status: Status,
    #[schema(value_type = wire::Status)]
    to_status: Status,
    #[schema(value_type = wire::Timestamp)]
    timestamp: Timestamp,
    reason: &'a str,
    /// `transition`, `anomaly` (a rate or the latency left the processor's
    /// own baseline, or the latency returned to it) or `flapping`.
    #[serde(rename = "type")]
    #[schema(example = "transition")]
    kind: &'static str,
    /// `processor` or `segment`; a segment alert names its method and country.
    #[schema(example = "processor")]
    scope: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    payment_method: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    country: Option<&'a str>,
    authorization_rate: f64,
    error_rate: f64,
    total_transactions: u32,
}

impl<'a> From<&'a Alert> for AlertJson<'a> {
    fn from(a: &'a Alert) -> Self {
        let segment = a.segment.as_ref();
        Self {
            id: a.id,
            processor_id: a.processor.as_str(),
            from_status: a.from,
            to_status: a.to,
            timestamp: a.at,
            reason: &a.reason,
            kind: alerts::kind_name(a.kind),
            scope: if segment.is_some() {
                "segment"
            } else {
                "processor"
            },
            payment_method: segment.and_then(|s| s.payment_method.as_deref()),
            country: segment.and_then(|s| s.country.as_deref()),
            authorization_rate: rate(a.authorization_rate),
            error_rate: rate(a.error_rate),
            total_transactions: a.transactions,
        }
    }
}

// ---------------------------------------------------------------- handlers

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
        (status = 429, description = "Over this client's rate limit (only when one is configured); `Retry-After` says when to ask again.", body = ErrorBody),
        (status = 201, description = "Recorded.", body = RecordedJson),
        (status = 400, description = "The body is not a valid transaction; `field` names the culprit.", body = ErrorBody),
        (status = 404, description = "`processor_id` is not in the registry.", body = ErrorBody),
        (status = 408, description = "The body did not arrive whole within the body read timeout (30 s); the connection is closed.", body = ErrorBody),
        (status = 413, description = "The body is larger than the configured limit.", body = ErrorBody),
    )
)]
pub async fn record(State(shared): State<Arc<Shared>>, body: Body) -> Result<Response, ApiError> {
    let body = read_body(
        body,
        shared.config.max_body_bytes,
        shared.config.body_read_timeout,
    )
    .await?;
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

/// The answer to `GET /api/v1/health`.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = HealthList)]
struct HealthListJson<'a> {
    processors: Vec<ProcessorHealthJson<'a>>,
    count: usize,
    #[schema(value_type = wire::Timestamp)]
    timestamp: Timestamp,
}

/// `GET /api/v1/health`: every processor, cheapest first.
#[utoipa::path(
    get,
    path = "/api/v1/health",
    operation_id = "list_health",
    tag = "intelligence",
    responses(
        (status = 200, description = "Every processor's health, cheapest first.", body = HealthListJson),
        (status = 429, description = "Over this client's rate limit (only when one is configured); `Retry-After` says when to ask again.", body = ErrorBody),
    )
)]
pub async fn health(State(shared): State<Arc<Shared>>) -> Response {
    let now = Timestamp::now();
    let processors: Vec<_> = (0..shared.registry.len())
        .map(|i| processor_health(&shared, i, now))
        .collect();
    Json(HealthListJson {
        count: processors.len(),
        processors,
        timestamp: now,
    })
    .into_response()
}

/// How many recent transactions `GET /api/v1/health/{id}` lists at most.
const HISTORY: usize = 50;

/// A recorded transaction, as `GET /api/v1/health/{processor_id}` lists it.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = TransactionRecord)]
struct TransactionJson<'a> {
    #[schema(value_type = wire::Outcome)]
    result: Outcome,
    payment_method: Option<&'a str>,
    country: Option<&'a str>,
    #[schema(value_type = Option<wire::Money>)]
    amount: Option<Money>,
    currency: Option<&'a str>,
    latency_ms: Option<u32>,
    #[schema(value_type = wire::Timestamp)]
    timestamp: Timestamp,
}

impl<'a> From<&'a TransactionRecord> for TransactionJson<'a> {
    fn from(t: &'a TransactionRecord) -> Self {
        Self {
            result: t.outcome,
            payment_method: t.payment_method.as_deref(),
            country: t.country.as_deref(),
            amount: t.amount,
            currency: t.currency.as_deref(),
            latency_ms: t.latency_ms,
            timestamp: t.at,
        }
    }
}

/// The answer to `GET /api/v1/health/{processor_id}`.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = ProcessorDetail)]
struct ProcessorDetailJson<'a> {
    #[serde(flatten)]
    health: ProcessorHealthJson<'a>,
    /// Newest first, at most 50.
    recent_transactions: Vec<TransactionJson<'a>>,
    #[schema(value_type = wire::Timestamp)]
    timestamp: Timestamp,
}

/// `GET /api/v1/health/{processorId}`: one processor's health, its segments
/// and its recent transactions (newest first).
#[utoipa::path(
    get,
    path = "/api/v1/health/{processor_id}",
    operation_id = "processor_health",
    tag = "intelligence",
    params(("processor_id" = String, Path, description = "A processor of the registry.")),
    responses(
        (status = 429, description = "Over this client's rate limit (only when one is configured); `Retry-After` says when to ask again.", body = ErrorBody),
        (status = 200, description = "The processor's health, segments and recent transactions.", body = ProcessorDetailJson),
        (status = 404, description = "The processor is not in the registry.", body = ErrorBody),
    )
)]
pub async fn processor(
    State(shared): State<Arc<Shared>>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    // A segment that does not decode to UTF-8 names no processor either:
    // the same 404, in the error shape, as any other unknown id.
    let id = id.map_or_else(|_| "(not UTF-8)".to_owned(), |Path(id)| id);
    let index = processor_index(&shared, &id, None)?;
    let now = Timestamp::now();
    let recent = shared.health.recent(index, HISTORY);
    let answer = ProcessorDetailJson {
        health: processor_health(&shared, index, now),
        recent_transactions: recent.iter().map(Into::into).collect(),
        timestamp: now,
    };
    Ok(Json(answer).into_response())
}

/// The parameters of a recommendation, as sent (query or body).
#[derive(serde::Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RecommendQuery {
    /// 1-32 letters, digits, `_` or `-`, e.g. PIX.
    #[param(required = true, pattern = "^[A-Za-z0-9_-]{1,32}$")]
    payment_method: Option<String>,
    /// ISO 3166-1 alpha-2, e.g. BR.
    #[param(required = true, pattern = "^[A-Za-z]{2}$")]
    country: Option<String>,
    /// Checked when given (positive, exact to the cent); it does not change the ranking.
    amount: Option<String>,
}

/// What to recommend a processor for.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[schema(as = RecommendRequest)]
pub(crate) struct RecommendBody<'a> {
    #[serde(borrow, default)]
    #[schema(value_type = String, required, example = "PIX", pattern = "^[A-Za-z0-9_-]{1,32}$")]
    payment_method: Option<&'a RawValue>,
    #[serde(borrow, default)]
    #[schema(value_type = String, required, example = "BR", pattern = "^[A-Za-z]{2}$")]
    country: Option<&'a RawValue>,
    /// Checked when given; it does not change the ranking.
    #[serde(borrow, default)]
    #[schema(value_type = Option<wire::Money>)]
    amount: Option<&'a RawValue>,
}

/// `GET /api/v1/routing/recommend?payment_method=PIX&country=BR`.
#[utoipa::path(
    get,
    path = "/api/v1/routing/recommend",
    operation_id = "recommend",
    tag = "intelligence",
    params(RecommendQuery),
    responses(
        (status = 429, description = "Over this client's rate limit (only when one is configured); `Retry-After` says when to ask again.", body = ErrorBody),
        (status = 200, description = "The processors that take the method in the country, ranked.", body = RecommendationJson),
        (status = 400, description = "A parameter is missing or malformed; `field` names it.", body = ErrorBody),
    )
)]
pub async fn recommend_query(
    State(shared): State<Arc<Shared>>,
    query: Result<Query<RecommendQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query?;
    let method = method(required(q.payment_method, "payment_method")?)?;
    let country = country(required(q.country, "country")?)?;
    if let Some(a) = q.amount.filter(|a| !a.trim().is_empty()) {
        amount(a.trim())?;
    }
    Ok(recommend(&shared, &method, &country))
}

/// `POST /api/v1/routing/recommend` with `{"payment_method", "country", "amount"}`.
#[utoipa::path(
    post,
    path = "/api/v1/routing/recommend",
    operation_id = "recommend_for_body",
    tag = "intelligence",
    request_body(content = RecommendBody, content_type = "application/json"),
    responses(
        (status = 429, description = "Over this client's rate limit (only when one is configured); `Retry-After` says when to ask again.", body = ErrorBody),
        (status = 200, description = "The processors that take the method in the country, ranked.", body = RecommendationJson),
        (status = 400, description = "A field is missing or malformed; `field` names it.", body = ErrorBody),
        (status = 408, description = "The body did not arrive whole within the body read timeout (30 s); the connection is closed.", body = ErrorBody),
        (status = 413, description = "The body is larger than the configured limit.", body = ErrorBody),
    )
)]
pub async fn recommend_body(
    State(shared): State<Arc<Shared>>,
    body: Body,
) -> Result<Response, ApiError> {
    let body = read_body(
        body,
        shared.config.max_body_bytes,
        shared.config.body_read_timeout,
    )
    .await?;
    let raw: RecommendBody<'_> = object(&body)?;
    let method = method(required(
        text(raw.payment_method, "payment_method")?,
        "payment_method",
    )?)?;
    let country = country(required(text(raw.country, "country")?, "country")?)?;
    raw_amount(raw.amount)?;
    Ok(recommend(&shared, &method, &country))
}

fn recommend(shared: &Shared, method: &str, country: &str) -> Response {
    Json(recommendation(shared, method, country, Timestamp::now())).into_response()
}

/// One ranked processor.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = RecommendationLine)]
struct RecommendationLine<'a> {
    processor_id: &'a str,
    name: &'a str,
    rank: u32,
    #[schema(value_type = wire::Status)]
    status: Status,
    authorization_rate: f64,
    error_rate: f64,
    total_transactions: u32,
    score: f64,
    /// Whose health was used: `segment` (enough data) or `processor`.
    #[schema(value_type = wire::Scope)]
    health_scope: Scope,
    fee: f64,
    recommended: bool,
    reason: String,
}

/// The answer of `/api/v1/routing/recommend`; the dashboard sends the same.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Recommendation)]
pub(crate) struct RecommendationJson<'a> {
    recommendations: Vec<RecommendationLine<'a>>,
    payment_method: &'a str,
    country: &'a str,
    count: usize,
    /// The recommended processor's id, if any.
    recommended: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    warning: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    #[schema(value_type = wire::Timestamp)]
    timestamp: Timestamp,
}

/// Ranks the processors for `method` (upper case) in `country` (upper case).
pub(crate) fn recommendation<'a>(
    shared: &'a Shared,
    method: &'a str,
    country: &'a str,
    now: Timestamp,
) -> RecommendationJson<'a> {
    let recommendation = shared.health.recommend(method, country, now);
    let line = |r: &Ranked| {
        let p = &shared.registry.by_fee()[r.candidate.processor];
        RecommendationLine {
            processor_id: p.id.as_str(),
            name: &p.name,
            rank: r.rank,
            status: r.candidate.status,
            authorization_rate: rate(r.candidate.authorization_rate),
            error_rate: rate(r.candidate.error_rate),
            total_transactions: r.candidate.transactions,
            score: (r.score * 100.0).round() / 100.0,
            health_scope: r.candidate.scope,
            fee: p.fee.as_fraction(),
            recommended: r.recommended,
            reason: r.reason.to_string(),
        }
    };
    let lines: Vec<RecommendationLine<'_>> = recommendation.ranked.iter().map(line).collect();
    let warning = recommendation.all_down().then(|| {
        format!(
            "All processors supporting {method} in {country} are DOWN - no processor is recommended"
        )
    });
    let message = lines
        .is_empty()
        .then(|| format!("No processor supports {method} in {country}"));
    RecommendationJson {
        count: lines.len(),
        recommended: lines.iter().find(|l| l.recommended).map(|l| l.processor_id),
        recommendations: lines,
        payment_method: method,
        country,
        warning,
        message,
        timestamp: now,
    }
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AlertsQuery {
    /// Only alerts at or after this instant (ISO-8601 / RFC 3339).
    #[param(format = DateTime)]
    since: Option<String>,
}

/// The answer to `GET /api/v1/alerts`.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = AlertList)]
struct AlertListJson<'a> {
    alerts: Vec<AlertJson<'a>>,
    count: usize,
}

/// `GET /api/v1/alerts?since=ISO`: alerts at or after `since` (all kept
/// alerts without it), oldest first.
#[utoipa::path(
    get,
    path = "/api/v1/alerts",
    operation_id = "list_alerts",
    tag = "intelligence",
    params(AlertsQuery),
    responses(
        (status = 429, description = "Over this client's rate limit (only when one is configured); `Retry-After` says when to ask again.", body = ErrorBody),
        (status = 200, description = "Alerts, oldest first.", body = AlertListJson),
        (status = 400, description = "`since` is not a timestamp.", body = ErrorBody),
    )
)]
pub async fn alerts(
    State(shared): State<Arc<Shared>>,
    query: Result<Query<AlertsQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query?;
    let since = match q.since.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) => Some(text.parse::<Timestamp>().map_err(|_| {
            ApiError::invalid(
                "since",
                "since must be an ISO-8601 / RFC 3339 date-time, e.g. 2024-02-20T12:00:00Z",
            )
        })?),
    };
    let alerts = shared.health.alerts_since(since);
    let alerts: Vec<AlertJson<'_>> = alerts.iter().map(Into::into).collect();
    Ok(Json(AlertListJson {
        count: alerts.len(),
        alerts,
    })
    .into_response())
}

/// A processor of the registry.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = ProcessorEntry)]
struct ProcessorLineJson<'a> {
    processor_id: &'a str,
    name: &'a str,
    /// Where it operates; empty means anywhere.
    countries: &'a [String],
    /// What it takes; empty means anything.
    payment_methods: &'a [String],
    /// Its fee as a fraction of the amount.
    fee: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<&'a str>,
    /// Whether reroute executes payments there (it has a URL) or only
    /// advises about it.
    executes_payments: bool,
    #[schema(value_type = wire::Status)]
    status: Status,
}

/// The answer to `GET /api/v1/processors`.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = ProcessorList)]
struct ProcessorListJson<'a> {
    processors: Vec<ProcessorLineJson<'a>>,
    count: usize,
}

/// `GET /api/v1/processors`: the registry, cheapest first, with each
/// processor's current status.
#[utoipa::path(
    get,
    path = "/api/v1/processors",
    operation_id = "list_processors",
    tag = "intelligence",
    responses(
        (status = 200, description = "The registry, cheapest first.", body = ProcessorListJson),
        (status = 429, description = "Over this client's rate limit (only when one is configured); `Retry-After` says when to ask again.", body = ErrorBody),
    )
)]
pub async fn processors(State(shared): State<Arc<Shared>>) -> Response {
    let processors: Vec<_> = shared
        .registry
        .by_fee()
        .iter()
        .enumerate()
        .map(|(i, p)| ProcessorLineJson {
            processor_id: p.id.as_str(),
            name: &p.name,
            countries: &p.countries,
            payment_methods: &p.payment_methods,
            fee: p.fee.as_fraction(),
            url: p.url.as_deref(),
            executes_payments: p.url.is_some(),
            status: shared.health.status(i),
        })
        .collect();
    Json(ProcessorListJson {
        count: processors.len(),
        processors,
    })
    .into_response()
}
