//! End to end: a processor that slows down gets more sends in flight (its
//! lane's limit adapts), and what it cannot carry spills to the next
//! processor by fee, coming back once it keeps up again.

mod common;

use std::time::Duration;

use common::*;
use hyper::{Method, StatusCode};

const WAIT: Duration = Duration::from_secs(40);

/// One gauge of `/metrics` for `processor`.
async fn gauge(app: &TestApp, http: &Http, name: &str, processor: &str) -> f64 {
    let (_, text) = http.get_text(&format!("{}/metrics", app.url)).await;
    let prefix = format!("reroute_{name}{{processor=\"{processor}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {prefix} in /metrics"))
}

/// Default answers in 2 s. With 128 routing slots and a lane starting at
/// 128 sends, a fixed pool could never have more than 128 in flight; the
/// lane grows past it while default keeps answering at its floor, and the
/// whole backlog is processed at default (spilling is off here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_processor_slowed_to_two_seconds_gets_more_sends_in_flight_and_its_backlog_drains() {
    let (sims, http) = (Sims::start().await, Http::default());
    sims.set_delay(&http, &sims.default, 2_000).await;
    let (app, _dir) = start_app(&sims, SLOW_BUT_WAITED_FOR).await;
    burst(&app, 600).await;
    let most_in_flight = std::sync::Mutex::new(0.0_f64);
    eventually("600 payments processed at default", WAIT, || async {
        let now = gauge(&app, &http, "lane_in_flight", "default").await;
        {
            let mut most = most_in_flight.lock().unwrap();
            *most = most.max(now);
        }
        (app.summary(&http, "default").await.0 == 600).then_some(())
    })
    .await;
    let most_in_flight = most_in_flight.into_inner().unwrap();
    assert!(
        most_in_flight > 128.0,
        "at most {most_in_flight} sends in flight: the lane never grew"
    );
    assert!(gauge(&app, &http, "lane_limit", "default").await > 128.0);
    assert_eq!(sims.books(&http, &sims.fallback).await.0, 0);
    app.stop().await;
}

/// Waits until `n` payments are processed in all; returns how many on
/// default and on fallback.
async fn processed(app: &TestApp, http: &Http, n: u64) -> (u64, u64) {
    eventually(&format!("{n} payments processed"), WAIT, || async {
        let split = (
            app.summary(http, "default").await.0,
            app.summary(http, "fallback").await.0,
        );
        (split.0 + split.1 == n).then_some(split)
    })
    .await
}

/// Sends default has received and not yet answered (one reading of its
/// counters).
async fn sleeping(sims: &Sims, http: &Http) -> u64 {
    let (status, v) = http
        .admin(Method::GET, &format!("{}/admin/stats", sims.default), "")
        .await;
    assert!(status.is_success(), "{v}");
    let count = |name: &str| {
        v[name]
            .as_u64()
            .unwrap_or_else(|| panic!("no {name} in {v}"))
    };
    let answered: u64 = [
        "stored",
        "duplicate",
        "failed",
        "declined",
        "hung",
        "reset",
        "throttled",
        "storm_refused",
        "invalid",
    ]
    .iter()
    .map(|outcome| count(&format!("payments_{outcome}")))
    .sum();
    count("payments_received") - answered
}

/// Waits until the router has heard `processor`'s health endpoint.
async fn probed(app: &TestApp, http: &Http, processor: &str) {
    eventually("a probe answered", WAIT, || async {
        let (_, text) = http.get_text(&format!("{}/metrics", app.url)).await;
        text.contains(&format!(
            "reroute_probes_total{{processor=\"{processor}\",result=\"healthy\"}}"
        ))
        .then_some(())
    })
    .await;
}

/// Default answers in 300 ms with at most 16 sends in flight: about 53
/// payments/s. A burst of 600 would wait there far longer than the spill
/// wait (1 s), so the overflow goes to fallback and the rest stays at
/// default. Once default answers at once again, nothing spills.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overflow_of_a_processor_that_cannot_keep_up_spills_to_the_next_and_comes_back() {
    let (sims, http) = (Sims::start().await, Http::default());
    sims.set_delay(&http, &sims.default, 300).await;
    let (app, _dir) = start_app(&sims, &["--max-in-flight", "16", "--spill-wait-ms", "1000"]).await;
    probed(&app, &http, "default").await;
    burst(&app, 600).await;
    let (on_default, on_fallback) = processed(&app, &http, 600).await;
    assert!(on_fallback > 0, "nothing spilled");
    assert!(on_default >= 16, "only {on_default} kept at default");
    // Default keeps up again; its first answers say so, and a burst goes
    // there whole.
    sims.set_delay(&http, &sims.default, 0).await;
    for _ in 0..20 {
        assert_eq!(
            app.pay(&http, &new_id(), "1.00").await.0,
            StatusCode::ACCEPTED
        );
    }
    eventually("20 more processed at default", WAIT, || async {
        (app.summary(&http, "default").await.0 == on_default + 20).then_some(())
    })
    .await;
    burst(&app, 200).await;
    let (_, fallback_now) = processed(&app, &http, on_default + on_fallback + 220).await;
    assert_eq!(fallback_now, on_fallback, "spilled while default kept up");
    app.stop().await;
}

