//! Money: `parse_exact` and `parse_rounded` against a decimal reference,
//! display, JSON and addition.

use proptest::prelude::*;
use reroute_core::{Money, MoneyError};

use super::config;

/// The largest accepted amount, in cents.
const MAX_CENTS: i128 = 100_000_000_000;

/// What the reference model says about a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reference {
    NotANumber,
    Number {
        /// Its magnitude exceeds the maximum amount.
        too_large: bool,
        /// It is a whole number of cents.
        exact: bool,
        /// Rounded half to even to cents; `None` when it has more than
        /// twelve digits of cents (far beyond the maximum).
        rounded: Option<i128>,
    },
}

/// The reference reading of `-?digits[.digits][(e|E)[+-]digits]`: the digits
/// are kept as text and shifted by the exponent, so no precision is lost
/// whatever their number.
fn reference(text: &str) -> Reference {
    let (negative, rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(at) => (&rest[..at], Some(&rest[at + 1..])),
        None => (rest, None),
    };
    let (int, frac) = match mantissa.split_once('.') {
        Some((int, frac)) => (int, Some(frac)),
        None => (mantissa, None),
    };
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(int) || frac.is_some_and(|f| !all_digits(f)) {
        return Reference::NotANumber;
    }
    // The exponent, saturated far beyond anything that can matter for the
    // few hundred digits the generators produce.
    let exponent: i128 = match exponent {
        None => 0,
        Some(e) => {
            let (sign, digits) = match e.as_bytes().first() {
                Some(b'-') => (-1, &e[1..]),
                Some(b'+') => (1, &e[1..]),
                _ => (1, e),
            };
            if !all_digits(digits) {
                return Reference::NotANumber;
            }
            let magnitude = digits.bytes().fold(0i128, |acc, d| {
                (acc * 10 + i128::from(d - b'0')).min(1 << 80)
            });
            sign * magnitude
        }
    };
    let frac = frac.unwrap_or("");
    let digits = format!("{int}{frac}");
    let digits = digits.trim_start_matches('0');
    let signed = |cents: i128| if negative { -cents } else { cents };
    let number = |whole: Option<i128>, under: &str| {
        // `whole`: the whole cents (None: more than 12 digits of them);
        // `under`: the digits below the cent, if any.
        let under = under.trim_end_matches('0');
        let up = match under.as_bytes().first() {
            Some(b'6'..=b'9') => true,
            Some(b'5') => under.len() > 1 || whole.is_some_and(|w| w % 2 == 1),
            _ => false,
        };
        Reference::Number {
            too_large: whole.is_none_or(|w| w > MAX_CENTS || (w == MAX_CENTS && !under.is_empty())),
            exact: under.is_empty(),
            rounded: whole.map(|w| signed(w + i128::from(up))),
        }
    };
    if digits.is_empty() {
        return number(Some(0), "");
    }
    // value in cents = digits x 10^shift
    let shift = exponent - frac.len() as i128 + 2;
    let len = digits.len() as i128;
    if shift >= 0 {
        let whole =
            (len + shift <= 12).then(|| digits.parse::<i128>().unwrap() * 10i128.pow(shift as u32));
        return number(whole, "");
    }
    let below = -shift;
    if below > len {
        // At least one zero right below the cent: less than half a cent.
        return number(Some(0), "1");
    }
    let cut = (len - below) as usize;
    let whole = if cut == 0 {
        Some(0)
    } else {
        (cut <= 12).then(|| digits[..cut].parse::<i128>().unwrap())
    };
    number(whole, &digits[cut..])
}

