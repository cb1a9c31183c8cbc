//! Per-client rate limiting of the public endpoints — the payments API
//! (`POST /payments`, `GET /payments-summary`) and the intelligence API
//! (`/api/v1/…`) — so that one client cannot starve the others. Off by
//! default (the Rinha test must run unlimited); on with
//! `--rate-limit-per-second`.
//!
//! Each client has a bucket of `burst` requests refilled at `per_second`
//! (GCRA, from the `governor` crate, one lock-free cell per client in a
//! sharded map). A request that finds its bucket empty is answered `429` with
//! `Retry-After` and the usual error body, and counted in
//! `reroute_rate_limited_total`. Operations endpoints (`/livez`, `/readyz`,
//! `/metrics`), the dashboard, the OpenAPI document and the admin purge are
//! never limited: a load balancer's health checks and a Prometheus scrape
//! must get through whatever a client does.
//!
//! The client is the connection's peer address, or — only when
//! `--trust-forwarded-for` says a proxy of ours sets it — the last address
//! of `X-Forwarded-For`, the one that proxy appended (the ones before it
//! are whatever the client sent). An IPv6 client is counted by its /64, the
//! block one host or one home gets. The table of clients stays bounded:
//! every [`SWEEP_EVERY`] checks it forgets the clients whose bucket has
//! refilled, so it holds about the clients seen within one refill time
//! (`burst / per_second`), plus at most [`SWEEP_EVERY`] more.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use crate::api::error::ErrorBody;
use crate::config::RateLimit;
use crate::state::Shared;

/// Checks between two sweeps of the client table.
pub const SWEEP_EVERY: u64 = 1024;

/// Whom a request counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Client(IpAddr);

impl Client {
    /// The client at `ip`: an IPv4 address as is (also when written as
    /// IPv4-mapped IPv6), an IPv6 address cut to its /64.
    pub fn at(ip: IpAddr) -> Client {
        match ip {
            IpAddr::V4(v4) => Client(IpAddr::V4(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Client(IpAddr::V4(v4)),
                None => Client(IpAddr::V6(Ipv6Addr::from(
                    u128::from(v6) & !(u64::MAX as u128),
                ))),
            },
        }
    }

    /// The client of a request from `peer`: the last `X-Forwarded-For`
    /// address when `trust_forwarded_for` and it parses, else the peer.
    pub fn of(
        headers: &HeaderMap,
        peer: Option<SocketAddr>,
        trust_forwarded_for: bool,
    ) -> Option<Client> {
        let forwarded = trust_forwarded_for
            .then(|| last_forwarded_for(headers))
            .flatten();
        forwarded.or(peer.map(|p| p.ip())).map(Client::at)
    }
}

/// The last address of the last `X-Forwarded-For` header: the one the
/// nearest proxy added.
fn last_forwarded_for(headers: &HeaderMap) -> Option<IpAddr> {
    let value = headers.get_all("x-forwarded-for").iter().next_back()?;
    let last = value.to_str().ok()?.rsplit(',').next()?.trim();
    last.parse::<IpAddr>()
        .ok()
        .or_else(|| last.parse::<SocketAddr>().ok().map(|a| a.ip()))
}

/// A bucket per client.
pub struct Limiter<C: Clock = DefaultClock> {
    buckets: RateLimiter<Client, DefaultKeyedStateStore<Client>, C, NoOpMiddleware<C::Instant>>,
    clock: C,
    checks: AtomicU64,
}

impl Limiter {
    pub fn new(limit: &RateLimit) -> Self {
        Self::with_clock(limit, DefaultClock::default())
    }
}

impl<C: Clock + Clone> Limiter<C> {
    /// A limiter reading time from `clock` (tests drive a fake one).
    pub fn with_clock(limit: &RateLimit, clock: C) -> Self {
        let quota = Quota::per_second(limit.per_second).allow_burst(limit.burst);
        Self {
            buckets: RateLimiter::new(quota, DefaultKeyedStateStore::default(), clock.clone()),
            clock,
            checks: AtomicU64::new(0),
        }
    }

