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
//!
//! By concern: `settings` names every setting once (flag, variable, file
//! key) and holds the defaults; `args` is layers 1 and 2, `file` layer 3,
//! `processors` the registry file; `layers` lays them on one another and
//! remembers origins; `validate` checks values; `resolve` builds the
//! typed [`ServeConfig`] (`serve`); `render` prints it back for
//! `reroute config`. `docs/configuration.md` lists every setting, generated
//! from `settings` and clap's help (checked by a test). Nothing here
//! imports the rest of the router but [`crate::telemetry`]'s settings types:
//! the configuration sits under every layer that reads it.

mod args;
mod error;
mod file;
mod layers;
mod processors;
mod render;
mod resolve;
mod serve;
mod settings;
mod validate;

#[cfg(test)]
mod docs_table;
#[cfg(test)]
mod tests;

pub use args::ServeArgs;
pub use error::ConfigError;
pub use layers::{Origin, Origins};
pub use serve::{BODY_READ_TIMEOUT, MAX_BODY_BYTES, RateLimit, ServeConfig, StoreChoice};
pub use validate::{is_country, is_method, lease_renewal_interval};
