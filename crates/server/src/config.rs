//! The router's configuration: one typed struct, [`ServeConfig`], built once
//! from four layers and validated before anything starts. For each setting
//! the first layer that has it wins:
//!
//! 1. its command-line flag (`--port 8080`);
//! 2. its environment variable (`APP_PORT=8080`; the seeds' names where they
//!    have one);
//! 3. the configuration file, `--config FILE` (env `REROUTE_CONFIG`): TOML
//!    whose keys are the flags' names in snake_case, grouped in tables
//!    (`[server] port = 8080`); `config/reroute.example.toml` lists them all;
//! 4. the built-in default.
//!
//! Clap reads layers 1 and 2 into [`ServeArgs`], whose fields stay `None`
//! when neither has the setting (no clap defaults: a default would hide the
//! file). [`ServeArgs::resolve`] lays the file under them and the defaults
//! under that, and records each value's [`Origin`] for `reroute config`.
//! An invalid value is refused with the name of the place it came from: the
//! flag, the variable, or the file and its key.
//!
//! A second, older file stays separate: the registry (`--processors FILE`,
//! TOML) declares the processors and, in an optional `[health]` table, the
//! health engine's settings; the format is in `docs/intelligence.md` and
//! `config/techcart.toml` is an example. Without one the registry is the
//! Rinha pair and the engine runs on the seed's defaults; the `--health-*`
//! settings override its `[health]` table.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::ArgMatches;
use clap::parser::ValueSource;
use reroute_core::{
    CircuitConfig, FeeRate, HealthConfig, LimitConfig, Policy, Processor, ProcessorId, Registry,
};

use reroute_store::Durability;

use crate::telemetry::{LogFormat, OtlpConfig, TelemetryConfig};

const DEFAULT_PORT: u16 = 9999;
const DEFAULT_URL: &str = "http://127.0.0.1:8001";
const FALLBACK_URL: &str = "http://127.0.0.1:8002";
const DEFAULT_DB: &str = "reroute.db";
const DEFAULT_PATIENCE_MS: u64 = 60_000;
const DEFAULT_PROCESSOR_TIMEOUT_MS: u64 = 5_000;
const DEFAULT_LANDING_MARGIN_MS: u64 = 2_000;
const DEFAULT_SPILL_WAIT_MS: u64 = 1_000;
/// The largest request body, in bytes (fixed; an edge applies it too).
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// The longest a request body may take to arrive whole (fixed; an edge
/// applies it too).
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_MAX_IN_FLIGHT: u32 = 1_000;
/// Where a processor's limit starts, and the least it keeps.
const DEFAULT_INITIAL_IN_FLIGHT: u32 = 128;
const MIN_IN_FLIGHT: u32 = 8;
const DEFAULT_HEALTH_INTERVAL_MS: u64 = 5_000;
const DEFAULT_WORKERS: usize = 128;
const DEFAULT_LEASE_MS: u64 = 10_000;
const DEFAULT_TRIP_AFTER: u32 = 3;
const DEFAULT_SERVICE_NAME: &str = "reroute";

/// `reroute serve`'s flags. Every one can also come from its environment
/// variable or from the `--config` file; a field is `None` when neither the
/// command line nor the environment has it.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServeArgs {
    /// Configuration file (TOML): every setting below, under its flag's name
    /// in snake_case; flags and environment variables override it. See
    /// config/reroute.example.toml.
    #[arg(long, env = "REROUTE_CONFIG")]
    pub config: Option<PathBuf>,

    /// Port of the payments API [default: 9999; env alias: SERVER_PORT].
    #[arg(long, env = "APP_PORT")]
    pub port: Option<u16>,

    #[arg(long = "server-port", env = "SERVER_PORT", hide = true)]
    pub server_port: Option<u16>,

    /// Address to listen on [default: 0.0.0.0].
    #[arg(long, env = "REROUTE_HOST")]
    pub host: Option<IpAddr>,

    /// Also serve HTTP on this unix socket (for a proxy on the same machine:
    /// nginx, or the edges' requests other than payments).
    #[arg(long, env = "REROUTE_UNIX_SOCKET")]
    pub unix_socket: Option<PathBuf>,

    /// Take payments from edge processes (`reroute edge --core-socket`) on
    /// this unix socket: the core of a cluster of edges in front of one
    /// store (docs/ARCHITECTURE.md, "Edges and one core").
    #[arg(long, env = "REROUTE_EDGE_SOCKET")]
    pub edge_socket: Option<PathBuf>,

    /// The embedded store's database file, created if missing [default:
    /// reroute.db].
    #[arg(long, env = "REROUTE_DB")]
    pub db: Option<PathBuf>,

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
    /// pricier one is used, in milliseconds [default: 60000]. The default
    /// outlasts the Rinha test's 20-second outage of `default`: waiting beats
    /// paying 3x the fee.
    #[arg(long, env = "REROUTE_PATIENCE_MS")]
    pub patience_ms: Option<u64>,

    /// Timeout of every call to a processor (connect, send, answer), in ms
    /// [default: 5000].
    #[arg(long, env = "REQUEST_TIMEOUT")]
    pub processor_timeout_ms: Option<u64>,

    /// How much longer than its announced delay (or the processor timeout,
    /// when longer) a processor may take to store a send, in ms [default:
    /// 2000]. A payment whose send went unanswered stays at that processor
    /// until this has passed since the send left; only then does a "not
    /// found" let it go elsewhere (RELIABILITY.md, "Unknown outcomes").
    #[arg(long, env = "REROUTE_LANDING_MARGIN_MS")]
    pub landing_margin_ms: Option<u64>,

    /// How long a payment may expect to take to be paid at a processor that
    /// is up (its wait for a free send plus the processor's latency) before
    /// it spills to the next one by fee, in ms [default: 1000]. The trade:
    /// every spilled payment pays the fee difference (3 points between the
    /// Rinha final's 7% and 10%); every payment kept takes longer than this.
    /// Outages are `--patience-ms`'s.
    #[arg(long, env = "REROUTE_SPILL_WAIT_MS")]
    pub spill_wait_ms: Option<u64>,

    /// The most sends in flight to one processor from this instance, in
    /// [8, 100000] [default: 1000]. Below it the limit adapts to what the
    /// processor carries (it grows while latency stays near its floor and
    /// backs off on 429s, timeouts and rising latency).
    #[arg(long, env = "REROUTE_MAX_IN_FLIGHT")]
    pub max_in_flight: Option<u32>,

    /// Interval between two health probes of one processor, in ms [default:
    /// 5000]. The processors allow one call per 5 s; going lower only earns
    /// 429s.
    #[arg(long, env = "HEALTH_CHECK_INTERVAL")]
    pub health_interval_ms: Option<u64>,

    /// Payments routed at once [default: 128]: a payment holds one from the
    /// queue until its first send has room at its processor, so payments
    /// waiting for a processor to recover (patience) hold one. Sends in
    /// flight are not limited by it but per processor (`--max-in-flight`).
    #[arg(long, env = "REROUTE_WORKERS")]
    pub workers: Option<usize>,

    /// Token required by the admin and operator endpoints: POST
    /// /purge-payments and the dashboard's data (header `X-Rinha-Token` or
    /// `Authorization: Bearer`). Unset: they are open.
    #[arg(long, env = "REROUTE_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// A shared PostgreSQL store (`postgres://user@host/db`) for running
    /// several instances; unset: the embedded store at --db.
    #[arg(long = "store", env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// When a payment counts as accepted [default: stable]. `stable`: a 2xx
    /// once the write-ahead log is on stable storage (fdatasync; survives a
    /// power loss). `os`: a 2xx once the write reached the operating system
    /// (survives `kill -9` of any process, not a kernel crash or a power
    /// loss; PostgreSQL: `synchronous_commit = off` for the accept).
    #[arg(long, env = "REROUTE_DURABILITY")]
    pub durability: Option<String>,

    /// This instance's name among several [default: the host name].
    #[arg(long, env = "REROUTE_INSTANCE")]
    pub instance: Option<String>,

    /// Whether this instance calls the processors' health endpoints
    /// [default: true]. Off, it routes on its own payments' outcomes (and,
    /// on PostgreSQL, on what the probing instances publish).
    #[arg(long, env = "REROUTE_PROBES", action = clap::ArgAction::Set)]
    pub probes: Option<bool>,

    /// How long an instance holds a payment without renewing its lease,
    /// in ms (PostgreSQL store) [default: 10000]. Another instance takes over
    /// the payments of an instance that died once their lease has run out.
    #[arg(long, env = "REROUTE_LEASE_MS")]
    pub lease_ms: Option<u64>,

    /// Consecutive failures that take a processor out of rotation [default: 3].
    #[arg(long, env = "REROUTE_TRIP_AFTER")]
    pub trip_after: Option<u32>,

    /// Registry file (TOML): the processors (id, name, url, fee, countries,
    /// payment methods) and optional `[health]` settings. Without it: the
    /// Rinha pair at DEFAULT_PROCESSOR_URL and FALLBACK_PROCESSOR_URL.
    #[arg(long, env = "REROUTE_PROCESSORS")]
    pub processors: Option<PathBuf>,

    /// Transactions in a health window [default: 50, or the registry file's].
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

    /// How long a recovery right after a status change must last before it
    /// is an alert, in ms; also the quiet time that ends a flapping
    /// episode; 0: every change is an alert [default: 10000].
    #[arg(long, env = "REROUTE_HEALTH_FLAP_HOLD_MS")]
    pub health_flap_hold_ms: Option<u64>,

    /// Requests a second each client may make to the public endpoints
    /// (payments, summary, /api/v1); 0 turns the limit off [default: 0, off].
    #[arg(long, env = "REROUTE_RATE_LIMIT_PER_SECOND")]
    pub rate_limit_per_second: Option<u32>,

    /// Requests a client may make at once above its rate before it is
    /// refused [default: the rate, one second's worth].
    #[arg(long, env = "REROUTE_RATE_LIMIT_BURST")]
    pub rate_limit_burst: Option<u32>,

    /// Take the client's address from the last `X-Forwarded-For` entry (the
    /// one your own load balancer adds) instead of the connection's peer. Only
    /// behind a proxy that sets it: a client can write any value otherwise
    /// [default: false].
    #[arg(
        long,
        env = "REROUTE_TRUST_FORWARDED_FOR",
        num_args = 0..=1,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub trust_forwarded_for: Option<bool>,

    /// OpenTelemetry collector to export spans to, over OTLP/HTTP protobuf
    /// (base URL; `/v1/traces` is appended). Unset: nothing is exported.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,

    /// The `service.name` of the exported spans [default: reroute].
    #[arg(long, env = "OTEL_SERVICE_NAME")]
    pub otlp_service_name: Option<String>,
}

