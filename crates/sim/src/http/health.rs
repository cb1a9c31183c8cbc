//! `GET /payments/service-health`: the failure flag and the delay, behind
//! the fixed-window limit (see [`crate::health_limit`]).

use std::sync::Arc;

use axum::extract::State;
use hyper::StatusCode;
use hyper::header::{HeaderValue, RETRY_AFTER};
use serde::Serialize;

use super::reply::{self, Reply};
use crate::health_limit::Admission;
use crate::processor::Processor;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Health {
    failing: bool,
    min_response_time: i64,
}

pub async fn check(State(processor): State<Arc<Processor>>) -> Reply {
    processor.stats.health_calls.add();
    // An injected storm refuses before the limiter, taking no permit.
    if processor
        .settings()
        .faults
        .throttles_health(&mut rand::rng())
    {
        processor.stats.health_storm_refused.add();
        return too_many(&processor);
    }
    let admission = processor.health().admit(processor.started().elapsed());
    let window = match admission {
        Admission::Rejected => {
            processor.stats.health_throttled.add();
            return too_many(&processor);
        }
        Admission::Now { window } => window,
        Admission::Queued { window, at } => {
            let mut place = Place {
                processor: &processor,
                window: Some(window),
            };
            tokio::time::sleep_until(processor.started() + at).await;
            place.window = None;
            window
        }
    };
    let answered = processor.health().record_answer(window);
    processor.stats.note_health_max(answered);
    processor.stats.health_answered.add();
    let settings = processor.settings();
    reply::json(
        StatusCode::OK,
        &Health {
            failing: settings.failure,
            min_response_time: settings.delay_ms,
        },
    )
}

/// 429 with `Retry-After`: the window in whole seconds, as the reference
/// sends it.
fn too_many(processor: &Processor) -> Reply {
    let retry_after = processor.health().retry_after_secs();
    let mut reply = reply::text(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many health checks. Try again later.",
    );
    reply
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(retry_after));
    reply
}

/// A queued caller's reservation, given back if the caller goes away.
struct Place<'a> {
    processor: &'a Processor,
    window: Option<u64>,
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        if let Some(window) = self.window {
            self.processor.health().cancel(window);
        }
    }
}
