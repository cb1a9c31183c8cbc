//! One instance's handle on the shared engine: [`PostgresStore`] connects
//! (pools, migrations, its first lease), starts the writer tasks, and routes
//! each write to them and each read to the pool.

use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;
use tokio::sync::{Mutex, mpsc, oneshot};
use uuid::Uuid;

use super::config::{PostgresConfig, is_identifier};
use super::failure::{bounded, unavailable, unavailable_pool};
use super::leases::RENEW;
use super::pool::{WRITER_SETTINGS, build_pool, get};
use super::schema::migrate;
use super::writer::{MAX_BATCH, Writers, write_loop};
use crate::write::Write;
use crate::{Durability, Observer, StoreError, StoreFuture, StoreResult};

/// PostgreSQL-backed [`Store`](crate::Store). Cloning shares the pool, the writers and the
/// identity: one `PostgresStore` (and its clones) is one instance.
#[derive(Clone)]
pub struct PostgresStore {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) pool: Pool,
    /// Accepts and attempts: committed once the WAL is flushed (at
    /// [`Durability::Stable`]).
    pub(super) writes: mpsc::Sender<Write>,
    /// Outcomes: committed without waiting for the flush.
    pub(super) outcomes: mpsc::Sender<Write>,
    /// The holder name of this instance's leases: `instance/random`.
    pub(super) holder: Arc<str>,
    pub(super) lease_ms: i64,
    /// The client-side bound of one operation.
    pub(super) bound: Duration,
    pub(super) observer: Option<Arc<dyn Observer>>,
    /// The writer tasks end once every clone is dropped and the writes
    /// already sent are applied.
    pub(super) _writers: Vec<tokio::task::JoinHandle<()>>,
}

