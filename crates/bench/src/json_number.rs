//! Exact decimals as JSON numbers, both ways, never through a float.
//!
//! Summaries arrive as JSON numbers (`"totalAmount": 333364.8`) and the result
//! leaves as JSON numbers; the number's own text is what is read and written.
//! Use with `#[serde(with = "crate::json_number")]`.

use rust_decimal::Decimal;
use serde::de::Error as _;
use serde::ser::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

/// Writes `value` as a JSON number with no trailing zeros (`19.9`, `0`,
/// `380035.872`), as the official script's numbers print.
pub fn serialize<S: Serializer>(value: &Decimal, serializer: S) -> Result<S::Ok, S::Error> {
    let raw = RawValue::from_string(to_text(*value)).map_err(S::Error::custom)?;
    raw.serialize(serializer)
}

/// Reads a JSON number exactly. A number written as a string (`"19.90"`) is
/// accepted too, as the official script (big.js) accepts it.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Decimal, D::Error> {
    let raw = Box::<RawValue>::deserialize(deserializer)?;
    let text = raw.get().trim();
    let text = text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(text);
    parse(text).map_err(|e| D::Error::custom(format!("{text} is not an exact decimal: {e}")))
}

/// Parses decimal text, with or without an exponent, refusing (not rounding)
/// what does not fit 28 significant digits.
pub fn parse(text: &str) -> Result<Decimal, rust_decimal::Error> {
    if text.contains(['e', 'E']) {
        Decimal::from_scientific(text)
    } else {
        Decimal::from_str_exact(text)
    }
}

/// The shortest exact text of `value`: `19.90` -> `19.9`, `-0` -> `0`.
pub fn to_text(value: Decimal) -> String {
    if value.is_zero() {
        "0".to_owned()
    } else {
        value.normalize().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Serialize, serde::Deserialize)]
    struct Holder {
        #[serde(with = "super")]
        amount: Decimal,
    }

    fn read(json: &str) -> Result<Decimal, serde_json::Error> {
        serde_json::from_str::<Holder>(json).map(|h| h.amount)
    }

    #[test]
    fn reads_numbers_exactly() {
        assert_eq!(read(r#"{"amount": 19.90}"#).unwrap().to_string(), "19.90");
        assert_eq!(
            read(r#"{"amount": 333364.8}"#).unwrap(),
            "333364.8".parse().unwrap()
        );
        assert_eq!(read(r#"{"amount": 0.1}"#).unwrap(), "0.1".parse().unwrap());
        assert_eq!(
            read(r#"{"amount": 1.99e1}"#).unwrap(),
            "19.9".parse().unwrap()
        );
        assert_eq!(read(r#"{"amount": 0}"#).unwrap(), Decimal::ZERO);
        assert_eq!(
            read(r#"{"amount": "19.90"}"#).unwrap(),
            "19.9".parse().unwrap()
        );
        // A float sum from a sloppy backend is kept as sent, not tidied.
        assert_eq!(
            read(r#"{"amount": 2985.0000000000005}"#)
                .unwrap()
                .to_string(),
            "2985.0000000000005"
        );
    }

    #[test]
    fn refuses_what_is_not_a_number() {
        assert!(read(r#"{"amount": null}"#).is_err());
        assert!(read(r#"{"amount": "abc"}"#).is_err());
        assert!(read(r#"{"amount": true}"#).is_err());
    }

    #[test]
    fn writes_plain_numbers_without_trailing_zeros() {
        let json = |text: &str| {
            serde_json::to_string(&Holder {
                amount: text.parse().unwrap(),
            })
            .unwrap()
        };
        assert_eq!(json("19.90"), r#"{"amount":19.9}"#);
        assert_eq!(json("380035.872"), r#"{"amount":380035.872}"#);
        assert_eq!(json("0.00"), r#"{"amount":0}"#);
        assert_eq!(json("-0.0"), r#"{"amount":0}"#);
        assert_eq!(json("16668.2400"), r#"{"amount":16668.24}"#);
        assert_eq!(json("100"), r#"{"amount":100}"#);
    }
}
