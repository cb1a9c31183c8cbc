//! Watching the story as an operator and an auditor would: the router's
//! alerts and recommendations through its API, its lanes (sends in flight,
//! backlog, spills) through the dashboard's snapshot, and where payments
//! were executed through the processors' own books and counters.
//!
//! Each [`Observer::poll`] turns what changed since the last one into
//! timeline [`Entry`]s and keeps the history the summary is computed from.

use std::collections::HashSet;

use reroute_core::{CorrelationId, Registry, Timestamp, Window};
use reroute_sim::{Sim, StatsSnapshot};

use crate::client::Http;
use crate::clock::StoryClock;
use crate::story::{self, MIX};
use crate::timeline::{Alert, Entry, Event, Lane, Pick, TrafficLine};
use crate::traffic::Sent;

/// A segment's route changes once this many approved payments in a row went
/// to another processor: one trial payment is not a reroute.
pub const SWITCH_AFTER: u32 = 3;

/// Which processor executes a segment's payments, from the approved payments
/// in the order they were sent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RouteTracker {
    current: Option<usize>,
    /// Another processor, how many in a row, and when the first was sent.
    streak: Option<(usize, u32, i64)>,
}

/// A segment's payments moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Switch {
    pub from: Option<usize>,
    pub to: usize,
    /// When the first payment of the new route was sent (story ms).
    pub since_ms: i64,
}

impl RouteTracker {
    pub fn current(&self) -> Option<usize> {
        self.current
    }

    /// One approved payment of the segment, executed by `processor`.
    pub fn observe(&mut self, processor: usize, at_ms: i64) -> Option<Switch> {
        match self.current {
            None => {
                self.current = Some(processor);
                Some(Switch {
                    from: None,
                    to: processor,
                    since_ms: at_ms,
                })
            }
            Some(current) if current == processor => {
                self.streak = None;
                None
            }
            Some(current) => {
                let (count, since) = match self.streak {
                    Some((p, n, since)) if p == processor => (n + 1, since),
                    _ => (1, at_ms),
                };
                if count >= SWITCH_AFTER {
                    self.current = Some(processor);
                    self.streak = None;
                    Some(Switch {
                        from: Some(current),
                        to: processor,
                        since_ms: since,
                    })
                } else {
                    self.streak = Some((processor, count, since));
                    None
                }
            }
        }
    }
}

/// Tells a slow processor's spills from a route change, in one segment's
/// approved payments (in the order they were sent).
///
/// Once the processor is slow, a payment of the segment executed elsewhere
/// is one that spilled, not a new route: the rest of the segment still goes
/// to the slow processor, and spills come in runs (one free send lets a few
/// waiting payments through, then the next ones spill), which a
/// [`RouteTracker`] would read as the route moving back and forth. The spill
/// is over once the processor is fast again and [`SWITCH_AFTER`] payments
/// in a row stayed on it.
#[derive(Debug, Clone, PartialEq)]
pub struct SpillTracker {
    /// The slow processor (index in the registry's order), its segment.
    pub processor: usize,
    pub segment: usize,
    pub began: Option<i64>,
    pub over: Option<i64>,
    /// Since the spill began.
    pub spilled: u64,
    pub kept: u64,
    /// Payments in a row on the processor since it is fast again, and when
    /// the first of them was sent.
    streak: Option<(u32, i64)>,
}

/// What one payment is to a [`SpillTracker`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Not the slow processor's segment, or not while it is slow: a route
    /// tracker's business.
    Elsewhere,
    /// On the slow processor; `over`: the spill is over, since then.
    Kept { over: Option<i64> },
    /// Spilled; `first`: the spill begins with it.
    Spilled { first: bool },
}

impl SpillTracker {
    pub fn new(processor: usize, segment: usize) -> Self {
        Self {
            processor,
            segment,
            began: None,
            over: None,
            spilled: 0,
            kept: 0,
            streak: None,
        }
    }

