//! `reroute bench`: load tests that judge a payment backend from the outside.
//!
//! The crate plays the part of the judge. It talks to a backend (reroute or any
//! other Rinha de Backend 2025 entry) and to the two payment processors over
//! plain HTTP, exactly as the official k6 script does, and scores the run the
//! way the official script scores it:
//!
//! ```text
//! rinha::run ── setup (tokens, purges)
//!            ├─ users      ramping virtual users: POST /payments, sleep 1 s
//!            ├─ auditor    every ~10 s: backend summary vs processors' books
//!            ├─ stages     delay / failure put on the processors on schedule
//!            └─ teardown   summaries -> score (pure) -> RinhaReport
//! ```
//!
//! [`intel`] measures the failover-intelligence API the same way from the
//! outside: transactions recorded and recommendations asked at a fixed rate,
//! open-loop, with latency per endpoint.
//!
//! [`crash`] and [`chaos`] judge reliability rather than speed: they start
//! the routers themselves ([`fleet`]), kill them or make the processors
//! misbehave ([`processors`]) under a steady load ([`traffic`]), then
//! [`drain`] the run and [`audit`] the payments answered 2xx against the
//! router's ledger (read with `reroute ledger`, [`ledger`]) and the
//! processors' books, correlationId by correlationId. [`pg_cluster`] gives
//! them a PostgreSQL of their own to restart. Every bench prints its
//! summary with the rows of [`report`].
//!
//! The load generator shares the machine with the system under test, so it is
//! kept light: one small Tokio runtime, one keep-alive connection per virtual
//! user, no per-request work beyond building a 60-byte body.

use std::io::Write;

use anyhow::Context;

pub mod audit;
pub mod balancer;
pub mod chaos;
pub mod crash;
pub mod drain;
pub mod duration;
pub mod fleet;
pub mod http;
pub mod intel;
pub mod json_number;
pub mod ledger;
pub mod pg_cluster;
pub mod processors;
pub mod relay;
pub mod report;
pub mod rinha;
pub mod router_api;
pub mod run_store;
pub mod score;
pub mod traffic;
mod workdir;

pub use chaos::ChaosArgs;
pub use crash::CrashArgs;
pub use intel::IntelArgs;
pub use rinha::RinhaArgs;

/// `reroute bench`: run a load test against a backend.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub command: BenchCommand,
}

/// The load tests `reroute bench` knows.
// Parsed once at start-up: the size of the larger variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// The Rinha de Backend 2025 test: ramping users, processor failures,
    /// consistency audits and the official score.
    Rinha(RinhaArgs),
    /// The failover-intelligence API at a fixed rate: transactions recorded
    /// and recommendations asked, open-loop; latency per endpoint.
    Intel(IntelArgs),
    /// Routers killed with SIGKILL at random moments under load (and
    /// PostgreSQL restarted), then 2xx = ledger = books by correlationId.
    Crash(CrashArgs),
    /// Processor misbehaviour under load (flapping, slow, resets, both down,
    /// health 429 storms; re-sends refused while first sends sleep, the
    /// delay lowered mid-flight, 429 storms on payments, a PostgreSQL holder
    /// paused past its lease): invariants, completion, no hot loops, alerts.
    Chaos(ChaosArgs),
    /// A TCP relay adding a fixed delay each way (fractions of a
    /// millisecond allowed): a service on this machine as if on another
    /// host. Runs until killed.
    Relay(relay::RelayArgs),
}

/// Runs the chosen bench on a runtime of its own (one thread: the machine is
/// shared with the system under test), prints a readable summary on stderr and
/// writes the result JSON to `--out` or stdout.
pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the bench runtime")?;
    match args.command {
        BenchCommand::Rinha(args) => {
            let out = args.out.clone();
            let report = runtime.block_on(rinha::run(args.into_options()))?;
            emit(&report, out)
        }
        BenchCommand::Intel(args) => {
            let out = args.out.clone();
            let report = runtime.block_on(intel::run(args))?;
            emit(&report, out)
        }
        BenchCommand::Crash(args) => {
            let out = args.out.clone();
            let report = runtime.block_on(crash::run(args))?;
            emit(&report, out)?;
            verdict(report.passed)
        }
        BenchCommand::Chaos(args) => {
            let out = args.out.clone();
            let report = runtime.block_on(chaos::run(args))?;
            emit(&report, out)?;
            verdict(report.passed)
        }
        // Threads of its own: the runtime's timers are too coarse for it.
        BenchCommand::Relay(args) => relay::run(args),
    }
}

/// A reliability bench whose invariants failed exits non-zero, after its
/// report is written.
fn verdict(passed: bool) -> anyhow::Result<()> {
    if passed {
        Ok(())
    } else {
        anyhow::bail!("the run FAILED: see the report above")
    }
}

/// The summary to stderr, the JSON to `out` or stdout.
fn emit(
    report: &(impl serde::Serialize + std::fmt::Display),
    out: Option<std::path::PathBuf>,
) -> anyhow::Result<()> {
    eprintln!("{report}");
    let mut json = serde_json::to_string_pretty(report).context("writing the result")?;
    json.push('\n');
    match out {
        Some(path) => {
            std::fs::write(&path, json)
                .with_context(|| format!("writing the result to {}", path.display()))?;
            eprintln!("result written to {}", path.display());
        }
        None => std::io::stdout()
            .lock()
            .write_all(json.as_bytes())
            .context("writing the result to stdout")?,
    }
    Ok(())
}
