//! Test harness: a fresh simulator pair and a fresh router on port 0 for
//! every test, plus a small JSON-over-HTTP client.
#![allow(dead_code)]

pub mod abuse;
pub mod hostile;

use std::future::Future;
use std::net::SocketAddr;

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use hyper_util::rt::TokioExecutor;
use reroute_server::{App, ServeArgs, ServeConfig};
use reroute_store::{PostgresConfig, PostgresStore, SqliteStore, Store};
use serde_json::Value;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

pub const TOKEN: &str = "123";

pub struct Http(Client<HttpConnector, Full<Bytes>>);

impl Default for Http {
    fn default() -> Self {
        Self(Client::builder(TokioExecutor::new()).build(HttpConnector::new()))
    }
}

impl Http {
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (StatusCode, Value) {
        let (status, _, value) = self.send_with_headers(method, url, headers, body).await;
        (status, value)
    }

    /// One request with any bytes as its body: the answer's head and body.
    async fn exchange(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> (hyper::http::response::Parts, Bytes) {
        let mut req = Request::builder().method(method).uri(url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(Full::new(body)).unwrap();
        let res = tokio::time::timeout(Duration::from_secs(10), self.0.request(req))
            .await
            .expect("request timed out")
            .expect("request failed");
        let (parts, body) = res.into_parts();
        (parts, body.collect().await.unwrap().to_bytes())
    }

    /// A GET whose body is text, not JSON.
    pub async fn get_text(&self, url: &str) -> (StatusCode, String) {
        let req = Request::get(url).body(Full::new(Bytes::new())).unwrap();
        let res = tokio::time::timeout(Duration::from_secs(10), self.0.request(req))
            .await
            .expect("request timed out")
            .expect("request failed");
        let status = res.status();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(bytes.to_vec()).unwrap())
    }

    pub async fn get(&self, url: &str) -> (StatusCode, Value) {
        self.send(Method::GET, url, &[], "").await
    }

    pub async fn post_json(&self, url: &str, body: &str) -> (StatusCode, Value) {
        self.send(
            Method::POST,
            url,
            &[("content-type", "application/json")],
            body,
        )
        .await
    }

    /// A processor admin call with the token.
    pub async fn admin(&self, method: Method, url: &str, body: &str) -> (StatusCode, Value) {
        self.send(
            method,
            url,
            &[
                ("content-type", "application/json"),
                ("x-rinha-token", TOKEN),
            ],
            body,
        )
        .await
    }
}

/// Polls `check` until it returns `Some`, or panics after `deadline`.
pub async fn eventually<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = tokio::time::Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(start.elapsed() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

pub struct Sims {
    pub sim: Option<reroute_sim::Sim>,
    pub default: String,
    pub fallback: String,
}

impl Sims {
    pub async fn start() -> Self {
        let mut config = reroute_sim::SimConfig::rinha_on_free_ports();
        config.health_window = Duration::from_millis(500);
        let sim = reroute_sim::spawn(config).await.expect("simulators start");
        let default = sim.url("default");
        let fallback = sim.url("fallback");
        Self {
            sim: Some(sim),
            default,
            fallback,
        }
    }

    pub async fn set_delay(&self, http: &Http, url: &str, ms: u64) {
        let (s, _) = http
            .admin(
                Method::PUT,
                &format!("{url}/admin/configurations/delay"),
                &format!(r#"{{"delay":{ms}}}"#),
            )
            .await;
        assert!(s.is_success());
    }

    pub async fn set_failure(&self, http: &Http, url: &str, failing: bool) {
        let (s, _) = http
            .admin(
                Method::PUT,
                &format!("{url}/admin/configurations/failure"),
                &format!(r#"{{"failure":{failing}}}"#),
            )
            .await;
        assert!(s.is_success());
    }

    /// One counter of the simulator's `GET /admin/stats`.
    pub async fn stat(&self, http: &Http, url: &str, name: &str) -> u64 {
        let (s, v) = http
            .admin(Method::GET, &format!("{url}/admin/stats"), "")
            .await;
        assert!(s.is_success(), "{v}");
        v[name]
            .as_u64()
            .unwrap_or_else(|| panic!("no counter {name} in {v}"))
    }

    /// The processor's own summary: (totalRequests, totalAmount).
    pub async fn books(&self, http: &Http, url: &str) -> (u64, f64) {
        let (s, v) = http
            .admin(Method::GET, &format!("{url}/admin/payments-summary"), "")
            .await;
        assert!(s.is_success());
        (
            v["totalRequests"].as_u64().unwrap(),
            v["totalAmount"].as_f64().unwrap(),
        )
    }
}

/// Which store a test runs on. Tests of behaviour run on both (see
/// `on_both_stores!`): the embedded store in a temporary directory, or
/// PostgreSQL (`DATABASE_URL`, default the local test database — never
/// skipped) in a schema of the test's own, dropped at the end.
pub enum Backing {
    Embedded(tempfile::TempDir),
    Postgres { url: String, schema: String },
}

impl Backing {
    pub fn embedded() -> Self {
        Backing::Embedded(tempfile::tempdir().unwrap())
    }

    pub fn postgres() -> Self {
        let url = std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let id = reroute_core::CorrelationId::new_random()
            .to_string()
            .replace('-', "");
        Backing::Postgres {
            url,
            schema: format!("srv_{}", &id[..16]),
        }
    }

    /// The embedded database file (unused on PostgreSQL).
    pub fn db(&self) -> std::path::PathBuf {
        match self {
            Backing::Embedded(dir) => dir.path().join("r.db"),
            Backing::Postgres { .. } => std::path::PathBuf::from("unused.db"),
        }
    }

    /// A store for one run of the router; on PostgreSQL each call is a new
    /// instance (a restart), with a short lease so that a stopped
    /// instance's payments are taken over quickly.
    pub async fn open(&self) -> Arc<dyn Store> {
        match self {
            Backing::Embedded(dir) => Arc::new(SqliteStore::open(dir.path().join("r.db")).unwrap()),
            Backing::Postgres { url, schema } => {
                let config = PostgresConfig {
                    instance: "test".into(),
                    lease: Duration::from_millis(1_000),
                    schema: Some(schema.clone()),
                    ..PostgresConfig::new(url.clone())
                };
                Arc::new(PostgresStore::connect(config).await.unwrap_or_else(|e| {
                    panic!("cannot reach PostgreSQL at {url} (set DATABASE_URL): {e}")
                }))
            }
        }
    }
}

impl Drop for Backing {
    fn drop(&mut self) {
        let Backing::Postgres { url, schema } = self else {
            return;
        };
        let (url, schema) = (url.clone(), schema.clone());
        // Drop cannot await, and the test's runtime may be single-threaded.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let (client, connection) =
                    tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
                tokio::spawn(connection);
                client
                    .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                    .await
            })
        })
        .join();
    }
}

