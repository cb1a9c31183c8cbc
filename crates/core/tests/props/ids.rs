//! Correlation ids: hyphenated UUIDs in, the same text out.

use std::str::FromStr;

use proptest::prelude::*;
use reroute_core::CorrelationId;

use super::config;

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
