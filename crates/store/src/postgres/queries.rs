//! The engine's side of the [`Store`] seam: writes go to the writer tasks,
//! reads and the lease work (renew, reclaim, take over, lead the probes)
//! run on the pool.

use std::sync::Arc;
use std::time::Duration;

use reroute_core::{CorrelationId, Money, Timestamp, Window};

use super::instance::PostgresStore;
use super::leases::{LEAD_PROBES, RECLAIM, RENEW, TAKE_OVER_PREDECESSOR};
use super::schema::{
    STATE_DECLINED, STATE_PENDING, STATE_PROCESSED, outcome_columns, pending_from_row,
};
use crate::write::Write;
use crate::{
    Acceptance, Attempt, LedgerEntry, NewPayment, Outcome, PaymentRecord, PaymentState,
    PendingPayment, ProbeReport, Store, StoreFuture, Totals,
};

impl Store for PostgresStore {
    fn accept_with_plan(
        &self,
        payment: NewPayment,
        plan: Option<Attempt>,
    ) -> StoreFuture<'_, Acceptance> {
        self.write(|tx| Write::Accept(payment, plan, tx))
    }

    /// An accept: no accept table serves PostgreSQL, and its commits are
    /// not lost to a crash of the router's host.
    fn accept_unrecorded(&self, payment: NewPayment) -> StoreFuture<'_, Acceptance> {
        self.accept_with_plan(payment, None)
    }

    /// Only the holder, while its lease runs, records an attempt: `false`
    /// also when another instance has taken the payment over, or when this
    /// instance's lease ran out (it stalled, or lost PostgreSQL, past it)
    /// and was not renewed since: a payment whose lease ran out may be taken
    /// over at any moment, and its holder must not send it meanwhile.
    fn begin_attempt(&self, id: CorrelationId, attempt: Attempt) -> StoreFuture<'_, bool> {
        self.write(|tx| Write::BeginAttempt(id, attempt, tx))
    }

    /// Any instance may record an outcome it learnt from the processor (a
    /// former holder whose answer arrives late included); the first stands.
    fn finish_answered(
        &self,
        id: CorrelationId,
        outcome: Outcome,
        answered_at: Timestamp,
    ) -> StoreFuture<'_, bool> {
        self.write(|tx| Write::Finish(id, outcome, answered_at, tx))
    }

    /// Rare (a purge with sends in flight), so a statement of its own on
    /// the pool rather than a place in every group.
    fn restore(
        &self,
        payment: NewPayment,
        outcome: Outcome,
        answered_at: Timestamp,
    ) -> StoreFuture<'_, bool> {
        let holder = Arc::clone(&self.inner.holder);
        self.query(move |client| async move {
            let (state, attempt) = outcome_columns(&outcome);
            let statement = client
                .prepare_cached(
                    "INSERT INTO payments (id, amount, payment_method, country, accepted_at, state,
                                           processor, requested_at, holder, lease_until, finished_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, $10)
                     ON CONFLICT (id) DO NOTHING",
                )
                .await?;
            let inserted = client
                .execute(
                    &statement,
                    &[
                        payment.id.as_uuid(),
                        &payment.amount.minor(),
                        &payment.payment_method,
                        &payment.country,
                        &payment.accepted_at.millis(),
                        &state,
                        &attempt.processor,
                        &attempt.requested_at.millis(),
                        &&*holder,
                        &answered_at.millis(),
                    ],
                )
                .await?;
            Ok(inserted == 1)
        })
    }

    fn find(&self, id: CorrelationId) -> StoreFuture<'_, Option<PaymentRecord>> {
        self.query(move |client| async move {
            let statement = client
                .prepare_cached(
                    "SELECT id, amount, payment_method, country, accepted_at, processor, requested_at,
                            state
                     FROM payments WHERE id = $1",
                )
                .await?;
            let Some(row) = client.query_opt(&statement, &[id.as_uuid()]).await? else {
                return Ok(None);
            };
            let PendingPayment {
                payment, attempt, ..
            } = pending_from_row(&row);
            let state = match row.get::<_, i16>(7) {
                STATE_PENDING => PaymentState::Pending,
                STATE_PROCESSED => PaymentState::Processed,
                STATE_DECLINED => PaymentState::Declined,
                _ => PaymentState::Duplicate,
            };
            Ok(Some(PaymentRecord {
                payment,
                state,
                attempt,
            }))
        })
    }

    fn pending(&self) -> StoreFuture<'_, Vec<PendingPayment>> {
        self.query(|client| async move {
            let statement = client
                .prepare_cached(
                    "SELECT id, amount, payment_method, country, accepted_at, processor, requested_at
                     FROM payments WHERE lease_until IS NOT NULL ORDER BY accepted_at",
                )
                .await?;
            let rows = client.query(&statement, &[]).await?;
            Ok(rows.iter().map(pending_from_row).collect())
        })
    }

    fn summary(&self, window: Window) -> StoreFuture<'_, Vec<Totals>> {
        self.query(move |client| async move {
            let statement = client
                .prepare_cached(
                    "SELECT processor, count(*), sum(amount)::int8 FROM payments
                     WHERE state = 1 AND requested_at BETWEEN $1 AND $2
                     GROUP BY processor ORDER BY processor",
                )
                .await?;
            let rows = client
                .query(&statement, &[&window.from.millis(), &window.to.millis()])
                .await?;
            Ok(rows.iter().map(totals_from_row).collect())
        })
    }

    fn summary_answered_by(
        &self,
        window: Window,
        answered_by: Timestamp,
    ) -> StoreFuture<'_, Vec<Totals>> {
        self.query(move |client| async move {
            // Outcomes finished before the column existed have none: they
            // were answered before any summary asked now.
            let statement = client
                .prepare_cached(
                    "SELECT processor, count(*), sum(amount)::int8 FROM payments
                     WHERE state = 1 AND requested_at BETWEEN $1 AND $2
                       AND (finished_at IS NULL OR finished_at <= $3)
                     GROUP BY processor ORDER BY processor",
                )
                .await?;
            let rows = client
                .query(
                    &statement,
                    &[
                        &window.from.millis(),
                        &window.to.millis(),
                        &answered_by.millis(),
                    ],
                )
                .await?;
            Ok(rows.iter().map(totals_from_row).collect())
        })
    }

    fn ledger(&self) -> StoreFuture<'_, Vec<LedgerEntry>> {
        self.query(|client| async move {
            let rows = client
                .query(
                    "SELECT id, amount, processor, requested_at FROM payments
                     WHERE state = 1 ORDER BY requested_at",
                    &[],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|r| LedgerEntry {
                    id: CorrelationId::from_uuid(r.get(0)),
                    amount: Money::from_minor(r.get(1)),
                    processor: r.get(2),
                    requested_at: Timestamp::from_millis(r.get(3)),
                })
                .collect())
        })
    }

    fn known(&self) -> StoreFuture<'_, Vec<(CorrelationId, Money)>> {
        self.query(|client| async move {
            let rows = client.query("SELECT id, amount FROM payments", &[]).await?;
            Ok(rows
                .iter()
                .map(|r| {
                    (
                        CorrelationId::from_uuid(r.get(0)),
                        Money::from_minor(r.get(1)),
                    )
                })
                .collect())
        })
    }

    fn purge(&self) -> StoreFuture<'_, ()> {
        self.query(|client| async move { client.batch_execute("TRUNCATE payments").await })
    }

    fn lease(&self) -> Option<Duration> {
        Some(Duration::from_millis(
            u64::try_from(self.inner.lease_ms).unwrap_or(0),
        ))
    }

    fn renew(&self) -> StoreFuture<'_, ()> {
        let holder = Arc::clone(&self.inner.holder);
        let lease_ms = self.inner.lease_ms;
        self.query(move |client| async move {
            let statement = client.prepare_cached(RENEW).await?;
            client.execute(&statement, &[&&*holder, &lease_ms]).await?;
            Ok(())
        })
    }

    fn reclaim(&self, limit: usize) -> StoreFuture<'_, Vec<PendingPayment>> {
        let holder = Arc::clone(&self.inner.holder);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.query(move |client| async move {
            let statement = client.prepare_cached(RECLAIM).await?;
            let rows = client.query(&statement, &[&&*holder, &limit]).await?;
            let mut reclaimed: Vec<PendingPayment> = rows.iter().map(pending_from_row).collect();
            reclaimed.sort_by_key(|p| p.payment.accepted_at);
            if !reclaimed.is_empty() {
                tracing::info!(
                    count = reclaimed.len(),
                    "reclaimed payments whose lease ran out"
                );
            }
            Ok(reclaimed)
        })
    }

    fn held(
        &self,
        accepted_before: Timestamp,
        limit: usize,
    ) -> StoreFuture<'_, Vec<PendingPayment>> {
        let holder = Arc::clone(&self.inner.holder);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.query(move |client| async move {
            let statement = client
                .prepare_cached(
                    "SELECT id, amount, payment_method, country, accepted_at, processor, requested_at
                     FROM payments
                     WHERE lease_until IS NOT NULL AND holder = $1 AND accepted_at < $2
                     ORDER BY accepted_at LIMIT $3",
                )
                .await?;
            let rows = client
                .query(
                    &statement,
                    &[&&*holder, &accepted_before.millis(), &limit],
                )
                .await?;
            Ok(rows.iter().map(pending_from_row).collect())
        })
    }

    fn take_over_predecessor(&self, limit: usize) -> StoreFuture<'_, Vec<PendingPayment>> {
        let holder = Arc::clone(&self.inner.holder);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        // The holder is `<name>/<run>`; the run part never has a `/`.
        let prefix = match holder.rfind('/') {
            Some(at) => holder[..=at].to_owned(),
            None => format!("{holder}/"),
        };
        self.query(move |client| async move {
            let statement = client.prepare_cached(TAKE_OVER_PREDECESSOR).await?;
            let rows = client
                .query(&statement, &[&&*holder, &limit, &prefix])
                .await?;
            let mut taken: Vec<PendingPayment> = rows.iter().map(pending_from_row).collect();
            taken.sort_by_key(|p| p.payment.accepted_at);
            if !taken.is_empty() {
                tracing::info!(
                    count = taken.len(),
                    "took over the payments of this instance's previous process"
                );
            }
            Ok(taken)
        })
    }

    fn lead_probes(&self, term: Duration) -> StoreFuture<'_, bool> {
        let holder = Arc::clone(&self.inner.holder);
        let term_ms = i64::try_from(term.as_millis()).unwrap_or(i64::MAX);
        self.query(move |client| async move {
            let statement = client.prepare_cached(LEAD_PROBES).await?;
            let rows = client.query(&statement, &[&&*holder, &term_ms]).await?;
            Ok(!rows.is_empty())
        })
    }

    fn publish_probe(&self, report: ProbeReport) -> StoreFuture<'_, ()> {
        self.query(move |client| async move {
            let statement = client
                .prepare_cached(
                    "INSERT INTO probes (processor, failing, min_response_ms, at)
                     VALUES ($1, $2, $3, $4)
                     ON CONFLICT (processor) DO UPDATE
                     SET failing = excluded.failing, min_response_ms = excluded.min_response_ms,
                         at = excluded.at
                     WHERE probes.at <= excluded.at",
                )
                .await?;
            client
                .execute(
                    &statement,
                    &[
                        &report.processor,
                        &report.failing,
                        &i64::from(report.min_response_ms),
                        &report.at.millis(),
                    ],
                )
                .await?;
            Ok(())
        })
    }

    fn probes(&self) -> StoreFuture<'_, Vec<ProbeReport>> {
        self.query(|client| async move {
            let statement = client
                .prepare_cached(
                    "SELECT processor, failing, min_response_ms, at FROM probes ORDER BY processor",
                )
                .await?;
            let rows = client.query(&statement, &[]).await?;
            Ok(rows
                .iter()
                .map(|r| ProbeReport {
                    processor: r.get(0),
                    failing: r.get(1),
                    min_response_ms: u32::try_from(r.get::<_, i64>(2)).unwrap_or(u32::MAX),
                    at: Timestamp::from_millis(r.get(3)),
                })
                .collect())
        })
    }
}

/// A summary's line from `processor, count(*), sum(amount)`.
fn totals_from_row(r: &tokio_postgres::Row) -> Totals {
    Totals {
        processor: r.get(0),
        requests: r.get::<_, i64>(1).unsigned_abs(),
        amount: Money::from_minor(r.get(2)),
    }
}
