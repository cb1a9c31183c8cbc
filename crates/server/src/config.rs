//! The router's configuration: one typed struct, read once from flags,
//! environment and (optionally) a registry file, validated before anything
//! starts.
//!
//! The registry file (`--processors FILE`, TOML) declares the processors and,
//! in an optional `[health]` table, the health engine's settings; the format
//! is in `docs/intelligence.md` and `config/*.toml` are examples. Without a
//! file the registry is the Rinha pair and the engine runs on the seed's
//! defaults. The `--health-*` flags override the file.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use reroute_core::{
    CircuitConfig, FeeRate, HealthConfig, Policy, Processor, ProcessorId, Registry,
};

/// `reroute serve` flags; every one can also come from the environment.
const DEFAULT_PORT: u16 = 9999;
const DEFAULT_URL: &str = "http://127.0.0.1:8001";
const FALLBACK_URL: &str = "http://127.0.0.1:8002";

#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Port of the payments API [default: 9999; env alias: SERVER_PORT].
    #[arg(long, env = "APP_PORT")]
    pub port: Option<u16>,

    #[arg(long = "server-port", env = "SERVER_PORT", hide = true)]
    pub server_port: Option<u16>,

    /// Address to listen on.
    #[arg(long, env = "REROUTE_HOST", default_value_t = IpAddr::V4(Ipv4Addr::UNSPECIFIED))]
    pub host: IpAddr,

    /// The embedded store's database file (created if missing).
    #[arg(long, env = "REROUTE_DB", default_value = "reroute.db")]
    pub db: PathBuf,

    /// Base URL of the `default` processor (fee 5%) [default:
    /// http://127.0.0.1:8001; env alias: PROCESSOR_DEFAULT_URL].
    #[arg(long, env = "DEFAULT_PROCESSOR_URL")]
    pub default_url: Option<String>,

    #[arg(
        long = "processor-default-url",
        env = "PROCESSOR_DEFAULT_URL",
        hide = true
    )]
    pub processor_default_url: Option<String>,

    /// Base URL of the `fallback` processor (fee 15%) [default:
    /// http://127.0.0.1:8002; env alias: PROCESSOR_FALLBACK_URL].
    #[arg(long, env = "FALLBACK_PROCESSOR_URL")]
    pub fallback_url: Option<String>,

    #[arg(
        long = "processor-fallback-url",
        env = "PROCESSOR_FALLBACK_URL",
        hide = true
    )]
    pub processor_fallback_url: Option<String>,

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

    /// Token required by the admin and operator endpoints: POST
    /// /purge-payments and the dashboard's data (header `X-Rinha-Token` or
    /// `Authorization: Bearer`). Unset: they are open.
    #[arg(long, env = "REROUTE_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// A shared PostgreSQL store (`postgres://user@host/db`) for running
    /// several instances; unset: the embedded store at --db.
    #[arg(long = "store", env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// This instance's name among several (host name by default).
    #[arg(long, env = "REROUTE_INSTANCE")]
    pub instance: Option<String>,

    /// Another instance of the cluster (`http://host:port`; repeat the flag,
    /// or comma-separate in the variable) when every instance keeps its own
    /// embedded store: GET /payments-summary adds their totals to this
    /// instance's. Not with --store: PostgreSQL is shared already.
    #[arg(long = "peer", env = "REROUTE_PEERS", value_delimiter = ',')]
    pub peers: Vec<String>,

    /// Whether this instance calls the processors' health endpoints. With
    /// embedded stores and --peer, let exactly one instance probe (the
    /// processors allow one call per interval from everyone together); the
    /// others route on their own payments' outcomes.
    #[arg(long, env = "REROUTE_PROBES", default_value_t = true, action = clap::ArgAction::Set)]
    pub probes: bool,

    /// How long an instance holds a payment without renewing its lease,
    /// in ms (PostgreSQL store). Another instance takes over the payments of
    /// an instance that died once their lease has run out.
    #[arg(long, env = "REROUTE_LEASE_MS", default_value_t = 10_000)]
    pub lease_ms: u64,

    /// Consecutive failures that take a processor out of rotation.
    #[arg(long, env = "REROUTE_TRIP_AFTER", default_value_t = 3)]
    pub trip_after: u32,

    /// Registry file (TOML): the processors (id, name, url, fee, countries,
    /// payment methods) and optional `[health]` settings. Without it: the
    /// Rinha pair at DEFAULT_PROCESSOR_URL and FALLBACK_PROCESSOR_URL.
    #[arg(long, env = "REROUTE_PROCESSORS")]
    pub processors: Option<PathBuf>,

    /// Transactions in a health window [default: 50, or the file's].
    #[arg(long, env = "REROUTE_HEALTH_WINDOW_SIZE")]
    pub health_window_size: Option<usize>,

    /// Oldest transaction a health window counts, in ms [default: 600000].
    #[arg(long, env = "REROUTE_HEALTH_WINDOW_AGE_MS")]
    pub health_window_age_ms: Option<u64>,

    /// Transactions a window needs before its status may change [default: 10].
    #[arg(long, env = "REROUTE_HEALTH_MIN_TRANSACTIONS")]
    pub health_min_transactions: Option<u32>,

    /// Interval between trial payments to a DOWN segment, in ms [default: 1000].
    #[arg(long, env = "REROUTE_HEALTH_TRIAL_INTERVAL_MS")]
    pub health_trial_interval_ms: Option<u64>,
}