    /// Takes one request from `client`'s bucket, or says how long until
    /// the bucket has one again.
    pub fn check(&self, client: Client) -> Result<(), Duration> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.sweep();
        }
        self.buckets
            .check_key(&client)
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// Forgets the clients whose bucket is full again: they are no
    /// different from a client never seen.
    fn sweep(&self) {
        self.buckets.retain_recent();
        self.buckets.shrink_to_fit();
    }

    /// Clients in the table.
    pub fn clients(&self) -> usize {
        self.buckets.len()
    }
}

/// Whether requests to `route` (a route template) are limited.
pub fn is_limited(route: &str) -> bool {
    matches!(route, "/payments" | "/payments-summary" | "/payments/{id}")
        || route.starts_with("/api/v1/")
}

/// The middleware's state.
struct Gate {
    shared: Arc<Shared>,
    limit: RateLimit,
    limiter: Limiter,
}

/// `router` with the configured limit in front of its public endpoints;
/// `router` itself when no limit is configured.
pub fn layer(router: Router, shared: &Arc<Shared>) -> Router {
    let Some(limit) = shared.config.rate_limit else {
        return router;
    };
    let gate = Arc::new(Gate {
        shared: Arc::clone(shared),
        limit,
        limiter: Limiter::new(&limit),
    });
    router.layer(axum::middleware::from_fn_with_state(gate, enforce))
}

async fn enforce(State(gate): State<Arc<Gate>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = match request.extensions().get::<MatchedPath>() {
        Some(route) if is_limited(route.as_str()) => route.as_str().to_owned(),
        _ => return next.run(request).await,
    };
    let peer = request
        .extensions()
        .get::<crate::listen::Peer>()
        .and_then(|peer| peer.0);
    let Some(client) = Client::of(request.headers(), peer, gate.limit.trust_forwarded_for) else {
        return next.run(request).await;
    };
    let Err(wait) = gate.limiter.check(client) else {
        return next.run(request).await;
    };
    let metrics = &gate.shared.metrics;
    metrics.rate_limited(&route);
    // Answered here, before the request-counting middleware: count it too.
    metrics.http(
        &route,
        request.method().as_str(),
        StatusCode::TOO_MANY_REQUESTS.as_u16(),
        started.elapsed(),
    );
    too_many_requests(wait, &gate.limit)
}

