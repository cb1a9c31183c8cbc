//! The writer: every write is a command; one writer (a thread, or a task
//! at `Durability::Os`) takes all commands waiting, applies them in one
//! transaction and commits once at the sync the group needs, then answers
//! every caller. A checkpointer beside it copies the WAL into the database.

use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::commands::{Command, apply_batch, respond};
use super::lock::Lock;
use crate::write::Write;
use crate::{Durability, StoreError};

/// The most commands the writer takes at once, and the number of outcomes
/// waiting that wakes it to commit them. A group holds every outcome waiting
/// when it is committed (never more than the callers: each waits its answer).
pub const MAX_BATCH: usize = 4096;

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
/// which groups wait for the disk and the sync the connection is at.
pub(super) struct Writing<'a> {
    conn: &'a mut Connection,
    run: [u8; 16],
    syncs: Syncs,
    sync: Sync,
}

impl<'a> Writing<'a> {
    /// Before its first commit: the connection opens at `synchronous=FULL`.
    pub(super) fn new(conn: &'a mut Connection, run: [u8; 16], syncs: Syncs) -> Self {
        Writing {
            conn,
            run,
            syncs,
            sync: Sync::Full,
        }
    }

    fn commit(&mut self, batch: &mut Vec<Command>) {
        commit(self.conn, batch, &self.run, self.syncs, &mut self.sync);
    }
}

/// Which groups wait for the disk, from the store's [`Durability`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Syncs {
    /// [`Durability::Os`]: none; the checkpoints sync the log.
    None,
    /// [`Durability::Stable`]: a group with what a 2xx or a refill relies
    /// on — an accept, a restore, a purge, a reclaim. Attempts and outcomes
    /// ride on the next synced commit or checkpoint: a kernel crash that
    /// takes an attempt is told at the next open by the boot id, which
    /// marks the payments pending then unrecorded (RELIABILITY.md, "One
    /// synced write per payment").
    Accepts,
    /// [`Durability::Stable`] where the next open could not tell a kernel
    /// crash (no boot id): attempts wait for the disk too.
    AcceptsAndAttempts,
}

impl Syncs {
    pub(super) fn new(durability: Durability, boot_known: bool) -> Self {
        match durability {
            Durability::Os => Syncs::None,
            Durability::Stable if boot_known => Syncs::Accepts,
            Durability::Stable => Syncs::AcceptsAndAttempts,
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

    /// What a group needs under `syncs`.
    pub(super) fn for_group(syncs: Syncs, batch: &[Command]) -> Sync {
        let waits = |cmd: &Command| match cmd {
            Command::Write(Write::Finish(..)) | Command::Outcomes => false,
            Command::Write(Write::BeginAttempt(..)) => syncs == Syncs::AcceptsAndAttempts,
            Command::Write(Write::Accept(..))
            | Command::AcceptUnrecorded(..)
            | Command::Restore(..)
            | Command::Purge(_)
            | Command::Reclaim(..) => true,
        };
        if syncs != Syncs::None && batch.iter().any(waits) {
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
    syncs: Syncs,
) {
    let mut writing = Writing::new(&mut conn, run, syncs);
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
    syncs: Syncs,
    lock: Lock,
) {
    let mut writing = Writing::new(&mut conn, run, syncs);
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
    syncs: Syncs,
    sync: &mut Sync,
) {
    let wanted = Sync::for_group(syncs, batch);
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
