//! The writer tasks: the request path's writes (accept, begin an attempt,
//! finish) wait in a channel; each task takes every write waiting and
//! applies the group in one statement, one commit and one round trip, then
//! answers every caller.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;
use reroute_core::Money;
use tokio::sync::{Mutex, mpsc};
use uuid::Uuid;

use super::failure::{bounded, is_transient, unavailable};
use super::pool::get;
use super::schema::outcome_columns;
use crate::write::{Answer, Write};
use crate::{Acceptance, Observer, Step, StoreError, StoreResult};

/// The most writes one statement carries.
pub const MAX_BATCH: usize = 1024;

/// What every writer task works with.
pub(super) struct Writers {
    pub(super) pool: Pool,
    pub(super) holder: Arc<str>,
    pub(super) bound: Duration,
    pub(super) observer: Option<Arc<dyn Observer>>,
}

/// One writer task: takes every write waiting (up to [`MAX_BATCH`]) and
/// applies them, until every sender is gone.
pub(super) async fn write_loop(writers: Writers, receiver: Arc<Mutex<mpsc::Receiver<Write>>>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        {
            // While this task gathers, the others may be writing theirs.
            let mut receiver = receiver.lock().await;
            if receiver.recv_many(&mut batch, MAX_BATCH).await == 0 {
                return;
            }
        }
        apply_batch(&writers, std::mem::take(&mut batch)).await;
    }
}

/// Applies a batch as few statements as its ids allow: one per run of
/// distinct ids (a statement cannot touch one row twice), each its own
/// commit; then answers every caller.
pub(super) async fn apply_batch(writers: &Writers, mut rest: Vec<Write>) {
    while !rest.is_empty() {
        let mut seen = HashSet::with_capacity(rest.len());
        let split = rest
            .iter()
            .position(|w| !seen.insert(w.id()))
            .unwrap_or(rest.len());
        let tail = rest.split_off(split);
        let group = std::mem::replace(&mut rest, tail);
        let started = std::time::Instant::now();
        let applied = bounded(writers.bound, apply_group(writers, &group)).await;
        if let Some(observer) = &writers.observer {
            let writes = group.len();
            observer.observe(Step::Group { writes }, started.elapsed());
        }
        match applied {
            Ok(answers) => {
                for (write, answer) in group.into_iter().zip(answers) {
                    write.answer(answer);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, writes = group.len(), "store write failed");
                for write in group {
                    write.fail(e.clone());
                }
            }
        }
    }
}

/// Accepts, attempts and finishes of distinct payments in one statement:
/// each data-modifying CTE takes its rows from arrays, and the result says
/// which rows each one changed. A deadlock with another instance's statement
/// (each locks rows in its own order) is retried: the failed statement
/// changed nothing.
#[doc(hidden)] // Public for the plan test (tests/instances.rs).
pub const APPLY_GROUP: &str = "WITH accepted AS (
        INSERT INTO payments (id, amount, payment_method, country, accepted_at, state, holder, lease_until,
                              processor, requested_at)
        SELECT a.id, a.amount, a.payment_method, a.country, a.accepted_at, 0, $13, clock_timestamp(),
               a.processor, a.requested_at
        FROM unnest($1::uuid[], $2::int8[], $3::text[], $4::text[], $5::int8[], $14::text[], $15::int8[])
             AS a(id, amount, payment_method, country, accepted_at, processor, requested_at)
        ON CONFLICT (id) DO NOTHING
        RETURNING id
    ), attempted AS (
        UPDATE payments p SET processor = b.processor, requested_at = b.requested_at
        FROM unnest($6::uuid[], $7::text[], $8::int8[]) AS b(id, processor, requested_at)
        WHERE p.id = ANY($6) AND p.id = b.id AND p.state = 0 AND p.holder = $13
          AND EXISTS (SELECT 1 FROM holders h WHERE h.holder = $13 AND h.lease_until > clock_timestamp())
        RETURNING p.id
    ), finished AS (
        UPDATE payments p
        SET state = f.state, processor = f.processor, requested_at = f.requested_at, lease_until = NULL,
            finished_at = f.finished_at
        FROM unnest($9::uuid[], $10::int2[], $11::text[], $12::int8[], $16::int8[])
             AS f(id, state, processor, requested_at, finished_at)
        WHERE p.id = ANY($9) AND p.id = f.id AND p.state = 0
        RETURNING p.id
    )
    SELECT id FROM accepted
    UNION ALL SELECT id FROM attempted
    UNION ALL SELECT id FROM finished";

