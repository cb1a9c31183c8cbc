//! The limiter against the answers it reads: growth, cuts, the floor and
//! the expected wait, with instants passed in.

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

/// The final's 180 s stage as one core sees it: default was draining a
/// backlog at once (the limit in use) and now answers in 100 ms, while the
/// floor still remembers 1 ms for a few seconds. Payments wait for it: a
/// cut would only lengthen their wait (and make them spill), so the limit
/// holds until the floor has learnt the new pace.
#[test]
fn a_slower_pace_with_payments_waiting_is_not_cut() {
    let mut l = Limit::new(config());
    l.observe(answered(1, 100), quiet(), 500, at(0));
    for trip in 1..30 {
        l.observe(answered(100, 100), quiet(), 500, at(trip * 100));
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
