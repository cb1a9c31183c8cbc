//! When things happen during the test: the user ramp, the audits, the
//! processor stages and the teardown window, on the official script's
//! timeline (60 s for the preview, 300 s for the final) and scaled when
//! `--duration` asks for a shorter or longer run.
//!
//! Pure: durations in, durations out. The async parts (users, auditor,
//! stages) only sleep until the instants this module gives them.

use std::time::Duration;

use super::scenario::{AUDIT_INTERVAL, Script, Stage};

/// The schedule of one run: the script's timeline stretched to `duration`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeline {
    /// The script's own length, the unit every instant is scaled by.
    official: Duration,
    duration: Duration,
    max_users: u32,
    stages: Vec<Stage>,
    audit_margin: Duration,
    teardown_window: Duration,
}

impl Timeline {
    /// `stages` are on the script's timeline; they are scaled here.
    pub fn new(script: &Script, duration: Duration, max_users: u32, stages: &[Stage]) -> Self {
        let mut timeline = Self {
            official: script.duration,
            duration,
            max_users: max_users.max(1),
            stages: Vec::new(),
            audit_margin: script.audit_margin,
            teardown_window: script.teardown_window,
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

    /// The stage in force `offset` into the load: the last one applied by
    /// then, or the first before any was (its row in the report starts with
    /// the load). `None` only without stages.
    pub fn stage_at(&self, offset: Duration) -> Option<usize> {
        if self.stages.is_empty() {
            return None;
        }
        Some(
            self.stages
                .iter()
                .rposition(|s| s.at <= offset)
                .unwrap_or(0),
        )
    }

    /// Where each stage's row of the report starts and ends on the run's
    /// clock: the first starts with the load, each ends where the next
    /// starts, the last at the end of the load.
    pub fn stage_spans(&self) -> Vec<(Duration, Duration)> {
        let starts = (0..self.stages.len()).map(|i| {
            if i == 0 {
                Duration::ZERO
            } else {
                self.stages[i].at
            }
        });
        let ends = self
            .stages
            .iter()
            .skip(1)
            .map(|s| s.at)
            .chain(std::iter::once(self.duration));
        starts.zip(ends).collect()
    }

    /// The auditor's pause between checks: 10 s, scaled.
    pub fn audit_interval(&self) -> Duration {
        self.scale(AUDIT_INTERVAL)
    }

    /// How long before "now" an audit's window ends (not scaled).
    pub fn audit_margin(&self) -> Duration {
        self.audit_margin
    }

    /// The teardown looks back the script's window (70 s in the preview,
    /// 360 s in the final), or, when the run is longer than the script's,
    /// the whole run plus the same slack, so no payment of the run falls
    /// outside.
    pub fn teardown_window(&self) -> Duration {
        let slack = self.teardown_window.saturating_sub(self.official);
        self.teardown_window.max(self.duration + slack)
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

    /// `t` on the script's timeline, moved to this run's.
    fn scale(&self, t: Duration) -> Duration {
        (t.as_nanos() * self.duration.as_nanos())
            .checked_div(self.official.as_nanos())
            .map_or(t, nanos)
    }
}

fn nanos(n: u128) -> Duration {
    Duration::from_nanos(u64::try_from(n).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rinha::scenario::{FINAL, PREVIEW, PREVIEW_STAGES, ProcessorSetting};

    fn preview(duration: Duration, max_users: u32, stages: &[Stage]) -> Timeline {
        Timeline::new(&PREVIEW, duration, max_users, stages)
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn the_official_timeline_is_left_as_is() {
        let t = preview(secs(60), 550, &PREVIEW_STAGES);
        let at: Vec<u64> = t.stages().iter().map(|s| s.at.as_secs()).collect();
        assert_eq!(at, [1, 10, 20, 30, 40, 50]);
        assert_eq!(t.stages()[3].default, ProcessorSetting::new(2000, true));
        assert_eq!(t.stages()[3].fallback, ProcessorSetting::new(1000, true));
        assert_eq!(t.stages()[5].fallback, ProcessorSetting::new(5000, false));
        assert_eq!(t.audit_interval(), secs(10));
        assert_eq!(t.audit_margin(), Duration::from_millis(1500));
        assert_eq!(t.teardown_window(), secs(70));
    }

    #[test]
    fn a_shorter_run_compresses_stages_and_audits_but_not_settings() {
        let t = preview(secs(6), 20, &PREVIEW_STAGES);
        let at: Vec<Duration> = t.stages().iter().map(|s| s.at).collect();
        assert_eq!(
            at,
            [100, 1000, 2000, 3000, 4000, 5000]
                .map(Duration::from_millis)
                .to_vec()
        );
        assert_eq!(t.stages()[1].default.delay_ms, 100);
        assert_eq!(t.audit_interval(), secs(1));
        assert_eq!(t.audit_margin(), Duration::from_millis(1500));
        assert_eq!(t.teardown_window(), secs(70));
    }

    #[test]
    fn a_longer_run_widens_the_teardown_window() {
        let t = preview(secs(300), 550, &PREVIEW_STAGES);
        assert_eq!(t.teardown_window(), secs(310));
        assert_eq!(t.stages()[5].at, secs(250));
    }

    #[test]
    fn users_ramp_linearly_from_one_to_the_maximum() {
        let t = preview(secs(60), 550, &[]);
        let starts: Vec<Duration> = t.user_starts().collect();
        assert_eq!(starts.len(), 550);
        assert_eq!(starts[0], Duration::ZERO);
        assert_eq!(starts[1], Duration::from_nanos(60_000_000_000 / 549));
        assert_eq!(starts[549], secs(60));
        assert!(starts.is_sorted());
        // Half-way through, half the users are there.
        let by_30s = starts.iter().filter(|s| **s <= secs(30)).count();
        assert_eq!(by_30s, 275);
    }

    #[test]
    fn a_single_user_starts_at_once() {
        let t = preview(secs(60), 1, &[]);
        assert_eq!(t.user_starts().collect::<Vec<_>>(), [Duration::ZERO]);
        let t = preview(secs(60), 0, &[]);
        assert_eq!(t.max_users(), 1);
    }

    #[test]
    fn the_final_stages_come_every_30_s_of_300_from_1_s() {
        let t = Timeline::new(&FINAL, secs(300), FINAL.max_users, FINAL.stages);
        let at: Vec<u64> = t.stages().iter().map(|s| s.at.as_secs()).collect();
        assert_eq!(at, [1, 30, 60, 90, 120, 150, 180, 210, 240, 270]);
        let settings: Vec<(u64, bool, u64, bool)> = t
            .stages()
            .iter()
            .map(|s| {
                let (d, f) = (s.default, s.fallback);
                (d.delay_ms, d.failing, f.delay_ms, f.failing)
            })
            .collect();
        assert_eq!(
            settings,
            [
                (0, false, 0, false),
                (1000, false, 0, false),
                (500, false, 0, false),
                (2000, true, 1000, false),
                (5000, true, 5, false),
                (0, false, 5, true),
                (100, false, 5, false),
                (50, false, 0, false),
                (103, false, 10, false),
                (2000, false, 0, false),
            ]
        );
        assert_eq!(t.audit_interval(), secs(10));
        assert_eq!(t.audit_margin(), secs(2));
        assert_eq!(t.teardown_window(), secs(360));
    }

    #[test]
    fn a_scaled_final_moves_its_stages_and_audits_but_keeps_its_windows() {
        // 300 s squeezed into 30 s: every instant is divided by 10.
        let t = Timeline::new(&FINAL, secs(30), 60, FINAL.stages);
        let at: Vec<Duration> = t.stages().iter().map(|s| s.at).collect();
        let expected: Vec<Duration> = [100, 3000, 6000, 9000, 12_000, 15_000, 18_000, 21_000]
            .into_iter()
            .chain([24_000, 27_000])
            .map(Duration::from_millis)
            .collect();
        assert_eq!(at, expected);
        assert_eq!(t.stages()[4].default, ProcessorSetting::new(5000, true));
        assert_eq!(t.audit_interval(), secs(1));
        assert_eq!(t.audit_margin(), secs(2));
        assert_eq!(t.teardown_window(), secs(360));
        // Longer than the script: the window keeps its 60 s of slack.
        let t = Timeline::new(&FINAL, secs(400), 603, FINAL.stages);
        assert_eq!(t.teardown_window(), secs(460));
        assert_eq!(t.stages()[9].at, secs(360));
    }

    #[test]
    fn the_final_ramps_to_603_users_over_300_s() {
        let t = Timeline::new(&FINAL, secs(300), FINAL.max_users, &[]);
        let starts: Vec<Duration> = t.user_starts().collect();
        assert_eq!(starts.len(), 603);
        assert_eq!(starts[0], Duration::ZERO);
        assert_eq!(starts[602], secs(300));
        // Each user pays about once a second from its start to the end:
        // about 90,600 payments in all, as the script announces.
        let payments: u64 = starts.iter().map(|s| (secs(300) - *s).as_secs()).sum();
        assert!((90_000..=91_000).contains(&payments), "{payments}");
    }

    #[test]
    fn each_instant_belongs_to_the_stage_in_force_then() {
        let t = Timeline::new(&FINAL, secs(30), 60, FINAL.stages);
        assert_eq!(t.stage_at(Duration::ZERO), Some(0));
        assert_eq!(t.stage_at(Duration::from_millis(2999)), Some(0));
        assert_eq!(t.stage_at(secs(3)), Some(1));
        assert_eq!(t.stage_at(secs(29)), Some(9));
        assert_eq!(t.stage_at(secs(31)), Some(9));
        assert_eq!(preview(secs(5), 1, &[]).stage_at(secs(1)), None);
        let spans = t.stage_spans();
        assert_eq!(spans.len(), 10);
        assert_eq!(spans[0], (Duration::ZERO, secs(3)));
        assert_eq!(spans[1], (secs(3), secs(6)));
        assert_eq!(spans[9], (secs(27), secs(30)));
    }
}
