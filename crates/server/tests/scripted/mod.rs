//! Scripted processors and a hooked store: the fakes of the end-to-end
//! tests that reproduce one interleaving deterministically (unknown
//! outcomes, purges and summaries racing with sends).
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use reroute_core::{CorrelationId, Money, Timestamp, Window};
use reroute_store::{
    Acceptance, Attempt, LedgerEntry, NewPayment, Outcome, PaymentRecord, PendingPayment,
    ProbeReport, Store, StoreFuture, Totals,
};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use crate::common::{Backing, Http, TestApp, eventually, parse_serve, router_argv};

pub const WAIT: Duration = Duration::from_secs(20);

/// How the scripted processor answers one `POST /payments`.
pub enum Reply {
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
    /// Sleeps this long, then stores it (the caller may have given up): the
    /// reference processor under a delay.
    StoreAfter(Duration),
}

/// What the scripted processor saw, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
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
/// working health endpoint (probes learn nothing) unless started
/// [`Scripted::announcing`] a delay.
pub struct Scripted {
    pub url: String,
    books: Arc<Mutex<Books>>,
    seen: mpsc::UnboundedReceiver<Seen>,
}

impl Scripted {
    pub async fn start(script: Vec<Reply>) -> Self {
        Self::serve(script, None).await
    }

    /// Its health endpoint says it works and answers in `delay_ms`.
    pub async fn announcing(script: Vec<Reply>, delay_ms: u64) -> Self {
        Self::serve(script, Some(delay_ms)).await
    }

    async fn serve(script: Vec<Reply>, announced_ms: Option<u64>) -> Self {
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
                get(move || async move {
                    match announced_ms {
                        Some(ms) => axum::Json(serde_json::json!({
                            "failing": false, "minResponseTime": ms
                        }))
                        .into_response(),
                        None => StatusCode::SERVICE_UNAVAILABLE.into_response(),
                    }
                }),
            )
            .route("/payments/{id}", get(lookup))
            .with_state(fake);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Scripted { url, books, seen }
    }

    /// The next thing it saw, in order.
    pub async fn next_seen(&mut self) -> Seen {
        tokio::time::timeout(WAIT, self.seen.recv())
            .await
            .expect("the processor was called")
            .expect("the processor is running")
    }

    /// What it saw that the test has not read yet; `None` when nothing.
    pub fn unread(&mut self) -> Option<Seen> {
        self.seen.try_recv().ok()
    }

    pub fn posts(&self) -> usize {
        self.books.lock().unwrap().posts
    }

    /// Its books hold `id`, stored with `requested_at`, as if sent before.
    pub fn holds(&self, id: &str, requested_at: &str) {
        let mut books = self.books.lock().unwrap();
        books.stored.insert(id.to_owned(), requested_at.to_owned());
    }

    pub fn stored(&self, id: &str) -> Option<String> {
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
        Reply::StoreAfter(delay) => {
            let books = Arc::clone(&fake.books);
            let stored = tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                store_once(&books, &body)
            });
            stored.await.unwrap().into_response()
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

/// The least a lane keeps in flight.
pub const LANE_LEAST: usize = 8;

/// Router flags that hold default's lane at [`LANE_LEAST`] sends, with a
/// timeout and a patience longer than any test (nothing spills, nothing
/// times out).
pub const LANE_OF_EIGHT: &[&str] = &[
    "--max-in-flight",
    "8",
    "--processor-timeout-ms",
    "5000",
    "--spill-wait-ms",
    "600000",
];

/// `n` replies that each sleep in the processor until its sender is used
/// (then store the payment): sends held in flight.
pub fn held_sends(n: usize) -> (Vec<oneshot::Sender<()>>, Vec<Reply>) {
    (0..n)
        .map(|_| {
            let (release, released) = oneshot::channel();
            (release, Reply::StoreWhenReleased(released))
        })
        .unzip()
}

/// A router whose lane to default is full: [`LANE_LEAST`] payments sent
/// and held in default until their `releases` are used.
pub struct FullLane {
    pub releases: Vec<oneshot::Sender<()>>,
    pub default: Scripted,
    pub fallback: Scripted,
    pub app: TestApp,
    pub http: Http,
}

impl FullLane {
    pub async fn start(backing: &Backing) -> Self {
        let (releases, script) = held_sends(LANE_LEAST);
        let mut default = Scripted::start(script).await;
        let fallback = Scripted::start(vec![]).await;
        let app = start_router(backing, &default, &fallback, LANE_OF_EIGHT).await;
        let http = Http::default();
        for _ in 0..LANE_LEAST {
            app.pay(&http, &crate::common::new_id(), "1.00").await;
        }
        for _ in 0..LANE_LEAST {
            assert_eq!(default.next_seen().await, Seen::Post);
        }
        Self {
            releases,
            default,
            fallback,
            app,
            http,
        }
    }
}

