//! End to end: the router on port 0 against the simulators when things
//! fail, with the exactly-once rules kept throughout: a processor slower
//! than the router's timeout, failing or down altogether (patience, then
//! fallback), a restart with payments pending or with an outcome unknown,
//! a payment held but never queued, and a store that loses the answer to
//! an accept. Each test runs on both stores.

mod common;

use std::time::Duration;

use common::*;
use hyper::StatusCode;

const WAIT: Duration = Duration::from_secs(15);

async fn a_delay_beyond_the_client_timeout_is_counted_once_on_that_processor(backing: Backing) {
    let (sims, http) = (Sims::start().await, Http::default());
    // Our timeout is 1 s; the processor answers after 1.5 s but stores anyway.
    sims.set_delay(&http, &sims.default, 1500).await;
    let app = TestApp::start_on(&backing, config(&sims, &backing.db(), &[])).await;
    let id = new_id();
    assert_eq!(app.pay(&http, &id, "19.90").await.0, StatusCode::ACCEPTED);
    // The re-send with the same requestedAt finds it stored (422): processed.
    processed_on(&app, &http, "default", 1).await;
    sims.set_delay(&http, &sims.default, 0).await;
    assert_eq!(sims.books(&http, &sims.default).await, (1, 19.9));
    assert_eq!(sims.books(&http, &sims.fallback).await.0, 0);
    assert_eq!(app.summary(&http, "fallback").await.0, 0);
    // The ledger kept the requestedAt the processor stored.
    let (_, p) = http.get(&format!("{}/payments/{id}", sims.default)).await;
    let at = p["requestedAt"].as_str().unwrap().to_owned();
    let (_, v) = http
        .get(&format!("{}/payments-summary?from={at}&to={at}", app.url))
        .await;
    assert_eq!(v["default"]["totalRequests"], 1, "{v}");
    app.stop().await;
}

async fn a_failing_default_is_waited_for_while_patience_lasts(backing: Backing) {
    let (sims, http) = (Sims::start().await, Http::default());
    sims.set_failure(&http, &sims.default, true).await;
    let app = TestApp::start_on(
        &backing,
        config(&sims, &backing.db(), &["--patience-ms", "60000"]),
    )
    .await;
    for _ in 0..5 {
        assert_eq!(app.pay(&http, &new_id(), "1").await.0, StatusCode::ACCEPTED);
    }
    // Trials keep reaching the failing default; none of it goes to fallback.
    eventually("repeated trials on the failing default", WAIT, || async {
        (sims.stat(&http, &sims.default, "payments_failed").await >= 6).then_some(())
    })
    .await;
    assert_eq!(
        sims.stat(&http, &sims.fallback, "payments_received").await,
        0
    );
    assert_eq!(sims.books(&http, &sims.fallback).await.0, 0);
    sims.set_failure(&http, &sims.default, false).await;
    processed_on(&app, &http, "default", 5).await;
    assert_eq!(sims.books(&http, &sims.default).await.0, 5);
    assert_eq!(sims.books(&http, &sims.fallback).await.0, 0);
    app.stop().await;
}

async fn fallback_takes_over_once_patience_runs_out(backing: Backing) {
    let (sims, http) = (Sims::start().await, Http::default());
    sims.set_failure(&http, &sims.default, true).await;
    let app = TestApp::start_on(
        &backing,
        config(&sims, &backing.db(), &["--patience-ms", "300"]),
    )
    .await;
    for _ in 0..4 {
        assert_eq!(
            app.pay(&http, &new_id(), "2.50").await.0,
            StatusCode::ACCEPTED
        );
    }
    processed_on(&app, &http, "fallback", 4).await;
    assert_eq!(sims.books(&http, &sims.fallback).await, (4, 10.0));
    assert_eq!(sims.books(&http, &sims.default).await.0, 0);
    assert_eq!(app.summary(&http, "default").await.0, 0);
    app.stop().await;
}

