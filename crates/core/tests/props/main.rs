//! Property tests of the parsers at the edge: money, instants, windows and
//! correlation ids. Each parser is checked against a small reference model
//! written here from the documented grammar (decimal strings and `i128`
//! arithmetic for money, the civil-calendar formula for instants), on inputs
//! generated to hit the edges: long significands, huge exponents, leading
//! zeros, the largest amount, `i64` limits, offsets, sub-millisecond digits,
//! and arbitrary text.
//!
//! `PROPTEST_CASES=N` runs every property with N cases (256 by default).
//!
//! One property module per parser family: `money`, `time` (instants and
//! windows) and `ids`.

use proptest::prelude::*;

mod ids;
mod money;
mod time;

/// The cases come from `PROPTEST_CASES` (256 by default); shrinking is
/// bounded so that a failure over long texts reports in seconds.
fn config() -> ProptestConfig {
    ProptestConfig {
        max_shrink_iters: 2_000,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}
