//! One `reroute serve` per embedded store file, through the binary: a
//! second router started on a file a live one uses exits at once, non-zero,
//! naming the file and the process that has it, before it binds anything;
//! the first goes on serving. Once the first dies (kill -9 included) the
//! file is free again.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hyper::Method;

mod common;
use common::*;

fn serve(db: &std::path::Path, port: u16) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_reroute"));
    command
        .args(["serve", "--host", "127.0.0.1", "--port", &port.to_string()])
        .arg("--db")
        .arg(db)
        // The embedded store, whatever the machine's environment says.
        .env_remove("DATABASE_URL")
        .env_remove("REROUTE_CONFIG")
        .env("RUST_LOG", "warn");
    command
}

/// Kills the router when the test ends, passed or not.
struct Router(Child);

impl Drop for Router {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_router_on_one_store_file_exits_at_once_naming_the_file_and_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("same.db");
    let http = http();
    let first_port = free_port();
    let first = Router(
        serve(&db, first_port)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the first router starts"),
    );
    let first_url = format!("http://127.0.0.1:{first_port}");
    wait_ready(&http, &first_url).await;

    let second_port = free_port();
    let started = Instant::now();
    let second = tokio::task::spawn_blocking({
        let db = db.clone();
        move || finish_within(serve(&db, second_port), Duration::from_secs(20))
    })
    .await
    .unwrap()
    .expect("the second router exited instead of serving");
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "{stderr}");
    assert!(
        took < Duration::from_secs(5),
        "it refused at once, not after {took:?}: {stderr}"
    );
    assert!(
        stderr.contains(&db.display().to_string()),
        "stderr names the file: {stderr}"
    );
    assert!(
        stderr.contains(&format!("PID {}", first.0.id())),
        "stderr names the first router's process: {stderr}"
    );

    // The first goes on serving.
    let (status, _) = call(
        &http,
        Method::POST,
        &format!("{first_url}/payments"),
        &format!(
            r#"{{"correlationId":"{}","amount":19.90}}"#,
            reroute_core::CorrelationId::new_random()
        ),
    )
    .await
    .expect("the first router answers");
    assert_eq!(status, 202);
    let (status, _) = call(&http, Method::GET, &format!("{first_url}/readyz"), "")
        .await
        .expect("the first router answers");
    assert_eq!(status, 200);

    // kill -9 takes the lock with the process: a new router starts on the file.
    drop(first);
    let third_port = free_port();
    let _third = Router(
        serve(&db, third_port)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("a router starts"),
    );
    wait_ready(&http, &format!("http://127.0.0.1:{third_port}")).await;
}
