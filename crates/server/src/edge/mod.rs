//! `reroute edge`: a stateless HTTP front for one core.
//!
//! An edge reads and validates `POST /payments` (content type, body size and
//! time, the fields) and hands the payment to the core over its edge socket
//! ([`link`], [`crate::wire`]); the core stores it and answers, and the edge
//! writes that answer. Every other request is proxied, as it came, to the
//! core's HTTP unix socket. So every answer about state — duplicates,
//! summaries, health, alerts — comes from the one core, whichever edge a
//! load balancer picks. An edge that cannot reach the core answers 503 and
//! never 202; it reconnects on the next request, so a restarted core is
//! picked up without restarting the edges.
//!
//! When the core has an accept table ([`crate::accepts`]), an edge accepts a
//! payment there itself — 202, 200 or 409 without waiting for the core —
//! and the core, which looks at the table every few milliseconds, stores
//! it; still only while the edge's connection to the core is open.
//!
//! An edge runs on one thread: run more edges for more cores.

pub mod link;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use reroute_core::Timestamp;
use reroute_store::{NewPayment, StoreError};
use tokio_util::sync::CancellationToken;

use crate::accepts::{AcceptTable, Probe};
use crate::api::error::ApiError;
use crate::api::payments::{parse_payment, receipt_body};
use crate::api::request::{read_body, require_json};
use crate::config::{BODY_READ_TIMEOUT, MAX_BODY_BYTES};
use crate::listen::{self, Listeners, SocketFile};
use link::{CoreLink, LinkError};

/// `reroute edge`'s flags.
#[derive(Debug, Clone, clap::Args)]
pub struct EdgeArgs {
    /// Serve HTTP on this unix socket (nginx: `server unix:PATH;`).
    #[arg(long, env = "REROUTE_UNIX_SOCKET")]
    pub unix_socket: Option<PathBuf>,

    /// Serve HTTP on this TCP port (with or without --unix-socket).
    #[arg(long, env = "APP_PORT")]
    pub port: Option<u16>,

    /// Address for --port [default: 0.0.0.0].
    #[arg(long, env = "REROUTE_HOST")]
    pub host: Option<IpAddr>,

    /// The core's edge socket (`reroute serve --edge-socket`): payments go
    /// there.
    #[arg(long, env = "REROUTE_CORE_SOCKET")]
    pub core_socket: PathBuf,

    /// The core's HTTP unix socket (`reroute serve --unix-socket`): every
    /// other request is proxied there.
    #[arg(long, env = "REROUTE_CORE_HTTP_SOCKET")]
    pub core_http_socket: PathBuf,

    /// How long the core may take to answer, in ms [default: 5000]; past
    /// it the client is told the outcome is unknown (503, retry safe).
    #[arg(long, env = "REROUTE_CORE_TIMEOUT_MS", default_value_t = 5000)]
    pub core_timeout_ms: u64,
}

/// What the edge's handlers share.
struct Edge {
    link: CoreLink,
    /// The core's accept table, once mapped.
    table: std::sync::Mutex<Option<Mapped>>,
    proxy: Client<UnixConnector, Body>,
    timeout: Duration,
}

/// Connects every proxied request to the core's HTTP socket.
#[derive(Clone)]
struct UnixConnector(Arc<PathBuf>);

impl tower::Service<Uri> for UnixConnector {
    type Response = TokioIo<tokio::net::UnixStream>;
    type Error = std::io::Error;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = std::io::Result<Self::Response>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Uri) -> Self::Future {
        let path = Arc::clone(&self.0);
        Box::pin(async move {
            tokio::net::UnixStream::connect(path.as_path())
                .await
                .map(TokioIo::new)
        })
    }
}

/// Why an edge did not start.
#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    #[error("an edge needs somewhere to listen: --unix-socket PATH and/or --port N")]
    NoListener,
    #[error("cannot listen on {what}")]
    Listen {
        what: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Runs an edge until Ctrl-C or SIGTERM.
pub fn run(args: EdgeArgs) -> Result<(), EdgeError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async { BoundEdge::bind(args)?.run(CancellationToken::new()).await })
}

