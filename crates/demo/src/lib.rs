//! `reroute demo`: the TechCart outage, end to end, on one machine.
//!
//! TechCart lost $420,000 when a processor failed for four hours and its
//! routing did not move. The demo replays that outage against the real
//! router, in one process, with nothing else to start:
//!
//! ```text
//! stack      the five TechCart processors (simulator, free ports, built from
//!            config/techcart.toml) + the router (reroute_server::App, port
//!            9999 if free, embedded store in a temporary directory)
//! traffic    1,775 payments through POST /payments with method + country,
//!            and 440 more PIX/BR in an evening rush; the router executes
//!            them and its health engine learns
//! story      normal -> processor_a fails 90% -> recovers at 40% -> normal;
//!            then the rush -> processor_c slows to 2 s -> fast again
//!            (the simulator's fault injection and delay, changed on schedule)
//! watch      alerts and the PIX/BR recommendation from the router's API,
//!            its lanes from the dashboard's snapshot, where payments went
//!            (routes and spills) from the processors' books
//! timeline   one line per event, in story time
//! summary    per-processor counts, ledger vs books, time to detect, reroute,
//!            recover; the slow processor's lane, spill share and return;
//!            exit code non-zero when the story did not happen
//! ```
//!
//! The story lasts just under twelve minutes and plays 10x faster by
//! default; see [`clock`] for how time is compressed without changing what
//! happens.

use anyhow::Context as _;

pub mod client;
pub mod clock;
pub mod play;
pub mod stack;
pub mod story;
pub mod summary;
pub mod timeline;
pub mod traffic;
pub mod watch;

use clock::Compression;

/// `reroute demo` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// How many times faster than real time the twelve-minute story plays, 1
    /// to 100: 10 takes about 70 seconds, 60 about twelve.
    #[arg(long, default_value_t = 10, conflicts_with = "realtime")]
    pub speed: u32,

    /// Play the story in real time (twelve minutes); the same as --speed 1.
    #[arg(long)]
    pub realtime: bool,

    /// Port of the router; 0 for any free port [default: 9999 when free,
    /// else any free port].
    #[arg(long)]
    pub port: Option<u16>,
}

impl DemoArgs {
    fn compression(&self) -> anyhow::Result<Compression> {
        let speed = if self.realtime { 1 } else { self.speed };
        Compression::new(speed).with_context(|| {
            format!(
                "--speed must be between 1 and {}, got {speed}",
                Compression::MAX_SPEED
            )
        })
    }
}

/// Runs the demo on a runtime of its own; `Err` when it could not start, was
/// interrupted, or the story did not happen as expected.
pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    let compression = args.compression()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the demo runtime")?;
    runtime.block_on(play::play(args.port, compression))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        demo: DemoArgs,
    }

    fn parse(args: &[&str]) -> Result<DemoArgs, clap::Error> {
        let mut argv = vec!["reroute-demo"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).map(|c| c.demo)
    }

    #[test]
    fn the_default_plays_ten_times_faster_on_9999_when_free() {
        let a = parse(&[]).unwrap();
        assert_eq!(a.compression().unwrap().speed(), 10);
        assert_eq!(a.port, None);
    }

    #[test]
    fn realtime_is_speed_one_and_excludes_speed() {
        assert_eq!(
            parse(&["--realtime"])
                .unwrap()
                .compression()
                .unwrap()
                .speed(),
            1
        );
        assert!(parse(&["--realtime", "--speed", "5"]).is_err());
    }

    #[test]
    fn speeds_beyond_the_range_are_refused_with_the_flag_named() {
        let e = parse(&["--speed", "0"]).unwrap().compression().unwrap_err();
        assert!(e.to_string().contains("--speed"), "{e}");
        assert!(parse(&["--speed", "101"]).unwrap().compression().is_err());
    }
}
