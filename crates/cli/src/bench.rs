//! `reroute bench`: the speed benches (`reroute-bench`: rinha, intel) and
//! the reliability ones (`reroute-faults`: crash, chaos, and the relay that
//! puts a network's delay in front of a service) under one command.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use reroute_bench::{IntelArgs, RinhaArgs, intel, rinha};
use reroute_faults::{ChaosArgs, CrashArgs, chaos, crash, relay};

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
    out: Option<PathBuf>,
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
