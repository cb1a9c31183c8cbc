//! The router's configuration: one typed struct, read once from flags and
//! environment, validated before anything starts.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use reroute_core::{CircuitConfig, Policy, Registry};

/// `reroute serve` flags; every one can also come from the environment.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Port of the payments API.
    #[arg(long, env = "APP_PORT", default_value_t = 9999)]
    pub port: u16,

    /// Address to listen on.
    #[arg(long, env = "REROUTE_HOST", default_value_t = IpAddr::V4(Ipv4Addr::UNSPECIFIED))]
    pub host: IpAddr,

    /// The embedded store's database file (created if missing).
    #[arg(long, env = "REROUTE_DB", default_value = "reroute.db")]
    pub db: PathBuf,

    /// Base URL of the `default` processor (fee 5%).
    #[arg(
        long,
        env = "DEFAULT_PROCESSOR_URL",
        default_value = "http://127.0.0.1:8001"
    )]
    pub default_url: String,

    /// Base URL of the `fallback` processor (fee 15%).
    #[arg(
        long,
        env = "FALLBACK_PROCESSOR_URL",
        default_value = "http://127.0.0.1:8002"
    )]
    pub fallback_url: String,

    /// How long a payment may wait for a cheaper processor to recover before a
    /// pricier one is used, in milliseconds. The default outlasts the Rinha
    /// test's 20-second outage of `default`: waiting beats paying 3x the fee.
    #[arg(long, env = "REROUTE_PATIENCE_MS", default_value_t = 60_000)]
    pub patience_ms: u64,

    /// Timeout of every call to a processor (connect, send, answer), in ms.
    #[arg(long, env = "REQUEST_TIMEOUT", default_value_t = 5_000)]
    pub processor_timeout_ms: u64,

    /// Interval between two health probes of one processor, in ms. The
    /// processors allow one call per 5 s; going lower only earns 429s.
    #[arg(long, env = "HEALTH_CHECK_INTERVAL", default_value_t = 5_000)]
    pub health_interval_ms: u64,

    /// Payments worked on at once (each waits on its processor's answer).
    #[arg(long, env = "REROUTE_WORKERS", default_value_t = 128)]
    pub workers: usize,

    /// Token required by POST /purge-payments (header `X-Rinha-Token` or
    /// `Authorization: Bearer`). Unset: the endpoint is open.
    #[arg(long, env = "REROUTE_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// Consecutive failures that take a processor out of rotation.
    #[arg(long, env = "REROUTE_TRIP_AFTER", default_value_t = 3)]
    pub trip_after: u32,
}

/// The validated configuration [`crate::App::build`] runs with.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub db: PathBuf,
    pub registry: Registry,
    pub policy: Policy,
    pub circuit: CircuitConfig,
    pub processor_timeout: Duration,
    pub health_interval: Duration,
    pub workers: usize,
    pub admin_token: Option<String>,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{key}: {problem}")]
    Invalid { key: &'static str, problem: String },
}

fn invalid(key: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        problem: problem.into(),
    }
}

fn check_url(key: &'static str, url: &str) -> Result<String, ConfigError> {
    let trimmed = url.trim_end_matches('/');
    let uri: hyper::Uri = trimmed
        .parse()
        .map_err(|e| invalid(key, format!("{url:?} is not a URL: {e}")))?;
    if uri.scheme_str() != Some("http") || uri.host().is_none() {
        return Err(invalid(
            key,
            format!("{url:?} must be an http:// URL with a host"),
        ));
    }
    Ok(trimmed.to_owned())
}

impl ServeArgs {
    pub fn into_config(self) -> Result<ServeConfig, ConfigError> {
        let default_url = check_url("DEFAULT_PROCESSOR_URL", &self.default_url)?;
        let fallback_url = check_url("FALLBACK_PROCESSOR_URL", &self.fallback_url)?;
        if self.workers == 0 {
            return Err(invalid("REROUTE_WORKERS", "must be at least 1"));
        }
        if self.processor_timeout_ms == 0 {
            return Err(invalid("REQUEST_TIMEOUT", "must be at least 1 ms"));
        }
        if self.health_interval_ms == 0 {
            return Err(invalid("HEALTH_CHECK_INTERVAL", "must be at least 1 ms"));
        }
        if self.trip_after == 0 {
            return Err(invalid("REROUTE_TRIP_AFTER", "must be at least 1"));
        }
        if self.admin_token.as_deref() == Some("") {
            return Err(invalid("REROUTE_ADMIN_TOKEN", "must not be empty when set"));
        }
        Ok(ServeConfig {
            listen: SocketAddr::new(self.host, self.port),
            db: self.db,
            registry: Registry::rinha(&default_url, &fallback_url),
            policy: Policy {
                patience_ms: i64::try_from(self.patience_ms).unwrap_or(i64::MAX),
            },
            circuit: CircuitConfig {
                trip_after: self.trip_after,
                ..CircuitConfig::default()
            },
            processor_timeout: Duration::from_millis(self.processor_timeout_ms),
            health_interval: Duration::from_millis(self.health_interval_ms),
            workers: self.workers,
            admin_token: self.admin_token,
            max_body_bytes: 16 * 1024,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    fn parse(args: &[&str]) -> Result<ServeConfig, ConfigError> {
        let mut argv = vec!["reroute"];
        argv.extend_from_slice(args);
        Cli::parse_from(argv).serve.into_config()
    }

    #[test]
    fn defaults_suit_the_rinha_topology() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.listen.port(), 9999);
        let ids: Vec<_> = c
            .registry
            .by_fee()
            .iter()
            .map(|p| p.id.to_string())
            .collect();
        assert_eq!(ids, ["default", "fallback"]);
        assert_eq!(
            c.registry.by_fee()[0].url.as_deref(),
            Some("http://127.0.0.1:8001")
        );
        assert_eq!(c.policy.patience_ms, 60_000);
    }

    #[test]
    fn invalid_values_name_the_key() {
        let e = parse(&["--default-url", "ftp://x"])
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("DEFAULT_PROCESSOR_URL:"), "{e}");
        let e = parse(&["--workers", "0"]).unwrap_err().to_string();
        assert!(e.starts_with("REROUTE_WORKERS:"), "{e}");
    }

    #[test]
    fn trailing_slashes_are_trimmed_from_urls() {
        let c = parse(&["--fallback-url", "http://fallback:8080/"]).unwrap();
        assert_eq!(
            c.registry.get("fallback").unwrap().url.as_deref(),
            Some("http://fallback:8080")
        );
    }
}