/// An edge listening, not yet serving.
pub struct BoundEdge {
    args: EdgeArgs,
    listeners: Listeners,
    sockets: Vec<SocketFile>,
}

impl BoundEdge {
    /// Binds the edge's sockets: an error names the one that failed.
    pub fn bind(args: EdgeArgs) -> Result<Self, EdgeError> {
        if args.unix_socket.is_none() && args.port.is_none() {
            return Err(EdgeError::NoListener);
        }
        let mut listeners = Listeners::default();
        let mut sockets = Vec::new();
        if let Some(port) = args.port {
            let addr =
                SocketAddr::new(args.host.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)), port);
            listeners.tcp = Some(listen::tcp(addr).map_err(|source| EdgeError::Listen {
                what: addr.to_string(),
                source,
            })?);
        }
        if let Some(path) = &args.unix_socket {
            listeners.unix = Some(listen::unix(path).map_err(|source| EdgeError::Listen {
                what: format!("the unix socket {}", path.display()),
                source,
            })?);
            sockets.push(SocketFile(path.clone()));
        }
        Ok(Self {
            args,
            listeners,
            sockets,
        })
    }

    /// The TCP address, when the edge listens on a port.
    pub fn addr(&self) -> Option<SocketAddr> {
        self.listeners.tcp.as_ref()?.local_addr().ok()
    }

    /// Serves until a signal or `cancel`.
    pub async fn run(self, cancel: CancellationToken) -> Result<(), EdgeError> {
        let BoundEdge {
            args,
            listeners,
            sockets,
        } = self;
        let timeout = Duration::from_millis(args.core_timeout_ms.max(1));
        let edge = Arc::new(Edge {
            link: CoreLink::new(args.core_socket.clone(), timeout),
            table: std::sync::Mutex::new(None),
            proxy: Client::builder(TokioExecutor::new())
                .build(UnixConnector(Arc::new(args.core_http_socket.clone()))),
            timeout,
        });
        let router = axum::Router::new()
            .route("/payments", post(payment))
            .fallback(proxy)
            .with_state(edge);
        tracing::info!(
            unix_socket = ?args.unix_socket,
            port = ?args.port,
            core = %args.core_socket.display(),
            "reroute edge serving"
        );
        listen::serve(listeners, router, cancel).await?;
        drop(sockets);
        Ok(())
    }
}

/// `POST /payments`: validated here, stored and answered by the core.
async fn payment(
    State(edge): State<Arc<Edge>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    require_json(&headers)?;
    let body = read_body(body, MAX_BODY_BYTES, BODY_READ_TIMEOUT).await?;
    let payment = parse_payment(&body, Timestamp::now())?;
    if let Some(answer) = accept_here(&edge, &payment).await? {
        return Ok(answer);
    }
    match edge.link.send(payment).await {
        Ok((status, body)) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            Ok((
                status,
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                body,
            )
                .into_response())
        }
        Err(e @ LinkError::Unreachable { .. }) => Err(ApiError::CoreUnreachable(e.to_string())),
        Err(e @ LinkError::NoAnswer(_)) => Err(ApiError::AcceptUnconfirmed(
            StoreError::Unavailable(e.to_string()),
        )),
    }
}

/// How many times an edge looks again at an id whose slot another process
/// is writing, before it leaves the payment to the core.
const BUSY_LOOKS: usize = 8;

