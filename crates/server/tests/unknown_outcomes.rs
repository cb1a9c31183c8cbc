//! End to end: the rule for unknown outcomes (RELIABILITY.md) against
//! processors whose every answer the test scripts, so that each hole it
//! closes is reproduced deterministically: a send left sleeping while a
//! re-send is refused, a 5xx from a processor that stored the payment, a
//! plan sent late, a re-send of a payment that has just finished.

mod common;

mod scripted;

use common::*;
use reroute_core::{CorrelationId, Money, Timestamp};
use reroute_store::{Attempt, NewPayment, PendingPayment, Store};
use scripted::*;
use tokio::sync::{mpsc, oneshot};

/// Default's first send sleeps past the router's timeout; the re-send is
/// refused at once with `status`, and the lookup finds nothing, as the
/// first send is still sleeping; then the first send wakes and is stored.
/// Two failures in a row open default's circuit, so a payment let go would
/// go to fallback at once. It must stay at default: charged there once.
async fn a_refused_resend_keeps_a_payment_whose_first_send_may_still_land(
    backing: Backing,
    status: u16,
) {
    let (release, released) = oneshot::channel();
    let mut default = Scripted::start(vec![
        Reply::StoreWhenReleased(released),
        Reply::Refuse(status),
    ])
    .await;
    let fallback = Scripted::start(vec![]).await;
    let app = start_router(&backing, &default, &fallback, &["--trip-after", "2"]).await;
    let http = Http::default();
    let id = new_id();
    let (s, body) = app.pay(&http, &id, "19.90").await;
    assert_eq!(s, hyper::StatusCode::ACCEPTED, "{body}");
    // The first send, unanswered; the lookup after the timeout; the re-send,
    // refused; the lookup after it: nothing stored yet.
    assert_eq!(default.next_seen().await, Seen::Post);
    assert_eq!(default.next_seen().await, Seen::Lookup { found: false });
    assert_eq!(default.next_seen().await, Seen::Post);
    assert_eq!(default.next_seen().await, Seen::Lookup { found: false });
    // The first send wakes and is stored.
    release.send(()).unwrap();
    let view = settled(&app, &http, &id).await;
    assert_eq!(view["state"], "processed", "{view}");
    assert_eq!(view["processor"], "default", "{view}");
    assert_eq!(
        fallback.posts(),
        0,
        "sent to fallback as well: charged twice"
    );
    assert_eq!(
        default.stored(&id).as_deref(),
        view["requestedAt"].as_str(),
        "the ledger counts it with the instant default's books have"
    );
    app.stop().await;
}

async fn a_500_to_a_resend_keeps_a_payment_whose_first_send_may_still_land(backing: Backing) {
    a_refused_resend_keeps_a_payment_whose_first_send_may_still_land(backing, 500).await;
}

async fn an_instant_429_to_a_resend_keeps_a_payment_whose_first_send_may_still_land(
    backing: Backing,
) {
    a_refused_resend_keeps_a_payment_whose_first_send_may_still_land(backing, 429).await;
}

/// A processor that stored the payment and answered 500 anyway: the 500
/// is not taken as "not processed" without asking. One failure opens
/// default's circuit, so a payment let go would go to fallback at once.
async fn a_5xx_to_a_first_send_is_looked_up_before_the_payment_goes_elsewhere(backing: Backing) {
    let default = Scripted::start(vec![Reply::StoreThenFail]).await;
    let fallback = Scripted::start(vec![]).await;
    let app = start_router(&backing, &default, &fallback, &["--trip-after", "1"]).await;
    let http = Http::default();
    let id = new_id();
    app.pay(&http, &id, "19.90").await;
    let view = settled(&app, &http, &id).await;
    assert_eq!(view["processor"], "default", "{view}");
    assert_eq!(
        fallback.posts(),
        0,
        "sent to fallback as well: charged twice"
    );
    app.stop().await;
}

