//! The outage the demo replays, as data: who fails when, how every processor
//! behaves otherwise, and what the traffic looks like.
//!
//! Times are *story* milliseconds: the story is ten minutes long and
//! [`crate::clock::Compression`] plays it faster. The processors themselves
//! (ids, names, fees, countries, methods) are not here: they come from
//! `config/techcart.toml`, the one registry `reroute serve` uses too.

use reroute_sim::Faults;

/// The processor that fails.
pub const FAILING: &str = "processor_a";
/// The processor the seed expects PIX/BR recommendations to move to.
pub const ALTERNATIVE: &str = "processor_c";
/// The segment whose recommendation the timeline follows.
pub const WATCHED_METHOD: &str = "PIX";
pub const WATCHED_COUNTRY: &str = "BR";

/// Length of the story.
pub const STORY_MS: i64 = 10 * 60_000;
/// Payments sent over the story (the seed's demo has "1100+").
pub const PAYMENTS: u32 = 1_500;
/// Fewer accepted than this and the story did not happen.
pub const MIN_PAYMENTS: u64 = 1_100;
/// How long a payment waits for the cheapest processor of its segment before
/// a pricier one takes it. Short: a checkout cannot wait a minute.
pub const PATIENCE_MS: i64 = 2_000;
/// A traffic line on the timeline every this often.
pub const TRAFFIC_EVERY_MS: i64 = 30_000;

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
/// transactions against 65%: a processor approving 75-80% dips under 65% in
/// one small window in ten to twenty (10 transactions at 80%: 12%), and
/// would flap to DEGRADED on its own. At 85% that is rare. GlobalPay, the
/// incumbent, approves 97%, far enough above PixMaster for the PIX/BR
/// recommendation to stay on it until its outage (the two windows' rates
/// differ by more than two standard deviations).
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
    /// through declined. Latencies are divided by `speed`.
    pub fn faults(&self, error_rate: f64, decline_rate: Option<f64>, speed: u32) -> Faults {
        let scale = |ms: u64| (ms as f64 / f64::from(speed)).round() as u64;
        Faults {
            error_rate,
            decline_rate: (1.0 - error_rate) * decline_rate.unwrap_or(self.decline_rate),
            latency_ms: scale(self.latency_ms),
            jitter_ms: scale(self.jitter_ms),
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

/// What happens to the failing processor at one point of the story.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Phase {
    pub at_ms: i64,
    pub title: &'static str,
    /// Share of the failing processor's payments answered 500.
    pub error_rate: f64,
    /// Share of the rest declined; `None`: its profile's.
    pub decline_rate: Option<f64>,
}

/// The seed's outage: normal operation, processor_a fails 90% of payments,
/// recovers gradually, back to normal.
///
/// The recovery is DEGRADED by its authorization rate (about 48%, in the
/// middle of the 30-65% band) rather than by its error rate: the 30-50%
/// error band is so narrow that a 50-transaction window of a processor
/// failing 40% leaves it one window in seven (standard deviation 7 points),
/// and the status would flap DOWN and HEALTHY during the recovery.
pub const PHASES: [Phase; 4] = [
    Phase {
        at_ms: 0,
        title: "Normal operation: every processor healthy",
        error_rate: 0.0,
        decline_rate: None,
    },
    Phase {
        at_ms: 150_000,
        title: "Outage: processor_a (GlobalPay_BR) fails 90% of its payments",
        error_rate: 0.9,
        decline_rate: None,
    },
    Phase {
        at_ms: 300_000,
        title: "Recovery begins: processor_a fails 10% of its payments and its issuers decline half of the rest",
        error_rate: 0.1,
        decline_rate: Some(0.52),
    },
    Phase {
        at_ms: 420_000,
        title: "Recovered: processor_a fails none and approves 97% again",
        error_rate: 0.0,
        decline_rate: None,
    },
];

/// Index of the phase where the outage starts, and where recovery starts.
pub const OUTAGE: usize = 1;
pub const RECOVERY: usize = 2;

/// When payment `k` (from 0) is sent, in story time: evenly spaced.
pub fn send_at_ms(k: u32) -> i64 {
    i64::from(k) * STORY_MS / i64::from(PAYMENTS)
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

    #[test]
    fn phases_are_in_order_within_the_story() {
        assert!(PHASES.windows(2).all(|w| w[0].at_ms < w[1].at_ms));
        assert!(PHASES.iter().all(|p| p.at_ms < STORY_MS));
        assert!(PHASES[OUTAGE].error_rate > 0.5);
        // The recovery sits in the middle of the DEGRADED band of the
        // authorization rate, with errors well under 30%.
        let r = PHASES[RECOVERY];
        let authorization = 1.0 - r.decline_rate.unwrap();
        assert!((0.40..=0.55).contains(&authorization));
        assert!(r.error_rate < 0.15);
        assert_eq!(PHASES.last().unwrap().error_rate, 0.0);
        assert_eq!(PHASES.last().unwrap().decline_rate, None);
    }

    #[test]
    fn payments_are_spread_over_the_whole_story() {
        assert_eq!(send_at_ms(0), 0);
        assert_eq!(send_at_ms(1), 400);
        assert!(send_at_ms(PAYMENTS - 1) < STORY_MS);
        assert!(u64::from(PAYMENTS) >= MIN_PAYMENTS);
    }
}
