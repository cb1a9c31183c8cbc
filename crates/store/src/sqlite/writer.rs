//! The writer: every write is a command; one writer (a thread, or a task
//! at `Durability::Os`) takes all commands waiting, applies them in one
//! transaction and commits once at the sync the group needs, then answers
//! every caller. A checkpointer beside it copies the WAL into the database.

use std::fs::File;
use std::sync::mpsc;
use std::time::Duration;

use reroute_core::{CorrelationId, Money, Timestamp};
use rusqlite::{Connection, params};
use tokio::sync::oneshot;

use super::schema::{STATE_PENDING, outcome_columns, pending_from_row};
use crate::{
    Acceptance, Attempt, Durability, NewPayment, Outcome, PendingPayment, StoreError, StoreResult,
};

/// The most commands one commit carries.
pub const MAX_BATCH: usize = 4096;

pub(super) enum Command {
    Accept(
        NewPayment,
        Option<Attempt>,
        oneshot::Sender<StoreResult<Acceptance>>,
    ),
    BeginAttempt(CorrelationId, Attempt, oneshot::Sender<StoreResult<bool>>),
    /// The instant is when the processor answered.
    Finish(
        CorrelationId,
        Outcome,
        Timestamp,
        oneshot::Sender<StoreResult<bool>>,
    ),
    Restore(
        NewPayment,
        Outcome,
        Timestamp,
        oneshot::Sender<StoreResult<bool>>,
    ),
    Purge(oneshot::Sender<StoreResult<()>>),
    Reclaim(usize, oneshot::Sender<StoreResult<Vec<PendingPayment>>>),
}

/// What a command yields before the commit decides whether it stands.
pub(super) enum Applied {
    Acceptance(Acceptance),
    Flag(bool),
    Unit,
    Reclaimed(Vec<PendingPayment>),
}

/// Where writes go: a thread of the store's own, or a task on the runtime
/// that opened it.
///
/// A commit that waits for the disk ([`Durability::Stable`]) must not hold
/// a runtime thread, so it runs on the writer thread. A commit at
/// [`Durability::Os`] only copies pages to the OS (tens of microseconds):
/// run in a task, it spares every write two thread wake-ups (the writer's,
/// then the caller's), which were the largest share of the store's CPU
/// under the Rinha load (BENCHMARKS.md).
#[derive(Clone)]
pub(super) enum Writer {
    Thread(mpsc::Sender<Command>),
    Task(tokio::sync::mpsc::UnboundedSender<Command>),
}

impl Writer {
    pub(super) fn send(&self, cmd: Command) -> Result<(), ()> {
        match self {
            Writer::Thread(tx) => tx.send(cmd).map_err(drop),
            Writer::Task(tx) => tx.send(cmd).map_err(drop),
        }
    }
}

/// How long outcomes may wait for company before they are committed.
pub const OUTCOME_DELAY: Duration = Duration::from_millis(5);

/// Lets a group of outcomes alone wait up to [`OUTCOME_DELAY`] for more
/// commands: under a steady load the next accept arrives meanwhile and one
/// commit carries both, where each would otherwise commit on its own (a
/// payment then costs one commit, not two). Nobody waits for an outcome's
/// commit but its worker, and the ledger is read seconds later. Anything
/// else ends the wait at once: an accept is never held back.
pub(super) fn gather_outcomes(commands: &mpsc::Receiver<Command>, batch: &mut Vec<Command>) {
    let outcome = |c: &Command| matches!(c, Command::Finish(..));
    if !batch.iter().all(outcome) {
        return;
    }
    let deadline = std::time::Instant::now() + OUTCOME_DELAY;
    while batch.len() < MAX_BATCH {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let Ok(cmd) = commands.recv_timeout(left) else {
            return;
        };
        let more = outcome(&cmd);
        batch.push(cmd);
        if !more {
            return;
        }
    }
}

/// How a commit reaches the disk (`PRAGMA synchronous` in WAL mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Sync {
    /// The log is synced before the commit returns.
    Full,
    /// The commit returns once the log is written to the OS.
    Normal,
}

impl Sync {
    pub(super) fn pragma(self) -> &'static str {
        match self {
            Sync::Full => "FULL",
            Sync::Normal => "NORMAL",
        }
    }

    /// What a group needs: only a group with something a send or an answer
    /// relies on waits for the disk, and only at [`Durability::Stable`].
    pub(super) fn for_group(durability: Durability, batch: &[Command]) -> Sync {
        let relied_on = batch.iter().any(|cmd| !matches!(cmd, Command::Finish(..)));
        if durability == Durability::Stable && relied_on {
            Sync::Full
        } else {
            Sync::Normal
        }
    }
}

pub(super) fn write_loop(
    mut conn: Connection,
    commands: mpsc::Receiver<Command>,
    run: [u8; 16],
    durability: Durability,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut sync = Sync::Full;
    while let Ok(first) = commands.recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match commands.try_recv() {
                Ok(cmd) => batch.push(cmd),
                Err(_) => break,
            }
        }
        gather_outcomes(&commands, &mut batch);
        commit(&mut conn, &mut batch, &run, durability, &mut sync);
    }
}

