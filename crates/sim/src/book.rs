//! The processor's books: every payment it stored.
//!
//! This is what the auditor compares with the router's ledger, so it must be
//! exact (amounts in cents, instants in milliseconds, inclusive windows) and
//! must never slow the simulator down: payments live in a fixed number of
//! shards, each a small map behind its own mutex, held only for one insert or
//! lookup and never across an `.await`.

use std::collections::HashMap;
use std::sync::Mutex;

use reroute_core::{CorrelationId, Money, Timestamp, Window};
use serde::Serialize;

/// One stored payment, as `GET /payments/{id}` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Payment {
    pub correlation_id: CorrelationId,
    pub amount: Money,
    pub requested_at: Timestamp,
}

/// What an insert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Insert {
    Stored,
    /// The correlation id was already stored; nothing changed.
    Duplicate,
}

/// Count and total over a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Totals {
    pub requests: u64,
    pub amount: Money,
}

/// Stored payments, sharded by correlation id.
pub struct Book {
    shards: Box<[Mutex<HashMap<CorrelationId, Entry>>]>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    amount: Money,
    requested_at: Timestamp,
}

const SHARDS: usize = 64;

impl Default for Book {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }
}

impl Book {
    fn shard(&self, id: &CorrelationId) -> &Mutex<HashMap<CorrelationId, Entry>> {
        let bytes = id.as_bytes();
        // Both halves, so ids that share a prefix (UUIDv7) still spread out.
        let folded = bytes.iter().fold(0usize, |acc, b| {
            acc.wrapping_mul(31).wrapping_add(*b as usize)
        });
        &self.shards[folded % SHARDS]
    }

    /// Stores the payment unless its correlation id is already there.
    pub fn insert(&self, payment: Payment) -> Insert {
        let mut shard = self
            .shard(&payment.correlation_id)
            .lock()
            .expect("book shard poisoned");
        match shard.entry(payment.correlation_id) {
            std::collections::hash_map::Entry::Occupied(_) => Insert::Duplicate,
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(Entry {
                    amount: payment.amount,
                    requested_at: payment.requested_at,
                });
                Insert::Stored
            }
        }
    }

    pub fn get(&self, id: &CorrelationId) -> Option<Payment> {
        let shard = self.shard(id).lock().expect("book shard poisoned");
        shard.get(id).map(|e| Payment {
            correlation_id: *id,
            amount: e.amount,
            requested_at: e.requested_at,
        })
    }

    /// Count and sum of the payments whose `requestedAt` is in `window`
    /// (inclusive at both ends).
    pub fn totals(&self, window: Window) -> Totals {
        let mut totals = Totals::default();
        for shard in self.shards.iter() {
            let shard = shard.lock().expect("book shard poisoned");
            for entry in shard.values().filter(|e| window.contains(e.requested_at)) {
                totals.requests += 1;
                totals.amount += entry.amount;
            }
        }
        totals
    }

    /// Every payment in `window`, ordered by `requestedAt` then correlation id.
    pub fn list(&self, window: Window) -> Vec<Payment> {
        let mut all = Vec::new();
        for shard in self.shards.iter() {
            let shard = shard.lock().expect("book shard poisoned");
            all.extend(
                shard
                    .iter()
                    .filter(|(_, e)| window.contains(e.requested_at))
                    .map(|(id, e)| Payment {
                        correlation_id: *id,
                        amount: e.amount,
                        requested_at: e.requested_at,
                    }),
            );
        }
        all.sort_by_key(|p| (p.requested_at, p.correlation_id));
        all
    }

    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().expect("book shard poisoned").len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn purge(&self) {
        for shard in self.shards.iter() {
            shard.lock().expect("book shard poisoned").clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payment(cents: i64, at_ms: i64) -> Payment {
        Payment {
            correlation_id: CorrelationId::new_random(),
            amount: Money::from_minor(cents),
            requested_at: Timestamp::from_millis(at_ms),
        }
    }

    #[test]
    fn a_correlation_id_is_stored_once() {
        let book = Book::default();
        let p = payment(1990, 1000);
        assert_eq!(book.insert(p), Insert::Stored);
        let again = Payment {
            amount: Money::from_minor(1),
            ..p
        };
        assert_eq!(book.insert(again), Insert::Duplicate);
        assert_eq!(book.get(&p.correlation_id), Some(p));
        assert_eq!(book.len(), 1);
    }

    #[test]
    fn totals_count_both_window_edges() {
        let book = Book::default();
        for (cents, at) in [(100, 9), (200, 10), (300, 15), (400, 20), (500, 21)] {
            book.insert(payment(cents, at));
        }
        let window = Window::new(
            Some(Timestamp::from_millis(10)),
            Some(Timestamp::from_millis(20)),
        );
        assert_eq!(
            book.totals(window),
            Totals {
                requests: 3,
                amount: Money::from_minor(900)
            }
        );
        assert_eq!(book.totals(Window::ALL).requests, 5);
        let listed: Vec<i64> = book
            .list(window)
            .iter()
            .map(|p| p.requested_at.millis())
            .collect();
        assert_eq!(listed, [10, 15, 20]);
    }

    #[test]
    fn purge_empties_every_shard() {
        let book = Book::default();
        for i in 0..500 {
            book.insert(payment(1, i));
        }
        assert_eq!(book.len(), 500);
        book.purge();
        assert!(book.is_empty());
    }
}
