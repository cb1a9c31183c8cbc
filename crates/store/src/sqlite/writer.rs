//! The writer: every write is a command; one writer (a thread, or a task
//! at `Durability::Os`) takes all commands waiting, applies them in one
//! transaction and commits once at the sync the group needs, then answers
//! every caller. A checkpointer beside it copies the WAL into the database.

use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use reroute_core::{Money, Timestamp};
use rusqlite::{Connection, params};
use tokio::sync::oneshot;

use super::lock::Lock;
use super::schema::{STATE_PENDING, outcome_columns, pending_from_row};
use crate::write::{Answer, Write};
use crate::{
    Acceptance, Attempt, Durability, NewPayment, Outcome, PendingPayment, StoreError, StoreResult,
};

/// The most commands the writer takes at once, and the number of outcomes
/// waiting that wakes it to commit them. A group holds every outcome waiting
/// when it is committed (never more than the callers: each waits its answer).
pub const MAX_BATCH: usize = 4096;

pub(super) enum Command {
    /// An accept, an attempt or an outcome, as both engines take them.
    Write(Write),
    Restore(
        NewPayment,
        Outcome,
        Timestamp,
        oneshot::Sender<StoreResult<bool>>,
    ),
    Purge(oneshot::Sender<StoreResult<()>>),
    Reclaim(usize, oneshot::Sender<StoreResult<Vec<PendingPayment>>>),
    /// Outcomes wait in the [`Inbox`]: the first since the writer last
    /// took them (or the [`MAX_BATCH`]th) sends this to wake it.
    Outcomes,
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
/// under the Rinha load (BENCHMARKS.md). Outcomes skip the channel: they
/// wait in the [`Inbox`], and wake the writer once per group.
#[derive(Clone)]
pub(super) struct Writer {
    pub(super) channel: Channel,
    /// Where outcomes go instead of the channel.
    pub(super) inbox: Arc<Inbox>,
}

#[derive(Clone)]
pub(super) enum Channel {
    Thread(mpsc::Sender<Command>),
    Task(tokio::sync::mpsc::UnboundedSender<Command>),
}

impl Writer {
    /// `Err` once the writer is gone.
    pub(super) fn send(&self, cmd: Command) -> Result<(), ()> {
        let cmd = match cmd {
            Command::Write(Write::Finish(..)) => match self.inbox.put(cmd)? {
                Wake::No => return Ok(()),
                Wake::Yes => Command::Outcomes,
            },
            cmd => cmd,
        };
        match &self.channel {
            Channel::Thread(tx) => tx.send(cmd).map_err(drop),
            Channel::Task(tx) => tx.send(cmd).map_err(drop),
        }
    }
}

/// The outcomes sent to the writer and not yet taken.
///
/// The writer holds outcomes back for a group commit ([`Held`]), so waking
/// it for each one would be waste: where the writer and the workers run on
/// different threads, each wake-up of a parked thread is a syscall and a
/// context switch. An outcome goes here instead of the channel, and only
/// the first one since the writer last took them wakes it (it then sets
/// the group's due instant), or the [`MAX_BATCH`]th (the group is full).
#[derive(Default)]
pub(super) struct Inbox(Mutex<Waiting>);

#[derive(Default)]
struct Waiting {
    outcomes: Vec<Command>,
    /// Set when the writer is gone: nothing is taken any more.
    closed: bool,
}

/// Whether an outcome just put in the [`Inbox`] must wake the writer.
pub(super) enum Wake {
    Yes,
    No,
}

impl Inbox {
    fn waiting(&self) -> std::sync::MutexGuard<'_, Waiting> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// `Err` (the command dropped, so its caller hears the store closed)
    /// once the writer is gone.
    pub(super) fn put(&self, cmd: Command) -> Result<Wake, ()> {
        let mut waiting = self.waiting();
        if waiting.closed {
            return Err(());
        }
        waiting.outcomes.push(cmd);
        let n = waiting.outcomes.len();
        Ok(if n == 1 || n == MAX_BATCH {
            Wake::Yes
        } else {
            Wake::No
        })
    }

    fn len(&self) -> usize {
        self.waiting().outcomes.len()
    }

    fn take(&self, into: &mut Vec<Command>) {
        into.append(&mut self.waiting().outcomes);
    }

    /// The writer is gone: the outcomes left are dropped (their callers
    /// hear the store closed, as with a command in a closed channel) and
    /// none is taken after.
    fn close(&self) {
        let left = {
            let mut waiting = self.waiting();
            waiting.closed = true;
            std::mem::take(&mut waiting.outcomes)
        };
        drop(left);
    }
}

/// How long an outcome may wait before it is committed.
pub const OUTCOME_DELAY: Duration = Duration::from_millis(50);

/// The outcomes the writer holds back, and when they are due.
///
/// Accepts, attempts, reclaims and purges are committed as soon as the
/// writer has them, in groups of their own: an accept never waits for an
/// outcome, nor carries an outcome's pages in its commit. Outcomes are held
/// up to [`OUTCOME_DELAY`] (or until [`MAX_BATCH`] of them wait) and
/// committed together, so that a payment costs one small commit on its
/// request's path and a share of a large one after. Nobody waits for an
/// outcome's commit but the worker that recorded it (its routing slot is
/// already free) and the summaries asked meanwhile (`recording` in the
/// server). Holding an outcome back reorders it only after commands about
/// other payments: the one worker that holds a payment sends its commands
/// one at a time, each after the answer to the one before, so commands about
/// one payment are never reordered. A purge or a reclaim, which touch every
/// payment, first commits the outcomes held.
///
/// The outcomes held are those in the [`Inbox`]: they are taken from it
/// when their group is committed. Dropping the `Held` (the writer ends, or
/// its task is dropped with its runtime) closes the inbox.
#[derive(Default)]
pub(super) struct Held {
    pub(super) inbox: Arc<Inbox>,
    /// The group being committed, taken from the inbox.
    outcomes: Vec<Command>,
    due: Option<Instant>,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.inbox.close();
    }
}

