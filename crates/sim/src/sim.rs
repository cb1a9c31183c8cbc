//! A running simulator: every processor bound and serving.
//!
//! [`spawn`] is the one way in, for tests and for `reroute sim` alike: it
//! validates the config, binds every listener (port 0 picks a free port),
//! starts serving and returns once all of them accept connections.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::SimConfig;
use crate::http::{routes, server};
use crate::processor::Processor;

/// The simulator while it runs. Dropping it stops accepting connections too;
/// [`Sim::shutdown`] also waits for in-flight requests to finish (at most a
/// second, then they are cut).
pub struct Sim {
    processors: Vec<Running>,
    stop: watch::Sender<bool>,
    acceptors: Vec<JoinHandle<()>>,
}

struct Running {
    processor: Arc<Processor>,
    addr: SocketAddr,
}

/// Binds every processor of `config` and serves them on the current tokio
/// runtime.
pub async fn spawn(config: SimConfig) -> anyhow::Result<Sim> {
    config.validate()?;
    // Bind everything before serving anything, so a taken port leaves
    // nothing half-started.
    let mut bound = Vec::with_capacity(config.processors.len());
    for spec in &config.processors {
        let listener = TcpListener::bind((config.host, spec.port))
            .await
            .with_context(|| {
                format!(
                    "binding processor {:?} to {}:{}",
                    spec.id, config.host, spec.port
                )
            })?;
        let local = listener.local_addr().context("reading the bound address")?;
        bound.push((listener, local, spec.clone()));
    }

    let (stop, stopped) = watch::channel(false);
    let mut processors = Vec::with_capacity(bound.len());
    let mut acceptors = Vec::with_capacity(bound.len());
    for (listener, local, spec) in bound {
        let processor = Arc::new(Processor::new(spec, &config));
        acceptors.push(tokio::spawn(server::serve(
            listener,
            routes::router(processor.clone()),
            stopped.clone(),
        )));
        processors.push(Running {
            processor,
            addr: reachable(local),
        });
    }
    Ok(Sim {
        processors,
        stop,
        acceptors,
    })
}

/// A bound wildcard address is reached through loopback.
fn reachable(mut addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => addr.set_ip(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        IpAddr::V6(ip) if ip.is_unspecified() => addr.set_ip(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        _ => {}
    }
    addr
}

impl Sim {
    fn running(&self, id: &str) -> &Running {
        self.processors
            .iter()
            .find(|r| r.processor.id() == id)
            .unwrap_or_else(|| panic!("no simulated processor {id:?}; there are {:?}", self.ids()))
    }

    /// The processor's base URL, e.g. `http://127.0.0.1:8001`.
    ///
    /// # Panics
    /// If no processor has this id.
    pub fn url(&self, id: &str) -> String {
        format!("http://{}", self.addr(id))
    }

    /// The address to connect to (loopback when bound to a wildcard).
    ///
    /// # Panics
    /// If no processor has this id.
    pub fn addr(&self, id: &str) -> SocketAddr {
        self.running(id).addr
    }

    /// The processor ids, in configuration order.
    pub fn ids(&self) -> Vec<String> {
        self.processors
            .iter()
            .map(|r| r.processor.id().to_owned())
            .collect()
    }

    /// Direct access to a processor's settings, books and counters, for
    /// tests that prefer it to the admin endpoints.
    ///
    /// # Panics
    /// If no processor has this id.
    pub fn processor(&self, id: &str) -> &Processor {
        &self.running(id).processor
    }

    /// Stops accepting, lets in-flight requests finish (at most a second),
    /// and returns when every listener is closed.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for acceptor in self.acceptors {
            let _ = acceptor.await;
        }
    }
}
