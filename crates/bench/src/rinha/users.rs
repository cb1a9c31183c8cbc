//! The paying crowd: virtual users that ramp from 1 to `max_users` over the
//! run, each looping "POST /payments with a new correlation id, sleep 1 s" on
//! its own keep-alive connection, as the script's `payments` scenario does.
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
use super::timeline::{REQUEST_TIMEOUT, THINK_TIME, Timeline};
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
    }
}

/// The statuses the script counts as an accepted payment.
pub fn is_accepted(status: u16) -> bool {
    matches!(status, 200 | 201 | 202 | 204)
}

/// Starts each user at its time on the ramp and waits for all of them.
pub async fn run(
    backend: Arc<Endpoint>,
    timeline: &Timeline,
    started: Instant,
    live: Arc<Live>,
) -> anyhow::Result<Crowd> {
    let deadline = started + timeline.duration();
    let mut users = JoinSet::new();
    for offset in timeline.user_starts() {
        tokio::time::sleep_until(started + offset).await;
        if Instant::now() >= deadline {
            break;
        }
        users.spawn(user(backend.clone(), deadline, live.clone()));
    }
    let mut crowd = Crowd::default();
    while let Some(one) = users.join_next().await {
        crowd.merge(one?);
    }
    Ok(crowd)
}

/// One virtual user's life.
async fn user(backend: Arc<Endpoint>, deadline: Instant, live: Arc<Live>) -> Crowd {
    Live::add(&live.users, 1);
    let mut connection = Connection::new(backend.clone());
    let mut mine = Crowd {
        users: 1,
        ..Crowd::default()
    };
    while Instant::now() < deadline {
        let body = payment_body(CorrelationId::new_random());
        let request = backend.request(Method::POST, "/payments", Some(body));
        let status = match connection
            .exchange(request, BodyUse::Discard, REQUEST_TIMEOUT)
            .await
        {
            Ok(answer) => answer.status.as_u16(),
            // k6 reports a request without a response as status 0.
            Err(_) => 0,
        };
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
