//! An edge's link to the core: one unix stream connection carrying every
//! payment the edge takes ([`crate::wire`]), reopened when it breaks.
//!
//! A writer task sends the frames queued since its last write in one write; a
//! reader task hands each answer to the request waiting for its tag. When the
//! connection breaks, every request still waiting is told its outcome is
//! unknown (its frame may have reached the core), and the next payment
//! opens a new connection.

use std::collections::HashMap;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use reroute_store::NewPayment;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, oneshot};

use crate::wire::{self, Hello};

/// How long connecting to the core (and its hello) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Why the core gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// Nothing was sent: the payment was not stored.
    #[error("the core at {path} is unreachable: {reason}")]
    Unreachable { path: String, reason: String },
    /// The payment was sent and no answer came: it may have been stored.
    #[error("the core did not answer: {0}")]
    NoAnswer(String),
}

/// The link to one core; cheap to share.
pub struct CoreLink {
    path: PathBuf,
    timeout: Duration,
    /// The open connection, if any; replaced under this lock, so that two
    /// payments arriving on a broken link open one connection, not two.
    current: tokio::sync::Mutex<Option<Arc<Connection>>>,
    opened: std::sync::atomic::AtomicU64,
}

/// The core's answer to one payment: HTTP status and JSON body.
type Answer = (u16, Bytes);

/// The requests waiting for an answer, by tag.
type Waiting = HashMap<u32, oneshot::Sender<Answer>>;

struct Connection {
    frames: mpsc::UnboundedSender<(u32, NewPayment)>,
    /// The core's accept table, as its hello named it.
    table: Option<PathBuf>,
    /// Which of the link's connections this is (the first is 1).
    number: u64,
    /// `None` once the connection is broken (nothing may wait on it then).
    waiting: Mutex<Option<Waiting>>,
    next_tag: AtomicU32,
}

impl Connection {
    /// The waiting requests (a panic elsewhere leaves them usable).
    fn waiting(&self) -> std::sync::MutexGuard<'_, Option<Waiting>> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn is_open(&self) -> bool {
        self.waiting().is_some()
    }

    /// Breaks the connection: every request waiting learns it (its
    /// receiver sees the sender dropped).
    fn close(&self) {
        self.waiting().take();
    }
}

impl CoreLink {
    /// A link to the core's edge socket at `path`; an answer not back within
    /// `timeout` is reported as unknown.
    pub fn new(path: PathBuf, timeout: Duration) -> Self {
        Self {
            path,
            timeout,
            current: tokio::sync::Mutex::new(None),
            opened: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Hands a validated payment to the core; its answer: HTTP status and
    /// JSON body.
    pub async fn send(&self, payment: NewPayment) -> Result<Answer, LinkError> {
        let connection = self.connection().await?;
        let tag = connection.next_tag.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        {
            let mut waiting = connection.waiting();
            let Some(waiting) = waiting.as_mut() else {
                return Err(self.unreachable("the connection broke"));
            };
            waiting.insert(tag, tx);
        }
        if connection.frames.send((tag, payment)).is_err() {
            // The writer is gone before taking it: nothing was sent.
            connection.close();
            return Err(self.unreachable("the connection broke"));
        }
        match tokio::time::timeout(self.timeout, rx).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(_)) => Err(LinkError::NoAnswer(
                "the connection broke while the payment was with the core".into(),
            )),
            Err(_) => {
                if let Some(waiting) = connection.waiting().as_mut() {
                    waiting.remove(&tag);
                }
                Err(LinkError::NoAnswer(format!(
                    "no answer within {} ms",
                    self.timeout.as_millis()
                )))
            }
        }
    }