/// Runs each named `async fn(Backing)` as two tests, `embedded::name` and
/// `postgres::name`.
#[macro_export]
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::common::Backing::embedded()).await })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::common::Backing::postgres()).await })*
        }
    };
}

/// A router on port 0 over a fresh database in `dir`.
pub struct TestApp {
    pub addr: SocketAddr,
    pub url: String,
    stop: CancellationToken,
    done: tokio::task::JoinHandle<()>,
}

/// The configuration `reroute serve` would build from these arguments.
pub fn parse_serve(argv: Vec<String>) -> ServeConfig {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }
    Cli::parse_from(argv).serve.into_config().unwrap()
}

/// The arguments every test router starts with: port 0 on loopback, the
/// embedded store at `db`.
fn router_argv(db: &std::path::Path) -> Vec<String> {
    vec![
        "reroute".to_owned(),
        "--host".into(),
        "127.0.0.1".into(),
        "--port".into(),
        "0".into(),
        "--db".into(),
        db.display().to_string(),
        // The embedded store, whatever DATABASE_URL says: tests that want
        // PostgreSQL open it themselves (`TestApp::start_on`), each in a
        // schema of its own.
        "--store".into(),
        String::new(),
    ]
}

pub fn config(sims: &Sims, db: &std::path::Path, extra: &[&str]) -> ServeConfig {
    let mut argv = router_argv(db);
    argv.extend([
        "--default-url".into(),
        sims.default.clone(),
        "--fallback-url".into(),
        sims.fallback.clone(),
        "--health-interval-ms".into(),
        "500".into(),
    ]);
    argv.extend(extra.iter().map(|s| s.to_string()));
    if !extra.contains(&"--processor-timeout-ms") {
        argv.extend(["--processor-timeout-ms".into(), "1000".into()]);
    }
    parse_serve(argv)
}

