//! Property tests of the parsers at the edge: money, instants, windows and
//! correlation ids. Each parser is checked against a small reference model
//! written here from the documented grammar (decimal strings and `i128`
//! arithmetic for money, the civil-calendar formula for instants), on inputs
//! generated to hit the edges: long significands, huge exponents, leading
//! zeros, the largest amount, `i64` limits, offsets, sub-millisecond digits,
//! and arbitrary text.
//!
//! `PROPTEST_CASES=N` runs every property with N cases (256 by default).

use std::str::FromStr;

use proptest::prelude::*;
use reroute_core::{CorrelationId, Money, MoneyError, Timestamp, TimestampError, Window};

/// The cases come from `PROPTEST_CASES` (256 by default); shrinking is
/// bounded so that a failure over long texts reports in seconds.
fn config() -> ProptestConfig {
    ProptestConfig {
        max_shrink_iters: 2_000,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ------------------------------------------------------------------ money

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

// ------------------------------------------------------------------ time

/// Days from 1970-01-01 to the civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// A date-time as a client may write it, and the instant it means.
#[derive(Debug, Clone)]
struct Written {
    text: String,
    millis: i64,
}

fn written_instant() -> impl Strategy<Value = Written> {
    let date = (0i64..=9999, 1u32..=12, 1u32..=31)
        .prop_map(|(y, m, d)| (y, m, d.min(days_in_month(y, m))));
    let time = (0u32..24, 0u32..60, 0u32..60);
    let frac = prop_oneof![Just(String::new()), "[0-9]{1,9}"];
    // (suffix, offset in minutes east of UTC)
    let zone = prop_oneof![
        Just(("Z".to_owned(), 0i64)),
        Just(("z".to_owned(), 0)),
        Just((String::new(), 0)),
        (any::<bool>(), 0i64..24, 0i64..60).prop_map(|(east, h, m)| {
            let sign = if east { '+' } else { '-' };
            let minutes = (h * 60 + m) * if east { 1 } else { -1 };
            (format!("{sign}{h:02}:{m:02}"), minutes)
        }),
    ];
    (date, time, frac, zone, prop::bool::ANY).prop_map(
        |((y, mo, d), (h, mi, s), frac, (zone, offset), space)| {
            let sep = if space && zone.is_empty() { ' ' } else { 'T' };
            let dot = if frac.is_empty() { "" } else { "." };
            let text = format!("{y:04}-{mo:02}-{d:02}{sep}{h:02}:{mi:02}:{s:02}{dot}{frac}{zone}");
            let millis_digits = format!("{frac:0<3}");
            let ms: i64 = millis_digits[..3].parse().unwrap();
            let seconds = days_from_civil(y, mo, d) * 86_400
                + i64::from(h) * 3_600
                + i64::from(mi) * 60
                + i64::from(s)
                - offset * 60;
            Written {
                text,
                millis: seconds * 1_000 + ms,
            }
        },
    )
}

/// The range whose instants Display writes with a four-digit year.
const YEAR_0: i64 = -62_167_219_200_000;
const YEAR_10000: i64 = 253_402_300_800_000;

proptest! {
    #![proptest_config(config())]

    #[test]
    fn written_instants_parse_to_the_civil_calendar_reference(w in written_instant()) {
        prop_assert_eq!(w.text.parse::<Timestamp>(), Ok(Timestamp::from_millis(w.millis)), "{}", w.text);
    }

    #[test]
    fn surrounding_whitespace_is_ignored(w in written_instant(), pad in "[ \t\n]{0,3}") {
        let text = format!("{pad}{}{pad}", w.text);
        prop_assert_eq!(text.parse::<Timestamp>(), Ok(Timestamp::from_millis(w.millis)));
    }

    #[test]
    fn display_is_utc_millis_and_parses_back(ms in YEAR_0..YEAR_10000) {
        let t = Timestamp::from_millis(ms);
        let text = t.to_string();
        prop_assert_eq!(text.len(), 24, "{}", text);
        prop_assert!(text.ends_with('Z'));
        prop_assert_eq!(&text[19..20], ".");
        prop_assert_eq!(text.parse::<Timestamp>(), Ok(t));
        // And the reference agrees on what the text means.
        let y: i64 = text[0..4].parse().unwrap();
        let mo: u32 = text[5..7].parse().unwrap();
        let d: u32 = text[8..10].parse().unwrap();
        let secs: i64 = text[11..13].parse::<i64>().unwrap() * 3_600
            + text[14..16].parse::<i64>().unwrap() * 60
            + text[17..19].parse::<i64>().unwrap();
        let millis: i64 = text[20..23].parse().unwrap();
        prop_assert_eq!((days_from_civil(y, mo, d) * 86_400 + secs) * 1_000 + millis, ms);
    }

    #[test]
    fn serde_round_trip_is_a_string_of_the_display(ms in YEAR_0..YEAR_10000) {
        let t = Timestamp::from_millis(ms);
        let json = serde_json::to_string(&t).unwrap();
        prop_assert_eq!(&json, &format!("\"{t}\""));
        prop_assert_eq!(serde_json::from_str::<Timestamp>(&json).unwrap(), t);
    }

    #[test]
    fn display_never_panics_on_any_instant(ms in any::<i64>()) {
        let text = Timestamp::from_millis(ms).to_string();
        prop_assert!(!text.is_empty());
    }

    #[test]
    fn dates_outside_the_calendar_are_refused(
        y in 1000i64..=9999,
        (m, d) in prop_oneof![
            (13u32..=99, 1u32..=28),
            Just((0u32, 10u32)),
            (1u32..=12, 0u32..=0),
            (1u32..=12, 32u32..=99),
        ],
        (h, mi, s) in prop_oneof![
            (0u32..24, 0u32..60, 0u32..60),
        ],
    ) {
        for zone in ["Z", "", "+01:00"] {
            let text = format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}{zone}");
            prop_assert_eq!(text.parse::<Timestamp>(), Err(TimestampError), "{}", text);
        }
    }

    #[test]
    fn the_day_after_the_last_of_a_month_is_refused(y in 1000i64..=9999, m in 1u32..=12) {
        let d = days_in_month(y, m) + 1;
        let text = format!("{y:04}-{m:02}-{d:02}T00:00:00Z");
        prop_assert_eq!(text.parse::<Timestamp>(), Err(TimestampError), "{}", text);
    }

    #[test]
    fn times_outside_the_clock_are_refused(
        w in written_instant(),
        (h, mi, s) in prop_oneof![
            (24u32..=99, 0u32..60, 0u32..60),
            (0u32..24, 60u32..=99, 0u32..60),
            (0u32..24, 0u32..60, 61u32..=99),
        ],
    ) {
        let text = format!("{}{h:02}:{mi:02}:{s:02}{}", &w.text[..11], &w.text[19..]);
        prop_assert_eq!(text.parse::<Timestamp>(), Err(TimestampError), "{}", text);
    }

    #[test]
    fn a_non_digit_in_a_digit_place_is_refused(
        w in written_instant(),
        place in prop::sample::select(vec![0usize, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18]),
        c in "[^0-9\\s]",
    ) {
        let mut text: Vec<char> = w.text.chars().collect();
        text[place] = c.chars().next().unwrap();
        let text: String = text.into_iter().collect();
        prop_assert_eq!(text.parse::<Timestamp>(), Err(TimestampError), "{}", text);
    }

    #[test]
    fn trailing_garbage_is_refused(w in written_instant(), tail in "[a-yA-Y!#/]{1,5}") {
        let text = format!("{}{tail}", w.text);
        prop_assert_eq!(text.parse::<Timestamp>(), Err(TimestampError), "{}", text);
    }

    #[test]
    fn a_year_is_four_digits_without_a_sign(w in written_instant(), prefix in "[-+][0-9]?|[0-9]") {
        let text = format!("{prefix}{}", w.text);
        prop_assert_eq!(text.parse::<Timestamp>(), Err(TimestampError), "{}", text);
    }

    #[test]
    fn parsing_any_text_never_panics_and_accepts_only_instants(text in "\\PC{0,40}") {
        if let Ok(t) = text.parse::<Timestamp>() {
            // Anything accepted names an instant that writes and reads back.
            prop_assert_eq!(t.to_string().parse::<Timestamp>(), Ok(t));
        }
    }
}

#[test]
fn the_unbounded_ends_write_without_panicking() {
    assert!(!Timestamp::MIN.to_string().is_empty());
    assert!(!Timestamp::MAX.to_string().is_empty());
    assert_eq!(Timestamp::MAX.plus_millis(1), Timestamp::MAX);
    assert_eq!(Timestamp::MIN.plus_millis(-1), Timestamp::MIN);
    assert_eq!(
        "0000-01-01T00:00:00.000Z".parse::<Timestamp>(),
        Ok(Timestamp::from_millis(YEAR_0))
    );
    assert_eq!(
        "9999-12-31T23:59:59.999Z".parse::<Timestamp>(),
        Ok(Timestamp::from_millis(YEAR_10000 - 1))
    );
}

// ------------------------------------------------------------------ windows

proptest! {
    #![proptest_config(config())]

    #[test]
    fn a_window_holds_exactly_the_instants_between_its_bounds(
        from in prop::option::of(any::<i64>()),
        to in prop::option::of(any::<i64>()),
        t in prop_oneof![any::<i64>(), Just(i64::MIN), Just(i64::MAX)],
    ) {
        let w = Window::new(from.map(Timestamp::from_millis), to.map(Timestamp::from_millis));
        let want = from.is_none_or(|f| f <= t) && to.is_none_or(|e| t <= e);
        prop_assert_eq!(w.contains(Timestamp::from_millis(t)), want);
    }

    #[test]
    fn window_bounds_are_inclusive_to_the_millisecond(from in -1i64<<50..1<<50, len in 0i64..1_000_000) {
        let (a, b) = (Timestamp::from_millis(from), Timestamp::from_millis(from + len));
        let w = Window::new(Some(a), Some(b));
        prop_assert!(w.contains(a) && w.contains(b));
        prop_assert!(!w.contains(a.plus_millis(-1)) && !w.contains(b.plus_millis(1)));
        // An inverted window holds nothing.
        let inverted = Window::new(Some(b.plus_millis(1)), Some(a));
        prop_assert!(!inverted.contains(a) && !inverted.contains(b));
        prop_assert!(Window::ALL.contains(a));
    }
}

// ------------------------------------------------------------------ ids

/// The reference: 8-4-4-4-12 hexadecimal digits, either case.
fn is_hyphenated_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

fn near_uuid_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
        "[0-9a-fA-Fg-]{36}",
        "[0-9a-f]{32}",
        "\\{[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\\}",
        "urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{11}[^0-9a-f]",
        " [0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{11}",
        "\\PC{0,40}",
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn correlation_ids_are_exactly_the_hyphenated_uuids(text in near_uuid_text()) {
        let parsed = CorrelationId::from_str(&text);
        prop_assert_eq!(parsed.is_ok(), is_hyphenated_uuid(&text), "{:?}", text);
        if let Ok(id) = parsed {
            // Written back in lower case, the same id.
            prop_assert_eq!(id.to_string(), text.to_ascii_lowercase());
        }
    }

    #[test]
    fn correlation_ids_round_trip_through_text_bytes_and_json(bytes in any::<[u8; 16]>()) {
        let id = CorrelationId::from_bytes(bytes);
        prop_assert_eq!(id.as_bytes(), &bytes);
        prop_assert_eq!(id.to_string().parse::<CorrelationId>(), Ok(id));
        prop_assert_eq!(id.to_string().to_ascii_uppercase().parse::<CorrelationId>(), Ok(id));
        let json = serde_json::to_string(&id).unwrap();
        prop_assert_eq!(&json, &format!("\"{id}\""));
        prop_assert_eq!(serde_json::from_str::<CorrelationId>(&json).unwrap(), id);
        // A JSON string with escapes is the same string.
        let escaped: String = id.to_string().chars().map(|c| format!("\\u{:04x}", c as u32)).collect();
        prop_assert_eq!(serde_json::from_str::<CorrelationId>(&format!("\"{escaped}\"")).unwrap(), id);
    }
}
