//! `reroute bench intel`: the failover-intelligence API under a fixed load.
//!
//! Merchants that call processors themselves report every outcome
//! (`POST /api/v1/transactions`) and ask where to send the next payment
//! (`GET /api/v1/routing/recommend`). This bench plays many such merchants at
//! once, open-loop: request `k` is due at `start + k / rate` whatever
//! happened to the others, so a slow answer cannot slow the load down and
//! hide itself (the "coordinated omission" of closed-loop testers).
//!
//! ```text
//! setup     GET /api/v1/processors -> the registry's segments
//! workload  record bodies (every processor x method x country, results
//!           mostly approved) and recommend paths (every method x country)
//! load      --connections keep-alive connections; connection c sends the
//!           requests k = c, c + C, c + 2C, ... each at its due instant
//! report    per endpoint p50/p90/p99/max (request written -> last byte),
//!           throughput achieved, how late requests left their schedule
//! ```
//!
//! The load generator shares the machine with the router, so it stays light:
//! one Tokio thread, bodies built once, durations kept as integers and
//! sorted once at the end.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use hyper::Method;
use reroute_core::Timestamp;
use tokio::time::Instant;

use crate::duration::parse_duration;
use crate::http::{BodyUse, Connection, Endpoint};

pub mod report;

pub use report::IntelReport;
use report::{Endpoints, Latency, Requests, TARGET_P99_MS, verdict};

/// A request gets no answer after this long: the connection is dropped and
/// the request counted as a timeout.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(2);

/// `reroute bench intel`: its flags, which are also its library options.
#[derive(Debug, Clone, clap::Args)]
pub struct IntelArgs {
    /// Base URL of the router under test.
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:9999")]
    pub target: Endpoint,

    /// Requests per second, record and recommend together, sent on schedule.
    #[arg(long, value_name = "N", default_value_t = 10_000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub rate: u32,

    /// Length of the load (20s, 1m, 1500ms).
    #[arg(long, value_name = "DURATION", default_value = "20s", value_parser = parse_duration)]
    pub duration: Duration,

    /// Keep-alive connections the requests are spread over.
    #[arg(long, value_name = "N", default_value_t = 64,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub connections: u32,

    /// Percent of requests that record a transaction; the rest ask for a
    /// recommendation.
    #[arg(long, value_name = "PERCENT", default_value_t = 50,
          value_parser = clap::value_parser!(u8).range(0..=100))]
    pub record_percent: u8,

    /// Write the result JSON to this file instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

impl IntelArgs {
    /// Requests in the run.
    pub fn total(&self) -> u64 {
        (self.duration.as_secs_f64() * f64::from(self.rate)).round() as u64
    }

    /// When request `k` is due, after the start.
    pub fn due(&self, k: u64) -> Duration {
        Duration::from_nanos(
            u64::try_from(u128::from(k) * 1_000_000_000 / u128::from(self.rate))
                .unwrap_or(u64::MAX),
        )
    }

    /// Whether request `k` records (else recommends): spread evenly, exactly
    /// `record_percent` of every 100.
    pub fn records(&self, k: u64) -> bool {
        let p = u64::from(self.record_percent);
        (k + 1) * p / 100 > k * p / 100
    }
}

/// One processor as `GET /api/v1/processors` lists it.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct ListedProcessor {
    pub processor_id: String,
    #[serde(default)]
    pub countries: Vec<String>,
    #[serde(default)]
    pub payment_methods: Vec<String>,
}

#[derive(serde::Deserialize)]
struct ProcessorList {
    processors: Vec<ListedProcessor>,
}

/// The outcomes reported for each segment, in turn: 85% approved, 10%
/// declined, 5% errors, so that every processor stays HEALTHY and the run
/// measures the steady state, not a storm of alerts.
const RESULTS: [&str; 20] = [
    "approved", "approved", "declined", "approved", "approved", "approved", "approved", "error",
    "approved", "approved", "approved", "declined", "approved", "approved", "approved", "approved",
    "approved", "approved", "approved", "approved",
];

/// The requests of a run, built once.
#[derive(Debug, Clone)]
pub struct Workload {
    /// `POST /api/v1/transactions` bodies.
    pub records: Vec<Bytes>,
    /// `GET /api/v1/routing/recommend?...` paths.
    pub recommends: Vec<String>,
}