/// The validated configuration [`crate::App::build`] runs with.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    /// HTTP on a unix socket too (`--unix-socket`).
    pub unix_socket: Option<PathBuf>,
    /// Where edges hand payments over (`--edge-socket`; [`crate::wire`]).
    pub edge_socket: Option<PathBuf>,
    pub store: StoreChoice,
    /// When the store calls an accept done: what a 2xx survives.
    pub durability: Durability,
    /// This instance's name (logs, leases, exported spans).
    pub instance: String,
    pub registry: Registry,
    /// The registry file, when the registry came from one.
    pub registry_file: Option<PathBuf>,
    /// The health engine's settings (validated).
    pub health: HealthConfig,
    pub policy: Policy,
    /// The limits of sends in flight per processor ([`crate::lanes`]).
    pub lanes: LimitConfig,
    pub circuit: CircuitConfig,
    pub processor_timeout: Duration,
    /// How long past its announced delay a processor may still store a
    /// send ([`crate::resolution::Landing`]).
    pub landing_margin: Duration,
    pub health_interval: Duration,
    pub workers: usize,
    pub admin_token: Option<String>,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Longest a request body may take to arrive whole, from the end of
    /// its headers (slow clients get 408 and the connection is closed).
    pub body_read_timeout: Duration,
    /// The per-client limit of the public endpoints; `None`: unlimited.
    pub rate_limit: Option<RateLimit>,
    /// Whether this instance probes the processors' health endpoints.
    pub probes: bool,
    pub telemetry: TelemetryConfig,
}

/// The per-client limit of the public endpoints, as configured
/// ([`crate::ratelimit`] applies it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests a second each client may make, on average.
    pub per_second: NonZeroU32,
    /// Requests a client may make at once before it is refused.
    pub burst: NonZeroU32,
    /// Whether the client is the last `X-Forwarded-For` address.
    pub trust_forwarded_for: bool,
}

/// Where payments are kept.
#[derive(Debug, Clone)]
pub enum StoreChoice {
    /// SQLite in this file: one instance.
    Embedded(PathBuf),
    /// A PostgreSQL database shared by every instance.
    Postgres { url: String, lease: Duration },
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `key` names where the value came from: the flag, the environment
    /// variable, or the configuration file and the key in it.
    #[error("{key}: {problem}")]
    Invalid { key: String, problem: String },
}

fn invalid(key: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        problem: problem.into(),
    }
}

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The command line (`--port`).
    Flag(&'static str),
    /// The environment (`APP_PORT`).
    Env(&'static str),
    /// The command line or the environment: the configuration was built
    /// without the parser's matches that tell the two apart.
    FlagOrEnv {
        flag: &'static str,
        env: &'static str,
    },
    /// The `--config` file.
    File(PathBuf),
    /// Nothing set it.
    Default,
}

impl Origin {
    /// Where it stands in the layering (flag > environment > file >
    /// default); a value whose flag and environment cannot be told apart
    /// ranks as the environment.
    fn rank(&self) -> u8 {
        match self {
            Origin::Flag(_) => 3,
            Origin::Env(_) | Origin::FlagOrEnv { .. } => 2,
            Origin::File(_) => 1,
            Origin::Default => 0,
        }
    }

    /// Whether a value set here beats one set at `other`.
    fn outranks(&self, other: &Origin) -> bool {
        self.rank() > other.rank()
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Flag(flag) => write!(f, "{flag}"),
            Origin::Env(env) => write!(f, "env {env}"),
            Origin::FlagOrEnv { flag, env } => write!(f, "{flag} or env {env}"),
            Origin::File(path) => write!(f, "file {}", path.display()),
            Origin::Default => write!(f, "default"),
        }
    }
}

