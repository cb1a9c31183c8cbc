//! The Rinha topologies end to end, behind nginx (installed from Debian by
//! scripts/need-nginx.sh when missing), against `reroute sim`, all started by
//! `scripts/rinha-topology.sh`: two `reroute serve` instances over one
//! PostgreSQL database (the test's own), and the shipped shape, two `reroute
//! edge` processes in front of one core on the embedded store, over unix
//! sockets.
//!
//! Under a short `reroute bench rinha` through nginx, five seconds in, api1
//! (the core, when embedded) is killed with SIGKILL and started again at once
//! with the same command line. The bench must still finish with 0
//! inconsistencies and lag 0 (every payment answered 2xx is in the books, and
//! nothing else), with hundreds of payments processed. And through the edges,
//! one correlationId is one payment whichever edge takes it.

use std::io::Read;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Output, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hyper::Method;
use serde_json::Value;

mod common;
use common::*;

/// The bench's length; the kill comes `KILL_AFTER` seconds into it.
const DURATION: &str = "12s";
const KILL_AFTER: &str = "5";
/// How long the whole script may take (nginx install, start, bench, stop).
const GUARD: Duration = Duration::from_secs(180);

/// Two consecutive ports both free now, below the ephemeral range (so no
/// outgoing connection takes them meanwhile): instance i listens on
/// BASE_PORT + i.
fn free_base_port() -> u16 {
    let seed = std::process::id() as u64
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos() as u64;
    for attempt in 0..200u64 {
        let base = 20_000 + ((seed.wrapping_mul(7919) + attempt * 37) % 12_000) as u16;
        let free = |p: u16| TcpListener::bind(("127.0.0.1", p)).is_ok();
        if free(base + 1) && free(base + 2) {
            return base;
        }
    }
    panic!("no two consecutive free ports between 20000 and 32000");
}

/// The topology's settings: the same environment for `bench` and `stop`.
struct Topology {
    env: Vec<(&'static str, String)>,
}

impl Topology {
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("bash");
        cmd.arg(scripts().join("rinha-topology.sh"))
            .args(args)
            .env_remove("INSTANCES")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null());
        cmd
    }
}

/// Whatever happened, the topology is stopped (the script's own trap does
/// not run if it is killed by the guard timeout).
impl Drop for Topology {
    fn drop(&mut self) {
        let _ = self
            .command(&["stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn drain(mut pipe: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = pipe.read_to_end(&mut out);
        out
    })
}

/// Runs `child` to its end, or kills its whole process group after `guard`.
fn run_guarded(mut child: Child, guard: Duration) -> (Output, bool) {
    let (out, err) = (
        drain(child.stdout.take().unwrap()),
        drain(child.stderr.take().unwrap()),
    );
    let deadline = Instant::now() + guard;
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            timed_out = true;
            // The script, the bench and the instances share the group.
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let output = Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    };
    (output, timed_out)
}

#[test]
fn rinha_through_nginx_over_postgres_survives_a_kill_of_one_instance() {
    let database = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(Database::create());
    // The default lease (10 s): the restarted api1 takes the payments its
    // killed process held over at once, by its name, rather than after their
    // lease (which would leave them pending at the end of a 12 s bench: lag
    // > 0).
    bench_with_a_kill(
        vec![
            ("STORE", "postgres".to_owned()),
            ("DATABASE_URL", database.url()),
        ],
        &["api1.log", "api2.log"],
    );
    drop(database);
}

/// The shipped shape: `os`, the edges accepting in the core's accept table.
#[test]
fn rinha_through_nginx_on_edges_and_one_core_survives_a_kill_of_the_core() {
    bench_with_a_kill(
        vec![
            ("STORE", "embedded".to_owned()),
            ("DURABILITY", "os".to_owned()),
        ],
        &["core.log", "edge1.log", "edge2.log"],
    );
}

