//! The shared engine: PostgreSQL as the queue and ledger of several
//! instances.
//!
//! Every instance accepts into the same `payments` table and reads the same
//! ledger, so any of them answers a summary for all. A pending payment is
//! *held* by the instance that accepted it, while that instance's lease (one
//! row per instance, on the database's clock) is renewed; when an instance
//! dies its lease runs out and the others take its payments over with `FOR UPDATE SKIP
//! LOCKED`, each exactly once, with their open attempts. An attempt is
//! recorded only by the holder, so an instance that lost a payment (it
//! stalled past its lease) can no longer send it to another processor. One
//! `leaders` row, also on a lease, says which instance probes processor
//! health; the `probes` table carries what it learns to the others.
//!
//! Writes of the request path (accept, begin an attempt, finish) are sent to
//! a few writer tasks; each takes every write waiting at that moment and
//! applies them in one statement, so one commit (one WAL flush) and one round
//! trip carry a whole group, as the embedded engine's writer does. Every
//! statement runs under a server-side `statement_timeout` and a client-side
//! bound; a database that cannot be reached makes operations fail with
//! [`StoreError::Unavailable`], and the pool reconnects when it is back.
//!
//! See docs/postgres.md for the schema, the migrations and the figures.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use reroute_core::{CorrelationId, Money, Timestamp, Window};
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio_postgres::error::SqlState;
use tokio_postgres::{NoTls, Row};
use uuid::Uuid;

use crate::{
    Acceptance, Attempt, Durability, LedgerEntry, NewPayment, Observer, Outcome, PaymentRecord,
    PaymentState, PendingPayment, ProbeReport, Step, Store, StoreError, StoreFuture, StoreResult,
    Totals,
};

/// The most writes one statement carries.
pub const MAX_BATCH: usize = 1024;

/// The planner settings of the writers' connections (`-c` options, the
/// first without its `-c`): they look payments up by id and never scan the
/// table, whatever the statistics say; and they join a group's arrays to
/// its rows by hashing, never by a nested loop, which compares every write
/// with every row (a group of 1,000 outcomes: a million comparisons, 250 ms
/// instead of 9 ms; docs/postgres.md).
pub const WRITER_SETTINGS: &str = "enable_seqscan=off -c enable_nestloop=off";

// States: 0 pending, 1 processed, 2 declined, 3 duplicate (unused here: a
// shared store never holds a payment twice). `lease_until` is set exactly
// while a payment is pending (to when it was accepted or taken over; the
// lease itself is its holder's, in `holders`); queries over pending payments
// say `lease_until IS NOT NULL`, which the pending index matches. The writes
// of the request path find their rows by `id = ANY(ids)` and check `state =
// 0`, which that index does not match: their only plan is a look-up by id,
// never a scan of every pending payment, whatever the statistics say (there
// are none while the table is young). Statements spell the states out so
// that the planner matches the ledger's partial index.
const STATE_PENDING: i16 = 0;
const STATE_PROCESSED: i16 = 1;
const STATE_DECLINED: i16 = 2;
const STATE_DUPLICATE: i16 = 3;

