//! CKKS operations at the N = 2^16 preset (`Parameters::n16_depth24`: 24 levels, scale 2^45,
//! dnum 7), at the top level, on one thread and on all threads. Run:
//! `cargo bench -p ckks --bench ops`; figures go to `docs/PERF.md`.
#![allow(
    clippy::unwrap_used,
    missing_docs,
    reason = "benchmarks abort loudly on setup errors; criterion macros"
)]

use ckks::circuits::poly_eval::CkksArith;
use ckks::params::Parameters;
use ckks::ring::poly::galois_element_for_rotation;
use ckks::rlwe::{Encryptor, KeyGenerator};
use ckks::scheme::evaluator::{decrypt_ckks, CkksEncoder, CkksEncryptor, EvaluationKeys, Evaluator};
use criterion::{criterion_group, criterion_main, Criterion};
use poly_approx::eval::EvalPlan;
use poly_approx::functions::gelu;
use poly_approx::remez::minimax;
use poly_approx::Interval;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use rustfft::num_complex::Complex64;
use std::sync::Arc;
use std::time::Duration;

// The operations allocate tens of MB per call: glibc returns such blocks to the OS and every call
// page-faults them back in (30 % of a key switch); mimalloc keeps them (docs/PERF.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn ops(c: &mut Criterion) {
    let params = Parameters::n16_depth24().unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let kg = KeyGenerator::new(&params);
    let sk = kg.gen_secret_key(&mut rng).unwrap();
    let pk = kg.gen_public_key(&sk, &mut rng).unwrap();
    let mut keys = EvaluationKeys {
        relin: Some(kg.gen_relin_key(&sk, &mut rng).unwrap()),
        ..Default::default()
    };
    for k in 1..=16i64 {
        let g = galois_element_for_rotation(k, params.n());
        keys.galois
            .insert(g, kg.gen_galois_key(&sk, g, &mut rng).unwrap());
    }
    let eval = Evaluator::new(&params, Arc::new(keys));
    let enc = CkksEncoder::new(&params).unwrap();
    let encryptor = CkksEncryptor(Encryptor::Public(pk));
    let slots = params.max_slots();
    let level = params.max_level();
    let values: Vec<Complex64> = (0..slots)
        .map(|i| Complex64::new((i as f64).sin(), 0.0))
        .collect();
    let pt = enc.encode(&values, level, params.default_scale()).unwrap();
    let ct = encryptor.encrypt(&pt, &mut rng).unwrap();
    let ct2 = encryptor.encrypt(&pt, &mut rng).unwrap();
    let product = eval.mul_relin(&ct, &ct2).unwrap();
    let rotations: Vec<i64> = (1..=16).collect();
    // Degree-63 minimax GELU on [-8, 8] (the anchors' Chebyshev benchmark uses the same degree and interval).
    let gelu_fit = minimax(gelu, Interval::new(-8.0, 8.0).unwrap(), 63).unwrap();
    let gelu_plan = EvalPlan::new(&gelu_fit.poly).unwrap();

    let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let all = rayon::ThreadPoolBuilder::new().build().unwrap();
    let mut g = c.benchmark_group("ckks_n16_top_level");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for (label, pool) in [
        ("1thread", &one),
        (&*format!("{}threads", all.current_num_threads()), &all),
    ] {
        let label = label.to_string();
        g.bench_function(format!("encode/{label}"), |b| {
            b.iter(|| pool.install(|| enc.encode(&values, level, params.default_scale()).unwrap()))
        });
        g.bench_function(format!("encrypt_pk/{label}"), |b| {
            let mut r = ChaCha20Rng::seed_from_u64(2);
            b.iter(|| pool.install(|| encryptor.encrypt(&pt, &mut r).unwrap()))
        });
        g.bench_function(format!("decrypt/{label}"), |b| {
            b.iter(|| pool.install(|| decrypt_ckks(&sk, &ct).unwrap()))
        });
        g.bench_function(format!("decode/{label}"), |b| {
            b.iter(|| pool.install(|| enc.decode(&pt).unwrap()))
        });
        g.bench_function(format!("mul_plain_rescale/{label}"), |b| {
            b.iter(|| pool.install(|| eval.rescale(&eval.mul_plain(&ct, &pt).unwrap()).unwrap()))
        });
        g.bench_function(format!("mul_relin/{label}"), |b| {
            b.iter(|| pool.install(|| eval.mul_relin(&ct, &ct2).unwrap()))
        });
        g.bench_function(format!("rescale/{label}"), |b| {
            b.iter(|| pool.install(|| eval.rescale(&product).unwrap()))
        });
        g.bench_function(format!("rotate/{label}"), |b| {
            b.iter(|| pool.install(|| eval.rotate(&ct, 1).unwrap()))
        });
        g.bench_function(format!("rotate_16_plain/{label}"), |b| {
            b.iter(|| {
                pool.install(|| {
                    rotations
                        .iter()
                        .map(|&k| eval.rotate(&ct, k).unwrap())
                        .collect::<Vec<_>>()
                })
            })
        });
        g.bench_function(format!("rotate_16_hoisted/{label}"), |b| {
            b.iter(|| pool.install(|| eval.rotate_hoisted(&ct, &rotations).unwrap()))
        });
        g.bench_function(format!("gelu_minimax_deg63/{label}"), |b| {
            b.iter(|| {
                pool.install(|| {
                    let mut arith = CkksArith::new(&params, &eval);
                    gelu_plan.evaluate(&mut arith, &ct).unwrap()
                })
            })
        });
        g.bench_function(format!("keygen_relin/{label}"), |b| {
            let mut r = ChaCha20Rng::seed_from_u64(3);
            b.iter(|| pool.install(|| kg.gen_relin_key(&sk, &mut r).unwrap()))
        });
    }
    g.finish();
}

criterion_group!(benches, ops);
criterion_main!(benches);
