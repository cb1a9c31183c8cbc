//! `reroute ledger`: the operator's reconciliation export. Reads a store the
//! routers wrote (embedded file or PostgreSQL) and prints, one JSON object a
//! line, every processed payment of the ledger and then every payment still
//! pending, to set against the processors' statements.
//!
//! It only reads: nothing is claimed, sent or changed. It sits beside the
//! data path, after `store` (ledger); the crash and chaos benches audit runs
//! with it.

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::Context;
use reroute_core::{CorrelationId, Timestamp};
use reroute_store::{PostgresConfig, PostgresStore, SqliteStore, Store};
use serde::Serialize;

/// Where to read the ledger from: one of `--db` or `--store`.
#[derive(Debug, clap::Args)]
pub struct LedgerArgs {
    /// The embedded store's file, as given to `serve --db`. Open it once the
    /// router on it has stopped: a store file has one process at a time.
    #[arg(
        long,
        value_name = "PATH",
        required_unless_present = "store",
        conflicts_with = "store"
    )]
    db: Option<PathBuf>,
    /// A PostgreSQL URL, as given to `serve --store`; may be read while
    /// routers run.
    #[arg(long, value_name = "URL")]
    store: Option<String>,
    /// The name this reader shows in PostgreSQL (`application_name`).
    #[arg(
        long,
        value_name = "NAME",
        default_value = "reroute-ledger",
        requires = "store"
    )]
    instance: String,
}

/// One line of the export.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Line {
    correlation_id: CorrelationId,
    /// Integer minor units (cents).
    amount_cents: i64,
    /// The processor that charged it; for a pending payment, the one its
    /// last attempt went to, if any.
    processor: Option<String>,
    requested_at: Option<Timestamp>,
    status: Status,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "lowercase")]
enum Status {
    /// In the ledger: a processor has it.
    Processed,
    /// Accepted, outcome not yet known.
    Pending,
}

/// Prints the ledger, then the pending payments, on stdout.
pub fn run(args: LedgerArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let lines = runtime.block_on(read(args))?;
    let mut out = BufWriter::new(std::io::stdout().lock());
    for line in lines {
        serde_json::to_writer(&mut out, &line)?;
        out.write_all(b"\n")?;
    }
    out.flush().context("writing the ledger to stdout")
}

async fn read(args: LedgerArgs) -> anyhow::Result<Vec<Line>> {
    if let Some(path) = args.db {
        // Opening would create an empty store: a wrong path must say so.
        anyhow::ensure!(path.exists(), "no store at {}", path.display());
        let store =
            SqliteStore::open(&path).with_context(|| format!("opening {}", path.display()))?;
        return lines(&store).await;
    }
    let mut config = PostgresConfig::new(args.store.context("--db or --store is needed")?);
    config.instance = args.instance;
    let store = PostgresStore::connect(config)
        .await
        .context("connecting to PostgreSQL")?;
    lines(&store).await
}

async fn lines(store: &impl Store) -> anyhow::Result<Vec<Line>> {
    let ledger = store.ledger().await.context("reading the ledger")?;
    let pending = store
        .pending()
        .await
        .context("reading the pending payments")?;
    let processed = ledger.into_iter().map(|e| Line {
        correlation_id: e.id,
        amount_cents: e.amount.minor(),
        processor: Some(e.processor),
        requested_at: Some(e.requested_at),
        status: Status::Processed,
    });
    let pending = pending.into_iter().map(|p| Line {
        correlation_id: p.payment.id,
        amount_cents: p.payment.amount.minor(),
        processor: p.attempt.as_ref().map(|a| a.processor.clone()),
        requested_at: p.attempt.map(|a| a.requested_at),
        status: Status::Pending,
    });
    Ok(processed.chain(pending).collect())
}
