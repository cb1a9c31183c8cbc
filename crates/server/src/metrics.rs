//! Prometheus metrics: what happened (counters, histograms, updated where it
//! happens along the data path: an accept, a send and its answer, a spill, a
//! probe, an alert) and what is (gauges, read from the live state, [`Live`],
//! at scrape time).
//!
//! Served at `GET /metrics` in the OpenMetrics text format, which Prometheus
//! scrapes natively. Names follow Prometheus conventions: a `reroute_` prefix,
//! base units in the name (`_seconds`), `_total` on counters.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use reroute_core::Timestamp;
use reroute_core::health::{Alert, Status};

use reroute_core::HealthEngine;
use reroute_store::Store;

use crate::alerts;
use crate::breakers::Breakers;
use crate::lanes::Lanes;
use crate::processor::{AttemptResult, Probe};
use crate::queue::Queue;
use crate::recording::Recording;
use crate::resolution::Landing;
use crate::timed_store::StoreMetrics;

type Labels = Vec<(&'static str, String)>;

/// The handles a payment's hot path updates, each built the first time it
/// is needed and then reused: a payment accepted or a send answered finds
/// its counter without building a label set (two allocations per label).
#[derive(Default)]
struct HotHandles {
    /// `payments_accepted{result}`: accepted, duplicate.
    accepted: [OnceLock<Counter>; 2],
    /// Per processor id: `payment_attempts{processor, outcome}` by outcome,
    /// and `payment_attempt_duration_seconds{processor}`.
    sends: RwLock<HashMap<String, Arc<SendHandles>>>,
}

#[derive(Default)]
struct SendHandles {
    outcomes: [OnceLock<Counter>; 4],
    duration: OnceLock<Histogram>,
}

const OUTCOMES: [&str; 4] = ["approved", "declined", "error", "unknown"];
const ACCEPTED: [&str; 2] = ["accepted", "duplicate"];

pub struct Metrics {
    registry: Registry,
    http_requests: Family<Labels, Counter>,
    http_duration: Family<Labels, Histogram>,
    accepted: Family<Labels, Counter>,
    attempts: Family<Labels, Counter>,
    attempt_duration: Family<Labels, Histogram>,
    probes: Family<Labels, Counter>,
    alerts: Family<Labels, Counter>,
    rate_limited: Family<Labels, Counter>,
    in_flight: Gauge,
    outcomes_recording: Gauge,
    summaries_settling: Gauge,
    // Read from the live state at scrape time.
    queue_depth: Gauge,
    queue_oldest_age: Gauge<f64, std::sync::atomic::AtomicU64>,
    processor_up: Family<Labels, Gauge>,
    processor_status: Family<Labels, Gauge>,
    ledger_payments: Family<Labels, Gauge>,
    ledger_amount: Family<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    store_up: Gauge,
    spilled: Family<Labels, Counter>,
    lane_limit: Family<Labels, Gauge>,
    lane_in_flight: Family<Labels, Gauge>,
    lane_waiting: Family<Labels, Gauge>,
    lane_throughput: Family<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    lane_expected_wait: Family<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    lane_latency: Family<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    store: Arc<StoreMetrics>,
    hot: HotHandles,
}

fn latency_histogram() -> Histogram {
    // 50 µs .. ~6.5 s
    Histogram::new(exponential_buckets(0.000_05, 2.0, 18))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("reroute");
        let http_requests = Family::<Labels, Counter>::default();
        let http_duration = Family::<Labels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let accepted = Family::<Labels, Counter>::default();
        let attempts = Family::<Labels, Counter>::default();
        let attempt_duration = Family::<Labels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let probes = Family::<Labels, Counter>::default();
        let alerts = Family::<Labels, Counter>::default();
        let rate_limited = Family::<Labels, Counter>::default();
        let in_flight = Gauge::default();
        let outcomes_recording = Gauge::default();
        let summaries_settling = Gauge::default();
        let queue_depth = Gauge::default();
        let queue_oldest_age = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        let processor_up = Family::<Labels, Gauge>::default();
        let processor_status = Family::<Labels, Gauge>::default();
        let ledger_payments = Family::<Labels, Gauge>::default();
        let ledger_amount = Family::<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        let store_up = Gauge::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route, method and status",
            http_requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to answer HTTP requests, by route and method",
            http_duration.clone(),
        );
        registry.register(
            "payments_accepted",
            "POST /payments answered 2xx, by result (accepted, duplicate)",
            accepted.clone(),
        );
        registry.register("payment_attempts", "Sends of payments to processors, by processor and outcome (approved, declined, error, unknown)", attempts.clone());
        registry.register(
            "payment_attempt_duration_seconds",
            "Time processors took to answer a payment, by processor",
            attempt_duration.clone(),
        );
        registry.register("probes", "Health probes of processors, by processor and result (healthy, failing, rate_limited, unreachable)", probes.clone());
        registry.register(
            "alerts",
            "Health alerts raised, by processor and kind (transition, anomaly, flapping) and target status",
            alerts.clone(),
        );
        registry.register(
            "rate_limited",
            "Requests refused with 429 by the per-client rate limit, by route",
            rate_limited.clone(),
        );
        registry.register(
            "attempts_in_flight",
            "Payments sent to a processor and not yet answered",
            in_flight.clone(),
        );
        registry.register(
            "outcomes_recording",
            "Outcomes a processor has answered whose commit to the ledger is not done yet",
            outcomes_recording.clone(),
        );
        registry.register(
            "summaries_settling",
            "GET /payments-summary requests waiting for outcomes in their window to be committed",
            summaries_settling.clone(),
        );
        registry.register(
            "queue_depth",
            "Accepted payments waiting for a worker",
            queue_depth.clone(),
        );
        registry.register(
            "queue_oldest_age_seconds",
            "Age of the oldest payment waiting for a worker",
            queue_oldest_age.clone(),
        );
        registry.register(
            "processor_up",
            "1 when the processor's circuit lets payments through, 0 when it is down",
            processor_up.clone(),
        );
        registry.register("processor_health_status", "1 for the processor's current health status (HEALTHY, DEGRADED, DOWN), 0 for the others", processor_status.clone());
        registry.register(
            "ledger_payments",
            "Payments processed, by processor (the ledger)",
            ledger_payments.clone(),
        );
        registry.register(
            "ledger_amount",
            "Amount processed, by processor, in major units (the ledger)",
            ledger_amount.clone(),
        );
        registry.register(
            "store_up",
            "1 when the store answered the last scrape's query",
            store_up.clone(),
        );
        let spilled = Family::<Labels, Counter>::default();
        registry.register(
            "spilled",
            "Payments sent to a pricier processor because the cheaper one could not keep up, by processor (from) and target (to)",
            spilled.clone(),
        );
        let lane_limit = Family::<Labels, Gauge>::default();
        registry.register(
            "lane_limit",
            "Sends allowed in flight to the processor now (the adaptive concurrency limit)",
            lane_limit.clone(),
        );
        let lane_in_flight = Family::<Labels, Gauge>::default();
        registry.register(
            "lane_in_flight",
            "Sends in flight to the processor",
            lane_in_flight.clone(),
        );
        let lane_waiting = Family::<Labels, Gauge>::default();
        registry.register(
            "lane_waiting",
            "Payments waiting for a free send to the processor (its backlog)",
            lane_waiting.clone(),
        );
        let lane_throughput = Family::<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        registry.register(
            "lane_throughput",
            "Payments per second the processor carries at its limit and latency",
            lane_throughput.clone(),
        );
        let lane_expected_wait =
            Family::<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        registry.register(
            "lane_expected_wait_seconds",
            "How long a payment joining the processor's backlog may expect to wait for a free send",
            lane_expected_wait.clone(),
        );
        let lane_latency = Family::<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        registry.register(
            "lane_latency_seconds",
            "The processor's latency as the spill rule sees it (smoothed answers, or a delay announced since)",
            lane_latency.clone(),
        );
        let store = StoreMetrics::register(&mut registry);
        Self {
            registry,
            http_requests,
            http_duration,
            accepted,
            attempts,
            attempt_duration,
            probes,
            alerts,
            rate_limited,
            in_flight,
            outcomes_recording,
            summaries_settling,
            queue_depth,
            queue_oldest_age,
            processor_up,
            processor_status,
            ledger_payments,
            ledger_amount,
            store_up,
            spilled,
            lane_limit,
            lane_in_flight,
            lane_waiting,
            lane_throughput,
            lane_expected_wait,
            lane_latency,
            store,
            hot: HotHandles::default(),
        }
    }
}

