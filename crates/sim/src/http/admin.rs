//! `/admin/*`: the reference's administration endpoints and the simulator's
//! extensions (faults, schedule, the books in full, counters).
//!
//! Every one of them needs `X-Rinha-Token` equal to the processor's current
//! token, else 401 with an empty body, as the reference answers.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use reroute_core::{Money, Window};
use serde::{Deserialize, Serialize};

use super::query;
use super::reply::{self, Refusal, Reply};
use crate::faults::{Faults, FaultsError, ScheduleState, ScheduleStep};
use crate::fee::{ExactDecimal, FeeRate};
use crate::processor::Processor;

pub async fn handle(processor: Arc<Processor>, request: Request<Incoming>) -> Reply {
    let token = request.headers().get("x-rinha-token").map(|v| v.as_bytes());
    if !processor.token_matches(token) {
        return reply::empty(StatusCode::UNAUTHORIZED);
    }
    route(&processor, request).await.unwrap_or_else(Reply::from)
}

async fn route(processor: &Processor, request: Request<Incoming>) -> Result<Reply, Refusal> {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().map(str::to_owned);
    let body = move || reply::read_body(request.into_body());

    Ok(match (method, path.as_str()) {
        (Method::GET, "/admin/payments-summary") => {
            summary(processor, query::window(query.as_deref())?)
        }
        (Method::PUT, "/admin/configurations/token") => {
            set_token(processor, reply::parse_json(&body().await?)?)
        }
        (Method::PUT, "/admin/configurations/delay") => {
            set_delay(processor, reply::parse_json(&body().await?)?)
        }
        (Method::PUT, "/admin/configurations/failure") => {
            set_failure(processor, reply::parse_json(&body().await?)?)
        }
        (Method::POST, "/admin/purge-payments") => {
            processor.purge();
            reply::json_static(StatusCode::OK, r#"{"message":"All payments purged."}"#)
        }
        // Extensions.
        (Method::GET, "/admin/faults") => faults(processor),
        (Method::PUT, "/admin/faults") => {
            set_faults(processor, reply::parse_json(&body().await?)?)?
        }
        (Method::PUT, "/admin/faults/schedule") => {
            set_schedule(processor, reply::parse_json(&body().await?)?)?
        }
        (Method::GET, "/admin/payments") => reply::json(
            StatusCode::OK,
            &processor.payments(query::window(query.as_deref())?),
        ),
        (Method::GET, "/admin/stats") => reply::json(StatusCode::OK, &processor.stats()),
        (Method::POST, "/admin/stats/reset") => {
            processor.reset_stats();
            reply::empty(StatusCode::NO_CONTENT)
        }
        _ => reply::empty(StatusCode::NOT_FOUND),
    })
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

fn summary(processor: &Processor, window: Window) -> Reply {
    let totals = processor.totals(window);
    let fee = processor.spec().fee;
    reply::json(
        StatusCode::OK,
        &Summary {
            total_amount: totals.amount,
            total_requests: totals.requests,
            total_fee: fee.fee_on(totals.amount),
            fee_per_transaction: fee,
        },
    )
}

/// `{"config": "delay", "was": 0, "is": 100}`, as the reference answers.
#[derive(Serialize)]
struct Changed<T> {
    config: &'static str,
    was: T,
    is: T,
}

#[derive(Deserialize)]
struct TokenBody {
    token: String,
}

fn set_token(processor: &Processor, body: TokenBody) -> Reply {
    processor.set_token(body.token);
    reply::empty(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct DelayBody {
    delay: i64,
}

fn set_delay(processor: &Processor, DelayBody { delay }: DelayBody) -> Reply {
    let was = processor.set_delay(delay);
    reply::json(
        StatusCode::OK,
        &Changed {
            config: "delay",
            was,
            is: delay,
        },
    )
}

#[derive(Deserialize)]
struct FailureBody {
    failure: bool,
}

fn set_failure(processor: &Processor, FailureBody { failure }: FailureBody) -> Reply {
    let was = processor.set_failure(failure);
    reply::json(
        StatusCode::OK,
        &Changed {
            config: "failure",
            was,
            is: failure,
        },
    )
}

#[derive(Serialize)]
struct FaultsView {
    delay: i64,
    failure: bool,
    faults: Faults,
    schedule: ScheduleState,
}

fn faults(processor: &Processor) -> Reply {
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

fn set_faults(processor: &Processor, faults: Faults) -> Result<Reply, Refusal> {
    let was = processor.set_faults(faults).map_err(|e| {
        let field = match &e {
            FaultsError::RateOutOfRange { field, .. } => Some(*field),
            FaultsError::RatesExceedOne(_) => None,
        };
        Refusal::bad_request(e.to_string(), field)
    })?;
    Ok(reply::json(
        StatusCode::OK,
        &Changed {
            config: "faults",
            was,
            is: faults,
        },
    ))
}

/// `{"steps": [...]}` or the bare list.
#[derive(Deserialize)]
#[serde(untagged)]
enum ScheduleBody {
    Wrapped { steps: Vec<ScheduleStep> },
    Bare(Vec<ScheduleStep>),
}

fn set_schedule(processor: &Processor, body: ScheduleBody) -> Result<Reply, Refusal> {
    let (ScheduleBody::Wrapped { steps } | ScheduleBody::Bare(steps)) = body;
    processor
        .set_schedule(steps)
        .map_err(|e| Refusal::bad_request(e.to_string(), Some("steps")))?;
    Ok(reply::json(StatusCode::OK, &processor.schedule()))
}
