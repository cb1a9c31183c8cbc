//! Workers: take accepted payments and bring each to a known outcome.
//!
//! The rules that make a payment charged at most once live here:
//! - before every send, the attempt (processor + `requestedAt`) is made
//!   durable, so that after a crash the payment is resolved where it may
//!   have gone. On a lone embedded store that write is usually the
//!   acceptance itself: the edge asks [`routing::plan`] where the payment would go now
//!   and records that attempt with the payment; the worker sends it as
//!   planned if the policy still agrees, and records another attempt only if
//!   not. On shared storage the worker always records the attempt, which
//!   also checks that this instance still holds the payment;
//! - an attempt with an unknown outcome (timeout, connection lost after
//!   sending) pins the payment to that processor: it is re-sent there with the
//!   same `requestedAt` until the processor gives a definite answer; a
//!   "422 already exists" means it was processed; only a definite failure
//!   confirmed by a status query (`GET /payments/{id}` -> 404) frees the
//!   payment to go elsewhere. The re-send suffers the same processor delay as
//!   the original, so once it is answered the original has been too;
//! - the ledger records only known outcomes.
//!
//! Every send's outcome (approved, declined, error, timeout, with its
//! latency) feeds the health engine under the payment's segment (method x
//! country), and a fresh payment is routed by the policy over two gates per
//! processor: the health of its segment (a DOWN segment waits, like a down
//! circuit, and gets one trial payment per interval) and the circuit.
//! Payments pinned to a processor by an open attempt ignore health: they must
//! be resolved there whatever its status.

use std::sync::Arc;
use std::time::Duration;

use reroute_core::concurrency::Sample;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::task::TaskTracker;

use reroute_core::{Decision, Gate, Signal, Timestamp};
use reroute_store::{Attempt, Outcome, PendingPayment};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::lanes::Permit;
use crate::processor::{AttemptResult, Lookup};
use crate::queue::Job;
use crate::resolution::{self, Answer, Doubt};
use crate::routing;
use crate::settle;
use crate::state::Shared;

/// Takes payments off the queue until shutdown, each into a task of its
/// own. A payment holds one of `workers` routing slots from the moment it
/// leaves the queue until it joins its processor's lane (so payments
/// waiting for a processor to recover, or for patience to run out, hold
/// one), then only its place in the lane: sends in flight are limited per
/// processor, by [`crate::lanes`], not by the number of workers, and a
/// lane's backlog is what the spill rule reads.
pub async fn run(shared: Arc<Shared>, cancel: CancellationToken, tasks: TaskTracker) {
    let slots = Arc::new(Semaphore::new(shared.config.workers));
    loop {
        let slot = tokio::select! {
            _ = cancel.cancelled() => return,
            slot = Arc::clone(&slots).acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => return,
            },
        };
        let job = tokio::select! {
            _ = cancel.cancelled() => return,
            job = shared.queue.pop() => job,
        };
        let shared = Arc::clone(&shared);
        let cancel = cancel.clone();
        tasks.spawn(async move {
            // Cancelled mid-way, the payment stays pending in the store and
            // is resumed at the next start.
            // One span per payment: every event of its attempts carries the id.
            let id = job.pending.payment.id;
            let span = tracing::info_span!("payment", correlation_id = %id);
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = process(&shared, job, slot).instrument(span) => {}
            }
            shared.queue.done(id);
        });
    }
}

/// Where a payment stands while a worker holds it.
enum Next {
    Done,
    Continue,
}

/// A payment while it is worked on.
struct Work {
    payment: PendingPayment,
    /// The plan recorded at acceptance, until sent as planned or replaced by
    /// the first fresh attempt.
    plan: Option<Attempt>,
    /// Which sends of the open attempt may have been stored unseen.
    doubt: Doubt,
    /// Which processors may take this payment at all, by fee.
    eligible: Vec<bool>,
    /// After a kernel crash ([`PendingPayment::unrecorded`]): the
    /// processors, other than the recorded attempt's, that may have it
    /// unrecorded and have not been cleared ([`look_elsewhere`]).
    elsewhere: Vec<usize>,
    /// The routing slot, until the first send has its place in a lane.
    slot: Option<OwnedSemaphorePermit>,
    /// Purges before the worker took it ([`crate::queue::Queue::purged_since`]).
    taken_after: u64,
}

