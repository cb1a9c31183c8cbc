use std::sync::atomic::Ordering;
use std::sync::{Arc, Barrier};

use table::Kind;

use super::*;

fn payment(n: u128, amount: i64) -> NewPayment {
    NewPayment {
        id: CorrelationId::from_bytes(n.to_be_bytes()),
        amount: Money::from_minor(amount),
        payment_method: None,
        country: None,
        accepted_at: Timestamp::from_millis(1_752_150_896_000),
    }
}

fn accept(table: &AcceptTable, p: &NewPayment) -> Probe {
    match table.probe(&p.id) {
        Probe::Claimed(claim) => {
            table.write(&claim, p);
            let slot = claim.slot();
            table.publish(claim);
            Probe::Claimed(Claim {
                slot,
                word: table.word(slot),
            })
        }
        other => other,
    }
}

#[test]
fn an_id_is_claimed_once_then_known_with_its_amount_by_every_process() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.accepts");
    let (core, created) = AcceptTable::open(&path, true).unwrap();
    assert!(created);
    let (edge, created) = AcceptTable::open(&path, false).unwrap();
    assert!(!created);
    assert_ne!(core.owner_index(), edge.owner_index());

    let p = payment(1, 1990);
    let Probe::Claimed(claim) = accept(&edge, &p) else {
        panic!("a new id is claimed")
    };
    assert_eq!(
        core.read(claim.slot()),
        Some(Record {
            id: p.id,
            amount: p.amount,
        })
    );
    assert_eq!(core.probe(&p.id), Probe::Known(Money::from_minor(1990)));
    assert_eq!(edge.probe(&p.id), Probe::Known(Money::from_minor(1990)));
}

#[test]
fn one_core_keeps_a_table_and_an_edge_sees_when_it_was_made_anew() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.accepts");
    let (core, _) = AcceptTable::open(&path, true).unwrap();
    let err = AcceptTable::open(&path, true).err().unwrap();
    assert!(matches!(err, TableError::InUse { .. }), "{err}");
    let (edge, _) = AcceptTable::open(&path, false).unwrap();
    assert!(edge.is_current_file());
    drop(core);
    std::fs::remove_file(&path).unwrap();
    let (_core, created) = AcceptTable::open(&path, true).unwrap();
    assert!(created);
    assert!(
        !edge.is_current_file(),
        "the edge maps a file no longer there"
    );
}

#[test]
fn an_edge_that_cannot_open_a_missing_table_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let err = AcceptTable::open(&dir.path().join("none"), false)
        .err()
        .unwrap();
    assert!(matches!(err, TableError::Io { .. }), "{err}");
    std::fs::write(dir.path().join("short"), b"not a table").unwrap();
    let err = AcceptTable::open(&dir.path().join("short"), true)
        .err()
        .unwrap();
    assert!(matches!(err, TableError::Foreign { .. }), "{err}");
}

#[test]
fn a_claim_is_waited_for_while_its_owner_lives_and_taken_over_once_it_dies() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.accepts");
    let (core, _) = AcceptTable::open(&path, true).unwrap();
    let (edge, _) = AcceptTable::open(&path, false).unwrap();
    let p = payment(2, 500);
    let Probe::Claimed(claim) = edge.probe(&p.id) else {
        panic!()
    };
    edge.write(&claim, &p);
    let Probe::Busy(slot, word) = core.probe(&p.id) else {
        panic!("a claimed id is busy")
    };
    assert_eq!(slot, claim.slot());
    assert!(core.alive(word));
    assert_eq!(core.take_over(slot, word, &p.id), None, "its owner lives");

    // The edge dies between claim and publish: nothing was answered.
    drop(edge);
    assert!(!core.alive(word));
    let taken = core
        .take_over(slot, word, &p.id)
        .expect("a dead owner's claim");
    core.write(&taken, &payment(2, 700));
    core.publish(taken);
    assert_eq!(core.probe(&p.id), Probe::Known(Money::from_minor(700)));

    // An edge started later takes the dead one's index, not its claims.
    let (edge, _) = AcceptTable::open(&path, false).unwrap();
    assert_eq!(edge.owner_index(), word.owner() as usize);
    assert_ne!(edge.me.incarnation, word.incarnation());
    assert!(!core.alive(word));
}

#[test]
fn an_unsure_slot_is_left_to_the_store_and_can_be_taken_by_the_core() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.accepts");
    let (core, _) = AcceptTable::open(&path, true).unwrap();
    let p = payment(3, 100);
    let Probe::Claimed(claim) = core.probe(&p.id) else {
        panic!()
    };
    core.write(&claim, &p);
    core.abandon(claim);
    let Probe::Busy(slot, word) = core.probe(&p.id) else {
        panic!("an unsure id is busy")
    };
    let other = payment(1 << 100, 100);
    assert_eq!(core.take_over(slot, word, &other.id), None, "not its id");
    assert!(
        core.take_over(slot, word, &p.id).is_some(),
        "unsure is the store's"
    );
}

