//! Abuse at the transport by a request's form and by sheer connections:
//! malformed HTTP (garbage request lines, bad chunked encoding, invalid
//! header bytes) gets a 4xx or a closed connection, never a 5xx, and
//! stores nothing; 10,000 idle TCP connections do not stop the router
//! answering. Throughout, the router must keep answering well-formed
//! requests — every test interleaves them with the abuse and asserts they
//! succeed.
//!
//! Nothing here asserts on time. The latency of the well-formed requests is
//! measured and printed (`cargo test -p reroute-server --test
//! abuse_malformed_and_idle -- --nocapture` shows it), for the record only.

mod common;

use std::io::{BufRead, Write as _};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use common::abuse::*;
use common::*;
use hyper::StatusCode;
use reroute_core::CorrelationId;

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