/// What `parse_exact` must answer for a text the reference read. An amount
/// both too large and inexact may be refused for either reason.
fn exact_answer(text: &str) -> Vec<Result<i128, MoneyError>> {
    match reference(text) {
        Reference::NotANumber => vec![Err(MoneyError::NotANumber)],
        Reference::Number {
            too_large: true,
            exact: true,
            ..
        } => vec![Err(MoneyError::TooLarge)],
        Reference::Number {
            too_large: true,
            exact: false,
            ..
        } => {
            vec![Err(MoneyError::TooLarge), Err(MoneyError::TooManyDecimals)]
        }
        Reference::Number { exact: false, .. } => vec![Err(MoneyError::TooManyDecimals)],
        Reference::Number { rounded, .. } => vec![Ok(rounded.unwrap())],
    }
}

/// What `parse_rounded` must answer.
fn rounded_answer(text: &str) -> Result<i128, MoneyError> {
    match reference(text) {
        Reference::NotANumber => Err(MoneyError::NotANumber),
        Reference::Number { rounded, .. } => match rounded {
            Some(r) if r.abs() <= MAX_CENTS => Ok(r),
            _ => Err(MoneyError::TooLarge),
        },
    }
}

fn cents(m: Money) -> i128 {
    i128::from(m.minor())
}

/// Text in the JSON number grammar (with the leading zeros the parser also
/// takes), shaped to reach every branch: short and very long digit runs,
/// zeros that only pad, and exponents from none to absurd.
fn number_text() -> impl Strategy<Value = String> {
    let digits = prop_oneof![
        "[0-9]{1,3}",
        "[0-9]{1,14}",
        "0{0,40}[1-9][0-9]{0,60}0{0,40}",
        "[0-9]{30,90}",
    ];
    let frac = prop_oneof![
        Just(String::new()),
        "[0-9]{1,3}".prop_map(|d| format!(".{d}")),
        "[0-9]{1,60}".prop_map(|d| format!(".{d}")),
        "0{30,45}[0-9]{0,10}".prop_map(|d| format!(".{d}")),
    ];
    let exponent = prop_oneof![
        3 => Just(String::new()),
        2 => ("[eE]", "[+-]?", "[0-9]{1,2}").prop_map(|(e, s, d)| format!("{e}{s}{d}")),
        1 => ("[eE]", "[+-]?", "[0-9]{3,25}").prop_map(|(e, s, d)| format!("{e}{s}{d}")),
    ];
    ("-?", digits, frac, exponent).prop_map(|(sign, d, f, e)| format!("{sign}{d}{f}{e}"))
}

/// JSON numbers proper: [`number_text`] without leading zeros.
fn json_number_text() -> impl Strategy<Value = String> {
    number_text().prop_map(|t| {
        let (sign, rest) = t.split_at(usize::from(t.starts_with('-')));
        let int_len = rest.find(['.', 'e', 'E']).unwrap_or(rest.len());
        let int = rest[..int_len].trim_start_matches('0');
        let int = if int.is_empty() { "0" } else { int };
        format!("{sign}{int}{}", &rest[int_len..])
    })
}

