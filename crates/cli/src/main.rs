//! `reroute`: one binary for the router, the processor simulators and the
//! benchmarks. This file only parses the command line and hands over to the
//! crate that does the work.

use std::process::ExitCode;

use clap::{ArgMatches, CommandFactory, FromArgMatches, Subcommand};
use reroute_server::{EdgeArgs, LogFormat, ServeArgs, Telemetry};
use tracing_subscriber::EnvFilter;

mod bench;
mod ledger;

/// reroute — a payment failover router.
///
/// Executes each payment through the cheapest healthy processor, never charges
/// twice, never loses an accepted payment.
#[derive(clap::Parser)]
#[command(name = "reroute", version, propagate_version = true)]
struct Cli {
    /// Log format: `json` (one object per line) or `text`. Default: json for
    /// `serve` (or its --config file's), text for the terminal commands.
    /// Level: RUST_LOG (default info).
    #[arg(long, global = true, env = "REROUTE_LOG_FORMAT", value_enum)]
    log_format: Option<LogFormat>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the router: the payments API on port 9999 over the embedded store.
    Serve(ServeArgs),
    /// Run a stateless HTTP edge in front of one core (`serve
    /// --edge-socket`): validates payments and hands them to the core over
    /// a unix socket, proxies every other request to the core's HTTP socket.
    Edge(EdgeArgs),
    /// Print the configuration `serve` would run with (same flags,
    /// environment and --config file), as a configuration file with each
    /// value's origin, secrets masked; exit non-zero if it is invalid.
    Config(ServeArgs),
    /// Run payment processor simulators (Rinha protocol, fault injection).
    Sim(reroute_sim::SimArgs),
    /// Print the ledger and the pending payments of a store (`--db` or
    /// `--store`) as JSON lines, for reconciliation. Read-only.
    Ledger(ledger::LedgerArgs),
    /// Run a load test and score it.
    Bench(bench::BenchArgs),
    /// Replay TechCart's processor outage end to end on this machine:
    /// simulated processors, the router and real payments, with a timeline.
    Demo(reroute_demo::DemoArgs),
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    // The subcommand's matches tell a flag from its environment variable.
    let command_matches = matches.subcommand().map(|(_, m)| m);
    let log_format = cli.log_format.unwrap_or(LogFormat::Text);
    let result = match cli.command {
        Command::Serve(args) => serve(args, command_matches),
        Command::Edge(args) => init_logs(log_format, "info")
            .and_then(|()| reroute_server::edge::run(args).map_err(Into::into)),
        Command::Config(args) => args
            .resolve(command_matches)
            .map(|(config, origins)| print!("{}", config.render_masked(&origins)))
            .map_err(|e| anyhow::anyhow!("invalid configuration: {e}")),
        Command::Sim(args) => init_logs(log_format, "info").and_then(|()| reroute_sim::run(args)),
        Command::Ledger(args) => ledger::run(args),
        Command::Bench(args) => init_logs(log_format, "info").and_then(|()| bench::run(args)),
        // The demo prints its own timeline on stdout; the router's logs would
        // interleave with it, so only errors show unless RUST_LOG says otherwise.
        Command::Demo(args) => {
            init_logs(log_format, "error").and_then(|()| reroute_demo::run(args))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("reroute: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// RUST_LOG, or `default_level` when it is unset or invalid.
fn log_filter(default_level: &str) -> EnvFilter {
    EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new(default_level))
}

/// Logs only, for the terminal commands.
fn init_logs(format: LogFormat, default_level: &str) -> anyhow::Result<()> {
    // Without an exporter there is nothing to shut down.
    let _logs_only = Telemetry::init(format, log_filter(default_level), None)?;
    Ok(())
}

fn serve(args: ServeArgs, matches: Option<&ArgMatches>) -> anyhow::Result<()> {
    let (config, _) = args
        .resolve(matches)
        .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let otlp = config.telemetry.otlp.clone();
        let telemetry = Telemetry::init(
            config.telemetry.log_format,
            log_filter("info"),
            otlp.as_ref()
                .map(|otlp| (otlp, tokio::runtime::Handle::current())),
        )?;
        if let Some(otlp) = &otlp {
            tracing::info!(url = %otlp.traces_url(), "exporting spans over OTLP/HTTP");
        }
        let served = run(config).await;
        // Stopped (or failed to start): send the spans still buffered.
        telemetry.shutdown().await;
        served
    })
}

async fn run(config: reroute_server::ServeConfig) -> anyhow::Result<()> {
    let app = reroute_server::App::build(config).await?;
    tracing::info!(addr = %app.addr(), resumed = app.resumed(), "reroute serving");
    app.run_until_stopped().await?;
    Ok(())
}
