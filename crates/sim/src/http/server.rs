//! Accepting connections and serving a processor's [`axum::Router`] on them
//! over HTTP/1.1 (hyper), with keep-alive.
//!
//! Nothing here knows the routes ([`super::routes`] builds them). One task
//! accepts per listener; each connection gets a task of its own that runs
//! hyper and watches two signals: shutdown (finish what is in flight, then
//! close) and a deliberate reset requested by a handler through the
//! connection's [`Connection`] (drop the connection at once, with a TCP RST
//! and no response). hyper answers malformed requests (400) and handles
//! `Connection: close` and keep-alive itself.

use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tower::Layer as _;

use super::connection::{Connection, ResettableStream};

/// How long connections get to finish in-flight requests at shutdown before
/// they are cut (a hanging request would otherwise never finish).
const GRACE: Duration = Duration::from_secs(1);

/// Accepts connections until `shutdown` turns true (or its sender goes away),
/// then lets open connections drain for [`GRACE`] and cuts the rest.
pub async fn serve(listener: TcpListener, router: Router, mut shutdown: watch::Receiver<bool>) {
    let mut connections = JoinSet::new();
    let for_connections = shutdown.clone();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(serve_connection(stream, router.clone(), for_connections.clone()));
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait a moment
                    // rather than spin.
                    let addr = listener.local_addr().ok();
                    tracing::warn!(?addr, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = stopping(&mut shutdown) => break,
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        connections.shutdown().await;
    }
}

async fn serve_connection(stream: TcpStream, router: Router, mut shutdown: watch::Receiver<bool>) {
    // Small answers must not wait for Nagle.
    let _ = stream.set_nodelay(true);
    let connection = Arc::new(Connection::default());
    let io = TokioIo::new(ResettableStream::new(stream, connection.clone()));
    let service = TowerToHyperService::new(axum::Extension(connection.clone()).layer(router));
    let mut conn = pin!(http1::Builder::new().serve_connection(io, service));
    let mut draining = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            // Dropping the connection drops the stream, which resets it.
            () = connection.reset_requested() => return,
            _ = stopping(&mut shutdown), if !draining => {
                draining = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// Resolves once shutdown is asked for, or its sender is gone.
async fn stopping(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}
