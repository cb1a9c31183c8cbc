//! The chaos scenarios as data: what each makes the processors do (their
//! schedules), how the routers run for it and what alerts an operator should
//! then read. Pure: [`crate::chaos`] plays them and [`crate::chaos::judge`]
//! holds the run to them.

use std::time::Duration;

use rand::Rng;
use reroute_sim::{Faults, ScheduleStep};
use serde::Serialize;

use crate::chaos::pause::PausePlan;
use crate::chaos::sleeping::{self, Refusal};
use reroute_bench::duration::millis;

/// The scenarios, in the order `all` runs them ([`clap::ValueEnum::value_variants`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    Flapping,
    Slow,
    Resets,
    BothDown,
    #[value(name = "health-429")]
    #[serde(rename = "health-429")]
    Health429,
    ResendRefused,
    DelayDrop,
    #[value(name = "storm-429")]
    #[serde(rename = "storm-429")]
    Storm429,
    PgPause,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Flapping => "flapping",
            Scenario::Slow => "slow",
            Scenario::Resets => "resets",
            Scenario::BothDown => "both-down",
            Scenario::Health429 => "health-429",
            Scenario::ResendRefused => "resend-refused",
            Scenario::DelayDrop => "delay-drop",
            Scenario::Storm429 => "storm-429",
            Scenario::PgPause => "pg-pause",
        }
    }

    /// Router instances: two for `pg-pause` (one is stopped), else one.
    pub fn instances(self) -> usize {
        match self {
            Scenario::PgPause => 2,
            _ => 1,
        }
    }

    /// Whether the scenario needs the instances to share PostgreSQL.
    pub fn needs_postgres(self) -> bool {
        self == Scenario::PgPause
    }

    /// `reroute serve` arguments of the scenario, before `--serve-arg`s.
    ///
    /// The at-most-once scenarios route a freed payment to `fallback` at
    /// once (`--patience-ms 0`): a wrong "not processed" then shows as a
    /// double charge instead of a payment waiting for `default` to store it
    /// again, which its 422 would hide.
    ///
    /// `resend-refused` also keeps the circuit closed (`--trip-after 1000`):
    /// with the default of 3, the first fresh payment refused in the window
    /// opens it within milliseconds (it is refused, freed and sent to
    /// `default` again, three times), and the failing health check keeps it
    /// open, so the re-sends would wait behind it until the window is over
    /// and the rule under test would never be exercised. The circuit sheds
    /// load; it is not what keeps a payment from being charged twice, and
    /// the rule must hold whatever it does.
    pub fn serve_args(self) -> &'static [&'static str] {
        match self {
            Scenario::ResendRefused => &["--patience-ms", "0", "--trip-after", "1000"],
            Scenario::DelayDrop | Scenario::Storm429 | Scenario::PgPause => &["--patience-ms", "0"],
            _ => &[],
        }
    }

    /// The schedule each processor plays, starting when the fault starts;
    /// its last step puts the processor back to normal at the fault's end:
    /// `fault`, or later if one cycle of the scenario needs longer. `rng`
    /// (the run's seed) moves the phases of the at-most-once scenarios.
    /// `pg-pause` is played by [`crate::chaos::pause::play`] from [`PausePlan`] instead.
    pub fn schedules(
        self,
        fault: Duration,
        timeout_ms: u64,
        rng: &mut impl Rng,
    ) -> Vec<(&'static str, Vec<ScheduleStep>)> {
        let end = millis(fault);
        let step = |after_ms, settings, failure| sleeping::step(after_ms, settings, None, failure);
        let normal = || step(end, Some(Faults::default()), Some(false));
        match self {
            Scenario::Flapping => {
                let mut steps: Vec<ScheduleStep> = (0..end.div_ceil(1000))
                    .map(|s| step(s * 1000, None, Some(s % 2 == 0)))
                    .collect();
                steps.push(normal());
                vec![("default", steps)]
            }
            Scenario::Slow => {
                let slow = Faults {
                    latency_ms: timeout_ms + 500,
                    jitter_ms: 200,
                    ..Faults::default()
                };
                vec![("default", vec![step(0, Some(slow), None), normal()])]
            }
            Scenario::Resets => {
                let before = Faults {
                    reset_rate: 0.3,
                    ..Faults::default()
                };
                let after = Faults {
                    reset_after_store: true,
                    ..before
                };
                vec![(
                    "default",
                    vec![
                        step(0, Some(before), None),
                        step(end / 2, Some(after), None),
                        normal(),
                    ],
                )]
            }
            Scenario::BothDown => ["default", "fallback"]
                .into_iter()
                .map(|p| (p, vec![step(0, None, Some(true)), normal()]))
                .collect(),
            Scenario::Health429 => {
                let storm = Faults {
                    health_throttle_rate: 1.0,
                    ..Faults::default()
                };
                ["default", "fallback"]
                    .into_iter()
                    .map(|p| (p, vec![step(0, Some(storm), None), normal()]))
                    .collect()
            }
            Scenario::ResendRefused | Scenario::DelayDrop | Scenario::Storm429 => {
                let refusal = match self {
                    Scenario::ResendRefused => Refusal::Failing,
                    Scenario::DelayDrop => Refusal::DelayDrop,
                    _ => Refusal::Storm,
                };
                let cycles = sleeping::cycles(end, timeout_ms, rng);
                let last = cycles
                    .last()
                    .map_or(0, |c| (c.start_ms / c.length_ms + 1) * c.length_ms);
                let mut steps: Vec<ScheduleStep> =
                    cycles.iter().flat_map(|c| c.steps(refusal)).collect();
                steps.push(step(end.max(last), Some(Faults::default()), Some(false)));
                vec![("default", steps)]
            }
            // The timed part of the pause; `run_scenario` plays the rest.
            Scenario::PgPause => vec![("default", PausePlan::draw(timeout_ms, rng).steps)],
        }
    }

    /// What an operator would expect to read at `/api/v1/alerts`.
    pub fn expectation(self) -> Expectation {
        const DEFAULT: &[&str] = &["default"];
        const BOTH: &[&str] = &["default", "fallback"];
        let (down, noticed, never_down) = match self {
            // Failing half of the time: someone should be told.
            Scenario::Flapping => (&[][..], DEFAULT, false),
            // Every payment times out: that processor is down.
            Scenario::Slow => (DEFAULT, DEFAULT, false),
            // 30% of connections lost, the rest processed: degraded (a
            // window of 50 may pass the DOWN threshold by chance).
            Scenario::Resets => (&[][..], DEFAULT, false),
            // Both fail every payment and say so on their health endpoints.
            Scenario::BothDown => (BOTH, BOTH, false),
            // A rate-limited health endpoint is not a failing processor.
            Scenario::Health429 => (&[][..], &[][..], true),
            // Timeouts, then refusals: default is noticed.
            Scenario::ResendRefused
            | Scenario::DelayDrop
            | Scenario::Storm429
            | Scenario::PgPause => (&[][..], DEFAULT, false),
        };
        Expectation {
            down,
            noticed,
            never_down,
        }
    }
}

