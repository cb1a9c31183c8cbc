//! Where the routers of a crash or chaos run keep their queue and ledger:
//! the `--store` choice, read once, and the store it names set up fresh for
//! the run (a new SQLite file, a private PostgreSQL cluster, or a scratch
//! database on a server the bench does not own), removed at the end.
//!
//! Both benches take the same `--store` values; each decides which of them
//! suits it (the crash bench restarts only a private cluster, the chaos
//! bench's `pg-pause` needs PostgreSQL).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};

use crate::fleet::RouterStore;
use crate::pg_cluster::{PrivateCluster, ScratchDatabase};

/// The `--store` values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorePlan {
    /// One embedded store (SQLite file) for the one instance.
    Sqlite,
    /// The shipped Rinha shape: instance 1 is a core on one embedded store,
    /// the others `reroute edge` processes in front of it.
    Edges,
    /// A PostgreSQL cluster of the bench's own.
    Private,
    /// A scratch database on the server at this URL.
    Shared(String),
}

impl StorePlan {
    /// Reads a `--store` value.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        Ok(match text {
            "sqlite" => StorePlan::Sqlite,
            "edges" => StorePlan::Edges,
            "private-postgres" | "private" => StorePlan::Private,
            url if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                StorePlan::Shared(url.to_owned())
            }
            other => bail!(
                "--store must be sqlite, edges, private-postgres or a postgres:// URL, \
                 got {other:?}"
            ),
        })
    }

    /// Whether the instances share one PostgreSQL database.
    pub fn is_postgres(&self) -> bool {
        matches!(self, StorePlan::Private | StorePlan::Shared(_))
    }
}

/// The store of one run, set up and ready for the routers.
pub struct RunStore {
    pub store: RouterStore,
    /// How the report names it.
    pub name: String,
    cluster: Option<Arc<PrivateCluster>>,
    scratch: Option<ScratchDatabase>,
}

impl RunStore {
    /// Sets up what `plan` names: files go to `dir`,
    /// a scratch database is named `<scratch_prefix>_<random>`, a private
    /// cluster uses the binaries in `pg_bin` (else the usual places).
    pub async fn set_up(
        plan: &StorePlan,
        dir: &Path,
        pg_bin: Option<PathBuf>,
        scratch_prefix: &str,
    ) -> anyhow::Result<Self> {
        let fresh = |store, name: &str| RunStore {
            store,
            name: name.to_owned(),
            cluster: None,
            scratch: None,
        };
        Ok(match plan {
            StorePlan::Sqlite => fresh(RouterStore::Sqlite(dir.join("reroute.db")), "sqlite"),
            StorePlan::Edges => fresh(
                RouterStore::Edges {
                    dir: dir.to_path_buf(),
                },
                "edges (one core on the embedded store, the other instances edges in front of it)",
            ),
            StorePlan::Private => {
                let started =
                    tokio::task::spawn_blocking(move || PrivateCluster::start(pg_bin.as_deref()))
                        .await
                        .context("starting PostgreSQL")??;
                let mut run = fresh(RouterStore::Postgres(started.url()), "private-postgres");
                run.cluster = Some(Arc::new(started));
                run
            }
            StorePlan::Shared(url) => {
                let db = ScratchDatabase::create(url, scratch_prefix).await?;
                let mut run = fresh(
                    RouterStore::Postgres(db.url()),
                    "postgres (scratch database)",
                );
                run.scratch = Some(db);
                run
            }
        })
    }

    /// The private cluster, for a bench that restarts it.
    pub fn cluster(&self) -> Option<Arc<PrivateCluster>> {
        self.cluster.clone()
    }

    /// Removes what was set up (call it once the routers are stopped): the
    /// scratch database is dropped, the private cluster stopped once its
    /// last user lets it go. Returns what could not be removed, as warnings
    /// for the report.
    pub async fn remove(self) -> Vec<String> {
        drop(self.cluster);
        let mut warnings = Vec::new();
        if let Some(db) = self.scratch
            && let Err(e) = db.remove().await
        {
            warnings.push(format!("cannot drop the scratch database: {e:#}"));
        }
        warnings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_store_value_reads_and_a_wrong_one_is_named() {
        assert_eq!(StorePlan::parse("sqlite").unwrap(), StorePlan::Sqlite);
        assert_eq!(StorePlan::parse("edges").unwrap(), StorePlan::Edges);
        assert_eq!(StorePlan::parse("private").unwrap(), StorePlan::Private);
        let url = "postgres://postgres@127.0.0.1:5432/test";
        assert_eq!(
            StorePlan::parse(url).unwrap(),
            StorePlan::Shared(url.into())
        );
        assert!(StorePlan::parse(url).unwrap().is_postgres());
        assert!(!StorePlan::Sqlite.is_postgres());
        let err = StorePlan::parse("mysql://x").unwrap_err().to_string();
        assert!(err.contains("\"mysql://x\""), "{err}");
    }
}
