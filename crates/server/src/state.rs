//! The state every part of a running router shares: [`Shared`], built once
//! by [`crate::App`] and handed by `Arc` to the handlers (a payment's way
//! in), the workers and probes (its way out to a processor and into the
//! ledger) and the scrape of `/metrics`. It holds the parts and names them;
//! it imports no handler and no task, so every layer above can depend on it.

use std::sync::Arc;

use reroute_core::health::Alert;
use reroute_core::{HealthEngine, Registry};
use reroute_store::Store;
use tokio_util::sync::CancellationToken;

use crate::accepts::AcceptTable;
use crate::alerts;
use crate::breakers::Breakers;
use crate::config::ServeConfig;
use crate::lanes::Lanes;
use crate::metrics::{Live, Metrics};
use crate::processor::ProcessorClient;
use crate::queue::Queue;
use crate::recording::Recording;
use crate::resolution::Landing;

/// Everything the handlers, workers and probes share.
pub struct Shared {
    pub config: ServeConfig,
    pub registry: Registry,
    pub store: Arc<dyn Store>,
    pub client: ProcessorClient,
    pub breakers: Breakers,
    /// How long a send to each processor may take to land, from the delays
    /// its health endpoint announces: the bound of the unknown-outcome rule.
    pub landing: Landing,
    /// Sends in flight per processor, within each one's adaptive limit.
    pub lanes: Lanes,
    /// Segment and processor health, fed by the workers' attempts and by
    /// `POST /api/v1/transactions`; read by the intelligence API and used
    /// by the workers to route.
    pub health: HealthEngine,
    /// Notified when a send reopens a DOWN segment's health gate, so that
    /// workers waiting for it resume at once (as [`Breakers::changed`] does
    /// for circuits).
    pub health_opened: tokio::sync::Notify,
    pub queue: Queue,
    /// Outcomes answered by a processor and not yet committed: summaries
    /// wait for those in their window.
    pub recording: Recording,
    pub metrics: Metrics,
    /// Cancelled when the app stops: workers and probes are then gone.
    pub stopping: CancellationToken,
    /// Whether the last renewal of this instance's leases succeeded: when
    /// not, other instances may take its payments over, and it should not
    /// take new ones (`GET /readyz` says not ready).
    pub leases_renewed: std::sync::atomic::AtomicBool,
    /// The table edges accept payments in (`--accept-table`).
    pub accepts: Option<Arc<AcceptTable>>,
    /// When this process began to serve, its store open: every send of an
    /// earlier process, one cut short by a kernel crash included, left
    /// before it.
    pub started_at: reroute_core::Timestamp,
}

impl Shared {
    /// Counts and logs health alerts, wherever they were raised (a worker's
    /// outcome, a probe, `POST /api/v1/transactions`).
    pub fn raise(&self, raised: &[Alert]) {
        self.metrics.alerts(raised);
        alerts::log(raised);
    }

    /// The live parts the `/metrics` gauges read at scrape time.
    pub fn live(&self) -> Live<'_> {
        Live {
            queue: &self.queue,
            recording: &self.recording,
            registry: &self.registry,
            lanes: &self.lanes,
            landing: &self.landing,
            breakers: &self.breakers,
            health: &self.health,
            store: self.store.as_ref(),
        }
    }
}
