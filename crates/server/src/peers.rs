//! Peers: the other instances of a cluster whose instances each keep their
//! own embedded store (`--peer URL`, one per other instance).
//!
//! Every payment lives in the store of the instance that accepted it, so no
//! store holds the whole ledger. `GET /payments-summary` therefore adds the
//! peers' own totals (`?scope=local` on each) to this instance's. A peer that
//! does not answer makes the whole summary fail (503): a partial sum would be
//! a wrong figure, and auditors compare these figures with the processors'
//! books. With the PostgreSQL store every instance sees the whole ledger and
//! no peers are configured.
//!
//! The same goes for one payment (`GET /payments/{id}?scope=local`): a
//! client that re-sends a payment after an instance failed to answer may
//! reach another instance, and then two stores hold it. The processor
//! charges it once; the worker that finds it already charged from another
//! send asks the peers which of them holds it, so that only one ledger
//! records it (see `worker`).

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::StatusCode;
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use hyper_util::rt::TokioExecutor;
use reroute_core::{CorrelationId, Money, Timestamp};
use reroute_store::Totals;

use crate::api::payments::PaymentView;

/// Why the peers' totals could not be had.
#[derive(Debug, thiserror::Error)]
#[error("peer {peer} gave no {what} ({reason}): the cluster's answer would be incomplete")]
pub struct PeerError {
    pub peer: String,
    pub what: &'static str,
    pub reason: String,
}

/// The other instances, and a client to ask them.
pub struct Peers {
    urls: Vec<String>,
    http: Client<HttpConnector, Empty<Bytes>>,
    timeout: Duration,
}

/// One line of a peer's `GET /payments-summary?scope=local`.
#[derive(serde::Deserialize)]
struct Line {
    #[serde(rename = "totalRequests")]
    total_requests: u64,
    #[serde(rename = "totalAmount")]
    total_amount: Money,
}

impl Peers {
    /// `urls` are base URLs (`http://host:port`); `timeout` bounds each call.
    pub fn new(urls: Vec<String>, timeout: Duration) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(timeout));
        let http = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        let urls = urls
            .into_iter()
            .map(|u| u.trim_end_matches('/').to_owned())
            .collect();
        Self {
            urls,
            http,
            timeout,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.urls.is_empty()
    }

    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    /// Every peer's own totals for the window, asked all at once; the first
    /// failure fails the whole.
    pub async fn totals(
        &self,
        from: Option<Timestamp>,
        to: Option<Timestamp>,
    ) -> Result<Vec<Totals>, PeerError> {
        let mut query = String::from("scope=local");
        for (name, bound) in [("from", from), ("to", to)] {
            if let Some(at) = bound {
                query.push_str(&format!("&{name}={at}"));
            }
        }
        let asks = self.urls.iter().map(|peer| {
            let url = format!("{peer}/payments-summary?{query}");
            async move {
                let lines: BTreeMap<String, Line> = self
                    .ask(&url)
                    .await
                    .and_then(|answer| answer.ok_or_else(|| "answered 404".to_owned()))
                    .map_err(|reason| PeerError {
                        peer: peer.clone(),
                        what: "summary",
                        reason,
                    })?;
                Ok(lines.into_iter().map(|(processor, line)| Totals {
                    processor,
                    requests: line.total_requests,
                    amount: line.total_amount,
                }))
            }
        });
        let answers = futures_util::future::try_join_all(asks).await?;
        Ok(answers.into_iter().flatten().collect())
    }

    /// Every peer's own record of payment `id`, from the peers that hold
    /// it, asked all at once; the first failure fails the whole (a peer that
    /// does not answer may hold it).
    pub async fn find(&self, id: CorrelationId) -> Result<Vec<PaymentView>, PeerError> {
        let asks = self.urls.iter().map(|peer| {
            let url = format!("{peer}/payments/{id}?scope=local");
            async move {
                self.ask::<PaymentView>(&url)
                    .await
                    .map_err(|reason| PeerError {
                        peer: peer.clone(),
                        what: "payment record",
                        reason,
                    })
            }
        });
        let answers = futures_util::future::try_join_all(asks).await?;
        Ok(answers.into_iter().flatten().collect())
    }

    /// GETs `url`: its JSON on a 200, `None` on a 404, else why not.
    async fn ask<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<Option<T>, String> {
        let uri: hyper::Uri = url.parse().map_err(|e| format!("bad URL: {e}"))?;
        let call = async {
            let response = self
                .http
                .get(uri)
                .await
                .map_err(|e| format!("unreachable: {e}"))?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| format!("answer cut short: {e}"))?
                .to_bytes();
            match status {
                StatusCode::OK => serde_json::from_slice(&body)
                    .map(Some)
                    .map_err(|e| format!("unreadable answer: {e}")),
                StatusCode::NOT_FOUND => Ok(None),
                _ => Err(format!("answered {status}")),
            }
        };
        tokio::time::timeout(self.timeout, call)
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {} ms", self.timeout.as_millis())))
    }
}
