//! `reroute bench chaos`: the processors misbehave under a steady load, one
//! scenario at a time, each on a fresh simulator and a fresh router; at the
//! end the run is judged on what an operator cares about.
//!
//! | scenario | what the processors do (through the simulator's schedules) |
//! | --- | --- |
//! | `flapping` | `default`'s failure flag toggles every second |
//! | `slow` | `default` answers later than the router's processor timeout, and stores the payment anyway |
//! | `resets` | `default` drops 30% of connections once the request is read: first half before storing, second half after |
//! | `both-down` | both processors fail (500) |
//! | `health-429` | both processors' health endpoints answer 429 to every call |
//! | `resend-refused` | first sends sleep at `default` beyond the timeout; meanwhile re-sends are refused at once (500, failing) and lookups find nothing; the first sends wake and are stored ([`sleeping`]) |
//! | `delay-drop` | the same, but `default`'s delay is lowered mid-flight and half of the fast answers are 500s |
//! | `storm-429` | the same, with every re-send refused by a 429 storm (`throttle_rate`) the health check does not show |
//! | `pg-pause` | PostgreSQL only: one of two instances is stopped (SIGSTOP) past its lease while it holds payments, the other completes them at `fallback`, then SIGCONT ([`pause`]) |
//!
//! The last four are mission rule 2 ("at most one charge") under the
//! answers that prove nothing: a 500 or a 429 to a re-send, a lookup that
//! answers 404 while the first send still sleeps, a holder that wakes after
//! its lease. Their routers run with `--patience-ms 0`, so that a payment
//! wrongly freed goes to `fallback` at once and shows as doubled.
//!
//! Each scenario: warm-up, the fault for `--fault`, a recovery period with
//! the load still on, then the drain. The checks:
//! - **invariants**: the payments answered 2xx = the ledger = the books, by
//!   correlationId; nothing lost, doubled or left pending ([`crate::audit`]);
//! - **completion**: everything charged within `--drain-timeout` of the load's end;
//! - **no hot loop**: per second, the sends that charged nothing and the
//!   status queries stay under a bound derived from the load (below);
//!   during `both-down`, the router holds its queue with a trickle of trials;
//! - **health manners**: the processors' rate limit is never exceeded, and a
//!   429 storm is met with `Retry-After`, not retries;
//! - **alerts**: what the operator would expect to read at `/api/v1/alerts`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::ValueEnum;
use rand::SeedableRng;
use rand::rngs::StdRng;
use reroute_core::Timestamp;
use reroute_sim::StatsSnapshot;
use serde::Serialize;

use crate::audit::Audit;
use crate::drain;
use crate::fleet::{Fleet, RouterFlags, RouterStore};
use crate::router_api::{Alert, QueueAgeSampler};
use crate::run_store::{RunStore, StorePlan};
use crate::traffic::{Finished, Traffic, TrafficOptions};
use crate::workdir::WorkDir;
use reroute_bench::duration::{millis, parse_duration};
use reroute_bench::processors::{ProcessorAdmin, Processors};
use reroute_bench::report::{self, row};

pub mod judge;
pub mod pause;
pub mod scenario;
pub mod sleeping;
pub mod watch;

use judge::{Check, Observed};
use pause::{PausePlan, PauseReport};
pub use scenario::{Expectation, Scenario};
use watch::{Second, Watch};

/// `reroute bench chaos`: its flags, which are also its library options.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "chaos")]
pub struct ChaosArgs {
    /// Scenarios to run (comma-separated or repeated); all of them when
    /// absent (pg-pause only on PostgreSQL).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub scenario: Vec<Scenario>,

    /// How long each fault lasts. The at-most-once scenarios play as many
    /// cycles of 6 x the processor timeout as fit, at least one; for
    /// pg-pause it is the longest the instance stays stopped waiting for
    /// the other to take its payments over.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub fault: Duration,

    /// Load before the fault.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub warmup: Duration,

    /// Load after the fault, before the drain (time for health to recover).
    #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = parse_duration)]
    pub recovery: Duration,

    /// Payments per second, all users together.
    #[arg(long, value_name = "N", default_value_t = 50.0)]
    pub rate: f64,

    /// Concurrent clients.
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub users: usize,

    /// The router's `--workers` (payments in flight at once); the hot-loop
    /// bound is derived from it.
    #[arg(long, value_name = "N", default_value_t = 128)]
    pub workers: u32,

