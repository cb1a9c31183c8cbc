//! `reroute bench crash` and `reroute bench chaos`: benches that judge
//! reliability rather than speed. Unlike `reroute-bench`, which measures a
//! backend it is given, they start the routers themselves ([`fleet`], behind
//! a [`balancer`] where asked), kill them with SIGKILL or make the
//! processors misbehave (through `reroute-bench`'s processor admin) under a
//! steady load ([`traffic`]), then [`drain`] the run and [`audit`] the
//! payments answered 2xx against the router's ledger (read with `reroute
//! ledger`, [`ledger`]) and the processors' books, correlationId by
//! correlationId.
//!
//! ```text
//! crash::run / chaos::run ── processors (in-process `reroute sim`) ── run_store (SQLite | PostgreSQL)
//!                         ├─ fleet      N × `reroute serve` (or edges and a core), restarted when killed
//!                         ├─ traffic    a steady rate of POST /payments, each id re-sent until definite
//!                         ├─ faults     kill -9, PostgreSQL restarts (pg_cluster); processor schedules
//!                         └─ drain ── ledger ── audit: 2xx = ledger = books, by correlationId
//! ```
//!
//! [`relay`] injects a fault of the environment rather than of a process: a
//! network's delay in front of a TCP service, as if it ran on another host
//! (the Rinha topology's `DB_DELAY_MS` puts it before PostgreSQL).

pub mod audit;
pub mod balancer;
pub mod chaos;
pub mod crash;
pub mod drain;
pub mod fleet;
pub mod ledger;
pub mod pg_cluster;
pub mod relay;
pub mod router_api;
pub mod run_store;
pub mod traffic;
mod workdir;

pub use chaos::ChaosArgs;
pub use crash::CrashArgs;