/// With default's lane full (eight sends in flight, the least a lane
/// keeps), one more payment waits with the plan recorded when it was
/// accepted; it is sent once a send returns, and its `requestedAt` is the
/// instant of that send, not of acceptance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_planned_payment_is_sent_with_the_instant_of_its_first_send() {
    let backing = Backing::embedded();
    let FullLane {
        releases,
        default,
        app,
        http,
        ..
    } = FullLane::start(&backing).await;
    let last = new_id();
    app.pay(&http, &last, "2.00").await;
    let (_, queued) = http.get(&format!("{}/payments/{last}", app.url)).await;
    let accepted: Timestamp = queued["acceptedAt"].as_str().unwrap().parse().unwrap();
    // The last payment is sent only once a send returns, and that happens
    // strictly after its acceptance.
    eventually("the clock passes the acceptance", WAIT, || async {
        (Timestamp::now() > accepted).then_some(())
    })
    .await;
    let answered = Timestamp::now();
    for release in releases {
        release.send(()).unwrap();
    }
    let view = settled(&app, &http, &last).await;
    let requested: Timestamp = view["requestedAt"].as_str().unwrap().parse().unwrap();
    assert!(
        requested >= answered,
        "requestedAt {requested} is before the send (sends returned at {answered}; accepted at {accepted})"
    );
    assert_eq!(
        default.stored(&last).as_deref(),
        view["requestedAt"].as_str()
    );
    app.stop().await;
}

/// The payment is processed at default. The sweep of held-but-never-queued
/// payments then finds it as a stale read saw it: pending, with an attempt
/// at fallback (as it would after an earlier attempt refused there). The
/// re-send must check the store first and stop, not charge it at fallback
/// too.
async fn a_resend_found_by_the_sweep_after_the_payment_finished_is_not_sent(backing: Backing) {
    let mut default = Scripted::start(vec![]).await;
    let mut fallback = Scripted::start(vec![]).await;
    let (begun, mut begins) = mpsc::unbounded_channel();
    let store = Hooked::new(backing.open().await);
    store.hooks().begun = Some(begun);
    let config = router_config(&default, &fallback, &backing.db(), &[]);
    let app = TestApp::start_with_store(config, store.clone()).await;
    let http = Http::default();
    let id = new_id();
    app.pay(&http, &id, "19.90").await;
    let view = settled(&app, &http, &id).await;
    assert_eq!(view["processor"], "default", "{view}");
    assert_eq!(default.next_seen().await, Seen::Post);
    let accepted: Timestamp = view["acceptedAt"].as_str().unwrap().parse().unwrap();
    let payment: CorrelationId = id.parse().unwrap();
    // Every begin so far was the payment's own.
    while begins.try_recv().is_ok() {}
    store.hooks().stale_held = Some(vec![PendingPayment {
        payment: NewPayment {
            id: payment,
            amount: Money::parse_exact("19.90").unwrap(),
            payment_method: None,
            country: None,
            accepted_at: accepted,
        },
        attempt: Some(Attempt {
            processor: "fallback".into(),
            requested_at: accepted,
        }),
        unrecorded: false,
    }]);
    // Either the worker asks the store before re-sending, or it re-sends.
    let outcome = tokio::select! {
        begun = begins.recv() => format!("begin {:?}", begun.unwrap()),
        seen = fallback.next_seen() => format!("re-sent without asking the store: {seen:?}"),
    };
    assert_eq!(outcome, format!("begin {:?}", (payment, false)));
    assert_eq!(fallback.posts(), 0, "re-sent to fallback: charged twice");
    assert_eq!(default.posts(), 1);
    app.stop().await;
}

/// Default announces a delay longer than the router's processor timeout
/// and takes that long to store the payment, as the reference processor
/// does. The send must wait for that answer: a send given up while the
/// processor is still storing it leaves the payment pending, unknown, until
/// a lookup seconds later, while default's books already count it (the
/// final test's check after its 150 s stage, where default's 5,000 ms delay
/// equals the router's timeout, found the ledger one payment short).
async fn a_send_waits_for_the_delay_its_processor_announced(backing: Backing) {
    const DELAY_MS: u64 = 600;
    let delay = std::time::Duration::from_millis(DELAY_MS);
    let mut default = Scripted::announcing(vec![Reply::StoreAfter(delay)], DELAY_MS).await;
    let fallback = Scripted::start(vec![]).await;
    let (probed, mut probes) = mpsc::unbounded_channel();
    let store = Hooked::new(backing.open().await);
    store.hooks().probed = Some(probed);
    // The processor timeout is router_config's 300 ms.
    let config = router_config(&default, &fallback, &backing.db(), &[]);
    let app = TestApp::start_with_store(config, store.clone()).await;
    // The router has applied default's announcement before the payment.
    loop {
        let report = tokio::time::timeout(WAIT, probes.recv())
            .await
            .expect("default was probed")
            .expect("the router is running");
        if report.processor == "default" {
            assert_eq!(u64::from(report.min_response_ms), DELAY_MS);
            break;
        }
    }
    let http = Http::default();
    let id = new_id();
    let (s, body) = app.pay(&http, &id, "19.90").await;
    assert_eq!(s, hyper::StatusCode::ACCEPTED, "{body}");
    let view = settled(&app, &http, &id).await;
    assert_eq!(view["state"], "processed", "{view}");
    assert_eq!(view["processor"], "default", "{view}");
    assert_eq!(default.next_seen().await, Seen::Post);
    assert_eq!(
        default.unread(),
        None,
        "the send was given up before default answered, and the payment resolved by asking again"
    );
    assert_eq!(default.posts(), 1);
    assert_eq!(fallback.posts(), 0);
    app.stop().await;
}

