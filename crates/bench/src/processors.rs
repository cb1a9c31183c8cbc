//! The processors' side of every bench: their admin API (token, purge,
//! delay, failure, summary; faults, schedules, books in full and counters,
//! as `reroute sim` serves them, see docs/sim.md).
//!
//! The books are the auditor's truth: what each processor actually charged,
//! payment by payment. [`Processors`] is the Rinha pair of a run, simulated
//! in-process or given by URL.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Method, Request, StatusCode};
use reroute_core::{CorrelationId, Money, Timestamp, Window};
use reroute_sim::{ScheduleStep, StatsSnapshot};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::http::{BodyUse, Connection, Endpoint, ExchangeError, HttpStats};

const TOKEN_HEADER: HeaderName = HeaderName::from_static("x-rinha-token");

/// One payment a processor stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookEntry {
    pub id: CorrelationId,
    pub amount: Money,
    pub requested_at: Timestamp,
}

/// Every processor's books, by processor id, in registry order.
#[derive(Debug, Clone, Default)]
pub struct Books {
    pub processors: Vec<(String, Vec<BookEntry>)>,
}

impl Books {
    pub async fn read(processors: &mut [ProcessorAdmin]) -> anyhow::Result<Self> {
        let mut books = Vec::with_capacity(processors.len());
        for p in processors.iter_mut() {
            books.push((p.id().to_owned(), p.books().await?));
        }
        Ok(Self { processors: books })
    }

    pub fn ids(&self) -> HashSet<CorrelationId> {
        self.processors
            .iter()
            .flat_map(|(_, entries)| entries.iter().map(|e| e.id))
            .collect()
    }

    /// Whether some payment is in the books twice (two processors, or
    /// twice at one): nothing can undo that, and no summary can match it.
    pub fn has_double(&self) -> bool {
        let mut seen = HashSet::new();
        self.processors
            .iter()
            .flat_map(|(_, entries)| entries.iter().map(|e| e.id))
            .any(|id| !seen.insert(id))
    }

    pub fn totals(&self) -> BTreeMap<String, Totals> {
        self.processors
            .iter()
            .map(|(id, entries)| {
                (
                    id.clone(),
                    Totals {
                        requests: entries.len() as u64,
                        amount: entries.iter().map(|e| e.amount).sum(),
                    },
                )
            })
            .collect()
    }
}

/// A count and an amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Totals {
    pub requests: u64,
    pub amount: Money,
}

/// The token every processor starts with; the Rinha script always sets its
/// own with this one in the header.
pub const INITIAL_TOKEN: &str = "123";

/// A processor's own books for a window (`GET /admin/payments-summary`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcessorSummary {
    pub total_requests: u64,
    #[serde(with = "crate::json_number")]
    pub total_amount: Decimal,
    #[serde(with = "crate::json_number")]
    pub total_fee: Decimal,
    #[serde(with = "crate::json_number")]
    pub fee_per_transaction: Decimal,
}

/// One processor's admin API, on a connection of its own. The calls the
/// Rinha script makes want the status it wants (an abort otherwise); the
/// others any 2xx. Every call's duration lands in the connection's
/// statistics ([`ProcessorAdmin::into_stats`]).
pub struct ProcessorAdmin {
    id: String,
    connection: Connection,
    token: HeaderValue,
    timeout: Duration,
}

impl ProcessorAdmin {
    pub fn new(
        id: impl Into<String>,
        endpoint: Arc<Endpoint>,
        token: &HeaderValue,
        timeout: Duration,
    ) -> Self {
        Self {
            id: id.into(),
            connection: Connection::new(endpoint),
            token: token.clone(),
            timeout,
        }
    }

    /// The processor id (`default`, `fallback`).
    pub fn id(&self) -> &str {
        &self.id
    }

    fn request(&self, method: Method, path: &str, body: Option<String>) -> Request<Full<Bytes>> {
        let endpoint = self.connection.endpoint();
        let mut request = endpoint.request(method, path, body.map(Bytes::from));
        request
            .headers_mut()
            .insert(TOKEN_HEADER, self.token.clone());
        request
    }

