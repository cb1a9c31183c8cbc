//! The API description: `GET /openapi.json` is an OpenAPI 3.1 document that
//! names every route the router serves and nothing it does not, with a
//! request schema for every body and the one error shape for every error.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use http_body_util::Full;
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// What the router serves, written out independently of the code that
/// registers it: a route added or removed on either side fails a test.
const SERVED: &[(&str, &str)] = &[
    ("POST", "/payments"),
    ("GET", "/payments-summary"),
    ("GET", "/payments/{id}"),
    ("POST", "/purge-payments"),
    ("POST", "/api/v1/transactions"),
    ("GET", "/api/v1/health"),
    ("GET", "/api/v1/health/{processor_id}"),
    ("GET", "/api/v1/routing/recommend"),
    ("POST", "/api/v1/routing/recommend"),
    ("GET", "/api/v1/alerts"),
    ("GET", "/api/v1/processors"),
    ("GET", "/metrics"),
    ("GET", "/livez"),
    ("GET", "/readyz"),
    ("GET", "/openapi.json"),
    ("GET", "/dashboard"),
    ("GET", "/dashboard/snapshot"),
    ("GET", "/dashboard/events"),
];

const METHODS: &[&str] = &["GET", "POST", "PUT", "DELETE", "PATCH"];

async fn start() -> (Sims, Backing, TestApp) {
    let (sims, backing) = (Sims::start().await, Backing::embedded());
    let app = TestApp::start_on(&backing, config(&sims, &backing.db(), &[])).await;
    (sims, backing, app)
}

async fn document(app: &TestApp) -> Value {
    let (status, doc) = Http::default()
        .get(&format!("{}/openapi.json", app.url))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc.is_object(), "the document is JSON: {doc}");
    doc
}

/// Every (METHOD, path) the document describes.
fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    doc["paths"]
        .as_object()
        .expect("paths is an object")
        .iter()
        .flat_map(|(path, item)| {
            METHODS
                .iter()
                .filter(|m| item.get(m.to_ascii_lowercase()).is_some())
                .map(|m| (m.to_string(), path.clone()))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The status a route answers, from the response head only (the event feed
/// never ends).
async fn status_of(app: &TestApp, method: &str, path: &str) -> StatusCode {
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    let path = path.replace("{processor_id}", "default");
    let request = Request::builder()
        .method(Method::from_bytes(method.as_bytes()).unwrap())
        .uri(format!("{}{path}", app.url))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap();
    let response = tokio::time::timeout(Duration::from_secs(10), client.request(request))
        .await
        .unwrap_or_else(|_| panic!("{method} {path} timed out"))
        .unwrap_or_else(|e| panic!("{method} {path} failed: {e}"));
    response.status()
}

fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => {
            let name = r
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("unexpected $ref {r}"));
            let found = &doc["components"]["schemas"][name];
            assert!(found.is_object(), "$ref {r} resolves");
            found
        }
        None => schema,
    }
}

#[tokio::test]
async fn the_document_is_openapi_3_1_and_names_exactly_the_served_routes() {
    let (_sims, _backing, app) = start().await;
    let doc = document(&app).await;
    let version = doc["openapi"].as_str().unwrap_or_default();
    assert!(version.starts_with("3.1"), "openapi is {version:?}");
    assert!(doc["info"]["title"].is_string());

    let served: BTreeSet<(String, String)> = SERVED
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    let documented = operations(&doc);
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty(),
        "served, not documented: {undocumented:?}"
    );
    assert!(unserved.is_empty(), "documented, not served: {unserved:?}");

    // The router agrees: each documented operation answers (whatever it
    // thinks of an empty body), and each other method on a documented path
    // is refused as not allowed.
    for path in doc["paths"].as_object().unwrap().keys() {
        for method in METHODS {
            let status = status_of(&app, method, path).await;
            if documented.contains(&(method.to_string(), path.clone())) {
                assert!(
                    status != StatusCode::NOT_FOUND && status != StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {path} is documented but answers {status}"
                );
            } else {
                assert_eq!(
                    status,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {path} is not documented but answers"
                );
            }
        }
    }
    // And a path outside the document is not served.
    assert_eq!(
        status_of(&app, "GET", "/api/v1/nothing").await,
        StatusCode::NOT_FOUND
    );
    app.stop().await;
}