    /// One approved payment sent at `at_ms`; `slowed` and `fast`: when the
    /// processor slowed down and when it was fast again, once they happened.
    pub fn observe(
        &mut self,
        segment: usize,
        processor: usize,
        at_ms: i64,
        slowed: Option<i64>,
        fast: Option<i64>,
    ) -> Seen {
        if segment != self.segment || slowed.is_none_or(|s| at_ms < s) {
            return Seen::Elsewhere;
        }
        if processor != self.processor {
            self.streak = None;
            let first = self.began.is_none();
            self.began.get_or_insert(at_ms);
            self.spilled += 1;
            return Seen::Spilled { first };
        }
        if self.began.is_some() {
            self.kept += 1;
        }
        if self.began.is_none() || self.over.is_some() || fast.is_none_or(|f| at_ms < f) {
            return Seen::Kept { over: None };
        }
        let (count, since) = match self.streak {
            Some((n, since)) => (n + 1, since),
            None => (1, at_ms),
        };
        if count >= SWITCH_AFTER {
            self.over = Some(since);
            self.streak = None;
            return Seen::Kept { over: Some(since) };
        }
        self.streak = Some((count, since));
        Seen::Kept { over: None }
    }
}

/// Everything seen, for the summary.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// Every alert, with its story instant, in the order raised.
    pub alerts: Vec<(i64, Alert)>,
    /// Each change of the watched recommendation: when it was seen, and the
    /// processor recommended (`None`: all DOWN).
    pub recommendations: Vec<(i64, Option<String>)>,
    /// Each route change: segment index in [`MIX`], and the switch.
    pub routes: Vec<(usize, Switch)>,
    /// When each phase of [`story::PHASES`] actually began (story ms).
    pub phases: Vec<i64>,
    /// Every approved payment: when it was sent (story ms), its segment,
    /// the processor that executed it.
    pub payments: Vec<(i64, usize, usize)>,
    /// The slow processor's lane at each look (story ms), in story units.
    pub lanes: Vec<(i64, Lane)>,
    /// When its segment's payments began to spill, and when that was over.
    pub spill_began: Option<i64>,
    pub spill_over: Option<i64>,
}

#[derive(serde::Deserialize)]
struct AlertsAnswer {
    alerts: Vec<Alert>,
}

#[derive(serde::Deserialize)]
struct RecommendAnswer {
    recommendations: Vec<Line>,
}

#[derive(serde::Deserialize)]
struct Line {
    processor_id: String,
    status: String,
    #[serde(default)]
    authorization_rate: f64,
    #[serde(default)]
    score: f64,
    #[serde(default)]
    total_transactions: u32,
    recommended: bool,
}

impl Line {
    fn pick(&self) -> Pick {
        Pick {
            processor: self.processor_id.clone(),
            status: self.status.clone(),
            score: self.score,
            authorization_rate: self.authorization_rate,
            transactions: self.total_transactions,
        }
    }
}

#[derive(serde::Deserialize)]
struct SnapshotAnswer {
    processors: Vec<SnapshotLine>,
}

#[derive(serde::Deserialize)]
struct SnapshotLine {
    processor_id: String,
    lane: Option<Lane>,
}

pub struct Observer {
    http: Http,
    router_url: String,
    clock: StoryClock,
    /// Processor ids in the registry's order (cheapest first).
    ids: Vec<String>,
    last_alert: u64,
    alerts_since: Option<Timestamp>,
    recommended: Option<Option<String>>,
    routes: Vec<RouteTracker>,
    booked: HashSet<CorrelationId>,
    last_counts: Vec<StatsSnapshot>,
    last_traffic_ms: i64,
    /// Each processor's lane at the last look (story units).
    lanes: Vec<Option<Lane>>,
    /// Each one's spill count at the last traffic line.
    spilled_at_traffic: Vec<u64>,
    /// The slow processor's limit at the last look.
    slow_limit: Option<u32>,
    spill: Option<SpillTracker>,
    pub history: History,
}

