//! The shared engine: PostgreSQL as the queue and ledger of several
//! instances.
//!
//! Every instance accepts into the same `payments` table and reads the same
//! ledger, so any of them answers a summary for all. A pending payment is
//! *held* by the instance that accepted it, while that instance's lease (one
//! row per instance, on the database's clock) is renewed; when an instance
//! dies its lease runs out and the others take its payments over with `FOR UPDATE SKIP
//! LOCKED`, each exactly once, with their open attempts. An attempt is
//! recorded only by the holder, so an instance that lost a payment (it
//! stalled past its lease) can no longer send it to another processor. One
//! `leaders` row, also on a lease, says which instance probes processor
//! health; the `probes` table carries what it learns to the others.
//!
//! Writes of the request path (accept, begin an attempt, finish) are sent to
//! a few writer tasks; each takes every write waiting at that moment and
//! applies them in one statement, so one commit (one WAL flush) and one round
//! trip carry a whole group, as the embedded engine's writer does. Every
//! statement runs under a server-side `statement_timeout` and a client-side
//! bound; a database that cannot be reached makes operations fail with
//! [`StoreError::Unavailable`](crate::StoreError::Unavailable), and the pool reconnects when it is back.
//!
//! See docs/postgres.md for the schema, the migrations and the figures.
//!
//! The files follow that path: `config` says how to connect, `pool`
//! opens the connections, `schema` migrates the tables and maps rows to
//! records, `instance` is one instance's handle ([`PostgresStore`]), its
//! writes go through the `writer` tasks, its reads and lease work are the
//! `queries`, on the lease rules of `leases`; `failure` sorts what
//! PostgreSQL says into the store's errors.

mod config;
mod failure;
mod instance;
mod leases;
mod pool;
mod queries;
mod schema;
mod writer;

pub use config::PostgresConfig;
pub use instance::PostgresStore;
pub use pool::WRITER_SETTINGS;
pub use writer::{APPLY_GROUP, MAX_BATCH};

#[cfg(test)]
mod tests;
