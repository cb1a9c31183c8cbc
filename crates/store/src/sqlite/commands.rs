//! The writer's commands and what each writes: its SQL, applied inside the
//! group's transaction ([`apply_batch`]), and the answer it gives its caller
//! once the group's commit stands ([`respond`]).

use reroute_core::{Money, Timestamp};
use rusqlite::{Connection, params};
use tokio::sync::oneshot;

use super::schema::{STATE_PENDING, outcome_columns, pending_columns, pending_from_row};
use crate::write::{Answer, Write};
use crate::{Acceptance, Attempt, NewPayment, Outcome, PendingPayment, StoreResult};

pub(super) enum Command {
    /// An accept, an attempt or an outcome, as both engines take them.
    Write(Write),
    /// An accept marked unrecorded ([`crate::Store::accept_unrecorded`]).
    AcceptUnrecorded(NewPayment, oneshot::Sender<StoreResult<Acceptance>>),
    Restore(
        NewPayment,
        Outcome,
        Timestamp,
        oneshot::Sender<StoreResult<bool>>,
    ),
    Purge(oneshot::Sender<StoreResult<()>>),
    Reclaim(usize, oneshot::Sender<StoreResult<Vec<PendingPayment>>>),
    /// Outcomes wait in the writer's inbox: the first since the writer
    /// last took them (or the `MAX_BATCH`th) sends this to wake it.
    Outcomes,
}

/// What a command yields before the commit decides whether it stands.
pub(super) enum Applied {
    Acceptance(Acceptance),
    Flag(bool),
    Unit,
    Reclaimed(Vec<PendingPayment>),
}

pub(super) fn apply_batch(
    conn: &mut Connection,
    batch: &[Command],
    run: &[u8; 16],
) -> StoreResult<Vec<Applied>> {
    Ok(in_transaction(conn, |conn| {
        batch.iter().map(|cmd| apply(conn, cmd, run)).collect()
    })?)
}

/// Runs `body` in one `BEGIN IMMEDIATE … COMMIT`, rolled back if `body` or
/// the commit fails. Both statements are prepared once per connection:
/// rusqlite's `Transaction` parses its `BEGIN` and `COMMIT` again on every
/// call, which was ~2% of the core's CPU under the Rinha load (one
/// transaction per accept; BENCHMARKS.md).
pub(super) fn in_transaction<T>(
    conn: &Connection,
    body: impl FnOnce(&Connection) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
    let done = body(conn).and_then(|value| {
        conn.prepare_cached("COMMIT")?.execute([])?;
        Ok(value)
    });
    if done.is_err() && !conn.is_autocommit() {
        // A failed ROLLBACK leaves nothing better to do: the error returned
        // is the one that made the group fail, and the next BEGIN reports a
        // connection still in a transaction.
        if let Err(e) = conn.execute_batch("ROLLBACK") {
            tracing::error!(error = %e, "store rollback failed");
        }
    }
    done
}

pub(super) fn apply(tx: &Connection, cmd: &Command, run: &[u8; 16]) -> rusqlite::Result<Applied> {
    match cmd {
        Command::Write(Write::Accept(p, plan, _)) => {
            let inserted = insert(tx, p, STATE_PENDING, run, plan.as_ref(), None)?;
            acceptance(tx, p, inserted)
        }
        Command::AcceptUnrecorded(p, _) => {
            let inserted = insert(tx, p, STATE_PENDING, run, None, None)?;
            if inserted == 1 {
                tx.prepare_cached("UPDATE payments SET unrecorded = 1 WHERE id = ?1")?
                    .execute([&p.id.as_bytes()[..]])?;
            }
            acceptance(tx, p, inserted)
        }
        Command::Write(Write::BeginAttempt(id, attempt, _)) => {
            let changed = tx
                .prepare_cached(
                    "UPDATE payments SET processor = ?2, requested_at = ?3, unrecorded = 0
                     WHERE id = ?1 AND state = ?4 AND holder = ?5",
                )?
                .execute(params![
                    &id.as_bytes()[..],
                    attempt.processor,
                    attempt.requested_at.millis(),
                    STATE_PENDING,
                    &run[..],
                ])?;
            Ok(Applied::Flag(changed == 1))
        }
        Command::Write(Write::Finish(id, outcome, at, _)) => {
            let (state, attempt) = outcome_columns(outcome);
            let changed = tx
                .prepare_cached(
                    "UPDATE payments SET state = ?2, processor = ?3, requested_at = ?4,
                                         finished_at = ?6
                     WHERE id = ?1 AND state = ?5",
                )?
                .execute(params![
                    &id.as_bytes()[..],
                    state,
                    attempt.processor,
                    attempt.requested_at.millis(),
                    STATE_PENDING,
                    at.millis(),
                ])?;
            Ok(Applied::Flag(changed == 1))
        }
        Command::Restore(p, outcome, at, _) => {
            let (state, attempt) = outcome_columns(outcome);
            Ok(Applied::Flag(
                insert(tx, p, state, run, Some(attempt), Some(*at))? == 1,
            ))
        }
        Command::Purge(_) => {
            tx.execute("DELETE FROM payments", [])?;
            Ok(Applied::Unit)
        }
        // `Held::take` drops the wake-ups before a group is applied; one
        // applied all the same writes nothing.
        Command::Outcomes => Ok(Applied::Unit),
        Command::Reclaim(limit, _) => {
            let mut stmt = tx.prepare_cached(concat!(
                "UPDATE payments SET holder = ?1
                 WHERE id IN (SELECT id FROM payments WHERE state = ?2 AND holder IS NOT ?1
                              ORDER BY accepted_at LIMIT ?3)
                 RETURNING ",
                pending_columns!()
            ))?;
            let limit = i64::try_from(*limit).unwrap_or(i64::MAX);
            let rows = stmt.query_map(params![&run[..], STATE_PENDING, limit], pending_from_row)?;
            let mut reclaimed = rows.collect::<rusqlite::Result<Vec<_>>>()?;
            reclaimed.sort_by_key(|p| p.payment.accepted_at);
            Ok(Applied::Reclaimed(reclaimed))
        }
    }
}

