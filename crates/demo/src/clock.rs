//! Story time and wall time.
//!
//! The demo plays a twelve-minute story `speed` times faster. Compressing only
//! the traffic would change the story (the router's trial payments, circuit
//! backoffs, probes and patience would stay slow while everything else sped
//! up), so every time constant of the router and of the simulators is divided
//! by the same factor: what happens in story time is what would happen at
//! real speed. The timeline is written in story time.

use std::time::Duration;

use reroute_core::Timestamp;
use tokio::time::Instant;

/// A speed-up factor, 1 (real time) or more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compression {
    speed: u32,
}

impl Compression {
    pub const MAX_SPEED: u32 = 100;

    pub fn new(speed: u32) -> Option<Self> {
        (1..=Self::MAX_SPEED)
            .contains(&speed)
            .then_some(Self { speed })
    }

    pub fn speed(self) -> u32 {
        self.speed
    }

    /// A story interval in wall milliseconds, at least 1.
    pub fn wall_ms(self, story_ms: i64) -> i64 {
        ((story_ms as f64) / f64::from(self.speed)).round().max(1.0) as i64
    }

    pub fn wall(self, story_ms: i64) -> Duration {
        Duration::from_micros(((story_ms.max(0) as f64) * 1000.0 / f64::from(self.speed)) as u64)
    }

    /// A wall interval in story milliseconds.
    pub fn story_ms(self, wall: Duration) -> i64 {
        (wall.as_secs_f64() * 1000.0 * f64::from(self.speed)).round() as i64
    }
}

/// The story's clock: started once, read everywhere.
#[derive(Debug, Clone, Copy)]
pub struct StoryClock {
    compression: Compression,
    started: Instant,
    started_at: Timestamp,
}

impl StoryClock {
    pub fn start(compression: Compression) -> Self {
        Self {
            compression,
            started: Instant::now(),
            started_at: Timestamp::now(),
        }
    }

    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// Story milliseconds elapsed.
    pub fn now_ms(&self) -> i64 {
        self.compression.story_ms(self.started.elapsed())
    }

    /// The story instant of a wall-clock timestamp (an alert's, a payment's).
    pub fn story_ms_of(&self, at: Timestamp) -> i64 {
        (at.millis() - self.started_at.millis()) * i64::from(self.compression.speed)
    }

    /// The wall instant at which story time reaches `story_ms`.
    pub fn instant_of(&self, story_ms: i64) -> Instant {
        self.started + self.compression.wall(story_ms)
    }

    /// Wall time elapsed.
    pub fn wall_elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

/// `mm:ss` of a story instant (negative ones are clamped to 0).
pub fn clock_text(story_ms: i64) -> String {
    let s = story_ms.max(0) / 1000;
    format!("{:02}:{:02}", s / 60, s % 60)
}

/// A story duration: `45 s`, `2:05 min`; tenths below 10 s.
pub fn duration_text(story_ms: i64) -> String {
    let ms = story_ms.max(0);
    if ms < 10_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else if ms < 60_000 {
        format!("{} s", (ms + 500) / 1000)
    } else {
        let s = (ms + 500) / 1000;
        format!("{}:{:02} min", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speeds_outside_1_to_100_are_refused() {
        assert!(Compression::new(0).is_none());
        assert!(Compression::new(101).is_none());
        assert_eq!(Compression::new(10).unwrap().speed(), 10);
    }

    #[test]
    fn story_intervals_shrink_by_the_speed_but_never_to_zero() {
        let c = Compression::new(10).unwrap();
        assert_eq!(c.wall_ms(2_000), 200);
        assert_eq!(c.wall_ms(600_000), 60_000);
        assert_eq!(c.wall_ms(3), 1);
        assert_eq!(c.wall(600_000), Duration::from_secs(60));
        assert_eq!(c.story_ms(Duration::from_millis(1_500)), 15_000);
        let real = Compression::new(1).unwrap();
        assert_eq!(real.wall_ms(1_000), 1_000);
    }

    #[test]
    fn clock_and_durations_read_as_a_person_would() {
        assert_eq!(clock_text(0), "00:00");
        assert_eq!(clock_text(150_000), "02:30");
        assert_eq!(clock_text(-5), "00:00");
        assert_eq!(duration_text(400), "0.4 s");
        assert_eq!(duration_text(12_400), "12 s");
        assert_eq!(duration_text(125_000), "2:05 min");
    }
}
