//! The configuration's unit tests: layering, origins, the shipped files,
//! and the refusals, each through the same parse `reroute serve` does.

use std::path::{Path, PathBuf};
use std::time::Duration;

use reroute_core::{FeeRate, HealthConfig, Registry};

use super::args::ServeArgs;
use super::error::ConfigError;
use super::layers::{Origin, Origins};
use super::serve::{ServeConfig, StoreChoice};
use super::validate::check_lease;
use clap::Parser;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    serve: ServeArgs,
}

fn parse(args: &[&str]) -> Result<ServeConfig, ConfigError> {
    let mut argv = vec!["reroute"];
    argv.extend_from_slice(args);
    Cli::parse_from(argv).serve.into_config()
}

/// As `reroute serve` resolves: with the matches, so that origins tell
/// flags from variables.
fn resolve(args: &[&str]) -> Result<(ServeConfig, Origins), ConfigError> {
    use clap::{CommandFactory, FromArgMatches};
    let mut argv = vec!["reroute"];
    argv.extend_from_slice(args);
    let matches = Cli::command().get_matches_from(argv);
    Cli::from_arg_matches(&matches)
        .unwrap()
        .serve
        .resolve(Some(&matches))
}

/// The registry's processor ids, cheapest first.
fn ids(c: &ServeConfig) -> Vec<String> {
    c.registry
        .by_fee()
        .iter()
        .map(|p| p.id.to_string())
        .collect()
}

/// A `--config` file with `text` in a fresh directory.
fn config_file(text: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("reroute.toml");
    std::fs::write(&path, text).unwrap();
    let path = path.to_str().unwrap().to_owned();
    (dir, path)
}

#[test]
fn an_embedded_database_on_the_command_line_beats_a_url_from_further_down() {
    // Where CI sets DATABASE_URL this is also the environment's case.
    let (c, _) = resolve(&["--db", "/tmp/mine.db"]).unwrap();
    assert!(
        matches!(&c.store, StoreChoice::Embedded(p) if p == Path::new("/tmp/mine.db")),
        "{:?}",
        c.store
    );
    // A file's store URL does not override the flag either...
    let (_dir, file) = config_file("[storage]\nstore = \"postgres://u@h/db\"\n");
    let (c, _) = resolve(&["--config", &file, "--db", "/tmp/mine.db"]).unwrap();
    assert!(matches!(c.store, StoreChoice::Embedded(_)), "{:?}", c.store);
    // ...but is used when nothing above it names a database...
    let (c, _) = resolve(&["--config", &file]).unwrap();
    assert!(
        matches!(c.store, StoreChoice::Postgres { .. }),
        "{:?}",
        c.store
    );
    // ...and both on the command line: the URL, as before.
    let (c, _) = resolve(&["--db", "/tmp/mine.db", "--store", "postgres://u@h/db"]).unwrap();
    assert!(
        matches!(c.store, StoreChoice::Postgres { .. }),
        "{:?}",
        c.store
    );
}

#[test]
fn defaults_suit_the_rinha_topology() {
    let c = parse(&[]).unwrap();
    assert_eq!(c.listen.port(), 9999);
    let ids = ids(&c);
    assert_eq!(ids, ["default", "fallback"]);
    assert_eq!(
        c.registry.by_fee()[0].url.as_deref(),
        Some("http://127.0.0.1:8001")
    );
    assert_eq!(c.policy.patience_ms, 60_000);
}

#[test]
fn invalid_values_name_the_key() {
    let e = parse(&["--default-url", "ftp://x"])
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("DEFAULT_PROCESSOR_URL:"), "{e}");
    let e = parse(&["--workers", "0"]).unwrap_err().to_string();
    assert!(e.starts_with("REROUTE_WORKERS:"), "{e}");
}

#[test]
fn an_accept_table_needs_edges_and_the_embedded_store_at_either_durability() {
    let table = ["--accept-table", "/tmp/t.accepts"];
    let edges = ["--edge-socket", "/tmp/core.sock"];
    let os = ["--durability", "os"];
    for (args, needs) in [
        ([&table[..], &os].concat(), "--edge-socket"),
        (
            [&table[..], &edges, &os, &["--store", "postgres://x@y/z"]].concat(),
            "embedded store",
        ),
    ] {
        let e = parse(&args).unwrap_err().to_string();
        assert!(
            e.starts_with("REROUTE_ACCEPT_TABLE:") && e.contains(needs),
            "{e}"
        );
    }
    // The embedded store named on the command line, whatever DATABASE_URL
    // says (resolved with the matches, as `reroute serve` does).
    let (c, _) = resolve(&[&table[..], &edges, &os, &["--db", "/tmp/t.db"]].concat()).unwrap();
    assert_eq!(c.accept_table.as_deref(), Some(Path::new("/tmp/t.accepts")));
    // At `stable` (the default) too: a 2xx from it then waits for its sync.
    let (c, _) = resolve(&[&table[..], &edges, &["--db", "/tmp/t.db"]].concat()).unwrap();
    assert_eq!(c.durability, reroute_store::Durability::Stable);
    assert_eq!(c.accept_table.as_deref(), Some(Path::new("/tmp/t.accepts")));
}

