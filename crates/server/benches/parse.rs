//! Parsing a `POST /payments` body into a `NewPayment`: the work the payments
//! endpoint does on every request before the store sees it.
//!
//! ```text
//! cargo bench -p reroute-server --bench parse
//! ```

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use reroute_core::Timestamp;
use reroute_server::api::payments::parse_payment;

const NOW: Timestamp = Timestamp::from_millis(1_752_150_896_789);

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse_payment");
    for (name, body) in [
        (
            "rinha",
            &br#"{"correlationId":"4a7901b8-7d26-4d9d-aa19-4dc1c7cf60b3","amount":19.90}"#[..],
        ),
        (
            "with_method_and_country",
            &br#"{"correlationId":"4a7901b8-7d26-4d9d-aa19-4dc1c7cf60b3","amount":19.90,"paymentMethod":"PIX","country":"br"}"#[..],
        ),
        (
            "refused_third_decimal",
            &br#"{"correlationId":"4a7901b8-7d26-4d9d-aa19-4dc1c7cf60b3","amount":19.901}"#[..],
        ),
    ] {
        let valid = !name.starts_with("refused");
        assert_eq!(parse_payment(body, NOW).is_ok(), valid, "{name}");
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| parse_payment(black_box(body), black_box(NOW)))
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = parse
}
criterion_main!(benches);
