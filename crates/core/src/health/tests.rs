//! The engine against the seed's rules, end to end through `record`.

use super::*;
use crate::Timestamp;
use crate::circuit::Gate;
use crate::registry::{FeeRate, Processor, ProcessorId, Registry};

const MINUTE: i64 = 60_000;

fn processor(id: &str, ppm: u32, countries: &[&str], methods: &[&str]) -> Processor {
    Processor {
        id: ProcessorId::new(id),
        name: id.to_owned(),
        url: None,
        fee: FeeRate::from_ppm(ppm),
        countries: countries.iter().map(|s| s.to_string()).collect(),
        payment_methods: methods.iter().map(|s| s.to_string()).collect(),
    }
}

/// The seed's five mock processors.
fn techcart() -> Registry {
    Registry::new(vec![
        processor("processor_a", 29_000, &["BR"], &["PIX", "CARD"]),
        processor("processor_b", 35_000, &["BR", "MX", "CO"], &["CARD"]),
        processor("processor_c", 15_000, &["BR"], &["PIX"]),
        processor("processor_d", 32_000, &["MX"], &["CARD", "OXXO"]),
        processor("processor_e", 30_000, &["CO"], &["PSE", "CARD"]),
    ])
    .unwrap()
}

struct Fixture {
    engine: HealthEngine,
    clock: i64,
}

impl Fixture {
    fn new() -> Self {
        Self::with(HealthConfig::default())
    }

    fn with(config: HealthConfig) -> Self {
        Self {
            engine: HealthEngine::new(&techcart(), config),
            clock: 1_700_000_000_000,
        }
    }

    fn index(&self, id: &str) -> usize {
        self.engine.registry().index_of(id).unwrap()
    }

    fn now(&self) -> Timestamp {
        Timestamp::from_millis(self.clock)
    }

    /// Records `outcome` for `id` on PIX/BR (or the processor's first
    /// segment), one millisecond after the previous transaction.
    fn record_on(&mut self, id: &str, method: &str, country: &str, outcome: Outcome) -> Recorded {
        self.clock += 1;
        let tx = Transaction {
            payment_method: Some(method),
            country: Some(country),
            ..Transaction::new(outcome, self.now())
        };
        let i = self.index(id);
        self.engine.record(i, &tx, self.now())
    }

    fn record(&mut self, id: &str, outcome: Outcome) -> Recorded {
        let (method, country) = match id {
            "processor_b" | "processor_d" => {
                ("CARD", if id == "processor_b" { "BR" } else { "MX" })
            }
            "processor_e" => ("PSE", "CO"),
            _ => ("PIX", "BR"),
        };
        self.record_on(id, method, country, outcome)
    }

    /// `approved` approvals and `declined` declines, interleaved.
    fn mix(&mut self, id: &str, approved: u32, declined: u32) -> Vec<Alert> {
        let total = approved + declined;
        let mut alerts = Vec::new();
        for i in 0..total {
            // Spread declines evenly: Bresenham on the ratio.
            let decline = (i + 1) * declined / total > i * declined / total;
            let o = if decline {
                Outcome::Declined
            } else {
                Outcome::Approved
            };
            alerts.extend(self.record(id, o).alerts);
        }
        alerts
    }

    fn status(&self, id: &str) -> Status {
        self.engine.report(self.index(id), self.now()).health.status
    }

    fn counts(&self, id: &str) -> Counts {
        self.engine.report(self.index(id), self.now()).health.counts
    }
}

#[test]
fn a_new_processor_is_healthy() {
    let f = Fixture::new();
    for report in f.engine.reports(f.now()) {
        assert_eq!(report.health.status, Status::Healthy);
        assert_eq!(report.health.counts.total(), 0);
        assert!(report.segments.is_empty());
    }
    assert!(f.engine.alerts_since(None).is_empty());
}

#[test]
fn eighty_percent_approved_stays_healthy() {
    let mut f = Fixture::new();
    assert!(f.mix("processor_a", 40, 10).is_empty());
    assert_eq!(f.status("processor_a"), Status::Healthy);
    let c = f.counts("processor_a");
    assert_eq!((c.approved, c.declined), (40, 10));
    assert_eq!(c.authorization_rate(), Some(0.8));
}

