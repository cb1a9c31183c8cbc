//! Shared by the end-to-end tests: a fresh simulator per test on free ports,
//! a small HTTP client, and polling with a deadline instead of sleeping.

#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::HeaderMap;
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use reroute_core::CorrelationId;
use reroute_sim::{Sim, SimConfig};
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub const TOKEN: &str = "123";

/// The Rinha pair on free ports, with a short health window so health tests
/// run quickly.
pub async fn spawn_rinha() -> Sim {
    spawn(rinha_config()).await
}

pub fn rinha_config() -> SimConfig {
    let mut config = SimConfig::rinha_on_free_ports();
    config.health_window = Duration::from_millis(1000);
    config
}

pub async fn spawn(config: SimConfig) -> Sim {
    reroute_sim::spawn(config)
        .await
        .expect("the simulator starts")
}

/// An answer, read in full.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

#[derive(Clone)]
pub struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Default for Http {
    fn default() -> Self {
        Self {
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }
}

impl Http {
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        token: Option<&str>,
        body: Option<String>,
    ) -> Reply {
        let mut request = Request::builder().method(method).uri(url);
        if let Some(token) = token {
            request = request.header("X-Rinha-Token", token);
        }
        if body.is_some() {
            request = request.header("Content-Type", "application/json");
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .unwrap();
        let response = self
            .client
            .request(request)
            .await
            .unwrap_or_else(|e| panic!("{url}: {e:?}"));
        let (parts, body) = response.into_parts();
        Reply {
            status: parts.status,
            headers: parts.headers,
            body: body.collect().await.unwrap().to_bytes(),
        }
    }

    pub async fn get(&self, url: &str) -> Reply {
        self.send(Method::GET, url, None, None).await
    }

    pub async fn admin_get(&self, url: &str) -> Reply {
        self.send(Method::GET, url, Some(TOKEN), None).await
    }

    pub async fn admin_put(&self, url: &str, body: &str) -> Reply {
        self.send(Method::PUT, url, Some(TOKEN), Some(body.to_owned()))
            .await
    }

    pub async fn admin_post(&self, url: &str) -> Reply {
        self.send(Method::POST, url, Some(TOKEN), None).await
    }

    /// `POST /payments` with the amount and instant written exactly as given.
    pub async fn pay(
        &self,
        base: &str,
        id: CorrelationId,
        amount: &str,
        requested_at: &str,
    ) -> Reply {
        let body = payment_body(id, amount, requested_at);
        self.send(Method::POST, &format!("{base}/payments"), None, Some(body))
            .await
    }

    /// A payment of 19.90 requested now; returns its id and the answer.
    pub async fn pay_one(&self, base: &str) -> (CorrelationId, Reply) {
        let id = CorrelationId::new_random();
        let reply = self
            .pay(
                base,
                id,
                "19.90",
                &reroute_core::Timestamp::now().to_string(),
            )
            .await;
        (id, reply)
    }

    pub async fn summary(&self, base: &str, query: &str) -> Value {
        let reply = self
            .admin_get(&format!("{base}/admin/payments-summary{query}"))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        reply.json()
    }

    pub async fn stats(&self, base: &str) -> Value {
        let reply = self.admin_get(&format!("{base}/admin/stats")).await;
        assert_eq!(reply.status, StatusCode::OK);
        reply.json()
    }

    pub async fn is_stored(&self, base: &str, id: CorrelationId) -> bool {
        self.get(&format!("{base}/payments/{id}")).await.status == StatusCode::OK
    }

    /// The body of `GET /payments/service-health`, read as JSON.
    pub async fn health(&self, base: &str) -> Value {
        self.get(&format!("{base}/payments/service-health"))
            .await
            .json()
    }

    /// `PUT /admin/configurations/delay` with the Rinha delay in ms.
    pub async fn set_delay(&self, base: &str, delay_ms: i64) -> Reply {
        self.admin_put(
            &format!("{base}/admin/configurations/delay"),
            &format!(r#"{{"delay": {delay_ms}}}"#),
        )
        .await
    }

    /// `PUT /admin/configurations/failure` with the Rinha failure flag.
    pub async fn set_failure(&self, base: &str, failure: bool) -> Reply {
        self.admin_put(
            &format!("{base}/admin/configurations/failure"),
            &format!(r#"{{"failure": {failure}}}"#),
        )
        .await
    }

    /// [`Http::pay_one`] from a task of its own, for a test that acts while
    /// the payment is in flight.
    pub fn pay_one_in_background(&self, base: &str) -> JoinHandle<(CorrelationId, Reply)> {
        let (http, base) = (self.clone(), base.to_owned());
        tokio::spawn(async move { http.pay_one(&base).await })
    }

    /// Waits until the processor has received `count` payments, answered
    /// or not: `what` names the moment in a timeout's message.
    pub async fn until_received(&self, base: &str, count: u64, what: &str) {
        eventually(what, || async {
            self.stats(base).await["payments_received"] == count
        })
        .await;
    }
}

pub fn payment_body(id: CorrelationId, amount: &str, requested_at: &str) -> String {
    format!(r#"{{"correlationId":"{id}","amount":{amount},"requestedAt":"{requested_at}"}}"#)
}

/// Polls `check` until it holds; fails the test after ten seconds. The pause
/// between polls is only pacing, never a stand-in for synchronisation.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if check().await {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
