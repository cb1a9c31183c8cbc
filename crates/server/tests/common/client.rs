//! The tests' HTTP client: JSON in and out over hyper, with the answer's
//! head or raw bytes when a test needs them, a client that leaves from
//! another local address (another client, as the rate limit sees it), and
//! the processors' admin calls with their token.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

pub const TOKEN: &str = "123";

pub struct Http(Client<HttpConnector, Full<Bytes>>);

impl Default for Http {
    fn default() -> Self {
        Self(Client::builder(TokioExecutor::new()).build(HttpConnector::new()))
    }
}

impl Http {
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (StatusCode, Value) {
        let (status, _, value) = self.send_with_headers(method, url, headers, body).await;
        (status, value)
    }

    /// One request with any bytes as its body: the answer's head and body.
    async fn exchange(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> (hyper::http::response::Parts, Bytes) {
        let mut req = Request::builder().method(method).uri(url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(Full::new(body)).unwrap();
        let res = tokio::time::timeout(Duration::from_secs(10), self.0.request(req))
            .await
            .expect("request timed out")
            .expect("request failed");
        let (parts, body) = res.into_parts();
        (parts, body.collect().await.unwrap().to_bytes())
    }

    /// A GET whose body is text, not JSON.
    pub async fn get_text(&self, url: &str) -> (StatusCode, String) {
        let req = Request::get(url).body(Full::new(Bytes::new())).unwrap();
        let res = tokio::time::timeout(Duration::from_secs(10), self.0.request(req))
            .await
            .expect("request timed out")
            .expect("request failed");
        let status = res.status();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(bytes.to_vec()).unwrap())
    }

    pub async fn get(&self, url: &str) -> (StatusCode, Value) {
        self.send(Method::GET, url, &[], "").await
    }

    pub async fn post_json(&self, url: &str, body: &str) -> (StatusCode, Value) {
        self.send(
            Method::POST,
            url,
            &[("content-type", "application/json")],
            body,
        )
        .await
    }

    /// A processor admin call with the token.
    pub async fn admin(&self, method: Method, url: &str, body: &str) -> (StatusCode, Value) {
        self.send(
            method,
            url,
            &[
                ("content-type", "application/json"),
                ("x-rinha-token", TOKEN),
            ],
            body,
        )
        .await
    }

    /// A client whose connections leave from `local` (any 127.x.y.z reaches
    /// the router on 127.0.0.1): another client, as the router sees it.
    pub fn bound_to(local: std::net::IpAddr) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_local_address(Some(local));
        Self(Client::builder(TokioExecutor::new()).build(connector))
    }

    /// A request whose answer's headers matter too.
    pub async fn send_with_headers(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (StatusCode, hyper::HeaderMap, Value) {
        let (parts, bytes) = self
            .exchange(method, url, headers, Bytes::from(body.to_owned()))
            .await;
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (parts.status, parts.headers, value)
    }

    /// Any bytes as the body (not necessarily UTF-8); the answer's status,
    /// content type and raw body.
    pub async fn send_bytes(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> (StatusCode, Option<String>, Bytes) {
        let (parts, bytes) = self.exchange(method, url, headers, Bytes::from(body)).await;
        let content_type = parts
            .headers
            .get(hyper::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        (parts.status, content_type, bytes)
    }

    /// A JSON `POST` whose answer is kept raw: status, content type, bytes.
    pub async fn post_json_raw(
        &self,
        url: &str,
        body: &str,
    ) -> (StatusCode, Option<String>, Bytes) {
        let json = [("content-type", "application/json")];
        self.send_bytes(Method::POST, url, &json, body.as_bytes().to_vec())
            .await
    }
}
