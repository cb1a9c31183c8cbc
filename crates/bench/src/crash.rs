//! `reroute bench crash`: under a steady load, router instances are killed
//! with SIGKILL at random moments and restarted on the same store; at the
//! end the payments answered 2xx, the router's ledger and the processors'
//! books must be one and the same set, payment by payment.
//!
//! ```text
//! setup ── processors (in-process `reroute sim`, or --default/--fallback)
//!       ├─ store: SQLite file | private PostgreSQL cluster | scratch database
//!       └─ N × `reroute serve` (this executable, or --reroute-bin)
//! run   ── traffic: round-robin over the instances, same id re-sent until definite
//!       ├─ kills: SIGKILL a random instance, restart it at once, K times
//!       └─ PostgreSQL restarts (pg_ctl restart -m immediate|fast), private cluster only
//! end   ── drain ── kill all ── read the store back ── audit by correlationId
//! ```
//!
//! Mission rule 1 (durable acceptance) and 2 (at most one charge) are what
//! it checks; the figures (recovery after each restart, how long accepted
//! payments waited) say how well.

use std::collections::HashSet;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reroute_core::Timestamp;
use serde::Serialize;
use tokio::time::Instant;

use crate::audit::{self, Audit, Books, Spread};
use crate::balancer::Nginx;
use crate::duration::parse_duration;
use crate::fleet::{self, Fleet, QueueAgeSampler, RouterApi, RouterSettings};
use crate::pg_cluster::StopMode;
use crate::processors::Processors;
use crate::run_store::{RunStore, StorePlan};
use crate::traffic::{Fate, Finished, Payment, RequestCounts, Traffic, TrafficOptions};
use crate::workdir::WorkDir;

/// `reroute bench crash`: its flags, which are also its library options
/// (`CrashArgs::parse_from` in tests).
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "crash")]
pub struct CrashArgs {
    /// Kills (SIGKILL) of a router instance, at random moments; each killed
    /// instance is restarted at once on the same store.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub kills: u32,

    /// Seed of the kill moments, the instances chosen and the amounts
    /// (random when absent; the report prints it).
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,

    /// Length of the load; the kills are spread over it.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub duration: Duration,

    /// Payments per second, all users together.
    #[arg(long, value_name = "N", default_value_t = 200.0)]
    pub rate: f64,

    /// Concurrent clients.
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub users: usize,

    /// Router instances, round-robin (more than one needs PostgreSQL, or
    /// `--store edges`: instance 1 the core, the others edges).
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..64))]
    pub instances: u32,

    /// `sqlite` (the default with one instance), `edges` (the shipped Rinha
    /// topology: the first instance is a core on the embedded store, the
    /// others `reroute edge` processes in front of it; kills hit both),
    /// `private-postgres` (a PostgreSQL cluster of the
    /// bench's own, the default with several instances or PostgreSQL
    /// restarts), or a `postgres://` URL of a server to create a scratch
    /// database on (dropped at the end).
    #[arg(long, value_name = "STORE")]
    pub store: Option<String>,

    /// `nginx`: send the load through nginx in front of the instances (as
    /// in the Rinha topology) instead of round-robin from the bench. The
    /// answers then cannot be told apart by instance, so no recovery time
    /// is measured.
    #[arg(long, value_enum, default_value_t = BalancerKind::None)]
    pub balancer: BalancerKind,

    /// Restarts of PostgreSQL during the run (the private cluster only);
    /// alone, one.
    #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "1",
          default_value_t = 0)]
    pub restart_postgres: u32,

    /// How `pg_ctl restart` stops PostgreSQL.
    #[arg(long, value_enum, default_value_t = StopMode::Immediate)]
    pub pg_stop_mode: StopMode,

    /// Directory of initdb and pg_ctl (else $REROUTE_PG_BIN, PATH, or the
    /// newest /usr/lib/postgresql/*/bin).
    #[arg(long, value_name = "DIR")]
    pub pg_bin: Option<PathBuf>,

    /// The `reroute` executable to run as the router (default: this one).
    #[arg(long, value_name = "PATH")]
    pub reroute_bin: Option<PathBuf>,

    /// Base URL of a running `default` processor (with --fallback; default:
    /// the bench starts the simulator in-process). Its books are purged.
    #[arg(long = "default", value_name = "URL", requires = "fallback_url")]
    pub default_url: Option<String>,

    /// Base URL of a running `fallback` processor (with --default).
    #[arg(long = "fallback", value_name = "URL", requires = "default_url")]
    pub fallback_url: Option<String>,

    /// The processors' admin token.
    #[arg(long, value_name = "TOKEN", default_value = "123")]
    pub token: String,

    /// Delay of `default` in ms, so that kills land while attempts are in
    /// flight.
    #[arg(long, value_name = "MS", default_value_t = 20)]
    pub delay_ms: u64,

    /// The routers' `--processor-timeout-ms`.
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    pub processor_timeout_ms: u64,

    /// The routers' `--health-interval-ms`, and the in-process simulator's
    /// health window.
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    pub health_interval_ms: u64,

    /// The routers' `--lease-ms` (PostgreSQL): how soon a dead instance's
    /// payments are taken over.
    #[arg(long, value_name = "MS", default_value_t = 2000)]
    pub lease_ms: u64,

    /// Longest wait, after the load, for every accepted payment to be
    /// charged and the routers to be idle.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub drain_timeout: Duration,

    /// Keep the routers' logs and store here (default: a temporary
    /// directory, kept only when the audit fails).
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,

    /// One more `reroute serve` argument (repeatable), e.g.
    /// `--serve-arg=--workers=64`.
    #[arg(long = "serve-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub serve_args: Vec<String>,

    /// Write the result JSON to this file instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// What spreads the load over the instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BalancerKind {
    /// The bench itself, round-robin.
    None,
    /// nginx, as in the Rinha topology.
    Nginx,
}

