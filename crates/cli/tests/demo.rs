//! `reroute demo` end to end: the real binary plays the outage story and the
//! slow processor act at its fastest speed, and its output must tell both
//! in order.

use std::process::Command;
use std::time::{Duration, Instant};

/// The index of the first line at or after `from` that contains every one of
/// `parts`.
fn find(lines: &[&str], from: usize, parts: &[&str]) -> Option<usize> {
    lines
        .iter()
        .enumerate()
        .skip(from)
        .find(|(_, l)| parts.iter().all(|p| l.contains(p)))
        .map(|(i, _)| i)
}

#[test]
fn the_demo_replays_the_outage_the_recovery_and_the_slow_processor_in_order() {
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_reroute"))
        .args(["demo", "--speed", "100", "--port", "0"])
        .output()
        .expect("the reroute binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let context = format!("stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(output.status.success(), "demo failed\n{context}");
    assert!(
        started.elapsed() < Duration::from_secs(90),
        "the fast demo took {:?}",
        started.elapsed()
    );
    let lines: Vec<&str> = stdout.lines().collect();

    // Where to look while it runs.
    let router = find(&lines, 0, &["router ", "http://127.0.0.1:"]).expect(&context);
    for part in [
        "/api/v1/health",
        "/api/v1/alerts",
        "/api/v1/routing/recommend",
        "/dashboard",
    ] {
        assert!(find(&lines, router, &[part]).is_some(), "{part}\n{context}");
    }

    // The phases, in order.
    let normal = find(&lines, 0, &["== 1. Normal operation"]).expect(&context);
    let outage = find(&lines, normal, &["== 2. Outage"]).expect(&context);
    let recovery = find(&lines, outage, &["== 3. Recovery begins"]).expect(&context);
    let recovered = find(&lines, recovery, &["== 4. Recovered"]).expect(&context);
    assert!(normal < outage && outage < recovery && recovery < recovered);

    // Before the outage the PIX/BR recommendation settles on processor_a,
    // the incumbent, and stays there: no lucky run of processor_c's moves it.
    let before: Vec<&&str> = lines[normal..outage]
        .iter()
        .filter(|l| l.contains(">> PIX/BR recommendation"))
        .collect();
    assert!(
        before.len() <= 2 && before.last().is_some_and(|l| l.contains("processor_a")),
        "{before:#?}\n{context}"
    );

    // processor_a goes DOWN with the rule that fired, after the outage began;
    // the PIX/BR recommendation moves to processor_c; the router moves
    // processor_a's payments elsewhere.
    let down = find(
        &lines,
        outage,
        &[
            "!! processor_a",
            "-> DOWN",
            "High error/timeout rate (>50%)",
        ],
    )
    .expect(&context);
    let moved = find(
        &lines,
        outage,
        &[">> PIX/BR recommendation: processor_c", "was processor_a"],
    )
    .expect(&context);
    assert!(moved < recovery, "{context}");
    assert!(
        find(
            &lines,
            outage,
            &["-> router: CARD/BR payments now executed by processor_b"]
        )
        .is_some(),
        "{context}"
    );

    // Then it recovers through DEGRADED to HEALTHY.
    let degraded = find(&lines, down, &["!! processor_a DOWN -> DEGRADED"]).expect(&context);
    let healthy = find(&lines, degraded, &["!! processor_a DEGRADED -> HEALTHY"]).expect(&context);

    // The slow act: processor_c slows to 2 s during a PIX/BR rush; its lane
    // grows, a share of PIX/BR spills to processor_a, the next by fee; once
    // it is fast again, every PIX/BR payment is on it again.
    let rush = find(&lines, recovered, &["== 5. Evening rush"]).expect(&context);
    let slowed = find(&lines, rush, &["== 6. Slow processor: processor_c"]).expect(&context);
    let fast = find(
        &lines,
        slowed,
        &["== 7. processor_c answers in 30 ms again"],
    )
    .expect(&context);
    let grows = find(&lines, slowed, &["|| processor_c lane grows:"]).expect(&context);
    assert!(grows < fast, "{context}");
    let spill = find(
        &lines,
        slowed,
        &["-> router: PIX/BR payments spill from processor_c to processor_a"],
    )
    .expect(&context);
    assert!(spill < fast, "{context}");
    assert!(
        find(&lines, slowed, &["spilled ", "(from processor_c "]).is_some(),
        "a traffic line counts the spills\n{context}"
    );
    find(
        &lines,
        fast,
        &["-> router: PIX/BR payments all on processor_c again"],
    )
    .expect(&context);

    // The summary: at least 1,100 payments, every one concluded, the ledger
    // equal to the processors' books, the times, and the verdict.
    let summary = find(&lines, fast.max(healthy), &["summary ("]).expect(&context);
    let payments = find(
        &lines,
        summary,
        &["payments ", "sent through POST /payments"],
    )
    .expect(&context);
    let accepted: u64 = lines[payments]
        .split(": ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect(&context);
    assert!(accepted >= 1_100, "{context}");
    for part in [
        ", 0 pending",
        "ledger       GET /payments-summary equals every processor's books",
        "detected ",
        "rerouted ",
        "recovered    DEGRADED",
        "slow         processor_c answered in 2.0 s from ",
        "; its lane grew from ",
        "spilled to processor_a (",
        "back: every PIX/BR payment on processor_c from ",
        "verdict      the story happened",
        "; processor_c slow -> ",
    ] {
        assert!(
            find(&lines, summary, &[part]).is_some(),
            "{part}\n{context}"
        );
    }
    for processor in [
        "processor_a",
        "processor_b",
        "processor_c",
        "processor_d",
        "processor_e",
    ] {
        assert!(
            find(&lines, summary, &["               ", processor]).is_some(),
            "{processor}\n{context}"
        );
    }
}

#[test]
fn a_speed_out_of_range_is_refused() {
    let output = Command::new(env!("CARGO_BIN_EXE_reroute"))
        .args(["demo", "--speed", "0"])
        .output()
        .expect("the reroute binary runs");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--speed"));
}
