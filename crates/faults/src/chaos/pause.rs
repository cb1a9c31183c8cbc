//! `pg-pause`: a PostgreSQL holder stalled past its lease must not send
//! again once it wakes.
//!
//! Two router instances share one database. `default` turns slow and
//! failing, so the payments sent to it before the circuits open have
//! attempts whose outcome is unknown (they time out), then refused (they
//! wake into the failure flag: nothing is stored). One instance, holding
//! such payments, is stopped with SIGSTOP, as a VM freeze or a long GC pause
//! would stop it. Its lease runs out; the other instance takes its payments
//! over and, `default` refusing them, completes them at `fallback`. Then
//! `default` is healthy again and the stopped instance gets SIGCONT: if it
//! re-sends what it held before the pause, `default` stores it and the
//! payment is charged twice.
//!
//! From the fault's start, `T` the processor timeout:
//!
//! ```text
//! 0          default: delay 2T, failing (sends sleep, then 500: nothing stored)
//! pause      SIGSTOP of one instance (1.5 T, moved by the seed)
//! refuse     pause + 2.5T: every send of the stopped instance has woken and
//!            failed; default's delay 0 (still failing: re-sends refused at once)
//! storm      refuse + 2.5T: every send made before `refuse` has woken too;
//!            failing off, every payment refused at once with 429 (the
//!            health check says "healthy", so the circuits let the held
//!            payments through to be refused and go to fallback)
//! taken      every payment pending at the pause is completed (the running
//!            instance took the stopped one's over), or `--fault` has passed
//! resume     default back to normal, then SIGCONT
//! ```

use std::collections::HashSet;
use std::time::Duration;

use anyhow::Context;
use rand::Rng;
use reroute_core::CorrelationId;
use reroute_sim::{Faults, ScheduleStep};
use serde::Serialize;
use tokio::time::Instant;

use crate::chaos::sleeping::{normal, step};
use crate::fleet::Fleet;
use crate::ledger;
use reroute_bench::duration::millis;
use reroute_bench::processors::ProcessorAdmin;

/// The instance that is stopped (the second: the first keeps answering the
/// bench's questions about alerts and the summary).
pub const PAUSED: usize = 1;

/// When things happen, in ms from the fault's start.
#[derive(Debug, Clone, PartialEq)]
pub struct PausePlan {
    pub pause_ms: u64,
    /// `default`'s schedule up to the storm; the bench ends the storm.
    pub steps: Vec<ScheduleStep>,
}

impl PausePlan {
    pub fn draw(timeout_ms: u64, rng: &mut impl Rng) -> Self {
        let t = timeout_ms.max(1);
        let pause_ms = 3 * t / 2 + rng.random_range(0..=3 * t / 10);
        let slow = 2 * t;
        // Sends of the stopped instance left before the pause and wake by
        // pause + 2T, into the failure flag.
        let refuse_ms = pause_ms + slow + t / 2;
        // Sends that left before `refuse` (delay 2T) wake by refuse + 2T.
        let storm_ms = refuse_ms + slow + t / 2;
        let storm = Faults {
            throttle_rate: 1.0,
            ..Faults::default()
        };
        Self {
            pause_ms,
            steps: vec![
                step(
                    0,
                    Some(Faults::default()),
                    Some(i64::try_from(slow).unwrap_or(i64::MAX)),
                    Some(true),
                ),
                step(refuse_ms, None, Some(0), None),
                step(storm_ms, Some(storm), None, Some(false)),
            ],
        }
    }

    /// When the storm starts: from then on nothing sent before can land.
    pub fn storm_ms(&self) -> u64 {
        self.steps.last().map_or(0, |s| s.after_ms)
    }
}

/// What happened around the pause, for the report.
#[derive(Debug, Clone, Serialize)]
pub struct PauseReport {
    pub instance: String,
    /// Since the load started.
    pub paused_at_s: f64,
    /// Payments pending in the store when the instance stopped (held by
    /// either instance).
    pub pending_at_pause: u64,
    /// Of those, still pending when the instance was resumed.
    pub pending_at_resume: u64,
    /// How long after the pause every one of them was completed (by the
    /// instance still running); `None`: not before `--fault` ran out.
    pub taken_over_after_ms: Option<u64>,
    pub resumed_at_s: f64,
}

