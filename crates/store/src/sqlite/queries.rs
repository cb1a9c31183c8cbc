//! The embedded engine's side of the [`Store`] seam: writes become commands
//! for the writer, reads run on the reader connection, and the lease work
//! is trivial (one instance holds everything and always leads).

use std::time::Duration;

use reroute_core::{CorrelationId, Money, Timestamp, Window};
use rusqlite::{OptionalExtension, params};

use super::instance::SqliteStore;
use super::schema::{
    STATE_DECLINED, STATE_DUPLICATE, STATE_PENDING, STATE_PROCESSED, id_from_row, pending_from_row,
};
use super::writer::Command;
use crate::{
    Acceptance, Attempt, LedgerEntry, NewPayment, Outcome, PaymentRecord, PaymentState,
    PendingPayment, ProbeReport, Store, StoreFuture, Totals,
};

impl Store for SqliteStore {
    fn accept_with_plan(
        &self,
        payment: NewPayment,
        plan: Option<Attempt>,
    ) -> StoreFuture<'_, Acceptance> {
        self.send(|tx| Command::Accept(payment, plan, tx))
    }

    fn begin_attempt(&self, id: CorrelationId, attempt: Attempt) -> StoreFuture<'_, bool> {
        self.send(|tx| Command::BeginAttempt(id, attempt, tx))
    }

    fn finish_answered(
        &self,
        id: CorrelationId,
        outcome: Outcome,
        answered_at: Timestamp,
    ) -> StoreFuture<'_, bool> {
        self.send(|tx| Command::Finish(id, outcome, answered_at, tx))
    }

    fn restore(
        &self,
        payment: NewPayment,
        outcome: Outcome,
        answered_at: Timestamp,
    ) -> StoreFuture<'_, bool> {
        self.send(|tx| Command::Restore(payment, outcome, answered_at, tx))
    }

    fn purge(&self) -> StoreFuture<'_, ()> {
        self.send(Command::Purge)
    }

    fn find(&self, id: CorrelationId) -> StoreFuture<'_, Option<PaymentRecord>> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, amount, payment_method, country, accepted_at, processor, requested_at,
                        state
                 FROM payments WHERE id = ?1",
            )?;
            stmt.query_row([&id.as_bytes()[..]], |r| {
                let PendingPayment { payment, attempt } = pending_from_row(r)?;
                let state = match r.get::<_, i64>(7)? {
                    STATE_PENDING => PaymentState::Pending,
                    STATE_PROCESSED => PaymentState::Processed,
                    STATE_DECLINED => PaymentState::Declined,
                    STATE_DUPLICATE => PaymentState::Duplicate,
                    other => {
                        return Err(rusqlite::Error::IntegralValueOutOfRange(7, other));
                    }
                };
                Ok(PaymentRecord {
                    payment,
                    state,
                    attempt,
                })
            })
            .optional()
        })
    }

    fn held(
        &self,
        accepted_before: Timestamp,
        limit: usize,
    ) -> StoreFuture<'_, Vec<PendingPayment>> {
        let run = self.run;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, amount, payment_method, country, accepted_at, processor, requested_at
                 FROM payments WHERE state = ?1 AND holder = ?2 AND accepted_at < ?3
                 ORDER BY accepted_at LIMIT ?4",
            )?;
            let rows = stmt.query_map(
                params![STATE_PENDING, &run[..], accepted_before.millis(), limit],
                pending_from_row,
            )?;
            rows.collect()
        })
    }

    fn pending(&self) -> StoreFuture<'_, Vec<PendingPayment>> {
        self.read(|conn| {
            let mut stmt = conn.prepare(
                "SELECT id, amount, payment_method, country, accepted_at, processor, requested_at
                 FROM payments WHERE state = ?1 ORDER BY accepted_at",
            )?;
            let rows = stmt.query_map([STATE_PENDING], pending_from_row)?;
            rows.collect()
        })
    }

    fn summary(&self, window: Window) -> StoreFuture<'_, Vec<Totals>> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT processor, COUNT(*), SUM(amount) FROM payments
                 WHERE state = ?1 AND requested_at BETWEEN ?2 AND ?3
                 GROUP BY processor ORDER BY processor",
            )?;
            let rows = stmt.query_map(
                params![STATE_PROCESSED, window.from.millis(), window.to.millis()],
                totals_from_row,
            )?;
            rows.collect()
        })
    }

    fn summary_answered_by(
        &self,
        window: Window,
        answered_by: Timestamp,
    ) -> StoreFuture<'_, Vec<Totals>> {
        self.read(move |conn| {
            // Outcomes finished before the column existed have none: they
            // were answered before any summary asked now.
            let mut stmt = conn.prepare_cached(
                "SELECT processor, COUNT(*), SUM(amount) FROM payments
                 WHERE state = ?1 AND requested_at BETWEEN ?2 AND ?3
                   AND (finished_at IS NULL OR finished_at <= ?4)
                 GROUP BY processor ORDER BY processor",
            )?;
            let rows = stmt.query_map(
                params![
                    STATE_PROCESSED,
                    window.from.millis(),
                    window.to.millis(),
                    answered_by.millis()
                ],
                totals_from_row,
            )?;
            rows.collect()
        })
    }

    fn ledger(&self) -> StoreFuture<'_, Vec<LedgerEntry>> {
        self.read(|conn| {
            let mut stmt = conn.prepare(
                "SELECT id, amount, processor, requested_at FROM payments
                 WHERE state = ?1 ORDER BY requested_at",
            )?;
            let rows = stmt.query_map([STATE_PROCESSED], |r| {
                Ok(LedgerEntry {
                    id: id_from_row(r.get(0)?)?,
                    amount: Money::from_minor(r.get(1)?),
                    processor: r.get(2)?,
                    requested_at: Timestamp::from_millis(r.get(3)?),
                })
            })?;
            rows.collect()
        })
    }

    /// This instance alone ever works on its payments.
    fn exclusive(&self) -> bool {
        true
    }

    /// Nothing to do: no other instance could take this one's payments.
    fn renew(&self) -> StoreFuture<'_, ()> {
        Box::pin(async { Ok(()) })
    }

    fn reclaim(&self, limit: usize) -> StoreFuture<'_, Vec<PendingPayment>> {
        self.send(|tx| Command::Reclaim(limit, tx))
    }

    /// Always: this is the only instance.
    fn lead_probes(&self, _term: Duration) -> StoreFuture<'_, bool> {
        Box::pin(async { Ok(true) })
    }

    fn publish_probe(&self, report: ProbeReport) -> StoreFuture<'_, ()> {
        let mut probes = self.probes.lock().unwrap_or_else(|p| p.into_inner());
        match probes.get(&report.processor) {
            Some(latest) if latest.at > report.at => {}
            _ => {
                probes.insert(report.processor.clone(), report);
            }
        }
        Box::pin(async { Ok(()) })
    }

    fn probes(&self) -> StoreFuture<'_, Vec<ProbeReport>> {
        let probes = self.probes.lock().unwrap_or_else(|p| p.into_inner());
        let reports = probes.values().cloned().collect();
        Box::pin(async { Ok(reports) })
    }
}

/// A summary's line from `processor, COUNT(*), SUM(amount)`.
fn totals_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Totals> {
    Ok(Totals {
        processor: r.get(0)?,
        requests: r.get::<_, i64>(1)? as u64,
        amount: Money::from_minor(r.get(2)?),
    })
}
