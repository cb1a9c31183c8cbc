//! Abuse at the transport by a request's size and pace: oversized bodies,
//! slowloris clients (headers or body trickled a byte at a time, a body
//! slower than the read timeout), and clients that hang up right after a
//! payment. Throughout, the router must keep answering well-formed
//! requests — every test interleaves them with the abuse and asserts they
//! succeed — and store nothing from a refused request.
//!
//! Nothing here asserts on time. The latency of the well-formed requests is
//! measured and printed (`cargo test -p reroute-server --test
//! abuse_slow_and_oversized -- --nocapture` shows it), for the record only.

mod common;

use std::time::Duration;

use common::abuse::*;
use common::*;
use hyper::StatusCode;
use reroute_core::CorrelationId;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

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
