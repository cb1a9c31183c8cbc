//! What became of a payment, recorded: its outcome in the store — kept
//! trying, since the processor's books already count it — and each send's
//! outcome in the health engine. Called by [`crate::worker`] once an
//! answer or a lookup has decided.

use std::time::Duration;

use reroute_core::Timestamp;
use reroute_core::health::{self, Transaction};
use reroute_store::{NewPayment, Outcome, PendingPayment};

use crate::processor::AttemptResult;
use crate::state::Shared;

/// Feeds one send's outcome to the health engine. "Already processed" is the
/// processor confirming an earlier send: it answered, so it counts as an
/// approval.
pub(crate) fn observe_health(
    shared: &Shared,
    index: usize,
    payment: &NewPayment,
    result: AttemptResult,
    latency_ms: u32,
    now: Timestamp,
) {
    let outcome = match result {
        AttemptResult::Approved | AttemptResult::AlreadyProcessed => health::Outcome::Approved,
        AttemptResult::Declined => health::Outcome::Declined,
        AttemptResult::Refused | AttemptResult::Failed => health::Outcome::Error,
        AttemptResult::Unknown => health::Outcome::Timeout,
    };
    let tx = Transaction {
        payment_method: payment.payment_method.as_deref(),
        country: payment.country.as_deref(),
        outcome,
        latency_ms: Some(latency_ms),
        amount: Some(payment.amount),
        currency: None,
        at: now,
    };
    let recorded = shared.health.record(index, &tx, now);
    shared.raise(&recorded.alerts);
    if recorded.opened {
        tracing::info!(processor = %shared.registry.by_fee()[index].id, "health gate reopened by a trial");
        shared.health_opened.notify_waiters();
    }
}

/// Records `outcome` for `payment`, until the store takes it (restored
/// with the payment if a purge took it while its send was in flight).
pub(crate) async fn finish(shared: &Shared, payment: &PendingPayment, outcome: Outcome) {
    let id = payment.payment.id;
    // Summaries count by it, however long the commit (or its retries) take.
    let answered_at = Timestamp::now();
    // The processor's books have a processed payment from now on: summaries
    // wait for its commit ([`crate::recording`]).
    let _recording = match &outcome {
        Outcome::Processed(attempt) => Some(shared.recording.begin(attempt.requested_at)),
        _ => None,
    };
    loop {
        match shared
            .store
            .finish_answered(id, outcome.clone(), answered_at)
            .await
        {
            Ok(true) => {
                tracing::debug!(?outcome, "payment completed");
                return;
            }
            // Finished by another instance, or purged while this send was
            // in flight: then the processor has it after the purge, and the
            // ledger must too (`restore` changes nothing where the store
            // still has the payment).
            Ok(false) => match shared
                .store
                .restore(payment.payment.clone(), outcome.clone(), answered_at)
                .await
            {
                Ok(true) => {
                    tracing::warn!(%id, ?outcome, "outcome of a payment purged while its send was in flight: recorded");
                    return;
                }
                Ok(false) => {
                    tracing::info!(%id, "outcome for a payment already finished");
                    return;
                }
                Err(e) => {
                    tracing::error!(%id, error = %e, "cannot record the outcome of a purged payment; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            },
            Err(e) => {
                // The processor has it; the ledger must learn it. Keep trying:
                // dropping it would leave the ledger short of the books.
                tracing::error!(%id, error = %e, "cannot record the outcome; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}