impl Metrics {
    /// The store's histograms: its operations ([`crate::timed_store::TimedStore`])
    /// and, as the engine's [`reroute_store::Observer`], their steps.
    pub fn store(&self) -> Arc<StoreMetrics> {
        Arc::clone(&self.store)
    }

    pub fn http(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        let labels = vec![
            ("route", route.to_owned()),
            ("method", method.to_owned()),
            ("status", status.to_string()),
        ];
        self.http_requests.get_or_create(&labels).inc();
        let labels = vec![("route", route.to_owned()), ("method", method.to_owned())];
        self.http_duration
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }

    pub fn accepted(&self, result: &'static str) {
        self.accepted_many(result, 1);
    }

    /// `count` payments answered `result` at once (the edges' duplicates,
    /// counted in the accept table).
    pub fn accepted_many(&self, result: &'static str, count: u64) {
        let build = || {
            self.accepted
                .get_or_create(&vec![("result", result.to_owned())])
                .clone()
        };
        match ACCEPTED.iter().position(|r| *r == result) {
            Some(i) => self.hot.accepted[i].get_or_init(build).inc_by(count),
            None => build().inc_by(count),
        };
    }

    /// A request refused by the per-client rate limit.
    pub fn rate_limited(&self, route: &str) {
        self.rate_limited
            .get_or_create(&vec![("route", route.to_owned())])
            .inc();
    }

