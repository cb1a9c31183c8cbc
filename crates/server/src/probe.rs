//! Active health probes: for each processor, one instance of the cluster (the
//! leader, elected through the store) calls its health endpoint and publishes
//! the answer; every instance applies published answers to its breakers.
//!
//! The processors allow one call per window (5 s) from all instances
//! together and answer 429 beyond it. So:
//! - the leader calls again only a full interval after the last *published*
//!   answer (by whichever instance), and after a 429 only once `Retry-After`
//!   has passed;
//! - leadership is held for 3/4 of an interval and renewed every quarter, so
//!   a dead leader is replaced within about one interval; a new leader first
//!   waits out what remains of the old leader's last interval (its final call
//!   may have gone unpublished).
//!
//! Every answer goes to the circuit breakers and to the health engine
//! ([`reroute_core::health::HealthEngine::health_check`]), so a processor
//! whose check fails is reported DOWN, with an alert, even when the router
//! sends it nothing.
//!
//! With the embedded store there is one instance and it always leads.
//! `--probes false` keeps an instance from probing at all: it learns a
//! processor's state from its own payments.

use std::sync::Arc;
use std::time::Duration;

use reroute_core::{Signal, Timestamp};
use reroute_store::ProbeReport;
use tokio_util::sync::CancellationToken;

use crate::processor::Probe;
use crate::state::Shared;

pub async fn run(shared: Arc<Shared>, index: usize, interval: Duration, cancel: CancellationToken) {
    let processor = &shared.registry.by_fee()[index];
    let id = processor.id.to_string();
    let Some(url) = processor.url.clone() else {
        return;
    };
    if !shared.config.probes {
        // Another instance probes (`--probes false`); this one routes on its
        // payments' outcomes alone.
        return;
    }
    let tick = interval / 4;
    let term = interval - tick;
    let mut leading = false;
    let mut last_applied: Option<Timestamp> = None;
    // Earliest instant this instance may call the endpoint.
    let mut not_before = tokio::time::Instant::now();
    loop {
        let leads = shared.store.lead_probes(term).await.unwrap_or(false);
        if leads && !leading {
            tracing::info!(processor = %id, "leading the health probes");
            // The old leader may have called up to `term` before we took
            // over; its interval ends `interval - term` from now at the latest.
            not_before = not_before.max(tokio::time::Instant::now() + (interval - term));
        }
        leading = leads;
        let published = latest(&shared, &id).await;
        if let Some(report) = published
            .as_ref()
            .filter(|r| last_applied.is_none_or(|seen| r.at > seen))
        {
            last_applied = Some(report.at);
            apply(&shared, index, report);
        }
        if leading {
            let since_published = published.map_or(Duration::MAX, |r| {
                Duration::from_millis((Timestamp::now().millis() - r.at.millis()).max(0) as u64)
            });
            let now = tokio::time::Instant::now();
            if now >= not_before && since_published >= interval {
                let probe = shared.client.probe(&url).await;
                shared.metrics.probe(&id, &probe);
                let answered = tokio::time::Instant::now();
                match probe {
                    Probe::Health {
                        failing,
                        min_response_ms,
                    } => {
                        tracing::debug!(processor = %id, failing, min_response_ms, "probe");
                        let at = Timestamp::now();
                        let report = ProbeReport {
                            processor: id.clone(),
                            failing,
                            min_response_ms: u32::try_from(min_response_ms).unwrap_or(u32::MAX),
                            at,
                        };
                        apply(&shared, index, &report);
                        if let Err(e) = shared.store.publish_probe(report).await {
                            tracing::warn!(processor = %id, error = %e, "cannot publish the probe");
                        }
                        last_applied = Some(at);
                        not_before = answered + interval;
                    }
                    Probe::RetryAfter(after) => {
                        tracing::debug!(processor = %id, ?after, "probe rate limited");
                        not_before = answered + interval.max(after);
                    }
                    // Says nothing either way: attempts are the passive signal.
                    Probe::Unreachable => not_before = answered + interval,
                }
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(tick) => {}
        }
    }
}

/// A health check's answer reaches the circuit (routing), the health
/// engine (the status and alerts operators read: a processor whose check
/// fails is DOWN even while nothing is sent to it) and the landing bound
/// (how long a send may take to be stored, from the announced delay).
fn apply(shared: &Shared, index: usize, report: &ProbeReport) {
    let failing = report.failing;
    shared
        .landing
        .announce(index, report.min_response_ms, report.at, failing);
    let now = Timestamp::now();
    let signal = if failing {
        Signal::ProbeFailing
    } else {
        Signal::ProbeHealthy
    };
    shared.breakers.observe(index, signal, now);
    let recorded = shared.health.health_check(index, failing, now);
    shared.raise(&recorded.alerts);
    if recorded.opened {
        shared.health_opened.notify_waiters();
    }
}

async fn latest(shared: &Shared, id: &str) -> Option<ProbeReport> {
    match shared.store.probes().await {
        Ok(reports) => reports.into_iter().find(|r| r.processor == id),
        Err(e) => {
            tracing::debug!(error = %e, "cannot read published probes");
            None
        }
    }
}
