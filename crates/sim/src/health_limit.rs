//! The health endpoint's rate limit: a fixed window with a short queue.
//!
//! The reference processor uses ASP.NET's fixed-window limiter: one permit per
//! window (5 s), windows counted from start-up, up to two extra callers queued
//! (oldest first) for the following windows, and 429 with `Retry-After` for
//! anyone beyond that. The router must respect this limit across all its
//! instances, and tests assert it does, so the simulator reproduces it
//! exactly and also measures the most calls it ever answered in one window.
//!
//! Pure: the caller passes the time elapsed since start-up. Because permits
//! are handed out one per window in arrival order, a queued caller can be told
//! at once which window it will be served in; it then just sleeps until then.

use std::time::Duration;

/// What a health call is told on arrival.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Answer now; the answer belongs to window `window`.
    Now { window: u64 },
    /// Wait, then answer at the start of window `window` (`at` from start-up).
    Queued { window: u64, at: Duration },
    /// Answer 429: the permit and the queue are taken.
    Rejected,
}

#[derive(Debug, Clone)]
pub struct HealthLimiter {
    window: Duration,
    queue_limit: u64,
    /// The first window whose permit nobody holds yet.
    next_free: u64,
    /// Window of the latest answer and how many answers it had.
    answered_window: u64,
    answered_count: u64,
}

impl HealthLimiter {
    /// `window` must not be zero.
    pub fn new(window: Duration, queue_limit: usize) -> Self {
        assert!(!window.is_zero(), "health window must be positive");
        Self {
            window,
            queue_limit: queue_limit as u64,
            next_free: 0,
            answered_window: 0,
            answered_count: 0,
        }
    }

    pub fn window(&self) -> Duration {
        self.window
    }

    fn index(&self, elapsed: Duration) -> u64 {
        (elapsed.as_nanos() / self.window.as_nanos()) as u64
    }

    fn start_of(&self, window: u64) -> Duration {
        let nanos = self.window.as_nanos().saturating_mul(u128::from(window));
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// Decides the fate of a call arriving `elapsed` after start-up.
    pub fn admit(&mut self, elapsed: Duration) -> Admission {
        let current = self.index(elapsed);
        if self.next_free <= current {
            self.next_free = current + 1;
            return Admission::Now { window: current };
        }
        let queued = self.next_free - current - 1;
        if queued >= self.queue_limit {
            return Admission::Rejected;
        }
        let window = self.next_free;
        self.next_free += 1;
        Admission::Queued {
            window,
            at: self.start_of(window),
        }
    }

    /// A queued caller gave up (its client went away). If it held the last
    /// reservation, the slot is freed for the next caller; a reservation in
    /// the middle of the queue stays unused (the limit still holds).
    pub fn cancel(&mut self, window: u64) {
        if window + 1 == self.next_free {
            self.next_free = window;
        }
    }

    /// Records an answer granted in `window` (as [`Admission`] said);
    /// returns how many answers that window has had so far. Counting by the
    /// granted window rather than the clock at send time keeps a call
    /// admitted at the very end of a window from looking like a second answer
    /// in the next one.
    pub fn record_answer(&mut self, current: u64) -> u64 {
        if current == self.answered_window {
            self.answered_count += 1;
        } else {
            self.answered_window = current;
            self.answered_count = 1;
        }
        self.answered_count
    }

    /// The `Retry-After` value in whole seconds: the window, rounded up, as the
    /// reference sends its window length.
    pub fn retry_after_secs(&self) -> u64 {
        self.window.as_millis().div_ceil(1000).max(1) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: Duration = Duration::from_secs(5);

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[test]
    fn one_call_per_window_then_two_queue_then_rejection() {
        let mut limiter = HealthLimiter::new(W, 2);
        assert_eq!(limiter.admit(ms(100)), Admission::Now { window: 0 });
        assert_eq!(
            limiter.admit(ms(200)),
            Admission::Queued {
                window: 1,
                at: ms(5000)
            }
        );
        assert_eq!(
            limiter.admit(ms(300)),
            Admission::Queued {
                window: 2,
                at: ms(10_000)
            }
        );
        assert_eq!(limiter.admit(ms(400)), Admission::Rejected);
    }

    #[test]
    fn a_call_in_a_fresh_window_is_answered_at_once() {
        let mut limiter = HealthLimiter::new(W, 2);
        assert_eq!(limiter.admit(ms(4_999)), Admission::Now { window: 0 });
        assert_eq!(limiter.admit(ms(5_000)), Admission::Now { window: 1 });
        assert_eq!(limiter.admit(ms(17_000)), Admission::Now { window: 3 });
    }

    #[test]
    fn the_queue_frees_up_as_windows_pass() {
        let mut limiter = HealthLimiter::new(W, 2);
        limiter.admit(ms(0));
        limiter.admit(ms(1));
        limiter.admit(ms(2));
        // In window 1 the first queued caller is served; one place frees up.
        assert_eq!(
            limiter.admit(ms(5_100)),
            Admission::Queued {
                window: 3,
                at: ms(15_000)
            }
        );
        assert_eq!(limiter.admit(ms(5_200)), Admission::Rejected);
    }

    #[test]
    fn without_a_queue_extra_calls_are_rejected() {
        let mut limiter = HealthLimiter::new(W, 0);
        assert_eq!(limiter.admit(ms(0)), Admission::Now { window: 0 });
        assert_eq!(limiter.admit(ms(1)), Admission::Rejected);
    }

    #[test]
    fn a_cancelled_last_reservation_is_given_to_the_next_caller() {
        let mut limiter = HealthLimiter::new(W, 2);
        limiter.admit(ms(0));
        let Admission::Queued { window, .. } = limiter.admit(ms(1)) else {
            panic!()
        };
        limiter.cancel(window);
        assert_eq!(
            limiter.admit(ms(2)),
            Admission::Queued {
                window: 1,
                at: ms(5000)
            }
        );
    }

    #[test]
    fn answers_are_counted_per_window() {
        let mut limiter = HealthLimiter::new(W, 2);
        assert_eq!(limiter.record_answer(0), 1);
        assert_eq!(limiter.record_answer(1), 1);
        assert_eq!(limiter.record_answer(1), 2);
        assert_eq!(limiter.record_answer(2), 1);
    }

    #[test]
    fn retry_after_is_the_window_in_whole_seconds() {
        assert_eq!(HealthLimiter::new(W, 2).retry_after_secs(), 5);
        assert_eq!(HealthLimiter::new(ms(200), 2).retry_after_secs(), 1);
        assert_eq!(HealthLimiter::new(ms(1_500), 2).retry_after_secs(), 2);
    }
}
