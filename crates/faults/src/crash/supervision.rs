//! The crash bench as the instances' supervisor: it restarts the instances
//! that exit by themselves (as an orchestrator would) and, after the run,
//! works out each kill's recovery from the traffic's record.

use std::time::Duration;

use tokio::time::Instant;

use crate::balancer::BalancerKind;
use crate::crash::report::{Exit, Kill};
use crate::fleet::Fleet;
use crate::traffic::{Fate, Payment};
use reroute_bench::duration::millis;

/// How soon an instance that exited by itself is started again.
const RESTART_BACKOFF: Duration = Duration::from_millis(500);

/// The bench as the instances' supervisor: when each started, and which
/// exited by themselves.
pub struct Supervision {
    /// When each instance's current process started, since the load started.
    pub spawned_at: Vec<Duration>,
    pub exits: Vec<Exit>,
}

impl Supervision {
    pub fn started(&mut self, instance: usize, at: Duration) {
        self.spawned_at[instance] = at;
    }

    /// Waits until `deadline`, starting again any instance that exits.
    pub async fn until(
        &mut self,
        fleet: &mut Fleet,
        t0: Instant,
        deadline: Instant,
    ) -> anyhow::Result<()> {
        loop {
            self.restart_exited(fleet, t0)?;
            let now = Instant::now();
            if now >= deadline {
                return Ok(());
            }
            tokio::time::sleep_until(deadline.min(now + Duration::from_millis(50))).await;
        }
    }

    /// Starts again the instances that exited, each no sooner than
    /// [`RESTART_BACKOFF`] after its last start (as an orchestrator's
    /// restart policy would).
    fn restart_exited(&mut self, fleet: &mut Fleet, t0: Instant) -> anyhow::Result<()> {
        for index in 0..fleet.len() {
            if t0.elapsed() < self.spawned_at[index] + RESTART_BACKOFF {
                continue;
            }
            if let Some(status) = fleet.exited(index) {
                fleet.kill(index); // reaps it
                self.exits.push(Exit {
                    at_ms: millis(t0.elapsed()),
                    instance: fleet.instance(index).name.clone(),
                    status: status.to_string(),
                });
                fleet.start(index)?;
                self.started(index, t0.elapsed());
            }
        }
        Ok(())
    }

    /// Waits until every instance is ready, starting again any that exits
    /// on the way.
    pub async fn all_ready(&mut self, fleet: &mut Fleet, t0: Instant) -> anyhow::Result<()> {
        for index in 0..fleet.len() {
            let mut tries = 0;
            while let Err(e) = fleet.wait_ready(index, Duration::from_secs(60)).await {
                tries += 1;
                if tries == 5 || fleet.exited(index).is_none() {
                    return Err(e.context("an instance never became ready after the kills"));
                }
                self.restart_exited(fleet, t0)?;
            }
        }
        Ok(())
    }
}

/// One kill as the loop made it.
pub struct KillRecord {
    pub at: Duration,
    pub instance: usize,
    pub uptime: Duration,
    /// The generation of the process killed, and of the one started after.
    pub killed: u32,
    pub restarted: u32,
    pub restarted_at: Duration,
}

/// Each kill with its recovery: the first 2xx answered by the process
/// started after it (by generation, so an answer of the killed process
/// noticed late is not taken for one), if there was one before that process
/// died in turn.
pub fn kills_with_recovery(
    kills: &[KillRecord],
    payments: &[Payment],
    fleet: &Fleet,
    balancer: BalancerKind,
) -> Vec<Kill> {
    let attributed = balancer == BalancerKind::None;
    let first_answer = |instance: usize, generation: u32| {
        payments
            .iter()
            .filter_map(|p| match p.fate {
                Fate::Accepted {
                    instance: i,
                    generation: g,
                    after,
                    ..
                } if i == instance && g == generation => Some(after),
                _ => None,
            })
            .min()
    };
    kills
        .iter()
        .map(|k| Kill {
            at_ms: millis(k.at),
            instance: fleet.instance(k.instance).name.clone(),
            uptime_ms: millis(k.uptime),
            had_answered: attributed.then(|| first_answer(k.instance, k.killed).is_some()),
            recovery_ms: first_answer(k.instance, k.restarted)
                .filter(|_| attributed)
                .map(|first| millis(first.saturating_sub(k.restarted_at))),
        })
        .collect()
}

/// The first 2xx (of any instance) noticed at or after `from`, as a time
/// since the load started.
pub fn first_accepted_after(payments: &[Payment], from: Duration) -> Option<Duration> {
    payments
        .iter()
        .filter_map(|p| match p.fate {
            Fate::Accepted { after, .. } if after >= from => Some(after),
            _ => None,
        })
        .min()
}