    /// Brackets a send: the returned guard counts it in flight until dropped.
    pub fn attempt_started(&self) -> InFlight<'_> {
        self.in_flight.inc();
        InFlight(&self.in_flight)
    }

    pub fn attempt(&self, processor: &str, result: AttemptResult, elapsed: Duration) {
        let outcome = match result {
            AttemptResult::Approved | AttemptResult::AlreadyProcessed => 0,
            AttemptResult::Declined => 1,
            AttemptResult::Refused | AttemptResult::Failed => 2,
            AttemptResult::Unknown => 3,
        };
        let handles = self.send_handles(processor);
        handles.outcomes[outcome]
            .get_or_init(|| {
                let labels = vec![
                    ("processor", processor.to_owned()),
                    ("outcome", OUTCOMES[outcome].to_owned()),
                ];
                self.attempts.get_or_create(&labels).clone()
            })
            .inc();
        if !matches!(result, AttemptResult::Unknown) {
            handles
                .duration
                .get_or_init(|| {
                    let labels = vec![("processor", processor.to_owned())];
                    self.attempt_duration.get_or_create(&labels).clone()
                })
                .observe(elapsed.as_secs_f64());
        }
    }

    /// The hot handles of one processor's sends, made on its first send.
    fn send_handles(&self, processor: &str) -> Arc<SendHandles> {
        let known = self
            .hot
            .sends
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(processor)
            .cloned();
        known.unwrap_or_else(|| {
            let mut sends = self.hot.sends.write().unwrap_or_else(|p| p.into_inner());
            Arc::clone(sends.entry(processor.to_owned()).or_default())
        })
    }

    /// A payment spilled from `from`, which could not keep up, to `to`.
    pub fn spilled(&self, from: &str, to: &str) {
        let labels = vec![("processor", from.to_owned()), ("to", to.to_owned())];
        self.spilled.get_or_create(&labels).inc();
    }

    /// Payments spilled from `from` so far, to any of `to`.
    pub fn spilled_from(&self, from: &str, to: &[&str]) -> u64 {
        to.iter()
            .filter_map(|to| {
                let labels = vec![("processor", from.to_owned()), ("to", (*to).to_owned())];
                self.spilled.get(&labels).map(|c| c.get())
            })
            .sum()
    }

    pub fn probe(&self, processor: &str, probe: &Probe) {
        let result = match probe {
            Probe::Health { failing: false, .. } => "healthy",
            Probe::Health { failing: true, .. } => "failing",
            Probe::RetryAfter(_) => "rate_limited",
            Probe::Unreachable => "unreachable",
        };
        let labels = vec![
            ("processor", processor.to_owned()),
            ("result", result.to_owned()),
        ];
        self.probes.get_or_create(&labels).inc();
    }

    pub fn alerts(&self, alerts: &[Alert]) {
        for a in alerts {
            let kind = alerts::kind_name(a.kind);
            let labels = vec![
                ("processor", a.processor.to_string()),
                ("kind", kind.to_owned()),
                ("to", a.to.as_str().to_owned()),
            ];
            self.alerts.get_or_create(&labels).inc();
        }
    }

    /// Reads the live state into the gauges and encodes everything.
    pub async fn render(&self, shared: Live<'_>) -> String {
        let now = Timestamp::now();
        self.queue_depth.set(shared.queue.depth() as i64);
        self.outcomes_recording.set(shared.recording.len() as i64);
        self.summaries_settling
            .set(shared.recording.waiting() as i64);
        let oldest = shared.queue.oldest_accepted_at();
        self.queue_oldest_age
            .set(oldest.map_or(0.0, |t| (now.millis() - t.millis()).max(0) as f64 / 1000.0));
        for (index, p) in shared.registry.by_fee().iter().enumerate() {
            let id = p.id.to_string();
            let lane = shared
                .lanes
                .view(index, shared.landing.announced(index), now);
            let labels = vec![("processor", id.clone())];
            self.lane_limit
                .get_or_create(&labels)
                .set(i64::from(lane.limit));
            self.lane_in_flight
                .get_or_create(&labels)
                .set(i64::try_from(lane.in_flight).unwrap_or(i64::MAX));
            self.lane_waiting
                .get_or_create(&labels)
                .set(i64::try_from(lane.waiting).unwrap_or(i64::MAX));
            self.lane_throughput
                .get_or_create(&labels)
                .set(lane.throughput);
            self.lane_expected_wait
                .get_or_create(&labels)
                .set(lane.expected_wait_ms as f64 / 1000.0);
            self.lane_latency
                .get_or_create(&labels)
                .set(lane.latency_ms as f64 / 1000.0);
            self.processor_up
                .get_or_create(&vec![("processor", id.clone())])
                .set(i64::from(shared.breakers.is_up(index)));
            let current = shared.health.status(index);
            for status in [Status::Healthy, Status::Degraded, Status::Down] {
                let labels = vec![
                    ("processor", id.clone()),
                    ("status", status.as_str().to_owned()),
                ];
                self.processor_status
                    .get_or_create(&labels)
                    .set(i64::from(status == current));
            }
        }
        match shared.store.summary(reroute_core::Window::ALL).await {
            Ok(totals) => {
                self.store_up.set(1);
                for t in totals {
                    let labels = vec![("processor", t.processor.clone())];
                    self.ledger_payments
                        .get_or_create(&labels)
                        .set(i64::try_from(t.requests).unwrap_or(i64::MAX));
                    self.ledger_amount
                        .get_or_create(&labels)
                        .set(t.amount.minor() as f64 / 100.0);
                }
            }
            Err(_) => {
                self.store_up.set(0);
            }
        }
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

/// What the gauges read at scrape time: the live parts of the shared state
/// ([`crate::state::Shared::live`]), borrowed for one scrape.
pub struct Live<'a> {
    pub queue: &'a Queue,
    pub recording: &'a Recording,
    pub registry: &'a reroute_core::Registry,
    pub lanes: &'a Lanes,
    pub landing: &'a Landing,
    pub breakers: &'a Breakers,
    pub health: &'a HealthEngine,
    pub store: &'a dyn Store,
}

