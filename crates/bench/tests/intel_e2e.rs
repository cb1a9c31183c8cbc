//! `reroute bench intel` end to end: a short run at a modest rate against
//! the real router (TechCart registry, advisory only) on a free port.

use std::time::Duration;

use reroute_bench::intel::{self, IntelArgs};

mod common;
use common::{get_json, spawn_router};

/// The shipped TechCart registry without its URLs: the processors are
/// advisory, only the intelligence API is exercised.
fn techcart_advisory(dir: &std::path::Path) -> std::path::PathBuf {
    let shipped = format!("{}/../../config/techcart.toml", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(shipped).expect("config/techcart.toml exists");
    let advisory: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("url"))
        .map(|l| format!("{l}\n"))
        .collect();
    let path = dir.join("techcart.toml");
    std::fs::write(&path, advisory).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fixed_rate_of_records_and_recommendations_is_measured_per_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let registry = techcart_advisory(dir.path());
    let router = spawn_router(dir.path(), &["--processors", registry.to_str().unwrap()]).await;
    let url = router.url.clone();

    let options = IntelArgs {
        target: url.parse().unwrap(),
        rate: 400,
        duration: Duration::from_secs(2),
        connections: 8,
        record_percent: 50,
        out: None,
    };
    let report = intel::run(options).await.unwrap();

    assert_eq!(report.requests.scheduled, 800);
    assert_eq!(report.requests.sent, 800);
    assert_eq!(report.requests.ok, 800, "{report}");
    assert_eq!(report.latency_ms.record.count, 400);
    assert_eq!(report.latency_ms.recommend.count, 400);
    assert_eq!(report.latency_ms.all.count, 800);
    let all = report.latency_ms.all;
    assert!(0.0 < all.p50_ms && all.p50_ms <= all.p99_ms && all.p99_ms <= all.max_ms);
    // Open loop: about the rate asked, over about the duration.
    assert!((1.9..3.0).contains(&report.elapsed_s), "{report}");
    assert!(report.throughput > 250.0, "{report}");
    let text = report.to_string();
    assert!(text.contains("400 req/s for 2s"), "{text}");

    // The records reached the health engine: every processor has a window.
    let health = get_json(&format!("{url}/api/v1/health")).await;
    let processors = health["processors"].as_array().unwrap();
    assert_eq!(processors.len(), 5);
    for p in processors {
        assert!(p["total_transactions"].as_u64().unwrap() > 0, "{p}");
        assert_eq!(p["status"], "HEALTHY", "{p}");
    }

    router.stop().await;
}
