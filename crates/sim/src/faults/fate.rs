//! How often a processor misbehaves ([`Faults`]) and what becomes of one
//! payment request ([`Faults::roll`] decides its [`Fate`] on arrival).
//!
//! Pure: randomness comes in as an `Rng`. The processor rolls once per
//! `POST /payments` (and asks [`Faults::throttles_health`] once per health
//! check); [`super::schedule`] changes the settings over time.

use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};

/// How a processor misbehaves. Rates are fractions of `POST /payments`
/// requests, drawn independently per request; each request gets at most one
/// of hang / reset / error / decline / throttle, so their rates add up to at
/// most 1.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Answer 500 before storing (nothing stored), like the Rinha failure
    /// mode but for a fraction of requests.
    pub error_rate: f64,
    /// Answer 402 `{"declined": true, ...}` (nothing stored): a business
    /// refusal, not a technical failure.
    pub decline_rate: f64,
    /// Extra latency added to every payment, after the Rinha delay.
    pub latency_ms: u64,
    /// Uniform random extra latency in `0..=jitter_ms`, on top of `latency_ms`.
    pub jitter_ms: u64,
    /// Never answer (nothing stored); the request holds its connection until
    /// the client gives up.
    pub hang_rate: f64,
    /// Drop the connection (TCP reset) without any response once the request
    /// has been read and the latency has passed.
    pub reset_rate: f64,
    /// With `reset_rate`: store the payment first, then reset, so the caller
    /// faces an unknown outcome that did happen. Default: reset before storing.
    pub reset_after_store: bool,
    /// Answer 429 at once, before the delay (nothing stored), as the
    /// reference's concurrency limiter refuses a request it has no room
    /// for. A 429 says nothing about an earlier send of the same payment
    /// that may still be sleeping: a router must not take it for "not
    /// processed". Decided on arrival, so a storm can be scripted while
    /// earlier requests sleep.
    pub throttle_rate: f64,
    /// Fraction of `GET /payments/service-health` calls answered 429 with
    /// `Retry-After` whatever the window: a storm of rate-limit refusals.
    /// Such a refusal takes no permit of the window. Not a payment fate, so
    /// it is not part of the sum of rates.
    pub health_throttle_rate: f64,
    /// Deal the fates instead of drawing them: after any number of requests
    /// each fate has come about its rate's share (about one off), so over
    /// any run of them about two off at most: a demo or a test sees no lucky
    /// streak. Latency jitter stays random.
    pub even: bool,
}

/// Why fault settings were refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FaultsError {
    #[error("{field} must be a number between 0 and 1 (got {value})")]
    RateOutOfRange { field: &'static str, value: f64 },
    #[error(
        "hang_rate + reset_rate + error_rate + decline_rate + throttle_rate must not exceed 1 (got {0}): each request gets at most one fate"
    )]
    RatesExceedOne(f64),
}

/// What becomes of one payment request, decided when it arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// The normal path: failure flag, then store (200 or 422).
    Process,
    Hang,
    Reset {
        after_store: bool,
    },
    Error,
    Decline,
    /// 429 at once: no wait, nothing stored.
    Throttle,
}

impl Faults {
    /// True when nothing is injected: the exact Rinha behaviour.
    pub fn is_off(&self) -> bool {
        *self == Faults::default()
    }

    pub fn validate(&self) -> Result<(), FaultsError> {
        let rates = [
            ("hang_rate", self.hang_rate),
            ("reset_rate", self.reset_rate),
            ("error_rate", self.error_rate),
            ("decline_rate", self.decline_rate),
            ("throttle_rate", self.throttle_rate),
        ];
        let health = [("health_throttle_rate", self.health_throttle_rate)];
        for (field, value) in rates.iter().chain(&health).copied() {
            if !(0.0..=1.0).contains(&value) {
                return Err(FaultsError::RateOutOfRange { field, value });
            }
        }
        let sum: f64 = rates.iter().map(|(_, v)| v).sum();
        // A little slack for sums such as 0.7 + 0.2 + 0.1 in binary.
        if sum > 1.0 + 1e-9 {
            return Err(FaultsError::RatesExceedOne(sum));
        }
        Ok(())
    }

