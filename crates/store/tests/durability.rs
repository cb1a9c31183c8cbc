//! The embedded store at each durability level keeps what it answered for:
//! accepts, attempts and outcomes read back the same after a reopen. At
//! `Durability::Os` inside a runtime the writer is a task on that runtime
//! (not a thread), and it holds the file's lock until its last commit, so a
//! reopen waits for the lock rather than finding two writers.

mod common;

use common::{attempt, payment};
use reroute_store::{Acceptance, Durability, NewPayment, Outcome, SqliteStore, Store, StoreError};

/// Reopens the store at `path`, waiting (bounded) for a writer task that
/// still holds the lock to finish.
async fn reopen(path: &std::path::Path, durability: Durability) -> SqliteStore {
    for _ in 0..200 {
        match SqliteStore::open_with(path, durability) {
            Ok(store) => return store,
            Err(StoreError::InUse { .. }) => tokio::task::yield_now().await,
            Err(e) => panic!("reopen failed: {e}"),
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    panic!("the store's lock was never released");
}

async fn keeps_what_it_answered_for(durability: Durability) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("reroute.db");
    let store = SqliteStore::open_with(&path, durability).unwrap();
    let payments: Vec<_> = (0..100).map(|i| payment(100 + i, i)).collect();
    // At once, as a load would: they share commits.
    let accepts: Vec<_> = payments
        .iter()
        .map(|p| {
            let (store, p) = (store.clone(), p.clone());
            tokio::spawn(async move { store.accept(p).await })
        })
        .collect();
    for accepted in accepts {
        assert_eq!(accepted.await.unwrap().unwrap(), Acceptance::New);
    }
    for p in &payments[..40] {
        let a = attempt("default", 1_000);
        assert!(store.begin_attempt(p.id, a.clone()).await.unwrap());
        assert!(store.finish(p.id, Outcome::Processed(a)).await.unwrap());
    }
    // A second open while the first holds the file is refused.
    assert!(matches!(
        SqliteStore::open_with(&path, durability),
        Err(StoreError::InUse { .. })
    ));
    drop(store);

    let again = reopen(&path, durability).await;
    assert_eq!(again.ledger().await.unwrap().len(), 40);
    assert_eq!(again.pending().await.unwrap().len(), 60);
    assert_eq!(
        again.accept(payments[0].clone()).await.unwrap(),
        Acceptance::Duplicate
    );
}

#[tokio::test]
async fn stable_keeps_what_it_answered_for() {
    keeps_what_it_answered_for(Durability::Stable).await;
}

#[tokio::test]
async fn os_in_a_runtime_keeps_what_it_answered_for() {
    keeps_what_it_answered_for(Durability::Os).await;
}

#[tokio::test(flavor = "current_thread")]
async fn os_on_a_single_threaded_runtime_keeps_what_it_answered_for() {
    keeps_what_it_answered_for(Durability::Os).await;
}

/// On PostgreSQL, `os` is `synchronous_commit = off` on the instance's own
/// sessions, and only there: `stable` keeps the server's setting.
#[tokio::test]
async fn on_postgres_os_turns_synchronous_commit_off_for_this_instance_only() {
    use common::{Engine, Postgres};
    let pg = Postgres::new().await;
    let os = pg
        .open_with(reroute_store::PostgresConfig {
            durability: Durability::Os,
            ..pg.config()
        })
        .await;
    let stable = pg.open().await;
    assert_eq!(os.synchronous_commit().await.unwrap(), "off");
    assert_eq!(stable.synchronous_commit().await.unwrap(), "on");
    // And it stores as the other does.
    let p = payment(1990, 1);
    assert_eq!(os.accept(p.clone()).await.unwrap(), Acceptance::New);
    assert_eq!(stable.accept(p).await.unwrap(), Acceptance::Duplicate);
}

/// Makes the file at `path` look last opened under another boot, as after a
/// kernel crash: the boot id the store recorded is replaced.
fn last_opened_under_another_boot(path: &std::path::Path) {
    let conn = rusqlite::Connection::open(path).unwrap();
    let changed = conn
        .execute("UPDATE opened SET boot = x'00ff'", [])
        .unwrap();
    assert_eq!(changed, 1, "the store records the boot it was opened under");
}

/// Attempts are not synced at `stable`: a store opened after a kernel crash
/// marks the payments pending then unrecorded — and only those, only
/// once — and an attempt recorded since clears the mark. Finished payments
/// are not marked.
#[tokio::test]
async fn a_store_opened_under_another_boot_marks_its_pending_payments_unrecorded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("reroute.db");
    let store = SqliteStore::open(&path).unwrap();
    let (pending, finished) = (payment(100, 1), payment(200, 2));
    for p in [&pending, &finished] {
        assert_eq!(store.accept(p.clone()).await.unwrap(), Acceptance::New);
    }
    let a = attempt("default", 1_000);
    assert!(store.begin_attempt(pending.id, a.clone()).await.unwrap());
    assert!(
        store
            .finish(finished.id, Outcome::Processed(a.clone()))
            .await
            .unwrap()
    );
    drop(store);
    let unrecorded = |store: &SqliteStore| {
        let store = store.clone();
        async move {
            let pending = store.pending().await.unwrap();
            pending.iter().map(|p| p.unrecorded).collect::<Vec<_>>()
        }
    };

    // Reopened under the same boot: nothing is unrecorded.
    let store = reopen(&path, Durability::Stable).await;
    assert_eq!(unrecorded(&store).await, [false]);
    drop(store);

    last_opened_under_another_boot(&path);
    let store = reopen(&path, Durability::Stable).await;
    let after = store.pending().await.unwrap();
    assert_eq!(after.len(), 1, "the finished payment stays finished");
    assert!(after[0].unrecorded, "{after:?}");
    assert_eq!(
        after[0].attempt.as_ref(),
        Some(&a),
        "the attempt it had is kept"
    );
    assert_eq!(
        store.find(finished.id).await.unwrap().unwrap().state,
        reroute_store::PaymentState::Processed
    );
    drop(store);

    // The mark outlives a restart under the same boot: the lookups it asks
    // for may not have run.
    let store = reopen(&path, Durability::Stable).await;
    assert_eq!(unrecorded(&store).await, [true]);
    // An attempt of this boot clears it; it is reclaimed first, as a
    // previous run's payment is before it is worked on.
    let reclaimed = store.reclaim(10).await.unwrap();
    assert!(reclaimed[0].unrecorded);
    assert!(
        store
            .begin_attempt(pending.id, attempt("fallback", 2_000))
            .await
            .unwrap()
    );
    assert_eq!(unrecorded(&store).await, [false]);
}