#[test]
fn a_purge_frees_every_slot_but_the_claims_still_being_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.accepts");
    let (table, _) = AcceptTable::open(&path, true).unwrap();
    let a = payment(4, 100);
    let b = payment(5, 100);
    assert!(matches!(accept(&table, &a), Probe::Claimed(_)));
    let Probe::Claimed(held) = table.probe(&b.id) else {
        panic!()
    };
    table.purge().unwrap();
    let Probe::Claimed(again) = table.probe(&a.id) else {
        panic!("a purged id is new again")
    };
    assert_ne!(again.slot(), held.slot(), "a claim survives a purge");
    // The claim of before the purge publishes into its own generation:
    // nobody sees it now.
    table.write(&held, &b);
    table.publish(held);
    assert!(matches!(table.probe(&b.id), Probe::Claimed(_)));
}

#[test]
fn ids_past_a_full_window_are_left_to_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.accepts");
    let (table, _) = AcceptTable::open_sized(&path, true, 10).unwrap();
    let target = payment(6, 100);
    let (home, _) = table::locate(&target.id, table.layout.capacity() - 1);
    // Fill its window with ids whose home is the same slot.
    let mut filled = 0;
    let mut n = 1_000u128;
    while filled < WINDOW {
        let p = payment(n, 1);
        n += 1;
        let (h, _) = table::locate(&p.id, table.layout.capacity() - 1);
        if h == home {
            assert!(matches!(accept(&table, &p), Probe::Claimed(_)));
            filled += 1;
        }
    }
    assert_eq!(table.probe(&target.id), Probe::Full);
}

#[test]
fn processes_racing_for_the_same_ids_claim_each_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.accepts");
    let (core, _) = AcceptTable::open(&path, true).unwrap();
    let racers = 4;
    let barrier = Arc::new(Barrier::new(racers));
    let handles: Vec<_> = (0..racers)
        .map(|r| {
            let (table, _) = AcceptTable::open(&path, false).unwrap();
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                let mut won = Vec::new();
                for n in 0..5_000u128 {
                    let p = payment(n, 100 + r as i64);
                    loop {
                        match accept(&table, &p) {
                            Probe::Claimed(_) => {
                                won.push(n);
                                break;
                            }
                            Probe::Known(_) => break,
                            Probe::Busy(..) => std::thread::yield_now(),
                            Probe::Full => panic!("room for 5,000"),
                        }
                    }
                }
                won
            })
        })
        .collect();
    let mut won: Vec<u128> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    won.sort_unstable();
    assert_eq!(won, (0..5_000).collect::<Vec<_>>(), "each id won once");
    for n in 0..5_000u128 {
        assert!(matches!(core.probe(&payment(n, 0).id), Probe::Known(_)));
    }
}

#[test]
fn a_ring_hands_the_core_its_slots_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.accepts");
    let (core, _) = AcceptTable::open(&path, true).unwrap();
    let (edge, _) = AcceptTable::open(&path, false).unwrap();
    let mut slots = Vec::new();
    for n in 0..3 {
        let p = payment(n, 1);
        let Probe::Claimed(claim) = edge.probe(&p.id) else {
            panic!()
        };
        assert!(edge.ring_has_room());
        edge.write(&claim, &p);
        assert!(edge.push(&claim, Timestamp::from_millis(n as i64)));
        slots.push(claim.slot());
        edge.publish(claim);
    }
    let owner = edge.owner_index();
    let (tail, head) = core.ring(owner);
    assert_eq!(head.wrapping_sub(tail), 3);
    let read: Vec<_> = (tail..head).map(|i| core.ring_entry(owner, i)).collect();
    let times = (0..3).map(Timestamp::from_millis);
    assert_eq!(read, slots.into_iter().zip(times).collect::<Vec<_>>());
    core.set_tail(owner, head);
    assert_eq!(core.ring(owner), (head, head));
}