async fn with_every_processor_down_nothing_is_lost_and_all_complete_after_recovery(
    backing: Backing,
) {
    let (sims, http) = (Sims::start().await, Http::default());
    sims.set_failure(&http, &sims.default, true).await;
    sims.set_failure(&http, &sims.fallback, true).await;
    let app = TestApp::start_on(
        &backing,
        config(&sims, &backing.db(), &["--patience-ms", "0"]),
    )
    .await;
    for _ in 0..20 {
        assert_eq!(app.pay(&http, &new_id(), "1").await.0, StatusCode::ACCEPTED);
    }
    eventually("both processors tried and failing", WAIT, || async {
        let d = sims.stat(&http, &sims.default, "payments_failed").await;
        let f = sims.stat(&http, &sims.fallback, "payments_failed").await;
        (d >= 3 && f >= 3).then_some(())
    })
    .await;
    // Held, not hammered: a few trials per second at most, not a hot loop.
    let before = sims.stat(&http, &sims.default, "payments_received").await
        + sims.stat(&http, &sims.fallback, "payments_received").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = sims.stat(&http, &sims.default, "payments_received").await
        + sims.stat(&http, &sims.fallback, "payments_received").await;
    assert!(
        after - before <= 2 * 2 * 12,
        "{} attempts in 2 s while all down",
        after - before
    );
    sims.set_failure(&http, &sims.fallback, false).await;
    sims.set_failure(&http, &sims.default, false).await;
    eventually("all 20 processed", WAIT, || async {
        let (d, f) = (
            app.summary(&http, "default").await.0,
            app.summary(&http, "fallback").await.0,
        );
        (d + f == 20).then_some(())
    })
    .await;
    let (d, f) = (
        sims.books(&http, &sims.default).await.0,
        sims.books(&http, &sims.fallback).await.0,
    );
    assert_eq!(d + f, 20);
    assert_eq!(app.summary(&http, "default").await.0, d);
    app.stop().await;
}

async fn a_restart_resumes_pending_payments(backing: Backing) {
    let (sims, http) = (Sims::start().await, Http::default());
    let db = backing.db();
    sims.set_failure(&http, &sims.default, true).await;
    let app = TestApp::start_on(&backing, config(&sims, &db, &[])).await;
    for _ in 0..10 {
        assert_eq!(app.pay(&http, &new_id(), "3").await.0, StatusCode::ACCEPTED);
    }
    app.stop().await;
    sims.set_failure(&http, &sims.default, false).await;
    let app = TestApp::start_on(&backing, config(&sims, &db, &[])).await;
    processed_on(&app, &http, "default", 10).await;
    assert_eq!(sims.books(&http, &sims.default).await, (10, 30.0));
    app.stop().await;
}

/// A payment held in the store that the router never queued (its
/// acceptance committed although the store answered an error: the
/// connection broke after the commit) is found and processed, not left
/// pending while its lease is renewed for ever.
async fn a_held_payment_that_was_never_queued_is_found_and_processed(backing: Backing) {
    let (sims, http) = (Sims::start().await, Http::default());
    let store = backing.open().await;
    let app = TestApp::start_with_store(config(&sims, &backing.db(), &[]), store.clone()).await;
    let id: reroute_core::CorrelationId = new_id().parse().unwrap();
    let stray = reroute_store::NewPayment {
        id,
        amount: reroute_core::Money::from_minor(1234),
        payment_method: None,
        country: None,
        // Accepted a minute ago, by this very process (the same store).
        accepted_at: reroute_core::Timestamp::now().plus_millis(-60_000),
    };
    assert_eq!(
        store.accept(stray).await.unwrap(),
        reroute_store::Acceptance::New
    );
    processed_on(&app, &http, "default", 1).await;
    assert_eq!(sims.books(&http, &sims.default).await, (1, 12.34));
    app.stop().await;
}

async fn a_restart_resolves_an_unknown_outcome_at_the_same_processor(backing: Backing) {
    let (sims, http) = (Sims::start().await, Http::default());
    let db = backing.db();
    // The send times out (1 s) and the router stops before re-sending.
    sims.set_delay(&http, &sims.default, 3000).await;
    let app = TestApp::start_on(&backing, config(&sims, &db, &["--patience-ms", "0"])).await;
    assert_eq!(app.pay(&http, &new_id(), "7").await.0, StatusCode::ACCEPTED);
    eventually("the processor stored the payment", WAIT, || async {
        (sims.books(&http, &sims.default).await.0 == 1).then_some(())
    })
    .await;
    app.stop().await;
    sims.set_delay(&http, &sims.default, 0).await;
    // Fallback is healthy and patience is zero, yet the open attempt pins the
    // payment to default: it is resolved there, never sent to fallback.
    let app = TestApp::start_on(&backing, config(&sims, &db, &["--patience-ms", "0"])).await;
    processed_on(&app, &http, "default", 1).await;
    assert_eq!(sims.books(&http, &sims.default).await, (1, 7.0));
    assert_eq!(sims.books(&http, &sims.fallback).await.0, 0);
    app.stop().await;
}

