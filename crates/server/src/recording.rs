//! Outcomes being recorded: from a processor's answer until the outcome's
//! commit, and the summaries that wait for them.
//!
//! A processor stores a payment before it answers, so once the answer is in
//! the worker's hands the payment is in the processor's books, while the
//! ledger learns it only at the commit (a few milliseconds later; longer
//! when the store is slow). A summary read in between would miss it, and an
//! auditor comparing the two would see an inconsistency. So the worker marks
//! every processed outcome [`Recording::begin`] until its commit, and
//! `GET /payments-summary` first waits ([`Recording::settled`]) until none
//! of them falls in its window (RELIABILITY.md, "The ledger agrees with the
//! processors' books"). The outcomes other instances sharing the store are
//! recording are out of sight: there a summary also waits a fixed settle
//! ([`Recording::hold_until`]) and counts only what was answered by the
//! time it was asked.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use reroute_core::{Timestamp, Window};
use tokio::sync::Notify;

#[derive(Default)]
pub struct Recording {
    being_recorded: Mutex<Being>,
    /// Woken when an outcome is recorded while a summary waits.
    recorded: Notify,
    /// Summaries waiting now.
    waiting: AtomicUsize,
}

#[derive(Default)]
struct Being {
    /// (`requestedAt` in ms, order of arrival) of each outcome being
    /// recorded.
    outcomes: BTreeSet<(i64, u64)>,
    /// The order the next one gets.
    next: u64,
}

/// An outcome being recorded, until dropped (after its commit, or when the
/// worker gives up on it).
pub struct Guard<'a> {
    recording: &'a Recording,
    key: (i64, u64),
}

impl Recording {
    fn being(&self) -> std::sync::MutexGuard<'_, Being> {
        // Updated in one step: a poisoned lock holds a whole set.
        self.being_recorded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// An outcome with this `requestedAt` is being recorded.
    pub fn begin(&self, requested_at: Timestamp) -> Guard<'_> {
        let mut being = self.being();
        let key = (requested_at.millis(), being.next);
        being.next += 1;
        being.outcomes.insert(key);
        Guard {
            recording: self,
            key,
        }
    }

    /// Outcomes being recorded now.
    pub fn len(&self) -> usize {
        self.being().outcomes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.being().outcomes.is_empty()
    }

    /// Summaries waiting for outcomes now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Whether an outcome that began before `before` (in order of arrival)
    /// is still being recorded with its `requestedAt` in `window`.
    fn any_in(&self, window: Window, before: u64) -> bool {
        // An empty window (from after to) holds nothing, and is no range.
        if window.from > window.to {
            return false;
        }
        self.being()
            .outcomes
            .range((window.from.millis(), 0)..=(window.to.millis(), u64::MAX))
            .any(|(_, order)| *order < before)
    }

    /// Waits until no outcome that was being recorded when it was called
    /// has its `requestedAt` in `window`, at most `limit`. `false` if some
    /// still was then. Outcomes answered after the call are not waited
    /// for: their processor stored them after an auditor asking both sides
    /// at once asked it, so counting them would count more than its books.
    pub async fn settled(&self, window: Window, limit: Duration) -> bool {
        let before = self.being().next;
        if !self.any_in(window, before) {
            return true;
        }
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let _waiting = Waiting(&self.waiting);
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            // Created before the check: a recording finished in between
            // still wakes it.
            let recorded = self.recorded.notified();
            if !self.any_in(window, before) {
                return true;
            }
            if tokio::time::timeout_at(deadline, recorded).await.is_err() {
                return !self.any_in(window, before);
            }
        }
    }

    /// Waits until `deadline`, counted among the waiting summaries: the
    /// settle a summary gives the other instances sharing the store to
    /// commit the outcomes they had been answered when it was asked.
    pub async fn hold_until(&self, deadline: tokio::time::Instant) {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let _waiting = Waiting(&self.waiting);
        tokio::time::sleep_until(deadline).await;
    }
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        self.recording.being().outcomes.remove(&self.key);
        if self.recording.waiting.load(Ordering::Relaxed) > 0 {
            self.recording.recorded.notify_waiters();
        }
    }
}

struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    fn window(from: i64, to: i64) -> Window {
        Window::new(Some(at(from)), Some(at(to)))
    }

    /// A summary of `window` in a task of its own, once it waits.
    async fn waiting_summary(
        recording: &Arc<Recording>,
        window: Window,
    ) -> tokio::task::JoinHandle<bool> {
        let summary = tokio::spawn({
            let recording = Arc::clone(recording);
            async move { recording.settled(window, Duration::from_secs(600)).await }
        });
        while recording.waiting() == 0 {
            tokio::task::yield_now().await;
        }
        summary
    }

    #[tokio::test]
    async fn a_window_without_outcomes_being_recorded_is_settled_at_once() {
        let recording = Recording::default();
        let _outside = recording.begin(at(100));
        assert!(recording.settled(window(0, 99), Duration::ZERO).await);
        assert!(recording.settled(window(101, 200), Duration::ZERO).await);
        assert!(
            recording.settled(window(200, 0), Duration::ZERO).await,
            "an empty window"
        );
        assert_eq!(recording.len(), 1);
        assert_eq!(recording.waiting(), 0);
    }

    #[tokio::test]
    async fn the_bounds_are_inclusive_and_the_limit_gives_up() {
        let recording = Recording::default();
        let _edge = recording.begin(at(100));
        assert!(!recording.settled(window(100, 200), Duration::ZERO).await);
        assert!(!recording.settled(window(0, 100), Duration::ZERO).await);
        assert_eq!(
            recording.waiting(),
            0,
            "a summary that gave up waits no more"
        );
    }

    #[tokio::test]
    async fn a_summary_waits_for_every_outcome_in_its_window() {
        let recording = Arc::new(Recording::default());
        let first = recording.begin(at(100));
        let second = recording.begin(at(100));
        let summary = waiting_summary(&recording, window(0, 200)).await;
        drop(first);
        assert_eq!(recording.len(), 1);
        // Woken by the first, it looks again and waits for the second.
        tokio::task::yield_now().await;
        tokio::task::yield_now().await;
        assert_eq!(
            recording.waiting(),
            1,
            "gave up with one still being recorded"
        );
        drop(second);
        assert!(summary.await.unwrap(), "settled once both were recorded");
        assert!(recording.is_empty());
    }

    #[tokio::test]
    async fn a_summary_does_not_wait_for_outcomes_answered_after_it_came() {
        let recording = Arc::new(Recording::default());
        let before = recording.begin(at(100));
        let summary = waiting_summary(&recording, window(0, 200)).await;
        let _after = recording.begin(at(150));
        drop(before);
        assert!(
            summary.await.unwrap(),
            "settled with a later outcome still being recorded"
        );
        assert_eq!(recording.len(), 1);
    }
}