impl Observer {
    pub fn new(http: Http, router_url: String, clock: StoryClock, registry: &Registry) -> Self {
        let ids: Vec<String> = registry.by_fee().iter().map(|p| p.id.to_string()).collect();
        Self {
            last_counts: vec![StatsSnapshot::default(); ids.len()],
            http,
            router_url,
            clock,
            last_alert: 0,
            alerts_since: None,
            recommended: None,
            routes: vec![RouteTracker::default(); MIX.len()],
            booked: HashSet::new(),
            last_traffic_ms: 0,
            lanes: vec![None; ids.len()],
            spilled_at_traffic: vec![0; ids.len()],
            slow_limit: None,
            spill: ids
                .iter()
                .position(|id| id == story::SLOW)
                .map(|slow| SpillTracker::new(slow, story::RUSH_SEGMENT)),
            ids,
            history: History::default(),
        }
    }

    /// What changed since the last poll, oldest first.
    pub async fn poll(&mut self, sim: &Sim, sent: &Sent) -> anyhow::Result<Vec<Entry>> {
        let mut entries = self.alerts().await?;
        entries.extend(self.recommendation().await?);
        // Before the books: a spill seen there is told with fresh figures.
        entries.extend(self.lanes().await?);
        entries.extend(self.books(sim, sent));
        entries.sort_by_key(|e| e.at_ms);
        Ok(entries)
    }

    async fn alerts(&mut self) -> anyhow::Result<Vec<Entry>> {
        let url = match self.alerts_since {
            None => format!("{}/api/v1/alerts", self.router_url),
            Some(t) => format!("{}/api/v1/alerts?since={t}", self.router_url),
        };
        let answer: AlertsAnswer = self.http.get_json(&url).await?;
        let mut entries = Vec::new();
        for alert in answer.alerts {
            if alert.id <= self.last_alert {
                continue;
            }
            self.last_alert = alert.id;
            self.alerts_since = Some(
                self.alerts_since
                    .map_or(alert.timestamp, |t| t.max(alert.timestamp)),
            );
            let at_ms = self.clock.story_ms_of(alert.timestamp);
            let event = if alert.kind == "anomaly" {
                Event::Anomaly(alert.clone())
            } else {
                Event::Transition(alert.clone())
            };
            self.history.alerts.push((at_ms, alert));
            entries.push(Entry { at_ms, event });
        }
        Ok(entries)
    }

    async fn recommendation(&mut self) -> anyhow::Result<Option<Entry>> {
        let url = format!(
            "{}/api/v1/routing/recommend?payment_method={}&country={}",
            self.router_url,
            story::WATCHED_METHOD,
            story::WATCHED_COUNTRY
        );
        let answer: RecommendAnswer = self.http.get_json(&url).await?;
        let now = answer.recommendations.iter().find(|l| l.recommended);
        let id = now.map(|l| l.processor_id.clone());
        if self.recommended.as_ref() == Some(&id) {
            return Ok(None);
        }
        let before = self
            .recommended
            .clone()
            .flatten()
            .and_then(|b| answer.recommendations.iter().find(|l| l.processor_id == b))
            .map(Line::pick);
        self.recommended = Some(id.clone());
        let at_ms = self.clock.now_ms();
        self.history.recommendations.push((at_ms, id));
        Ok(Some(Entry {
            at_ms,
            event: Event::Recommendation {
                segment: format!("{}/{}", story::WATCHED_METHOD, story::WATCHED_COUNTRY),
                now: now.map(Line::pick),
                before,
            },
        }))
    }

    /// Every processor's lane from the dashboard's snapshot; a line when
    /// the slow processor's limit changes once it is slow.
    async fn lanes(&mut self) -> anyhow::Result<Option<Entry>> {
        let url = format!("{}/dashboard/snapshot", self.router_url);
        let answer: SnapshotAnswer = self.http.get_json(&url).await?;
        let speed = self.clock.compression().speed();
        for line in answer.processors {
            if let Some(i) = self.ids.iter().position(|id| *id == line.processor_id) {
                self.lanes[i] = line.lane.map(|l| l.in_story_time(speed));
            }
        }
        let Some(slow) = self.spill.as_ref().map(|s| s.processor) else {
            return Ok(None);
        };
        let Some(lane) = self.lanes[slow] else {
            return Ok(None);
        };
        let at_ms = self.clock.now_ms();
        self.history.lanes.push((at_ms, lane));
        let slowed = self.history.phases.len() > story::SLOWED;
        let before = self.slow_limit.replace(lane.limit);
        Ok(before
            .filter(|from| slowed && *from != lane.limit)
            .map(|from| Entry {
                at_ms,
                event: Event::Lane {
                    processor: self.ids[slow].clone(),
                    from,
                    lane,
                },
            }))
    }

