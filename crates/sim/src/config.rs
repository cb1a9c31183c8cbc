//! What the simulator runs: which processors, on which ports, with which fees
//! and faults.
//!
//! [`SimConfig::rinha`] is the Rinha de Backend pair, exact. Anything else
//! (the five TechCart processors, a demo's outage script) comes from a TOML
//! file read by [`SimConfig::from_toml_file`]; the format is documented in
//! `docs/sim.md`. The config is validated once, here, before anything binds.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use serde::Deserialize;

use crate::faults::{Faults, ScheduleStep, validate_schedule};
use crate::fee::FeeRate;

/// The whole simulator: every processor and the settings they share.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub processors: Vec<ProcessorSpec>,
    /// The initial `X-Rinha-Token` of every processor (each can change its
    /// own with `PUT /admin/configurations/token`).
    pub token: String,
    /// The health endpoint's fixed window (one call per window).
    pub health_window: std::time::Duration,
    /// The address every processor listens on.
    pub host: std::net::IpAddr,
    /// Health calls that may wait for a later window; beyond them, 429.
    pub health_queue: usize,
    /// `POST /payments` requests processed at once per processor.
    pub max_in_flight: usize,
    /// `POST /payments` requests waiting for a place; beyond them, 429.
    pub max_queued: usize,
}

/// One simulated processor.
#[derive(Debug, Clone)]
pub struct ProcessorSpec {
    /// The identifier the router's registry uses (`default`, `processor_a`).
    pub id: String,
    /// A human name (`GlobalPay_BR`).
    pub name: String,
    /// 0 picks a free port (see [`crate::Sim::addr`]).
    pub port: u16,
    /// Fee per transaction as a fraction of the amount (`0.05` = 5%).
    pub fee: FeeRate,
    /// Countries served (ISO codes); empty means any. A payment naming
    /// another country is declined.
    pub countries: Vec<String>,
    /// Payment methods served (`PIX`, `CARD`); empty means any. A payment
    /// naming another method is declined.
    pub payment_methods: Vec<String>,
    /// Injected faults at start-up (off by default).
    pub faults: Faults,
    /// Timed changes of settings, counted from start-up.
    pub schedule: Vec<ScheduleStep>,
    /// The Rinha delay at start-up, in milliseconds.
    pub delay_ms: i64,
    /// The Rinha failure flag at start-up.
    pub failure: bool,
}

impl ProcessorSpec {
    /// A processor that serves everything, with no faults.
    pub fn new(id: impl Into<String>, port: u16, fee: FeeRate) -> Self {
        let id = id.into();
        Self {
            name: id.clone(),
            id,
            port,
            fee,
            countries: Vec::new(),
            payment_methods: Vec::new(),
            faults: Faults::default(),
            schedule: Vec::new(),
            delay_ms: 0,
            failure: false,
        }
    }
}

/// The reference processor's numbers.
pub mod defaults {
    use std::time::Duration;

    pub const TOKEN: &str = "123";
    pub const HEALTH_WINDOW: Duration = Duration::from_secs(5);
    pub const HEALTH_QUEUE: usize = 2;
    pub const MAX_IN_FLIGHT: usize = 800;
    pub const MAX_QUEUED: usize = 500;
    pub const DEFAULT_PORT: u16 = 8001;
    pub const FALLBACK_PORT: u16 = 8002;
    pub const DEFAULT_FEE: &str = "0.05";
    pub const FALLBACK_FEE: &str = "0.15";
}

impl SimConfig {
    /// The Rinha pair: `default` (fee 0.05) on 8001 and `fallback` (fee 0.15)
    /// on 8002, token `123`, health limit one call per 5 s, on 127.0.0.1.
    pub fn rinha() -> Self {
        let fee = |text: &str| text.parse().expect("the Rinha fees are valid");
        Self {
            processors: vec![
                ProcessorSpec::new(
                    "default",
                    defaults::DEFAULT_PORT,
                    fee(defaults::DEFAULT_FEE),
                ),
                ProcessorSpec::new(
                    "fallback",
                    defaults::FALLBACK_PORT,
                    fee(defaults::FALLBACK_FEE),
                ),
            ],
            token: defaults::TOKEN.to_owned(),
            health_window: defaults::HEALTH_WINDOW,
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            health_queue: defaults::HEALTH_QUEUE,
            max_in_flight: defaults::MAX_IN_FLIGHT,
            max_queued: defaults::MAX_QUEUED,
        }
    }

