//! The readable side of the reports: each bench prints a summary on stderr
//! (the JSON goes to `--out` or stdout). Rinha, crash and chaos print a
//! title line, then rows of `  label         text` with the label in a
//! column of its own, then (crash, chaos) a verdict; intel keeps its
//! latency table. This module is that printer, and the figures the reports
//! share ([`Spread`]: percentiles with their unit); it knows no bench.

use std::fmt;
use std::path::Path;

use serde::Serialize;

/// The width of a row's label column.
const LABEL: usize = 13;

/// One row of a summary: `  label         text`.
pub fn row(f: &mut fmt::Formatter<'_>, label: &str, text: impl fmt::Display) -> fmt::Result {
    writeln!(f, "  {label:<LABEL$} {text}")
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
    write!(f, "  {:<LABEL$} {}", "verdict", verdict(passed))
}

/// Percentiles of a duration, in milliseconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Spread {
    pub count: u64,
    pub p50_ms: u64,
    pub p99_ms: u64,
    pub max_ms: u64,
}

impl Spread {
    /// Nearest-rank percentiles of `values` (ms); `None` when empty.
    pub fn of(mut values: Vec<u64>) -> Option<Self> {
        if values.is_empty() {
            return None;
        }
        values.sort_unstable();
        let rank =
            |q: f64| values[((q * values.len() as f64).ceil() as usize).clamp(1, values.len()) - 1];
        Some(Self {
            count: values.len() as u64,
            p50_ms: rank(0.50),
            p99_ms: rank(0.99),
            max_ms: *values.last().expect("not empty"),
        })
    }
}

impl fmt::Display for Spread {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "p50 {} ms, p99 {} ms, max {} ms (n={})",
            self.p50_ms, self.p99_ms, self.max_ms, self.count
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spreads_use_the_nearest_rank() {
        let s = Spread::of((1..=100).collect()).unwrap();
        assert_eq!((s.p50_ms, s.p99_ms, s.max_ms, s.count), (50, 99, 100, 100));
        assert!(Spread::of(vec![]).is_none());
    }
}
