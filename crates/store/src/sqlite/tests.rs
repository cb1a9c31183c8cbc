//! The writer's grouping rules and the queries' plans, on a database in memory.

use std::time::Instant;

use rusqlite::Connection;

use super::commands::*;
use super::queries::{LEDGER, SUMMARY, SUMMARY_ANSWERED_BY};
use super::schema::{STATE_PENDING, STATE_PROCESSED, migrate};
use super::writer::*;

use reroute_core::{CorrelationId, Money, Timestamp};
use tokio::sync::oneshot;

use crate::write::Write;
use crate::{Acceptance, Attempt, Durability, NewPayment, Outcome, StoreResult};

const ID: [u8; 16] = [2; 16];

fn finish() -> (Command, oneshot::Receiver<StoreResult<bool>>) {
    let attempt = Attempt {
        processor: "default".into(),
        requested_at: Timestamp::from_millis(0),
    };
    let (tx, rx) = oneshot::channel();
    let cmd = Command::Write(Write::Finish(
        CorrelationId::from_bytes(ID),
        Outcome::Processed(attempt),
        Timestamp::from_millis(0),
        tx,
    ));
    (cmd, rx)
}

fn payment() -> NewPayment {
    NewPayment {
        id: CorrelationId::from_bytes(ID),
        amount: Money::from_minor(100),
        payment_method: None,
        country: None,
        accepted_at: Timestamp::from_millis(0),
    }
}

fn accept() -> (Command, oneshot::Receiver<StoreResult<Acceptance>>) {
    let (tx, rx) = oneshot::channel();
    (Command::Write(Write::Accept(payment(), None, tx)), rx)
}

fn purge() -> (Command, oneshot::Receiver<StoreResult<()>>) {
    let (tx, rx) = oneshot::channel();
    (Command::Purge(tx), rx)
}

/// What [`Writer::send`] puts in the channel for an outcome: the outcome
/// goes to the inbox, and a wake-up only if it is the first there.
fn sent(held: &Held, outcome: Command) -> Vec<Command> {
    match held.inbox.put(outcome) {
        Ok(Wake::Yes) => vec![Command::Outcomes],
        Ok(Wake::No) => Vec::new(),
        Err(()) => panic!("the inbox is closed"),
    }
}

fn database() -> Connection {
    let mut conn = Connection::open_in_memory().unwrap();
    migrate(&mut conn).unwrap();
    conn
}

fn writing(conn: &mut Connection) -> Writing<'_> {
    Writing::new(conn, [7; 16], Syncs::None)
}

fn begin() -> (Command, oneshot::Receiver<StoreResult<bool>>) {
    let attempt = Attempt {
        processor: "default".into(),
        requested_at: Timestamp::from_millis(0),
    };
    let (tx, rx) = oneshot::channel();
    let cmd = Command::Write(Write::BeginAttempt(
        CorrelationId::from_bytes(ID),
        attempt,
        tx,
    ));
    (cmd, rx)
}

#[test]
fn only_a_group_with_an_accept_waits_for_the_disk_and_only_when_stable() {
    use Durability::{Os, Stable};
    let (finish, accept, begin) = (|| finish().0, || accept().0, || begin().0);
    let stable = Syncs::new(Stable, true);
    assert_eq!(Sync::for_group(stable, &[finish(), finish()]), Sync::Normal);
    assert_eq!(Sync::for_group(stable, &[finish(), accept()]), Sync::Full);
    assert_eq!(Sync::for_group(stable, &[purge().0]), Sync::Full);
    assert_eq!(
        Sync::for_group(stable, &[begin(), finish()]),
        Sync::Normal,
        "an attempt rides on the next sync: the boot id tells a crash that took it"
    );
    let blind = Syncs::new(Stable, false);
    assert_eq!(
        Sync::for_group(blind, &[begin(), finish()]),
        Sync::Full,
        "without a boot id an attempt waits for the disk"
    );
    assert_eq!(Sync::for_group(blind, &[finish()]), Sync::Normal);
    let os = Syncs::new(Os, true);
    assert_eq!(
        Sync::for_group(os, &[finish(), accept(), begin()]),
        Sync::Normal
    );
}

#[test]
fn an_accept_is_committed_at_once_and_an_outcome_beside_it_is_held_until_due() {
    let mut conn = database();
    let mut writing = writing(&mut conn);
    let mut held = Held::default();
    let before = Instant::now();
    let (accept, mut accepted) = accept();
    held.take(&mut vec![accept], &mut writing, Instant::now());
    assert!(matches!(accepted.try_recv(), Ok(Ok(Acceptance::New))));

    // An outcome arriving with an accept: the accept does not carry it.
    let (finish, mut finished) = finish();
    let (again, mut again_answered) = self::accept();
    let mut group = sent(&held, finish);
    group.push(again);
    held.take(&mut group, &mut writing, Instant::now());
    assert!(
        matches!(again_answered.try_recv(), Ok(Ok(Acceptance::Duplicate))),
        "the accept is answered at once"
    );
    assert!(finished.try_recv().is_err(), "the outcome is held");
    let due = held.due().expect("held outcomes are due");
    assert!(due >= before + OUTCOME_DELAY && due <= Instant::now() + OUTCOME_DELAY);

    held.commit(&mut writing);
    assert!(
        matches!(finished.try_recv(), Ok(Ok(true))),
        "committed when due"
    );
    assert_eq!(held.due(), None);
}

