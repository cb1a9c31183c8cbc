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
//!   latency rises well above its floor while the limit is in use (the
//!   processor queues what we send), at most once per round trip, so that
//!   one burst of refusals is one cut;
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
        } else if in_use {
            // Queueing that this limit causes shows while it is in use; a
            // processor that slows down with few of our sends in flight has
            // changed its pace (a new floor, learnt within two buckets), and
            // a cut would only make its backlog look long and spill.
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
mod tests {
    use super::*;

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_millis(1_700_000_000_000 + ms)
    }

    fn config() -> LimitConfig {
        LimitConfig {
            initial: 100,
            min: 8,
            max: 1_000,
            grow_after_wait_ms: 1_000,
        }
    }

    /// Payments waiting: more than the limit can send soon.
    const BACKLOG: usize = 1_000_000;

    /// No delay announced.
    fn quiet() -> Announced {
        Announced::default()
    }

    fn answered(latency_ms: u32, in_flight: u32) -> Sample {
        Sample::Answered {
            latency_ms,
            in_flight,
        }
    }

    /// Every send in flight answered after `latency_ms`, round trip after
    /// round trip, from `start`; returns the limit after `trips`.
    fn saturate(l: &mut Limit, latency_ms: u32, announced: u32, start: i64, trips: i64) -> u32 {
        for trip in 0..trips {
            let now = at(start + trip * i64::from(latency_ms.max(1)));
            for _ in 0..l.current() {
                let in_flight = l.current();
                l.observe(
                    answered(latency_ms, in_flight),
                    Announced {
                        delay_ms: announced,
                        at: None,
                    },
                    BACKLOG,
                    now,
                );
            }
        }
        l.current()
    }

    #[test]
    fn a_limit_in_use_grows_by_half_per_round_trip_up_to_the_ceiling() {
        let mut l = Limit::new(config());
        saturate(&mut l, 2_000, 2_000, 0, 1);
        assert_eq!(l.current(), 150);
        assert_eq!(saturate(&mut l, 2_000, 2_000, 2_000, 5), 1_000);
    }

    #[test]
    fn an_idle_limit_does_not_grow() {
        let mut l = Limit::new(config());
        for i in 0..1_000 {
            l.observe(answered(1, 3), quiet(), 0, at(i));
        }
        assert_eq!(l.current(), 100);
    }

    #[test]
    fn a_burst_of_429s_is_one_cut_per_round_trip() {
        let mut l = Limit::new(config());
        l.observe(answered(100, 10), quiet(), 0, at(0));
        for i in 0..50 {
            l.observe(Sample::Overload { in_flight: 100 }, quiet(), 0, at(1 + i));
        }
        assert_eq!(l.current(), 80);
        l.observe(Sample::Overload { in_flight: 100 }, quiet(), 0, at(200));
        assert_eq!(l.current(), 64);
    }

    #[test]
    fn a_processor_that_refuses_everything_keeps_the_minimum() {
        let mut l = Limit::new(config());
        for i in 0..100 {
            l.observe(
                Sample::Overload { in_flight: 0 },
                quiet(),
                0,
                at(i * 10_000),
            );
        }
        assert_eq!(l.current(), 8);
    }

    #[test]
    fn an_announced_delay_is_not_congestion() {
        // The processor answers in 2 s because it says it takes 2 s: grow.
        let mut l = Limit::new(config());
        assert_eq!(saturate(&mut l, 2_000, 2_000, 0, 1), 150);
    }

    #[test]
    fn latency_well_above_its_floor_cuts_the_limit() {
        let mut l = Limit::new(config());
        l.observe(answered(10, 100), quiet(), 0, at(0));
        // Queueing at the processor: 10 ms became 400 ms.
        l.observe(answered(400, 100), quiet(), 0, at(100));
        assert_eq!(l.current(), 90);
    }

    /// The final's 180 s stage seen without probes: default goes from
    /// answering at once to 100 ms, with 30 of 100 sends in flight. That
    /// is a new pace, not queueing: the limit stays.
    #[test]
    fn a_slower_pace_with_the_limit_unused_is_not_congestion() {
        let mut l = Limit::new(config());
        l.observe(answered(1, 30), quiet(), 0, at(0));
        for i in 0..100 {
            l.observe(answered(100, 30), quiet(), 0, at(100 + i * 40));
        }
        assert_eq!(l.current(), 100);
    }

    #[test]
    fn the_floor_forgets_latencies_older_than_two_buckets() {
        let mut l = Limit::new(config());
        l.observe(answered(1, 1), quiet(), 0, at(0));
        assert_eq!(l.floor_ms(0), 1);
        l.observe(answered(2_000, 1), quiet(), 0, at(2_500));
        assert_eq!(l.floor_ms(0), 1, "the previous bucket still counts");
        l.observe(answered(2_000, 1), quiet(), 0, at(4_600));
        assert_eq!(l.floor_ms(0), 2_000);
        assert_eq!(l.floor_ms(3_000), 3_000, "an announced delay raises it");
    }

    #[test]
    fn the_expected_wait_is_the_backlog_over_what_the_processor_carries() {
        let mut l = Limit::new(LimitConfig {
            initial: 800,
            ..config()
        });
        let none = Announced::default();
        assert_eq!(l.expected_wait_ms(100, none, at(0)), 0, "nothing known yet");
        l.observe(answered(2_000, 10), said(2_000, 0), 0, at(0));
        // Never pushed back: up to the ceiling, 1,000 in flight at 2 s, 500/s.
        assert_eq!(l.throughput(none, at(0)).map(|t| t.round()), Some(500.0));
        assert_eq!(l.expected_wait_ms(250, none, at(0)), 500);
        assert_eq!(l.expected_wait_ms(0, none, at(0)), 0);
        // A timeout with few sends in flight says nothing of capacity.
        l.observe(Sample::Overload { in_flight: 3 }, said(2_000, 0), 0, at(1));
        assert_eq!(l.current(), 640);
        assert_eq!(l.expected_wait_ms(250, none, at(2)), 500);
        // A 429 with the limit in use: the processor is at its capacity, the
        // (cut) limit.
        l.observe(
            Sample::Overload { in_flight: 640 },
            said(2_000, 0),
            0,
            at(5_000),
        );
        assert_eq!(l.current(), 512);
        assert_eq!(l.expected_wait_ms(128, none, at(5_001)), 500);
        // Long after the cut, the ceiling again.
        assert_eq!(
            l.expected_wait_ms(250, none, at(5_000 + CUT_MEMORY_MS)),
            500
        );
    }

    fn said(delay_ms: u32, at_ms: i64) -> Announced {
        Announced {
            delay_ms,
            at: Some(at(at_ms)),
        }
    }

    #[test]
    fn a_delay_announced_since_the_last_answer_stands_for_the_latency() {
        let mut l = Limit::new(config());
        // 1,000 in flight at 2 s: 500/s; 50 waiting: 100 ms.
        assert_eq!(l.expected_wait_ms(50, said(2_000, 0), at(0)), 100);
        l.observe(answered(1, 1), quiet(), 0, at(10));
        assert_eq!(
            l.expected_wait_ms(50, said(2_000, 20), at(30)),
            100,
            "slowed down"
        );
        assert_eq!(
            l.expected_wait_ms(500, said(2_000, 5), at(30)),
            1,
            "answers since say fast"
        );
        // A slow answer (far above the floor: a cut, but with one send in
        // flight, no sign of capacity), then a recovery announced.
        l.observe(answered(2_000, 1), quiet(), 0, at(40));
        assert_eq!(l.expected_wait_ms(500, said(0, 50), at(60)), 1, "recovered");
    }

    #[test]
    fn the_time_to_be_paid_is_the_wait_for_a_send_plus_the_latency() {
        let mut l = Limit::new(config());
        assert_eq!(l.expected_done_ms(10, Announced::default(), at(0)), 0);
        l.observe(answered(2_000, 1), quiet(), 0, at(0));
        // 1,000 in flight at 2 s: 500/s; 250 waiting: half a second, then 2 s.
        assert_eq!(l.expected_done_ms(250, Announced::default(), at(1)), 2_500);
        assert_eq!(l.expected_done_ms(0, Announced::default(), at(1)), 2_000);
    }

    #[test]
    fn the_latency_estimate_follows_the_answers_smoothly() {
        let mut l = Limit::new(config());
        l.observe(answered(10, 1), quiet(), 0, at(0));
        l.observe(answered(2_010, 1), quiet(), 0, at(2_100));
        // One slow answer after fast ones moves the estimate by a fifth...
        let none = Announced::default();
        assert_eq!(l.expected_done_ms(0, none, at(2_101)), 410);
        for i in 0..50 {
            l.observe(answered(2_010, 1), quiet(), 0, at(2_110 + i));
        }
        assert_eq!(l.expected_done_ms(0, none, at(2_200)), 2_010);
        // ...one fast answer after slow ones says it at once...
        l.observe(answered(20, 1), quiet(), 0, at(5_000));
        assert_eq!(l.expected_done_ms(0, none, at(5_001)), 20);
        // ...and a slow send that left before it, answered after, is old news.
        l.observe(answered(2_010, 1), quiet(), 0, at(5_005));
        assert_eq!(l.expected_done_ms(0, none, at(5_006)), 20);
    }

    fn trial(latency_ms: u32) -> Sample {
        Sample::Trial {
            latency_ms,
            in_flight: 10,
        }
    }

    /// The preview's outage seen without probes: fast answers, failures
    /// that grow slow (2 s), then the recovery, first heard through trials
    /// that slept through it (paid, 2 s). Neither makes the latency: the
    /// recovered processor does not look slow, and the first fast answer,
    /// a trial's too, says how fast it is now.
    #[test]
    fn an_outage_does_not_make_a_recovered_processor_look_slow() {
        let mut l = Limit::new(config());
        for i in 0..50 {
            l.observe(answered(50, 10), quiet(), 0, at(i));
        }
        let failed = Sample::Failed {
            latency_ms: 2_000,
            in_flight: 100,
        };
        for i in 0..200 {
            l.observe(failed, quiet(), 0, at(1_000 + i * 10));
        }
        for i in 0..20 {
            l.observe(trial(2_000), quiet(), 0, at(4_000 + i));
        }
        assert_eq!(l.expected_latency_ms(quiet()), Some(50.0));
        l.observe(trial(20), quiet(), 0, at(4_100));
        assert_eq!(l.expected_latency_ms(quiet()), Some(20.0));
        // They still adapt the limit: 2 s with the limit in use, well above
        // the floor, is a cut.
        assert!(l.current() < 100);
    }

    /// The same outage seen by an instance that probes: the delay it
    /// announced during the outage (2 s) stands for the latency until an
    /// answer newer than it says otherwise, a trial's included.
    #[test]
    fn a_fast_trial_overrules_a_slow_delay_announced_during_the_outage() {
        let mut l = Limit::new(config());
        l.observe(answered(5, 10), quiet(), 0, at(0));
        let during = said(2_000, 3_000);
        assert_eq!(l.expected_latency_ms(during), Some(2_000.0));
        l.observe(trial(2_000), during, 0, at(3_500));
        assert_eq!(l.expected_latency_ms(during), Some(2_000.0));
        l.observe(trial(20), during, 0, at(4_100));
        let latency = l.expected_latency_ms(during).unwrap();
        assert!(latency < 20.0, "{latency}");
    }

    /// A processor back from an outage, answering in 20 ms, with 4,000
    /// payments waiting: 100 sends drain them in 0.8 s, so the limit stays;
    /// 10,000 would wait 2 s, and it grows.
    #[test]
    fn a_limit_grows_only_for_a_backlog_that_would_wait_long() {
        let mut l = Limit::new(config());
        for i in 0..1_000 {
            l.observe(answered(20, 100), quiet(), 4_000, at(i));
        }
        assert_eq!(l.current(), 100);
        for i in 0..10 {
            l.observe(answered(20, 100), quiet(), 10_000, at(1_000 + i));
        }
        assert_eq!(l.current(), 105);
    }

    #[test]
    fn settings_out_of_order_are_made_consistent() {
        let l = Limit::new(LimitConfig {
            initial: 5_000,
            min: 0,
            max: 0,
            grow_after_wait_ms: 0,
        });
        assert_eq!(l.current(), 1);
    }
}