pub(super) async fn apply_group(writers: &Writers, group: &[Write]) -> StoreResult<Vec<Answer>> {
    let holder = &*writers.holder;
    let mut a = Columns::default();
    let mut b = Columns::default();
    let mut f = Columns::default();
    // In id order: two instances inserting the same ids lock them in the
    // same order, instead of deadlocking.
    let mut ordered: Vec<&Write> = group.iter().collect();
    ordered.sort_unstable_by_key(|w| w.id());
    for write in ordered {
        match write {
            Write::Accept(p, plan, _) => {
                a.planned.push(plan.as_ref().map(|a| a.processor.as_str()));
                a.planned_at
                    .push(plan.as_ref().map(|a| a.requested_at.millis()));
                a.id.push(*p.id.as_uuid());
                a.amount.push(p.amount.minor());
                a.method.push(p.payment_method.as_deref());
                a.country.push(p.country.as_deref());
                a.at.push(p.accepted_at.millis());
            }
            Write::BeginAttempt(id, attempt, _) => {
                b.id.push(*id.as_uuid());
                b.processor.push(attempt.processor.as_str());
                b.at.push(attempt.requested_at.millis());
            }
            Write::Finish(id, outcome, finished_at, _) => {
                let (state, attempt) = outcome_columns(outcome);
                f.id.push(*id.as_uuid());
                f.state.push(state);
                f.processor.push(attempt.processor.as_str());
                f.at.push(attempt.requested_at.millis());
                f.finished_at.push(finished_at.millis());
            }
        }
    }
    let client = get(&writers.pool, writers.observer.as_deref()).await?;
    let statement = client
        .prepare_cached(APPLY_GROUP)
        .await
        .map_err(unavailable)?;
    let mut tries = 0;
    let rows = loop {
        tries += 1;
        let result = client
            .query(
                &statement,
                &[
                    &a.id,
                    &a.amount,
                    &a.method,
                    &a.country,
                    &a.at,
                    &b.id,
                    &b.processor,
                    &b.at,
                    &f.id,
                    &f.state,
                    &f.processor,
                    &f.at,
                    &holder,
                    &a.planned,
                    &a.planned_at,
                    &f.finished_at,
                ],
            )
            .await;
        match result {
            Ok(rows) => break rows,
            Err(e) if tries < 3 && is_transient(&e) => {
                tracing::debug!(error = %e, "write group retried");
            }
            Err(e) => return Err(unavailable(e)),
        }
    };
    // Ids are distinct within a group, so an id tells which write it was.
    let changed: HashSet<Uuid> = rows.iter().map(|r| r.get(0)).collect();
    let not_new: Vec<Uuid> =
        a.id.iter()
            .filter(|id| !changed.contains(*id))
            .copied()
            .collect();
    let existing: HashMap<Uuid, i64> = if not_new.is_empty() {
        HashMap::new()
    } else {
        // A later statement: it sees rows committed by others meanwhile.
        client
            .query(
                "SELECT id, amount FROM payments WHERE id = ANY($1)",
                &[&not_new],
            )
            .await
            .map_err(unavailable)?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect()
    };
    group
        .iter()
        .map(|write| match write {
            Write::Accept(p, _, _) if changed.contains(p.id.as_uuid()) => {
                Ok(Answer::Acceptance(Acceptance::New))
            }
            Write::Accept(p, _, _) => match existing.get(p.id.as_uuid()) {
                Some(&cents) if cents == p.amount.minor() => {
                    Ok(Answer::Acceptance(Acceptance::Duplicate))
                }
                Some(&cents) => Ok(Answer::Acceptance(Acceptance::Conflict {
                    existing: Money::from_minor(cents),
                })),
                // Refused by the conflict and gone by the look-up: purged in
                // between. Nothing stands; the client may retry.
                None => Err(StoreError::Unavailable(
                    "the payment was purged while being accepted".into(),
                )),
            },
            Write::BeginAttempt(id, _, _) | Write::Finish(id, _, _, _) => {
                Ok(Answer::Flag(changed.contains(id.as_uuid())))
            }
        })
        .collect()
}

/// One CTE's input, column by column.
#[derive(Default)]
pub(super) struct Columns<'a> {
    id: Vec<Uuid>,
    amount: Vec<i64>,
    method: Vec<Option<&'a str>>,
    country: Vec<Option<&'a str>>,
    state: Vec<i16>,
    processor: Vec<&'a str>,
    at: Vec<i64>,
    /// The planned attempts of accepts.
    planned: Vec<Option<&'a str>>,
    planned_at: Vec<Option<i64>>,
    /// When the outcomes were answered.
    finished_at: Vec<i64>,
}