on_both_stores!(
    a_send_waits_for_the_delay_its_processor_announced,
    a_500_to_a_resend_keeps_a_payment_whose_first_send_may_still_land,
    an_instant_429_to_a_resend_keeps_a_payment_whose_first_send_may_still_land,
    a_5xx_to_a_first_send_is_looked_up_before_the_payment_goes_elsewhere,
    a_resend_found_by_the_sweep_after_the_payment_finished_is_not_sent,
);

/// A payment of 19.90 with id `id`, accepted at `accepted_at` (ms).
fn payment_of(id: &str, accepted_at: i64) -> NewPayment {
    NewPayment {
        id: id.parse().unwrap(),
        amount: Money::parse_exact("19.90").unwrap(),
        payment_method: None,
        country: None,
        accepted_at: Timestamp::from_millis(accepted_at),
    }
}

/// `backing`'s store as a kernel crash leaves it: `pending` accepted, each
/// with the attempt recorded for it, and the store last opened under
/// another boot.
async fn left_by_a_kernel_crash(backing: &Backing, pending: Vec<(NewPayment, Option<Attempt>)>) {
    let store = reroute_store::SqliteStore::open(backing.db()).unwrap();
    for (payment, recorded) in pending {
        store.accept_with_plan(payment, recorded).await.unwrap();
    }
    let released = store.released();
    drop(store);
    released.await;
    let conn = rusqlite::Connection::open(backing.db()).unwrap();
    conn.execute("UPDATE opened SET boot = x'00ff'", [])
        .unwrap();
}

/// The store as a kernel crash left it: the payment pending with its
/// attempt at default recorded, or none, while the attempt the crash took
/// (not synced) may have reached fallback's books. The next start, the file
/// last opened under another boot, must look before it sends: found at
/// fallback, it is settled there (sent to default it would be charged
/// twice); found nowhere, it is sent once, after fallback is cleared.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_kernel_crash_a_payment_is_looked_up_everywhere_before_it_is_sent() {
    let at = |ms| Timestamp::from_millis(ms);
    let at_default = Attempt {
        processor: "default".into(),
        requested_at: at(1_000),
    };
    let charged_at = at(2_000).to_string();
    // recorded attempt, fallback's books have it, where it ends, posts to default
    let cases = [
        (Some(at_default.clone()), true, "fallback", 0),
        (None, true, "fallback", 0),
        (Some(at_default.clone()), false, "default", 1),
    ];
    for (recorded, at_fallback, processor, default_posts) in cases {
        let case = format!("{recorded:?}, at fallback {at_fallback}");
        let backing = Backing::embedded();
        let id = new_id();
        left_by_a_kernel_crash(&backing, vec![(payment_of(&id, 500), recorded.clone())]).await;

        let default = Scripted::start(vec![]).await;
        let mut fallback = Scripted::start(vec![]).await;
        if at_fallback {
            fallback.holds(&id, &charged_at);
        }
        let app = start_router(
            &backing,
            &default,
            &fallback,
            &["--landing-margin-ms", "100"],
        )
        .await;
        let http = Http::default();
        let view = settled(&app, &http, &id).await;
        assert_eq!(view["state"], "processed", "{case}: {view}");
        assert_eq!(view["processor"], processor, "{case}: {view}");
        let books = if at_fallback {
            fallback.stored(&id)
        } else {
            default.stored(&id)
        };
        assert_eq!(view["requestedAt"].as_str(), books.as_deref(), "{case}");
        assert_eq!(default.posts(), default_posts, "{case}: charged twice?");
        assert_eq!(fallback.posts(), 0, "{case}: charged twice?");
        if !at_fallback {
            // Cleared only once a send made before the crash has landed:
            // a 404, then another at the landing bound.
            for _ in 0..2 {
                assert_eq!(
                    fallback.next_seen().await,
                    Seen::Lookup { found: false },
                    "{case}"
                );
            }
            assert_eq!(fallback.unread(), None, "{case}");
        }
        app.stop().await;
    }
}

