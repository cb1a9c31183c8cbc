//! Instants against the civil-calendar formula, and windows built from them.

use proptest::prelude::*;
use reroute_core::{Timestamp, TimestampError, Window};

use super::config;

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
