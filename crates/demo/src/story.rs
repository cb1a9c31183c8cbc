//! The outage the demo replays, as data: who fails when, how every processor
//! behaves otherwise, and what the traffic looks like. Then a second act: a
//! processor slows down during a rush, and what it cannot carry spills to
//! the next processor by fee.
//!
//! Times are *story* milliseconds: the story is just under twelve minutes
//! long (the outage takes the first ten) and [`crate::clock::Compression`]
//! plays it faster. The processors themselves
//! (ids, names, fees, countries, methods) are not here: they come from
//! `config/techcart.toml`, the one registry `reroute serve` uses too.

use reroute_core::concurrency::LimitConfig;
use reroute_sim::Faults;

/// The processor that fails.
pub const FAILING: &str = "processor_a";
/// The processor the seed expects PIX/BR recommendations to move to.
pub const ALTERNATIVE: &str = "processor_c";
/// The segment whose recommendation the timeline follows.
pub const WATCHED_METHOD: &str = "PIX";
pub const WATCHED_COUNTRY: &str = "BR";

/// The processor that slows down in the second act: the cheapest for
/// PIX/BR, so that its overflow has somewhere to go.
pub const SLOW: &str = "processor_c";
/// The next processor by fee for PIX/BR: where the overflow spills.
pub const SPILL_TO: &str = "processor_a";
/// The segment of the rush, in [`MIX`]: PIX/BR.
pub const RUSH_SEGMENT: usize = 0;
/// How long the slow processor takes to answer in the second act.
pub const SLOW_DELAY_MS: i64 = 2_000;

/// Length of the story: the outage's ten minutes, then the slow act.
pub const STORY_MS: i64 = 11 * 60_000 + 50_000;
/// The checkout's steady payments, one every 400 ms over the whole story
/// (the seed's demo has "1100+"); the rush adds [`RUSH`]'s.
pub const PAYMENTS: u32 = (STORY_MS / 400) as u32;
/// Fewer accepted than this and the story did not happen.
pub const MIN_PAYMENTS: u64 = 1_100;
/// How long a payment waits for the cheapest processor of its segment before
/// a pricier one takes it. Short: a checkout cannot wait a minute.
pub const PATIENCE_MS: i64 = 2_000;
/// How long a payment may expect to wait for the cheapest processor while it
/// is up but slow, before the next by fee takes it: longer than the slow
/// act's 2 s, so that payments queue for the slow processor (its lane grows
/// to carry them, as it does for the final test's slow stages) and only what
/// the lane's ceiling cannot pay within 3 s spills.
pub const SPILL_WAIT_MS: u64 = 3_000;
/// A traffic line on the timeline every this often.
pub const TRAFFIC_EVERY_MS: i64 = 30_000;

/// The evening rush of the second act: extra PIX/BR payments, one every
/// `every_ms` from `from_ms` until `until_ms`.
///
/// Why a rush: by Little's law a processor needs λ·L sends in flight to
/// carry λ payments/s at latency L. The steady PIX/BR traffic (0.75/s)
/// needs 1.5 in flight even at 2 s, which no limit is ever short of; a slow
/// processor only needs *more* sends, and only leaves a backlog to spill,
/// when it has real traffic to carry. With the rush, PIX/BR is 4.75/s:
/// 0.14 in flight at 30 ms (nothing to see), 9.7 at 2 s (more than
/// [`LANES`] allows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rush {
    pub from_ms: i64,
    pub until_ms: i64,
    pub every_ms: i64,
}

pub const RUSH: Rush = Rush {
    from_ms: 600_000,
    until_ms: STORY_MS,
    every_ms: 250,
};

impl Rush {
    /// Payments the rush adds.
    pub fn payments(&self) -> u32 {
        u32::try_from((self.until_ms - self.from_ms) / self.every_ms).unwrap_or(0)
    }
}

