//! Everything the demo runs, started in this process: the five TechCart
//! processors in the simulator and the router in front of them, on an
//! embedded store in a temporary directory.
//!
//! One source of truth: the registry is `config/techcart.toml` (compiled in),
//! read by the router's own configuration code as `reroute serve
//! --processors config/techcart.toml` would read it. The simulated processors
//! are built from that registry (id, name, fee, countries, methods) plus the
//! story's behaviour profiles; the registry's URLs are then pointed at them.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use reroute_core::{Processor, Registry};
use reroute_server::{App, ServeArgs, ServeConfig};
use reroute_sim::{ProcessorSpec, Sim, SimConfig};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::clock::Compression;
use crate::story;

/// The shipped TechCart registry.
pub const TECHCART_TOML: &str = include_str!("../../../config/techcart.toml");

/// The port the demo's router prefers, as `reroute serve` does.
pub const DEFAULT_PORT: u16 = 9999;

/// The router and the processors, running.
pub struct Stack {
    pub sim: Sim,
    pub registry: Registry,
    pub router_url: String,
    /// Where the embedded store lives.
    pub db: PathBuf,
    /// Why the router is not on the port asked for, if it is not.
    pub port_note: Option<String>,
    pub patience_ms: i64,
    /// The router's spill wait, in wall ms (compressed like the patience).
    pub spill_wait_ms: u64,
    router: JoinHandle<std::io::Result<()>>,
    stop: CancellationToken,
    _dir: tempfile::TempDir,
}

#[derive(Parser)]
struct ServeCommandLine {
    #[command(flatten)]
    serve: ServeArgs,
}

/// Starts the processors, then the router. `port`: the router's port, or
/// `None` for 9999 when it is free and any free port otherwise.
pub async fn launch(port: Option<u16>, compression: Compression) -> anyhow::Result<Stack> {
    let dir = tempfile::Builder::new()
        .prefix("reroute-demo-")
        .tempdir()
        .context("creating a temporary directory for the embedded store")?;
    let registry_file = dir.path().join("techcart.toml");
    std::fs::write(&registry_file, TECHCART_TOML).context("writing the registry file")?;
    let db = dir.path().join("reroute.db");
    let (port, port_note) = match port {
        Some(port) => (port, None),
        None if port_is_free(DEFAULT_PORT) => (DEFAULT_PORT, None),
        None => (
            0,
            Some(format!("port {DEFAULT_PORT} is taken: any free port")),
        ),
    };
    let mut config = router_config(&registry_file, &db, port)?;
    config.lanes = story::LANES;
    config.policy.spill_wait_ms = story::SPILL_WAIT_MS;

    let sim = reroute_sim::spawn(sim_config(&config.registry, compression)?)
        .await
        .context("starting the simulated processors")?;
    config.registry = point_at(&config.registry, &sim)?;
    compress(&mut config, compression);
    let patience_ms = config.policy.patience_ms;
    let spill_wait_ms = config.policy.spill_wait_ms;
    let registry = config.registry.clone();

    let app = App::build(config).await.context("starting the router")?;
    let router_url = format!("http://127.0.0.1:{}", app.port());
    let stop = app.shutdown_token();
    let router = tokio::spawn(app.run_until_stopped());
    Ok(Stack {
        sim,
        registry,
        router_url,
        db,
        port_note,
        patience_ms,
        spill_wait_ms,
        router,
        stop,
        _dir: dir,
    })
}

impl Stack {
    /// Stops the router (in-flight requests finish, workers stop), then the
    /// processors; the temporary store is removed.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.stop.cancel();
        let served = self.router.await;
        self.sim.shutdown().await;
        served
            .context("the router task failed")?
            .context("the router stopped with an error")?;
        Ok(())
    }
}

fn port_is_free(port: u16) -> bool {
    TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).is_ok()
}

/// The router's configuration from the registry file, through the same code
/// as `reroute serve`, with the demo's routing patience.
fn router_config(
    registry_file: &std::path::Path,
    db: &std::path::Path,
    port: u16,
) -> anyhow::Result<ServeConfig> {
    let args = [
        "reroute".to_owned(),
        "--processors".to_owned(),
        registry_file.display().to_string(),
        "--db".to_owned(),
        db.display().to_string(),
        // The demo runs on its own embedded store, even where DATABASE_URL
        // names a PostgreSQL server.
        "--store".to_owned(),
        String::new(),
        "--host".to_owned(),
        "127.0.0.1".to_owned(),
        "--port".to_owned(),
        port.to_string(),
        "--patience-ms".to_owned(),
        story::PATIENCE_MS.to_string(),
    ];
    let args = ServeCommandLine::try_parse_from(args)
        .context("building the router's configuration")?
        .serve;
    args.into_config()
        .map_err(|e| anyhow::anyhow!("invalid router configuration: {e}"))
}

/// One simulated processor per registry entry, on a free port, behaving as
/// the story's profile says.
fn sim_config(registry: &Registry, compression: Compression) -> anyhow::Result<SimConfig> {
    let mut config = SimConfig::rinha_on_free_ports();
    config.processors = registry
        .by_fee()
        .iter()
        .map(|p| {
            let profile = story::profile(p.id.as_str()).with_context(|| {
                format!(
                    "the registry declares {}, which the demo's story does not know",
                    p.id
                )
            })?;
            let fee = reroute_sim::FeeRate::new(u64::from(p.fee.ppm()), 6)
                .map_err(|e| anyhow::anyhow!("fee of {}: {e}", p.id))?;
            let mut spec = ProcessorSpec::new(p.id.as_str(), 0, fee);
            spec.name = p.name.clone();
            spec.countries = p.countries.clone();
            spec.payment_methods = p.payment_methods.clone();
            spec.faults = profile.faults(0.0, None, compression.speed());
            Ok(spec)
        })
        .collect::<anyhow::Result<_>>()?;
    // The processors' health-check rate limit, compressed like the router's
    // probe interval so that probes stay within it.
    config.health_window = compression.wall(5_000);
    Ok(config)
}

