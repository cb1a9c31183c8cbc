//! The settings in force over time: a processor's adjustable [`Settings`]
//! (the Rinha delay and failure flag plus the [`Faults`]) held in
//! [`Controls`], which plays a timed list of [`ScheduleStep`]s.
//!
//! Pure: time comes in as an argument. The processor asks
//! [`Controls::at`] for the settings when a request arrives; the admin
//! endpoints and the config file set them.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::fate::{Faults, FaultsError};

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

    fn rinha() -> Settings {
        Settings {
            delay_ms: 0,
            failure: false,
            faults: Faults::default(),
        }
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
}