/// Each setting's [`Origin`], by its key in the configuration file
/// (`server.port`).
#[derive(Debug, Clone, Default)]
pub struct Origins {
    by_key: Vec<(&'static str, Origin)>,
    /// The `--config` file and where its name came from.
    pub file: Option<(PathBuf, Origin)>,
}

impl Origins {
    /// Where the setting under `key` came from ([`Origin::Default`] when
    /// nothing set it).
    pub fn of(&self, key: &str) -> &Origin {
        self.by_key
            .iter()
            .find(|(k, _)| *k == key)
            .map_or(&Origin::Default, |(_, origin)| origin)
    }
}

/// One setting's flag (the clap id and the long name) and environment
/// variable.
#[derive(Clone, Copy)]
struct Arg {
    id: &'static str,
    flag: &'static str,
    env: &'static str,
}

macro_rules! args {
    ($($name:ident = $id:literal, $flag:literal, $env:literal;)*) => {
        $(const $name: Arg = Arg { id: $id, flag: $flag, env: $env };)*
    };
}

args! {
    CONFIG = "config", "--config", "REROUTE_CONFIG";
    HOST = "host", "--host", "REROUTE_HOST";
    UNIX_SOCKET = "unix_socket", "--unix-socket", "REROUTE_UNIX_SOCKET";
    EDGE_SOCKET = "edge_socket", "--edge-socket", "REROUTE_EDGE_SOCKET";
    PORT = "port", "--port", "APP_PORT";
    SERVER_PORT = "server_port", "--server-port", "SERVER_PORT";
    WORKERS = "workers", "--workers", "REROUTE_WORKERS";
    ADMIN_TOKEN = "admin_token", "--admin-token", "REROUTE_ADMIN_TOKEN";
    INSTANCE = "instance", "--instance", "REROUTE_INSTANCE";
    PROCESSORS = "processors", "--processors", "REROUTE_PROCESSORS";
    DEFAULT_URL_ARG = "default_url", "--default-url", "DEFAULT_PROCESSOR_URL";
    PROCESSOR_DEFAULT_URL = "processor_default_url", "--processor-default-url", "PROCESSOR_DEFAULT_URL";
    FALLBACK_URL_ARG = "fallback_url", "--fallback-url", "FALLBACK_PROCESSOR_URL";
    PROCESSOR_FALLBACK_URL = "processor_fallback_url", "--processor-fallback-url", "PROCESSOR_FALLBACK_URL";
    PATIENCE_MS = "patience_ms", "--patience-ms", "REROUTE_PATIENCE_MS";
    PROCESSOR_TIMEOUT_MS = "processor_timeout_ms", "--processor-timeout-ms", "REQUEST_TIMEOUT";
    LANDING_MARGIN_MS = "landing_margin_ms", "--landing-margin-ms", "REROUTE_LANDING_MARGIN_MS";
    SPILL_WAIT_MS = "spill_wait_ms", "--spill-wait-ms", "REROUTE_SPILL_WAIT_MS";
    MAX_IN_FLIGHT = "max_in_flight", "--max-in-flight", "REROUTE_MAX_IN_FLIGHT";
    TRIP_AFTER = "trip_after", "--trip-after", "REROUTE_TRIP_AFTER";
    DB = "db", "--db", "REROUTE_DB";
    STORE = "database_url", "--store", "DATABASE_URL";
    LEASE_MS = "lease_ms", "--lease-ms", "REROUTE_LEASE_MS";
    DURABILITY = "durability", "--durability", "REROUTE_DURABILITY";
    PROBES = "probes", "--probes", "REROUTE_PROBES";
    HEALTH_INTERVAL_MS = "health_interval_ms", "--health-interval-ms", "HEALTH_CHECK_INTERVAL";
    HEALTH_WINDOW_SIZE = "health_window_size", "--health-window-size", "REROUTE_HEALTH_WINDOW_SIZE";
    HEALTH_WINDOW_AGE_MS = "health_window_age_ms", "--health-window-age-ms", "REROUTE_HEALTH_WINDOW_AGE_MS";
    HEALTH_MIN_TRANSACTIONS = "health_min_transactions", "--health-min-transactions", "REROUTE_HEALTH_MIN_TRANSACTIONS";
    HEALTH_TRIAL_INTERVAL_MS = "health_trial_interval_ms", "--health-trial-interval-ms", "REROUTE_HEALTH_TRIAL_INTERVAL_MS";
    HEALTH_FLAP_HOLD_MS = "health_flap_hold_ms", "--health-flap-hold-ms", "REROUTE_HEALTH_FLAP_HOLD_MS";
    LOG_FORMAT = "log_format", "--log-format", "REROUTE_LOG_FORMAT";
    OTLP_ENDPOINT = "otlp_endpoint", "--otlp-endpoint", "OTEL_EXPORTER_OTLP_ENDPOINT";
    OTLP_SERVICE_NAME = "otlp_service_name", "--otlp-service-name", "OTEL_SERVICE_NAME";
    RATE_LIMIT_PER_SECOND = "rate_limit_per_second", "--rate-limit-per-second", "REROUTE_RATE_LIMIT_PER_SECOND";
    RATE_LIMIT_BURST = "rate_limit_burst", "--rate-limit-burst", "REROUTE_RATE_LIMIT_BURST";
    TRUST_FORWARDED_FOR = "trust_forwarded_for", "--trust-forwarded-for", "REROUTE_TRUST_FORWARDED_FOR";
}

/// One setting as the layers gave it: `value` is `None` when none did.
struct Picked<T> {
    key: &'static str,
    value: Option<T>,
    origin: Origin,
}

/// Lays the layers on one another, setting by setting, and remembers where
/// each value came from.
struct Resolver<'a> {
    matches: Option<&'a ArgMatches>,
    file: Option<PathBuf>,
    origins: Origins,
}

impl Resolver<'_> {
    fn origin_of(&self, arg: Arg) -> Origin {
        match self.matches.and_then(|m| m.value_source(arg.id)) {
            Some(ValueSource::CommandLine) => Origin::Flag(arg.flag),
            Some(ValueSource::EnvVariable) => Origin::Env(arg.env),
            _ => Origin::FlagOrEnv {
                flag: arg.flag,
                env: arg.env,
            },
        }
    }

    /// The first of `args` (a flag and its aliases, in order) that is set,
    /// else the file's value under `key`.
    fn pick<T, const N: usize>(
        &mut self,
        key: &'static str,
        args: [(Arg, Option<T>); N],
        file: Option<T>,
    ) -> Picked<T> {
        let from_args = args
            .into_iter()
            .find_map(|(arg, value)| value.map(|v| (v, self.origin_of(arg))));
        let (value, origin) = match (from_args, file, &self.file) {
            (Some((v, origin)), _, _) => (Some(v), origin),
            (None, Some(v), Some(path)) => (Some(v), Origin::File(path.clone())),
            _ => (None, Origin::Default),
        };
        self.origins.by_key.push((key, origin.clone()));
        Picked { key, value, origin }
    }

    /// An error naming where the bad value came from.
    fn invalid(&self, key: &str, origin: &Origin, problem: impl Into<String>) -> ConfigError {
        invalid(self.name(key, origin), problem)
    }

    /// Where the value of `key` was set, as a person would look for it:
    /// the flag, the variable, or the file and the key in it.
    fn name(&self, key: &str, origin: &Origin) -> String {
        match origin {
            Origin::Flag(flag) => (*flag).to_owned(),
            Origin::Env(env) | Origin::FlagOrEnv { env, .. } => (*env).to_owned(),
            Origin::File(path) => format!("{}: {key}", path.display()),
            Origin::Default => key.to_owned(),
        }
    }
}

impl<T> Picked<T> {
    /// Checks the value, if one was set; an error names where it was set.
    fn check<U>(
        self,
        r: &Resolver<'_>,
        check: impl FnOnce(T) -> Result<U, String>,
    ) -> Result<Option<U>, ConfigError> {
        match self.value {
            None => Ok(None),
            Some(v) => check(v)
                .map(Some)
                .map_err(|problem| r.invalid(self.key, &self.origin, problem)),
        }
    }

    fn or(self, default: T) -> T {
        self.value.unwrap_or(default)
    }

    fn or_else_default(self, default: impl FnOnce() -> T) -> T {
        self.value.unwrap_or_else(default)
    }
}

fn at_least<T: PartialOrd + fmt::Display>(min: T) -> impl FnOnce(T) -> Result<T, String> {
    move |v| {
        if v >= min {
            Ok(v)
        } else {
            Err(format!("must be at least {min}"))
        }
    }
}

fn not_empty(v: String) -> Result<String, String> {
    if v.trim().is_empty() {
        Err("must not be empty when set".into())
    } else {
        Ok(v)
    }
}

fn millis_i64(ms: u64) -> Result<i64, String> {
    i64::try_from(ms)
        .ok()
        .filter(|ms| *ms >= 1)
        .ok_or_else(|| "must be at least 1 ms".to_owned())
}

/// A duration in ms where 0 means "off".
fn millis_or_off(ms: u64) -> Result<i64, String> {
    i64::try_from(ms).map_err(|_| "is too large".to_owned())
}

/// How often an instance renews its leases on shared storage: every third
/// of the lease, so that one failed renewal still leaves time for another.
pub fn lease_renewal_interval(lease: Duration) -> Duration {
    lease / 3
}