/// What [`LosesAnswers`] does to the next accept.
#[derive(Clone, Copy, PartialEq, Eq)]
enum AcceptFault {
    /// Passes it through.
    None,
    /// Stores it, then answers as if the connection broke after the COMMIT
    /// was sent: the write stood, the store cannot tell.
    AnswerLost,
    /// Fails it before anything reaches the engine.
    NotSent,
}

/// A store whose accepts fail as `fault` says; everything else goes to the
/// real store underneath.
struct LosesAnswers {
    inner: std::sync::Arc<dyn reroute_store::Store>,
    fault: std::sync::Mutex<AcceptFault>,
}

impl LosesAnswers {
    fn set(&self, fault: AcceptFault) {
        *self.fault.lock().unwrap() = fault;
    }
}

impl reroute_store::Store for LosesAnswers {
    fn exclusive(&self) -> bool {
        self.inner.exclusive()
    }
    fn accept_unrecorded(
        &self,
        payment: reroute_store::NewPayment,
    ) -> reroute_store::StoreFuture<'_, reroute_store::Acceptance> {
        self.inner.accept_unrecorded(payment)
    }
    fn accept_with_plan(
        &self,
        payment: reroute_store::NewPayment,
        plan: Option<reroute_store::Attempt>,
    ) -> reroute_store::StoreFuture<'_, reroute_store::Acceptance> {
        let fault = *self.fault.lock().unwrap();
        Box::pin(async move {
            let lost = || {
                reroute_store::StoreError::Unavailable(
                    "PostgreSQL: connection closed (the answer to COMMIT was lost)".into(),
                )
            };
            match fault {
                AcceptFault::None => self.inner.accept_with_plan(payment, plan).await,
                AcceptFault::AnswerLost => {
                    self.inner.accept_with_plan(payment, plan).await?;
                    Err(lost())
                }
                AcceptFault::NotSent => Err(lost()),
            }
        })
    }
    fn begin_attempt(
        &self,
        id: reroute_core::CorrelationId,
        attempt: reroute_store::Attempt,
    ) -> reroute_store::StoreFuture<'_, bool> {
        self.inner.begin_attempt(id, attempt)
    }
    fn restore(
        &self,
        payment: reroute_store::NewPayment,
        outcome: reroute_store::Outcome,
        answered_at: reroute_core::Timestamp,
    ) -> reroute_store::StoreFuture<'_, bool> {
        self.inner.restore(payment, outcome, answered_at)
    }
    fn finish_answered(
        &self,
        id: reroute_core::CorrelationId,
        outcome: reroute_store::Outcome,
        answered_at: reroute_core::Timestamp,
    ) -> reroute_store::StoreFuture<'_, bool> {
        self.inner.finish_answered(id, outcome, answered_at)
    }
    fn find(
        &self,
        id: reroute_core::CorrelationId,
    ) -> reroute_store::StoreFuture<'_, Option<reroute_store::PaymentRecord>> {
        self.inner.find(id)
    }
    fn pending(&self) -> reroute_store::StoreFuture<'_, Vec<reroute_store::PendingPayment>> {
        self.inner.pending()
    }
    fn summary(
        &self,
        window: reroute_core::Window,
    ) -> reroute_store::StoreFuture<'_, Vec<reroute_store::Totals>> {
        self.inner.summary(window)
    }
    fn summary_answered_by(
        &self,
        window: reroute_core::Window,
        by: reroute_core::Timestamp,
    ) -> reroute_store::StoreFuture<'_, Vec<reroute_store::Totals>> {
        self.inner.summary_answered_by(window, by)
    }
    fn ledger(&self) -> reroute_store::StoreFuture<'_, Vec<reroute_store::LedgerEntry>> {
        self.inner.ledger()
    }
    fn known(
        &self,
    ) -> reroute_store::StoreFuture<'_, Vec<(reroute_core::CorrelationId, reroute_core::Money)>>
    {
        self.inner.known()
    }
    fn purge(&self) -> reroute_store::StoreFuture<'_, ()> {
        self.inner.purge()
    }
    fn renew(&self) -> reroute_store::StoreFuture<'_, ()> {
        self.inner.renew()
    }
    fn lease(&self) -> Option<Duration> {
        self.inner.lease()
    }
    fn reclaim(
        &self,
        limit: usize,
    ) -> reroute_store::StoreFuture<'_, Vec<reroute_store::PendingPayment>> {
        self.inner.reclaim(limit)
    }
    fn take_over_predecessor(
        &self,
        limit: usize,
    ) -> reroute_store::StoreFuture<'_, Vec<reroute_store::PendingPayment>> {
        self.inner.take_over_predecessor(limit)
    }
    fn held(
        &self,
        accepted_before: reroute_core::Timestamp,
        limit: usize,
    ) -> reroute_store::StoreFuture<'_, Vec<reroute_store::PendingPayment>> {
        self.inner.held(accepted_before, limit)
    }
    fn lead_probes(&self, term: Duration) -> reroute_store::StoreFuture<'_, bool> {
        self.inner.lead_probes(term)
    }
    fn publish_probe(
        &self,
        report: reroute_store::ProbeReport,
    ) -> reroute_store::StoreFuture<'_, ()> {
        self.inner.publish_probe(report)
    }
    fn probes(&self) -> reroute_store::StoreFuture<'_, Vec<reroute_store::ProbeReport>> {
        self.inner.probes()
    }
}

