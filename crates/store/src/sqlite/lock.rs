//! One embedded store, one process: an OS lock on a file beside the
//! database, taken before anything else touches it, released by the OS
//! with the process (`kill -9` included).

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::Path;

use tokio::sync::watch;

use crate::error::lock_path;
use crate::{StoreError, StoreResult};

/// The lock of one open. Dropping it releases the file, then (fields drop
/// in order) closes the channel every [`Lock::watch`] receiver is on.
pub(super) struct Lock {
    _file: File,
    released: watch::Sender<()>,
}

impl Lock {
    /// A receiver whose channel closes once the file is free again.
    pub(super) fn watch(&self) -> watch::Receiver<()> {
        self.released.subscribe()
    }
}

/// Takes the lock of the store at `db` for this process, or says which
/// process has it. The lock file is left in place when released: removing
/// it would let two processes lock two different files of the same name.
pub(super) fn lock(db: &Path) -> StoreResult<Lock> {
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
            Ok(Lock {
                _file: file,
                released: watch::channel(()).0,
            })
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
