//! Fees as exact decimals.
//!
//! The reference processor keeps its fee as a .NET `decimal` and answers the
//! summary's `totalFee` as `totalAmount x fee`, exact, with the scale of both
//! factors (`19.90 x 0.05 = 0.9950`). The bench computes the Rinha score from
//! these figures, so the simulator does the same arithmetic: no floats.

use std::fmt;
use std::str::FromStr;

use reroute_core::Money;
use serde_json::value::RawValue;

/// A processor's fee per transaction as a fraction of the amount
/// (`0.05` = 5%), kept exactly as written: `units x 10^-scale`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FeeRate {
    units: u64,
    scale: u32,
}

/// Why a fee was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeeRateError {
    #[error("fee must be a decimal number such as 0.05")]
    NotADecimal,
    #[error("fee must be between 0 and 1 (a fraction of the amount: 0.05 is 5%)")]
    OutOfRange,
    #[error("fee has too many decimal places (at most {})", FeeRate::MAX_SCALE)]
    TooPrecise,
}

impl FeeRate {
    /// More decimals than any real fee needs; keeps every product in `i128`.
    pub const MAX_SCALE: u32 = 9;

    /// `units x 10^-scale`, e.g. `FeeRate::new(5, 2)` is 0.05.
    pub fn new(units: u64, scale: u32) -> Result<Self, FeeRateError> {
        if scale > Self::MAX_SCALE {
            return Err(FeeRateError::TooPrecise);
        }
        if u128::from(units) > 10u128.pow(scale) {
            return Err(FeeRateError::OutOfRange);
        }
        Ok(Self { units, scale })
    }

    /// The fee charged on `amount`, exact (scale `2 + self.scale`).
    pub fn fee_on(self, amount: Money) -> ExactDecimal {
        ExactDecimal {
            mantissa: i128::from(amount.minor()) * i128::from(self.units),
            scale: 2 + self.scale,
        }
    }

    /// The value as a float, for display and for callers that only compare.
    pub fn as_f64(self) -> f64 {
        self.units as f64 / 10f64.powi(self.scale as i32)
    }

    fn to_decimal(self) -> ExactDecimal {
        ExactDecimal {
            mantissa: i128::from(self.units),
            scale: self.scale,
        }
    }
}

impl FromStr for FeeRate {
    type Err = FeeRateError;

    /// `digits[.digits]`, as written in a flag, an environment variable or
    /// TOML. Trailing zeros are kept (`0.050` stays `0.050`), as `decimal` does.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (int, frac) = s.split_once('.').unwrap_or((s, ""));
        let all_digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
        if int.is_empty() || !all_digits(int) || !all_digits(frac) || s.ends_with('.') {
            return Err(FeeRateError::NotADecimal);
        }
        let scale = u32::try_from(frac.len()).map_err(|_| FeeRateError::TooPrecise)?;
        if scale > Self::MAX_SCALE {
            return Err(FeeRateError::TooPrecise);
        }
        let int = int.trim_start_matches('0');
        if int.len() > 1 {
            return Err(FeeRateError::OutOfRange);
        }
        let units: u64 = format!("{int}{frac}").parse().unwrap_or(0);
        Self::new(units, scale)
    }
}

impl fmt::Display for FeeRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.to_decimal().fmt(f)
    }
}

impl serde::Serialize for FeeRate {
    /// A JSON number written exactly (`0.05`), never via a float.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_decimal().serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for FeeRate {
    /// Accepts a string (`"0.05"`) or a number. TOML hands numbers over as
    /// `f64`; the shortest text that reads back as the same float is the text
    /// the user wrote for any fee with a few decimals (`0.05` -> "0.05").
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = FeeRate;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a fee between 0 and 1, such as 0.05")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<FeeRate, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<FeeRate, E> {
                if !v.is_finite() || v < 0.0 {
                    return Err(E::custom(FeeRateError::OutOfRange));
                }
                format!("{v}").parse().map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<FeeRate, E> {
                v.to_string().parse().map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<FeeRate, E> {
                v.to_string().parse().map_err(E::custom)
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// A decimal computed exactly: `mantissa x 10^-scale`, written with all its
/// `scale` digits (the summary's `totalFee`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExactDecimal {
    pub mantissa: i128,
    pub scale: u32,
}

impl ExactDecimal {
    /// The JSON number for this value, exactly as [`fmt::Display`] writes it.
    pub fn to_json_number(self) -> Box<RawValue> {
        RawValue::from_string(self.to_string()).expect("a decimal literal is valid JSON")
    }
}

impl fmt::Display for ExactDecimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.mantissa < 0 { "-" } else { "" };
        let abs = self.mantissa.unsigned_abs();
        if self.scale == 0 {
            return write!(f, "{sign}{abs}");
        }
        let divisor = 10u128.pow(self.scale);
        let width = self.scale as usize;
        write!(f, "{sign}{}.{:0width$}", abs / divisor, abs % divisor)
    }
}

