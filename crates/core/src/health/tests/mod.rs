//! The engine against the seed's rules, end to end through `record`: the
//! status table, the window and segments here; what readers get
//! (recommendations, alerts, gates, health checks) in `readers`.

use super::*;
use crate::Timestamp;
use crate::circuit::Gate;
use crate::techcart;

const MINUTE: i64 = 60_000;

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
            engine: HealthEngine::new(&techcart::registry(), config),
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

mod readers;
