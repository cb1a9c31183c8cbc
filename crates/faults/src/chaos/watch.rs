//! The processors' counters, read every second while a chaos scenario runs:
//! the per-second sends, charges, lookups and health calls the hot-loop and
//! health-manners checks ([`crate::chaos::judge`]) are made on.

use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use reroute_bench::processors::Processors;

/// The processors' counters over one second.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Second {
    /// Since the load started.
    pub at_s: u64,
    /// `POST /payments` received, both processors.
    pub sends: u64,
    /// Payments stored, both processors.
    pub stored: u64,
    /// `GET /payments/{id}`, both processors.
    pub lookups: u64,
    pub health_calls: u64,
}

/// Reads both processors' counters every second while the scenario runs.
pub struct Watch {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Vec<Second>>,
}

impl Watch {
    pub fn start(processors: &Processors, t0: Instant) -> anyhow::Result<Self> {
        let mut admins = processors.connect()?;
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let mut ticker = tokio::time::interval_at(t0, Duration::from_secs(1));
            let mut last: Option<Second> = None;
            let mut out = Vec::new();
            loop {
                tokio::select! {
                    _ = &mut stopped => return out,
                    _ = ticker.tick() => {}
                }
                let mut total = Second {
                    at_s: t0.elapsed().as_secs_f64().round() as u64,
                    ..Second::default()
                };
                for admin in &mut admins {
                    if let Ok(s) = admin.stats().await {
                        total.sends += s.payments_received;
                        total.stored += s.payments_stored;
                        total.lookups += s.payments_looked_up;
                        total.health_calls += s.health_calls;
                    }
                }
                if let Some(prev) = last {
                    out.push(Second {
                        at_s: prev.at_s,
                        sends: total.sends.saturating_sub(prev.sends),
                        stored: total.stored.saturating_sub(prev.stored),
                        lookups: total.lookups.saturating_sub(prev.lookups),
                        health_calls: total.health_calls.saturating_sub(prev.health_calls),
                    });
                }
                last = Some(total);
            }
        });
        Ok(Self { stop, task })
    }

    pub async fn stop(self) -> Vec<Second> {
        let _ = self.stop.send(());
        self.task.await.unwrap_or_default()
    }
}
