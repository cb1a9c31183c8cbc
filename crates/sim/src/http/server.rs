//! Accepting connections and serving HTTP/1.1 on them.
//!
//! One task accepts per listener; each connection gets a task of its own that
//! runs hyper and watches two signals: shutdown (finish what is in flight,
//! then close) and a deliberate reset requested by a handler (drop the
//! connection at once, with a TCP RST and no response: the injected
//! "connection reset after reading the request").

use std::convert::Infallible;
use std::io;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

use super::routes;
use crate::processor::Processor;

/// How long connections get to finish in-flight requests at shutdown before
/// they are cut (a hanging request would otherwise never finish).
const GRACE: Duration = Duration::from_secs(1);

/// Per-connection controls a handler can reach.
#[derive(Default)]
pub struct Connection {
    reset: AtomicBool,
    reset_requested: Notify,
}

impl Connection {
    /// Drops this connection with a TCP reset and no response.
    pub fn reset(&self) {
        self.reset.store(true, Ordering::Release);
        self.reset_requested.notify_one();
    }

    fn is_reset(&self) -> bool {
        self.reset.load(Ordering::Acquire)
    }
}

/// Accepts connections until `shutdown` turns true (or its sender goes away),
/// then lets open connections drain for [`GRACE`] and cuts the rest.
pub async fn serve(
    listener: TcpListener,
    processor: Arc<Processor>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    let for_connections = shutdown.clone();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(serve_connection(stream, processor.clone(), for_connections.clone()));
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait a moment
                    // rather than spin.
                    tracing::warn!(processor = processor.id(), error = %e, "accept failed");
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

async fn serve_connection(
    stream: TcpStream,
    processor: Arc<Processor>,
    mut shutdown: watch::Receiver<bool>,
) {
    // Small answers must not wait for Nagle.
    let _ = stream.set_nodelay(true);
    let connection = Arc::new(Connection::default());
    let io = TokioIo::new(ResettableStream {
        stream,
        connection: connection.clone(),
    });
    let service = {
        let connection = connection.clone();
        service_fn(move |request| {
            let reply = routes::handle(processor.clone(), connection.clone(), request);
            async move { Ok::<_, Infallible>(reply.await) }
        })
    };
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
            _ = connection.reset_requested.notified() => return,
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

/// A TCP stream that closes with a reset (linger 0) when its connection was
/// marked for reset, and normally otherwise.
struct ResettableStream {
    stream: TcpStream,
    connection: Arc<Connection>,
}

impl Drop for ResettableStream {
    fn drop(&mut self) {
        if self.connection.is_reset() {
            let _ = self.stream.set_zero_linger();
        }
    }
}

impl AsyncRead for ResettableStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for ResettableStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