/// Default announces a 2 s delay, longer than the spill wait, while
/// fallback answers at once: payments go to fallback, whatever default's
/// backlog; they come back once default announces it is quick again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_processor_slower_than_the_spill_wait_gets_nothing_while_the_next_is_quick() {
    let (sims, http) = (Sims::start().await, Http::default());
    sims.set_delay(&http, &sims.default, 2_000).await;
    let (app, _dir) = start_app(
        &sims,
        &["--processor-timeout-ms", "5000", "--spill-wait-ms", "1000"],
    )
    .await;
    probed(&app, &http, "default").await;
    for _ in 0..20 {
        assert_eq!(
            app.pay(&http, &new_id(), "1.00").await.0,
            StatusCode::ACCEPTED
        );
    }
    eventually("20 payments processed at fallback", WAIT, || async {
        (app.summary(&http, "fallback").await.0 == 20).then_some(())
    })
    .await;
    assert_eq!(sims.books(&http, &sims.default).await.0, 0);
    sims.set_delay(&http, &sims.default, 0).await;
    eventually("default's recovery heard and used", WAIT, || async {
        app.pay(&http, &new_id(), "1.00").await;
        (app.summary(&http, "default").await.0 > 0).then_some(())
    })
    .await;
    app.stop().await;
}

/// The preview's outage: default fails (100 ms, then 500), then fails
/// slowly (2 s, then 500) while payments wait for it (patience); when it
/// recovers (20 ms), the backlog goes back to it whole: the slow failures
/// answered around the recovery are not mistaken for slowness, nothing
/// spills.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_slow_outage_the_backlog_returns_to_the_cheap_processor_and_nothing_spills() {
    slow_outage_then_recovery(&[]).await;
}

/// The same outage seen by an instance that does not probe (`--probes
/// false`): it hears of the recovery only through its
/// own sends, the first of them slow failures and trials that left before
/// it. Neither makes the latency it expects of default (a failure's is how
/// long default takes to fail, a trial's slow answer measures the outage),
/// so the backlog goes back to default whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_that_does_not_probe_sees_the_recovery_through_a_fresh_send() {
    slow_outage_then_recovery(&["--probes", "false"]).await;
}

async fn slow_outage_then_recovery(args: &[&str]) {
    let (sims, http) = (Sims::start().await, Http::default());
    sims.set_delay(&http, &sims.default, 100).await;
    sims.set_failure(&http, &sims.default, true).await;
    let dir = tempfile::tempdir().unwrap();
    let mut args = args.to_vec();
    args.extend([
        "--processor-timeout-ms",
        "5000",
        "--patience-ms",
        "60000",
        "--spill-wait-ms",
        "1500",
    ]);
    let config = config(&sims, &dir.path().join("r.db"), &args);
    let app = TestApp::start(config).await;
    burst(&app, 300).await;
    let failed = |n| {
        let (sims, http) = (&sims, &http);
        async move {
            eventually(&format!("{n} refused by default"), WAIT, || async {
                (sims.stat(http, &sims.default, "payments_failed").await >= n).then_some(())
            })
            .await
        }
    };
    failed(3).await;
    sims.set_delay(&http, &sims.default, 2_000).await;
    let before = sims.stat(&http, &sims.default, "payments_failed").await;
    // Trials meet the slow failure; the recovery comes while one sleeps
    // there, to be answered 200 after 2 s: a slow answer, from before.
    failed(before + 1).await;
    eventually("a send sleeping at default", WAIT, || async {
        (sleeping(&sims, &http).await > 0).then_some(())
    })
    .await;
    sims.set_delay(&http, &sims.default, 20).await;
    sims.set_failure(&http, &sims.default, false).await;
    let (_, on_fallback) = processed(&app, &http, 300).await;
    assert_eq!(on_fallback, 0, "spilled after the recovery");
    // The send from before the recovery is answered late, a 2 s latency;
    // the payments after it still go to default.
    eventually("the slow send answered", WAIT, || async {
        (sleeping(&sims, &http).await == 0).then_some(())
    })
    .await;
    burst(&app, 100).await;
    let (_, on_fallback) = processed(&app, &http, 400).await;
    assert_eq!(on_fallback, 0, "spilled after the late answer");
    app.stop().await;
}
