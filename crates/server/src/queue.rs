//! The in-memory queue of accepted payments waiting for a worker: between
//! the store's accept ([`crate::api::payments`], [`crate::api::frames`],
//! or a takeover by [`crate::leases`]) and [`crate::worker`].
//!
//! It is only a fast path: every payment in it is already durable in the
//! store, which is the queue that survives a crash ([`reroute_store::Store::pending`]
//! refills this one at start-up).

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use reroute_core::CorrelationId;
use reroute_store::PendingPayment;
use tokio::sync::Notify;

/// A payment waiting for a worker.
#[derive(Debug)]
pub struct Job {
    pub pending: PendingPayment,
    /// `pending.attempt` is the plan this instance recorded when it accepted
    /// the payment, and nobody has sent it: the worker may send it as is, or
    /// replace it, without recording an attempt first. `false` for payments
    /// taken over from the store, whose attempt may have been sent.
    pub unsent_plan: bool,
    /// How many purges had happened when a worker took it ([`Queue::pop`]):
    /// a purge since then dropped it ([`Queue::purged_since`]).
    pub taken_after: u64,
}

impl Job {
    /// A payment this instance just accepted, with its plan if it has one.
    pub fn accepted(pending: PendingPayment) -> Self {
        let unsent_plan = pending.attempt.is_some();
        Self {
            pending,
            unsent_plan,
            taken_after: 0,
        }
    }

    /// A payment taken over from the store (a previous run's, or a dead
    /// instance's): its open attempt must be resolved where it may have gone.
    pub fn reclaimed(pending: PendingPayment) -> Self {
        Self {
            pending,
            unsent_plan: false,
            taken_after: 0,
        }
    }
}

#[derive(Default)]
pub struct Queue {
    inner: Mutex<Inner>,
    /// One permit per push: a pop that finds the queue empty waits here.
    ready: Notify,
    /// Purges so far ([`Queue::clear`]).
    purges: AtomicU64,
}

#[derive(Default)]
struct Inner {
    items: VecDeque<Job>,
    /// Every payment waiting or being worked on ([`Queue::done`] when a
    /// worker lets go of it): a payment is queued once, whoever finds it.
    known: HashSet<CorrelationId>,
    /// Sweeps reading the store now ([`Queue::sweep`]).
    sweeps: usize,
    /// The payments workers let go of while a sweep was reading.
    let_go: HashSet<CorrelationId>,
}

impl Queue {
    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Push and pop cannot panic half-way; a poisoned lock holds a
        // consistent queue.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `job` unless its payment is already waiting or being worked
    /// on; returns whether it was queued.
    pub fn push(&self, job: Job) -> bool {
        let mut inner = self.inner();
        if !inner.known.insert(job.pending.payment.id) {
            return false;
        }
        inner.items.push_back(job);
        drop(inner);
        self.ready.notify_one();
        true
    }

    /// The next payment, oldest first; waits while the queue is empty. It
    /// stays known until [`Queue::done`].
    pub async fn pop(&self) -> Job {
        loop {
            let ready = self.ready.notified();
            if let Some(mut job) = self.inner().items.pop_front() {
                job.taken_after = self.purges.load(Ordering::Acquire);
                return job;
            }
            ready.await;
        }
    }

    /// A worker let go of this payment (finished, or no longer held).
    pub fn done(&self, id: CorrelationId) {
        let mut inner = self.inner();
        inner.known.remove(&id);
        if inner.sweeps > 0 {
            inner.let_go.insert(id);
        }
    }

    /// Starts a sweep: a read of the store for payments this instance
    /// holds but may not have queued ([`crate::leases::adopt_unqueued`]).
    /// Begin it before the read. What the read finds pending may have been
    /// finished by a worker since its snapshot, and let go of (no longer
    /// known here) before [`Sweep::adopt`]: the sweep remembers every
    /// payment let go of while it runs, and does not queue those again.
    pub fn sweep(&self) -> Sweep<'_> {
        self.inner().sweeps += 1;
        Sweep { queue: self }
    }

    /// Drops everything waiting (after a purge); returns how many. The
    /// payments workers hold are dropped too: each learns it from
    /// [`Queue::purged_since`] before it sends.
    pub fn clear(&self) -> usize {
        let mut inner = self.inner();
        self.purges.fetch_add(1, Ordering::AcqRel);
        let Inner { items, known, .. } = &mut *inner;
        let dropped = items.len();
        for job in items.drain(..) {
            known.remove(&job.pending.payment.id);
        }
        dropped
    }

    /// Whether a purge dropped a job taken after `taken_after` purges.
    pub fn purged_since(&self, taken_after: u64) -> bool {
        self.purges.load(Ordering::Acquire) != taken_after
    }

    /// When the oldest waiting payment was accepted.
    pub fn oldest_accepted_at(&self) -> Option<reroute_core::Timestamp> {
        self.inner()
            .items
            .front()
            .map(|j| j.pending.payment.accepted_at)
    }

    /// Payments waiting for a worker (not counting those being worked on).
    pub fn depth(&self) -> usize {
        self.inner().items.len()
    }
}