    /// [`SimConfig::rinha`] on free ports, for tests.
    pub fn rinha_on_free_ports() -> Self {
        let mut config = Self::rinha();
        for processor in &mut config.processors {
            processor.port = 0;
        }
        config
    }

    /// Reads a TOML file (format in `docs/sim.md`) and validates it.
    pub fn from_toml_file(path: impl AsRef<Path>) -> anyhow::Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading simulator config {}", path.display()))?;
        Self::from_toml_str(&text)
            .with_context(|| format!("in simulator config {}", path.display()))
    }

    /// Parses and validates TOML text; missing settings take the Rinha values.
    pub fn from_toml_str(text: &str) -> anyhow::Result<Self> {
        let file: FileConfig = toml::from_str(text)?;
        let config = file.into_config();
        config.validate()?;
        Ok(config)
    }

    /// Checks what would otherwise fail later or behave surprisingly.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            !self.processors.is_empty(),
            "no processors: declare at least one [[processors]]"
        );
        anyhow::ensure!(
            !self.health_window.is_zero(),
            "health window must be positive"
        );
        anyhow::ensure!(self.max_in_flight > 0, "max_in_flight must be at least 1");
        let mut ids = HashSet::new();
        let mut ports = HashSet::new();
        for p in &self.processors {
            anyhow::ensure!(
                !p.id.is_empty()
                    && p.id
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
                "processor id {:?} must be letters, digits, '_' or '-'",
                p.id
            );
            anyhow::ensure!(
                ids.insert(p.id.as_str()),
                "processor id {:?} is declared twice",
                p.id
            );
            anyhow::ensure!(
                p.port == 0 || ports.insert(p.port),
                "port {} is used by two processors",
                p.port
            );
            p.faults
                .validate()
                .with_context(|| format!("processor {:?} faults", p.id))?;
            validate_schedule(&p.schedule)
                .with_context(|| format!("processor {:?} schedule", p.id))?;
        }
        Ok(())
    }
}

/// The TOML file, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    token: Option<String>,
    host: Option<IpAddr>,
    health_window_ms: Option<u64>,
    health_queue: Option<usize>,
    max_in_flight: Option<usize>,
    max_queued: Option<usize>,
    #[serde(default)]
    processors: Vec<FileProcessor>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileProcessor {
    id: String,
    name: Option<String>,
    port: u16,
    fee: FeeRate,
    #[serde(default)]
    countries: Vec<String>,
    #[serde(default)]
    payment_methods: Vec<String>,
    #[serde(default)]
    faults: Faults,
    #[serde(default)]
    schedule: Vec<ScheduleStep>,
    #[serde(default)]
    delay: i64,
    #[serde(default)]
    failure: bool,
}

