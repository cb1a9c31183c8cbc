//! End to end: the rule for unknown outcomes (RELIABILITY.md) against
//! processors whose every answer the test scripts, so that each hole it
//! closes is reproduced deterministically: a send left sleeping while a
//! re-send is refused, a 5xx from a processor that stored the payment, a
//! plan sent late, a re-send of a payment that has just finished.

mod common;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use common::*;
use reroute_core::{CorrelationId, Money, Timestamp, Window};
use reroute_store::{
    Acceptance, Attempt, LedgerEntry, NewPayment, Outcome, PaymentRecord, PendingPayment,
    ProbeReport, Store, StoreFuture, Totals,
};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

const WAIT: Duration = Duration::from_secs(20);

/// How the scripted processor answers one `POST /payments`.
enum Reply {
    /// Stores it and answers 200 (422 if it already has it).
    Store,
    /// Sleeps until the test releases it, then stores it (the caller may
    /// have given up long before): a first send still in the processor's
    /// hands.
    StoreWhenReleased(oneshot::Receiver<()>),
    /// Answers this status at once and stores nothing.
    Refuse(u16),
    /// Stores it, then answers 500: a processor (or a proxy in front of it)
    /// whose failure answer does not mean "not stored".
    StoreThenFail,
}

/// What the scripted processor saw, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    Post,
    Lookup { found: bool },
}

#[derive(Default)]
struct Books {
    script: VecDeque<Reply>,
    /// correlationId -> the requestedAt it was stored with.
    stored: HashMap<String, String>,
    posts: usize,
}

#[derive(Clone)]
struct Fake {
    books: Arc<Mutex<Books>>,
    seen: mpsc::UnboundedSender<Seen>,
}

/// A processor on port 0 that answers `POST /payments` as scripted (then
/// [`Reply::Store`]), `GET /payments/{id}` from what it stored, and has no
/// working health endpoint (probes learn nothing).
struct Scripted {
    url: String,
    books: Arc<Mutex<Books>>,
    seen: mpsc::UnboundedReceiver<Seen>,
}

impl Scripted {
    async fn start(script: Vec<Reply>) -> Self {
        let books = Arc::new(Mutex::new(Books {
            script: script.into(),
            ..Books::default()
        }));
        let (tx, seen) = mpsc::unbounded_channel();
        let fake = Fake {
            books: Arc::clone(&books),
            seen: tx,
        };
        let app = axum::Router::new()
            .route("/payments", post(pay))
            .route(
                "/payments/service-health",
                get(|| async { StatusCode::SERVICE_UNAVAILABLE }),
            )
            .route("/payments/{id}", get(lookup))
            .with_state(fake);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Scripted { url, books, seen }
    }

    /// The next thing it saw, in order.
    async fn next_seen(&mut self) -> Seen {
        tokio::time::timeout(WAIT, self.seen.recv())
            .await
            .expect("the processor was called")
            .expect("the processor is running")
    }

    fn posts(&self) -> usize {
        self.books.lock().unwrap().posts
    }

    fn stored(&self, id: &str) -> Option<String> {
        self.books.lock().unwrap().stored.get(id).cloned()
    }
}

fn store_once(books: &Mutex<Books>, body: &Value) -> StatusCode {
    let id = body["correlationId"].as_str().unwrap().to_owned();
    let at = body["requestedAt"].as_str().unwrap().to_owned();
    let mut books = books.lock().unwrap();
    if books.stored.contains_key(&id) {
        return StatusCode::UNPROCESSABLE_ENTITY;
    }
    books.stored.insert(id, at);
    StatusCode::OK
}