fn shipped(name: &str) -> String {
    format!("{}/../../config/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn without_a_file_the_engine_runs_on_the_seed_defaults() {
    let c = parse(&[]).unwrap();
    assert_eq!(c.health, HealthConfig::default());
}

#[test]
fn the_techcart_file_declares_the_five_processors() {
    let c = parse(&["--processors", &shipped("techcart.toml")]).unwrap();
    let ids = ids(&c);
    // Cheapest first.
    assert_eq!(
        ids,
        [
            "processor_c",
            "processor_a",
            "processor_e",
            "processor_d",
            "processor_b"
        ]
    );
    let a = c.registry.get("processor_a").unwrap();
    assert_eq!(a.name, "GlobalPay_BR");
    assert_eq!(a.countries, ["BR"]);
    assert_eq!(a.payment_methods, ["PIX", "CARD"]);
    assert_eq!(a.fee, FeeRate::from_ppm(29_000));
    assert!(a.supports(Some("pix"), Some("br")));
    let b = c.registry.get("processor_b").unwrap();
    assert_eq!(b.countries, ["BR", "MX", "CO"]);
    assert_eq!(c.health, HealthConfig::default());
}

#[test]
fn the_rinha_file_is_the_built_in_pair() {
    let c = parse(&["--processors", &shipped("rinha.toml")]).unwrap();
    let built_in = parse(&[]).unwrap();
    let view = |r: &Registry| -> Vec<(String, Option<String>, u32)> {
        r.by_fee()
            .iter()
            .map(|p| (p.id.to_string(), p.url.clone(), p.fee.ppm()))
            .collect()
    };
    assert_eq!(view(&c.registry), view(&built_in.registry));
}

#[test]
fn health_settings_come_from_the_file_then_the_flags() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.toml");
    std::fs::write(
        &path,
        "[[processors]]\nid = \"a\"\nfee = \"0.02\"\n\n[health]\nwindow_size = 20\nmin_transactions = 5\n\n[health.thresholds]\ndown_error_above = 0.6\n",
    )
    .unwrap();
    let p = path.to_str().unwrap();
    let c = parse(&["--processors", p]).unwrap();
    assert_eq!(c.registry.by_fee()[0].url, None);
    assert_eq!(c.health.window_size, 20);
    assert_eq!(c.health.min_transactions, 5);
    assert_eq!(c.health.thresholds.down_error_above, 0.6);
    let c = parse(&["--processors", p, "--health-window-size", "30"]).unwrap();
    assert_eq!(c.health.window_size, 30);
    assert_eq!(c.health.min_transactions, 5);
    assert_eq!(c.health.flap_hold_ms, 10_000);
    let c = parse(&["--processors", p, "--health-flap-hold-ms", "0"]).unwrap();
    assert_eq!(c.health.flap_hold_ms, 0);
}

#[test]
fn a_file_with_only_health_settings_keeps_the_rinha_pair() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.toml");
    std::fs::write(&path, "[health]\nrecovery_dwell = 0\n").unwrap();
    let c = parse(&["--processors", path.to_str().unwrap()]).unwrap();
    assert_eq!(c.registry.len(), 2);
    assert_eq!(c.health.recovery_dwell, 0);
}