/// At `os` a kernel crash may keep the accept table's pages and lose the
/// store's last commits: payments the edges accepted, that the core stored
/// and sent, come back in the table alone — one in an edge's ring, one in
/// its slot only. Stored again as new, with a plan, they would be sent
/// again: charged twice. The next start must look them up everywhere
/// first: both are at fallback and settle there; a third, found nowhere,
/// is sent once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_kernel_crash_payments_the_accept_table_kept_are_looked_up_before_they_are_sent() {
    use reroute_server::accepts::table::BOOT_ID_LEN;
    use reroute_server::accepts::{AcceptTable, Probe};

    let backing = Backing::embedded();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("core.accepts");
    let edges = dir.path().join("core.edges");
    let args = [
        "--edge-socket",
        edges.to_str().unwrap(),
        "--durability",
        "os",
        "--accept-table",
        path.to_str().unwrap(),
        "--landing-margin-ms",
        "100",
    ];
    let default = Scripted::start(vec![]).await;
    let fallback = Scripted::start(vec![]).await;
    // A first start fills the table for this store and this boot.
    start_router(&backing, &default, &fallback, &args)
        .await
        .stop()
        .await;

    // What the crash left: three payments in the table the store never
    // had; fallback's books hold two of them.
    let (table, _) = AcceptTable::open(&path, false).unwrap();
    let charged_at = Timestamp::from_millis(2_000).to_string();
    let (in_ring, in_slot, nowhere) = (new_id(), new_id(), new_id());
    for (id, ring) in [(&in_ring, true), (&in_slot, false), (&nowhere, false)] {
        let payment = payment_of(id, 1_000);
        let Probe::Claimed(claim) = table.probe(&payment.id) else {
            panic!("a new id is claimed")
        };
        table.write(&claim, &payment);
        if ring {
            assert!(table.push(&claim, payment.accepted_at));
        }
        table.publish(claim);
    }
    fallback.holds(&in_ring, &charged_at);
    fallback.holds(&in_slot, &charged_at);
    let (_, store) = table.filled_for();
    table.set_filled_for(&[b'x'; BOOT_ID_LEN], store);
    drop(table);

    let app = start_router(&backing, &default, &fallback, &args).await;
    let http = Http::default();
    for id in [&in_ring, &in_slot] {
        let view = settled(&app, &http, id).await;
        assert_eq!(view["state"], "processed", "{view}");
        assert_eq!(view["processor"], "fallback", "{view}");
        assert_eq!(view["requestedAt"].as_str(), Some(charged_at.as_str()));
    }
    let view = settled(&app, &http, &nowhere).await;
    assert_eq!(view["processor"], "default", "{view}");
    assert_eq!(default.posts(), 1, "only the payment found nowhere is sent");
    assert_eq!(
        fallback.posts(),
        0,
        "sent again where it was: charged twice"
    );
    app.stop().await;
}

/// After a kernel crash every send the store may not have recorded left
/// before this process started: a payment taken once that landing bound
/// has passed is cleared at its first 404, not held for a bound of its own.
/// With one routing slot, the second of two unrecorded payments waits for
/// the first; fallback is then asked about it once (twice held a slot for
/// another landing bound: after a crash with more pending payments than
/// slots, every wave of them waited one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_kernel_crash_the_landing_bound_runs_from_the_start_not_from_each_payment() {
    let backing = Backing::embedded();
    let ids = [new_id(), new_id()];
    let at_default = Attempt {
        processor: "default".into(),
        requested_at: Timestamp::from_millis(1_000),
    };
    let pending = ids
        .iter()
        .zip(500..)
        .map(|(id, at)| (payment_of(id, at), Some(at_default.clone())))
        .collect();
    left_by_a_kernel_crash(&backing, pending).await;

    let default = Scripted::start(vec![]).await;
    let mut fallback = Scripted::start(vec![]).await;
    let app = start_router(
        &backing,
        &default,
        &fallback,
        &["--landing-margin-ms", "100", "--workers", "1"],
    )
    .await;
    let http = Http::default();
    for id in &ids {
        let view = settled(&app, &http, id).await;
        assert_eq!(view["processor"], "default", "{view}");
    }
    assert_eq!(fallback.posts(), 0);
    let mut lookups = 0;
    while let Some(seen) = fallback.unread() {
        assert_eq!(seen, Seen::Lookup { found: false });
        lookups += 1;
    }
    assert_eq!(
        lookups, 3,
        "the first payment: a 404, another at the bound; the second: one"
    );
    app.stop().await;
}
