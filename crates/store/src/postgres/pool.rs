//! The connections: pools built with the session settings each use needs
//! (reads planned per call, writers that never scan the table, outcomes
//! that do not wait for the WAL flush), and the timed wait for one.

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

use super::failure::unavailable_pool;
use crate::{Observer, Step, StoreError, StoreResult};

/// The planner settings of the writers' connections (`-c` options, the
/// first without its `-c`): they look payments up by id and never scan the
/// table, whatever the statistics say; and they join a group's arrays to
/// its rows by hashing, never by a nested loop, which compares every write
/// with every row (a group of 1,000 outcomes: a million comparisons, 250 ms
/// instead of 9 ms; docs/postgres.md).
pub const WRITER_SETTINGS: &str = "enable_seqscan=off -c enable_nestloop=off";

/// A pool of connections with `options` and `setting` (`-c name=value`).
pub(super) fn build_pool(
    pg: &tokio_postgres::Config,
    options: &str,
    setting: &str,
    size: usize,
    bound: Duration,
) -> StoreResult<Pool> {
    let mut pg = pg.clone();
    pg.options(format!("{options} -c {setting}").trim());
    let manager = Manager::from_config(
        pg,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(size.max(1))
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(bound))
        .create_timeout(Some(bound))
        .recycle_timeout(Some(bound))
        .build()
        .map_err(|e| StoreError::Misconfigured(format!("cannot build the pool: {e}")))
}

/// A connection of `pool`, the wait reported to `observer`.
pub(super) async fn get(
    pool: &Pool,
    observer: Option<&dyn Observer>,
) -> StoreResult<deadpool_postgres::Client> {
    let started = std::time::Instant::now();
    let client = pool.get().await.map_err(unavailable_pool);
    if let Some(observer) = observer {
        observer.observe(Step::PoolWait, started.elapsed());
    }
    client
}
