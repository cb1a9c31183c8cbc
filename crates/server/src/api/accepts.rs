//! The accept path: a payment made durable in the store and queued for a
//! worker ([`accept_and_queue`], for `POST /payments` and the edges'
//! frames), through the accept table ([`crate::accepts`]) when the core has
//! one — its own accepts by claim, store, publish; the edges' accepts taken
//! from their rings into the store and the queue; the table checked and
//! refilled at start-up.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use reroute_core::Timestamp;
use reroute_store::{Acceptance, NewPayment, PendingPayment, StoreError};
use tokio_util::sync::CancellationToken;

use crate::accepts::owners::MAX_OWNERS;
use crate::accepts::table::Kind;
use crate::accepts::{AcceptTable, Probe, Record, store_key};
use crate::config::StoreChoice;
use crate::queue::Job;
use crate::state::Shared;

/// How long an accept waits for another process's claim on its id's slot
/// to be published (it takes microseconds; longer means a stuck process).
const CLAIM_WAIT: Duration = Duration::from_secs(2);

/// How often the rings are looked at while payments come: a payment an
/// edge accepted reaches the queue within this. Measured against a nudge
/// over the edge's socket per payment: the preview's p99 0.77 against 0.93
/// ms (median of three interleaved pairs), the edges' CPU −15% (BENCHMARKS.md).
const LOOK: Duration = Duration::from_millis(5);

/// The longest pause between two looks when none finds anything.
const IDLE_LOOK: Duration = Duration::from_millis(80);

/// Accepts a payment: through the accept table when the core has one (so
/// that the edges' accepts and its own agree), else by [`store_and_queue`].
pub(crate) async fn accept_and_queue(
    shared: Arc<Shared>,
    payment: NewPayment,
) -> Result<Acceptance, StoreError> {
    match shared.accepts.clone() {
        Some(table) => accept(shared, &table, payment).await,
        None => store_and_queue(shared, payment).await,
    }
}

/// Stores a payment durably, with the attempt it would get now (see
/// [`crate::routing::plan`]), and, if it is new, queues it for a worker.
pub(crate) async fn store_and_queue(
    shared: Arc<Shared>,
    payment: NewPayment,
) -> Result<Acceptance, StoreError> {
    let plan = crate::routing::plan(&shared, &payment, Timestamp::now());
    let acceptance = shared
        .store
        .accept_with_plan(payment.clone(), plan.clone())
        .await?;
    queue_new(
        &shared,
        acceptance,
        PendingPayment {
            payment,
            attempt: plan,
            unrecorded: false,
        },
    );
    Ok(acceptance)
}

/// Queues a payment for a worker if the store took it as new.
fn queue_new(shared: &Shared, acceptance: Acceptance, pending: PendingPayment) {
    if acceptance == Acceptance::New {
        shared.metrics.accepted("accepted");
        shared.queue.push(Job::accepted(pending));
    }
}

/// Stores a payment the table holds and the store may not: at start-up
/// after a kernel crash (`crashed`), marked unrecorded, as the store may
/// have lost it after it was sent ([`reroute_store::Store::accept_unrecorded`]);
/// otherwise by [`store_and_queue`]. If it is new, queues it for a worker.
async fn keep(
    shared: Arc<Shared>,
    payment: NewPayment,
    crashed: bool,
) -> Result<Acceptance, StoreError> {
    if !crashed {
        return store_and_queue(shared, payment).await;
    }
    let acceptance = shared.store.accept_unrecorded(payment.clone()).await?;
    queue_new(
        &shared,
        acceptance,
        PendingPayment {
            payment,
            attempt: None,
            unrecorded: true,
        },
    );
    Ok(acceptance)
}

