//! The writer's grouping rules, without a file.

use super::writer::*;
use std::sync::mpsc;

use reroute_core::{CorrelationId, Money, Timestamp};
use tokio::sync::oneshot;

use crate::{Attempt, Durability, NewPayment, Outcome};

fn finish() -> Command {
    let attempt = Attempt {
        processor: "default".into(),
        requested_at: Timestamp::from_millis(0),
    };
    Command::Finish(
        CorrelationId::from_bytes([1; 16]),
        Outcome::Processed(attempt),
        Timestamp::from_millis(0),
        oneshot::channel().0,
    )
}

fn accept() -> Command {
    Command::Accept(
        NewPayment {
            id: CorrelationId::from_bytes([2; 16]),
            amount: Money::from_minor(100),
            payment_method: None,
            country: None,
            accepted_at: Timestamp::from_millis(0),
        },
        None,
        oneshot::channel().0,
    )
}

#[test]
fn only_a_group_with_something_relied_on_waits_for_the_disk_and_only_when_stable() {
    use Durability::{Os, Stable};
    assert_eq!(Sync::for_group(Stable, &[finish(), finish()]), Sync::Normal);
    assert_eq!(Sync::for_group(Stable, &[finish(), accept()]), Sync::Full);
    assert_eq!(Sync::for_group(Os, &[finish(), accept()]), Sync::Normal);
}

#[test]
fn outcomes_wait_for_company_and_an_accept_ends_the_wait() {
    let (tx, rx) = mpsc::channel();
    tx.send(accept()).unwrap();
    let mut batch = vec![finish()];
    gather_outcomes(&rx, &mut batch);
    assert_eq!(batch.len(), 2, "the accept joins the outcome's group");

    // An accept first: nothing waits.
    tx.send(finish()).unwrap();
    let mut batch = vec![accept()];
    gather_outcomes(&rx, &mut batch);
    assert_eq!(batch.len(), 1);

    // Outcomes alone: they go once the delay has passed.
    let mut batch = vec![finish()];
    gather_outcomes(&rx, &mut batch);
    assert_eq!(batch.len(), 2, "the queued outcome joins");
}
