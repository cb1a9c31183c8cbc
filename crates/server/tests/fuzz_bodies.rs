//! Fuzzing the JSON bodies of the real HTTP endpoints: arbitrary JSON,
//! valid bodies mutated field by field and byte by byte, raw bytes, deep
//! nesting and oversized bodies, thrown at `POST /payments`,
//! `POST /api/v1/transactions` and `POST /api/v1/routing/recommend` of a
//! running app. After every case: the answer is not a 5xx, its status is one
//! the OpenAPI document lists for the operation, a 4xx is the error shape,
//! the server still answers, and nothing was stored for a refused body (the
//! health engine is unchanged; a recommendation changes nothing ever). At
//! the end the store holds exactly the payments answered `202`, and the
//! server's own request metrics count no 5xx.
//!
//! The default case count keeps it to a few seconds; run it at scale with
//! `PROPTEST_CASES=20000 cargo test -p reroute-server --test fuzz_bodies`.

mod common;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use common::*;
use hyper::{Method, StatusCode};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use reroute_core::{CorrelationId, Money};
use serde_json::Value;

/// The router's default body limit (`max_body_bytes`).
const LIMIT: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Endpoint {
    Payments,
    Transactions,
    Recommend,
}

impl Endpoint {
    fn path(self) -> &'static str {
        match self {
            Endpoint::Payments => "/payments",
            Endpoint::Transactions => "/api/v1/transactions",
            Endpoint::Recommend => "/api/v1/routing/recommend",
        }
    }
}

/// One change to a body.
#[derive(Debug, Clone)]
enum Mutation {
    /// Replace a field's value with any JSON.
    Value(prop::sample::Index, Value),
    /// Replace a field's value with raw text (maybe not JSON at all).
    Raw(prop::sample::Index, String),
    Remove(prop::sample::Index),
    Rename(prop::sample::Index, String),
    /// Repeat a field.
    Repeat(prop::sample::Index),
    FlipByte(prop::sample::Index, u8),
    InsertByte(prop::sample::Index, u8),
    DeleteByte(prop::sample::Index),
    Truncate(prop::sample::Index),
}

/// A body as fields of raw JSON text, so that mutations can keep the rest
/// exact.
type Fields = Vec<(String, String)>;

fn apply(mut fields: Fields, mutations: &[Mutation]) -> Vec<u8> {
    let mut bytes: Option<Vec<u8>> = None;
    for m in mutations {
        // Field mutations first, while the body is still fields.
        if bytes.is_none() && !fields.is_empty() {
            match m {
                Mutation::Value(i, v) => {
                    let at = i.index(fields.len());
                    fields[at].1 = v.to_string();
                    continue;
                }
                Mutation::Raw(i, raw) => {
                    let at = i.index(fields.len());
                    fields[at].1 = raw.clone();
                    continue;
                }
                Mutation::Remove(i) => {
                    fields.remove(i.index(fields.len()));
                    continue;
                }
                Mutation::Rename(i, k) => {
                    let at = i.index(fields.len());
                    fields[at].0 = k.clone();
                    continue;
                }
                Mutation::Repeat(i) => {
                    let f = i.get(&fields).clone();
                    fields.push(f);
                    continue;
                }
                _ => {}
            }
        }
        let b = bytes.get_or_insert_with(|| render(&fields).into_bytes());
        match m {
            Mutation::FlipByte(i, x) if !b.is_empty() => {
                let at = i.index(b.len());
                b[at] ^= x | 1;
            }
            Mutation::InsertByte(i, x) => {
                let at = i.index(b.len() + 1);
                b.insert(at, *x);
            }
            Mutation::DeleteByte(i) if !b.is_empty() => {
                b.remove(i.index(b.len()));
            }
            Mutation::Truncate(i) => {
                let at = i.index(b.len() + 1);
                b.truncate(at);
            }
            _ => {}
        }
    }
    bytes.unwrap_or_else(|| render(&fields).into_bytes())
}

fn render(fields: &Fields) -> String {
    let inner: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}:{v}", json_string(k, false)))
        .collect();
    format!("{{{}}}", inner.join(","))
}