/// The validated configuration [`crate::App::build`] runs with.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub store: StoreChoice,
    /// This instance's name (logs, leases).
    pub instance: String,
    pub registry: Registry,
    /// The health engine's settings (validated).
    pub health: HealthConfig,
    pub policy: Policy,
    pub circuit: CircuitConfig,
    pub processor_timeout: Duration,
    pub health_interval: Duration,
    pub workers: usize,
    pub admin_token: Option<String>,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// The other instances, each with its own embedded store.
    pub peers: Vec<String>,
    /// Whether this instance probes the processors' health endpoints.
    pub probes: bool,
}

/// Where payments are kept.
#[derive(Debug, Clone)]
pub enum StoreChoice {
    /// SQLite in this file: one instance.
    Embedded(PathBuf),
    /// A PostgreSQL database shared by every instance.
    Postgres { url: String, lease: Duration },
}

impl ServeConfig {
    /// The effective configuration as TOML-like text, secrets masked: what
    /// `reroute config` prints.
    pub fn render_masked(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let secret = |s: &Option<String>| match s {
            Some(_) => "\"********\"".to_owned(),
            None => "\"\" # unset: open".to_owned(),
        };
        let h = &self.health;
        let _ = writeln!(out, "listen = \"{}\"", self.listen);
        match &self.store {
            StoreChoice::Embedded(path) => {
                let _ = writeln!(out, "store = \"embedded\"\ndb = \"{}\"", path.display());
            }
            StoreChoice::Postgres { url, lease } => {
                let _ = writeln!(out, "store = \"{}\"", mask_url_password(url));
                let _ = writeln!(out, "lease_ms = {}", lease.as_millis());
            }
        }
        let _ = writeln!(out, "instance = \"{}\"", self.instance);
        let _ = writeln!(out, "patience_ms = {}", self.policy.patience_ms);
        let _ = writeln!(
            out,
            "processor_timeout_ms = {}",
            self.processor_timeout.as_millis()
        );
        let _ = writeln!(
            out,
            "health_interval_ms = {}",
            self.health_interval.as_millis()
        );
        let _ = writeln!(out, "workers = {}", self.workers);
        let _ = writeln!(out, "trip_after = {}", self.circuit.trip_after);
        let _ = writeln!(out, "max_body_bytes = {}", self.max_body_bytes);
        let _ = writeln!(out, "admin_token = {}", secret(&self.admin_token));
        let _ = writeln!(
            out,
            "\n# health engine settings (set in the [health] table of --processors):"
        );
        for line in format!("{h:#?}").lines() {
            let _ = writeln!(out, "#   {line}");
        }
        for p in self.registry.by_fee() {
            let _ = writeln!(out, "\n[[processors]]");
            let _ = writeln!(out, "id = \"{}\"\nname = \"{}\"", p.id, p.name);
            match &p.url {
                Some(url) => {
                    let _ = writeln!(out, "url = \"{}\"", mask_url_password(url));
                }
                None => {
                    let _ = writeln!(out, "# no url: advisory only");
                }
            }
            let _ = writeln!(out, "fee = {}", p.fee.as_fraction());
            let _ = writeln!(
                out,
                "countries = {:?}\npayment_methods = {:?}",
                p.countries, p.payment_methods
            );
        }
        out
    }
}

