//! The store's contract, the same for both engines: durable acceptance,
//! idempotency, attempts, the ledger and its summaries, what survives a
//! reopen, taking over what a previous run left, and shared probe reports.
//!
//! Each behaviour is written once, generic over the [`Engine`], and run on
//! SQLite and on PostgreSQL by the `behaviours!` list at the bottom
//! (the macro is in `common`). What one run or instance hands to another
//! (reclaims, takeovers, probe reports) is in takeover.rs.

#[macro_use]
mod common;

use common::{Engine, attempt, payment};
use reroute_core::{Money, Timestamp, Window};
use reroute_store::{Acceptance, NewPayment, Outcome, PaymentState, Store};

async fn a_repeated_id_is_a_duplicate_or_a_conflict_never_a_second_payment<E: Engine>() {
    let engine = E::new().await;
    let store = engine.open().await;
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

async fn the_same_id_accepted_at_once_is_new_exactly_once<E: Engine>() {
    let engine = E::new().await;
    let store = engine.open().await;
    let p = payment(1990, 1);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..20 {
        let store = store.clone();
        let p = NewPayment {
            amount: Money::from_minor(if i % 2 == 0 { 1990 } else { 2000 }),
            ..p.clone()
        };
        tasks.spawn(async move { store.accept(p).await.unwrap() });
    }
    let answers = tasks.join_all().await;
    let new = answers.iter().filter(|a| **a == Acceptance::New).count();
    assert_eq!(new, 1, "{answers:?}");
    let pending = store.pending().await.unwrap();
    assert_eq!(pending.len(), 1);
    let stored = pending[0].payment.amount;
    for answer in answers {
        match answer {
            Acceptance::New | Acceptance::Duplicate => {}
            Acceptance::Conflict { existing } => assert_eq!(existing, stored),
        }
    }
}

async fn pending_payments_and_their_attempts_survive_a_reopen<E: Engine>() {
    let engine = E::new().await;
    let (a, b, c) = (payment(100, 1), payment(200, 2), payment(300, 3));
    {
        let store = engine.open().await;
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
    let store = engine.open().await;
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

async fn a_planned_attempt_is_recorded_with_the_payment_and_reclaimed_as_open<E: Engine>() {
    let engine = E::new().await;
    let (planned, plain) = (payment(100, 1), payment(200, 2));
    {
        let crashed = engine.open().await;
        assert_eq!(
            crashed
                .accept_with_plan(planned.clone(), Some(attempt("default", 1)))
                .await
                .unwrap(),
            Acceptance::New
        );
        crashed.accept(plain.clone()).await.unwrap();
        // A repeated accept changes nothing, plan included.
        assert_eq!(
            crashed
                .accept_with_plan(planned.clone(), Some(attempt("fallback", 9)))
                .await
                .unwrap(),
            Acceptance::Duplicate
        );
        assert_eq!(
            crashed
                .accept_with_plan(plain.clone(), Some(attempt("fallback", 9)))
                .await
                .unwrap(),
            Acceptance::Duplicate
        );
    }
    engine.outlive_leases().await;
    let store = engine.open().await;
    // Only a store no other instance reads may have its plans sent unrecorded.
    assert_eq!(store.exclusive(), E::EXCLUSIVE);
    let reclaimed = store.reclaim(100).await.unwrap();
    assert_eq!(reclaimed.len(), 2);
    assert_eq!(reclaimed[0].payment, planned);
    assert_eq!(reclaimed[0].attempt, Some(attempt("default", 1)));
    assert_eq!(reclaimed[1].payment, plain);
    assert_eq!(reclaimed[1].attempt, None);
    // The plan is an open attempt like any other: it may be replaced, and
    // the outcome recorded.
    assert!(
        store
            .begin_attempt(planned.id, attempt("fallback", 5))
            .await
            .unwrap()
    );
    assert!(
        store
            .finish(planned.id, Outcome::Processed(attempt("fallback", 5)))
            .await
            .unwrap()
    );
    drop(store);
    let store = engine.open().await;
    let ledger = store.ledger().await.unwrap();
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0].id, planned.id);
    assert_eq!(ledger[0].processor, "fallback");
}

async fn a_finished_payment_cannot_be_attempted_or_finished_again<E: Engine>() {
    let engine = E::new().await;
    let store = engine.open().await;
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

async fn a_payment_is_found_and_known_in_every_state_and_a_duplicate_stays_out_of_the_ledger<
    E: Engine,
>() {
    let engine = E::new().await;
    let store = engine.open().await;
    assert_eq!(store.find(payment(1, 1).id).await.unwrap(), None);
    let states = [
        None,
        Some(Outcome::Processed(attempt("default", 5))),
        Some(Outcome::Declined(attempt("default", 6))),
        Some(Outcome::Duplicate(attempt("default", 7))),
    ];
    let mut ids = Vec::new();
    for (i, outcome) in states.iter().enumerate() {
        let p = payment(100 + i as i64, 1 + i as i64);
        store.accept(p.clone()).await.unwrap();
        store
            .begin_attempt(p.id, attempt("fallback", 3))
            .await
            .unwrap();
        if let Some(outcome) = outcome {
            assert!(store.finish(p.id, outcome.clone()).await.unwrap());
        }
        ids.push(p);
    }
    let found = |i: usize| {
        let store = &store;
        let id = ids[i].id;
        async move { store.find(id).await.unwrap().expect("found") }
    };
    let pending = found(0).await;
    assert_eq!(pending.payment, ids[0]);
    assert_eq!(pending.state, PaymentState::Pending);
    assert_eq!(pending.attempt, Some(attempt("fallback", 3)));
    for (i, (state, at)) in [
        (PaymentState::Processed, 5),
        (PaymentState::Declined, 6),
        (PaymentState::Duplicate, 7),
    ]
    .into_iter()
    .enumerate()
    {
        let record = found(i + 1).await;
        assert_eq!(record.payment, ids[i + 1]);
        assert_eq!(record.state, state);
        assert_eq!(record.attempt, Some(attempt("default", at)));
    }
    // Only the processed one is in the ledger and the summaries.
    let ledger = store.ledger().await.unwrap();
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0].id, ids[1].id);
    let totals = store.summary(Window::ALL).await.unwrap();
    assert_eq!(totals.iter().map(|t| t.requests).sum::<u64>(), 1);
    assert!(store.pending().await.unwrap().len() == 1);
    // Every state is known, with its amount.
    let mut known = store.known().await.unwrap();
    known.sort_by_key(|(_, amount)| amount.minor());
    let expected: Vec<_> = ids.iter().map(|p| (p.id, p.amount)).collect();
    assert_eq!(known, expected);
}