    /// A connection to the core, opened if need be: what an edge checks
    /// before it accepts a payment itself.
    pub async fn ready(&self) -> Result<Ready<'_>, LinkError> {
        Ok(Ready {
            connection: self.connection().await?,
            link: self,
        })
    }

    fn unreachable(&self, reason: impl std::fmt::Display) -> LinkError {
        LinkError::Unreachable {
            path: self.path.display().to_string(),
            reason: reason.to_string(),
        }
    }

    async fn connection(&self) -> Result<Arc<Connection>, LinkError> {
        let mut current = self.current.lock().await;
        if let Some(connection) = current.as_ref().filter(|c| c.is_open()) {
            return Ok(Arc::clone(connection));
        }
        let (stream, table) = tokio::time::timeout(CONNECT_TIMEOUT, self.open())
            .await
            .map_err(|_| self.unreachable("no connection and hello within 1 s"))?
            .map_err(|e| self.unreachable(e))?;
        let (reader, writer) = stream.into_split();
        let (frames, queued) = mpsc::unbounded_channel();
        let connection = Arc::new(Connection {
            frames,
            table,
            number: self.opened.fetch_add(1, Ordering::Relaxed) + 1,
            waiting: Mutex::new(Some(HashMap::new())),
            next_tag: AtomicU32::new(0),
        });
        tokio::spawn(write_loop(writer, queued, Arc::clone(&connection)));
        tokio::spawn(read_loop(reader, Arc::clone(&connection)));
        tracing::info!(core = %self.path.display(), "connected to the core");
        *current = Some(Arc::clone(&connection));
        Ok(connection)
    }

    /// Connects and greets; the core's hello names its accept table.
    async fn open(&self) -> std::io::Result<(UnixStream, Option<PathBuf>)> {
        let mut stream = UnixStream::connect(&self.path).await?;
        stream.write_all(&wire::HELLO).await?;
        let mut hello = [0u8; 4];
        stream.read_exact(&mut hello).await?;
        match wire::check_hello(hello) {
            Hello::Compatible => {
                let len = stream.read_u16().await? as usize;
                let mut path = vec![0; len];
                stream.read_exact(&mut path).await?;
                let table = (len > 0).then(|| PathBuf::from(std::ffi::OsString::from_vec(path)));
                Ok((stream, table))
            }
            Hello::Version(v) => Err(std::io::Error::other(format!(
                "the core speaks protocol version {v}, this edge {}: run the same release",
                wire::VERSION
            ))),
            Hello::Foreign => Err(std::io::Error::other(
                "not a reroute core's edge socket (bad hello)",
            )),
        }
    }
}

async fn write_loop(
    mut writer: OwnedWriteHalf,
    mut queued: mpsc::UnboundedReceiver<(u32, NewPayment)>,
    connection: Arc<Connection>,
) {
    let mut out = Vec::with_capacity(16 * 1024);
    while let Some((tag, payment)) = queued.recv().await {
        wire::encode_payment(&mut out, tag, &payment);
        while let Ok((tag, payment)) = queued.try_recv() {
            wire::encode_payment(&mut out, tag, &payment);
        }
        if let Err(e) = writer.write_all(&out).await {
            tracing::warn!(error = %e, "writing to the core failed");
            break;
        }
        out.clear();
    }
    connection.close();
    // The reader sees the end too, and stops.
    let _ = writer.shutdown().await;
}

/// An open connection to the core, for an edge that accepts a payment in
/// the core's accept table.
pub struct Ready<'a> {
    connection: Arc<Connection>,
    link: &'a CoreLink,
}

impl Ready<'_> {
    /// The core's accept table, if it has one.
    pub fn table(&self) -> Option<&std::path::Path> {
        self.connection.table.as_deref()
    }

    /// Which of the link's connections this is: another number, another
    /// core (perhaps with another table at the same path).
    pub fn connection(&self) -> u64 {
        self.connection.number
    }

    /// Whether the connection is still open: an edge answers 202 only then
    /// (the core it reaches stores what it accepted).
    pub fn check(&self) -> Result<(), LinkError> {
        if self.connection.is_open() {
            Ok(())
        } else {
            Err(self.link.unreachable("the connection broke"))
        }
    }
}

async fn read_loop(mut reader: OwnedReadHalf, connection: Arc<Connection>) {
    let mut inbox = BytesMut::with_capacity(16 * 1024);
    'reading: loop {
        match reader.read_buf(&mut inbox).await {
            Ok(0) => {
                tracing::warn!("the core closed the connection");
                break;
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "reading from the core failed");
                break;
            }
        }
        while let Some(head) = inbox.first_chunk::<4>() {
            let len = match wire::check_len(u32::from_be_bytes(*head)) {
                Ok(len) => len,
                Err(e) => {
                    tracing::error!(error = %e, "the core sent a bad frame");
                    break 'reading;
                }
            };
            if inbox.len() < 4 + len {
                inbox.reserve(4 + len - inbox.len());
                break;
            }
            inbox.advance(4);
            let frame = inbox.split_to(len).freeze();
            let Ok((tag, status, body)) = wire::decode_answer(&frame) else {
                tracing::error!("the core sent a short answer");
                break 'reading;
            };
            let body = frame.slice_ref(body);
            let waiter = connection
                .waiting()
                .as_mut()
                .and_then(|waiting| waiting.remove(&tag));
            if let Some(waiter) = waiter {
                // A request that timed out is gone; its answer with it.
                let _ = waiter.send((status, body));
            }
        }
    }
    connection.close();
}
