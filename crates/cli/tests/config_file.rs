//! The configuration file through the binary: `reroute config` shows each
//! value and where it came from (flag > environment > file > default), and
//! a mistake stops `reroute serve` before it binds anything, with the file
//! and the key named and a non-zero exit.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

mod common;
use common::finish_within;

/// Every variable `reroute serve` reads, so that the machine's environment
/// (DATABASE_URL is set where the tests run) does not leak into the answers.
const SERVE_VARIABLES: &[&str] = &[
    "REROUTE_CONFIG",
    "APP_PORT",
    "SERVER_PORT",
    "REROUTE_HOST",
    "REROUTE_DB",
    "DEFAULT_PROCESSOR_URL",
    "PROCESSOR_DEFAULT_URL",
    "FALLBACK_PROCESSOR_URL",
    "PROCESSOR_FALLBACK_URL",
    "REROUTE_PATIENCE_MS",
    "REQUEST_TIMEOUT",
    "HEALTH_CHECK_INTERVAL",
    "REROUTE_WORKERS",
    "REROUTE_ADMIN_TOKEN",
    "DATABASE_URL",
    "REROUTE_INSTANCE",
    "REROUTE_LEASE_MS",
    "REROUTE_TRIP_AFTER",
    "REROUTE_PROCESSORS",
    "REROUTE_LOG_FORMAT",
    "REROUTE_RATE_LIMIT_PER_SECOND",
    "REROUTE_RATE_LIMIT_BURST",
    "REROUTE_TRUST_FORWARDED_FOR",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_SERVICE_NAME",
];

fn reroute(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_reroute"));
    command.args(args);
    for name in SERVE_VARIABLES {
        command.env_remove(name);
    }
    command.envs(env.iter().copied());
    command
}

/// Runs `command` to its end; a command still running after 30 s (a router
/// that started when it should have refused to) is killed and fails the test.
fn finish(command: Command) -> Output {
    finish_within(command, Duration::from_secs(30))
        .expect("reroute did not exit: it should have refused its configuration")
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn config_shows_each_value_and_where_it_came_from() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "reroute.toml",
        "[server]\nport = 8080\nworkers = 7\nadmin_token = \"from-the-file\"\n\n\
         [routing]\npatience_ms = 1500\n\n[telemetry]\nlog_format = \"text\"\n",
    );
    let output = finish(reroute(
        &["config", "--workers", "9"],
        &[("REROUTE_CONFIG", &file), ("APP_PORT", "7000")],
    ));
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8(output.stdout).unwrap();
    for line in [
        format!("# Configuration file: {file} (from env REROUTE_CONFIG)."),
        "port = 7000  # env APP_PORT".to_owned(),
        "workers = 9  # --workers".to_owned(),
        format!("patience_ms = {}  # file {file}", 1500),
        format!("log_format = \"text\"  # file {file}"),
        "trip_after = 3  # default".to_owned(),
        "rate_limit_per_second = 0  # default (0: no limit)".to_owned(),
        format!("# admin_token = \"********\"  # file {file}, masked"),
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "no line {line:?} in:\n{text}"
        );
    }
    assert!(
        !text.contains("from-the-file"),
        "the secret is masked:\n{text}"
    );

    // The global --log-format outranks the file, on either side of the
    // subcommand.
    for args in [
        ["--log-format", "json", "config"],
        ["config", "--log-format", "json"],
    ] {
        let text =
            String::from_utf8(finish(reroute(&args, &[("REROUTE_CONFIG", &file)])).stdout).unwrap();
        assert!(
            text.lines()
                .any(|l| l == "log_format = \"json\"  # --log-format"),
            "{text}"
        );
    }
}

#[test]
fn the_printed_configuration_runs_as_a_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let output = finish(reroute(
        &["config", "--port", "8123", "--rate-limit-per-second", "40"],
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")],
    ));
    assert!(output.status.success(), "{output:?}");
    let printed = write(
        dir.path(),
        "printed.toml",
        &String::from_utf8(output.stdout).unwrap(),
    );
    let again = finish(reroute(&["config", "--config", &printed], &[]));
    assert!(again.status.success(), "{again:?}");
    let text = String::from_utf8(again.stdout).unwrap();
    for line in [
        format!("port = 8123  # file {printed}"),
        format!("rate_limit_per_second = 40  # file {printed}"),
        format!("rate_limit_burst = 40  # file {printed}"),
        format!("otlp_endpoint = \"http://127.0.0.1:4318\"  # file {printed}"),
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "no line {line:?} in:\n{text}"
        );
    }
}

/// Arguments, environment, and how the error message starts.
type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, String);

