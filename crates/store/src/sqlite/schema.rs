//! The embedded tables: their migrations (`PRAGMA user_version` counts
//! them), the payment states as stored, and rows mapped back to records.

use reroute_core::{CorrelationId, Money, Timestamp};
use rusqlite::{Connection, OptionalExtension};

use crate::{Attempt, NewPayment, Outcome, PendingPayment, StoreResult};

pub(super) const STATE_PENDING: i64 = 0;
pub(super) const STATE_PROCESSED: i64 = 1;
pub(super) const STATE_DECLINED: i64 = 2;
pub(super) const STATE_DUPLICATE: i64 = 3;

/// Schema versions, applied in order; `PRAGMA user_version` says how many ran.
pub(super) const MIGRATIONS: &[&str] = &[
    "
    CREATE TABLE payments (
        id             BLOB PRIMARY KEY NOT NULL,
        amount         INTEGER NOT NULL,
        payment_method TEXT,
        country        TEXT,
        accepted_at    INTEGER NOT NULL,
        state          INTEGER NOT NULL,
        processor      TEXT,
        requested_at   INTEGER
    ) WITHOUT ROWID;
    CREATE INDEX payments_by_state_time ON payments (state, requested_at);
",
    // The run that holds a pending payment (16 random bytes per open).
    "ALTER TABLE payments ADD COLUMN holder BLOB;",
    // When the outcome was answered (ms): a summary counts the
    // payments answered by the instant it was asked (`Store::summary_answered_by`).
    "ALTER TABLE payments ADD COLUMN finished_at INTEGER;",
    // Only processed payments are indexed (summaries and the ledger read
    // them by `requestedAt`): an accept or an attempt then writes the
    // payment's own page and no index page. `1` is `STATE_PROCESSED`; the
    // queries name it literally too (`queries::SUMMARY`).
    "DROP INDEX payments_by_state_time;
     CREATE INDEX payments_processed_by_time ON payments (requested_at) WHERE state = 1;",
    // The boot id the file was last opened under, and the payments pending
    // when it was opened under another (`PendingPayment::unrecorded`).
    "CREATE TABLE opened (boot BLOB NOT NULL);
     ALTER TABLE payments ADD COLUMN unrecorded INTEGER NOT NULL DEFAULT 0;",
];

/// The columns [`pending_from_row`] reads, in its order.
macro_rules! pending_columns {
    () => {
        "id, amount, payment_method, country, accepted_at, processor, requested_at, unrecorded"
    };
}
pub(super) use pending_columns;

pub(super) fn migrate(conn: &mut Connection) -> StoreResult<()> {
    let version: usize = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i + 1)?;
        tx.commit()?;
    }
    Ok(())
}

/// Records the boot id this open runs under. If the file was last opened
/// under another (a kernel crash or a reboot since), every payment pending
/// is marked unrecorded in the same commit, which is synced (the writer's
/// connection opens at `synchronous=FULL`): the crash may have taken
/// attempts, which are not synced. How many were marked.
pub(super) fn record_boot(conn: &mut Connection, boot: &[u8]) -> StoreResult<usize> {
    let tx = conn.transaction()?;
    let last: Option<Vec<u8>> = tx
        .query_row("SELECT boot FROM opened", [], |r| r.get(0))
        .optional()?;
    if last.as_deref() == Some(boot) {
        return Ok(0);
    }
    // No boot recorded: the file is new, or written by a build that
    // synced every attempt.
    let marked = match last {
        Some(_) => tx.execute(
            "UPDATE payments SET unrecorded = 1 WHERE state = ?1",
            [STATE_PENDING],
        )?,
        None => 0,
    };
    tx.execute("DELETE FROM opened", [])?;
    tx.execute("INSERT INTO opened (boot) VALUES (?1)", [boot])?;
    tx.commit()?;
    Ok(marked)
}

/// The state and attempt columns of a finished payment.
pub(super) fn outcome_columns(outcome: &Outcome) -> (i64, &Attempt) {
    match outcome {
        Outcome::Processed(a) => (STATE_PROCESSED, a),
        Outcome::Declined(a) => (STATE_DECLINED, a),
        Outcome::Duplicate(a) => (STATE_DUPLICATE, a),
    }
}

pub(super) fn id_from_row(bytes: Vec<u8>) -> rusqlite::Result<CorrelationId> {
    let bytes: [u8; 16] = bytes.try_into().map_err(|_| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Blob,
            "correlation id is not 16 bytes".into(),
        )
    })?;
    Ok(CorrelationId::from_bytes(bytes))
}

/// A pending payment from the columns [`pending_columns`] names.
pub(super) fn pending_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<PendingPayment> {
    let processor: Option<String> = r.get(5)?;
    let requested_at: Option<i64> = r.get(6)?;
    Ok(PendingPayment {
        payment: NewPayment {
            id: id_from_row(r.get(0)?)?,
            amount: Money::from_minor(r.get(1)?),
            payment_method: r.get(2)?,
            country: r.get(3)?,
            accepted_at: Timestamp::from_millis(r.get(4)?),
        },
        attempt: processor.zip(requested_at).map(|(processor, at)| Attempt {
            processor,
            requested_at: Timestamp::from_millis(at),
        }),
        unrecorded: r.get(7)?,
    })
}