    /// Whether one health call is refused by the injected 429 storm.
    pub fn throttles_health(&self, rng: &mut impl Rng) -> bool {
        self.health_throttle_rate > 0.0 && rng.random::<f64>() < self.health_throttle_rate
    }

    /// The extra latency and the fate of one request, drawn; with `even`,
    /// dealt by `dealer` (one per processor).
    pub fn roll(&self, dealer: &mut Dealer, rng: &mut impl Rng) -> (Duration, Fate) {
        if self.is_off() {
            return (Duration::ZERO, Fate::Process);
        }
        let jitter = if self.jitter_ms > 0 {
            rng.random_range(0..=self.jitter_ms)
        } else {
            0
        };
        let latency = Duration::from_millis(self.latency_ms.saturating_add(jitter));
        let rates = self.rates();
        let fate = if self.even {
            dealer.deal(rates)
        } else {
            let draw: f64 = rng.random();
            let mut edge = 0.0;
            rates
                .iter()
                .position(|&rate| {
                    edge += rate;
                    rate > 0.0 && draw < edge
                })
                .unwrap_or(PROCESS)
        };
        (latency, self.fate(fate))
    }

    /// The fates' rates in [`Self::fate`]'s order; the normal path takes
    /// what is left of 1.
    fn rates(&self) -> [f64; FATES] {
        let mut rates = [
            self.hang_rate,
            self.reset_rate,
            self.error_rate,
            self.decline_rate,
            self.throttle_rate,
            0.0,
        ];
        rates[PROCESS] = (1.0 - rates.iter().sum::<f64>()).max(0.0);
        rates
    }

    fn fate(&self, index: usize) -> Fate {
        match index {
            0 => Fate::Hang,
            1 => Fate::Reset {
                after_store: self.reset_after_store,
            },
            2 => Fate::Error,
            3 => Fate::Decline,
            4 => Fate::Throttle,
            _ => Fate::Process,
        }
    }
}

const FATES: usize = 6;
const PROCESS: usize = FATES - 1;

/// Deals fates in proportion to their rates (a smooth weighted round
/// robin): each request adds every fate's rate to its credit, the fate with
/// the most credit is dealt and pays 1. The credits always sum to 0, so a
/// fate's count after n requests is n times its rate less its credit.
/// Kept across changes of the rates, which it follows from the next request.
#[derive(Debug, Clone, Default)]
pub struct Dealer {
    credit: [f64; FATES],
}

