//! The audit by correlationId that ends every crash and chaos run.
//!
//! Three views of the same payments must agree:
//! - the client's: every payment answered 2xx (the traffic's record);
//! - the router's: its ledger, payment by payment (read with `reroute ledger`
//!   from the store the routers leave behind), and its `GET /payments-summary`;
//! - the processors': their books, payment by payment (`GET /admin/payments`).
//!
//! [`audit`] is pure: it compares what [`crate::drain`] and the store
//! read-back collected. Nothing may be lost (accepted, not charged), doubled (charged
//! by two processors, or twice by one), or charged without having been
//! accepted; the ledger must be the books; nothing may stay pending.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use reroute_core::CorrelationId;
use serde::Serialize;

use crate::ledger::StoreView;
use crate::router_api::SummaryLine;
use crate::traffic::{Fate, Payment};
use reroute_bench::processors::{BookEntry, Books, Totals};
use reroute_bench::report::{Latency, row};

/// How the payments of the run ended, from the client's side.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct PaymentCounts {
    /// Payments the traffic created.
    pub created: u64,
    /// Answered 2xx (at some send).
    pub accepted: u64,
    /// Answered a definite 4xx.
    pub refused: u64,
    /// No definite answer before the traffic gave up.
    pub unresolved: u64,
    /// Requests sent in all, re-sends of unknown outcomes included.
    pub sends: u64,
}

/// The router's ledger against the books, payment by payment.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct LedgerCheck {
    pub entries: u64,
    /// Charged by a processor, absent from the ledger.
    pub missing: u64,
    /// In the ledger, charged by no processor.
    pub extra: u64,
    pub other_processor: u64,
    pub other_requested_at: u64,
    pub other_amount: u64,
}

impl LedgerCheck {
    fn disagreements(&self) -> u64 {
        self.missing
            + self.extra
            + self.other_processor
            + self.other_requested_at
            + self.other_amount
    }
}

/// One processor: what the router's summary says, what the books say.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct SummaryCheck {
    pub router: Totals,
    pub books: Totals,
}

/// The verdict on one run.
#[derive(Debug, Clone, Serialize)]
pub struct Audit {
    pub payments: PaymentCounts,
    /// The processors' books.
    pub books: BTreeMap<String, Totals>,
    /// Accepted (2xx) and charged by no processor.
    pub lost: u64,
    /// Charged by two processors, or twice by one.
    pub doubled: u64,
    /// Charged although never accepted: refused, or never created.
    pub unexpected: u64,
    /// Charged with another amount than the one sent.
    pub wrong_amount: u64,
    /// Unresolved payments (no definite answer) that a processor charged:
    /// not an error, the client just never learnt it.
    pub unresolved_charged: u64,
    /// `None` when the store could not be read back.
    pub ledger: Option<LedgerCheck>,
    pub summary: BTreeMap<String, SummaryCheck>,
    /// Payments still pending in the store at the end (`None`: not read).
    pub stuck: Option<u64>,
    /// Ledger entries that disagree with the books, plus, per processor, the
    /// difference in `totalRequests` between the summary and the books (and
    /// 1 when the counts agree but the amounts do not).
    pub inconsistencies: u64,
    /// From the client's 2xx to the `requestedAt` the processor booked: how
    /// long an accepted payment waited before the send that charged it.
    pub queue_age: Option<Latency>,
    /// A few of the offending ids, for the logs.
    pub examples: Vec<String>,
}

impl Audit {
    /// Nothing lost, doubled, unexpected, mis-charged, inconsistent or stuck.
    pub fn passed(&self) -> bool {
        self.lost == 0
            && self.doubled == 0
            && self.unexpected == 0
            && self.wrong_amount == 0
            && self.inconsistencies == 0
            && self.stuck.unwrap_or(0) == 0
            && self.ledger.is_some()
            && self.stuck.is_some()
    }
}

impl Audit {
    /// The report's payments line (crash and chaos); `more` goes inside
    /// its parentheses, after the number of sends.
    pub fn write_payments(&self, f: &mut fmt::Formatter<'_>, more: &str) -> fmt::Result {
        let p = &self.payments;
        let text = format!(
            "{} created: {} accepted, {} refused, {} unresolved ({} sends{more})",
            p.created, p.accepted, p.refused, p.unresolved, p.sends
        );
        row(f, "payments", text)
    }