/// Accepts a payment through the table: the id's slot decides a duplicate
/// or conflict; a new id is claimed, stored, queued and published.
pub(crate) async fn accept(
    shared: Arc<Shared>,
    table: &AcceptTable,
    payment: NewPayment,
) -> Result<Acceptance, StoreError> {
    let deadline = Instant::now() + CLAIM_WAIT;
    let claim = loop {
        match table.probe(&payment.id) {
            Probe::Known(existing) => {
                // Published, maybe by an edge still syncing it: the answer
                // waits for the slot to be on disk, as the edge's does.
                if table.is_stable() {
                    table.sync_id(&payment.id).map_err(unsynced)?;
                }
                return Ok(if existing == payment.amount {
                    Acceptance::Duplicate
                } else {
                    Acceptance::Conflict { existing }
                });
            }
            Probe::Claimed(claim) => break claim,
            Probe::Busy(slot, word) => {
                if let Some(claim) = table.take_over(slot, word, &payment.id) {
                    break claim;
                }
                if Instant::now() > deadline {
                    return Err(StoreError::Unavailable(format!(
                        "the accept table's slot for {} stayed claimed for {} s",
                        payment.id,
                        CLAIM_WAIT.as_secs()
                    )));
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            Probe::Full => return store_and_queue(shared, payment).await,
        }
    };
    table.write(&claim, &payment);
    let stored = store_and_queue(shared, payment.clone()).await;
    match &stored {
        Ok(Acceptance::New | Acceptance::Duplicate) => table.publish(claim),
        Ok(Acceptance::Conflict { existing }) => {
            let known = NewPayment {
                amount: *existing,
                ..payment
            };
            table.write(&claim, &known);
            table.publish(claim);
        }
        Err(_) => table.abandon(claim),
    }
    stored
}

/// Stores every payment the edges published in their rings, queueing the
/// new ones, and moves the rings' tails past them. An entry still being
/// written stops its ring until the next call. The payments of every ring
/// go to the store together, so that they share one commit. A store error
/// leaves every ring where it was: the next call stores those payments
/// again, and the store tells the ones it has. `crashed`: at start-up
/// after a kernel crash, see [`keep`].
pub(crate) async fn drain(
    shared: &Arc<Shared>,
    table: &AcceptTable,
    crashed: bool,
) -> Result<usize, StoreError> {
    let mut tails = Vec::new();
    let mut batch = Vec::new();
    for owner in 0..MAX_OWNERS {
        let (tail, head) = table.ring(owner);
        let mut end = tail;
        while end != head {
            let (slot, accepted_at) = table.ring_entry(owner, end);
            let word = table.word(slot);
            if word.kind() == Kind::Claimed && table.is_current(word) && table.alive(word) {
                break;
            }
            // Not written (its owner died before publishing, or a purge
            // came): nothing was answered for it.
            if let Some(record) = table.read(slot) {
                batch.push(keep(
                    Arc::clone(shared),
                    slot_payment(&record, accepted_at),
                    crashed,
                ));
            }
            end = end.wrapping_add(1);
        }
        if end != tail {
            tails.push((owner, end));
        }
    }
    let mut stored = 0;
    for result in join_all(batch).await {
        match result? {
            Acceptance::New => stored += 1,
            Acceptance::Duplicate => {}
            Acceptance::Conflict { existing } => {
                // The table and the store disagree: only a table not
                // trusted could, and edges do not decide on those.
                tracing::error!(%existing, "a payment published by an edge conflicts with the store");
            }
        }
    }
    for (owner, end) in tails {
        table.set_tail(owner, end);
    }
    Ok(stored)
}

/// Drains the rings every [`LOOK`] while they hold payments, less often
/// (up to [`IDLE_LOOK`]) while they do not, until `cancel`; then once more.
/// Counts the duplicates the edges answered on the way.
pub async fn run(shared: Arc<Shared>, cancel: CancellationToken) {
    let Some(table) = shared.accepts.clone() else {
        return;
    };
    let mut pause = LOOK;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = cancel.cancelled() => break,
        }
        let duplicates: u64 = (0..MAX_OWNERS)
            .map(|owner| u64::from(table.take_duplicates(owner)))
            .sum();
        if duplicates > 0 {
            shared.metrics.accepted_many("duplicate", duplicates);
        }
        pause = match drain(&shared, &table, false).await {
            Ok(0) if duplicates == 0 => (pause * 2).min(IDLE_LOOK),
            Ok(_) => LOOK,
            Err(e) => {
                tracing::warn!(error = %e, "storing the edges' accepts failed; retrying");
                LOOK
            }
        };
    }
    if let Err(e) = drain(&shared, &table, false).await {
        tracing::warn!(error = %e, "storing the edges' last accepts failed; the next start will");
    }
}