impl Dealer {
    fn deal(&mut self, rates: [f64; FATES]) -> usize {
        let mut dealt = 0;
        for (i, rate) in rates.into_iter().enumerate() {
            self.credit[i] += rate;
            if self.credit[i] > self.credit[dealt] {
                dealt = i;
            }
        }
        self.credit[dealt] -= 1.0;
        dealt
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn no_faults_means_no_latency_and_normal_processing() {
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..100 {
            assert_eq!(
                Faults::default().roll(&mut Dealer::default(), &mut rng),
                (Duration::ZERO, Fate::Process)
            );
        }
    }

    #[test]
    fn a_rate_of_one_always_applies() {
        let mut rng = StdRng::seed_from_u64(2);
        let cases = [
            (
                Faults {
                    error_rate: 1.0,
                    ..Faults::default()
                },
                Fate::Error,
            ),
            (
                Faults {
                    decline_rate: 1.0,
                    ..Faults::default()
                },
                Fate::Decline,
            ),
            (
                Faults {
                    hang_rate: 1.0,
                    ..Faults::default()
                },
                Fate::Hang,
            ),
            (
                Faults {
                    reset_rate: 1.0,
                    ..Faults::default()
                },
                Fate::Reset { after_store: false },
            ),
            (
                Faults {
                    reset_rate: 1.0,
                    reset_after_store: true,
                    ..Faults::default()
                },
                Fate::Reset { after_store: true },
            ),
            (
                Faults {
                    throttle_rate: 1.0,
                    ..Faults::default()
                },
                Fate::Throttle,
            ),
        ];
        for (faults, fate) in cases {
            for _ in 0..100 {
                assert_eq!(
                    faults.roll(&mut Dealer::default(), &mut rng).1,
                    fate,
                    "{faults:?}"
                );
            }
        }
    }

    #[test]
    fn rates_split_requests_in_proportion() {
        let mut rng = StdRng::seed_from_u64(3);
        let faults = Faults {
            error_rate: 0.2,
            decline_rate: 0.3,
            ..Faults::default()
        };
        let n = 20_000;
        let (mut errors, mut declines) = (0, 0);
        for _ in 0..n {
            match faults.roll(&mut Dealer::default(), &mut rng).1 {
                Fate::Error => errors += 1,
                Fate::Decline => declines += 1,
                _ => {}
            }
        }
        let near = |count: i32, rate: f64| ((count as f64 / n as f64) - rate).abs() < 0.02;
        assert!(near(errors, 0.2), "{errors}");
        assert!(near(declines, 0.3), "{declines}");
    }

    #[test]
    fn even_fates_come_in_proportion_in_every_run_of_requests() {
        let mut rng = StdRng::seed_from_u64(7);
        let cases = [
            (0.0, 0.15),
            (0.0, 0.03),
            (0.9, 0.1 * 0.03),
            (0.1, 0.9 * 0.5),
            (1.0 / 3.0, 0.2),
        ];
        for (error_rate, decline_rate) in cases {
            let faults = Faults {
                error_rate,
                decline_rate,
                even: true,
                ..Faults::default()
            };
            let mut dealer = Dealer::default();
            let fates: Vec<Fate> = (0..2_000)
                .map(|_| faults.roll(&mut dealer, &mut rng).1)
                .collect();
            // Every prefix within one of its share, so every run within two.
            for (fate, rate) in [(Fate::Error, error_rate), (Fate::Decline, decline_rate)] {
                let mut count = 0.0;
                for (n, dealt) in fates.iter().enumerate() {
                    count += f64::from(u8::from(*dealt == fate));
                    let off = count - (n + 1) as f64 * rate;
                    assert!(off.abs() < 1.0 + 1e-9, "{fate:?} at {rate}: {off} at {n}");
                }
            }
            let runs = fates
                .windows(50)
                .map(|w| w.iter().filter(|f| **f == Fate::Decline).count());
            let expected = 50.0 * decline_rate;
            for declines in runs {
                assert!(
                    (declines as f64 - expected).abs() <= 2.0,
                    "{declines} of 50 at {decline_rate}"
                );
            }
        }
    }

    #[test]
    fn a_dealer_follows_new_rates_from_the_next_request() {
        let mut rng = StdRng::seed_from_u64(8);
        let mut dealer = Dealer::default();
        let failing = Faults {
            error_rate: 0.9,
            even: true,
            ..Faults::default()
        };
        let healthy = Faults {
            decline_rate: 0.1,
            even: true,
            ..Faults::default()
        };
        let count = |faults: &Faults, fate: Fate, dealer: &mut Dealer, rng: &mut StdRng| {
            (0..100)
                .filter(|_| faults.roll(dealer, rng).1 == fate)
                .count()
        };
        assert_eq!(count(&failing, Fate::Error, &mut dealer, &mut rng), 90);
        let declined = count(&healthy, Fate::Decline, &mut dealer, &mut rng);
        assert!((9..=11).contains(&declined), "{declined}");
        // Off: every request processed, whatever the dealer owes.
        assert_eq!(
            Faults::default().roll(&mut dealer, &mut rng),
            (Duration::ZERO, Fate::Process)
        );
    }

    #[test]
    fn latency_is_fixed_plus_bounded_jitter() {
        let mut rng = StdRng::seed_from_u64(4);
        let faults = Faults {
            latency_ms: 100,
            jitter_ms: 20,
            ..Faults::default()
        };
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..1000 {
            let (latency, fate) = faults.roll(&mut Dealer::default(), &mut rng);
            assert_eq!(fate, Fate::Process);
            assert!((100..=120).contains(&latency.as_millis()), "{latency:?}");
            seen.insert(latency.as_millis());
        }
        assert!(seen.len() > 10, "jitter should vary: {seen:?}");
    }

    #[test]
    fn the_health_storm_refuses_its_fraction_of_health_calls_only() {
        let mut rng = StdRng::seed_from_u64(5);
        assert!(!Faults::default().throttles_health(&mut rng));
        let always = Faults {
            health_throttle_rate: 1.0,
            ..Faults::default()
        };
        assert!((0..100).all(|_| always.throttles_health(&mut rng)));
        // Payments are untouched by it.
        assert_eq!(
            always.roll(&mut Dealer::default(), &mut rng),
            (Duration::ZERO, Fate::Process)
        );
        let some = Faults {
            health_throttle_rate: 0.25,
            ..Faults::default()
        };
        let refused = (0..20_000)
            .filter(|_| some.throttles_health(&mut rng))
            .count();
        assert!((refused as f64 / 20_000.0 - 0.25).abs() < 0.02, "{refused}");
        // A rate of its own: not added to the payment fates.
        let with_fates = Faults {
            error_rate: 1.0,
            health_throttle_rate: 1.0,
            ..Faults::default()
        };
        assert_eq!(with_fates.validate(), Ok(()));
        let bad = Faults {
            health_throttle_rate: 1.5,
            ..Faults::default()
        };
        assert!(matches!(
            bad.validate(),
            Err(FaultsError::RateOutOfRange {
                field: "health_throttle_rate",
                ..
            })
        ));
    }

    #[test]
    fn the_throttle_refuses_its_fraction_of_payments_and_shares_the_sum_of_fates() {
        let mut rng = StdRng::seed_from_u64(6);
        let some = Faults {
            throttle_rate: 0.3,
            error_rate: 0.2,
            ..Faults::default()
        };
        let n = 20_000;
        let fates: Vec<Fate> = (0..n)
            .map(|_| some.roll(&mut Dealer::default(), &mut rng).1)
            .collect();
        let share = |fate: Fate| fates.iter().filter(|f| **f == fate).count() as f64 / n as f64;
        assert!((share(Fate::Throttle) - 0.3).abs() < 0.02);
        assert!((share(Fate::Error) - 0.2).abs() < 0.02);
        // One fate per request: a throttle and an error cannot both be certain.
        let both = Faults {
            throttle_rate: 0.6,
            error_rate: 0.6,
            ..Faults::default()
        };
        assert!(matches!(
            both.validate(),
            Err(FaultsError::RatesExceedOne(_))
        ));
        let bad = Faults {
            throttle_rate: -0.1,
            ..Faults::default()
        };
        assert!(matches!(
            bad.validate(),
            Err(FaultsError::RateOutOfRange {
                field: "throttle_rate",
                ..
            })
        ));
        // It refuses payments only: the health check is not throttled by it.
        let storm = Faults {
            throttle_rate: 1.0,
            ..Faults::default()
        };
        assert!(!storm.throttles_health(&mut rng));
    }

    #[test]
    fn invalid_rates_are_refused() {
        let bad = Faults {
            error_rate: 1.5,
            ..Faults::default()
        };
        assert!(matches!(
            bad.validate(),
            Err(FaultsError::RateOutOfRange {
                field: "error_rate",
                ..
            })
        ));
        let bad = Faults {
            error_rate: f64::NAN,
            ..Faults::default()
        };
        assert!(bad.validate().is_err());
        let bad = Faults {
            error_rate: 0.6,
            decline_rate: 0.6,
            ..Faults::default()
        };
        assert!(matches!(
            bad.validate(),
            Err(FaultsError::RatesExceedOne(_))
        ));
        let fine = Faults {
            error_rate: 0.7,
            decline_rate: 0.2,
            hang_rate: 0.1,
            ..Faults::default()
        };
        assert_eq!(fine.validate(), Ok(()));
    }

    #[test]
    fn fault_settings_read_from_json_default_missing_fields_to_off() {
        let faults: Faults = serde_json::from_str(r#"{"error_rate": 0.25}"#).unwrap();
        assert_eq!(
            faults,
            Faults {
                error_rate: 0.25,
                ..Faults::default()
            }
        );
        assert!(serde_json::from_str::<Faults>(r#"{"eror_rate": 0.25}"#).is_err());
    }
}
