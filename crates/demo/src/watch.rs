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

mod tracking;

pub use tracking::{RouteTracker, SWITCH_AFTER, Seen, SpillTracker, Switch};

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
