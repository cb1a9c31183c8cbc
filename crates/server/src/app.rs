//! The application, at the top of the crate: [`App::build`] opens the store,
//! builds the [`Shared`] state, resumes what was pending, binds the
//! listeners and starts workers, lease keeping and probes;
//! [`App::run_until_stopped`] serves the routes (with the rate limit and
//! tracing around them) until a signal, then drains. It wires the layers
//! below and nothing imports it; `main` and the tests use the same path.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use reroute_core::HealthEngine;
use reroute_store::{PostgresConfig, PostgresStore, SqliteStore, Store, StoreError};

use tokio::net::UnixListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::accept_thread::AcceptThread;
use crate::accepts::AcceptTable;
use crate::breakers::Breakers;
use crate::config::{ServeConfig, StoreChoice};
use crate::lanes::Lanes;
use crate::listen::{Listeners, SocketFile};
use crate::metrics::Metrics;
use crate::processor::ProcessorClient;
use crate::queue::Queue;
use crate::recording::Recording;
use crate::resolution::Landing;
use crate::state::Shared;
use crate::timed_store::TimedStore;
use crate::{api, leases, listen, probe, ratelimit, telemetry, worker};

/// Why the router did not start. The cause of `Store` and `Bind` is their
/// `source`, which a report of the chain (`{:#}` of anyhow, as `main`
/// prints it) adds after the message: the message itself does not repeat it.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open the store {what}")]
    Store { what: String, source: StoreError },
    #[error("cannot read the pending payments: {0}")]
    Resume(StoreError),
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot listen on the unix socket {path}")]
    BindUnix {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start the accept thread")]
    Thread(#[source] std::io::Error),
    #[error(transparent)]
    AcceptTable(#[from] crate::accepts::TableError),
    #[error("cannot store the payments the accept table holds: {0}")]
    AcceptTableDrain(StoreError),
}

/// How long a stopped app waits for the store it opened to let go of its
/// file (its writer's last commit) before it stops the accept thread anyway.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(10);

/// Resolves once the store an app opened has let go of its file.
type Released = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A running router.
pub struct App {
    addr: SocketAddr,
    shared: Arc<Shared>,
    listeners: Listeners,
    /// The core's side of the edge protocol (`--edge-socket`), registered
    /// with the accept thread's runtime, which serves it.
    edges: Option<(UnixListener, AcceptThread)>,
    /// The embedded store this app opened: awaited at the stop.
    released: Option<Released>,
    /// The unix socket files this app made, removed when it stops.
    sockets: Vec<SocketFile>,
    cancel: CancellationToken,
    tasks: TaskTracker,
    resumed: usize,
}

impl App {
    /// Opens the store `config` names: the embedded one, or PostgreSQL.
    pub async fn build(config: ServeConfig) -> Result<App, StartError> {
        let metrics = Metrics::default();
        let accept = Self::accept_thread(&config)?;
        let mut released = None;
        let store: Arc<dyn Store> = match &config.store {
            StoreChoice::Embedded(path) => {
                // At `os` its writer is a task of the runtime it opens on.
                let _on = accept.as_ref().map(|thread| thread.handle().enter());
                let store = SqliteStore::open_with(path, config.durability).map_err(|source| {
                    StartError::Store {
                        what: path.display().to_string(),
                        source,
                    }
                })?;
                released = Some(Box::pin(store.released()) as Released);
                Arc::new(store)
            }
            StoreChoice::Postgres { url, lease } => {
                let mut pg = PostgresConfig::new(url.clone());
                pg.instance = config.instance.clone();
                pg.lease = *lease;
                pg.durability = config.durability;
                pg.observer = Some(metrics.store());
                // Not listening yet, so not ready: a load balancer or
                // orchestrator sees the instance come up with its store.
                let store = PostgresStore::connect_patiently(pg, |tries, e| {
                    tracing::warn!(tries, error = %e, "PostgreSQL unavailable; waiting for it");
                });
                Arc::new(store.await.map_err(|source| StartError::Store {
                    what: "PostgreSQL (DATABASE_URL)".into(),
                    source,
                })?)
            }
        };
        Self::start(config, store, metrics, accept, released).await
    }

    /// The accept path's own thread, for a core with edges.
    fn accept_thread(config: &ServeConfig) -> Result<Option<AcceptThread>, StartError> {
        config
            .edge_socket
            .as_ref()
            .map(|_| AcceptThread::start().map_err(StartError::Thread))
            .transpose()
    }

    /// Starts on a given store: binds, takes over every pending payment, then
    /// starts workers, lease keeping and probes.
    pub async fn build_with_store(
        config: ServeConfig,
        store: Arc<dyn Store>,
    ) -> Result<App, StartError> {
        let accept = Self::accept_thread(&config)?;
        Self::start(config, store, Metrics::default(), accept, None).await
    }

    async fn start(
        config: ServeConfig,
        store: Arc<dyn Store>,
        metrics: Metrics,
        accept: Option<AcceptThread>,
        released: Option<Released>,
    ) -> Result<App, StartError> {
        let store = TimedStore::wrap(store, metrics.store());
        let registry = config.registry.clone();
        let accepts = match &config.accept_table {
            Some(path) => {
                let (table, _) = AcceptTable::open(path, true)?;
                // Told to every edge through the file: at `stable` a 2xx
                // from the table waits for its slot's page on disk.
                let stable = config.durability == reroute_store::Durability::Stable;
                table.set_stable(stable)?;
                if !stable && !table.in_memory() {
                    tracing::info!(
                        table = %path.display(),
                        "the accept table is on a disk filesystem: at `os` a memory filesystem \
                         (/dev/shm) spares every process a page fault per page after each \
                         writeback (docs/operations.md, \"Edges in front of one core\")"
                    );
                }
                Some(Arc::new(table))
            }
            None => None,
        };
        let shared = Arc::new(Shared {
            breakers: Breakers::new(registry.len(), config.circuit),
            client: ProcessorClient::new(config.processor_timeout),
            lanes: Lanes::new(registry.len(), config.lanes),
            landing: Landing::new(
                registry.len(),
                config.processor_timeout,
                config.landing_margin,
                crate::resolution::longest_send_wait(store.lease()),
                config.health_interval,
            ),
            health: HealthEngine::new(&registry, config.health),
            health_opened: tokio::sync::Notify::new(),
            queue: Queue::default(),
            recording: Recording::default(),
            metrics,
            stopping: CancellationToken::new(),
            leases_renewed: std::sync::atomic::AtomicBool::new(true),
            accepts,
            started_at: reroute_core::Timestamp::now(),
            registry,
            store,
            config,
        });
        // Bind first: nothing is taken over or started if the port is taken.
        let addr = shared.config.listen;
        let listener = listen::tcp(addr).map_err(|source| StartError::Bind { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| StartError::Bind { addr, source })?;
        let mut sockets = Vec::new();
        let mut unix = |path: &Option<std::path::PathBuf>| -> Result<_, StartError> {
            let Some(path) = path else { return Ok(None) };
            let listener = listen::unix(path).map_err(|source| StartError::BindUnix {
                path: path.clone(),
                source,
            })?;
            sockets.push(SocketFile(path.clone()));
            Ok(Some(listener))
        };
        let listeners = Listeners {
            tcp: Some(listener),
            unix: unix(&shared.config.unix_socket)?,
        };
        let edges = match accept {
            Some(thread) => {
                // Its connections are the accept thread's I/O.
                let _on = thread.handle().enter();
                unix(&shared.config.edge_socket)?.map(|listener| (listener, thread))
            }
            None => None,
        };
        let resumed = leases::resume(&shared).await.map_err(StartError::Resume)?;
        if resumed > 0 {
            tracing::info!(resumed, "resuming payments accepted before the last stop");
        }
        if let Some(table) = &shared.accepts {
            api::accepts::prepare(&shared, table)
                .await
                .map_err(StartError::AcceptTableDrain)?;
        }
        let cancel = shared.stopping.clone();
        let tasks = TaskTracker::new();
        tasks.spawn(worker::run(
            Arc::clone(&shared),
            cancel.clone(),
            tasks.clone(),
        ));
        // The store's own lease: a test (or an embedder) may hand over a
        // store other than the one the configuration names.
        let lease_period = shared.store.lease().map_or(
            std::time::Duration::from_secs(5),
            crate::config::lease_renewal_interval,
        );
        tasks.spawn(leases::run(
            Arc::clone(&shared),
            lease_period,
            cancel.clone(),
        ));
        for index in 0..shared.registry.len() {
            let interval = shared.config.health_interval;
            tasks.spawn(probe::run(
                Arc::clone(&shared),
                index,
                interval,
                cancel.clone(),
            ));
        }
        Ok(App {
            addr,
            shared,
            listeners,
            edges,
            released,
            sockets,
            cancel,
            tasks,
            resumed,
        })
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Payments found pending in the store at start-up.
    pub fn resumed(&self) -> usize {
        self.resumed
    }

    /// Cancelling it stops the app as a signal would.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// Serves until Ctrl-C, SIGTERM or the shutdown token; then stops
    /// accepting, lets in-flight requests finish and stops the workers (a
    /// payment being worked on stays pending in the store).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let App {
            shared,
            listeners,
            edges,
            released,
            sockets,
            cancel,
            tasks,
            ..
        } = self;
        let accept = edges.map(|(listener, thread)| {
            tasks.spawn_on(
                api::frames::serve(listener, Arc::clone(&shared), cancel.clone(), tasks.clone()),
                thread.handle(),
            );
            tasks.spawn_on(
                api::accepts::run(Arc::clone(&shared), cancel.clone()),
                thread.handle(),
            );
            thread
        });
        let router = api::routes::router(Arc::clone(&shared));
        let router = ratelimit::layer(router, &shared);
        let router = telemetry::layer(router, &shared.config.telemetry);
        let served = listen::serve(listeners, router, cancel.clone()).await;
        cancel.cancel();
        tasks.close();
        tasks.wait().await;
        drop(sockets);
        let queued = shared.queue.depth();
        // The last handle on the store, unless a connection outlived the
        // drain: its writer commits what it has and lets go of the file.
        drop(shared);
        if let Some(released) = released
            && tokio::time::timeout(RELEASE_TIMEOUT, released)
                .await
                .is_err()
        {
            tracing::warn!(
                "the store was still in use {} s after the stop; stopping without waiting for it",
                RELEASE_TIMEOUT.as_secs()
            );
        }
        if let Some(thread) = accept {
            thread.stop().await;
        }
        tracing::info!(queued, "stopped");
        served
    }
}