/// Schema versions, applied in order at start-up; `schema_migrations` records
/// which ran. Never edit one that has shipped: add the next.
const MIGRATIONS: &[&str] = &[
    "
    CREATE TABLE payments (
        id             uuid PRIMARY KEY,
        amount         bigint NOT NULL,
        payment_method text,
        country        text,
        accepted_at    bigint NOT NULL,
        state          smallint NOT NULL,
        processor      text,
        requested_at   bigint,
        holder         text NOT NULL,
        lease_until    timestamptz,
        CONSTRAINT leased_while_pending CHECK ((state = 0) = (lease_until IS NOT NULL))
    );
    CREATE INDEX payments_pending_by_lease ON payments (lease_until)
        WHERE lease_until IS NOT NULL;
    CREATE INDEX payments_processed_by_requested_at ON payments (requested_at)
        INCLUDE (processor, amount) WHERE state = 1;
    CREATE TABLE leaders (
        role   text PRIMARY KEY,
        holder text NOT NULL,
        until  timestamptz NOT NULL
    );
    CREATE TABLE probes (
        processor       text PRIMARY KEY,
        failing         boolean NOT NULL,
        min_response_ms bigint NOT NULL,
        at              bigint NOT NULL
    );
",
    "
    -- Leases per instance, not per payment: a renewal is one row, whatever
    -- the backlog (renewing every pending row locked them against the
    -- writers' outcomes and deadlocked with them: docs/postgres.md).
    -- payments.lease_until stays set exactly while pending, as the pending
    -- index's key; it is no longer renewed.
    CREATE TABLE holders (
        holder      text PRIMARY KEY,
        lease_until timestamptz NOT NULL
    );
",
];

/// An instant `$n` milliseconds from now on the database's clock: leases of
/// all instances are measured on this one clock, so skew between hosts does
/// not matter.
macro_rules! from_now {
    ($n:literal) => {
        concat!(
            "clock_timestamp() + $",
            $n,
            "::int8 * interval '1 millisecond'"
        )
    };
}

/// How to reach the database and how this instance behaves among the others.
#[derive(Debug, Clone)]
pub struct PostgresConfig {
    /// `postgres://user@host:port/db` (or key=value). TLS is not supported:
    /// reach the database over a private network or a local socket.
    pub url: String,
    /// A readable name for this instance (host, container); each connect
    /// adds a random suffix, so a restarted instance never mistakes its
    /// previous run's payments for ones it is working on.
    pub instance: String,
    /// How long a payment stays held without renewal. Longer than the
    /// processor timeout plus the renewal period: a payment is taken over
    /// only once its holder can no longer be sending it.
    pub lease: Duration,
    /// Connections for reads, leases and leadership; each writer has one
    /// more of its own.
    pub pool_size: usize,
    /// Server-side limit of each statement; the client gives up a little
    /// after it, so an unreachable database is noticed too.
    pub statement_timeout: Duration,
    /// Writer tasks applying groups of writes at once (each uses one
    /// connection while it writes).
    pub writers: usize,
    /// A schema to keep the tables in (created if missing), instead of the
    /// connection's default `search_path`. Lets tests, or several
    /// deployments, share one database.
    pub schema: Option<String>,
    /// [`Durability::Os`]: this instance's commits do not wait for the
    /// server's WAL flush (`synchronous_commit = off` on its connections):
    /// a crash of any reroute process loses nothing, a crash of PostgreSQL,
    /// of its kernel or a power loss may lose the last commits (up to three
    /// times `wal_writer_delay`, 0.6 s by default).
    pub durability: Durability,
    /// Told how long pool waits and groups of writes take.
    pub observer: Option<Arc<dyn Observer>>,
}

impl PostgresConfig {
    /// The defaults: lease 10 s, 4 + 2 connections, statements 5 s, 2
    /// writers.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            instance: "reroute".into(),
            lease: Duration::from_secs(10),
            pool_size: 4,
            statement_timeout: Duration::from_secs(5),
            writers: 2,
            schema: None,
            durability: Durability::default(),
            observer: None,
        }
    }
}

/// PostgreSQL-backed [`Store`]. Cloning shares the pool, the writers and the
/// identity: one `PostgresStore` (and its clones) is one instance.
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    /// Accepts and attempts: committed once the WAL is flushed (at
    /// [`Durability::Stable`]).
    writes: mpsc::Sender<Write>,
    /// Outcomes: committed without waiting for the flush.
    outcomes: mpsc::Sender<Write>,
    /// The holder name of this instance's leases: `instance/random`.
    holder: Arc<str>,
    lease_ms: i64,
    /// The client-side bound of one operation.
    bound: Duration,
    observer: Option<Arc<dyn Observer>>,
    /// The writer tasks end once every clone is dropped and the writes
    /// already sent are applied.
    _writers: Vec<tokio::task::JoinHandle<()>>,
}

/// A write of the request path, waiting for a writer task.
enum Write {
    Accept(
        NewPayment,
        Option<Attempt>,
        oneshot::Sender<StoreResult<Acceptance>>,
    ),
    BeginAttempt(CorrelationId, Attempt, oneshot::Sender<StoreResult<bool>>),
    Finish(CorrelationId, Outcome, oneshot::Sender<StoreResult<bool>>),
}

impl Write {
    fn id(&self) -> CorrelationId {
        match self {
            Write::Accept(p, _, _) => p.id,
            Write::BeginAttempt(id, _, _) | Write::Finish(id, _, _) => *id,
        }
    }

    fn fail(self, e: StoreError) {
        // A caller that went away no longer needs the answer.
        match self {
            Write::Accept(_, _, tx) => drop(tx.send(Err(e))),
            Write::BeginAttempt(_, _, tx) | Write::Finish(_, _, tx) => drop(tx.send(Err(e))),
        }
    }
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

    fn write<T: Send + 'static>(
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
    fn query<'a, T, F, Fut>(&'a self, query: F) -> StoreFuture<'a, T>
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

