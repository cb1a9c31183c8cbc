//! The embedded store at each durability level keeps what it answered for:
//! accepts, attempts and outcomes read back the same after a reopen. At
//! `Durability::Os` inside a runtime the writer is a task on that runtime
//! (not a thread), and it holds the file's lock until its last commit, so a
//! reopen waits for the lock rather than finding two writers.

mod common;

use common::{attempt, payment};
use reroute_store::{Acceptance, Durability, Outcome, SqliteStore, Store, StoreError};

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
