//! TechCart's checkout: real payments through the router's `POST /payments`,
//! each with a payment method and a country, sent open-loop on the story's
//! schedule (one every 400 story ms, more during the evening rush), whatever
//! the router is doing.
//!
//! The router executes them: it picks the processor, and the health engine
//! learns from the outcomes. What the demo keeps is which segment each
//! payment belongs to, so that the processors' books can say where each
//! segment's payments went.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use hyper::Method;
use reroute_core::CorrelationId;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::client::Http;
use crate::clock::StoryClock;
use crate::story::{self, MIX};

/// What the checkout has sent so far; shared with the timeline.
#[derive(Debug, Default)]
pub struct Sent {
    pub sent: AtomicU64,
    /// Answered 2xx: durably accepted by the router.
    pub accepted: AtomicU64,
    /// Answered anything else.
    pub refused: AtomicU64,
    /// No answer (timeout, connection error).
    pub unanswered: AtomicU64,
    /// Every payment is sent.
    pub done: AtomicBool,
    segments: Mutex<HashMap<CorrelationId, usize>>,
}

impl Sent {
    /// The index in [`MIX`] of a payment the checkout sent.
    pub fn segment_of(&self, id: &CorrelationId) -> Option<usize> {
        self.segments
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .copied()
    }

    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }
}

/// Payment `k`'s amount: between 10.00 and 499.99, varied but reproducible.
pub fn amount_text(k: u32) -> String {
    let cents = 1_000 + (u64::from(k) * 7_919 + 4_111) % 49_000;
    format!("{}.{:02}", cents / 100, cents % 100)
}

/// The body of `POST /payments`.
pub fn payment_body(id: CorrelationId, amount: &str, segment: usize) -> String {
    let s = &MIX[segment];
    format!(
        r#"{{"correlationId":"{id}","amount":{amount},"paymentMethod":"{}","country":"{}"}}"#,
        s.method, s.country
    )
}

/// Sends the payments of [`story::schedule`] on time, then waits for every
/// answer. Stops early when `stop` is cancelled.
pub async fn run(
    http: Http,
    router_url: String,
    clock: StoryClock,
    sent: std::sync::Arc<Sent>,
    stop: CancellationToken,
) {
    let url = format!("{router_url}/payments");
    let mut in_flight = JoinSet::new();
    for (k, (at_ms, segment)) in (0u32..).zip(story::schedule()) {
        let due = clock.instant_of(at_ms);
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep_until(due) => {}
        }
        // Answers are collected as they come, so the set stays small.
        while in_flight.try_join_next().is_some() {}
        let id = CorrelationId::new_random();
        sent.segments
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, segment);
        sent.sent.fetch_add(1, Ordering::Relaxed);
        let body = payment_body(id, &amount_text(k), segment);
        let (http, url, sent) = (http.clone(), url.clone(), sent.clone());
        in_flight.spawn(async move {
            match http.call(Method::POST, &url, Some(body)).await {
                Ok((status, _)) if status.is_success() => {
                    sent.accepted.fetch_add(1, Ordering::Relaxed)
                }
                Ok(_) => sent.refused.fetch_add(1, Ordering::Relaxed),
                Err(_) => sent.unanswered.fetch_add(1, Ordering::Relaxed),
            };
        });
    }
    while in_flight.join_next().await.is_some() {}
    sent.done.store(true, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_valid_and_varied() {
        let amounts: Vec<String> = (0..200).map(amount_text).collect();
        for a in &amounts {
            let value: f64 = a.parse().unwrap();
            assert!((10.0..500.0).contains(&value), "{a}");
            assert_eq!(a.split('.').nth(1).unwrap().len(), 2, "{a}");
        }
        let distinct: std::collections::HashSet<_> = amounts.iter().collect();
        assert!(distinct.len() > 150);
    }

    #[test]
    fn a_payment_names_its_method_and_country() {
        let id = CorrelationId::new_random();
        let body = payment_body(id, "19.90", 1);
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["correlationId"], id.to_string());
        assert_eq!(json["amount"].as_f64(), Some(19.9));
        assert_eq!(json["paymentMethod"], "CARD");
        assert_eq!(json["country"], "BR");
    }
}
