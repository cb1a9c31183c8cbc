//! The pieces the `hostile_*` property tests share: a runner whose every
//! case is a live request to a router on port 0 (on `common::runtime`), the
//! generators of request text (valid and every way it can be wrong:
//! numbers, strings, instants, query bounds), the error shape every refusal
//! must have, and the TechCart registry as the API lists it, to judge the
//! intelligence API's answers against.

use hyper::StatusCode;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use reroute_core::{Money, Timestamp};
use serde_json::Value;

use super::*;

/// One case's verdict: `prop_assert!` failures, or `Ok`.
pub type CaseResult = Result<(), TestCaseError>;

/// Runs `check` on `cases` generated values (`PROPTEST_CASES` overrides);
/// panics with the smallest failing input found.
pub fn run<S: Strategy>(
    rt: &tokio::runtime::Runtime,
    cases: u32,
    strategy: S,
    check: impl AsyncFn(S::Value) -> CaseResult,
) where
    S::Value: std::fmt::Debug,
{
    let mut runner = TestRunner::new(Config {
        cases: proptest_cases(cases),
        failure_persistence: None,
        // Every shrinking step is a live request; a few dozen say enough.
        max_shrink_iters: 64,
        ..Config::default()
    });
    if let Err(e) = runner.run(&strategy, |value| rt.block_on(check(value))) {
        panic!("{e}");
    }
}

// ------------------------------------------------------------------ JSON text

/// Raw JSON that is not a string (nor null).
pub fn not_a_string() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("true".to_owned()),
        Just("0".to_owned()),
        Just("19.9".to_owned()),
        Just("[]".to_owned()),
        Just("{}".to_owned()),
        Just(r#"["x"]"#.to_owned()),
        Just(r#"{"a":1}"#.to_owned()),
    ]
}

/// JSON numbers for amounts: valid ones, and every way one can be wrong.
pub fn amount_text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (1i64..=Money::MAX.minor()).prop_map(|c| Money::from_minor(c).to_string()),
        1 => (-10_000i64..=0).prop_map(|c| Money::from_minor(c).to_string()),
        3 => ("-?", "(0|[1-9][0-9]{0,12})", "(\\.[0-9]{1,4})?", "([eE][+-]?[0-9]{1,3})?")
            .prop_map(|(s, i, f, e)| format!("{s}{i}{f}{e}")),
        1 => prop::sample::select(vec![
            "0", "-0", "0.00", "1e-2", "1E2", "100000000000", "1000000000.00",
            "1000000000.01", "1e400", "1e-400", "0.001", "12.345", "1e9223372036854775807",
            "0e-9223372036854775807", "0.0e-99999999999999999999",
        ])
        .prop_map(str::to_owned),
    ]
}

/// `text` with its fields in the order `seed` gives.
pub fn object(mut fields: Vec<(String, String)>, seed: u64, pad: &str) -> String {
    let mut state = seed | 1;
    for i in (1..fields.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        fields.swap(i, (state % (i as u64 + 1)) as usize);
    }
    let inner: Vec<String> = fields
        .into_iter()
        .map(|(k, v)| format!("{pad}{}{pad}:{pad}{v}{pad}", json_string(&k, false)))
        .collect();
    format!("{pad}{{{}}}{pad}", inner.join(","))
}

/// Extra fields the contract does not know (and must ignore).
pub fn extras(known: &'static [&'static str]) -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec(
        (
            "[a-zA-Z_]{1,10}".prop_filter("unknown", move |k| !known.contains(&k.as_str())),
            json_value().prop_map(|v| v.to_string()),
        ),
        0..3,
    )
}

pub fn error_field(v: &Value) -> Option<&str> {
    v.get("field").and_then(Value::as_str)
}

/// A 4xx answer is the error shape: `error` text, `field` as predicted.
pub fn check_error(
    status: StatusCode,
    body: &[u8],
    want: (StatusCode, Option<&str>),
    request: &str,
) -> CaseResult {
    let text = String::from_utf8_lossy(body);
    prop_assert_eq!(status, want.0, "{} answered {}", request, text);
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| TestCaseError::fail(format!("{request}: not JSON ({e}): {text}")))?;
    prop_assert!(v["error"].is_string(), "{}: {}", request, text);
    prop_assert_eq!(error_field(&v), want.1, "{} answered {}", request, text);
    Ok(())
}

// ------------------------------------------------------------------ instants

