//! NTT benchmarks: one prime and a 30-prime RNS polynomial, N = 2^12, 2^14, 2^16, every backend this
//! CPU has, single thread (plus the 30-prime case on all threads). Run:
//! `cargo bench -p ckks --bench ntt`; figures go to `docs/PERF.md`.
#![allow(
    clippy::unwrap_used,
    missing_docs,
    reason = "benchmarks abort loudly on setup errors; criterion macros generate undocumented items"
)]

use ckks::math::modulus::Modulus;
use ckks::math::ntt::NttTable;
use ckks::math::primes::ntt_primes_below;
use ckks::math::simd::Backend;
use ckks::ring::{Coeff, RingBasis, RnsPoly};
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use std::time::Duration;

// The operations allocate tens of MB per call: glibc returns such blocks to the OS and every call
// page-faults them back in (30 % of a key switch); mimalloc keeps them (docs/PERF.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn random_vec(n: usize, q: u64, rng: &mut ChaCha20Rng) -> Vec<u64> {
    (0..n).map(|_| rng.random_range(0..q)).collect()
}

fn one_prime(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let mut g = c.benchmark_group("ntt_one_prime");
    g.sample_size(30)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    for log_n in [12u32, 14, 16] {
        let n = 1usize << log_n;
        for bits in [50u32, 60] {
            let q = ntt_primes_below(bits, n, 1).unwrap()[0];
            for backend in Backend::ALL.into_iter().filter(|b| b.is_available()) {
                let t = NttTable::with_backend(q, n, backend).unwrap();
                if t.backend() != backend {
                    continue; // IFMA does not take 60-bit primes
                }
                let mut a = random_vec(n, q, &mut rng);
                let id = format!("n=2^{log_n}/q={bits}b");
                g.throughput(Throughput::Elements(n as u64));
                g.bench_with_input(
                    BenchmarkId::new(format!("forward/{}", backend.name()), &id),
                    &(),
                    |b, _| b.iter(|| t.forward(black_box(&mut a)).unwrap()),
                );
                g.bench_with_input(
                    BenchmarkId::new(format!("inverse/{}", backend.name()), &id),
                    &(),
                    |b, _| b.iter(|| t.inverse(black_box(&mut a)).unwrap()),
                );
            }
        }
    }
    g.finish();
}

fn thirty_primes(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let mut g = c.benchmark_group("ntt_30_primes");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for log_n in [12u32, 14, 16] {
        let n = 1usize << log_n;
        for bits in [50u32, 60] {
            let primes = ntt_primes_below(bits, n, 30).unwrap();
            for backend in Backend::ALL.into_iter().filter(|b| b.is_available()) {
                let tables: Vec<NttTable> = primes
                    .iter()
                    .map(|&q| NttTable::with_backend(q, n, backend).unwrap())
                    .collect();
                if tables[0].backend() != backend {
                    continue;
                }
                let mut limbs: Vec<Vec<u64>> = primes.iter().map(|&q| random_vec(n, q, &mut rng)).collect();
                let id = format!("n=2^{log_n}/30x{bits}b");
                g.bench_with_input(
                    BenchmarkId::new(format!("forward/{}/1thread", backend.name()), &id),
                    &(),
                    |b, _| {
                        b.iter(|| {
                            for (t, l) in tables.iter().zip(limbs.iter_mut()) {
                                t.forward(black_box(l)).unwrap();
                            }
                        })
                    },
                );
                g.bench_with_input(
                    BenchmarkId::new(format!("inverse/{}/1thread", backend.name()), &id),
                    &(),
                    |b, _| {
                        b.iter(|| {
                            for (t, l) in tables.iter().zip(limbs.iter_mut()) {
                                t.inverse(black_box(l)).unwrap();
                            }
                        })
                    },
                );
            }
            // The RNS polynomial path with the detected backend, on all threads (rayon across limbs).
            if log_n == 16 {
                let basis = RingBasis::new(n, &primes).unwrap();
                let p: RnsPoly<Coeff> = ckks::ring::sampling::uniform(&basis, &mut rng);
                let id = format!("n=2^{log_n}/30x{bits}b");
                let name = format!(
                    "rnspoly_forward/{}/all_threads",
                    basis.tables()[0].backend().name()
                );
                g.bench_with_input(BenchmarkId::new(name, &id), &(), |b, _| {
                    b.iter_batched(|| p.clone(), |x| x.into_ntt(), criterion::BatchSize::LargeInput)
                });
            }
        }
    }
    g.finish();
}

/// The cost of one lazy Shoup multiply-add on the scalar path, in cache: the unit of the bound
/// "butterflies per NTT x cost of one modular multiply-add".
fn modmul_add(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let q = ntt_primes_below(60, 4096, 1).unwrap()[0];
    let m = Modulus::new(q).unwrap();
    let a = random_vec(4096, q, &mut rng);
    let w = random_vec(4096, q, &mut rng);
    let ws: Vec<u64> = w.iter().map(|&x| m.shoup(x)).collect();
    let mut acc = random_vec(4096, q, &mut rng);
    let mut g = c.benchmark_group("modmul");
    g.sample_size(30).measurement_time(Duration::from_secs(1));
    g.throughput(Throughput::Elements(4096));
    g.bench_function("shoup_lazy_add/scalar/4096", |b| {
        b.iter(|| {
            for i in 0..4096 {
                acc[i] = (acc[i] + m.mul_shoup_lazy(a[i], w[i], ws[i])) & ((1 << 62) - 1);
            }
            black_box(&acc);
        })
    });
    g.bench_function("barrett_mul/scalar/4096", |b| {
        b.iter(|| {
            for i in 0..4096 {
                acc[i] = m.mul(acc[i], a[i]);
            }
            black_box(&acc);
        })
    });
    g.finish();
}

// one_prime, modmul and the "1thread" cases call the kernels directly on the calling thread.
criterion_group!(benches, one_prime, modmul_add, thirty_primes);
criterion_main!(benches);
