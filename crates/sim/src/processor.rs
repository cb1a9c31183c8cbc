//! One simulated processor: its books, settings, limits and counters.
//!
//! The HTTP layer parses a request, asks the processor what to do
//! ([`Processor::plan`] on arrival, [`Processor::conclude`] once the latency
//! has passed) and writes the answer. Everything here is synchronous and
//! holds a lock only for a few instructions, so a slow request never blocks
//! another one. Tests may also drive a processor directly through the public
//! methods (set faults, read the books) instead of the admin endpoints.

use std::sync::{Mutex, RwLock};
use std::time::Duration;

use reroute_core::{CorrelationId, Window};
use tokio::time::Instant;

use crate::book::{Book, Insert, Payment, Totals};
use crate::concurrency::ConcurrencyLimit;
use crate::config::{ProcessorSpec, SimConfig};
use crate::faults::{
    Controls, Dealer, Fate, Faults, FaultsError, ScheduleError, ScheduleState, ScheduleStep,
    Settings,
};
use crate::health_limit::HealthLimiter;
use crate::stats::{Stats, StatsSnapshot};

/// A payment request as parsed at the edge.
#[derive(Debug, Clone)]
pub struct PaymentRequest {
    pub payment: Payment,
    pub payment_method: Option<String>,
    pub country: Option<String>,
}

/// What was decided for a request on arrival.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// The Rinha delay plus injected latency.
    pub wait: Duration,
    pub fate: Fate,
}

/// What became of a payment request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Stored,
    Duplicate,
    /// 500, nothing stored (failure mode or injected error).
    Failed,
    /// 429 at once, nothing stored (injected `throttle_rate`).
    Throttled,
    Declined(DeclineReason),
    Hang,
    Reset,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeclineReason {
    /// Injected by `decline_rate`.
    Simulated,
    UnsupportedPaymentMethod,
    UnsupportedCountry,
}

impl DeclineReason {
    pub fn code(self) -> &'static str {
        match self {
            Self::Simulated => "do_not_honor",
            Self::UnsupportedPaymentMethod => "unsupported_payment_method",
            Self::UnsupportedCountry => "unsupported_country",
        }
    }
}

pub struct Processor {
    spec: ProcessorSpec,
    started: Instant,
    token: RwLock<String>,
    controls: Mutex<Controls>,
    dealer: Mutex<Dealer>,
    book: Book,
    health: Mutex<HealthLimiter>,
    pub(crate) concurrency: ConcurrencyLimit,
    pub(crate) stats: Stats,
}

impl Processor {
    pub(crate) fn new(spec: ProcessorSpec, config: &SimConfig) -> Self {
        let started = Instant::now();
        let settings = Settings {
            delay_ms: spec.delay_ms,
            failure: spec.failure,
            faults: spec.faults,
        };
        Self {
            controls: Mutex::new(Controls::new(settings, spec.schedule.clone(), started)),
            dealer: Mutex::default(),
            spec,
            started,
            token: RwLock::new(config.token.clone()),
            book: Book::default(),
            health: Mutex::new(HealthLimiter::new(
                config.health_window,
                config.health_queue,
            )),
            concurrency: ConcurrencyLimit::new(config.max_in_flight, config.max_queued),
            stats: Stats::default(),
        }
    }

    pub fn spec(&self) -> &ProcessorSpec {
        &self.spec
    }

    pub fn id(&self) -> &str {
        &self.spec.id
    }

    pub(crate) fn started(&self) -> Instant {
        self.started
    }