/// The router's lanes (sends in flight per processor) at the demo's scale.
///
/// reroute's defaults (128 to start with, up to 1,000) are made for the
/// Rinha's 600 payments/s; the demo's checkout sends a hundredth of that,
/// so its lanes are a hundredth too: 4 sends to start with, up to 8. That
/// lets the slow act show what the defaults do at scale: the lane grows
/// while the slow processor keeps answering at the latency it announces,
/// and what the ceiling cannot carry within the spill wait goes to the next
/// processor by fee.
pub const LANES: LimitConfig = LimitConfig {
    initial: 4,
    min: 2,
    max: 8,
    // Story time, compressed with the rest ([`crate::stack::compress`]).
    grow_after_wait_ms: 1_000,
};

/// How one simulated processor behaves when nothing is wrong with it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Profile {
    pub processor: &'static str,
    /// Fraction of payments the issuer declines (402): business, not failure.
    pub decline_rate: f64,
    pub latency_ms: u64,
    pub jitter_ms: u64,
}

/// Approval rates, chosen so that the timeline shows the outage and not
/// sampling noise. The seed's thresholds judge windows of 10 to 50
/// transactions against 65%; GlobalPay, the incumbent, approves 97% and
/// PixMaster 85%. Drawn at random, a window of 50 at 85% approves 94% or
/// more about once in twenty, enough to carry the PIX/BR recommendation
/// to PixMaster before the outage in one demo of a handful (seen); dealt
/// evenly ([`Profile::faults`]), a window of 50 is within two declines of
/// its share, 82-88% against 94-100%, and the recommendation stays on
/// GlobalPay until its outage.
pub const PROFILES: [Profile; 5] = [
    Profile {
        processor: "processor_a",
        decline_rate: 0.03,
        latency_ms: 40,
        jitter_ms: 30,
    },
    Profile {
        processor: "processor_b",
        decline_rate: 0.15,
        latency_ms: 60,
        jitter_ms: 40,
    },
    Profile {
        processor: "processor_c",
        decline_rate: 0.15,
        latency_ms: 30,
        jitter_ms: 20,
    },
    Profile {
        processor: "processor_d",
        decline_rate: 0.15,
        latency_ms: 50,
        jitter_ms: 30,
    },
    Profile {
        processor: "processor_e",
        decline_rate: 0.15,
        latency_ms: 50,
        jitter_ms: 30,
    },
];

pub fn profile(processor: &str) -> Option<&'static Profile> {
    PROFILES.iter().find(|p| p.processor == processor)
}

impl Profile {
    /// The simulator's faults with `error_rate` of payments failing (500)
    /// and `decline_rate` (the profile's when `None`) of those that get
    /// through declined, dealt evenly so that no lucky run of approvals
    /// lifts a processor past the incumbent before the story says so.
    /// Latencies are divided by `speed`.
    pub fn faults(&self, error_rate: f64, decline_rate: Option<f64>, speed: u32) -> Faults {
        let scale = |ms: u64| (ms as f64 / f64::from(speed)).round() as u64;
        Faults {
            error_rate,
            decline_rate: (1.0 - error_rate) * decline_rate.unwrap_or(self.decline_rate),
            latency_ms: scale(self.latency_ms),
            jitter_ms: scale(self.jitter_ms),
            even: true,
            ..Faults::default()
        }
    }

    pub fn approval(&self) -> f64 {
        1.0 - self.decline_rate
    }
}

/// One payment method in one country, with its share of the traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub method: &'static str,
    pub country: &'static str,
    /// Percent of payments.
    pub weight: u32,
}

impl Segment {
    pub fn label(&self) -> String {
        format!("{}/{}", self.method, self.country)
    }
}

