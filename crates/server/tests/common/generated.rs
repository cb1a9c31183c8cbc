//! Helpers of the tests that generate their requests (the `hostile_*`
//! property tests and `fuzz_bodies`): the number of cases, percent and JSON
//! string encodings, and arbitrary JSON values.

use serde_json::Value;

/// The number of cases for a property test over HTTP: `PROPTEST_CASES`
/// when set (to run it at scale), else `default` (a few seconds in CI).
pub fn proptest_cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Percent-encodes every byte but the unreserved ones, for query strings
/// and path segments.
pub fn percent_encode(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A JSON string literal; with `escaped`, every character as `\uXXXX`.
pub fn json_string(s: &str, escaped: bool) -> String {
    if !escaped {
        return serde_json::to_string(s).unwrap();
    }
    let mut out = String::from("\"");
    for unit in s.encode_utf16() {
        out.push_str(&format!("\\u{unit:04x}"));
    }
    out.push('"');
    out
}

/// Arbitrary JSON values, nested a little.
pub fn json_value() -> impl proptest::strategy::Strategy<Value = Value> {
    use proptest::prelude::*;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map("\\PC{0,6}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}
