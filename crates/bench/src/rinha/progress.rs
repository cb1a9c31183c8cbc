//! What the run shows while it runs: live counters the users bump, and an
//! indicatif bar on stderr that reads them a few times a second.
//!
//! The users only touch atomics; drawing happens in one place, on a timer, so
//! the hot path never waits on the terminal.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::time::Instant;

use crate::duration::millis;

/// Counters shared by every task of the run.
#[derive(Debug, Default)]
pub struct Live {
    pub users: AtomicU64,
    pub accepted: AtomicU64,
    pub failed: AtomicU64,
    pub inconsistencies: AtomicU64,
    /// The index of the last stage applied, plus one (0: none yet).
    pub stage: AtomicU64,
}

impl Live {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    fn read(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// The progress bar of one run (hidden when asked, or when stderr is not a
/// terminal).
pub struct Progress {
    bar: ProgressBar,
    stages: usize,
}

impl Progress {
    /// `prefix` names the run on the bar (`rinha`, `rinha final`).
    pub fn new(visible: bool, prefix: &'static str, duration: Duration, stages: usize) -> Self {
        let length = millis(duration);
        let bar = if visible {
            ProgressBar::with_draw_target(Some(length), ProgressDrawTarget::stderr_with_hz(4))
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(
            ProgressStyle::with_template("{prefix} [{bar:30}] {elapsed:>4} {msg}")
                .expect("the template is valid")
                .progress_chars("=> "),
        );
        bar.set_prefix(prefix);
        Self { bar, stages }
    }

    /// Redraws from `live` every 250 ms, forever; select it against the work.
    pub async fn follow(&self, live: &Live, started: Instant) -> Infallible {
        let mut ticks = tokio::time::interval(Duration::from_millis(250));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            ticks.tick().await;
            self.bar.set_position(millis(started.elapsed()));
            self.bar.set_message(format!(
                "users {:>3}  ok {}  failed {}  inconsistencies {}  stage {}/{}",
                Live::read(&live.users),
                Live::read(&live.accepted),
                Live::read(&live.failed),
                Live::read(&live.inconsistencies),
                Live::read(&live.stage),
                self.stages,
            ));
        }
    }

    /// Says what happens after the load (teardown) on the same line.
    pub fn note(&self, message: &'static str) {
        self.bar.set_message(message);
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
