//! The health engine on its hot paths: `record` (every outcome the router
//! observes and every `POST /api/v1/transactions`), `recommend`
//! (`/api/v1/routing/recommend`) and `gate` (asked per processor by every
//! routing decision), on the five TechCart processors with full windows.
//!
//! ```text
//! cargo bench -p reroute-core --bench health
//! ```

mod common;

use std::cell::Cell;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use reroute_core::circuit::Gate;
use reroute_core::health::{Outcome, Status, Transaction};
use reroute_core::{HealthConfig, HealthEngine, Timestamp, techcart};

const START: i64 = 1_700_000_000_000;

fn tx<'a>(
    method: Option<&'a str>,
    country: Option<&'a str>,
    outcome: Outcome,
    at: i64,
) -> Transaction<'a> {
    Transaction {
        payment_method: method,
        country,
        latency_ms: Some(45),
        amount: None,
        currency: Some("brl"),
        ..Transaction::new(outcome, Timestamp::from_millis(at))
    }
}

/// Every TechCart processor ([`techcart::registry`]) has seen 200
/// transactions in each segment it supports (windows of 50 full, history of
/// 50 full), 4 in 5 approved: HEALTHY.
/// When `down` is given, that processor's PIX/BR segment then sees 50 errors:
/// DOWN. Returns the engine and the clock after the last transaction.
fn filled_engine(down: Option<&str>) -> (HealthEngine, i64) {
    let registry = techcart::registry();
    let engine = HealthEngine::new(&registry, HealthConfig::default());
    let mut clock = START;
    for (index, p) in registry.by_fee().iter().enumerate() {
        for i in 0..200 {
            for method in &p.payment_methods {
                for country in &p.countries {
                    let outcome = if i % 5 == 4 {
                        Outcome::Declined
                    } else {
                        Outcome::Approved
                    };
                    clock += 1;
                    let t = tx(Some(method), Some(country), outcome, clock);
                    engine.record(index, &t, Timestamp::from_millis(clock));
                }
            }
        }
    }
    if let Some(id) = down {
        let index = registry.index_of(id).expect("a known processor");
        for _ in 0..50 {
            clock += 1;
            let t = tx(Some("PIX"), Some("BR"), Outcome::Error, clock);
            engine.record(index, &t, Timestamp::from_millis(clock));
        }
    }
    (engine, clock)
}

fn record(c: &mut Criterion) {
    let mut group = c.benchmark_group("health_record");
    let (engine, clock) = filled_engine(None);
    let a = engine.registry().index_of("processor_a").expect("known");
    let clock = Cell::new(clock);
    let next = || {
        clock.set(clock.get() + 1);
        clock.get()
    };
    // The router's own outcome of a Rinha payment: no segment attributes.
    group.bench_function("approved_no_segment", |b| {
        b.iter(|| {
            let at = next();
            let t = tx(None, None, Outcome::Approved, at);
            engine.record(black_box(a), black_box(&t), Timestamp::from_millis(at))
        })
    });
    // A TechCart transaction into the PIX/BR segment (processor_a has two
    // segments: PIX/BR and CARD/BR).
    group.bench_function("approved_segment_pix_br", |b| {
        b.iter(|| {
            let at = next();
            let t = tx(Some("PIX"), Some("BR"), Outcome::Approved, at);
            engine.record(black_box(a), black_box(&t), Timestamp::from_millis(at))
        })
    });
    group.finish();
    let r = engine.record(
        a,
        &tx(Some("PIX"), Some("BR"), Outcome::Approved, next()),
        Timestamp::from_millis(clock.get()),
    );
    assert_eq!(r.status, Status::Healthy);
    assert!(r.alerts.is_empty());
}

fn recommend(c: &mut Criterion) {
    let mut group = c.benchmark_group("health_recommend");
    let (engine, clock) = filled_engine(None);
    let now = Timestamp::from_millis(clock);
    // processor_a, _b and _c support CARD or PIX in BR; PIX/BR: a and c.
    assert_eq!(engine.recommend("PIX", "BR", now).ranked.len(), 2);
    assert_eq!(engine.recommend("CARD", "BR", now).ranked.len(), 2);
    group.bench_function("pix_br", |b| {
        b.iter(|| engine.recommend(black_box("PIX"), black_box("BR"), black_box(now)))
    });
    group.bench_function("card_br", |b| {
        b.iter(|| engine.recommend(black_box("CARD"), black_box("BR"), black_box(now)))
    });
    group.finish();
}

fn gate(c: &mut Criterion) {
    let mut group = c.benchmark_group("health_gate");
    let (engine, clock) = filled_engine(Some("processor_c"));
    let now = Timestamp::from_millis(clock);
    let a = engine.registry().index_of("processor_a").expect("known");
    let c_index = engine.registry().index_of("processor_c").expect("known");
    assert_eq!(engine.gate(a, Some("pix"), Some("BR"), now), Gate::Go);
    assert_eq!(
        engine.segment_status(c_index, Some("PIX"), Some("BR")),
        Some(Status::Down)
    );
    group.bench_function("healthy_segment", |b| {
        b.iter(|| {
            engine.gate(
                black_box(a),
                black_box(Some("pix")),
                black_box(Some("BR")),
                black_box(now),
            )
        })
    });
    group.bench_function("down_segment", |b| {
        b.iter(|| {
            engine.gate(
                black_box(c_index),
                black_box(Some("pix")),
                black_box(Some("BR")),
                black_box(now),
            )
        })
    });
    group.bench_function("no_segment_rollup", |b| {
        b.iter(|| {
            engine.gate(
                black_box(a),
                black_box(None),
                black_box(None),
                black_box(now),
            )
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = record, recommend, gate
}
criterion_main!(benches);
