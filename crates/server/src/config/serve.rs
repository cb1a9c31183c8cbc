//! The typed configuration a router runs with, [`ServeConfig`]: built once
//! from flags, environment, file and defaults ([`super::resolve`]), then
//! handed to [`crate::App::build`] and read (never re-validated) by every
//! part of the data path, from the socket's body limits to the store's
//! durability.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use reroute_core::{CircuitConfig, HealthConfig, LimitConfig, Policy, Registry};
use reroute_store::Durability;

use crate::telemetry::TelemetryConfig;

/// The largest request body, in bytes (fixed; an edge applies it too).
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// The longest a request body may take to arrive whole (fixed; an edge
/// applies it too).
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The validated configuration [`crate::App::build`] runs with.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    /// HTTP on a unix socket too (`--unix-socket`).
    pub unix_socket: Option<PathBuf>,
    /// Where edges hand payments over (`--edge-socket`; [`crate::wire`]).
    pub edge_socket: Option<PathBuf>,
    pub store: StoreChoice,
    /// When the store calls an accept done: what a 2xx survives.
    pub durability: Durability,
    /// The file edges accept payments in (`--accept-table`), if any.
    pub accept_table: Option<PathBuf>,
    /// This instance's name (logs, leases, exported spans).
    pub instance: String,
    pub registry: Registry,
    /// The registry file, when the registry came from one.
    pub registry_file: Option<PathBuf>,
    /// The health engine's settings (validated).
    pub health: HealthConfig,
    pub policy: Policy,
    /// The limits of sends in flight per processor ([`crate::lanes`]).
    pub lanes: LimitConfig,
    pub circuit: CircuitConfig,
    pub processor_timeout: Duration,
    /// How long past its announced delay a processor may still store a
    /// send ([`crate::resolution::Landing`]).
    pub landing_margin: Duration,
    /// How long a summary waits for the other instances' commits on a
    /// shared store (`GET /payments-summary`).
    pub summary_settle: Duration,
    pub health_interval: Duration,
    pub workers: usize,
    pub admin_token: Option<String>,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Longest a request body may take to arrive whole, from the end of
    /// its headers (slow clients get 408 and the connection is closed).
    pub body_read_timeout: Duration,
    /// The per-client limit of the public endpoints; `None`: unlimited.
    pub rate_limit: Option<RateLimit>,
    /// Whether this instance probes the processors' health endpoints.
    pub probes: bool,
    pub telemetry: TelemetryConfig,
}

/// The per-client limit of the public endpoints, as configured
/// ([`crate::ratelimit`] applies it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests a second each client may make, on average.
    pub per_second: NonZeroU32,
    /// Requests a client may make at once before it is refused.
    pub burst: NonZeroU32,
    /// Whether the client is the last `X-Forwarded-For` address.
    pub trust_forwarded_for: bool,
}

/// Where payments are kept.
#[derive(Debug, Clone)]
pub enum StoreChoice {
    /// SQLite in this file: one instance.
    Embedded(PathBuf),
    /// A PostgreSQL database shared by every instance.
    Postgres { url: String, lease: Duration },
}