/// A pool of connections with `options` and `setting` (`-c name=value`).
fn build_pool(
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

/// Applies `MIGRATIONS` not yet recorded, in one transaction under an
/// advisory lock: instances starting together migrate one after another,
/// and the later ones find nothing left to do.
async fn migrate(pool: &Pool, schema: Option<&str>, durability: Durability) -> StoreResult<()> {
    let mut client = pool.get().await.map_err(unavailable_pool)?;
    let tx = client.transaction().await.map_err(unavailable)?;
    let key = format!("reroute migrations {}", schema.unwrap_or("(default)"));
    tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&key])
        .await
        .map_err(unavailable)?;
    if let Some(schema) = schema {
        let exists = tx
            .query_opt("SELECT 1 FROM pg_namespace WHERE nspname = $1", &[&schema])
            .await
            .map_err(unavailable)?
            .is_some();
        if !exists {
            // `schema` was checked to be a plain identifier.
            tx.batch_execute(&format!("CREATE SCHEMA {schema}"))
                .await
                .map_err(unavailable)?;
        }
    }
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    integer PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )
    .await
    .map_err(unavailable)?;
    let applied: i32 = tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM schema_migrations",
            &[],
        )
        .await
        .map_err(unavailable)?
        .get(0);
    let known = MIGRATIONS.len() as i32;
    if applied > known {
        // A newer build migrated further. Migrations only add, so this one
        // can still work; say so rather than refuse to start.
        tracing::warn!(
            applied,
            known,
            "the database schema is newer than this build"
        );
    }
    for (version, sql) in (1..).zip(MIGRATIONS).skip(applied.max(0) as usize) {
        tx.batch_execute(sql).await.map_err(unavailable)?;
        tx.execute(
            "INSERT INTO schema_migrations (version) VALUES ($1)",
            &[&version],
        )
        .await
        .map_err(unavailable)?;
        tracing::info!(version, "applied a schema migration");
    }
    let synchronous_commit: String = tx
        .query_one("SELECT current_setting('synchronous_commit')", &[])
        .await
        .map_err(unavailable)?
        .get(0);
    tx.commit().await.map_err(unavailable)?;
    // Off at `Durability::Os` by this instance's choice; otherwise the
    // server's, against the promise of a 2xx.
    if synchronous_commit == "off" && durability == Durability::Stable {
        tracing::error!(
            "synchronous_commit is off: an accepted payment may be lost if PostgreSQL crashes"
        );
    }
    Ok(())
}

/// A connection of `pool`, the wait reported to `observer`.
async fn get(
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

/// What every writer task works with.
struct Writers {
    pool: Pool,
    holder: Arc<str>,
    bound: Duration,
    observer: Option<Arc<dyn Observer>>,
}

/// One writer task: takes every write waiting (up to [`MAX_BATCH`]) and
/// applies them, until every sender is gone.
async fn write_loop(writers: Writers, receiver: Arc<Mutex<mpsc::Receiver<Write>>>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        {
            // While this task gathers, the others may be writing theirs.
            let mut receiver = receiver.lock().await;
            if receiver.recv_many(&mut batch, MAX_BATCH).await == 0 {
                return;
            }
        }
        apply_batch(&writers, std::mem::take(&mut batch)).await;
    }
}

/// Applies a batch as few statements as its ids allow: one per run of
/// distinct ids (a statement cannot touch one row twice), each its own
/// commit; then answers every caller.
async fn apply_batch(writers: &Writers, mut rest: Vec<Write>) {
    while !rest.is_empty() {
        let mut seen = HashSet::with_capacity(rest.len());
        let split = rest
            .iter()
            .position(|w| !seen.insert(w.id()))
            .unwrap_or(rest.len());
        let tail = rest.split_off(split);
        let group = std::mem::replace(&mut rest, tail);
        let started = std::time::Instant::now();
        let applied = bounded(writers.bound, apply_group(writers, &group)).await;
        if let Some(observer) = &writers.observer {
            let writes = group.len();
            observer.observe(Step::Group { writes }, started.elapsed());
        }
        match applied {
            Ok(answers) => {
                for (write, answer) in group.into_iter().zip(answers) {
                    answer.send(write);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, writes = group.len(), "store write failed");
                for write in group {
                    write.fail(e.clone());
                }
            }
        }
    }
}

/// What one write came to.
enum Answer {
    Acceptance(Acceptance),
    Flag(bool),
}

impl Answer {
    fn send(self, write: Write) {
        match (write, self) {
            (Write::Accept(_, _, tx), Answer::Acceptance(a)) => drop(tx.send(Ok(a))),
            (Write::BeginAttempt(_, _, tx), Answer::Flag(f))
            | (Write::Finish(_, _, tx), Answer::Flag(f)) => drop(tx.send(Ok(f))),
            (write, _) => write.fail(StoreError::Unavailable(
                "internal: a write got another kind's answer".into(),
            )),
        }
    }
}

