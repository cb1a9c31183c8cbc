//! The routers under test, as processes: `reroute serve` started from the
//! same executable (or `--reroute-bin`), killed with SIGKILL, restarted on
//! the same store and port. Used by the crash and chaos benches.
//!
//! Each instance keeps its port for the whole run, so the traffic's
//! round-robin always targets the same addresses, and appends its log to
//! `<work dir>/router-<name>.log` across restarts (the logs are what to read
//! when an audit fails).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use hyper::Method;
use tokio::time::Instant;

use crate::ledger::{self, StoreView};
use reroute_bench::http::{BodyUse, Connection, Endpoint};
use reroute_bench::processors::Processors;

/// Where the routers keep their queue and ledger.
#[derive(Debug, Clone)]
pub enum RouterStore {
    /// The embedded engine: one instance, this file.
    Sqlite(PathBuf),
    /// The shipped Rinha topology: the first instance is a core on the
    /// embedded store at `<dir>/core.db`, taking payments from edges on
    /// `<dir>/core.sock` and serving HTTP on `<dir>/core-http.sock` too; the
    /// others are `reroute edge` processes in front of it.
    Edges { dir: PathBuf },
    /// PostgreSQL at this URL, shared by every instance.
    Postgres(String),
}

impl RouterStore {
    /// What the routers left in the store, read once they are all stopped
    /// with `bin ledger`, as an operator would: the ledger (processed
    /// payments) and the payments still pending.
    pub async fn read_back(&self, bin: &Path) -> anyhow::Result<StoreView> {
        let source: Vec<OsString> = match self {
            RouterStore::Sqlite(path) => vec!["--db".into(), path.into()],
            RouterStore::Edges { dir } => vec!["--db".into(), dir.join(CORE_DB).into()],
            RouterStore::Postgres(url) => ["--store", url, "--instance", "reroute-bench-audit"]
                .map(OsString::from)
                .into(),
        };
        ledger::export(bin, source).await
    }
}

/// Instance `index`'s name.
fn instance_name(index: usize) -> String {
    format!("api{}", index + 1)
}

/// The core's store, edge socket and HTTP socket with [`RouterStore::Edges`].
const CORE_DB: &str = "core.db";
const CORE_SOCKET: &str = "core.sock";
const CORE_HTTP_SOCKET: &str = "core-http.sock";

/// How every instance is started.
#[derive(Debug, Clone)]
pub struct RouterSettings {
    /// The `reroute` executable.
    pub bin: PathBuf,
    pub default_url: String,
    pub fallback_url: String,
    pub store: RouterStore,
    pub health_interval_ms: u64,
    pub processor_timeout_ms: u64,
    /// PostgreSQL only: how long an instance holds a payment unrenewed.
    pub lease_ms: u64,
    /// More `reroute serve` arguments, appended as given.
    pub extra_args: Vec<String>,
    /// Where the logs go.
    pub log_dir: PathBuf,
}

/// The flags `crash` and `chaos` share: the routers they start, where
/// they keep them, and how long they wait for them at the end.
#[derive(Debug, Clone, clap::Args)]
pub struct RouterFlags {
    /// The `reroute` executable to run as the router (default: this one).
    #[arg(long, value_name = "PATH")]
    pub reroute_bin: Option<PathBuf>,

    /// The routers' `--processor-timeout-ms` (chaos `slow` waits beyond it).
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    pub processor_timeout_ms: u64,

    /// The routers' `--health-interval-ms`, and the in-process simulator's
    /// health window.
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    pub health_interval_ms: u64,

    /// One more `reroute serve` argument (repeatable), e.g.
    /// `--serve-arg=--workers=64`.
    #[arg(long = "serve-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub serve_args: Vec<String>,

    /// Directory of initdb and pg_ctl, for a private PostgreSQL cluster
    /// (else $REROUTE_PG_BIN, PATH, or the newest /usr/lib/postgresql/*/bin).
    #[arg(long, value_name = "DIR")]
    pub pg_bin: Option<PathBuf>,

    /// Keep the routers' logs and stores here (default: a temporary
    /// directory, kept only when the run fails).
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,

    /// Longest wait, after the load, for every accepted payment to be
    /// charged and the routers to be idle.
    #[arg(long, value_name = "DURATION", default_value = "60s",
          value_parser = reroute_bench::duration::parse_duration)]
    pub drain_timeout: Duration,
}

impl RouterFlags {
    /// How every instance of a run starts: against `processors`, on
    /// `store`, with `extra` serve arguments before the `--serve-arg`s, its
    /// log in `log_dir`.
    pub fn settings(
        &self,
        processors: &Processors,
        store: RouterStore,
        lease_ms: u64,
        extra: Vec<String>,
        log_dir: PathBuf,
    ) -> anyhow::Result<RouterSettings> {
        Ok(RouterSettings {
            bin: reroute_bin(self.reroute_bin.as_deref())?,
            default_url: processors.default_url.clone(),
            fallback_url: processors.fallback_url.clone(),
            store,
            health_interval_ms: self.health_interval_ms,
            processor_timeout_ms: self.processor_timeout_ms,
            lease_ms,
            extra_args: extra.into_iter().chain(self.serve_args.clone()).collect(),
            log_dir,
        })
    }
}

