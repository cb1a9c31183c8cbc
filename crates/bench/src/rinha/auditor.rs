//! The consistency checker: one user that, every ~10 s, asks the backend and
//! both processors for the same window, `[now - 15 s, now - margin]` (1.5 s in
//! the preview, 2 s in the final), and counts the payments the backend
//! accounts differently from the processors' books.
//!
//! Counting follows the script that runs ([`Counting`]), in `totalRequests`:
//! the preview nets the two processors out, the final adds each one's
//! difference. A failed summary counts as all zeros, as in the scripts. Each
//! check's per-processor differences are kept too, so a payment booked under
//! the wrong processor (which the preview's formula does not see) still shows.

use reroute_core::{Timestamp, Window};
use serde::Serialize;
use tokio::time::Instant;

use super::api::{Backend, BackendSummary, Services, before, zeros_on_error};
use super::progress::Live;
use super::scenario::{AUDIT_LOOKBACK, Counting};
use super::timeline::Timeline;
use crate::http::HttpStats;
use crate::processors::ProcessorSummary;

/// One check: what each side said for one window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Audit {
    pub from: Timestamp,
    pub to: Timestamp,
    pub backend: BackendSummary,
    pub default: ProcessorSummary,
    pub fallback: ProcessorSummary,
    /// Backend minus processor, in requests, for `default`.
    pub default_difference: i64,
    /// Backend minus processor, in requests, for `fallback`.
    pub fallback_difference: i64,
    /// What the official script adds to `payments_inconsistency`.
    pub inconsistencies: u64,
    /// A check that disagreed is read again, same window, [`RECHECK_AFTER`]
    /// later (not counted): whether the backend was late (it agrees then)
    /// or wrong (it still does not).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub later: Option<Recheck>,
}

/// The same window read again after a disagreeing check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Recheck {
    pub after_ms: u64,
    pub default_difference: i64,
    pub fallback_difference: i64,
}

/// How long after a disagreeing check its window is read again: past every
/// send of the window that a processor could still be answering at the
/// check (the final's slowest stage answers in 5 s).
pub const RECHECK_AFTER: std::time::Duration = std::time::Duration::from_secs(6);

impl Audit {
    /// Compares the three answers for one window.
    pub fn compare(
        window: Window,
        backend: BackendSummary,
        default: ProcessorSummary,
        fallback: ProcessorSummary,
        counting: Counting,
    ) -> Audit {
        let difference = |ours: u64, theirs: u64| -> i64 {
            let d = i128::from(ours) - i128::from(theirs);
            i64::try_from(d).unwrap_or(if d < 0 { i64::MIN } else { i64::MAX })
        };
        let default_difference = difference(backend.default.total_requests, default.total_requests);
        let fallback_difference =
            difference(backend.fallback.total_requests, fallback.total_requests);
        let inconsistencies = counting.count(default_difference, fallback_difference);
        Audit {
            from: window.from,
            to: window.to,
            backend,
            default,
            fallback,
            default_difference,
            fallback_difference,
            inconsistencies,
            later: None,
        }
    }

    /// Whether the backend disagreed with a processor at all, even where the
    /// official count nets the differences out.
    pub fn disagrees(&self) -> bool {
        self.default_difference != 0 || self.fallback_difference != 0
    }
}

/// Every check of the run.
#[derive(Debug, Default)]
pub struct Audits {
    pub audits: Vec<Audit>,
    pub http: HttpStats,
    /// Summaries that could not be read (counted as zeros).
    pub warnings: Vec<String>,
}

impl Audits {
    pub fn inconsistencies(&self) -> u64 {
        self.audits.iter().map(|a| a.inconsistencies).sum()
    }
}