#[test]
fn mistakes_in_the_registry_file_are_refused_with_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "[[processors]]\nid = \"a\"\nfee = 1.5\n",
            "fee must be a fraction",
        ),
        (
            "[[processors]]\nid = \"a\"\nfee = 0.1\nfees = 1\n",
            "unknown field",
        ),
        (
            "[[processors]]\nid = \"a b\"\nfee = 0.1\n",
            "not a valid id",
        ),
        (
            "[[processors]]\nid = \"a\"\nfee = 0.1\n[[processors]]\nid = \"a\"\nfee = 0.2\n",
            "declared twice",
        ),
        (
            "[[processors]]\nid = \"a\"\nfee = 0.1\nurl = \"ftp://x\"\n",
            "http://",
        ),
        (
            "[[processors]]\nid = \"a\"\nfee = 0.1\ncountries = [\"Brazil\"]\n",
            "alpha-2",
        ),
        (
            "[[processors]]\nid = \"a\"\nfee = 0.1\npayment_methods = [\"a b\"]\n",
            "letters, digits",
        ),
        ("[health]\nwindow_size = 0\n", "health.window_size"),
        ("[health]\nwindow = 5\n", "unknown field"),
        ("[[processors]]\nid = \"a\"\n", "missing field"),
    ];
    for (i, (text, want)) in cases.into_iter().enumerate() {
        let path = dir.path().join(format!("{i}.toml"));
        std::fs::write(&path, text).unwrap();
        let e = parse(&["--processors", path.to_str().unwrap()])
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("REROUTE_PROCESSORS:"), "{e}");
        assert!(e.contains(want), "{text:?}: {e}");
    }
    let e = parse(&["--processors", "/nonexistent/r.toml"])
        .unwrap_err()
        .to_string();
    assert!(e.contains("cannot read"), "{e}");
    let e = parse(&["--health-window-size", "0"])
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("REROUTE_HEALTH_WINDOW_SIZE:"), "{e}");
}

#[test]
fn trailing_slashes_are_trimmed_from_urls() {
    let c = parse(&["--fallback-url", "http://fallback:8080/"]).unwrap();
    assert_eq!(
        c.registry.get("fallback").unwrap().url.as_deref(),
        Some("http://fallback:8080")
    );
}

#[test]
fn the_example_file_parses_and_equals_the_defaults() {
    let example = shipped("reroute.example.toml");
    let (from_file, origins) = resolve(&["--config", &example]).unwrap();
    let (built_in, _) = resolve(&[]).unwrap();
    assert_eq!(format!("{from_file:?}"), format!("{built_in:?}"));
    // It sets every key with a default (the values the example says are
    // the defaults), not just a few.
    for key in [
        "server.host",
        "server.port",
        "server.workers",
        "routing.default_url",
        "routing.patience_ms",
        "storage.db",
        "storage.lease_ms",
        "storage.summary_settle_ms",
        "health.health_interval_ms",
        "health.health_window_size",
        "telemetry.log_format",
        "limits.rate_limit_per_second",
        "limits.trust_forwarded_for",
    ] {
        assert!(
            matches!(origins.of(key), Origin::File(_) | Origin::Env(_)),
            "{key}: {}",
            origins.of(key)
        );
    }
}

#[test]
fn the_file_sets_what_neither_flags_nor_environment_set() {
    let (_dir, path) = config_file(
        "[server]\nport = 8080\nworkers = 7\n\n[routing]\npatience_ms = 1500\n\n[health]\nhealth_window_size = 20\n",
    );
    let (c, origins) = resolve(&["--config", &path, "--workers", "9"]).unwrap();
    assert_eq!(c.listen.port(), 8080);
    assert_eq!(
        *origins.of("server.port"),
        Origin::File(path.clone().into())
    );
    assert_eq!(c.workers, 9, "the flag wins over the file");
    assert_eq!(*origins.of("server.workers"), Origin::Flag("--workers"));
    assert_eq!(c.policy.patience_ms, 1_500);
    assert_eq!(c.health.window_size, 20);
    assert_eq!(c.processor_timeout, Duration::from_millis(5_000));
    assert_eq!(*origins.of("routing.processor_timeout_ms"), Origin::Default);
    assert_eq!(
        origins.file,
        Some((PathBuf::from(&path), Origin::Flag("--config")))
    );
}

#[test]
fn the_seeds_aliases_outrank_the_file() {
    let (_dir, path) = config_file("[routing]\ndefault_url = \"http://from-file:1\"\n");
    let c = parse(&[
        "--config",
        &path,
        "--processor-default-url",
        "http://from-alias:2",
    ])
    .unwrap();
    assert_eq!(
        c.registry.get("default").unwrap().url.as_deref(),
        Some("http://from-alias:2")
    );
}

