//! The tables: their migrations, applied once at start-up under an advisory
//! lock, the payment states as stored, and the mapping of rows back to the
//! store's records.

use deadpool_postgres::Pool;
use reroute_core::{CorrelationId, Money, Timestamp};
use tokio_postgres::Row;

use super::failure::{unavailable, unavailable_pool};
use crate::{Attempt, Durability, NewPayment, Outcome, PendingPayment, StoreResult};

// States: 0 pending, 1 processed, 2 declined, 3 duplicate (unused here: a
// shared store never holds a payment twice). `lease_until` is set exactly
// while a payment is pending (to when it was accepted or taken over; the
// lease itself is its holder's, in `holders`); queries over pending payments
// say `lease_until IS NOT NULL`, which the pending index matches. The writes
// of the request path find their rows by `id = ANY(ids)` and check `state =
// 0`, which that index does not match: their only plan is a look-up by id,
// never a scan of every pending payment, whatever the statistics say (there
// are none while the table is young). Statements spell the states out so
// that the planner matches the ledger's partial index.
pub(super) const STATE_PENDING: i16 = 0;
pub(super) const STATE_PROCESSED: i16 = 1;
pub(super) const STATE_DECLINED: i16 = 2;
pub(super) const STATE_DUPLICATE: i16 = 3;

/// Schema versions, applied in order at start-up; `schema_migrations` records
/// which ran. Never edit one that has shipped: add the next.
pub(super) const MIGRATIONS: &[&str] = &[
    "
    CREATE TABLE payments (
        id             uuid PRIMARY KEY,
        amount         bigint NOT NULL,
        payment_method text,
        country        text,
        accepted_at    bigint NOT NULL,
        state          smallint NOT NULL,
        processor      text,
        requested_at   bigint,
        holder         text NOT NULL,
        lease_until    timestamptz,
        CONSTRAINT leased_while_pending CHECK ((state = 0) = (lease_until IS NOT NULL))
    );
    CREATE INDEX payments_pending_by_lease ON payments (lease_until)
        WHERE lease_until IS NOT NULL;
    CREATE INDEX payments_processed_by_requested_at ON payments (requested_at)
        INCLUDE (processor, amount) WHERE state = 1;
    CREATE TABLE leaders (
        role   text PRIMARY KEY,
        holder text NOT NULL,
        until  timestamptz NOT NULL
    );
    CREATE TABLE probes (
        processor       text PRIMARY KEY,
        failing         boolean NOT NULL,
        min_response_ms bigint NOT NULL,
        at              bigint NOT NULL
    );
",
    "
    -- Leases per instance, not per payment: a renewal is one row, whatever
    -- the backlog (renewing every pending row locked them against the
    -- writers' outcomes and deadlocked with them: docs/postgres.md).
    -- payments.lease_until stays set exactly while pending, as the pending
    -- index's key; it is no longer renewed.
    CREATE TABLE holders (
        holder      text PRIMARY KEY,
        lease_until timestamptz NOT NULL
    );
",
    "
    -- When each outcome was answered (ms, the answering instance's clock):
    -- a summary counts the payments answered by the instant it was asked,
    -- read once every instance has committed those (docs/postgres.md,
    -- summaries across instances). Not in the ledger's index: a summary
    -- reads its window's rows (rare, and small); every outcome would
    -- write the wider entry.
    ALTER TABLE payments ADD COLUMN finished_at bigint;
",
];

/// Applies `MIGRATIONS` not yet recorded, in one transaction under an
/// advisory lock: instances starting together migrate one after another,
/// and the later ones find nothing left to do.
pub(super) async fn migrate(
    pool: &Pool,
    schema: Option<&str>,
    durability: Durability,
) -> StoreResult<()> {
    let mut client = pool.get().await.map_err(unavailable_pool)?;
    let tx = client.transaction().await.map_err(unavailable)?;
    let key = format!("reroute migrations {}", schema.unwrap_or("(default)"));
    tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&key])
        .await
        .map_err(unavailable)?;
    if let Some(schema) = schema {
        let exists = tx
            .query_opt("SELECT 1 FROM pg_namespace WHERE nspname = $1", &[&schema])
            .await
            .map_err(unavailable)?
            .is_some();
        if !exists {
            // `schema` was checked to be a plain identifier.
            tx.batch_execute(&format!("CREATE SCHEMA {schema}"))
                .await
                .map_err(unavailable)?;
        }
    }
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    integer PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )
    .await
    .map_err(unavailable)?;
    let applied: i32 = tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM schema_migrations",
            &[],
        )
        .await
        .map_err(unavailable)?
        .get(0);
    let known = MIGRATIONS.len() as i32;
    if applied > known {
        // A newer build migrated further. Migrations only add, so this one
        // can still work; say so rather than refuse to start.
        tracing::warn!(
            applied,
            known,
            "the database schema is newer than this build"
        );
    }
    for (version, sql) in (1..).zip(MIGRATIONS).skip(applied.max(0) as usize) {
        tx.batch_execute(sql).await.map_err(unavailable)?;
        tx.execute(
            "INSERT INTO schema_migrations (version) VALUES ($1)",
            &[&version],
        )
        .await
        .map_err(unavailable)?;
        tracing::info!(version, "applied a schema migration");
    }
    let synchronous_commit: String = tx
        .query_one("SELECT current_setting('synchronous_commit')", &[])
        .await
        .map_err(unavailable)?
        .get(0);
    tx.commit().await.map_err(unavailable)?;
    // Off at `Durability::Os` by this instance's choice; otherwise the
    // server's, against the promise of a 2xx.
    if synchronous_commit == "off" && durability == Durability::Stable {
        tracing::error!(
            "synchronous_commit is off: an accepted payment may be lost if PostgreSQL crashes"
        );
    }
    Ok(())
}

/// The state and attempt columns of a finished payment.
pub(super) fn outcome_columns(outcome: &Outcome) -> (i16, &Attempt) {
    match outcome {
        Outcome::Processed(a) => (STATE_PROCESSED, a),
        Outcome::Declined(a) => (STATE_DECLINED, a),
        Outcome::Duplicate(a) => (STATE_DUPLICATE, a),
    }
}

/// A pending payment from `id, amount, payment_method, country, accepted_at,
/// processor, requested_at`.
pub(super) fn pending_from_row(r: &Row) -> PendingPayment {
    let processor: Option<String> = r.get(5);
    let requested_at: Option<i64> = r.get(6);
    PendingPayment {
        payment: NewPayment {
            id: CorrelationId::from_uuid(r.get(0)),
            amount: Money::from_minor(r.get(1)),
            payment_method: r.get(2),
            country: r.get(3),
            accepted_at: Timestamp::from_millis(r.get(4)),
        },
        attempt: processor.zip(requested_at).map(|(processor, at)| Attempt {
            processor,
            requested_at: Timestamp::from_millis(at),
        }),
        // Attempts are written at the server's `synchronous_commit`.
        unrecorded: false,
    }
}
