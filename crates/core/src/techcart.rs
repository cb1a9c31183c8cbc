//! The five TechCart processors of config/techcart.toml as a [`Registry`]
//! (names and URLs left out): the registry the health engine's unit tests
//! and its criterion benchmarks run on. Off the data path: test support,
//! public (and hidden from the docs) only because a bench is a crate of its
//! own and cannot see the library's `#[cfg(test)]` items.

use crate::registry::{FeeRate, Processor, ProcessorId, Registry};

/// processor_a to processor_e, by id: PIX and cards in Brazil, cards in
/// Mexico and Colombia, OXXO in Mexico, PSE in Colombia.
pub fn registry() -> Registry {
    Registry::new(vec![
        processor("processor_a", 29_000, &["BR"], &["PIX", "CARD"]),
        processor("processor_b", 35_000, &["BR", "MX", "CO"], &["CARD"]),
        processor("processor_c", 15_000, &["BR"], &["PIX"]),
        processor("processor_d", 32_000, &["MX"], &["CARD", "OXXO"]),
        processor("processor_e", 30_000, &["CO"], &["PSE", "CARD"]),
    ])
    .expect("five distinct, well-formed ids make a valid registry")
}

fn processor(id: &str, ppm: u32, countries: &[&str], methods: &[&str]) -> Processor {
    Processor {
        id: ProcessorId::new(id),
        name: id.to_owned(),
        url: None,
        fee: FeeRate::from_ppm(ppm),
        countries: countries.iter().map(|s| s.to_string()).collect(),
        payment_methods: methods.iter().map(|s| s.to_string()).collect(),
    }
}