/// One router instance: a fixed port, and the process while it runs.
pub struct Instance {
    pub name: String,
    pub endpoint: Arc<Endpoint>,
    port: u16,
    child: Option<Child>,
    /// How many times it was started: the generation of its current process.
    pub starts: u32,
}

/// Every instance of the run. Dropping it kills whatever still runs.
pub struct Fleet {
    settings: RouterSettings,
    instances: Vec<Instance>,
    generations: Generations,
}

/// Which process of each instance runs now: its start count, bumped just
/// before each start. The traffic reads it before each send, so an answer
/// is attributed to the process that received the request (the time a task
/// notices an answer may be later than a restart).
pub type Generations = Arc<Vec<std::sync::atomic::AtomicU32>>;

impl Fleet {
    /// `count` instances on free ports, none started yet.
    pub fn new(settings: RouterSettings, count: usize) -> anyhow::Result<Self> {
        if count > 1 && matches!(settings.store, RouterStore::Sqlite(_)) {
            bail!("several instances need PostgreSQL: the embedded store has one writer");
        }
        // A fresh run: nothing left from an earlier run in the same place.
        let files = match &settings.store {
            RouterStore::Sqlite(path) => vec![path.clone()],
            RouterStore::Edges { dir } => {
                if count < 2 {
                    bail!("edges need at least two instances: a core and one edge");
                }
                vec![dir.join(CORE_DB)]
            }
            RouterStore::Postgres(_) => Vec::new(),
        };
        for path in files {
            for suffix in ["", "-wal", "-shm"] {
                let mut file = path.clone().into_os_string();
                file.push(suffix);
                remove_if_present(Path::new(&file))?;
            }
        }
        let instances = (0..count)
            .map(|i| {
                let port = free_port()?;
                let name = instance_name(i);
                remove_if_present(&settings.log_dir.join(format!("router-{name}.log")))?;
                Ok(Instance {
                    name,
                    endpoint: Arc::new(format!("http://127.0.0.1:{port}").parse()?),
                    port,
                    child: None,
                    starts: 0,
                })
            })
            .collect::<anyhow::Result<_>>()?;
        let generations = Arc::new((0..count).map(|_| Default::default()).collect());
        Ok(Self {
            settings,
            instances,
            generations,
        })
    }

    pub fn generations(&self) -> Generations {
        self.generations.clone()
    }

    pub fn len(&self) -> usize {
        self.instances.len()
    }

    pub fn is_empty(&self) -> bool {
        self.instances.is_empty()
    }

    pub fn instance(&self, index: usize) -> &Instance {
        &self.instances[index]
    }

    /// The instances' ports on 127.0.0.1, in order.
    pub fn ports(&self) -> Vec<u16> {
        self.instances.iter().map(|i| i.port).collect()
    }

    pub fn endpoints(&self) -> Vec<Arc<Endpoint>> {
        self.instances.iter().map(|i| i.endpoint.clone()).collect()
    }

    pub fn settings(&self) -> &RouterSettings {
        &self.settings
    }