async fn pay(State(fake): State<Fake>, body: axum::Json<Value>) -> Response {
    let reply = {
        let mut books = fake.books.lock().unwrap();
        books.posts += 1;
        books.script.pop_front().unwrap_or(Reply::Store)
    };
    let _ = fake.seen.send(Seen::Post);
    match reply {
        Reply::Store => store_once(&fake.books, &body).into_response(),
        // In a task of its own: the caller hanging up does not cancel it.
        Reply::StoreWhenReleased(release) => {
            let books = Arc::clone(&fake.books);
            let stored = tokio::spawn(async move {
                let _ = release.await;
                store_once(&books, &body)
            });
            stored.await.unwrap().into_response()
        }
        Reply::Refuse(status) => StatusCode::from_u16(status).unwrap().into_response(),
        Reply::StoreThenFail => {
            store_once(&fake.books, &body);
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

async fn lookup(State(fake): State<Fake>, Path(id): Path<String>) -> Response {
    let stored = fake.books.lock().unwrap().stored.get(&id).cloned();
    let _ = fake.seen.send(Seen::Lookup {
        found: stored.is_some(),
    });
    match stored {
        Some(at) => axum::Json(serde_json::json!({
            "correlationId": id, "amount": 19.90, "requestedAt": at
        }))
        .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The router in front of the two scripted processors: a short processor
/// timeout unless said otherwise, no patience (a freed payment goes to
/// fallback at once), the default landing margin.
fn router_config(
    default: &Scripted,
    fallback: &Scripted,
    db: &std::path::Path,
    extra: &[&str],
) -> reroute_server::ServeConfig {
    let mut argv: Vec<String> = [
        "reroute",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--db",
        &db.display().to_string(),
        "--store",
        "",
        "--default-url",
        &default.url,
        "--fallback-url",
        &fallback.url,
        "--patience-ms",
        "0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    argv.extend(extra.iter().map(|s| s.to_string()));
    if !extra.contains(&"--processor-timeout-ms") {
        argv.extend(["--processor-timeout-ms".into(), "300".into()]);
    }
    parse_serve(argv)
}

/// Where the router says the payment stands, once it is no longer pending.
async fn settled(app: &TestApp, http: &Http, id: &str) -> Value {
    eventually("the payment settles", WAIT, || async {
        let (_, v) = http.get(&format!("{}/payments/{id}", app.url)).await;
        (v["state"] != "pending").then_some(v)
    })
    .await
}

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
    let app = TestApp::start_on(
        &backing,
        router_config(&default, &fallback, &backing.db(), &["--trip-after", "2"]),
    )
    .await;
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
    let app = TestApp::start_on(
        &backing,
        router_config(&default, &fallback, &backing.db(), &["--trip-after", "1"]),
    )
    .await;
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
    let (releases, script): (Vec<_>, Vec<_>) = (0..8)
        .map(|_| {
            let (release, released) = oneshot::channel();
            (release, Reply::StoreWhenReleased(released))
        })
        .unzip();
    let mut default = Scripted::start(script).await;
    let fallback = Scripted::start(vec![]).await;
    let config = router_config(
        &default,
        &fallback,
        &backing.db(),
        &[
            "--max-in-flight",
            "8",
            "--processor-timeout-ms",
            "5000",
            "--spill-wait-ms",
            "600000",
        ],
    );
    let app = TestApp::start_on(&backing, config).await;
    let http = Http::default();
    for _ in 0..8 {
        app.pay(&http, &new_id(), "1.00").await;
    }
    for _ in 0..8 {
        assert_eq!(default.next_seen().await, Seen::Post);
    }
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

/// A store that answers one [`Store::held`] with a snapshot taken before
/// the payment finished, as a sweep racing with the worker would see it,
/// and tells the test about every [`Store::begin_attempt`].
struct StaleSweep {
    inner: Arc<dyn Store>,
    stale: Mutex<Option<Vec<PendingPayment>>>,
    begun: mpsc::UnboundedSender<(CorrelationId, bool)>,
}

impl Store for StaleSweep {
    fn accept_with_plan(
        &self,
        p: NewPayment,
        plan: Option<Attempt>,
    ) -> StoreFuture<'_, Acceptance> {
        self.inner.accept_with_plan(p, plan)
    }
    fn exclusive(&self) -> bool {
        self.inner.exclusive()
    }
    fn begin_attempt(&self, id: CorrelationId, attempt: Attempt) -> StoreFuture<'_, bool> {
        Box::pin(async move {
            let begun = self.inner.begin_attempt(id, attempt).await?;
            let _ = self.begun.send((id, begun));
            Ok(begun)
        })
    }
    fn finish(&self, id: CorrelationId, outcome: Outcome) -> StoreFuture<'_, bool> {
        self.inner.finish(id, outcome)
    }
    fn find(&self, id: CorrelationId) -> StoreFuture<'_, Option<PaymentRecord>> {
        self.inner.find(id)
    }
    fn pending(&self) -> StoreFuture<'_, Vec<PendingPayment>> {
        self.inner.pending()
    }
    fn summary(&self, window: Window) -> StoreFuture<'_, Vec<Totals>> {
        self.inner.summary(window)
    }
    fn ledger(&self) -> StoreFuture<'_, Vec<LedgerEntry>> {
        self.inner.ledger()
    }
    fn purge(&self) -> StoreFuture<'_, ()> {
        self.inner.purge()
    }
    fn renew(&self) -> StoreFuture<'_, ()> {
        self.inner.renew()
    }
    fn lease(&self) -> Option<Duration> {
        self.inner.lease()
    }
    fn reclaim(&self, limit: usize) -> StoreFuture<'_, Vec<PendingPayment>> {
        self.inner.reclaim(limit)
    }
    fn held(&self, before: Timestamp, limit: usize) -> StoreFuture<'_, Vec<PendingPayment>> {
        match self.stale.lock().unwrap().take() {
            Some(stale) => Box::pin(async move { Ok(stale) }),
            None => self.inner.held(before, limit),
        }
    }
    fn lead_probes(&self, term: Duration) -> StoreFuture<'_, bool> {
        self.inner.lead_probes(term)
    }
    fn publish_probe(&self, report: ProbeReport) -> StoreFuture<'_, ()> {
        self.inner.publish_probe(report)
    }
    fn probes(&self) -> StoreFuture<'_, Vec<ProbeReport>> {
        self.inner.probes()
    }
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
    let store = Arc::new(StaleSweep {
        inner: backing.open().await,
        stale: Mutex::new(None),
        begun,
    });
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
    *store.stale.lock().unwrap() = Some(vec![PendingPayment {
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

on_both_stores!(
    a_500_to_a_resend_keeps_a_payment_whose_first_send_may_still_land,
    an_instant_429_to_a_resend_keeps_a_payment_whose_first_send_may_still_land,
    a_5xx_to_a_first_send_is_looked_up_before_the_payment_goes_elsewhere,
    a_resend_found_by_the_sweep_after_the_payment_finished_is_not_sent,
);
