//! Layer 3, the `--config` file: TOML whose tables group the settings by
//! concern (`[server]`, `[routing]`, `[storage]`, `[health]`, `[telemetry]`,
//! `[limits]`) and whose keys are the flags' names in snake_case. Unknown
//! keys are refused with the file, the key and the line.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::error::{ConfigError, invalid};
use crate::telemetry::LogFormat;

/// The `--config` file as written: every key optional, none unknown.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct ConfigFile {
    pub(super) server: ServerTable,
    pub(super) routing: RoutingTable,
    pub(super) storage: StorageTable,
    pub(super) health: HealthTable,
    pub(super) telemetry: TelemetryTable,
    pub(super) limits: LimitsTable,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct ServerTable {
    pub(super) host: Option<IpAddr>,
    pub(super) port: Option<u16>,
    pub(super) unix_socket: Option<PathBuf>,
    pub(super) edge_socket: Option<PathBuf>,
    pub(super) workers: Option<usize>,
    pub(super) admin_token: Option<String>,
    pub(super) instance: Option<String>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RoutingTable {
    pub(super) processors: Option<PathBuf>,
    pub(super) default_url: Option<String>,
    pub(super) fallback_url: Option<String>,
    pub(super) patience_ms: Option<u64>,
    pub(super) processor_timeout_ms: Option<u64>,
    pub(super) landing_margin_ms: Option<u64>,
    pub(super) spill_wait_ms: Option<u64>,
    pub(super) max_in_flight: Option<u32>,
    pub(super) trip_after: Option<u32>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct StorageTable {
    pub(super) db: Option<PathBuf>,
    pub(super) store: Option<String>,
    pub(super) lease_ms: Option<u64>,
    pub(super) summary_settle_ms: Option<u64>,
    pub(super) durability: Option<String>,
    pub(super) accept_table: Option<PathBuf>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct HealthTable {
    pub(super) probes: Option<bool>,
    pub(super) health_interval_ms: Option<u64>,
    pub(super) health_window_size: Option<usize>,
    pub(super) health_window_age_ms: Option<u64>,
    pub(super) health_min_transactions: Option<u32>,
    pub(super) health_trial_interval_ms: Option<u64>,
    pub(super) health_flap_hold_ms: Option<u64>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct TelemetryTable {
    pub(super) log_format: Option<LogFormat>,
    pub(super) otlp_endpoint: Option<String>,
    pub(super) otlp_service_name: Option<String>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct LimitsTable {
    pub(super) rate_limit_per_second: Option<u32>,
    pub(super) rate_limit_burst: Option<u32>,
    pub(super) trust_forwarded_for: Option<bool>,
}

impl ConfigFile {
    pub(super) fn load(path: &Path) -> Result<Self, ConfigError> {
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
    pub(super) fn parse(text: &str) -> Result<Self, (Option<String>, String)> {
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