impl serde::Serialize for ExactDecimal {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json_number().serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn fees_parse_as_written() {
        assert_eq!("0.05".parse::<FeeRate>().unwrap().to_string(), "0.05");
        assert_eq!("0.15".parse::<FeeRate>().unwrap().to_string(), "0.15");
        assert_eq!("0.050".parse::<FeeRate>().unwrap().to_string(), "0.050");
        assert_eq!("1".parse::<FeeRate>().unwrap().to_string(), "1");
        assert_eq!("0".parse::<FeeRate>().unwrap().to_string(), "0");
        assert_eq!("00.5".parse::<FeeRate>().unwrap().to_string(), "0.5");
    }

    #[test]
    fn fees_outside_zero_to_one_or_not_decimal_are_refused() {
        assert_eq!("1.5".parse::<FeeRate>(), Err(FeeRateError::OutOfRange));
        assert_eq!("10".parse::<FeeRate>(), Err(FeeRateError::OutOfRange));
        for bad in ["", "-0.05", "abc", ".05", "0.", "5%", "0.0.5", "1e-2"] {
            assert_eq!(
                bad.parse::<FeeRate>(),
                Err(FeeRateError::NotADecimal),
                "{bad:?}"
            );
        }
        assert_eq!(
            "0.0000000001".parse::<FeeRate>(),
            Err(FeeRateError::TooPrecise)
        );
    }

    #[test]
    fn fee_on_an_amount_keeps_both_scales_like_a_dotnet_decimal() {
        let fee: FeeRate = "0.05".parse().unwrap();
        assert_eq!(fee.fee_on(Money::from_minor(1990)).to_string(), "0.9950");
        assert_eq!(fee.fee_on(Money::from_minor(0)).to_string(), "0.0000");
        let fee: FeeRate = "0.15".parse().unwrap();
        assert_eq!(
            fee.fee_on(Money::from_minor(33_335_680)).to_string(),
            "50003.5200"
        );
    }

    #[test]
    fn fees_are_written_as_json_numbers() {
        let fee: FeeRate = "0.05".parse().unwrap();
        assert_eq!(serde_json::to_string(&fee).unwrap(), "0.05");
        let back: FeeRate = serde_json::from_str("0.05").unwrap();
        assert_eq!(back, fee);
        let back: FeeRate = serde_json::from_str("\"0.05\"").unwrap();
        assert_eq!(back, fee);
    }

    #[test]
    fn negative_exact_decimals_keep_their_sign() {
        assert_eq!(
            ExactDecimal {
                mantissa: -5,
                scale: 3
            }
            .to_string(),
            "-0.005"
        );
        assert_eq!(
            ExactDecimal {
                mantissa: 42,
                scale: 0
            }
            .to_string(),
            "42"
        );
    }

    proptest! {
        #[test]
        fn any_fee_round_trips_through_text(units in 0u64..=1000, scale in 3u32..=9) {
            let fee = FeeRate::new(units, scale).unwrap();
            prop_assert_eq!(fee.to_string().parse::<FeeRate>(), Ok(fee));
        }

        #[test]
        fn float_fees_from_toml_read_back_exactly(thousandths in 0u64..=1000) {
            let fee = FeeRate::new(thousandths, 3).unwrap();
            let float = fee.as_f64();
            let back: FeeRate = serde_json::from_str(&format!("{float}")).unwrap();
            prop_assert_eq!(back.as_f64(), float);
        }
    }
}
