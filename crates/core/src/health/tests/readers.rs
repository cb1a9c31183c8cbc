//! What the engine's readers get, fed through `record`: recommendations
//! (ranked, per segment), the alert log, anomaly alerts, the half-open gate
//! of a DOWN segment, and the processor's own health checks.

use super::*;

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
    // What a CARD/BR recommendation says of processor_a.
    let card_br_of_a = |f: &Fixture| -> Candidate {
        let a = f.index("processor_a");
        let r = f.engine.recommend("CARD", "BR", f.now());
        r.ranked
            .into_iter()
            .map(|l| l.candidate)
            .find(|c| c.processor == a)
            .unwrap()
    };
    let mut f = Fixture::new();
    // processor_a is DOWN on PIX/BR but CARD/BR has only 5 transactions:
    // CARD/BR is judged on the processor as a whole.
    for _ in 0..30 {
        f.record_on("processor_a", "PIX", "BR", Outcome::Error);
    }
    for _ in 0..5 {
        f.record_on("processor_a", "CARD", "BR", Outcome::Approved);
    }
    let a = card_br_of_a(&f);
    assert_eq!(a.scope, Scope::Processor);
    assert_eq!(a.status, Status::Down);
    // With ten CARD/BR transactions the segment's own (healthy) data decides.
    for _ in 0..5 {
        f.record_on("processor_a", "CARD", "BR", Outcome::Approved);
    }
    let a = card_br_of_a(&f);
    assert_eq!(a.scope, Scope::Segment);
    assert_eq!(a.status, Status::Healthy);
    assert_eq!(a.transactions, 10);
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
        &techcart::registry(),
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