/// An instant between 1970 and 2100, written as a client may write it:
/// UTC with `Z`, with an offset, without a zone, with digits below the
/// millisecond. Returns the text and the millisecond it names.
pub fn written_instant(around: impl Strategy<Value = i64>) -> impl Strategy<Value = (String, i64)> {
    (
        around,
        0u8..4,
        -(23 * 60 + 59)..=(23 * 60 + 59i64),
        "[0-9]{0,4}",
    )
        .prop_map(|(ms, form, offset, sub)| (write_instant(ms, form, offset, &sub), ms))
}

pub fn write_instant(ms: i64, form: u8, offset_minutes: i64, sub_ms: &str) -> String {
    let utc = Timestamp::from_millis(ms).to_string();
    let (local, zone) = match form {
        0 => (utc, "Z".to_owned()),
        1 => {
            let local = Timestamp::from_millis(ms + offset_minutes * 60_000).to_string();
            let (sign, m) = if offset_minutes < 0 {
                ('-', -offset_minutes)
            } else {
                ('+', offset_minutes)
            };
            (local, format!("{sign}{:02}:{:02}", m / 60, m % 60))
        }
        2 => (utc, String::new()),
        _ => (utc.replace('T', " "), String::new()),
    };
    format!("{}{sub_ms}{zone}", local.trim_end_matches('Z'))
}

/// Text that is not an instant.
pub fn not_an_instant() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("yesterday".to_owned()),
        Just("2025-13-01T00:00:00Z".to_owned()),
        Just("2025-02-30T00:00:00Z".to_owned()),
        Just("2025-07-10".to_owned()),
        Just("1752150896789".to_owned()),
        Just("+12025-07-10T00:00:00".to_owned()),
        Just("2025-07-10T24:00:00Z".to_owned()),
        "[a-zA-Z]{1,12}",
        "2025-07-10T[0-9]{2}:[0-9]{2}:[0-9]{2}[a-y]{1,3}",
    ]
}

// ------------------------------------------------------------------ fields

#[derive(Debug, Clone)]
pub enum AmountField {
    Absent,
    Null,
    Number(String),
    NotNumber(String),
}

impl AmountField {
    /// The field's raw JSON text, or `None` when it is absent.
    pub fn raw(&self) -> Option<String> {
        match self {
            AmountField::Absent => None,
            AmountField::Null => Some("null".to_owned()),
            AmountField::Number(t) | AmountField::NotNumber(t) => Some(t.clone()),
        }
    }
}

/// A string field of a body (`paymentMethod`, `country`, the intelligence
/// API's fields): absent, null, text the parser judges (escaped or not), or
/// not a string.
#[derive(Debug, Clone)]
pub enum Text {
    Absent,
    Null,
    Str(String, bool),
    NotString(String),
}

impl Text {
    pub fn raw(&self) -> Option<String> {
        match self {
            Text::Absent => None,
            Text::Null => Some("null".into()),
            Text::Str(t, escaped) => Some(json_string(t, *escaped)),
            Text::NotString(raw) => Some(raw.clone()),
        }
    }

    pub fn text(&self) -> Option<&str> {
        match self {
            Text::Str(t, _) => Some(t),
            _ => None,
        }
    }
}

