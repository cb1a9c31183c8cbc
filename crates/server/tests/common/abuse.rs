//! The harness of the `abuse_*` tests, which abuse the router at the
//! transport: a router with its own embedded store (to check that nothing
//! from a refused request was stored), the well-formed requests they
//! interleave with the abuse and whose latencies they print, and raw TCP
//! exchanges for requests no HTTP client would send.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::StatusCode;
use reroute_core::CorrelationId;
use reroute_store::Store;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::*;

/// The router's default body limit (`max_body_bytes`).
pub const LIMIT: usize = 16 * 1024;

/// A guard against a server that hangs: a test fails rather than waits
/// forever. Never reached when the server behaves.
pub const GUARD: Duration = Duration::from_secs(30);

/// A router against a fresh simulator pair, with its store and a client.
pub struct Stack {
    _sims: Sims,
    _dir: tempfile::TempDir,
    pub store: Arc<dyn Store>,
    pub app: TestApp,
    pub http: Http,
}

pub async fn stack() -> Stack {
    stack_with(|_| {}).await
}

pub async fn stack_with(edit: impl FnOnce(&mut reroute_server::ServeConfig)) -> Stack {
    let sims = Sims::start().await;
    let (dir, store, app) = start_with_embedded_store(&sims, edit).await;
    Stack {
        _sims: sims,
        _dir: dir,
        store,
        app,
        http: Http::default(),
    }
}

/// Latencies of well-formed requests, for the record.
#[derive(Default)]
pub struct Latencies(pub Vec<Duration>);

impl Latencies {
    pub fn report(&mut self, what: &str) {
        self.0.sort();
        let n = self.0.len();
        if n == 0 {
            return;
        }
        let at = |q: f64| self.0[((n as f64 * q) as usize).min(n - 1)];
        eprintln!(
            "abuse: {what}: {n} well-formed requests, p50 {:?}, p99 {:?}, max {:?}",
            at(0.50),
            at(0.99),
            self.0[n - 1]
        );
    }
}

impl Stack {
    /// A well-formed request that must succeed: a new payment (202), the
    /// summary or liveness (200), in turn.
    pub async fn well_formed(&self, turn: usize, latencies: &mut Latencies) {
        let started = Instant::now();
        let status = match turn % 3 {
            0 => self.app.pay(&self.http, &new_id(), "12.34").await.0,
            1 => {
                let url = format!("{}/payments-summary", self.app.url);
                self.http.get(&url).await.0
            }
            _ => self.http.get(&format!("{}/livez", self.app.url)).await.0,
        };
        latencies.0.push(started.elapsed());
        let want = if turn.is_multiple_of(3) {
            StatusCode::ACCEPTED
        } else {
            StatusCode::OK
        };
        assert_eq!(status, want, "a well-formed request failed during abuse");
    }

    pub async fn stored(&self, id: CorrelationId) -> bool {
        stored_payments(self.store.as_ref()).await.contains_key(&id)
    }
}

/// A `POST /payments` as raw bytes, closing the connection after it.
pub fn payment_request(id: CorrelationId, path: &str) -> Vec<u8> {
    let body = format!(r#"{{"correlationId":"{id}","amount":7.77}}"#);
    format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Sends `request` on a fresh connection and reads until the server closes
/// it: the status of its answer, or `None` if it closed without one. Every
/// request here is one after which the server closes (an error, or
/// `connection: close`); with `half_close`, the client also says it will
/// send nothing more, for a request the server would otherwise wait on.
pub async fn exchange(addr: SocketAddr, request: &[u8], half_close: bool) -> Option<u16> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    // The server may close before reading it all (an error answered early).
    let _ = stream.write_all(request).await;
    if half_close {
        let _ = stream.shutdown().await;
    }
    read_answer(&mut stream).await
}

pub async fn read_answer(stream: &mut TcpStream) -> Option<u16> {
    let mut answer = Vec::new();
    let read = tokio::time::timeout(GUARD, stream.read_to_end(&mut answer))
        .await
        .expect("the server neither answered nor closed");
    // A reset after the answer is fine: the answer was read.
    if read.is_err() && answer.is_empty() {
        return None;
    }
    status_of(&answer)
}

pub fn status_of(answer: &[u8]) -> Option<u16> {
    let text = String::from_utf8_lossy(answer);
    let line = text.lines().next()?;
    let mut parts = line.split(' ');
    assert_eq!(parts.next(), Some("HTTP/1.1"), "not an HTTP answer: {text}");
    Some(parts.next()?.parse().unwrap())
}