    fn controls(&self) -> std::sync::MutexGuard<'_, Controls> {
        self.controls.lock().expect("controls lock poisoned")
    }

    pub(crate) fn health(&self) -> std::sync::MutexGuard<'_, HealthLimiter> {
        self.health.lock().expect("health limiter lock poisoned")
    }

    /// The settings in force now (schedule applied).
    pub fn settings(&self) -> Settings {
        self.controls().at(Instant::now())
    }

    /// `X-Rinha-Token` check for `/admin/*`.
    pub fn token_matches(&self, presented: Option<&[u8]>) -> bool {
        let token = self.token.read().expect("token lock poisoned");
        presented == Some(token.as_bytes())
    }

    pub fn set_token(&self, token: String) {
        *self.token.write().expect("token lock poisoned") = token;
    }

    /// Sets the Rinha delay (ms); returns the previous one.
    pub fn set_delay(&self, delay_ms: i64) -> i64 {
        self.controls().set_delay(Instant::now(), delay_ms)
    }

    /// Sets the Rinha failure flag; returns the previous one.
    pub fn set_failure(&self, failure: bool) -> bool {
        self.controls().set_failure(Instant::now(), failure)
    }

    /// Replaces the injected faults; returns the previous ones.
    pub fn set_faults(&self, faults: Faults) -> Result<Faults, FaultsError> {
        faults.validate()?;
        Ok(self.controls().set_faults(Instant::now(), faults))
    }

    /// Starts a schedule now (an empty one stops the current schedule).
    pub fn set_schedule(&self, steps: Vec<ScheduleStep>) -> Result<(), ScheduleError> {
        crate::faults::validate_schedule(&steps)?;
        self.controls().set_schedule(Instant::now(), steps);
        Ok(())
    }

    pub fn schedule(&self) -> ScheduleState {
        self.controls().schedule_state(Instant::now())
    }

    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    pub fn reset_stats(&self) {
        self.stats.reset();
    }

    pub fn payment(&self, id: &CorrelationId) -> Option<Payment> {
        self.book.get(id)
    }

    /// Stored payments with `requestedAt` in `window`, oldest first.
    pub fn payments(&self, window: Window) -> Vec<Payment> {
        self.book.list(window)
    }

    pub fn totals(&self, window: Window) -> Totals {
        self.book.totals(window)
    }

    pub fn purge(&self) {
        self.book.purge();
    }

    /// On arrival: how long to wait and what will become of the request,
    /// from the settings in force now. The wait is fixed here, as the
    /// reference fixes its delay when a request arrives: a later change of
    /// the delay does not shorten or lengthen a request already sleeping.
    pub fn plan(&self, now: Instant) -> Plan {
        let settings = self.controls().at(now);
        let (latency, fate) = if settings.faults.is_off() {
            (Duration::ZERO, Fate::Process)
        } else {
            let mut dealer = self.dealer.lock().unwrap_or_else(|e| e.into_inner());
            settings.faults.roll(&mut dealer, &mut rand::rng())
        };
        let wait = match fate {
            // Refused before any work, as the concurrency limiter refuses.
            Fate::Throttle => Duration::ZERO,
            _ => settings.delay() + latency,
        };
        Plan { wait, fate }
    }

    /// Once the wait is over: the failure flag as it is *now* (as the
    /// reference checks it after its delay), then the fate, then the books.
    pub fn conclude(&self, request: &PaymentRequest, fate: Fate, now: Instant) -> Outcome {
        let outcome = match fate {
            Fate::Hang => Outcome::Hang,
            Fate::Reset { after_store: false } => Outcome::Reset,
            Fate::Throttle => Outcome::Throttled,
            _ if self.controls().at(now).failure => Outcome::Failed,
            Fate::Error => Outcome::Failed,
            _ if !serves(
                &self.spec.payment_methods,
                request.payment_method.as_deref(),
            ) =>
            {
                Outcome::Declined(DeclineReason::UnsupportedPaymentMethod)
            }
            _ if !serves(&self.spec.countries, request.country.as_deref()) => {
                Outcome::Declined(DeclineReason::UnsupportedCountry)
            }
            Fate::Decline => Outcome::Declined(DeclineReason::Simulated),
            Fate::Process | Fate::Reset { after_store: true } => {
                let inserted = self.book.insert(request.payment);
                match (inserted, fate) {
                    (Insert::Stored, Fate::Reset { .. }) => {
                        self.stats.payments_stored.add();
                        Outcome::Reset
                    }
                    (Insert::Duplicate, Fate::Reset { .. }) => Outcome::Reset,
                    (Insert::Stored, _) => Outcome::Stored,
                    (Insert::Duplicate, _) => Outcome::Duplicate,
                }
            }
        };
        let counter = match outcome {
            Outcome::Stored => &self.stats.payments_stored,
            Outcome::Duplicate => &self.stats.payments_duplicate,
            Outcome::Failed => &self.stats.payments_failed,
            Outcome::Throttled => &self.stats.payments_storm_refused,
            Outcome::Declined(_) => &self.stats.payments_declined,
            Outcome::Hang => &self.stats.payments_hung,
            Outcome::Reset => &self.stats.payments_reset,
        };
        counter.add();
        outcome
    }
}

