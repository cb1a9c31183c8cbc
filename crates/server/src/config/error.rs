//! Why a configuration was refused: one error naming the place the bad
//! value came from (the flag, the variable, or the file and its key), so
//! the operator knows what to fix before the router starts.

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `key` names where the value came from: the flag, the environment
    /// variable, or the configuration file and the key in it.
    #[error("{key}: {problem}")]
    Invalid { key: String, problem: String },
}

pub(super) fn invalid(key: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        problem: problem.into(),
    }
}
