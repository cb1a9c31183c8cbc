//! What one run or instance of the store hands to another, the same for
//! both engines: payments a previous run left (reclaimed once, with their
//! open attempts), the fence that keeps another holder's payment unsent
//! until it is taken over, and the probe reports the leader shares.
//!
//! Written like behaviour.rs: generic over the [`Engine`], run on SQLite and
//! on PostgreSQL by the `behaviours!` list at the bottom.

#[macro_use]
mod common;

use common::{Engine, attempt, payment};
use reroute_core::Timestamp;
use reroute_store::{Outcome, ProbeReport, Store};

async fn payments_left_by_a_previous_run_are_reclaimed_once_with_their_attempts<E: Engine>() {
    let engine = E::new().await;
    let (a, b, c) = (payment(100, 1), payment(200, 2), payment(300, 3));
    {
        let crashed = engine.open().await;
        for p in [&a, &b, &c] {
            crashed.accept(p.clone()).await.unwrap();
        }
        crashed
            .begin_attempt(b.id, attempt("default", 50))
            .await
            .unwrap();
        crashed
            .finish(c.id, Outcome::Processed(attempt("default", 60)))
            .await
            .unwrap();
    }
    engine.outlive_leases().await;
    let store = engine.open().await;
    let reclaimed = store.reclaim(100).await.unwrap();
    assert_eq!(reclaimed.len(), 2);
    assert_eq!(reclaimed[0].payment, a);
    assert_eq!(reclaimed[0].attempt, None);
    assert_eq!(reclaimed[1].payment, b);
    assert_eq!(reclaimed[1].attempt, Some(attempt("default", 50)));
    assert!(store.reclaim(100).await.unwrap().is_empty());
    // Now held by this run: it may attempt them.
    assert!(
        store
            .begin_attempt(a.id, attempt("fallback", 70))
            .await
            .unwrap()
    );
}

/// The fence a re-send passes: a payment another holder left (a previous
/// run, a dead instance) is nobody's to send until it is taken over.
async fn a_payment_left_by_another_holder_is_not_attempted_until_taken_over<E: Engine>() {
    let engine = E::new().await;
    let p = payment(100, 1);
    {
        let crashed = engine.open().await;
        crashed.accept(p.clone()).await.unwrap();
        assert!(
            crashed
                .begin_attempt(p.id, attempt("default", 50))
                .await
                .unwrap()
        );
    }
    engine.outlive_leases().await;
    let store = engine.open().await;
    assert!(
        !store
            .begin_attempt(p.id, attempt("default", 50))
            .await
            .unwrap(),
        "re-sent by a holder that never took it over"
    );
    assert_eq!(store.reclaim(10).await.unwrap().len(), 1);
    assert!(
        store
            .begin_attempt(p.id, attempt("default", 50))
            .await
            .unwrap()
    );
}

async fn reclaim_hands_back_at_most_the_limit_oldest_first<E: Engine>() {
    let engine = E::new().await;
    let payments: Vec<_> = (0..5).map(|i| payment(i + 1, i)).collect();
    {
        let crashed = engine.open().await;
        for p in &payments {
            crashed.accept(p.clone()).await.unwrap();
        }
    }
    engine.outlive_leases().await;
    let store = engine.open().await;
    let first = store.reclaim(3).await.unwrap();
    let rest = store.reclaim(3).await.unwrap();
    assert_eq!(first.len(), 3);
    assert_eq!(rest.len(), 2);
    let order: Vec<_> = first
        .iter()
        .chain(&rest)
        .map(|p| p.payment.clone())
        .collect();
    assert_eq!(order, payments);
}

async fn payments_accepted_by_this_instance_are_not_reclaimed_by_it<E: Engine>() {
    let engine = E::new().await;
    let store = engine.open().await;
    store.accept(payment(1, 1)).await.unwrap();
    store.renew().await.unwrap();
    assert!(store.reclaim(100).await.unwrap().is_empty());
}

async fn the_latest_probe_report_of_each_processor_is_shared<E: Engine>() {
    let engine = E::new().await;
    let store = engine.open().await;
    let report = |processor: &str, failing, ms, at| ProbeReport {
        processor: processor.into(),
        failing,
        min_response_ms: ms,
        at: Timestamp::from_millis(at),
    };
    assert!(store.probes().await.unwrap().is_empty());
    store
        .publish_probe(report("default", false, 10, 100))
        .await
        .unwrap();
    store
        .publish_probe(report("fallback", true, 0, 100))
        .await
        .unwrap();
    store
        .publish_probe(report("default", true, 250, 200))
        .await
        .unwrap();
    // Late and older: ignored.
    store
        .publish_probe(report("default", false, 5, 150))
        .await
        .unwrap();
    assert_eq!(
        store.probes().await.unwrap(),
        vec![
            report("default", true, 250, 200),
            report("fallback", true, 0, 100)
        ]
    );
}

async fn a_lone_instance_leads_the_probes<E: Engine>() {
    let engine = E::new().await;
    let store = engine.open().await;
    let term = std::time::Duration::from_secs(5);
    assert!(store.lead_probes(term).await.unwrap());
    assert!(store.lead_probes(term).await.unwrap());
}

behaviours!(
    payments_left_by_a_previous_run_are_reclaimed_once_with_their_attempts,
    a_payment_left_by_another_holder_is_not_attempted_until_taken_over,
    reclaim_hands_back_at_most_the_limit_oldest_first,
    payments_accepted_by_this_instance_are_not_reclaimed_by_it,
    the_latest_probe_report_of_each_processor_is_shared,
    a_lone_instance_leads_the_probes,
);
