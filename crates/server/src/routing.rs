//! Where a fresh payment goes: the cheapest processor that takes it whose
//! segment's health gate and circuit both let it through ([`gate`]), spilled
//! to the next by fee when that one would take too long ([`spill`]). The
//! API asks it at acceptance for the [`plan`] it records with the payment;
//! a [`crate::worker`] asks it again before the first send. The decisions
//! themselves are `reroute-core`'s policy, health engine and breakers; this
//! module reads them off the shared state.

use reroute_core::{Gate, Timestamp};
use reroute_store::{Attempt, NewPayment};

use crate::state::Shared;

/// Whether a processor of the registry takes payments of this method in
/// this country (`None`: any).
pub fn takes(shared: &Shared, method: Option<&str>, country: Option<&str>) -> bool {
    shared
        .registry
        .by_fee()
        .iter()
        .any(|p| p.url.is_some() && p.supports(method, country))
}

/// Where `payment` goes if nothing changes before a worker takes it: the
/// cheapest processor that takes it, when both its health gate and its
/// circuit say go (the policy picks it then, whatever its patience). `None`
/// when that processor is in any doubt: the worker decides then. Takes no
/// trial slot. Always `None` on shared storage: there the worker records
/// every attempt, since that write is also the check that this instance
/// still holds the payment (an instance stalled past its lease must not send
/// a plan another instance has taken over and sent elsewhere).
pub fn plan(shared: &Shared, payment: &NewPayment, now: Timestamp) -> Option<Attempt> {
    if !shared.store.exclusive() {
        return None;
    }
    let method = payment.payment_method.as_deref();
    let country = payment.country.as_deref();
    let (index, processor) = shared
        .registry
        .by_fee()
        .iter()
        .enumerate()
        .find(|(_, p)| p.url.is_some() && p.supports(method, country))?;
    believed_up(shared, index, payment, now).then(|| Attempt {
        processor: processor.id.to_string(),
        requested_at: payment.accepted_at,
    })
}

/// Whether processor `index` is believed up for `payment` now: its health
/// gate for the payment's segment and its circuit both say go (no trial,
/// no wait). Takes no trial slot.
pub fn believed_up(shared: &Shared, index: usize, payment: &NewPayment, now: Timestamp) -> bool {
    let method = payment.payment_method.as_deref();
    let country = payment.country.as_deref();
    shared.breakers.is_up(index) && shared.health.gate(index, method, country, now) == Gate::Go
}

/// Whether a fresh payment may go to this processor now: the health gate of
/// its segment first, then the circuit. A trial slot is taken only when both
/// let the payment through (the circuit's claim may take one of its own).
pub fn gate(shared: &Shared, index: usize, payment: &NewPayment, now: Timestamp) -> Gate {
    let method = payment.payment_method.as_deref();
    let country = payment.country.as_deref();
    let health = shared.health.gate(index, method, country, now);
    if let Gate::WaitUntil(_) = health {
        return health;
    }
    let circuit = shared.breakers.claim(index, now);
    if let Gate::WaitUntil(_) = circuit {
        return circuit;
    }
    if health == Gate::Trial {
        // Another worker may have taken the trial since the peek.
        return match shared.health.claim(index, method, country, now) {
            Gate::WaitUntil(until) => Gate::WaitUntil(until),
            _ => Gate::Trial,
        };
    }
    circuit
}

/// Where a payment the policy sends to `chosen` goes when `chosen` would
/// take too long ([`reroute_core::Policy::spill`]): the time a processor is
/// expected to take is its lane's backlog over what it carries, plus its
/// latency.
pub fn spill(
    shared: &Shared,
    payment: &NewPayment,
    eligible: &[bool],
    chosen: usize,
    now: Timestamp,
) -> usize {
    let to = shared.config.policy.spill(
        chosen,
        eligible,
        // As for any fresh payment: a processor this instance left DOWN
        // (it sent it nothing for a while) takes spilled payments as
        // trials, and recovers by them.
        |i| !matches!(gate(shared, i, payment, now), Gate::WaitUntil(_)),
        |i| {
            shared
                .lanes
                .expected_done_ms(i, shared.landing.announced(i), now)
        },
    );
    if to != chosen {
        shared.metrics.spilled(
            shared.registry.by_fee()[chosen].id.as_str(),
            shared.registry.by_fee()[to].id.as_str(),
        );
    }
    to
}