    async fn call(
        &mut self,
        method: Method,
        path: &str,
        body: Option<String>,
        expected: Option<StatusCode>,
    ) -> anyhow::Result<Bytes> {
        let request = self.request(method, path, body);
        let answer = self.connection.call(request, expected, self.timeout).await;
        answer.with_context(|| format!("processor {}", self.id))
    }

    /// `PUT /admin/configurations/token`, authorised with the initial token,
    /// expecting 204. If the processor already holds ours (a second run with
    /// a custom `--token`) the initial one is refused with 401; the call is
    /// then repeated with ours, where the script would stop.
    pub async fn set_token(&mut self) -> anyhow::Result<()> {
        let (ours, initial) = (self.token.clone(), HeaderValue::from_static(INITIAL_TOKEN));
        let mut status = self.put_token(initial.clone()).await;
        if status
            .as_ref()
            .is_ok_and(|s| *s == StatusCode::UNAUTHORIZED)
            && ours != initial
        {
            status = self.put_token(ours).await;
        }
        match status {
            Ok(StatusCode::NO_CONTENT) => Ok(()),
            Ok(other) => bail!(
                "setting the token at {}: HTTP {other}, expected 204",
                self.id
            ),
            Err(e) => Err(e).with_context(|| format!("setting the token at {}", self.id)),
        }
    }

    /// Our token, put with `auth` in the header.
    async fn put_token(&mut self, auth: HeaderValue) -> Result<StatusCode, ExchangeError> {
        let body = token_body(&self.token);
        let mut request = self.request(Method::PUT, "/admin/configurations/token", Some(body));
        request.headers_mut().insert(TOKEN_HEADER, auth);
        let answer = self
            .connection
            .exchange(request, BodyUse::Keep, self.timeout);
        answer.await.map(|a| a.status)
    }

    pub async fn purge(&mut self) -> anyhow::Result<()> {
        let ok = Some(StatusCode::OK);
        self.call(Method::POST, "/admin/purge-payments", None, ok)
            .await
            .map(drop)
    }

    pub async fn reset_stats(&mut self) -> anyhow::Result<()> {
        self.call(Method::POST, "/admin/stats/reset", None, None)
            .await
            .map(drop)
    }