async fn held_lists_this_instances_pending_payments_accepted_before_a_time<E: Engine>() {
    let engine = E::new().await;
    let store = engine.open().await;
    let (old, done, new) = (payment(1, 1), payment(2, 2), payment(3, 10));
    for p in [&old, &done, &new] {
        store.accept(p.clone()).await.unwrap();
    }
    store
        .finish(done.id, Outcome::Processed(attempt("default", 3)))
        .await
        .unwrap();
    let ids = |held: Vec<reroute_store::PendingPayment>| -> Vec<_> {
        held.into_iter().map(|p| p.payment.id).collect()
    };
    let before = |ms| Timestamp::from_millis(ms);
    assert_eq!(ids(store.held(before(5), 10).await.unwrap()), [old.id]);
    assert_eq!(
        ids(store.held(before(100), 10).await.unwrap()),
        [old.id, new.id]
    );
    assert_eq!(ids(store.held(before(100), 1).await.unwrap()), [old.id]);
    assert!(
        store.held(before(1), 10).await.unwrap().is_empty(),
        "strictly before"
    );
}

async fn summaries_count_processed_payments_by_requested_at_inclusively<E: Engine>() {
    let engine = E::new().await;
    let store = engine.open().await;
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

/// A summary asked at an instant counts the outcomes answered by then
/// (inclusively), finished or restored, and none answered after, whenever
/// their commits landed.
async fn a_summary_counts_only_outcomes_answered_by_its_instant<E: Engine>() {
    let engine = E::new().await;
    let store = engine.open().await;
    let answered = |ms| Timestamp::from_millis(ms);
    for (cents, at) in [(100, 1_000), (200, 2_000), (400, 3_000)] {
        let p = payment(cents, 0);
        store.accept(p.clone()).await.unwrap();
        assert!(
            store
                .finish_answered(
                    p.id,
                    Outcome::Processed(attempt("default", 10)),
                    answered(at)
                )
                .await
                .unwrap()
        );
    }
    let restored = payment(800, 0);
    assert!(
        store
            .restore(
                restored,
                Outcome::Processed(attempt("default", 10)),
                answered(1_500)
            )
            .await
            .unwrap()
    );
    let requests_and_cents = |totals: Vec<reroute_store::Totals>| {
        totals
            .iter()
            .map(|t| (t.requests, t.amount.minor()))
            .collect::<Vec<_>>()
    };
    let by = |ms| store.summary_answered_by(Window::ALL, answered(ms));
    assert_eq!(requests_and_cents(by(999).await.unwrap()), vec![]);
    assert_eq!(
        requests_and_cents(by(2_000).await.unwrap()),
        vec![(3, 1_100)]
    );
    assert_eq!(
        requests_and_cents(by(5_000).await.unwrap()),
        vec![(4, 1_500)]
    );
    assert_eq!(
        requests_and_cents(store.summary(Window::ALL).await.unwrap()),
        vec![(4, 1_500)],
        "a summary without an instant counts every outcome"
    );
}

async fn concurrent_accepts_are_committed_in_groups_and_all_stand<E: Engine>() {
    let engine = E::new().await;
    let store = engine.open().await;
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

async fn concurrent_attempts_and_outcomes_of_many_payments_all_stand<E: Engine>() {
    let engine = E::new().await;
    // Its lease must not run out while a loaded machine accepts 200
    // payments: nothing here renews it.
    let store = engine.open_holding().await;
    let payments: Vec<_> = (0..200).map(|i| payment(i + 1, i)).collect();
    for p in &payments {
        store.accept(p.clone()).await.unwrap();
    }
    let mut tasks = tokio::task::JoinSet::new();
    for (i, p) in payments.iter().enumerate() {
        let store = store.clone();
        let id = p.id;
        tasks.spawn(async move {
            let a = attempt("default", 1000 + i as i64);
            assert!(store.begin_attempt(id, a.clone()).await.unwrap());
            if i % 4 == 0 {
                assert!(store.finish(id, Outcome::Declined(a)).await.unwrap());
            } else if i % 4 != 1 {
                assert!(store.finish(id, Outcome::Processed(a)).await.unwrap());
            }
        });
    }
    tasks.join_all().await;
    assert_eq!(store.pending().await.unwrap().len(), 50);
    let ledger = store.ledger().await.unwrap();
    assert_eq!(ledger.len(), 100);
    let total: i64 = ledger.iter().map(|e| e.amount.minor()).sum();
    let summary = store.summary(Window::ALL).await.unwrap();
    assert_eq!(summary[0].requests, 100);
    assert_eq!(summary[0].amount.minor(), total);
}

async fn purge_empties_queue_and_ledger<E: Engine>() {
    let engine = E::new().await;
    let store = engine.open().await;
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

/// A send in flight across a purge: its outcome is restored to the ledger
/// as the processor stored it, and a payment the store still has is never
/// overwritten by a restore.
async fn an_outcome_restored_after_a_purge_is_in_the_ledger_once<E: Engine>() {
    let engine = E::new().await;
    let store = engine.open().await;
    let (sent, kept) = (payment(1_990, 1), payment(500, 2));
    store.accept(sent.clone()).await.unwrap();
    store.purge().await.unwrap();
    assert!(
        !store
            .finish(sent.id, Outcome::Processed(attempt("default", 7)))
            .await
            .unwrap(),
        "purged: nothing to finish"
    );
    assert!(
        store
            .restore(
                sent.clone(),
                Outcome::Processed(attempt("default", 7)),
                Timestamp::now()
            )
            .await
            .unwrap()
    );
    let record = store.find(sent.id).await.unwrap().unwrap();
    assert_eq!(record.state, PaymentState::Processed);
    assert_eq!(record.payment, sent);
    assert_eq!(record.attempt, Some(attempt("default", 7)));
    let totals = store
        .summary(Window::new(
            Some(Timestamp::from_millis(7)),
            Some(Timestamp::from_millis(7)),
        ))
        .await
        .unwrap();
    assert_eq!(totals.len(), 1);
    assert_eq!(
        (totals[0].requests, totals[0].amount),
        (1, Money::from_minor(1_990))
    );
    assert!(
        store.pending().await.unwrap().is_empty(),
        "restored finished"
    );
    // Restored once: a second restore, or one of a payment still pending,
    // changes nothing.
    assert!(
        !store
            .restore(
                sent.clone(),
                Outcome::Processed(attempt("fallback", 9)),
                Timestamp::now()
            )
            .await
            .unwrap()
    );
    store.accept(kept.clone()).await.unwrap();
    assert!(
        !store
            .restore(
                kept.clone(),
                Outcome::Processed(attempt("default", 8)),
                Timestamp::now()
            )
            .await
            .unwrap()
    );
    assert_eq!(
        store.find(kept.id).await.unwrap().unwrap().state,
        PaymentState::Pending
    );
    assert_eq!(store.ledger().await.unwrap().len(), 1);
}

behaviours!(
    a_repeated_id_is_a_duplicate_or_a_conflict_never_a_second_payment,
    the_same_id_accepted_at_once_is_new_exactly_once,
    pending_payments_and_their_attempts_survive_a_reopen,
    a_finished_payment_cannot_be_attempted_or_finished_again,
    a_payment_is_found_and_known_in_every_state_and_a_duplicate_stays_out_of_the_ledger,
    held_lists_this_instances_pending_payments_accepted_before_a_time,
    a_planned_attempt_is_recorded_with_the_payment_and_reclaimed_as_open,
    summaries_count_processed_payments_by_requested_at_inclusively,
    a_summary_counts_only_outcomes_answered_by_its_instant,
    concurrent_accepts_are_committed_in_groups_and_all_stand,
    concurrent_attempts_and_outcomes_of_many_payments_all_stand,
    purge_empties_queue_and_ledger,
    an_outcome_restored_after_a_purge_is_in_the_ledger_once,
);
