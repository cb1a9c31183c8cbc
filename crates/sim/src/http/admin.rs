//! `/admin/*`: the reference's administration endpoints and the simulator's
//! extensions (faults, schedule, the books in full, counters).
//!
//! Every one of them needs `X-Rinha-Token` equal to the processor's current
//! token, else 401 with an empty body, as the reference answers: that is
//! [`require_token`], which [`super::routes`] puts in front of them all.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{RawQuery, Request, State};
use axum::middleware::Next;
use hyper::StatusCode;
use reroute_core::{Money, Window};
use serde::{Deserialize, Serialize};

use super::query;
use super::reply::{self, Refusal, Reply};
use crate::faults::{Faults, FaultsError, ScheduleState, ScheduleStep};
use crate::fee::{ExactDecimal, FeeRate};
use crate::processor::Processor;

type Admin = State<Arc<Processor>>;

/// In front of every `/admin/*` route and of the 404s under `/admin`.
pub async fn require_token(State(processor): Admin, request: Request, next: Next) -> Reply {
    let token = request.headers().get("x-rinha-token").map(|v| v.as_bytes());
    if !processor.token_matches(token) {
        return reply::empty(StatusCode::UNAUTHORIZED);
    }
    next.run(request).await
}

pub async fn not_found() -> Reply {
    reply::empty(StatusCode::NOT_FOUND)
}

pub async fn purge(State(processor): Admin) -> Reply {
    processor.purge();
    reply::json_static(StatusCode::OK, r#"{"message":"All payments purged."}"#)
}

pub async fn payments(
    State(processor): Admin,
    RawQuery(query): RawQuery,
) -> Result<Reply, Refusal> {
    let window = query::window(query.as_deref())?;
    Ok(reply::json(StatusCode::OK, &processor.payments(window)))
}

pub async fn stats(State(processor): Admin) -> Reply {
    reply::json(StatusCode::OK, &processor.stats())
}

pub async fn reset_stats(State(processor): Admin) -> Reply {
    processor.reset_stats();
    reply::empty(StatusCode::NO_CONTENT)
}

/// The reference's summary, field for field (its record's order).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Summary {
    total_amount: Money,
    total_requests: u64,
    total_fee: ExactDecimal,
    fee_per_transaction: FeeRate,
}

pub async fn summary(State(processor): Admin, RawQuery(query): RawQuery) -> Result<Reply, Refusal> {
    let window: Window = query::window(query.as_deref())?;
    let totals = processor.totals(window);
    let fee = processor.spec().fee;
    Ok(reply::json(
        StatusCode::OK,
        &Summary {
            total_amount: totals.amount,
            total_requests: totals.requests,
            total_fee: fee.fee_on(totals.amount),
            fee_per_transaction: fee,
        },
    ))
}

/// `{"config": "delay", "was": 0, "is": 100}`, as the reference answers.
#[derive(Serialize)]
struct Changed<T> {
    config: &'static str,
    was: T,
    is: T,
}

fn changed<T: Serialize>(config: &'static str, was: T, is: T) -> Reply {
    reply::json(StatusCode::OK, &Changed { config, was, is })
}

#[derive(Deserialize)]
struct TokenBody {
    token: String,
}

pub async fn set_token(State(processor): Admin, body: Body) -> Result<Reply, Refusal> {
    let TokenBody { token } = reply::read_json(body).await?;
    processor.set_token(token);
    Ok(reply::empty(StatusCode::NO_CONTENT))
}

#[derive(Deserialize)]
struct DelayBody {
    delay: i64,
}

pub async fn set_delay(State(processor): Admin, body: Body) -> Result<Reply, Refusal> {
    let DelayBody { delay } = reply::read_json(body).await?;
    let was = processor.set_delay(delay);
    Ok(changed("delay", was, delay))
}

#[derive(Deserialize)]
struct FailureBody {
    failure: bool,
}

pub async fn set_failure(State(processor): Admin, body: Body) -> Result<Reply, Refusal> {
    let FailureBody { failure } = reply::read_json(body).await?;
    let was = processor.set_failure(failure);
    Ok(changed("failure", was, failure))
}

#[derive(Serialize)]
struct FaultsView {
    delay: i64,
    failure: bool,
    faults: Faults,
    schedule: ScheduleState,
}

pub async fn faults(State(processor): Admin) -> Reply {
    let schedule = processor.schedule();
    let settings = processor.settings();
    reply::json(
        StatusCode::OK,
        &FaultsView {
            delay: settings.delay_ms,
            failure: settings.failure,
            faults: settings.faults,
            schedule,
        },
    )
}

pub async fn set_faults(State(processor): Admin, body: Body) -> Result<Reply, Refusal> {
    let faults: Faults = reply::read_json(body).await?;
    let was = processor.set_faults(faults).map_err(|e| {
        let field = match &e {
            FaultsError::RateOutOfRange { field, .. } => Some(*field),
            FaultsError::RatesExceedOne(_) => None,
        };
        Refusal::bad_request(e.to_string(), field)
    })?;
    Ok(changed("faults", was, faults))
}

/// `{"steps": [...]}` or the bare list.
#[derive(Deserialize)]
#[serde(untagged)]
enum ScheduleBody {
    Wrapped { steps: Vec<ScheduleStep> },
    Bare(Vec<ScheduleStep>),
}

pub async fn set_schedule(State(processor): Admin, body: Body) -> Result<Reply, Refusal> {
    let (ScheduleBody::Wrapped { steps } | ScheduleBody::Bare(steps)) =
        reply::read_json(body).await?;
    processor
        .set_schedule(steps)
        .map_err(|e| Refusal::bad_request(e.to_string(), Some("steps")))?;
    Ok(reply::json(StatusCode::OK, &processor.schedule()))
}