async fn process(shared: &Shared, job: Job, slot: OwnedSemaphorePermit) {
    let taken_after = job.taken_after;
    let mut payment = job.pending;
    let plan = if job.unsent_plan {
        payment.attempt.take()
    } else {
        None
    };
    // A payment taken over from the store (a previous run's, another
    // instance's, or one this instance held without working on it) may
    // have been sent by whoever held it, at any instant up to now.
    let took_at = Timestamp::now();
    let doubt = match payment.attempt {
        Some(_) => Doubt::since(took_at),
        None => Doubt::CLEAR,
    };
    let eligible: Vec<bool> = shared
        .registry
        .by_fee()
        .iter()
        .map(|p| {
            p.url.is_some()
                && p.supports(
                    payment.payment.payment_method.as_deref(),
                    payment.payment.country.as_deref(),
                )
        })
        .collect();
    let elsewhere = if payment.unrecorded {
        let recorded = payment
            .attempt
            .as_ref()
            .and_then(|a| shared.registry.index_of(&a.processor));
        (0..eligible.len())
            .filter(|&i| eligible[i] && Some(i) != recorded)
            .collect()
    } else {
        Vec::new()
    };
    let mut work = Work {
        payment,
        plan,
        doubt,
        eligible,
        elsewhere,
        slot: Some(slot),
        taken_after,
    };
    loop {
        let step = match (work.elsewhere.first(), work.payment.attempt.clone()) {
            (Some(&index), _) => look_elsewhere(shared, &mut work, index).await,
            (None, Some(attempt)) => resolve(shared, &mut work, attempt).await,
            (None, None) => attempt_fresh(shared, &mut work).await,
        };
        if let Next::Done = step {
            return;
        }
    }
}

/// Sends a payment that has no open attempt to the processor the policy
/// picks: as `plan`ned if the policy picks the planned processor (the plan is
/// already durable), with a newly recorded attempt otherwise.
async fn attempt_fresh(shared: &Shared, work: &mut Work) -> Next {
    // Created before the gates are read, so that no wake-up is missed.
    let changed = shared.breakers.changed();
    let opened = shared.health_opened.notified();
    let now = Timestamp::now();
    let payment = &work.payment.payment;
    let index = match shared.config.policy.choose_by(
        &work.eligible,
        |index| routing::gate(shared, index, payment, now),
        payment.accepted_at,
        now,
    ) {
        Decision::Send {
            processor,
            trial: false,
        } => routing::spill(shared, payment, &work.eligible, processor, now),
        Decision::Send { processor, .. } => processor,
        Decision::WaitUntil(until) => {
            tokio::select! {
                _ = opened => {}
                _ = wait(changed, until) => {}
            }
            return Next::Continue;
        }
        Decision::NoCandidate => {
            tracing::error!(id = %payment.id, "no processor can take this payment; it stays pending");
            wait(changed, now.plus_millis(60_000)).await;
            return Next::Continue;
        }
    };
    let processor = &shared.registry.by_fee()[index];
    // A new attempt: none of its sends can have been stored yet.
    work.doubt = Doubt::CLEAR;
    let lane = enter_lane(shared, work, index).await;
    // `requestedAt` is the instant of the first send (MISSION rule 2): taken
    // once the lane has room, not when the payment was accepted (the plan's
    // instant) or routed. Should this process die before the outcome of a
    // planned attempt is recorded, the next one resolves the recorded plan
    // at this processor and takes the instant from its books.
    let attempt = Attempt {
        processor: processor.id.to_string(),
        requested_at: Timestamp::now(),
    };
    let planned = work
        .plan
        .take_if(|a| a.processor == processor.id.as_str())
        .is_some();
    if planned {
        // Sent without asking the store: the purge's fence is the queue's.
        if shared.queue.purged_since(work.taken_after) {
            tracing::info!(id = %work.payment.payment.id, "purged before its send; not sent");
            return Next::Done;
        }
    } else {
        if let Some(stop) = begin(shared, &work.payment, &attempt).await {
            return stop;
        }
        // The plan, if any, is replaced for good.
        work.plan = None;
    }
    work.payment.attempt = Some(attempt.clone());
    // Boxed, as every send and lookup is: a payment waiting in a lane's
    // backlog (thousands after an outage) is a task as large as its future,
    // and a future is as large as its largest step, here the send it has not
    // begun. Boxed, a backlog's tasks take half the memory (heaptrack
    // through the final's outage: BENCHMARKS.md).
    Box::pin(send(shared, work, index, attempt, lane)).await
}