#[tokio::test]
async fn every_request_body_and_every_answer_has_a_schema() {
    let (_sims, _backing, app) = start().await;
    let doc = document(&app).await;
    let mut with_body = BTreeSet::new();
    let mut ids = BTreeSet::new();
    for (method, path) in operations(&doc) {
        let op = &doc["paths"][&path][method.to_ascii_lowercase()];
        let id = op["operationId"].as_str().unwrap_or_default().to_owned();
        assert!(
            ids.insert(id.clone()),
            "{method} {path}: operationId {id:?} is unique"
        );
        assert!(
            op["tags"].as_array().is_some_and(|t| !t.is_empty()),
            "{method} {path} has a tag"
        );
        if let Some(body) = op.get("requestBody") {
            let schema = &body["content"]["application/json"]["schema"];
            assert!(schema.is_object(), "{method} {path}: a JSON request schema");
            let schema = resolve(&doc, schema);
            assert!(
                schema["properties"]
                    .as_object()
                    .is_some_and(|p| !p.is_empty()),
                "{method} {path}: the request schema has properties: {schema}"
            );
            assert!(
                schema["required"].as_array().is_some_and(|r| !r.is_empty()),
                "{method} {path}: the request schema names its required fields"
            );
            with_body.insert(format!("{method} {path}"));
        }
        let responses = op["responses"].as_object().expect("responses");
        assert!(
            responses.keys().any(|s| s.starts_with('2')),
            "{method} {path} documents its success"
        );
        for (status, response) in responses {
            let content = response["content"].as_object();
            assert!(
                content.is_some_and(|c| c.values().all(|m| m["schema"].is_object())),
                "{method} {path} {status}: a schema for the answer"
            );
        }
    }
    // Every POST that reads a body says what the body is.
    let expected: BTreeSet<String> = [
        "POST /payments",
        "POST /api/v1/transactions",
        "POST /api/v1/routing/recommend",
    ]
    .map(String::from)
    .into();
    assert_eq!(with_body, expected);
    let payment = resolve(
        &doc,
        &doc["paths"]["/payments"]["post"]["requestBody"]["content"]["application/json"]["schema"],
    );
    for field in ["correlationId", "amount", "paymentMethod", "country"] {
        assert!(
            payment["properties"][field].is_object(),
            "payment has {field}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn every_error_answer_is_the_error_shape() {
    let (_sims, _backing, app) = start().await;
    let doc = document(&app).await;
    let error = &doc["components"]["schemas"]["Error"];
    assert_eq!(error["type"], "object", "{error}");
    assert!(error["properties"]["error"].is_object());
    assert!(error["properties"]["field"].is_object());
    assert_eq!(error["required"], serde_json::json!(["error"]));

    let mut errors = 0;
    for (method, path) in operations(&doc) {
        let op = &doc["paths"][&path][method.to_ascii_lowercase()];
        for (status, response) in op["responses"].as_object().unwrap() {
            let code: u16 = status.parse().expect("a numeric status");
            // Readiness answers 503 with its own report, not an error.
            if code < 400 || path == "/readyz" {
                continue;
            }
            let schema = &response["content"]["application/json"]["schema"];
            assert_eq!(
                schema["$ref"], "#/components/schemas/Error",
                "{method} {path} {status} answers the error shape"
            );
            errors += 1;
        }
    }
    assert!(errors >= 10, "errors are documented ({errors})");

    // What the document says is what the router sends.
    let http = Http::default();
    let (status, body) = http
        .post_json(&format!("{}/payments", app.url), r#"{"amount":1}"#)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let keys: BTreeSet<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, BTreeSet::from(["error", "field"]), "{body}");
    let (status, body) = http.get(&format!("{}/api/v1/health/nope", app.url)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"].is_string(), "{body}");
    app.stop().await;
}

/// A 503 to `POST /payments` may follow a write that stood: the document
/// says so, and describes the fields that tell a client (`outcome`,
/// `retrySafe`), as the router sends them.
#[tokio::test]
async fn the_payments_503_documents_an_unknown_outcome_and_a_safe_retry() {
    let (_sims, _backing, app) = start().await;
    let doc = document(&app).await;
    let unavailable = &doc["paths"]["/payments"]["post"]["responses"]["503"];
    let said = unavailable["description"].as_str().unwrap_or_default();
    assert!(!said.contains("nothing was accepted"), "{said}");
    for part in ["unknown", "same correlationId", "200", "202"] {
        assert!(said.contains(part), "{part:?} not in {said:?}");
    }
    let error = &doc["components"]["schemas"]["Error"]["properties"];
    assert_eq!(error["outcome"]["type"], "string", "{error}");
    assert_eq!(error["retrySafe"]["type"], "boolean", "{error}");
    app.stop().await;
}

#[tokio::test]
async fn every_reference_resolves_and_every_schema_is_used() {
    let (_sims, _backing, app) = start().await;
    let doc = document(&app).await;
    fn refs(v: &Value, out: &mut BTreeSet<String>) {
        match v {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get("$ref") {
                    out.insert(r.clone());
                }
                map.values().for_each(|v| refs(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let mut all = BTreeSet::new();
    refs(&doc, &mut all);
    for r in &all {
        resolve(&doc, &serde_json::json!({ "$ref": r }));
    }
    let defined: BTreeSet<String> = doc["components"]["schemas"]
        .as_object()
        .unwrap()
        .keys()
        .map(|k| format!("#/components/schemas/{k}"))
        .collect();
    let unused: Vec<_> = defined.difference(&all).collect();
    assert!(unused.is_empty(), "schemas nothing refers to: {unused:?}");
    app.stop().await;
}
