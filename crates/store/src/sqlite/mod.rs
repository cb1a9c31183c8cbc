//! The embedded engine: SQLite in WAL mode, written by one writer that commits
//! in groups (a thread of its own; at `Durability::Os` inside a runtime, a
//! task on it).
//!
//! Every write is a command sent to the writer. The writer takes all
//! commands waiting at that moment (up to [`MAX_BATCH`]), applies them in one
//! transaction and commits once: at most one sync for the whole group, then
//! every caller is answered. Under load a commit carries hundreds of payments,
//! so durability costs each of them microseconds. Outcomes are held back (up
//! to [`OUTCOME_DELAY`]) and committed in groups of their own, so an accept's
//! commit never carries them. Reads use a second connection (WAL lets them
//! run beside the writer).
//!
//! The sync follows [`Durability`](crate::Durability): at `Stable` a group holding an accept, a
//! restore, a reclaim or a purge commits with `synchronous=FULL` (the log is
//! fdatasync'ed before anyone is answered); a group of attempts and
//! outcomes commits with `synchronous=NORMAL` (no sync: the next synced
//! commit or checkpoint carries it to the disk). A kernel crash that takes
//! an attempt is told at the next open: the file records the boot id it
//! was opened under, and an open under another marks every pending payment
//! unrecorded ([`PendingPayment::unrecorded`](crate::PendingPayment::unrecorded)), to be
//! looked up everywhere before it is sent. Where there is no boot id,
//! attempts are synced too. At `Os` every commit is `NORMAL`: the log
//! reaches the OS at commit and the disk at the next checkpoint.
//!
//! One embedded store serves one instance, which holds every payment and
//! always leads the probes. Each open is a new *run*: payments accepted by
//! this run carry its id, and [`Store::reclaim`](crate::Store::reclaim) hands back, once, those a
//! previous run left pending. Leases never run out (nobody else could take
//! them over), and probe reports live in memory.
//!
//! That holds only while one process has the file: a second one would take
//! the first's payments for a previous run's and send them again. So an open
//! takes an OS lock on a file beside the database (`<db>.lock`, holding the
//! locker's PID) and fails with [`StoreError::InUse`](crate::StoreError::InUse) while another store
//! holds it. The OS drops the lock with the process, `kill -9` included;
//! within a process, dropping the last clone of the store stops its threads
//! and then releases it, so the same file can be opened again.
//!
//! The files: `instance` is the handle ([`SqliteStore`]) and its open,
//! `lock` keeps the file to one process, `schema` migrates the tables and
//! maps rows to records, `writer` groups and commits the writes, `queries`
//! is the engine's side of the [`crate::Store`] seam.

mod commands;
mod instance;
mod lock;
mod queries;
mod schema;
mod writer;

pub use instance::SqliteStore;
pub use writer::{MAX_BATCH, OUTCOME_DELAY};

#[cfg(test)]
mod tests;
