//! The durable side of a payment's life: accepted payments (the queue), the
//! attempt that may have reached a processor, and the ledger of known outcomes.
//!
//! The HTTP edge calls [`Store::accept`] and answers 2xx only once it returns;
//! workers call [`Store::begin_attempt`] before every send and
//! [`Store::finish`] once the processor's answer is known. The common case
//! costs two durable writes, not three: the edge records the attempt the
//! payment will most likely be sent with together with the payment
//! ([`Store::accept_with_plan`]), so a worker that sends it as planned writes
//! nothing before the send, only the outcome after it. On start-up
//! [`Store::pending`] gives back everything accepted and not finished. The
//! summaries auditors compare with the processors' books come from
//! [`Store::summary`]. [`Store`] is the seam between engines; [`sqlite`] is the
//! embedded one, [`postgres`] the one several instances share.
//!
//! With several instances every pending payment is *held* by one of them: the
//! one that accepted it, under that instance's lease, which it keeps
//! renewing ([`Store::renew`]); when an instance dies its lease runs out and the others
//! take its payments over ([`Store::reclaim`]), open attempts included, so
//! the exactly-once rules go on at the same processor. One instance at a time
//! leads the health probes ([`Store::lead_probes`]) and shares what it learns
//! ([`Store::publish_probe`], [`Store::probes`]). A single embedded instance
//! holds everything and always leads, so there these are trivial.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use reroute_core::{CorrelationId, Money, Timestamp, Window};

pub mod postgres;
pub mod sqlite;

pub use postgres::{PostgresConfig, PostgresStore};
pub use sqlite::SqliteStore;

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

/// When a write counts as done, and so what a 2xx survives. Only the writes
/// that a send or an answer relies on are held to it: accepts, the attempt
/// recorded before a send, reclaims and purges. An outcome needs no sync of
/// its own: one lost in a crash leaves the payment pending with its attempt,
/// and the next run asks the same processor again with the same
/// `requestedAt`, which proves what happened (RELIABILITY.md).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Durability {
    /// Done once the write-ahead log is on stable storage (fdatasync): a 2xx
    /// survives `kill -9`, a kernel crash and a power loss.
    #[default]
    Stable,
    /// Done once the write has reached the operating system: a 2xx survives
    /// `kill -9` of any process, not a kernel crash or a power loss (the
    /// trade of PostgreSQL's `synchronous_commit = off` and Redis's
    /// `appendfsync everysec`). The log reaches the disk at the next
    /// checkpoint (every 500 ms on the embedded store).
    Os,
}

impl std::fmt::Display for Durability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Durability::Stable => "stable",
            Durability::Os => "os",
        })
    }
}

impl std::str::FromStr for Durability {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "stable" => Ok(Durability::Stable),
            "os" => Ok(Durability::Os),
            other => Err(format!(
                "durability must be `stable` (a 2xx once on stable storage) or `os` \
                 (a 2xx once the write reached the OS), not `{other}`"
            )),
        }
    }
}

/// A payment as accepted from the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPayment {
    pub id: CorrelationId,
    pub amount: Money,
    pub payment_method: Option<String>,
    pub country: Option<String>,
    pub accepted_at: Timestamp,
}

/// What [`Store::accept`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acceptance {
    /// Newly stored; it will be processed.
    New,
    /// The same id with the same amount was already accepted: nothing new.
    Duplicate,
    /// The same id was accepted with another amount.
    Conflict { existing: Money },
}

/// One send of a payment to a processor. `requested_at` is fixed at the first
/// send and reused on every retry of that attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub processor: String,
    pub requested_at: Timestamp,
}

/// An accepted payment whose outcome is not yet known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingPayment {
    pub payment: NewPayment,
    /// The last attempt recorded before a send: it may have reached the
    /// processor, so it must be resolved there before any other is tried.
    pub attempt: Option<Attempt>,
}

/// A known outcome, recorded in the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The processor has the payment, with this `requestedAt`.
    Processed(Attempt),
    /// The processor refused it for good; nothing was charged.
    Declined(Attempt),
    /// The processor has it, from another instance that holds the same
    /// payment in a store of its own (a client re-sent it there after this
    /// instance failed to answer) and records it: not in this ledger.
    Duplicate(Attempt),
}

