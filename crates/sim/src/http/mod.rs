//! The processor's HTTP face: the Rinha protocol plus the simulator's
//! extensions, served with axum on hyper.
//!
//! `server` accepts connections and serves a router on them (and can reset
//! a connection on purpose, through `connection`); `routes` builds the
//! router that sends each request to its endpoint module; `payments`,
//! `health` and `admin` implement the endpoints; `reply` and `query` are the
//! small helpers they share.

mod admin;
mod connection;
mod health;
mod payments;
mod query;
mod reply;
pub(crate) mod routes;
pub(crate) mod server;
