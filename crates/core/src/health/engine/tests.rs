//! The engine end to end: generated traffic in, the alerts it raises out.

use super::*;
use crate::health::Outcome;
use crate::registry::{FeeRate, Processor, ProcessorId};

/// A small deterministic generator (xorshift64*), so that "30% errors"
/// is random-looking yet the same on every run.
struct Draws(u64);

impl Draws {
    fn next_fraction(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn engine(config: HealthConfig) -> HealthEngine {
    let p = Processor {
        id: ProcessorId::new("default"),
        name: "default".to_owned(),
        url: None,
        fee: FeeRate::from_ppm(50_000),
        countries: Vec::new(),
        payment_methods: Vec::new(),
    };
    HealthEngine::new(&Registry::new(vec![p]).unwrap(), config)
}

const T0: i64 = 1_700_000_000_000;

/// 20 transactions a second, one every 50 ms from `start`, for
/// `seconds`: each an error with probability `errors(second)`, each
/// answered in `latency(second)` ms. Returns the alerts raised.
fn traffic(
    engine: &HealthEngine,
    draws: &mut Draws,
    start: i64,
    seconds: i64,
    errors: impl Fn(i64) -> f64,
    latency: impl Fn(i64) -> u32,
) -> Vec<Alert> {
    let mut alerts = Vec::new();
    for k in 0..seconds * 20 {
        let at = Timestamp::from_millis(start + k * 50);
        let second = k / 20;
        let outcome = if draws.next_fraction() < errors(second) {
            Outcome::Error
        } else {
            Outcome::Approved
        };
        let tx = Transaction {
            latency_ms: Some(latency(second)),
            ..Transaction::new(outcome, at)
        };
        alerts.extend(engine.record(0, &tx, at).alerts);
    }
    alerts
}

/// The status alerts (anomalies left out), as (kind, from, to).
fn summary(alerts: &[Alert]) -> Vec<(AlertKind, Status, Status)> {
    alerts
        .iter()
        .filter(|a| a.kind != AlertKind::Anomaly)
        .map(|a| (a.kind, a.from, a.to))
        .collect()
}

#[test]
fn a_processor_slowing_from_1_ms_to_2000_ms_raises_one_slowness_alert_and_one_recovery() {
    let e = engine(HealthConfig::default());
    let mut draws = Draws(7);
    let fast = traffic(&e, &mut draws, T0, 20, |_| 0.0, |s| 1 + (s % 2) as u32);
    assert!(fast.is_empty(), "{fast:?}");
    let slow = traffic(&e, &mut draws, T0 + 20_000, 20, |_| 0.0, |_| 2_000);
    let [alert] = slow.as_slice() else {
        panic!("one slowness alert: {slow:?}");
    };
    assert_eq!(alert.kind, AlertKind::Anomaly);
    assert_eq!((alert.from, alert.to), (Status::Healthy, Status::Healthy));
    assert_eq!(
        alert.reason,
        "Anomaly: p50 latency 2,000 ms against a baseline of 1.5 ms"
    );
    // Raised about half a window of 20 latencies after it began.
    assert!(alert.at.millis() - (T0 + 20_000) <= 11 * 50, "{alert:?}");
    let back = traffic(&e, &mut draws, T0 + 40_000, 20, |_| 0.0, |_| 1);
    let [alert] = back.as_slice() else {
        panic!("one recovery alert: {back:?}");
    };
    assert_eq!(alert.kind, AlertKind::Anomaly);
    assert_eq!(
        alert.reason,
        "Recovered: p50 latency 1 ms, back near its baseline of 1.5 ms"
    );
    // Every alert is in the log, where `GET /api/v1/alerts` reads it.
    assert_eq!(e.alerts_since(None).len(), 2);
    assert_eq!(e.status(0), Status::Healthy);
}

#[test]
fn a_steady_thirty_percent_error_rate_raises_one_alert_in_thirty_seconds() {
    let e = engine(HealthConfig::default());
    let alerts = traffic(&e, &mut Draws(2 * 7919), T0, 30, |_| 0.30, |_| 1);
    assert_eq!(
        summary(&alerts),
        [(AlertKind::Transition, Status::Healthy, Status::Degraded)]
    );
    assert_eq!(alerts[0].reason, "Elevated error/timeout rate (>=30%)");
    // Without the dampers, the same transactions flip it over and over.
    let undamped = engine(HealthConfig {
        recovery_margin: 0.0,
        flap_hold_ms: 0,
        ..HealthConfig::default()
    });
    let flips = traffic(&undamped, &mut Draws(2 * 7919), T0, 30, |_| 0.30, |_| 1);
    assert!(flips.len() >= 10, "{}", flips.len());
}

#[test]
fn steady_thirty_percent_runs_mostly_raise_one_alert_and_none_raise_many() {
    let counts: Vec<usize> = (1..=100u64)
        .map(|seed| {
            let e = engine(HealthConfig::default());
            traffic(&e, &mut Draws(seed * 7919), T0, 30, |_| 0.30, |_| 1).len()
        })
        .collect();
    let one = counts.iter().filter(|&&n| n == 1).count();
    // The rest cross the DOWN line by chance (26 errors in a window of
    // 50, or 6 in the first 10): worse is reported at once, as the seed
    // requires.
    assert!(one >= 65, "{one} of 100 with one alert: {counts:?}");
    assert!(counts.iter().all(|&n| n <= 5), "{counts:?}");
}

#[test]
fn worse_is_announced_on_the_same_transaction_with_or_without_damping() {
    let first_down = |config: HealthConfig| {
        let e = engine(config);
        let mut draws = Draws(2 * 7919);
        traffic(&e, &mut draws, T0, 30, |_| 0.30, |_| 1);
        let alerts = traffic(&e, &mut draws, T0 + 30_000, 5, |_| 1.0, |_| 1);
        alerts
            .iter()
            .find(|a| a.to == Status::Down)
            .map(|a| (a.at.millis() - (T0 + 30_000)) / 50)
    };
    let damped = first_down(HealthConfig::default());
    let undamped = first_down(HealthConfig {
        recovery_margin: 0.0,
        flap_hold_ms: 0,
        ..HealthConfig::default()
    });
    assert_eq!(damped, undamped);
    // A window of 50 at about 30% errors needs about 12 more to pass 50%.
    assert!(damped.is_some_and(|n| n < 15), "{damped:?}");
    // From a clean window: DEGRADED on the 15th error, DOWN on the 26th,
    // the table's own arithmetic; nothing held back.
    let e = engine(HealthConfig::default());
    let mut draws = Draws(1);
    traffic(&e, &mut draws, T0, 30, |_| 0.0, |_| 1);
    let alerts = traffic(&e, &mut draws, T0 + 30_000, 5, |_| 1.0, |_| 1);
    let at: Vec<i64> = alerts
        .iter()
        .filter(|a| a.kind != AlertKind::Anomaly)
        .map(|a| (a.at.millis() - (T0 + 30_000)) / 50 + 1)
        .collect();
    assert_eq!(
        summary(&alerts),
        [
            (AlertKind::Transition, Status::Healthy, Status::Degraded),
            (AlertKind::Transition, Status::Degraded, Status::Down)
        ]
    );
    assert_eq!(at, [15, 26]);
}

#[test]
fn a_processor_failing_every_other_second_raises_one_flapping_alert_and_settles_once() {
    let e = engine(HealthConfig::default());
    let mut draws = Draws(3);
    traffic(&e, &mut draws, T0, 10, |_| 0.0, |_| 1);
    let failing = |s: i64| if s % 2 == 0 { 1.0 } else { 0.0 };
    let mut alerts = traffic(&e, &mut draws, T0 + 10_000, 30, failing, |_| 1);
    alerts.extend(traffic(&e, &mut draws, T0 + 40_000, 20, |_| 0.0, |_| 1));
    alerts.retain(|a| a.kind != AlertKind::Anomaly);
    let kinds: Vec<_> = alerts.iter().map(|a| (a.kind, a.from)).collect();
    assert_eq!(
        kinds,
        [
            (AlertKind::Transition, Status::Healthy),
            (AlertKind::Transition, Status::Degraded),
            (AlertKind::Flapping, Status::Down),
            (AlertKind::Transition, Status::Down),
        ],
        "{alerts:#?}"
    );
    assert_eq!(alerts[3].to, Status::Healthy);
    assert!(
        alerts[2]
            .reason
            .starts_with("Flapping in and out of DOWN: 4 transitions in "),
        "{}",
        alerts[2].reason
    );
    assert!(
        alerts[3].reason.starts_with("Settled at HEALTHY after "),
        "{}",
        alerts[3].reason
    );
    // The undamped engine tells every flip.
    let undamped = engine(HealthConfig {
        recovery_margin: 0.0,
        flap_hold_ms: 0,
        ..HealthConfig::default()
    });
    let mut draws = Draws(3);
    traffic(&undamped, &mut draws, T0, 10, |_| 0.0, |_| 1);
    let flips = traffic(&undamped, &mut draws, T0 + 10_000, 30, failing, |_| 1);
    assert!(flips.len() >= 20, "{}", flips.len());
}

#[test]
fn degraded_by_errors_is_left_below_25_percent_not_below_30() {
    let after_approvals = |margin: f64| {
        let e = engine(HealthConfig {
            recovery_margin: margin,
            ..HealthConfig::default()
        });
        let mut k = 0;
        let mut record = |outcome| {
            k += 1;
            let at = Timestamp::from_millis(T0 + k);
            e.record(0, &Transaction::new(outcome, at), at).status
        };
        // 15 errors in 50 (30%), the first three oldest.
        for i in 0..50 {
            record(if i % 10 < 3 {
                Outcome::Error
            } else {
                Outcome::Approved
            });
        }
        assert_eq!(e.status(0), Status::Degraded);
        // Each approval pushes one old error out: 28%, 26%, 24%.
        (0..3)
            .map(|_| record(Outcome::Approved))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        after_approvals(0.05),
        [Status::Degraded, Status::Degraded, Status::Healthy]
    );
    assert_eq!(
        after_approvals(0.0),
        [Status::Healthy, Status::Healthy, Status::Healthy]
    );
}
