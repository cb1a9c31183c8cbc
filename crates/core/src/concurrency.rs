//! How many sends one processor may have in flight: a limit that follows
//! what the processor can carry, and the expected wait that decides when a
//! payment spills to a pricier processor.
//!
//! By Little's law, carrying λ payments/s at latency L needs λ·L sends in
//! flight: a processor answering in 2 s needs 800 in flight for 400/s. A
//! fixed count cannot be right at both 1 ms and 2 s, so the limit adapts,
//! AIMD-style, on what each answer says:
//! - **grow** while the limit is in use (in flight near it), latency stays
//!   near its floor and the payments waiting would wait longer than
//!   [`LimitConfig::grow_after_wait_ms`] (a second by default) for a free
//!   send at this limit: by half a send per answer, so about +50%
//!   per round trip (a limit of 128 reaches 800 in about five round trips);
//! - **cut** by a fifth on overload (a 429, a timeout), and by a tenth when
//!   latency rises well above its floor while the limit is in use and no
//!   payment waits for it (the processor queues what we send; with payments
//!   waiting, a pace the floor has not learnt yet would look the same), at
//!   most once per round trip, so that one burst of refusals is one cut;
//! - always within `[min, max]`, `max` being the configured ceiling.
//!
//! The latency *floor* is what the processor takes when it is not queueing:
//! the larger of the delay it announces on its health endpoint (a delay it
//! adds on purpose is not congestion) and the smallest latency seen in the
//! last few seconds. Several instances sharing a processor each back off on
//! its 429s, so together they settle below its capacity.
//!
//! Pure: instants and latencies come in as arguments.

use crate::Timestamp;

/// The limiter's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LimitConfig {
    /// The limit a processor starts with.
    pub initial: u32,
    /// Never below this (a processor that refuses everything still gets a
    /// few sends, so that its recovery is seen).
    pub min: u32,
    /// The ceiling: never above this, whatever the processor carries.
    pub max: u32,
    /// The limit grows only while the payments waiting would wait longer
    /// than this for a free send at the current limit, in ms: sends the
    /// backlog does not need are load on both sides.
    pub grow_after_wait_ms: u32,
}

impl Default for LimitConfig {
    fn default() -> Self {
        LimitConfig {
            initial: 128,
            min: 8,
            max: 1_000,
            grow_after_wait_ms: 1_000,
        }
    }
}

/// How one answer reads to the limiter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sample {
    /// Paid or declined after `latency_ms`, with `in_flight` sends to this
    /// processor at the time (this one included), to a send made while the
    /// processor was believed up: the latency a payment may expect there.
    Answered { latency_ms: u32, in_flight: u32 },
    /// Answered with a failure (a 5xx): it adapts the limit like any
    /// answer, not the latency a payment may expect there, which is how long
    /// the processor takes to pay, not to fail. After an outage whose
    /// failures were slow, it would make the recovered processor look slow,
    /// and payments spill.
    Failed { latency_ms: u32, in_flight: u32 },
    /// Paid (or declined) in answer to a send that left while the processor
    /// was believed down (a trial, a re-send let through). It can say the
    /// processor is faster than expected (a recovery, before the next probe
    /// says so), never that it is slower: a trial that slept through the
    /// outage measures the outage; slowness after it shows on the sends
    /// that follow.
    Trial { latency_ms: u32, in_flight: u32 },
    /// Refused for load (429) or not answered in time, with `in_flight`
    /// sends to this processor at the time.
    Overload { in_flight: u32 },
}

/// The delay a processor announced on its health endpoint, and when.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Announced {
    pub delay_ms: u32,
    /// `None`: it never announced one.
    pub at: Option<Timestamp>,
}

/// Latency is "near its floor" up to `floor × 1.5 + 10 ms`.
fn near_floor(latency_ms: u32, floor_ms: u32) -> bool {
    f64::from(latency_ms) <= f64::from(floor_ms) * 1.5 + 10.0
}

/// How long a cut says the processor is at its capacity.
pub const CUT_MEMORY_MS: i64 = 10_000;

/// The smallest latency of the last two buckets of [`FLOOR_BUCKET_MS`].
const FLOOR_BUCKET_MS: i64 = 2_000;