/// `http://user:secret@host` -> `http://user:****@host`.
fn mask_url_password(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:****{}",
                    &url[..scheme + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
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
        // The seeds' names are honoured: the first of each pair wins.
        let default_url = self
            .default_url
            .as_deref()
            .or(self.processor_default_url.as_deref());
        let default_url = check_url("DEFAULT_PROCESSOR_URL", default_url.unwrap_or(DEFAULT_URL))?;
        let fallback_url = self
            .fallback_url
            .as_deref()
            .or(self.processor_fallback_url.as_deref());
        let fallback_url = check_url(
            "FALLBACK_PROCESSOR_URL",
            fallback_url.unwrap_or(FALLBACK_URL),
        )?;
        let port = self.port.or(self.server_port).unwrap_or(DEFAULT_PORT);
        if self.lease_ms < 1_000 {
            return Err(invalid("REROUTE_LEASE_MS", "must be at least 1000 ms"));
        }
        let store = match self.database_url.as_deref().map(str::trim) {
            None | Some("") => StoreChoice::Embedded(self.db.clone()),
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                StoreChoice::Postgres {
                    url: url.to_owned(),
                    lease: Duration::from_millis(self.lease_ms),
                }
            }
            Some(_) => {
                return Err(invalid(
                    "DATABASE_URL",
                    "must be a postgres:// or postgresql:// URL",
                ));
            }
        };
        let instance = match self.instance.clone() {
            Some(name) if !name.trim().is_empty() => name,
            Some(_) => return Err(invalid("REROUTE_INSTANCE", "must not be empty when set")),
            None => std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "reroute".to_owned()),
        };
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
        let peers: Vec<String> = self
            .peers
            .iter()
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty())
            .collect();
        if let Some(bad) = peers
            .iter()
            .find(|p| !p.starts_with("http://") || p.parse::<hyper::Uri>().is_err())
        {
            return Err(invalid(
                "REROUTE_PEERS",
                format!("{bad:?} must be an http:// URL"),
            ));
        }
        if !peers.is_empty() && matches!(store, StoreChoice::Postgres { .. }) {
            return Err(invalid(
                "REROUTE_PEERS",
                "peers are for instances with their own embedded stores; with --store every instance reads the shared ledger",
            ));
        }
        let file = match &self.processors {
            Some(path) => RegistryFile::load(path)?,
            None => RegistryFile::default(),
        };
        let health = self.health_config(file.health)?;
        let registry = if file.processors.is_empty() {
            Registry::rinha(&default_url, &fallback_url)
        } else {
            file.registry()?
        };
        Ok(ServeConfig {
            listen: SocketAddr::new(self.host, port),
            store,
            instance,
            registry,
            health,
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
            peers,
            probes: self.probes,
        })
    }
}

impl ServeArgs {
    /// The file's `[health]` settings with the flags on top, validated.
    fn health_config(&self, mut health: HealthConfig) -> Result<HealthConfig, ConfigError> {
        if let Some(n) = self.health_window_size {
            if !(1..=100_000).contains(&n) {
                return Err(invalid(
                    "REROUTE_HEALTH_WINDOW_SIZE",
                    "must be between 1 and 100000",
                ));
            }
            health.window_size = n;
        }
        if let Some(ms) = self.health_window_age_ms {
            health.window_age_ms = i64::try_from(ms)
                .ok()
                .filter(|ms| *ms >= 1)
                .ok_or_else(|| invalid("REROUTE_HEALTH_WINDOW_AGE_MS", "must be at least 1 ms"))?;
        }
        if let Some(n) = self.health_min_transactions {
            health.min_transactions = n;
        }
        if let Some(ms) = self.health_trial_interval_ms {
            health.trial_interval_ms =
                i64::try_from(ms)
                    .ok()
                    .filter(|ms| *ms >= 1)
                    .ok_or_else(|| {
                        invalid("REROUTE_HEALTH_TRIAL_INTERVAL_MS", "must be at least 1 ms")
                    })?;
        }
        // What is left to refuse came from the file.
        health
            .validate()
            .map_err(|e| invalid("REROUTE_PROCESSORS", e.to_string()))?;
        Ok(health)
    }
}