/// Checks from the start of the load until its end, pausing the (scaled)
/// interval after each check.
pub async fn run(
    services: &Services,
    timeline: &Timeline,
    counting: Counting,
    started: Instant,
    live: &Live,
) -> Audits {
    let deadline = started + timeline.duration();
    let mut backend = Backend::new(services.backend.clone());
    let (mut default, mut fallback) = services.processors();
    let mut out = Audits::default();
    while Instant::now() < deadline {
        let now = Timestamp::now();
        let window = Window {
            from: before(now, AUDIT_LOOKBACK),
            to: before(now, timeline.audit_margin()),
        };
        let (d, f, b) = tokio::join!(
            default.summary(window),
            fallback.summary(window),
            backend.summary(window)
        );
        let [d, f] = [d, f].map(|r| zeros_on_error(r, "audit", &mut out.warnings));
        let b = zeros_on_error(b, "audit", &mut out.warnings);
        let mut audit = Audit::compare(window, b, d, f, counting);
        if audit.disagrees() {
            tokio::time::sleep(RECHECK_AFTER).await;
            let (d, f, b) = tokio::join!(
                default.summary(window),
                fallback.summary(window),
                backend.summary(window)
            );
            if let (Ok(d), Ok(f), Ok(b)) = (d, f, b) {
                let again = Audit::compare(window, b, d, f, counting);
                audit.later = Some(Recheck {
                    after_ms: RECHECK_AFTER.as_millis() as u64,
                    default_difference: again.default_difference,
                    fallback_difference: again.fallback_difference,
                });
            }
        }
        Live::add(&live.inconsistencies, audit.inconsistencies);
        tracing::debug!(?audit, "consistency check");
        out.audits.push(audit);
        tokio::time::sleep(timeline.audit_interval()).await;
    }
    out.http.merge(backend.into_stats());
    out.http.merge(default.into_stats());
    out.http.merge(fallback.into_stats());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rinha::api::Totals;
    use crate::rinha::scenario::Counting::{Netted, PerProcessor};

    fn backend(default: u64, fallback: u64) -> BackendSummary {
        BackendSummary {
            default: Totals {
                total_requests: default,
                ..Totals::default()
            },
            fallback: Totals {
                total_requests: fallback,
                ..Totals::default()
            },
        }
    }

    fn books(requests: u64) -> ProcessorSummary {
        ProcessorSummary {
            total_requests: requests,
            ..ProcessorSummary::default()
        }
    }

    fn window() -> Window {
        Window {
            from: Timestamp::from_millis(0),
            to: Timestamp::from_millis(13_500),
        }
    }

    /// Each row: the backend's and the books' counts (default, fallback),
    /// and the inconsistencies under rinha.js's count and rinha-final.js's.
    #[test]
    fn each_script_counts_the_differences_its_own_way() {
        let rows = [
            // Agreeing books.
            ((120, 7), (120, 7), 0, 0),
            // Missing and extra payments.
            ((118, 7), (120, 7), 2, 2),
            ((121, 9), (120, 7), 3, 3),
            // A payment booked under the wrong processor: netted out by
            // the preview, counted twice by the final.
            ((121, 6), (120, 7), 0, 2),
            ((118, 9), (120, 7), 0, 4),
        ];
        for (ours, theirs, netted, per_processor) in rows {
            let compare = |counting| {
                let b = backend(ours.0, ours.1);
                Audit::compare(window(), b, books(theirs.0), books(theirs.1), counting)
            };
            assert_eq!(compare(Netted).inconsistencies, netted, "{ours:?}");
            assert_eq!(compare(PerProcessor).inconsistencies, per_processor);
            assert_eq!(compare(Netted).disagrees(), ours != theirs);
        }
        let a = Audit::compare(window(), backend(118, 7), books(120), books(7), Netted);
        assert_eq!(a.default_difference, -2);
    }

    #[test]
    fn a_summary_that_failed_counts_as_zeros() {
        for counting in [Netted, PerProcessor] {
            let a = Audit::compare(
                window(),
                BackendSummary::default(),
                books(120),
                books(7),
                counting,
            );
            assert_eq!(a.inconsistencies, 127);
        }
    }
}
