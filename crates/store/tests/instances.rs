//! Several instances on one PostgreSQL database: leases and their takeover,
//! the probe leadership, start-up migrations, and the writers. What an
//! outage does is in outages.rs.
//!
//! Each `PostgresStore` handle is one instance. An instance "crashes" by
//! being dropped without renewing its leases.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::{Engine, LEASE, Postgres, attempt, payment};
use reroute_core::Window;
use reroute_store::{Acceptance, Observer, Outcome, PostgresStore, Step, Store};
use tokio::task::JoinSet;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphaned_payments_are_reclaimed_exactly_once_by_instances_draining_together() {
    let engine = Postgres::new().await;
    // It holds its lease through 400 writes, however slow; it dies below.
    let crashed = engine.open_holding().await;
    let payments: Vec<_> = (0..300).map(|i| payment(i + 1, i)).collect();
    for p in &payments {
        assert_eq!(crashed.accept(p.clone()).await.unwrap(), Acceptance::New);
    }
    // Some were on their way to a processor when the instance died.
    for p in payments.iter().step_by(3) {
        assert!(
            crashed
                .begin_attempt(p.id, attempt("default", 1000 + p.accepted_at.millis()))
                .await
                .unwrap()
        );
    }
    engine.expire_leases().await;

    // The drainers renew nothing: their leases must outlast the draining.
    let mut instances = Vec::new();
    for _ in 0..4 {
        instances.push(engine.open_holding().await);
    }
    let mut drainers = JoinSet::new();
    for store in instances {
        drainers.spawn(async move {
            let mut mine = Vec::new();
            loop {
                let batch = store.reclaim(7).await.unwrap();
                if batch.is_empty() {
                    return (store, mine);
                }
                mine.extend(batch);
            }
        });
    }
    let drained = drainers.join_all().await;
    let mut seen = HashSet::new();
    for (_, mine) in &drained {
        for p in mine {
            assert!(
                seen.insert(p.payment.id),
                "{} reclaimed twice",
                p.payment.id
            );
            let expected = payments.iter().position(|q| q.id == p.payment.id).unwrap();
            assert_eq!(p.payment, payments[expected]);
            let open = (expected % 3 == 0)
                .then(|| attempt("default", 1000 + p.payment.accepted_at.millis()));
            assert_eq!(p.attempt, open, "the open attempt comes back with it");
        }
    }
    assert_eq!(seen.len(), payments.len());
    assert!(
        drained.iter().filter(|(_, mine)| !mine.is_empty()).count() > 1,
        "the work was shared"
    );

    // The crashed instance, back from the dead, may no longer send them.
    for p in &payments {
        assert!(
            !crashed
                .begin_attempt(p.id, attempt("fallback", 5))
                .await
                .unwrap()
        );
    }
    crashed.renew().await.unwrap();
    let (store, mine) = &drained[0];
    if let Some(p) = mine.first() {
        assert!(
            store
                .begin_attempt(p.payment.id, attempt("fallback", 6))
                .await
                .unwrap(),
            "its new holder may"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_instance_keeps_its_payments_by_renewing_its_leases() {
    let engine = Postgres::new().await;
    let live = engine.open().await;
    let other = engine.open().await;
    let p = payment(100, 1);
    live.accept(p.clone()).await.unwrap();
    let until = Instant::now() + LEASE * 3;
    while Instant::now() < until {
        live.renew().await.unwrap();
        assert!(other.reclaim(10).await.unwrap().is_empty());
        tokio::time::sleep(LEASE / 5).await;
    }
    assert!(
        live.begin_attempt(p.id, attempt("default", 2))
            .await
            .unwrap()
    );
    // It stops renewing (it hangs, or died): the other takes over.
    engine.outlive_leases().await;
    let taken = other.reclaim(10).await.unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].attempt, Some(attempt("default", 2)));
    assert!(
        !live
            .begin_attempt(p.id, attempt("fallback", 3))
            .await
            .unwrap()
    );
}

/// A holder paused, or cut off from the database, past its lease may be
/// taken over at any moment: until it renews, it must not send.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_whose_lease_ran_out_sends_nothing_until_it_renews() {
    let engine = Postgres::new().await;
    let stalled = engine.open().await;
    let p = payment(100, 1);
    stalled.accept(p.clone()).await.unwrap();
    engine.outlive_leases().await;
    assert!(
        !stalled
            .begin_attempt(p.id, attempt("default", 2))
            .await
            .unwrap(),
        "an attempt recorded on a lease that ran out"
    );
    stalled.renew().await.unwrap();
    assert!(
        stalled
            .begin_attempt(p.id, attempt("default", 2))
            .await
            .unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_outcome_from_the_former_holder_is_recorded_once() {
    let engine = Postgres::new().await;
    let former = engine.open().await;
    let p = payment(100, 1);
    former.accept(p.clone()).await.unwrap();
    assert!(
        former
            .begin_attempt(p.id, attempt("default", 2))
            .await
            .unwrap()
    );
    engine.outlive_leases().await;
    let holder = engine.open().await;
    assert_eq!(holder.reclaim(10).await.unwrap().len(), 1);
    // The processor answers the former holder's send: it is a fact, recorded.
    assert!(
        former
            .finish(p.id, Outcome::Processed(attempt("default", 2)))
            .await
            .unwrap()
    );
    // The new holder's resolution at the same processor finds it finished.
    assert!(
        !holder
            .finish(p.id, Outcome::Processed(attempt("default", 2)))
            .await
            .unwrap()
    );
    let ledger = holder.ledger().await.unwrap();
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0].processor, "default");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_instance_reads_the_same_ledger_and_summary() {
    let engine = Postgres::new().await;
    let (a, b) = (engine.open().await, engine.open().await);
    let (x, y) = (payment(1000, 1), payment(250, 2));
    a.accept(x.clone()).await.unwrap();
    b.accept(y.clone()).await.unwrap();
    assert_eq!(b.accept(x.clone()).await.unwrap(), Acceptance::Duplicate);
    a.finish(x.id, Outcome::Processed(attempt("default", 10)))
        .await
        .unwrap();
    b.finish(y.id, Outcome::Processed(attempt("default", 11)))
        .await
        .unwrap();
    for store in [&a, &b] {
        let totals = store.summary(Window::ALL).await.unwrap();
        assert_eq!(totals.len(), 1);
        assert_eq!((totals[0].requests, totals[0].amount.minor()), (2, 1250));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_instance_leads_the_probes_and_another_takes_over_when_it_dies() {
    let engine = Postgres::new().await;
    let term = Duration::from_secs(1);
    let leader = engine.open().await;
    let follower = engine.open().await;
    assert!(leader.lead_probes(term).await.unwrap());
    assert!(!follower.lead_probes(term).await.unwrap());
    // The leader keeps its term by asking again before it ends.
    for _ in 0..4 {
        tokio::time::sleep(term / 4).await;
        assert!(leader.lead_probes(term).await.unwrap());
        assert!(!follower.lead_probes(term).await.unwrap());
    }
    // The leader dies: the follower, asking every tenth of a term, takes
    // over once the term has run out, and well within a second term.
    drop(leader);
    let died = Instant::now();
    while !follower.lead_probes(term).await.unwrap() {
        assert!(died.elapsed() < term * 2, "no takeover");
        tokio::time::sleep(term / 10).await;
    }
    assert!(died.elapsed() >= term / 2, "not before the term ran out");
    assert!(follower.lead_probes(term).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_racing_for_a_free_leadership_get_exactly_one_leader() {
    let engine = Postgres::new().await;
    let mut stores = Vec::new();
    for _ in 0..6 {
        stores.push(engine.open().await);
    }
    let client = engine.client().await;
    for round in 0..5 {
        let mut racers = JoinSet::new();
        for store in &stores {
            let store = store.clone();
            racers.spawn(async move { store.lead_probes(Duration::from_secs(30)).await });
        }
        let won = racers
            .join_all()
            .await
            .into_iter()
            .filter(|r| *r.as_ref().unwrap())
            .count();
        assert_eq!(won, 1, "round {round}");
        // The leader dies and its term runs out.
        client
            .batch_execute("UPDATE leaders SET until = clock_timestamp() - interval '1 second'")
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_starting_together_migrate_once() {
    let engine = Postgres::new().await;
    let mut starting = JoinSet::new();
    for _ in 0..5 {
        let config = engine.config();
        starting.spawn(async move { PostgresStore::connect(config).await.map(|_| ()) });
    }
    for started in starting.join_all().await {
        started.unwrap();
    }
    let client = engine.client().await;
    let versions: Vec<i32> = client
        .query(
            "SELECT version FROM schema_migrations ORDER BY version",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, vec![1, 2, 3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_instance_takes_its_predecessors_payments_over_at_once() {
    let engine = Postgres::new().await;
    let named = |name: &str| reroute_store::PostgresConfig {
        instance: name.into(),
        // Far longer than the test: nothing here waits for a lease.
        lease: Duration::from_secs(60),
        ..engine.config()
    };
    let killed = engine.open_with(named("api1")).await;
    let others = engine.open_with(named("api1x")).await;
    let held = [payment(1, 1), payment(2, 2)];
    for p in &held {
        assert_eq!(killed.accept(p.clone()).await.unwrap(), Acceptance::New);
    }
    let theirs = payment(3, 3);
    others.accept(theirs.clone()).await.unwrap();
    // api1 is gone without a word (its leases have 60 s to run).
    drop(killed);

    // Another instance must wait for the leases...
    let api2 = engine.open_with(named("api2")).await;
    assert!(api2.take_over_predecessor(10).await.unwrap().is_empty());
    assert!(api2.reclaim(10).await.unwrap().is_empty());
    // ...but api1's next process takes them at once, and only them (not
    // those of `api1x`, whose name merely starts the same).
    let restarted = engine.open_with(named("api1")).await;
    let taken: Vec<_> = restarted
        .take_over_predecessor(10)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.payment.id)
        .collect();
    let held_ids = [held[0].id, held[1].id];
    assert_eq!(taken, held_ids);
    assert!(
        restarted
            .take_over_predecessor(10)
            .await
            .unwrap()
            .is_empty()
    );
    // Now leased to the new process: attempted by it only, not reclaimable,
    // and each process holds its own.
    assert!(api2.reclaim(10).await.unwrap().is_empty());
    let held_by = |store: &PostgresStore| {
        let store = store.clone();
        async move {
            let later = reroute_core::Timestamp::from_millis(i64::MAX);
            let held = store.held(later, 10).await.unwrap();
            held.into_iter().map(|p| p.payment.id).collect::<Vec<_>>()
        }
    };
    assert_eq!(held_by(&restarted).await, [held_ids[0], held_ids[1]]);
    assert_eq!(held_by(&others).await, [theirs.id]);
    assert!(held_by(&api2).await.is_empty());
    assert!(
        restarted
            .begin_attempt(held_ids[0], attempt("default", 5))
            .await
            .unwrap()
    );
    assert!(
        !others
            .begin_attempt(held_ids[1], attempt("default", 6))
            .await
            .unwrap(),
        "a payment another process holds is not attempted by this one"
    );
    assert!(
        others
            .begin_attempt(theirs.id, attempt("default", 7))
            .await
            .unwrap()
    );
}

/// What an [`Observer`] was told.
#[derive(Debug, Default)]
struct Told(std::sync::Mutex<Vec<Step>>);

impl Observer for Told {
    fn observe(&self, step: Step, _took: Duration) {
        self.0.lock().unwrap().push(step);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_observer_is_told_of_pool_waits_and_of_each_group_of_writes() {
    let pg = Postgres::new().await;
    let told = std::sync::Arc::new(Told::default());
    let store = pg
        .open_with(reroute_store::PostgresConfig {
            observer: Some(told.clone()),
            ..pg.config()
        })
        .await;
    store.accept(payment(100, 1)).await.unwrap();
    store.summary(Window::ALL).await.unwrap();
    let steps = told.0.lock().unwrap().clone();
    assert!(
        steps.contains(&Step::Group { writes: 1 }),
        "the accept's group: {steps:?}"
    );
    assert!(
        steps.iter().filter(|s| **s == Step::PoolWait).count() >= 2,
        "the writer's connection and the summary's: {steps:?}"
    );
}

/// A renewal takes no lock on the payments: while a writer's group holds a
/// pending payment (here, a transaction that updated it and has not
/// committed), the lease is renewed at once. Renewing every pending row
/// waited for that lock, and with two groups in flight deadlocked with them
/// (docs/postgres.md, "Where the time goes").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewal_does_not_wait_for_payments_being_written() {
    let engine = Postgres::new().await;
    let store = engine
        .open_with(reroute_store::PostgresConfig {
            statement_timeout: Duration::from_millis(500),
            ..engine.config()
        })
        .await;
    let held = payment(1, 1);
    store.accept(held.clone()).await.unwrap();
    let mut writer = engine.client().await;
    let tx = writer.transaction().await.unwrap();
    tx.execute(
        "UPDATE payments SET processor = 'default' WHERE id = $1",
        &[held.id.as_uuid()],
    )
    .await
    .unwrap();
    let renewed = store.renew().await;
    assert!(renewed.is_ok(), "{renewed:?}");
    tx.rollback().await.unwrap();
    // The lease still fences: the payment is this instance's to send.
    assert!(
        store
            .begin_attempt(held.id, attempt("default", 2))
            .await
            .unwrap()
    );
}

/// A group of 1,000 outcomes, planned as the writers' connections plan it
/// (their settings, the generic plan a prepared statement settles on, a
/// young table without statistics): the group's arrays are joined to the
/// payments by hashing. A nested loop
/// compared every write with every row (999,000 comparisons, 253 ms against
/// 9 ms, docs/postgres.md).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_big_group_is_joined_by_hashing() {
    let engine = Postgres::new().await;
    let store = engine.open().await;
    let payments: Vec<_> = (0..1_000).map(|i| payment(i + 1, i)).collect();
    for p in &payments {
        store.accept(p.clone()).await.unwrap();
    }
    let client = engine.client().await;
    let settings = reroute_store::postgres::WRITER_SETTINGS.replace("-c ", "");
    for setting in settings.split_whitespace() {
        let (name, value) = setting.split_once('=').unwrap();
        client
            .batch_execute(&format!("SET {name} = {value}"))
            .await
            .unwrap();
    }
    client
        .batch_execute(&format!(
            "SET plan_cache_mode = force_generic_plan; PREPARE g AS {}",
            reroute_store::postgres::APPLY_GROUP
        ))
        .await
        .unwrap();
    let array = |items: Vec<String>, of: &str| format!("'{{{}}}'::{of}[]", items.join(","));
    let n = payments.len();
    let ids = array(payments.iter().map(|p| p.id.to_string()).collect(), "uuid");
    let explain = format!(
        "EXPLAIN EXECUTE g('{{}}', '{{}}', '{{}}', '{{}}', '{{}}', '{{}}', '{{}}', '{{}}', \
         {ids}, {}, {}, {}, 'someone', '{{}}', '{{}}', {})",
        array(vec!["1".into(); n], "int2"),
        array(vec!["default".into(); n], "text"),
        array(vec!["5".into(); n], "int8"),
        array(vec!["6".into(); n], "int8"),
    );
    let plan: Vec<String> = client
        .simple_query(&explain)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_owned),
            _ => None,
        })
        .collect();
    let plan = plan.join("\n");
    assert!(!plan.contains("Nested Loop"), "{plan}");
    assert!(plan.contains("Hash Join"), "{plan}");
}
