//! The core's side of the edge protocol ([`crate::wire`]): payments handed
//! over by `reroute edge` processes on `--edge-socket`, answered with what
//! `POST /payments` would have answered.
//!
//! One task per edge connection reads frames, accepts their payments
//! concurrently (no task per payment: the connection's task polls them all)
//! and writes each answer as it is ready, several in one write. A payment
//! the store took reaches the queue even if its edge hangs up first: the
//! task finishes every accept it began before it ends.

use std::sync::Arc;
use std::time::Duration;

use axum::response::IntoResponse;
use bytes::{Buf, BytesMut};
use futures_util::FutureExt;
use futures_util::stream::{FuturesUnordered, StreamExt};
use reroute_core::Timestamp;
use reroute_store::NewPayment;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::accepts::accept_and_queue;
use super::payments::{receipt, routable};
use crate::state::Shared;
use crate::wire::{self, Hello};

/// How long an edge may take to say hello once connected.
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);

/// Takes edge connections until `cancel`.
pub async fn serve(
    listener: UnixListener,
    shared: Arc<Shared>,
    cancel: CancellationToken,
    tasks: TaskTracker,
) {
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting an edge failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = cancel.cancelled() => return,
        };
        let shared = Arc::clone(&shared);
        let cancel = cancel.clone();
        tasks.spawn(async move {
            if let Err(e) = connection(stream, shared, cancel).await {
                tracing::warn!(error = %e, "edge connection ended");
            }
        });
    }
}

/// The answer to one payment: its tag, the HTTP status and JSON body.
type Answer = (u32, u16, bytes::Bytes);

async fn connection(
    mut stream: UnixStream,
    shared: Arc<Shared>,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    let mut hello = [0u8; 4];
    tokio::time::timeout(HELLO_TIMEOUT, stream.read_exact(&mut hello))
        .await
        .map_err(|_| std::io::Error::other("no hello within 5 s"))??;
    // Ours goes back either way: an edge of another version says which.
    let mut hello_back = wire::HELLO.to_vec();
    wire::encode_table(&mut hello_back, shared.accepts.as_ref().map(|t| t.path()));
    stream.write_all(&hello_back).await?;
    match wire::check_hello(hello) {
        Hello::Compatible => {}
        Hello::Version(v) => {
            return Err(std::io::Error::other(format!(
                "an edge speaks protocol version {v}, this core {}",
                wire::VERSION
            )));
        }
        Hello::Foreign => return Err(std::io::Error::other("not an edge: bad hello")),
    }
    let (mut reader, mut writer) = stream.into_split();
    let mut inbox = BytesMut::with_capacity(64 * 1024);
    let mut outbox = Vec::with_capacity(64 * 1024);
    let mut accepting = FuturesUnordered::new();
    let mut reading = true;
    let mut writing = true;
    let mut failure = None;
    loop {
        tokio::select! {
            // Cancel-safe: bytes read are in `inbox` whichever branch wins.
            read = reader.read_buf(&mut inbox), if reading => {
                match read {
                    Ok(0) => reading = false,
                    Ok(_) => {
                        let now = Timestamp::now();
                        loop {
                            match next_frame(&mut inbox, now) {
                                Ok(Some((tag, payment))) => {
                                    accepting.push(take(Arc::clone(&shared), tag, payment));
                                }
                                Ok(None) => break,
                                Err(e) => {
                                    failure = Some(std::io::Error::other(e));
                                    reading = false;
                                    break;
                                }
                            }
                        }
                    }
                    Err(e) => {
                        failure = Some(e);
                        reading = false;
                    }
                }
            }
            Some(answer) = accepting.next(), if !accepting.is_empty() => {
                push(&mut outbox, answer);
                // Every other answer ready now goes in the same write.
                while let Some(Some(answer)) = accepting.next().now_or_never() {
                    push(&mut outbox, answer);
                }
                if writing && let Err(e) = writer.write_all(&outbox).await {
                    // The edge is gone; the accepts still finish.
                    failure = Some(e);
                    writing = false;
                }
                outbox.clear();
            }
            _ = cancel.cancelled(), if reading => reading = false,
            else => break,
        }
    }
    failure.map_or(Ok(()), Err)
}

fn push(outbox: &mut Vec<u8>, (tag, status, body): Answer) {
    wire::encode_answer(outbox, tag, status, &body);
}

/// The next whole frame in `inbox`, if one has arrived.
fn next_frame(
    inbox: &mut BytesMut,
    now: Timestamp,
) -> Result<Option<(u32, NewPayment)>, wire::FrameError> {
    let Some(head) = inbox.first_chunk::<4>() else {
        return Ok(None);
    };
    let len = wire::check_len(u32::from_be_bytes(*head))?;
    if inbox.len() < 4 + len {
        inbox.reserve(4 + len - inbox.len());
        return Ok(None);
    }
    inbox.advance(4);
    let frame = inbox.split_to(len);
    wire::decode_payment(&frame, now).map(Some)
}

/// What `POST /payments` would answer to this payment.
async fn take(shared: Arc<Shared>, tag: u32, payment: NewPayment) -> Answer {
    let id = payment.id;
    let answered = match routable(&shared, &payment) {
        Err(e) => Err(e),
        Ok(()) => {
            let accepted = accept_and_queue(Arc::clone(&shared), payment).await;
            receipt(&shared, id, accepted)
        }
    };
    match answered {
        Ok((status, body)) => (tag, status.as_u16(), body.into()),
        Err(e) => {
            // Rare: an error's body is the JSON its HTTP answer carries
            // (whole already, so reading it does not wait).
            let response = e.into_response();
            let status = response.status().as_u16();
            let body = axum::body::to_bytes(response.into_body(), wire::MAX_FRAME as usize)
                .await
                .unwrap_or_default();
            (tag, status, body)
        }
    }
}
