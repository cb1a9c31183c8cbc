//! Money: integer minor units, parsed from and written as exact decimal text.
//!
//! Amounts arrive as JSON numbers (`19.90`). They are never read through a
//! float: the number's text is parsed digit by digit into cents, so `0.1 + 0.2`
//! problems cannot exist and "more than two decimals" is detected exactly.

use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign};

use serde_json::value::RawValue;

/// An amount in minor units (cents). Two decimal places, always.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Money(i64);

/// Why an amount was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("amount must be a decimal number")]
    NotANumber,
    #[error("amount must have at most 2 decimal places")]
    TooManyDecimals,
    #[error("amount is too large (the maximum is {})", Money::MAX)]
    TooLarge,
}

/// A decimal read from text: `mantissa x 10^-scale`, sign apart.
struct Decimal {
    negative: bool,
    mantissa: u128,
    scale: i64,
    /// Non-zero digits were dropped below the last one kept: the value is a
    /// little more than `mantissa x 10^-scale` (only ever far below a cent).
    sticky: bool,
}

impl Decimal {
    /// Parses the JSON number grammar (`-?digits[.digits][e[+-]digits]`);
    /// a leading `+` or bare `.5` is refused as JSON refuses it.
    fn parse(text: &str) -> Result<Self, MoneyError> {
        let bytes = text.as_bytes();
        let mut i = 0;
        let negative = bytes.first() == Some(&b'-');
        if negative {
            i += 1;
        }
        let mut mantissa: u128 = 0;
        let mut scale: i64 = 0;
        let mut digits = 0usize;
        let mut overflow = false;
        let mut sticky = false;
        let mut push = |mantissa: &mut u128, d: u8| match mantissa
            .checked_mul(10)
            .and_then(|m| m.checked_add(u128::from(d - b'0')))
        {
            Some(m) => *mantissa = m,
            None => overflow = true,
        };
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            push(&mut mantissa, bytes[i]);
            digits += 1;
            i += 1;
        }
        if digits == 0 {
            return Err(MoneyError::NotANumber);
        }
        if i < bytes.len() && bytes[i] == b'.' {
            i += 1;
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                // Past 36 digits of precision, further decimals only matter
                // as "something non-zero was there".
                if mantissa >= 10u128.pow(36) {
                    sticky |= bytes[i] != b'0';
                } else {
                    push(&mut mantissa, bytes[i]);
                    scale += 1;
                }
                i += 1;
            }
            if i == start {
                return Err(MoneyError::NotANumber);
            }
        }
        if i < bytes.len() && (bytes[i] == b'e' || bytes[i] == b'E') {
            i += 1;
            let exp_negative = match bytes.get(i) {
                Some(b'-') => {
                    i += 1;
                    true
                }
                Some(b'+') => {
                    i += 1;
                    false
                }
                _ => false,
            };
            let start = i;
            let mut exponent: i64 = 0;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                exponent = exponent
                    .saturating_mul(10)
                    .saturating_add(i64::from(bytes[i] - b'0'));
                i += 1;
            }
            if i == start {
                return Err(MoneyError::NotANumber);
            }
            scale = if exp_negative {
                scale.saturating_add(exponent)
            } else {
                scale.saturating_sub(exponent)
            };
        }
        if i != bytes.len() {
            return Err(MoneyError::NotANumber);
        }
        if overflow {
            return Err(MoneyError::TooLarge);
        }
        Ok(Self {
            negative,
            mantissa,
            scale,
            sticky,
        })
    }

    /// Removes trailing zeros below the decimal point (`19.900` -> `19.9`).
    fn normalized(mut self) -> Self {
        while self.scale > 0 && self.mantissa.is_multiple_of(10) {
            self.mantissa /= 10;
            self.scale -= 1;
        }
        if self.mantissa == 0 {
            self.scale = 0;
        }
        self
    }
}

impl Money {
    /// The largest amount accepted: one billion major units. Anything above is
    /// far more likely a client bug than a payment.
    pub const MAX: Money = Money(100_000_000_000);
    pub const ZERO: Money = Money(0);

    pub const fn from_minor(minor: i64) -> Self {
        Self(minor)
    }

    pub const fn minor(self) -> i64 {
        self.0
    }

    pub fn is_positive(self) -> bool {
        self.0 > 0
    }

