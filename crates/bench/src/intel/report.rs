//! What `reroute bench intel` reports: latency per endpoint, requests by
//! outcome, throughput and how late requests left their schedule, and
//! whether the target (p99 under 1 ms at the asked rate) was met; as JSON
//! and as a readable summary.

use std::fmt;

use reroute_core::Timestamp;
use serde::Serialize;

pub use crate::report::Latency;
use crate::report::{last_row, row};

/// The target this bench checks: p99 under this many ms...
pub const TARGET_P99_MS: f64 = 1.0;
/// ... while achieving at least this share of the asked rate.
pub const TARGET_RATE_SHARE: f64 = 0.99;

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
        let text = format!(
            "{} scheduled, {} sent, {} answered 2xx, {} other, {} errors, {} timeouts",
            r.scheduled, r.sent, r.ok, r.rejected, r.errors, r.timeouts
        );
        row(f, "requests", text)?;
        let text = format!(
            "{} req/s over {:.2} s (asked {})",
            self.throughput, self.elapsed_s, self.rate
        );
        row(f, "throughput", text)?;
        let e = &self.latency_ms;
        for (name, l) in [
            ("record", e.record),
            ("recommend", e.recommend),
            ("all", e.all),
        ] {
            row(f, name, format_args!("{l} (request written -> last byte)"))?;
        }
        let late = "(requests leaving late against the schedule)";
        row(
            f,
            "start slip",
            format_args!("{} {late}", self.start_slip_ms),
        )?;
        let met = if self.target_met { "met" } else { "NOT met" };
        let text = format!(
            "p99 < {} ms at {} req/s: {met}",
            self.target_p99_ms, self.rate
        );
        last_row(f, "target", text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
