//! The bench's HTTP client: one keep-alive HTTP/1.1 connection per user, and a
//! stopwatch around each request measured the way k6 measures
//! `http_req_duration`.
//!
//! k6 gives every virtual user its own connection, so does this module: a
//! [`Connection`] belongs to one user, connects lazily, is reused while the
//! server keeps it open, and is dropped after a timeout or an error (a request
//! abandoned mid-flight leaves the connection in an unknown state). The
//! duration of a request runs from handing it to an already connected socket to
//! the last byte of the response body: sending + waiting + receiving, with
//! connection setup left out, as k6 reports it.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::task::AbortHandle;
use tokio::time::Instant;

/// Where a service listens: `http://host:port` with an optional base path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The URL as given, without a trailing slash.
    text: String,
    /// `host:port`, what the socket connects to.
    address: String,
    host_header: HeaderValue,
    /// Empty, or a path such as `/api` that every request path goes under.
    base_path: String,
}

/// Why a URL cannot be used as an endpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    #[error("not a valid URL: {0}")]
    Malformed(String),
    #[error("only plain http:// URLs are supported, got {0}")]
    UnsupportedScheme(String),
    #[error("the URL needs a host, as in http://127.0.0.1:9999")]
    MissingHost,
}

impl FromStr for Endpoint {
    type Err = EndpointError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim().trim_end_matches('/');
        let uri: Uri = text
            .parse()
            .map_err(|e: hyper::http::uri::InvalidUri| EndpointError::Malformed(e.to_string()))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(other) => return Err(EndpointError::UnsupportedScheme(other.to_owned())),
            None => return Err(EndpointError::UnsupportedScheme(String::new())),
        }
        if uri.query().is_some() {
            return Err(EndpointError::Malformed(
                "a base URL takes no query".to_owned(),
            ));
        }
        let authority = uri.authority().ok_or(EndpointError::MissingHost)?;
        if authority.host().is_empty() {
            return Err(EndpointError::MissingHost);
        }
        let port = authority.port_u16().unwrap_or(80);
        let address = format!("{}:{port}", authority.host());
        let host_header = HeaderValue::from_str(authority.as_str())
            .map_err(|e| EndpointError::Malformed(e.to_string()))?;
        Ok(Self {
            text: text.to_owned(),
            address,
            host_header,
            base_path: uri.path().trim_end_matches('/').to_owned(),
        })
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Endpoint {
    /// Builds a request to `path_and_query` under this endpoint, with the
    /// headers the official script sends (`Host`, `Content-Type: application/json`).
    /// A request with a body carries its `Content-Length`; so does a bodiless
    /// POST or PUT (`0`), as a browser or k6 would send it.
    pub fn request(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<Bytes>,
    ) -> Request<Full<Bytes>> {
        let uri = self.uri(path_and_query);
        let needs_length = body.is_some() || method == Method::POST || method == Method::PUT;
        let body = body.unwrap_or_default();
        let length = body.len();
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = method;
        *request.uri_mut() = uri;
        let headers = request.headers_mut();
        headers.insert(HOST, self.host_header.clone());
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if needs_length {
            headers.insert(CONTENT_LENGTH, HeaderValue::from(length));
        }
        request
    }

    /// The origin-form URI of `path_and_query` under the base path.
    pub fn uri(&self, path_and_query: &str) -> Uri {
        format!("{}{path_and_query}", self.base_path)
            .parse()
            .expect("the base path was validated and the bench builds its paths from URI-safe text")
    }

    fn address(&self) -> &str {
        &self.address
    }
}

/// One response, read to its end.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub status: StatusCode,
    /// The body, when the caller asked to keep it; empty otherwise.
    pub body: Bytes,
    /// Sending + waiting + receiving, connection setup excluded.
    pub elapsed: Duration,
}

impl Exchange {
    /// k6's `expected_response`: a status from 200 to 399. Only these count
    /// in `http_req_duration{expected_response:true}`, the p99 of the score.
    pub fn is_expected(&self) -> bool {
        (200..=399).contains(&self.status.as_u16())
    }
}

/// What to do with a response body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyUse {
    Keep,
    /// Read to the end (the duration includes receiving it) and drop.
    Discard,
}