    /// Parses decimal text that must be exact in cents (`19.9`, `19.90`,
    /// `1990e-2`); a third significant decimal is an error, never rounded.
    pub fn parse_exact(text: &str) -> Result<Self, MoneyError> {
        let d = Decimal::parse(text)?.normalized();
        if d.scale > 2 || d.sticky {
            return Err(MoneyError::TooManyDecimals);
        }
        Self::from_decimal(d.negative, d.mantissa, d.scale)
    }

    /// Parses decimal text and rounds it to cents, half to even (as a
    /// processor that keeps two decimals does).
    pub fn parse_rounded(text: &str) -> Result<Self, MoneyError> {
        let d = Decimal::parse(text)?.normalized();
        if d.scale <= 2 && !d.sticky {
            return Self::from_decimal(d.negative, d.mantissa, d.scale);
        }
        let drop = u32::try_from(d.scale - 2).map_err(|_| MoneyError::TooLarge)?;
        let divisor = 10u128.checked_pow(drop);
        let (quotient, remainder, divisor) = match divisor {
            Some(div) => (d.mantissa / div, d.mantissa % div, div),
            // Far more decimals than digits: the value rounds to zero.
            None => return Ok(Money(0)),
        };
        let twice = remainder * 2;
        let above_half = twice > divisor || (twice == divisor && d.sticky);
        let rounded = if above_half || (twice == divisor && !quotient.is_multiple_of(2)) {
            quotient + 1
        } else {
            quotient
        };
        Self::from_decimal(d.negative, rounded, 2)
    }

    fn from_decimal(negative: bool, mantissa: u128, scale: i64) -> Result<Self, MoneyError> {
        let factor = 10u128
            .checked_pow(u32::try_from(2 - scale).map_err(|_| MoneyError::TooLarge)?)
            .ok_or(MoneyError::TooLarge)?;
        let cents = mantissa.checked_mul(factor).ok_or(MoneyError::TooLarge)?;
        if cents > Self::MAX.0 as u128 {
            return Err(MoneyError::TooLarge);
        }
        let cents = cents as i64;
        Ok(Money(if negative { -cents } else { cents }))
    }

    pub fn checked_add(self, other: Money) -> Option<Money> {
        self.0.checked_add(other.0).map(Money)
    }

    /// The JSON number for this amount, exactly as [`fmt::Display`] writes it.
    pub fn to_json_number(self) -> Box<RawValue> {
        RawValue::from_string(self.to_string()).expect("a decimal literal is valid JSON")
    }
}

impl fmt::Display for Money {
    /// `1990` -> `19.90`; `-5` -> `-0.05`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", abs / 100, abs % 100)
    }
}

impl Add for Money {
    type Output = Money;
    /// Sums of ledger amounts: saturates rather than wraps (the per-payment
    /// maximum keeps real totals far from `i64::MAX`).
    fn add(self, other: Money) -> Money {
        Money(self.0.saturating_add(other.0))
    }
}

impl AddAssign for Money {
    fn add_assign(&mut self, other: Money) {
        *self = *self + other;
    }
}

impl Sum for Money {
    fn sum<I: Iterator<Item = Money>>(iter: I) -> Money {
        iter.fold(Money::ZERO, Add::add)
    }
}

impl serde::Serialize for Money {
    /// Written as a JSON number with two decimals (`19.90`), never via a float.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json_number().serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for Money {
    /// Read from the number's own text: exact, at most two decimals.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = <&'de RawValue>::deserialize(d)?;
        Money::parse_exact(raw.get()).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn exact_amounts_parse_to_cents() {
        assert_eq!(Money::parse_exact("19.90"), Ok(Money(1990)));
        assert_eq!(Money::parse_exact("19.9"), Ok(Money(1990)));
        assert_eq!(Money::parse_exact("19"), Ok(Money(1900)));
        assert_eq!(Money::parse_exact("0.01"), Ok(Money(1)));
        assert_eq!(Money::parse_exact("19.900000"), Ok(Money(1990)));
        assert_eq!(Money::parse_exact("1990e-2"), Ok(Money(1990)));
        assert_eq!(Money::parse_exact("1.99E1"), Ok(Money(1990)));
        assert_eq!(Money::parse_exact("-3.5"), Ok(Money(-350)));
        assert_eq!(Money::parse_exact("0"), Ok(Money(0)));
    }

