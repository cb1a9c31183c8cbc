//! The processors' side of the crash and chaos benches: their admin API
//! (purge, delay, failure, faults, schedules), their books in full and their
//! counters, as `reroute sim` serves them (see docs/sim.md).
//!
//! The books are the auditor's truth: what each processor actually charged,
//! payment by payment. [`Processors`] is the Rinha pair of a run, simulated
//! in-process or given by URL.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use hyper::Method;
use hyper::header::{HeaderName, HeaderValue};
use reroute_core::{CorrelationId, Money, Timestamp};
use reroute_sim::{ScheduleStep, StatsSnapshot};
use serde::{Deserialize, Serialize};

use crate::http::{BodyUse, Connection, Endpoint};

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

/// One simulated processor, reached through its admin API.
pub struct ProcessorAdmin {
    id: String,
    connection: Connection,
    token: HeaderValue,
}

impl ProcessorAdmin {
    pub fn new(
        id: impl Into<String>,
        endpoint: Arc<Endpoint>,
        token: &str,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            id: id.into(),
            connection: Connection::new(endpoint),
            token: HeaderValue::from_str(token).context("the token is not a valid header value")?,
        })
    }

    /// The processor id (`default`, `fallback`).
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn endpoint(&self) -> &Endpoint {
        self.connection.endpoint()
    }

    async fn call(
        &mut self,
        method: Method,
        path: &str,
        body: Option<String>,
    ) -> anyhow::Result<Bytes> {
        let mut request =
            self.connection
                .endpoint()
                .request(method.clone(), path, body.map(Bytes::from));
        request
            .headers_mut()
            .insert(TOKEN_HEADER, self.token.clone());
        let answer = self
            .connection
            .exchange(request, BodyUse::Keep, Duration::from_secs(10))
            .await
            .with_context(|| format!("{method} {path} at {}", self.id))?;
        if !answer.status.is_success() {
            bail!(
                "{method} {path} at {}: HTTP {}: {}",
                self.id,
                answer.status,
                String::from_utf8_lossy(&answer.body)
            );
        }
        Ok(answer.body)
    }

    pub async fn purge(&mut self) -> anyhow::Result<()> {
        self.call(Method::POST, "/admin/purge-payments", None)
            .await
            .map(drop)
    }

    pub async fn reset_stats(&mut self) -> anyhow::Result<()> {
        self.call(Method::POST, "/admin/stats/reset", None)
            .await
            .map(drop)
    }

    pub async fn set_delay(&mut self, delay_ms: u64) -> anyhow::Result<()> {
        self.call(
            Method::PUT,
            "/admin/configurations/delay",
            Some(format!(r#"{{"delay":{delay_ms}}}"#)),
        )
        .await
        .map(drop)
    }

    pub async fn set_failure(&mut self, failure: bool) -> anyhow::Result<()> {
        self.call(
            Method::PUT,
            "/admin/configurations/failure",
            Some(format!(r#"{{"failure":{failure}}}"#)),
        )
        .await
        .map(drop)
    }

    /// Clears every injected fault and stops any schedule.
    pub async fn clear_faults(&mut self) -> anyhow::Result<()> {
        self.call(Method::PUT, "/admin/faults/schedule", Some("[]".into()))
            .await?;
        self.call(Method::PUT, "/admin/faults", Some("{}".into()))
            .await
            .map(drop)
    }

    /// Starts a schedule now.
    pub async fn set_schedule(&mut self, steps: &[ScheduleStep]) -> anyhow::Result<()> {
        let body = serde_json::to_string(steps).context("writing the schedule")?;
        self.call(Method::PUT, "/admin/faults/schedule", Some(body))
            .await
            .map(drop)
    }

    pub async fn stats(&mut self) -> anyhow::Result<StatsSnapshot> {
        let body = self.call(Method::GET, "/admin/stats", None).await?;
        serde_json::from_slice(&body).with_context(|| format!("reading {}'s counters", self.id))
    }

    /// Every payment the processor stored.
    pub async fn books(&mut self) -> anyhow::Result<Vec<BookEntry>> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Stored<'a> {
            correlation_id: &'a str,
            amount: Money,
            requested_at: Timestamp,
        }
        let body = self.call(Method::GET, "/admin/payments", None).await?;
        let stored: Vec<Stored<'_>> = serde_json::from_slice(&body)
            .with_context(|| format!("reading {}'s books", self.id))?;
        stored
            .into_iter()
            .map(|s| {
                Ok(BookEntry {
                    id: s
                        .correlation_id
                        .parse()
                        .with_context(|| format!("a correlationId in {}'s books", self.id))?,
                    amount: s.amount,
                    requested_at: s.requested_at,
                })
            })
            .collect()
    }
}

/// The processors of the run: simulated in-process, or given.
pub struct Processors {
    pub sim: Option<reroute_sim::Sim>,
    pub default_url: String,
    pub fallback_url: String,
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
        let mut admins = vec![
            ProcessorAdmin::new("default", Arc::new(default_url.parse()?), token)?,
            ProcessorAdmin::new("fallback", Arc::new(fallback_url.parse()?), token)?,
        ];
        for admin in &mut admins {
            admin.clear_faults().await?;
            admin.set_failure(false).await?;
            admin.set_delay(0).await?;
            admin.purge().await?;
            admin.reset_stats().await?;
        }
        Ok(Self {
            sim,
            default_url,
            fallback_url,
            admins,
        })
    }

    pub async fn shutdown(self) {
        if let Some(sim) = self.sim {
            sim.shutdown().await;
        }
    }
}
