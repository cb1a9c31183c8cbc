//! Surface 3, the live dashboard: `GET /dashboard` serves one self-contained
//! page (HTML, CSS and JavaScript built into the binary, nothing fetched from
//! elsewhere) that follows `GET /dashboard/events`, a Server-Sent Events
//! feed of snapshots; `GET /dashboard/snapshot` answers one snapshot as
//! plain JSON.
//!
//! A snapshot is read from the live state every handler shares: the health
//! engine (processors, segments, alerts, the recommendation for the method
//! and country the page has selected), the circuit breakers, each
//! processor's lane (its adaptive limit of sends in flight, backlog and
//! expected wait, and how many payments spilled from it) and the queue.
//! Its JSON is the intelligence API's (`api::intel`), built by the same code.
//! Nothing here keeps state of its own beyond what each open feed remembers
//! about what it last sent.
//!
//! Cost: a feed pushes one snapshot a second, and sooner — within
//! [`CHECK_EVERY`] — when a processor's status or circuit changes or an alert
//! is raised. The check between snapshots takes one lock per processor and
//! copies only the last minute's alerts.
//!
//! The page loads without a token; the data (snapshot and feed) needs the
//! admin token when one is configured, as a bearer header or, because a
//! browser's `EventSource` cannot send headers, a `token` query parameter.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use reroute_core::health::Alert;
use reroute_core::{Status, Timestamp};
use serde::Serialize;
use tokio::time::{Instant, Interval, MissedTickBehavior};

use super::error::{ApiError, ErrorBody};
use super::intel::json::{AlertJson, ProcessorHealthJson, processor_health};
use super::intel::parse::{country, method};
use super::intel::recommend::{RecommendationJson, recommendation};
use super::openapi::{errors, wire};
use super::request::{presented_token, require_token};
use crate::state::Shared;

/// The page: markup, style and script in one file.
const PAGE: &str = include_str!("../../assets/dashboard.html");

/// How often an open feed looks for a change worth pushing at once.
pub const CHECK_EVERY: Duration = Duration::from_millis(250);
/// The longest an open feed goes without a snapshot.
pub const REFRESH_EVERY: Duration = Duration::from_secs(1);
/// Alerts in a feed's first snapshot (later ones carry only new alerts).
const ALERTS_SHOWN: usize = 50;
/// How far back, by their own timestamps, the quick check looks for new
/// alerts. Alerts stamped earlier (replayed history) are found by the full
/// scan that runs every [`FULL_SCAN_EVERY`].
const RECENT_ALERTS_MS: i64 = 60_000;
const FULL_SCAN_EVERY: Duration = Duration::from_secs(15);
/// How soon a browser reconnects after the feed drops.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

/// `GET /dashboard`: the page. It carries no data, so it needs no token; it
/// asks for one when the feed answers 401.
#[utoipa::path(
    get,
    path = "/dashboard",
    operation_id = "dashboard_page",
    tag = "dashboard",
    responses((status = 200, description = "The self-contained dashboard page.", content_type = "text/html; charset=utf-8", body = String))
)]
pub async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
            // The page may be opened with `?token=`: never pass it on.
            (header::REFERRER_POLICY, "no-referrer"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
                 connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; \
                 frame-ancestors 'none'",
            ),
        ],
        PAGE,
    )
        .into_response()
}

/// What the page asks for: its token and the method and country whose
/// recommendation it shows (both or neither).
#[derive(serde::Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FeedQuery {
    /// The admin token, for a browser's `EventSource` that cannot send headers.
    token: Option<String>,
    /// With `country`: the method whose recommendation to include, e.g. PIX.
    payment_method: Option<String>,
    /// With `payment_method`: ISO 3166-1 alpha-2, e.g. BR.
    country: Option<String>,
}

/// The method and country of a recommendation, validated as the
/// intelligence API validates them (upper case).
struct Selection {
    method: String,
    country: String,
}

impl FeedQuery {
    fn selection(self) -> Result<Option<Selection>, ApiError> {
        let given = |v: Option<String>| v.filter(|v| !v.trim().is_empty());
        match (given(self.payment_method), given(self.country)) {
            (None, None) => Ok(None),
            (Some(m), Some(c)) => Ok(Some(Selection {
                method: method(m.trim().to_owned())?,
                country: country(c.trim().to_owned())?,
            })),
            (None, Some(_)) => Err(ApiError::invalid(
                "payment_method",
                "payment_method is required with country",
            )),
            (Some(_), None) => Err(ApiError::invalid(
                "country",
                "country is required with payment_method",
            )),
        }
    }
}