/// Accepts, attempts and finishes of distinct payments in one statement:
/// each data-modifying CTE takes its rows from arrays, and the result says
/// which rows each one changed. A deadlock with another instance's statement
/// (each locks rows in its own order) is retried: the failed statement
/// changed nothing.
#[doc(hidden)] // Public for the plan test (tests/instances.rs).
pub const APPLY_GROUP: &str = "WITH accepted AS (
        INSERT INTO payments (id, amount, payment_method, country, accepted_at, state, holder, lease_until,
                              processor, requested_at)
        SELECT a.id, a.amount, a.payment_method, a.country, a.accepted_at, 0, $13, clock_timestamp(),
               a.processor, a.requested_at
        FROM unnest($1::uuid[], $2::int8[], $3::text[], $4::text[], $5::int8[], $14::text[], $15::int8[])
             AS a(id, amount, payment_method, country, accepted_at, processor, requested_at)
        ON CONFLICT (id) DO NOTHING
        RETURNING id
    ), attempted AS (
        UPDATE payments p SET processor = b.processor, requested_at = b.requested_at
        FROM unnest($6::uuid[], $7::text[], $8::int8[]) AS b(id, processor, requested_at)
        WHERE p.id = ANY($6) AND p.id = b.id AND p.state = 0 AND p.holder = $13
          AND EXISTS (SELECT 1 FROM holders h WHERE h.holder = $13 AND h.lease_until > clock_timestamp())
        RETURNING p.id
    ), finished AS (
        UPDATE payments p
        SET state = f.state, processor = f.processor, requested_at = f.requested_at, lease_until = NULL
        FROM unnest($9::uuid[], $10::int2[], $11::text[], $12::int8[]) AS f(id, state, processor, requested_at)
        WHERE p.id = ANY($9) AND p.id = f.id AND p.state = 0
        RETURNING p.id
    )
    SELECT id FROM accepted
    UNION ALL SELECT id FROM attempted
    UNION ALL SELECT id FROM finished";

async fn apply_group(writers: &Writers, group: &[Write]) -> StoreResult<Vec<Answer>> {
    let holder = &*writers.holder;
    let mut a = Columns::default();
    let mut b = Columns::default();
    let mut f = Columns::default();
    // In id order: two instances inserting the same ids lock them in the
    // same order, instead of deadlocking.
    let mut ordered: Vec<&Write> = group.iter().collect();
    ordered.sort_unstable_by_key(|w| w.id());
    for write in ordered {
        match write {
            Write::Accept(p, plan, _) => {
                a.planned.push(plan.as_ref().map(|a| a.processor.as_str()));
                a.planned_at
                    .push(plan.as_ref().map(|a| a.requested_at.millis()));
                a.id.push(*p.id.as_uuid());
                a.amount.push(p.amount.minor());
                a.method.push(p.payment_method.as_deref());
                a.country.push(p.country.as_deref());
                a.at.push(p.accepted_at.millis());
            }
            Write::BeginAttempt(id, attempt, _) => {
                b.id.push(*id.as_uuid());
                b.processor.push(attempt.processor.as_str());
                b.at.push(attempt.requested_at.millis());
            }
            Write::Finish(id, outcome, _) => {
                let (state, attempt) = outcome_columns(outcome);
                f.id.push(*id.as_uuid());
                f.state.push(state);
                f.processor.push(attempt.processor.as_str());
                f.at.push(attempt.requested_at.millis());
            }
        }
    }
    let client = get(&writers.pool, writers.observer.as_deref()).await?;
    let statement = client
        .prepare_cached(APPLY_GROUP)
        .await
        .map_err(unavailable)?;
    let mut tries = 0;
    let rows = loop {
        tries += 1;
        let result = client
            .query(
                &statement,
                &[
                    &a.id,
                    &a.amount,
                    &a.method,
                    &a.country,
                    &a.at,
                    &b.id,
                    &b.processor,
                    &b.at,
                    &f.id,
                    &f.state,
                    &f.processor,
                    &f.at,
                    &holder,
                    &a.planned,
                    &a.planned_at,
                ],
            )
            .await;
        match result {
            Ok(rows) => break rows,
            Err(e) if tries < 3 && is_transient(&e) => {
                tracing::debug!(error = %e, "write group retried");
            }
            Err(e) => return Err(unavailable(e)),
        }
    };
    // Ids are distinct within a group, so an id tells which write it was.
    let changed: HashSet<Uuid> = rows.iter().map(|r| r.get(0)).collect();
    let not_new: Vec<Uuid> =
        a.id.iter()
            .filter(|id| !changed.contains(*id))
            .copied()
            .collect();
    let existing: HashMap<Uuid, i64> = if not_new.is_empty() {
        HashMap::new()
    } else {
        // A later statement: it sees rows committed by others meanwhile.
        client
            .query(
                "SELECT id, amount FROM payments WHERE id = ANY($1)",
                &[&not_new],
            )
            .await
            .map_err(unavailable)?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect()
    };
    group
        .iter()
        .map(|write| match write {
            Write::Accept(p, _, _) if changed.contains(p.id.as_uuid()) => {
                Ok(Answer::Acceptance(Acceptance::New))
            }
            Write::Accept(p, _, _) => match existing.get(p.id.as_uuid()) {
                Some(&cents) if cents == p.amount.minor() => {
                    Ok(Answer::Acceptance(Acceptance::Duplicate))
                }
                Some(&cents) => Ok(Answer::Acceptance(Acceptance::Conflict {
                    existing: Money::from_minor(cents),
                })),
                // Refused by the conflict and gone by the look-up: purged in
                // between. Nothing stands; the client may retry.
                None => Err(StoreError::Unavailable(
                    "the payment was purged while being accepted".into(),
                )),
            },
            Write::BeginAttempt(id, _, _) | Write::Finish(id, _, _) => {
                Ok(Answer::Flag(changed.contains(id.as_uuid())))
            }
        })
        .collect()
}