/// Bytes that JSON cares about, for insertions.
fn structural_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        prop::sample::select(b"{}[]\":,\\ -+.eE0123456789nultrfas\x00\xff".to_vec()),
        any::<u8>(),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    use prop::sample::Index;
    prop_oneof![
        3 => (any::<Index>(), json_value()).prop_map(|(i, v)| Mutation::Value(i, v)),
        2 => (any::<Index>(), prop_oneof![
            "-?[0-9]{1,30}(\\.[0-9]{1,30})?([eE][+-]?[0-9]{1,20})?",
            "\"\\PC{0,40}\"",
            "[\\[{\"]{1,3}",
            "\\PC{0,10}",
        ])
        .prop_map(|(i, r)| Mutation::Raw(i, r)),
        1 => any::<Index>().prop_map(Mutation::Remove),
        1 => (any::<Index>(), "\\PC{0,12}").prop_map(|(i, k)| Mutation::Rename(i, k)),
        1 => any::<Index>().prop_map(Mutation::Repeat),
        2 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::FlipByte(i, b)),
        2 => (any::<Index>(), structural_byte()).prop_map(|(i, b)| Mutation::InsertByte(i, b)),
        1 => any::<Index>().prop_map(Mutation::DeleteByte),
        1 => any::<Index>().prop_map(Mutation::Truncate),
    ]
}

/// An id from a small pool (so that repeats happen) or a fresh one.
fn correlation_id() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u8..4).prop_map(|i| CorrelationId::from_bytes([i; 16]).to_string()),
        any::<[u8; 16]>().prop_map(|b| CorrelationId::from_bytes(b).to_string()),
    ]
}

fn amount() -> impl Strategy<Value = String> {
    prop_oneof![
        (1i64..=Money::MAX.minor()).prop_map(|c| Money::from_minor(c).to_string()),
        prop::sample::select(vec!["19.90", "0.01", "1", "1e2", "0", "-1", "1e400"])
            .prop_map(str::to_owned),
    ]
}

fn optional(
    field: &'static str,
    value: impl Strategy<Value = String>,
) -> impl Strategy<Value = Option<(String, String)>> {
    prop::option::of(value.prop_map(move |v| (field.to_owned(), v)))
}

/// A valid body of the endpoint, to mutate.
fn seed(endpoint: Endpoint, ids: Vec<String>) -> BoxedStrategy<Fields> {
    let s = |v: &str| json_string(v, false);
    match endpoint {
        Endpoint::Payments => (
            correlation_id(),
            amount(),
            optional(
                "paymentMethod",
                prop::sample::select(vec!["PIX", "card", "boleto"]).prop_map(s),
            ),
            optional(
                "country",
                prop::sample::select(vec!["BR", "mx", "CO"]).prop_map(s),
            ),
        )
            .prop_map(move |(id, amount, method, country)| {
                let mut f = vec![
                    ("correlationId".to_owned(), s(&id)),
                    ("amount".to_owned(), amount),
                ];
                f.extend(method);
                f.extend(country);
                f
            })
            .boxed(),
        Endpoint::Transactions => (
            prop::sample::select(ids),
            prop::sample::select(vec!["approved", "declined", "error", "timeout"]),
            optional(
                "payment_method",
                prop::sample::select(vec!["PIX", "CARD", "OXXO", "PSE"]).prop_map(s),
            ),
            optional(
                "country",
                prop::sample::select(vec!["BR", "MX", "CO"]).prop_map(s),
            ),
            optional("amount", amount()),
            optional("latency_ms", (0u32..5_000).prop_map(|n| n.to_string())),
            optional(
                "timestamp",
                Just(s(&reroute_core::Timestamp::now().to_string())),
            ),
        )
            .prop_map(move |(id, result, method, country, amount, latency, at)| {
                let mut f = vec![
                    ("processor_id".to_owned(), s(&id)),
                    ("result".to_owned(), s(result)),
                ];
                f.extend([method, country, amount, latency, at].into_iter().flatten());
                f
            })
            .boxed(),
        Endpoint::Recommend => (
            prop::sample::select(vec!["PIX", "CARD", "OXXO", "PSE"]),
            prop::sample::select(vec!["BR", "MX", "CO", "AR"]),
            optional("amount", amount()),
        )
            .prop_map(move |(method, country, amount)| {
                let mut f = vec![
                    ("payment_method".to_owned(), s(method)),
                    ("country".to_owned(), s(country)),
                ];
                f.extend(amount);
                f
            })
            .boxed(),
    }
}

