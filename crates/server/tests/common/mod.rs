//! Test harness: a fresh simulator pair and a fresh router on port 0 for
//! every test, plus a small JSON-over-HTTP client (`client`), the store under
//! the test (`backing`), and the harnesses that only some tests share
//! (`abuse`, `hostile`, `generated`).
#![allow(dead_code)]

pub mod abuse;
pub mod backing;
pub mod client;
pub mod generated;
pub mod hostile;

pub use backing::*;
pub use client::*;
pub use generated::*;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::{Method, StatusCode};
use reroute_server::{App, ServeArgs, ServeConfig};
use reroute_store::{SqliteStore, Store};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// A runtime of two workers, for a test that drives it itself (a property
/// test whose every case is a live request).
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
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
        self.configure(http, url, "delay", ms).await;
    }

    pub async fn set_failure(&self, http: &Http, url: &str, failing: bool) {
        self.configure(http, url, "failure", failing).await;
    }

    /// Sets the simulator's `PUT /admin/configurations/{key}` to `value`.
    async fn configure(&self, http: &Http, url: &str, key: &str, value: impl std::fmt::Display) {
        let (s, _) = http
            .admin(
                Method::PUT,
                &format!("{url}/admin/configurations/{key}"),
                &format!(r#"{{"{key}":{value}}}"#),
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
pub fn router_argv(db: &std::path::Path) -> Vec<String> {
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

/// The arguments for a processor slowed to seconds that must still be
/// waited for: a processor timeout it stays under, and a spill wait so
/// long that nothing spills.
pub const SLOW_BUT_WAITED_FOR: &[&str] = &[
    "--processor-timeout-ms",
    "5000",
    "--spill-wait-ms",
    "600000",
];

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

/// The recommendation most tests ask for: PIX in Brazil.
pub const RECOMMEND_PIX_IN_BRAZIL: &str = "/api/v1/routing/recommend?payment_method=PIX&country=BR";

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