/// A router on port 0 whose registry comes from `registry` (a TOML file),
/// with no simulators: for processors that are advisory only.
pub fn config_with_registry(
    db: &std::path::Path,
    registry: &std::path::Path,
    extra: &[&str],
) -> ServeConfig {
    let mut argv = router_argv(db);
    argv.extend(["--processors".into(), registry.display().to_string()]);
    argv.extend(extra.iter().map(|s| s.to_string()));
    parse_serve(argv)
}

/// The shipped `config/techcart.toml` without its URLs (advisory only),
/// written into `dir`.
pub fn techcart_advisory(dir: &std::path::Path) -> std::path::PathBuf {
    let shipped = format!("{}/../../config/techcart.toml", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(shipped).expect("config/techcart.toml exists");
    let advisory: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("url"))
        .map(|l| format!("{l}\n"))
        .collect();
    let path = dir.join("techcart.toml");
    std::fs::write(&path, advisory).unwrap();
    path
}

/// A router over the five TechCart processors, advisory only, on a fresh
/// database in a temporary directory (kept as long as the returned guard).
pub async fn techcart(extra: &[&str]) -> (TestApp, Http, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let registry = techcart_advisory(dir.path());
    let config = config_with_registry(&dir.path().join("r.db"), &registry, extra);
    (TestApp::start(config).await, Http::default(), dir)
}

/// A router against `sims` with the arguments `extra`, on a fresh embedded
/// database in a temporary directory (kept as long as the returned guard).
pub async fn start_app(sims: &Sims, extra: &[&str]) -> (TestApp, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(config(sims, &dir.path().join("r.db"), extra)).await;
    (app, dir)
}

/// A router against `sims` on a fresh embedded store that the test keeps
/// too, to look at what was stored; `edit` adjusts the configuration first.
pub async fn start_with_embedded_store(
    sims: &Sims,
    edit: impl FnOnce(&mut ServeConfig),
) -> (tempfile::TempDir, Arc<dyn Store>, TestApp) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("r.db");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&db).unwrap());
    let mut config = config(sims, &db, &[]);
    edit(&mut config);
    let app = TestApp::start_with_store(config, Arc::clone(&store)).await;
    (dir, store, app)
}

impl TestApp {
    pub async fn start(config: ServeConfig) -> Self {
        Self::started(App::build(config).await.expect("router starts"))
    }

    /// A router on the given backing (a new instance of its store).
    pub async fn start_on(backing: &Backing, config: ServeConfig) -> Self {
        let store = backing.open().await;
        Self::started(
            App::build_with_store(config, store)
                .await
                .expect("router starts"),
        )
    }

    /// A router on a store the test opened itself (and may keep, to look at
    /// what was stored).
    pub async fn start_with_store(config: ServeConfig, store: Arc<dyn Store>) -> Self {
        Self::started(
            App::build_with_store(config, store)
                .await
                .expect("router starts"),
        )
    }

    fn started(app: App) -> Self {
        let addr = app.addr();
        let stop = app.shutdown_token();
        let done = tokio::spawn(async move {
            app.run_until_stopped().await.unwrap();
        });
        Self {
            addr,
            url: format!("http://{addr}"),
            stop,
            done,
        }
    }

    pub async fn stop(self) {
        self.stop.cancel();
        self.done.await.unwrap();
    }