/// One processor's limit.
#[derive(Debug, Clone)]
pub struct Limit {
    config: LimitConfig,
    limit: f64,
    /// When the limit was last cut; no second cut within a round trip.
    last_cut: Option<Timestamp>,
    /// When the limit was last cut while in use: the processor pushed back.
    at_capacity: Option<Timestamp>,
    /// The latest latency, an estimate of the round trip.
    latency_ms: u32,
    /// The latency smoothed over the answers, and when the send of the
    /// newest of them left: an answer to a send that left earlier is older
    /// news (a slow send made before a recovery, answered after it) and
    /// leaves the estimate alone.
    smoothed_ms: f64,
    newest_left: Option<Timestamp>,
    /// The start of the current floor bucket, its minimum, and the previous
    /// bucket's minimum.
    bucket_start: Option<Timestamp>,
    bucket_min: u32,
    previous_min: u32,
}

impl Limit {
    pub fn new(config: LimitConfig) -> Self {
        let config = LimitConfig {
            min: config.min.max(1),
            max: config.max.max(config.min.max(1)),
            ..config
        };
        Limit {
            limit: f64::from(config.initial.clamp(config.min, config.max)),
            config,
            last_cut: None,
            at_capacity: None,
            latency_ms: 0,
            smoothed_ms: 0.0,
            newest_left: None,
            bucket_start: None,
            bucket_min: u32::MAX,
            previous_min: u32::MAX,
        }
    }

    /// Sends allowed in flight now.
    pub fn current(&self) -> u32 {
        self.limit as u32
    }

    /// What the processor takes when it is not queueing, given the delay it
    /// announces (0 when it announces none).
    pub fn floor_ms(&self, announced_ms: u32) -> u32 {
        let seen = self.bucket_min.min(self.previous_min);
        if seen == u32::MAX {
            announced_ms
        } else {
            seen.max(announced_ms)
        }
    }

    /// Payments per second the processor can carry (Little's law: sends in
    /// flight ÷ latency). The latency is the answers' smoothed one, or the
    /// delay the processor announced when that is newer than its last
    /// answer (a processor that just slowed down is known slow before its
    /// first slow answer, one that just recovered known fast before its
    /// first fast one). The sends in flight are the ceiling until the
    /// processor has pushed back (a cut while the limit was in use, in the
    /// last [`CUT_MEMORY_MS`]), the limit then: a limit grows within a few round trips while the
    /// processor keeps up, so it says little of what it can carry until it
    /// has been reached. `None` while nothing is known of its latency.
    pub fn throughput(&self, announced: Announced, now: Timestamp) -> Option<f64> {
        let latency_ms = self.expected_latency_ms(announced)?;
        let pushed_back = self
            .at_capacity
            .is_some_and(|at| now.millis() - at.millis() < CUT_MEMORY_MS);
        let in_flight = if pushed_back {
            self.limit
        } else {
            f64::from(self.config.max)
        };
        Some(in_flight * 1000.0 / latency_ms.max(1.0))
    }

    /// How long the processor takes to answer, in ms: its answers' smoothed
    /// latency, or the delay it announced when that is newer than the
    /// newest answered send. `None` while neither is known.
    pub fn expected_latency_ms(&self, announced: Announced) -> Option<f64> {
        match (announced.at, self.newest_left) {
            (Some(said), Some(seen)) if said > seen => Some(f64::from(announced.delay_ms)),
            (Some(_), None) => Some(f64::from(announced.delay_ms)),
            (_, Some(_)) => Some(self.smoothed_ms),
            (None, None) => None,
        }
    }

    /// How long a payment joining `waiting` others for this processor may
    /// expect to take to be paid there, in ms: the wait for a free send
    /// plus the processor's latency (0 while nothing is known of it).
    pub fn expected_done_ms(&self, waiting: usize, announced: Announced, now: Timestamp) -> u64 {
        let latency = self.expected_latency_ms(announced).unwrap_or(0.0);
        self.expected_wait_ms(waiting, announced, now) + latency.ceil() as u64
    }

    /// How long a payment joining `waiting` others for this processor may
    /// expect to wait for a free send, in ms: 0 while nobody waits, or while
    /// nothing is known of its speed.
    pub fn expected_wait_ms(&self, waiting: usize, announced: Announced, now: Timestamp) -> u64 {
        if waiting == 0 {
            return 0;
        }
        match self.throughput(announced, now) {
            Some(per_second) => ((waiting as f64) * 1000.0 / per_second).ceil() as u64,
            None => 0,
        }
    }