fn body(endpoint: Endpoint, ids: Vec<String>) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        // A valid body, to keep the successful paths covered.
        1 => seed(endpoint, ids.clone()).prop_map(|f| render(&f).into_bytes()),
        6 => (seed(endpoint, ids), prop::collection::vec(mutation(), 1..5))
            .prop_map(|(f, m)| apply(f, &m)),
        2 => json_value().prop_map(|v| v.to_string().into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..200),
        // Nesting past serde's recursion limit, or just under it.
        1 => (1usize..400, any::<bool>()).prop_map(|(depth, array)| {
            let (open, close) = if array { ("[", "]") } else { ("{\"a\":", "}") };
            format!("{}1{}", open.repeat(depth), close.repeat(depth)).into_bytes()
        }),
        // Past the body limit: a valid payment padded.
        1 => (correlation_id(), LIMIT..LIMIT * 4).prop_map(|(id, len)| {
            format!(r#"{{"correlationId":"{id}","amount":1,"pad":"{}"}}"#, "x".repeat(len))
                .into_bytes()
        }),
    ]
}

#[derive(Debug, Clone)]
struct Case {
    endpoint: Endpoint,
    content_type: Option<&'static str>,
    body: Vec<u8>,
}

fn case(ids: Vec<String>) -> impl Strategy<Value = Case> {
    let content_type = prop_oneof![
        10 => Just(Some("application/json")),
        1 => Just(Some("application/json; charset=utf-8")),
        1 => Just(None),
        1 => Just(Some("text/plain")),
    ];
    let endpoint = prop_oneof![
        3 => Just(Endpoint::Payments),
        2 => Just(Endpoint::Transactions),
        1 => Just(Endpoint::Recommend),
    ];
    (endpoint, content_type).prop_flat_map(move |(endpoint, content_type)| {
        body(endpoint, ids.clone()).prop_map(move |body| Case {
            endpoint,
            content_type,
            body,
        })
    })
}

/// The statuses the OpenAPI document lists for each `POST` path.
fn documented(doc: &Value) -> BTreeMap<String, BTreeSet<u16>> {
    doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .filter_map(|(path, ops)| {
            let responses = ops["post"]["responses"].as_object()?;
            Some((
                path.clone(),
                responses.keys().filter_map(|k| k.parse().ok()).collect(),
            ))
        })
        .collect()
}

/// Everything the health engine shows, but the clock.
async fn engine(http: &Http, url: &str, ids: &[String]) -> Vec<Value> {
    let mut all = Vec::new();
    for id in ids {
        let (s, mut v) = http.get(&format!("{url}/api/v1/health/{id}")).await;
        assert_eq!(s, StatusCode::OK);
        v.as_object_mut().unwrap().remove("timestamp");
        all.push(v);
    }
    let (_, alerts) = http.get(&format!("{url}/api/v1/alerts")).await;
    all.push(alerts);
    all
}

