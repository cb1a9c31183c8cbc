//! Counters a test reads to check the router's manners.
//!
//! `GET /admin/stats` shows them: how many payments arrived and what became of
//! them, how many health calls arrived, how many were refused with 429, and
//! the most health calls ever answered within one rate-limit window (a router
//! that respects the limit never pushes it above 1).

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

/// One counter; relaxed ordering is enough for figures read after the fact.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn add(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    fn reset(&self) {
        self.0.store(0, Ordering::Relaxed);
    }
}

#[derive(Debug, Default)]
pub struct Stats {
    pub payments_received: Counter,
    pub payments_stored: Counter,
    pub payments_duplicate: Counter,
    pub payments_failed: Counter,
    pub payments_declined: Counter,
    pub payments_hung: Counter,
    pub payments_reset: Counter,
    pub payments_throttled: Counter,
    pub payments_storm_refused: Counter,
    pub payments_invalid: Counter,
    pub payments_looked_up: Counter,
    pub health_calls: Counter,
    pub health_answered: Counter,
    pub health_throttled: Counter,
    pub health_storm_refused: Counter,
    health_max_per_window: AtomicU64,
}

/// The counters at one instant, as `GET /admin/stats` answers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
pub struct StatsSnapshot {
    /// `POST /payments` requests received (all of them, whatever happened).
    pub payments_received: u64,
    /// Payments stored (answered 200, or reset after storing).
    pub payments_stored: u64,
    /// Answered 422: the correlation id was already stored.
    pub payments_duplicate: u64,
    /// Answered 500: failure mode or injected error; nothing stored.
    pub payments_failed: u64,
    /// Answered 402 by injected decline; nothing stored.
    pub payments_declined: u64,
    /// Never answered (injected hang).
    pub payments_hung: u64,
    /// Connection reset without an answer (injected reset).
    pub payments_reset: u64,
    /// Answered 429 by the concurrency limit.
    pub payments_throttled: u64,
    /// Answered 429 by the injected storm (`throttle_rate`), not by the
    /// concurrency limit.
    pub payments_storm_refused: u64,
    /// Answered 400: the body was not a valid payment.
    pub payments_invalid: u64,
    /// `GET /payments/{id}` calls received (status queries).
    pub payments_looked_up: u64,
    /// `GET /payments/service-health` calls received.
    pub health_calls: u64,
    /// Health calls answered 200.
    pub health_answered: u64,
    /// Health calls answered 429 by the rate limit.
    pub health_throttled: u64,
    /// Health calls answered 429 by the injected storm
    /// (`health_throttle_rate`), not by the rate limit.
    pub health_storm_refused: u64,
    /// The most health calls answered within one rate-limit window.
    pub health_max_per_window: u64,
}

impl Stats {
    pub fn note_health_max(&self, max: u64) {
        self.health_max_per_window.fetch_max(max, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            payments_received: self.payments_received.get(),
            payments_stored: self.payments_stored.get(),
            payments_duplicate: self.payments_duplicate.get(),
            payments_failed: self.payments_failed.get(),
            payments_declined: self.payments_declined.get(),
            payments_hung: self.payments_hung.get(),
            payments_reset: self.payments_reset.get(),
            payments_throttled: self.payments_throttled.get(),
            payments_storm_refused: self.payments_storm_refused.get(),
            payments_invalid: self.payments_invalid.get(),
            payments_looked_up: self.payments_looked_up.get(),
            health_calls: self.health_calls.get(),
            health_answered: self.health_answered.get(),
            health_throttled: self.health_throttled.get(),
            health_storm_refused: self.health_storm_refused.get(),
            health_max_per_window: self.health_max_per_window.load(Ordering::Relaxed),
        }
    }

    /// Zeroes every counter (the health maximum restarts from the next answer).
    pub fn reset(&self) {
        for counter in [
            &self.payments_received,
            &self.payments_stored,
            &self.payments_duplicate,
            &self.payments_failed,
            &self.payments_declined,
            &self.payments_hung,
            &self.payments_reset,
            &self.payments_throttled,
            &self.payments_storm_refused,
            &self.payments_invalid,
            &self.payments_looked_up,
            &self.health_calls,
            &self.health_answered,
            &self.health_throttled,
            &self.health_storm_refused,
        ] {
            counter.reset();
        }
        self.health_max_per_window.store(0, Ordering::Relaxed);
    }
}