/// A payment the accept table kept through a kernel crash and the store
/// lost is stored marked unrecorded, and the mark outlives a restart; a
/// known id is answered as an accept would and left as it is.
#[tokio::test]
async fn a_payment_accepted_unrecorded_is_stored_marked_and_a_known_one_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("reroute.db");
    let store = SqliteStore::open(&path).unwrap();
    let (known, lost) = (payment(100, 1), payment(200, 2));
    assert_eq!(store.accept(known.clone()).await.unwrap(), Acceptance::New);
    assert_eq!(
        store.accept_unrecorded(lost.clone()).await.unwrap(),
        Acceptance::New
    );
    assert_eq!(
        store.accept_unrecorded(known.clone()).await.unwrap(),
        Acceptance::Duplicate
    );
    let other_amount = NewPayment {
        amount: reroute_core::Money::from_minor(300),
        ..known.clone()
    };
    assert_eq!(
        store.accept_unrecorded(other_amount).await.unwrap(),
        Acceptance::Conflict {
            existing: known.amount
        }
    );
    drop(store);
    let store = reopen(&path, Durability::Stable).await;
    let mut marks: Vec<_> = store
        .pending()
        .await
        .unwrap()
        .into_iter()
        .map(|p| (p.payment.id, p.unrecorded, p.attempt))
        .collect();
    marks.sort_by_key(|(id, ..)| *id != known.id);
    assert_eq!(marks, [(known.id, false, None), (lost.id, true, None)]);
}