/// What [`FeedQuery::selection`] refuses, for the documents of both data
/// endpoints. Never built: it exists for its description.
#[derive(utoipa::IntoResponses)]
#[response(
    status = 400,
    description = "The selection is incomplete or malformed."
)]
#[allow(dead_code)]
struct BadSelection(ErrorBody<'static>);

fn parse(
    shared: &Shared,
    headers: &HeaderMap,
    query: Result<Query<FeedQuery>, QueryRejection>,
) -> Result<Option<Selection>, ApiError> {
    let Query(q) = query?;
    require_token(
        shared.config.admin_token.as_deref(),
        presented_token(headers).or(q.token.as_deref()),
    )?;
    q.selection()
}

/// `GET /dashboard/snapshot[?payment_method=PIX&country=BR]`: one snapshot,
/// with the last alerts.
#[utoipa::path(
    get,
    path = "/dashboard/snapshot",
    operation_id = "dashboard_snapshot",
    tag = "dashboard",
    params(FeedQuery),
    security((), ("bearer" = []), ("rinha_token" = []), ("token_query" = [])),
    responses(
        (status = 200, description = "One snapshot.", body = Snapshot),
        BadSelection,
        errors::TokenMissing,
    )
)]
pub async fn snapshot(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    query: Result<Query<FeedQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let selection = parse(&shared, &headers, query)?;
    let alerts = shared.health.alerts_since(None);
    let shown = &alerts[alerts.len().saturating_sub(ALERTS_SHOWN)..];
    let snapshot = Snapshot::read(&shared, selection.as_ref(), shown, Timestamp::now());
    Ok(Json(snapshot).into_response())
}

/// `GET /dashboard/events[?payment_method=PIX&country=BR][&token=…]`: an
/// endless `text/event-stream` of `snapshot` events. The first carries the
/// last alerts; each later one the alerts raised since the one before. It
/// ends when the router stops.
#[utoipa::path(
    get,
    path = "/dashboard/events",
    operation_id = "dashboard_events",
    tag = "dashboard",
    params(FeedQuery),
    security((), ("bearer" = []), ("rinha_token" = []), ("token_query" = [])),
    responses(
        (status = 200, description = "Server-Sent Events: `snapshot` events whose data is a `Snapshot` \
            (the first with the last alerts, later ones with the alerts raised since).",
            content_type = "text/event-stream", body = String),
        BadSelection,
        errors::TokenMissing,
    )
)]
pub async fn events(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    query: Result<Query<FeedQuery>, QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let selection = parse(&shared, &headers, query)?;
    let feed = Feed::new(shared, selection);
    let stream = futures_util::stream::unfold(feed, |mut feed| async move {
        let event = feed.next().await?;
        Some((Ok(event), feed))
    });
    Ok(Sse::new(stream))
}

// ---------------------------------------------------------------- the feed

/// What a processor looks like from far away: when it changes, the feed
/// pushes at once rather than at the next second.
#[derive(PartialEq, Eq)]
struct Glance {
    status: Status,
    circuit_up: bool,
}

/// One client's feed: what it sent last, and when.
struct Feed {
    shared: Arc<Shared>,
    /// Cancelled when the router begins to stop: the feed then ends, so
    /// that the graceful drain does not wait on it.
    stop: Pin<Box<dyn Future<Output = ()> + Send>>,
    selection: Option<Selection>,
    /// The highest alert id sent; 0 before the first snapshot.
    last_alert: u64,
    glance: Vec<Glance>,
    pushed_at: Instant,
    scanned_at: Instant,
    ticker: Interval,
    started: bool,
}

impl Feed {
    fn new(shared: Arc<Shared>, selection: Option<Selection>) -> Self {
        let mut ticker = tokio::time::interval(CHECK_EVERY);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let now = Instant::now();
        Self {
            stop: Box::pin(shared.stopping.clone().cancelled_owned()),
            shared,
            selection,
            last_alert: 0,
            glance: Vec::new(),
            pushed_at: now,
            scanned_at: now,
            ticker,
            started: false,
        }
    }

    fn glance(&self) -> Vec<Glance> {
        (0..self.shared.registry.len())
            .map(|i| Glance {
                status: self.shared.health.status(i),
                circuit_up: self.shared.breakers.is_up(i),
            })
            .collect()
    }

    /// The next event: at once for the first, then on a change or after
    /// [`REFRESH_EVERY`]; `None` once the router is stopping.
    async fn next(&mut self) -> Option<Event> {
        if !self.started {
            self.started = true;
            let alerts = self.shared.health.alerts_since(None);
            let shown = alerts.len().saturating_sub(ALERTS_SHOWN);
            return Some(self.push(&alerts[shown..]).retry(RECONNECT_AFTER));
        }
        loop {
            tokio::select! {
                () = &mut self.stop => return None,
                _ = self.ticker.tick() => {}
            }
            let since = if self.scanned_at.elapsed() >= FULL_SCAN_EVERY {
                self.scanned_at = Instant::now();
                None
            } else {
                Some(Timestamp::now().plus_millis(-RECENT_ALERTS_MS))
            };
            let mut new: Vec<Alert> = self.shared.health.alerts_since(since);
            new.retain(|a| a.id > self.last_alert);
            let fresh = new.len().saturating_sub(ALERTS_SHOWN);
            if !new.is_empty()
                || self.glance() != self.glance
                || self.pushed_at.elapsed() >= REFRESH_EVERY
            {
                return Some(self.push(&new[fresh..]));
            }
        }
    }

