//! The application: [`App::build`] opens the store, resumes what was pending,
//! binds the listener and starts workers and probes; `main` and the tests use
//! the same path.

use std::net::SocketAddr;
use std::sync::Arc;

use reroute_core::{HealthEngine, Registry};
use reroute_store::{SqliteStore, Store, StoreError};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::breakers::Breakers;
use crate::config::ServeConfig;
use crate::metrics::Metrics;
use crate::processor::ProcessorClient;
use crate::queue::Queue;
use crate::{api, probe, worker};

/// Everything the handlers, workers and probes share.
pub struct Shared {
    pub config: ServeConfig,
    pub registry: Registry,
    pub store: Arc<dyn Store>,
    pub client: ProcessorClient,
    pub breakers: Breakers,
    /// Segment and processor health, fed by the workers' attempts and by
    /// `POST /api/v1/transactions`; read by the intelligence API and used
    /// by the workers to route.
    pub health: HealthEngine,
    /// Notified when a send reopens a DOWN segment's health gate, so that
    /// workers waiting for it resume at once (as [`Breakers::changed`] does
    /// for circuits).
    pub health_opened: tokio::sync::Notify,
    pub queue: Queue,
    pub metrics: Metrics,
    /// Cancelled when the app stops: workers and probes are then gone.
    pub stopping: CancellationToken,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open the store at {path}: {source}")]
    Store { path: String, source: StoreError },
    #[error("cannot read the pending payments: {0}")]
    Resume(StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A running router.
pub struct App {
    addr: SocketAddr,
    shared: Arc<Shared>,
    listener: TcpListener,
    cancel: CancellationToken,
    tasks: TaskTracker,
    resumed: usize,
}

impl App {
    /// Opens the embedded store named in `config`.
    pub async fn build(config: ServeConfig) -> Result<App, StartError> {
        let store = SqliteStore::open(&config.db).map_err(|source| StartError::Store {
            path: config.db.display().to_string(),
            source,
        })?;
        Self::build_with_store(config, Arc::new(store)).await
    }

    /// Starts on a given store: re-queues every pending payment, then starts
    /// workers and probes, then binds.
    pub async fn build_with_store(
        config: ServeConfig,
        store: Arc<dyn Store>,
    ) -> Result<App, StartError> {
        let registry = config.registry.clone();
        let shared = Arc::new(Shared {
            breakers: Breakers::new(registry.len(), config.circuit),
            client: ProcessorClient::new(config.processor_timeout),
            health: HealthEngine::new(&registry, config.health),
            health_opened: tokio::sync::Notify::new(),
            queue: Queue::default(),
            metrics: Metrics::default(),
            stopping: CancellationToken::new(),
            registry,
            store,
            config,
        });
        let pending = shared.store.pending().await.map_err(StartError::Resume)?;
        let resumed = pending.len();
        for payment in pending {
            shared.queue.push(payment);
        }
        if resumed > 0 {
            tracing::info!(resumed, "resuming payments accepted before the last stop");
        }
        let cancel = shared.stopping.clone();
        let tasks = TaskTracker::new();
        for _ in 0..shared.config.workers {
            tasks.spawn(worker::run(Arc::clone(&shared), cancel.clone()));
        }
        for index in 0..shared.registry.len() {
            let interval = shared.config.health_interval;
            tasks.spawn(probe::run(
                Arc::clone(&shared),
                index,
                interval,
                cancel.clone(),
            ));
        }
        let addr = shared.config.listen;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Bind { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| StartError::Bind { addr, source })?;
        Ok(App {
            addr,
            shared,
            listener,
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
            listener,
            cancel,
            tasks,
            ..
        } = self;
        let router = api::router(Arc::clone(&shared));
        let stop = cancel.clone();
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                tokio::select! {
                    _ = stop.cancelled() => {}
                    _ = shutdown_signal() => {}
                }
            })
            .await;
        cancel.cancel();
        tasks.close();
        tasks.wait().await;
        tracing::info!(queued = shared.queue.depth(), "stopped");
        served
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