/// One CTE's input, column by column.
#[derive(Default)]
struct Columns<'a> {
    id: Vec<Uuid>,
    amount: Vec<i64>,
    method: Vec<Option<&'a str>>,
    country: Vec<Option<&'a str>>,
    state: Vec<i16>,
    processor: Vec<&'a str>,
    at: Vec<i64>,
    /// The planned attempts of accepts.
    planned: Vec<Option<&'a str>>,
    planned_at: Vec<Option<i64>>,
}

/// Waits at most `bound` for `op`.
async fn bounded<T>(bound: Duration, op: impl Future<Output = StoreResult<T>>) -> StoreResult<T> {
    tokio::time::timeout(bound, op).await.unwrap_or_else(|_| {
        Err(StoreError::Unavailable(format!(
            "no answer from PostgreSQL within {} ms",
            bound.as_millis()
        )))
    })
}

/// PostgreSQL refused who or where we are (SQLSTATE class 28: invalid
/// authorization; 3D000: no such database): waiting will not help.
fn misconfigured(e: &tokio_postgres::Error) -> Option<StoreError> {
    let db = e.as_db_error()?;
    let code = db.code().code();
    (code.starts_with("28") || code == "3D000")
        .then(|| StoreError::Misconfigured(format!("PostgreSQL {code}: {}", db.message())))
}

fn unavailable(e: tokio_postgres::Error) -> StoreError {
    if let Some(refused) = misconfigured(&e) {
        return refused;
    }
    match e.as_db_error() {
        Some(db) => {
            StoreError::Unavailable(format!("PostgreSQL {}: {}", db.code().code(), db.message()))
        }
        None => StoreError::Unavailable(format!("PostgreSQL: {}", with_causes(&e))),
    }
}

fn unavailable_pool(e: deadpool_postgres::PoolError) -> StoreError {
    if let deadpool_postgres::PoolError::Backend(backend) = &e
        && let Some(refused) = misconfigured(backend)
    {
        return refused;
    }
    StoreError::Unavailable(format!("no PostgreSQL connection: {}", with_causes(&e)))
}

/// An error and what caused it ("error connecting to server: Connection
/// refused"), which the outer message alone does not say.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}

/// Failures that say nothing about the data: trying again may succeed.
fn is_transient(e: &tokio_postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::T_R_SERIALIZATION_FAILURE
    )
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 63
}

/// The state and attempt columns of a finished payment.
fn outcome_columns(outcome: &Outcome) -> (i16, &Attempt) {
    match outcome {
        Outcome::Processed(a) => (STATE_PROCESSED, a),
        Outcome::Declined(a) => (STATE_DECLINED, a),
        Outcome::Duplicate(a) => (STATE_DUPLICATE, a),
    }
}

/// A pending payment from `id, amount, payment_method, country, accepted_at,
/// processor, requested_at`.
fn pending_from_row(r: &Row) -> PendingPayment {
    let processor: Option<String> = r.get(5);
    let requested_at: Option<i64> = r.get(6);
    PendingPayment {
        payment: NewPayment {
            id: CorrelationId::from_uuid(r.get(0)),
            amount: Money::from_minor(r.get(1)),
            payment_method: r.get(2),
            country: r.get(3),
            accepted_at: Timestamp::from_millis(r.get(4)),
        },
        attempt: processor.zip(requested_at).map(|(processor, at)| Attempt {
            processor,
            requested_at: Timestamp::from_millis(at),
        }),
    }
}