#[test]
fn a_mistake_stops_serve_naming_where_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, text: &str| write(dir.path(), name, text);
    let unknown = file("unknown.toml", "[server]\nport = 8080\nprot = 8081\n");
    let bad_value = file("value.toml", "[limits]\nrate_limit_burst = 0\n");
    let bad_type = file("type.toml", "[storage]\nlease_ms = \"ten seconds\"\n");
    let syntax = file("syntax.toml", "[server\nport = 1\n");
    let table = file("table.toml", "[processor]\ndefault_url = \"http://x\"\n");
    let missing = dir.path().join("missing.toml").display().to_string();
    let cases: Vec<Case> = vec![
        (
            vec!["--config", &unknown],
            vec![],
            format!("{unknown}: server.prot: unknown field `prot`"),
        ),
        (
            vec![],
            vec![("REROUTE_CONFIG", &bad_value)],
            format!("{bad_value}: limits.rate_limit_burst: must be at least 1"),
        ),
        (
            vec!["--config", &bad_type],
            vec![],
            format!("{bad_type}: storage.lease_ms: invalid type: string \"ten seconds\""),
        ),
        (vec!["--config", &syntax], vec![], format!("{syntax}: ")),
        (
            vec!["--config", &table],
            vec![],
            format!("{table}: processor: unknown field `processor`"),
        ),
        (
            vec!["--config", &missing],
            vec![],
            format!("{missing}: cannot read it"),
        ),
        // The environment and the flags are named as such.
        (
            vec![],
            vec![("REROUTE_WORKERS", "0")],
            "REROUTE_WORKERS: must be at least 1".to_owned(),
        ),
        (
            vec!["--lease-ms", "5"],
            vec![],
            "--lease-ms: must be at least 1000".to_owned(),
        ),
    ];
    for (args, env, want) in cases {
        let mut argv = vec!["serve", "--host", "127.0.0.1", "--port", "0"];
        argv.extend(args.iter().copied());
        let output = finish(reroute(&argv, &env));
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(output.status.code(), Some(1), "{argv:?} {env:?}: {stderr}");
        assert!(
            stderr.starts_with(&format!("reroute: invalid configuration: {want}")),
            "{argv:?} {env:?}: {stderr}"
        );
        // `reroute config` refuses it the same way.
        argv[0] = "config";
        let output = finish(reroute(&argv, &env));
        assert_eq!(output.status.code(), Some(1), "config {argv:?}");
    }
}

/// With PostgreSQL, a lease that a processor timeout plus one renewal
/// interval can use up would let another instance take a payment over while
/// a send of it is in flight: `serve` refuses it at once, before it connects
/// or binds, naming both values and what to set; `config` refuses it too.
#[test]
fn serve_refuses_a_lease_that_does_not_outlast_the_processor_timeout_and_a_renewal() {
    let argv = [
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--store",
        "postgres://postgres@127.0.0.1:5432/test",
        "--lease-ms",
        "3000",
        "--processor-timeout-ms",
        "2000",
    ];
    let started = std::time::Instant::now();
    let output = finish(reroute(&argv, &[]));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "refused at once: {stderr}"
    );
    assert!(
        stderr.starts_with("reroute: invalid configuration: --lease-ms: a lease of 3000 ms"),
        "{stderr}"
    );
    for part in ["--processor-timeout-ms", "2000 ms", "at least 3001 ms"] {
        assert!(stderr.contains(part), "{part:?} not in {stderr}");
    }
    let mut argv = argv;
    argv[0] = "config";
    let output = finish(reroute(&argv, &[]));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("--lease-ms: a lease of 3000 ms"),
        "{stderr}"
    );
}

/// An accept table on a memory filesystem cannot keep `stable`'s promise
/// (its `msync` writes nothing to a disk): the core refuses to start, naming
/// the file and the way out; at `os` the same file is what the docs advise.
#[cfg(target_os = "linux")]
#[test]
fn serve_refuses_an_accept_table_in_memory_at_stable() {
    let disk = tempfile::tempdir().unwrap();
    let shm = tempfile::tempdir_in("/dev/shm").unwrap();
    let table = shm.path().join("core.accepts");
    let db = disk.path().join("core.db");
    let socket = disk.path().join("core.sock");
    let argv = [
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--db",
        db.to_str().unwrap(),
        "--store",
        "",
        "--edge-socket",
        socket.to_str().unwrap(),
        "--accept-table",
        table.to_str().unwrap(),
        "--durability",
        "stable",
    ];
    let output = finish(reroute(&argv, &[]));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    for part in [
        table.to_str().unwrap(),
        "memory filesystem",
        "--durability os",
    ] {
        assert!(stderr.contains(part), "{part:?} not in {stderr}");
    }
}
