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

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reroute_core::Timestamp;

use crate::balancer::Nginx;
use crate::drain;
use crate::fleet::{Fleet, RouterFlags};
use crate::pg_cluster::StopMode;
use crate::router_api::QueueAgeSampler;
use crate::run_store::{RunStore, StorePlan};
use crate::traffic::{Finished, Traffic, TrafficOptions};
use crate::workdir::WorkDir;
use reroute_bench::duration::{millis, parse_duration};
use reroute_bench::processors::Processors;
use reroute_bench::report::Latency;

pub mod report;
pub mod supervision;

pub use crate::balancer::BalancerKind;
pub use report::{CrashReport, Exit, Kill, PgRestart};
use supervision::{KillRecord, Supervision, first_accepted_after, kills_with_recovery};

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

    /// The routers' `--lease-ms` (PostgreSQL): how soon a dead instance's
    /// payments are taken over.
    #[arg(long, value_name = "MS", default_value_t = 2000)]
    pub lease_ms: u64,

    #[command(flatten)]
    pub routers: RouterFlags,

    /// Write the result JSON to this file instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
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
    let work = WorkDir::new(args.routers.work_dir.clone(), "reroute-crash-")?;
    let mut warnings = Vec::new();

    let given = args.default_url.clone().zip(args.fallback_url.clone());
    let mut processors = Processors::prepare(
        given,
        &args.token,
        Duration::from_millis(args.routers.health_interval_ms),
    )
    .await?;
    processors.admins[0].set_delay(args.delay_ms).await?;

    let run_store = RunStore::set_up(
        &plan,
        work.path(),
        args.routers.pg_bin.clone(),
        "reroute_crash",
    )
    .await?;
    let (store, store_name) = (run_store.store.clone(), run_store.name.clone());
    let cluster = run_store.cluster();

    let settings = args.routers.settings(
        &processors,
        store.clone(),
        args.lease_ms,
        Vec::new(),
        work.path().to_path_buf(),
    )?;
    let mut fleet = Fleet::new(settings, args.instances as usize)?;
    fleet.start_all().await?;
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
    let (_, drained) = drain::drain_run(
        &fleet,
        &mut processors.admins,
        &payments,
        args.routers.drain_timeout,
    )
    .await?;
    let audit = drain::stop_and_audit(
        &mut fleet,
        &mut processors.admins,
        &payments,
        &drained,
        &mut warnings,
    )
    .await?;

    drop(balancer);
    let kills = kills_with_recovery(&kill_log, &payments, &fleet, args.balancer);
    let recovery = Latency::of_millis(kills.iter().filter_map(|k| k.recovery_ms));
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
