//! What `reroute bench intel` reports: latency per endpoint, requests by
//! outcome, throughput and how late requests left their schedule, and
//! whether the target (p99 under 1 ms at the asked rate) was met; as JSON
//! and as a readable summary.

use std::fmt;

use reroute_core::Timestamp;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::Serialize;

use crate::score::percentile;

/// The target this bench checks: p99 under this many ms...
pub const TARGET_P99_MS: f64 = 1.0;
/// ... while achieving at least this share of the asked rate.
pub const TARGET_RATE_SHARE: f64 = 0.99;

/// Percentiles of a set of durations, in milliseconds (k6's interpolation,
/// as `reroute bench rinha` computes its p99).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Default)]
pub struct Latency {
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    /// Sorts `nanos` in place.
    pub fn of(nanos: &mut [u64]) -> Self {
        nanos.sort_unstable();
        let at = |p: Decimal| {
            percentile(nanos, p)
                .round_dp(4)
                .to_f64()
                .unwrap_or(f64::NAN)
        };
        Self {
            count: nanos.len() as u64,
            p50_ms: at(Decimal::new(50, 2)),
            p90_ms: at(Decimal::new(90, 2)),
            p99_ms: at(Decimal::new(99, 2)),
            max_ms: at(Decimal::ONE),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Requests {
    /// Requests due within the duration.
    pub scheduled: u64,
    pub sent: u64,
    /// Answered 2xx.
    pub ok: u64,
    /// Answered otherwise.
    pub rejected: u64,
    /// No answer: connection refused, reset, bad HTTP.
    pub errors: u64,
    /// No answer within the client timeout (2 s).
    pub timeouts: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Endpoints {
    /// `POST /api/v1/transactions`.
    pub record: Latency,
    /// `GET /api/v1/routing/recommend`.
    pub recommend: Latency,
    pub all: Latency,
}

/// The result of a run: written as JSON to `--out`, and as a summary to
/// stderr.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IntelReport {
    pub target: String,
    pub started_at: Timestamp,
    pub rate: u32,
    pub duration_s: f64,
    pub connections: u32,
    pub record_percent: u8,
    pub requests: Requests,
    /// From the first due instant to the last answer.
    pub elapsed_s: f64,
    /// 2xx answers per second over `elapsed_s`.
    pub throughput: f64,
    /// Per endpoint, from the request written to the last byte of the
    /// answer, 2xx answers only.
    pub latency_ms: Endpoints,
    /// How late requests left against the open-loop schedule (timer
    /// granularity, and any moment the client or the machine fell behind).
    pub start_slip_ms: Latency,
    pub target_p99_ms: f64,
    /// p99 of all requests under the target at 99% or more of the rate,
    /// every request answered 2xx.
    pub target_met: bool,
}

/// p99 under [`TARGET_P99_MS`], at least [`TARGET_RATE_SHARE`] of the rate,
/// and every request answered 2xx.
pub fn verdict(p99_ms: f64, throughput: f64, rate: u32, requests: &Requests) -> bool {
    p99_ms < TARGET_P99_MS
        && throughput >= TARGET_RATE_SHARE * f64::from(rate)
        && requests.ok == requests.scheduled
}

impl fmt::Display for IntelReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.requests;
        writeln!(
            f,
            "intel: {} req/s for {}s against {} ({} connections, {}% record / {}% recommend)",
            self.rate,
            self.duration_s,
            self.target,
            self.connections,
            self.record_percent,
            100 - self.record_percent
        )?;
        writeln!(
            f,
            "  requests    {} scheduled, {} sent, {} answered 2xx, {} other, {} errors, {} timeouts",
            r.scheduled, r.sent, r.ok, r.rejected, r.errors, r.timeouts
        )?;
        writeln!(
            f,
            "  throughput  {} req/s over {:.2} s (asked {})",
            self.throughput, self.elapsed_s, self.rate
        )?;
        writeln!(
            f,
            "  latency ms  {:>9} {:>8} {:>8} {:>8} {:>8}   (request written -> last byte)",
            "count", "p50", "p90", "p99", "max"
        )?;
        let row = |f: &mut fmt::Formatter<'_>, name: &str, l: &Latency| {
            writeln!(
                f,
                "    {name:<9} {:>9} {:>8.3} {:>8.3} {:>8.3} {:>8.3}",
                l.count, l.p50_ms, l.p90_ms, l.p99_ms, l.max_ms
            )
        };
        row(f, "record", &self.latency_ms.record)?;
        row(f, "recommend", &self.latency_ms.recommend)?;
        row(f, "all", &self.latency_ms.all)?;
        let s = &self.start_slip_ms;
        writeln!(
            f,
            "  start slip  p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms (requests leaving late against the schedule)",
            s.p50_ms, s.p99_ms, s.max_ms
        )?;
        writeln!(
            f,
            "  target      p99 < {} ms at {} req/s: {}",
            self.target_p99_ms,
            self.rate,
            if self.target_met { "met" } else { "NOT met" }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_percentiles_are_in_milliseconds() {
        let mut nanos: Vec<u64> = (1..=100).rev().map(|i| i * 10_000).collect();
        let l = Latency::of(&mut nanos);
        assert_eq!(l.count, 100);
        assert_eq!(l.max_ms, 1.0);
        assert!((l.p50_ms - 0.505).abs() < 1e-9, "{l:?}");
        assert!((l.p99_ms - 0.9901).abs() < 1e-9, "{l:?}");
        assert_eq!(Latency::of(&mut []).count, 0);
    }

    fn requests(scheduled: u64, ok: u64) -> Requests {
        Requests {
            scheduled,
            sent: scheduled,
            ok,
            rejected: scheduled - ok,
            errors: 0,
            timeouts: 0,
        }
    }

    #[test]
    fn the_target_needs_the_p99_the_rate_and_every_answer() {
        assert!(verdict(0.8, 9_950.0, 10_000, &requests(10, 10)));
        assert!(!verdict(1.0, 10_000.0, 10_000, &requests(10, 10)));
        assert!(!verdict(0.5, 9_000.0, 10_000, &requests(10, 10)));
        assert!(!verdict(0.5, 10_000.0, 10_000, &requests(10, 9)));
    }
}
