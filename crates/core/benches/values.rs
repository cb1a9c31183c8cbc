//! The domain values every request parses or writes: `Money` (the amount of
//! `POST /payments`, the totals of `GET /payments-summary`), `Timestamp`
//! (`requestedAt` sent to processors, summary bounds) and `CorrelationId`.
//!
//! ```text
//! cargo bench -p reroute-core --bench values
//! ```

mod common;

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use reroute_core::{CorrelationId, Money, Timestamp};

fn money(c: &mut Criterion) {
    let mut group = c.benchmark_group("money");
    for (name, text) in [
        ("rinha_19.90", "19.90"),
        ("max_1000000000.00", "1000000000.00"),
        ("exponent_1990e-2", "1990e-2"),
        ("refused_19.901", "19.901"),
    ] {
        group.bench_with_input(BenchmarkId::new("parse_exact", name), text, |b, text| {
            b.iter(|| Money::parse_exact(black_box(text)))
        });
    }
    for (name, text) in [
        ("19.90", "19.90"),
        (
            "float_artifact_49_digits",
            "77.8299999999999982946974341757595539093017578125",
        ),
    ] {
        group.bench_with_input(BenchmarkId::new("parse_rounded", name), text, |b, text| {
            b.iter(|| Money::parse_rounded(black_box(text)))
        });
    }
    group.bench_function("display", |b| {
        b.iter(|| black_box(Money::from_minor(33_335_680)).to_string())
    });
    group.finish();
}

fn timestamp(c: &mut Criterion) {
    let mut group = c.benchmark_group("timestamp");
    for (name, text) in [
        ("rfc3339_z", "2025-07-10T12:34:56.789Z"),
        ("rfc3339_offset", "2025-07-10T09:34:56.789-03:00"),
        // Not RFC 3339: parsed by the fallback after RFC 3339 has failed.
        ("no_zone", "2025-07-10T12:34:56.789"),
    ] {
        group.bench_with_input(BenchmarkId::new("parse", name), text, |b, text| {
            b.iter(|| black_box(text).parse::<Timestamp>())
        });
    }
    group.bench_function("display", |b| {
        b.iter(|| black_box(Timestamp::from_millis(1_752_150_896_789)).to_string())
    });
    group.finish();
}

fn correlation_id(c: &mut Criterion) {
    let mut group = c.benchmark_group("correlation_id");
    let text = "4a7901b8-7d26-4d9d-aa19-4dc1c7cf60b3";
    group.bench_function("parse", |b| {
        b.iter(|| black_box(text).parse::<CorrelationId>())
    });
    let id: CorrelationId = text.parse().expect("a valid UUID");
    group.bench_function("display", |b| b.iter(|| black_box(id).to_string()));
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = money, timestamp, correlation_id
}
criterion_main!(benches);
