//! What the bench's end-to-end tests share: the real router on a free port
//! over a fresh embedded store, and a JSON `GET`.

use std::path::Path;

use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use reroute_server::{App, ServeArgs};

#[derive(Parser)]
struct ServeCli {
    #[command(flatten)]
    serve: ServeArgs,
}

/// A router serving in this process until [`Router::stop`].
pub struct Router {
    pub url: String,
    stop: Box<dyn FnOnce() + Send>,
    served: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// `reroute serve` on 127.0.0.1, a free port, the embedded store at
/// `<dir>/reroute.db` (whatever DATABASE_URL says), and `args` added.
pub async fn spawn_router(dir: &Path, args: &[&str]) -> Router {
    let db = dir.join("reroute.db");
    let mut argv = vec!["reroute", "--host", "127.0.0.1", "--port", "0"];
    argv.extend(["--db", db.to_str().unwrap(), "--store", ""]);
    argv.extend(args);
    let config = ServeCli::parse_from(argv).serve.into_config().unwrap();
    let app = App::build(config).await.unwrap();
    let token = app.shutdown_token();
    Router {
        url: format!("http://127.0.0.1:{}", app.port()),
        stop: Box::new(move || token.cancel()),
        served: tokio::spawn(app.run_until_stopped()),
    }
}

impl Router {
    /// Stops it and waits until it has.
    pub async fn stop(self) {
        (self.stop)();
        self.served.await.unwrap().unwrap();
    }
}

/// `GET url` (with the simulator's default admin token), expecting 200 and
/// JSON.
pub async fn get_json(url: &str) -> serde_json::Value {
    let request = hyper::Request::get(url)
        .header("X-Rinha-Token", "123")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let client = Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
    let response = client.request(request).await.unwrap();
    assert_eq!(response.status(), 200, "GET {url}");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&body).unwrap()
}
