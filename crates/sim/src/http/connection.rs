//! One client connection's controls: the injected "connection reset after
//! reading the request".
//!
//! The accept loop ([`super::server`]) gives every connection a
//! [`Connection`], reachable by handlers as an axum `Extension`, and wraps
//! its socket in a [`ResettableStream`]. A handler that decides on a reset
//! calls [`Connection::reset`]; the accept loop then drops the connection at
//! once, and the stream closes with a TCP RST and no response.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;

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

    /// Resolves once a handler has asked for a reset.
    pub async fn reset_requested(&self) {
        self.reset_requested.notified().await;
    }

    fn is_reset(&self) -> bool {
        self.reset.load(Ordering::Acquire)
    }
}

/// A TCP stream that closes with a reset (linger 0) when its connection was
/// marked for reset, and normally otherwise.
pub struct ResettableStream {
    stream: TcpStream,
    connection: Arc<Connection>,
}

impl ResettableStream {
    pub fn new(stream: TcpStream, connection: Arc<Connection>) -> Self {
        Self { stream, connection }
    }
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
