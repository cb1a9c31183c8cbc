//! How long the store takes, as `/metrics` shows it: every operation as its
//! caller sees it (queueing for a writer included), and the engine's steps
//! under them (waits for a pooled connection, groups of writes), so an
//! operator can tell a slow database from a queue in front of it
//! (docs/postgres.md, "Where the time goes").

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use reroute_core::{CorrelationId, Money, Timestamp, Window};
use reroute_store::{
    Acceptance, Attempt, LedgerEntry, NewPayment, Observer, Outcome, PaymentRecord, PendingPayment,
    ProbeReport, Step, Store, StoreFuture, Totals,
};

type Labels = Vec<(&'static str, String)>;

/// The store's operations, as labelled in `store_operation_duration_seconds`.
#[derive(Debug, Clone, Copy)]
enum Op {
    Accept,
    BeginAttempt,
    Finish,
    Restore,
    Find,
    Pending,
    Summary,
    Ledger,
    Known,
    Purge,
    Renew,
    Reclaim,
    TakeOver,
    Held,
    LeadProbes,
    PublishProbe,
    Probes,
}

const OPS: [&str; 17] = [
    "accept",
    "begin_attempt",
    "finish",
    "restore",
    "find",
    "pending",
    "summary",
    "ledger",
    "known",
    "purge",
    "renew",
    "reclaim",
    "take_over",
    "held",
    "lead_probes",
    "publish_probe",
    "probes",
];

/// The store's histograms, with one handle per operation and step built on
/// first use (no label set per call).
#[derive(Debug)]
pub struct StoreMetrics {
    operations: Family<Labels, Histogram>,
    steps: Family<Labels, Histogram>,
    group_writes: Histogram,
    op_handles: [OnceLock<Histogram>; OPS.len()],
    step_handles: [OnceLock<Histogram>; 2],
}

fn seconds() -> Histogram {
    // 50 µs .. ~6.5 s
    Histogram::new(exponential_buckets(0.000_05, 2.0, 18))
}

impl StoreMetrics {
    /// Registers the families in `registry` (prefixed `reroute_`).
    pub fn register(registry: &mut Registry) -> Arc<Self> {
        let metrics = Arc::new(Self {
            operations: Family::new_with_constructor(seconds as fn() -> Histogram),
            steps: Family::new_with_constructor(seconds as fn() -> Histogram),
            group_writes: Histogram::new(exponential_buckets(1.0, 2.0, 11)),
            op_handles: Default::default(),
            step_handles: Default::default(),
        });
        registry.register(
            "store_operation_duration_seconds",
            "Time the store took to answer, by operation, as its caller waits (queueing for a writer included)",
            metrics.operations.clone(),
        );
        registry.register(
            "store_step_duration_seconds",
            "Time of the steps under the store's operations: pool_wait (a pooled connection), group (a group of writes applied and committed in one statement); PostgreSQL only",
            metrics.steps.clone(),
        );
        registry.register(
            "store_group_writes",
            "Writes carried by one group (one statement and commit); PostgreSQL only",
            metrics.group_writes.clone(),
        );
        metrics
    }

    fn op(&self, op: Op) -> &Histogram {
        let i = op as usize;
        self.op_handles[i].get_or_init(|| {
            self.operations
                .get_or_create(&vec![("operation", OPS[i].to_owned())])
                .clone()
        })
    }
}

impl Observer for StoreMetrics {
    fn observe(&self, step: Step, took: Duration) {
        let (i, name) = match step {
            Step::PoolWait => (0, "pool_wait"),
            Step::Group { writes } => {
                self.group_writes.observe(writes as f64);
                (1, "group")
            }
        };
        self.step_handles[i]
            .get_or_init(|| {
                self.steps
                    .get_or_create(&vec![("step", name.to_owned())])
                    .clone()
            })
            .observe(took.as_secs_f64());
    }
}

/// A store whose every operation is timed into [`StoreMetrics`].
pub struct TimedStore {
    inner: Arc<dyn Store>,
    metrics: Arc<StoreMetrics>,
}

impl TimedStore {
    pub fn wrap(inner: Arc<dyn Store>, metrics: Arc<StoreMetrics>) -> Arc<dyn Store> {
        Arc::new(Self { inner, metrics })
    }

    fn timed<'a, T: 'a>(&'a self, op: Op, call: StoreFuture<'a, T>) -> StoreFuture<'a, T> {
        Box::pin(async move {
            let started = Instant::now();
            let answer = call.await;
            self.metrics.op(op).observe(started.elapsed().as_secs_f64());
            answer
        })
    }
}