/// The registry with every URL pointing at its simulated processor.
fn point_at(registry: &Registry, sim: &Sim) -> anyhow::Result<Registry> {
    let processors: Vec<Processor> = registry
        .by_fee()
        .iter()
        .map(|p| Processor {
            url: Some(sim.url(p.id.as_str())),
            ..p.clone()
        })
        .collect();
    Registry::new(processors).context("the registry with the simulators' URLs")
}

/// Divides every time constant of the router by the speed (see
/// [`crate::clock`]): patience, spill wait, health window age, trial
/// interval and flapping hold and span, circuit backoff, probe interval, the
/// backlog's wait past which a lane grows. The processor timeout stays as
/// it is: it only bounds calls that hang, and the story injects none (its
/// slowest answer, 2 s, is within it at any speed).
///
/// The adaptive limit's own clock (how long it remembers a cut, how far
/// back it looks for the latency floor) is not configurable and stays in
/// wall time: played faster, it remembers more story seconds (a cut counts
/// for longer), which changes little of what the slow act shows.
pub fn compress(config: &mut ServeConfig, compression: Compression) {
    config.policy.patience_ms = compression.wall_ms(config.policy.patience_ms);
    config.policy.spill_wait_ms = u64::try_from(
        compression.wall_ms(i64::try_from(config.policy.spill_wait_ms).unwrap_or(i64::MAX)),
    )
    .unwrap_or(u64::MAX);
    config.health.window_age_ms = compression.wall_ms(config.health.window_age_ms);
    config.health.trial_interval_ms = compression.wall_ms(config.health.trial_interval_ms);
    // 0 turns the flapping damper off, and stays 0.
    if config.health.flap_hold_ms > 0 {
        config.health.flap_hold_ms = compression.wall_ms(config.health.flap_hold_ms);
    }
    config.health.flap_span_ms = compression.wall_ms(config.health.flap_span_ms);
    config.lanes.grow_after_wait_ms =
        u32::try_from(compression.wall_ms(i64::from(config.lanes.grow_after_wait_ms)))
            .unwrap_or(u32::MAX);
    config.circuit.base_backoff_ms = compression.wall_ms(config.circuit.base_backoff_ms);
    config.circuit.max_backoff_ms = compression.wall_ms(config.circuit.max_backoff_ms);
    config.health_interval =
        compression.wall(i64::try_from(config.health_interval.as_millis()).unwrap_or(i64::MAX));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn techcart(port: u16) -> (tempfile::TempDir, ServeConfig) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("techcart.toml");
        std::fs::write(&file, TECHCART_TOML).unwrap();
        let config = router_config(&file, &dir.path().join("db"), port).unwrap();
        (dir, config)
    }

    #[test]
    fn the_router_reads_the_shipped_techcart_registry_with_a_short_patience() {
        let (_dir, config) = techcart(0);
        let ids: Vec<_> = config
            .registry
            .by_fee()
            .iter()
            .map(|p| p.id.to_string())
            .collect();
        // The story's five processors (its own test names them): each one
        // the registry declares is one the story has a profile for.
        assert_eq!(ids.len(), 5);
        for id in &ids {
            assert!(story::profile(id).is_some(), "{id} is not in the story");
        }
        assert_eq!(config.policy.patience_ms, story::PATIENCE_MS);
        assert_eq!(config.listen.port(), 0);
    }

    #[test]
    fn every_simulated_processor_mirrors_its_registry_entry() {
        let (_dir, config) = techcart(0);
        let sim = sim_config(&config.registry, Compression::new(10).unwrap()).unwrap();
        assert_eq!(sim.processors.len(), config.registry.len());
        for (spec, p) in sim.processors.iter().zip(config.registry.by_fee()) {
            assert_eq!(spec.id, p.id.as_str());
            assert_eq!(spec.name, p.name);
            assert_eq!(spec.countries, p.countries);
            assert_eq!(spec.payment_methods, p.payment_methods);
            assert!((spec.fee.as_f64() - p.fee.as_fraction()).abs() < 1e-12);
            assert_eq!(spec.port, 0);
            assert!(spec.faults.decline_rate > 0.0);
        }
        assert_eq!(sim.health_window, std::time::Duration::from_millis(500));
        sim.validate().unwrap();
    }

    #[test]
    fn compression_divides_every_router_time_constant() {
        let (_dir, mut config) = techcart(0);
        let before = config.clone();
        compress(&mut config, Compression::new(10).unwrap());
        assert_eq!(config.policy.patience_ms, before.policy.patience_ms / 10);
        assert_eq!(
            config.policy.spill_wait_ms,
            before.policy.spill_wait_ms / 10
        );
        assert_eq!(
            config.health.window_age_ms,
            before.health.window_age_ms / 10
        );
        assert_eq!(
            config.health.trial_interval_ms,
            before.health.trial_interval_ms / 10
        );
        assert_eq!(config.health.flap_hold_ms, before.health.flap_hold_ms / 10);
        assert_eq!(config.health.flap_span_ms, before.health.flap_span_ms / 10);
        assert_eq!(
            config.lanes.grow_after_wait_ms,
            before.lanes.grow_after_wait_ms / 10
        );
        assert_eq!(
            config.circuit.max_backoff_ms,
            before.circuit.max_backoff_ms / 10
        );
        assert_eq!(config.health_interval, before.health_interval / 10);
        assert_eq!(config.processor_timeout, before.processor_timeout);
    }
}