/// Where a payment stands in one store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentState {
    Pending,
    Processed,
    Declined,
    Duplicate,
}

impl PaymentState {
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentState::Pending => "pending",
            PaymentState::Processed => "processed",
            PaymentState::Declined => "declined",
            PaymentState::Duplicate => "duplicate",
        }
    }
}

/// One payment as a store holds it ([`Store::find`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentRecord {
    pub payment: NewPayment,
    pub state: PaymentState,
    /// The open attempt while pending; the one the outcome names after.
    pub attempt: Option<Attempt>,
}

/// One processor's line of a summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Totals {
    pub processor: String,
    pub requests: u64,
    pub amount: Money,
}

/// One processed payment of the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    pub id: CorrelationId,
    pub amount: Money,
    pub processor: String,
    pub requested_at: Timestamp,
}

/// The latest answer of one processor's health endpoint, published by the
/// instance that leads the probes so that every instance routes on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeReport {
    pub processor: String,
    pub failing: bool,
    pub min_response_ms: u32,
    /// When the processor answered, by the prober's clock. The next call to
    /// this processor's health endpoint, by whichever instance leads then,
    /// waits a full probe interval after it: the processors' rate limit
    /// counts calls from all instances together.
    pub at: Timestamp,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The engine cannot be reached or refused the operation; retrying later
    /// may succeed. A write that failed this way may or may not stand.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    #[error("the store has shut down")]
    Closed,
    /// The configuration cannot work (bad URL, schema newer than this
    /// build): retrying will not help.
    #[error("the store is misconfigured: {0}")]
    Misconfigured(String),
    /// Another process has this embedded store's file open. One file serves
    /// one process: two would each take the other's pending payments for
    /// a previous run's and send them again. `holder` is that process's id
    /// when its lock file tells it.
    #[error(
        "{} is in use by {}: one embedded store serves one process at a time; \
         stop that process or use another file (lock file {})",
        .path.display(),
        holder_text(*.holder),
        sqlite::lock_path(.path).display()
    )]
    InUse {
        path: std::path::PathBuf,
        holder: Option<u32>,
    },
}

fn holder_text(holder: Option<u32>) -> String {
    match holder {
        Some(pid) => format!("another process (PID {pid})"),
        None => "another process".to_owned(),
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Unavailable(e.to_string())
    }
}

pub type StoreResult<T> = Result<T, StoreError>;
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = StoreResult<T>> + Send + 'a>>;

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

    /// Records that `attempt` is about to be sent: before the first send of
    /// an attempt and before every re-send of it (the same attempt again).
    /// `false` if the payment is no longer pending (finished, or purged
    /// meanwhile) or no longer this instance's (taken over by another after
    /// this one's lease ran out; with PostgreSQL, also while its lease has
    /// run out and not been renewed): do not send. This is the fence that
    /// stops a stale holder.
    fn begin_attempt(&self, id: CorrelationId, attempt: Attempt) -> StoreFuture<'_, bool>;

    /// Records the known outcome. `false` if the payment was no longer pending.
    fn finish(&self, id: CorrelationId, outcome: Outcome) -> StoreFuture<'_, bool>;

    /// Records `payment` with its known `outcome` when the store does not
    /// have it at all: it was purged while a send of it was in flight, and
    /// the processor, whose books were purged before, has it now; the
    /// ledger must too. `false` when the store has the payment, in whatever
    /// state (finished by another instance, pending elsewhere): nothing
    /// changes. Held to the durability of an accept.
    fn restore(&self, payment: NewPayment, outcome: Outcome) -> StoreFuture<'_, bool>;

    /// One payment, whatever its state; `None` if this store never accepted it.
    fn find(&self, id: CorrelationId) -> StoreFuture<'_, Option<PaymentRecord>>;

    /// Every accepted payment without a known outcome, oldest first, whoever
    /// holds it. An observation: with several instances, take work with
    /// [`Store::reclaim`] instead, or payments held by a live instance would
    /// be worked on twice.
    fn pending(&self) -> StoreFuture<'_, Vec<PendingPayment>>;

    /// Processed payments per processor whose `requestedAt` is in `window`.
    fn summary(&self, window: Window) -> StoreFuture<'_, Vec<Totals>>;

    /// Every processed payment (for audits and tests).
    fn ledger(&self) -> StoreFuture<'_, Vec<LedgerEntry>>;

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