    pub async fn set_delay(&mut self, delay_ms: u64) -> anyhow::Result<()> {
        let body = format!(r#"{{"delay":{delay_ms}}}"#);
        let path = "/admin/configurations/delay";
        self.call(Method::PUT, path, Some(body), Some(StatusCode::OK))
            .await
            .map(drop)
    }

    pub async fn set_failure(&mut self, failure: bool) -> anyhow::Result<()> {
        let body = format!(r#"{{"failure":{failure}}}"#);
        let path = "/admin/configurations/failure";
        self.call(Method::PUT, path, Some(body), Some(StatusCode::OK))
            .await
            .map(drop)
    }

    /// `GET /admin/payments-summary?from&to`, expecting 200.
    pub async fn summary(&mut self, window: Window) -> anyhow::Result<ProcessorSummary> {
        let path = summary_path("/admin/payments-summary", window);
        let body = self
            .call(Method::GET, &path, None, Some(StatusCode::OK))
            .await?;
        serde_json::from_slice(&body).with_context(|| format!("reading {}'s summary", self.id))
    }

    /// Clears every injected fault and stops any schedule.
    pub async fn clear_faults(&mut self) -> anyhow::Result<()> {
        self.set_schedule(&[]).await?;
        self.call(Method::PUT, "/admin/faults", Some("{}".into()), None)
            .await
            .map(drop)
    }

    /// Starts a schedule now.
    pub async fn set_schedule(&mut self, steps: &[ScheduleStep]) -> anyhow::Result<()> {
        let body = serde_json::to_string(steps).context("writing the schedule")?;
        self.call(Method::PUT, "/admin/faults/schedule", Some(body), None)
            .await
            .map(drop)
    }

    pub async fn stats(&mut self) -> anyhow::Result<StatsSnapshot> {
        let body = self.call(Method::GET, "/admin/stats", None, None).await?;
        serde_json::from_slice(&body).with_context(|| format!("reading {}'s counters", self.id))
    }

    /// Every payment the processor stored.
    pub async fn books(&mut self) -> anyhow::Result<Vec<BookEntry>> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Stored {
            correlation_id: CorrelationId,
            amount: Money,
            requested_at: Timestamp,
        }
        let body = self
            .call(Method::GET, "/admin/payments", None, None)
            .await?;
        let stored: Vec<Stored> = serde_json::from_slice(&body)
            .with_context(|| format!("reading {}'s books", self.id))?;
        Ok(stored
            .into_iter()
            .map(|s| BookEntry {
                id: s.correlation_id,
                amount: s.amount,
                requested_at: s.requested_at,
            })
            .collect())
    }

    pub fn into_stats(self) -> HttpStats {
        self.connection.into_stats()
    }
}

/// `{"token":"<token>"}`.
fn token_body(token: &HeaderValue) -> String {
    serde_json::json!({ "token": String::from_utf8_lossy(token.as_bytes()) }).to_string()
}

/// `path?from=<ISO>&to=<ISO>`, timestamps as JavaScript's `toISOString()`
/// writes them (`2025-07-10T12:34:56.789Z`), unescaped as the script sends them.
pub fn summary_path(path: &str, window: Window) -> String {
    format!("{path}?from={}&to={}", window.from, window.to)
}

/// The processors of the run (crash, chaos): simulated in-process, or given.
pub struct Processors {
    pub sim: Option<reroute_sim::Sim>,
    pub default_url: String,
    pub fallback_url: String,
    token: HeaderValue,
    pub admins: Vec<ProcessorAdmin>,
}

impl Processors {
    /// Starts the simulator (health window `health_window`) unless URLs are
    /// given, then brings both processors to a clean state: no faults, no
    /// delay, no failure, empty books, zeroed counters.
    pub async fn prepare(
        given: Option<(String, String)>,
        token: &str,
        health_window: Duration,
    ) -> anyhow::Result<Self> {
        let (sim, default_url, fallback_url) = match given {
            Some((default, fallback)) => (None, default, fallback),
            None => {
                let mut config = reroute_sim::SimConfig::rinha_on_free_ports();
                config.health_window = health_window;
                token.clone_into(&mut config.token);
                let sim = reroute_sim::spawn(config)
                    .await
                    .context("starting the simulator")?;
                let (d, f) = (sim.url("default"), sim.url("fallback"));
                (Some(sim), d, f)
            }
        };
        let token = HeaderValue::from_str(token).context("the token is not a header value")?;
        let mut processors = Self {
            sim,
            default_url,
            fallback_url,
            token,
            admins: Vec::new(),
        };
        processors.admins = processors.connect()?;
        for admin in &mut processors.admins {
            admin.clear_faults().await?;
            admin.set_failure(false).await?;
            admin.set_delay(0).await?;
            admin.purge().await?;
            admin.reset_stats().await?;
        }
        Ok(processors)
    }

    /// Both processors' admin APIs, on connections of their own.
    pub fn connect(&self) -> anyhow::Result<Vec<ProcessorAdmin>> {
        let admin = |id: &str, url: &str| -> anyhow::Result<ProcessorAdmin> {
            let timeout = Duration::from_secs(10);
            Ok(ProcessorAdmin::new(
                id,
                Arc::new(url.parse()?),
                &self.token,
                timeout,
            ))
        };
        Ok(vec![
            admin("default", &self.default_url)?,
            admin("fallback", &self.fallback_url)?,
        ])
    }

    pub async fn shutdown(self) {
        if let Some(sim) = self.sim {
            sim.shutdown().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_and_tokens_are_read_and_written_as_json() {
        let p: ProcessorSummary = serde_json::from_str(
            r#"{"totalRequests":3,"totalAmount":59.7,"totalFee":2.985,"feePerTransaction":0.05}"#,
        )
        .unwrap();
        assert_eq!(p.total_requests, 3);
        assert_eq!(p.total_fee, "2.985".parse().unwrap());
        assert_eq!(p.fee_per_transaction, "0.05".parse().unwrap());
        let token = |t| token_body(&HeaderValue::from_static(t));
        assert_eq!(token("123"), r#"{"token":"123"}"#);
        assert_eq!(token(r#"a"b"#), r#"{"token":"a\"b"}"#);
    }
}