impl PauseReport {
    /// The other instance completed what was pending at the pause.
    pub fn taken_over(&self) -> bool {
        self.taken_over_after_ms.is_some()
    }
}

/// Plays the pause on `fleet`: SIGSTOP at `fault_from + plan.pause_ms`,
/// waits (at most `longest`) for every payment then pending to be completed,
/// puts `default` back to normal, SIGCONT. Returns when the instance runs
/// again.
pub async fn play(
    fleet: &mut Fleet,
    default: &mut ProcessorAdmin,
    database_url: &str,
    plan: &PausePlan,
    t0: Instant,
    fault_from: Duration,
    longest: Duration,
) -> anyhow::Result<PauseReport> {
    // Watched with `reroute ledger`, as an operator would watch it.
    let bin = fleet.settings().bin.clone();
    let pending_now = || async {
        let source = [
            "--store",
            database_url,
            "--instance",
            "reroute-bench-observer",
        ];
        let view = ledger::export(&bin, source.map(Into::into).into())
            .await
            .context("reading the pending payments")?;
        anyhow::Ok(view.pending.into_iter().collect::<HashSet<CorrelationId>>())
    };

    tokio::time::sleep_until(t0 + fault_from + Duration::from_millis(plan.pause_ms)).await;
    fleet.pause(PAUSED)?;
    let paused_at = t0.elapsed();
    let pending = pending_now().await?;
    tracing::info!(pending = pending.len(), "chaos pg-pause: instance stopped");

    // Not before the storm: until then the other instance has nothing to
    // complete them with but trials, one per backoff.
    let storm = t0 + fault_from + Duration::from_millis(plan.storm_ms());
    let deadline = (t0 + paused_at + longest).max(storm);
    tokio::time::sleep_until(storm).await;
    let (left, taken_over_after_ms) = loop {
        let still = pending_now().await?;
        let left = pending.intersection(&still).count();
        if left == 0 {
            break (0, Some(millis(t0.elapsed() - paused_at)));
        }
        if Instant::now() >= deadline {
            break (left, None);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    // Healthy again: whatever the stopped instance sends now is stored.
    default.set_schedule(&[normal(0)]).await?;
    fleet.resume(PAUSED)?;
    let resumed_at = t0.elapsed();
    tracing::info!(?taken_over_after_ms, "chaos pg-pause: instance resumed");
    Ok(PauseReport {
        instance: fleet.instance(PAUSED).name.clone(),
        paused_at_s: paused_at.as_secs_f64(),
        pending_at_pause: pending.len() as u64,
        pending_at_resume: left as u64,
        taken_over_after_ms,
        resumed_at_s: resumed_at.as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn nothing_sent_before_the_storm_can_land_after_it() {
        for timeout_ms in [500, 1000, 2000] {
            for seed in 0..100 {
                let plan = PausePlan::draw(timeout_ms, &mut StdRng::seed_from_u64(seed));
                reroute_sim::faults::validate_schedule(&plan.steps).unwrap();
                let slow = u64::try_from(plan.steps[0].delay.unwrap()).unwrap();
                let refuse = plan.steps[1].after_ms;
                assert!(slow > timeout_ms, "first sends time out");
                assert!(
                    plan.pause_ms > timeout_ms,
                    "the paused instance holds timed-out sends"
                );
                assert!(
                    refuse > plan.pause_ms + slow,
                    "the paused instance's sends woke failing"
                );
                assert!(
                    plan.storm_ms() > refuse + slow,
                    "every slow send woke failing"
                );
                assert_eq!(plan.steps[0].failure, Some(true));
                assert_eq!(plan.steps[2].failure, Some(false));
                assert_eq!(plan.steps[2].settings.unwrap().throttle_rate, 1.0);
            }
        }
    }
}
