//! The embedded store's contract: durable acceptance, idempotency, attempts,
//! the ledger and its summaries, and what survives a reopen.

use reroute_core::{CorrelationId, Money, Timestamp, Window};
use reroute_store::{Acceptance, Attempt, NewPayment, Outcome, SqliteStore, Store};

fn payment(cents: i64, at: i64) -> NewPayment {
    NewPayment {
        id: CorrelationId::new_random(),
        amount: Money::from_minor(cents),
        payment_method: None,
        country: None,
        accepted_at: Timestamp::from_millis(at),
    }
}

fn attempt(processor: &str, at: i64) -> Attempt {
    Attempt {
        processor: processor.into(),
        requested_at: Timestamp::from_millis(at),
    }
}

#[tokio::test]
async fn a_repeated_id_is_a_duplicate_or_a_conflict_never_a_second_payment() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("r.db")).unwrap();
    let p = payment(1990, 1);
    assert_eq!(store.accept(p.clone()).await.unwrap(), Acceptance::New);
    assert_eq!(
        store.accept(p.clone()).await.unwrap(),
        Acceptance::Duplicate
    );
    let other = NewPayment {
        amount: Money::from_minor(2000),
        ..p.clone()
    };
    assert_eq!(
        store.accept(other).await.unwrap(),
        Acceptance::Conflict {
            existing: Money::from_minor(1990)
        }
    );
    assert_eq!(store.pending().await.unwrap().len(), 1);
}

#[tokio::test]
async fn pending_payments_and_their_attempts_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.db");
    let (a, b, c) = (payment(100, 1), payment(200, 2), payment(300, 3));
    {
        let store = SqliteStore::open(&path).unwrap();
        for p in [&a, &b, &c] {
            store.accept(p.clone()).await.unwrap();
        }
        assert!(
            store
                .begin_attempt(b.id, attempt("default", 50))
                .await
                .unwrap()
        );
        assert!(
            store
                .finish(c.id, Outcome::Processed(attempt("default", 60)))
                .await
                .unwrap()
        );
    }
    let store = SqliteStore::open(&path).unwrap();
    let pending = store.pending().await.unwrap();
    assert_eq!(pending.len(), 2);
    assert_eq!(pending[0].payment, a);
    assert_eq!(pending[0].attempt, None);
    assert_eq!(pending[1].payment, b);
    assert_eq!(pending[1].attempt, Some(attempt("default", 50)));
    let ledger = store.ledger().await.unwrap();
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0].id, c.id);
}

#[tokio::test]
async fn a_finished_payment_cannot_be_attempted_or_finished_again() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("r.db")).unwrap();
    let p = payment(100, 1);
    store.accept(p.clone()).await.unwrap();
    assert!(
        store
            .finish(p.id, Outcome::Processed(attempt("default", 5)))
            .await
            .unwrap()
    );
    assert!(
        !store
            .begin_attempt(p.id, attempt("fallback", 6))
            .await
            .unwrap()
    );
    assert!(
        !store
            .finish(p.id, Outcome::Processed(attempt("fallback", 6)))
            .await
            .unwrap()
    );
    let ledger = store.ledger().await.unwrap();
    assert_eq!(ledger[0].processor, "default");
}

#[tokio::test]
async fn summaries_count_processed_payments_by_requested_at_inclusively() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("r.db")).unwrap();
    let cases = [
        ("default", 1990, 10),
        ("default", 1990, 20),
        ("fallback", 500, 20),
        ("default", 7, 30),
    ];
    for (processor, cents, at) in cases {
        let p = payment(cents, 0);
        store.accept(p.clone()).await.unwrap();
        store
            .finish(p.id, Outcome::Processed(attempt(processor, at)))
            .await
            .unwrap();
    }
    let declined = payment(999, 0);
    store.accept(declined.clone()).await.unwrap();
    store
        .finish(declined.id, Outcome::Declined(attempt("default", 20)))
        .await
        .unwrap();
    store.accept(payment(999, 0)).await.unwrap(); // pending: not in the ledger

    let w = |from, to| {
        Window::new(
            Some(Timestamp::from_millis(from)),
            Some(Timestamp::from_millis(to)),
        )
    };
    let totals = store.summary(w(10, 20)).await.unwrap();
    assert_eq!(totals.len(), 2);
    assert_eq!(
        (
            totals[0].processor.as_str(),
            totals[0].requests,
            totals[0].amount.minor()
        ),
        ("default", 2, 3980)
    );
    assert_eq!(
        (
            totals[1].processor.as_str(),
            totals[1].requests,
            totals[1].amount.minor()
        ),
        ("fallback", 1, 500)
    );
    let all = store.summary(Window::ALL).await.unwrap();
    assert_eq!(all[0].requests, 3);
    assert!(store.summary(w(21, 29)).await.unwrap().is_empty());
}

#[tokio::test]
async fn concurrent_accepts_are_committed_in_groups_and_all_stand() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("r.db")).unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..500 {
        let store = store.clone();
        tasks.spawn(async move { store.accept(payment(i + 1, i)).await.unwrap() });
    }
    while let Some(r) = tasks.join_next().await {
        assert_eq!(r.unwrap(), Acceptance::New);
    }
    assert_eq!(store.pending().await.unwrap().len(), 500);
}

#[tokio::test]
async fn purge_empties_queue_and_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("r.db")).unwrap();
    let (a, b) = (payment(1, 1), payment(2, 2));
    store.accept(a.clone()).await.unwrap();
    store.accept(b.clone()).await.unwrap();
    store
        .finish(a.id, Outcome::Processed(attempt("default", 1)))
        .await
        .unwrap();
    store.purge().await.unwrap();
    assert!(store.pending().await.unwrap().is_empty());
    assert!(store.ledger().await.unwrap().is_empty());
    assert!(
        !store
            .begin_attempt(b.id, attempt("default", 3))
            .await
            .unwrap()
    );
}
