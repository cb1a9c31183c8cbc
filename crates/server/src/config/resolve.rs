//! Building the one [`ServeConfig`] from [`ServeArgs`] (flags and
//! environment), the `--config` file and the defaults, table by table of the
//! file: each setting is picked from its layers, checked, and placed in the
//! typed value the rest of the router reads.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use clap::ArgMatches;
use reroute_core::{CircuitConfig, LimitConfig, Policy, Registry};
use reroute_store::Durability;

use super::args::ServeArgs;
use super::error::{ConfigError, invalid};
use super::file::ConfigFile;
use super::layers::{Origin, Origins, Picked, Resolver};
use super::processors::{REGISTRY_KEY, RegistryFile};
use super::serve::{BODY_READ_TIMEOUT, MAX_BODY_BYTES, RateLimit, ServeConfig, StoreChoice};
use super::settings::*;
use super::validate::{
    at_least, between, check_lease, check_url, millis_i64, millis_or_off, not_empty,
};
use crate::telemetry::{LogFormat, OtlpConfig, TelemetryConfig};

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
            .pick([(HOST, self.host)], server.host)
            .or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let port = r
            .pick(
                [(PORT, self.port), (SERVER_PORT, self.server_port)],
                server.port,
            )
            .or(DEFAULT_PORT);
        let unix_socket = r
            .pick([(UNIX_SOCKET, self.unix_socket)], server.unix_socket)
            .value;
        let edge_socket = r
            .pick([(EDGE_SOCKET, self.edge_socket)], server.edge_socket)
            .value;
        let workers = r
            .pick([(WORKERS, self.workers)], server.workers)
            .check(&r, at_least(1))?
            .unwrap_or(DEFAULT_WORKERS);
        let admin_token = r
            .pick([(ADMIN_TOKEN, self.admin_token)], server.admin_token)
            .check(&r, |t| {
                if t.is_empty() {
                    Err("must not be empty when set".to_owned())
                } else {
                    Ok(t)
                }
            })?;
        let instance = match r
            .pick([(INSTANCE, self.instance)], server.instance)
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
            .pick([(PROCESSORS, self.processors)], routing.processors)
            .value;
        let default_url = r
            .pick(
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
                [
                    (FALLBACK_URL_ARG, self.fallback_url),
                    (PROCESSOR_FALLBACK_URL, self.processor_fallback_url),
                ],
                routing.fallback_url,
            )
            .check(&r, check_url)?
            .unwrap_or_else(|| FALLBACK_URL.to_owned());
        let patience_ms = r
            .pick([(PATIENCE_MS, self.patience_ms)], routing.patience_ms)
            .or(DEFAULT_PATIENCE_MS);
        let processor_timeout_ms = r.pick(
            [(PROCESSOR_TIMEOUT_MS, self.processor_timeout_ms)],
            routing.processor_timeout_ms,
        );
        let processor_timeout_origin = processor_timeout_ms.origin.clone();
        let processor_timeout_ms = processor_timeout_ms
            .check(&r, at_least(1))?
            .unwrap_or(DEFAULT_PROCESSOR_TIMEOUT_MS);
        let landing_margin_ms = r
            .pick(
                [(LANDING_MARGIN_MS, self.landing_margin_ms)],
                routing.landing_margin_ms,
            )
            .or(DEFAULT_LANDING_MARGIN_MS);
        let spill_wait_ms = r
            .pick([(SPILL_WAIT_MS, self.spill_wait_ms)], routing.spill_wait_ms)
            .or(DEFAULT_SPILL_WAIT_MS);
        let max_in_flight = r
            .pick([(MAX_IN_FLIGHT, self.max_in_flight)], routing.max_in_flight)
            .check(&r, between(8, 100_000))?
            .unwrap_or(DEFAULT_MAX_IN_FLIGHT);
        let trip_after = r
            .pick([(TRIP_AFTER, self.trip_after)], routing.trip_after)
            .check(&r, at_least(1))?
            .unwrap_or(DEFAULT_TRIP_AFTER);

        // [storage]
        let db = r.pick([(DB, self.db)], storage.db);
        let db_origin = db.origin.clone();
        let db = db.or_else_default(|| PathBuf::from(DEFAULT_DB));
        let lease_ms = r.pick([(LEASE_MS, self.lease_ms)], storage.lease_ms);
        let lease_origin = lease_ms.origin.clone();
        let lease_ms = lease_ms
            .check(&r, at_least(1_000))?
            .unwrap_or(DEFAULT_LEASE_MS);
        let summary_settle_ms = r
            .pick(
                [(SUMMARY_SETTLE_MS, self.summary_settle_ms)],
                storage.summary_settle_ms,
            )
            .value
            .unwrap_or(DEFAULT_SUMMARY_SETTLE_MS);
        let durability = r
            .pick([(DURABILITY, self.durability)], storage.durability)
            .check(&r, |d| d.trim().parse::<Durability>())?
            .unwrap_or_default();
        let accept_table = r.pick([(ACCEPT_TABLE, self.accept_table)], storage.accept_table);
        let store = r.pick([(STORE, self.database_url)], storage.store);
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
                    origin => format!("from {}", r.name(PROCESSOR_TIMEOUT_MS.key, origin)),
                };
                check_lease(lease_ms, processor_timeout_ms, &timeout_from)
                    .map_err(|problem| r.invalid(LEASE_MS.key, &lease_origin, problem))?;
                StoreChoice::Postgres {
                    url,
                    lease: Duration::from_millis(lease_ms),
                }
            }
        };
        let accept_table_origin = accept_table.origin.clone();
        let accept_table = accept_table.value;
        if accept_table.is_some() {
            let problem = if edge_socket.is_none() {
                Some("needs --edge-socket: only edges use it")
            } else if !matches!(store, StoreChoice::Embedded(_)) {
                Some("needs the embedded store: with PostgreSQL, run several instances")
            } else {
                None
            };
            if let Some(problem) = problem {
                return Err(r.invalid(ACCEPT_TABLE.key, &accept_table_origin, problem));
            }
        }
        // [health]
        let probes = r
            .pick([(PROBES, self.probes)], health.probes)
            .value
            .unwrap_or(true);
        let health_interval_ms = r
            .pick(
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
                [(HEALTH_WINDOW_SIZE, self.health_window_size)],
                health.health_window_size,
            )
            .check(&r, between(1, 100_000))?
        {
            engine.window_size = n;
        }
        if let Some(ms) = r
            .pick(
                [(HEALTH_WINDOW_AGE_MS, self.health_window_age_ms)],
                health.health_window_age_ms,
            )
            .check(&r, millis_i64)?
        {
            engine.window_age_ms = ms;
        }
        if let Some(n) = r
            .pick(
                [(HEALTH_MIN_TRANSACTIONS, self.health_min_transactions)],
                health.health_min_transactions,
            )
            .value
        {
            engine.min_transactions = n;
        }
        if let Some(ms) = r
            .pick(
                [(HEALTH_TRIAL_INTERVAL_MS, self.health_trial_interval_ms)],
                health.health_trial_interval_ms,
            )
            .check(&r, millis_i64)?
        {
            engine.trial_interval_ms = ms;
        }
        if let Some(ms) = r
            .pick(
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
            r.pick([(LOG_FORMAT, from_flag)], telemetry.log_format)
                .or(LogFormat::Json)
        };
        let otlp_endpoint = r
            .pick(
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
                [(OTLP_SERVICE_NAME, self.otlp_service_name)],
                telemetry.otlp_service_name,
            )
            .check(&r, not_empty)?
            .unwrap_or_else(|| DEFAULT_SERVICE_NAME.to_owned());

        // [limits]
        let per_second = r
            .pick(
                [(RATE_LIMIT_PER_SECOND, self.rate_limit_per_second)],
                limits.rate_limit_per_second,
            )
            .or(0);
        let burst = r
            .pick(
                [(RATE_LIMIT_BURST, self.rate_limit_burst)],
                limits.rate_limit_burst,
            )
            .check(&r, |n| {
                NonZeroU32::new(n).ok_or_else(|| "must be at least 1".to_owned())
            })?;
        let trust_forwarded_for = r
            .pick(
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
            accept_table,
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
            summary_settle: Duration::from_millis(summary_settle_ms),
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