/// Refuses a lease that could run out while a send is in flight. A holder
/// checks its lease before a send; the lease was last renewed up to one
/// renewal interval earlier, so it may have only `lease - renewal` left;
/// the send may take the processor timeout. Unless the lease outlasts
/// `timeout + renewal`, another instance could take the payment over (and
/// send it elsewhere) while this send may still land: a double charge.
/// `timeout_from` says where the timeout was set.
fn check_lease(lease_ms: u64, timeout_ms: u64, timeout_from: &str) -> Result<(), String> {
    let lease = Duration::from_millis(lease_ms);
    let renewal = lease_renewal_interval(lease);
    let outlasts = Duration::from_millis(timeout_ms)
        .checked_add(renewal)
        .is_some_and(|needed| lease > needed);
    if outlasts {
        return Ok(());
    }
    // The shortest lease with lease - lease/3 > timeout, and the longest
    // timeout below 2/3 of this lease.
    let least_lease = timeout_ms.saturating_mul(3) / 2 + 1;
    let longest_timeout = lease_ms.saturating_mul(2).saturating_sub(1) / 3;
    Err(format!(
        "a lease of {lease_ms} ms does not outlast the processor timeout ({timeout_ms} ms, \
         {timeout_from}) plus the lease renewal interval ({} ms, a third of the lease): \
         another instance could take a payment over while a send of it is still in flight. \
         Set the lease ({} / {} / storage.lease_ms) to at least {least_lease} ms, or the \
         processor timeout ({} / {} / routing.processor_timeout_ms) to at most \
         {longest_timeout} ms",
        renewal.as_millis(),
        LEASE_MS.flag,
        LEASE_MS.env,
        PROCESSOR_TIMEOUT_MS.flag,
        PROCESSOR_TIMEOUT_MS.env,
    ))
}

/// A processor's base URL: `http://` with a host, trailing slashes trimmed.
fn check_url(url: String) -> Result<String, String> {
    let trimmed = url.trim_end_matches('/');
    let uri: hyper::Uri = trimmed
        .parse()
        .map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    if uri.scheme_str() != Some("http") || uri.host().is_none() {
        return Err(format!("{url:?} must be an http:// URL with a host"));
    }
    Ok(trimmed.to_owned())
}

impl ServeArgs {
    /// The configuration these arguments (and the file they name) describe.
    pub fn into_config(self) -> Result<ServeConfig, ConfigError> {
        self.resolve(None).map(|(config, _)| config)
    }

    /// The configuration and where each value came from. With `matches`
    /// (the subcommand's, from which these arguments were parsed), origins
    /// tell a flag from its environment variable, and the global
    /// `--log-format` (env `REROUTE_LOG_FORMAT`) is read from them.
    pub fn resolve(
        self,
        matches: Option<&ArgMatches>,
    ) -> Result<(ServeConfig, Origins), ConfigError> {
        let mut r = Resolver {
            matches,
            file: self.config.clone(),
            origins: Origins::default(),
        };
        let file = match &self.config {
            Some(path) => {
                r.origins.file = Some((path.clone(), r.origin_of(CONFIG)));
                ConfigFile::load(path)?
            }
            None => ConfigFile::default(),
        };
        let ConfigFile {
            server,
            routing,
            storage,
            health,
            telemetry,
            limits,
        } = file;

        // [server]
        let host = r
            .pick("server.host", [(HOST, self.host)], server.host)
            .or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let port = r
            .pick(
                "server.port",
                [(PORT, self.port), (SERVER_PORT, self.server_port)],
                server.port,
            )
            .or(DEFAULT_PORT);
        let unix_socket = r
            .pick(
                "server.unix_socket",
                [(UNIX_SOCKET, self.unix_socket)],
                server.unix_socket,
            )
            .value;
        let edge_socket = r
            .pick(
                "server.edge_socket",
                [(EDGE_SOCKET, self.edge_socket)],
                server.edge_socket,
            )
            .value;
        let workers = r
            .pick("server.workers", [(WORKERS, self.workers)], server.workers)
            .check(&r, at_least(1))?
            .unwrap_or(DEFAULT_WORKERS);
        let admin_token = r
            .pick(
                "server.admin_token",
                [(ADMIN_TOKEN, self.admin_token)],
                server.admin_token,
            )
            .check(&r, |t| {
                if t.is_empty() {
                    Err("must not be empty when set".to_owned())
                } else {
                    Ok(t)
                }
            })?;
        let instance = match r
            .pick(
                "server.instance",
                [(INSTANCE, self.instance)],
                server.instance,
            )
            .check(&r, not_empty)?
        {
            Some(name) => name,
            None => std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "reroute".to_owned()),
        };

        // [routing]
        let registry_file = r
            .pick(
                "routing.processors",
                [(PROCESSORS, self.processors)],
                routing.processors,
            )
            .value;
        let default_url = r
            .pick(
                "routing.default_url",
                [
                    (DEFAULT_URL_ARG, self.default_url),
                    (PROCESSOR_DEFAULT_URL, self.processor_default_url),
                ],
                routing.default_url,
            )
            .check(&r, check_url)?
            .unwrap_or_else(|| DEFAULT_URL.to_owned());
        let fallback_url = r
            .pick(
                "routing.fallback_url",
                [
                    (FALLBACK_URL_ARG, self.fallback_url),
                    (PROCESSOR_FALLBACK_URL, self.processor_fallback_url),
                ],
                routing.fallback_url,
            )
            .check(&r, check_url)?
            .unwrap_or_else(|| FALLBACK_URL.to_owned());
        let patience_ms = r
            .pick(
                "routing.patience_ms",
                [(PATIENCE_MS, self.patience_ms)],
                routing.patience_ms,
            )
            .or(DEFAULT_PATIENCE_MS);
        let processor_timeout_ms = r.pick(
            "routing.processor_timeout_ms",
            [(PROCESSOR_TIMEOUT_MS, self.processor_timeout_ms)],
            routing.processor_timeout_ms,
        );
        let processor_timeout_origin = processor_timeout_ms.origin.clone();
        let processor_timeout_ms = processor_timeout_ms
            .check(&r, at_least(1))?
            .unwrap_or(DEFAULT_PROCESSOR_TIMEOUT_MS);
        let landing_margin_ms = r
            .pick(
                "routing.landing_margin_ms",
                [(LANDING_MARGIN_MS, self.landing_margin_ms)],
                routing.landing_margin_ms,
            )
            .or(DEFAULT_LANDING_MARGIN_MS);
        let spill_wait_ms = r
            .pick(
                "routing.spill_wait_ms",
                [(SPILL_WAIT_MS, self.spill_wait_ms)],
                routing.spill_wait_ms,
            )
            .or(DEFAULT_SPILL_WAIT_MS);
        let max_in_flight = r
            .pick(
                "routing.max_in_flight",
                [(MAX_IN_FLIGHT, self.max_in_flight)],
                routing.max_in_flight,
            )
            .check(&r, |n| {
                if (8..=100_000).contains(&n) {
                    Ok(n)
                } else {
                    Err("must be between 8 and 100000".to_owned())
                }
            })?
            .unwrap_or(DEFAULT_MAX_IN_FLIGHT);
        let trip_after = r
            .pick(
                "routing.trip_after",
                [(TRIP_AFTER, self.trip_after)],
                routing.trip_after,
            )
            .check(&r, at_least(1))?
            .unwrap_or(DEFAULT_TRIP_AFTER);