/// An empty list serves everything; a request that names nothing is served.
fn serves(list: &[String], wanted: Option<&str>) -> bool {
    match wanted {
        None => true,
        Some(wanted) => list.is_empty() || list.iter().any(|x| x.eq_ignore_ascii_case(wanted)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reroute_core::{Money, Timestamp};

    fn processor(spec: ProcessorSpec) -> Processor {
        Processor::new(spec, &SimConfig::rinha())
    }

    fn request() -> PaymentRequest {
        PaymentRequest {
            payment: Payment {
                correlation_id: CorrelationId::new_random(),
                amount: Money::from_minor(1990),
                requested_at: Timestamp::from_millis(0),
            },
            payment_method: None,
            country: None,
        }
    }

    #[tokio::test]
    async fn the_failure_flag_is_read_when_the_delay_ends() {
        let p = processor(ProcessorSpec::new("default", 0, "0.05".parse().unwrap()));
        p.set_delay(100);
        let plan = p.plan(Instant::now());
        assert_eq!(
            plan,
            Plan {
                wait: Duration::from_millis(100),
                fate: Fate::Process
            }
        );
        p.set_failure(true);
        let r = request();
        assert_eq!(p.conclude(&r, plan.fate, Instant::now()), Outcome::Failed);
        assert_eq!(p.payment(&r.payment.correlation_id), None);
    }

    #[tokio::test]
    async fn a_request_keeps_the_wait_planned_on_arrival_when_the_delay_changes() {
        let p = processor(ProcessorSpec::new("default", 0, "0.05".parse().unwrap()));
        p.set_delay(3000);
        let sleeping = p.plan(Instant::now());
        p.set_delay(0);
        let fresh = p.plan(Instant::now());
        assert_eq!(sleeping.wait, Duration::from_millis(3000));
        assert_eq!(fresh.wait, Duration::ZERO);
    }

    #[tokio::test]
    async fn a_throttled_request_is_refused_at_once_and_stores_nothing() {
        let p = processor(ProcessorSpec::new("default", 0, "0.05".parse().unwrap()));
        p.set_delay(3000);
        p.set_faults(Faults {
            throttle_rate: 1.0,
            latency_ms: 500,
            ..Faults::default()
        })
        .unwrap();
        let plan = p.plan(Instant::now());
        assert_eq!(
            plan,
            Plan {
                wait: Duration::ZERO,
                fate: Fate::Throttle
            }
        );
        let r = request();
        assert_eq!(
            p.conclude(&r, plan.fate, Instant::now()),
            Outcome::Throttled
        );
        assert_eq!(p.payment(&r.payment.correlation_id), None);
        let stats = p.stats();
        assert_eq!(
            (stats.payments_storm_refused, stats.payments_throttled),
            (1, 0),
            "counted apart from the concurrency limit's refusals"
        );
    }

    #[tokio::test]
    async fn a_reset_after_store_keeps_the_payment() {
        let p = processor(ProcessorSpec::new("default", 0, "0.05".parse().unwrap()));
        let r = request();
        assert_eq!(
            p.conclude(&r, Fate::Reset { after_store: true }, Instant::now()),
            Outcome::Reset
        );
        assert!(p.payment(&r.payment.correlation_id).is_some());
        assert_eq!(
            (p.stats().payments_stored, p.stats().payments_reset),
            (1, 1)
        );
    }

    #[tokio::test]
    async fn payments_outside_the_declared_methods_and_countries_are_declined() {
        let mut spec = ProcessorSpec::new("processor_c", 0, "0.02".parse().unwrap());
        spec.payment_methods = vec!["PIX".into()];
        spec.countries = vec!["BR".into()];
        let p = processor(spec);
        let with = |method: Option<&str>, country: Option<&str>| {
            let mut r = request();
            r.payment_method = method.map(str::to_owned);
            r.country = country.map(str::to_owned);
            p.conclude(&r, Fate::Process, Instant::now())
        };
        assert_eq!(
            with(Some("CARD"), None),
            Outcome::Declined(DeclineReason::UnsupportedPaymentMethod)
        );
        assert_eq!(
            with(Some("pix"), Some("MX")),
            Outcome::Declined(DeclineReason::UnsupportedCountry)
        );
        assert_eq!(with(Some("PIX"), Some("BR")), Outcome::Stored);
        assert_eq!(with(None, None), Outcome::Stored);
    }
}