impl PostgresStore {
    /// As [`PostgresStore::connect`], waiting for PostgreSQL while it cannot
    /// be reached, so that an instance started during an outage (or before
    /// its database) comes up once the database is back instead of exiting.
    /// Each failed try is passed to `on_wait` (its number, the error) before
    /// a pause of 250 ms, doubling up to 5 s. A misconfiguration (bad URL or
    /// schema, refused credentials, unknown database) fails at once.
    pub async fn connect_patiently(
        config: PostgresConfig,
        mut on_wait: impl FnMut(u32, &StoreError),
    ) -> StoreResult<Self> {
        let mut pause = Duration::from_millis(250);
        let mut tries = 0u32;
        loop {
            match Self::connect(config.clone()).await {
                Err(e @ StoreError::Unavailable(_)) => {
                    tries = tries.saturating_add(1);
                    on_wait(tries, &e);
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(5));
                }
                done => return done,
            }
        }
    }

    /// Connects, applies pending migrations (one instance at a time: the
    /// others wait on an advisory lock) and starts the writer tasks. Must be
    /// called inside a Tokio runtime.
    pub async fn connect(config: PostgresConfig) -> StoreResult<Self> {
        if let Some(schema) = config.schema.as_deref().filter(|s| !is_identifier(s)) {
            return Err(StoreError::Misconfigured(format!(
                "schema {schema:?} must be lower-case letters, digits and _"
            )));
        }
        let mut pg = tokio_postgres::Config::from_str(&config.url)
            .map_err(|e| StoreError::Misconfigured(format!("invalid database URL: {e}")))?;
        let timeout_ms = config.statement_timeout.as_millis().max(1);
        let mut options = pg.get_options().unwrap_or_default().to_owned();
        options.push_str(&format!(
            " -c statement_timeout={timeout_ms} -c idle_in_transaction_session_timeout={timeout_ms}"
        ));
        if let Some(schema) = &config.schema {
            options.push_str(&format!(" -c search_path={schema}"));
        }
        if config.durability == Durability::Os {
            options.push_str(" -c synchronous_commit=off");
        }
        let holder = format!(
            "{}/{}",
            config.instance,
            &Uuid::new_v4().simple().to_string()[..12]
        );
        let bound = config.statement_timeout + Duration::from_secs(2);
        pg.application_name(format!("reroute {holder}"))
            .connect_timeout(config.statement_timeout)
            .keepalives_idle(Duration::from_secs(10))
            .keepalives_interval(Duration::from_secs(2))
            .keepalives_retries(3)
            .tcp_user_timeout(bound);
        // Statements are prepared once per connection, often while the table
        // is young and has no statistics; a plan made then could stay cached
        // as the table grows and scan every row, or every pending one, on
        // each call. The writers only ever look payments up by id: they are
        // told never to scan the table, and keep their cheap generic plans.
        // Everything else is planned on each call with its real arguments
        // (rare statements: planning costs far less than the round trip).
        let pool = build_pool(
            &pg,
            &options,
            "plan_cache_mode=force_custom_plan",
            config.pool_size,
            bound,
        )?;
        let write_pool = build_pool(&pg, &options, WRITER_SETTINGS, config.writers.max(1), bound)?;
        // Outcomes need no sync of their own (one lost in a crash of
        // PostgreSQL leaves the payment pending with its attempt, resolved
        // again at its processor): their commits do not wait for the WAL
        // flush, and the next accept's flush carries them to disk.
        let outcome_pool = build_pool(
            &pg,
            &options,
            &format!("{WRITER_SETTINGS} -c synchronous_commit=off"),
            1,
            bound,
        )?;

        bounded(
            bound,
            migrate(&pool, config.schema.as_deref(), config.durability),
        )
        .await?;
        let lease_ms = i64::try_from(config.lease.as_millis()).unwrap_or(i64::MAX);
        // This instance's lease, before it accepts anything.
        bounded(bound, async {
            let client = pool.get().await.map_err(unavailable_pool)?;
            client
                .execute(RENEW, &[&holder, &lease_ms])
                .await
                .map_err(unavailable)
        })
        .await?;

        let (writes, receiver) = mpsc::channel(MAX_BATCH * 4);
        let receiver = Arc::new(Mutex::new(receiver));
        let (outcomes, outcome_receiver) = mpsc::channel(MAX_BATCH * 4);
        let holder: Arc<str> = holder.into();
        let writer = |pool: &Pool| Writers {
            pool: pool.clone(),
            holder: Arc::clone(&holder),
            bound,
            observer: config.observer.clone(),
        };
        let mut writers: Vec<_> = (0..config.writers.max(1))
            .map(|_| tokio::spawn(write_loop(writer(&write_pool), Arc::clone(&receiver))))
            .collect();
        writers.push(tokio::spawn(write_loop(
            writer(&outcome_pool),
            Arc::new(Mutex::new(outcome_receiver)),
        )));
        tracing::info!(%holder, "connected to PostgreSQL");
        Ok(Self {
            inner: Arc::new(Inner {
                pool,
                writes,
                outcomes,
                holder,
                lease_ms,
                bound,
                observer: config.observer,
                _writers: writers,
            }),
        })
    }

    /// The name this instance's leases and leadership are held under.
    pub fn holder(&self) -> &str {
        &self.inner.holder
    }

    pub(super) fn write<T: Send + 'static>(
        &self,
        make: impl FnOnce(oneshot::Sender<StoreResult<T>>) -> Write,
    ) -> StoreFuture<'_, T> {
        let (tx, rx) = oneshot::channel();
        let write = make(tx);
        let writers = match write {
            Write::Finish(..) => &self.inner.outcomes,
            _ => &self.inner.writes,
        };
        Box::pin(async move {
            writers.send(write).await.map_err(|_| StoreError::Closed)?;
            rx.await.map_err(|_| StoreError::Closed)?
        })
    }

    /// The `synchronous_commit` this instance's sessions run with: `off` at
    /// [`Durability::Os`], the server's setting otherwise.
    pub fn synchronous_commit(&self) -> StoreFuture<'_, String> {
        self.query(|client| async move {
            Ok(client
                .query_one("SELECT current_setting('synchronous_commit')", &[])
                .await?
                .get(0))
        })
    }

    /// Runs `query` on a pooled connection, within the client-side bound.
    pub(super) fn query<'a, T, F, Fut>(&'a self, query: F) -> StoreFuture<'a, T>
    where
        T: Send + 'a,
        F: FnOnce(deadpool_postgres::Client) -> Fut + Send + 'a,
        Fut: Future<Output = Result<T, tokio_postgres::Error>> + Send + 'a,
    {
        Box::pin(bounded(self.inner.bound, async move {
            let client = get(&self.inner.pool, self.inner.observer.as_deref()).await?;
            query(client).await.map_err(unavailable)
        }))
    }
}