/// The registry file as written.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistryFile {
    #[serde(default)]
    processors: Vec<ProcessorEntry>,
    #[serde(default)]
    health: HealthConfig,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ProcessorEntry {
    id: String,
    name: Option<String>,
    url: Option<String>,
    fee: FeeText,
    #[serde(default)]
    countries: Vec<String>,
    #[serde(default)]
    payment_methods: Vec<String>,
}

/// A fee as a fraction: `0.029` or `"0.029"`.
#[derive(Debug, serde::Deserialize)]
#[serde(untagged)]
enum FeeText {
    Number(f64),
    Text(String),
}

const FILE_KEY: &str = "REROUTE_PROCESSORS";

impl RegistryFile {
    fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| invalid(FILE_KEY, format!("cannot read {}: {e}", path.display())))?;
        Self::parse(&text)
            .map_err(|problem| invalid(FILE_KEY, format!("{}: {problem}", path.display())))
    }

    fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.message().to_owned())
    }

    fn registry(&self) -> Result<Registry, ConfigError> {
        let fail = |problem: String| invalid(FILE_KEY, problem);
        let mut processors = Vec::with_capacity(self.processors.len());
        for p in &self.processors {
            let at = |field: &str| format!("processor {:?}: {field}", p.id);
            let fee = match &p.fee {
                FeeText::Number(f) => Some(*f),
                FeeText::Text(t) => t.trim().parse::<f64>().ok(),
            }
            .and_then(FeeRate::from_fraction)
            .ok_or_else(|| fail(format!("{} must be a fraction between 0 and 1", at("fee"))))?;
            let url = match &p.url {
                Some(url) => Some(
                    check_url(FILE_KEY, url).map_err(|e| fail(format!("{}: {e}", at("url"))))?,
                ),
                None => None,
            };
            if let Some(c) = p.countries.iter().find(|c| !is_country(c)) {
                return Err(fail(format!(
                    "{} {c:?} is not an ISO 3166-1 alpha-2 code",
                    at("countries")
                )));
            }
            if let Some(m) = p.payment_methods.iter().find(|m| !is_method(m)) {
                return Err(fail(format!(
                    "{} {m:?} must be 1-32 letters, digits, '_' or '-'",
                    at("payment_methods")
                )));
            }
            processors.push(Processor {
                id: ProcessorId::new(&p.id),
                name: p.name.clone().unwrap_or_else(|| p.id.clone()),
                url,
                fee,
                countries: p.countries.iter().map(|c| c.to_ascii_uppercase()).collect(),
                payment_methods: p
                    .payment_methods
                    .iter()
                    .map(|m| m.to_ascii_uppercase())
                    .collect(),
            });
        }
        Registry::new(processors).map_err(|e| fail(e.to_string()))
    }
}

/// A two-letter country code.
pub fn is_country(code: &str) -> bool {
    code.len() == 2 && code.bytes().all(|b| b.is_ascii_alphabetic())
}