/// Waits for room in `processor`'s lane. Joining its backlog, the payment
/// gives its routing slot to the next one, unless the backlog is already so
/// long that it should hold the queue back (each waiting payment is a task
/// in memory).
async fn enter_lane<'a>(shared: &'a Shared, work: &mut Work, processor: usize) -> Permit<'a> {
    if shared.lanes.waiting(processor) < MAX_LANE_BACKLOG {
        work.slot = None;
    }
    let lane = shared.lanes.acquire(processor).await;
    work.slot = None;
    lane
}

/// Records `attempt` as about to be sent, which also checks that the payment
/// is still pending and still this instance's ([`reroute_store::Store::begin_attempt`]).
/// `None`: send it. Otherwise do not, and the step ends: `Done` when the
/// payment is not this instance's to send (finished, purged, or taken over
/// by another instance after this one stalled past its lease), `Continue`
/// to try again from the top when the store could not say.
async fn begin(shared: &Shared, payment: &PendingPayment, attempt: &Attempt) -> Option<Next> {
    match shared
        .store
        .begin_attempt(payment.payment.id, attempt.clone())
        .await
    {
        Ok(true) => None,
        Ok(false) => {
            tracing::info!(id = %payment.payment.id, "no longer pending here; not sent");
            Some(Next::Done)
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot record the attempt; retrying");
            tokio::time::sleep(Duration::from_millis(200)).await;
            Some(Next::Continue)
        }
    }
}

/// Whether the store no longer has the payment at all (purged), as opposed
/// to finished or held by another instance.
async fn purged(shared: &Shared, payment: &PendingPayment) -> bool {
    matches!(shared.store.find(payment.payment.id).await, Ok(None))
}

/// Resolves an open attempt at its processor: once every send of it that
/// may have been stored has landed or never will, a lookup decides;
/// before, a re-send with the same `requestedAt`, while the processor's
/// circuit lets it through.
async fn resolve(shared: &Shared, work: &mut Work, attempt: Attempt) -> Next {
    let Some(index) = shared.registry.index_of(&attempt.processor) else {
        // The processor left the registry: nothing can be resolved there.
        tracing::error!(id = %work.payment.payment.id, processor = %attempt.processor,
            "open attempt at a processor no longer configured; it stays pending");
        tokio::time::sleep(Duration::from_secs(60)).await;
        return Next::Continue;
    };
    let now = Timestamp::now();
    let landed = work
        .doubt
        .deadline(|since| shared.landing.deadline(index, since, now))
        .is_some_and(|deadline| deadline <= now);
    if landed {
        return Box::pin(look_up(shared, work, index, attempt, None)).await;
    }
    let changed = shared.breakers.changed();
    match shared.breakers.claim(index, now) {
        Gate::Go | Gate::Trial => {}
        Gate::WaitUntil(until) => {
            wait(changed, until).await;
            return Next::Continue;
        }
    }
    let lane = enter_lane(shared, work, index).await;
    // A re-send leaves only while the payment is pending and this
    // instance's: a stale holder (paused past its lease, or the sweep
    // finding a payment that just finished) stops here.
    match begin(shared, &work.payment, &attempt).await {
        None => Box::pin(send(shared, work, index, attempt, lane)).await,
        // Gone from the store: purged. An earlier send of the attempt may
        // be stored after the purge, so the processor is asked until none
        // can land any more (a found payment is restored to the ledger).
        Some(Next::Done) if purged(shared, &work.payment).await => {
            drop(lane);
            Box::pin(look_up(shared, work, index, attempt, None)).await
        }
        Some(stop) => stop,
    }
}