#[test]
fn mistakes_in_the_config_file_name_the_file_and_the_key() {
    let cases = [
        ("[server]\nprot = 1\n", "server.prot: unknown field `prot`"),
        ("[serve]\nport = 1\n", "serve: unknown field `serve`"),
        ("[server]\nport = \"x\"\n", "server.port: invalid type"),
        ("\n[server]\nport = 70000\n", "server.port: invalid value"),
        (
            "[server]\nworkers = 0\n",
            "server.workers: must be at least 1",
        ),
        (
            "[server]\nhost = \"here\"\n",
            "server.host: invalid IP address",
        ),
        (
            "[routing]\nfallback_url = \"ftp://x\"\n",
            "routing.fallback_url: \"ftp://x\" must be an http:// URL",
        ),
        (
            "[storage]\nlease_ms = 10\n",
            "storage.lease_ms: must be at least 1000",
        ),
        (
            "[limits]\nrate_limit_burst = 0\n",
            "limits.rate_limit_burst: must be at least 1",
        ),
        (
            "[telemetry]\nlog_format = \"xml\"\n",
            "telemetry.log_format: unknown variant `xml`",
        ),
        (
            "[telemetry]\notlp_endpoint = \"https://collector\"\n",
            "telemetry.otlp_endpoint: https is not supported",
        ),
        (
            "[health]\nwindow_size = 5\n",
            "health.window_size: unknown field",
        ),
        ("port = 9999\n", "port: unknown field `port`"),
    ];
    for (text, want) in cases {
        let (_dir, path) = config_file(text);
        let e = parse(&["--config", &path]).unwrap_err().to_string();
        assert!(e.starts_with(&format!("{path}: ")), "{text:?}: {e}");
        assert!(e.contains(want), "{text:?}: {e}");
    }
    let (_dir, path) = config_file("[server]\nport = 1\n[server\n");
    let e = parse(&["--config", &path]).unwrap_err().to_string();
    assert!(e.starts_with(&format!("{path}: ")), "{e}");
    assert!(e.contains("(line 3)"), "{e}");
    let (_dir, path) = config_file("\n\n[server]\nworkers = -1\n");
    let e = parse(&["--config", &path]).unwrap_err().to_string();
    assert!(e.contains("(line 4)"), "{e}");
    let e = parse(&["--config", "/nonexistent/reroute.toml"])
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("/nonexistent/reroute.toml: cannot read it"),
        "{e}"
    );
}

#[test]
fn a_bad_flag_is_named_as_a_flag_when_the_matches_tell() {
    let e = resolve(&["--workers", "0"]).unwrap_err().to_string();
    assert!(e.starts_with("--workers: must be at least 1"), "{e}");
}

/// With PostgreSQL a holder checks its lease before a send, renews it
/// every third of the lease, and a send lasts up to the processor
/// timeout: a lease that does not outlast timeout + renewal could run
/// out, and the payment be taken over, while a send is in flight.
#[test]
fn a_lease_that_does_not_outlast_the_processor_timeout_and_a_renewal_is_refused() {
    let pg = "postgres://postgres@127.0.0.1:5432/test";
    // 7500 - 2500 (a third) = 5000: not more than the timeout.
    let e = resolve(&[
        "--store",
        pg,
        "--lease-ms",
        "7500",
        "--processor-timeout-ms",
        "5000",
    ])
    .unwrap_err()
    .to_string();
    assert!(e.starts_with("--lease-ms: "), "{e}");
    for part in [
        "7500 ms",
        "5000 ms",
        "--processor-timeout-ms",
        "2500 ms",
        "at least 7501 ms",
        "at most 4999 ms",
    ] {
        assert!(e.contains(part), "{part:?} not in {e}");
    }
    assert!(
        resolve(&[
            "--store",
            pg,
            "--lease-ms",
            "7501",
            "--processor-timeout-ms",
            "5000"
        ])
        .is_ok()
    );
    // A timeout raised past the default lease names the lease's key.
    let e = resolve(&["--store", pg, "--processor-timeout-ms", "7000"])
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("storage.lease_ms: "), "{e}");
    assert!(e.contains("10000 ms") && e.contains("7000 ms"), "{e}");
    // The defaults hold together.
    assert!(resolve(&["--store", pg]).is_ok());
    // The embedded store has no lease.
    assert!(
        resolve(&[
            "--db",
            "r.db",
            "--lease-ms",
            "1000",
            "--processor-timeout-ms",
            "5000"
        ])
        .is_ok()
    );
    // From a file, the file's key is named.
    let (_dir, path) =
        config_file("[routing]\nprocessor_timeout_ms = 2000\n\n[storage]\nlease_ms = 3000\n");
    let e = parse(&["--config", &path, "--store", pg])
        .unwrap_err()
        .to_string();
    assert!(e.starts_with(&format!("{path}: storage.lease_ms: ")), "{e}");
}

