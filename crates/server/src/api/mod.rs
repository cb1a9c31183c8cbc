//! The HTTP surface, where a request from the socket becomes a call on the
//! shared state. [`payments`] is surface 1 (Rinha: a payment parsed,
//! accepted into the store and queued for a worker), [`intel`] surface 2
//! (failover intelligence: outcomes in, health, alerts and recommendations
//! out), [`ops`] and [`dashboard`] surface 3 (metrics, liveness, readiness,
//! the live dashboard); [`frames`] takes payments from edges over a unix
//! socket, and [`accepts`] keeps the accept table edges accept in. Below the handlers: [`request`] (body, content type, admin
//! token) and [`error`] (one error type, one JSON shape); above them:
//! [`routes`] mounts them all and [`openapi`] describes them.

pub mod accepts;
pub mod dashboard;
pub mod error;
pub mod frames;
pub mod intel;
pub mod openapi;
pub mod ops;
pub mod payments;
pub mod request;
pub mod routes;
