//! Fault injection: the ways a processor misbehaves beyond the Rinha protocol.
//!
//! Every fault is off by default, so a simulator that nobody configures
//! behaves exactly like the reference processor. [`Faults`] says how often
//! each misbehaviour happens; [`Faults::roll`] turns one request into one
//! [`Fate`]; [`Controls`] holds a processor's adjustable settings (the Rinha
//! delay and failure flag plus the faults) and plays a timed [`ScheduleStep`]
//! list. Everything here is pure: time comes in as an argument, randomness as
//! an `Rng`, so the HTTP layer is the only place with effects.

use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

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

/// One entry of a timed schedule: `after_ms` after the schedule starts, the
/// fields present are applied, as if an operator had called the admin
/// endpoints at that instant. Absent fields keep their current value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleStep {
    pub after_ms: u64,
    /// New fault settings (replace the current ones whole).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<Faults>,
    /// New Rinha delay in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<i64>,
    /// New Rinha failure flag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<bool>,
}

/// Why a schedule was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScheduleError {
    #[error("schedule step {index}: {source}")]
    Faults { index: usize, source: FaultsError },
    #[error("schedule steps must be in non-decreasing after_ms order (step {index})")]
    OutOfOrder { index: usize },
}

/// Checks every step's faults and the order of the steps.
pub fn validate_schedule(steps: &[ScheduleStep]) -> Result<(), ScheduleError> {
    for (index, step) in steps.iter().enumerate() {
        if let Some(faults) = &step.settings {
            faults
                .validate()
                .map_err(|source| ScheduleError::Faults { index, source })?;
        }
        if index > 0 && step.after_ms < steps[index - 1].after_ms {
            return Err(ScheduleError::OutOfOrder { index });
        }
    }
    Ok(())
}

/// The settings in force at one instant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// The Rinha delay in milliseconds, as set (negative means none).
    pub delay_ms: i64,
    pub failure: bool,
    pub faults: Faults,
}

impl Settings {
    pub fn delay(&self) -> Duration {
        Duration::from_millis(u64::try_from(self.delay_ms).unwrap_or(0))
    }
}

/// A processor's adjustable settings and the schedule that changes them.
#[derive(Debug, Clone)]
pub struct Controls {
    settings: Settings,
    schedule: Vec<ScheduleStep>,
    schedule_started: Instant,
    /// Index of the first step not yet applied.
    next_step: usize,
}

/// The schedule's progress, for `GET /admin/faults`.
#[derive(Debug, Clone, Serialize)]
pub struct ScheduleState {
    pub steps: Vec<ScheduleStep>,
    pub elapsed_ms: u64,
    pub applied: usize,
}

impl Controls {
    pub fn new(settings: Settings, schedule: Vec<ScheduleStep>, now: Instant) -> Self {
        let mut controls = Self {
            settings,
            schedule,
            schedule_started: now,
            next_step: 0,
        };
        controls.advance(now);
        controls
    }

    /// The settings in force at `now`, after applying every step that is due.
    pub fn at(&mut self, now: Instant) -> Settings {
        self.advance(now);
        self.settings
    }