/// After a kernel crash: stores every written slot of the table
/// (idempotently), queueing the ones the store did not have, marked
/// unrecorded ([`keep`]); their instant of acceptance, which only a ring
/// carried, is taken as now.
async fn keep_written(shared: &Arc<Shared>, table: &AcceptTable) -> Result<usize, StoreError> {
    let mut stored = 0;
    let now = Timestamp::now();
    for chunk in table.written().chunks(1024) {
        let batch = chunk
            .iter()
            .map(|record| keep(Arc::clone(shared), slot_payment(record, now), true));
        for result in join_all(batch).await {
            if result? == Acceptance::New {
                stored += 1;
            }
        }
    }
    Ok(stored)
}

/// A slot's payment, accepted at `accepted_at`: the table takes only
/// payments without a method or country.
fn slot_payment(record: &Record, accepted_at: Timestamp) -> NewPayment {
    NewPayment {
        id: record.id,
        amount: record.amount,
        payment_method: None,
        country: None,
        accepted_at,
    }
}

/// The table's sync failed: what a 2xx from it would rely on is not on disk.
fn unsynced(e: std::io::Error) -> StoreError {
    StoreError::Unavailable(format!("syncing the accept table: {e}"))
}

/// At start-up, before edges connect: stores what the rings hold, then, if
/// the table may lack ids the store has (new, from another boot, or filled
/// for another store file), refills it from the store. Until then edges do
/// not decide on it.
pub async fn prepare(shared: &Arc<Shared>, table: &AcceptTable) -> Result<(), StoreError> {
    let boot = reroute_store::boot_id();
    let store = match &shared.config.store {
        StoreChoice::Embedded(db) => store_key(db),
        StoreChoice::Postgres { .. } => 0,
    };
    // What edges accepted for this store and it has not stored yet. A
    // table filled for another store file is that store's: it is forgotten
    // below, not poured into this one.
    if store != 0 && table.filled_for().1 == store {
        // After a kernel crash the store may have lost payments it had
        // stored and sent (at `os`, its last commits were not on disk): the
        // ones the table kept are stored marked unrecorded, to be looked up
        // at every processor before any send.
        let crashed = table.filled_for().0 != boot;
        let mut stored = drain(shared, table, crashed).await?;
        // After a kernel crash the rings' pages may have missed the disk
        // while a slot's did (at `stable`, every slot answered 2xx did):
        // every written slot is stored, the ones the store has are known.
        if crashed {
            stored += keep_written(shared, table).await?;
        }
        if stored > 0 {
            tracing::info!(
                stored,
                "payments accepted by edges before this start stored"
            );
        }
    }
    if !crate::routing::takes(shared, None, None) {
        table.set_trusted(false);
        tracing::warn!(
            "no processor takes payments without a method and country: edges hand every payment to the core"
        );
        return Ok(());
    }
    if table.trusted() && table.filled_for() == (boot, store) {
        return Ok(());
    }
    table.set_trusted(false);
    if !reroute_store::boot_id_is_known(&boot) || store == 0 {
        tracing::warn!(
            "no boot id on this system, or no store file: the accept table is not used, edges hand every payment to the core"
        );
        return Ok(());
    }
    table.purge().map_err(unsynced)?;
    // Every id the store holds, refused ones too: an edge answers a known
    // id 200 or 409, as the store would.
    let known = shared.store.known().await?;
    let mut count = 0;
    for (id, amount) in known {
        let claim = match table.probe(&id) {
            Probe::Claimed(claim) => claim,
            Probe::Known(_) => continue,
            // A dead claim of the same id (edges do not claim meanwhile).
            Probe::Busy(slot, word) if let Some(claim) = table.take_over(slot, word, &id) => claim,
            Probe::Busy(..) | Probe::Full => {
                tracing::warn!(
                    table = %table.path().display(),
                    "the accept table has no room for the store's payments: edges hand every payment to the core"
                );
                return Ok(());
            }
        };
        let payment = NewPayment {
            id,
            amount,
            payment_method: None,
            country: None,
            // Not read from a slot: only a ring's entry carries the instant.
            accepted_at: Timestamp::from_millis(0),
        };
        table.write(&claim, &payment);
        table.publish(claim);
        count += 1;
    }
    table.set_filled_for(&boot, store);
    table.set_trusted(true);
    tracing::info!(
        table = %table.path().display(),
        payments = count,
        "accept table filled from the store"
    );
    Ok(())
}
