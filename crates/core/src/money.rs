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
    /// little more than `mantissa x 10^-scale`. Digits are dropped only past
    /// [`KEPT`], so for any amount up to [`Money::MAX`] they lie far below
    /// a cent.
    sticky: bool,
}

/// Significant digits beyond this many (36) are not kept, only remembered
/// as `sticky`; the mantissa therefore always fits in a `u128`.
const KEPT: u128 = 10u128.pow(36);

/// What lies below the last whole cent of a decimal.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Below {
    Nothing,
    UnderHalf,
    Half,
    OverHalf,
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
        let mut sticky = false;
        let push = |mantissa: &mut u128, d: u8| *mantissa = *mantissa * 10 + u128::from(d - b'0');
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            if mantissa >= KEPT {
                // A dropped integer digit still counts for the magnitude.
                sticky |= bytes[i] != b'0';
                scale -= 1;
            } else {
                push(&mut mantissa, bytes[i]);
            }
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
                // Past the kept precision, further decimals only matter as
                // "something non-zero was there".
                if mantissa >= KEPT {
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
        Ok(Self {
            negative,
            mantissa,
            scale,
            sticky,
        })
    }

    /// Removes trailing zeros below the decimal point (`19.900` -> `19.9`).
    fn normalized(mut self) -> Self {
        // Zero first: stripping its "trailing zeros" would loop once per
        // unit of scale, and `0e-9223372036854775807` has a lot of them.
        if self.mantissa == 0 {
            self.scale = 0;
            return self;
        }
        // At most 37 rounds: the mantissa has no more digits than that.
        while self.scale > 0 && self.mantissa.is_multiple_of(10) {
            self.mantissa /= 10;
            self.scale -= 1;
        }
        self
    }

    /// The magnitude in whole cents (`None`: beyond a `u128`) and what
    /// lies below the last cent.
    fn cents(&self) -> (Option<u128>, Below) {
        if self.scale <= 2 {
            // Whole cents: shift left. Sticky digits lie 36 places or more
            // below the leading one: under half a cent for any amount that
            // is not far beyond the maximum anyway.
            let whole = u32::try_from(2i64.saturating_sub(self.scale))
                .ok()
                .and_then(|shift| 10u128.checked_pow(shift))
                .and_then(|factor| self.mantissa.checked_mul(factor));
            let below = if self.sticky {
                Below::UnderHalf
            } else {
                Below::Nothing
            };
            return (whole, below);
        }
        let divisor = u32::try_from(self.scale - 2)
            .ok()
            .and_then(|drop| 10u128.checked_pow(drop));
        let Some(divisor) = divisor else {
            // More than 38 places below the cent, and a mantissa under
            // 10^37: less than half a cent (not nothing: it was normalized).
            return (Some(0), Below::UnderHalf);
        };
        let (whole, rest) = (self.mantissa / divisor, self.mantissa % divisor);
        let below = match (rest * 2).cmp(&divisor) {
            std::cmp::Ordering::Less if rest == 0 && !self.sticky => Below::Nothing,
            std::cmp::Ordering::Less => Below::UnderHalf,
            std::cmp::Ordering::Equal if self.sticky => Below::OverHalf,
            std::cmp::Ordering::Equal => Below::Half,
            std::cmp::Ordering::Greater => Below::OverHalf,
        };
        (Some(whole), below)
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
    /// An amount beyond [`Money::MAX`] is too large, whatever its decimals.
    pub fn parse_exact(text: &str) -> Result<Self, MoneyError> {
        let d = Decimal::parse(text)?.normalized();
        let (whole, below) = d.cents();
        let max = Self::MAX.0 as u128;
        match whole {
            Some(w) if w < max || (w == max && below == Below::Nothing) => {
                if below == Below::Nothing {
                    Ok(Self::signed(d.negative, w))
                } else {
                    Err(MoneyError::TooManyDecimals)
                }
            }
            _ => Err(MoneyError::TooLarge),
        }
    }

    /// Parses decimal text and rounds it to cents, half to even (as a
    /// processor that keeps two decimals does).
    pub fn parse_rounded(text: &str) -> Result<Self, MoneyError> {
        let d = Decimal::parse(text)?.normalized();
        let (whole, below) = d.cents();
        let up =
            below == Below::OverHalf || (below == Below::Half && whole.is_some_and(|w| w % 2 == 1));
        whole
            .and_then(|w| w.checked_add(u128::from(up)))
            .filter(|&cents| cents <= Self::MAX.0 as u128)
            .map(|cents| Self::signed(d.negative, cents))
            .ok_or(MoneyError::TooLarge)
    }

    /// `cents` is at most [`Money::MAX`], so it fits an `i64`.
    fn signed(negative: bool, cents: u128) -> Self {
        let cents = cents as i64;
        Money(if negative { -cents } else { cents })
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
