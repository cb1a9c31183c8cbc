//! The stage hand: at each stage's instant, puts the delay and failure mode
//! on both processors, in the script's order (delay default, delay fallback,
//! failure default, failure fallback). A refused setting stops the run, as
//! the script aborts the test.

use std::sync::atomic::Ordering;

use tokio::time::Instant;

use super::api::Services;
use super::progress::Live;
use super::timeline::Timeline;
use crate::http::HttpStats;

/// Applies every stage on time; returns what the connections saw.
pub async fn run(
    services: &Services,
    timeline: &Timeline,
    started: Instant,
    live: &Live,
) -> anyhow::Result<HttpStats> {
    let (mut default, mut fallback) = services.processors();
    for (index, stage) in timeline.stages().iter().enumerate() {
        tokio::time::sleep_until(started + stage.at).await;
        default.set_delay(stage.default.delay_ms).await?;
        fallback.set_delay(stage.fallback.delay_ms).await?;
        default.set_failure(stage.default.failing).await?;
        fallback.set_failure(stage.fallback.failing).await?;
        live.stage.store(index as u64 + 1, Ordering::Relaxed);
        tracing::debug!(?stage, "stage applied");
    }
    let mut http = default.into_stats();
    http.merge(fallback.into_stats());
    Ok(http)
}
