//! When things happen during the test: the user ramp, the audits, the six
//! processor stages and the teardown window, all on the official 60 s timeline
//! and scaled when `--duration` asks for a shorter or longer run.
//!
//! Pure: durations in, durations out. The async parts (users, auditor,
//! stages) only sleep until the instants this module gives them.

use std::time::Duration;

/// The official test lasts 60 s; every instant below is on that timeline.
pub const OFFICIAL_DURATION: Duration = Duration::from_secs(60);

/// The client timeout of every request the official script sends.
pub const REQUEST_TIMEOUT: Duration = Duration::from_millis(1500);

/// A virtual user sleeps this long after each payment.
pub const THINK_TIME: Duration = Duration::from_secs(1);

/// The auditor sleeps this long after each check (official timeline).
pub const AUDIT_INTERVAL: Duration = Duration::from_secs(10);

/// An audit compares the window `[now - 15 s, now - 1.5 s]`. Not scaled: the
/// window is about how long a payment may be in flight, not about test length.
pub const AUDIT_LOOKBACK: Duration = Duration::from_secs(15);
pub const AUDIT_MARGIN: Duration = Duration::from_millis(1500);

/// The teardown reads summaries over the last 70 s (the 60 s test plus 10 s).
pub const TEARDOWN_WINDOW: Duration = Duration::from_secs(70);

/// What one processor is told to do: answer after `delay_ms`, and fail (500)
/// or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessorSetting {
    pub delay_ms: u64,
    pub failing: bool,
}

impl ProcessorSetting {
    pub const fn new(delay_ms: u64, failing: bool) -> Self {
        Self { delay_ms, failing }
    }
}

/// A stage: at `at` (on the official 60 s timeline), both processors change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stage {
    pub at: Duration,
    pub default: ProcessorSetting,
    pub fallback: ProcessorSetting,
}

/// The six stages of the official test (default | fallback):
/// 1 s all well; 10 s default slow (100 ms); 20 s default failing;
/// 30 s both failing and slow (2000 | 1000 ms); 40 s both well again at 20 ms;
/// 50 s default instant, fallback 5 s slow.
pub const OFFICIAL_STAGES: [Stage; 6] = [
    stage(1, (0, false), (0, false)),
    stage(10, (100, false), (0, false)),
    stage(20, (100, true), (0, false)),
    stage(30, (2000, true), (1000, true)),
    stage(40, (20, false), (20, false)),
    stage(50, (0, false), (5000, false)),
];

const fn stage(at_secs: u64, default: (u64, bool), fallback: (u64, bool)) -> Stage {
    Stage {
        at: Duration::from_secs(at_secs),
        default: ProcessorSetting::new(default.0, default.1),
        fallback: ProcessorSetting::new(fallback.0, fallback.1),
    }
}

/// The schedule of one run: the official timeline stretched to `duration`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeline {
    duration: Duration,
    max_users: u32,
    stages: Vec<Stage>,
}

impl Timeline {
    /// `stages` are on the official 60 s timeline; they are scaled here.
    pub fn new(duration: Duration, max_users: u32, stages: &[Stage]) -> Self {
        let mut timeline = Self {
            duration,
            max_users: max_users.max(1),
            stages: Vec::new(),
        };
        timeline.stages = stages
            .iter()
            .map(|s| Stage {
                at: timeline.scale(s.at),
                ..*s
            })
            .collect();
        timeline
    }

    /// How long users send payments and the auditor checks.
    pub fn duration(&self) -> Duration {
        self.duration
    }

    pub fn max_users(&self) -> u32 {
        self.max_users
    }

    /// The stages at their scaled instants.
    pub fn stages(&self) -> &[Stage] {
        &self.stages
    }

    /// The auditor's pause between checks: 10 s, scaled.
    pub fn audit_interval(&self) -> Duration {
        self.scale(AUDIT_INTERVAL)
    }