impl FileConfig {
    fn into_config(self) -> SimConfig {
        let rinha = SimConfig::rinha();
        SimConfig {
            processors: self
                .processors
                .into_iter()
                .map(|p| ProcessorSpec {
                    name: p.name.unwrap_or_else(|| p.id.clone()),
                    id: p.id,
                    port: p.port,
                    fee: p.fee,
                    countries: p.countries,
                    payment_methods: p.payment_methods,
                    faults: p.faults,
                    schedule: p.schedule,
                    delay_ms: p.delay,
                    failure: p.failure,
                })
                .collect(),
            token: self.token.unwrap_or(rinha.token),
            health_window: self
                .health_window_ms
                .map(Duration::from_millis)
                .unwrap_or(rinha.health_window),
            host: self.host.unwrap_or(rinha.host),
            health_queue: self.health_queue.unwrap_or(rinha.health_queue),
            max_in_flight: self.max_in_flight.unwrap_or(rinha.max_in_flight),
            max_queued: self.max_queued.unwrap_or(rinha.max_queued),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rinha_pair_is_default_and_fallback() {
        let config = SimConfig::rinha();
        config.validate().unwrap();
        let summary: Vec<_> = config
            .processors
            .iter()
            .map(|p| (p.id.as_str(), p.port, p.fee.to_string()))
            .collect();
        assert_eq!(
            summary,
            [
                ("default", 8001, "0.05".into()),
                ("fallback", 8002, "0.15".into())
            ]
        );
        assert_eq!(config.token, "123");
        assert_eq!(config.health_window, Duration::from_secs(5));
        assert_eq!(
            (config.max_in_flight, config.max_queued, config.health_queue),
            (800, 500, 2)
        );
    }

    #[test]
    fn a_toml_file_declares_any_number_of_processors() {
        let config = SimConfig::from_toml_str(
            r#"
            token = "secret"
            health_window_ms = 250

            [[processors]]
            id = "processor_a"
            name = "GlobalPay_BR"
            port = 0
            fee = 0.029
            countries = ["BR"]
            payment_methods = ["PIX", "CARD"]
            faults = { decline_rate = 0.25, latency_ms = 40, jitter_ms = 30 }

            [[processors.schedule]]
            after_ms = 30000
            settings = { error_rate = 0.9 }

            [[processors]]
            id = "processor_b"
            port = 0
            fee = "0.035"
            delay = 100
            failure = true
            faults = { throttle_rate = 0.5 }
            "#,
        )
        .unwrap();
        assert_eq!(config.token, "secret");
        assert_eq!(config.health_window, Duration::from_millis(250));
        let a = &config.processors[0];
        assert_eq!(
            (a.name.as_str(), a.fee.to_string()),
            ("GlobalPay_BR", "0.029".into())
        );
        assert_eq!(a.payment_methods, ["PIX", "CARD"]);
        assert_eq!(a.faults.decline_rate, 0.25);
        assert_eq!(a.schedule[0].settings.unwrap().error_rate, 0.9);
        let b = &config.processors[1];
        assert_eq!(
            (b.name.as_str(), b.delay_ms, b.failure),
            ("processor_b", 100, true)
        );
        assert_eq!(b.faults.throttle_rate, 0.5);
    }

    #[test]
    fn mistakes_in_a_toml_file_are_refused_with_a_reason() {
        let cases = [
            ("", "no processors"),
            (
                "[[processors]]\nid = \"a\"\nport = 1\nfee = 2.0",
                "between 0 and 1",
            ),
            (
                "[[processors]]\nid = \"a\"\nport = 1\nfee = 0.1\nfeee = 1",
                "unknown field",
            ),
            (
                "[[processors]]\nid = \"a\"\nport = 1\nfee = 0.1\n[[processors]]\nid = \"a\"\nport = 2\nfee = 0.1",
                "declared twice",
            ),
            (
                "[[processors]]\nid = \"a\"\nport = 1\nfee = 0.1\n[[processors]]\nid = \"b\"\nport = 1\nfee = 0.1",
                "two processors",
            ),
            (
                "[[processors]]\nid = \"a\"\nport = 1\nfee = 0.1\nfaults = { error_rate = 0.8, decline_rate = 0.8 }",
                "must not exceed 1",
            ),
            (
                "[[processors]]\nid = \"a\"\nport = 1\nfee = 0.1\nfaults = { throttle_rate = 0.5, error_rate = 0.6 }",
                "must not exceed 1",
            ),
            (
                "[[processors]]\nid = \"a b\"\nport = 1\nfee = 0.1",
                "letters, digits",
            ),
        ];
        for (text, reason) in cases {
            let err = format!("{:#}", SimConfig::from_toml_str(text).unwrap_err());
            assert!(err.contains(reason), "{text:?}: {err}");
        }
    }
}
