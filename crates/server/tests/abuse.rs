//! Abuse at the transport: oversized bodies, slowloris clients (headers or
//! body trickled a byte at a time), 10,000 idle TCP connections, and
//! malformed HTTP (garbage request lines, bad chunked encoding, invalid
//! header bytes). Throughout, the router must keep answering well-formed
//! requests — every test interleaves them with the abuse and asserts they
//! succeed — and store nothing from a refused request.
//!
//! Nothing here asserts on time. The latency of the well-formed requests is
//! measured and printed (`cargo test -p reroute-server --test abuse --
//! --nocapture` shows it), for the record only.

mod common;

use std::io::{BufRead, Write as _};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use hyper::StatusCode;
use reroute_core::CorrelationId;
use reroute_store::Store;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The router's default body limit (`max_body_bytes`).
const LIMIT: usize = 16 * 1024;

/// A guard against a server that hangs: a test fails rather than waits
/// forever. Never reached when the server behaves.
const GUARD: Duration = Duration::from_secs(30);

struct Stack {
    _sims: Sims,
    _dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    app: TestApp,
    http: Http,
}

async fn stack() -> Stack {
    stack_with(|_| {}).await
}

async fn stack_with(edit: impl FnOnce(&mut reroute_server::ServeConfig)) -> Stack {
    let sims = Sims::start().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("r.db");
    let store: Arc<dyn Store> = Arc::new(reroute_store::SqliteStore::open(&db).unwrap());
    let mut config = config(&sims, &db, &[]);
    edit(&mut config);
    let app = TestApp::start_with_store(config, Arc::clone(&store)).await;
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
struct Latencies(Vec<Duration>);

impl Latencies {
    fn report(&mut self, what: &str) {
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
    async fn well_formed(&self, turn: usize, latencies: &mut Latencies) {
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

    async fn stored(&self, id: CorrelationId) -> bool {
        stored_payments(self.store.as_ref()).await.contains_key(&id)
    }
}

/// A `POST /payments` as raw bytes, closing the connection after it.
fn payment_request(id: CorrelationId, path: &str) -> Vec<u8> {
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
async fn exchange(addr: SocketAddr, request: &[u8], half_close: bool) -> Option<u16> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    // The server may close before reading it all (an error answered early).
    let _ = stream.write_all(request).await;
    if half_close {
        let _ = stream.shutdown().await;
    }
    read_answer(&mut stream).await
}

async fn read_answer(stream: &mut TcpStream) -> Option<u16> {
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

fn status_of(answer: &[u8]) -> Option<u16> {
    let text = String::from_utf8_lossy(answer);
    let line = text.lines().next()?;
    let mut parts = line.split(' ');
    assert_eq!(parts.next(), Some("HTTP/1.1"), "not an HTTP answer: {text}");
    Some(parts.next()?.parse().unwrap())
}

// ------------------------------------------------------------------ bodies

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_body_is_a_413_and_nothing_is_stored() {
    let s = stack().await;
    let mut latencies = Latencies::default();
    let addr = s.app.addr;
    let padded = |id: CorrelationId, total: usize| {
        let head = format!(r#"{{"correlationId":"{id}","amount":1,"pad":""#);
        let pad = total - head.len() - 2;
        format!("{head}{}\"}}", "x".repeat(pad))
    };
    // At the limit exactly: accepted. One byte more: refused, not stored.
    let (at_limit, over) = (CorrelationId::new_random(), CorrelationId::new_random());
    let url = format!("{}/payments", s.app.url);
    let (status, _) = s.http.post_json(&url, &padded(at_limit, LIMIT)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, v) = s.http.post_json(&url, &padded(over, LIMIT + 1)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert!(v["error"].is_string());
    s.well_formed(0, &mut latencies).await;

    // Declared huge, sent in part; chunked past the limit; on every
    // endpoint that reads a body.
    let mut refused = vec![over];
    for path in [
        "/payments",
        "/api/v1/transactions",
        "/api/v1/routing/recommend",
    ] {
        let id = CorrelationId::new_random();
        refused.push(id);
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n\
             content-length: 104857600\r\n\r\n{{\"correlationId\":\"{id}\",\"amount\":1,\"pad\":\""
        );
        let mut request = head.into_bytes();
        request.extend(std::iter::repeat_n(b'x', 4 * LIMIT));
        assert_eq!(
            exchange(addr, &request, false).await,
            Some(413),
            "{path}, declared"
        );
        s.well_formed(1, &mut latencies).await;

        let id = CorrelationId::new_random();
        refused.push(id);
        let mut request = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n\
             transfer-encoding: chunked\r\n\r\n"
        )
        .into_bytes();
        let body = padded(id, 3 * LIMIT);
        for chunk in body.as_bytes().chunks(1000) {
            request.extend(format!("{:x}\r\n", chunk.len()).bytes());
            request.extend(chunk);
            request.extend(b"\r\n");
        }
        request.extend(b"0\r\n\r\n");
        assert_eq!(
            exchange(addr, &request, false).await,
            Some(413),
            "{path}, chunked"
        );
        s.well_formed(2, &mut latencies).await;
    }
    assert!(s.stored(at_limit).await);
    for id in refused {
        assert!(
            !s.stored(id).await,
            "{id} was stored from an oversized body"
        );
    }
    latencies.report("oversized bodies");
    s.app.stop().await;
}

// ------------------------------------------------------------------ slowloris

/// Trickles every request a byte at a time, one byte per connection per
/// round, with a well-formed request between rounds: the server sees each
/// byte alone, and must answer others meanwhile. `cut` requests stop half
/// way and hang up. The complete ones must be answered 202 and stored; the
/// cut ones must leave nothing.
async fn trickle(s: &Stack, requests: Vec<(CorrelationId, Vec<u8>, usize, bool)>, what: &str) {
    let mut latencies = Latencies::default();
    let mut conns = Vec::new();
    for (id, request, start, cut) in requests {
        let mut stream = TcpStream::connect(s.app.addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        // Whatever comes before `start` goes at once (headers, for a body
        // trickle).
        stream.write_all(&request[..start]).await.unwrap();
        let end = if cut {
            start + (request.len() - start) / 2
        } else {
            request.len()
        };
        conns.push((id, stream, request, start, end));
    }
    let rounds = conns.iter().map(|c| c.4 - c.3).max().unwrap_or(0);
    for round in 0..rounds {
        for (_, stream, request, start, end) in &mut conns {
            let at = *start + round;
            if at < *end {
                stream.write_all(&request[at..at + 1]).await.unwrap();
            }
        }
        s.well_formed(round, &mut latencies).await;
    }
    for (id, mut stream, request, _, end) in conns {
        if end < request.len() {
            drop(stream);
            // Hung up half way: nothing stored, now or once the server
            // notices.
            assert!(!s.stored(id).await, "{id} stored from a broken-off request");
        } else {
            assert_eq!(read_answer(&mut stream).await, Some(202), "{what}: {id}");
            assert!(s.stored(id).await, "{id} answered 202 but not stored");
        }
    }
    latencies.report(what);
}

/// A body that does not arrive whole within the body read timeout is a 408
/// and the connection is closed, whether the client stalls or keeps
/// trickling (the deadline is for the whole body, not between bytes);
/// nothing is stored and others are served meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_slower_than_the_read_timeout_is_a_408_and_the_connection_closes() {
    let s = stack_with(|c| c.body_read_timeout = Duration::from_millis(300)).await;
    let mut latencies = Latencies::default();
    let stalled_id = CorrelationId::new_random();
    let stalled_request = payment_request(stalled_id, "/payments");
    let body_at = stalled_request
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap()
        + 4;
    let mut stalled = TcpStream::connect(s.app.addr).await.unwrap();
    stalled
        .write_all(&stalled_request[..body_at + 10])
        .await
        .unwrap();
    // The trickler sends a byte every 50 ms: never idle, never done in time.
    let trickled_id = CorrelationId::new_random();
    let trickled_request = payment_request(trickled_id, "/payments");
    let mut trickled = TcpStream::connect(s.app.addr).await.unwrap();
    trickled.set_nodelay(true).unwrap();
    trickled
        .write_all(&trickled_request[..body_at])
        .await
        .unwrap();
    let mut answer = [0u8; 1024];
    let mut got = Vec::new();
    let mut at = body_at;
    let mut turn = 0;
    let closed = tokio::time::timeout(GUARD, async {
        loop {
            s.well_formed(turn, &mut latencies).await;
            turn += 1;
            if at < trickled_request.len() - 1 {
                // Never the last byte: the body cannot complete.
                if trickled
                    .write_all(&trickled_request[at..at + 1])
                    .await
                    .is_err()
                {
                    break;
                }
                at += 1;
            }
            tokio::select! {
                read = trickled.read(&mut answer) => match read {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&answer[..n]),
                },
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the trickling client was never cut off");
    assert_eq!(
        status_of(&got),
        Some(408),
        "{}",
        String::from_utf8_lossy(&got)
    );
    assert!(
        String::from_utf8_lossy(&got)
            .to_ascii_lowercase()
            .contains("connection: close"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    assert_eq!(read_answer(&mut stalled).await, Some(408), "stalled body");
    assert!(!s.stored(stalled_id).await);
    assert!(!s.stored(trickled_id).await);
    // Still serving.
    for turn in 0..3 {
        s.well_formed(turn, &mut latencies).await;
    }
    latencies.report("bodies slower than the read timeout");
    s.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_headers_trickled_byte_by_byte_are_parsed_and_others_are_served_meanwhile() {
    let s = stack().await;
    let requests = (0..24)
        .map(|i| {
            let id = CorrelationId::new_random();
            (id, payment_request(id, "/payments"), 0, i % 4 == 3)
        })
        .collect();
    trickle(&s, requests, "slowloris, headers trickled").await;
    // Those that broke off left nothing once the server gave up on them.
    s.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_bodies_trickled_byte_by_byte_are_read_whole_and_others_are_served_meanwhile() {
    let s = stack().await;
    let requests = (0..24)
        .map(|i| {
            let id = CorrelationId::new_random();
            let request = payment_request(id, "/payments");
            let body_at = request.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
            (id, request, body_at, i % 4 == 3)
        })
        .collect();
    trickle(&s, requests, "slowloris, bodies trickled").await;
    s.app.stop().await;
}

// ------------------------------------------------------------------ hang-ups

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_stored_for_a_client_that_hung_up_is_still_processed() {
    // A client that sends a whole payment and hangs up at once never hears
    // whether it was accepted; if it was stored, it must still be paid
    // (and so end in the ledger), like any other accepted payment.
    let s = stack().await;
    let mut ids = Vec::new();
    for i in 0..60 {
        let id = CorrelationId::new_random();
        ids.push(id);
        let mut stream = TcpStream::connect(s.app.addr).await.unwrap();
        stream
            .write_all(&payment_request(id, "/payments"))
            .await
            .unwrap();
        if i % 2 == 0 {
            // Half-close: "nothing more from me".
            stream.shutdown().await.unwrap();
        }
        drop(stream);
    }
    // Each one is either stored or not; none stored may stay pending.
    eventually("every stored payment processed", GUARD, || async {
        let pending = s.store.pending().await.unwrap();
        pending.is_empty().then_some(())
    })
    .await;
    let ledger: Vec<CorrelationId> = s
        .store
        .ledger()
        .await
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    let processed = ids.iter().filter(|id| ledger.contains(id)).count();
    eprintln!(
        "abuse: hung-up clients: {processed} of {} payments stored and processed",
        ids.len()
    );
    s.well_formed(0, &mut Latencies::default()).await;
    s.app.stop().await;
}

// ------------------------------------------------------------------ malformed

/// What a malformed request must get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Exactly this status (the router's own answer).
    Status(u16),
    /// Some 4xx (hyper's answer to what it cannot parse).
    ClientError,
    /// Some 4xx, or a close without an answer (a request cut short).
    ClientErrorOrClosed,
    /// Both `transfer-encoding: chunked` and `content-length`: RFC 9112
    /// (6.1) lets a server read the body as chunked and close after; hyper
    /// does, so this one is a valid payment.
    AcceptedThenClosed,
}

/// Requests that break HTTP/1.1, each carrying the payment `id`, which must
/// not be stored (but for [`Expect::AcceptedThenClosed`]).
fn malformed(id: CorrelationId) -> Vec<(&'static str, Vec<u8>, Expect)> {
    use Expect::*;
    let body = format!(r#"{{"correlationId":"{id}","amount":1}}"#);
    let post = |headers: &str, rest: &[u8]| -> Vec<u8> {
        let mut r = format!(
            "POST /payments HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n{headers}\r\n"
        )
        .into_bytes();
        r.extend(rest);
        r
    };
    let chunked = |chunks: &[u8]| post("transfer-encoding: chunked\r\n", chunks);
    let n = body.len();
    let sized = |headers: &str| {
        post(
            &format!("{headers}content-length: {n}\r\n"),
            body.as_bytes(),
        )
    };
    vec![
        (
            "garbage request line",
            b"GARBAGE\r\n\r\n".to_vec(),
            ClientError,
        ),
        (
            "no version",
            b"POST /payments\r\n\r\n".to_vec(),
            ClientError,
        ),
        (
            "unknown version",
            format!("POST /payments HTTP/7.0\r\n\r\n{body}").into_bytes(),
            ClientError,
        ),
        (
            "binary junk",
            (0u8..=255).rev().cycle().take(600).collect(),
            ClientError,
        ),
        (
            "a TLS hello",
            vec![
                0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
            ],
            ClientError,
        ),
        (
            "a huge request line",
            format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(600_000)).into_bytes(),
            ClientError,
        ),
        (
            "too many headers",
            format!(
                "GET /livez HTTP/1.1\r\nHost: x\r\n{}\r\n",
                "x-a: b\r\n".repeat(200)
            )
            .into_bytes(),
            ClientError,
        ),
        (
            "space in a header name",
            sized("bad header: x\r\n"),
            ClientError,
        ),
        ("NUL in a header value", sized("x-a: a\0b\r\n"), ClientError),
        (
            "bare CR in a header value",
            sized("x-a: a\rb\r\n"),
            ClientError,
        ),
        ("folded header", sized("x-a: a\r\n  b\r\n"), ClientError),
        (
            "non-numeric content-length",
            post("content-length: abc\r\n", body.as_bytes()),
            ClientError,
        ),
        (
            "negative content-length",
            post("content-length: -1\r\n", body.as_bytes()),
            ClientError,
        ),
        (
            "two content-lengths",
            post(
                &format!("content-length: {n}\r\ncontent-length: {}\r\n", n + 1),
                body.as_bytes(),
            ),
            ClientError,
        ),
        (
            "an unknown transfer-encoding",
            post(
                "transfer-encoding: gzip, chunked, x\r\n",
                format!("{n:x}\r\n{body}\r\n0\r\n\r\n").as_bytes(),
            ),
            ClientError,
        ),
        (
            "a chunk size that is not hex",
            chunked(format!("zz\r\n{body}\r\n0\r\n\r\n").as_bytes()),
            Status(400),
        ),
        (
            "a chunk size that overflows",
            chunked(format!("fffffffffffffffffff\r\n{body}\r\n0\r\n\r\n").as_bytes()),
            Status(400),
        ),
        (
            "a chunk longer than its size",
            chunked(format!("4\r\n{body}\r\n0\r\n\r\n").as_bytes()),
            Status(400),
        ),
        (
            "a chunk without its CRLF",
            chunked(format!("{n:x}\r\n{body}XX0\r\n\r\n").as_bytes()),
            Status(400),
        ),
        (
            "a body shorter than its length",
            post(&format!("content-length: {}\r\n", n + 50), body.as_bytes()),
            ClientErrorOrClosed,
        ),
        (
            "chunked and content-length",
            post(
                &format!("transfer-encoding: chunked\r\ncontent-length: {n}\r\n"),
                format!("{n:x}\r\n{body}\r\n0\r\n\r\n").as_bytes(),
            ),
            AcceptedThenClosed,
        ),
    ]
}

/// Sends one malformed request and checks its answer.
async fn malformed_exchange(
    addr: SocketAddr,
    what: &str,
    request: &[u8],
    expect: Expect,
) -> Option<u16> {
    let status = exchange(addr, request, expect == Expect::ClientErrorOrClosed).await;
    let client_error = status.is_some_and(|s| (400..500).contains(&s));
    match expect {
        Expect::Status(want) => assert_eq!(status, Some(want), "{what}"),
        Expect::ClientError => assert!(client_error, "{what}: answered {status:?}"),
        Expect::ClientErrorOrClosed => {
            assert!(
                client_error || status.is_none(),
                "{what}: answered {status:?}"
            )
        }
        Expect::AcceptedThenClosed => assert_eq!(status, Some(202), "{what}"),
    }
    status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_http_gets_a_4xx_or_a_closed_connection_never_a_5xx_and_stores_nothing() {
    let s = stack().await;
    let mut latencies = Latencies::default();
    let mut turn = 0;
    let mut answers = Vec::new();
    for _ in 0..3 {
        let id = CorrelationId::new_random();
        for (what, request, expect) in malformed(id) {
            let status = malformed_exchange(s.app.addr, what, &request, expect).await;
            answers.push((what, status));
            s.well_formed(turn, &mut latencies).await;
            turn += 1;
        }
        // Stored only through the one valid reading of them all.
        let (_, _, last) = malformed(id).pop().unwrap();
        assert_eq!(last, Expect::AcceptedThenClosed);
        assert!(
            s.stored(id).await,
            "{id}: the chunked payment was not stored"
        );
        let (status, v) = s.app.pay(&s.http, &id.to_string(), "1").await;
        assert_eq!(status, StatusCode::OK, "{v}: stored once, from one request");
    }
    answers.sort();
    answers.dedup();
    eprintln!("abuse: malformed answers: {answers:?}");
    latencies.report("malformed HTTP");
    s.app.stop().await;
}

// ------------------------------------------------------------------ idle connections

const HOLD_ENV: &str = "REROUTE_ABUSE_HOLD";
const IDLE: usize = 10_000;
/// File descriptors kept free for everything but the held connections.
const RESERVE: u64 = 512;
/// Connections opened per step. The router listens with a backlog of 128
/// (tokio's default): a faster burst overflows it, and the kernel drops
/// SYNs that then wait a second to be sent again.
const STEP: usize = 100;

/// Raises this process's open-file soft limit to its hard limit; the limit
/// then in force.
fn raise_open_file_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain system calls on a local struct.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    limit.rlim_cur
}

/// Connections waiting in the backlog of the listener on `port`, not yet
/// accepted (the listener's receive queue in `/proc/net/tcp`).
fn backlog(port: u16) -> usize {
    let tcp = std::fs::read_to_string("/proc/self/net/tcp").unwrap();
    tcp.lines()
        .skip(1)
        .find_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let local_port = u16::from_str_radix(f.get(1)?.rsplit(':').next()?, 16).ok()?;
            // 0A: listening; the field after the state is tx_queue:rx_queue.
            (local_port == port && f.get(3) == Some(&"0A")).then(|| {
                let rx = f[4].rsplit(':').next().unwrap();
                usize::from_str_radix(rx, 16).unwrap()
            })
        })
        .expect("the router's listener is in /proc/net/tcp")
}

/// Connections the router on `port` has accepted: sockets of this process
/// (so accepted, not waiting in the backlog) that are established with
/// `port` as their local end. Other tests' sockets in this process do not
/// count.
fn accepted_connections(port: u16) -> usize {
    let tcp = std::fs::read_to_string("/proc/self/net/tcp").unwrap();
    let inodes: std::collections::HashSet<&str> = tcp
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let local_port = u16::from_str_radix(f.get(1)?.rsplit(':').next()?, 16).ok()?;
            // 01: established.
            (local_port == port && f.get(3) == Some(&"01")).then(|| *f.get(9).unwrap())
        })
        .collect();
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| {
            let target = target.to_string_lossy();
            target
                .strip_prefix("socket:[")
                .and_then(|t| t.strip_suffix(']'))
                .is_some_and(|inode| inodes.contains(inode))
        })
        .count()
}

/// The other end of the idle connections, in a child process (a second
/// run of this test binary), so that the client sockets do not count
/// against the router's file limit. Reads `connect N` lines, opens N more
/// connections for each and answers `held TOTAL`; lets them all go at the
/// end of its input. Does nothing when run directly.
#[test]
#[ignore = "a helper: run by ten_thousand_idle_connections_do_not_stop_the_router_answering"]
fn idle_connection_holder() {
    let Ok(addr) = std::env::var(HOLD_ENV) else {
        return;
    };
    let addr: SocketAddr = addr.parse().unwrap();
    let limit = raise_open_file_limit();
    let mut held = Vec::new();
    for line in std::io::stdin().lock().lines() {
        let line = line.unwrap();
        let n: usize = line.strip_prefix("connect ").unwrap().parse().unwrap();
        for _ in 0..n {
            match std::net::TcpStream::connect(addr) {
                Ok(stream) => held.push(stream),
                Err(e) => {
                    eprintln!(
                        "connect failed after {} (open-file limit {limit}): {e}",
                        held.len()
                    );
                    break;
                }
            }
        }
        // On a line of its own: libtest has written "test ... " before it.
        println!("\nheld {}", held.len());
        std::io::stdout().flush().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_idle_connections_do_not_stop_the_router_answering() {
    let limit = raise_open_file_limit();
    let idle = std::env::var("REROUTE_ABUSE_IDLE")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(IDLE);
    let target = idle.min(limit.saturating_sub(RESERVE) as usize);
    if target < idle {
        eprintln!("abuse: open-file limit {limit}: holding {target} idle connections, not {idle}");
    }
    let s = stack().await;
    let mut latencies = Latencies::default();
    for turn in 0..60 {
        s.well_formed(turn, &mut latencies).await;
    }
    latencies.report("baseline, no idle connections");
    let port = s.app.addr.port();

    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "idle_connection_holder",
            "--exact",
            "--ignored",
            "--nocapture",
        ])
        .args(["--test-threads", "1"])
        .env(HOLD_ENV, s.app.addr.to_string())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut to_child = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    // Every `held` report, in order; the rest of the output is drained.
    let (report, reports) = std::sync::mpsc::channel::<usize>();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(n) = line.strip_prefix("held ") {
                let _ = report.send(n.parse().unwrap());
            }
        }
    });
    let reports = Arc::new(std::sync::Mutex::new(reports));
    let started = Instant::now();
    let mut held = 0;
    while held < target {
        let n = STEP.min(target - held);
        writeln!(to_child, "connect {n}").unwrap();
        to_child.flush().unwrap();
        let reports = Arc::clone(&reports);
        let now = tokio::task::spawn_blocking(move || reports.lock().unwrap().recv().unwrap())
            .await
            .unwrap();
        assert_eq!(now, held + n, "the holder could not open every connection");
        held = now;
        // The router has taken them all off its backlog before the next.
        eventually("the router accepted every connection", GUARD, || async {
            (backlog(port) == 0).then_some(())
        })
        .await;
    }
    // Its side of each is a socket of this process (with a few pooled ones
    // of `s.http`).
    assert!(accepted_connections(port) >= held);
    eprintln!(
        "abuse: {held} idle connections open and accepted in {:?} (open-file limit {limit} in each process)",
        started.elapsed()
    );

    let mut latencies = Latencies::default();
    for turn in 0..300 {
        s.well_formed(turn, &mut latencies).await;
    }
    latencies.report(&format!("with {held} idle connections"));

    // And with abuse on top: malformed requests and oversized bodies.
    let mut latencies = Latencies::default();
    let abuse = {
        let addr = s.app.addr;
        tokio::spawn(async move {
            for _ in 0..10 {
                for (what, request, expect) in malformed(CorrelationId::new_random()) {
                    malformed_exchange(addr, what, &request, expect).await;
                }
            }
        })
    };
    let mut turn = 0;
    while !abuse.is_finished() {
        s.well_formed(turn, &mut latencies).await;
        turn += 1;
    }
    abuse.await.unwrap();
    latencies.report(&format!(
        "with {held} idle connections and malformed requests"
    ));
    // Still held: the abuse did not knock the idle ones off either.
    assert!(accepted_connections(port) >= held);

    // The holder hangs up: the router lets go of every connection.
    drop(to_child);
    assert!(child.wait().unwrap().success());
    reader.join().unwrap();
    eventually("the router closed the idle connections", GUARD, || async {
        (accepted_connections(port) < STEP).then_some(())
    })
    .await;
    s.well_formed(0, &mut Latencies::default()).await;
    s.app.stop().await;
}