impl Workload {
    /// Every segment of the registry: a processor without countries or
    /// methods (any) reports without them, and is asked about as CARD/BR.
    pub fn for_registry(processors: &[ListedProcessor]) -> anyhow::Result<Self> {
        anyhow::ensure!(!processors.is_empty(), "the target lists no processor");
        let mut segments: Vec<(String, Option<String>, Option<String>)> = Vec::new();
        for p in processors {
            let methods: Vec<Option<String>> = if p.payment_methods.is_empty() {
                vec![None]
            } else {
                p.payment_methods.iter().cloned().map(Some).collect()
            };
            let countries: Vec<Option<String>> = if p.countries.is_empty() {
                vec![None]
            } else {
                p.countries.iter().cloned().map(Some).collect()
            };
            for m in &methods {
                for c in &countries {
                    segments.push((p.processor_id.clone(), m.clone(), c.clone()));
                }
            }
        }
        let mut records = Vec::with_capacity(segments.len() * RESULTS.len());
        for result in RESULTS {
            for (processor, method, country) in &segments {
                let mut body = format!(
                    r#"{{"processor_id":"{processor}","result":"{result}","amount":150.00,"currency":"BRL","latency_ms":42"#
                );
                if let Some(m) = method {
                    body.push_str(&format!(r#","payment_method":"{m}""#));
                }
                if let Some(c) = country {
                    body.push_str(&format!(r#","country":"{c}""#));
                }
                body.push('}');
                records.push(Bytes::from(body));
            }
        }
        let mut pairs: Vec<(String, String)> = segments
            .iter()
            .map(|(_, m, c)| {
                (
                    m.clone().unwrap_or_else(|| "CARD".to_owned()),
                    c.clone().unwrap_or_else(|| "BR".to_owned()),
                )
            })
            .collect();
        pairs.sort();
        pairs.dedup();
        let recommends = pairs
            .into_iter()
            .map(|(m, c)| format!("/api/v1/routing/recommend?payment_method={m}&country={c}"))
            .collect();
        Ok(Self {
            records,
            recommends,
        })
    }
}

/// Which endpoint a request called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Record,
    Recommend,
}

/// What one connection saw.
#[derive(Debug, Default)]
struct Tally {
    sent: u64,
    ok: u64,
    rejected: u64,
    errors: u64,
    timeouts: u64,
    record_nanos: Vec<u64>,
    recommend_nanos: Vec<u64>,
    /// How late each request left, against its due instant.
    slip_nanos: Vec<u64>,
    /// When the last answer arrived.
    last: Option<Instant>,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.sent += other.sent;
        self.ok += other.ok;
        self.rejected += other.rejected;
        self.errors += other.errors;
        self.timeouts += other.timeouts;
        self.record_nanos.extend(other.record_nanos);
        self.recommend_nanos.extend(other.recommend_nanos);
        self.slip_nanos.extend(other.slip_nanos);
        self.last = match (self.last, other.last) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }
}

/// Runs the bench: reads the registry, then sends the load, then reports.
pub async fn run(options: IntelArgs) -> anyhow::Result<IntelReport> {
    let target = Arc::new(options.target.clone());
    let processors = list_processors(&target).await?;
    let workload = Arc::new(Workload::for_registry(&processors)?);
    let started_at = Timestamp::now();
    // Connections open before the clock starts, so that the first requests
    // do not pay for the handshakes.
    let start = Instant::now() + Duration::from_millis(200);
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..options.connections {
        let (options, workload, target) = (options.clone(), workload.clone(), target.clone());
        tasks.spawn(async move {
            let mut connection = Connection::new(target);
            let _ = connection
                .exchange(
                    connection
                        .endpoint()
                        .request(Method::GET, "/api/v1/processors", None),
                    BodyUse::Discard,
                    CLIENT_TIMEOUT,
                )
                .await;
            load(connection, &options, &workload, u64::from(c), start).await
        });
    }
    let mut tally = Tally::default();
    while let Some(done) = tasks.join_next().await {
        tally.merge(done.context("a connection task failed")?);
    }
    let elapsed = tally
        .last
        .map_or(Duration::ZERO, |l| l.saturating_duration_since(start));
    Ok(IntelReport::new(&options, started_at, tally, elapsed))
}

async fn list_processors(target: &Arc<Endpoint>) -> anyhow::Result<Vec<ListedProcessor>> {
    let request = target.request(Method::GET, "/api/v1/processors", None);
    let mut connection = Connection::new(target.clone());
    let body = connection.call(request, None, Duration::from_secs(5)).await;
    let body = body.context("is it a reroute router?")?;
    let list: ProcessorList = serde_json::from_slice(&body)
        .with_context(|| format!("reading GET {target}/api/v1/processors"))?;
    Ok(list.processors)
}

/// One connection's share: requests `first`, `first + C`, ... each sent at
/// its due instant (at once when already late).
async fn load(
    mut connection: Connection,
    options: &IntelArgs,
    workload: &Workload,
    first: u64,
    start: Instant,
) -> Tally {
    let total = options.total();
    let step = u64::from(options.connections);
    let share = usize::try_from(total / step + 1).unwrap_or(0);
    let mut tally = Tally {
        slip_nanos: Vec::with_capacity(share),
        ..Tally::default()
    };
    let mut k = first;
    while k < total {
        let due = start + options.due(k);
        tokio::time::sleep_until(due).await;
        let kind = if options.records(k) {
            Kind::Record
        } else {
            Kind::Recommend
        };
        let request = match kind {
            Kind::Record => {
                let body = workload.records[(k / 2) as usize % workload.records.len()].clone();
                connection
                    .endpoint()
                    .request(Method::POST, "/api/v1/transactions", Some(body))
            }
            Kind::Recommend => {
                let path = &workload.recommends[(k / 2) as usize % workload.recommends.len()];
                connection.endpoint().request(Method::GET, path, None)
            }
        };
        let left = Instant::now();
        tally
            .slip_nanos
            .push(nanos(left.saturating_duration_since(due)));
        tally.sent += 1;
        match connection
            .exchange(request, BodyUse::Discard, CLIENT_TIMEOUT)
            .await
        {
            Ok(exchange) if exchange.status.is_success() => {
                tally.ok += 1;
                let d = nanos(exchange.elapsed);
                match kind {
                    Kind::Record => tally.record_nanos.push(d),
                    Kind::Recommend => tally.recommend_nanos.push(d),
                }
            }
            Ok(_) => tally.rejected += 1,
            Err(crate::http::ExchangeError::Timeout) => tally.timeouts += 1,
            Err(_) => tally.errors += 1,
        }
        tally.last = Some(Instant::now());
        k += step;
    }
    tally
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl IntelReport {
    fn new(
        options: &IntelArgs,
        started_at: Timestamp,
        mut tally: Tally,
        elapsed: Duration,
    ) -> Self {
        let mut all: Vec<u64> = tally
            .record_nanos
            .iter()
            .chain(&tally.recommend_nanos)
            .copied()
            .collect();
        let latency_ms = Endpoints {
            record: Latency::of(&mut tally.record_nanos),
            recommend: Latency::of(&mut tally.recommend_nanos),
            all: Latency::of(&mut all),
        };
        let elapsed_s = elapsed.as_secs_f64();
        let throughput = if elapsed_s > 0.0 {
            tally.ok as f64 / elapsed_s
        } else {
            0.0
        };
        let requests = Requests {
            scheduled: options.total(),
            sent: tally.sent,
            ok: tally.ok,
            rejected: tally.rejected,
            errors: tally.errors,
            timeouts: tally.timeouts,
        };
        Self {
            target: options.target.to_string(),
            started_at,
            rate: options.rate,
            duration_s: options.duration.as_secs_f64(),
            connections: options.connections,
            record_percent: options.record_percent,
            target_met: verdict(latency_ms.all.p99_ms, throughput, options.rate, &requests),
            requests,
            elapsed_s: (elapsed_s * 1000.0).round() / 1000.0,
            throughput: throughput.round(),
            latency_ms,
            start_slip_ms: Latency::of(&mut tally.slip_nanos),
            target_p99_ms: TARGET_P99_MS,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(rate: u32, secs: u64, record_percent: u8) -> IntelArgs {
        IntelArgs {
            target: "http://127.0.0.1:9999".parse().unwrap(),
            rate,
            duration: Duration::from_secs(secs),
            connections: 4,
            record_percent,
            out: None,
        }
    }

    #[test]
    fn requests_are_due_evenly_over_the_duration() {
        let o = options(10_000, 20, 50);
        assert_eq!(o.total(), 200_000);
        assert_eq!(o.due(0), Duration::ZERO);
        assert_eq!(o.due(1), Duration::from_micros(100));
        assert_eq!(o.due(10_000), Duration::from_secs(1));
        assert!(o.due(o.total() - 1) < Duration::from_secs(20));
        let odd = options(3, 1, 50);
        assert_eq!(odd.due(1), Duration::from_nanos(333_333_333));
    }

    #[test]
    fn the_record_share_is_exact_and_spread() {
        for percent in [0u8, 1, 30, 50, 99, 100] {
            let o = options(1, 1, percent);
            let records = (0..1_000).filter(|k| o.records(*k)).count();
            assert_eq!(records, usize::from(percent) * 10, "{percent}%");
        }
        let half = options(1, 1, 50);
        let pattern: Vec<bool> = (0..6).map(|k| half.records(k)).collect();
        assert_eq!(pattern, [false, true, false, true, false, true]);
    }

    fn techcart() -> Vec<ListedProcessor> {
        let p = |id: &str, countries: &[&str], methods: &[&str]| ListedProcessor {
            processor_id: id.into(),
            countries: countries.iter().map(|s| s.to_string()).collect(),
            payment_methods: methods.iter().map(|s| s.to_string()).collect(),
        };
        vec![
            p("processor_a", &["BR"], &["PIX", "CARD"]),
            p("processor_b", &["BR", "MX", "CO"], &["CARD"]),
            p("processor_c", &["BR"], &["PIX"]),
        ]
    }

    #[test]
    fn the_workload_covers_every_segment_with_mostly_approvals() {
        let w = Workload::for_registry(&techcart()).unwrap();
        // a: 2 segments, b: 3, c: 1.
        assert_eq!(w.records.len(), 6 * RESULTS.len());
        let bodies: Vec<serde_json::Value> = w
            .records
            .iter()
            .map(|b| serde_json::from_slice(b).unwrap())
            .collect();
        assert!(bodies.iter().any(|b| b["processor_id"] == "processor_b"
            && b["payment_method"] == "CARD"
            && b["country"] == "CO"));
        let approved = bodies.iter().filter(|b| b["result"] == "approved").count();
        assert_eq!(approved * 100 / bodies.len(), 85);
        assert_eq!(
            w.recommends,
            [
                "/api/v1/routing/recommend?payment_method=CARD&country=BR",
                "/api/v1/routing/recommend?payment_method=CARD&country=CO",
                "/api/v1/routing/recommend?payment_method=CARD&country=MX",
                "/api/v1/routing/recommend?payment_method=PIX&country=BR",
            ]
        );
    }

    #[test]
    fn a_registry_without_segments_reports_bare_outcomes() {
        let rinha = vec![ListedProcessor {
            processor_id: "default".into(),
            countries: vec![],
            payment_methods: vec![],
        }];
        let w = Workload::for_registry(&rinha).unwrap();
        let body: serde_json::Value = serde_json::from_slice(&w.records[0]).unwrap();
        assert!(body.get("payment_method").is_none());
        assert_eq!(w.recommends.len(), 1);
        assert!(Workload::for_registry(&[]).is_err());
    }

    #[test]
    fn the_report_reads_and_serializes() {
        let o = options(1_000, 2, 50);
        let tally = Tally {
            sent: 2_000,
            ok: 2_000,
            record_nanos: vec![200_000; 1_000],
            recommend_nanos: vec![300_000; 1_000],
            slip_nanos: vec![10_000; 2_000],
            ..Tally::default()
        };
        let report = IntelReport::new(&o, Timestamp::from_millis(0), tally, Duration::from_secs(2));
        assert_eq!(report.throughput, 1_000.0);
        assert!(report.target_met);
        let text = report.to_string();
        assert!(text.contains("1000 req/s over 2.00 s"), "{text}");
        assert!(text.contains("p99 < 1 ms at 1000 req/s: met"), "{text}");
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["latency_ms"]["record"]["p99_ms"], 0.2);
        assert_eq!(json["latency_ms"]["recommend"]["count"], 1_000);
        assert_eq!(json["requests"]["ok"], 2_000);
        assert_eq!(json["target_met"], true);
    }
}