#[test]
fn fifty_percent_approved_is_degraded_with_an_alert() {
    let mut f = Fixture::new();
    let alerts = f.mix("processor_a", 25, 25);
    assert_eq!(f.status("processor_a"), Status::Degraded);
    let processor_alerts: Vec<_> = alerts.iter().filter(|a| a.segment.is_none()).collect();
    assert_eq!(processor_alerts.len(), 1, "{alerts:?}");
    let a = processor_alerts[0];
    assert_eq!(a.processor.as_str(), "processor_a");
    assert_eq!((a.from, a.to), (Status::Healthy, Status::Degraded));
    assert_eq!(a.kind, AlertKind::Transition);
    assert_eq!(a.reason, "Low authorization rate (<65%)");
    // The segment went the same way and says which segment it is.
    let seg: Vec<_> = alerts.iter().filter(|a| a.segment.is_some()).collect();
    assert_eq!(seg.len(), 1);
    assert_eq!(seg[0].segment.as_ref().unwrap().to_string(), "PIX/BR");
}

#[test]
fn twenty_percent_approved_is_down() {
    let mut f = Fixture::new();
    f.mix("processor_a", 10, 40);
    assert_eq!(f.status("processor_a"), Status::Down);
    let last = f.engine.alerts_since(None).pop().unwrap();
    assert_eq!(last.to, Status::Down);
    assert_eq!(last.reason, "Very low authorization rate (<30%)");
}

#[test]
fn more_than_half_errors_is_down_with_the_seed_reason() {
    let mut f = Fixture::new();
    f.mix("processor_a", 40, 10);
    let mut alerts = Vec::new();
    // 90% errors, as in the seed's outage.
    for i in 0..50 {
        let o = if i % 10 == 0 {
            Outcome::Approved
        } else {
            Outcome::Error
        };
        alerts.extend(f.record("processor_a", o).alerts);
    }
    assert_eq!(f.status("processor_a"), Status::Down);
    let processor: Vec<_> = alerts
        .iter()
        .filter(|a| a.segment.is_none())
        .map(|a| (a.from, a.to, a.reason.as_str()))
        .collect();
    assert_eq!(
        processor,
        [
            (
                Status::Healthy,
                Status::Degraded,
                "Elevated error/timeout rate (>=30%)"
            ),
            (
                Status::Degraded,
                Status::Down,
                "High error/timeout rate (>50%)"
            ),
        ]
    );
    let c = f.counts("processor_a");
    assert_eq!(c.total(), 50);
    // Errors are not declines: the authorization rate is about the answers.
    assert_eq!(c.authorization_rate(), Some(1.0));
}

#[test]
fn timeouts_count_as_technical_failures() {
    let mut f = Fixture::new();
    for _ in 0..6 {
        f.record("processor_c", Outcome::Timeout);
    }
    for _ in 0..4 {
        f.record("processor_c", Outcome::Approved);
    }
    assert_eq!(f.status("processor_c"), Status::Down);
    assert_eq!(f.counts("processor_c").timeouts, 6);
}

#[test]
fn no_status_change_below_ten_transactions() {
    let mut f = Fixture::new();
    for _ in 0..9 {
        assert!(f.record("processor_a", Outcome::Error).alerts.is_empty());
    }
    assert_eq!(f.status("processor_a"), Status::Healthy);
    let r = f.record("processor_a", Outcome::Error);
    assert_eq!(r.status, Status::Down);
    assert_eq!(r.segment_status, Some(Status::Down));
    assert_eq!(r.alerts.len(), 2);
}

#[test]
fn the_window_holds_the_last_fifty_transactions() {
    let mut f = Fixture::new();
    f.mix("processor_c", 0, 30);
    assert_eq!(f.status("processor_c"), Status::Down);
    f.mix("processor_c", 50, 0);
    let c = f.counts("processor_c");
    assert_eq!((c.total(), c.approved, c.declined), (50, 50, 0));
    assert_eq!(f.status("processor_c"), Status::Healthy);
}

