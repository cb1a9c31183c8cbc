//! The Rinha topology end to end: two `reroute serve` instances over one
//! PostgreSQL database (the test's own), behind nginx (installed from Debian
//! by scripts/need-nginx.sh when missing), against `reroute sim`, all started
//! by `scripts/rinha-topology.sh bench`, which runs a short `reroute bench
//! rinha` through nginx. Five seconds in, api1 is killed with SIGKILL and
//! started again at once with the same command line. The bench must still
//! finish with 0 inconsistencies and lag 0 (every payment answered 2xx is in
//! the books, and nothing else), with hundreds of payments processed.

use std::io::Read;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Output, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

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
    let started = Instant::now();
    need_nginx();

    let database = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(Database::create());
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("result.json");
    let topology = Topology {
        env: vec![
            ("REROUTE_BIN", env!("CARGO_BIN_EXE_reroute").to_owned()),
            ("STORE", "postgres".to_owned()),
            ("DATABASE_URL", database.url()),
            ("LB_PORT", free_port().to_string()),
            ("BASE_PORT", free_base_port().to_string()),
            ("WORK", work.path().display().to_string()),
            ("OUT", out.display().to_string()),
            ("KILL_AFTER", KILL_AFTER.to_owned()),
            // The default lease (10 s): the restarted api1 takes the payments
            // its killed process held over at once, by its name, rather than
            // after their lease (which would leave them pending at the end of
            // a 12 s bench: lag > 0).
        ],
    };

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
        ["api1.log", "api2.log", "nginx.log", "sim.log"]
            .iter()
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
    drop(database);
}