    /// Seed of the amounts and of the phases of the at-most-once scenarios
    /// (random when absent; the report prints it).
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,

    /// `sqlite` (the embedded store, the default), `private-postgres` (a
    /// PostgreSQL cluster of the bench's own, one per scenario), or a
    /// `postgres://` URL of a server to create a scratch database on, one
    /// per scenario, dropped at the end (e.g. "$DATABASE_URL"). `pg-pause`
    /// needs PostgreSQL; without a scenario named, it is left out on the
    /// embedded store.
    #[arg(long, value_name = "STORE", default_value = "sqlite")]
    pub store: String,

    /// The routers' `--lease-ms` (PostgreSQL): `pg-pause` stops an instance
    /// past it.
    #[arg(long, value_name = "MS", default_value_t = 3000)]
    pub lease_ms: u64,

    #[command(flatten)]
    pub routers: RouterFlags,

    /// Write the result JSON to this file instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// The in-process simulator's admin token.
const TOKEN: &str = "123";

/// One scenario's result.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioReport {
    pub scenario: Scenario,
    /// Where the routers kept their queue and ledger.
    pub store: String,
    pub instances: usize,
    pub fault_s: f64,
    /// When the fault started and ended, since the load started.
    pub fault_from_s: f64,
    pub fault_to_s: f64,
    pub drain_settled: bool,
    pub drain_ms: u64,
    pub audit: Audit,
    /// The largest `reroute_queue_oldest_age_seconds` seen (every 250 ms
    /// during the load), in ms.
    pub max_queue_age_ms: u64,
    /// Largest per-second figures, and the bound they are held to.
    pub max_wasted_sends_per_s: u64,
    pub max_lookups_per_s: u64,
    pub hot_loop_bound_per_s: u64,
    pub seconds: Vec<Second>,
    pub health: BTreeMap<String, StatsSnapshot>,
    /// Processor-scope alerts (transitions and anomalies), oldest first.
    pub alerts: Vec<Alert>,
    pub final_status: BTreeMap<String, String>,
    pub checks: Vec<Check>,
    /// `pg-pause`: the stop and what followed.
    pub pause: Option<PauseReport>,
    pub warnings: Vec<String>,
    pub passed: bool,
}

/// The result of `reroute bench chaos`.
#[derive(Debug, Clone, Serialize)]
pub struct ChaosReport {
    pub bench: &'static str,
    pub started_at: Timestamp,
    pub seed: u64,
    pub rate: f64,
    pub store: String,
    pub scenarios: Vec<ScenarioReport>,
    /// Scenarios left out because the store does not suit them.
    pub skipped: Vec<String>,
    pub passed: bool,
    pub work_dir: Option<PathBuf>,
}

/// Runs the chosen scenarios one after the other.
pub async fn run(args: ChaosArgs) -> anyhow::Result<ChaosReport> {
    if args.rate <= 0.0 || !args.rate.is_finite() {
        anyhow::bail!("--rate must be a positive number");
    }
    let plan = StorePlan::parse(&args.store)?;
    if plan == StorePlan::Edges {
        anyhow::bail!(
            "--store edges is for a core and its edges behind a balancer (bench crash); \
             chaos runs one router (two sharing PostgreSQL for pg-pause): use sqlite, \
             private-postgres or a postgres:// URL"
        );
    }
    let mut skipped = Vec::new();
    let scenarios = if args.scenario.is_empty() {
        Scenario::value_variants()
            .iter()
            .copied()
            .filter(|s| {
                let fits = plan.is_postgres() || !s.needs_postgres();
                if !fits {
                    skipped.push(format!(
                        "{}: needs PostgreSQL (--store private-postgres or a postgres:// URL)",
                        s.name()
                    ));
                }
                fits
            })
            .collect()
    } else {
        args.scenario.clone()
    };
    if let Some(s) = scenarios
        .iter()
        .find(|s| s.needs_postgres() && !plan.is_postgres())
    {
        anyhow::bail!(
            "{} needs PostgreSQL: two router instances share one database and one is \
             paused past its lease; the embedded store has one process. Give \
             --store private-postgres or --store postgres://... (e.g. \"$DATABASE_URL\")",
            s.name()
        );
    }
    let seed = args.seed.unwrap_or_else(rand::random);
    let started_at = Timestamp::now();
    let work = WorkDir::new(args.routers.work_dir.clone(), "reroute-chaos-")?;
    let mut reports = Vec::new();
    for scenario in scenarios {
        let dir = work.path().join(scenario.name());
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let report = run_scenario(&args, &plan, scenario, seed, dir).await?;
        tracing::info!(
            scenario = scenario.name(),
            passed = report.passed,
            "chaos: scenario done"
        );
        reports.push(report);
    }
    let passed = reports.iter().all(|r| r.passed);
    Ok(ChaosReport {
        bench: "chaos",
        started_at,
        seed,
        rate: args.rate,
        store: args.store.clone(),
        scenarios: reports,
        skipped,
        passed,
        work_dir: work.finish(!passed),
    })
}

