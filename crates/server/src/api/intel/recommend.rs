//! `/api/v1/routing/recommend`: the processors ranked for a payment method
//! and country by fee and health, the health engine's recommendation as the
//! seed's JSON; the dashboard shows the same ranking.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use reroute_core::health::{Ranked, Scope};
use reroute_core::{Status, Timestamp};
use serde::Serialize;
use serde_json::value::RawValue;

use super::json::rate;
use super::parse::{amount, country, method, object, raw_amount, required, text};
use crate::api::error::{ApiError, ErrorBody};
use crate::api::openapi::{errors, wire};
use crate::api::request::read_configured_body;
use crate::state::Shared;

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
        errors::RateLimited,
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
        errors::RateLimited,
        (status = 200, description = "The processors that take the method in the country, ranked.", body = RecommendationJson),
        (status = 400, description = "A field is missing or malformed; `field` names it.", body = ErrorBody),
        errors::BodyRefused,
    )
)]
pub async fn recommend_body(
    State(shared): State<Arc<Shared>>,
    body: Body,
) -> Result<Response, ApiError> {
    let body = read_configured_body(body, &shared.config).await?;
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
