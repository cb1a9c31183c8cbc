//! Property tests of the intelligence API's transaction parser, through
//! the real HTTP app: each generated `POST /api/v1/transactions` body is
//! judged against a model written here from the documented contract — the
//! exact status, the field named in the error, the record as the health
//! engine then shows it — and a refused one must record nothing (every
//! processor's health and the alert count are unchanged).
//!
//! `PROPTEST_CASES=N` runs the property with N cases (the default keeps it
//! to a few seconds).

mod common;

use std::cell::RefCell;

use common::hostile::*;
use common::*;
use hyper::StatusCode;
use proptest::prelude::*;
use reroute_core::{Money, Timestamp};
use serde_json::Value;

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
        let amount = self.amount.raw();
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
    let (_dir, app, http, registry) = rt.block_on(techcart_registry());
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
        let (status, _, answer) = http.post_json_raw(&url, &body).await;
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
