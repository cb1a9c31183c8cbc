//! The payments of the crash and chaos benches: a steady rate of
//! `POST /payments`, round-robin over the router instances, sent the way a
//! careful merchant sends them.
//!
//! A merchant that gets no answer (timeout, connection lost), or a 5xx or a
//! 429, does not know whether the payment was accepted, so it sends the
//! *same* correlationId again, to the next instance, until it gets a 2xx
//! (accepted, or already accepted) or a definite 4xx. A connection refused
//! means nothing was sent: it just goes to the next instance. That is what
//! makes the audit exact: at the end every payment has a definite fate, and
//! the set answered 2xx must be exactly the set the processors charged.
//!
//! Each user keeps one keep-alive connection per instance and paces itself
//! at `rate / users` payments per second, never faster (a user retrying a
//! payment sends nothing new meanwhile, as a real client would not either).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use hyper::Method;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reroute_core::{CorrelationId, Money, Timestamp};
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};

use crate::fleet::Generations;
use reroute_bench::http::{BodyUse, Connection, Endpoint, ExchangeError};

#[derive(Debug, Clone)]
pub struct TrafficOptions {
    /// Payments per second, all users together.
    pub rate: f64,
    pub users: usize,
    /// Client timeout of one request.
    pub timeout: Duration,
    /// How long a user keeps re-sending one payment before giving up on it.
    pub give_up_after: Duration,
    /// Seeds the amounts (correlation ids are random UUIDs).
    pub seed: u64,
}

/// What finally became of one payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Answered 2xx by `instance` (its process of `generation`, see
    /// [`crate::fleet::Generations`]), `after` the traffic started, at `at`
    /// (wall clock, to compare with the processors' `requestedAt`).
    Accepted {
        instance: usize,
        generation: u32,
        after: Duration,
        at: Timestamp,
    },
    /// A definite refusal (4xx other than 408 and 429).
    Refused { status: u16 },
    /// No definite answer before giving up; `sent` if some request may have
    /// reached a router.
    Unresolved { sent: bool },
}

/// One payment of the run.
#[derive(Debug, Clone)]
pub struct Payment {
    pub id: CorrelationId,
    pub amount: Money,
    pub fate: Fate,
    /// Requests sent for it (1 when the first answer was definite).
    pub sends: u32,
}

/// What the load saw, request by request.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct RequestCounts {
    /// Requests written to a router (connections refused excluded).
    pub requests: u64,
    /// Answered 5xx or 429.
    pub server_errors: u64,
    /// No answer (timeout, connection lost).
    pub unanswered: u64,
    /// Connections refused (the instance was down).
    pub refused_connections: u64,
}

impl RequestCounts {
    fn merge(&mut self, other: RequestCounts) {
        self.requests += other.requests;
        self.server_errors += other.server_errors;
        self.unanswered += other.unanswered;
        self.refused_connections += other.refused_connections;
    }
}

/// Everything the traffic did.
pub struct Finished {
    pub payments: Vec<Payment>,
    pub requests: RequestCounts,
}

/// The running traffic.
pub struct Traffic {
    started: Instant,
    stop: Arc<AtomicBool>,
    users: JoinSet<(Vec<Payment>, RequestCounts)>,
}

impl Traffic {
    /// Starts `options.users` users on the current runtime.
    /// `generations` has one counter per target (all zero when the targets
    /// are not restarted).
    pub fn start(
        targets: Vec<Arc<Endpoint>>,
        generations: Generations,
        options: TrafficOptions,
    ) -> Self {
        assert_eq!(
            targets.len(),
            generations.len(),
            "one generation per target"
        );
        assert!(!targets.is_empty(), "traffic needs a target");
        let started = Instant::now();
        let stop = Arc::new(AtomicBool::new(false));
        let users_count = options.users.max(1);
        let period = Duration::from_secs_f64(users_count as f64 / options.rate.max(0.001));
        let mut users = JoinSet::new();
        for index in 0..users_count {
            let user = User {
                connections: targets.iter().cloned().map(Connection::new).collect(),
                next: index % targets.len(),
                rng: StdRng::seed_from_u64(options.seed ^ (index as u64).wrapping_mul(0x9E37)),
                options: options.clone(),
                started,
                counts: RequestCounts::default(),
                generations: generations.clone(),
            };
            // Users start spread over one period, not all at once.
            let offset = period.mul_f64(index as f64 / users_count as f64);
            users.spawn(user.run(period, offset, stop.clone()));
        }
        Self {
            started,
            stop,
            users,
        }
    }

