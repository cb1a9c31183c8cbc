//! `reroute ledger`, through the binary: the reconciliation export prints
//! the store's processed payments, then its pending ones, as JSON lines with
//! amounts in cents; a declined payment is in neither; a missing store file
//! is an error, not an empty export. PostgreSQL is read the same way, with
//! a name of the reader's own (`--instance`).

use std::process::Command;

use reroute_core::{CorrelationId, Money, Timestamp};
use reroute_store::{
    Attempt, NewPayment, Outcome, PostgresConfig, PostgresStore, SqliteStore, Store,
};
use serde_json::{Value, json};

mod common;

fn payment(n: u8, cents: i64) -> NewPayment {
    NewPayment {
        id: CorrelationId::from_bytes([n; 16]),
        amount: Money::from_minor(cents),
        payment_method: None,
        country: None,
        accepted_at: Timestamp::from_millis(1_752_582_896_000),
    }
}

fn attempt(processor: &str, ms: i64) -> Attempt {
    Attempt {
        processor: processor.into(),
        requested_at: Timestamp::from_millis(ms),
    }
}

fn ledger(args: &[&std::ffi::OsStr]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_reroute"))
        .arg("ledger")
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("reroute runs")
}

/// The export's lines, once it succeeded.
fn exported(args: &[&std::ffi::OsStr]) -> Vec<Value> {
    let out = ledger(args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test]
async fn the_export_lists_the_ledger_then_the_pending_payments_in_cents() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("reroute.db");
    {
        let store = SqliteStore::open(&db).unwrap();
        for (n, cents) in [(1, 1990), (2, 5), (3, 700), (4, 12_345)] {
            store.accept(payment(n, cents)).await.unwrap();
        }
        let charged = attempt("default", 1_752_582_896_123);
        let id = |n| CorrelationId::from_bytes([n; 16]);
        assert!(store.begin_attempt(id(1), charged.clone()).await.unwrap());
        assert!(
            store
                .finish(id(1), Outcome::Processed(charged))
                .await
                .unwrap()
        );
        let sent = attempt("fallback", 1_752_582_897_000);
        assert!(store.begin_attempt(id(2), sent).await.unwrap());
        let refused = attempt("default", 1_752_582_898_000);
        assert!(store.begin_attempt(id(3), refused.clone()).await.unwrap());
        assert!(
            store
                .finish(id(3), Outcome::Declined(refused))
                .await
                .unwrap()
        );
    }

    let lines = exported(&["--db".as_ref(), db.as_os_str()]);
    let id = |n| CorrelationId::from_bytes([n; 16]).to_string();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(
        lines[0],
        json!({"correlationId": id(1), "amountCents": 1990, "processor": "default",
               "requestedAt": "2025-07-15T12:34:56.123Z", "status": "processed"})
    );
    let pending: Vec<&Value> = lines[1..].iter().collect();
    assert!(pending.iter().all(|l| l["status"] == "pending"));
    let sent = pending
        .iter()
        .find(|l| l["correlationId"] == id(2))
        .unwrap();
    assert_eq!(sent["amountCents"], 5);
    assert_eq!(sent["processor"], "fallback");
    let waiting = pending
        .iter()
        .find(|l| l["correlationId"] == id(4))
        .unwrap();
    assert_eq!(waiting["amountCents"], 12_345);
    assert_eq!(waiting["processor"], Value::Null);
}

#[test]
fn a_missing_store_file_is_an_error_not_an_empty_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("absent.db");
    let out = ledger(&["--db".as_ref(), db.as_os_str()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no store at"));
    assert!(!db.exists(), "the export must not create a store");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_store_is_exported_under_the_reader_s_own_name() {
    let db = common::Database::create().await;
    {
        let store = PostgresStore::connect(PostgresConfig::new(db.url()))
            .await
            .unwrap();
        store.accept(payment(1, 1990)).await.unwrap();
        store.accept(payment(2, 5)).await.unwrap();
        let id = CorrelationId::from_bytes([1; 16]);
        let charged = attempt("fallback", 1_752_582_896_123);
        assert!(store.begin_attempt(id, charged.clone()).await.unwrap());
        assert!(store.finish(id, Outcome::Processed(charged)).await.unwrap());
    }
    let url = db.url();
    let lines = tokio::task::spawn_blocking(move || {
        let args = ["--store", &url, "--instance", "audit"].map(std::ffi::OsStr::new);
        exported(&args)
    })
    .await
    .unwrap();
    let id = |n| CorrelationId::from_bytes([n; 16]).to_string();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["correlationId"], id(1));
    assert_eq!(lines[0]["processor"], "fallback");
    assert_eq!(lines[0]["status"], "processed");
    assert_eq!(lines[1]["correlationId"], id(2));
    assert_eq!(lines[1]["amountCents"], 5);
    assert_eq!(lines[1]["status"], "pending");
}

#[test]
fn the_store_is_named_once() {
    let out = ledger(&[
        "--db".as_ref(),
        "a.db".as_ref(),
        "--store".as_ref(),
        "postgres://x".as_ref(),
    ]);
    assert!(!out.status.success());
    let out = ledger(&[]);
    assert!(!out.status.success());
}