        // [storage]
        let db = r.pick("storage.db", [(DB, self.db)], storage.db);
        let db_origin = db.origin.clone();
        let db = db.or_else_default(|| PathBuf::from(DEFAULT_DB));
        let lease_ms = r.pick(
            "storage.lease_ms",
            [(LEASE_MS, self.lease_ms)],
            storage.lease_ms,
        );
        let lease_origin = lease_ms.origin.clone();
        let lease_ms = lease_ms
            .check(&r, at_least(1_000))?
            .unwrap_or(DEFAULT_LEASE_MS);
        let durability = r
            .pick(
                "storage.durability",
                [(DURABILITY, self.durability)],
                storage.durability,
            )
            .check(&r, |d| d.trim().parse::<Durability>())?
            .unwrap_or_default();
        let store = r.pick("storage.store", [(STORE, self.database_url)], storage.store);
        // An embedded database named on the command line is what was asked
        // for: a DATABASE_URL left in the environment (or a file's store)
        // must not silently take its place. The same layering as every
        // other setting, across the two keys that choose the store.
        let store = if db_origin.outranks(&store.origin) {
            if store.value.as_deref().is_some_and(|u| !u.trim().is_empty()) {
                tracing::warn!(db = %db_origin, store = %store.origin,
                    "the embedded store given by {db_origin} is used, not the PostgreSQL URL from {}",
                    store.origin);
            }
            Picked {
                value: None,
                ..store
            }
        } else {
            store
        };
        let store = store
            .check(&r, |url| match url.trim() {
                "" => Ok(None),
                url if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                    Ok(Some(url.to_owned()))
                }
                _ => Err("must be a postgres:// or postgresql:// URL".to_owned()),
            })?
            .flatten();
        let store = match store {
            None => StoreChoice::Embedded(db),
            Some(url) => {
                let timeout_from = match &processor_timeout_origin {
                    Origin::Default => "the default".to_owned(),
                    origin => format!("from {}", r.name("routing.processor_timeout_ms", origin)),
                };
                check_lease(lease_ms, processor_timeout_ms, &timeout_from)
                    .map_err(|problem| r.invalid("storage.lease_ms", &lease_origin, problem))?;
                StoreChoice::Postgres {
                    url,
                    lease: Duration::from_millis(lease_ms),
                }
            }
        };
        // [health]
        let probes = r
            .pick("health.probes", [(PROBES, self.probes)], health.probes)
            .value
            .unwrap_or(true);
        let health_interval_ms = r
            .pick(
                "health.health_interval_ms",
                [(HEALTH_INTERVAL_MS, self.health_interval_ms)],
                health.health_interval_ms,
            )
            .check(&r, at_least(1))?
            .unwrap_or(DEFAULT_HEALTH_INTERVAL_MS);
        let registry_text = match &registry_file {
            Some(path) => RegistryFile::load(path)?,
            None => RegistryFile::default(),
        };
        let mut engine = registry_text.health;
        if let Some(n) = r
            .pick(
                "health.health_window_size",
                [(HEALTH_WINDOW_SIZE, self.health_window_size)],
                health.health_window_size,
            )
            .check(&r, |n| {
                if (1..=100_000).contains(&n) {
                    Ok(n)
                } else {
                    Err("must be between 1 and 100000".to_owned())
                }
            })?
        {
            engine.window_size = n;
        }
        if let Some(ms) = r
            .pick(
                "health.health_window_age_ms",
                [(HEALTH_WINDOW_AGE_MS, self.health_window_age_ms)],
                health.health_window_age_ms,
            )
            .check(&r, millis_i64)?
        {
            engine.window_age_ms = ms;
        }
        if let Some(n) = r
            .pick(
                "health.health_min_transactions",
                [(HEALTH_MIN_TRANSACTIONS, self.health_min_transactions)],
                health.health_min_transactions,
            )
            .value
        {
            engine.min_transactions = n;
        }
        if let Some(ms) = r
            .pick(
                "health.health_trial_interval_ms",
                [(HEALTH_TRIAL_INTERVAL_MS, self.health_trial_interval_ms)],
                health.health_trial_interval_ms,
            )
            .check(&r, millis_i64)?
        {
            engine.trial_interval_ms = ms;
        }
        if let Some(ms) = r
            .pick(
                "health.health_flap_hold_ms",
                [(HEALTH_FLAP_HOLD_MS, self.health_flap_hold_ms)],
                health.health_flap_hold_ms,
            )
            .check(&r, millis_or_off)?
        {
            engine.flap_hold_ms = ms;
        }
        // What is left to refuse came from the registry file.
        engine
            .validate()
            .map_err(|e| invalid(REGISTRY_KEY, e.to_string()))?;
        let registry = if registry_text.processors.is_empty() {
            Registry::rinha(&default_url, &fallback_url)
        } else {
            registry_text.registry()?
        };

        // [telemetry]
        let log_format = {
            let from_flag = matches
                .and_then(|m| m.try_get_one::<LogFormat>(LOG_FORMAT.id).ok().flatten())
                .copied();
            r.pick(
                "telemetry.log_format",
                [(LOG_FORMAT, from_flag)],
                telemetry.log_format,
            )
            .or(LogFormat::Json)
        };
        let otlp_endpoint = r
            .pick(
                "telemetry.otlp_endpoint",
                [(OTLP_ENDPOINT, self.otlp_endpoint)],
                telemetry.otlp_endpoint,
            )
            .check(&r, |url| match url.trim() {
                // Empty is unset, as the OpenTelemetry variables have it.
                "" => Ok(None),
                url if url.starts_with("https://") => Err(
                    "https is not supported: export over http:// to a collector next to the router"
                        .to_owned(),
                ),
                url => check_url(url.to_owned()).map(Some),
            })?
            .flatten();
        let service_name = r
            .pick(
                "telemetry.otlp_service_name",
                [(OTLP_SERVICE_NAME, self.otlp_service_name)],
                telemetry.otlp_service_name,
            )
            .check(&r, not_empty)?
            .unwrap_or_else(|| DEFAULT_SERVICE_NAME.to_owned());

        // [limits]
        let per_second = r
            .pick(
                "limits.rate_limit_per_second",
                [(RATE_LIMIT_PER_SECOND, self.rate_limit_per_second)],
                limits.rate_limit_per_second,
            )
            .or(0);
        let burst = r
            .pick(
                "limits.rate_limit_burst",
                [(RATE_LIMIT_BURST, self.rate_limit_burst)],
                limits.rate_limit_burst,
            )
            .check(&r, |n| {
                NonZeroU32::new(n).ok_or_else(|| "must be at least 1".to_owned())
            })?;
        let trust_forwarded_for = r
            .pick(
                "limits.trust_forwarded_for",
                [(TRUST_FORWARDED_FOR, self.trust_forwarded_for)],
                limits.trust_forwarded_for,
            )
            .or(false);
        let rate_limit = NonZeroU32::new(per_second).map(|per_second| RateLimit {
            per_second,
            burst: burst.unwrap_or(per_second),
            trust_forwarded_for,
        });

        let config = ServeConfig {
            listen: SocketAddr::new(host, port),
            unix_socket,
            edge_socket,
            store,
            durability,
            telemetry: TelemetryConfig {
                log_format,
                otlp: otlp_endpoint.map(|endpoint| OtlpConfig {
                    endpoint,
                    service_name,
                    instance: instance.clone(),
                }),
            },
            instance,
            registry,
            registry_file,
            health: engine,
            policy: Policy {
                patience_ms: i64::try_from(patience_ms).unwrap_or(i64::MAX),
                spill_wait_ms,
            },
            lanes: LimitConfig {
                initial: DEFAULT_INITIAL_IN_FLIGHT.min(max_in_flight),
                min: MIN_IN_FLIGHT,
                max: max_in_flight,
                ..LimitConfig::default()
            },
            circuit: CircuitConfig {
                trip_after,
                ..CircuitConfig::default()
            },
            processor_timeout: Duration::from_millis(processor_timeout_ms),
            landing_margin: Duration::from_millis(landing_margin_ms),
            health_interval: Duration::from_millis(health_interval_ms),
            workers,
            admin_token,
            max_body_bytes: MAX_BODY_BYTES,
            body_read_timeout: BODY_READ_TIMEOUT,
            rate_limit,
            probes,
        };
        Ok((config, r.origins))
    }
}

