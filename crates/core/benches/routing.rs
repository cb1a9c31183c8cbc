//! The routing decision a worker makes before every send:
//! `Policy::choose` (circuit breakers alone) and `Policy::choose_by` with the
//! worker's gate (the health engine's gate for the payment's segment, then the
//! circuit), over the Rinha pair and the five TechCart processors.
//!
//! Circuits are put in a state that `claim` does not change (a down
//! processor's next trial lies after `now`), so every iteration decides the
//! same thing:
//!
//! - `all_up`: the cheapest is taken at once;
//! - `cheapest_down_within_patience`: the payment waits for the cheapest's
//!   next trial (nothing pricier is asked);
//! - `cheapest_down_beyond_patience`: the next processor is taken;
//! - `all_down_beyond_patience`: every processor is asked (the longest scan).
//!
//! ```text
//! cargo bench -p reroute-core --bench routing
//! ```

mod common;

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use reroute_core::circuit::{Circuit, CircuitConfig, Gate, Signal};
use reroute_core::health::{Outcome, Transaction};
use reroute_core::{
    Decision, FeeRate, HealthConfig, HealthEngine, Policy, Processor, ProcessorId, Registry,
    Timestamp,
};

const POLICY: Policy = Policy {
    patience_ms: 60_000,
    spill_wait_ms: 1_000,
};

/// A down processor's circuit trips at `t = 0` (its first trial is due at
/// 100 ms); the decision is made at 50 ms.
const NOW: Timestamp = Timestamp::from_millis(50);

#[derive(Clone, Copy)]
enum Scenario {
    AllUp,
    CheapestDownWithinPatience,
    CheapestDownBeyondPatience,
    AllDownBeyondPatience,
}

impl Scenario {
    const ALL: [Scenario; 4] = [
        Scenario::AllUp,
        Scenario::CheapestDownWithinPatience,
        Scenario::CheapestDownBeyondPatience,
        Scenario::AllDownBeyondPatience,
    ];

    fn name(self) -> &'static str {
        match self {
            Scenario::AllUp => "all_up",
            Scenario::CheapestDownWithinPatience => "cheapest_down_within_patience",
            Scenario::CheapestDownBeyondPatience => "cheapest_down_beyond_patience",
            Scenario::AllDownBeyondPatience => "all_down_beyond_patience",
        }
    }

    fn circuits(self, n: usize) -> Vec<Circuit> {
        let mut circuits: Vec<Circuit> = (0..n)
            .map(|_| Circuit::new(CircuitConfig::default()))
            .collect();
        let down = match self {
            Scenario::AllUp => 0,
            Scenario::CheapestDownWithinPatience | Scenario::CheapestDownBeyondPatience => 1,
            Scenario::AllDownBeyondPatience => n,
        };
        for circuit in &mut circuits[..down] {
            circuit.observe(Signal::ProbeFailing, Timestamp::from_millis(0), 0.0);
        }
        circuits
    }

    fn accepted_at(self) -> Timestamp {
        match self {
            Scenario::AllUp | Scenario::CheapestDownWithinPatience => NOW,
            Scenario::CheapestDownBeyondPatience | Scenario::AllDownBeyondPatience => {
                NOW.plus_millis(-(POLICY.patience_ms + 1_000))
            }
        }
    }

    /// What the policy must decide, checked once before measuring.
    fn expected(self, n: usize) -> Decision {
        match self {
            Scenario::AllUp => Decision::Send {
                processor: 0,
                trial: false,
            },
            Scenario::CheapestDownWithinPatience | Scenario::AllDownBeyondPatience => {
                Decision::WaitUntil(Timestamp::from_millis(100))
            }
            Scenario::CheapestDownBeyondPatience if n > 1 => Decision::Send {
                processor: 1,
                trial: false,
            },
            Scenario::CheapestDownBeyondPatience => {
                Decision::WaitUntil(Timestamp::from_millis(100))
            }
        }
    }
}

fn processor(id: &str, ppm: u32) -> Processor {
    Processor {
        id: ProcessorId::new(id),
        name: id.to_owned(),
        url: Some(format!("http://127.0.0.1/{id}")),
        fee: FeeRate::from_ppm(ppm),
        // Every processor takes PIX in BR, so every one is eligible and the
        // scan length is set by the circuits alone.
        countries: vec!["BR".into(), "MX".into()],
        payment_methods: vec!["PIX".into(), "CARD".into()],
    }
}

fn registry(n: usize) -> Registry {
    Registry::new(
        (0..n)
            .map(|i| processor(&format!("p{i}"), 10_000 * (i as u32 + 1)))
            .collect(),
    )
    .expect("a valid registry")
}

/// A health engine whose PIX/BR segment has a full window of approvals at
/// every processor: the health gate says `Go`, as it does in steady state.
fn healthy_engine(registry: &Registry) -> HealthEngine {
    let engine = HealthEngine::new(registry, HealthConfig::default());
    for index in 0..registry.len() {
        for i in 0..100 {
            let tx = Transaction {
                payment_method: Some("pix"),
                country: Some("BR"),
                latency_ms: Some(40),
                ..Transaction::new(Outcome::Approved, Timestamp::from_millis(i - 100))
            };
            engine.record(index, &tx, Timestamp::from_millis(i - 100));
        }
    }
    engine
}

/// The worker's gate (crates/server/src/routing.rs): the segment's health
/// gate first, then the circuit's claim.
fn worker_gate(
    engine: &HealthEngine,
    circuits: &mut [Circuit],
    index: usize,
    now: Timestamp,
) -> Gate {
    let health = engine.gate(index, Some("pix"), Some("BR"), now);
    if let Gate::WaitUntil(_) = health {
        return health;
    }
    circuits[index].claim(now)
}

fn choose(c: &mut Criterion) {
    let mut group = c.benchmark_group("policy_choose");
    for n in [2, 5] {
        let eligible = vec![true; n];
        for scenario in Scenario::ALL {
            let mut circuits = scenario.circuits(n);
            let accepted_at = scenario.accepted_at();
            assert_eq!(
                POLICY.choose(&mut circuits, &eligible, accepted_at, NOW),
                scenario.expected(n)
            );
            group.bench_function(BenchmarkId::new(scenario.name(), n), |b| {
                b.iter(|| {
                    POLICY.choose(
                        black_box(&mut circuits),
                        black_box(&eligible),
                        black_box(accepted_at),
                        black_box(NOW),
                    )
                })
            });
        }
    }
    group.finish();
}

fn choose_by_worker_gate(c: &mut Criterion) {
    let mut group = c.benchmark_group("policy_choose_by_health_and_circuit");
    for n in [2, 5] {
        let registry = registry(n);
        let engine = healthy_engine(&registry);
        let eligible: Vec<bool> = registry
            .by_fee()
            .iter()
            .map(|p| p.supports(Some("pix"), Some("BR")))
            .collect();
        for scenario in Scenario::ALL {
            let mut circuits = scenario.circuits(n);
            let accepted_at = scenario.accepted_at();
            let decide = |circuits: &mut [Circuit]| {
                POLICY.choose_by(
                    black_box(&eligible),
                    |i| worker_gate(&engine, circuits, i, NOW),
                    black_box(accepted_at),
                    black_box(NOW),
                )
            };
            assert_eq!(decide(&mut circuits), scenario.expected(n));
            group.bench_function(BenchmarkId::new(scenario.name(), n), |b| {
                b.iter(|| decide(black_box(&mut circuits)))
            });
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = choose, choose_by_worker_gate
}
criterion_main!(benches);