/// After a kernel crash ([`PendingPayment::unrecorded`]): asks `index`, a
/// processor the recorded attempt does not name, whether it has the
/// payment, which may have been sent there under an attempt the crash took
/// from the store. Found, the payment is settled there with the books'
/// `requestedAt`; a 404 clears the processor once a send that left when
/// this process started has passed its landing bound (any send made before
/// the crash left earlier: after the first payments, a 404 clears at
/// once), and is asked again at that bound until then; no answer is asked
/// again later. Nothing is sent anywhere before every such processor is
/// cleared (RELIABILITY.md, "After a kernel crash").
async fn look_elsewhere(shared: &Shared, work: &mut Work, index: usize) -> Next {
    let processor = &shared.registry.by_fee()[index];
    let url = processor
        .url
        .as_deref()
        .expect("only processors with a URL are eligible");
    let looked_at = Timestamp::now();
    let until = match shared.client.lookup(url, work.payment.payment.id).await {
        Lookup::Found { requested_at } => {
            tracing::warn!(processor = %processor.id,
                "found at a processor its store did not record, after a kernel crash");
            let attempt = Attempt {
                processor: processor.id.to_string(),
                requested_at,
            };
            return finish(shared, &work.payment, Outcome::Processed(attempt)).await;
        }
        Lookup::NotFound => {
            let bound = shared.landing.deadline(index, shared.started_at, looked_at);
            if bound <= looked_at {
                work.elsewhere.remove(0);
                return Next::Continue;
            }
            bound
        }
        Lookup::Unknown => looked_at.plus_millis(PINNED_RETRY_MS),
    };
    tokio::time::sleep(time_to(until)).await;
    Next::Continue
}

/// One send of `attempt`, with its place in the processor's lane; the doubt
/// says which earlier sends of it may still be stored.
async fn send(
    shared: &Shared,
    work: &mut Work,
    index: usize,
    attempt: Attempt,
    lane: Permit<'_>,
) -> Next {
    let processor = &shared.registry.by_fee()[index];
    let url = processor
        .url
        .as_deref()
        .expect("only processors with a URL are eligible");
    let payment = &work.payment.payment;
    let id = payment.id;
    let in_flight = shared.lanes.in_flight(index);
    let left = Timestamp::now();
    // The answer to a send made while the processor was believed down (a
    // trial, a re-send let through) may measure the outage rather than how
    // fast it pays once back ([`Sample::Trial`]).
    let believed_up = routing::believed_up(shared, index, payment, left);
    let started = std::time::Instant::now();
    let counted = shared.metrics.attempt_started();
    let wait = shared.landing.send_wait(index, left);
    let result = shared
        .client
        .pay(url, payment, attempt.requested_at, wait)
        .await;
    drop(counted);
    drop(lane);
    let elapsed = started.elapsed();
    shared
        .metrics
        .attempt(processor.id.as_str(), result, elapsed);
    let latency_ms = u32::try_from(elapsed.as_millis()).unwrap_or(u32::MAX);
    let now = Timestamp::now();
    let signal = match result {
        AttemptResult::Refused | AttemptResult::Failed | AttemptResult::Unknown => Signal::Failed,
        _ => Signal::Answered,
    };
    shared.breakers.observe(index, signal, now);
    let sample = match result {
        AttemptResult::Refused | AttemptResult::Unknown => Sample::Overload { in_flight },
        AttemptResult::Failed => Sample::Failed {
            latency_ms,
            in_flight,
        },
        _ if !believed_up => Sample::Trial {
            latency_ms,
            in_flight,
        },
        _ => Sample::Answered {
            latency_ms,
            in_flight,
        },
    };
    shared
        .lanes
        .observe(index, sample, shared.landing.announced(index), now);
    settle::observe_health(shared, index, payment, result, latency_ms, now);
    tracing::debug!(%id, processor = %processor.id, ?result, "attempt");
    work.doubt = work.doubt.after_send(result, left);
    match resolution::on_answer(result, work.doubt, attempt.requested_at) {
        Answer::Settled(verdict) => conclude(shared, work, attempt, Some(result), verdict).await,
        // A status query is cheap and, unlike a re-send, not slowed by the
        // processor's delay.
        Answer::LookUp => look_up(shared, work, index, attempt, Some(result)).await,
    }
}

