//! Remez fit time for GELU on [-20, 20] and ReLU on [-1, 1] at degrees 15..255.
//! Run: `cargo bench -p poly-approx --bench remez`.
#![allow(
    clippy::unwrap_used,
    missing_docs,
    reason = "benchmarks abort loudly; criterion macros"
)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use poly_approx::functions::{gelu, relu};
use poly_approx::remez::minimax;
use poly_approx::Interval;
use std::time::Duration;

fn remez(c: &mut Criterion) {
    let mut g = c.benchmark_group("remez_fit");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(200))
        .measurement_time(Duration::from_secs(2));
    let act = Interval::new(-20.0, 20.0).unwrap();
    let unit = Interval::new(-1.0, 1.0).unwrap();
    for degree in [15usize, 31, 63, 127, 255] {
        g.bench_with_input(BenchmarkId::new("gelu_[-20,20]", degree), &degree, |b, &d| {
            b.iter(|| minimax(gelu, act, d).unwrap())
        });
        g.bench_with_input(BenchmarkId::new("relu_[-1,1]", degree), &degree, |b, &d| {
            b.iter(|| minimax(relu, unit, d).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, remez);
criterion_main!(benches);