/// A 503 to `POST /payments` whose write may have stood (PostgreSQL lost
/// the answer to a COMMIT it was sent) must not say nothing was accepted:
/// the payment may be stored, and will then be charged. The body says the
/// outcome is unknown and that a retry with the same correlationId is
/// safe; the retry answers 200 duplicate if it was stored, 202 if not, and
/// each payment is charged once.
async fn a_503_whose_outcome_is_unknown_says_so_and_a_retry_of_the_same_id_is_safe(
    backing: Backing,
) {
    let (sims, http) = (Sims::start().await, Http::default());
    let store = std::sync::Arc::new(LosesAnswers {
        inner: backing.open().await,
        fault: std::sync::Mutex::new(AcceptFault::None),
    });
    let app = TestApp::start_with_store(config(&sims, &backing.db(), &[]), store.clone()).await;
    let (stored, not_stored) = (new_id(), new_id());
    for (id, fault) in [
        (&stored, AcceptFault::AnswerLost),
        (&not_stored, AcceptFault::NotSent),
    ] {
        store.set(fault);
        let (status, body) = app.pay(&http, id, "10.00").await;
        store.set(AcceptFault::None);
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(body["outcome"], "unknown", "{body}");
        assert_eq!(body["retrySafe"], true, "{body}");
        let error = body["error"].as_str().unwrap();
        assert!(!error.contains("nothing was accepted"), "{body}");
        assert!(error.contains("may or may not"), "{body}");
        assert!(error.contains("same correlationId"), "{body}");
        // The store's own words (hosts, engine errors) stay in the log.
        assert!(!error.contains("PostgreSQL"), "{body}");
    }
    let (status, body) = app.pay(&http, &stored, "10.00").await;
    assert_eq!(status, StatusCode::OK, "it was stored: {body}");
    assert_eq!(body["status"], "duplicate");
    let (status, body) = app.pay(&http, &not_stored, "10.00").await;
    assert_eq!(status, StatusCode::ACCEPTED, "it was not: {body}");
    // The stored one is charged although its client was told 503: once.
    processed_on(&app, &http, "default", 2).await;
    assert_eq!(sims.books(&http, &sims.default).await, (2, 20.0));
    app.stop().await;
}

on_both_stores!(
    a_delay_beyond_the_client_timeout_is_counted_once_on_that_processor,
    a_failing_default_is_waited_for_while_patience_lasts,
    fallback_takes_over_once_patience_runs_out,
    with_every_processor_down_nothing_is_lost_and_all_complete_after_recovery,
    a_restart_resumes_pending_payments,
    a_held_payment_that_was_never_queued_is_found_and_processed,
    a_restart_resolves_an_unknown_outcome_at_the_same_processor,
    a_503_whose_outcome_is_unknown_says_so_and_a_retry_of_the_same_id_is_safe,
);
