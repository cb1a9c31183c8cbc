//! A transaction's outcome at a processor, the one fact the health engine
//! is fed: the router's workers observe it for each payment they send, and
//! merchants report it through the intelligence API (parsed here from the
//! seed's words, once, at that edge).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What became of one transaction at a processor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Authorized.
    Approved,
    /// Refused for a business reason (a decline counts against the
    /// authorization rate).
    Declined,
    /// A technical failure: definitely not processed.
    Error,
    /// No answer in time: maybe processed. A technical failure too.
    Timeout,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Approved => "approved",
            Outcome::Declined => "declined",
            Outcome::Error => "error",
            Outcome::Timeout => "timeout",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a result was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("result must be one of approved, declined, error, timeout")]
pub struct InvalidOutcome;

impl FromStr for Outcome {
    type Err = InvalidOutcome;

    /// The seed's lower-case words; case is ignored.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            Outcome::Approved,
            Outcome::Declined,
            Outcome::Error,
            Outcome::Timeout,
        ]
        .into_iter()
        .find(|o| o.as_str().eq_ignore_ascii_case(s.trim()))
        .ok_or(InvalidOutcome)
    }
}
