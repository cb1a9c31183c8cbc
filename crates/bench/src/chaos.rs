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
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rand::SeedableRng;
use rand::rngs::StdRng;
use reroute_core::Timestamp;
use reroute_sim::{Faults, ScheduleStep, StatsSnapshot};
use serde::Serialize;
use tokio::time::Instant;

use crate::audit::{self, Audit, Books};
use crate::duration::parse_duration;
use crate::fleet::{self, Alert, Fleet, QueueAgeSampler, RouterApi, RouterSettings, RouterStore};
use crate::processors::{ProcessorAdmin, Processors};
use crate::run_store::{RunStore, StorePlan};
use crate::traffic::{Fate, Finished, Traffic, TrafficOptions};
use crate::workdir::WorkDir;

pub mod pause;
pub mod sleeping;

use pause::{PausePlan, PauseReport};
use sleeping::Refusal;

/// The scenarios, in the order `all` runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
pub enum Scenario {
    #[serde(rename = "flapping")]
    Flapping,
    #[serde(rename = "slow")]
    Slow,
    #[serde(rename = "resets")]
    Resets,
    #[value(name = "both-down")]
    #[serde(rename = "both-down")]
    BothDown,
    #[value(name = "health-429")]
    #[serde(rename = "health-429")]
    Health429,
    #[value(name = "resend-refused")]
    #[serde(rename = "resend-refused")]
    ResendRefused,
    #[value(name = "delay-drop")]
    #[serde(rename = "delay-drop")]
    DelayDrop,
    #[value(name = "storm-429")]
    #[serde(rename = "storm-429")]
    Storm429,
    #[value(name = "pg-pause")]
    #[serde(rename = "pg-pause")]
    PgPause,
}