impl Store for TimedStore {
    fn exclusive(&self) -> bool {
        self.inner.exclusive()
    }
    fn lease(&self) -> Option<Duration> {
        self.inner.lease()
    }
    fn accept_with_plan(
        &self,
        payment: NewPayment,
        plan: Option<Attempt>,
    ) -> StoreFuture<'_, Acceptance> {
        self.timed(Op::Accept, self.inner.accept_with_plan(payment, plan))
    }
    fn accept_unrecorded(&self, payment: NewPayment) -> StoreFuture<'_, Acceptance> {
        self.timed(Op::Accept, self.inner.accept_unrecorded(payment))
    }
    fn begin_attempt(&self, id: CorrelationId, attempt: Attempt) -> StoreFuture<'_, bool> {
        self.timed(Op::BeginAttempt, self.inner.begin_attempt(id, attempt))
    }
    fn finish_answered(
        &self,
        id: CorrelationId,
        outcome: Outcome,
        answered_at: Timestamp,
    ) -> StoreFuture<'_, bool> {
        self.timed(
            Op::Finish,
            self.inner.finish_answered(id, outcome, answered_at),
        )
    }
    fn restore(
        &self,
        payment: NewPayment,
        outcome: Outcome,
        answered_at: Timestamp,
    ) -> StoreFuture<'_, bool> {
        self.timed(
            Op::Restore,
            self.inner.restore(payment, outcome, answered_at),
        )
    }
    fn find(&self, id: CorrelationId) -> StoreFuture<'_, Option<PaymentRecord>> {
        self.timed(Op::Find, self.inner.find(id))
    }
    fn pending(&self) -> StoreFuture<'_, Vec<PendingPayment>> {
        self.timed(Op::Pending, self.inner.pending())
    }
    fn summary(&self, window: Window) -> StoreFuture<'_, Vec<Totals>> {
        self.timed(Op::Summary, self.inner.summary(window))
    }

    fn summary_answered_by(
        &self,
        window: Window,
        answered_by: Timestamp,
    ) -> StoreFuture<'_, Vec<Totals>> {
        self.timed(
            Op::Summary,
            self.inner.summary_answered_by(window, answered_by),
        )
    }
    fn ledger(&self) -> StoreFuture<'_, Vec<LedgerEntry>> {
        self.timed(Op::Ledger, self.inner.ledger())
    }
    fn known(&self) -> StoreFuture<'_, Vec<(CorrelationId, Money)>> {
        self.timed(Op::Known, self.inner.known())
    }
    fn purge(&self) -> StoreFuture<'_, ()> {
        self.timed(Op::Purge, self.inner.purge())
    }
    fn renew(&self) -> StoreFuture<'_, ()> {
        self.timed(Op::Renew, self.inner.renew())
    }
    fn reclaim(&self, limit: usize) -> StoreFuture<'_, Vec<PendingPayment>> {
        self.timed(Op::Reclaim, self.inner.reclaim(limit))
    }
    fn take_over_predecessor(&self, limit: usize) -> StoreFuture<'_, Vec<PendingPayment>> {
        self.timed(Op::TakeOver, self.inner.take_over_predecessor(limit))
    }
    fn held(&self, before: Timestamp, limit: usize) -> StoreFuture<'_, Vec<PendingPayment>> {
        self.timed(Op::Held, self.inner.held(before, limit))
    }
    fn lead_probes(&self, term: Duration) -> StoreFuture<'_, bool> {
        self.timed(Op::LeadProbes, self.inner.lead_probes(term))
    }
    fn publish_probe(&self, report: ProbeReport) -> StoreFuture<'_, ()> {
        self.timed(Op::PublishProbe, self.inner.publish_probe(report))
    }
    fn probes(&self) -> StoreFuture<'_, Vec<ProbeReport>> {
        self.timed(Op::Probes, self.inner.probes())
    }
}
