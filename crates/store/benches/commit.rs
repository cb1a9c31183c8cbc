//! The embedded store's group commit, through the public `Store` trait:
//!
//! - `accept/alone`: one accept at a time, so every accept is its own commit
//!   (one fsync): the latency a `POST /payments` pays on an idle router;
//! - `accept/concurrent/N`: N accepts issued at once and all awaited; the
//!   writer thread commits whatever is queued when it wakes, so N accepts
//!   share a few fsyncs (throughput in accepts/s);
//! - `begin_attempt/alone`, `finish/alone`: the two writes of a send, each
//!   alone in its group.
//!
//! The database lives under the target directory (`CARGO_TARGET_TMPDIR`), not
//! in `/tmp`, which may be a tmpfs where an fsync costs nothing. Sample sizes
//! are small: these benchmarks measure the disk.
//!
//! ```text
//! cargo bench -p reroute-store --bench commit
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use reroute_core::{CorrelationId, Money, Timestamp};
use reroute_store::{Acceptance, Attempt, NewPayment, Outcome, SqliteStore, Store};
use tokio::runtime::Runtime;
use tokio::task::JoinSet;

/// A fresh correlation id per payment, without the randomness of v4.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn fresh_id() -> CorrelationId {
    let n = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    CorrelationId::from_bytes(u128::from(n).to_be_bytes())
}

fn payment(id: CorrelationId) -> NewPayment {
    NewPayment {
        id,
        amount: Money::from_minor(1990),
        payment_method: None,
        country: None,
        accepted_at: Timestamp::from_millis(1_752_150_896_789),
    }
}

fn attempt() -> Attempt {
    Attempt {
        processor: "default".into(),
        requested_at: Timestamp::from_millis(1_752_150_896_800),
    }
}

struct Fixture {
    runtime: Runtime,
    store: Arc<dyn Store>,
    _dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("reroute-commit-bench")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .expect("a temporary directory under the target directory");
        let store = SqliteStore::open(dir.path().join("bench.db")).expect("the store opens");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        Self {
            runtime,
            store: Arc::new(store),
            _dir: dir,
        }
    }

    /// Accepts `n` fresh payments at once (untimed set-up), returning their ids.
    fn accepted(&self, n: u64) -> Vec<CorrelationId> {
        let ids: Vec<CorrelationId> = (0..n).map(|_| fresh_id()).collect();
        self.runtime
            .block_on(concurrently(&self.store, &ids, |store, id| async move {
                assert_eq!(
                    store.accept(payment(id)).await.expect("accept"),
                    Acceptance::New
                );
            }));
        ids
    }
}

/// Runs `op` for every id at once, each in its own task, and waits for all.
async fn concurrently<F, Fut>(store: &Arc<dyn Store>, ids: &[CorrelationId], op: F)
where
    F: Fn(Arc<dyn Store>, CorrelationId) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut tasks = JoinSet::new();
    for &id in ids {
        tasks.spawn(op(Arc::clone(store), id));
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("the task did not panic");
    }
}

fn accept(c: &mut Criterion) {
    let fixture = Fixture::new();
    let store = &fixture.store;
    let mut group = c.benchmark_group("accept");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));

    group.throughput(Throughput::Elements(1));
    group.bench_function("alone", |b| {
        b.iter_custom(|iters| {
            fixture.runtime.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let acceptance = store.accept(payment(fresh_id())).await.expect("accept");
                    assert_eq!(acceptance, Acceptance::New);
                }
                start.elapsed()
            })
        })
    });

    for n in [1u64, 16, 256] {
        group.throughput(Throughput::Elements(n));
        group.bench_function(BenchmarkId::new("concurrent", n), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let ids: Vec<CorrelationId> = (0..n).map(|_| fresh_id()).collect();
                    let start = Instant::now();
                    fixture
                        .runtime
                        .block_on(concurrently(store, &ids, |store, id| async move {
                            let acceptance = store.accept(payment(id)).await.expect("accept");
                            assert_eq!(acceptance, Acceptance::New);
                        }));
                    total += start.elapsed();
                }
                total
            })
        });
    }
    group.finish();
}

fn attempt_and_finish(c: &mut Criterion) {
    let fixture = Fixture::new();
    let store = &fixture.store;
    let mut group = c.benchmark_group("send_writes");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(1));

    group.bench_function("begin_attempt/alone", |b| {
        b.iter_custom(|iters| {
            let ids = fixture.accepted(iters);
            fixture.runtime.block_on(async {
                let start = Instant::now();
                for &id in &ids {
                    assert!(
                        store
                            .begin_attempt(id, attempt())
                            .await
                            .expect("begin_attempt")
                    );
                }
                start.elapsed()
            })
        })
    });

    group.bench_function("finish_processed/alone", |b| {
        b.iter_custom(|iters| {
            let ids = fixture.accepted(iters);
            fixture.runtime.block_on(async {
                concurrently(store, &ids, |store, id| async move {
                    assert!(
                        store
                            .begin_attempt(id, attempt())
                            .await
                            .expect("begin_attempt")
                    );
                })
                .await;
                let start = Instant::now();
                for &id in &ids {
                    let outcome = Outcome::Processed(attempt());
                    assert!(store.finish(id, outcome).await.expect("finish"));
                }
                start.elapsed()
            })
        })
    });
    group.finish();
}

criterion_group!(benches, accept, attempt_and_finish);
criterion_main!(benches);
