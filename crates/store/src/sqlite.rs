//! The embedded engine: SQLite in WAL mode, written by one writer that commits
//! in groups (a thread of its own; at `Durability::Os` inside a runtime, a
//! task on it).
//!
//! Every write is a command sent to the writer. The writer takes all
//! commands waiting at that moment (up to [`MAX_BATCH`]), applies them in one
//! transaction and commits once: at most one sync for the whole group, then
//! every caller is answered. Under load a commit carries hundreds of payments,
//! so durability costs each of them microseconds. Reads use a second
//! connection (WAL lets them run beside the writer).
//!
//! The sync follows [`Durability`]: at `Stable` a group holding an accept, an
//! attempt, a reclaim or a purge commits with `synchronous=FULL` (the log is
//! fdatasync'ed before anyone is answered); a group of outcomes alone commits
//! with `synchronous=NORMAL` (no sync: the next synced commit or checkpoint
//! carries it to the disk). At `Os` every commit is `NORMAL`: the log reaches
//! the OS at commit and the disk at the next checkpoint.
//!
//! One embedded store serves one instance, which holds every payment and
//! always leads the probes. Each open is a new *run*: payments accepted by
//! this run carry its id, and [`Store::reclaim`] hands back, once, those a
//! previous run left pending. Leases never run out (nobody else could take
//! them over), and probe reports live in memory.
//!
//! That holds only while one process has the file: a second one would take
//! the first's payments for a previous run's and send them again. So an open
//! takes an OS lock on a file beside the database (`<db>.lock`, holding the
//! locker's PID) and fails with [`StoreError::InUse`] while another store
//! holds it. The OS drops the lock with the process, `kill -9` included;
//! within a process, dropping the last clone of the store stops its threads
//! and then releases it, so the same file can be opened again.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::Duration;

use reroute_core::{CorrelationId, Money, Timestamp, Window};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use tokio::sync::oneshot;

use crate::error::lock_path;
use crate::{
    Acceptance, Attempt, Durability, LedgerEntry, NewPayment, Outcome, PaymentRecord, PaymentState,
    PendingPayment, ProbeReport, Store, StoreError, StoreFuture, StoreResult, Totals,
};

/// The most commands one commit carries.
pub const MAX_BATCH: usize = 4096;

const STATE_PENDING: i64 = 0;
const STATE_PROCESSED: i64 = 1;
const STATE_DECLINED: i64 = 2;
const STATE_DUPLICATE: i64 = 3;

/// Schema versions, applied in order; `PRAGMA user_version` says how many ran.
const MIGRATIONS: &[&str] = &[
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
];

enum Command {
    Accept(
        NewPayment,
        Option<Attempt>,
        oneshot::Sender<StoreResult<Acceptance>>,
    ),
    BeginAttempt(CorrelationId, Attempt, oneshot::Sender<StoreResult<bool>>),
    Finish(CorrelationId, Outcome, oneshot::Sender<StoreResult<bool>>),
    Restore(NewPayment, Outcome, oneshot::Sender<StoreResult<bool>>),
    Purge(oneshot::Sender<StoreResult<()>>),
    Reclaim(usize, oneshot::Sender<StoreResult<Vec<PendingPayment>>>),
}

/// What a command yields before the commit decides whether it stands.
enum Applied {
    Acceptance(Acceptance),
    Flag(bool),
    Unit,
    Reclaimed(Vec<PendingPayment>),
}

