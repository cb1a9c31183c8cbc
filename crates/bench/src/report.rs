//! The readable side of the reports: each bench prints a summary on stderr
//! (the JSON goes to `--out` or stdout). Every bench prints a title line,
//! then rows of `  label         text` with the label in a column of its
//! own, then (crash, chaos) a verdict, (intel) whether its target was met;
//! the final's stage table is rinha's own. This module is that printer, and
//! the one latency figure every report uses ([`Latency`]: k6's percentiles,
//! in ms); it knows no bench.

use std::fmt;
use std::path::Path;

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::Serialize;

use crate::score::percentile;

/// The width of a row's label column.
const LABEL: usize = 13;

/// One row of a summary: `  label         text`.
pub fn row(f: &mut fmt::Formatter<'_>, label: &str, text: impl fmt::Display) -> fmt::Result {
    writeln!(f, "  {label:<LABEL$} {text}")
}

/// A report's last row: as [`row`], without the line break.
pub fn last_row(f: &mut fmt::Formatter<'_>, label: &str, text: impl fmt::Display) -> fmt::Result {
    write!(f, "  {label:<LABEL$} {text}")
}

/// A report's verdict word.
pub fn verdict(passed: bool) -> &'static str {
    if passed { "PASSED" } else { "FAILED" }
}

/// The end of a reliability report: its warnings, where its logs were kept,
/// and the verdict (the last line, without a line break).
pub fn write_end(
    f: &mut fmt::Formatter<'_>,
    warnings: &[String],
    logs: Option<&Path>,
    passed: bool,
) -> fmt::Result {
    for w in warnings {
        row(f, "warning", w)?;
    }
    if let Some(dir) = logs {
        row(f, "logs", dir.display())?;
    }
    last_row(f, "verdict", verdict(passed))
}

/// Percentiles of a set of durations, in milliseconds, with k6's
/// interpolation between the closest ranks (as `reroute bench rinha`
/// computes the score's p99): the one latency figure of every report.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Default)]
pub struct Latency {
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    /// Of durations in nanoseconds; sorts `nanos` in place.
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

    /// Of durations in whole milliseconds; `None` when there are none.
    pub fn of_millis(millis: impl IntoIterator<Item = u64>) -> Option<Self> {
        let mut nanos: Vec<u64> = millis
            .into_iter()
            .map(|ms| ms.saturating_mul(1_000_000))
            .collect();
        (!nanos.is_empty()).then(|| Self::of(&mut nanos))
    }
}

impl fmt::Display for Latency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "p50 {} ms, p90 {} ms, p99 {} ms, max {} ms (n={})",
            self.p50_ms, self.p90_ms, self.p99_ms, self.max_ms, self.count
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

    #[test]
    fn whole_milliseconds_give_the_same_figures_and_none_of_nothing() {
        let l = Latency::of_millis(1..=100).unwrap();
        assert_eq!(
            (l.p50_ms, l.p99_ms, l.max_ms, l.count),
            (50.5, 99.01, 100.0, 100)
        );
        assert!(Latency::of_millis([]).is_none());
    }
}