    fn advance(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.schedule_started);
        while let Some(step) = self.schedule.get(self.next_step) {
            if Duration::from_millis(step.after_ms) > elapsed {
                break;
            }
            if let Some(faults) = step.settings {
                self.settings.faults = faults;
            }
            if let Some(delay) = step.delay {
                self.settings.delay_ms = delay;
            }
            if let Some(failure) = step.failure {
                self.settings.failure = failure;
            }
            self.next_step += 1;
        }
    }

    /// Sets the delay; returns the previous one.
    pub fn set_delay(&mut self, now: Instant, delay_ms: i64) -> i64 {
        self.advance(now);
        std::mem::replace(&mut self.settings.delay_ms, delay_ms)
    }

    /// Sets the failure flag; returns the previous one.
    pub fn set_failure(&mut self, now: Instant, failure: bool) -> bool {
        self.advance(now);
        std::mem::replace(&mut self.settings.failure, failure)
    }

    /// Replaces the faults; returns the previous ones.
    pub fn set_faults(&mut self, now: Instant, faults: Faults) -> Faults {
        self.advance(now);
        std::mem::replace(&mut self.settings.faults, faults)
    }

    /// Replaces the schedule; it starts at `now` (steps with `after_ms = 0`
    /// apply at once). An empty list stops any schedule.
    pub fn set_schedule(&mut self, now: Instant, steps: Vec<ScheduleStep>) {
        self.schedule = steps;
        self.schedule_started = now;
        self.next_step = 0;
        self.advance(now);
    }

    pub fn schedule_state(&mut self, now: Instant) -> ScheduleState {
        self.advance(now);
        ScheduleState {
            steps: self.schedule.clone(),
            elapsed_ms: now
                .saturating_duration_since(self.schedule_started)
                .as_millis() as u64,
            applied: self.next_step,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn rinha() -> Settings {
        Settings {
            delay_ms: 0,
            failure: false,
            faults: Faults::default(),
        }
    }

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
    fn a_schedule_step_can_start_and_end_a_throttle_storm() {
        let t0 = Instant::now();
        let storm = Faults {
            throttle_rate: 1.0,
            ..Faults::default()
        };
        let steps: Vec<ScheduleStep> = serde_json::from_str(
            r#"[{"after_ms": 100, "settings": {"throttle_rate": 1.0}},
                {"after_ms": 300, "settings": {}}]"#,
        )
        .unwrap();
        assert_eq!(validate_schedule(&steps), Ok(()));
        let mut controls = Controls::new(rinha(), steps, t0);
        let at = |ms| t0 + Duration::from_millis(ms);
        assert_eq!(controls.at(at(99)).faults, Faults::default());
        assert_eq!(controls.at(at(100)).faults, storm);
        assert_eq!(controls.at(at(300)).faults, Faults::default());
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
    fn schedule_steps_apply_when_due_and_only_then() {
        let t0 = Instant::now();
        let steps = vec![
            ScheduleStep {
                after_ms: 0,
                settings: None,
                delay: Some(100),
                failure: None,
            },
            ScheduleStep {
                after_ms: 10_000,
                settings: None,
                delay: None,
                failure: Some(true),
            },
            ScheduleStep {
                after_ms: 20_000,
                settings: Some(Faults {
                    error_rate: 0.5,
                    ..Faults::default()
                }),
                delay: Some(2000),
                failure: None,
            },
        ];
        let mut controls = Controls::new(rinha(), steps, t0);
        let at = |ms| t0 + Duration::from_millis(ms);
        assert_eq!(controls.at(at(0)).delay_ms, 100);
        assert!(!controls.at(at(9_999)).failure);
        assert!(controls.at(at(10_000)).failure);
        let late = controls.at(at(25_000));
        assert_eq!(
            (late.delay_ms, late.failure, late.faults.error_rate),
            (2000, true, 0.5)
        );
    }

    #[test]
    fn an_operator_change_holds_until_the_next_step() {
        let t0 = Instant::now();
        let steps = vec![ScheduleStep {
            after_ms: 1000,
            settings: None,
            delay: Some(50),
            failure: None,
        }];
        let mut controls = Controls::new(rinha(), steps, t0);
        assert_eq!(controls.set_delay(t0 + Duration::from_millis(10), 7), 0);
        assert_eq!(controls.at(t0 + Duration::from_millis(999)).delay_ms, 7);
        assert_eq!(controls.at(t0 + Duration::from_millis(1000)).delay_ms, 50);
    }

    #[test]
    fn a_new_schedule_restarts_the_clock() {
        let t0 = Instant::now();
        let mut controls = Controls::new(rinha(), vec![], t0);
        let later = t0 + Duration::from_secs(60);
        controls.set_schedule(
            later,
            vec![ScheduleStep {
                after_ms: 500,
                settings: None,
                delay: None,
                failure: Some(true),
            }],
        );
        assert!(!controls.at(later + Duration::from_millis(499)).failure);
        assert!(controls.at(later + Duration::from_millis(500)).failure);
    }

    #[test]
    fn schedules_out_of_order_are_refused() {
        let step = |after_ms| ScheduleStep {
            after_ms,
            settings: None,
            delay: None,
            failure: None,
        };
        assert_eq!(
            validate_schedule(&[step(5), step(1)]),
            Err(ScheduleError::OutOfOrder { index: 1 })
        );
        assert_eq!(validate_schedule(&[step(1), step(1), step(5)]), Ok(()));
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
