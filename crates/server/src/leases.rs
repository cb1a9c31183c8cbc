//! Keeps this instance's payments leased, and takes over the payments of
//! instances that died (their leases ran out): they join this instance's
//! queue with their open attempts, to be resolved where they may have gone.
//! Each round also queues what this instance holds but never queued (an
//! acceptance that committed although the store answered an error).

use std::sync::Arc;
use std::time::Duration;

use reroute_store::{PendingPayment, StoreFuture};
use tokio_util::sync::CancellationToken;

use crate::queue::Job;
use crate::state::Shared;

/// Payments taken over per store call.
pub const RECLAIM_BATCH: usize = 1_000;

/// Takes over every orphaned payment now; returns how many.
pub async fn reclaim_all(shared: &Shared) -> Result<usize, reroute_store::StoreError> {
    queue_all(shared, || shared.store.reclaim(RECLAIM_BATCH)).await
}

/// Queues what `take` hands over, batch after batch, until a batch is not
/// full; returns how many.
async fn queue_all<'a>(
    shared: &Shared,
    take: impl Fn() -> StoreFuture<'a, Vec<PendingPayment>>,
) -> Result<usize, reroute_store::StoreError> {
    let mut taken = 0;
    loop {
        let batch = take().await?;
        let n = batch.len();
        taken += n;
        for payment in batch {
            shared.queue.push(Job::reclaimed(payment));
        }
        if n < RECLAIM_BATCH {
            return Ok(taken);
        }
    }
}

/// At start-up: takes over the payments an earlier process of this
/// instance still held (see [`reroute_store::Store::take_over_predecessor`]),
/// then every orphaned one; returns how many.
pub async fn resume(shared: &Shared) -> Result<usize, reroute_store::StoreError> {
    let own = queue_all(shared, || shared.store.take_over_predecessor(RECLAIM_BATCH)).await?;
    Ok(own + reclaim_all(shared).await?)
}

/// How old a held payment must be before it is looked for in the queue: a
/// payment just accepted may still be on its way there.
const ADOPT_AFTER_MS: i64 = 5_000;

/// Queues the payments this process holds in the store but is not working
/// on (see [`reroute_store::Store::held`]); returns how many.
pub async fn adopt_unqueued(shared: &Shared) -> Result<usize, reroute_store::StoreError> {
    let before = reroute_core::Timestamp::now().plus_millis(-ADOPT_AFTER_MS);
    // Begun before the read: payments finished after its snapshot are not
    // queued again.
    let sweep = shared.queue.sweep();
    let held = shared.store.held(before, RECLAIM_BATCH).await?;
    Ok(sweep.adopt(held))
}

/// Renews and reclaims every `period` (a third of the lease) until stopped.
pub async fn run(shared: Arc<Shared>, period: Duration, cancel: CancellationToken) {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(period) => {}
        }
        let renewed = shared.store.renew().await;
        if let Err(e) = &renewed {
            tracing::warn!(error = %e, "cannot renew leases");
        }
        shared
            .leases_renewed
            .store(renewed.is_ok(), std::sync::atomic::Ordering::Relaxed);
        match reclaim_all(&shared).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(
                payments = n,
                "took over payments of an instance that stopped"
            ),
            Err(e) => tracing::warn!(error = %e, "cannot reclaim payments"),
        }
        match adopt_unqueued(&shared).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(
                payments = n,
                "queued payments held in the store that were never queued"
            ),
            Err(e) => tracing::warn!(error = %e, "cannot compare held payments with the queue"),
        }
    }
}