/// The `--config` file as written: every key optional, none unknown.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
struct ConfigFile {
    server: ServerTable,
    routing: RoutingTable,
    storage: StorageTable,
    health: HealthTable,
    telemetry: TelemetryTable,
    limits: LimitsTable,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
struct ServerTable {
    host: Option<IpAddr>,
    port: Option<u16>,
    unix_socket: Option<PathBuf>,
    edge_socket: Option<PathBuf>,
    workers: Option<usize>,
    admin_token: Option<String>,
    instance: Option<String>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RoutingTable {
    processors: Option<PathBuf>,
    default_url: Option<String>,
    fallback_url: Option<String>,
    patience_ms: Option<u64>,
    processor_timeout_ms: Option<u64>,
    landing_margin_ms: Option<u64>,
    spill_wait_ms: Option<u64>,
    max_in_flight: Option<u32>,
    trip_after: Option<u32>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
struct StorageTable {
    db: Option<PathBuf>,
    store: Option<String>,
    lease_ms: Option<u64>,
    durability: Option<String>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
struct HealthTable {
    probes: Option<bool>,
    health_interval_ms: Option<u64>,
    health_window_size: Option<usize>,
    health_window_age_ms: Option<u64>,
    health_min_transactions: Option<u32>,
    health_trial_interval_ms: Option<u64>,
    health_flap_hold_ms: Option<u64>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
struct TelemetryTable {
    log_format: Option<LogFormat>,
    otlp_endpoint: Option<String>,
    otlp_service_name: Option<String>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
struct LimitsTable {
    rate_limit_per_second: Option<u32>,
    rate_limit_burst: Option<u32>,
    trust_forwarded_for: Option<bool>,
}

impl ConfigFile {
    fn load(path: &Path) -> Result<Self, ConfigError> {
        let name = path.display();
        let text = std::fs::read_to_string(path)
            .map_err(|e| invalid(format!("{name}"), format!("cannot read it: {e}")))?;
        Self::parse(&text).map_err(|(key, problem)| match key {
            Some(key) => invalid(format!("{name}: {key}"), problem),
            None => invalid(format!("{name}"), problem),
        })
    }

    /// The file's settings, or the key at fault (when there is one) and
    /// the problem, with its line.
    fn parse(text: &str) -> Result<Self, (Option<String>, String)> {
        let line = |span: Option<std::ops::Range<usize>>| {
            span.map_or(String::new(), |s| {
                let at = s.start.min(text.len());
                format!(" (line {})", text[..at].matches('\n').count() + 1)
            })
        };
        let syntax = |e: toml::de::Error| (None, format!("{}{}", e.message(), line(e.span())));
        let document = toml::Deserializer::parse(text).map_err(syntax)?;
        serde_path_to_error::deserialize(document).map_err(|e| {
            let key = e.path().to_string();
            let e = e.into_inner();
            (Some(key), format!("{}{}", e.message(), line(e.span())))
        })
    }
}

impl ServeConfig {
    /// The effective configuration in the `--config` file's format, each
    /// value followed by its origin, secrets masked (and commented out, so
    /// that the text stays a valid file that does not set them): what
    /// `reroute config` prints.
    pub fn render_masked(&self, origins: &Origins) -> String {
        let mut out = String::new();
        let mut line = |text: String| {
            out.push_str(&text);
            out.push('\n');
        };
        let set = |key: &str, value: String| -> String {
            let name = key.rsplit('.').next().unwrap_or(key);
            format!("{name} = {value}  # {}", origins.of(key))
        };
        let quoted = |s: &str| format!("{s:?}");
        line("# The configuration `reroute serve` would run with, as a --config file.".into());
        line("# After each value, where it came from. Secrets are masked.".into());
        match &origins.file {
            Some((path, origin)) => line(format!(
                "# Configuration file: {} (from {origin}).",
                path.display()
            )),
            None => line("# No configuration file.".into()),
        }

        line("\n[server]".into());
        line(set("server.host", quoted(&self.listen.ip().to_string())));
        line(set("server.port", self.listen.port().to_string()));
        for (key, socket) in [
            ("server.unix_socket", &self.unix_socket),
            ("server.edge_socket", &self.edge_socket),
        ] {
            match socket {
                Some(path) => line(set(key, quoted(&path.display().to_string()))),
                None => line(format!("# {}: none", &key["server.".len()..])),
            }
        }
        line(set("server.workers", self.workers.to_string()));
        match &self.admin_token {
            Some(_) => line(format!(
                "# admin_token = \"********\"  # {}, masked",
                origins.of("server.admin_token")
            )),
            None => line("# admin_token: unset, the admin endpoints are open".into()),
        }
        line(set("server.instance", quoted(&self.instance)));

        line("\n[routing]".into());
        match &self.registry_file {
            Some(path) => {
                line(set(
                    "routing.processors",
                    quoted(&path.display().to_string()),
                ));
                line(
                    "# default_url, fallback_url: unused, the registry file names the processors"
                        .into(),
                );
            }
            None => {
                line("# processors: unset, the Rinha pair".into());
                let url = |id: &str| {
                    self.registry
                        .get(id)
                        .and_then(|p| p.url.as_deref())
                        .map(mask_url_password)
                        .unwrap_or_default()
                };
                line(set("routing.default_url", quoted(&url("default"))));
                line(set("routing.fallback_url", quoted(&url("fallback"))));
            }
        }
        line(set(
            "routing.patience_ms",
            self.policy.patience_ms.to_string(),
        ));
        line(set(
            "routing.processor_timeout_ms",
            self.processor_timeout.as_millis().to_string(),
        ));
        line(set(
            "routing.landing_margin_ms",
            self.landing_margin.as_millis().to_string(),
        ));
        line(set(
            "routing.spill_wait_ms",
            self.policy.spill_wait_ms.to_string(),
        ));
        line(set("routing.max_in_flight", self.lanes.max.to_string()));
        line(set(
            "routing.trip_after",
            self.circuit.trip_after.to_string(),
        ));

        line("\n[storage]".into());
        match &self.store {
            StoreChoice::Embedded(path) => {
                line(set("storage.db", quoted(&path.display().to_string())));
                line("# store: unset, the embedded store at db".into());
                line("# lease_ms: unused by the embedded store".into());
            }
            StoreChoice::Postgres { url, lease } => {
                line("# db: unused, the store is PostgreSQL".into());
                line(set("storage.store", quoted(&mask_url_password(url))));
                line(set("storage.lease_ms", lease.as_millis().to_string()));
            }
        }
        line(set(
            "storage.durability",
            quoted(&self.durability.to_string()),
        ));

        line("\n[health]".into());
        line(set("health.probes", self.probes.to_string()));
        line(set(
            "health.health_interval_ms",
            self.health_interval.as_millis().to_string(),
        ));
        let h = &self.health;
        for (key, value) in [
            ("health.health_window_size", h.window_size.to_string()),
            ("health.health_window_age_ms", h.window_age_ms.to_string()),
            (
                "health.health_min_transactions",
                h.min_transactions.to_string(),
            ),
            (
                "health.health_trial_interval_ms",
                h.trial_interval_ms.to_string(),
            ),
            ("health.health_flap_hold_ms", h.flap_hold_ms.to_string()),
        ] {
            let mut text = set(key, value);
            if self.registry_file.is_some() && *origins.of(key) == Origin::Default {
                text.push_str(" or the registry file");
            }
            line(text);
        }

        line("\n[telemetry]".into());
        line(set(
            "telemetry.log_format",
            quoted(self.telemetry.log_format.as_str()),
        ));
        match &self.telemetry.otlp {
            Some(otlp) => {
                line(set(
                    "telemetry.otlp_endpoint",
                    quoted(&mask_url_password(&otlp.endpoint)),
                ));
                line(set(
                    "telemetry.otlp_service_name",
                    quoted(&otlp.service_name),
                ));
            }
            None => {
                line("# otlp_endpoint: unset, no spans are exported".into());
                line("# otlp_service_name: unused without otlp_endpoint".into());
            }
        }

        line("\n[limits]".into());
        match &self.rate_limit {
            Some(limit) => {
                line(set(
                    "limits.rate_limit_per_second",
                    limit.per_second.to_string(),
                ));
                line(set("limits.rate_limit_burst", limit.burst.to_string()));
                line(set(
                    "limits.trust_forwarded_for",
                    limit.trust_forwarded_for.to_string(),
                ));
            }
            None => {
                let mut text = set("limits.rate_limit_per_second", "0".into());
                text.push_str(" (0: no limit)");
                line(text);
                line("# rate_limit_burst, trust_forwarded_for: unused without a limit".into());
            }
        }
        line(format!("# max_body_bytes: {} (fixed)", self.max_body_bytes));
        line(format!(
            "# body_read_timeout: {} s (fixed)",
            self.body_read_timeout.as_secs()
        ));

        line("\n# The health engine (defaults, or the registry file's [health] table):".into());
        for text in format!("{h:#?}").lines() {
            line(format!("#   {text}"));
        }
        line("\n# The registry, cheapest first:".into());
        for p in self.registry.by_fee() {
            let url = p
                .url
                .as_deref()
                .map_or("no url: advisory only".to_owned(), mask_url_password);
            line(format!(
                "#   {} ({:?}) fee {}, {url}, countries {:?}, payment methods {:?}",
                p.id,
                p.name,
                p.fee.as_fraction(),
                p.countries,
                p.payment_methods
            ));
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

/// The name registry file errors start with.
const REGISTRY_KEY: &str = "REROUTE_PROCESSORS";

impl RegistryFile {
    fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| invalid(REGISTRY_KEY, format!("cannot read {}: {e}", path.display())))?;
        Self::parse(&text)
            .map_err(|problem| invalid(REGISTRY_KEY, format!("{}: {problem}", path.display())))
    }

    fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.message().to_owned())
    }

    fn registry(&self) -> Result<Registry, ConfigError> {
        let fail = |problem: String| invalid(REGISTRY_KEY, problem);
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
                Some(url) => {
                    Some(check_url(url.clone()).map_err(|e| fail(format!("{}: {e}", at("url"))))?)
                }
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

    /// As `reroute serve` resolves: with the matches, so that origins tell
    /// flags from variables.
    fn resolve(args: &[&str]) -> Result<(ServeConfig, Origins), ConfigError> {
        use clap::{CommandFactory, FromArgMatches};
        let mut argv = vec!["reroute"];
        argv.extend_from_slice(args);
        let matches = Cli::command().get_matches_from(argv);
        Cli::from_arg_matches(&matches)
            .unwrap()
            .serve
            .resolve(Some(&matches))
    }

    /// A `--config` file with `text` in a fresh directory.
    fn config_file(text: &str) -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("reroute.toml");
        std::fs::write(&path, text).unwrap();
        let path = path.to_str().unwrap().to_owned();
        (dir, path)
    }

    #[test]
    fn an_embedded_database_on_the_command_line_beats_a_url_from_further_down() {
        // Where CI sets DATABASE_URL this is also the environment's case.
        let (c, _) = resolve(&["--db", "/tmp/mine.db"]).unwrap();
        assert!(
            matches!(&c.store, StoreChoice::Embedded(p) if p == Path::new("/tmp/mine.db")),
            "{:?}",
            c.store
        );
        // A file's store URL does not override the flag either...
        let (_dir, file) = config_file("[storage]\nstore = \"postgres://u@h/db\"\n");
        let (c, _) = resolve(&["--config", &file, "--db", "/tmp/mine.db"]).unwrap();
        assert!(matches!(c.store, StoreChoice::Embedded(_)), "{:?}", c.store);
        // ...but is used when nothing above it names a database...
        let (c, _) = resolve(&["--config", &file]).unwrap();
        assert!(
            matches!(c.store, StoreChoice::Postgres { .. }),
            "{:?}",
            c.store
        );
        // ...and both on the command line: the URL, as before.
        let (c, _) = resolve(&["--db", "/tmp/mine.db", "--store", "postgres://u@h/db"]).unwrap();
        assert!(
            matches!(c.store, StoreChoice::Postgres { .. }),
            "{:?}",
            c.store
        );
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
        assert_eq!(c.health.flap_hold_ms, 10_000);
        let c = parse(&["--processors", p, "--health-flap-hold-ms", "0"]).unwrap();
        assert_eq!(c.health.flap_hold_ms, 0);
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

    #[test]
    fn the_example_file_parses_and_equals_the_defaults() {
        let example = shipped("reroute.example.toml");
        let (from_file, origins) = resolve(&["--config", &example]).unwrap();
        let (built_in, _) = resolve(&[]).unwrap();
        assert_eq!(format!("{from_file:?}"), format!("{built_in:?}"));
        // It sets every key with a default (the values the example says are
        // the defaults), not just a few.
        for key in [
            "server.host",
            "server.port",
            "server.workers",
            "routing.default_url",
            "routing.patience_ms",
            "storage.db",
            "storage.lease_ms",
            "health.health_interval_ms",
            "health.health_window_size",
            "telemetry.log_format",
            "limits.rate_limit_per_second",
            "limits.trust_forwarded_for",
        ] {
            assert!(
                matches!(origins.of(key), Origin::File(_) | Origin::Env(_)),
                "{key}: {}",
                origins.of(key)
            );
        }
    }

    #[test]
    fn the_file_sets_what_neither_flags_nor_environment_set() {
        let (_dir, path) = config_file(
            "[server]\nport = 8080\nworkers = 7\n\n[routing]\npatience_ms = 1500\n\n[health]\nhealth_window_size = 20\n",
        );
        let (c, origins) = resolve(&["--config", &path, "--workers", "9"]).unwrap();
        assert_eq!(c.listen.port(), 8080);
        assert_eq!(
            *origins.of("server.port"),
            Origin::File(path.clone().into())
        );
        assert_eq!(c.workers, 9, "the flag wins over the file");
        assert_eq!(*origins.of("server.workers"), Origin::Flag("--workers"));
        assert_eq!(c.policy.patience_ms, 1_500);
        assert_eq!(c.health.window_size, 20);
        assert_eq!(c.processor_timeout, Duration::from_millis(5_000));
        assert_eq!(*origins.of("routing.processor_timeout_ms"), Origin::Default);
        assert_eq!(
            origins.file,
            Some((PathBuf::from(&path), Origin::Flag("--config")))
        );
    }

    #[test]
    fn the_seeds_aliases_outrank_the_file() {
        let (_dir, path) = config_file("[routing]\ndefault_url = \"http://from-file:1\"\n");
        let c = parse(&[
            "--config",
            &path,
            "--processor-default-url",
            "http://from-alias:2",
        ])
        .unwrap();
        assert_eq!(
            c.registry.get("default").unwrap().url.as_deref(),
            Some("http://from-alias:2")
        );
    }

    #[test]
    fn mistakes_in_the_config_file_name_the_file_and_the_key() {
        let cases = [
            ("[server]\nprot = 1\n", "server.prot: unknown field `prot`"),
            ("[serve]\nport = 1\n", "serve: unknown field `serve`"),
            ("[server]\nport = \"x\"\n", "server.port: invalid type"),
            ("\n[server]\nport = 70000\n", "server.port: invalid value"),
            (
                "[server]\nworkers = 0\n",
                "server.workers: must be at least 1",
            ),
            (
                "[server]\nhost = \"here\"\n",
                "server.host: invalid IP address",
            ),
            (
                "[routing]\nfallback_url = \"ftp://x\"\n",
                "routing.fallback_url: \"ftp://x\" must be an http:// URL",
            ),
            (
                "[storage]\nlease_ms = 10\n",
                "storage.lease_ms: must be at least 1000",
            ),
            (
                "[limits]\nrate_limit_burst = 0\n",
                "limits.rate_limit_burst: must be at least 1",
            ),
            (
                "[telemetry]\nlog_format = \"xml\"\n",
                "telemetry.log_format: unknown variant `xml`",
            ),
            (
                "[telemetry]\notlp_endpoint = \"https://collector\"\n",
                "telemetry.otlp_endpoint: https is not supported",
            ),
            (
                "[health]\nwindow_size = 5\n",
                "health.window_size: unknown field",
            ),
            ("port = 9999\n", "port: unknown field `port`"),
        ];
        for (text, want) in cases {
            let (_dir, path) = config_file(text);
            let e = parse(&["--config", &path]).unwrap_err().to_string();
            assert!(e.starts_with(&format!("{path}: ")), "{text:?}: {e}");
            assert!(e.contains(want), "{text:?}: {e}");
        }
        let (_dir, path) = config_file("[server]\nport = 1\n[server\n");
        let e = parse(&["--config", &path]).unwrap_err().to_string();
        assert!(e.starts_with(&format!("{path}: ")), "{e}");
        assert!(e.contains("(line 3)"), "{e}");
        let (_dir, path) = config_file("\n\n[server]\nworkers = -1\n");
        let e = parse(&["--config", &path]).unwrap_err().to_string();
        assert!(e.contains("(line 4)"), "{e}");
        let e = parse(&["--config", "/nonexistent/reroute.toml"])
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("/nonexistent/reroute.toml: cannot read it"),
            "{e}"
        );
    }

    #[test]
    fn a_bad_flag_is_named_as_a_flag_when_the_matches_tell() {
        let e = resolve(&["--workers", "0"]).unwrap_err().to_string();
        assert!(e.starts_with("--workers: must be at least 1"), "{e}");
    }

    /// With PostgreSQL a holder checks its lease before a send, renews it
    /// every third of the lease, and a send lasts up to the processor
    /// timeout: a lease that does not outlast timeout + renewal could run
    /// out, and the payment be taken over, while a send is in flight.
    #[test]
    fn a_lease_that_does_not_outlast_the_processor_timeout_and_a_renewal_is_refused() {
        let pg = "postgres://postgres@127.0.0.1:5432/test";
        // 7500 - 2500 (a third) = 5000: not more than the timeout.
        let e = resolve(&[
            "--store",
            pg,
            "--lease-ms",
            "7500",
            "--processor-timeout-ms",
            "5000",
        ])
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("--lease-ms: "), "{e}");
        for part in [
            "7500 ms",
            "5000 ms",
            "--processor-timeout-ms",
            "2500 ms",
            "at least 7501 ms",
            "at most 4999 ms",
        ] {
            assert!(e.contains(part), "{part:?} not in {e}");
        }
        assert!(
            resolve(&[
                "--store",
                pg,
                "--lease-ms",
                "7501",
                "--processor-timeout-ms",
                "5000"
            ])
            .is_ok()
        );
        // A timeout raised past the default lease names the lease's key.
        let e = resolve(&["--store", pg, "--processor-timeout-ms", "7000"])
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("storage.lease_ms: "), "{e}");
        assert!(e.contains("10000 ms") && e.contains("7000 ms"), "{e}");
        // The defaults hold together.
        assert!(resolve(&["--store", pg]).is_ok());
        // The embedded store has no lease.
        assert!(
            resolve(&[
                "--db",
                "r.db",
                "--lease-ms",
                "1000",
                "--processor-timeout-ms",
                "5000"
            ])
            .is_ok()
        );
        // From a file, the file's key is named.
        let (_dir, path) =
            config_file("[routing]\nprocessor_timeout_ms = 2000\n\n[storage]\nlease_ms = 3000\n");
        let e = parse(&["--config", &path, "--store", pg])
            .unwrap_err()
            .to_string();
        assert!(e.starts_with(&format!("{path}: storage.lease_ms: ")), "{e}");
    }

    #[test]
    fn the_lease_and_the_timeout_a_refusal_suggests_are_exactly_the_limits() {
        // The number after `what` in the message.
        let suggested = |message: &str, what: &str| -> u64 {
            let rest = &message[message.find(what).expect(what) + what.len()..];
            rest.split(' ').next().unwrap().parse().unwrap()
        };
        for lease in [1_000, 1_001, 1_002, 2_000, 3_000, 7_500, 10_000, 12_345] {
            for timeout in [
                1, 2, 3, 666, 667, 1_000, 1_333, 2_001, 5_000, 6_667, 8_229, 9_999,
            ] {
                let Err(e) = check_lease(lease, timeout, "the default") else {
                    continue;
                };
                let least = suggested(&e, "at least ");
                assert!(check_lease(least, timeout, "").is_ok(), "{e}");
                assert!(check_lease(least - 1, timeout, "").is_err(), "{e}");
                let longest = suggested(&e, "at most ");
                assert!(check_lease(lease, longest, "").is_ok(), "{e}");
                assert!(check_lease(lease, longest + 1, "").is_err(), "{e}");
            }
        }
    }

    #[test]
    fn rate_limiting_is_off_unless_a_rate_is_set() {
        assert!(parse(&[]).unwrap().rate_limit.is_none());
        assert!(
            parse(&["--rate-limit-burst", "5"])
                .unwrap()
                .rate_limit
                .is_none()
        );
        let limit = parse(&["--rate-limit-per-second", "20"])
            .unwrap()
            .rate_limit
            .unwrap();
        assert_eq!((limit.per_second.get(), limit.burst.get()), (20, 20));
        assert!(!limit.trust_forwarded_for);
        let (_dir, path) = config_file(
            "[limits]\nrate_limit_per_second = 5\nrate_limit_burst = 12\ntrust_forwarded_for = true\n",
        );
        let limit = parse(&["--config", &path]).unwrap().rate_limit.unwrap();
        assert_eq!((limit.per_second.get(), limit.burst.get()), (5, 12));
        assert!(limit.trust_forwarded_for);
        // 0 on the command line turns off what the file turned on.
        let c = parse(&["--config", &path, "--rate-limit-per-second", "0"]).unwrap();
        assert!(c.rate_limit.is_none());
        let c = parse(&["--config", &path, "--trust-forwarded-for=false"]).unwrap();
        assert!(!c.rate_limit.unwrap().trust_forwarded_for);
    }

    #[test]
    fn otlp_export_is_off_unless_an_endpoint_is_set() {
        let c = parse(&[]).unwrap();
        if std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").is_none() {
            assert!(c.telemetry.otlp.is_none());
        }
        let c = parse(&["--otlp-endpoint", ""]).unwrap();
        assert!(c.telemetry.otlp.is_none(), "empty is unset");
        let (_dir, path) = config_file(
            "[telemetry]\notlp_endpoint = \"http://collector:4318/\"\notlp_service_name = \"router-a\"\n",
        );
        let otlp = parse(&["--config", &path, "--instance", "a1"])
            .unwrap()
            .telemetry
            .otlp
            .unwrap();
        assert_eq!(otlp.endpoint, "http://collector:4318");
        assert_eq!(otlp.service_name, "router-a");
        assert_eq!(otlp.instance, "a1");
    }

    #[test]
    fn the_printed_configuration_is_a_file_for_the_same_configuration() {
        let (_dir, path) = config_file(
            "[server]\nport = 8080\nadmin_token = \"s3cret\"\n\n[limits]\nrate_limit_per_second = 50\n\n[telemetry]\notlp_endpoint = \"http://u:pw@collector:4318\"\n",
        );
        let (c, origins) = resolve(&["--config", &path, "--workers", "3"]).unwrap();
        let text = c.render_masked(&origins);
        assert!(!text.contains("s3cret"), "{text}");
        assert!(!text.contains(":pw@"), "{text}");
        assert!(text.contains("admin_token = \"********\""), "{text}");
        assert!(
            text.contains(&format!("port = 8080  # file {path}")),
            "{text}"
        );
        assert!(text.contains("workers = 3  # --workers"), "{text}");
        assert!(text.contains("patience_ms = 60000  # default"), "{text}");
        assert!(
            text.contains("rate_limit_per_second = 50  # file"),
            "{text}"
        );
        // Read back as a --config file, it describes the same router (less
        // the masked secrets, which it leaves out).
        let (_dir2, printed) = config_file(&text);
        let again = parse(&["--config", &printed, "--admin-token", "s3cret"]).unwrap();
        let mut expected = c.clone();
        expected.telemetry.otlp.as_mut().unwrap().endpoint = "http://u:****@collector:4318".into();
        assert_eq!(format!("{again:?}"), format!("{expected:?}"));
    }
}
