//! Reading health: `GET /api/v1/health` (every processor),
//! `GET /api/v1/health/{processor_id}` (one, with its segments and recent
//! transactions), `GET /api/v1/alerts` and `GET /api/v1/processors` (the
//! registry): what the health engine made of the outcomes.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use reroute_core::health::{Outcome, TransactionRecord};
use reroute_core::{Money, Status, Timestamp};
use serde::Serialize;

use super::json::{AlertJson, ProcessorHealthJson, processor_health};
use super::parse::processor_index;
use crate::api::error::{ApiError, ErrorBody};
use crate::api::openapi::{errors, wire};
use crate::state::Shared;

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
        errors::RateLimited,
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
        errors::RateLimited,
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

/// The filter of `GET /api/v1/alerts`.
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
        errors::RateLimited,
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
        errors::RateLimited,
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