/// Why a request produced no response.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    #[error("no complete response within the client timeout")]
    Timeout,
    #[error("cannot connect: {0}")]
    Connect(#[source] std::io::Error),
    #[error("HTTP error: {0}")]
    Http(#[source] hyper::Error),
}

/// What a user's connection saw over the whole test.
#[derive(Debug, Clone, Default)]
pub struct HttpStats {
    /// Requests attempted.
    pub requests: u64,
    /// Requests abandoned at the client timeout.
    pub timeouts: u64,
    /// Requests that failed without a response (refused, reset, bad HTTP).
    pub errors: u64,
    /// Durations, in nanoseconds, of the responses k6 counts as expected.
    pub durations: Vec<u64>,
}

impl HttpStats {
    pub fn merge(&mut self, other: HttpStats) {
        self.requests += other.requests;
        self.timeouts += other.timeouts;
        self.errors += other.errors;
        self.durations.extend(other.durations);
    }
}

/// One user's keep-alive connection to one endpoint.
pub struct Connection {
    endpoint: Arc<Endpoint>,
    open: Option<Open>,
    stats: HttpStats,
}

/// A live socket: the handle to send on and the task that drives it.
struct Open {
    sender: SendRequest<Full<Bytes>>,
    driver: AbortHandle,
}

impl Drop for Open {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

impl Connection {
    /// A connection that opens on first use.
    pub fn new(endpoint: Arc<Endpoint>) -> Self {
        Self {
            endpoint,
            open: None,
            stats: HttpStats::default(),
        }
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Sends `request` and reads its response, all within `timeout` (connecting
    /// first counts against it, as in k6). On timeout or error the connection
    /// is dropped and the next request opens a fresh one.
    pub async fn exchange(
        &mut self,
        request: Request<Full<Bytes>>,
        body: BodyUse,
        timeout: Duration,
    ) -> Result<Exchange, ExchangeError> {
        self.stats.requests += 1;
        let outcome = match tokio::time::timeout(timeout, self.exchange_now(request, body)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(ExchangeError::Timeout),
        };
        match &outcome {
            Ok(exchange) => {
                if exchange.is_expected() {
                    let nanos = u64::try_from(exchange.elapsed.as_nanos()).unwrap_or(u64::MAX);
                    self.stats.durations.push(nanos);
                }
            }
            Err(error) => {
                self.open = None;
                match error {
                    ExchangeError::Timeout => self.stats.timeouts += 1,
                    ExchangeError::Connect(_) | ExchangeError::Http(_) => self.stats.errors += 1,
                }
            }
        }
        outcome
    }

    /// Sends `request`, keeps the body and wants the status `expected` (any
    /// 2xx when `None`): no answer, or another status, is an error that
    /// names the call.
    pub async fn call(
        &mut self,
        request: Request<Full<Bytes>>,
        expected: Option<StatusCode>,
        timeout: Duration,
    ) -> anyhow::Result<Bytes> {
        let call = format!(
            "{} {} at {}",
            request.method(),
            request.uri(),
            self.endpoint
        );
        let answer = self.exchange(request, BodyUse::Keep, timeout).await;
        let answer = answer.with_context(|| call.clone())?;
        let status = answer.status;
        anyhow::ensure!(
            expected.map_or(status.is_success(), |e| status == e),
            "{call}: HTTP {status}: {}",
            String::from_utf8_lossy(&answer.body).trim()
        );
        Ok(answer.body)
    }

    /// What this connection saw; consumes it (the socket closes).
    pub fn into_stats(mut self) -> HttpStats {
        std::mem::take(&mut self.stats)
    }

    async fn exchange_now(
        &mut self,
        request: Request<Full<Bytes>>,
        body: BodyUse,
    ) -> Result<Exchange, ExchangeError> {
        let sender = self.ready_sender().await?;
        let started = Instant::now();
        let response = sender
            .send_request(request)
            .await
            .map_err(ExchangeError::Http)?;
        let status = response.status();
        let mut incoming = response.into_body();
        let body = match body {
            BodyUse::Keep => incoming
                .collect()
                .await
                .map_err(ExchangeError::Http)?
                .to_bytes(),
            BodyUse::Discard => {
                while let Some(frame) = incoming.frame().await {
                    frame.map_err(ExchangeError::Http)?;
                }
                Bytes::new()
            }
        };
        Ok(Exchange {
            status,
            body,
            elapsed: started.elapsed(),
        })
    }

    /// The sender of a connection ready for a request: the kept-alive one if
    /// the server still holds it open, else a new one.
    async fn ready_sender(&mut self) -> Result<&mut SendRequest<Full<Bytes>>, ExchangeError> {
        let reusable = match &mut self.open {
            Some(open) => !open.sender.is_closed() && open.sender.ready().await.is_ok(),
            None => false,
        };
        if !reusable {
            self.open = None;
            let mut open = connect(&self.endpoint).await?;
            open.sender.ready().await.map_err(ExchangeError::Http)?;
            self.open = Some(open);
        }
        Ok(&mut self
            .open
            .as_mut()
            .expect("a connection was just ensured")
            .sender)
    }
}

async fn connect(endpoint: &Endpoint) -> Result<Open, ExchangeError> {
    let stream = TcpStream::connect(endpoint.address())
        .await
        .map_err(ExchangeError::Connect)?;
    // k6 (Go) disables Nagle's algorithm; small requests must not wait for ACKs.
    stream.set_nodelay(true).map_err(ExchangeError::Connect)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(ExchangeError::Http)?;
    let driver = tokio::spawn(async move {
        // The connection ends when the server closes it or the user drops it;
        // either way the next request reconnects, so the error is not needed.
        let _ = connection.await;
    })
    .abort_handle();
    Ok(Open { sender, driver })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_host_port_and_base_path() {
        let e: Endpoint = "http://127.0.0.1:9999/".parse().unwrap();
        assert_eq!(e.to_string(), "http://127.0.0.1:9999");
        assert_eq!(e.address(), "127.0.0.1:9999");
        assert_eq!(e.uri("/payments").to_string(), "/payments");

        let e: Endpoint = "http://localhost/api".parse().unwrap();
        assert_eq!(e.address(), "localhost:80");
        assert_eq!(
            e.uri("/payments-summary?from=2025-07-10T12:34:56.789Z")
                .to_string(),
            "/api/payments-summary?from=2025-07-10T12:34:56.789Z"
        );

        let e: Endpoint = "http://[::1]:8001".parse().unwrap();
        assert_eq!(e.address(), "[::1]:8001");
    }

    #[test]
    fn endpoints_refuse_what_cannot_be_reached_plainly() {
        assert!(matches!(
            "https://example.com".parse::<Endpoint>(),
            Err(EndpointError::UnsupportedScheme(_))
        ));
        assert!("127.0.0.1:9999".parse::<Endpoint>().is_err());
        assert!("not a url".parse::<Endpoint>().is_err());
    }

    #[test]
    fn requests_carry_host_type_and_length() {
        let e: Endpoint = "http://127.0.0.1:8001".parse().unwrap();
        let r = e.request(Method::POST, "/admin/purge-payments", None);
        assert_eq!(r.headers()[HOST], "127.0.0.1:8001");
        assert_eq!(r.headers()[CONTENT_TYPE], "application/json");
        assert_eq!(r.headers()[CONTENT_LENGTH], "0");
        let r = e.request(Method::GET, "/admin/payments-summary", None);
        assert!(r.headers().get(CONTENT_LENGTH).is_none());
        let r = e.request(
            Method::PUT,
            "/x",
            Some(Bytes::from_static(b"{\"delay\":1}")),
        );
        assert_eq!(r.headers()[CONTENT_LENGTH], "11");
    }

    #[test]
    fn only_2xx_and_3xx_are_expected_responses() {
        let at = |code: u16| Exchange {
            status: StatusCode::from_u16(code).unwrap(),
            body: Bytes::new(),
            elapsed: Duration::ZERO,
        };
        assert!(at(200).is_expected());
        assert!(at(204).is_expected());
        assert!(at(399).is_expected());
        assert!(!at(199).is_expected());
        assert!(!at(422).is_expected());
        assert!(!at(500).is_expected());
    }
}
