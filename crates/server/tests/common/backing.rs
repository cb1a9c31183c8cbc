//! The store under a test: the embedded store in a temporary directory or
//! PostgreSQL in a schema of the test's own, `on_both_stores!` to run a test
//! on each, and what a store holds, to check that nothing was lost or added.

use std::sync::Arc;
use std::time::Duration;

use reroute_store::{PostgresConfig, PostgresStore, SqliteStore, Store};

/// Which store a test runs on. Tests of behaviour run on both (see
/// `on_both_stores!`): the embedded store in a temporary directory, or
/// PostgreSQL (`DATABASE_URL`, default the local test database — never
/// skipped) in a schema of the test's own, dropped at the end.
pub enum Backing {
    Embedded(tempfile::TempDir),
    Postgres { url: String, schema: String },
}

impl Backing {
    pub fn embedded() -> Self {
        Backing::Embedded(tempfile::tempdir().unwrap())
    }

    pub fn postgres() -> Self {
        let url = std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let id = reroute_core::CorrelationId::new_random()
            .to_string()
            .replace('-', "");
        Backing::Postgres {
            url,
            schema: format!("srv_{}", &id[..16]),
        }
    }

    /// The embedded database file (unused on PostgreSQL).
    pub fn db(&self) -> std::path::PathBuf {
        match self {
            Backing::Embedded(dir) => dir.path().join("r.db"),
            Backing::Postgres { .. } => std::path::PathBuf::from("unused.db"),
        }
    }

    /// A store for one run of the router; on PostgreSQL each call is a new
    /// instance (a restart), with a short lease so that a stopped
    /// instance's payments are taken over quickly.
    pub async fn open(&self) -> Arc<dyn Store> {
        self.open_as("test").await
    }

    /// As [`Backing::open`], on PostgreSQL as the instance `instance`: two
    /// names are two live instances sharing the database.
    pub async fn open_as(&self, instance: &str) -> Arc<dyn Store> {
        match self {
            Backing::Embedded(dir) => Arc::new(SqliteStore::open(dir.path().join("r.db")).unwrap()),
            Backing::Postgres { url, schema } => {
                let config = PostgresConfig {
                    instance: instance.into(),
                    lease: Duration::from_millis(1_000),
                    schema: Some(schema.clone()),
                    ..PostgresConfig::new(url.clone())
                };
                Arc::new(PostgresStore::connect(config).await.unwrap_or_else(|e| {
                    panic!("cannot reach PostgreSQL at {url} (set DATABASE_URL): {e}")
                }))
            }
        }
    }
}

impl Drop for Backing {
    fn drop(&mut self) {
        let Backing::Postgres { url, schema } = self else {
            return;
        };
        let (url, schema) = (url.clone(), schema.clone());
        // Drop cannot await, and the test's runtime may be single-threaded.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let (client, connection) =
                    tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
                tokio::spawn(connection);
                client
                    .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                    .await
            })
        })
        .join();
    }
}

/// Runs each named `async fn(Backing)` as two tests, `embedded::name` and
/// `postgres::name`.
#[macro_export]
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::common::backing::Backing::embedded()).await })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::common::backing::Backing::postgres()).await })*
        }
    };
}

/// Every payment the store holds, pending or in the ledger, with its amount.
pub async fn stored_payments(
    store: &dyn Store,
) -> std::collections::BTreeMap<reroute_core::CorrelationId, reroute_core::Money> {
    let mut all: std::collections::BTreeMap<_, _> = store
        .pending()
        .await
        .unwrap()
        .into_iter()
        .map(|p| (p.payment.id, p.payment.amount))
        .collect();
    all.extend(
        store
            .ledger()
            .await
            .unwrap()
            .into_iter()
            .map(|e| (e.id, e.amount)),
    );
    all
}