#[test]
fn a_purge_commits_the_outcomes_held_before_it() {
    let mut conn = database();
    let mut writing = writing(&mut conn);
    let mut held = Held::default();
    let (accept, _accepted) = accept();
    held.take(&mut vec![accept], &mut writing, Instant::now());
    let (finish, mut finished) = finish();
    held.take(&mut sent(&held, finish), &mut writing, Instant::now());
    assert!(finished.try_recv().is_err(), "the outcome is held");

    let (purge, mut purged) = purge();
    held.take(&mut vec![purge], &mut writing, Instant::now());
    assert!(matches!(purged.try_recv(), Ok(Ok(()))));
    assert!(
        matches!(finished.try_recv(), Ok(Ok(true))),
        "the outcome was recorded before the purge, on the payment it finished"
    );
    assert_eq!(held.due(), None);
}

/// The plan SQLite chooses for `sql`, one line per step.
fn plan(conn: &Connection, sql: &str) -> String {
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
    let params = stmt.parameter_count();
    let steps = stmt
        .query_map(rusqlite::params_from_iter(vec![0; params]), |r| {
            r.get::<_, String>(3)
        })
        .unwrap();
    steps.map(Result::unwrap).collect::<Vec<_>>().join("\n")
}

#[test]
fn summaries_and_the_ledger_read_processed_payments_by_their_index() {
    assert_eq!(
        STATE_PROCESSED, 1,
        "the index and the queries say `state = 1`"
    );
    let conn = database();
    for sql in [SUMMARY, SUMMARY_ANSWERED_BY, LEDGER] {
        let plan = plan(&conn, sql);
        assert!(
            plan.contains("USING INDEX payments_processed_by_time"),
            "{sql}\n  is planned as\n{plan}"
        );
    }
}

#[test]
fn outcomes_past_due_are_committed_even_while_commands_keep_coming() {
    let mut conn = database();
    let mut writing = writing(&mut conn);
    let mut held = Held::default();
    let start = Instant::now();
    let (accept, _accepted) = accept();
    held.take(&mut vec![accept], &mut writing, start);
    let (finish, mut finished) = finish();
    held.take(&mut sent(&held, finish), &mut writing, start);
    assert!(finished.try_recv().is_err(), "the outcome is held");

    // The writer never found its queue empty until the outcome was due: the
    // next group to arrive after that instant carries it out.
    let (again, _) = self::accept();
    held.take(&mut vec![again], &mut writing, start + OUTCOME_DELAY);
    assert!(
        matches!(finished.try_recv(), Ok(Ok(true))),
        "an outcome past due is committed with the next group"
    );
    assert_eq!(held.due(), None);
}

fn count(conn: &Connection) -> i64 {
    conn.query_row("SELECT count(*) FROM payments", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn a_failed_group_leaves_nothing_and_the_next_one_commits() {
    let conn = database();
    let (payment, run) = (payment(), [7; 16]);
    let insert_it = |conn: &Connection| insert(conn, &payment, STATE_PENDING, &run, None, None);
    let failed = in_transaction(&conn, |conn| {
        insert_it(conn)?;
        conn.execute("INSERT INTO no_such_table VALUES (1)", [])
    });
    assert!(failed.is_err());
    assert!(conn.is_autocommit(), "the failed group was rolled back");
    assert_eq!(count(&conn), 0, "nothing of the failed group stands");

    assert_eq!(in_transaction(&conn, insert_it).unwrap(), 1);
    assert_eq!(count(&conn), 1);
    // Again, through the statements cached by the first two groups.
    let again = in_transaction(&conn, insert_it);
    assert_eq!(again.unwrap(), 0, "the same id is not inserted twice");
    assert!(conn.is_autocommit());
}

#[test]
fn only_the_first_outcome_since_the_writer_took_them_wakes_it() {
    let mut conn = database();
    let mut writing = writing(&mut conn);
    let mut held = Held::default();
    let (accept, _accepted) = accept();
    held.take(&mut vec![accept], &mut writing, Instant::now());
    let mut answers = Vec::new();
    let mut wakes = 0;
    for _ in 0..3 {
        let (finish, finished) = finish();
        answers.push(finished);
        wakes += sent(&held, finish).len();
    }
    assert_eq!(wakes, 1, "three outcomes, one wake-up");
    held.take(&mut vec![Command::Outcomes], &mut writing, Instant::now());
    assert!(
        held.due().is_some(),
        "the wake-up sets the group's due instant"
    );
    held.commit(&mut writing);
    // The first is recorded; the two others find it already finished.
    let answers: Vec<bool> = answers
        .iter_mut()
        .map(|a| a.try_recv().expect("answered").expect("committed"))
        .collect();
    assert_eq!(answers, [true, false, false]);
    let (finish, _) = self::finish();
    assert_eq!(sent(&held, finish).len(), 1, "taken: the next one wakes it");
}

#[test]
fn outcomes_left_when_the_writer_ends_are_answered_closed_and_none_is_taken_after() {
    let held = Held::default();
    let inbox = std::sync::Arc::clone(&held.inbox);
    let (finish, mut finished) = finish();
    assert!(inbox.put(finish).is_ok());
    drop(held);
    assert!(
        matches!(
            finished.try_recv(),
            Err(oneshot::error::TryRecvError::Closed)
        ),
        "its caller hears the store closed, not nothing forever"
    );
    let (finish, _) = self::finish();
    assert!(inbox.put(finish).is_err());
}
