//! The embedded store's handle: [`SqliteStore`] opens the file for this
//! process alone (lock, migrations, WAL), starts the writer and the
//! checkpointer, sends writes to the writer and runs reads beside it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, mpsc};
use std::thread;

use rusqlite::{Connection, OpenFlags};
use tokio::sync::oneshot;

use super::commands::Command;
use super::lock::{Lock, lock};
use super::schema::{migrate, record_boot};
use super::writer::{
    Channel, Held, Inbox, Sync, Syncs, Writer, checkpoint_loop, write_loop, write_task,
};
use crate::{Durability, ProbeReport, StoreError, StoreFuture, StoreResult};

/// SQLite-backed [`Store`](crate::Store). Cloning shares the same writer.
#[derive(Clone)]
pub struct SqliteStore {
    pub(super) writer: Writer,
    pub(super) reader: Arc<Mutex<Connection>>,
    pub(super) path: PathBuf,
    /// The latest probe report per processor: only this instance reads them.
    pub(super) probes: Arc<Mutex<BTreeMap<String, ProbeReport>>>,
    /// This open's run id: the holder of the payments it accepts.
    pub(super) run: [u8; 16],
    /// Set once a reclaim has handed back every payment previous runs left
    /// pending (`Store::reclaim`).
    pub(super) reclaimed_all: Arc<AtomicBool>,
    /// Closed once the lock is released ([`SqliteStore::released`]).
    pub(super) released: tokio::sync::watch::Receiver<()>,
    /// Dropped with the last clone, after `writer` (fields drop in order,
    /// so every sender of commands is gone by then): stops the threads and
    /// releases the file.
    pub(super) _running: Arc<Running>,
}

/// The threads of one open and the lock that keeps the file to it.
pub(super) struct Running {
    writer: Option<thread::JoinHandle<()>>,
    /// Dropping it tells the checkpointer to stop.
    stop_checkpoints: Option<mpsc::Sender<()>>,
    checkpointer: Option<thread::JoinHandle<()>>,
    /// Holds the OS lock until dropped, after the threads are gone. A
    /// writer task holds it instead, and drops it once its last commit is
    /// done (so after the last clone is dropped, the file is free again a
    /// moment later, when the task has run: [`SqliteStore::released`]).
    _lock: Option<Lock>,
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
        let released = lock.watch();
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
        let boot = crate::boot::boot_id();
        let boot_known = crate::boot::is_known(&boot);
        if boot_known {
            let marked = record_boot(&mut writer_conn, &boot)?;
            if marked > 0 {
                tracing::warn!(
                    payments = marked,
                    "the store was last opened before a kernel crash or a reboot: its pending payments are looked up at every processor before any send"
                );
            }
        }
        let syncs = Syncs::new(durability, boot_known);
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
        let inbox = Arc::new(Inbox::default());
        let held = Held::new(Arc::clone(&inbox));
        let channel = match runtime {
            Some(runtime) => {
                let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
                runtime.spawn(write_task(writer_conn, rx, held, run, syncs, lock));
                Channel::Task(tx)
            }
            None => {
                let (tx, rx) = mpsc::channel();
                running._lock = Some(lock);
                running.writer = Some(
                    thread::Builder::new()
                        .name("store-writer".into())
                        .spawn(move || write_loop(writer_conn, rx, held, run, syncs))
                        .map_err(|e| {
                            StoreError::Unavailable(format!("cannot start the writer: {e}"))
                        })?,
                );
                Channel::Thread(tx)
            }
        };
        let writer = Writer { channel, inbox };
        Ok(Self {
            writer,
            reader: Arc::new(Mutex::new(reader)),
            path,
            probes: Arc::default(),
            run,
            reclaimed_all: Arc::default(),
            released,
            _running: Arc::new(running),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Resolves once this open has let go of the file — its writer's last
    /// commit done, its lock released — so that a store opened after it,
    /// in this process or another, finds the file free. That takes every
    /// clone of this store to be dropped. With a writer thread it is so as
    /// soon as the last clone is gone; a writer task (at
    /// [`Durability::Os`]) needs its runtime to run it once more, so a
    /// runtime about to stop awaits this first.
    pub fn released(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut released = self.released.clone();
        async move { while released.changed().await.is_ok() {} }
    }

    pub(super) fn send<T: Send + 'static>(
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

    pub(super) fn read<T: Send + 'static>(
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