pub fn amount_field() -> impl Strategy<Value = AmountField> {
    prop_oneof![
        1 => Just(AmountField::Absent),
        1 => Just(AmountField::Null),
        // Amounts pooled ids are sent with, so that some repeats agree.
        4 => prop::sample::select(vec!["19.90", "19.9", "1990e-2", "0.01", "1"])
            .prop_map(|a| AmountField::Number(a.to_owned())),
        8 => amount_text().prop_map(AmountField::Number),
        1 => prop_oneof![
            Just(r#""19.90""#.to_owned()),
            Just("true".to_owned()),
            Just("[19.9]".to_owned()),
            Just("{}".to_owned()),
            Just(r#""""#.to_owned()),
        ]
        .prop_map(AmountField::NotNumber),
    ]
}

pub fn is_code(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A string field of a transaction or recommendation body, as a strategy.
pub fn text_field(
    valid: impl Strategy<Value = String> + 'static,
    invalid: impl Strategy<Value = String> + 'static,
    absent_weight: u32,
) -> impl Strategy<Value = Text> {
    prop_oneof![
        absent_weight => Just(Text::Absent),
        1 => Just(Text::Null),
        8 => (valid, prop::bool::weighted(0.1)).prop_map(|(s, e)| Text::Str(s, e)),
        1 => (invalid, any::<bool>()).prop_map(|(s, e)| Text::Str(s, e)),
        1 => not_a_string().prop_map(Text::NotString),
    ]
}

/// A known value in any case, or another valid-looking one.
pub fn any_case(known: Vec<String>, other: &'static str) -> impl Strategy<Value = String> {
    prop_oneof![
        3 => (prop::sample::select(known), any::<bool>())
            .prop_map(|(k, lower)| if lower { k.to_ascii_lowercase() } else { k }),
        1 => other,
    ]
}

// ------------------------------------------------------------------ query bounds

#[derive(Debug, Clone)]
pub enum Bound {
    Absent,
    Empty,
    Instant(String, i64),
    Invalid(String),
    /// Percent-encoded bytes that need not be UTF-8 (read lossily).
    Bytes(Vec<u8>),
}

impl Bound {
    pub fn param(&self, name: &str) -> Option<String> {
        let value = match self {
            Bound::Absent => return None,
            Bound::Empty => String::new(),
            Bound::Instant(text, _) | Bound::Invalid(text) => percent_encode(text.as_bytes()),
            Bound::Bytes(b) => percent_encode(b),
        };
        Some(format!("{name}={value}"))
    }

    /// `Ok(None)` unbounded, `Ok(Some(ms))`, or `Err(())` not an instant.
    pub fn meaning(&self) -> Result<Option<i64>, ()> {
        match self {
            Bound::Absent | Bound::Empty => Ok(None),
            Bound::Instant(_, ms) => Ok(Some(*ms)),
            Bound::Invalid(_) => Err(()),
            Bound::Bytes(b) => {
                let text = String::from_utf8_lossy(b);
                match text.trim() {
                    "" => Ok(None),
                    t => t
                        .parse::<Timestamp>()
                        .map(|t| Some(t.millis()))
                        .map_err(|_| ()),
                }
            }
        }
    }
}

pub fn bound(instants: Vec<i64>) -> impl Strategy<Value = Bound> {
    // Around the ledger's own instants, so that the inclusive ends matter.
    let near = (prop::sample::select(instants), -2i64..=2).prop_map(|(t, d)| t + d);
    let anywhere = 0i64..4_102_444_800_000;
    prop_oneof![
        2 => Just(Bound::Absent),
        1 => Just(Bound::Empty),
        6 => written_instant(prop_oneof![3 => near, 1 => anywhere])
            .prop_map(|(text, ms)| Bound::Instant(text, ms)),
        1 => not_an_instant().prop_map(Bound::Invalid),
        1 => prop::collection::vec(any::<u8>(), 0..12).prop_map(Bound::Bytes),
    ]
}

// ------------------------------------------------------------------ the TechCart registry

/// The TechCart registry as the API lists it: id, countries, methods.
pub struct Registry(pub Vec<(String, Vec<String>, Vec<String>)>);

impl Registry {
    pub async fn fetch(app: &TestApp, http: &Http) -> Self {
        let (s, v) = http.get(&format!("{}/api/v1/processors", app.url)).await;
        assert_eq!(s, StatusCode::OK);
        let list = |v: &Value| -> Vec<String> {
            v.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_str().unwrap().to_owned())
                .collect()
        };
        Registry(
            v["processors"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    (
                        p["processor_id"].as_str().unwrap().to_owned(),
                        list(&p["countries"]),
                        list(&p["payment_methods"]),
                    )
                })
                .collect(),
        )
    }

    pub fn ids(&self) -> Vec<String> {
        self.0.iter().map(|p| p.0.clone()).collect()
    }

    pub fn supports(&self, index: usize, method: Option<&str>, country: Option<&str>) -> bool {
        let (_, countries, methods) = &self.0[index];
        let fits = |list: &[String], v: Option<&str>| {
            v.is_none_or(|v| list.is_empty() || list.iter().any(|x| x.eq_ignore_ascii_case(v)))
        };
        fits(methods, method) && fits(countries, country)
    }

    pub fn methods(&self) -> Vec<String> {
        let mut all: Vec<String> = self.0.iter().flat_map(|p| p.2.clone()).collect();
        all.sort();
        all.dedup();
        all
    }

    pub fn countries(&self) -> Vec<String> {
        let mut all: Vec<String> = self.0.iter().flat_map(|p| p.1.clone()).collect();
        all.sort();
        all.dedup();
        all
    }
}

/// The TechCart router of [`techcart`] and its registry, as the API lists it.
pub async fn techcart_registry() -> (tempfile::TempDir, TestApp, Http, Registry) {
    let (app, http, dir) = techcart(&[]).await;
    let registry = Registry::fetch(&app, &http).await;
    (dir, app, http, registry)
}