#[test]
fn a_dead_or_unsure_claim_of_another_id_with_the_same_tag_is_passed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.accepts");
    let (core, _) = AcceptTable::open(&path, true).unwrap();
    let ours = payment(7, 100);
    let other = payment(8, 100);
    let (home, tag) = table::locate(&ours.id, core.layout.capacity() - 1);
    // A claim on our id's home slot, with our tag but another id written,
    // by an owner index nobody holds: its owner died.
    let slot = core.layout.slot(home);
    let write_id = |id: &CorrelationId| {
        let bytes = id.as_bytes();
        for (half, field) in bytes.chunks(8).zip(&slot.id) {
            field.store(
                u64::from_le_bytes(half.try_into().unwrap()),
                Ordering::Relaxed,
            );
        }
    };
    write_id(&other.id);
    let dead = table::Word::new(core.generation(), Kind::Claimed, 9, 1, tag);
    slot.state.store(dead.0, Ordering::Release);
    let Probe::Claimed(claim) = core.probe(&ours.id) else {
        panic!("the dead claim is another id's: ours goes to the next slot")
    };
    assert_eq!(claim.slot(), (home + 1) & (core.layout.capacity() - 1));
    // The same claim with our id written is ours to wait for or take over.
    core.abandon(claim);
    write_id(&ours.id);
    assert_eq!(core.probe(&ours.id), Probe::Busy(home, dead));
}

#[test]
fn the_core_tells_every_process_whether_a_2xx_waits_for_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.accepts");
    let (core, _) = AcceptTable::open(&path, true).unwrap();
    let (edge, _) = AcceptTable::open(&path, false).unwrap();
    assert!(!edge.is_stable(), "a new table is not");
    core.set_stable(true).unwrap();
    assert!(edge.is_stable());
    // A slot, a known id's slot, an unknown id (nothing to sync) and a
    // purge's generation all sync without error.
    let p = payment(9, 500);
    let Probe::Claimed(claim) = accept(&edge, &p) else {
        panic!("a new id is claimed")
    };
    edge.sync_slot(claim.slot()).unwrap();
    edge.sync_id(&p.id).unwrap();
    edge.sync_id(&payment(10, 1).id).unwrap();
    core.purge().unwrap();
    core.set_stable(false).unwrap();
    assert!(!edge.is_stable());
}

#[cfg(target_os = "linux")]
#[test]
fn a_table_on_a_memory_filesystem_serves_os_and_refuses_stable() {
    let dir = tempfile::tempdir_in("/dev/shm").unwrap();
    let path = dir.path().join("t.accepts");
    let (core, _) = AcceptTable::open(&path, true).unwrap();
    let (edge, _) = AcceptTable::open(&path, false).unwrap();
    assert!(core.in_memory() && edge.in_memory());
    // Its msync would put nothing on a disk: `stable` cannot be promised.
    let err = core.set_stable(true).unwrap_err();
    assert!(matches!(err, TableError::Volatile { .. }), "{err}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    assert!(!edge.is_stable(), "nothing was told to the edges");
    core.set_stable(false).unwrap();
    let p = payment(14, 700);
    assert!(matches!(accept(&edge, &p), Probe::Claimed(_)));
    assert_eq!(core.probe(&p.id), Probe::Known(Money::from_minor(700)));
}

#[test]
fn the_written_slots_are_those_of_this_generation_published() {
    let dir = tempfile::tempdir().unwrap();
    let (table, _) = AcceptTable::open(&dir.path().join("t.accepts"), true).unwrap();
    let old = payment(11, 100);
    assert!(matches!(accept(&table, &old), Probe::Claimed(_)));
    table.purge().unwrap();
    let (a, b) = (payment(12, 200), payment(13, 300));
    assert!(matches!(accept(&table, &a), Probe::Claimed(_)));
    assert!(matches!(accept(&table, &b), Probe::Claimed(_)));
    // Claimed and written, never published: nothing was answered for it.
    let Probe::Claimed(claim) = table.probe(&payment(14, 400).id) else {
        panic!()
    };
    table.write(&claim, &payment(14, 400));
    let mut written: Vec<(CorrelationId, Money)> = table
        .written()
        .into_iter()
        .map(|r| (r.id, r.amount))
        .collect();
    written.sort();
    assert_eq!(written, [(a.id, a.amount), (b.id, b.amount)]);
}

#[test]
fn a_table_a_core_began_and_never_finished_is_made_again_by_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.accepts");
    // Killed while it wrote the zeros: the size, not the magic.
    std::fs::write(&path, vec![0u8; 8192]).unwrap();
    assert!(matches!(
        AcceptTable::open(&path, false),
        Err(TableError::Foreign { .. })
    ));
    let (core, created) = AcceptTable::open(&path, true).unwrap();
    assert!(created);
    let p = payment(20, 100);
    assert!(matches!(accept(&core, &p), Probe::Claimed(_)));
    // Something else than a table is still refused.
    let other = dir.path().join("other");
    std::fs::write(&other, b"not a table at all").unwrap();
    assert!(matches!(
        AcceptTable::open(&other, true),
        Err(TableError::Foreign { .. })
    ));
}