impl Held {
    pub(super) fn new(inbox: Arc<Inbox>) -> Self {
        Held {
            inbox,
            outcomes: Vec::new(),
            due: None,
        }
    }

    /// When the held outcomes must be committed, if any are held.
    pub(super) fn due(&self) -> Option<Instant> {
        self.due
    }

    /// Commits a group received at `arrived`: holds its outcomes back and
    /// commits the rest at once; `batch` is left empty.
    pub(super) fn take(
        &mut self,
        batch: &mut Vec<Command>,
        writing: &mut Writing<'_>,
        arrived: Instant,
    ) {
        // The wake-ups have done their work by bringing the writer here.
        batch.retain(|cmd| !matches!(cmd, Command::Outcomes));
        let touches_all = |cmd: &Command| matches!(cmd, Command::Purge(_) | Command::Reclaim(..));
        if batch.iter().any(touches_all) {
            self.commit(writing);
        }
        if !batch.is_empty() {
            writing.commit(batch);
        }
        // Past due: a writer whose queue is never empty (its wait for the
        // due instant then never times out) still commits them.
        let overdue = self.due.is_some_and(|due| arrived >= due);
        let held = self.inbox.len();
        if held >= MAX_BATCH || overdue {
            self.commit(writing);
        } else if held > 0 && self.due.is_none() {
            self.due = Some(arrived + OUTCOME_DELAY);
        }
    }

    /// Commits the outcomes held, if any.
    pub(super) fn commit(&mut self, writing: &mut Writing<'_>) {
        self.due = None;
        self.inbox.take(&mut self.outcomes);
        if !self.outcomes.is_empty() {
            writing.commit(&mut self.outcomes);
        }
    }
}

/// What a commit needs besides its group: the connection, this open's run,
/// the durability and the sync the connection is at.
pub(super) struct Writing<'a> {
    conn: &'a mut Connection,
    run: [u8; 16],
    durability: Durability,
    sync: Sync,
}

impl<'a> Writing<'a> {
    /// Before its first commit: the connection opens at `synchronous=FULL`.
    pub(super) fn new(conn: &'a mut Connection, run: [u8; 16], durability: Durability) -> Self {
        Writing {
            conn,
            run,
            durability,
            sync: Sync::Full,
        }
    }

    fn commit(&mut self, batch: &mut Vec<Command>) {
        commit(self.conn, batch, &self.run, self.durability, &mut self.sync);
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
        let relied_on = batch
            .iter()
            .any(|cmd| !matches!(cmd, Command::Write(Write::Finish(..))));
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
    mut held: Held,
    run: [u8; 16],
    durability: Durability,
) {
    let mut writing = Writing::new(&mut conn, run, durability);
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        let first = match held.due() {
            None => commands
                .recv()
                .map_err(|_| mpsc::RecvTimeoutError::Disconnected),
            Some(due) => commands.recv_timeout(due.saturating_duration_since(Instant::now())),
        };
        match first {
            Ok(cmd) => batch.push(cmd),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                held.commit(&mut writing);
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        while batch.len() < MAX_BATCH {
            match commands.try_recv() {
                Ok(cmd) => batch.push(cmd),
                Err(_) => break,
            }
        }
        held.take(&mut batch, &mut writing, Instant::now());
    }
    held.commit(&mut writing);
}

/// The writer as a task ([`Writer::Task`]): the same groups and commits as
/// [`write_loop`], on the runtime's thread. It holds the store's lock until
/// its last commit is done.
pub(super) async fn write_task(
    mut conn: Connection,
    mut commands: tokio::sync::mpsc::UnboundedReceiver<Command>,
    mut held: Held,
    run: [u8; 16],
    durability: Durability,
    lock: Lock,
) {
    let mut writing = Writing::new(&mut conn, run, durability);
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        let received = match held.due() {
            None => commands.recv_many(&mut batch, MAX_BATCH).await,
            Some(due) => {
                let due = tokio::time::Instant::from_std(due);
                match tokio::time::timeout_at(due, commands.recv_many(&mut batch, MAX_BATCH)).await
                {
                    Ok(received) => received,
                    Err(_) => {
                        held.commit(&mut writing);
                        continue;
                    }
                }
            }
        };
        if received == 0 {
            break;
        }
        held.take(&mut batch, &mut writing, Instant::now());
    }
    held.commit(&mut writing);
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
        Command::Write(Write::BeginAttempt(id, attempt, _)) => {
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
        (Command::Restore(_, _, _, tx), Ok(Applied::Flag(f))) => drop(tx.send(Ok(f))),
        (Command::Purge(tx), Ok(Applied::Unit)) => drop(tx.send(Ok(()))),
        (Command::Reclaim(_, tx), Ok(Applied::Reclaimed(p))) => drop(tx.send(Ok(p))),
        (Command::Write(w), Err(e)) => w.fail(e),
        (Command::Restore(_, _, _, tx), Err(e)) => drop(tx.send(Err(e))),
        (Command::Purge(tx), Err(e)) => drop(tx.send(Err(e))),
        (Command::Reclaim(_, tx), Err(e)) => drop(tx.send(Err(e))),
        (Command::Outcomes, _) => {}
        (_, Ok(_)) => unreachable!("apply yields the variant matching its command"),
    }
}