/// Pending payments whose holder's lease ran out (or who never had one: a
/// payment left by a build older than the `holders` table), oldest first.
/// The test is on the payment's own `holder`, so a row another instance
/// took over meanwhile fails it when rechecked under its lock (with a join,
/// the recheck would keep the old holder's expired row and take it twice).
const RECLAIM: &str = "WITH orphaned AS (
        SELECT p.id FROM payments p
        WHERE p.lease_until IS NOT NULL AND p.holder <> $1
          AND (p.holder IN (SELECT holder FROM holders WHERE lease_until < clock_timestamp())
               OR NOT EXISTS (SELECT 1 FROM holders h WHERE h.holder = p.holder))
        ORDER BY p.lease_until
        LIMIT $2
        FOR UPDATE OF p SKIP LOCKED
    )
    UPDATE payments p SET holder = $1, lease_until = clock_timestamp()
    FROM orphaned WHERE p.id = orphaned.id
    RETURNING p.id, p.amount, p.payment_method, p.country, p.accepted_at, p.processor, p.requested_at";

/// Pending payments leased to an earlier process of this instance: held by
/// `<name>/<run>` with this instance's name and another run ($3 is
/// `<name>/`, compared literally, and the run part has no `/`).
const TAKE_OVER_PREDECESSOR: &str = "WITH left_behind AS (
        SELECT id FROM payments
        WHERE lease_until IS NOT NULL AND holder <> $1
          AND left(holder, length($3)) = $3
          AND strpos(substr(holder, length($3) + 1), '/') = 0
        ORDER BY accepted_at
        LIMIT $2
        FOR UPDATE SKIP LOCKED
    )
    UPDATE payments p SET holder = $1
    FROM left_behind WHERE p.id = left_behind.id
    RETURNING p.id, p.amount, p.payment_method, p.country, p.accepted_at, p.processor, p.requested_at";

/// Extends this instance's lease: one row, however many payments it holds.
const RENEW: &str = concat!(
    "INSERT INTO holders (holder, lease_until) VALUES ($1, ",
    from_now!(2),
    ")
    ON CONFLICT (holder) DO UPDATE SET lease_until = excluded.lease_until"
);

/// The leader row is taken when free or expired, and kept by its holder; a
/// concurrent taker waits for the row lock, then sees it taken.
const LEAD_PROBES: &str = concat!(
    "INSERT INTO leaders (role, holder, until) VALUES ('probes', $1, ",
    from_now!(2),
    ")
    ON CONFLICT (role) DO UPDATE SET holder = excluded.holder, until = excluded.until
    WHERE leaders.holder = excluded.holder OR leaders.until < clock_timestamp()
    RETURNING holder"
);

