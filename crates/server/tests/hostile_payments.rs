//! Property tests of the payments API's parsers, through the real HTTP
//! app: the `POST /payments` body and the summary's query string. Each
//! generated request is judged against a model written here from the
//! documented contract: the exact status, the field named in the error, the
//! answer's content for a success, and — for every refusal — that nothing
//! was stored (the store's contents are compared with what was accepted).
//!
//! `PROPTEST_CASES=N` runs each property with N cases (defaults keep each
//! test to a few seconds).

mod common;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::hostile::*;
use common::*;
use hyper::{Method, StatusCode};
use proptest::prelude::*;
use reroute_core::{CorrelationId, Money};
use reroute_store::Store;
use serde_json::Value;

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
        let amount = self.amount.raw();
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
    // Text that only looks like an id is one if the core parses it: its
    // property test holds that parser to the hyphenated-UUID reference.
    let id = match &case.id {
        IdField::Uuid { id, .. } => Some(*id),
        IdField::NotUuid(s) => s.parse().ok(),
        _ => None,
    };
    let Some(id) = id else {
        return Refused(bad, Some("correlationId"));
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
    let (dir, store, app) = start_with_embedded_store(&sims, |_| {}).await;
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