/// The router in front of the two scripted processors: a short processor
/// timeout unless said otherwise, no patience (a freed payment goes to
/// fallback at once), the default landing margin.
pub fn router_config(
    default: &Scripted,
    fallback: &Scripted,
    db: &std::path::Path,
    extra: &[&str],
) -> reroute_server::ServeConfig {
    let mut argv = router_argv(db);
    argv.extend(
        [
            "--default-url",
            &default.url,
            "--fallback-url",
            &fallback.url,
            "--patience-ms",
            "0",
        ]
        .map(str::to_owned),
    );
    argv.extend(extra.iter().map(|s| s.to_string()));
    if !extra.contains(&"--processor-timeout-ms") {
        argv.extend(["--processor-timeout-ms".into(), "300".into()]);
    }
    parse_serve(argv)
}

/// The router of [`router_config`] on `backing`'s store.
pub async fn start_router(
    backing: &Backing,
    default: &Scripted,
    fallback: &Scripted,
    extra: &[&str],
) -> TestApp {
    TestApp::start_on(
        backing,
        router_config(default, fallback, &backing.db(), extra),
    )
    .await
}

/// Where the router says the payment stands, once it has it and it is no
/// longer pending.
pub async fn settled(app: &TestApp, http: &Http, id: &str) -> Value {
    eventually("the payment settles", WAIT, || async {
        let (_, v) = http.get(&format!("{}/payments/{id}", app.url)).await;
        (v["state"].is_string() && v["state"] != "pending").then_some(v)
    })
    .await
}

/// A real store with hooks a test sets to see or stall one call: every call
/// goes through to `inner` unless a hook says otherwise.
pub struct Hooked {
    pub inner: Arc<dyn Store>,
    pub hooks: Mutex<Hooks>,
}

#[derive(Default)]
pub struct Hooks {
    /// Told the id and the answer of every [`Store::begin_attempt`].
    pub begun: Option<mpsc::UnboundedSender<(CorrelationId, bool)>>,
    /// Answers the next [`Store::held`] instead of the store: a snapshot
    /// taken earlier, as a sweep racing with the worker would see it.
    pub stale_held: Option<Vec<PendingPayment>>,
    /// Holds the next [`Store::finish`] before it reaches the store: tells
    /// the first sender it was called, then waits for the receiver.
    pub stall_finish: Option<(oneshot::Sender<CorrelationId>, oneshot::Receiver<()>)>,
    /// Told every [`Store::publish_probe`]: the router has applied the
    /// report by then.
    pub probed: Option<mpsc::UnboundedSender<ProbeReport>>,
}

impl Hooked {
    pub fn new(inner: Arc<dyn Store>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            hooks: Mutex::new(Hooks::default()),
        })
    }

    pub fn hooks(&self) -> std::sync::MutexGuard<'_, Hooks> {
        self.hooks.lock().unwrap()
    }
}

impl Store for Hooked {
    fn accept_with_plan(
        &self,
        p: NewPayment,
        plan: Option<Attempt>,
    ) -> StoreFuture<'_, Acceptance> {
        self.inner.accept_with_plan(p, plan)
    }
    fn accept_unrecorded(&self, p: NewPayment) -> StoreFuture<'_, Acceptance> {
        self.inner.accept_unrecorded(p)
    }
    fn exclusive(&self) -> bool {
        self.inner.exclusive()
    }
    fn begin_attempt(&self, id: CorrelationId, attempt: Attempt) -> StoreFuture<'_, bool> {
        Box::pin(async move {
            let begun = self.inner.begin_attempt(id, attempt).await?;
            if let Some(tell) = &self.hooks().begun {
                let _ = tell.send((id, begun));
            }
            Ok(begun)
        })
    }
    fn finish_answered(
        &self,
        id: CorrelationId,
        outcome: Outcome,
        answered_at: Timestamp,
    ) -> StoreFuture<'_, bool> {
        let stall = self.hooks().stall_finish.take();
        Box::pin(async move {
            if let Some((called, release)) = stall {
                let _ = called.send(id);
                let _ = release.await;
            }
            self.inner.finish_answered(id, outcome, answered_at).await
        })
    }
    fn restore(
        &self,
        payment: NewPayment,
        outcome: Outcome,
        answered_at: Timestamp,
    ) -> StoreFuture<'_, bool> {
        self.inner.restore(payment, outcome, answered_at)
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
    fn summary_answered_by(&self, window: Window, by: Timestamp) -> StoreFuture<'_, Vec<Totals>> {
        self.inner.summary_answered_by(window, by)
    }
    fn ledger(&self) -> StoreFuture<'_, Vec<LedgerEntry>> {
        self.inner.ledger()
    }
    fn known(&self) -> StoreFuture<'_, Vec<(CorrelationId, Money)>> {
        self.inner.known()
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
        match self.hooks().stale_held.take() {
            Some(stale) => Box::pin(async move { Ok(stale) }),
            None => self.inner.held(before, limit),
        }
    }
    fn lead_probes(&self, term: Duration) -> StoreFuture<'_, bool> {
        self.inner.lead_probes(term)
    }
    fn publish_probe(&self, report: ProbeReport) -> StoreFuture<'_, ()> {
        if let Some(tell) = &self.hooks().probed {
            let _ = tell.send(report.clone());
        }
        self.inner.publish_probe(report)
    }
    fn probes(&self) -> StoreFuture<'_, Vec<ProbeReport>> {
        self.inner.probes()
    }
}
