//! Layers 1 and 2, the command line and the environment: `reroute serve`'s
//! flags as clap reads them, each with its environment variable. Nothing is
//! defaulted or checked here; [`super::resolve`] lays the file and the
//! defaults under these values and validates them.

use std::net::IpAddr;
use std::path::PathBuf;

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
    /// [default: 5000]. A payment's send waits longer when the processor
    /// announced a delay at least this long: that delay plus the landing
    /// margin.
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

    /// A file the core and its edges share, in which the edges accept
    /// payments themselves, without waiting for the core (the embedded
    /// store and --edge-socket only; on a volume every edge sees; at
    /// `stable` a 2xx waits for its slot's sync): docs/ARCHITECTURE.md,
    /// "Accepts at the edge".
    #[arg(long, env = "REROUTE_ACCEPT_TABLE")]
    pub accept_table: Option<PathBuf>,

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

    /// How long a summary waits before it reads, on a store shared by
    /// several instances (PostgreSQL), in ms [default: 100]: time for the
    /// other instances to commit the outcomes they had when it was asked.
    /// It counts those and none answered later; one whose commit takes
    /// longer is missed (docs/postgres.md, "Summaries across instances").
    #[arg(long, env = "REROUTE_SUMMARY_SETTLE_MS")]
    pub summary_settle_ms: Option<u64>,

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
