//! Property tests of every request parser, through the real HTTP app: the
//! payments body, the summary's query string, the intelligence API's bodies,
//! query strings and path. Each generated request is judged against a model
//! written here from the documented contract: the exact status, the field
//! named in the error, the answer's content for a success, and — for every
//! refusal — that nothing was stored (the store's contents for payments, the
//! health engine's records for transactions).
//!
//! `PROPTEST_CASES=N` runs each property with N cases (defaults keep each
//! test to a few seconds).

mod common;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use hyper::{Method, StatusCode};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use reroute_core::{CorrelationId, Money, Timestamp};
use reroute_store::Store;
use serde_json::Value;

type CaseResult = Result<(), TestCaseError>;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Runs `check` on `cases` generated values (`PROPTEST_CASES` overrides);
/// panics with the smallest failing input found.
fn run<S: Strategy>(
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
fn not_a_string() -> impl Strategy<Value = String> {
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
fn amount_text() -> impl Strategy<Value = String> {
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
fn object(mut fields: Vec<(String, String)>, seed: u64, pad: &str) -> String {
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
fn extras(known: &'static [&'static str]) -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec(
        (
            "[a-zA-Z_]{1,10}".prop_filter("unknown", move |k| !known.contains(&k.as_str())),
            json_value().prop_map(|v| v.to_string()),
        ),
        0..3,
    )
}

fn error_field(v: &Value) -> Option<&str> {
    v.get("field").and_then(Value::as_str)
}

/// A 4xx answer is the error shape: `error` text, `field` as predicted.
fn check_error(
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
fn written_instant(around: impl Strategy<Value = i64>) -> impl Strategy<Value = (String, i64)> {
    (
        around,
        0u8..4,
        -(23 * 60 + 59)..=(23 * 60 + 59i64),
        "[0-9]{0,4}",
    )
        .prop_map(|(ms, form, offset, sub)| (write_instant(ms, form, offset, &sub), ms))
}

fn write_instant(ms: i64, form: u8, offset_minutes: i64, sub_ms: &str) -> String {
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
fn not_an_instant() -> impl Strategy<Value = String> {
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

// ------------------------------------------------------------------ payments

#[derive(Debug, Clone)]
enum IdField {
    Absent,
    Null,
    Uuid {
        id: CorrelationId,
        upper: bool,
        escaped: bool,
    },
    NotUuid(String),
    NotString(String),
}

#[derive(Debug, Clone)]
enum AmountField {
    Absent,
    Null,
    Number(String),
    NotNumber(String),
}

/// A string field of a body (`paymentMethod`, `country`, the intelligence
/// API's fields): absent, null, text the parser judges (escaped or not), or
/// not a string.
#[derive(Debug, Clone)]
enum Text {
    Absent,
    Null,
    Str(String, bool),
    NotString(String),
}

impl Text {
    fn raw(&self) -> Option<String> {
        match self {
            Text::Absent => None,
            Text::Null => Some("null".into()),
            Text::Str(t, escaped) => Some(json_string(t, *escaped)),
            Text::NotString(raw) => Some(raw.clone()),
        }
    }

    fn text(&self) -> Option<&str> {
        match self {
            Text::Str(t, _) => Some(t),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
struct PaymentCase {
    content_type: Option<&'static str>,
    id: IdField,
    amount: AmountField,
    method: Text,
    country: Text,
    extras: Vec<(String, String)>,
    /// Repeat this one of the present known fields.
    duplicate: Option<prop::sample::Index>,
    seed: u64,
    pad: &'static str,
}

/// Three ids every run reuses, so that duplicates and conflicts happen.
fn pooled_id(i: usize) -> CorrelationId {
    CorrelationId::from_bytes([i as u8 + 1; 16])
}

fn id_field() -> impl Strategy<Value = IdField> {
    let uuid = prop_oneof![
        3 => any::<[u8; 16]>().prop_map(CorrelationId::from_bytes),
        2 => (0usize..3).prop_map(pooled_id),
    ];
    prop_oneof![
        1 => Just(IdField::Absent),
        1 => Just(IdField::Null),
        12 => (uuid, any::<bool>(), prop::bool::weighted(0.1))
            .prop_map(|(id, upper, escaped)| IdField::Uuid { id, upper, escaped }),
        2 => prop_oneof![
            "[0-9a-f]{32}",
            "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{11}[g-z]",
            "\\{[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\\}",
            " [0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
            "\\PC{0,20}",
        ]
        .prop_map(IdField::NotUuid),
        1 => not_a_string().prop_map(IdField::NotString),
    ]
}

fn amount_field() -> impl Strategy<Value = AmountField> {
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

fn code_field(valid: &'static str, invalid: &'static str) -> impl Strategy<Value = Text> {
    prop_oneof![
        4 => Just(Text::Absent),
        1 => Just(Text::Null),
        3 => (valid, prop::bool::weighted(0.1)).prop_map(|(t, e)| Text::Str(t, e)),
        1 => (invalid, any::<bool>()).prop_map(|(t, e)| Text::Str(t, e)),
        1 => not_a_string().prop_map(Text::NotString),
    ]
}

fn payment_case() -> impl Strategy<Value = PaymentCase> {
    let content_type = prop_oneof![
        12 => Just(Some("application/json")),
        1 => Just(Some("application/json; charset=utf-8")),
        1 => Just(Some("Application/JSON")),
        1 => Just(None),
        1 => Just(Some("text/plain")),
        1 => Just(Some("application/jsonp")),
        1 => Just(Some("application/x-www-form-urlencoded")),
    ];
    (
        content_type,
        id_field(),
        amount_field(),
        code_field(
            "[A-Za-z0-9_-]{1,32}",
            "|[A-Za-z0-9_-]{33,40}|[a-z]{0,4}[ .!/é+][a-z]{0,4}",
        ),
        code_field(
            "[A-Za-z]{2}",
            "|[A-Za-z]|[A-Za-z]{3,5}|[A-Za-z][0-9_-]|[A-Z] [A-Z]|é[A-Z]",
        ),
        extras(&["correlationId", "amount", "paymentMethod", "country"]),
        prop::option::weighted(0.05, any::<prop::sample::Index>()),
        any::<u64>(),
        prop::sample::select(vec!["", "", " ", "\n\t"]),
    )
        .prop_map(
            |(content_type, id, amount, method, country, extras, duplicate, seed, pad)| {
                PaymentCase {
                    content_type,
                    id,
                    amount,
                    method,
                    country,
                    extras,
                    duplicate,
                    seed,
                    pad,
                }
            },
        )
}

impl PaymentCase {
    fn known_fields(&self) -> Vec<(String, String)> {
        let id = match &self.id {
            IdField::Absent => None,
            IdField::Null => Some("null".to_owned()),
            IdField::Uuid { id, upper, escaped } => {
                let text = if *upper {
                    id.to_string().to_ascii_uppercase()
                } else {
                    id.to_string()
                };
                Some(json_string(&text, *escaped))
            }
            IdField::NotUuid(s) => Some(json_string(s, false)),
            IdField::NotString(raw) => Some(raw.clone()),
        };
        let amount = match &self.amount {
            AmountField::Absent => None,
            AmountField::Null => Some("null".to_owned()),
            AmountField::Number(t) | AmountField::NotNumber(t) => Some(t.clone()),
        };
        [
            ("correlationId", id),
            ("amount", amount),
            ("paymentMethod", self.method.raw()),
            ("country", self.country.raw()),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v)))
        .collect()
    }

    fn body(&self) -> String {
        let known = self.known_fields();
        let mut fields = known.clone();
        if let (Some(i), false) = (self.duplicate, known.is_empty()) {
            fields.push(i.get(&known).clone());
        }
        fields.extend(self.extras.iter().cloned());
        object(fields, self.seed, self.pad)
    }

    fn is_json(&self) -> bool {
        self.content_type.is_some_and(|ct| {
            ct.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
        })
    }
}

fn is_hyphenated_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

fn is_code(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// What the contract says about a payment request: a refusal (status and
/// field), or a valid payment (id and amount) whose fate the store decides.
enum PaymentVerdict {
    Refused(StatusCode, Option<&'static str>),
    Valid(CorrelationId, Money),
}

fn judge_payment(case: &PaymentCase) -> PaymentVerdict {
    use PaymentVerdict::Refused;
    let bad = StatusCode::BAD_REQUEST;
    if !case.is_json() {
        return Refused(StatusCode::UNSUPPORTED_MEDIA_TYPE, None);
    }
    // Whole-body faults: a repeated field, a code that is not a string.
    let not_string = |c: &Text| matches!(c, Text::NotString(_));
    let duplicated = case.duplicate.is_some() && !case.known_fields().is_empty();
    if duplicated || not_string(&case.method) || not_string(&case.country) {
        return Refused(bad, None);
    }
    let id = match &case.id {
        IdField::Uuid { id, .. } => *id,
        IdField::NotUuid(s) if is_hyphenated_uuid(s) => s.parse().unwrap(),
        _ => return Refused(bad, Some("correlationId")),
    };
    let amount = match &case.amount {
        AmountField::Number(t) => match Money::parse_exact(t) {
            Ok(m) if m.is_positive() => m,
            _ => return Refused(bad, Some("amount")),
        },
        _ => return Refused(bad, Some("amount")),
    };
    if case.method.text().is_some_and(|m| !is_code(m)) {
        return Refused(bad, Some("paymentMethod"));
    }
    if case
        .country
        .text()
        .is_some_and(|c| c.len() != 2 || !c.bytes().all(|b| b.is_ascii_alphabetic()))
    {
        return Refused(bad, Some("country"));
    }
    PaymentVerdict::Valid(id, amount)
}

async fn payments_app() -> (Sims, tempfile::TempDir, Arc<dyn Store>, TestApp) {
    let sims = Sims::start().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("r.db");
    let store: Arc<dyn Store> = Arc::new(reroute_store::SqliteStore::open(&db).unwrap());
    let app = TestApp::start_with_store(config(&sims, &db, &[]), Arc::clone(&store)).await;
    (sims, dir, store, app)
}

#[test]
fn every_payment_body_gets_the_answer_the_contract_gives_and_only_valid_ones_are_stored() {
    let rt = runtime();
    let (_sims, _dir, store, app) = rt.block_on(payments_app());
    let http = Http::default();
    let url = format!("{}/payments", app.url);
    // What has been accepted: id -> amount.
    let accepted: RefCell<BTreeMap<CorrelationId, Money>> = RefCell::default();
    run(&rt, 300, payment_case(), async |case| {
        let body = case.body();
        let headers: Vec<(&str, &str)> = case
            .content_type
            .map(|ct| ("content-type", ct))
            .into_iter()
            .collect();
        let (status, _, answer) = http
            .send_bytes(Method::POST, &url, &headers, body.clone().into_bytes())
            .await;
        let request = format!("{headers:?} {body}");
        let (id, amount) = match judge_payment(&case) {
            PaymentVerdict::Refused(want, field) => {
                return check_error(status, &answer, (want, field), &request);
            }
            PaymentVerdict::Valid(id, amount) => (id, amount),
        };
        let earlier = accepted.borrow().get(&id).copied();
        match earlier {
            Some(existing) if existing != amount => {
                return check_error(
                    status,
                    &answer,
                    (StatusCode::CONFLICT, Some("amount")),
                    &request,
                );
            }
            _ => {}
        }
        let (want, word) = if earlier.is_some() {
            (StatusCode::OK, "duplicate")
        } else {
            (StatusCode::ACCEPTED, "accepted")
        };
        let v: Value = serde_json::from_slice(&answer).unwrap_or_default();
        prop_assert_eq!(status, want, "{} answered {}", request, v);
        prop_assert_eq!(
            v,
            serde_json::json!({"correlationId": id.to_string(), "status": word})
        );
        accepted.borrow_mut().insert(id, amount);
        Ok(())
    });
    // Exactly the accepted payments are stored, with their amounts.
    let stored = rt.block_on(stored_payments(store.as_ref()));
    assert_eq!(stored, *accepted.borrow());
    rt.block_on(app.stop());
}

// ------------------------------------------------------------------ summary

#[derive(Debug, Clone)]
enum Bound {
    Absent,
    Empty,
    Instant(String, i64),
    Invalid(String),
    /// Percent-encoded bytes that need not be UTF-8 (read lossily).
    Bytes(Vec<u8>),
}

impl Bound {
    fn param(&self, name: &str) -> Option<String> {
        let value = match self {
            Bound::Absent => return None,
            Bound::Empty => String::new(),
            Bound::Instant(text, _) | Bound::Invalid(text) => percent_encode(text.as_bytes()),
            Bound::Bytes(b) => percent_encode(b),
        };
        Some(format!("{name}={value}"))
    }

    /// `Ok(None)` unbounded, `Ok(Some(ms))`, or `Err(())` not an instant.
    fn meaning(&self) -> Result<Option<i64>, ()> {
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

fn bound(instants: Vec<i64>) -> impl Strategy<Value = Bound> {
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

#[derive(Debug, Clone)]
struct SummaryCase {
    from: Bound,
    to: Bound,
    repeated: Option<bool>,
    extras: Vec<(String, String)>,
    swap: bool,
}

#[test]
fn the_summary_of_any_window_is_the_ledger_sum_and_a_bad_bound_is_a_400() {
    let rt = runtime();
    let (_sims, _dir, store, app) = rt.block_on(payments_app());
    let http = Http::default();
    // A ledger to summarise: payments processed, nothing left pending.
    let ledger = rt.block_on(async {
        for cents in [1, 1990, 33_335, 100_000, 7, 250_000_000, 12_345, 99] {
            let amount = Money::from_minor(cents).to_string();
            assert_eq!(
                app.pay(&http, &new_id(), &amount).await.0,
                StatusCode::ACCEPTED
            );
        }
        eventually(
            "every payment processed",
            Duration::from_secs(20),
            || async { store.pending().await.unwrap().is_empty().then_some(()) },
        )
        .await;
        store.ledger().await.unwrap()
    });
    let instants: Vec<i64> = ledger.iter().map(|e| e.requested_at.millis()).collect();
    let strategy = (
        bound(instants.clone()),
        bound(instants),
        prop::option::weighted(0.05, any::<bool>()),
        prop::collection::vec(("[a-z]{1,6}", "[a-z0-9]{0,6}"), 0..3),
        any::<bool>(),
    )
        .prop_map(|(from, to, repeated, extras, swap)| SummaryCase {
            from,
            to,
            repeated,
            extras: extras
                .into_iter()
                .filter(|(k, _)| k != "from" && k != "to")
                .collect(),
            swap,
        });
    run(&rt, 300, strategy, async |case| {
        let mut params: Vec<String> = [case.from.param("from"), case.to.param("to")]
            .into_iter()
            .flatten()
            .collect();
        if case.swap {
            params.reverse();
        }
        // A bound given twice (only when it was given once already).
        let repeated = case
            .repeated
            .filter(|&from| !matches!(if from { &case.from } else { &case.to }, Bound::Absent));
        if let Some(from) = repeated {
            params.push(if from { "from=" } else { "to=" }.to_owned());
        }
        params.extend(case.extras.iter().map(|(k, v)| format!("{k}={v}")));
        let url = format!("{}/payments-summary?{}", app.url, params.join("&"));
        let (status, _, answer) = http.send_bytes(Method::GET, &url, &[], Vec::new()).await;
        let bad = StatusCode::BAD_REQUEST;
        if repeated.is_some() {
            return check_error(status, &answer, (bad, None), &url);
        }
        let from = match case.from.meaning() {
            Ok(from) => from,
            Err(()) => return check_error(status, &answer, (bad, Some("from")), &url),
        };
        let to = match case.to.meaning() {
            Ok(to) => to,
            Err(()) => return check_error(status, &answer, (bad, Some("to")), &url),
        };
        prop_assert_eq!(status, StatusCode::OK, "{}", url);
        let v: Value = serde_json::from_slice(&answer).unwrap();
        for processor in ["default", "fallback"] {
            let lines: Vec<_> = ledger
                .iter()
                .filter(|e| e.processor == processor)
                .filter(|e| {
                    let t = e.requested_at.millis();
                    from.is_none_or(|f| f <= t) && to.is_none_or(|e| t <= e)
                })
                .collect();
            let total: Money = lines.iter().map(|e| e.amount).sum();
            prop_assert_eq!(
                v[processor]["totalRequests"].as_u64(),
                Some(lines.len() as u64),
                "{} answered {}",
                url,
                v
            );
            prop_assert_eq!(
                v[processor]["totalAmount"].as_f64(),
                total.to_string().parse::<f64>().ok(),
                "{} answered {}",
                url,
                v
            );
        }
        Ok(())
    });
    rt.block_on(app.stop());
}

// ------------------------------------------------------------------ intelligence

/// The TechCart registry as the API lists it: id, countries, methods.
struct Registry(Vec<(String, Vec<String>, Vec<String>)>);

impl Registry {
    async fn fetch(app: &TestApp, http: &Http) -> Self {
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

    fn ids(&self) -> Vec<String> {
        self.0.iter().map(|p| p.0.clone()).collect()
    }

    fn supports(&self, index: usize, method: Option<&str>, country: Option<&str>) -> bool {
        let (_, countries, methods) = &self.0[index];
        let fits = |list: &[String], v: Option<&str>| {
            v.is_none_or(|v| list.is_empty() || list.iter().any(|x| x.eq_ignore_ascii_case(v)))
        };
        fits(methods, method) && fits(countries, country)
    }

    fn methods(&self) -> Vec<String> {
        let mut all: Vec<String> = self.0.iter().flat_map(|p| p.2.clone()).collect();
        all.sort();
        all.dedup();
        all
    }

    fn countries(&self) -> Vec<String> {
        let mut all: Vec<String> = self.0.iter().flat_map(|p| p.1.clone()).collect();
        all.sort();
        all.dedup();
        all
    }
}

async fn techcart() -> (tempfile::TempDir, TestApp, Http, Registry) {
    let dir = tempfile::tempdir().unwrap();
    let registry = techcart_advisory(dir.path());
    let config = config_with_registry(&dir.path().join("r.db"), &registry, &[]);
    let app = TestApp::start(config).await;
    let http = Http::default();
    let registry = Registry::fetch(&app, &http).await;
    (dir, app, http, registry)
}

/// A string field of a transaction or recommendation body, as a strategy.
fn text_field(
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
fn any_case(known: Vec<String>, other: &'static str) -> impl Strategy<Value = String> {
    prop_oneof![
        3 => (prop::sample::select(known), any::<bool>())
            .prop_map(|(k, lower)| if lower { k.to_ascii_lowercase() } else { k }),
        1 => other,
    ]
}

#[derive(Debug, Clone)]
struct TransactionCase {
    processor: Text,
    result: Text,
    method: Text,
    country: Text,
    amount: AmountField,
    currency: Text,
    latency: Option<String>,
    timestamp: Text,
    extras: Vec<(String, String)>,
    seed: u64,
}

fn transaction_case(registry: &Registry) -> impl Strategy<Value = TransactionCase> {
    let now = Timestamp::now().millis();
    let processor = text_field(
        prop_oneof![
            6 => prop::sample::select(registry.ids()),
            1 => "[a-z_]{1,12}",
        ],
        prop_oneof![Just(String::new()), Just("  ".to_owned())],
        1,
    );
    let result = text_field(
        (
            prop::sample::select(vec!["approved", "declined", "error", "timeout"]),
            any::<bool>(),
            prop::sample::select(vec!["", " "]),
        )
            .prop_map(|(w, upper, pad)| {
                let w = if upper {
                    w.to_ascii_uppercase()
                } else {
                    w.to_owned()
                };
                format!("{pad}{w}{pad}")
            }),
        prop_oneof![Just(String::new()), Just(" ".to_owned()), "[a-z]{1,9}"],
        1,
    );
    let method = text_field(
        any_case(registry.methods(), "[A-Za-z0-9_-]{1,32}"),
        prop_oneof![
            Just(String::new()),
            "[A-Za-z0-9_-]{33,36}",
            "[A-Z]{1,3}[ .é][A-Z]{1,3}"
        ],
        3,
    );
    let country = text_field(
        any_case(registry.countries(), "[A-Za-z]{2}"),
        prop_oneof![Just(String::new()), "[A-Za-z]{3}", "[A-Z][0-9]"],
        3,
    );
    let currency = text_field(
        "[A-Za-z]{3}".prop_map(|s| s),
        prop_oneof![
            Just(String::new()),
            "[A-Za-z]{1,2}",
            "[A-Za-z]{4,5}",
            "[A-Z]{2}[0-9]"
        ],
        3,
    );
    let latency = prop_oneof![
        3 => Just(None),
        1 => Just(Some("null".to_owned())),
        4 => any::<u32>().prop_map(|n| Some(n.to_string())),
        2 => prop_oneof![
            (1i64..=1_000_000).prop_map(|n| format!("-{n}")),
            (0u32..1000, 1u32..10).prop_map(|(a, b)| format!("{a}.{b}")),
            Just("1e3".to_owned()),
            Just("4294967296".to_owned()),
            Just("99999999999999999999".to_owned()),
            Just(r#""120""#.to_owned()),
            Just("true".to_owned()),
        ]
        .prop_map(Some),
    ];
    let timestamp = prop_oneof![
        3 => Just(Text::Absent),
        1 => Just(Text::Null),
        // Near now, or years away: never near the edge of a health window.
        4 => written_instant(prop_oneof![
            now - 60_000..now + 60_000,
            0i64..1_000_000_000_000,
        ])
        .prop_map(|(t, _)| Text::Str(t, false)),
        1 => not_an_instant().prop_map(|t| Text::Str(t, false)),
        1 => not_a_string().prop_map(Text::NotString),
    ];
    (
        (processor, result, method, country),
        (
            prop_oneof![3 => Just(AmountField::Absent), 5 => amount_field()],
            currency,
            latency,
            timestamp,
        ),
        extras(&[
            "processor_id",
            "result",
            "payment_method",
            "country",
            "amount",
            "currency",
            "latency_ms",
            "timestamp",
        ]),
        any::<u64>(),
    )
        .prop_map(
            |(
                (processor, result, method, country),
                (amount, currency, latency, timestamp),
                extras,
                seed,
            )| {
                TransactionCase {
                    processor,
                    result,
                    method,
                    country,
                    amount,
                    currency,
                    latency,
                    timestamp,
                    extras,
                    seed,
                }
            },
        )
}

impl TransactionCase {
    fn body(&self) -> String {
        let amount = match &self.amount {
            AmountField::Absent => None,
            AmountField::Null => Some("null".to_owned()),
            AmountField::Number(t) | AmountField::NotNumber(t) => Some(t.clone()),
        };
        let mut fields: Vec<(String, String)> = [
            ("processor_id", self.processor.raw()),
            ("result", self.result.raw()),
            ("payment_method", self.method.raw()),
            ("country", self.country.raw()),
            ("amount", amount),
            ("currency", self.currency.raw()),
            ("latency_ms", self.latency.clone()),
            ("timestamp", self.timestamp.raw()),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v)))
        .collect();
        fields.extend(self.extras.iter().cloned());
        object(fields, self.seed, "")
    }
}

/// What the contract says about a transaction: refused (status, field), or
/// recorded for processor `index` with these normalised values.
#[derive(Debug)]
enum TxVerdict {
    Refused(StatusCode, &'static str),
    Recorded {
        index: usize,
        result: String,
        method: Option<String>,
        country: Option<String>,
        amount: Option<Money>,
        currency: Option<String>,
        latency: Option<u32>,
        at: Option<Timestamp>,
    },
}

fn judge_transaction(case: &TransactionCase, registry: &Registry) -> TxVerdict {
    let bad = |field| TxVerdict::Refused(StatusCode::BAD_REQUEST, field);
    // A string field: Ok(None) absent, Ok(Some) text, Err(()) not a string.
    let text = |t: &Text| match t {
        Text::Absent | Text::Null => Ok(None),
        Text::Str(s, _) => Ok(Some(s.clone())),
        Text::NotString(_) => Err(()),
    };
    let present = |t: Result<Option<String>, ()>| t.ok().flatten().filter(|s| !s.trim().is_empty());
    let Some(id) = present(text(&case.processor)) else {
        return bad("processor_id");
    };
    let Some(result) = present(text(&case.result)) else {
        return bad("result");
    };
    let words = ["approved", "declined", "error", "timeout"];
    let Some(result) = words
        .iter()
        .find(|w| w.eq_ignore_ascii_case(result.trim()))
        .map(|w| w.to_string())
    else {
        return bad("result");
    };
    let Ok(method) = text(&case.method) else {
        return bad("payment_method");
    };
    if method.as_deref().is_some_and(|m| !is_code(m)) {
        return bad("payment_method");
    }
    let Ok(country) = text(&case.country) else {
        return bad("country");
    };
    let is_country = |c: &str| c.len() == 2 && c.bytes().all(|b| b.is_ascii_alphabetic());
    if country.as_deref().is_some_and(|c| !is_country(c)) {
        return bad("country");
    }
    let amount = match &case.amount {
        AmountField::Absent | AmountField::Null => None,
        AmountField::Number(t) => match Money::parse_exact(t) {
            Ok(m) if m.is_positive() => Some(m),
            _ => return bad("amount"),
        },
        AmountField::NotNumber(_) => return bad("amount"),
    };
    let Ok(currency) = text(&case.currency) else {
        return bad("currency");
    };
    if currency
        .as_deref()
        .is_some_and(|c| c.len() != 3 || !c.bytes().all(|b| b.is_ascii_alphabetic()))
    {
        return bad("currency");
    }
    let latency = match case.latency.as_deref() {
        None | Some("null") => None,
        Some(t) => match t.parse::<u32>() {
            Ok(n) if !t.starts_with('+') => Some(n),
            _ => return bad("latency_ms"),
        },
    };
    let Ok(at) = text(&case.timestamp) else {
        return bad("timestamp");
    };
    let at = match at.map(|t| t.parse::<Timestamp>()) {
        None => None,
        Some(Ok(t)) => Some(t),
        Some(Err(_)) => return bad("timestamp"),
    };
    let Some(index) = registry.0.iter().position(|p| p.0 == id) else {
        return TxVerdict::Refused(StatusCode::NOT_FOUND, "processor_id");
    };
    if !registry.supports(index, method.as_deref(), None) {
        return bad("payment_method");
    }
    if !registry.supports(index, None, country.as_deref()) {
        return bad("country");
    }
    TxVerdict::Recorded {
        index,
        result,
        method: method.map(|m| m.to_ascii_uppercase()),
        country: country.map(|c| c.to_ascii_uppercase()),
        amount,
        currency: currency.map(|c| c.to_ascii_uppercase()),
        latency,
        at,
    }
}

/// Everything the health engine shows of one processor, but the clock.
async fn engine_state(app: &TestApp, http: &Http, id: &str) -> Value {
    let (s, mut v) = http.get(&format!("{}/api/v1/health/{id}", app.url)).await;
    assert_eq!(s, StatusCode::OK);
    v.as_object_mut().unwrap().remove("timestamp");
    v
}

fn money_json(m: Option<Money>) -> Value {
    m.map_or(Value::Null, |m| {
        Value::from(m.to_string().parse::<f64>().unwrap())
    })
}

#[test]
fn every_transaction_body_gets_the_contract_answer_and_a_refused_one_records_nothing() {
    let rt = runtime();
    let (_dir, app, http, registry) = rt.block_on(techcart());
    let url = format!("{}/api/v1/transactions", app.url);
    let ids = registry.ids();
    // Each processor's state as last seen, and the alerts so far.
    let states: RefCell<Vec<Value>> = RefCell::new(rt.block_on(async {
        let mut all = Vec::new();
        for id in &ids {
            all.push(engine_state(&app, &http, id).await);
        }
        all
    }));
    let alerts_url = format!("{}/api/v1/alerts", app.url);
    let alerts = RefCell::new(rt.block_on(http.get(&alerts_url)).1["count"].clone());
    run(&rt, 250, transaction_case(&registry), async |case| {
        let body = case.body();
        let (status, _, answer) = http
            .send_bytes(
                Method::POST,
                &url,
                &[("content-type", "application/json")],
                body.clone().into_bytes(),
            )
            .await;
        match judge_transaction(&case, &registry) {
            TxVerdict::Refused(want, field) => {
                check_error(status, &answer, (want, Some(field)), &body)?;
                // Nothing recorded anywhere, no alert raised.
                for (i, id) in ids.iter().enumerate() {
                    let now = engine_state(&app, &http, id).await;
                    prop_assert_eq!(&now, &states.borrow()[i], "{} changed {}", body, id);
                }
                prop_assert_eq!(&http.get(&alerts_url).await.1["count"], &*alerts.borrow());
            }
            TxVerdict::Recorded {
                index,
                result,
                method,
                country,
                amount,
                currency,
                latency,
                at,
            } => {
                let v: Value = serde_json::from_slice(&answer).unwrap_or_default();
                prop_assert_eq!(status, StatusCode::CREATED, "{} answered {}", body, v);
                prop_assert_eq!(v["processor_id"].as_str(), Some(ids[index].as_str()));
                prop_assert_eq!(v["result"].as_str(), Some(result.as_str()));
                prop_assert_eq!(v["payment_method"].as_str(), method.as_deref());
                prop_assert_eq!(v["country"].as_str(), country.as_deref());
                if let Some(at) = at.map(|at| at.to_string()) {
                    prop_assert_eq!(v["timestamp"].as_str(), Some(at.as_str()));
                }
                // The newest record is this one, as sent.
                let now = engine_state(&app, &http, &ids[index]).await;
                let newest = &now["recent_transactions"][0];
                prop_assert_eq!(
                    newest,
                    &serde_json::json!({
                        "result": result,
                        "payment_method": method,
                        "country": country,
                        "amount": money_json(amount),
                        "currency": currency,
                        "latency_ms": latency,
                        "timestamp": v["timestamp"],
                    }),
                    "{}",
                    body
                );
                states.borrow_mut()[index] = now;
                *alerts.borrow_mut() = http.get(&alerts_url).await.1["count"].clone();
            }
        }
        Ok(())
    });
    rt.block_on(app.stop());
}

#[derive(Debug, Clone)]
struct RecommendCase {
    method: Text,
    country: Text,
    amount: AmountField,
    /// As a query string (`GET`) or a JSON body (`POST`).
    query: bool,
}

#[test]
fn a_recommendation_lists_exactly_the_processors_that_take_the_method_in_the_country() {
    let rt = runtime();
    let (_dir, app, http, registry) = rt.block_on(techcart());
    let strategy = (
        text_field(
            any_case(registry.methods(), "[A-Za-z0-9_-]{1,32}"),
            prop_oneof![
                Just(String::new()),
                Just(" ".to_owned()),
                "[A-Z]{1,3}[ .é/][A-Z]{1,3}",
                "[A-Z]{33}"
            ],
            1,
        ),
        text_field(
            any_case(registry.countries(), "[A-Za-z]{2}"),
            prop_oneof![Just(String::new()), "[A-Za-z]{3}", "[A-Z][0-9]", "é[A-Z]"],
            1,
        ),
        prop_oneof![3 => Just(AmountField::Absent), 2 => amount_field()],
        any::<bool>(),
    )
        .prop_map(|(method, country, amount, query)| RecommendCase {
            method,
            country,
            amount,
            query,
        });
    run(&rt, 250, strategy, async |case| {
        let (status, answer, request) = if case.query {
            // In a query string every value is text; `null` and non-strings
            // have no query form, so they are sent as their JSON text.
            let value = |t: &Text| match t {
                Text::Absent => None,
                Text::Null => Some("null".to_owned()),
                Text::Str(s, _) => Some(s.clone()),
                Text::NotString(raw) => Some(raw.clone()),
            };
            let amount = match &case.amount {
                AmountField::Absent => None,
                AmountField::Null => Some("null".to_owned()),
                AmountField::Number(t) | AmountField::NotNumber(t) => Some(t.clone()),
            };
            let params: Vec<String> = [
                ("payment_method", value(&case.method)),
                ("country", value(&case.country)),
                ("amount", amount),
            ]
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| format!("{k}={}", percent_encode(v.as_bytes()))))
            .collect();
            let url = format!("{}/api/v1/routing/recommend?{}", app.url, params.join("&"));
            let (s, _, b) = http.send_bytes(Method::GET, &url, &[], Vec::new()).await;
            (s, b, url)
        } else {
            let amount = match &case.amount {
                AmountField::Absent => None,
                AmountField::Null => Some("null".to_owned()),
                AmountField::Number(t) | AmountField::NotNumber(t) => Some(t.clone()),
            };
            let fields = [
                ("payment_method", case.method.raw()),
                ("country", case.country.raw()),
                ("amount", amount),
            ]
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v)))
            .collect();
            let body = object(fields, 7, "");
            let url = format!("{}/api/v1/routing/recommend", app.url);
            let (s, _, b) = http
                .send_bytes(
                    Method::POST,
                    &url,
                    &[("content-type", "application/json")],
                    body.clone().into_bytes(),
                )
                .await;
            (s, b, body)
        };
        let bad = StatusCode::BAD_REQUEST;
        // In a query, every value is a string, `null` included.
        let text = |t: &Text| -> Result<Option<String>, ()> {
            match (t, case.query) {
                (Text::Absent, _) | (Text::Null, false) => Ok(None),
                (Text::Null, true) => Ok(Some("null".into())),
                (Text::Str(s, _), _) => Ok(Some(s.clone())),
                (Text::NotString(raw), true) => Ok(Some(raw.clone())),
                (Text::NotString(_), false) => Err(()),
            }
        };
        let required =
            |t: Result<Option<String>, ()>| t.ok().flatten().filter(|s| !s.trim().is_empty());
        let Some(method) = required(text(&case.method)) else {
            return check_error(status, &answer, (bad, Some("payment_method")), &request);
        };
        if !is_code(&method) {
            return check_error(status, &answer, (bad, Some("payment_method")), &request);
        }
        let Some(country) = required(text(&case.country)) else {
            return check_error(status, &answer, (bad, Some("country")), &request);
        };
        if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_alphabetic()) {
            return check_error(status, &answer, (bad, Some("country")), &request);
        }
        let amount_ok = match &case.amount {
            AmountField::Absent => true,
            AmountField::Null => !case.query,
            // The query's amount is trimmed; an empty one is absent.
            AmountField::Number(t) | AmountField::NotNumber(t) => {
                (case.query && t.trim().is_empty())
                    || Money::parse_exact(t.trim()).is_ok_and(|m| m.is_positive())
            }
        };
        if !amount_ok {
            return check_error(status, &answer, (bad, Some("amount")), &request);
        }
        let v: Value = serde_json::from_slice(&answer).unwrap_or_default();
        prop_assert_eq!(status, StatusCode::OK, "{} answered {}", request, v);
        let (method, country) = (method.to_ascii_uppercase(), country.to_ascii_uppercase());
        prop_assert_eq!(v["payment_method"].as_str(), Some(method.as_str()));
        prop_assert_eq!(v["country"].as_str(), Some(country.as_str()));
        let mut listed: Vec<&str> = v["recommendations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["processor_id"].as_str().unwrap())
            .collect();
        listed.sort();
        let mut want: Vec<&str> = (0..registry.0.len())
            .filter(|&i| registry.supports(i, Some(&method), Some(&country)))
            .map(|i| registry.0[i].0.as_str())
            .collect();
        want.sort();
        prop_assert_eq!(listed, want, "{}", request);
        Ok(())
    });
    rt.block_on(app.stop());
}

#[test]
fn alerts_since_any_text_is_a_list_or_a_400_naming_since() {
    let rt = runtime();
    let (_dir, app, http, _registry) = rt.block_on(techcart());
    let strategy = prop_oneof![
        Just(Bound::Absent),
        Just(Bound::Empty),
        written_instant(0i64..4_102_444_800_000).prop_map(|(t, ms)| Bound::Instant(t, ms)),
        not_an_instant().prop_map(Bound::Invalid),
        prop::collection::vec(any::<u8>(), 0..12).prop_map(Bound::Bytes),
    ];
    run(&rt, 150, strategy, async |since| {
        let url = match since.param("since") {
            Some(p) => format!("{}/api/v1/alerts?{p}", app.url),
            None => format!("{}/api/v1/alerts", app.url),
        };
        let (status, _, answer) = http.send_bytes(Method::GET, &url, &[], Vec::new()).await;
        match since.meaning() {
            Err(()) => check_error(
                status,
                &answer,
                (StatusCode::BAD_REQUEST, Some("since")),
                &url,
            ),
            Ok(_) => {
                let v: Value = serde_json::from_slice(&answer).unwrap_or_default();
                prop_assert_eq!(status, StatusCode::OK, "{} answered {}", url, v);
                prop_assert!(v["alerts"].is_array() && v["count"].is_u64());
                Ok(())
            }
        }
    });
    rt.block_on(app.stop());
}

#[test]
fn any_processor_path_is_its_health_or_a_404_in_the_error_shape() {
    let rt = runtime();
    let (_dir, app, http, registry) = rt.block_on(techcart());
    let ids = registry.ids();
    let strategy = prop_oneof![
        prop::sample::select(ids.clone()).prop_map(String::into_bytes),
        "\\PC{1,16}".prop_map(String::into_bytes),
        prop::collection::vec(any::<u8>(), 1..12),
    ];
    run(&rt, 200, strategy, async |segment| {
        let url = format!("{}/api/v1/health/{}", app.url, percent_encode(&segment));
        let (status, _, answer) = http.send_bytes(Method::GET, &url, &[], Vec::new()).await;
        let known = std::str::from_utf8(&segment).is_ok_and(|s| ids.iter().any(|id| id == s));
        if known {
            prop_assert_eq!(status, StatusCode::OK, "{}", url);
            let v: Value = serde_json::from_slice(&answer).unwrap();
            prop_assert_eq!(
                v["processor_id"].as_str().map(str::as_bytes),
                Some(&segment[..])
            );
            Ok(())
        } else {
            check_error(status, &answer, (StatusCode::NOT_FOUND, None), &url)
        }
    });
    rt.block_on(app.stop());
}