/// SQLite-backed [`Store`]. Cloning shares the same writer.
#[derive(Clone)]
pub struct SqliteStore {
    writer: Writer,
    reader: Arc<Mutex<Connection>>,
    path: PathBuf,
    /// The latest probe report per processor: only this instance reads them.
    probes: Arc<Mutex<BTreeMap<String, ProbeReport>>>,
    /// This open's run id: the holder of the payments it accepts.
    run: [u8; 16],
    /// Dropped with the last clone, after `writer` (fields drop in order,
    /// so every sender of commands is gone by then): stops the threads and
    /// releases the file.
    _running: Arc<Running>,
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
enum Writer {
    Thread(mpsc::Sender<Command>),
    Task(tokio::sync::mpsc::UnboundedSender<Command>),
}

impl Writer {
    fn send(&self, cmd: Command) -> Result<(), ()> {
        match self {
            Writer::Thread(tx) => tx.send(cmd).map_err(drop),
            Writer::Task(tx) => tx.send(cmd).map_err(drop),
        }
    }
}

/// The threads of one open and the lock that keeps the file to it.
struct Running {
    writer: Option<thread::JoinHandle<()>>,
    /// Dropping it tells the checkpointer to stop.
    stop_checkpoints: Option<mpsc::Sender<()>>,
    checkpointer: Option<thread::JoinHandle<()>>,
    /// Holds the OS lock until dropped, after the threads are gone. A
    /// writer task holds it instead, and drops it once its last commit is
    /// done (so after the last clone is dropped, the file is free again a
    /// moment later, when the task has run, not at once).
    _lock: Option<File>,
}

impl Drop for Running {
    /// Waits for the writer to commit what it was given and for the
    /// checkpointer to stop, so that no connection of this open is left
    /// when the lock goes: a reopen in the same process then finds the
    /// file free and quiet.
    fn drop(&mut self) {
        drop(self.stop_checkpoints.take());
        for thread in [self.writer.take(), self.checkpointer.take()]
            .into_iter()
            .flatten()
        {
            if thread.join().is_err() {
                tracing::error!("a thread of the embedded store panicked");
            }
        }
    }
}

/// Takes the lock of the store at `db` for this process, or says which
/// process has it. The lock file is left in place when released: removing
/// it would let two processes lock two different files of the same name.
fn lock(db: &Path) -> StoreResult<File> {
    let path = lock_path(db);
    let cannot =
        |e: std::io::Error| StoreError::Unavailable(format!("cannot lock {}: {e}", path.display()));
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(cannot)?;
    match file.try_lock() {
        Ok(()) => {
            file.set_len(0).map_err(cannot)?;
            file.rewind().map_err(cannot)?;
            writeln!(file, "{}", std::process::id()).map_err(cannot)?;
            Ok(file)
        }
        Err(TryLockError::WouldBlock) => {
            // The holder writes its PID just after locking: it may not be
            // there yet, in which case the message goes without it.
            let mut text = String::new();
            let holder = file
                .read_to_string(&mut text)
                .ok()
                .and_then(|_| text.trim().parse().ok());
            Err(StoreError::InUse {
                path: db.to_path_buf(),
                holder,
            })
        }
        Err(TryLockError::Error(e)) => Err(cannot(e)),
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` for this process
    /// alone, at the default durability ([`Durability::Stable`]).
    pub fn open(path: impl AsRef<Path>) -> StoreResult<Self> {
        Self::open_with(path, Durability::default())
    }

    /// Opens (creating if needed) the database at `path` for this process
    /// alone, applies pending migrations and starts the writer (a thread, or
    /// at `Durability::Os` inside a runtime a task on it),
    /// which commits at `durability`. [`StoreError::InUse`] if another store (of
    /// this process or another) has it open.
    pub fn open_with(path: impl AsRef<Path>, durability: Durability) -> StoreResult<Self> {
        let path = path.as_ref().to_path_buf();
        // Before any connection: a second process must not even migrate.
        let lock = lock(&path)?;
        let mut writer_conn = Connection::open(&path)?;
        writer_conn.pragma_update(None, "journal_mode", "WAL")?;
        writer_conn.pragma_update(None, "synchronous", Sync::Full.pragma())?;
        // Checkpoints (copying the WAL into the database, with an fsync of
        // the database file) would otherwise run inside a commit every 1,000
        // pages and stall every payment of that group; the checkpointer
        // thread runs them beside the writer instead.
        writer_conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        writer_conn.busy_timeout(std::time::Duration::from_secs(5))?;
        migrate(&mut writer_conn)?;
        let reader = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        reader.busy_timeout(std::time::Duration::from_secs(5))?;
        let checkpoint_conn = Connection::open(&path)?;
        checkpoint_conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let (alive, stopped) = mpsc::channel::<()>();
        let run = *uuid::Uuid::new_v4().as_bytes();
        let runtime = tokio::runtime::Handle::try_current()
            .ok()
            .filter(|_| durability == Durability::Os);
        let mut running = Running {
            writer: None,
            stop_checkpoints: Some(alive),
            checkpointer: None,
            _lock: None,
        };
        running.checkpointer = Some(
            thread::Builder::new()
                .name("store-checkpoint".into())
                .spawn(move || checkpoint_loop(checkpoint_conn, stopped))
                .map_err(|e| {
                    StoreError::Unavailable(format!("cannot start the checkpointer: {e}"))
                })?,
        );
        // Last: once the writer runs nothing may fail, or `running` would
        // wait, on its way out, for a writer whose sender (`tx`) is alive.
        let writer = match runtime {
            Some(runtime) => {
                let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
                runtime.spawn(write_task(writer_conn, rx, run, durability, lock));
                Writer::Task(tx)
            }
            None => {
                let (tx, rx) = mpsc::channel();
                running._lock = Some(lock);
                running.writer = Some(
                    thread::Builder::new()
                        .name("store-writer".into())
                        .spawn(move || write_loop(writer_conn, rx, run, durability))
                        .map_err(|e| {
                            StoreError::Unavailable(format!("cannot start the writer: {e}"))
                        })?,
                );
                Writer::Thread(tx)
            }
        };
        Ok(Self {
            writer,
            reader: Arc::new(Mutex::new(reader)),
            path,
            probes: Arc::default(),
            run,
            _running: Arc::new(running),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn send<T: Send + 'static>(
        &self,
        make: impl FnOnce(oneshot::Sender<StoreResult<T>>) -> Command,
    ) -> StoreFuture<'_, T> {
        let (tx, rx) = oneshot::channel();
        let sent = self.writer.send(make(tx));
        Box::pin(async move {
            sent.map_err(|_| StoreError::Closed)?;
            rx.await.map_err(|_| StoreError::Closed)?
        })
    }

    fn read<T: Send + 'static>(
        &self,
        query: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> StoreFuture<'_, T> {
        let reader = Arc::clone(&self.reader);
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let conn = reader
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                query(&conn).map_err(StoreError::from)
            })
            .await
            .map_err(|e| StoreError::Unavailable(format!("read task failed: {e}")))?
        })
    }
}

fn migrate(conn: &mut Connection) -> StoreResult<()> {
    let version: usize = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i + 1)?;
        tx.commit()?;
    }
    Ok(())
}

/// How long outcomes may wait for company before they are committed.
pub const OUTCOME_DELAY: Duration = Duration::from_millis(5);

/// Lets a group of outcomes alone wait up to [`OUTCOME_DELAY`] for more
/// commands: under a steady load the next accept arrives meanwhile and one
/// commit carries both, where each would otherwise commit on its own (a
/// payment then costs one commit, not two). Nobody waits for an outcome's
/// commit but its worker, and the ledger is read seconds later. Anything
/// else ends the wait at once: an accept is never held back.
fn gather_outcomes(commands: &mpsc::Receiver<Command>, batch: &mut Vec<Command>) {
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
enum Sync {
    /// The log is synced before the commit returns.
    Full,
    /// The commit returns once the log is written to the OS.
    Normal,
}

impl Sync {
    fn pragma(self) -> &'static str {
        match self {
            Sync::Full => "FULL",
            Sync::Normal => "NORMAL",
        }
    }

    /// What a group needs: only a group with something a send or an answer
    /// relies on waits for the disk, and only at [`Durability::Stable`].
    fn for_group(durability: Durability, batch: &[Command]) -> Sync {
        let relied_on = batch.iter().any(|cmd| !matches!(cmd, Command::Finish(..)));
        if durability == Durability::Stable && relied_on {
            Sync::Full
        } else {
            Sync::Normal
        }
    }
}

fn write_loop(
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
async fn write_task(
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
fn commit(
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
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

/// Runs passive checkpoints (they never block the writer) until the store is
/// dropped.
fn checkpoint_loop(conn: Connection, stopped: mpsc::Receiver<()>) {
    while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(CHECKPOINT_EVERY) {
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "checkpoint failed; retrying later");
        }
    }
}

fn apply_batch(
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

fn apply(
    tx: &rusqlite::Transaction<'_>,
    cmd: &Command,
    run: &[u8; 16],
) -> rusqlite::Result<Applied> {
    match cmd {
        Command::Accept(p, plan, _) => {
            let inserted = insert(tx, p, STATE_PENDING, run, plan.as_ref())?;
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
        Command::Finish(id, outcome, _) => {
            let (state, attempt) = outcome_columns(outcome);
            let changed = tx
                .prepare_cached(
                    "UPDATE payments SET state = ?2, processor = ?3, requested_at = ?4
                     WHERE id = ?1 AND state = ?5",
                )?
                .execute(params![
                    &id.as_bytes()[..],
                    state,
                    attempt.processor,
                    attempt.requested_at.millis(),
                    STATE_PENDING
                ])?;
            Ok(Applied::Flag(changed == 1))
        }
        Command::Restore(p, outcome, _) => {
            let (state, attempt) = outcome_columns(outcome);
            Ok(Applied::Flag(
                insert(tx, p, state, run, Some(attempt))? == 1,
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

/// Inserts `p` in `state`, held by this run, with `attempt`, unless its id
/// is known; how many rows it inserted (0 or 1).
fn insert(
    tx: &rusqlite::Transaction<'_>,
    p: &NewPayment,
    state: i64,
    run: &[u8; 16],
    attempt: Option<&Attempt>,
) -> rusqlite::Result<usize> {
    tx.prepare_cached(
        "INSERT INTO payments (id, amount, payment_method, country, accepted_at, state, holder,
                               processor, requested_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT (id) DO NOTHING",
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
    ])
}

/// The state and attempt columns of a finished payment.
fn outcome_columns(outcome: &Outcome) -> (i64, &Attempt) {
    match outcome {
        Outcome::Processed(a) => (STATE_PROCESSED, a),
        Outcome::Declined(a) => (STATE_DECLINED, a),
        Outcome::Duplicate(a) => (STATE_DUPLICATE, a),
    }
}

fn respond(cmd: Command, applied: StoreResult<Applied>) {
    // A caller that went away (client disconnected) no longer needs the
    // answer; the write stands either way.
    match (cmd, applied) {
        (Command::Accept(_, _, tx), Ok(Applied::Acceptance(a))) => drop(tx.send(Ok(a))),
        (Command::BeginAttempt(_, _, tx), Ok(Applied::Flag(f)))
        | (Command::Finish(_, _, tx), Ok(Applied::Flag(f)))
        | (Command::Restore(_, _, tx), Ok(Applied::Flag(f))) => drop(tx.send(Ok(f))),
        (Command::Purge(tx), Ok(Applied::Unit)) => drop(tx.send(Ok(()))),
        (Command::Reclaim(_, tx), Ok(Applied::Reclaimed(p))) => drop(tx.send(Ok(p))),
        (Command::Accept(_, _, tx), Err(e)) => drop(tx.send(Err(e))),
        (Command::BeginAttempt(_, _, tx), Err(e))
        | (Command::Finish(_, _, tx), Err(e))
        | (Command::Restore(_, _, tx), Err(e)) => drop(tx.send(Err(e))),
        (Command::Purge(tx), Err(e)) => drop(tx.send(Err(e))),
        (Command::Reclaim(_, tx), Err(e)) => drop(tx.send(Err(e))),
        (_, Ok(_)) => unreachable!("apply yields the variant matching its command"),
    }
}

fn id_from_row(bytes: Vec<u8>) -> rusqlite::Result<CorrelationId> {
    let bytes: [u8; 16] = bytes.try_into().map_err(|_| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Blob,
            "correlation id is not 16 bytes".into(),
        )
    })?;
    Ok(CorrelationId::from_bytes(bytes))
}

/// A pending payment from `id, amount, payment_method, country, accepted_at,
/// processor, requested_at`.
fn pending_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<PendingPayment> {
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
    })
}

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