/// One kill and what followed.
#[derive(Debug, Clone, Serialize)]
pub struct Kill {
    /// Since the load started.
    pub at_ms: u64,
    pub instance: String,
    /// How long the killed process had been running.
    pub uptime_ms: u64,
    /// Whether it had answered a 2xx since it started (no: killed during
    /// start-up or before it took a payment); `None` through a balancer.
    pub had_answered: Option<bool>,
    /// From the restart to the restarted process's first 2xx; `None` when
    /// it was killed again first, or through a balancer.
    pub recovery_ms: Option<u64>,
}

/// One PostgreSQL restart and what followed.
#[derive(Debug, Clone, Serialize)]
pub struct PgRestart {
    pub at_ms: u64,
    pub mode: StopMode,
    /// `pg_ctl restart`, stop to accepting connections again.
    pub down_ms: u64,
    /// From PostgreSQL accepting again to the next 2xx of any instance.
    pub recovery_ms: Option<u64>,
}

/// An instance that exited without being killed.
#[derive(Debug, Clone, Serialize)]
pub struct Exit {
    pub at_ms: u64,
    pub instance: String,
    pub status: String,
}

/// How soon an instance that exited by itself is started again.
const RESTART_BACKOFF: Duration = Duration::from_millis(500);

/// The bench as the instances' supervisor: when each started, and which
/// exited by themselves.
struct Supervision {
    /// When each instance's current process started, since the load started.
    spawned_at: Vec<Duration>,
    exits: Vec<Exit>,
}

impl Supervision {
    fn started(&mut self, instance: usize, at: Duration) {
        self.spawned_at[instance] = at;
    }