/// TechCart sells mostly in Brazil; every segment of the five processors is
/// covered.
pub const MIX: [Segment; 6] = [
    Segment {
        method: "PIX",
        country: "BR",
        weight: 30,
    },
    Segment {
        method: "CARD",
        country: "BR",
        weight: 30,
    },
    Segment {
        method: "CARD",
        country: "MX",
        weight: 10,
    },
    Segment {
        method: "OXXO",
        country: "MX",
        weight: 10,
    },
    Segment {
        method: "CARD",
        country: "CO",
        weight: 10,
    },
    Segment {
        method: "PSE",
        country: "CO",
        weight: 10,
    },
];

/// Picks segments in proportion to their weights, evenly spread (smooth
/// weighted round robin): over any 100 payments each segment gets exactly
/// its weight, and no segment gets long bursts.
#[derive(Debug, Clone)]
pub struct MixPicker {
    current: Vec<i64>,
}

impl Default for MixPicker {
    fn default() -> Self {
        Self {
            current: vec![0; MIX.len()],
        }
    }
}

impl MixPicker {
    /// The index in [`MIX`] of the next payment's segment.
    pub fn next_segment(&mut self) -> usize {
        let total: i64 = MIX.iter().map(|s| i64::from(s.weight)).sum();
        for (c, s) in self.current.iter_mut().zip(MIX.iter()) {
            *c += i64::from(s.weight);
        }
        let (best, _) = self
            .current
            .iter()
            .enumerate()
            .max_by(|(i, a), (j, b)| a.cmp(b).then(j.cmp(i)))
            .expect("the mix is not empty");
        self.current[best] -= total;
        best
    }
}

/// What changes at one point of the story.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Phase {
    pub at_ms: i64,
    pub title: &'static str,
    pub change: Change,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Change {
    /// The failing processor's errors and declines.
    Failing {
        /// Share of its payments answered 500.
        error_rate: f64,
        /// Share of the rest declined; `None`: its profile's.
        decline_rate: Option<f64>,
    },
    /// The checkout's [`RUSH`] begins; no processor changes.
    Rush,
    /// The slow processor's delay, which it also announces on its health
    /// endpoint as the Rinha processors do (its profile's latency comes on
    /// top).
    Delay { delay_ms: i64 },
}

/// The seed's outage: normal operation, processor_a fails 90% of payments,
/// recovers gradually, back to normal.
///
/// The recovery is DEGRADED by its authorization rate (about 48%, in the
/// middle of the 30-65% band) rather than by its error rate: the 30-50%
/// error band is so narrow that a 50-transaction window of a processor
/// failing 40% leaves it one window in seven (standard deviation 7 points),
/// and the status would flap DOWN and HEALTHY during the recovery.
///
/// Then the slow act: an evening rush of PIX/BR payments, which
/// processor_c carries at its usual 30 ms; processor_c slows to 2 s while
/// the rush goes on; it answers at once again.
pub const PHASES: [Phase; 7] = [
    Phase {
        at_ms: 0,
        title: "Normal operation: every processor healthy",
        change: Change::Failing {
            error_rate: 0.0,
            decline_rate: None,
        },
    },
    Phase {
        at_ms: 150_000,
        title: "Outage: processor_a (GlobalPay_BR) fails 90% of its payments",
        change: Change::Failing {
            error_rate: 0.9,
            decline_rate: None,
        },
    },
    Phase {
        at_ms: 300_000,
        title: "Recovery begins: processor_a fails 10% of its payments and its issuers decline half of the rest",
        change: Change::Failing {
            error_rate: 0.1,
            decline_rate: Some(0.52),
        },
    },
    Phase {
        at_ms: 420_000,
        title: "Recovered: processor_a fails none and approves 97% again",
        change: Change::Failing {
            error_rate: 0.0,
            decline_rate: None,
        },
    },
    Phase {
        at_ms: RUSH.from_ms,
        title: "Evening rush: 4 more PIX/BR payments a second (4.75/s in all); processor_c (PixMaster) carries them",
        change: Change::Rush,
    },
    Phase {
        at_ms: 620_000,
        title: "Slow processor: processor_c answers in 2 s instead of 30 ms, the rush goes on",
        change: Change::Delay {
            delay_ms: SLOW_DELAY_MS,
        },
    },
    Phase {
        at_ms: 680_000,
        title: "processor_c answers in 30 ms again",
        change: Change::Delay { delay_ms: 0 },
    },
];

