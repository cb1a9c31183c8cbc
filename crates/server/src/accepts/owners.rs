//! Who may hold a claim in the accept table, and whether they still live.
//!
//! Every process that claims slots (each edge, the core) is an owner: one of
//! [`MAX_OWNERS`] indices, held by an exclusive lock (`flock`) on the file
//! `<table>.owner<k>` for as long as the process lives. The kernel drops the
//! lock when the process dies, however it dies, and a lock on a shared
//! volume is seen from every container on the host: so "the lock is free"
//! means "its holder is dead", with no heartbeat and no clock. An index is
//! taken again by a later process; the index's incarnation, bumped by each
//! taker, tells a dead holder's claims from the new holder's.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// How many processes may claim slots at once (edges and the core).
pub const MAX_OWNERS: usize = 16;

/// The bits of an incarnation a claim carries.
pub const INCARNATION_MASK: u32 = (1 << 14) - 1;

/// This process's place among the owners; its lock lasts as long as it.
#[derive(Debug)]
pub struct Owner {
    pub index: u8,
    /// This holder's incarnation, as claims carry it.
    pub incarnation: u32,
    _lock: File,
}

/// The lock files of the table at `table`, and the ones opened to test.
#[derive(Debug)]
pub struct Owners {
    table: PathBuf,
    /// Opened once each, to test their locks.
    probes: Mutex<Vec<Option<File>>>,
}

/// Why no index could be taken.
#[derive(Debug, thiserror::Error)]
pub enum OwnerError {
    #[error("all {MAX_OWNERS} owner indices of {0} are held by live processes")]
    Full(String),
    #[error("cannot open the owner lock file {path}: {source}")]
    Open {
        path: String,
        source: std::io::Error,
    },
}

impl Owners {
    pub fn new(table: &Path) -> Self {
        Self {
            table: table.to_path_buf(),
            probes: Mutex::new((0..MAX_OWNERS).map(|_| None).collect()),
        }
    }

    fn path(&self, index: usize) -> PathBuf {
        let mut name = self.table.clone().into_os_string();
        name.push(format!(".owner{index}"));
        PathBuf::from(name)
    }

    fn open(&self, index: usize) -> Result<File, OwnerError> {
        let path = self.path(index);
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|source| OwnerError::Open {
                path: path.display().to_string(),
                source,
            })
    }

    /// Takes the first free index; `bump` turns the index into this
    /// holder's incarnation (the table's counter for it, incremented).
    pub fn take(&self, bump: impl Fn(usize) -> u32) -> Result<Owner, OwnerError> {
        for index in 0..MAX_OWNERS {
            let file = self.open(index)?;
            match file.try_lock() {
                Ok(()) => {
                    return Ok(Owner {
                        index: index as u8,
                        incarnation: bump(index) & INCARNATION_MASK,
                        _lock: file,
                    });
                }
                Err(TryLockError::WouldBlock) => continue,
                Err(TryLockError::Error(source)) => {
                    return Err(OwnerError::Open {
                        path: self.path(index).display().to_string(),
                        source,
                    });
                }
            }
        }
        Err(OwnerError::Full(self.table.display().to_string()))
    }

    /// Whether a process holds `index` now. A lock that cannot be tested
    /// counts as held: a claim is then waited for, never taken over.
    pub fn held(&self, index: usize) -> bool {
        let mut probes = self.probes.lock().unwrap_or_else(|p| p.into_inner());
        let Some(slot) = probes.get_mut(index) else {
            return false;
        };
        if slot.is_none() {
            *slot = self.open(index).ok();
        }
        let Some(file) = slot.as_ref() else {
            return true;
        };
        match file.try_lock() {
            Ok(()) => {
                // Free: its holder is dead. Let the next process have it.
                let _ = file.unlock();
                false
            }
            Err(TryLockError::WouldBlock) => true,
            Err(TryLockError::Error(_)) => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_index_is_held_while_its_owner_lives_and_free_once_it_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let owners = Owners::new(&dir.path().join("t.accepts"));
        let bumps = std::sync::atomic::AtomicU32::new(0);
        let bump = |_| bumps.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        let first = owners.take(bump).unwrap();
        let second = owners.take(bump).unwrap();
        assert_eq!((first.index, second.index), (0, 1));
        assert_ne!(first.incarnation, second.incarnation);
        assert!(owners.held(0) && owners.held(1));
        assert!(!owners.held(2), "nobody took index 2");
        drop(first);
        assert!(!owners.held(0), "a dropped owner's lock is free");
        // Testing a free lock does not keep it: the next process takes it.
        let third = owners.take(bump).unwrap();
        assert_eq!(third.index, 0);
        assert!(owners.held(0));
    }
}