    /// New approved payments in the processors' books, in the order they
    /// were sent, fed to each segment's route, or told as spills.
    fn books(&mut self, sim: &Sim, sent: &Sent) -> Vec<Entry> {
        let mut fresh = Vec::new();
        for (index, id) in self.ids.iter().enumerate() {
            for payment in sim.processor(id).payments(Window::ALL) {
                if self.booked.insert(payment.correlation_id)
                    && let Some(segment) = sent.segment_of(&payment.correlation_id)
                {
                    fresh.push((payment.requested_at, segment, index));
                }
            }
        }
        fresh.sort();
        let mut entries = Vec::new();
        for (requested_at, segment, processor) in fresh {
            let at_ms = self.clock.story_ms_of(requested_at);
            self.history.payments.push((at_ms, segment, processor));
            let phase = |i: usize| self.history.phases.get(i).copied();
            let (slowed, fast) = (phase(story::SLOWED), phase(story::FAST_AGAIN));
            let seen = self.spill.as_mut().map_or(Seen::Elsewhere, |t| {
                t.observe(segment, processor, at_ms, slowed, fast)
            });
            match seen {
                Seen::Elsewhere | Seen::Kept { over: None } => {}
                Seen::Spilled { first: false } => continue,
                Seen::Spilled { first: true } => {
                    self.history.spill_began = Some(at_ms);
                    let slow = self.spill.as_ref().map_or(0, |t| t.processor);
                    entries.push(Entry {
                        at_ms,
                        event: Event::Spill {
                            segment: MIX[segment].label(),
                            from: self.ids[slow].clone(),
                            to: self.ids[processor].clone(),
                            lane: self.lanes[slow],
                        },
                    });
                    continue;
                }
                Seen::Kept { over: Some(since) } => {
                    self.history.spill_over = Some(since);
                    let (spilled, kept) =
                        self.spill.as_ref().map_or((0, 0), |t| (t.spilled, t.kept));
                    entries.push(Entry {
                        at_ms: since,
                        event: Event::SpillOver {
                            segment: MIX[segment].label(),
                            processor: self.ids[processor].clone(),
                            spilled,
                            kept,
                            lane: self.lanes[processor],
                        },
                    });
                }
            }
            if let Some(switch) = self.routes[segment].observe(processor, at_ms) {
                self.history.routes.push((segment, switch));
                entries.push(Entry {
                    at_ms: switch.since_ms,
                    event: Event::Route {
                        segment: MIX[segment].label(),
                        processor: self.ids[switch.to].clone(),
                        previous: switch.from.map(|p| self.ids[p].clone()),
                    },
                });
            }
        }
        entries
    }

    /// Outcomes per processor since the last traffic line.
    pub fn traffic(&mut self, sim: &Sim, sent: &Sent) -> Entry {
        let at_ms = self.clock.now_ms();
        let mut line = TrafficLine {
            stretch_ms: at_ms - self.last_traffic_ms,
            processors: Vec::with_capacity(self.ids.len()),
            accepted_so_far: sent.accepted(),
            spilled: Vec::new(),
        };
        for (index, id) in self.ids.iter().enumerate() {
            let now = sim.processor(id).stats();
            let before = self.last_counts[index];
            line.processors.push((
                id.clone(),
                now.payments_stored - before.payments_stored,
                now.payments_declined - before.payments_declined,
                now.payments_failed - before.payments_failed,
            ));
            self.last_counts[index] = now;
        }
        for (index, id) in self.ids.iter().enumerate() {
            let now = self.lanes[index].map_or(0, |l| l.spilled);
            let before = std::mem::replace(&mut self.spilled_at_traffic[index], now);
            if now > before {
                line.spilled.push((id.clone(), now - before));
            }
        }
        self.last_traffic_ms = at_ms;
        Entry {
            at_ms,
            event: Event::Traffic(line),
        }
    }

