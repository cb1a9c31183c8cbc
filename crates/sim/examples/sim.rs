//! The simulator on its own, with the same flags as `reroute sim`
//! (`cargo run --release -p reroute-sim --example sim -- --help`). Handy for
//! benchmarking the simulator without building the whole CLI.

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "sim",
    about = "Payment processor simulators (same flags as `reroute sim`)"
)]
struct Cli {
    #[command(flatten)]
    sim: reroute_sim::SimArgs,
}

fn main() -> anyhow::Result<()> {
    reroute_sim::run(Cli::parse().sim)
}
