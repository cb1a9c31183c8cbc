//! The end of a crash or chaos run, once the load has stopped: wait until
//! the processors' books hold every payment answered 2xx and the routers are
//! idle ([`drain`]), then stop the routers, read back what they left in
//! their store (`reroute ledger`) and [`crate::audit`] it all
//! ([`stop_and_audit`]).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use reroute_core::CorrelationId;
use tokio::time::Instant;

use crate::audit::{self, Audit};
use crate::fleet::Fleet;
use crate::router_api::{RouterApi, SummaryLine};
use crate::traffic::{Fate, Payment};
use reroute_bench::processors::{Books, ProcessorAdmin};

/// Drains the run: every instance of `fleet` asked, the payments of
/// `payments` answered 2xx awaited in the books. Returns the instances' APIs
/// (for questions before they stop) and what the drain saw last.
pub async fn drain_run(
    fleet: &Fleet,
    processors: &mut [ProcessorAdmin],
    payments: &[Payment],
    within: Duration,
) -> anyhow::Result<(Vec<RouterApi>, Drained)> {
    let accepted: HashSet<_> = payments
        .iter()
        .filter(|p| matches!(p.fate, Fate::Accepted { .. }))
        .map(|p| p.id)
        .collect();
    let mut apis: Vec<RouterApi> = fleet.endpoints().into_iter().map(RouterApi::new).collect();
    let drained = drain(&mut apis, processors, &accepted, within).await?;
    Ok((apis, drained))
}

/// Kills every router, reads their store back (a failure is a warning, and
/// the audit then says the ledger was not read) and audits the run.
pub async fn stop_and_audit(
    fleet: &mut Fleet,
    processors: &mut [ProcessorAdmin],
    payments: &[Payment],
    drained: &Drained,
    warnings: &mut Vec<String>,
) -> anyhow::Result<Audit> {
    fleet.kill_all();
    let store_view = match fleet
        .settings()
        .store
        .read_back(&fleet.settings().bin)
        .await
    {
        Ok(view) => Some(view),
        Err(e) => {
            warnings.push(format!("cannot read the store back: {e:#}"));
            None
        }
    };
    let books = Books::read(processors).await?;
    Ok(audit::audit(
        payments,
        &books,
        &drained.summary,
        store_view.as_ref(),
    ))
}

/// What [`drain`] saw last.
pub struct Drained {
    /// Every accepted payment was charged, the summary matched the books and
    /// every instance was idle, before the deadline.
    pub settled: bool,
    pub took: Duration,
    pub books: Books,
    pub summary: HashMap<String, SummaryLine>,
}

/// Polls until every accepted payment is in the books, the router's summary
/// counts exactly the books, and no instance holds work (queue and attempts
/// in flight empty), or `within` passes. `routers` are the live instances;
/// the first one's summary is read (any instance answers for all). Once a
/// payment is charged twice the summary can never count the books exactly:
/// then the rest is waited for without it (the audit reports the double),
/// instead of spending the whole `within`.
pub async fn drain(
    routers: &mut [RouterApi],
    processors: &mut [ProcessorAdmin],
    accepted: &HashSet<CorrelationId>,
    within: Duration,
) -> anyhow::Result<Drained> {
    let began = Instant::now();
    let deadline = began + within;
    loop {
        let books = Books::read(processors).await?;
        let summary = routers[0].summary().await.unwrap_or_default();
        let charged = books.ids();
        let totals = books.totals();
        let summary_matches = totals.iter().all(|(id, t)| {
            summary
                .get(id)
                .is_some_and(|s| s.total_requests == t.requests && s.total_amount == t.amount)
        });
        let mut idle = true;
        if accepted.is_subset(&charged) && (summary_matches || books.has_double()) {
            for router in routers.iter_mut() {
                idle &= router.busy().await.is_ok_and(|busy| busy == 0.0);
            }
        } else {
            idle = false;
        }
        let now = Instant::now();
        if idle || now >= deadline {
            return Ok(Drained {
                settled: idle,
                took: now - began,
                books,
                summary,
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
