//! Where a crash or chaos run keeps the routers' logs and store: a
//! directory given on the command line (always kept), or a temporary one,
//! removed when the run ends well and kept otherwise (a failed audit, or an
//! error on the way), so that the logs can be read.

use std::path::{Path, PathBuf};

use anyhow::Context;

pub struct WorkDir {
    path: PathBuf,
    /// A temporary directory still to be removed or kept.
    temporary: Option<tempfile::TempDir>,
}

impl WorkDir {
    pub fn new(given: Option<PathBuf>, prefix: &str) -> anyhow::Result<Self> {
        match given {
            Some(dir) => {
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
                Ok(Self {
                    path: dir,
                    temporary: None,
                })
            }
            None => {
                let dir = tempfile::Builder::new()
                    .prefix(prefix)
                    .tempdir()
                    .context("creating a work directory")?;
                Ok(Self {
                    path: dir.path().to_path_buf(),
                    temporary: Some(dir),
                })
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Ends the run: the path when the directory stays (given, or `keep`);
    /// a temporary directory not kept is removed.
    pub fn finish(mut self, keep: bool) -> Option<PathBuf> {
        match self.temporary.take() {
            Some(dir) if !keep => {
                drop(dir);
                None
            }
            _ => Some(self.path.clone()),
        }
    }
}

impl Drop for WorkDir {
    /// Not finished: the run stopped on an error; its logs stay.
    fn drop(&mut self) {
        if let Some(dir) = self.temporary.take() {
            let kept = dir.keep();
            eprintln!("the routers' logs are kept in {}", kept.display());
        }
    }
}
