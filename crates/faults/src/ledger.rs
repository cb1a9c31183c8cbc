//! The routers' ledger as an operator reads it: `reroute ledger` (the same
//! executable the routers run from) prints the store's processed and pending
//! payments as JSON lines, and this module reads them. The crash and chaos
//! benches audit with it once the routers stop; `pg-pause` watches the
//! pending payments with it while they run. The bench never opens the store
//! itself: it sees what a user sees.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};
use reroute_core::{CorrelationId, Money, Timestamp};
use serde::Deserialize;

/// One processed payment of the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    pub id: CorrelationId,
    pub amount: Money,
    pub processor: String,
    pub requested_at: Timestamp,
}

/// The store as the routers left it.
#[derive(Debug, Clone, Default)]
pub struct StoreView {
    pub ledger: Vec<LedgerEntry>,
    /// Accepted payments without a known outcome.
    pub pending: Vec<CorrelationId>,
}

/// One line of `reroute ledger`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Line {
    correlation_id: CorrelationId,
    amount_cents: i64,
    processor: Option<String>,
    requested_at: Option<Timestamp>,
    status: String,
}

/// Runs `bin ledger <source>` (`source`: `--db PATH` or `--store URL
/// --instance NAME`) on a blocking thread and reads its lines.
pub async fn export(bin: &Path, source: Vec<std::ffi::OsString>) -> anyhow::Result<StoreView> {
    let mut command = Command::new(bin);
    command.arg("ledger").args(source).env("RUST_LOG", "warn");
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .context("waiting for reroute ledger")?
        .with_context(|| format!("running {} ledger", bin.display()))?;
    if !output.status.success() {
        bail!(
            "reroute ledger {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    parse(&output.stdout)
}

fn parse(stdout: &[u8]) -> anyhow::Result<StoreView> {
    let mut view = StoreView::default();
    for text in stdout.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let line: Line =
            serde_json::from_slice(text).context("reading a line of reroute ledger")?;
        match (line.status.as_str(), line.processor, line.requested_at) {
            ("processed", Some(processor), Some(requested_at)) => view.ledger.push(LedgerEntry {
                id: line.correlation_id,
                amount: Money::from_minor(line.amount_cents),
                processor,
                requested_at,
            }),
            ("pending", ..) => view.pending.push(line.correlation_id),
            (status, ..) => bail!("reroute ledger: unexpected line ({status})"),
        }
    }
    Ok(view)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processed_lines_are_the_ledger_and_pending_lines_the_pending_ids() {
        let id = "4a7901b8-7d26-4d9d-aa19-4dc1c7cf60b3";
        let out = format!(
            "{{\"correlationId\":\"{id}\",\"amountCents\":1990,\"processor\":\"default\",\
             \"requestedAt\":\"2025-07-15T12:34:56.000Z\",\"status\":\"processed\"}}\n\
             {{\"correlationId\":\"{id}\",\"amountCents\":5,\"processor\":null,\
             \"requestedAt\":null,\"status\":\"pending\"}}\n"
        );
        let view = parse(out.as_bytes()).unwrap();
        assert_eq!(view.ledger.len(), 1);
        assert_eq!(view.ledger[0].amount, Money::from_minor(1990));
        assert_eq!(view.ledger[0].processor, "default");
        assert_eq!(view.pending, vec![id.parse().unwrap()]);
    }
}