/// One topology at a time: each starts `reroute sim` on 8001/8002. An OS
/// lock on a file of the build's own temporary directory, held until the
/// returned file is dropped: it keeps the tests apart whether they share a
/// process (`cargo test`) or each has its own (`cargo nextest run`); the OS
/// releases it when its holder dies.
fn one_at_a_time() -> std::fs::File {
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("rinha-topology.lock");
    let file = std::fs::File::create(&path)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
    file.lock()
        .unwrap_or_else(|e| panic!("cannot lock {}: {e}", path.display()));
    file
}

/// The topology's own settings, on ports and in a directory of this test's.
fn topology(work: &std::path::Path, mut env: Vec<(&'static str, String)>) -> Topology {
    env.extend([
        ("REROUTE_BIN", env!("CARGO_BIN_EXE_reroute").to_owned()),
        ("LB_PORT", free_port().to_string()),
        ("BASE_PORT", free_base_port().to_string()),
        ("WORK", work.display().to_string()),
    ]);
    Topology { env }
}

fn bench_with_a_kill(env: Vec<(&'static str, String)>, router_logs: &[&str]) {
    let _one = one_at_a_time();
    let started = Instant::now();
    need_nginx();
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("result.json");
    let mut env = env;
    env.extend([
        ("OUT", out.display().to_string()),
        ("KILL_AFTER", KILL_AFTER.to_owned()),
    ]);
    let topology = topology(work.path(), env);

    let child = topology
        .command(&["bench", "--duration", DURATION, "--max-users", "60"])
        .arg("--no-progress")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("bash runs");
    let (output, timed_out) = run_guarded(child, GUARD);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let logs = || {
        router_logs
            .iter()
            .chain(&["nginx.log", "sim.log"])
            .map(|f| {
                let text = std::fs::read_to_string(work.path().join(f)).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(20).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                format!("--- {f} (last lines)\n{}\n", tail.join("\n"))
            })
            .collect::<String>()
    };
    let context = format!("--- stdout\n{stdout}\n--- stderr\n{stderr}");
    assert!(
        !timed_out,
        "the topology bench did not end within {GUARD:?}\n{context}\n{}",
        logs()
    );
    assert!(
        output.status.success(),
        "the topology bench failed ({})\n{context}\n{}",
        output.status,
        logs()
    );
    assert!(
        stdout.contains("KILL_AFTER: killed api1"),
        "api1 was not killed mid-run\n{context}"
    );
    assert!(
        stdout.contains("KILL_AFTER: api1 ready again"),
        "api1 did not come back after the kill\n{context}\n{}",
        logs()
    );

    let text = std::fs::read_to_string(&out)
        .unwrap_or_else(|e| panic!("no result JSON at {}: {e}\n{context}", out.display()));
    let result: Value = serde_json::from_str(&text).expect("the result is JSON");
    let inconsistencies = &result["multa"]["composicao"]["num_inconsistencias"];
    let lag = &result["lag"]["lag"];
    let accepted = result["pagamentos_solicitados"]["qtd_sucesso"]
        .as_u64()
        .expect("qtd_sucesso");
    let failed = &result["pagamentos_solicitados"]["qtd_falha"];
    let processed = [
        "pagamentos_realizados_default",
        "pagamentos_realizados_fallback",
    ]
    .iter()
    .map(|s| {
        result[s]["num_pagamentos"]
            .as_u64()
            .expect("num_pagamentos")
    })
    .sum::<u64>();
    let kill_lines: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("KILL_AFTER"))
        .collect();
    println!(
        "{}\ninconsistencies {inconsistencies}, lag {lag}, payments accepted {accepted} \
         (failed {failed}), processed {processed}, statuses {}, p99 {}, http {}; \
         {:.1} s in all",
        kill_lines.join("\n"),
        result["reroute"]["payments"]["statuses"],
        result["p99"]["valor"],
        result["reroute"]["http"],
        started.elapsed().as_secs_f64()
    );

    assert_eq!(inconsistencies, 0, "inconsistencies\n{context}");
    assert_eq!(lag, 0, "lag\n{context}");
    assert_eq!(result["caixa_dois"]["detectado"], false, "{context}");
    assert!(
        accepted >= 200 && processed == accepted,
        "too few payments: {accepted} accepted, {processed} processed\n{context}"
    );
    drop(topology);
}

/// POST /payments through nginx (which picks an edge); the status.
async fn post(http: &Http, lb: &str, id: &str, amount: &str) -> u16 {
    call(
        http,
        Method::POST,
        &format!("{lb}/payments"),
        &format!(r#"{{"correlationId":"{id}","amount":{amount}}}"#),
    )
    .await
    .map_or(0, |(status, _)| status)
}

#[test]
fn through_every_edge_one_correlation_id_is_one_payment_and_health_one_view() {
    let _one = one_at_a_time();
    need_nginx();
    let work = tempfile::tempdir().unwrap();
    // The shipped shape: `os`, the edges accepting in the core's table.
    let topology = topology(
        work.path(),
        vec![
            ("STORE", "embedded".to_owned()),
            ("DURABILITY", "os".to_owned()),
        ],
    );
    let started = topology.command(&["start"]).output().expect("bash runs");
    assert!(
        started.status.success(),
        "the topology did not start
{}
{}",
        String::from_utf8_lossy(&started.stdout),
        String::from_utf8_lossy(&started.stderr)
    );
    let lb_port = &topology
        .env
        .iter()
        .find(|(k, _)| *k == "LB_PORT")
        .unwrap()
        .1;
    let lb = format!("http://127.0.0.1:{lb_port}");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let http = http();
        // nginx takes turns between the two edges: four posts and two
        // conflicts visit both.
        let id = "7b0f2f4e-1a1e-4c55-9d0e-6b2b3c4d5e6f";
        let mut statuses = Vec::new();
        for _ in 0..4 {
            statuses.push(post(&http, &lb, id, "19.90").await);
        }
        for _ in 0..2 {
            statuses.push(post(&http, &lb, id, "29.90").await);
        }
        assert_eq!(statuses, [202, 200, 200, 200, 409, 409]);

        // The same new id, 32 times at once: one is accepted.
        let id = "8c1f3f5f-2b2f-4d66-ae1f-7c3c4d5e6f70";
        let posts: Vec<_> = (0..32)
            .map(|_| {
                let (http, lb) = (http.clone(), lb.clone());
                tokio::spawn(async move { post(&http, &lb, id, "10.00").await })
            })
            .collect();
        let mut statuses = Vec::new();
        for p in posts {
            statuses.push(p.await.unwrap());
        }
        statuses.sort_unstable();
        assert_eq!(statuses[0], 200, "{statuses:?}");
        assert_eq!(
            statuses.iter().filter(|s| **s == 202).count(),
            1,
            "{statuses:?}"
        );
        assert!(
            statuses.iter().all(|s| *s == 200 || *s == 202),
            "{statuses:?}"
        );

        // Both payments charged once, in one summary whichever edge answers.
        let summary = |http: Http, lb: String| async move {
            call(&http, Method::GET, &format!("{lb}/payments-summary"), "")
                .await
                .map(|(_, v)| v)
        };
        let mut settled = None;
        for _ in 0..100 {
            let v = summary(http.clone(), lb.clone()).await;
            if v.as_ref()
                .is_some_and(|v| v["default"]["totalRequests"] == 2)
            {
                settled = v;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let settled = settled.expect("both payments paid within 10 s");
        for _ in 0..4 {
            assert_eq!(
                summary(http.clone(), lb.clone()).await.as_ref(),
                Some(&settled)
            );
        }
        // Health: one view at every door.
        let health = |http: Http, lb: String| async move {
            let (status, v) = call(&http, Method::GET, &format!("{lb}/api/v1/health"), "")
                .await
                .expect("health answers");
            assert_eq!(status, 200);
            v["processors"]
                .as_array()
                .expect("processors")
                .iter()
                .map(|p| (p["processor_id"].clone(), p["total_transactions"].clone()))
                .collect::<Vec<_>>()
        };
        let first = health(http.clone(), lb.clone()).await;
        assert!(
            first.iter().any(|(id, n)| id == "default" && n == 2),
            "{first:?}"
        );
        for _ in 0..4 {
            assert_eq!(health(http.clone(), lb.clone()).await, first);
        }
    });
    drop(topology);
}
