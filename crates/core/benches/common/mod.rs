//! What every benchmark of the core shares: criterion's timing, short
//! enough that `cargo bench -p reroute-core` runs in a minute or two.

use std::time::Duration;

use criterion::Criterion;

/// One second of warm-up and three of measurement per benchmark.
pub fn criterion() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}