/// A payment method name: 1-32 letters, digits, `_` or `-`.
pub fn is_method(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
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

    fn shipped(name: &str) -> String {
        format!("{}/../../config/{name}", env!("CARGO_MANIFEST_DIR"))
    }

    #[test]
    fn without_a_file_the_engine_runs_on_the_seed_defaults() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.health, HealthConfig::default());
    }

    #[test]
    fn the_techcart_file_declares_the_five_processors() {
        let c = parse(&["--processors", &shipped("techcart.toml")]).unwrap();
        let ids: Vec<_> = c
            .registry
            .by_fee()
            .iter()
            .map(|p| p.id.to_string())
            .collect();
        // Cheapest first.
        assert_eq!(
            ids,
            [
                "processor_c",
                "processor_a",
                "processor_e",
                "processor_d",
                "processor_b"
            ]
        );
        let a = c.registry.get("processor_a").unwrap();
        assert_eq!(a.name, "GlobalPay_BR");
        assert_eq!(a.countries, ["BR"]);
        assert_eq!(a.payment_methods, ["PIX", "CARD"]);
        assert_eq!(a.fee, FeeRate::from_ppm(29_000));
        assert!(a.supports(Some("pix"), Some("br")));
        let b = c.registry.get("processor_b").unwrap();
        assert_eq!(b.countries, ["BR", "MX", "CO"]);
        assert_eq!(c.health, HealthConfig::default());
    }

    #[test]
    fn the_rinha_file_is_the_built_in_pair() {
        let c = parse(&["--processors", &shipped("rinha.toml")]).unwrap();
        let built_in = parse(&[]).unwrap();
        let view = |r: &Registry| -> Vec<(String, Option<String>, u32)> {
            r.by_fee()
                .iter()
                .map(|p| (p.id.to_string(), p.url.clone(), p.fee.ppm()))
                .collect()
        };
        assert_eq!(view(&c.registry), view(&built_in.registry));
    }

    #[test]
    fn health_settings_come_from_the_file_then_the_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.toml");
        std::fs::write(
            &path,
            "[[processors]]\nid = \"a\"\nfee = \"0.02\"\n\n[health]\nwindow_size = 20\nmin_transactions = 5\n\n[health.thresholds]\ndown_error_above = 0.6\n",
        )
        .unwrap();
        let p = path.to_str().unwrap();
        let c = parse(&["--processors", p]).unwrap();
        assert_eq!(c.registry.by_fee()[0].url, None);
        assert_eq!(c.health.window_size, 20);
        assert_eq!(c.health.min_transactions, 5);
        assert_eq!(c.health.thresholds.down_error_above, 0.6);
        let c = parse(&["--processors", p, "--health-window-size", "30"]).unwrap();
        assert_eq!(c.health.window_size, 30);
        assert_eq!(c.health.min_transactions, 5);
    }

    #[test]
    fn a_file_with_only_health_settings_keeps_the_rinha_pair() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.toml");
        std::fs::write(&path, "[health]\nrecovery_dwell = 0\n").unwrap();
        let c = parse(&["--processors", path.to_str().unwrap()]).unwrap();
        assert_eq!(c.registry.len(), 2);
        assert_eq!(c.health.recovery_dwell, 0);
    }

    #[test]
    fn mistakes_in_the_registry_file_are_refused_with_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            (
                "[[processors]]\nid = \"a\"\nfee = 1.5\n",
                "fee must be a fraction",
            ),
            (
                "[[processors]]\nid = \"a\"\nfee = 0.1\nfees = 1\n",
                "unknown field",
            ),
            (
                "[[processors]]\nid = \"a b\"\nfee = 0.1\n",
                "not a valid id",
            ),
            (
                "[[processors]]\nid = \"a\"\nfee = 0.1\n[[processors]]\nid = \"a\"\nfee = 0.2\n",
                "declared twice",
            ),
            (
                "[[processors]]\nid = \"a\"\nfee = 0.1\nurl = \"ftp://x\"\n",
                "http://",
            ),
            (
                "[[processors]]\nid = \"a\"\nfee = 0.1\ncountries = [\"Brazil\"]\n",
                "alpha-2",
            ),
            (
                "[[processors]]\nid = \"a\"\nfee = 0.1\npayment_methods = [\"a b\"]\n",
                "letters, digits",
            ),
            ("[health]\nwindow_size = 0\n", "health.window_size"),
            ("[health]\nwindow = 5\n", "unknown field"),
            ("[[processors]]\nid = \"a\"\n", "missing field"),
        ];
        for (i, (text, want)) in cases.into_iter().enumerate() {
            let path = dir.path().join(format!("{i}.toml"));
            std::fs::write(&path, text).unwrap();
            let e = parse(&["--processors", path.to_str().unwrap()])
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("REROUTE_PROCESSORS:"), "{e}");
            assert!(e.contains(want), "{text:?}: {e}");
        }
        let e = parse(&["--processors", "/nonexistent/r.toml"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot read"), "{e}");
        let e = parse(&["--health-window-size", "0"])
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("REROUTE_HEALTH_WINDOW_SIZE:"), "{e}");
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
