//! Watching the story as an operator and an auditor would: the router's
//! alerts and recommendations through its API, and where payments were
//! executed through the processors' own books and counters.
//!
//! Each [`Observer::poll`] turns what changed since the last one into
//! timeline [`Entry`]s and keeps the history the summary is computed from.

use std::collections::HashSet;

use reroute_core::{CorrelationId, Registry, Timestamp, Window};
use reroute_sim::{Sim, StatsSnapshot};

use crate::client::Http;
use crate::clock::StoryClock;
use crate::story::{self, MIX};
use crate::timeline::{Alert, Entry, Event, Pick, TrafficLine};
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
    pub history: History,
}

impl Observer {
    pub fn new(http: Http, router_url: String, clock: StoryClock, registry: &Registry) -> Self {
        let ids: Vec<String> = registry.by_fee().iter().map(|p| p.id.to_string()).collect();
        Self {
            last_counts: vec![StatsSnapshot::default(); ids.len()],
            ids,
            http,
            router_url,
            clock,
            last_alert: 0,
            alerts_since: None,
            recommended: None,
            routes: vec![RouteTracker::default(); MIX.len()],
            booked: HashSet::new(),
            last_traffic_ms: 0,
            history: History::default(),
        }
    }

    /// What changed since the last poll, oldest first.
    pub async fn poll(&mut self, sim: &Sim, sent: &Sent) -> anyhow::Result<Vec<Entry>> {
        let mut entries = self.alerts().await?;
        entries.extend(self.recommendation().await?);
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

    /// New approved payments in the processors' books, in the order they
    /// were sent, fed to each segment's route.
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
