//! Cost of one backend choice: `Balancer::pick` of every policy over pools of 3 and 16
//! backends, all usable, with a few requests in flight and, for consistent hashing, a
//! different key at each pick (the hashing of the key itself is not included).
//!
//! The candidates are built once, as a worker fills its reused `Vec` before each pick; weights
//! differ (1, 2, 3 x 100) so the weighted policies do their real arithmetic. Peak EWMA has
//! seen one latency per backend first, so its estimates decay at each pick.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ringway::balance::{Candidate, PolicyKind, build, hash_key};

fn pick(c: &mut Criterion) {
    let mut group = c.benchmark_group("pick");
    group.throughput(Throughput::Elements(1));
    let now = Instant::now();
    for kind in PolicyKind::ALL {
        for n in [3u32, 16] {
            let ids: Vec<String> = (0..n).map(|i| format!("10.0.0.{i}:80")).collect();
            let weights: Vec<u32> = (0..n).map(|i| i % 3 + 1).collect();
            let candidates: Vec<Candidate> = (0..n)
                .map(|i| Candidate {
                    weight: if kind.uses_weights() {
                        weights[i as usize] * 100
                    } else {
                        100
                    },
                    in_flight: i % 4,
                })
                .collect();
            let policy = build(kind, &ids, &weights, 1);
            for i in 0..n {
                let latency = Duration::from_micros(500 + u64::from(i) * 100);
                policy.observe(i as usize, latency, now);
            }
            let keys: Vec<u64> = (0..1024u64).map(|k| hash_key(&k.to_le_bytes())).collect();
            let mut k = 0usize;
            let at = now + Duration::from_millis(5);
            group.bench_function(BenchmarkId::new(kind.name(), n), |b| {
                b.iter(|| {
                    k = (k + 1) & 1023;
                    black_box(policy.pick(black_box(&candidates), keys[k], at))
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, pick);
criterion_main!(benches);