    /// The segment's current route (processor id).
    pub fn route_of(&self, segment: usize) -> Option<&str> {
        self.routes[segment].current().map(|p| self.ids[p].as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_payment_sets_the_route() {
        let mut r = RouteTracker::default();
        assert_eq!(
            r.observe(2, 100),
            Some(Switch {
                from: None,
                to: 2,
                since_ms: 100
            })
        );
        assert_eq!(r.observe(2, 200), None);
        assert_eq!(r.current(), Some(2));
    }

    #[test]
    fn a_route_moves_after_three_in_a_row_dated_from_the_first() {
        let mut r = RouteTracker::default();
        r.observe(1, 0);
        assert_eq!(r.observe(4, 1_000), None);
        assert_eq!(r.observe(4, 1_400), None);
        assert_eq!(
            r.observe(4, 1_800),
            Some(Switch {
                from: Some(1),
                to: 4,
                since_ms: 1_000
            })
        );
        assert_eq!(r.current(), Some(4));
    }

    #[test]
    fn payments_elsewhere_while_the_processor_is_slow_are_spills_until_it_keeps_up() {
        let mut t = SpillTracker::new(0, 0);
        let (slowed, fast) = (Some(10_000), Some(70_000));
        // Before it slows, and in other segments: not its business.
        assert_eq!(t.observe(0, 1, 9_000, slowed, None), Seen::Elsewhere);
        assert_eq!(t.observe(0, 1, 9_000, None, None), Seen::Elsewhere);
        assert_eq!(t.observe(1, 1, 11_000, slowed, None), Seen::Elsewhere);
        assert_eq!(
            t.observe(0, 0, 11_000, slowed, None),
            Seen::Kept { over: None }
        );
        assert_eq!(
            t.observe(0, 1, 12_000, slowed, None),
            Seen::Spilled { first: true }
        );
        assert_eq!(
            t.observe(0, 1, 12_100, slowed, None),
            Seen::Spilled { first: false }
        );
        // Runs on the slow processor while it is slow do not end the spill.
        for at in [13_000, 13_100, 13_200, 13_300] {
            assert_eq!(t.observe(0, 0, at, slowed, None), Seen::Kept { over: None });
        }
        assert_eq!(t.began, Some(12_000));
        assert_eq!((t.spilled, t.kept), (2, 4));
        // Fast again: a late spill resets the run; three in a row end it,
        // dated from the first of them.
        assert_eq!(
            t.observe(0, 0, 70_100, slowed, fast),
            Seen::Kept { over: None }
        );
        assert_eq!(
            t.observe(0, 1, 70_200, slowed, fast),
            Seen::Spilled { first: false }
        );
        assert_eq!(
            t.observe(0, 0, 70_300, slowed, fast),
            Seen::Kept { over: None }
        );
        assert_eq!(
            t.observe(0, 0, 70_400, slowed, fast),
            Seen::Kept { over: None }
        );
        assert_eq!(
            t.observe(0, 0, 70_500, slowed, fast),
            Seen::Kept { over: Some(70_300) }
        );
        assert_eq!(t.over, Some(70_300));
        assert_eq!(
            t.observe(0, 0, 70_600, slowed, fast),
            Seen::Kept { over: None }
        );
    }

    #[test]
    fn a_lone_trial_payment_does_not_move_the_route() {
        let mut r = RouteTracker::default();
        r.observe(4, 0);
        assert_eq!(r.observe(1, 100), None);
        assert_eq!(r.observe(1, 200), None);
        assert_eq!(r.observe(4, 300), None);
        assert_eq!(r.observe(1, 400), None);
        assert_eq!(r.current(), Some(4));
    }
}