#[test]
fn transactions_older_than_ten_minutes_leave_the_window() {
    let mut f = Fixture::new();
    f.mix("processor_c", 0, 20);
    assert_eq!(f.status("processor_c"), Status::Down);
    // Eleven minutes later the old declines no longer count, as read...
    f.clock += 11 * MINUTE;
    assert_eq!(f.counts("processor_c").total(), 0);
    // ...and as recorded: nine approvals are below the minimum (DOWN stays),
    // the tenth makes a full, healthy window.
    f.mix("processor_c", 9, 0);
    assert_eq!(f.status("processor_c"), Status::Down);
    assert_eq!(f.counts("processor_c").total(), 9);
    f.mix("processor_c", 1, 0);
    assert_eq!(f.status("processor_c"), Status::Healthy);
    let last = f.engine.alerts_since(None).pop().unwrap();
    assert_eq!((last.from, last.to), (Status::Down, Status::Healthy));
    assert_eq!(
        last.reason,
        "Authorization rate >=65% and error/timeout rate <30%"
    );
}

#[test]
fn replayed_history_is_judged_at_its_own_time() {
    let f = Fixture::new();
    let old = f.clock - 60 * MINUTE;
    let i = f.index("processor_a");
    for k in 0..20 {
        let tx = Transaction::new(Outcome::Error, Timestamp::from_millis(old + k));
        f.engine.record(i, &tx, f.now());
    }
    // The transition happened then, and is stamped then.
    let alert = f.engine.alerts_since(None).pop().unwrap();
    assert_eq!(alert.to, Status::Down);
    assert_eq!(alert.at, Timestamp::from_millis(old + 9));
    // Read now, an hour later, the window is empty but the status stays.
    assert_eq!(f.counts("processor_a").total(), 0);
    assert_eq!(f.status("processor_a"), Status::Down);
}

#[test]
fn improving_needs_the_recovery_dwell_worsening_does_not() {
    let mut f = Fixture::with(HealthConfig {
        window_size: 10,
        ..HealthConfig::default()
    });
    f.mix("processor_c", 0, 10);
    assert_eq!(f.status("processor_c"), Status::Down);
    // Nine approvals: the window (10) is already 90% approved, but the
    // status may only improve on the 10th transaction after the transition.
    f.mix("processor_c", 9, 0);
    assert_eq!(f.status("processor_c"), Status::Down);
    f.mix("processor_c", 1, 0);
    assert_eq!(f.status("processor_c"), Status::Healthy);
    // Worse is reported at once.
    f.mix("processor_c", 0, 4);
    assert_eq!(f.status("processor_c"), Status::Degraded);
}

#[test]
fn segments_are_tracked_separately_and_rolled_up() {
    let mut f = Fixture::new();
    for _ in 0..15 {
        f.record_on("processor_a", "PIX", "BR", Outcome::Error);
        f.record_on("processor_a", "card", "br", Outcome::Approved);
        f.record_on("processor_a", "CARD", "BR", Outcome::Approved);
    }
    let report = f.engine.report(f.index("processor_a"), f.now());
    assert_eq!(report.health.counts.total(), 45);
    assert_eq!(report.segments.len(), 2);
    assert_eq!(report.health.status, Status::Degraded); // 33% errors
    let segment = |name: &str| {
        report
            .segments
            .iter()
            .find(|s| s.key.to_string() == name)
            .unwrap()
            .health
            .status
    };
    assert_eq!(segment("PIX/BR"), Status::Down);
    assert_eq!(segment("CARD/BR"), Status::Healthy);
}

fn lines(r: &Recommendation, f: &Fixture) -> Vec<(String, bool)> {
    r.ranked
        .iter()
        .map(|l| {
            let id = f.engine.registry().by_fee()[l.candidate.processor]
                .id
                .to_string();
            (id, l.recommended)
        })
        .collect()
}

