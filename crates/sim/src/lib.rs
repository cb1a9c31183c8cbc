//! Payment processor simulators: what reroute is tested and benchmarked
//! against.
//!
//! By default the simulator is the Rinha de Backend 2025 pair (`default`, fee
//! 0.05, on 8001; `fallback`, fee 0.15, on 8002), row for row as the reference
//! processor behaves (see `PROTOCOL.md`): delay then failure, 422 on a repeated
//! correlation id, a fixed-window limit on the health check, token-protected
//! admin endpoints, inclusive summary windows. On top of that, and off unless
//! asked for, it injects faults (errors, declines, latency with jitter, hangs,
//! connection resets, 429 storms on the health check, timed schedules of
//! these) and exposes its books and counters so end-to-end tests can check
//! the router against them.
//!
//! The flow of a payment: the HTTP layer (`http`, an axum router per
//! processor served on hyper, as the product serves) parses it at the edge,
//! [`processor::Processor`] decides its fate from the [`faults`] in force and
//! records it in the [`book`]; the [`health_limit`] and [`concurrency`] limits
//! sit in front, and [`stats`] counts everything.
//!
//! ```no_run
//! # async fn example() -> anyhow::Result<()> {
//! let sim = reroute_sim::spawn(reroute_sim::SimConfig::rinha_on_free_ports()).await?;
//! let default_url = sim.url("default"); // http://127.0.0.1:PORT
//! # sim.shutdown().await;
//! # Ok(()) }
//! ```

pub mod book;
mod cli;
pub mod concurrency;
pub mod config;
pub mod faults;
pub mod fee;
pub mod health_limit;
mod http;
pub mod processor;
mod sim;
pub mod stats;

pub use cli::{SimArgs, run};
pub use config::{ProcessorSpec, SimConfig};
pub use faults::{Faults, ScheduleStep};
pub use fee::FeeRate;
pub use processor::Processor;
pub use sim::{Sim, spawn};
pub use stats::StatsSnapshot;