/// Text close to the grammar: numbers with one character inserted, removed
/// or replaced, and arbitrary text.
fn near_number_text() -> impl Strategy<Value = String> {
    prop_oneof![
        number_text(),
        (
            number_text(),
            any::<prop::sample::Index>(),
            "[-+.eE0-9a ,\"]"
        )
            .prop_map(|(t, at, c)| {
                let mut chars: Vec<char> = t.chars().collect();
                let i = at.index(chars.len() + 1);
                chars.insert(i, c.chars().next().unwrap());
                chars.into_iter().collect()
            }),
        (number_text(), any::<prop::sample::Index>()).prop_map(|(t, at)| {
            let mut chars: Vec<char> = t.chars().collect();
            chars.remove(at.index(chars.len()));
            chars.into_iter().collect()
        }),
        "\\PC{0,20}",
        "[-+.eE0-9 ]{0,12}",
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn parse_exact_agrees_with_the_decimal_reference(text in near_number_text()) {
        let got = Money::parse_exact(&text).map(cents);
        let want = exact_answer(&text);
        prop_assert!(want.contains(&got), "{:?}: got {:?}, want one of {:?}", text, got, want);
    }

    #[test]
    fn parse_rounded_is_half_to_even_of_the_exact_value(text in near_number_text()) {
        prop_assert_eq!(Money::parse_rounded(&text).map(cents), rounded_answer(&text), "{:?}", text);
    }

    #[test]
    fn exact_and_rounded_agree_whenever_the_amount_is_exact(text in number_text()) {
        if let Ok(exact) = Money::parse_exact(&text) {
            prop_assert_eq!(Money::parse_rounded(&text), Ok(exact));
        }
    }

    #[test]
    fn rounding_ties_go_to_the_even_cent(whole in 0i64..MAX_CENTS as i64, zeros in 0usize..30) {
        // whole + 0.5 cent, written with trailing zeros
        let text = format!("{}5{}", Money::from_minor(whole), "0".repeat(zeros));
        let want = if whole % 2 == 0 { whole } else { whole + 1 };
        prop_assert_eq!(Money::parse_rounded(&text), Ok(Money::from_minor(want)));
    }

    #[test]
    fn display_is_two_decimals_and_parses_back(minor in any::<i64>()) {
        let m = Money::from_minor(minor);
        let text = m.to_string();
        let (int, frac) = text.trim_start_matches('-').split_once('.').unwrap();
        prop_assert!(int.bytes().all(|b| b.is_ascii_digit()) && !int.is_empty());
        prop_assert_eq!(frac.len(), 2);
        prop_assert_eq!(text.starts_with('-'), minor < 0);
        // The text is the exact value: the reference reads it back.
        let fits = i128::from(minor).abs() <= MAX_CENTS;
        let read = reference(&text);
        prop_assert!(
            matches!(read, Reference::Number { too_large, exact: true, rounded }
                if too_large != fits && (rounded == Some(i128::from(minor)) || rounded.is_none() && !fits)),
            "{} read as {:?}", text, read
        );
        if i128::from(minor).abs() <= MAX_CENTS {
            prop_assert_eq!(Money::parse_exact(&text), Ok(m));
        } else {
            prop_assert_eq!(Money::parse_exact(&text), Err(MoneyError::TooLarge));
        }
    }

    #[test]
    fn json_round_trip_is_exact_for_every_accepted_amount(minor in -MAX_CENTS as i64..=MAX_CENTS as i64) {
        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
        struct Body {
            amount: Money,
        }
        let body = Body { amount: Money::from_minor(minor) };
        let json = serde_json::to_string(&body).unwrap();
        prop_assert_eq!(&json, &format!(r#"{{"amount":{}}}"#, body.amount));
        prop_assert_eq!(serde_json::from_str::<Body>(&json).unwrap(), body);
    }

    #[test]
    fn json_numbers_deserialize_as_parse_exact_reads_their_text(text in json_number_text()) {
        // (As a raw value: a `Value` would refuse what overflows an f64.)
        prop_assert!(serde_json::from_str::<Box<serde_json::value::RawValue>>(&text).is_ok(), "{}", text);
        let got = serde_json::from_str::<Money>(&text).ok();
        prop_assert_eq!(got, Money::parse_exact(&text).ok());
    }

    #[test]
    fn addition_is_exact_or_saturates_and_checked_add_says_which(a in any::<i64>(), b in any::<i64>()) {
        let sum = i128::from(a) + i128::from(b);
        let (ma, mb) = (Money::from_minor(a), Money::from_minor(b));
        prop_assert_eq!(
            ma.checked_add(mb).map(cents),
            (i128::from(i64::MIN)..=i128::from(i64::MAX)).contains(&sum).then_some(sum)
        );
        prop_assert_eq!(cents(ma + mb), sum.clamp(i128::from(i64::MIN), i128::from(i64::MAX)));
        let mut acc = ma;
        acc += mb;
        prop_assert_eq!(acc, ma + mb);
    }

    #[test]
    fn sums_of_ledger_amounts_are_exact(amounts in prop::collection::vec(1i64..=MAX_CENTS as i64, 0..200)) {
        let total: Money = amounts.iter().copied().map(Money::from_minor).sum();
        prop_assert_eq!(cents(total), amounts.iter().map(|&a| i128::from(a)).sum::<i128>());
    }
}

#[test]
fn money_edges_of_i64_and_of_the_maximum() {
    assert_eq!(
        Money::from_minor(i64::MIN).to_string(),
        "-92233720368547758.08"
    );
    assert_eq!(
        Money::from_minor(i64::MAX).to_string(),
        "92233720368547758.07"
    );
    assert_eq!(Money::parse_exact("1000000000.00"), Ok(Money::MAX));
    assert_eq!(
        Money::parse_exact("-1000000000"),
        Ok(Money::from_minor(-MAX_CENTS as i64))
    );
    assert_eq!(
        Money::parse_exact("1000000000.01"),
        Err(MoneyError::TooLarge)
    );
    assert_eq!(Money::parse_rounded("1000000000.004"), Ok(Money::MAX));
    // A tie at the maximum goes to the even cent, which is the maximum.
    assert_eq!(Money::parse_rounded("1000000000.005"), Ok(Money::MAX));
    assert_eq!(
        Money::parse_rounded("1000000000.0051"),
        Err(MoneyError::TooLarge)
    );
    assert_eq!(
        Money::parse_rounded("1000000000.015"),
        Err(MoneyError::TooLarge)
    );
    assert_eq!(
        Money::parse_exact("92233720368547758.07"),
        Err(MoneyError::TooLarge)
    );
    assert_eq!(
        Money::from_minor(i64::MAX).checked_add(Money::from_minor(1)),
        None
    );
    assert_eq!(
        Money::from_minor(i64::MAX) + Money::from_minor(1),
        Money::from_minor(i64::MAX)
    );
    assert_eq!(
        Money::from_minor(i64::MIN) + Money::from_minor(-1),
        Money::from_minor(i64::MIN)
    );
}

#[test]
fn exponents_beyond_any_integer_neither_panic_nor_mislead() {
    let huge = "9".repeat(40);
    assert_eq!(
        Money::parse_exact(&format!("1e{huge}")),
        Err(MoneyError::TooLarge)
    );
    assert_eq!(
        Money::parse_rounded(&format!("1e{huge}")),
        Err(MoneyError::TooLarge)
    );
    assert_eq!(
        Money::parse_exact("1e9223372036854775807"),
        Err(MoneyError::TooLarge)
    );
    assert_eq!(
        Money::parse_exact("1e9223372036854775808"),
        Err(MoneyError::TooLarge)
    );
    assert_eq!(
        Money::parse_exact("0e99999999999999999999"),
        Ok(Money::ZERO)
    );
    // Zero with a vast negative exponent is zero, read at once (it used to
    // take a loop round per unit of exponent: a request that never ends).
    assert_eq!(
        Money::parse_exact("0e-9223372036854775807"),
        Ok(Money::ZERO)
    );
    assert_eq!(
        Money::parse_rounded("-0.000e-99999999999999999999"),
        Ok(Money::ZERO)
    );
    // A tiny amount is tiny, whatever the size of its exponent.
    assert_eq!(Money::parse_rounded(&format!("1e-{huge}")), Ok(Money::ZERO));
    assert_eq!(Money::parse_rounded("5e-4294967299"), Ok(Money::ZERO));
    assert_eq!(
        Money::parse_exact(&format!("1e-{huge}")),
        Err(MoneyError::TooManyDecimals)
    );
    // A long significand scaled down into range is read, not "too large".
    let long = format!("1234567{}e-{}", "0".repeat(50), 52);
    assert_eq!(Money::parse_exact(&long), Ok(Money::from_minor(1_234_567)));
    let long = format!("1234567{}e-{}", "9".repeat(50), 52);
    assert_eq!(
        Money::parse_rounded(&long),
        Ok(Money::from_minor(1_234_568))
    );
}