#[test]
fn fuzzed_bodies_get_documented_4xx_answers_never_a_5xx_and_store_nothing() {
    let rt = runtime();
    let http = Http::default();
    // The payments on the Rinha pair, with the store kept to look in; the
    // intelligence API on the TechCart registry, advisory only, so that
    // nothing but these requests feeds its health engine.
    let (_sims, dir, store, payments, intel) = rt.block_on(async {
        let sims = Sims::start().await;
        let (payments_dir, store, payments) = start_with_embedded_store(&sims, |_| {}).await;
        let (intel, _, intel_dir) = techcart(&[]).await;
        (sims, (payments_dir, intel_dir), store, payments, intel)
    });
    let _dir = dir;
    let (doc, ids) = rt.block_on(async {
        let (_, doc) = http.get(&format!("{}/openapi.json", payments.url)).await;
        let (_, list) = http.get(&format!("{}/api/v1/processors", intel.url)).await;
        let ids: Vec<String> = list["processors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["processor_id"].as_str().unwrap().to_owned())
            .collect();
        (doc, ids)
    });
    let documented = documented(&doc);
    let accepted: RefCell<BTreeSet<CorrelationId>> = RefCell::default();
    let engine_seen = RefCell::new(rt.block_on(engine(&http, &intel.url, &ids)));
    let statuses: RefCell<BTreeMap<(Endpoint, u16), u32>> = RefCell::default();
    let cases = proptest_cases(200);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 64,
        ..Config::default()
    });
    let outcome = runner.run(&case(ids.clone()), |case| {
        rt.block_on(async {
            let app = if case.endpoint == Endpoint::Payments {
                &payments
            } else {
                &intel
            };
            let headers: Vec<(&str, &str)> = case
                .content_type
                .map(|c| ("content-type", c))
                .into_iter()
                .collect();
            let url = format!("{}{}", app.url, case.endpoint.path());
            let (status, _, answer) = http
                .send_bytes(Method::POST, &url, &headers, case.body.clone())
                .await;
            let shown =
                String::from_utf8_lossy(&case.body[..case.body.len().min(300)]).into_owned();
            let text = String::from_utf8_lossy(&answer).into_owned();
            *statuses
                .borrow_mut()
                .entry((case.endpoint, status.as_u16()))
                .or_default() += 1;
            prop_assert!(
                !status.is_server_error(),
                "{} {} answered {} {}",
                url,
                shown,
                status,
                text
            );
            prop_assert!(
                documented[case.endpoint.path()].contains(&status.as_u16()),
                "{} {} answered {}, not in the document: {}",
                url,
                shown,
                status,
                text
            );
            let v: Value = serde_json::from_slice(&answer).map_err(|e| {
                TestCaseError::fail(format!("{shown}: answer not JSON ({e}): {text}"))
            })?;
            if status.is_client_error() {
                prop_assert!(v["error"].is_string(), "{}: {}", shown, text);
                prop_assert!(
                    v.get("field").is_none_or(Value::is_string),
                    "{}: {}",
                    shown,
                    text
                );
            }
            // Still answering.
            let (live, _) = http.get(&format!("{}/livez", app.url)).await;
            prop_assert_eq!(live, StatusCode::OK);
            match case.endpoint {
                Endpoint::Payments => {
                    let id = v["correlationId"].as_str().and_then(|s| s.parse().ok());
                    match status {
                        StatusCode::ACCEPTED => {
                            let id = id.ok_or_else(|| TestCaseError::fail(text.clone()))?;
                            prop_assert!(accepted.borrow_mut().insert(id), "{} accepted twice", id);
                        }
                        StatusCode::OK => {
                            let id = id.ok_or_else(|| TestCaseError::fail(text.clone()))?;
                            prop_assert!(
                                accepted.borrow().contains(&id),
                                "{} duplicate of nothing",
                                id
                            );
                        }
                        _ => {}
                    }
                }
                Endpoint::Transactions | Endpoint::Recommend => {
                    let now = engine(&http, &intel.url, &ids).await;
                    if status == StatusCode::CREATED {
                        prop_assert_eq!(case.endpoint, Endpoint::Transactions);
                        *engine_seen.borrow_mut() = now;
                    } else {
                        prop_assert_eq!(
                            &now,
                            &*engine_seen.borrow(),
                            "{} changed the engine",
                            shown
                        );
                    }
                }
            }
            Ok(())
        })
    });
    if let Err(e) = outcome {
        panic!("{e}");
    }
    rt.block_on(async {
        // The store holds exactly what was answered 202.
        let stored: BTreeSet<CorrelationId> =
            stored_payments(store.as_ref()).await.into_keys().collect();
        assert_eq!(stored, *accepted.borrow());
        // No 5xx, as the server itself counted them.
        for app in [&payments, &intel] {
            let (s, metrics) = http.get_text(&format!("{}/metrics", app.url)).await;
            assert_eq!(s, StatusCode::OK);
            let server_errors: Vec<&str> = metrics
                .lines()
                .filter(|l| {
                    l.starts_with("reroute_http_requests_total{") && l.contains("status=\"5")
                })
                .collect();
            assert!(server_errors.is_empty(), "{server_errors:?}");
        }
    });
    eprintln!(
        "fuzz_bodies: {cases} cases, answers by (endpoint, status): {:?}",
        statuses.borrow()
    );
    rt.block_on(payments.stop());
    rt.block_on(intel.stop());
}