impl Scenario {
    pub const ALL: [Scenario; 9] = [
        Scenario::Flapping,
        Scenario::Slow,
        Scenario::Resets,
        Scenario::BothDown,
        Scenario::Health429,
        Scenario::ResendRefused,
        Scenario::DelayDrop,
        Scenario::Storm429,
        Scenario::PgPause,
    ];

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
    /// `pg-pause` is played by [`pause::play`] from [`PausePlan`] instead.
    pub fn schedules(
        self,
        fault: Duration,
        timeout_ms: u64,
        rng: &mut impl rand::Rng,
    ) -> Vec<(&'static str, Vec<ScheduleStep>)> {
        let end = u64::try_from(fault.as_millis()).unwrap_or(u64::MAX);
        let step = |after_ms, settings: Option<Faults>, failure: Option<bool>| ScheduleStep {
            after_ms,
            settings,
            delay: None,
            failure,
        };
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
        match self {
            // Failing half of the time: someone should be told.
            Scenario::Flapping => Expectation {
                down: &[],
                noticed: &["default"],
                never_down: false,
            },
            // Every payment times out: that processor is down.
            Scenario::Slow => Expectation {
                down: &["default"],
                noticed: &["default"],
                never_down: false,
            },
            // 30% of connections lost, the rest processed: degraded (a
            // window of 50 may pass the DOWN threshold by chance).
            Scenario::Resets => Expectation {
                down: &[],
                noticed: &["default"],
                never_down: false,
            },
            // Both fail every payment and say so on their health endpoints.
            Scenario::BothDown => Expectation {
                down: &["default", "fallback"],
                noticed: &["default", "fallback"],
                never_down: false,
            },
            // A rate-limited health endpoint is not a failing processor.
            Scenario::Health429 => Expectation {
                down: &[],
                noticed: &[],
                never_down: true,
            },
            // Timeouts, then refusals: default is noticed.
            Scenario::ResendRefused
            | Scenario::DelayDrop
            | Scenario::Storm429
            | Scenario::PgPause => Expectation {
                down: &[],
                noticed: &["default"],
                never_down: false,
            },
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

    /// The router's `--processor-timeout-ms` (`slow` waits beyond it).
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    pub processor_timeout_ms: u64,

    /// The router's `--health-interval-ms`, and the simulator's health window.
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    pub health_interval_ms: u64,

    /// Longest wait, after the load, for every accepted payment to be charged.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub drain_timeout: Duration,

    /// The `reroute` executable to run as the router (default: this one).
    #[arg(long, value_name = "PATH")]
    pub reroute_bin: Option<PathBuf>,

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

    /// Directory of initdb and pg_ctl, for `--store private-postgres`
    /// (else $REROUTE_PG_BIN, PATH, or the newest /usr/lib/postgresql/*/bin).
    #[arg(long, value_name = "DIR")]
    pub pg_bin: Option<PathBuf>,

    /// Keep the routers' logs and stores here (default: a temporary
    /// directory, kept only when a scenario fails).
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,

    /// One more `reroute serve` argument (repeatable).
    #[arg(long = "serve-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub serve_args: Vec<String>,

    /// Write the result JSON to this file instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// The in-process simulator's admin token.
const TOKEN: &str = "123";

/// Sends during `both-down`, per second, that still count as holding the
/// queue: trials and probes, not the load.
pub const HELD_SENDS_PER_S: u64 = 20;

/// One judged property.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub passed: bool,
    pub detail: String,
}

/// The processors' counters over one second.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Second {
    /// Since the load started.
    pub at_s: u64,
    /// `POST /payments` received, both processors.
    pub sends: u64,
    /// Payments stored, both processors.
    pub stored: u64,
    /// `GET /payments/{id}`, both processors.
    pub lookups: u64,
    pub health_calls: u64,
}

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
        Scenario::ALL
            .into_iter()
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
    let work = WorkDir::new(args.work_dir.clone(), "reroute-chaos-")?;
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
    let interval = Duration::from_millis(args.health_interval_ms);
    let mut processors = Processors::prepare(None, TOKEN, interval).await?;
    let instances = scenario.instances();
    let run_store = RunStore::set_up(plan, &dir, args.pg_bin.clone(), "reroute_chaos").await?;
    let mut serve_args = vec!["--workers".to_owned(), args.workers.to_string()];
    serve_args.extend(scenario.serve_args().iter().map(|a| (*a).to_owned()));
    serve_args.extend(args.serve_args.iter().cloned());
    let settings = RouterSettings {
        bin: fleet::reroute_bin(args.reroute_bin.as_deref())?,
        default_url: processors.default_url.clone(),
        fallback_url: processors.fallback_url.clone(),
        store: run_store.store.clone(),
        health_interval_ms: args.health_interval_ms,
        processor_timeout_ms: args.processor_timeout_ms,
        lease_ms: args.lease_ms,
        extra_args: serve_args,
        log_dir: dir,
    };
    let store = settings.store.clone();
    let run_store_name = run_store.name.clone();
    let mut fleet = Fleet::new(settings, instances)?;
    for index in 0..instances {
        fleet.start(index)?;
        fleet.wait_ready(index, Duration::from_secs(60)).await?;
    }

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
        .then(|| PausePlan::draw(args.processor_timeout_ms, &mut rng));
    let schedules = match &pause_plan {
        Some(plan) => vec![("default", plan.steps.clone())],
        None => scenario.schedules(args.fault, args.processor_timeout_ms, &mut rng),
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

    let accepted = payments
        .iter()
        .filter(|p| matches!(p.fate, Fate::Accepted { .. }))
        .map(|p| p.id)
        .collect();
    let mut api: Vec<RouterApi> = fleet.endpoints().into_iter().map(RouterApi::new).collect();
    let drained = audit::drain(
        &mut api,
        &mut processors.admins,
        &accepted,
        args.drain_timeout,
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
    fleet.kill_all();
    let mut warnings = Vec::new();
    let store_view = match store.read_back(&fleet.settings().bin).await {
        Ok(view) => Some(view),
        Err(e) => {
            warnings.push(format!("cannot read the store back: {e:#}"));
            None
        }
    };
    drop(fleet);
    warnings.extend(run_store.remove().await);
    let books = Books::read(&mut processors.admins).await?;
    let audit = audit::audit(&payments, &books, &drained.summary, store_view.as_ref());
    processors.shutdown().await;

    // Judge.
    let bound = 3 * args.rate.ceil() as u64 + u64::from(args.workers) + 20;
    let wasted = |s: &Second| s.sends.saturating_sub(s.stored);
    let max_wasted = seconds.iter().map(wasted).max().unwrap_or(0);
    let max_lookups = seconds.iter().map(|s| s.lookups).max().unwrap_or(0);
    let mut checks = vec![
        Check {
            name: "invariants",
            passed: audit.passed(),
            detail: format!(
                "lost {}, doubled {}, charged-unaccepted {}, inconsistencies {}, stuck {:?}",
                audit.lost, audit.doubled, audit.unexpected, audit.inconsistencies, audit.stuck
            ),
        },
        Check {
            name: "completion",
            passed: drained.settled,
            detail: format!(
                "drained in {} ms (bound {} ms)",
                drained.took.as_millis(),
                args.drain_timeout.as_millis()
            ),
        },
        Check {
            name: "no hot loop",
            passed: max_wasted <= bound && max_lookups <= bound,
            detail: format!(
                "per second at most {max_wasted} sends that charged nothing and {max_lookups} status queries; bound {bound} (3 x rate + workers + 20)"
            ),
        },
    ];
    let limit_kept = health
        .values()
        .all(|s| s.health_throttled == 0 && s.health_max_per_window <= 1);
    checks.push(Check {
        name: "health rate limit",
        passed: limit_kept,
        detail: health
            .iter()
            .map(|(p, s)| {
                format!(
                    "{p}: {} calls, {} refused by the limit, at most {} per window",
                    s.health_calls, s.health_throttled, s.health_max_per_window
                )
            })
            .collect::<Vec<_>>()
            .join("; "),
    });
    // The whole seconds of the fault, after its first `settle` seconds.
    let during = |settle: u64| {
        move |s: &&Second| {
            let at = Duration::from_secs(s.at_s);
            at >= fault_from + Duration::from_secs(settle)
                && at + Duration::from_secs(1) <= fault_to
        }
    };
    match scenario {
        Scenario::BothDown => {
            // The first two seconds see the payments in flight fail and
            // the circuits open.
            let held = seconds
                .iter()
                .filter(during(2))
                .map(|s| s.sends)
                .max()
                .unwrap_or(0);
            checks.push(Check {
                name: "queue held",
                passed: held <= HELD_SENDS_PER_S,
                detail: format!(
                    "at most {held} sends per second while both were down (bound {HELD_SENDS_PER_S})"
                ),
            });
        }
        Scenario::Health429 => {
            let calls: u64 = seconds
                .iter()
                .filter(during(0))
                .map(|s| s.health_calls)
                .sum();
            let span = seconds.iter().filter(during(0)).count() as u64;
            // Retry-After is the window (the probe interval here): at most
            // one call per processor per interval, plus one at each edge.
            let per_processor = span * 1000 / args.health_interval_ms.max(1) + 2;
            let allowed = per_processor * 2;
            checks.push(Check {
                name: "retry-after honoured",
                passed: calls <= allowed,
                detail: format!(
                    "{calls} health calls in {span} s of storm, both processors (bound {allowed})"
                ),
            });
        }
        _ => {}
    }
    if let Some(pause) = &pause {
        checks.push(Check {
            name: "taken over",
            passed: pause.taken_over(),
            detail: match pause.taken_over_after_ms {
                Some(ms) => format!(
                    "the {} payments pending at the pause were completed by the running instance {ms} ms after it",
                    pause.pending_at_pause
                ),
                None => format!(
                    "{} of the {} payments pending at the pause were still pending when {} was resumed",
                    pause.pending_at_resume, pause.pending_at_pause, pause.instance
                ),
            },
        });
    }
    checks.push(judge_alerts(scenario, &alerts, &final_status));
    let passed = checks.iter().all(|c| c.passed);
    Ok(ScenarioReport {
        scenario,
        store: run_store_name,
        instances,
        fault_s: (fault_to - fault_from).as_secs_f64(),
        fault_from_s: fault_from.as_secs_f64(),
        fault_to_s: fault_to.as_secs_f64(),
        drain_settled: drained.settled,
        drain_ms: u64::try_from(drained.took.as_millis()).unwrap_or(u64::MAX),
        audit,
        max_queue_age_ms,
        max_wasted_sends_per_s: max_wasted,
        max_lookups_per_s: max_lookups,
        hot_loop_bound_per_s: bound,
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

/// What the operator should read in the alerts: see [`Expectation`].
/// `alerts` are the processor-scope alerts, transitions and anomalies.
fn judge_alerts(
    scenario: Scenario,
    alerts: &[Alert],
    final_status: &BTreeMap<String, String>,
) -> Check {
    let expected = scenario.expectation();
    let transitions: Vec<&Alert> = alerts.iter().filter(|a| a.kind == "transition").collect();
    let mut problems = Vec::new();
    for p in expected.down {
        if !transitions
            .iter()
            .any(|a| a.processor_id == *p && a.to_status == "DOWN")
        {
            problems.push(format!("{p} never reported DOWN"));
        }
    }
    for p in expected.noticed {
        if !alerts.iter().any(|a| a.processor_id == *p) {
            problems.push(format!("no alert about {p}"));
        }
    }
    if expected.never_down {
        for a in transitions.iter().filter(|a| a.to_status == "DOWN") {
            problems.push(format!("{} reported DOWN ({})", a.processor_id, a.reason));
        }
    }
    let mut went_down: Vec<&str> = transitions
        .iter()
        .filter(|a| a.to_status == "DOWN")
        .map(|a| a.processor_id.as_str())
        .collect();
    went_down.sort_unstable();
    went_down.dedup();
    for p in went_down {
        let last_down = transitions
            .iter()
            .rposition(|a| a.processor_id == p && a.to_status == "DOWN");
        let recovered = last_down.is_some_and(|i| {
            transitions[i + 1..]
                .iter()
                .any(|a| a.processor_id == p && a.from_status == "DOWN")
        });
        if !recovered {
            problems.push(format!("{p} went DOWN and no recovery was reported"));
        }
    }
    for (p, status) in final_status {
        if status == "DOWN" {
            problems.push(format!("{p} still DOWN at the end"));
        }
    }
    let mut seen: BTreeMap<&str, (Vec<String>, usize)> = BTreeMap::new();
    for a in alerts {
        let entry = seen.entry(a.processor_id.as_str()).or_default();
        if a.kind == "transition" {
            entry.0.push(format!("{}->{}", a.from_status, a.to_status));
        } else {
            entry.1 += 1;
        }
    }
    let seen: Vec<String> = seen
        .iter()
        .map(|(p, (moves, anomalies))| {
            let shown = if moves.len() > 8 {
                format!("{} ... ({} transitions)", moves[..6].join(" "), moves.len())
            } else {
                moves.join(" ")
            };
            format!("{p}: {shown} + {anomalies} anomalies")
        })
        .collect();
    let seen = if seen.is_empty() {
        "none".to_owned()
    } else {
        seen.join("; ")
    };
    Check {
        name: "alerts",
        passed: problems.is_empty(),
        detail: if problems.is_empty() {
            format!("as expected: {seen}")
        } else {
            format!("{} (alerts: {seen})", problems.join("; "))
        },
    }
}

/// Reads both processors' counters every second while the scenario runs.
struct Watch {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Vec<Second>>,
}

impl Watch {
    fn start(processors: &Processors, t0: Instant) -> anyhow::Result<Self> {
        let mut admins = vec![
            ProcessorAdmin::new("default", Arc::new(processors.default_url.parse()?), TOKEN)?,
            ProcessorAdmin::new(
                "fallback",
                Arc::new(processors.fallback_url.parse()?),
                TOKEN,
            )?,
        ];
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let mut ticker = tokio::time::interval_at(t0, Duration::from_secs(1));
            let mut last: Option<Second> = None;
            let mut out = Vec::new();
            loop {
                tokio::select! {
                    _ = &mut stopped => return out,
                    _ = ticker.tick() => {}
                }
                let mut total = Second {
                    at_s: t0.elapsed().as_secs_f64().round() as u64,
                    ..Second::default()
                };
                for admin in &mut admins {
                    if let Ok(s) = admin.stats().await {
                        total.sends += s.payments_received;
                        total.stored += s.payments_stored;
                        total.lookups += s.payments_looked_up;
                        total.health_calls += s.health_calls;
                    }
                }
                if let Some(prev) = last {
                    out.push(Second {
                        at_s: prev.at_s,
                        sends: total.sends.saturating_sub(prev.sends),
                        stored: total.stored.saturating_sub(prev.stored),
                        lookups: total.lookups.saturating_sub(prev.lookups),
                        health_calls: total.health_calls.saturating_sub(prev.health_calls),
                    });
                }
                last = Some(total);
            }
        });
        Ok(Self { stop, task })
    }

    async fn stop(self) -> Vec<Second> {
        let _ = self.stop.send(());
        self.task.await.unwrap_or_default()
    }
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
            writeln!(
                f,
                "  pause         {} SIGSTOP at {:.1}s with {} payments pending; {}; SIGCONT at {:.1}s",
                p.instance,
                p.paused_at_s,
                p.pending_at_pause,
                match p.taken_over_after_ms {
                    Some(ms) => format!("all completed by the other instance {ms} ms later"),
                    None => format!("{} still pending", p.pending_at_resume),
                },
                p.resumed_at_s
            )?;
        }
        self.audit.write_payments(f, "")?;
        self.audit.write_lines(f)?;
        writeln!(
            f,
            "  max queue age {} ms (the router's oldest waiting payment, sampled every 250 ms)",
            self.max_queue_age_ms
        )?;
        for c in &self.checks {
            writeln!(
                f,
                "  {:<13} {}  {}",
                c.name,
                if c.passed { "ok" } else { "FAILED" },
                c.detail
            )?;
        }
        for w in &self.warnings {
            writeln!(f, "  warning       {w}")?;
        }
        write!(f, "  verdict       {}", audit::verdict(self.passed))
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
        write!(f, "chaos verdict: {}", audit::verdict(self.passed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn alert(p: &str, from: &str, to: &str) -> Alert {
        Alert {
            processor_id: p.into(),
            from_status: from.into(),
            to_status: to.into(),
            timestamp: Timestamp::from_millis(0),
            reason: "r".into(),
            kind: "transition".into(),
            scope: "processor".into(),
        }
    }

    fn statuses(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(p, s)| (p.to_string(), s.to_string()))
            .collect()
    }

    fn rng() -> StdRng {
        StdRng::seed_from_u64(42)
    }

    #[test]
    fn every_schedule_ends_with_the_processors_back_to_normal() {
        // pg-pause's schedule ends in a storm that the bench lifts itself,
        // once the takeover is done (pause::play).
        for scenario in Scenario::ALL
            .into_iter()
            .filter(|s| *s != Scenario::PgPause)
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
    fn pg_pause_runs_two_instances_and_needs_postgres() {
        assert_eq!(Scenario::PgPause.instances(), 2);
        assert!(Scenario::PgPause.needs_postgres());
        assert!(
            Scenario::ALL
                .iter()
                .filter(|s| **s != Scenario::PgPause)
                .all(|s| s.instances() == 1 && !s.needs_postgres())
        );
    }

    #[tokio::test]
    async fn pg_pause_on_the_embedded_store_is_refused_with_the_reason() {
        let args = ChaosArgs::parse_from(["chaos", "--scenario", "pg-pause"]);
        let err = run(args).await.unwrap_err().to_string();
        assert!(err.contains("pg-pause needs PostgreSQL"), "{err}");
        assert!(err.contains("--store"), "{err}");
    }

    #[test]
    fn a_down_processor_must_be_reported_recovered() {
        let both = |from: &str, to: &str| [alert("default", from, to), alert("fallback", from, to)];
        let fine: Vec<Alert> = both("HEALTHY", "DOWN")
            .into_iter()
            .chain(both("DOWN", "DEGRADED"))
            .collect();
        let check = judge_alerts(
            Scenario::BothDown,
            &fine,
            &statuses(&[("default", "DEGRADED"), ("fallback", "DEGRADED")]),
        );
        assert!(check.passed, "{check:?}");

        let stuck = both("HEALTHY", "DOWN");
        let check = judge_alerts(
            Scenario::BothDown,
            &stuck,
            &statuses(&[("default", "DOWN"), ("fallback", "HEALTHY")]),
        );
        assert!(!check.passed);
        assert!(check.detail.contains("no recovery"), "{}", check.detail);
        assert!(check.detail.contains("still DOWN"), "{}", check.detail);

        let never = judge_alerts(Scenario::Slow, &[], &statuses(&[("default", "HEALTHY")]));
        assert!(!never.passed);
        assert!(never.detail.contains("never reported DOWN"));
    }

    #[test]
    fn an_anomaly_is_enough_to_notice_a_flapping_processor() {
        let mut anomaly = alert("default", "HEALTHY", "HEALTHY");
        anomaly.kind = "anomaly".into();
        let ok = judge_alerts(
            Scenario::Flapping,
            &[anomaly],
            &statuses(&[("default", "HEALTHY")]),
        );
        assert!(ok.passed, "{ok:?}");
        let silent = judge_alerts(
            Scenario::Flapping,
            &[],
            &statuses(&[("default", "HEALTHY")]),
        );
        assert!(!silent.passed);
        assert!(silent.detail.contains("no alert about default"));
    }

    #[test]
    fn a_rate_limited_health_endpoint_is_not_a_down_processor() {
        let down = [
            alert("fallback", "HEALTHY", "DOWN"),
            alert("fallback", "DOWN", "HEALTHY"),
        ];
        let check = judge_alerts(
            Scenario::Health429,
            &down,
            &statuses(&[("fallback", "HEALTHY")]),
        );
        assert!(!check.passed);
        let quiet = judge_alerts(
            Scenario::Health429,
            &[],
            &statuses(&[("fallback", "HEALTHY")]),
        );
        assert!(quiet.passed);
    }
}
