//! The pure core of reroute: the vocabulary every other crate speaks.
//!
//! Nothing here performs I/O, reads a clock or spawns a task. Callers pass `now`
//! in, which is what lets the health engine and the routing policy be tested
//! exhaustively. The payment path uses these types from the HTTP edge inward:
//! requests are parsed into [`CorrelationId`], [`Money`] and [`Timestamp`] once,
//! and nothing further in re-validates them. The [`health`] engine turns
//! transaction outcomes into statuses, alerts, recommendations and the gates
//! the router uses.

pub mod circuit;
pub mod concurrency;
pub mod health;
pub mod id;
pub mod money;
pub mod policy;
pub mod registry;
#[doc(hidden)] // Test support for the unit tests and the benches.
pub mod techcart;
pub mod time;

pub use circuit::{Circuit, CircuitConfig, Gate, Signal};
pub use concurrency::{Limit, LimitConfig};
pub use health::{HealthConfig, HealthEngine, Status};
pub use id::CorrelationId;
pub use money::{Money, MoneyError};
pub use policy::{Decision, Policy};
pub use registry::{FeeRate, Processor, ProcessorId, Registry, RegistryError};
pub use time::{Timestamp, TimestampError, Window};
