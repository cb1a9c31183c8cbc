//! How fast each engine takes a payment's writes: `accept` from many clients
//! at once, then each payment's `begin_attempt` + `finish`, with latency
//! percentiles. Figures go to docs/postgres.md with the command.
//!
//! ```text
//! cargo run --release -p reroute-store --example store_load -- ENGINE [PAYMENTS] [CLIENTS]
//! ENGINE: postgres://user@host/db (a fresh schema, dropped at the end), sqlite
//! (durability stable) or sqlite-os (durability os)
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use reroute_core::{CorrelationId, Money, Timestamp};
use reroute_store::{
    Acceptance, Attempt, NewPayment, Outcome, PostgresConfig, PostgresStore, SqliteStore, Store,
};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let engine = args.next().unwrap_or_else(|| "sqlite".into());
    let payments: usize = args.next().map_or(Ok(20_000), |a| a.parse())?;
    let clients: usize = args.next().map_or(Ok(64), |a| a.parse())?;

    let dir = tempfile::tempdir()?;
    let schema = format!(
        "load_{}",
        &CorrelationId::new_random().as_uuid().simple().to_string()[..12]
    );
    let store: Arc<dyn Store> = if engine.starts_with("postgres") {
        Arc::new(
            PostgresStore::connect(PostgresConfig {
                schema: Some(schema.clone()),
                ..PostgresConfig::new(&engine)
            })
            .await?,
        )
    } else {
        // `sqlite-os`: the embedded store at `Durability::Os`.
        let durability = if engine == "sqlite-os" {
            reroute_store::Durability::Os
        } else {
            reroute_store::Durability::Stable
        };
        Arc::new(SqliteStore::open_with(
            dir.path().join("load.db"),
            durability,
        )?)
    };
    println!("{engine}: {payments} payments, {clients} clients");

    let ids: Arc<Vec<CorrelationId>> =
        Arc::new((0..payments).map(|_| CorrelationId::new_random()).collect());
    let accept = run(&store, &ids, clients, |store, id, i| async move {
        let payment = NewPayment {
            id,
            amount: Money::from_minor(1990),
            payment_method: None,
            country: None,
            accepted_at: Timestamp::from_millis(i as i64),
        };
        assert_eq!(store.accept(payment).await?, Acceptance::New);
        Ok(())
    })
    .await?;
    report("accept", payments, accept);

    let attempt_and_finish = run(&store, &ids, clients, |store, id, i| async move {
        let attempt = Attempt {
            processor: "default".into(),
            requested_at: Timestamp::from_millis(i as i64),
        };
        assert!(store.begin_attempt(id, attempt.clone()).await?);
        assert!(store.finish(id, Outcome::Processed(attempt)).await?);
        Ok(())
    })
    .await?;
    report("begin_attempt + finish", payments, attempt_and_finish);

    drop(store);
    if engine.starts_with("postgres") {
        let (client, connection) = tokio_postgres::connect(&engine, tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        client
            .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
            .await?;
    }
    Ok(())
}

/// Runs `op` once per id from `clients` tasks; returns the wall time and
/// each operation's latency.
async fn run<F, Fut>(
    store: &Arc<dyn Store>,
    ids: &Arc<Vec<CorrelationId>>,
    clients: usize,
    op: F,
) -> anyhow::Result<(Duration, Vec<Duration>)>
where
    F: Fn(Arc<dyn Store>, CorrelationId, usize) -> Fut + Send + Sync + Copy + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let (store, ids, next) = (Arc::clone(store), Arc::clone(ids), Arc::clone(&next));
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(&id) = ids.get(i) else {
                    return anyhow::Ok(latencies);
                };
                let t = Instant::now();
                op(Arc::clone(&store), id, i).await?;
                latencies.push(t.elapsed());
            }
        });
    }
    let mut latencies = Vec::with_capacity(ids.len());
    for done in tasks.join_all().await {
        latencies.extend(done?);
    }
    Ok((started.elapsed(), latencies))
}

fn report(what: &str, count: usize, (wall, mut latencies): (Duration, Vec<Duration>)) {
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    println!(
        "{what:>24}: {:>8.0}/s  p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms",
        count as f64 / wall.as_secs_f64(),
        at(0.50).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        at(1.0).as_secs_f64() * 1e3,
    );
}
