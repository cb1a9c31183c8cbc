//! Surface 2, the failover-intelligence API (the TechCart contract):
//! record transaction outcomes, read processor health and alerts, and get
//! ranked routing recommendations for a payment method and country.
//!
//! Requests are parsed into domain values here (an outcome, an upper-case
//! method and country the processor supports, money, a timestamp); the
//! [`reroute_core::HealthEngine`] does the rest. Field names, status words and
//! reasons are the seed's; fields beyond the seed's are additions, never
//! renames. The contract is documented in `docs/intelligence.md`.
//!
//! The way in is [`transactions`] (outcomes recorded); the ways out are
//! [`health`] (health, alerts, the registry) and [`recommend`] (rankings).
//! Below them, [`parse`] turns raw fields into domain values and [`json`]
//! shapes the answers.

pub mod health;
pub mod json;
pub mod parse;
pub mod recommend;
pub mod transactions;