/// One scenario on a fresh simulator, a fresh store and fresh routers.
pub async fn run_scenario(
    args: &ChaosArgs,
    plan: &StorePlan,
    scenario: Scenario,
    seed: u64,
    dir: PathBuf,
) -> anyhow::Result<ScenarioReport> {
    let interval = Duration::from_millis(args.routers.health_interval_ms);
    let mut processors = Processors::prepare(None, TOKEN, interval).await?;
    let instances = scenario.instances();
    let run_store =
        RunStore::set_up(plan, &dir, args.routers.pg_bin.clone(), "reroute_chaos").await?;
    let mut extra = vec!["--workers".to_owned(), args.workers.to_string()];
    extra.extend(scenario.serve_args().iter().map(|a| (*a).to_owned()));
    let store = run_store.store.clone();
    let settings = args
        .routers
        .settings(&processors, store.clone(), args.lease_ms, extra, dir)?;
    let run_store_name = run_store.name.clone();
    let mut fleet = Fleet::new(settings, instances)?;
    fleet.start_all().await?;

    let traffic = Traffic::start(
        fleet.endpoints(),
        fleet.generations(),
        TrafficOptions {
            rate: args.rate,
            users: args.users,
            timeout: Duration::from_secs(10),
            give_up_after: Duration::from_secs(120),
            seed,
        },
    );
    let t0 = traffic.started();
    let watch = Watch::start(&processors, t0)?;
    let sampler = QueueAgeSampler::start(fleet.endpoints());

    tokio::time::sleep_until(t0 + args.warmup).await;
    let fault_from = t0.elapsed();
    // Each scenario's phases from the run's seed, whatever ran before it.
    let mut rng = StdRng::seed_from_u64(seed ^ scenario as u64);
    let pause_plan = (scenario == Scenario::PgPause)
        .then(|| PausePlan::draw(args.routers.processor_timeout_ms, &mut rng));
    let schedules = match &pause_plan {
        Some(plan) => vec![("default", plan.steps.clone())],
        None => scenario.schedules(args.fault, args.routers.processor_timeout_ms, &mut rng),
    };
    let schedule_end = schedules
        .iter()
        .filter_map(|(_, steps)| steps.last().map(|s| s.after_ms))
        .max()
        .unwrap_or(0);
    for (id, steps) in schedules {
        processor(&mut processors, id).set_schedule(&steps).await?;
    }
    tracing::info!(scenario = scenario.name(), "chaos: fault on");
    let (fault_to, pause) = match (&pause_plan, &store) {
        (Some(plan), RouterStore::Postgres(url)) => {
            let report = pause::play(
                &mut fleet,
                processor(&mut processors, "default"),
                url,
                plan,
                t0,
                fault_from,
                args.fault,
            )
            .await?;
            (Duration::from_secs_f64(report.resumed_at_s), Some(report))
        }
        (Some(_), _) => anyhow::bail!("pg-pause needs PostgreSQL"),
        (None, _) => (fault_from + Duration::from_millis(schedule_end), None),
    };
    tokio::time::sleep_until(t0 + fault_to + args.recovery).await;
    let Finished { payments, .. } = traffic.stop().await;
    let max_queue_age_ms = sampler.stop().await;

    let (mut api, drained) = drain::drain_run(
        &fleet,
        &mut processors.admins,
        &payments,
        args.routers.drain_timeout,
    )
    .await?;
    let alerts: Vec<Alert> = api[0]
        .alerts()
        .await?
        .into_iter()
        .filter(|a| a.scope == "processor")
        .collect();
    let final_status: BTreeMap<String, String> = api[0].statuses().await?.into_iter().collect();
    let seconds = watch.stop().await;
    let mut health = BTreeMap::new();
    for admin in &mut processors.admins {
        health.insert(admin.id().to_owned(), admin.stats().await?);
    }
    let mut warnings = Vec::new();
    let audit = drain::stop_and_audit(
        &mut fleet,
        &mut processors.admins,
        &payments,
        &drained,
        &mut warnings,
    )
    .await?;
    drop(fleet);
    warnings.extend(run_store.remove().await);
    processors.shutdown().await;

    let (checks, hot) = judge::checks(&Observed {
        scenario,
        rate: args.rate,
        workers: args.workers,
        health_interval_ms: args.routers.health_interval_ms,
        drain_timeout: args.routers.drain_timeout,
        audit: &audit,
        drained: &drained,
        seconds: &seconds,
        health: &health,
        fault_from,
        fault_to,
        pause: pause.as_ref(),
        alerts: &alerts,
        final_status: &final_status,
    });
    let passed = checks.iter().all(|c| c.passed);
    Ok(ScenarioReport {
        scenario,
        store: run_store_name,
        instances,
        fault_s: (fault_to - fault_from).as_secs_f64(),
        fault_from_s: fault_from.as_secs_f64(),
        fault_to_s: fault_to.as_secs_f64(),
        drain_settled: drained.settled,
        drain_ms: millis(drained.took),
        audit,
        max_queue_age_ms,
        max_wasted_sends_per_s: hot.max_wasted,
        max_lookups_per_s: hot.max_lookups,
        hot_loop_bound_per_s: hot.bound,
        seconds,
        health,
        alerts,
        final_status,
        checks,
        pause,
        warnings,
        passed,
    })
}