/// The alerts a scenario should raise. In every scenario, a processor
/// reported DOWN must later be reported recovered, and none may be left DOWN.
#[derive(Debug, Clone, Copy)]
pub struct Expectation {
    /// Reported DOWN during the fault.
    pub down: &'static [&'static str],
    /// At least one alert about it (a transition or an anomaly).
    pub noticed: &'static [&'static str],
    /// No DOWN at all.
    pub never_down: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::ValueEnum;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn rng() -> StdRng {
        StdRng::seed_from_u64(42)
    }

    #[test]
    fn every_schedule_ends_with_the_processors_back_to_normal() {
        // pg-pause's schedule ends in a storm that the bench lifts itself,
        // once the takeover is done (pause::play).
        for &scenario in Scenario::value_variants()
            .iter()
            .filter(|s| **s != Scenario::PgPause)
        {
            let schedules = scenario.schedules(Duration::from_secs(6), 1000, &mut rng());
            assert!(!schedules.is_empty());
            for (_, steps) in schedules {
                reroute_sim::faults::validate_schedule(&steps).unwrap();
                let last = steps.last().unwrap();
                assert_eq!(last.after_ms, 6000, "{scenario:?}");
                assert_eq!(last.settings, Some(Faults::default()));
                assert_eq!(last.failure, Some(false));
            }
        }
    }

    #[test]
    fn flapping_toggles_the_failure_flag_every_second() {
        let schedules = Scenario::Flapping.schedules(Duration::from_secs(4), 1000, &mut rng());
        let flags: Vec<(u64, Option<bool>)> = schedules[0]
            .1
            .iter()
            .map(|s| (s.after_ms, s.failure))
            .collect();
        assert_eq!(
            flags,
            [
                (0, Some(true)),
                (1000, Some(false)),
                (2000, Some(true)),
                (3000, Some(false)),
                (4000, Some(false))
            ]
        );
    }

    #[test]
    fn slow_waits_beyond_the_processor_timeout() {
        let schedules = Scenario::Slow.schedules(Duration::from_secs(4), 700, &mut rng());
        let faults = schedules[0].1[0].settings.unwrap();
        assert!(faults.latency_ms > 700);
    }

    #[test]
    fn the_at_most_once_scenarios_run_a_whole_cycle_even_in_a_short_fault() {
        for scenario in [
            Scenario::ResendRefused,
            Scenario::DelayDrop,
            Scenario::Storm429,
        ] {
            let schedules = scenario.schedules(Duration::from_secs(2), 1000, &mut rng());
            let steps = &schedules[0].1;
            reroute_sim::faults::validate_schedule(steps).unwrap();
            assert_eq!(steps.last().unwrap().after_ms, 6000, "{scenario:?}");
            assert_eq!(scenario.serve_args()[..2], ["--patience-ms", "0"]);
        }
        let twelve = Scenario::ResendRefused.schedules(Duration::from_secs(12), 1000, &mut rng());
        assert_eq!(
            twelve[0].1.len(),
            2 * 3 + 1,
            "two cycles of three steps, then normal"
        );
    }

    #[test]
    fn the_same_seed_plays_the_same_phases() {
        let a = Scenario::Storm429.schedules(Duration::from_secs(12), 1000, &mut rng());
        let b = Scenario::Storm429.schedules(Duration::from_secs(12), 1000, &mut rng());
        let c = Scenario::Storm429.schedules(
            Duration::from_secs(12),
            1000,
            &mut StdRng::seed_from_u64(43),
        );
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn each_scenario_has_one_name_on_the_command_line_and_in_the_json() {
        for &scenario in Scenario::value_variants() {
            assert_eq!(Scenario::from_str(scenario.name(), false), Ok(scenario));
            assert_eq!(serde_json::to_value(scenario).unwrap(), scenario.name());
        }
    }

    #[test]
    fn pg_pause_runs_two_instances_and_needs_postgres() {
        assert_eq!(Scenario::PgPause.instances(), 2);
        assert!(Scenario::PgPause.needs_postgres());
        assert!(
            Scenario::value_variants()
                .iter()
                .filter(|s| **s != Scenario::PgPause)
                .all(|s| s.instances() == 1 && !s.needs_postgres())
        );
    }
}
