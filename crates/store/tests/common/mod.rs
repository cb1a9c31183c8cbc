//! Fresh state for each test, on either engine.
//!
//! An [`Engine`] is one test's database; [`Engine::open`] starts a new
//! instance on it (for SQLite, a new run of the one instance: a reopen). The
//! PostgreSQL engine gives each test its own schema, dropped at the end, so
//! tests and test binaries running in parallel never see each other's rows.
//! It reads `DATABASE_URL` and falls back to the local test database: it
//! never skips.

#![allow(dead_code, unused_macros)] // each test binary uses its own part of the harness

use std::time::Duration;

use reroute_core::{CorrelationId, Money, Timestamp};
use reroute_store::{Attempt, NewPayment, PostgresConfig, PostgresStore, SqliteStore, Store};

pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The lease of test instances: short, so that "crashed" instances' payments
/// are orphaned quickly.
pub const LEASE: Duration = Duration::from_millis(400);

/// The lease of instances that must keep their payments for the whole test
/// without renewing ([`Engine::open_holding`]).
pub const HOLDING: Duration = Duration::from_secs(120);

pub trait Engine: Sized {
    type Store: Store + Clone;
    /// What [`Store::exclusive`] must say.
    const EXCLUSIVE: bool;

    /// A fresh, empty database.
    async fn new() -> Self;

    /// A new instance on this database (a reopen, for the embedded engine).
    async fn open(&self) -> Self::Store;

    /// A new instance whose lease outlasts the test without renewals, for
    /// work that must not depend on how fast a loaded machine runs it.
    async fn open_holding(&self) -> Self::Store {
        self.open().await
    }

    /// Every lease taken so far has run out when this returns.
    async fn outlive_leases(&self);
}

pub struct Sqlite {
    dir: tempfile::TempDir,
}

impl Engine for Sqlite {
    const EXCLUSIVE: bool = true;
    type Store = SqliteStore;

    async fn new() -> Self {
        Sqlite {
            dir: tempfile::tempdir().expect("a temporary directory"),
        }
    }

    async fn open(&self) -> SqliteStore {
        SqliteStore::open(self.dir.path().join("reroute.db")).expect("the embedded store opens")
    }

    async fn outlive_leases(&self) {}
}

pub fn database_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_string())
}

pub struct Postgres {
    pub url: String,
    pub schema: String,
}

impl Postgres {
    /// The configuration of an instance on this test's schema.
    pub fn config(&self) -> PostgresConfig {
        PostgresConfig {
            instance: "test".into(),
            lease: LEASE,
            schema: Some(self.schema.clone()),
            ..PostgresConfig::new(&self.url)
        }
    }

    pub async fn open_with(&self, config: PostgresConfig) -> PostgresStore {
        PostgresStore::connect(config)
            .await
            .unwrap_or_else(|e| panic!("cannot reach PostgreSQL at {}: {e}", self.url))
    }

    /// Ends every lease held now, as if their holders had died long ago:
    /// for a test whose "crashed" instance must hold its payments through a
    /// setup slower than [`LEASE`] on a slow machine.
    pub async fn expire_leases(&self) {
        self.client()
            .await
            .execute(
                "UPDATE holders SET lease_until = clock_timestamp() - interval '1 second'",
                &[],
            )
            .await
            .expect("the leases end");
    }

    /// A plain connection on this test's schema, to look under the store.
    pub async fn client(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls)
            .await
            .expect("a direct connection");
        tokio::spawn(connection);
        client
            .batch_execute(&format!("SET search_path = {}", self.schema))
            .await
            .expect("the schema exists");
        client
    }
}

impl Engine for Postgres {
    const EXCLUSIVE: bool = false;
    type Store = PostgresStore;

    async fn new() -> Self {
        let suffix = &uuid_like()[..16];
        Postgres {
            url: database_url(),
            schema: format!("t_{suffix}"),
        }
    }

    async fn open(&self) -> PostgresStore {
        self.open_with(self.config()).await
    }

    async fn open_holding(&self) -> PostgresStore {
        self.open_with(PostgresConfig {
            lease: HOLDING,
            ..self.config()
        })
        .await
    }

    /// Ends them in the database rather than sleeping past them: a sleep
    /// is as long as [`LEASE`] only on a machine fast enough for the setup.
    async fn outlive_leases(&self) {
        self.expire_leases().await;
    }
}

impl Drop for Postgres {
    /// Drops the schema, from a thread of its own: Drop cannot await, and the
    /// test's runtime may be a single thread.
    fn drop(&mut self) {
        let url = self.url.clone();
        let schema = self.schema.clone();
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
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
        if let Ok(Err(e)) = dropped {
            eprintln!("could not drop the test schema {}: {e}", self.schema);
        }
    }
}

/// 32 lower-case hex digits, fresh each call.
fn uuid_like() -> String {
    CorrelationId::new_random().as_uuid().simple().to_string()
}

pub fn payment(cents: i64, at: i64) -> NewPayment {
    NewPayment {
        id: CorrelationId::new_random(),
        amount: Money::from_minor(cents),
        payment_method: None,
        country: None,
        accepted_at: Timestamp::from_millis(at),
    }
}

pub fn attempt(processor: &str, at: i64) -> Attempt {
    Attempt {
        processor: processor.into(),
        requested_at: Timestamp::from_millis(at),
    }
}

/// One `#[tokio::test]` per behaviour and engine: `sqlite::name` and
/// `postgres::name`.
macro_rules! behaviours {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name::<crate::common::Sqlite>().await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name::<crate::common::Postgres>().await
                }
            )*
        }
    };
}
