//! One lane per processor: the sends in flight to it, held within the
//! adaptive limit of [`reroute_core::concurrency`], and the payments waiting
//! for a free send. Workers take a [`Permit`] before every send and feed
//! every answer back ([`Lanes::observe`]); the routing policy reads each
//! lane's expected wait to decide when a payment spills
//! ([`reroute_core::Policy::spill`]).
//!
//! A lane is a semaphore whose permit count follows the limit: raising the
//! limit adds permits, cutting it takes free permits out, and the rest as
//! sends in flight return theirs (the *debt*).

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use reroute_core::Timestamp;
use reroute_core::concurrency::{Announced, Limit, LimitConfig, Sample};
use tokio::sync::{Semaphore, SemaphorePermit};

pub struct Lanes {
    /// Indexed like the fee-ordered registry.
    lanes: Vec<Lane>,
}

struct Lane {
    permits: Semaphore,
    state: Mutex<LaneState>,
    waiting: AtomicUsize,
    in_flight: AtomicUsize,
}

struct LaneState {
    limit: Limit,
    /// The permit count the semaphore was last sized to.
    sized: u32,
    /// Permits to take out of circulation as sends return them.
    debt: u32,
}

/// What one lane looks like now (metrics, dashboard).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LaneView {
    pub limit: u32,
    pub in_flight: usize,
    pub waiting: usize,
    /// Payments per second at this limit and the latest latency; 0 before
    /// any answer.
    pub throughput: f64,
    pub expected_wait_ms: u64,
    /// How long the processor takes to answer (its answers' smoothed
    /// latency, or a delay it announced since); 0 while unknown.
    pub latency_ms: u64,
}

/// The right to one send in flight; returned when dropped.
pub struct Permit<'a> {
    lane: &'a Lane,
    permit: Option<SemaphorePermit<'a>>,
}

impl Lanes {
    pub fn new(processors: usize, config: LimitConfig) -> Self {
        Lanes {
            lanes: (0..processors)
                .map(|_| {
                    let limit = Limit::new(config);
                    let sized = limit.current();
                    Lane {
                        permits: Semaphore::new(sized as usize),
                        state: Mutex::new(LaneState {
                            limit,
                            sized,
                            debt: 0,
                        }),
                        waiting: AtomicUsize::new(0),
                        in_flight: AtomicUsize::new(0),
                    }
                })
                .collect(),
        }
    }

    /// Waits for a free send to `processor`.
    pub async fn acquire(&self, processor: usize) -> Permit<'_> {
        let lane = &self.lanes[processor];
        let waiting = Counted::new(&lane.waiting);
        let permit = lane.permits.acquire().await;
        drop(waiting);
        lane.in_flight.fetch_add(1, Ordering::Relaxed);
        Permit {
            lane,
            // The semaphore is never closed.
            permit: permit.ok(),
        }
    }

    /// Sends in flight to `processor` now.
    pub fn in_flight(&self, processor: usize) -> u32 {
        u32::try_from(self.lanes[processor].in_flight.load(Ordering::Relaxed)).unwrap_or(u32::MAX)
    }

    /// Adapts `processor`'s limit to one answer (`announced`: the delay its
    /// health endpoint announced last).
    pub fn observe(&self, processor: usize, sample: Sample, announced: Announced, now: Timestamp) {
        let lane = &self.lanes[processor];
        let waiting = lane.waiting.load(Ordering::Relaxed);
        let mut state = lane.state();
        let limit = state.limit.observe(sample, announced, waiting, now);
        state.resize(&lane.permits, limit);
    }

    /// How long a payment joining `processor`'s waiting ones may expect to
    /// take to be paid there, in ms: its wait for a free send plus the
    /// processor's latency (`announced`: the delay the processor announced
    /// last).
    pub fn expected_done_ms(&self, processor: usize, announced: Announced, now: Timestamp) -> u64 {
        let lane = &self.lanes[processor];
        let waiting = lane.waiting.load(Ordering::Relaxed);
        lane.state().limit.expected_done_ms(waiting, announced, now)
    }

    /// Payments waiting for a free send to `processor`.
    pub fn waiting(&self, processor: usize) -> usize {
        self.lanes[processor].waiting.load(Ordering::Relaxed)
    }

    pub fn view(&self, processor: usize, announced: Announced, now: Timestamp) -> LaneView {
        let lane = &self.lanes[processor];
        let waiting = lane.waiting.load(Ordering::Relaxed);
        let state = lane.state();
        LaneView {
            limit: state.limit.current(),
            in_flight: lane.in_flight.load(Ordering::Relaxed),
            waiting,
            throughput: state.limit.throughput(announced, now).unwrap_or(0.0),
            expected_wait_ms: state.limit.expected_wait_ms(waiting, announced, now),
            latency_ms: state
                .limit
                .expected_latency_ms(announced)
                .map_or(0, |ms| ms.ceil() as u64),
        }
    }
}