#[test]
fn the_lease_and_the_timeout_a_refusal_suggests_are_exactly_the_limits() {
    // The number after `what` in the message.
    let suggested = |message: &str, what: &str| -> u64 {
        let rest = &message[message.find(what).expect(what) + what.len()..];
        rest.split(' ').next().unwrap().parse().unwrap()
    };
    for lease in [1_000, 1_001, 1_002, 2_000, 3_000, 7_500, 10_000, 12_345] {
        for timeout in [
            1, 2, 3, 666, 667, 1_000, 1_333, 2_001, 5_000, 6_667, 8_229, 9_999,
        ] {
            let Err(e) = check_lease(lease, timeout, "the default") else {
                continue;
            };
            let least = suggested(&e, "at least ");
            assert!(check_lease(least, timeout, "").is_ok(), "{e}");
            assert!(check_lease(least - 1, timeout, "").is_err(), "{e}");
            let longest = suggested(&e, "at most ");
            assert!(check_lease(lease, longest, "").is_ok(), "{e}");
            assert!(check_lease(lease, longest + 1, "").is_err(), "{e}");
        }
    }
}

#[test]
fn rate_limiting_is_off_unless_a_rate_is_set() {
    assert!(parse(&[]).unwrap().rate_limit.is_none());
    assert!(
        parse(&["--rate-limit-burst", "5"])
            .unwrap()
            .rate_limit
            .is_none()
    );
    let limit = parse(&["--rate-limit-per-second", "20"])
        .unwrap()
        .rate_limit
        .unwrap();
    assert_eq!((limit.per_second.get(), limit.burst.get()), (20, 20));
    assert!(!limit.trust_forwarded_for);
    let (_dir, path) = config_file(
        "[limits]\nrate_limit_per_second = 5\nrate_limit_burst = 12\ntrust_forwarded_for = true\n",
    );
    let limit = parse(&["--config", &path]).unwrap().rate_limit.unwrap();
    assert_eq!((limit.per_second.get(), limit.burst.get()), (5, 12));
    assert!(limit.trust_forwarded_for);
    // 0 on the command line turns off what the file turned on.
    let c = parse(&["--config", &path, "--rate-limit-per-second", "0"]).unwrap();
    assert!(c.rate_limit.is_none());
    let c = parse(&["--config", &path, "--trust-forwarded-for=false"]).unwrap();
    assert!(!c.rate_limit.unwrap().trust_forwarded_for);
}

#[test]
fn otlp_export_is_off_unless_an_endpoint_is_set() {
    let c = parse(&[]).unwrap();
    if std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").is_none() {
        assert!(c.telemetry.otlp.is_none());
    }
    let c = parse(&["--otlp-endpoint", ""]).unwrap();
    assert!(c.telemetry.otlp.is_none(), "empty is unset");
    let (_dir, path) = config_file(
        "[telemetry]\notlp_endpoint = \"http://collector:4318/\"\notlp_service_name = \"router-a\"\n",
    );
    let otlp = parse(&["--config", &path, "--instance", "a1"])
        .unwrap()
        .telemetry
        .otlp
        .unwrap();
    assert_eq!(otlp.endpoint, "http://collector:4318");
    assert_eq!(otlp.service_name, "router-a");
    assert_eq!(otlp.instance, "a1");
}

#[test]
fn the_printed_configuration_is_a_file_for_the_same_configuration() {
    let (_dir, path) = config_file(
        "[server]\nport = 8080\nadmin_token = \"s3cret\"\n\n[limits]\nrate_limit_per_second = 50\n\n[telemetry]\notlp_endpoint = \"http://u:pw@collector:4318\"\n",
    );
    let (c, origins) = resolve(&["--config", &path, "--workers", "3"]).unwrap();
    let text = c.render_masked(&origins);
    assert!(!text.contains("s3cret"), "{text}");
    assert!(!text.contains(":pw@"), "{text}");
    assert!(text.contains("admin_token = \"********\""), "{text}");
    assert!(
        text.contains(&format!("port = 8080  # file {path}")),
        "{text}"
    );
    assert!(text.contains("workers = 3  # --workers"), "{text}");
    assert!(text.contains("patience_ms = 60000  # default"), "{text}");
    assert!(
        text.contains("rate_limit_per_second = 50  # file"),
        "{text}"
    );
    // Read back as a --config file, it describes the same router (less
    // the masked secrets, which it leaves out).
    let (_dir2, printed) = config_file(&text);
    let again = parse(&["--config", &printed, "--admin-token", "s3cret"]).unwrap();
    let mut expected = c.clone();
    expected.telemetry.otlp.as_mut().unwrap().endpoint = "http://u:****@collector:4318".into();
    assert_eq!(format!("{again:?}"), format!("{expected:?}"));
}
