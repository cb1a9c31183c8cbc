//! Payment identifiers.
//!
//! The correlation id is the client's idempotency key: the same id is the same
//! payment, everywhere (ledger, queue, processors' books).

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

/// A payment's correlation id: a UUID chosen by the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CorrelationId(Uuid);

/// Why a correlation id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("correlationId must be a UUID (e.g. 4a7901b8-7d26-4d9d-aa19-4dc1c7cf60b3)")]
pub struct InvalidCorrelationId;

impl CorrelationId {
    /// A fresh random id (v4), as a client would generate.
    pub fn new_random() -> Self {
        Self(Uuid::new_v4())
    }

    pub fn from_uuid(uuid: Uuid) -> Self {
        Self(uuid)
    }

    pub fn as_uuid(&self) -> &Uuid {
        &self.0
    }

    /// The 16 raw bytes, the compact key used by stores.
    pub fn as_bytes(&self) -> &[u8; 16] {
        self.0.as_bytes()
    }

    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(Uuid::from_bytes(bytes))
    }
}

impl FromStr for CorrelationId {
    type Err = InvalidCorrelationId;

    /// Accepts the hyphenated form (any case), the one the protocol uses.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 36 {
            return Err(InvalidCorrelationId);
        }
        Uuid::try_parse(s)
            .map(Self)
            .map_err(|_| InvalidCorrelationId)
    }
}

impl fmt::Display for CorrelationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl serde::Serialize for CorrelationId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0.hyphenated())
    }
}

impl<'de> serde::Deserialize<'de> for CorrelationId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hyphenated_uuid_round_trips() {
        let text = "4a7901b8-7d26-4d9d-aa19-4dc1c7cf60b3";
        let id: CorrelationId = text.parse().unwrap();
        assert_eq!(id.to_string(), text);
        assert_eq!(CorrelationId::from_bytes(*id.as_bytes()), id);
    }

    #[test]
    fn non_uuids_are_refused() {
        for bad in [
            "",
            "abc",
            "4a7901b87d264d9daa194dc1c7cf60b3",
            "4a7901b8-7d26-4d9d-aa19-4dc1c7cf60bz",
            "{4a7901b8-7d26-4d9d-aa19-4dc1c7cf60b}",
        ] {
            assert_eq!(
                bad.parse::<CorrelationId>(),
                Err(InvalidCorrelationId),
                "{bad}"
            );
        }
    }
}
