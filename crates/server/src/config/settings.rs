//! Every setting of `reroute serve` in one table: its clap id, its flag,
//! its environment variable and its key in the `--config` file, and the
//! built-in defaults under them. The command line ([`super::args`]), the
//! layering ([`super::resolve`]) and the settings table in
//! `docs/configuration.md` (checked against this one by a test) all name
//! a setting as it is written here.

pub(super) const DEFAULT_PORT: u16 = 9999;
pub(super) const DEFAULT_URL: &str = "http://127.0.0.1:8001";
pub(super) const FALLBACK_URL: &str = "http://127.0.0.1:8002";
pub(super) const DEFAULT_DB: &str = "reroute.db";
pub(super) const DEFAULT_PATIENCE_MS: u64 = 60_000;
pub(super) const DEFAULT_PROCESSOR_TIMEOUT_MS: u64 = 5_000;
pub(super) const DEFAULT_LANDING_MARGIN_MS: u64 = 2_000;
pub(super) const DEFAULT_SPILL_WAIT_MS: u64 = 1_000;
pub(super) const DEFAULT_MAX_IN_FLIGHT: u32 = 1_000;
/// Where a processor's limit starts, and the least it keeps.
pub(super) const DEFAULT_INITIAL_IN_FLIGHT: u32 = 128;
pub(super) const MIN_IN_FLIGHT: u32 = 8;
pub(super) const DEFAULT_HEALTH_INTERVAL_MS: u64 = 5_000;
pub(super) const DEFAULT_WORKERS: usize = 128;
pub(super) const DEFAULT_LEASE_MS: u64 = 10_000;
pub(super) const DEFAULT_SUMMARY_SETTLE_MS: u64 = 100;
pub(super) const DEFAULT_TRIP_AFTER: u32 = 3;
pub(super) const DEFAULT_SERVICE_NAME: &str = "reroute";

/// One setting's flag (the clap id and the long name), environment
/// variable, and key in the `--config` file (`table.key`; empty for
/// `--config` itself). A hidden alias (a seed's older name) shares the key
/// of the setting it stands for.
#[derive(Clone, Copy)]
pub(super) struct Arg {
    pub(super) id: &'static str,
    pub(super) flag: &'static str,
    pub(super) env: &'static str,
    pub(super) key: &'static str,
}

macro_rules! args {
    ($($name:ident = $id:literal, $flag:literal, $env:literal, $key:literal;)*) => {
        $(pub(super) const $name: Arg = Arg { id: $id, flag: $flag, env: $env, key: $key };)*
        /// Every setting and alias, in the order of the file's tables.
        #[cfg(test)]
        pub(super) const ALL: &[Arg] = &[$($name),*];
    };
}