    /// Starts instance `index` (it must not be running).
    pub fn start(&mut self, index: usize) -> anyhow::Result<()> {
        let settings = &self.settings;
        let instance = &mut self.instances[index];
        debug_assert!(instance.child.is_none(), "{} already runs", instance.name);
        let log_path = settings
            .log_dir
            .join(format!("router-{}.log", instance.name));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("opening {}", log_path.display()))?;
        let mut command = Command::new(&settings.bin);
        let port = instance.port.to_string();
        if let RouterStore::Edges { dir } = &settings.store
            && index > 0
        {
            command
                .args(["edge", "--host", "127.0.0.1", "--port", &port])
                .arg("--core-socket")
                .arg(dir.join(CORE_SOCKET))
                .arg("--core-http-socket")
                .arg(dir.join(CORE_HTTP_SOCKET));
        } else {
            command
                .args(["serve", "--host", "127.0.0.1", "--port", &port])
                .args(["--default-url", &settings.default_url])
                .args(["--fallback-url", &settings.fallback_url])
                .args([
                    "--health-interval-ms",
                    &settings.health_interval_ms.to_string(),
                ])
                .args([
                    "--processor-timeout-ms",
                    &settings.processor_timeout_ms.to_string(),
                ])
                .args(["--instance", &instance.name]);
            match &settings.store {
                RouterStore::Sqlite(path) => {
                    command.arg("--db").arg(path);
                }
                RouterStore::Edges { dir } => {
                    command
                        .arg("--db")
                        .arg(dir.join(CORE_DB))
                        .arg("--edge-socket")
                        .arg(dir.join(CORE_SOCKET))
                        .arg("--unix-socket")
                        .arg(dir.join(CORE_HTTP_SOCKET));
                }
                RouterStore::Postgres(url) => {
                    command
                        .args(["--store", url])
                        .args(["--lease-ms", &settings.lease_ms.to_string()]);
                }
            }
            command.args(&settings.extra_args);
        }
        // The environment must not override the flags above.
        for var in [
            "DATABASE_URL",
            "REROUTE_DB",
            "APP_PORT",
            "SERVER_PORT",
            "REROUTE_PROCESSORS",
        ] {
            command.env_remove(var);
        }
        self.generations[index].fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let child = command
            .env(
                "RUST_LOG",
                std::env::var("REROUTE_BENCH_ROUTER_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .with_context(|| format!("starting {} serve", settings.bin.display()))?;
        instance.child = Some(child);
        instance.starts = self.generations[index].load(std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    /// Starts every instance, each once the one before is ready.
    pub async fn start_all(&mut self) -> anyhow::Result<()> {
        for index in 0..self.len() {
            self.start(index)?;
            self.wait_ready(index, Duration::from_secs(60)).await?;
        }
        Ok(())
    }

    /// SIGKILL: no shutdown code runs. Returns once the process is gone.
    pub fn kill(&mut self, index: usize) {
        if let Some(mut child) = self.instances[index].child.take() {
            // Child::kill sends SIGKILL on Unix.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGSTOP: the process stops where it is, timers and sockets and all,
    /// as a VM freeze or a long pause of the whole process would stop it;
    /// it holds its connections and leases but renews nothing.
    pub fn pause(&mut self, index: usize) -> anyhow::Result<()> {
        self.signal(index, libc::SIGSTOP, "SIGSTOP")
    }

    /// SIGCONT: a paused process carries on from where it stopped.
    pub fn resume(&mut self, index: usize) -> anyhow::Result<()> {
        self.signal(index, libc::SIGCONT, "SIGCONT")
    }

    fn signal(&mut self, index: usize, signal: libc::c_int, name: &str) -> anyhow::Result<()> {
        let instance = &self.instances[index];
        let child = instance
            .child
            .as_ref()
            .with_context(|| format!("{name} to {}: it is not running", instance.name))?;
        let pid = libc::pid_t::try_from(child.id())
            .with_context(|| format!("{name} to {}: pid out of range", instance.name))?;
        // SAFETY: kill(2) reads no memory of ours. The pid is our own child,
        // not yet waited for (we still hold its `Child`), so it cannot have
        // been given to another process.
        let sent = unsafe { libc::kill(pid, signal) };
        if sent != 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("{name} to {} (pid {pid})", instance.name));
        }
        Ok(())
    }

    pub fn kill_all(&mut self) {
        for index in 0..self.instances.len() {
            self.kill(index);
        }
    }

    /// Whether the process of `index` is still alive (it may have exited on
    /// its own: that is worth reporting).
    pub fn exited(&mut self, index: usize) -> Option<std::process::ExitStatus> {
        self.instances[index]
            .child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Waits until `GET /readyz` answers 200 on instance `index`.
    pub async fn wait_ready(&mut self, index: usize, within: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + within;
        let endpoint = self.instances[index].endpoint.clone();
        let mut connection = Connection::new(endpoint.clone());
        loop {
            if let Some(status) = self.exited(index) {
                bail!(
                    "{} exited during start-up ({status}); see {}",
                    self.instances[index].name,
                    self.settings.log_dir.display()
                );
            }
            let request = endpoint.request(Method::GET, "/readyz", None);
            let answer = connection
                .exchange(request, BodyUse::Discard, Duration::from_secs(1))
                .await;
            if answer.is_ok_and(|a| a.status.is_success()) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} not ready after {within:?}; see {}",
                    self.instances[index].name,
                    self.settings.log_dir.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.kill_all();
    }
}

fn remove_if_present(path: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing {}", path.display()))
        }
        _ => Ok(()),
    }
}

/// A port of 127.0.0.1 free now (for a child process to bind).
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

/// The executable to run as the router: `--reroute-bin`, else this one.
/// When this one was replaced on disk while running (a rebuild), Linux
/// names it `... (deleted)`: the new file at the same path is used.
pub fn reroute_bin(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    match given {
        Some(path) => Ok(path.to_path_buf()),
        None => {
            let exe = std::env::current_exe().context("finding the reroute executable")?;
            match exe.to_str().and_then(|s| s.strip_suffix(" (deleted)")) {
                Some(replaced) if !exe.exists() => Ok(PathBuf::from(replaced)),
                _ => Ok(exe),
            }
        }
    }
}
