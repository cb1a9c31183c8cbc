//! Sends whose outcome is not yet in the ledger, by `requestedAt`, so that a
//! summary can wait for the ones the processor has most likely counted
//! already.
//!
//! A processor stores a payment when its delay ends, and the router records
//! it only once the answer is back and committed: for a moment the
//! processor's books have it and the ledger does not. An auditor whose
//! window ends just where such a payment's `requestedAt` falls (the Rinha
//! final asks for `[now − 15 s, now − 2 s]` while the processor answers in
//! 2 s) would count it on one side only. So before it sums a window, the
//! summary waits, briefly ([`SETTLE_BOUND`]), until no send with a
//! `requestedAt` inside the window is still unsettled.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reroute_core::Timestamp;
use tokio::sync::Notify;

/// The longest a summary waits for sends to settle: long enough for an
/// answer on its way and a group commit, short enough that a send to a slow
/// processor (which has not stored anything yet) costs a summary little.
pub const SETTLE_BOUND: Duration = Duration::from_millis(50);

#[derive(Default)]
pub struct Unsettled {
    sends: Mutex<BTreeSet<(Timestamp, u64)>>,
    next: AtomicU64,
    settled: Notify,
}

/// One send until its outcome is settled (recorded, or known not to be
/// recorded now); dropping it settles it.
pub struct Sending<'a> {
    unsettled: &'a Unsettled,
    key: (Timestamp, u64),
}

impl Unsettled {
    fn sends(&self) -> std::sync::MutexGuard<'_, BTreeSet<(Timestamp, u64)>> {
        // Inserts and removes leave the set whole: a poisoned lock is usable.
        self.sends.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A send with this `requestedAt` is leaving.
    pub fn sending(&self, requested_at: Timestamp) -> Sending<'_> {
        let key = (requested_at, self.next.fetch_add(1, Ordering::Relaxed));
        self.sends().insert(key);
        Sending {
            unsettled: self,
            key,
        }
    }

    /// Whether some unsettled send has a `requestedAt` at or before `to`.
    fn any_until(&self, to: Timestamp) -> bool {
        self.sends().first().is_some_and(|(at, _)| *at <= to)
    }

    /// Waits, at most `bound`, until no send with a `requestedAt` at or
    /// before `to` is unsettled; returns whether that was reached.
    pub async fn settle_until(&self, to: Timestamp, bound: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + bound;
        loop {
            let settled = self.settled.notified();
            if !self.any_until(to) {
                return true;
            }
            if tokio::time::timeout_at(deadline, settled).await.is_err() {
                return !self.any_until(to);
            }
        }
    }
}

impl Drop for Sending<'_> {
    fn drop(&mut self) {
        self.unsettled.sends().remove(&self.key);
        self.unsettled.settled.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    #[tokio::test(start_paused = true)]
    async fn a_summary_waits_for_a_send_inside_its_window_to_settle() {
        let u = std::sync::Arc::new(Unsettled::default());
        let inside = u.sending(at(100));
        let _later = u.sending(at(500));
        let waiter = tokio::spawn({
            let u = std::sync::Arc::clone(&u);
            async move { u.settle_until(at(200), Duration::from_secs(1)).await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "returned with a send unsettled");
        drop(inside);
        assert!(
            waiter.await.unwrap(),
            "a send after the window is no reason to wait"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_send_that_does_not_settle_costs_at_most_the_bound() {
        let u = Unsettled::default();
        let _slow = u.sending(at(100));
        let started = tokio::time::Instant::now();
        assert!(!u.settle_until(at(200), Duration::from_millis(50)).await);
        assert_eq!(started.elapsed(), Duration::from_millis(50));
    }

    #[tokio::test]
    async fn with_nothing_unsettled_a_summary_does_not_wait() {
        let u = Unsettled::default();
        assert!(u.settle_until(at(200), Duration::ZERO).await);
    }
}