/// `429` with `Retry-After` (whole seconds, at least 1) and the error body.
fn too_many_requests(wait: Duration, limit: &RateLimit) -> Response {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let seconds = seconds.max(1);
    let body = ErrorBody {
        error: format!(
            "too many requests from this client (limit: {} a second, bursts of {}); retry after {seconds} s",
            limit.per_second, limit.burst
        ),
        field: None,
        outcome: None,
        retry_safe: None,
    };
    (
        StatusCode::TOO_MANY_REQUESTS,
        [(header::RETRY_AFTER, HeaderValue::from(seconds))],
        axum::Json(body),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;
    use std::net::Ipv4Addr;
    use std::num::NonZeroU32;

    fn limit(per_second: u32, burst: u32) -> RateLimit {
        RateLimit {
            per_second: NonZeroU32::new(per_second).unwrap(),
            burst: NonZeroU32::new(burst).unwrap(),
            trust_forwarded_for: false,
        }
    }

    fn v4(n: u32) -> Client {
        Client::at(IpAddr::V4(Ipv4Addr::from(n)))
    }

    #[test]
    fn a_client_gets_its_burst_then_waits_for_the_refill() {
        let clock = FakeRelativeClock::default();
        let limiter = Limiter::with_clock(&limit(2, 3), clock.clone());
        for _ in 0..3 {
            assert_eq!(limiter.check(v4(1)), Ok(()));
        }
        let wait = limiter.check(v4(1)).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500));
        assert_eq!(
            limiter.check(v4(2)),
            Ok(()),
            "another client is not affected"
        );
        clock.advance(Duration::from_millis(500));
        assert_eq!(limiter.check(v4(1)), Ok(()));
        assert!(limiter.check(v4(1)).is_err());
    }

    #[test]
    fn clients_whose_bucket_refilled_are_forgotten() {
        let clock = FakeRelativeClock::default();
        let limiter = Limiter::with_clock(&limit(10, 10), clock.clone());
        // 5,000 clients pass once each; the table grows, sweeping nothing
        // it may not forget (every bucket is still refilling).
        for n in 0..5_000 {
            limiter.check(v4(n)).unwrap();
        }
        assert!(limiter.clients() >= 5_000 - SWEEP_EVERY as usize);
        // One refill time later, the next sweep forgets them all.
        clock.advance(Duration::from_secs(1));
        let until_sweep = SWEEP_EVERY - 5_000 % SWEEP_EVERY;
        for _ in 0..until_sweep {
            limiter.check(v4(1_000_000)).ok();
        }
        assert!(limiter.clients() <= 1, "{} clients kept", limiter.clients());
    }

    #[test]
    fn the_table_stays_bounded_under_a_flood_of_new_clients() {
        let clock = FakeRelativeClock::default();
        let limiter = Limiter::with_clock(&limit(100, 100), clock.clone());
        // 100,000 distinct clients, one request each, 1 ms apart: each
        // bucket refills within a second, so about 1,000 are ever live.
        for n in 0..100_000 {
            limiter.check(v4(n)).unwrap();
            clock.advance(Duration::from_millis(1));
            assert!(limiter.clients() <= 1_000 + SWEEP_EVERY as usize + 1);
        }
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64_block() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(Client::at(a), Client::at(b));
        assert_ne!(Client::at(a), Client::at(c));
        let mapped: IpAddr = "::ffff:10.0.0.7".parse().unwrap();
        assert_eq!(Client::at(mapped), Client::at("10.0.0.7".parse().unwrap()));
    }

    #[test]
    fn forwarded_for_counts_only_when_trusted_and_its_last_entry_only() {
        let peer: SocketAddr = "10.0.0.2:4000".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.append("x-forwarded-for", "1.1.1.1, 2.2.2.2".parse().unwrap());
        headers.append("x-forwarded-for", "3.3.3.3, 4.4.4.4".parse().unwrap());
        let client = |headers: &HeaderMap, trust| Client::of(headers, Some(peer), trust).unwrap();
        assert_eq!(client(&headers, false), Client::at(peer.ip()));
        assert_eq!(
            client(&headers, true),
            Client::at("4.4.4.4".parse().unwrap())
        );
        headers.insert("x-forwarded-for", "1.1.1.1, garbage".parse().unwrap());
        assert_eq!(
            client(&headers, true),
            Client::at(peer.ip()),
            "unparsable: the peer"
        );
        headers.insert("x-forwarded-for", "5.5.5.5:1234".parse().unwrap());
        assert_eq!(
            client(&headers, true),
            Client::at("5.5.5.5".parse().unwrap())
        );
        assert_eq!(
            client(&HeaderMap::new(), true),
            Client::at(peer.ip()),
            "absent: the peer"
        );
    }

    #[test]
    fn only_the_public_endpoints_are_limited() {
        for route in [
            "/payments",
            "/payments-summary",
            "/payments/{id}",
            "/api/v1/transactions",
            "/api/v1/health/{processor_id}",
        ] {
            assert!(is_limited(route), "{route}");
        }
        for route in [
            "/livez",
            "/readyz",
            "/metrics",
            "/purge-payments",
            "/dashboard",
            "/dashboard/events",
            "/openapi.json",
        ] {
            assert!(!is_limited(route), "{route}");
        }
    }

    #[test]
    fn retry_after_is_whole_seconds_rounded_up() {
        let l = limit(1, 1);
        let seconds = |wait| {
            too_many_requests(wait, &l).headers()[header::RETRY_AFTER]
                .to_str()
                .unwrap()
                .to_owned()
        };
        assert_eq!(seconds(Duration::from_millis(10)), "1");
        assert_eq!(seconds(Duration::from_millis(1_000)), "1");
        assert_eq!(seconds(Duration::from_millis(1_001)), "2");
        assert_eq!(seconds(Duration::ZERO), "1");
    }
}