/// The admin of processor `id` (the scenarios name the Rinha pair).
fn processor<'a>(processors: &'a mut Processors, id: &str) -> &'a mut ProcessorAdmin {
    processors
        .admins
        .iter_mut()
        .find(|a| a.id() == id)
        .expect("the scenarios name the Rinha pair")
}

impl fmt::Display for ScenarioReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "chaos {}: fault {:.1}s (from {:.1}s to {:.1}s), {} instance(s) on {}",
            self.scenario.name(),
            self.fault_s,
            self.fault_from_s,
            self.fault_to_s,
            self.instances,
            self.store
        )?;
        if let Some(p) = &self.pause {
            let taken = match p.taken_over_after_ms {
                Some(ms) => format!("all completed by the other instance {ms} ms later"),
                None => format!("{} still pending", p.pending_at_resume),
            };
            let text = format!(
                "{} SIGSTOP at {:.1}s with {} payments pending; {taken}; SIGCONT at {:.1}s",
                p.instance, p.paused_at_s, p.pending_at_pause, p.resumed_at_s
            );
            row(f, "pause", text)?;
        }
        self.audit.write_payments(f, "")?;
        self.audit.write_lines(f)?;
        let age = self.max_queue_age_ms;
        let sampled = "(the router's oldest waiting payment, sampled every 250 ms)";
        row(f, "max queue age", format_args!("{age} ms {sampled}"))?;
        for c in &self.checks {
            let ok = if c.passed { "ok" } else { "FAILED" };
            row(f, c.name, format_args!("{ok}  {}", c.detail))?;
        }
        report::write_end(f, &self.warnings, None, self.passed)
    }
}

impl fmt::Display for ChaosReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "chaos: {} scenario(s) at {} payments/s on {}, seed {}",
            self.scenarios.len(),
            self.rate,
            self.store,
            self.seed
        )?;
        for s in &self.skipped {
            writeln!(f, "skipped {s}")?;
        }
        for s in &self.scenarios {
            writeln!(f, "{s}")?;
        }
        if let Some(dir) = &self.work_dir {
            writeln!(f, "logs: {}", dir.display())?;
        }
        write!(f, "chaos verdict: {}", report::verdict(self.passed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[tokio::test]
    async fn pg_pause_on_the_embedded_store_is_refused_with_the_reason() {
        let args = ChaosArgs::parse_from(["chaos", "--scenario", "pg-pause"]);
        let err = run(args).await.unwrap_err().to_string();
        assert!(err.contains("pg-pause needs PostgreSQL"), "{err}");
        assert!(err.contains("--store"), "{err}");
    }
}
