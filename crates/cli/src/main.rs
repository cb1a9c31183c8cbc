//! `reroute`: one binary for the router, the processor simulators and the
//! benchmarks. This file only parses the command line and hands over to the
//! crate that does the work.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// reroute — a payment failover router.
///
/// Executes each payment through the cheapest healthy processor, never charges
/// twice, never loses an accepted payment.
#[derive(Parser)]
#[command(name = "reroute", version, propagate_version = true)]
struct Cli {
    /// Log format: `json` (one object per line) or `text`. Default: json for
    /// `serve`, text for the terminal commands. Level: RUST_LOG (default info).
    #[arg(long, global = true, env = "REROUTE_LOG_FORMAT", value_enum)]
    log_format: Option<LogFormat>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Json,
    Text,
}

#[derive(Subcommand)]
enum Command {
    /// Run the router: the payments API on port 9999 over the embedded store.
    Serve(reroute_server::ServeArgs),
    /// Print the configuration `serve` would run with (same flags and
    /// environment), secrets masked; exit non-zero if it is invalid.
    Config(reroute_server::ServeArgs),
    /// Run payment processor simulators (Rinha protocol, fault injection).
    Sim(reroute_sim::SimArgs),
    /// Run a load test and score it.
    Bench(reroute_bench::BenchArgs),
    /// Replay TechCart's processor outage end to end on this machine:
    /// simulated processors, the router and real payments, with a timeline.
    Demo(reroute_demo::DemoArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_format = match cli.command {
        Command::Serve(_) => LogFormat::Json,
        _ => LogFormat::Text,
    };
    // The demo prints its own timeline on stdout; the router's logs would
    // interleave with it, so only errors show unless RUST_LOG says otherwise.
    let default_level = match cli.command {
        Command::Demo(_) => "error",
        _ => "info",
    };
    init_logs(cli.log_format.unwrap_or(default_format), default_level);
    let result = match cli.command {
        Command::Serve(args) => serve(args),
        Command::Config(args) => args
            .into_config()
            .map(|config| print!("{}", config.render_masked()))
            .map_err(|e| anyhow::anyhow!("invalid configuration: {e}")),
        Command::Sim(args) => reroute_sim::run(args),
        Command::Bench(args) => reroute_bench::run(args),
        Command::Demo(args) => reroute_demo::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("reroute: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logs(format: LogFormat, default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => logs
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
        LogFormat::Text => logs.init(),
    }
}

fn serve(args: reroute_server::ServeArgs) -> anyhow::Result<()> {
    let config = args
        .into_config()
        .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let app = reroute_server::App::build(config).await?;
        tracing::info!(addr = %app.addr(), resumed = app.resumed(), "reroute serving");
        app.run_until_stopped().await?;
        Ok(())
    })
}