impl Store for PostgresStore {
    fn accept_with_plan(
        &self,
        payment: NewPayment,
        plan: Option<Attempt>,
    ) -> StoreFuture<'_, Acceptance> {
        self.write(|tx| Write::Accept(payment, plan, tx))
    }

    /// Only the holder, while its lease runs, records an attempt: `false`
    /// also when another instance has taken the payment over, or when this
    /// instance's lease ran out (it stalled, or lost PostgreSQL, past it)
    /// and was not renewed since: a payment whose lease ran out may be taken
    /// over at any moment, and its holder must not send it meanwhile.
    fn begin_attempt(&self, id: CorrelationId, attempt: Attempt) -> StoreFuture<'_, bool> {
        self.write(|tx| Write::BeginAttempt(id, attempt, tx))
    }

    /// Any instance may record an outcome it learnt from the processor (a
    /// former holder whose answer arrives late included); the first stands.
    fn finish(&self, id: CorrelationId, outcome: Outcome) -> StoreFuture<'_, bool> {
        self.write(|tx| Write::Finish(id, outcome, tx))
    }

    /// Rare (a purge with sends in flight), so a statement of its own on
    /// the pool rather than a place in every group.
    fn restore(&self, payment: NewPayment, outcome: Outcome) -> StoreFuture<'_, bool> {
        let holder = Arc::clone(&self.inner.holder);
        self.query(move |client| async move {
            let (state, attempt) = outcome_columns(&outcome);
            let statement = client
                .prepare_cached(
                    "INSERT INTO payments (id, amount, payment_method, country, accepted_at, state,
                                           processor, requested_at, holder, lease_until)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL)
                     ON CONFLICT (id) DO NOTHING",
                )
                .await?;
            let inserted = client
                .execute(
                    &statement,
                    &[
                        payment.id.as_uuid(),
                        &payment.amount.minor(),
                        &payment.payment_method,
                        &payment.country,
                        &payment.accepted_at.millis(),
                        &state,
                        &attempt.processor,
                        &attempt.requested_at.millis(),
                        &&*holder,
                    ],
                )
                .await?;
            Ok(inserted == 1)
        })
    }

    fn find(&self, id: CorrelationId) -> StoreFuture<'_, Option<PaymentRecord>> {
        self.query(move |client| async move {
            let statement = client
                .prepare_cached(
                    "SELECT id, amount, payment_method, country, accepted_at, processor, requested_at,
                            state
                     FROM payments WHERE id = $1",
                )
                .await?;
            let Some(row) = client.query_opt(&statement, &[id.as_uuid()]).await? else {
                return Ok(None);
            };
            let PendingPayment { payment, attempt } = pending_from_row(&row);
            let state = match row.get::<_, i16>(7) {
                STATE_PENDING => PaymentState::Pending,
                STATE_PROCESSED => PaymentState::Processed,
                STATE_DECLINED => PaymentState::Declined,
                _ => PaymentState::Duplicate,
            };
            Ok(Some(PaymentRecord {
                payment,
                state,
                attempt,
            }))
        })
    }

    fn pending(&self) -> StoreFuture<'_, Vec<PendingPayment>> {
        self.query(|client| async move {
            let statement = client
                .prepare_cached(
                    "SELECT id, amount, payment_method, country, accepted_at, processor, requested_at
                     FROM payments WHERE lease_until IS NOT NULL ORDER BY accepted_at",
                )
                .await?;
            let rows = client.query(&statement, &[]).await?;
            Ok(rows.iter().map(pending_from_row).collect())
        })
    }

    fn summary(&self, window: Window) -> StoreFuture<'_, Vec<Totals>> {
        self.query(move |client| async move {
            let statement = client
                .prepare_cached(
                    "SELECT processor, count(*), sum(amount)::int8 FROM payments
                     WHERE state = 1 AND requested_at BETWEEN $1 AND $2
                     GROUP BY processor ORDER BY processor",
                )
                .await?;
            let rows = client
                .query(&statement, &[&window.from.millis(), &window.to.millis()])
                .await?;
            Ok(rows
                .iter()
                .map(|r| Totals {
                    processor: r.get(0),
                    requests: r.get::<_, i64>(1).unsigned_abs(),
                    amount: Money::from_minor(r.get(2)),
                })
                .collect())
        })
    }

    fn ledger(&self) -> StoreFuture<'_, Vec<LedgerEntry>> {
        self.query(|client| async move {
            let rows = client
                .query(
                    "SELECT id, amount, processor, requested_at FROM payments
                     WHERE state = 1 ORDER BY requested_at",
                    &[],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|r| LedgerEntry {
                    id: CorrelationId::from_uuid(r.get(0)),
                    amount: Money::from_minor(r.get(1)),
                    processor: r.get(2),
                    requested_at: Timestamp::from_millis(r.get(3)),
                })
                .collect())
        })
    }

    fn purge(&self) -> StoreFuture<'_, ()> {
        self.query(|client| async move { client.batch_execute("TRUNCATE payments").await })
    }

    fn lease(&self) -> Option<Duration> {
        Some(Duration::from_millis(
            u64::try_from(self.inner.lease_ms).unwrap_or(0),
        ))
    }

    fn renew(&self) -> StoreFuture<'_, ()> {
        let holder = Arc::clone(&self.inner.holder);
        let lease_ms = self.inner.lease_ms;
        self.query(move |client| async move {
            let statement = client.prepare_cached(RENEW).await?;
            client.execute(&statement, &[&&*holder, &lease_ms]).await?;
            Ok(())
        })
    }

    fn reclaim(&self, limit: usize) -> StoreFuture<'_, Vec<PendingPayment>> {
        let holder = Arc::clone(&self.inner.holder);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.query(move |client| async move {
            let statement = client.prepare_cached(RECLAIM).await?;
            let rows = client.query(&statement, &[&&*holder, &limit]).await?;
            let mut reclaimed: Vec<PendingPayment> = rows.iter().map(pending_from_row).collect();
            reclaimed.sort_by_key(|p| p.payment.accepted_at);
            if !reclaimed.is_empty() {
                tracing::info!(
                    count = reclaimed.len(),
                    "reclaimed payments whose lease ran out"
                );
            }
            Ok(reclaimed)
        })
    }

    fn held(
        &self,
        accepted_before: Timestamp,
        limit: usize,
    ) -> StoreFuture<'_, Vec<PendingPayment>> {
        let holder = Arc::clone(&self.inner.holder);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.query(move |client| async move {
            let statement = client
                .prepare_cached(
                    "SELECT id, amount, payment_method, country, accepted_at, processor, requested_at
                     FROM payments
                     WHERE lease_until IS NOT NULL AND holder = $1 AND accepted_at < $2
                     ORDER BY accepted_at LIMIT $3",
                )
                .await?;
            let rows = client
                .query(
                    &statement,
                    &[&&*holder, &accepted_before.millis(), &limit],
                )
                .await?;
            Ok(rows.iter().map(pending_from_row).collect())
        })
    }

    fn take_over_predecessor(&self, limit: usize) -> StoreFuture<'_, Vec<PendingPayment>> {
        let holder = Arc::clone(&self.inner.holder);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        // The holder is `<name>/<run>`; the run part never has a `/`.
        let prefix = match holder.rfind('/') {
            Some(at) => holder[..=at].to_owned(),
            None => format!("{holder}/"),
        };
        self.query(move |client| async move {
            let statement = client.prepare_cached(TAKE_OVER_PREDECESSOR).await?;
            let rows = client
                .query(&statement, &[&&*holder, &limit, &prefix])
                .await?;
            let mut taken: Vec<PendingPayment> = rows.iter().map(pending_from_row).collect();
            taken.sort_by_key(|p| p.payment.accepted_at);
            if !taken.is_empty() {
                tracing::info!(
                    count = taken.len(),
                    "took over the payments of this instance's previous process"
                );
            }
            Ok(taken)
        })
    }

    fn lead_probes(&self, term: Duration) -> StoreFuture<'_, bool> {
        let holder = Arc::clone(&self.inner.holder);
        let term_ms = i64::try_from(term.as_millis()).unwrap_or(i64::MAX);
        self.query(move |client| async move {
            let statement = client.prepare_cached(LEAD_PROBES).await?;
            let rows = client.query(&statement, &[&&*holder, &term_ms]).await?;
            Ok(!rows.is_empty())
        })
    }

    fn publish_probe(&self, report: ProbeReport) -> StoreFuture<'_, ()> {
        self.query(move |client| async move {
            let statement = client
                .prepare_cached(
                    "INSERT INTO probes (processor, failing, min_response_ms, at)
                     VALUES ($1, $2, $3, $4)
                     ON CONFLICT (processor) DO UPDATE
                     SET failing = excluded.failing, min_response_ms = excluded.min_response_ms,
                         at = excluded.at
                     WHERE probes.at <= excluded.at",
                )
                .await?;
            client
                .execute(
                    &statement,
                    &[
                        &report.processor,
                        &report.failing,
                        &i64::from(report.min_response_ms),
                        &report.at.millis(),
                    ],
                )
                .await?;
            Ok(())
        })
    }

    fn probes(&self) -> StoreFuture<'_, Vec<ProbeReport>> {
        self.query(|client| async move {
            let statement = client
                .prepare_cached(
                    "SELECT processor, failing, min_response_ms, at FROM probes ORDER BY processor",
                )
                .await?;
            let rows = client.query(&statement, &[]).await?;
            Ok(rows
                .iter()
                .map(|r| ProbeReport {
                    processor: r.get(0),
                    failing: r.get(1),
                    min_response_ms: u32::try_from(r.get::<_, i64>(2)).unwrap_or(u32::MAX),
                    at: Timestamp::from_millis(r.get(3)),
                })
                .collect())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_lower_case_identifiers_name_a_schema() {
        for good in ["reroute", "t_0123abcd", "_x"] {
            assert!(is_identifier(good), "{good}");
        }
        for bad in [
            "",
            "Reroute",
            "1abc",
            "a-b",
            "a b",
            "a;drop",
            &"x".repeat(64),
        ] {
            assert!(!is_identifier(bad), "{bad}");
        }
    }

    #[tokio::test]
    async fn a_bad_url_or_schema_is_a_misconfiguration() {
        let bad_url = PostgresStore::connect(PostgresConfig::new("postgres://host:notaport/db"));
        assert!(matches!(bad_url.await, Err(StoreError::Misconfigured(_))));
        let bad_schema = PostgresStore::connect(PostgresConfig {
            schema: Some("x; DROP TABLE payments".into()),
            ..PostgresConfig::new("postgres://127.0.0.1/db")
        });
        assert!(matches!(
            bad_schema.await,
            Err(StoreError::Misconfigured(_))
        ));
    }
}