/// The writer as a task ([`Writer::Task`]): the same groups and commits as
/// [`write_loop`], on the runtime's thread. It holds the store's lock until
/// its last commit is done.
pub(super) async fn write_task(
    mut conn: Connection,
    mut commands: tokio::sync::mpsc::UnboundedReceiver<Command>,
    run: [u8; 16],
    durability: Durability,
    lock: File,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut sync = Sync::Full;
    while commands.recv_many(&mut batch, MAX_BATCH).await > 0 {
        // Outcomes alone wait a little for company, as on the thread.
        let outcome = |c: &Command| matches!(c, Command::Finish(..));
        let deadline = tokio::time::Instant::now() + OUTCOME_DELAY;
        let mut alone = batch.iter().all(outcome);
        while alone && batch.len() < MAX_BATCH {
            match tokio::time::timeout_at(deadline, commands.recv()).await {
                Ok(Some(cmd)) => {
                    alone = outcome(&cmd);
                    batch.push(cmd);
                }
                Ok(None) | Err(_) => break,
            }
        }
        commit(&mut conn, &mut batch, &run, durability, &mut sync);
    }
    drop(conn);
    drop(lock);
}

/// Applies and commits one group at the sync it needs, then answers every
/// caller; `batch` is left empty.
pub(super) fn commit(
    conn: &mut Connection,
    batch: &mut Vec<Command>,
    run: &[u8; 16],
    durability: Durability,
    sync: &mut Sync,
) {
    let wanted = Sync::for_group(durability, batch);
    if wanted != *sync {
        match conn.pragma_update(None, "synchronous", wanted.pragma()) {
            Ok(()) => *sync = wanted,
            Err(e) => {
                // Nothing is applied on an unknown sync: a group that
                // needs the disk must not be answered without it.
                tracing::error!(error = %e, "cannot set the store's sync");
                let message = e.to_string();
                for cmd in batch.drain(..) {
                    respond(cmd, Err(StoreError::Unavailable(message.clone())));
                }
                return;
            }
        }
    }
    match apply_batch(conn, batch, run) {
        Ok(applied) => {
            for (cmd, applied) in batch.drain(..).zip(applied) {
                respond(cmd, Ok(applied));
            }
        }
        Err(e) => {
            // The transaction rolled back: nothing of this group stands.
            tracing::error!(error = %e, commands = batch.len(), "store commit failed");
            let message = e.to_string();
            for cmd in batch.drain(..) {
                respond(cmd, Err(StoreError::Unavailable(message.clone())));
            }
        }
    }
}

/// How often the checkpointer copies the WAL into the database.
pub(super) const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

/// Runs passive checkpoints (they never block the writer) until the store is
/// dropped.
pub(super) fn checkpoint_loop(conn: Connection, stopped: mpsc::Receiver<()>) {
    while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(CHECKPOINT_EVERY) {
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "checkpoint failed; retrying later");
        }
    }
}

pub(super) fn apply_batch(
    conn: &mut Connection,
    batch: &[Command],
    run: &[u8; 16],
) -> StoreResult<Vec<Applied>> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut applied = Vec::with_capacity(batch.len());
    for cmd in batch {
        applied.push(apply(&tx, cmd, run)?);
    }
    tx.commit()?;
    Ok(applied)
}

pub(super) fn apply(
    tx: &rusqlite::Transaction<'_>,
    cmd: &Command,
    run: &[u8; 16],
) -> rusqlite::Result<Applied> {
    match cmd {
        Command::Accept(p, plan, _) => {
            let inserted = insert(tx, p, STATE_PENDING, run, plan.as_ref(), None)?;
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
        Command::BeginAttempt(id, attempt, _) => {
            let changed = tx
                .prepare_cached(
                    "UPDATE payments SET processor = ?2, requested_at = ?3
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
        Command::Finish(id, outcome, at, _) => {
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
        Command::Reclaim(limit, _) => {
            let mut stmt = tx.prepare_cached(
                "UPDATE payments SET holder = ?1
                 WHERE id IN (SELECT id FROM payments WHERE state = ?2 AND holder IS NOT ?1
                              ORDER BY accepted_at LIMIT ?3)
                 RETURNING id, amount, payment_method, country, accepted_at, processor, requested_at",
            )?;
            let limit = i64::try_from(*limit).unwrap_or(i64::MAX);
            let rows = stmt.query_map(params![&run[..], STATE_PENDING, limit], pending_from_row)?;
            let mut reclaimed = rows.collect::<rusqlite::Result<Vec<_>>>()?;
            reclaimed.sort_by_key(|p| p.payment.accepted_at);
            Ok(Applied::Reclaimed(reclaimed))
        }
    }
}

/// Inserts `p` in `state`, held by this run, with `attempt` (and, finished,
/// when its outcome was answered), unless its id is known; how many rows
/// it inserted (0 or 1).
pub(super) fn insert(
    tx: &rusqlite::Transaction<'_>,
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
        (Command::Accept(_, _, tx), Ok(Applied::Acceptance(a))) => drop(tx.send(Ok(a))),
        (Command::BeginAttempt(_, _, tx), Ok(Applied::Flag(f)))
        | (Command::Finish(_, _, _, tx), Ok(Applied::Flag(f)))
        | (Command::Restore(_, _, _, tx), Ok(Applied::Flag(f))) => drop(tx.send(Ok(f))),
        (Command::Purge(tx), Ok(Applied::Unit)) => drop(tx.send(Ok(()))),
        (Command::Reclaim(_, tx), Ok(Applied::Reclaimed(p))) => drop(tx.send(Ok(p))),
        (Command::Accept(_, _, tx), Err(e)) => drop(tx.send(Err(e))),
        (Command::BeginAttempt(_, _, tx), Err(e))
        | (Command::Finish(_, _, _, tx), Err(e))
        | (Command::Restore(_, _, _, tx), Err(e)) => drop(tx.send(Err(e))),
        (Command::Purge(tx), Err(e)) => drop(tx.send(Err(e))),
        (Command::Reclaim(_, tx), Err(e)) => drop(tx.send(Err(e))),
        (_, Ok(_)) => unreachable!("apply yields the variant matching its command"),
    }
}
