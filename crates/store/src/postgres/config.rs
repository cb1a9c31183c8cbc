//! How an instance reaches PostgreSQL and behaves among the others: read
//! from the server's configuration, checked here before anything connects.

use std::sync::Arc;
use std::time::Duration;

use crate::{Durability, Observer};

/// How to reach the database and how this instance behaves among the others.
#[derive(Debug, Clone)]
pub struct PostgresConfig {
    /// `postgres://user@host:port/db` (or key=value). TLS is not supported:
    /// reach the database over a private network or a local socket.
    pub url: String,
    /// A readable name for this instance (host, container); each connect
    /// adds a random suffix, so a restarted instance never mistakes its
    /// previous run's payments for ones it is working on.
    pub instance: String,
    /// How long a payment stays held without renewal. Longer than the
    /// processor timeout plus the renewal period: a payment is taken over
    /// only once its holder can no longer be sending it.
    pub lease: Duration,
    /// Connections for reads, leases and leadership; each writer has one
    /// more of its own.
    pub pool_size: usize,
    /// Server-side limit of each statement; the client gives up a little
    /// after it, so an unreachable database is noticed too.
    pub statement_timeout: Duration,
    /// Writer tasks applying groups of writes at once (each uses one
    /// connection while it writes).
    pub writers: usize,
    /// A schema to keep the tables in (created if missing), instead of the
    /// connection's default `search_path`. Lets tests, or several
    /// deployments, share one database.
    pub schema: Option<String>,
    /// [`Durability::Os`]: this instance's commits do not wait for the
    /// server's WAL flush (`synchronous_commit = off` on its connections):
    /// a crash of any reroute process loses nothing, a crash of PostgreSQL,
    /// of its kernel or a power loss may lose the last commits (up to three
    /// times `wal_writer_delay`, 0.6 s by default).
    pub durability: Durability,
    /// Told how long pool waits and groups of writes take.
    pub observer: Option<Arc<dyn Observer>>,
}

impl PostgresConfig {
    /// The defaults: lease 10 s, 4 + 2 connections, statements 5 s, 2
    /// writers.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            instance: "reroute".into(),
            lease: Duration::from_secs(10),
            pool_size: 4,
            statement_timeout: Duration::from_secs(5),
            writers: 2,
            schema: None,
            durability: Durability::default(),
            observer: None,
        }
    }
}

/// A schema name is spliced into statements, so only a plain lower-case
/// identifier is allowed.
pub(super) fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 63
}