/// Accepts the payment in the core's accept table, if the core has one
/// and it can decide: `None` leaves it to the core. Only payments without
/// a method or country (the Rinha's): those are routable wherever the core
/// takes the table's payments (it checks at start-up that they are).
async fn accept_here(edge: &Edge, payment: &NewPayment) -> Result<Option<Response>, ApiError> {
    if payment.payment_method.is_some() || payment.country.is_some() {
        return Ok(None);
    }
    let ready = match edge.link.ready().await {
        Ok(ready) => ready,
        Err(e) => return Err(ApiError::CoreUnreachable(e.to_string())),
    };
    let Some(table) = edge.table(&ready) else {
        return Ok(None);
    };
    if !table.trusted() || !table.ring_has_room() {
        return Ok(None);
    }
    for _ in 0..BUSY_LOOKS {
        match table.probe(&payment.id) {
            Probe::Known(existing) => {
                // At `stable`, published maybe by a process still syncing
                // it: the answer waits for the slot to be on disk.
                if table.is_stable() && table.sync_id(&payment.id).is_err() {
                    return Ok(None);
                }
                if existing != payment.amount {
                    return Err(ApiError::Conflict {
                        existing: existing.to_string(),
                    });
                }
                // Counted there for the core's metrics.
                table.count_duplicate();
                return Ok(Some(json(
                    StatusCode::OK,
                    receipt_body(payment.id, "duplicate"),
                )));
            }
            Probe::Claimed(claim) => {
                table.write(&claim, payment);
                if !table.push(&claim, payment.accepted_at) {
                    // The core is far behind: it decides this one.
                    table.abandon(claim);
                    return Ok(None);
                }
                let slot = claim.slot();
                table.publish(claim);
                // At `stable` the 202 waits for the slot's page on disk.
                // Published, it is stored by the core whatever comes of
                // the sync: a failed one makes the outcome unknown.
                if table.is_stable()
                    && let Err(e) = table.sync_slot(slot)
                {
                    return Err(ApiError::AcceptUnconfirmed(StoreError::Unavailable(
                        format!("syncing the accept table: {e}"),
                    )));
                }
                return match ready.check() {
                    Ok(()) => Ok(Some(json(
                        StatusCode::ACCEPTED,
                        receipt_body(payment.id, "accepted"),
                    ))),
                    // Accepted in the table, which the next core stores;
                    // but this edge cannot tell the core now: never a 202.
                    Err(e) => Err(ApiError::AcceptUnconfirmed(StoreError::Unavailable(
                        e.to_string(),
                    ))),
                };
            }
            Probe::Busy(..) => tokio::task::yield_now().await,
            Probe::Full => return Ok(None),
        }
    }
    Ok(None)
}

fn json(status: StatusCode, body: String) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// The accept table an edge mapped: by the path the core named, checked
/// on the connection it came by (`None`: it could not be mapped; told once).
struct Mapped {
    path: PathBuf,
    connection: u64,
    table: Option<Arc<AcceptTable>>,
}

impl Edge {
    /// The core's accept table, mapped on first use, and again when a core
    /// reached anew names another path or made the file anew.
    fn table(&self, ready: &link::Ready) -> Option<Arc<AcceptTable>> {
        let path = ready.table()?;
        let mut cached = self.table.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(mapped) = cached.as_mut()
            && mapped.path == path
        {
            if mapped.connection == ready.connection() {
                return mapped.table.clone();
            }
            mapped.connection = ready.connection();
            if mapped.table.as_ref().is_some_and(|t| t.is_current_file()) {
                return mapped.table.clone();
            }
        }
        let table = match AcceptTable::open(path, false) {
            Ok((table, _)) => {
                tracing::info!(table = %path.display(), "accepting payments in the core's accept table");
                Some(Arc::new(table))
            }
            Err(e) => {
                tracing::warn!(error = %e, "the core's accept table cannot be used: every payment goes to the core");
                None
            }
        };
        *cached = Some(Mapped {
            path: path.to_path_buf(),
            connection: ready.connection(),
            table: table.clone(),
        });
        table
    }
}

/// Any other request: to the core's HTTP socket as it came.
async fn proxy(State(edge): State<Arc<Edge>>, mut request: Request) -> Response {
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    *request.uri_mut() = match format!("http://core{path}").parse() {
        Ok(uri) => uri,
        Err(_) => return ApiError::NotFound.into_response(),
    };
    match tokio::time::timeout(edge.timeout, edge.proxy.request(request)).await {
        Ok(Ok(response)) => response.map(Body::new),
        Ok(Err(e)) if e.is_connect() => {
            ApiError::CoreUnreachable(format!("the core's HTTP socket is unreachable: {e}"))
                .into_response()
        }
        Ok(Err(e)) => ApiError::CoreNoAnswer(e.to_string()).into_response(),
        Err(_) => ApiError::CoreNoAnswer(format!("none within {} ms", edge.timeout.as_millis()))
            .into_response(),
    }
}