    fn finish(&self, id: CorrelationId, outcome: Outcome) -> StoreFuture<'_, bool> {
        self.send(|tx| Command::Finish(id, outcome, tx))
    }

    fn restore(&self, payment: NewPayment, outcome: Outcome) -> StoreFuture<'_, bool> {
        self.send(|tx| Command::Restore(payment, outcome, tx))
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
                |r| {
                    Ok(Totals {
                        processor: r.get(0)?,
                        requests: r.get::<_, i64>(1)? as u64,
                        amount: Money::from_minor(r.get(2)?),
                    })
                },
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

#[cfg(test)]
mod tests {
    use super::*;

    fn finish() -> Command {
        let attempt = Attempt {
            processor: "default".into(),
            requested_at: Timestamp::from_millis(0),
        };
        Command::Finish(
            CorrelationId::from_bytes([1; 16]),
            Outcome::Processed(attempt),
            oneshot::channel().0,
        )
    }

    fn accept() -> Command {
        Command::Accept(
            NewPayment {
                id: CorrelationId::from_bytes([2; 16]),
                amount: Money::from_minor(100),
                payment_method: None,
                country: None,
                accepted_at: Timestamp::from_millis(0),
            },
            None,
            oneshot::channel().0,
        )
    }

    #[test]
    fn only_a_group_with_something_relied_on_waits_for_the_disk_and_only_when_stable() {
        use Durability::{Os, Stable};
        assert_eq!(Sync::for_group(Stable, &[finish(), finish()]), Sync::Normal);
        assert_eq!(Sync::for_group(Stable, &[finish(), accept()]), Sync::Full);
        assert_eq!(Sync::for_group(Os, &[finish(), accept()]), Sync::Normal);
    }

    #[test]
    fn outcomes_wait_for_company_and_an_accept_ends_the_wait() {
        let (tx, rx) = mpsc::channel();
        tx.send(accept()).unwrap();
        let mut batch = vec![finish()];
        gather_outcomes(&rx, &mut batch);
        assert_eq!(batch.len(), 2, "the accept joins the outcome's group");

        // An accept first: nothing waits.
        tx.send(finish()).unwrap();
        let mut batch = vec![accept()];
        gather_outcomes(&rx, &mut batch);
        assert_eq!(batch.len(), 1);

        // Outcomes alone: they go once the delay has passed.
        let mut batch = vec![finish()];
        gather_outcomes(&rx, &mut batch);
        assert_eq!(batch.len(), 2, "the queued outcome joins");
    }
}
