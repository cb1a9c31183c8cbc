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
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the router: the payments API on port 9999 over the embedded store.
    Serve(reroute_server::ServeArgs),
    /// Run payment processor simulators (Rinha protocol, fault injection).
    Sim(reroute_sim::SimArgs),
    /// Run a load test and score it.
    Bench(reroute_bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logs();
    let result = match cli.command {
        Command::Serve(args) => serve(args),
        Command::Sim(args) => reroute_sim::run(args),
        Command::Bench(args) => reroute_bench::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("reroute: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
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
