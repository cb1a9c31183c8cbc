//! The durable side of a payment's life: accepted payments (the queue), the
//! attempt that may have reached a processor, and the ledger of known outcomes.
//!
//! The HTTP edge calls [`Store::accept`] and answers 2xx only once it returns;
//! workers call [`Store::begin_attempt`] before every send and
//! [`Store::finish`] once the processor's answer is known; on start-up
//! [`Store::pending`] gives back everything accepted and not finished. The
//! summaries auditors compare with the processors' books come from
//! [`Store::summary`]. [`Store`] is the seam between engines; [`sqlite`] is the
//! embedded one.

use std::future::Future;
use std::pin::Pin;

use reroute_core::{CorrelationId, Money, Timestamp, Window};

pub mod sqlite;

pub use sqlite::SqliteStore;

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

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    #[error("the store has shut down")]
    Closed,
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
    fn accept(&self, payment: NewPayment) -> StoreFuture<'_, Acceptance>;

    /// Records that `attempt` is about to be sent. `false` if the payment is
    /// no longer pending (finished, or purged meanwhile): do not send.
    fn begin_attempt(&self, id: CorrelationId, attempt: Attempt) -> StoreFuture<'_, bool>;

    /// Records the known outcome. `false` if the payment was no longer pending.
    fn finish(&self, id: CorrelationId, outcome: Outcome) -> StoreFuture<'_, bool>;

    /// Every accepted payment without a known outcome, oldest first.
    fn pending(&self) -> StoreFuture<'_, Vec<PendingPayment>>;

    /// Processed payments per processor whose `requestedAt` is in `window`.
    fn summary(&self, window: Window) -> StoreFuture<'_, Vec<Totals>>;

    /// Every processed payment (for audits and tests).
    fn ledger(&self) -> StoreFuture<'_, Vec<LedgerEntry>>;

    /// Empties the queue and the ledger.
    fn purge(&self) -> StoreFuture<'_, ()>;
}
