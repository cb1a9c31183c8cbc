//! A router seen from the outside, through its HTTP API: the all-time
//! summary, the metrics that say whether it still holds work, its alerts
//! and processor statuses, and a sampler of its queue age. The crash and
//! chaos benches ask these questions of the routers [`crate::fleet`] runs.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hyper::Method;
use reroute_core::{Money, Timestamp};
use serde::Deserialize;

use reroute_bench::http::{Connection, Endpoint};

/// One processor's line of the router's `GET /payments-summary`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SummaryLine {
    pub total_requests: u64,
    pub total_amount: Money,
}

/// A router's view through its HTTP API: summary, metrics, alerts.
pub struct RouterApi {
    connection: Connection,
}

/// One alert of `GET /api/v1/alerts`, the fields the benches read.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
pub struct Alert {
    pub processor_id: String,
    pub from_status: String,
    pub to_status: String,
    pub timestamp: Timestamp,
    pub reason: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub scope: String,
}

impl RouterApi {
    pub fn new(endpoint: Arc<Endpoint>) -> Self {
        Self {
            connection: Connection::new(endpoint),
        }
    }

    async fn get(&mut self, path: &str) -> anyhow::Result<bytes::Bytes> {
        let request = self.connection.endpoint().request(Method::GET, path, None);
        let timeout = Duration::from_secs(5);
        self.connection.call(request, None, timeout).await
    }

    /// The all-time summary, by processor id.
    pub async fn summary(&mut self) -> anyhow::Result<HashMap<String, SummaryLine>> {
        let body = self.get("/payments-summary").await?;
        serde_json::from_slice(&body).context("reading the router's summary")
    }

    /// `reroute_queue_depth + reroute_attempts_in_flight`: payments the
    /// instance has taken from its queue or holds in flight. Zero once it
    /// has nothing left to do.
    pub async fn busy(&mut self) -> anyhow::Result<f64> {
        let body = self.get("/metrics").await?;
        let text = String::from_utf8_lossy(&body);
        Ok(metric(&text, "reroute_queue_depth") + metric(&text, "reroute_attempts_in_flight"))
    }

    /// `reroute_queue_oldest_age_seconds`.
    pub async fn queue_oldest_age(&mut self) -> anyhow::Result<f64> {
        let body = self.get("/metrics").await?;
        Ok(metric(
            &String::from_utf8_lossy(&body),
            "reroute_queue_oldest_age_seconds",
        ))
    }

    /// Every alert the instance keeps, oldest first.
    pub async fn alerts(&mut self) -> anyhow::Result<Vec<Alert>> {
        #[derive(Deserialize)]
        struct Alerts {
            alerts: Vec<Alert>,
        }
        let body = self.get("/api/v1/alerts").await?;
        Ok(serde_json::from_slice::<Alerts>(&body)
            .context("reading the router's alerts")?
            .alerts)
    }

    /// Each processor's current health status, by id.
    pub async fn statuses(&mut self) -> anyhow::Result<HashMap<String, String>> {
        #[derive(Deserialize)]
        struct Line {
            processor_id: String,
            status: String,
        }
        #[derive(Deserialize)]
        struct Processors {
            processors: Vec<Line>,
        }
        let body = self.get("/api/v1/processors").await?;
        let list: Processors =
            serde_json::from_slice(&body).context("reading the router's processors")?;
        Ok(list
            .processors
            .into_iter()
            .map(|p| (p.processor_id, p.status))
            .collect())
    }
}

/// The sum of a metric's samples in Prometheus text (0 when absent).
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?;
            let value = match rest.chars().next()? {
                ' ' => rest,
                '{' => &rest[rest.find('}')? + 1..],
                _ => return None,
            };
            value.split_whitespace().next()?.parse::<f64>().ok()
        })
        .sum()
}

/// Samples every instance's `reroute_queue_oldest_age_seconds` (the age of
/// the oldest accepted payment waiting for a worker) four times a second
/// while a run goes on, and keeps the largest value seen: the router's own
/// view of its maximum queue age. An instance that is down is skipped.
pub struct QueueAgeSampler {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<f64>,
}

impl QueueAgeSampler {
    pub fn start(endpoints: Vec<Arc<Endpoint>>) -> Self {
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let mut apis: Vec<RouterApi> = endpoints.into_iter().map(RouterApi::new).collect();
            let mut ticker = tokio::time::interval(Duration::from_millis(250));
            let mut max = 0.0_f64;
            loop {
                tokio::select! {
                    _ = &mut stopped => return max,
                    _ = ticker.tick() => {}
                }
                for api in &mut apis {
                    if let Ok(age) = api.queue_oldest_age().await {
                        max = max.max(age);
                    }
                }
            }
        });
        Self { stop, task }
    }

    /// The largest age seen, in milliseconds.
    pub async fn stop(self) -> u64 {
        let _ = self.stop.send(());
        let seconds = self.task.await.unwrap_or(0.0);
        (seconds * 1000.0).round() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_read_from_prometheus_text_by_exact_name() {
        let text = "# HELP reroute_queue_depth x\n# TYPE reroute_queue_depth gauge\n\
                    reroute_queue_depth 3\nreroute_queue_depth_other 100\n\
                    reroute_attempts_in_flight{processor=\"default\"} 2\n\
                    reroute_attempts_in_flight{processor=\"fallback\"} 1.5\n";
        assert_eq!(metric(text, "reroute_queue_depth"), 3.0);
        assert_eq!(metric(text, "reroute_attempts_in_flight"), 3.5);
        assert_eq!(metric(text, "reroute_missing"), 0.0);
    }
}
