//! Property tests of the intelligence API's queries, through the real
//! HTTP app: a recommendation asked as a query string or a JSON body, the
//! alerts' `since` bound, and any processor path of the health endpoint.
//! Each answer is the one the documented contract gives: the processors
//! that take the method in the country, a list, or the error shape with
//! the field it names.
//!
//! `PROPTEST_CASES=N` runs each property with N cases (defaults keep each
//! test to a few seconds).

mod common;

use common::hostile::*;
use common::*;
use hyper::{Method, StatusCode};
use proptest::prelude::*;
use reroute_core::Money;
use serde_json::Value;

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
    let (_dir, app, http, registry) = rt.block_on(techcart_registry());
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
            let amount = case.amount.raw();
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
            let amount = case.amount.raw();
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
            let (s, _, b) = http.post_json_raw(&url, &body).await;
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
    let (_dir, app, http, _registry) = rt.block_on(techcart_registry());
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
    let (_dir, app, http, registry) = rt.block_on(techcart_registry());
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