/// Index of the phase where the outage starts, and where recovery starts.
pub const OUTAGE: usize = 1;
pub const RECOVERY: usize = 2;
/// Index of the phase where the slow processor slows, and where it is fast
/// again.
pub const SLOWED: usize = 5;
pub const FAST_AGAIN: usize = 6;

/// When steady payment `k` (from 0) is sent, in story time: evenly spaced.
pub fn send_at_ms(k: u32) -> i64 {
    i64::from(k) * STORY_MS / i64::from(PAYMENTS)
}

/// Every payment the checkout sends: when (story ms) and its segment (index
/// in [`MIX`]), in order. The steady ones follow the mix; the rush's are
/// all PIX/BR.
pub fn schedule() -> Vec<(i64, usize)> {
    let mut picker = MixPicker::default();
    let mut all: Vec<(i64, usize)> = (0..PAYMENTS)
        .map(|k| (send_at_ms(k), picker.next_segment()))
        .collect();
    all.extend((0..RUSH.payments()).map(|j| {
        (
            RUSH.from_ms + i64::from(j) * RUSH.every_ms + 100,
            RUSH_SEGMENT,
        )
    }));
    all.sort_by_key(|(at, _)| *at);
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_processor_has_a_profile_and_approves_at_least_85_percent() {
        for id in [
            "processor_a",
            "processor_b",
            "processor_c",
            "processor_d",
            "processor_e",
        ] {
            let p = profile(id).unwrap();
            assert!(p.approval() >= 0.85, "{id}");
        }
        assert!(profile("default").is_none());
    }

    #[test]
    fn the_mix_gives_each_segment_its_weight_in_every_hundred() {
        let mut picker = MixPicker::default();
        for _ in 0..3 {
            let mut counts = [0u32; MIX.len()];
            for _ in 0..100 {
                counts[picker.next_segment()] += 1;
            }
            let weights: Vec<u32> = MIX.iter().map(|s| s.weight).collect();
            assert_eq!(counts.to_vec(), weights);
        }
    }

    #[test]
    fn the_mix_spreads_segments_evenly() {
        let mut picker = MixPicker::default();
        let picks: Vec<usize> = (0..100).map(|_| picker.next_segment()).collect();
        // A 30% segment never waits more than 4 payments for its turn.
        let pix: Vec<usize> = picks
            .iter()
            .enumerate()
            .filter(|(_, s)| **s == 0)
            .map(|(i, _)| i)
            .collect();
        assert!(pix.windows(2).all(|w| w[1] - w[0] <= 4), "{pix:?}");
    }

    #[test]
    fn faults_keep_the_decline_share_of_what_gets_through_and_scale_latency() {
        let a = profile("processor_a").unwrap();
        let normal = a.faults(0.0, None, 1);
        assert_eq!(normal.error_rate, 0.0);
        assert!((normal.decline_rate - 0.03).abs() < 1e-12);
        assert_eq!((normal.latency_ms, normal.jitter_ms), (40, 30));
        let outage = a.faults(0.9, None, 10);
        assert_eq!(outage.error_rate, 0.9);
        assert!((outage.decline_rate - 0.003).abs() < 1e-12);
        assert_eq!((outage.latency_ms, outage.jitter_ms), (4, 3));
        outage.validate().unwrap();
        let recovering = a.faults(0.1, Some(0.5), 1);
        assert!((recovering.decline_rate - 0.45).abs() < 1e-12);
        recovering.validate().unwrap();
    }

    fn failing(phase: usize) -> (f64, Option<f64>) {
        match PHASES[phase].change {
            Change::Failing {
                error_rate,
                decline_rate,
            } => (error_rate, decline_rate),
            other => panic!("phase {phase} is {other:?}"),
        }
    }

    #[test]
    fn phases_are_in_order_within_the_story() {
        assert!(PHASES.windows(2).all(|w| w[0].at_ms < w[1].at_ms));
        assert!(PHASES.iter().all(|p| p.at_ms < STORY_MS));
        assert!(failing(OUTAGE).0 > 0.5);
        // The recovery sits in the middle of the DEGRADED band of the
        // authorization rate, with errors well under 30%.
        let (error_rate, decline_rate) = failing(RECOVERY);
        let authorization = 1.0 - decline_rate.unwrap();
        assert!((0.40..=0.55).contains(&authorization));
        assert!(error_rate < 0.15);
        assert_eq!(failing(RECOVERY + 1), (0.0, None));
    }

    #[test]
    fn the_slow_act_slows_the_cheapest_pix_processor_during_the_rush_and_ends_fast() {
        assert_eq!(MIX[RUSH_SEGMENT].label(), "PIX/BR");
        assert_eq!(PHASES[SLOWED].change, Change::Delay { delay_ms: 2_000 });
        assert_eq!(PHASES[FAST_AGAIN].change, Change::Delay { delay_ms: 0 });
        let rush = PHASES
            .iter()
            .position(|p| p.change == Change::Rush)
            .unwrap();
        assert!(rush < SLOWED && SLOWED < FAST_AGAIN);
        assert!(RUSH.from_ms <= PHASES[SLOWED].at_ms);
        // Still rushing a while after the processor is fast again: the
        // same traffic then stays on it.
        assert!(RUSH.until_ms - PHASES[FAST_AGAIN].at_ms >= 30_000);
        // The slow act adds no more than two minutes of story.
        const { assert!(STORY_MS - 600_000 <= 120_000) };
    }

    #[test]
    fn at_two_seconds_the_rush_needs_more_sends_than_the_lanes_allow() {
        let pix_per_s = f64::from(MIX[RUSH_SEGMENT].weight) / 100.0 * 1000.0 / 400.0
            + 1000.0 / RUSH.every_ms as f64;
        let needed = pix_per_s * SLOW_DELAY_MS as f64 / 1000.0;
        assert!(needed > f64::from(LANES.max), "{needed}");
        // ... and far fewer than it starts with at its usual latency.
        let usual = profile(SLOW).unwrap().latency_ms as f64 / 1000.0;
        assert!(pix_per_s * usual < f64::from(LANES.initial));
        const { assert!(LANES.min < LANES.initial && LANES.initial < LANES.max) };
    }

    #[test]
    fn payments_are_spread_over_the_whole_story() {
        assert_eq!(send_at_ms(0), 0);
        assert_eq!(send_at_ms(1), 400);
        assert!(send_at_ms(PAYMENTS - 1) < STORY_MS);
        assert!(u64::from(PAYMENTS) >= MIN_PAYMENTS);
    }

    #[test]
    fn the_schedule_adds_the_rush_as_pix_br_payments_within_its_window() {
        let all = schedule();
        assert_eq!(all.len(), (PAYMENTS + RUSH.payments()) as usize);
        assert!(all.windows(2).all(|w| w[0].0 <= w[1].0));
        assert!(all.iter().all(|(at, _)| *at < STORY_MS));
        let before: Vec<_> = all.iter().filter(|(at, _)| *at < RUSH.from_ms).collect();
        assert_eq!(before.len(), (RUSH.from_ms / 400) as usize);
        let pix_in_rush = all
            .iter()
            .filter(|(at, s)| *at >= RUSH.from_ms && *s == RUSH_SEGMENT)
            .count();
        let steady_in_rush =
            all.iter().filter(|(at, _)| *at >= RUSH.from_ms).count() - RUSH.payments() as usize;
        assert!(pix_in_rush >= RUSH.payments() as usize + steady_in_rush * 3 / 10 - 1);
    }
}
