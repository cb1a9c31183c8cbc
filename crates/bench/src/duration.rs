//! Durations as people type them on the command line: `60s`, `5s`, `1m`,
//! `1500ms`, or a bare number of seconds.

use std::time::Duration;

/// Whole milliseconds, as the reports write durations (saturating).
pub fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Why a duration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("expected a duration such as 60s, 1m or 1500ms")]
    Malformed,
    #[error("the duration must be longer than zero")]
    Zero,
}

/// Parses `<integer>[ms|s|m]` (no unit means seconds). Zero is refused: a
/// test that lasts nothing measures nothing.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let text = text.trim();
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits_end);
    let number: u64 = number.parse().map_err(|_| DurationError::Malformed)?;
    let duration = match unit.trim() {
        "ms" => Duration::from_millis(number),
        "" | "s" => Duration::from_secs(number),
        "m" | "min" => Duration::from_secs(number.checked_mul(60).ok_or(DurationError::Malformed)?),
        _ => return Err(DurationError::Malformed),
    };
    if duration.is_zero() {
        return Err(DurationError::Zero);
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_usual_units() {
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("60"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("5 s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1500ms"), Ok(Duration::from_millis(1500)));
    }

    #[test]
    fn refuses_nonsense_and_zero() {
        assert_eq!(parse_duration(""), Err(DurationError::Malformed));
        assert_eq!(parse_duration("s"), Err(DurationError::Malformed));
        assert_eq!(parse_duration("1.5s"), Err(DurationError::Malformed));
        assert_eq!(parse_duration("10h"), Err(DurationError::Malformed));
        assert_eq!(parse_duration("-1s"), Err(DurationError::Malformed));
        assert_eq!(parse_duration("0s"), Err(DurationError::Zero));
    }
}
