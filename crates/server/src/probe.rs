//! Active health probes: one task per processor calls its health endpoint and
//! feeds the answer to the breakers.
//!
//! The processors allow one call per window (5 s) and answer 429 beyond it.
//! The next call is scheduled a full interval after the previous *answer*, so
//! two calls can never land in the same window, and a 429's `Retry-After` is
//! honoured as a floor.

use std::sync::Arc;
use std::time::Duration;

use reroute_core::{Signal, Timestamp};
use tokio_util::sync::CancellationToken;

use crate::app::Shared;
use crate::processor::Probe;

pub async fn run(shared: Arc<Shared>, index: usize, interval: Duration, cancel: CancellationToken) {
    let processor = &shared.registry.by_fee()[index];
    let Some(url) = processor.url.clone() else {
        return;
    };
    loop {
        let probe = shared.client.probe(&url).await;
        shared.metrics.probe(processor.id.as_str(), &probe);
        let wait = match probe {
            Probe::Health {
                failing,
                min_response_ms,
            } => {
                let signal = if failing {
                    Signal::ProbeFailing
                } else {
                    Signal::ProbeHealthy
                };
                tracing::debug!(processor = %processor.id, failing, min_response_ms, "probe");
                shared.breakers.observe(index, signal, Timestamp::now());
                interval
            }
            Probe::RetryAfter(after) => {
                tracing::debug!(processor = %processor.id, ?after, "probe rate limited");
                interval.max(after)
            }
            // Says nothing either way: attempts are the passive signal.
            Probe::Unreachable => interval,
        };
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}