/// Counts one in a counter for as long as it lives (a waiter given up on
/// is no longer counted).
struct Counted<'a>(&'a AtomicUsize);

impl<'a> Counted<'a> {
    fn new(counter: &'a AtomicUsize) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        Counted(counter)
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Lane {
    fn state(&self) -> std::sync::MutexGuard<'_, LaneState> {
        // Every update leaves the state whole: a poisoned lock is usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl LaneState {
    /// Sizes the semaphore to `limit` permits in all (free, in flight and
    /// owed).
    fn resize(&mut self, permits: &Semaphore, limit: u32) {
        if limit > self.sized {
            let mut more = limit - self.sized;
            let repaid = more.min(self.debt);
            self.debt -= repaid;
            more -= repaid;
            permits.add_permits(more as usize);
        } else if limit < self.sized {
            let fewer = self.sized - limit;
            let taken = permits.forget_permits(fewer as usize) as u32;
            self.debt += fewer - taken;
        }
        self.sized = limit;
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.lane.in_flight.fetch_sub(1, Ordering::Relaxed);
        let Some(permit) = self.permit.take() else {
            return;
        };
        let mut state = self.lane.state();
        if state.debt > 0 {
            state.debt -= 1;
            permit.forget();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lanes(initial: u32) -> Lanes {
        Lanes::new(
            1,
            LimitConfig {
                initial,
                min: 1,
                max: 100,
                grow_after_wait_ms: 1_000,
            },
        )
    }

    fn overload(l: &Lanes, at_ms: i64) {
        l.observe(
            0,
            Sample::Overload { in_flight: 10 },
            Announced::default(),
            Timestamp::from_millis(at_ms),
        );
    }

    #[tokio::test]
    async fn sends_beyond_the_limit_wait_for_a_free_one() {
        let l = lanes(2);
        let a = l.acquire(0).await;
        let _b = l.acquire(0).await;
        assert_eq!(
            l.view(0, Announced::default(), Timestamp::from_millis(0))
                .in_flight,
            2
        );
        let waiter = l.acquire(0);
        tokio::pin!(waiter);
        assert!(futures_poll_once(waiter.as_mut()).await.is_none());
        assert_eq!(
            l.view(0, Announced::default(), Timestamp::from_millis(0))
                .waiting,
            1
        );
        drop(a);
        let _c = waiter.await;
        assert_eq!(
            l.view(0, Announced::default(), Timestamp::from_millis(0))
                .waiting,
            0
        );
        assert_eq!(
            l.view(0, Announced::default(), Timestamp::from_millis(0))
                .in_flight,
            2
        );
    }

    #[tokio::test]
    async fn a_cut_takes_permits_back_as_sends_return_them() {
        let l = lanes(10);
        let held: Vec<_> = [(); 10].iter().map(|_| l.acquire(0)).collect();
        let mut permits = Vec::new();
        for p in held {
            permits.push(p.await);
        }
        overload(&l, 0); // 10 -> 8, all in flight: a debt of 2
        assert_eq!(
            l.view(0, Announced::default(), Timestamp::from_millis(0))
                .limit,
            8
        );
        permits.truncate(7); // three return: two repay the debt, one is free
        assert_eq!(l.lanes[0].permits.available_permits(), 1);
        permits.clear();
        assert_eq!(l.lanes[0].permits.available_permits(), 8);
    }

    #[tokio::test]
    async fn growth_repays_a_debt_before_adding_permits() {
        let l = lanes(10);
        let mut permits = Vec::new();
        for _ in 0..10 {
            permits.push(l.acquire(0).await);
        }
        overload(&l, 0); // debt 2, sized 8
        let mut state = l.lanes[0].state();
        state.resize(&l.lanes[0].permits, 9);
        assert_eq!(state.debt, 1);
        drop(state);
        assert_eq!(l.lanes[0].permits.available_permits(), 0);
        permits.clear();
        assert_eq!(l.lanes[0].permits.available_permits(), 9);
    }

    /// Polls a future once: `Some` if it was ready.
    async fn futures_poll_once<F: std::future::Future + Unpin>(f: F) -> Option<F::Output> {
        let mut f = f;
        std::future::poll_fn(|cx| {
            std::task::Poll::Ready(match std::pin::Pin::new(&mut f).poll(cx) {
                std::task::Poll::Ready(v) => Some(v),
                std::task::Poll::Pending => None,
            })
        })
        .await
    }
}
