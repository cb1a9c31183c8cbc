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

mod boot;
mod error;
pub mod postgres;
mod records;
mod seam;
pub mod sqlite;
mod write;

pub use boot::{BOOT_ID_LEN, boot_id, is_known as boot_id_is_known};
pub use error::{StoreError, StoreFuture, StoreResult};
pub use postgres::{PostgresConfig, PostgresStore};
pub use records::{
    Acceptance, Attempt, Durability, LedgerEntry, NewPayment, Outcome, PaymentRecord, PaymentState,
    PendingPayment, ProbeReport, Totals,
};
pub use seam::{Observer, Step, Store};
pub use sqlite::SqliteStore;
