//! One process per embedded store file. Two routers on one SQLite file would
//! each take the other's pending payments over as "left by a previous run"
//! and send them twice; the store therefore takes an OS lock on the file
//! when it opens, and a second open fails at once, naming the file and the
//! process that holds it. The lock goes when the store is dropped (or its
//! process dies), so a reopen — the crash tests' restart — still works.

mod common;

use common::payment;
use reroute_store::{Acceptance, Durability, SqliteStore, Store, StoreError};

#[tokio::test]
async fn a_second_open_of_one_file_fails_naming_the_file_and_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("reroute.db");
    let first = SqliteStore::open(&path).expect("the first open succeeds");
    let second = SqliteStore::open(&path);
    let Err(e) = second else {
        panic!("a second store opened on a file another store holds");
    };
    let message = e.to_string();
    assert!(
        message.contains(&path.display().to_string()),
        "the message names the file: {message}"
    );
    assert!(
        message.contains(&format!("PID {}", std::process::id())),
        "the message names the process holding it: {message}"
    );
    assert!(
        matches!(e, StoreError::InUse { .. }),
        "a store in use is neither unavailable (retrying will not help) nor misconfigured: {e:?}"
    );
    // The first store goes on working.
    assert_eq!(
        first.accept(payment(100, 1)).await.unwrap(),
        Acceptance::New
    );
}

#[tokio::test]
async fn the_file_opens_again_once_every_clone_of_the_store_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("reroute.db");
    let p = payment(100, 1);
    let first = SqliteStore::open(&path).unwrap();
    let clone = first.clone();
    assert_eq!(first.accept(p.clone()).await.unwrap(), Acceptance::New);
    drop(first);
    // A clone still holds it.
    assert!(SqliteStore::open(&path).is_err());
    drop(clone);
    let again = SqliteStore::open(&path).expect("the file opens again once released");
    let pending = again.pending().await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].payment, p);
}

#[tokio::test]
async fn another_file_in_the_same_directory_is_not_held() {
    let dir = tempfile::tempdir().unwrap();
    let _a = SqliteStore::open(dir.path().join("a.db")).unwrap();
    let _b = SqliteStore::open(dir.path().join("b.db")).expect("another file is free");
}

/// At `os` the writer is a task on the runtime that opened the store: the
/// file is free only once that runtime has run the task's last commit, which
/// may be on another thread. `released` is how a caller knows.
#[tokio::test]
async fn released_resolves_once_a_writer_task_on_another_thread_has_let_go() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("reroute.db");
    let other = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let on_other = other.handle().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        other.block_on(async {
            let _ = stopped.await;
        })
    });
    let store = {
        let _on = on_other.enter();
        SqliteStore::open_with(&path, Durability::Os).unwrap()
    };
    let p = payment(100, 1);
    assert_eq!(store.accept(p.clone()).await.unwrap(), Acceptance::New);
    let released = store.released();
    drop(store);
    released.await;
    let again = SqliteStore::open_with(&path, Durability::Os).expect("the file is free");
    let pending = again.pending().await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].payment, p);
    stop.send(()).unwrap();
    thread.join().unwrap();
}

#[tokio::test]
async fn released_waits_for_every_clone_and_resolves_with_the_last() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("reroute.db");
    let store = SqliteStore::open(&path).unwrap();
    let clone = store.clone();
    let mut released = std::pin::pin!(store.released());
    drop(store);
    // Polled once, first: a clone still holds the file.
    tokio::select! {
        biased;
        _ = released.as_mut() => panic!("released while a clone holds the file"),
        _ = std::future::ready(()) => {}
    }
    drop(clone);
    released.await;
    SqliteStore::open(&path).expect("the file is free");
}
