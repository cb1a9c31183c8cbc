//! Where requests come in: the HTTP/1.1 accept loop that `reroute serve` and
//! `reroute edge` share, on a TCP port, a unix socket, or both.
//!
//! Nothing here knows the routes: it takes an [`axum::Router`] and serves it
//! with keep-alive, `TCP_NODELAY`, a header read timeout and a graceful
//! drain on stop.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio_util::sync::CancellationToken;
use tower::Layer as _;

/// How long a client may take to send a request's headers — hyper also
/// applies it to an idle keep-alive connection waiting for its next request.
/// A slow client (slowloris) cannot hold a connection without sending for
/// longer; it must exceed the gaps of well-behaved clients that reuse
/// connections (the Rinha auditor asks every 10 s: a 10 s limit closed its
/// connection just as it was reused, and the audit failed).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(60);
/// How long in-flight requests may take to finish once the app stops.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections waiting to be accepted. Tokio's default (128) drops the
/// connection attempts of a burst beyond it, and their clients retry a
/// second later: 10,000 connections opened at once took ~50 s to be
/// accepted, 0.9 s with this backlog (crates/server/tests/abuse_malformed_and_idle.rs).
const BACKLOG: u32 = 4096;

/// The sockets one process serves HTTP on.
#[derive(Default)]
pub struct Listeners {
    pub tcp: Option<TcpListener>,
    pub unix: Option<UnixListener>,
}

/// Listens on a TCP address, `SO_REUSEADDR` set: a restart finds the port
/// free even with connections of the previous run in TIME_WAIT.
pub fn tcp(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// Listens on a unix socket at `path`, replacing a socket file left by a
/// previous run (a process killed with `kill -9` leaves it) — but not one a
/// live process still listens on (`AddrInUse`). Anything else at that path
/// is an error, not something to delete. The socket is open to every user of
/// the machine (mode 0666), as a TCP port on loopback would be: nginx usually
/// runs as another user; restrict access with the directory.
pub fn unix(path: &Path) -> std::io::Result<UnixListener> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AddrInUse,
                    format!(
                        "{} is in use: another process listens on it",
                        path.display()
                    ),
                ));
            }
            std::fs::remove_file(path)?
        }
        Ok(_) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                format!("{} exists and is not a socket", path.display()),
            ));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))?;
    Ok(listener)
}

/// The address a request's connection came from, for whoever needs the
/// client (the rate limit): `None` on a unix socket, whose peer is a local
/// proxy that names the client in `X-Forwarded-For` if anything.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub Option<SocketAddr>);

/// Removes a unix socket file when dropped: a stopped process leaves no
/// socket behind that a client could mistake for a live one.
pub struct SocketFile(pub PathBuf);

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Serves `router` on `listeners` until Ctrl-C, SIGTERM or `cancel`; then
/// stops accepting, cancels `cancel` (so that the caller's tasks stop) and
/// lets in-flight requests finish within the drain timeout.
pub async fn serve(
    listeners: Listeners,
    router: axum::Router,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(true);
    let graceful = GracefulShutdown::new();
    let signal = shutdown_signal();
    tokio::pin!(signal);
    let Listeners { tcp, unix } = listeners;
    loop {
        tokio::select! {
            accepted = accept_tcp(tcp.as_ref()) => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    spawn(&http, &graceful, &router, stream, Some(peer));
                }
                Err(e) => backoff(e).await,
            },
            accepted = accept_unix(unix.as_ref()) => match accepted {
                Ok(stream) => spawn(&http, &graceful, &router, stream, None),
                Err(e) => backoff(e).await,
            },
            _ = cancel.cancelled() => break,
            _ = &mut signal => break,
        }
    }
    drop((tcp, unix));
    // The caller's tasks (workers, live feeds) stop now; requests in flight
    // finish.
    cancel.cancel();
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("some connections did not finish within the drain timeout");
    }
    Ok(())
}

async fn accept_tcp(
    listener: Option<&TcpListener>,
) -> std::io::Result<(tokio::net::TcpStream, SocketAddr)> {
    match listener {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

async fn accept_unix(listener: Option<&UnixListener>) -> std::io::Result<tokio::net::UnixStream> {
    match listener {
        Some(l) => l.accept().await.map(|(stream, _)| stream),
        None => std::future::pending().await,
    }
}

/// Out of file descriptors or similar: back off, keep serving.
async fn backoff(e: std::io::Error) {
    tracing::warn!(error = %e, "accept failed");
    tokio::time::sleep(Duration::from_millis(50)).await;
}

fn spawn<I>(
    http: &hyper::server::conn::http1::Builder,
    graceful: &GracefulShutdown,
    router: &axum::Router,
    stream: I,
    peer: Option<SocketAddr>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = TowerToHyperService::new(axum::Extension(Peer(peer)).layer(router.clone()));
    let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
    tokio::spawn(async move {
        let _ = connection.await;
    });
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_live_socket_is_not_taken_over_and_a_stale_one_is() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("edge.sock");
        let first = unix(&path).unwrap();
        // Someone listens there: a second process must not steal the path.
        let err = unix(&path).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse, "{err}");
        assert!(err.to_string().contains("edge.sock"), "{err}");
        // Its process died (the file stays, nobody listens): taken over.
        drop(first);
        assert!(path.exists());
        let _second = unix(&path).expect("a stale socket file is replaced");
        // Anything else at the path is left alone.
        let other = dir.path().join("not-a-socket");
        std::fs::write(&other, b"data").unwrap();
        assert_eq!(
            unix(&other).unwrap_err().kind(),
            std::io::ErrorKind::AlreadyExists
        );
        assert_eq!(std::fs::read(&other).unwrap(), b"data");
    }
}