    fn push(&mut self, alerts: &[Alert]) -> Event {
        let now = Timestamp::now();
        self.glance = self.glance();
        self.pushed_at = Instant::now();
        if let Some(id) = alerts.iter().map(|a| a.id).max() {
            self.last_alert = self.last_alert.max(id);
        }
        let snapshot = Snapshot::read(&self.shared, self.selection.as_ref(), alerts, now);
        match Event::default().event("snapshot").json_data(&snapshot) {
            Ok(event) => event,
            Err(e) => {
                tracing::error!(error = %e, "dashboard snapshot not serialisable");
                Event::default().comment("snapshot unavailable")
            }
        }
    }
}

// ---------------------------------------------------------------- JSON out

/// Everything the page shows at one instant.
#[derive(Serialize, utoipa::ToSchema)]
struct Snapshot<'a> {
    #[schema(value_type = wire::Timestamp)]
    timestamp: Timestamp,
    /// Cheapest first, as `GET /api/v1/health` lists them.
    processors: Vec<ProcessorLine<'a>>,
    queue: QueueJson,
    /// Oldest first, as `GET /api/v1/alerts` lists them.
    alerts: Vec<AlertJson<'a>>,
    /// For the selected method and country; `null` when none is selected.
    recommendation: Option<RecommendationJson<'a>>,
    /// What the selector offers: every method and country the registry
    /// names (a processor that names none takes any).
    options: Options<'a>,
}

/// `GET /api/v1/health`'s processor object plus its fee and circuit.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = DashboardProcessor)]
struct ProcessorLine<'a> {
    #[serde(flatten)]
    health: ProcessorHealthJson<'a>,
    fee: f64,
    /// Whether reroute executes payments there (it has a URL).
    executes_payments: bool,
    /// Whether its circuit breaker lets payments through.
    circuit_up: bool,
    /// Its sends in flight and backlog; `null` for a processor reroute does
    /// not execute payments on (it has no URL, so nothing is ever sent).
    lane: Option<LaneJson>,
}

/// One processor's lane as `/metrics` exports it (`reroute_lane_*`), plus
/// `reroute_spilled_total` summed over the processors it spilled to: what an
/// operator needs to see that a slow processor is being given more sends in
/// flight, and what it cannot carry goes elsewhere.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Lane)]
struct LaneJson {
    /// Sends allowed in flight now: the adaptive concurrency limit.
    limit: u32,
    /// Sends in flight now.
    in_flight: usize,
    /// Payments waiting for a free send: the backlog.
    waiting: usize,
    /// Payments per second the processor can carry at its limit and latency;
    /// 0 before its first answer.
    throughput: f64,
    /// How long a payment joining the backlog may expect to wait for a free
    /// send; past the spill wait, it goes to the next processor by fee.
    expected_wait_ms: u64,
    /// Payments sent to a pricier processor because this one could not keep
    /// up, since the router started.
    spilled: u64,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Queue)]
struct QueueJson {
    /// Accepted payments waiting for a worker.
    depth: usize,
    /// How long the oldest of them has waited; `null` when none waits.
    oldest_age_ms: Option<i64>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = DashboardOptions)]
struct Options<'a> {
    payment_methods: Vec<&'a str>,
    countries: Vec<&'a str>,
}

impl<'a> Snapshot<'a> {
    fn read(
        shared: &'a Shared,
        selection: Option<&'a Selection>,
        alerts: &'a [Alert],
        now: Timestamp,
    ) -> Self {
        let ids: Vec<&str> = shared
            .registry
            .by_fee()
            .iter()
            .map(|p| p.id.as_str())
            .collect();
        let processors = shared
            .registry
            .by_fee()
            .iter()
            .enumerate()
            .map(|(i, p)| ProcessorLine {
                health: processor_health(shared, i, now),
                fee: p.fee.as_fraction(),
                executes_payments: p.url.is_some(),
                circuit_up: shared.breakers.is_up(i),
                lane: p.url.is_some().then(|| {
                    let view = shared.lanes.view(i, shared.landing.announced(i), now);
                    LaneJson {
                        limit: view.limit,
                        in_flight: view.in_flight,
                        waiting: view.waiting,
                        throughput: view.throughput,
                        expected_wait_ms: view.expected_wait_ms,
                        spilled: shared.metrics.spilled_from(p.id.as_str(), &ids),
                    }
                }),
            })
            .collect();
        let queue = QueueJson {
            depth: shared.queue.depth(),
            oldest_age_ms: shared
                .queue
                .oldest_accepted_at()
                .map(|t| (now.millis() - t.millis()).max(0)),
        };
        let mut methods: Vec<&str> = Vec::new();
        let mut countries: Vec<&str> = Vec::new();
        for p in shared.registry.by_fee() {
            methods.extend(p.payment_methods.iter().map(String::as_str));
            countries.extend(p.countries.iter().map(String::as_str));
        }
        for list in [&mut methods, &mut countries] {
            list.sort_unstable();
            list.dedup();
        }
        Snapshot {
            timestamp: now,
            processors,
            queue,
            alerts: alerts.iter().map(Into::into).collect(),
            recommendation: selection.map(|s| recommendation(shared, &s.method, &s.country, now)),
            options: Options {
                payment_methods: methods,
                countries,
            },
        }
    }
}
