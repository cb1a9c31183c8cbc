//! `reroute sim`: the command line of the simulator.
//!
//! Flags and environment variables give the Rinha pair (ports, fees, token,
//! health window); `--config` loads any number of processors from TOML
//! instead. [`run`] owns its tokio runtime and serves until Ctrl-C or SIGTERM.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;

use crate::config::{SimConfig, defaults};
use crate::fee::FeeRate;

/// Processor simulators: the Rinha de Backend 2025 payment processors, exact,
/// or any set of processors declared in a TOML file, with fault injection.
#[derive(Debug, Clone, clap::Args)]
pub struct SimArgs {
    /// TOML file declaring the processors (id, name, port, fee, countries,
    /// payment methods, faults, schedule). Without it, the Rinha pair
    /// `default` and `fallback` is simulated and the port/fee flags apply.
    /// Faults (also set at run time by `PUT /admin/faults` and by schedule
    /// steps): error_rate (500), decline_rate (402), latency_ms, jitter_ms,
    /// hang_rate, reset_rate, reset_after_store, throttle_rate (an instant
    /// 429 on that fraction of payments, nothing stored, as the concurrency
    /// limiter refuses) and health_throttle_rate (429 on health checks).
    /// See docs/sim.md.
    #[arg(long, env = "REROUTE_SIM_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Address to listen on (0.0.0.0 to be reachable from containers).
    #[arg(long, env = "REROUTE_SIM_HOST", value_name = "IP")]
    pub host: Option<IpAddr>,

    /// Port of the `default` processor (Rinha pair only).
    #[arg(long, env = "REROUTE_SIM_DEFAULT_PORT", default_value_t = defaults::DEFAULT_PORT)]
    pub default_port: u16,

    /// Port of the `fallback` processor (Rinha pair only).
    #[arg(long, env = "REROUTE_SIM_FALLBACK_PORT", default_value_t = defaults::FALLBACK_PORT)]
    pub fallback_port: u16,

    /// Fee of the `default` processor as a fraction of the amount (Rinha pair only).
    #[arg(long, env = "REROUTE_SIM_DEFAULT_FEE", default_value = defaults::DEFAULT_FEE, value_name = "FRACTION")]
    pub default_fee: FeeRate,

    /// Fee of the `fallback` processor as a fraction of the amount (Rinha pair only).
    #[arg(long, env = "REROUTE_SIM_FALLBACK_FEE", default_value = defaults::FALLBACK_FEE, value_name = "FRACTION")]
    pub fallback_fee: FeeRate,

    /// Initial X-Rinha-Token for the /admin/* endpoints [default: 123, or the file's].
    #[arg(long, env = "REROUTE_SIM_TOKEN")]
    pub token: Option<String>,

    /// Health-check rate-limit window: one call per window, e.g. `5s` or
    /// `200ms` [default: 5s, or the file's].
    #[arg(long, env = "REROUTE_SIM_HEALTH_WINDOW", value_parser = parse_duration, value_name = "DURATION")]
    pub health_window: Option<Duration>,

    /// POST /payments processed at once per processor [default: 800, or the file's].
    #[arg(long, env = "REROUTE_SIM_MAX_IN_FLIGHT", value_name = "N")]
    pub max_in_flight: Option<usize>,

    /// POST /payments waiting for a place before 429 [default: 500, or the file's].
    #[arg(long, env = "REROUTE_SIM_MAX_QUEUED", value_name = "N")]
    pub max_queued: Option<usize>,

    /// Worker threads [default: one per available core].
    #[arg(long, env = "REROUTE_SIM_THREADS", value_name = "N")]
    pub threads: Option<usize>,
}

impl SimArgs {
    /// The configuration these arguments describe.
    pub fn to_config(&self) -> anyhow::Result<SimConfig> {
        let mut config = match &self.config {
            Some(path) => SimConfig::from_toml_file(path)?,
            None => {
                let mut config = SimConfig::rinha();
                let settings = [
                    (self.default_port, self.default_fee),
                    (self.fallback_port, self.fallback_fee),
                ];
                for (spec, (port, fee)) in config.processors.iter_mut().zip(settings) {
                    spec.port = port;
                    spec.fee = fee;
                }
                config
            }
        };
        if let Some(host) = self.host {
            config.host = host;
        }
        if let Some(token) = &self.token {
            config.token.clone_from(token);
        }
        if let Some(window) = self.health_window {
            config.health_window = window;
        }
        if let Some(n) = self.max_in_flight {
            config.max_in_flight = n;
        }
        if let Some(n) = self.max_queued {
            config.max_queued = n;
        }
        config.validate()?;
        Ok(config)
    }
}

/// `5s`, `200ms`, `1.5s`, or a bare number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit_ms) = if let Some(n) = text.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1000.0)
    } else {
        (text, 1000.0)
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 5s or 200ms"))?;
    let ms = value * unit_ms;
    if !ms.is_finite() || ms < 1.0 {
        return Err(format!("{text:?} must be at least 1ms"));
    }
    Ok(Duration::from_micros((ms * 1000.0) as u64))
}

/// Runs the simulator until Ctrl-C or SIGTERM, printing each processor's URL.
pub fn run(args: SimArgs) -> anyhow::Result<()> {
    let config = args.to_config()?;
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = args.threads {
        runtime.worker_threads(threads.max(1));
    }
    let runtime = runtime
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(async {
        let sim = crate::spawn(config.clone()).await?;
        for spec in &config.processors {
            println!(
                "reroute sim: {:<12} {} fee {} (admin token {:?})",
                spec.id,
                sim.url(&spec.id),
                spec.fee,
                config.token
            );
        }
        println!(
            "reroute sim: health limit 1 call per {:?}; Ctrl-C to stop",
            config.health_window
        );
        stopped().await;
        println!("reroute sim: stopping");
        sim.shutdown().await;
        Ok(())
    })
}

/// Resolves on Ctrl-C, or SIGTERM where there is one.
async fn stopped() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => ctrl_c.await,
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        sim: SimArgs,
    }

    fn parse(args: &[&str]) -> SimArgs {
        Cli::try_parse_from(std::iter::once("sim").chain(args.iter().copied()))
            .unwrap()
            .sim
    }

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("200ms"), Ok(Duration::from_millis(200)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("5"), Ok(Duration::from_secs(5)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn without_flags_the_rinha_pair_is_simulated() {
        let config = parse(&[]).to_config().unwrap();
        let rinha = SimConfig::rinha();
        assert_eq!(config.processors.len(), 2);
        assert_eq!(config.processors[0].port, 8001);
        assert_eq!(config.processors[1].fee, rinha.processors[1].fee);
        assert_eq!(config.token, "123");
        assert_eq!(config.health_window, Duration::from_secs(5));
    }

    #[test]
    fn flags_change_ports_fees_token_and_window() {
        let config = parse(&[
            "--default-port",
            "9001",
            "--fallback-fee",
            "0.2",
            "--token",
            "abc",
            "--health-window",
            "250ms",
            "--host",
            "0.0.0.0",
        ])
        .to_config()
        .unwrap();
        assert_eq!(config.processors[0].port, 9001);
        assert_eq!(config.processors[1].fee.to_string(), "0.2");
        assert_eq!(config.token, "abc");
        assert_eq!(config.health_window, Duration::from_millis(250));
        assert!(config.host.is_unspecified());
    }

    #[test]
    fn a_bad_fee_flag_is_refused_by_the_parser() {
        let err = Cli::try_parse_from(["sim", "--default-fee", "5%"])
            .err()
            .unwrap();
        assert!(err.to_string().contains("fee must be a decimal"), "{err}");
    }
}
