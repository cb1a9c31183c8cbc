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

    /// The extra latency and the fate of one request.
    pub fn roll(&self, rng: &mut impl Rng) -> (Duration, Fate) {
        if self.is_off() {
            return (Duration::ZERO, Fate::Process);
        }
        let jitter = if self.jitter_ms > 0 {
            rng.random_range(0..=self.jitter_ms)
        } else {
            0
        };
        let latency = Duration::from_millis(self.latency_ms.saturating_add(jitter));
        let draw: f64 = rng.random();
        let mut edge = 0.0;
        let mut falls_in = |rate: f64| {
            edge += rate;
            rate > 0.0 && draw < edge
        };
        let fate = if falls_in(self.hang_rate) {
            Fate::Hang
        } else if falls_in(self.reset_rate) {
            Fate::Reset {
                after_store: self.reset_after_store,
            }
        } else if falls_in(self.error_rate) {
            Fate::Error
        } else if falls_in(self.decline_rate) {
            Fate::Decline
        } else if falls_in(self.throttle_rate) {
            Fate::Throttle
        } else {
            Fate::Process
        };
        (latency, fate)
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
                Faults::default().roll(&mut rng),
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
                assert_eq!(faults.roll(&mut rng).1, fate, "{faults:?}");
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
            match faults.roll(&mut rng).1 {
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
    fn latency_is_fixed_plus_bounded_jitter() {
        let mut rng = StdRng::seed_from_u64(4);
        let faults = Faults {
            latency_ms: 100,
            jitter_ms: 20,
            ..Faults::default()
        };
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..1000 {
            let (latency, fate) = faults.roll(&mut rng);
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
        assert_eq!(always.roll(&mut rng), (Duration::ZERO, Fate::Process));
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
        let fates: Vec<Fate> = (0..n).map(|_| some.roll(&mut rng).1).collect();
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
