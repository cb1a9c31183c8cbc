//! Instants on the wire: UTC, millisecond precision.
//!
//! The processors keep `requestedAt` to the millisecond and compare window
//! bounds inclusively, so reroute does the same everywhere: an instant is an
//! integer count of milliseconds since the Unix epoch, written as
//! `2025-07-10T12:34:56.789Z`.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};

/// Milliseconds since 1970-01-01T00:00:00Z.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

/// Why a timestamp was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("timestamp must be ISO-8601 / RFC 3339, e.g. 2025-07-10T12:34:56.000Z")]
pub struct TimestampError;

impl Timestamp {
    pub const MIN: Timestamp = Timestamp(i64::MIN);
    pub const MAX: Timestamp = Timestamp(i64::MAX);

    pub const fn from_millis(ms: i64) -> Self {
        Self(ms)
    }

    pub const fn millis(self) -> i64 {
        self.0
    }

    /// The current instant. The only clock read in this crate; pure code takes
    /// `now` as an argument instead of calling this.
    pub fn now() -> Self {
        Self(Utc::now().timestamp_millis())
    }

    pub fn plus_millis(self, ms: i64) -> Self {
        Self(self.0.saturating_add(ms))
    }

    fn to_datetime(self) -> Option<DateTime<Utc>> {
        DateTime::<Utc>::from_timestamp_millis(self.0)
    }
}

impl FromStr for Timestamp {
    type Err = TimestampError;

    /// Accepts RFC 3339 with any offset (converted to UTC) and, as the
    /// processors do, a bare date-time without offset, read as UTC. Digits
    /// below the millisecond are truncated.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        // `YYYY-MM-DD?hh:mm:ss`, every digit in its place, the form
        // Display writes: chrono's `%Y` would also read `-001` or `+12025`,
        // its `%d` a one-digit day, its `%H` a hour after a space — texts
        // that do not read back.
        let shape = s.as_bytes().get(..19);
        let digit_places = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18];
        if !shape.is_some_and(|b| {
            digit_places.iter().all(|&i| b[i].is_ascii_digit())
                && [b[4], b[7], b[13], b[16]] == *b"--::"
        }) {
            return Err(TimestampError);
        }
        if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
            return Ok(Self(dt.timestamp_millis()));
        }
        for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
            if let Ok(naive) = NaiveDateTime::parse_from_str(s, format) {
                return Ok(Self(naive.and_utc().timestamp_millis()));
            }
        }
        Err(TimestampError)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_datetime() {
            Some(dt) => f.write_str(&dt.to_rfc3339_opts(SecondsFormat::Millis, true)),
            None => write!(f, "@{}ms", self.0),
        }
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// An inclusive window `[from, to]`; a missing bound is unbounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub from: Timestamp,
    pub to: Timestamp,
}

impl Window {
    pub const ALL: Window = Window {
        from: Timestamp::MIN,
        to: Timestamp::MAX,
    };

    pub fn new(from: Option<Timestamp>, to: Option<Timestamp>) -> Self {
        Self {
            from: from.unwrap_or(Timestamp::MIN),
            to: to.unwrap_or(Timestamp::MAX),
        }
    }

    pub fn contains(&self, t: Timestamp) -> bool {
        self.from <= t && t <= self.to
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn formats_utc_with_millis() {
        let t = Timestamp::from_millis(1_752_150_896_789);
        assert_eq!(t.to_string(), "2025-07-10T12:34:56.789Z");
        assert_eq!(
            Timestamp::from_millis(0).to_string(),
            "1970-01-01T00:00:00.000Z"
        );
    }

    #[test]
    fn parses_the_forms_clients_send() {
        let want = Timestamp::from_millis(1_752_150_896_789);
        for text in [
            "2025-07-10T12:34:56.789Z",
            "2025-07-10T12:34:56.789+00:00",
            "2025-07-10T09:34:56.789-03:00",
            "2025-07-10T12:34:56.789",
            "2025-07-10T12:34:56.789999Z",
        ] {
            assert_eq!(text.parse::<Timestamp>(), Ok(want), "{text}");
        }
        assert_eq!(
            "2025-07-10T12:34:56Z".parse::<Timestamp>(),
            Ok(Timestamp::from_millis(1_752_150_896_000))
        );
    }

    #[test]
    fn refuses_garbage() {
        for bad in [
            "",
            "yesterday",
            "2025-13-10T12:34:56Z",
            "2025-07-10",
            "1752150896789",
            "-001-01-01T00:00:00",
            "+12025-07-10T00:00:00",
            "+2025-07-10T00:00:00Z",
        ] {
            assert_eq!(bad.parse::<Timestamp>(), Err(TimestampError), "{bad}");
        }
    }

    /// Found by the property `a_non_digit_in_a_digit_place_is_refused`:
    /// chrono reads a one-digit day, and skips the space before the hour.
    #[test]
    fn every_digit_place_holds_a_digit() {
        for bad in [
            "0000-01-1T 00:00:00",
            "2025-07-1T 12:34:56Z",
            "2025-7-10T12:34:56Z",
            "2025-07-10T 2:34:56Z",
            "2025-07-10T12: 4:56Z",
            "2025-07-10T12:34: 6",
        ] {
            assert_eq!(bad.parse::<Timestamp>(), Err(TimestampError), "{bad}");
        }
    }

    #[test]
    fn window_bounds_are_inclusive_and_optional() {
        let w = Window::new(Some(Timestamp(10)), Some(Timestamp(20)));
        assert!(w.contains(Timestamp(10)) && w.contains(Timestamp(20)));
        assert!(!w.contains(Timestamp(9)) && !w.contains(Timestamp(21)));
        assert!(Window::new(None, Some(Timestamp(20))).contains(Timestamp(i64::MIN)));
        assert!(Window::ALL.contains(Timestamp(0)));
    }

    proptest! {
        #[test]
        fn display_then_parse_is_identity(ms in -30_000_000_000_000i64..250_000_000_000_000) {
            let t = Timestamp(ms);
            prop_assert_eq!(t.to_string().parse::<Timestamp>(), Ok(t));
        }
    }
}