    #[test]
    fn third_decimal_is_refused_not_rounded() {
        assert_eq!(
            Money::parse_exact("19.901"),
            Err(MoneyError::TooManyDecimals)
        );
        assert_eq!(
            Money::parse_exact("0.001"),
            Err(MoneyError::TooManyDecimals)
        );
    }

    #[test]
    fn non_numbers_are_refused() {
        for bad in [
            "",
            "-",
            "abc",
            "1.",
            ".5",
            "1e",
            "+1",
            "1,5",
            "19.90x",
            "NaN",
            "\"19.90\"",
        ] {
            assert_eq!(
                Money::parse_exact(bad),
                Err(MoneyError::NotANumber),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn absurd_amounts_are_refused() {
        assert_eq!(
            Money::parse_exact("1000000000.01"),
            Err(MoneyError::TooLarge)
        );
        assert_eq!(Money::parse_exact("1e300"), Err(MoneyError::TooLarge));
        assert_eq!(
            Money::parse_exact("99999999999999999999999999999999999999999"),
            Err(MoneyError::TooLarge)
        );
        assert_eq!(Money::parse_exact("1000000000"), Ok(Money::MAX));
    }

    #[test]
    fn rounding_is_half_to_even() {
        assert_eq!(Money::parse_rounded("19.905"), Ok(Money(1990)));
        assert_eq!(Money::parse_rounded("19.915"), Ok(Money(1992)));
        assert_eq!(Money::parse_rounded("19.9051"), Ok(Money(1991)));
        assert_eq!(Money::parse_rounded("19.904999"), Ok(Money(1990)));
        assert_eq!(Money::parse_rounded("-0.125"), Ok(Money(-12)));
        assert_eq!(Money::parse_rounded("1e-400"), Ok(Money(0)));
        // The reference processor's own sample: a float printed in full.
        assert_eq!(
            Money::parse_rounded("77.8299999999999982946974341757595539093017578125"),
            Ok(Money(7783))
        );
        assert_eq!(
            Money::parse_rounded("0.00500000000000000000000000000000000000001"),
            Ok(Money(1))
        );
        assert_eq!(
            Money::parse_exact("77.8299999999999982946974341757595539093017578125"),
            Err(MoneyError::TooManyDecimals)
        );
    }

    #[test]
    fn display_writes_two_decimals() {
        assert_eq!(Money(1990).to_string(), "19.90");
        assert_eq!(Money(5).to_string(), "0.05");
        assert_eq!(Money(-5).to_string(), "-0.05");
        assert_eq!(Money(33_335_680).to_string(), "333356.80");
    }

    #[test]
    fn json_round_trip_is_exact() {
        #[derive(serde::Serialize, serde::Deserialize)]
        struct Body {
            amount: Money,
        }
        let body: Body = serde_json::from_str(r#"{"amount": 19.90}"#).unwrap();
        assert_eq!(body.amount, Money(1990));
        assert_eq!(serde_json::to_string(&body).unwrap(), r#"{"amount":19.90}"#);
        assert!(serde_json::from_str::<Body>(r#"{"amount": "19.90"}"#).is_err());
        assert!(serde_json::from_str::<Body>(r#"{"amount": 19.999}"#).is_err());
    }

    proptest! {
        #[test]
        fn any_cents_round_trip_through_text(cents in -Money::MAX.0..=Money::MAX.0) {
            let m = Money(cents);
            prop_assert_eq!(Money::parse_exact(&m.to_string()), Ok(m));
            prop_assert_eq!(Money::parse_rounded(&m.to_string()), Ok(m));
        }

        #[test]
        fn parsing_arbitrary_text_never_panics(text in "\\PC{0,40}") {
            let _ = Money::parse_exact(&text);
            let _ = Money::parse_rounded(&text);
        }

        #[test]
        fn rounding_stays_within_half_a_cent(cents in 0i64..1_000_000_000, extra in 0u32..1000) {
            let text = format!("{}{:03}", Money(cents), extra);
            let rounded = Money::parse_rounded(&text).unwrap();
            let exact_millis = i128::from(cents) * 1000 + i128::from(extra);
            let diff = (i128::from(rounded.0) * 1000 - exact_millis).abs();
            prop_assert!(diff <= 500);
        }
    }
}
