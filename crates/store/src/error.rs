//! What can go wrong in a store, in the words every engine shares: the
//! server maps each [`StoreError`] to one answer (503 while unavailable,
//! a start-up failure when misconfigured or in use), whichever engine
//! stood behind the write.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The engine cannot be reached or refused the operation; retrying later
    /// may succeed. A write that failed this way may or may not stand.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    #[error("the store has shut down")]
    Closed,
    /// The configuration cannot work (bad URL, schema newer than this
    /// build): retrying will not help.
    #[error("the store is misconfigured: {0}")]
    Misconfigured(String),
    /// Another process has this embedded store's file open. One file serves
    /// one process: two would each take the other's pending payments for
    /// a previous run's and send them again. `holder` is that process's id
    /// when its lock file tells it.
    #[error(
        "{} is in use by {}: one embedded store serves one process at a time; \
         stop that process or use another file (lock file {})",
        .path.display(),
        holder_text(*.holder),
        lock_path(.path).display()
    )]
    InUse { path: PathBuf, holder: Option<u32> },
}

fn holder_text(holder: Option<u32>) -> String {
    match holder {
        Some(pid) => format!("another process (PID {pid})"),
        None => "another process".to_owned(),
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Unavailable(e.to_string())
    }
}

/// The file beside `db` whose OS lock says which process has an embedded
/// store (the embedded engine takes it; [`StoreError::InUse`] names it).
pub(crate) fn lock_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

pub type StoreResult<T> = Result<T, StoreError>;
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = StoreResult<T>> + Send + 'a>>;