/// Asks the processor whether it has the payment, after the send answered
/// `sent` (`None`: the lookup stands alone, every doubtful send having
/// landed or never to).
async fn look_up(
    shared: &Shared,
    work: &mut Work,
    index: usize,
    attempt: Attempt,
    sent: Option<AttemptResult>,
) -> Next {
    let url = shared.registry.by_fee()[index]
        .url
        .as_deref()
        .expect("only processors with a URL are eligible");
    let looked_at = Timestamp::now();
    let found = shared.client.lookup(url, work.payment.payment.id).await;
    work.doubt = work.doubt.after_lookup(sent, found, looked_at);
    let deadline = work
        .doubt
        .deadline(|since| shared.landing.deadline(index, since, looked_at));
    let verdict = resolution::on_lookup(sent, found, looked_at, deadline, attempt.requested_at);
    if verdict == resolution::Verdict::Free {
        work.doubt = Doubt::CLEAR;
    }
    conclude(shared, work, attempt, sent, verdict).await
}

/// Acts on what was concluded about the payment.
async fn conclude(
    shared: &Shared,
    work: &mut Work,
    attempt: Attempt,
    sent: Option<AttemptResult>,
    verdict: resolution::Verdict,
) -> Next {
    use resolution::Verdict;
    let payment = &mut work.payment;
    match verdict {
        Verdict::Processed(requested_at) if requested_at == attempt.requested_at => {
            finish(shared, payment, Outcome::Processed(attempt)).await
        }
        // Processed by a send with another `requestedAt`: the processor's
        // own is what its books count, so record that one.
        Verdict::Processed(requested_at) => {
            let stored = Attempt {
                requested_at,
                ..attempt
            };
            finish(shared, payment, Outcome::Processed(stored)).await
        }
        Verdict::Declined => finish(shared, payment, Outcome::Declined(attempt)).await,
        // Definitely not stored, nor can it be: the payment may go
        // elsewhere, with a new requestedAt.
        Verdict::Free => {
            payment.attempt = None;
            Next::Continue
        }
        // Unanswered: re-send at once, as a slow processor is still
        // answering (each re-send waits for its answer).
        Verdict::Pinned { .. } if sent == Some(AttemptResult::Unknown) => Next::Continue,
        // Refused or failing while an earlier send may still land: wait
        // until it has landed (then a lookup decides) or the processor
        // comes back.
        Verdict::Pinned { until } => {
            let changed = shared.breakers.changed();
            let retry = Timestamp::now().plus_millis(PINNED_RETRY_MS);
            wait(changed, until.map_or(retry, |until| until.max(retry))).await;
            Next::Continue
        }
    }
}

/// The longest backlog of a lane that payments join without holding a
/// routing slot; beyond it they wait in the queue, which costs less memory:
/// a payment in a lane's backlog is a task (~2 KB with what it holds), one
/// in the queue ~150 bytes. A payment's expected wait counts those ahead of
/// it, all in the lane; the lane's limit grows while its backlog would wait
/// over a second at that limit, which 1,024 waiting (and the routing slots'
/// payments) still shows up to the limit's maximum (1,000) at any latency
/// above ~0.9 s. At 4,096 the preview's release of the
/// payments queued through its outage spawned ~5,000 tasks at once, 6.9 MB
/// of the core's 10.7 MB jump (`perf` on `brk`; BENCHMARKS.md).
const MAX_LANE_BACKLOG: usize = 1_024;

/// The shortest wait before a pinned attempt is tried again.
const PINNED_RETRY_MS: i64 = 200;

/// Records the outcome ([`settle::finish`]); the payment is done with.
async fn finish(shared: &Shared, payment: &PendingPayment, outcome: Outcome) -> Next {
    settle::finish(shared, payment, outcome).await;
    Next::Done
}

async fn wait(changed: tokio::sync::futures::Notified<'_>, until: Timestamp) {
    tokio::select! {
        _ = changed => {}
        _ = tokio::time::sleep(time_to(until)) => {}
    }
}

/// From now until `until`: at least 1 ms, at most a minute.
fn time_to(until: Timestamp) -> Duration {
    let ms = (until.millis() - Timestamp::now().millis()).clamp(1, 60_000) as u64;
    Duration::from_millis(ms)
}
