//! The engine's checks that need no database, or fail before reaching one.

use super::config::is_identifier;
use super::*;
use crate::StoreError;

#[test]
fn only_plain_lower_case_identifiers_name_a_schema() {
    for good in ["reroute", "t_0123abcd", "_x"] {
        assert!(is_identifier(good), "{good}");
    }
    for bad in [
        "",
        "Reroute",
        "1abc",
        "a-b",
        "a b",
        "a;drop",
        &"x".repeat(64),
    ] {
        assert!(!is_identifier(bad), "{bad}");
    }
}

#[tokio::test]
async fn a_bad_url_or_schema_is_a_misconfiguration() {
    let bad_url = PostgresStore::connect(PostgresConfig::new("postgres://host:notaport/db"));
    assert!(matches!(bad_url.await, Err(StoreError::Misconfigured(_))));
    let bad_schema = PostgresStore::connect(PostgresConfig {
        schema: Some("x; DROP TABLE payments".into()),
        ..PostgresConfig::new("postgres://127.0.0.1/db")
    });
    assert!(matches!(
        bad_schema.await,
        Err(StoreError::Misconfigured(_))
    ));
}