    /// The audit's lines of a readable report (crash and chaos).
    pub fn write_lines(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let a = self;
        let books: Vec<String> = a
            .books
            .iter()
            .map(|(p, t)| format!("{p} {} ({})", t.requests, t.amount))
            .collect();
        row(f, "books", books.join(", "))?;
        let charged: u64 = a.books.values().map(|t| t.requests).sum();
        let ledger = a.ledger.map_or("?".to_owned(), |l| l.entries.to_string());
        let equal = a.ledger.is_some_and(|l| l.entries == a.payments.accepted)
            && charged == a.payments.accepted;
        writeln!(
            f,
            "  accepted = ledger = books: {} = {} = {}{}",
            a.payments.accepted,
            ledger,
            charged,
            if equal { "" } else { "  NOT EQUAL" }
        )?;
        writeln!(
            f,
            "  lost {}  doubled {}  charged-unaccepted {}  wrong-amount {}  inconsistencies {}  stuck {}",
            a.lost,
            a.doubled,
            a.unexpected,
            a.wrong_amount,
            a.inconsistencies,
            a.stuck.map_or("?".to_owned(), |s| s.to_string())
        )?;
        if let Some(l) = &a.ledger {
            let text = format!(
                "{} entries; missing {}, extra {}, other processor {}, other requestedAt {}, other amount {}",
                l.entries,
                l.missing,
                l.extra,
                l.other_processor,
                l.other_requested_at,
                l.other_amount
            );
            row(f, "ledger", text)?;
        }
        if let Some(age) = &a.queue_age {
            row(f, "queue age", format_args!("2xx -> charging send: {age}"))?;
        }
        for e in &a.examples {
            row(f, "example", e)?;
        }
        Ok(())
    }
}

const EXAMPLES: usize = 10;

