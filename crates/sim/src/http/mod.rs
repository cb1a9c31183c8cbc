//! The processor's HTTP face: the Rinha protocol plus the simulator's
//! extensions.
//!
//! `server` accepts connections (and can reset one on purpose), `routes`
//! sends each request to its endpoint module, `payments`, `health` and
//! `admin` implement the endpoints, `reply` and `query` are the small
//! helpers they share.

mod admin;
mod health;
mod payments;
mod query;
mod reply;
mod routes;
pub(crate) mod server;