    pub fn started(&self) -> Instant {
        self.started
    }

    /// Stops sending new payments, lets every user settle the one it is on,
    /// and returns every payment of the run.
    pub async fn stop(mut self) -> Finished {
        self.stop.store(true, Ordering::Relaxed);
        let mut finished = Finished {
            payments: Vec::new(),
            requests: RequestCounts::default(),
        };
        while let Some(done) = self.users.join_next().await {
            let (payments, requests) = done.expect("a traffic user panicked");
            finished.payments.extend(payments);
            finished.requests.merge(requests);
        }
        finished
    }
}

struct User {
    connections: Vec<Connection>,
    next: usize,
    rng: StdRng,
    options: TrafficOptions,
    started: Instant,
    counts: RequestCounts,
    generations: Generations,
}

/// What one request told.
enum Answer {
    Definite(Fate),
    /// Nothing was sent (connection refused).
    NotSent,
    /// Sent, outcome unknown: send the same payment again.
    Again,
}

impl User {
    async fn run(
        mut self,
        period: Duration,
        offset: Duration,
        stop: Arc<AtomicBool>,
    ) -> (Vec<Payment>, RequestCounts) {
        let mut ticker = tokio::time::interval_at(self.started + offset, period);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut payments = Vec::new();
        loop {
            ticker.tick().await;
            if stop.load(Ordering::Relaxed) {
                return (payments, self.counts);
            }
            let id = CorrelationId::new_random();
            let amount = Money::from_minor(self.rng.random_range(1..=99_999));
            payments.push(self.settle(id, amount).await);
        }
    }

    /// Sends one payment until its fate is definite or the user gives up.
    async fn settle(&mut self, id: CorrelationId, amount: Money) -> Payment {
        let body = Bytes::from(format!(r#"{{"correlationId":"{id}","amount":{amount}}}"#));
        let give_up = Instant::now() + self.options.give_up_after;
        let mut sends = 0;
        let mut sent = false;
        let mut pause = Duration::from_millis(10);
        let mut refused_in_a_row = 0;
        loop {
            let target = self.next;
            self.next = (self.next + 1) % self.connections.len();
            match self.send(target, body.clone()).await {
                Answer::Definite(fate) => {
                    sends += 1;
                    return Payment {
                        id,
                        amount,
                        fate,
                        sends,
                    };
                }
                Answer::Again => {
                    sends += 1;
                    sent = true;
                    refused_in_a_row = 0;
                }
                Answer::NotSent => refused_in_a_row += 1,
            }
            if Instant::now() >= give_up {
                return Payment {
                    id,
                    amount,
                    fate: Fate::Unresolved { sent },
                    sends,
                };
            }
            // A refused connection moves on to the next instance at once;
            // once every instance refused, or after an unknown outcome,
            // wait a little (growing, capped low enough that a restarted
            // router gets its first payment promptly) before trying again.
            if refused_in_a_row == 0 || refused_in_a_row % self.connections.len() == 0 {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(100));
            }
        }
    }

    async fn send(&mut self, target: usize, body: Bytes) -> Answer {
        let generation = self.generations[target].load(Ordering::SeqCst);
        let connection = &mut self.connections[target];
        let request = connection
            .endpoint()
            .request(Method::POST, "/payments", Some(body));
        match connection
            .exchange(request, BodyUse::Discard, self.options.timeout)
            .await
        {
            Ok(answer) => {
                self.counts.requests += 1;
                match answer.status.as_u16() {
                    200..=299 => Answer::Definite(Fate::Accepted {
                        instance: target,
                        generation,
                        after: self.started.elapsed(),
                        at: Timestamp::now(),
                    }),
                    408 | 429 | 500..=599 => {
                        self.counts.server_errors += 1;
                        Answer::Again
                    }
                    status => Answer::Definite(Fate::Refused { status }),
                }
            }
            Err(ExchangeError::Connect(_)) => {
                self.counts.refused_connections += 1;
                Answer::NotSent
            }
            Err(ExchangeError::Timeout | ExchangeError::Http(_)) => {
                self.counts.requests += 1;
                self.counts.unanswered += 1;
                Answer::Again
            }
        }
    }
}