/// What an accept of `p` that inserted `inserted` rows comes to: new, or
/// the id known with the same amount or another.
fn acceptance(tx: &Connection, p: &NewPayment, inserted: usize) -> rusqlite::Result<Applied> {
    if inserted == 1 {
        return Ok(Applied::Acceptance(Acceptance::New));
    }
    let existing: i64 = tx
        .prepare_cached("SELECT amount FROM payments WHERE id = ?1")?
        .query_row([&p.id.as_bytes()[..]], |r| r.get(0))?;
    let existing = Money::from_minor(existing);
    Ok(Applied::Acceptance(if existing == p.amount {
        Acceptance::Duplicate
    } else {
        Acceptance::Conflict { existing }
    }))
}

/// Inserts `p` in `state`, held by this run, with `attempt` (and, finished,
/// when its outcome was answered), unless its id is known; how many rows
/// it inserted (0 or 1).
pub(super) fn insert(
    tx: &Connection,
    p: &NewPayment,
    state: i64,
    run: &[u8; 16],
    attempt: Option<&Attempt>,
    finished_at: Option<Timestamp>,
) -> rusqlite::Result<usize> {
    tx.prepare_cached(
        "INSERT INTO payments (id, amount, payment_method, country, accepted_at, state, holder,
                               processor, requested_at, finished_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT (id) DO NOTHING",
    )?
    .execute(params![
        &p.id.as_bytes()[..],
        p.amount.minor(),
        p.payment_method,
        p.country,
        p.accepted_at.millis(),
        state,
        &run[..],
        attempt.map(|a| a.processor.as_str()),
        attempt.map(|a| a.requested_at.millis()),
        finished_at.map(|t| t.millis()),
    ])
}

pub(super) fn respond(cmd: Command, applied: StoreResult<Applied>) {
    // A caller that went away (client disconnected) no longer needs the
    // answer; the write stands either way.
    match (cmd, applied) {
        (Command::Write(w), Ok(Applied::Acceptance(a))) => w.answer(Answer::Acceptance(a)),
        (Command::Write(w), Ok(Applied::Flag(f))) => w.answer(Answer::Flag(f)),
        (Command::AcceptUnrecorded(_, tx), Ok(Applied::Acceptance(a))) => drop(tx.send(Ok(a))),
        (Command::Restore(_, _, _, tx), Ok(Applied::Flag(f))) => drop(tx.send(Ok(f))),
        (Command::Purge(tx), Ok(Applied::Unit)) => drop(tx.send(Ok(()))),
        (Command::Reclaim(_, tx), Ok(Applied::Reclaimed(p))) => drop(tx.send(Ok(p))),
        (Command::Write(w), Err(e)) => w.fail(e),
        (Command::AcceptUnrecorded(_, tx), Err(e)) => drop(tx.send(Err(e))),
        (Command::Restore(_, _, _, tx), Err(e)) => drop(tx.send(Err(e))),
        (Command::Purge(tx), Err(e)) => drop(tx.send(Err(e))),
        (Command::Reclaim(_, tx), Err(e)) => drop(tx.send(Err(e))),
        (Command::Outcomes, _) => {}
        (_, Ok(_)) => unreachable!("apply yields the variant matching its command"),
    }
}
