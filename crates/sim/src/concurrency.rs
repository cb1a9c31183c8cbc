//! The payments endpoint's concurrency limit.
//!
//! The reference processor admits 800 requests at once and queues 500 more;
//! beyond that it answers 429. A router that floods a slow processor (delay
//! 5 s) meets this wall, so the simulator has it too.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub struct ConcurrencyLimit {
    in_flight: Arc<Semaphore>,
    queued: AtomicUsize,
    max_queued: usize,
}

/// Held for as long as a request is in flight.
pub type InFlight = OwnedSemaphorePermit;

impl ConcurrencyLimit {
    pub fn new(max_in_flight: usize, max_queued: usize) -> Self {
        Self {
            in_flight: Arc::new(Semaphore::new(max_in_flight)),
            queued: AtomicUsize::new(0),
            max_queued,
        }
    }

    /// A place in flight, after waiting in the queue if need be; `None` when
    /// the queue is full too (the caller answers 429).
    pub async fn enter(&self) -> Option<InFlight> {
        if let Ok(permit) = self.in_flight.clone().try_acquire_owned() {
            return Some(permit);
        }
        if self.queued.fetch_add(1, Ordering::AcqRel) >= self.max_queued {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        struct Leave<'a>(&'a AtomicUsize);
        impl Drop for Leave<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::AcqRel);
            }
        }
        let _leave = Leave(&self.queued);
        self.in_flight.clone().acquire_owned().await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn beyond_in_flight_and_queue_callers_are_refused() {
        let limit = Arc::new(ConcurrencyLimit::new(2, 1));
        let a = limit.enter().await.unwrap();
        let _b = limit.enter().await.unwrap();
        let waiting = tokio::spawn({
            let limit = limit.clone();
            async move { limit.enter().await.is_some() }
        });
        while limit.queued.load(Ordering::Acquire) == 0 {
            tokio::task::yield_now().await;
        }
        assert!(limit.enter().await.is_none(), "queue of 1 is full");
        drop(a);
        assert!(
            waiting.await.unwrap(),
            "the queued caller gets the freed place"
        );
    }
}