/// Counts one send in flight while alive.
pub struct InFlight<'a>(&'a Gauge);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(metrics: &Metrics) -> String {
        let mut out = String::new();
        encode(&mut out, &metrics.registry).unwrap();
        out
    }

    #[test]
    fn the_hot_handles_count_in_the_families_series() {
        let metrics = Metrics::default();
        for _ in 0..2 {
            metrics.accepted("accepted");
        }
        metrics.accepted("duplicate");
        for _ in 0..3 {
            metrics.attempt("default", AttemptResult::Approved, Duration::from_millis(1));
        }
        metrics.attempt("fallback", AttemptResult::Unknown, Duration::from_secs(5));
        let out = text(&metrics);
        for line in [
            r#"reroute_payments_accepted_total{result="accepted"} 2"#,
            r#"reroute_payments_accepted_total{result="duplicate"} 1"#,
            r#"reroute_payment_attempts_total{processor="default",outcome="approved"} 3"#,
            r#"reroute_payment_attempts_total{processor="fallback",outcome="unknown"} 1"#,
            r#"reroute_payment_attempt_duration_seconds_count{processor="default"} 3"#,
        ] {
            assert!(out.contains(line), "{line} not in\n{out}");
        }
        // Only what happened has a series: no send to fallback was timed,
        // and default was never declined.
        assert!(
            !out.contains(r#"duration_seconds_count{processor="fallback"}"#),
            "{out}"
        );
        assert!(!out.contains(r#"outcome="declined""#), "{out}");
    }

    #[test]
    fn spills_from_a_processor_are_summed_over_the_processors_they_went_to() {
        let metrics = Metrics::default();
        metrics.spilled("default", "fallback");
        metrics.spilled("default", "fallback");
        metrics.spilled("default", "backup");
        metrics.spilled("fallback", "backup");
        let all = ["default", "fallback", "backup"];
        assert_eq!(metrics.spilled_from("default", &all), 3);
        assert_eq!(metrics.spilled_from("fallback", &all), 1);
        assert_eq!(metrics.spilled_from("backup", &all), 0);
    }
}