    /// Waits until `deadline`, starting again any instance that exits.
    async fn until(
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
    async fn all_ready(&mut self, fleet: &mut Fleet, t0: Instant) -> anyhow::Result<()> {
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

/// The result of `reroute bench crash`.
#[derive(Debug, Clone, Serialize)]
pub struct CrashReport {
    pub bench: &'static str,
    pub started_at: Timestamp,
    pub seed: u64,
    pub duration_s: f64,
    pub rate: f64,
    pub users: usize,
    pub instances: u32,
    pub store: String,
    pub balancer: BalancerKind,
    pub kills_requested: u32,
    pub kills: Vec<Kill>,
    /// Over the restarts that reached a 2xx.
    pub recovery: Option<Spread>,
    pub pg_restarts: Vec<PgRestart>,
    /// Instances that exited by themselves (and were started again).
    pub exits: Vec<Exit>,
    pub requests: RequestCounts,
    /// The largest `reroute_queue_oldest_age_seconds` seen on any instance
    /// (sampled every 250 ms during the load), in ms.
    pub max_queue_age_ms: u64,
    pub drain_settled: bool,
    pub drain_ms: u64,
    pub audit: Audit,
    /// Every kill made, and the audit passed.
    pub passed: bool,
    /// Where the logs are, when kept.
    pub work_dir: Option<PathBuf>,
    pub warnings: Vec<String>,
}

/// Where the routers' store lives for this run: `--store`, or by default
/// the embedded store for one instance and a private PostgreSQL cluster for
/// several (or for PostgreSQL restarts).
fn choose_store(args: &CrashArgs) -> anyhow::Result<StorePlan> {
    let plan = match args.store.as_deref() {
        None if args.instances == 1 && args.restart_postgres == 0 => StorePlan::Sqlite,
        None => StorePlan::Private,
        Some(text) => StorePlan::parse(text)?,
    };
    match plan {
        StorePlan::Sqlite if args.instances > 1 => {
            bail!(
                "several instances cannot share one embedded store: use edges, \
                 leave --store out (PostgreSQL), or give a URL"
            )
        }
        StorePlan::Sqlite | StorePlan::Edges if args.restart_postgres > 0 => {
            bail!("--restart-postgres needs PostgreSQL")
        }
        StorePlan::Shared(_) if args.restart_postgres > 0 => bail!(
            "--restart-postgres restarts a cluster of the bench's own, never a shared \
             server: leave --store out or use --store private-postgres"
        ),
        plan => Ok(plan),
    }
}

/// Runs the crash bench. Fails on a harness problem (a router that never
/// starts, PostgreSQL that cannot be set up); a violated invariant is in the
/// report (`passed: false`).
pub async fn run(args: CrashArgs) -> anyhow::Result<CrashReport> {
    if args.rate <= 0.0 || !args.rate.is_finite() {
        bail!("--rate must be a positive number");
    }
    let plan = choose_store(&args)?;
    let seed = args.seed.unwrap_or_else(rand::random);
    let mut rng = StdRng::seed_from_u64(seed);
    let started_at = Timestamp::now();
    let work = WorkDir::new(args.work_dir.clone(), "reroute-crash-")?;
    let mut warnings = Vec::new();

    let given = args.default_url.clone().zip(args.fallback_url.clone());
    let mut processors = Processors::prepare(
        given,
        &args.token,
        Duration::from_millis(args.health_interval_ms),
    )
    .await?;
    processors.admins[0].set_delay(args.delay_ms).await?;

    let run_store =
        RunStore::set_up(&plan, work.path(), args.pg_bin.clone(), "reroute_crash").await?;
    let (store, store_name) = (run_store.store.clone(), run_store.name.clone());
    let cluster = run_store.cluster();

    let settings = RouterSettings {
        bin: fleet::reroute_bin(args.reroute_bin.as_deref())?,
        default_url: processors.default_url.clone(),
        fallback_url: processors.fallback_url.clone(),
        store: store.clone(),
        health_interval_ms: args.health_interval_ms,
        processor_timeout_ms: args.processor_timeout_ms,
        lease_ms: args.lease_ms,
        extra_args: args.serve_args.clone(),
        log_dir: work.path().to_path_buf(),
    };
    let mut fleet = Fleet::new(settings, args.instances as usize)?;
    for index in 0..fleet.len() {
        fleet.start(index)?;
        fleet.wait_ready(index, Duration::from_secs(60)).await?;
    }
    let balancer = match args.balancer {
        BalancerKind::None => None,
        BalancerKind::Nginx => {
            Some(Nginx::start(&fleet.ports(), &work.path().join("nginx")).await?)
        }
    };
    tracing::info!(seed, instances = fleet.len(), store = %store_name, balancer = ?args.balancer, kills = args.kills, "crash bench: load starts");

    // Through a balancer, one target whose generation never changes: the
    // answers are not attributed to instances.
    let (targets, generations) = match &balancer {
        None => (fleet.endpoints(), fleet.generations()),
        Some(lb) => (
            vec![lb.endpoint.clone()],
            Arc::new(vec![Default::default()]),
        ),
    };
    let traffic = Traffic::start(
        targets,
        generations,
        TrafficOptions {
            rate: args.rate,
            users: args.users,
            timeout: Duration::from_secs(10),
            give_up_after: Duration::from_secs(60),
            seed,
        },
    );
    let t0 = traffic.started();
    let sampler = QueueAgeSampler::start(fleet.endpoints());

    // PostgreSQL restarts, evenly spread with some jitter, beside the kills.
    let pg_restarts = Arc::new(Mutex::new(Vec::new()));
    let restarter = cluster.clone().map(|cluster| {
        let count = args.restart_postgres;
        let mode = args.pg_stop_mode;
        let spacing = args.duration / (count + 1);
        let moments: Vec<Duration> = (1..=count)
            .map(|j| spacing.mul_f64(f64::from(j) + rng.random_range(-0.3..0.3)))
            .collect();
        let done = pg_restarts.clone();
        tokio::spawn(async move {
            for at in moments {
                tokio::time::sleep_until(t0 + at).await;
                let began = t0.elapsed();
                tracing::info!(at = ?began, ?mode, "crash bench: restarting PostgreSQL");
                let cluster = cluster.clone();
                let took = tokio::task::spawn_blocking(move || cluster.restart(mode))
                    .await
                    .context("restarting PostgreSQL")??;
                done.lock().expect("not poisoned").push((began, mode, took));
            }
            anyhow::Ok(())
        })
    });

    // The kills. Between them the bench supervises the instances as an
    // orchestrator would: one that exits by itself (it cannot reach its
    // store while PostgreSQL restarts) is started again.
    let count = fleet.len();
    let spacing = args.duration / (args.kills + 1);
    let mut supervision = Supervision {
        spawned_at: vec![Duration::ZERO; count],
        exits: Vec::new(),
    };
    let mut kill_log: Vec<KillRecord> = Vec::new();
    let mut early: Option<(usize, Duration)> = None;
    for k in 0..args.kills {
        let (instance, at) = match early.take() {
            Some(next) => next,
            None => {
                let at = spacing.mul_f64(f64::from(k + 1) + rng.random_range(-0.45..0.45));
                (rng.random_range(0..count), at)
            }
        };
        supervision.until(&mut fleet, t0, t0 + at).await?;
        let now = t0.elapsed();
        let killed = fleet.instance(instance).starts;
        let uptime = now.saturating_sub(supervision.spawned_at[instance]);
        fleet.kill(instance);
        fleet.start(instance)?;
        let restarted_at = t0.elapsed();
        supervision.started(instance, restarted_at);
        kill_log.push(KillRecord {
            at: now,
            instance,
            uptime,
            killed,
            restarted: fleet.instance(instance).starts,
            restarted_at,
        });
        tracing::info!(kill = k + 1, instance = %fleet.instance(instance).name, at = ?now, "crash bench: killed and restarted");
        // Now and then, kill the same instance again during its start-up.
        if rng.random_bool(0.25) {
            let soon =
                supervision.spawned_at[instance] + Duration::from_millis(rng.random_range(1..60));
            early = Some((instance, soon));
        }
    }
    supervision
        .until(&mut fleet, t0, t0 + args.duration)
        .await?;
    if let Some(restarter) = restarter {
        restarter.await.context("the PostgreSQL restarter")??;
    }
    supervision.all_ready(&mut fleet, t0).await?;
    let Finished { payments, requests } = traffic.stop().await;
    let max_queue_age_ms = sampler.stop().await;
    tracing::info!(
        payments = payments.len(),
        "crash bench: load over, draining"
    );

    // Drain, stop, read back, audit.
    let accepted: HashSet<_> = payments
        .iter()
        .filter(|p| matches!(p.fate, Fate::Accepted { .. }))
        .map(|p| p.id)
        .collect();
    let mut apis: Vec<RouterApi> = fleet.endpoints().into_iter().map(RouterApi::new).collect();
    let drained = audit::drain(
        &mut apis,
        &mut processors.admins,
        &accepted,
        args.drain_timeout,
    )
    .await?;
    fleet.kill_all();
    let store_view = match store.read_back(&fleet.settings().bin).await {
        Ok(view) => Some(view),
        Err(e) => {
            warnings.push(format!("cannot read the store back: {e:#}"));
            None
        }
    };
    let books = Books::read(&mut processors.admins).await?;
    let audit = audit::audit(&payments, &books, &drained.summary, store_view.as_ref());

    drop(balancer);
    let kills = kills_with_recovery(&kill_log, &payments, &fleet, args.balancer);
    let recovery = Spread::of(kills.iter().filter_map(|k| k.recovery_ms).collect());
    let pg_restarts = pg_restarts
        .lock()
        .expect("not poisoned")
        .iter()
        .map(|&(at, mode, took)| PgRestart {
            at_ms: millis(at),
            mode,
            down_ms: millis(took),
            recovery_ms: first_accepted_after(&payments, at + took)
                .map(|t| millis(t - (at + took))),
        })
        .collect();
    let passed = audit.passed() && drained.settled && kills.len() == args.kills as usize;

    drop(fleet);
    drop(cluster);
    warnings.extend(run_store.remove().await);
    processors.shutdown().await;
    let work_dir = work.finish(!passed);
    Ok(CrashReport {
        bench: "crash",
        started_at,
        seed,
        duration_s: args.duration.as_secs_f64(),
        rate: args.rate,
        users: args.users,
        instances: args.instances,
        store: store_name,
        balancer: args.balancer,
        kills_requested: args.kills,
        kills,
        recovery,
        pg_restarts,
        exits: supervision.exits,
        requests,
        max_queue_age_ms,
        drain_settled: drained.settled,
        drain_ms: millis(drained.took),
        audit,
        passed,
        work_dir,
        warnings,
    })
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The first 2xx (of any instance) noticed at or after `from`, as a time
/// since the load started.
fn first_accepted_after(payments: &[Payment], from: Duration) -> Option<Duration> {
    payments
        .iter()
        .filter_map(|p| match p.fate {
            Fate::Accepted { after, .. } if after >= from => Some(after),
            _ => None,
        })
        .min()
}

/// One kill as the loop made it.
struct KillRecord {
    at: Duration,
    instance: usize,
    uptime: Duration,
    /// The generation of the process killed, and of the one started after.
    killed: u32,
    restarted: u32,
    restarted_at: Duration,
}

/// Each kill with its recovery: the first 2xx answered by the process
/// started after it (by generation, so an answer of the killed process
/// noticed late is not taken for one), if there was one before that process
/// died in turn.
fn kills_with_recovery(
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

impl fmt::Display for CrashReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let a = &self.audit;
        let through = match self.balancer {
            BalancerKind::None => "",
            BalancerKind::Nginx => " behind nginx",
        };
        writeln!(
            f,
            "crash: {:.0}s at {} payments/s, {} instance(s){through} on {}, seed {}",
            self.duration_s, self.rate, self.instances, self.store, self.seed
        )?;
        let startup = self
            .kills
            .iter()
            .filter(|k| k.had_answered == Some(false))
            .count();
        write!(
            f,
            "  kills         {} of {} (SIGKILL",
            self.kills.len(),
            self.kills_requested,
        )?;
        match self.balancer {
            BalancerKind::None => {
                writeln!(f, "; {startup} before the process had answered a 2xx)")?;
                match &self.recovery {
                    Some(r) => writeln!(f, "  recovery      restart -> first 2xx: {r}")?,
                    None => writeln!(f, "  recovery      no restart reached a 2xx")?,
                }
            }
            BalancerKind::Nginx => writeln!(
                f,
                ")\n  recovery      not measured: through nginx a 2xx cannot be told apart by instance"
            )?,
        }
        for r in &self.pg_restarts {
            writeln!(
                f,
                "  postgres      restarted ({:?}) at {:.1}s, down {} ms, first 2xx {} after",
                r.mode,
                r.at_ms as f64 / 1000.0,
                r.down_ms,
                r.recovery_ms
                    .map_or("never".to_owned(), |ms| format!("{ms} ms"))
            )?;
        }
        a.write_payments(
            f,
            &format!(
                "; {} answered 5xx/429, {} unanswered, {} connections refused",
                self.requests.server_errors,
                self.requests.unanswered,
                self.requests.refused_connections
            ),
        )?;
        a.write_lines(f)?;
        writeln!(
            f,
            "  max queue age {} ms (the routers' oldest waiting payment, sampled every 250 ms)",
            self.max_queue_age_ms
        )?;
        writeln!(
            f,
            "  drain         {} in {} ms",
            if self.drain_settled {
                "settled"
            } else {
                "NOT settled"
            },
            self.drain_ms
        )?;
        if let (Some(first), Some(last)) = (self.exits.first(), self.exits.last()) {
            writeln!(
                f,
                "  self-exits    {} (instances that exited by themselves and were started again, from {:.1}s to {:.1}s; first: {} {})",
                self.exits.len(),
                first.at_ms as f64 / 1000.0,
                last.at_ms as f64 / 1000.0,
                first.instance,
                first.status
            )?;
        }
        for w in &self.warnings {
            writeln!(f, "  warning       {w}")?;
        }
        if let Some(dir) = &self.work_dir {
            writeln!(f, "  logs          {}", dir.display())?;
        }
        write!(f, "  verdict       {}", audit::verdict(self.passed))
    }
}
