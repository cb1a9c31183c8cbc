//! The reroute router, `reroute serve`.
//!
//! A payment's path through this crate: [`api::payments`] parses and
//! validates it and makes it durable in the store before answering 202; the
//! [`queue`] hands it to a [`worker`], which asks [`routing`] where to send
//! it (the routing policy of `reroute-core` over each processor's segment
//! health and its circuit in [`breakers`], spilling to a pricier processor
//! when the cheap one cannot keep up), records the attempt, waits for room
//! in that processor's [`lanes`] (an adaptive limit of sends in flight),
//! calls the processor through [`processor`] and records the known outcome
//! in the ledger; what an answer proves, and when a payment whose outcome is
//! unknown may go elsewhere, is [`resolution`]'s rule. [`probe`] tasks poll
//! processors' health endpoints within their rate limit and feed the same
//! breakers; health [`alerts`] raised on the way are logged and counted.
//!
//! In front of it, optionally: [`edge`] (`reroute edge`), a stateless HTTP
//! front that validates payments and hands them to the core over a unix
//! socket ([`wire`], [`api::frames`]), proxying every other request. A core
//! with edges serves their connections on a thread of its own
//! ([`accept_thread`]), beside the runtime of the workers.
//!
//! Around that path: [`config`] builds the one configuration from flags,
//! environment and file; [`listen`] is the accept loop (TCP and unix
//! sockets) that `serve` and `edge` share; [`ratelimit`] keeps one client
//! from starving the others (off by default); [`telemetry`] sends logs to
//! stderr and, when configured, spans to an OpenTelemetry collector.
//!
//! The layers, each importing only those below it: [`app`] wires everything
//! and nothing imports it; [`edge`] and [`ratelimit`] sit on [`api`]'s error
//! and request helpers; [`api`] and the tasks ([`worker`], [`probe`],
//! [`leases`]) use [`routing`] and [`state`]; [`state`] holds the parts
//! ([`breakers`], [`lanes`], [`queue`], [`metrics`], ...) and the one
//! [`config`], which imports nothing of the crate but [`telemetry`]'s
//! settings.

pub mod accept_thread;
pub mod accepts;
pub mod alerts;
pub mod api;
pub mod app;
pub mod breakers;
pub mod config;
pub mod edge;
pub mod lanes;
pub mod leases;
pub mod listen;
pub mod metrics;
pub mod probe;
pub mod processor;
pub mod queue;
pub mod ratelimit;
pub mod recording;
pub mod resolution;
pub mod routing;
pub mod settle;
pub mod state;
pub mod telemetry;
pub mod timed_store;
pub mod wire;
pub mod worker;

pub use app::{App, StartError};
pub use config::{ConfigError, Origin, Origins, ServeArgs, ServeConfig, StoreChoice};
pub use edge::{BoundEdge, EdgeArgs};
pub use telemetry::{LogFormat, Telemetry};