#[test]
fn recommendations_filter_by_method_and_country() {
    let f = Fixture::new();
    let ids = |method, country| -> Vec<String> {
        let r = f.engine.recommend(method, country, f.now());
        let mut ids: Vec<_> = lines(&r, &f).into_iter().map(|(id, _)| id).collect();
        ids.sort();
        ids
    };
    assert_eq!(ids("PIX", "BR"), ["processor_a", "processor_c"]);
    assert_eq!(ids("card", "br"), ["processor_a", "processor_b"]);
    assert_eq!(ids("CARD", "MX"), ["processor_b", "processor_d"]);
    assert_eq!(ids("OXXO", "MX"), ["processor_d"]);
    assert_eq!(ids("PSE", "CO"), ["processor_e"]);
    assert_eq!(ids("CARD", "CO"), ["processor_b", "processor_e"]);
    assert!(ids("PIX", "MX").is_empty());
    assert!(ids("BOLETO", "BR").is_empty());
}

#[test]
fn recommendations_rank_by_score_and_move_away_from_a_down_processor() {
    let mut f = Fixture::new();
    f.mix("processor_a", 39, 11); // 78%
    f.mix("processor_c", 41, 9); // 82%
    let r = f.engine.recommend("PIX", "BR", f.now());
    assert_eq!(
        lines(&r, &f),
        [("processor_c".into(), true), ("processor_a".into(), false)]
    );
    assert_eq!(r.ranked[0].score, 87.0); // 82 + 5 confidence bonus
    assert_eq!(r.ranked[0].candidate.scope, Scope::Segment);
    assert_eq!(r.ranked[1].reason, Reason::Alternative);
    // processor_a fails on PIX/BR.
    for _ in 0..50 {
        f.record("processor_a", Outcome::Error);
    }
    let r = f.engine.recommend("PIX", "BR", f.now());
    assert_eq!(r.ranked[1].candidate.status, Status::Down);
    assert_eq!(r.ranked[1].score, 0.0);
    assert_eq!(
        r.ranked[1].reason.to_string(),
        "Processor is DOWN - not recommended"
    );
    assert_eq!(r.recommended().unwrap().reason, Reason::Best);
}

#[test]
fn segment_health_is_used_only_with_enough_data() {
    let mut f = Fixture::new();
    // processor_a is DOWN on PIX/BR but CARD/BR has only 5 transactions:
    // CARD/BR is judged on the processor as a whole.
    for _ in 0..30 {
        f.record_on("processor_a", "PIX", "BR", Outcome::Error);
    }
    for _ in 0..5 {
        f.record_on("processor_a", "CARD", "BR", Outcome::Approved);
    }
    let r = f.engine.recommend("CARD", "BR", f.now());
    let a = r
        .ranked
        .iter()
        .find(|l| l.candidate.processor == f.index("processor_a"))
        .unwrap();
    assert_eq!(a.candidate.scope, Scope::Processor);
    assert_eq!(a.candidate.status, Status::Down);
    // With ten CARD/BR transactions the segment's own (healthy) data decides.
    for _ in 0..5 {
        f.record_on("processor_a", "CARD", "BR", Outcome::Approved);
    }
    let r = f.engine.recommend("CARD", "BR", f.now());
    let a = r
        .ranked
        .iter()
        .find(|l| l.candidate.processor == f.index("processor_a"))
        .unwrap();
    assert_eq!(a.candidate.scope, Scope::Segment);
    assert_eq!(a.candidate.status, Status::Healthy);
    assert_eq!(a.candidate.transactions, 10);
}

#[test]
fn when_every_candidate_is_down_none_is_recommended() {
    let mut f = Fixture::new();
    for _ in 0..10 {
        f.record("processor_a", Outcome::Error);
        f.record("processor_c", Outcome::Declined);
    }
    let r = f.engine.recommend("PIX", "BR", f.now());
    assert!(r.all_down());
    assert!(r.recommended().is_none());
    assert!(lines(&r, &f).iter().all(|(_, rec)| !rec));
}