/// A read of the store for unqueued payments, begun by [`Queue::sweep`].
pub struct Sweep<'a> {
    queue: &'a Queue,
}

impl Sweep<'_> {
    /// Queues what the read found, except payments waiting or worked on and
    /// those let go of since the sweep began (finished after the read's
    /// snapshot); returns how many were queued.
    pub fn adopt(self, found: Vec<PendingPayment>) -> usize {
        let mut queued = 0;
        {
            let mut inner = self.queue.inner();
            for pending in found {
                let id = pending.payment.id;
                if inner.let_go.contains(&id) || !inner.known.insert(id) {
                    continue;
                }
                inner.items.push_back(Job::reclaimed(pending));
                queued += 1;
            }
        }
        for _ in 0..queued {
            self.queue.ready.notify_one();
        }
        queued
    }
}

impl Drop for Sweep<'_> {
    fn drop(&mut self) {
        let mut inner = self.queue.inner();
        inner.sweeps -= 1;
        if inner.sweeps == 0 {
            inner.let_go.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reroute_core::{CorrelationId, Money, Timestamp};
    use reroute_store::NewPayment;

    fn pending(cents: i64) -> Job {
        Job::accepted(PendingPayment {
            payment: NewPayment {
                id: CorrelationId::new_random(),
                amount: Money::from_minor(cents),
                payment_method: None,
                country: None,
                accepted_at: Timestamp::from_millis(0),
            },
            attempt: None,
            unrecorded: false,
        })
    }

    #[tokio::test]
    async fn payments_come_out_in_order_and_a_waiting_pop_is_woken() {
        let q = std::sync::Arc::new(Queue::default());
        let waiter = tokio::spawn({
            let q = q.clone();
            async move { q.pop().await.pending.payment.amount.minor() }
        });
        q.push(pending(1));
        q.push(pending(2));
        assert_eq!(waiter.await.unwrap(), 1);
        assert_eq!(q.pop().await.pending.payment.amount.minor(), 2);
    }

    #[tokio::test]
    async fn a_payment_is_queued_once_until_its_worker_is_done() {
        let q = Queue::default();
        let payment = pending(1).pending;
        let id = payment.payment.id;
        let again = || Job::reclaimed(payment.clone());
        assert!(q.push(Job::accepted(payment.clone())));
        assert!(!q.push(again()), "already waiting");
        q.pop().await;
        assert!(!q.push(again()), "being worked on");
        q.done(id);
        assert!(q.push(again()), "known no more once done");
        assert_eq!(q.clear(), 1);
        assert!(q.push(again()), "cleared");
    }

    /// The sweep's read saw the payment pending; a worker finished it and
    /// let go of it before the sweep queued what it read. Queued again, it
    /// would be routed and fenced by the store for nothing (and reported as
    /// a payment "never queued").
    #[tokio::test]
    async fn a_payment_let_go_while_a_sweep_reads_is_not_queued_again() {
        let q = Queue::default();
        let finished = pending(1).pending;
        let unqueued = pending(2).pending;
        q.push(Job::accepted(finished.clone()));
        q.pop().await;
        let sweep = q.sweep();
        // The read's snapshot: both pending. Then the worker lets go.
        let read = vec![finished.clone(), unqueued.clone()];
        q.done(finished.payment.id);
        assert_eq!(sweep.adopt(read), 1);
        let adopted = q.pop().await;
        assert_eq!(adopted.pending.payment.id, unqueued.payment.id);
        assert!(!adopted.unsent_plan, "a swept payment may have been sent");
        assert_eq!(q.depth(), 0);
        // Let go of before the next sweep began: that sweep's read cannot
        // have seen it pending unless it still is.
        let next = q.sweep();
        assert_eq!(next.adopt(vec![finished.clone()]), 1);
    }

    #[tokio::test]
    async fn a_job_taken_before_a_purge_knows_it_was_dropped() {
        let q = Queue::default();
        q.push(pending(1));
        let before = q.pop().await;
        assert!(!q.purged_since(before.taken_after));
        q.clear();
        assert!(q.purged_since(before.taken_after), "taken, then purged");
        q.push(pending(2));
        let after = q.pop().await;
        assert!(!q.purged_since(after.taken_after), "taken after the purge");
    }

    #[tokio::test]
    async fn clear_does_not_wait_for_idle_workers() {
        let q = std::sync::Arc::new(Queue::default());
        let idle = tokio::spawn({
            let q = q.clone();
            async move { q.pop().await }
        });
        tokio::task::yield_now().await;
        assert_eq!(q.clear(), 0);
        q.push(pending(1));
        q.push(pending(2));
        idle.await.unwrap();
        assert_eq!(q.clear(), 1);
        assert_eq!(q.depth(), 0);
    }
}
