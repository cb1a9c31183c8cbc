//! `reroute bench rinha` and `reroute bench intel`: load tests that judge a
//! payment backend from the outside, as the contest's judge would.
//!
//! The crate plays the part of the judge. It talks to a backend (reroute or any
//! other Rinha de Backend 2025 entry) and to the two payment processors over
//! plain HTTP, exactly as the official k6 script does, and scores the run the
//! way the official script scores it:
//!
//! ```text
//! rinha::run ── setup (tokens, purges)
//!            ├─ users      ramping virtual users: POST /payments, sleep 1 s
//!            ├─ auditor    every ~10 s: backend summary vs processors' books
//!            ├─ stages     delay / failure put on the processors on schedule
//!            └─ teardown   summaries -> score (pure) -> RinhaReport
//! ```
//!
//! [`intel`] measures the failover-intelligence API the same way from the
//! outside: transactions recorded and recommendations asked at a fixed rate,
//! open-loop, with latency per endpoint.
//!
//! It never starts the system it measures: a backend is a URL. The benches
//! that start routers themselves to kill them or make their processors
//! misbehave (`reroute bench crash`, `chaos`) are the `reroute-faults`
//! crate's; they share this crate's HTTP client ([`http`]), processor admin
//! ([`processors`]) and report rows ([`report`]).
//!
//! The load generator shares the machine with the system under test, so it is
//! kept light: one small Tokio runtime, one keep-alive connection per virtual
//! user, no per-request work beyond building a 60-byte body.

pub mod duration;
pub mod http;
pub mod intel;
pub mod json_number;
pub mod processors;
pub mod report;
pub mod rinha;
pub mod score;

pub use intel::IntelArgs;
pub use rinha::RinhaArgs;