#[test]
fn alerts_can_be_read_since_an_instant() {
    let mut f = Fixture::new();
    f.mix("processor_c", 0, 10);
    let cut = Timestamp::from_millis(f.clock + 1);
    f.clock += MINUTE;
    f.mix("processor_a", 0, 10);
    let all = f.engine.alerts_since(None);
    let recent = f.engine.alerts_since(Some(cut));
    assert_eq!(all.len(), 4);
    assert_eq!(recent.len(), 2);
    assert!(recent.iter().all(|a| a.processor.as_str() == "processor_a"));
    assert!(all.windows(2).all(|w| w[0].id < w[1].id));
}

#[test]
fn the_alert_log_is_bounded() {
    let mut f = Fixture::with(HealthConfig {
        alert_capacity: 3,
        recovery_dwell: 0,
        window_size: 10,
        ..HealthConfig::default()
    });
    for _ in 0..5 {
        f.mix("processor_c", 0, 10);
        f.mix("processor_c", 10, 0);
    }
    let alerts = f.engine.alerts_since(None);
    assert_eq!(alerts.len(), 3);
    assert!(alerts[0].id > 1);
}

#[test]
fn an_anomaly_inside_the_thresholds_raises_an_alert_without_a_transition() {
    let mut f = Fixture::new();
    f.mix("processor_c", 380, 20); // 95%
    let alerts = f.mix("processor_c", 140, 60); // 70%: still HEALTHY
    assert_eq!(f.status("processor_c"), Status::Healthy);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let a = &alerts[0];
    assert_eq!(a.kind, AlertKind::Anomaly);
    assert_eq!((a.from, a.to), (Status::Healthy, Status::Healthy));
    assert!(
        a.reason.starts_with("Anomaly: authorization rate fell to"),
        "{}",
        a.reason
    );
}

#[test]
fn a_down_segment_gets_one_trial_per_interval_and_recovers() {
    let mut f = Fixture::new();
    let a = f.index("processor_a");
    let pix = (Some("PIX"), Some("BR"));
    for _ in 0..10 {
        f.record("processor_a", Outcome::Error);
    }
    let now = f.now();
    assert_eq!(
        f.engine.gate(a, pix.0, pix.1, now),
        Gate::WaitUntil(now.plus_millis(1_000))
    );
    f.clock += 1_000;
    let now = f.now();
    assert_eq!(f.engine.gate(a, pix.0, pix.1, now), Gate::Trial);
    assert_eq!(f.engine.claim(a, pix.0, pix.1, now), Gate::Trial);
    assert_eq!(
        f.engine.claim(a, pix.0, pix.1, now),
        Gate::WaitUntil(now.plus_millis(1_000))
    );
    // The trial is approved: payments flow again while the window refills.
    assert!(f.record("processor_a", Outcome::Approved).opened);
    assert_eq!(f.engine.gate(a, pix.0, pix.1, f.now()), Gate::Go);
    assert_eq!(f.status("processor_a"), Status::Down);
    f.mix("processor_a", 20, 0);
    assert_eq!(f.status("processor_a"), Status::Degraded); // 10 errors in 31
    f.mix("processor_a", 10, 0);
    assert_eq!(f.status("processor_a"), Status::Healthy); // 10 in 41
    // Another segment with little data follows the processor's gate; the
    // Rinha-style payment without attributes too.
    assert_eq!(
        f.engine.gate(a, Some("CARD"), Some("BR"), f.now()),
        Gate::Go
    );
    assert_eq!(f.engine.gate(a, None, None, f.now()), Gate::Go);
}

#[test]
fn outcomes_parse_from_the_seed_words() {
    assert_eq!("approved".parse::<Outcome>(), Ok(Outcome::Approved));
    assert_eq!("DECLINED".parse::<Outcome>(), Ok(Outcome::Declined));
    assert_eq!("error".parse::<Outcome>(), Ok(Outcome::Error));
    assert_eq!("timeout".parse::<Outcome>(), Ok(Outcome::Timeout));
    assert!("failed".parse::<Outcome>().is_err());
    assert_eq!(Outcome::Timeout.to_string(), "timeout");
}

