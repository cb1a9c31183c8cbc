//! The embedded engine's side of the [`Store`] seam: writes become commands
//! for the writer, reads run on the reader connection, and the lease work
//! is trivial (one instance holds everything and always leads).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use reroute_core::{CorrelationId, Money, Timestamp, Window};
use rusqlite::{OptionalExtension, params};

use super::commands::Command;
use super::instance::SqliteStore;
use super::schema::{
    STATE_DECLINED, STATE_DUPLICATE, STATE_PENDING, STATE_PROCESSED, id_from_row, pending_columns,
    pending_from_row,
};
use crate::write::Write;
use crate::{
    Acceptance, Attempt, LedgerEntry, NewPayment, Outcome, PaymentRecord, PaymentState,
    PendingPayment, ProbeReport, Store, StoreFuture, Totals,
};

/// Processed payments in a window, by processor. `state = 1` is
/// `STATE_PROCESSED`, written out: the partial index on processed payments
/// is then the plan whatever the bindings (with a parameter SQLite can only
/// choose it by planning again with the bound value).
pub(super) const SUMMARY: &str = "SELECT processor, COUNT(*), SUM(amount) FROM payments
     WHERE state = 1 AND requested_at BETWEEN ?1 AND ?2
     GROUP BY processor ORDER BY processor";

/// [`SUMMARY`], of the outcomes answered by an instant.
pub(super) const SUMMARY_ANSWERED_BY: &str = "SELECT processor, COUNT(*), SUM(amount) FROM payments
     WHERE state = 1 AND requested_at BETWEEN ?1 AND ?2
     AND (finished_at IS NULL OR finished_at <= ?3)
     GROUP BY processor ORDER BY processor";

/// Every processed payment, by `requestedAt`.
pub(super) const LEDGER: &str = "SELECT id, amount, processor, requested_at FROM payments
     WHERE state = 1 ORDER BY requested_at";

pub(super) const KNOWN: &str = "SELECT id, amount FROM payments";

impl Store for SqliteStore {
    fn accept_with_plan(
        &self,
        payment: NewPayment,
        plan: Option<Attempt>,
    ) -> StoreFuture<'_, Acceptance> {
        self.send(|tx| Command::Write(Write::Accept(payment, plan, tx)))
    }

    fn accept_unrecorded(&self, payment: NewPayment) -> StoreFuture<'_, Acceptance> {
        self.send(|tx| Command::AcceptUnrecorded(payment, tx))
    }

    fn begin_attempt(&self, id: CorrelationId, attempt: Attempt) -> StoreFuture<'_, bool> {
        self.send(|tx| Command::Write(Write::BeginAttempt(id, attempt, tx)))
    }

    fn finish_answered(
        &self,
        id: CorrelationId,
        outcome: Outcome,
        answered_at: Timestamp,
    ) -> StoreFuture<'_, bool> {
        self.send(|tx| Command::Write(Write::Finish(id, outcome, answered_at, tx)))
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
            let mut stmt = conn.prepare_cached(concat!(
                "SELECT ",
                pending_columns!(),
                ", state FROM payments WHERE id = ?1"
            ))?;
            stmt.query_row([&id.as_bytes()[..]], |r| {
                let PendingPayment {
                    payment, attempt, ..
                } = pending_from_row(r)?;
                let state = match r.get::<_, i64>(8)? {
                    STATE_PENDING => PaymentState::Pending,
                    STATE_PROCESSED => PaymentState::Processed,
                    STATE_DECLINED => PaymentState::Declined,
                    STATE_DUPLICATE => PaymentState::Duplicate,
                    other => {
                        return Err(rusqlite::Error::IntegralValueOutOfRange(8, other));
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
            let mut stmt = conn.prepare_cached(concat!(
                "SELECT ",
                pending_columns!(),
                " FROM payments WHERE state = ?1 AND holder = ?2 AND accepted_at < ?3
                 ORDER BY accepted_at LIMIT ?4"
            ))?;
            let rows = stmt.query_map(
                params![STATE_PENDING, &run[..], accepted_before.millis(), limit],
                pending_from_row,
            )?;
            rows.collect()
        })
    }

    fn pending(&self) -> StoreFuture<'_, Vec<PendingPayment>> {
        self.read(|conn| {
            let mut stmt = conn.prepare(concat!(
                "SELECT ",
                pending_columns!(),
                " FROM payments WHERE state = ?1 ORDER BY accepted_at"
            ))?;
            let rows = stmt.query_map([STATE_PENDING], pending_from_row)?;
            rows.collect()
        })
    }

    fn summary(&self, window: Window) -> StoreFuture<'_, Vec<Totals>> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(SUMMARY)?;
            let rows = stmt.query_map(
                params![window.from.millis(), window.to.millis()],
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
            let mut stmt = conn.prepare_cached(SUMMARY_ANSWERED_BY)?;
            let rows = stmt.query_map(
                params![
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
            let mut stmt = conn.prepare(LEDGER)?;
            let rows = stmt.query_map([], |r| {
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

    fn known(&self) -> StoreFuture<'_, Vec<(CorrelationId, Money)>> {
        self.read(|conn| {
            let mut stmt = conn.prepare(KNOWN)?;
            let rows = stmt.query_map([], |r| {
                Ok((id_from_row(r.get(0)?)?, Money::from_minor(r.get(1)?)))
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

    /// Only this process writes the file, and every payment it accepts or
    /// restores is its own run's: once a reclaim comes back short, no
    /// payment of a previous run is left, nor can one appear, and later
    /// reclaims answer at once (no index leads to pending payments: each
    /// would scan the table on the writer, which accepts wait behind).
    fn reclaim(&self, limit: usize) -> StoreFuture<'_, Vec<PendingPayment>> {
        if self.reclaimed_all.load(Ordering::Acquire) {
            return Box::pin(async { Ok(Vec::new()) });
        }
        let sent = self.send(|tx| Command::Reclaim(limit, tx));
        let reclaimed_all = Arc::clone(&self.reclaimed_all);
        Box::pin(async move {
            let found = sent.await?;
            if found.len() < limit {
                reclaimed_all.store(true, Ordering::Release);
            }
            Ok(found)
        })
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
