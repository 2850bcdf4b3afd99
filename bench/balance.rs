//! Cost of one backend choice: `RoundRobin::pick` over pools of 2 and 16 backends, all usable,
//! and over 16 backends of which every other one is down (each pick skips one).
//!
//! The usability check reads a per-backend flag, the way a worker reads the health state
//! published in atomics, so the closure call through `&dyn Fn` is part of what is measured.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ringway::balance::{Balancer, RoundRobin};

fn pick(c: &mut Criterion) {
    let mut group = c.benchmark_group("round_robin_pick");
    group.throughput(Throughput::Elements(1));
    for (name, len, every_other_down) in [
        ("2_backends", 2, false),
        ("16_backends", 16, false),
        ("16_backends_half_down", 16, true),
    ] {
        let healthy: Vec<AtomicBool> = (0..len)
            .map(|i| AtomicBool::new(!every_other_down || i % 2 == 0))
            .collect();
        let usable = |i: usize| healthy[i].load(Ordering::Relaxed);
        let rr = RoundRobin::default();
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| black_box(rr.pick(black_box(len), &usable)))
        });
    }
    group.finish();
}

criterion_group!(benches, pick);
criterion_main!(benches);