#[test]
fn concurrent_recording_loses_nothing() {
    let engine = HealthEngine::new(
        &techcart(),
        HealthConfig {
            window_size: 100_000,
            ..HealthConfig::default()
        },
    );
    let now = Timestamp::from_millis(1_700_000_000_000);
    std::thread::scope(|s| {
        for t in 0..4 {
            let engine = &engine;
            s.spawn(move || {
                for k in 0..2_000 {
                    let tx = Transaction {
                        payment_method: Some("PIX"),
                        country: Some("BR"),
                        ..Transaction::new(
                            if k % 4 == 0 {
                                Outcome::Declined
                            } else {
                                Outcome::Approved
                            },
                            now,
                        )
                    };
                    engine.record(t % 2, &tx, now);
                }
            });
        }
    });
    for i in 0..2 {
        let r = engine.report(i, now);
        assert_eq!(r.health.counts.total(), 4_000);
        assert_eq!(r.health.counts.declined, 1_000);
        assert_eq!(r.segments[0].health.counts.total(), 4_000);
    }
}

#[test]
fn a_failing_health_check_holds_the_processor_down_until_it_passes() {
    let mut f = Fixture::new();
    f.mix("processor_a", 45, 5);
    let i = f.index("processor_a");
    // Nothing is being sent (the router holds its queue): only the check
    // knows. It says failing: DOWN at once, one alert, gate closed.
    f.clock += 1_000;
    let down = f.engine.health_check(i, true, f.now());
    assert_eq!(down.status, Status::Down);
    let [alert] = down.alerts.as_slice() else {
        panic!("one alert: {:?}", down.alerts);
    };
    assert_eq!((alert.from, alert.to), (Status::Healthy, Status::Down));
    assert_eq!(alert.reason, "Health check reports the processor failing");
    assert!(alert.segment.is_none());
    assert_eq!(f.engine.alerts_since(None).last(), Some(alert));
    assert!(matches!(
        f.engine.gate(i, None, None, f.now()),
        Gate::WaitUntil(_)
    ));
    // Saying it again is not news.
    assert!(f.engine.health_check(i, true, f.now()).alerts.is_empty());
    // It passes: back to what the window says, no recovery dwell, and the
    // gate reopens so that waiting payments go.
    f.clock += 1_000;
    let up = f.engine.health_check(i, false, f.now());
    assert_eq!(up.status, Status::Healthy);
    assert!(up.opened);
    let [alert] = up.alerts.as_slice() else {
        panic!("one alert: {:?}", up.alerts);
    };
    assert_eq!((alert.from, alert.to), (Status::Down, Status::Healthy));
    assert_eq!(alert.reason, "Health check passes again");
    assert_eq!(f.engine.gate(i, None, None, f.now()), Gate::Go);
    assert!(f.engine.health_check(i, false, f.now()).alerts.is_empty());
    // Failing again: approved payments (trials) reopen the gate, as for any
    // DOWN, but do not lift the status while the check still fails.
    f.engine.health_check(i, true, f.now());
    f.mix("processor_a", 20, 0);
    assert_eq!(f.status("processor_a"), Status::Down);
    assert_eq!(f.engine.gate(i, None, None, f.now()), Gate::Go);
}

#[test]
fn a_passing_health_check_does_not_overrule_what_the_payments_say() {
    let mut f = Fixture::new();
    f.mix("processor_a", 10, 40);
    assert_eq!(f.status("processor_a"), Status::Down);
    let i = f.index("processor_a");
    // The window says DOWN on its own: neither answer changes that.
    let failing = f.engine.health_check(i, true, f.now());
    assert!(failing.alerts.is_empty());
    let passing = f.engine.health_check(i, false, f.now());
    assert_eq!(passing.status, Status::Down);
    assert!(passing.alerts.is_empty());
    // A processor that declines too much is DEGRADED after its check passes.
    let mut g = Fixture::new();
    g.mix("processor_a", 25, 25);
    let i = g.index("processor_a");
    g.engine.health_check(i, true, g.now());
    let back = g.engine.health_check(i, false, g.now());
    assert_eq!(back.status, Status::Degraded);
    assert_eq!(back.alerts[0].reason, "Low authorization rate (<65%)");
}