/// Compares the client's record, the books, the router's summary and, when
/// read, the store the routers left.
pub fn audit(
    payments: &[Payment],
    books: &Books,
    summary: &HashMap<String, SummaryLine>,
    store: Option<&StoreView>,
) -> Audit {
    let mut examples = Vec::new();
    let mut note = |what: &str, id: &CorrelationId| {
        if examples.len() < EXAMPLES {
            examples.push(format!("{what} {id}"));
        }
    };
    let mut counts = PaymentCounts::default();
    let sent: HashMap<CorrelationId, &Payment> = payments.iter().map(|p| (p.id, p)).collect();
    for p in payments {
        counts.created += 1;
        counts.sends += u64::from(p.sends);
        match p.fate {
            Fate::Accepted { .. } => counts.accepted += 1,
            Fate::Refused { .. } => counts.refused += 1,
            Fate::Unresolved { .. } => counts.unresolved += 1,
        }
    }

    // Where each id was charged.
    let mut charged: HashMap<CorrelationId, Vec<(&str, &BookEntry)>> = HashMap::new();
    for (processor, entries) in &books.processors {
        for entry in entries {
            charged
                .entry(entry.id)
                .or_default()
                .push((processor, entry));
        }
    }
    let (mut lost, mut doubled, mut unexpected, mut wrong_amount, mut unresolved_charged) =
        (0, 0, 0, 0, 0);
    let mut ages = Vec::new();
    for p in payments {
        if let Fate::Accepted { at, .. } = p.fate {
            match charged.get(&p.id) {
                None => {
                    lost += 1;
                    note("lost", &p.id);
                }
                Some(places) => {
                    let age = places[0].1.requested_at.millis() - at.millis();
                    ages.push(age.max(0) as u64);
                }
            }
        }
    }
    for (id, places) in &charged {
        if places.len() > 1 {
            doubled += 1;
            note("doubled", id);
        }
        match sent.get(id) {
            Some(p) => {
                if places.iter().any(|(_, e)| e.amount != p.amount) {
                    wrong_amount += 1;
                    note("wrong amount", id);
                }
                match p.fate {
                    Fate::Accepted { .. } => {}
                    Fate::Unresolved { sent: true } => unresolved_charged += 1,
                    Fate::Refused { .. } | Fate::Unresolved { sent: false } => {
                        unexpected += 1;
                        note("charged but refused", id);
                    }
                }
            }
            None => {
                unexpected += 1;
                note("charged but never sent", id);
            }
        }
    }

    let ledger = store.map(|store| {
        let mut check = LedgerCheck {
            entries: store.ledger.len() as u64,
            ..LedgerCheck::default()
        };
        let mut in_ledger = HashSet::new();
        for entry in &store.ledger {
            in_ledger.insert(entry.id);
            match charged.get(&entry.id) {
                None => {
                    check.extra += 1;
                    note("in the ledger, not in the books", &entry.id);
                }
                Some(places) => {
                    let (processor, booked) = places[0];
                    if processor != entry.processor {
                        check.other_processor += 1;
                        note("ledger names another processor", &entry.id);
                    } else if booked.requested_at != entry.requested_at {
                        check.other_requested_at += 1;
                        note("ledger has another requestedAt", &entry.id);
                    }
                    if booked.amount != entry.amount {
                        check.other_amount += 1;
                        note("ledger has another amount", &entry.id);
                    }
                }
            }
        }
        for id in charged.keys().filter(|id| !in_ledger.contains(*id)) {
            check.missing += 1;
            note("in the books, not in the ledger", id);
        }
        check
    });

    let book_totals = books.totals();
    let mut summary_check = BTreeMap::new();
    let mut summary_disagreements = 0;
    let processors: HashSet<&String> = book_totals.keys().chain(summary.keys()).collect();
    for processor in processors {
        let router = summary
            .get(processor)
            .map(|s| Totals {
                requests: s.total_requests,
                amount: s.total_amount,
            })
            .unwrap_or_default();
        let booked = book_totals.get(processor).copied().unwrap_or_default();
        let by_count = router.requests.abs_diff(booked.requests);
        summary_disagreements += if by_count == 0 && router.amount != booked.amount {
            1
        } else {
            by_count
        };
        summary_check.insert(
            processor.clone(),
            SummaryCheck {
                router,
                books: booked,
            },
        );
    }

    let stuck = store.map(|s| s.pending.len() as u64);
    if let Some(store) = store {
        for id in store.pending.iter().take(EXAMPLES) {
            note("still pending", id);
        }
    }
    Audit {
        payments: counts,
        books: book_totals,
        lost,
        doubled,
        unexpected,
        wrong_amount,
        unresolved_charged,
        inconsistencies: ledger.map_or(0, |l| l.disagreements()) + summary_disagreements,
        ledger,
        summary: summary_check,
        stuck,
        queue_age: Latency::of_millis(ages),
        examples,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::LedgerEntry;
    use reroute_core::{Money, Timestamp};
    use std::time::Duration;

    fn id(n: u8) -> CorrelationId {
        CorrelationId::from_bytes([n; 16])
    }

    fn accepted(n: u8, cents: i64, at: i64) -> Payment {
        Payment {
            id: id(n),
            amount: Money::from_minor(cents),
            fate: Fate::Accepted {
                instance: 0,
                generation: 1,
                after: Duration::ZERO,
                at: Timestamp::from_millis(at),
            },
            sends: 1,
        }
    }

    fn entry(n: u8, cents: i64, at: i64) -> BookEntry {
        BookEntry {
            id: id(n),
            amount: Money::from_minor(cents),
            requested_at: Timestamp::from_millis(at),
        }
    }

    fn ledger(n: u8, cents: i64, processor: &str, at: i64) -> LedgerEntry {
        LedgerEntry {
            id: id(n),
            amount: Money::from_minor(cents),
            processor: processor.into(),
            requested_at: Timestamp::from_millis(at),
        }
    }

    fn books(default: Vec<BookEntry>, fallback: Vec<BookEntry>) -> Books {
        let processors = vec![("default".into(), default), ("fallback".into(), fallback)];
        Books { processors }
    }

    fn store(ledger: Vec<LedgerEntry>, pending: Vec<CorrelationId>) -> StoreView {
        StoreView { ledger, pending }
    }

    fn summary(lines: &[(&str, u64, i64)]) -> HashMap<String, SummaryLine> {
        lines
            .iter()
            .map(|(p, n, cents)| {
                (
                    p.to_string(),
                    SummaryLine {
                        total_requests: *n,
                        total_amount: Money::from_minor(*cents),
                    },
                )
            })
            .collect()
    }

    #[test]
    fn a_clean_run_passes_and_measures_the_wait_before_the_charging_send() {
        let payments = [accepted(1, 100, 1_000), accepted(2, 250, 1_000)];
        let books = books(vec![entry(1, 100, 1_040)], vec![entry(2, 250, 3_000)]);
        let store = store(
            vec![
                ledger(1, 100, "default", 1_040),
                ledger(2, 250, "fallback", 3_000),
            ],
            vec![],
        );
        let audit = audit(
            &payments,
            &books,
            &summary(&[("default", 1, 100), ("fallback", 1, 250)]),
            Some(&store),
        );
        assert!(audit.passed(), "{audit:?}");
        assert_eq!(audit.payments.accepted, 2);
        assert_eq!(audit.inconsistencies, 0);
        let age = audit.queue_age.unwrap();
        assert_eq!((age.p50_ms, age.max_ms, age.count), (1_020.0, 2_000.0, 2));
    }

    #[test]
    fn lost_doubled_and_unexpected_payments_are_each_counted() {
        let mut refused = accepted(3, 300, 0);
        refused.fate = Fate::Refused { status: 400 };
        let payments = [accepted(1, 100, 0), accepted(2, 200, 0), refused];
        let books = books(
            vec![entry(2, 200, 5), entry(3, 300, 5)],
            vec![entry(2, 200, 9), entry(4, 400, 9)],
        );
        let audit = audit(
            &payments,
            &books,
            &summary(&[("default", 2, 500), ("fallback", 2, 600)]),
            None,
        );
        assert_eq!(audit.lost, 1, "id 1 was accepted and charged nowhere");
        assert_eq!(audit.doubled, 1, "id 2 is in both books");
        assert_eq!(audit.unexpected, 2, "id 3 was refused, id 4 never sent");
        assert!(!audit.passed());
        assert!(audit.ledger.is_none() && audit.stuck.is_none());
    }

    #[test]
    fn the_ledger_and_the_summary_must_match_the_books_payment_by_payment() {
        let payments = [
            accepted(1, 100, 0),
            accepted(2, 200, 0),
            accepted(3, 300, 0),
        ];
        let books = books(
            vec![entry(1, 100, 10), entry(2, 200, 20)],
            vec![entry(3, 300, 30)],
        );
        let store = store(
            vec![
                ledger(1, 100, "default", 11),  // other requestedAt
                ledger(3, 300, "default", 30),  // other processor
                ledger(9, 900, "fallback", 30), // charged nowhere
            ],
            vec![id(7)],
        );
        // The summary counts one payment too few on default.
        let audit = audit(
            &payments,
            &books,
            &summary(&[("default", 1, 100), ("fallback", 1, 300)]),
            Some(&store),
        );
        let ledger = audit.ledger.unwrap();
        assert_eq!(
            (
                ledger.missing,
                ledger.extra,
                ledger.other_processor,
                ledger.other_requested_at
            ),
            (1, 1, 1, 1)
        );
        assert_eq!(audit.inconsistencies, 4 + 1);
        assert_eq!(audit.stuck, Some(1));
        assert_eq!(audit.lost, 0);
        assert!(!audit.passed());
    }

    #[test]
    fn an_unresolved_payment_may_be_charged_or_not() {
        let mut maybe = accepted(1, 100, 0);
        maybe.fate = Fate::Unresolved { sent: true };
        let mut never = accepted(2, 200, 0);
        never.fate = Fate::Unresolved { sent: false };
        let books = Books {
            processors: vec![("default".into(), vec![entry(1, 100, 10)])],
        };
        let store = store(vec![ledger(1, 100, "default", 10)], vec![]);
        let audit = audit(
            &[maybe, never],
            &books,
            &summary(&[("default", 1, 100)]),
            Some(&store),
        );
        assert_eq!(audit.unresolved_charged, 1);
        assert_eq!(audit.payments.unresolved, 2);
        assert!(audit.passed(), "{audit:?}");
    }

    #[test]
    fn a_payment_in_two_books_is_a_double_the_drain_stops_waiting_on() {
        let once = books(vec![entry(1, 100, 10)], vec![entry(2, 200, 10)]);
        assert!(!once.has_double());
        let twice = books(vec![entry(1, 100, 10)], vec![entry(1, 100, 20)]);
        assert!(twice.has_double());
    }

    #[test]
    fn the_report_says_whether_accepted_ledger_and_books_are_equal() {
        struct Lines<'a>(&'a Audit);
        impl fmt::Display for Lines<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.write_lines(f)
            }
        }
        let books = books(vec![entry(1, 100, 10)], vec![entry(1, 100, 20)]);
        let store = store(vec![ledger(1, 100, "fallback", 20)], vec![]);
        let doubled = audit(
            &[accepted(1, 100, 0)],
            &books,
            &summary(&[("fallback", 1, 100)]),
            Some(&store),
        );
        let text = Lines(&doubled).to_string();
        assert!(
            text.contains("accepted = ledger = books: 1 = 1 = 2  NOT EQUAL"),
            "{text}"
        );
        assert!(text.contains("doubled 1"), "{text}");
    }
}