    /// Adapts the limit to one answer (`announced`: the delay the processor
    /// announced last; `waiting`: the payments waiting for a free send);
    /// returns the new limit.
    pub fn observe(
        &mut self,
        sample: Sample,
        announced: Announced,
        waiting: usize,
        now: Timestamp,
    ) -> u32 {
        let announced_ms = announced.delay_ms;
        match sample {
            Sample::Answered {
                latency_ms,
                in_flight,
            } => {
                self.estimate(latency_ms, now);
                self.answered(latency_ms, in_flight, announced_ms, waiting, now);
            }
            Sample::Failed {
                latency_ms,
                in_flight,
            } => self.answered(latency_ms, in_flight, announced_ms, waiting, now),
            Sample::Trial {
                latency_ms,
                in_flight,
            } => {
                let faster = self
                    .expected_latency_ms(announced)
                    .is_some_and(|expected| f64::from(latency_ms) < expected);
                if faster {
                    self.estimate(latency_ms, now);
                }
                self.answered(latency_ms, in_flight, announced_ms, waiting, now);
            }
            Sample::Overload { in_flight } => self.cut(0.8, in_flight, now),
        }
        self.limit = self
            .limit
            .clamp(f64::from(self.config.min), f64::from(self.config.max));
        self.current()
    }

    /// Folds one paid (or declined) answer into the latency a payment may
    /// expect.
    fn estimate(&mut self, latency_ms: u32, now: Timestamp) {
        // Quick to fall, slow to rise: one fast answer says the
        // processor is fast again (a recovery must not look slow
        // for a fifth of the answers, during which payments would
        // spill); slowness shows over several answers, or at once
        // by the delay the processor announces.
        let latency = f64::from(latency_ms);
        let left = now.plus_millis(-i64::from(latency_ms));
        match self.newest_left {
            Some(newest) if left < newest => {}
            Some(_) if latency > self.smoothed_ms => {
                self.smoothed_ms += (latency - self.smoothed_ms) / 5.0;
                self.newest_left = Some(left);
            }
            _ => {
                self.smoothed_ms = latency;
                self.newest_left = Some(left);
            }
        }
    }

    /// Adapts the limit to one answer: grow while near the floor, cut when
    /// well above it.
    fn answered(
        &mut self,
        latency_ms: u32,
        in_flight: u32,
        announced_ms: u32,
        waiting: usize,
        now: Timestamp,
    ) {
        self.latency_ms = latency_ms;
        self.record_floor(latency_ms, now);
        let in_use = f64::from(in_flight) >= self.limit * 0.75;
        if near_floor(latency_ms, self.floor_ms(announced_ms)) {
            // Grow only a limit in use (an idle processor proves nothing
            // about what it could carry), and only while the payments
            // waiting for it would wait long at this limit: sends the
            // backlog does not need are load on both sides (a processor
            // back from an outage would get a burst of a thousand sends for
            // a backlog that a hundred drain in a fraction of a second).
            let wait_ms = waiting as f64 * f64::from(latency_ms.max(1)) / self.limit;
            if in_use && wait_ms > f64::from(self.config.grow_after_wait_ms) {
                self.limit += 0.5;
            }
        } else if in_use && waiting == 0 {
            // Queueing that this limit causes shows while it is in use; a
            // processor that slows down with few of our sends in flight has
            // changed its pace (a new floor, learnt within two buckets), and
            // a cut would only make its backlog look long and spill. Nor is
            // the limit cut for latency while payments wait for it: a new
            // pace then looks like queueing until the floor has learnt it
            // (in flight grows with latency either way), and a cut each
            // round trip would take the limit to its minimum meanwhile, the
            // backlog with it. Overload (429s, timeouts) still cuts.
            self.cut(0.9, in_flight, now);
        }
    }

    /// Cuts the limit, at most once per round trip. A cut made while the
    /// limit was in use (in flight near it) says the processor is at its
    /// capacity ([`Limit::throughput`]); one made with few sends in flight
    /// (timeouts of a processor that is down) says nothing of it.
    fn cut(&mut self, factor: f64, in_flight: u32, now: Timestamp) {
        let round_trip = i64::from(self.latency_ms.max(1));
        if self
            .last_cut
            .is_some_and(|at| now.millis() - at.millis() < round_trip)
        {
            return;
        }
        self.last_cut = Some(now);
        if f64::from(in_flight) >= self.limit * 0.75 {
            self.at_capacity = Some(now);
        }
        self.limit *= factor;
    }

    fn record_floor(&mut self, latency_ms: u32, now: Timestamp) {
        match self.bucket_start {
            Some(start) if now.millis() - start.millis() < FLOOR_BUCKET_MS => {}
            Some(start) if now.millis() - start.millis() < 2 * FLOOR_BUCKET_MS => {
                self.previous_min = self.bucket_min;
                self.bucket_min = u32::MAX;
                self.bucket_start = Some(now);
            }
            _ => {
                self.previous_min = u32::MAX;
                self.bucket_min = u32::MAX;
                self.bucket_start = Some(now);
            }
        }
        self.bucket_min = self.bucket_min.min(latency_ms);
    }
}

#[cfg(test)]
mod tests;
