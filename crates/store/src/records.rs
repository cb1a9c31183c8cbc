//! What a store keeps, engine-neutral: a payment as the HTTP edge accepts
//! it ([`NewPayment`]), the attempt a worker records before each send, the
//! outcome that puts it in the ledger, and what readers get back (pending
//! payments, summaries, ledger lines, shared probe reports). Also how
//! durable a write must be before the edge answers ([`Durability`]).

use reroute_core::{CorrelationId, Money, Timestamp};

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

/// What [`Store::accept`](crate::Store::accept) found.
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
    /// The store was opened after a kernel crash (another boot id) while
    /// this payment was pending, and no attempt has been recorded for it
    /// since: attempts are not synced, so it may have been sent under one
    /// the crash took, to any processor, and `attempt` may be older than
    /// its last. It is looked up at every processor before any send
    /// (RELIABILITY.md, "After a kernel crash"). Only the embedded store
    /// sets it.
    pub unrecorded: bool,
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

/// One payment as a store holds it ([`Store::find`](crate::Store::find)).
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
