//! How the four layers (flag, environment, file, default) are laid on one
//! another, setting by setting: the first that has a value wins, and its
//! [`Origin`] is remembered for `reroute config` and for error messages.

use std::fmt;
use std::path::PathBuf;

use clap::ArgMatches;
use clap::parser::ValueSource;

use super::error::{ConfigError, invalid};
use super::settings::Arg;

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
    pub(super) fn outranks(&self, other: &Origin) -> bool {
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
    pub(super) by_key: Vec<(&'static str, Origin)>,
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

/// One setting as the layers gave it: `value` is `None` when none did.
pub(super) struct Picked<T> {
    pub(super) key: &'static str,
    pub(super) value: Option<T>,
    pub(super) origin: Origin,
}

/// Lays the layers on one another, setting by setting, and remembers where
/// each value came from.
pub(super) struct Resolver<'a> {
    pub(super) matches: Option<&'a ArgMatches>,
    pub(super) file: Option<PathBuf>,
    pub(super) origins: Origins,
}

impl Resolver<'_> {
    pub(super) fn origin_of(&self, arg: Arg) -> Origin {
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
    /// else `file`, the file's value under the setting's key.
    pub(super) fn pick<T, const N: usize>(
        &mut self,
        args: [(Arg, Option<T>); N],
        file: Option<T>,
    ) -> Picked<T> {
        let key = args.first().map_or("", |(arg, _)| arg.key);
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
    pub(super) fn invalid(
        &self,
        key: &str,
        origin: &Origin,
        problem: impl Into<String>,
    ) -> ConfigError {
        invalid(self.name(key, origin), problem)
    }

    /// Where the value of `key` was set, as a person would look for it:
    /// the flag, the variable, or the file and the key in it.
    pub(super) fn name(&self, key: &str, origin: &Origin) -> String {
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
    pub(super) fn check<U>(
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

    pub(super) fn or(self, default: T) -> T {
        self.value.unwrap_or(default)
    }

    pub(super) fn or_else_default(self, default: impl FnOnce() -> T) -> T {
        self.value.unwrap_or_else(default)
    }
}
