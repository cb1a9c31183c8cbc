//! The seam between engines: the [`Store`] trait the server's edge and
//! workers call (accept, attempt, finish, reclaim, summarise), and the
//! [`Observer`] an engine tells how long its steps take. [`crate::sqlite`]
//! and [`crate::postgres`] implement it.

use std::time::Duration;

use reroute_core::{CorrelationId, Money, Timestamp, Window};

use crate::error::StoreFuture;
use crate::records::{
    Acceptance, Attempt, LedgerEntry, NewPayment, Outcome, PaymentRecord, PendingPayment,
    ProbeReport, Totals,
};

/// Where an engine reports how long the steps under its operations take,
/// so that an operator can tell a slow database from a queue in front of
/// it (the server turns the reports into metrics).
pub trait Observer: std::fmt::Debug + Send + Sync + 'static {
    fn observe(&self, step: Step, took: Duration);
}

/// A step under a store's operations ([`Observer`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Waiting for a connection of a pool (PostgreSQL).
    PoolWait,
    /// One group of writes applied and committed as one statement
    /// (PostgreSQL), with how many writes it carried.
    Group { writes: usize },
}

/// A durable queue + ledger. Every write has reached stable storage when its
/// future resolves.
pub trait Store: Send + Sync + 'static {
    /// Stores a new payment, or reports that its id is already known.
    fn accept(&self, payment: NewPayment) -> StoreFuture<'_, Acceptance> {
        self.accept_with_plan(payment, None)
    }

    /// Whether no other instance can ever take over the payments this one
    /// accepted (a lone embedded store). Only then may a worker send a
    /// planned attempt without [`Store::begin_attempt`]: with shared storage
    /// an instance that stalled past its lease could otherwise send a plan
    /// after another instance took the payment over and sent it elsewhere.
    fn exclusive(&self) -> bool {
        false
    }

    /// As [`Store::accept`], recording `plan` as the payment's open attempt
    /// in the same durable write (nothing is recorded for a duplicate). From
    /// then on the payment is treated as if `plan` may have been sent: after
    /// a crash it is resolved at that processor first. The instance that
    /// accepted it knows better: it may replace the plan with another
    /// attempt, and, on an [`Store::exclusive`] store, send it as planned
    /// without [`Store::begin_attempt`].
    fn accept_with_plan(
        &self,
        payment: NewPayment,
        plan: Option<Attempt>,
    ) -> StoreFuture<'_, Acceptance>;

    /// Stores a payment that may have been sent before a kernel crash though
    /// this store has no record of it: an accept the server's accept table
    /// kept and the store lost with its unsynced commits. It is marked
    /// unrecorded ([`PendingPayment::unrecorded`]), as the payments pending
    /// at an open under another boot are, so that it is looked up at every
    /// processor before any send. A known id is left as it is, answered as
    /// by [`Store::accept`]. Held to the durability of an accept. With
    /// PostgreSQL, whose commits do not live on the router's host, and which
    /// no accept table serves, it is [`Store::accept`].
    fn accept_unrecorded(&self, payment: NewPayment) -> StoreFuture<'_, Acceptance>;

    /// Records that `attempt` is about to be sent: before the first send of
    /// an attempt and before every re-send of it (the same attempt again).
    /// `false` if the payment is no longer pending (finished, or purged
    /// meanwhile) or no longer this instance's (taken over by another after
    /// this one's lease ran out; with PostgreSQL, also while its lease has
    /// run out and not been renewed): do not send. This is the fence that
    /// stops a stale holder.
    fn begin_attempt(&self, id: CorrelationId, attempt: Attempt) -> StoreFuture<'_, bool>;

    /// Records the known outcome, which its processor answered at
    /// `answered_at` (what [`Store::summary_answered_by`] counts by).
    /// `false` if the payment was no longer pending.
    fn finish_answered(
        &self,
        id: CorrelationId,
        outcome: Outcome,
        answered_at: Timestamp,
    ) -> StoreFuture<'_, bool>;

    /// As [`Store::finish_answered`], answered now.
    fn finish(&self, id: CorrelationId, outcome: Outcome) -> StoreFuture<'_, bool> {
        self.finish_answered(id, outcome, Timestamp::now())
    }

    /// Records `payment` with its known `outcome` when the store does not
    /// have it at all: it was purged while a send of it was in flight, and
    /// the processor, whose books were purged before, has it now; the
    /// ledger must too. `false` when the store has the payment, in whatever
    /// state (finished by another instance, pending elsewhere): nothing
    /// changes. Held to the durability of an accept. `answered_at` as for
    /// [`Store::finish_answered`].
    fn restore(
        &self,
        payment: NewPayment,
        outcome: Outcome,
        answered_at: Timestamp,
    ) -> StoreFuture<'_, bool>;

    /// One payment, whatever its state; `None` if this store never accepted it.
    fn find(&self, id: CorrelationId) -> StoreFuture<'_, Option<PaymentRecord>>;

    /// Every accepted payment without a known outcome, oldest first, whoever
    /// holds it. An observation: with several instances, take work with
    /// [`Store::reclaim`] instead, or payments held by a live instance would
    /// be worked on twice.
    fn pending(&self) -> StoreFuture<'_, Vec<PendingPayment>>;

    /// Processed payments per processor whose `requestedAt` is in `window`.
    fn summary(&self, window: Window) -> StoreFuture<'_, Vec<Totals>>;

    /// As [`Store::summary`], counting only the payments whose outcome was
    /// answered (to this instance or any other) at or before `answered_by`,
    /// by the clock of the instance that got the answer: what the
    /// processors' books held when a summary was asked at `answered_by`,
    /// read once the outcomes answered by then are committed. Outcomes
    /// recorded before a store kept that instant count as answered before.
    /// Kept apart from [`Store::summary`], which on PostgreSQL reads the
    /// ledger's index alone.
    fn summary_answered_by(
        &self,
        window: Window,
        answered_by: Timestamp,
    ) -> StoreFuture<'_, Vec<Totals>>;

    /// Every processed payment (for audits and tests).
    fn ledger(&self) -> StoreFuture<'_, Vec<LedgerEntry>>;

    /// Every payment the store holds, in whatever state (pending, paid,
    /// refused): its id and amount, which is all a duplicate's answer needs.
    /// The core fills an accept table from it.
    fn known(&self) -> StoreFuture<'_, Vec<(CorrelationId, Money)>>;

    /// Empties the queue and the ledger.
    fn purge(&self) -> StoreFuture<'_, ()>;

    /// Extends, by the store's lease duration from now, this instance's
    /// lease, under which it holds every pending payment it holds, so that
    /// no other instance reclaims them. One write, however many payments it
    /// holds. Call it well within the lease (every third of it): once the
    /// lease has run out its payments may be taken over, and until it is
    /// renewed this instance's [`Store::begin_attempt`] returns `false`.
    fn renew(&self) -> StoreFuture<'_, ()>;

    /// How long a lease lasts without renewal; `None` where leases never
    /// run out (a lone embedded store).
    fn lease(&self) -> Option<Duration> {
        None
    }

    /// Takes over up to `limit` pending payments that no live instance holds
    /// (their holder crashed or stalled past its lease; with the embedded
    /// engine: those left by the previous run) and leases them to this
    /// instance, longest-orphaned first. Each payment is handed to exactly
    /// one caller, however many instances reclaim at once. A payment comes
    /// back with its open attempt, which must be resolved at that processor
    /// with its `requestedAt` before any other is tried. Call it at start-up
    /// (until it returns fewer than `limit`) and then periodically.
    fn reclaim(&self, limit: usize) -> StoreFuture<'_, Vec<PendingPayment>>;

    /// At start-up, before [`Store::reclaim`]: takes over at once, up to
    /// `limit` at a time, the pending payments still leased to an earlier
    /// process of this same instance (the same instance name). That process
    /// is gone — this one took its place — so its payments need not wait
    /// for their leases to run out. Instance names must therefore be unique
    /// in a cluster; two live processes under one name would take each
    /// other's payments once at start-up (safely, as any takeover, but
    /// pointlessly). Nothing to do where [`Store::reclaim`] already takes
    /// everything a previous run left (the embedded store).
    fn take_over_predecessor(&self, limit: usize) -> StoreFuture<'_, Vec<PendingPayment>> {
        let _ = limit;
        Box::pin(async { Ok(Vec::new()) })
    }

    /// Pending payments this instance (this process) holds, accepted before
    /// `accepted_before`, oldest first, at most `limit`. The instance
    /// compares them with what it is working on: a payment whose acceptance
    /// committed although the store answered an error (the connection broke
    /// after the commit), or whose takeover's answer was lost, is held but
    /// was never queued — and, its lease renewed, nobody else would take it.
    fn held(
        &self,
        accepted_before: Timestamp,
        limit: usize,
    ) -> StoreFuture<'_, Vec<PendingPayment>>;

    /// Takes or keeps the leadership of the health probes for `term` from
    /// now (the database's clock, for PostgreSQL). `true`: this instance,
    /// and no other, leads until then and may probe. `false`: another
    /// instance leads. Every instance calls it every quarter of a term: the
    /// leader to keep leading, the others to take over within a term once
    /// the leader dies. With a term of half the probe interval, probes go
    /// on within one interval of the leader's death (docs/postgres.md).
    fn lead_probes(&self, term: Duration) -> StoreFuture<'_, bool>;

    /// Shares a probe's answer with every instance. A report older than the
    /// one already published for that processor is ignored.
    fn publish_probe(&self, report: ProbeReport) -> StoreFuture<'_, ()>;

    /// The latest published report of each processor, by processor id.
    fn probes(&self) -> StoreFuture<'_, Vec<ProbeReport>>;
}
