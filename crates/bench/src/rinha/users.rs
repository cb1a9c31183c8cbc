//! The paying crowd: virtual users that ramp from 1 to `max_users` over the
//! run, each looping "POST /payments with a new correlation id, sleep 1 s" on
//! its own keep-alive connection, as the script's `payments` scenario does.
//! Each payment is also tallied under the stage in force when it was sent,
//! for the report's stage timeline.
//!
//! A user starts a new iteration only before the deadline; one already under
//! way finishes (its request, then its sleep), as k6 lets iterations finish
//! when a scenario ends.

use std::collections::BTreeMap;
use std::sync::Arc;

use hyper::Method;
use reroute_core::CorrelationId;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::api::payment_body;
use super::progress::Live;
use super::scenario::{REQUEST_TIMEOUT, THINK_TIME};
use super::timeline::Timeline;
use crate::http::{BodyUse, Connection, Endpoint, HttpStats};

/// What the users saw, all together.
#[derive(Debug, Default)]
pub struct Crowd {
    /// `POST /payments` answered 200, 201, 202 or 204 (`transactions_success`).
    pub accepted: u64,
    /// Every other outcome, timeouts included (`transactions_failure`).
    pub failed: u64,
    /// Answers by status code, for the curious.
    pub statuses: BTreeMap<u16, u64>,
    pub http: HttpStats,
    /// Users that sent at least one payment.
    pub users: u64,
    /// Payments by the stage in force when they were sent (empty without
    /// stages).
    pub stages: Vec<StageTally>,
}

impl Crowd {
    fn merge(&mut self, other: Crowd) {
        self.accepted += other.accepted;
        self.failed += other.failed;
        for (status, n) in other.statuses {
            *self.statuses.entry(status).or_default() += n;
        }
        self.http.merge(other.http);
        self.users += other.users;
        if self.stages.len() < other.stages.len() {
            self.stages
                .resize_with(other.stages.len(), StageTally::default);
        }
        for (mine, theirs) in self.stages.iter_mut().zip(other.stages) {
            mine.merge(theirs);
        }
    }
}

/// The payments sent while one stage was in force.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct StageTally {
    pub sent: u64,
    /// Answered 200, 201, 202 or 204.
    pub accepted: u64,
    /// Durations (ns) of the answers with a 2xx or 3xx status, as the p99
    /// counts them.
    pub durations: Vec<u64>,
}

impl StageTally {
    fn merge(&mut self, other: StageTally) {
        self.sent += other.sent;
        self.accepted += other.accepted;
        self.durations.extend(other.durations);
    }
}

/// The statuses the script counts as an accepted payment.
pub fn is_accepted(status: u16) -> bool {
    matches!(status, 200 | 201 | 202 | 204)
}

/// Starts each user at its time on the ramp and waits for all of them. Every
/// payment is of `amount_json` (the script's amount as k6 writes it).
pub async fn run(
    backend: Arc<Endpoint>,
    amount_json: &'static str,
    timeline: &Timeline,
    started: Instant,
    live: Arc<Live>,
) -> anyhow::Result<Crowd> {
    let deadline = started + timeline.duration();
    let shared = Arc::new(timeline.clone());
    let mut users = JoinSet::new();
    for offset in timeline.user_starts() {
        tokio::time::sleep_until(started + offset).await;
        if Instant::now() >= deadline {
            break;
        }
        users.spawn(user(
            backend.clone(),
            amount_json,
            shared.clone(),
            started,
            live.clone(),
        ));
    }
    let mut crowd = Crowd::default();
    while let Some(one) = users.join_next().await {
        crowd.merge(one?);
    }
    Ok(crowd)
}

/// One virtual user's life.
async fn user(
    backend: Arc<Endpoint>,
    amount_json: &'static str,
    timeline: Arc<Timeline>,
    started: Instant,
    live: Arc<Live>,
) -> Crowd {
    Live::add(&live.users, 1);
    let deadline = started + timeline.duration();
    let mut connection = Connection::new(backend.clone());
    let mut mine = Crowd {
        users: 1,
        stages: vec![StageTally::default(); timeline.stages().len()],
        ..Crowd::default()
    };
    while Instant::now() < deadline {
        let stage = timeline.stage_at(started.elapsed());
        let body = payment_body(CorrelationId::new_random(), amount_json);
        let request = backend.request(Method::POST, "/payments", Some(body));
        let outcome = connection
            .exchange(request, BodyUse::Discard, REQUEST_TIMEOUT)
            .await;
        // k6 reports a request without a response as status 0.
        let status = outcome.as_ref().map_or(0, |answer| answer.status.as_u16());
        if let Some(tally) = stage.and_then(|i| mine.stages.get_mut(i)) {
            tally.sent += 1;
            tally.accepted += u64::from(is_accepted(status));
            if let Ok(answer) = &outcome
                && answer.is_expected()
            {
                tally
                    .durations
                    .push(u64::try_from(answer.elapsed.as_nanos()).unwrap_or(u64::MAX));
            }
        }
        *mine.statuses.entry(status).or_default() += 1;
        if is_accepted(status) {
            mine.accepted += 1;
            Live::add(&live.accepted, 1);
        } else {
            mine.failed += 1;
            Live::add(&live.failed, 1);
        }
        tokio::time::sleep(THINK_TIME).await;
    }
    live.users
        .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    mine.http = connection.into_stats();
    mine
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_scripts_success_statuses_count_as_accepted() {
        for status in [200, 201, 202, 204] {
            assert!(is_accepted(status));
        }
        for status in [0, 203, 206, 301, 400, 422, 429, 500, 502] {
            assert!(!is_accepted(status));
        }
    }
}