    pub async fn pay(&self, http: &Http, id: &str, amount: &str) -> (StatusCode, Value) {
        http.post_json(
            &format!("{}/payments", self.url),
            &format!(r#"{{"correlationId":"{id}","amount":{amount}}}"#),
        )
        .await
    }

    /// The router's summary for one processor: (totalRequests, totalAmount).
    pub async fn summary(&self, http: &Http, processor: &str) -> (u64, f64) {
        let (s, v) = http.get(&format!("{}/payments-summary", self.url)).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        (
            v[processor]["totalRequests"].as_u64().unwrap(),
            v[processor]["totalAmount"].as_f64().unwrap(),
        )
    }
}

/// A GET of `path` (with its query) on the router.
pub async fn get(app: &TestApp, http: &Http, path: &str) -> (StatusCode, Value) {
    http.get(&format!("{}{path}", app.url)).await
}

/// Waits (up to 15 s) until the router's summary counts `n` payments on
/// `processor`.
pub async fn processed_on(app: &TestApp, http: &Http, processor: &str, n: u64) {
    eventually(
        &format!("{n} payments on {processor}"),
        Duration::from_secs(15),
        || async { (app.summary(http, processor).await.0 == n).then_some(()) },
    )
    .await;
}

/// Posts `n` payments of 1.00 at once, each on its own client; all are
/// accepted.
pub async fn burst(app: &TestApp, n: usize) {
    let mut posts = tokio::task::JoinSet::new();
    for _ in 0..n {
        let url = app.url.clone();
        posts.spawn(async move {
            let http = Http::default();
            let body = format!(r#"{{"correlationId":"{}","amount":1.00}}"#, new_id());
            http.post_json(&format!("{url}/payments"), &body).await.0
        });
    }
    for status in posts.join_all().await {
        assert_eq!(status, StatusCode::ACCEPTED);
    }
}

pub fn new_id() -> String {
    reroute_core::CorrelationId::new_random().to_string()
}

impl Http {
    /// A client whose connections leave from `local` (any 127.x.y.z reaches
    /// the router on 127.0.0.1): another client, as the router sees it.
    pub fn bound_to(local: std::net::IpAddr) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_local_address(Some(local));
        Self(Client::builder(TokioExecutor::new()).build(connector))
    }

    /// A request whose answer's headers matter too.
    pub async fn send_with_headers(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (StatusCode, hyper::HeaderMap, Value) {
        let (parts, bytes) = self
            .exchange(method, url, headers, Bytes::from(body.to_owned()))
            .await;
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (parts.status, parts.headers, value)
    }
}

impl Http {
    /// Any bytes as the body (not necessarily UTF-8); the answer's status,
    /// content type and raw body.
    pub async fn send_bytes(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> (StatusCode, Option<String>, Bytes) {
        let (parts, bytes) = self.exchange(method, url, headers, Bytes::from(body)).await;
        let content_type = parts
            .headers
            .get(hyper::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        (parts.status, content_type, bytes)
    }
}

/// Every payment the store holds, pending or in the ledger, with its amount.
pub async fn stored_payments(
    store: &dyn Store,
) -> std::collections::BTreeMap<reroute_core::CorrelationId, reroute_core::Money> {
    let mut all: std::collections::BTreeMap<_, _> = store
        .pending()
        .await
        .unwrap()
        .into_iter()
        .map(|p| (p.payment.id, p.payment.amount))
        .collect();
    all.extend(
        store
            .ledger()
            .await
            .unwrap()
            .into_iter()
            .map(|e| (e.id, e.amount)),
    );
    all
}

/// The number of cases for a property test over HTTP: `PROPTEST_CASES`
/// when set (to run it at scale), else `default` (a few seconds in CI).
pub fn proptest_cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Percent-encodes every byte but the unreserved ones, for query strings
/// and path segments.
pub fn percent_encode(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A JSON string literal; with `escaped`, every character as `\uXXXX`.
pub fn json_string(s: &str, escaped: bool) -> String {
    if !escaped {
        return serde_json::to_string(s).unwrap();
    }
    let mut out = String::from("\"");
    for unit in s.encode_utf16() {
        out.push_str(&format!("\\u{unit:04x}"));
    }
    out.push('"');
    out
}

/// Arbitrary JSON values, nested a little.
pub fn json_value() -> impl proptest::strategy::Strategy<Value = Value> {
    use proptest::prelude::*;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map("\\PC{0,6}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}