    /// The teardown looks back 70 s, or the whole run plus 10 s when the run is
    /// longer than the official one, so no payment of the run falls outside.
    pub fn teardown_window(&self) -> Duration {
        TEARDOWN_WINDOW.max(self.duration + (TEARDOWN_WINDOW - OFFICIAL_DURATION))
    }

    /// When each virtual user starts, as k6's `ramping-vus` executor from 1 to
    /// `max_users` over the duration: the first at 0, then one every
    /// `duration / (max_users - 1)`, the last exactly at the end (so it never
    /// sends anything, as in k6).
    pub fn user_starts(&self) -> impl Iterator<Item = Duration> + '_ {
        let steps = u128::from(self.max_users - 1);
        (0..self.max_users).map(move |user| {
            // One user only: it starts at once (no step to divide by).
            (self.duration.as_nanos() * u128::from(user))
                .checked_div(steps)
                .map_or(Duration::ZERO, nanos)
        })
    }

    /// `t` on the official timeline, moved to this run's.
    fn scale(&self, t: Duration) -> Duration {
        nanos(t.as_nanos() * self.duration.as_nanos() / OFFICIAL_DURATION.as_nanos())
    }
}

fn nanos(n: u128) -> Duration {
    Duration::from_nanos(u64::try_from(n).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_official_timeline_is_left_as_is() {
        let t = Timeline::new(OFFICIAL_DURATION, 550, &OFFICIAL_STAGES);
        let at: Vec<u64> = t.stages().iter().map(|s| s.at.as_secs()).collect();
        assert_eq!(at, [1, 10, 20, 30, 40, 50]);
        assert_eq!(t.stages()[3].default, ProcessorSetting::new(2000, true));
        assert_eq!(t.stages()[3].fallback, ProcessorSetting::new(1000, true));
        assert_eq!(t.stages()[5].fallback, ProcessorSetting::new(5000, false));
        assert_eq!(t.audit_interval(), Duration::from_secs(10));
        assert_eq!(t.teardown_window(), Duration::from_secs(70));
    }

    #[test]
    fn a_shorter_run_compresses_stages_and_audits_but_not_settings() {
        let t = Timeline::new(Duration::from_secs(6), 20, &OFFICIAL_STAGES);
        let at: Vec<Duration> = t.stages().iter().map(|s| s.at).collect();
        assert_eq!(
            at,
            [100, 1000, 2000, 3000, 4000, 5000]
                .map(Duration::from_millis)
                .to_vec()
        );
        assert_eq!(t.stages()[1].default.delay_ms, 100);
        assert_eq!(t.audit_interval(), Duration::from_secs(1));
        assert_eq!(t.teardown_window(), Duration::from_secs(70));
    }

    #[test]
    fn a_longer_run_widens_the_teardown_window() {
        let t = Timeline::new(Duration::from_secs(300), 550, &OFFICIAL_STAGES);
        assert_eq!(t.teardown_window(), Duration::from_secs(310));
        assert_eq!(t.stages()[5].at, Duration::from_secs(250));
    }

    #[test]
    fn users_ramp_linearly_from_one_to_the_maximum() {
        let t = Timeline::new(OFFICIAL_DURATION, 550, &[]);
        let starts: Vec<Duration> = t.user_starts().collect();
        assert_eq!(starts.len(), 550);
        assert_eq!(starts[0], Duration::ZERO);
        assert_eq!(starts[1], Duration::from_nanos(60_000_000_000 / 549));
        assert_eq!(starts[549], OFFICIAL_DURATION);
        assert!(starts.is_sorted());
        // Half-way through, half the users are there.
        let by_30s = starts
            .iter()
            .filter(|s| **s <= Duration::from_secs(30))
            .count();
        assert_eq!(by_30s, 275);
    }

    #[test]
    fn a_single_user_starts_at_once() {
        let t = Timeline::new(OFFICIAL_DURATION, 1, &[]);
        assert_eq!(t.user_starts().collect::<Vec<_>>(), [Duration::ZERO]);
        let t = Timeline::new(OFFICIAL_DURATION, 0, &[]);
        assert_eq!(t.max_users(), 1);
    }
}