args! {
    CONFIG = "config", "--config", "REROUTE_CONFIG", "";
    HOST = "host", "--host", "REROUTE_HOST", "server.host";
    UNIX_SOCKET = "unix_socket", "--unix-socket", "REROUTE_UNIX_SOCKET", "server.unix_socket";
    EDGE_SOCKET = "edge_socket", "--edge-socket", "REROUTE_EDGE_SOCKET", "server.edge_socket";
    PORT = "port", "--port", "APP_PORT", "server.port";
    SERVER_PORT = "server_port", "--server-port", "SERVER_PORT", "server.port";
    WORKERS = "workers", "--workers", "REROUTE_WORKERS", "server.workers";
    ADMIN_TOKEN = "admin_token", "--admin-token", "REROUTE_ADMIN_TOKEN", "server.admin_token";
    INSTANCE = "instance", "--instance", "REROUTE_INSTANCE", "server.instance";
    PROCESSORS = "processors", "--processors", "REROUTE_PROCESSORS", "routing.processors";
    DEFAULT_URL_ARG = "default_url", "--default-url", "DEFAULT_PROCESSOR_URL", "routing.default_url";
    PROCESSOR_DEFAULT_URL = "processor_default_url", "--processor-default-url", "PROCESSOR_DEFAULT_URL", "routing.default_url";
    FALLBACK_URL_ARG = "fallback_url", "--fallback-url", "FALLBACK_PROCESSOR_URL", "routing.fallback_url";
    PROCESSOR_FALLBACK_URL = "processor_fallback_url", "--processor-fallback-url", "PROCESSOR_FALLBACK_URL", "routing.fallback_url";
    PATIENCE_MS = "patience_ms", "--patience-ms", "REROUTE_PATIENCE_MS", "routing.patience_ms";
    PROCESSOR_TIMEOUT_MS = "processor_timeout_ms", "--processor-timeout-ms", "REQUEST_TIMEOUT", "routing.processor_timeout_ms";
    LANDING_MARGIN_MS = "landing_margin_ms", "--landing-margin-ms", "REROUTE_LANDING_MARGIN_MS", "routing.landing_margin_ms";
    SPILL_WAIT_MS = "spill_wait_ms", "--spill-wait-ms", "REROUTE_SPILL_WAIT_MS", "routing.spill_wait_ms";
    MAX_IN_FLIGHT = "max_in_flight", "--max-in-flight", "REROUTE_MAX_IN_FLIGHT", "routing.max_in_flight";
    TRIP_AFTER = "trip_after", "--trip-after", "REROUTE_TRIP_AFTER", "routing.trip_after";
    DB = "db", "--db", "REROUTE_DB", "storage.db";
    STORE = "database_url", "--store", "DATABASE_URL", "storage.store";
    LEASE_MS = "lease_ms", "--lease-ms", "REROUTE_LEASE_MS", "storage.lease_ms";
    SUMMARY_SETTLE_MS = "summary_settle_ms", "--summary-settle-ms", "REROUTE_SUMMARY_SETTLE_MS", "storage.summary_settle_ms";
    DURABILITY = "durability", "--durability", "REROUTE_DURABILITY", "storage.durability";
    ACCEPT_TABLE = "accept_table", "--accept-table", "REROUTE_ACCEPT_TABLE", "storage.accept_table";
    PROBES = "probes", "--probes", "REROUTE_PROBES", "health.probes";
    HEALTH_INTERVAL_MS = "health_interval_ms", "--health-interval-ms", "HEALTH_CHECK_INTERVAL", "health.health_interval_ms";
    HEALTH_WINDOW_SIZE = "health_window_size", "--health-window-size", "REROUTE_HEALTH_WINDOW_SIZE", "health.health_window_size";
    HEALTH_WINDOW_AGE_MS = "health_window_age_ms", "--health-window-age-ms", "REROUTE_HEALTH_WINDOW_AGE_MS", "health.health_window_age_ms";
    HEALTH_MIN_TRANSACTIONS = "health_min_transactions", "--health-min-transactions", "REROUTE_HEALTH_MIN_TRANSACTIONS", "health.health_min_transactions";
    HEALTH_TRIAL_INTERVAL_MS = "health_trial_interval_ms", "--health-trial-interval-ms", "REROUTE_HEALTH_TRIAL_INTERVAL_MS", "health.health_trial_interval_ms";
    HEALTH_FLAP_HOLD_MS = "health_flap_hold_ms", "--health-flap-hold-ms", "REROUTE_HEALTH_FLAP_HOLD_MS", "health.health_flap_hold_ms";
    LOG_FORMAT = "log_format", "--log-format", "REROUTE_LOG_FORMAT", "telemetry.log_format";
    OTLP_ENDPOINT = "otlp_endpoint", "--otlp-endpoint", "OTEL_EXPORTER_OTLP_ENDPOINT", "telemetry.otlp_endpoint";
    OTLP_SERVICE_NAME = "otlp_service_name", "--otlp-service-name", "OTEL_SERVICE_NAME", "telemetry.otlp_service_name";
    RATE_LIMIT_PER_SECOND = "rate_limit_per_second", "--rate-limit-per-second", "REROUTE_RATE_LIMIT_PER_SECOND", "limits.rate_limit_per_second";
    RATE_LIMIT_BURST = "rate_limit_burst", "--rate-limit-burst", "REROUTE_RATE_LIMIT_BURST", "limits.rate_limit_burst";
    TRUST_FORWARDED_FOR = "trust_forwarded_for", "--trust-forwarded-for", "REROUTE_TRUST_FORWARDED_FOR", "limits.trust_forwarded_for";
}
