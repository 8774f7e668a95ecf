//! Profiling driver for key switching at the N = 2^16 preset (`n16_depth24`, top level): runs one
//! kind of operation in a loop so `perf record -D <ms>` can skip the key generation, and prints the
//! mean time per operation.
//!
//! `RAYON_NUM_THREADS=1 cargo run --release -p ckks --example ks_profile -- [mul|rot|hoist|all] [reps]`
#![allow(
    clippy::unwrap_used,
    missing_docs,
    reason = "a driver: setup errors abort loudly"
)]
use ckks::params::Parameters;
use ckks::ring::poly::galois_element_for_rotation;
use ckks::rlwe::{Encryptor, KeyGenerator};
use ckks::scheme::evaluator::{CkksEncoder, CkksEncryptor, EvaluationKeys, Evaluator};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use rustfft::num_complex::Complex64;
use std::sync::Arc;
use std::time::Instant;
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let what = std::env::args().nth(1).unwrap_or("all".into());
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
    let values: Vec<Complex64> = (0..params.max_slots())
        .map(|i| Complex64::new((i as f64).sin(), 0.0))
        .collect();
    let pt = enc
        .encode(&values, params.max_level(), params.default_scale())
        .unwrap();
    let ct = encryptor.encrypt(&pt, &mut rng).unwrap();
    let ct2 = encryptor.encrypt(&pt, &mut rng).unwrap();
    let rots: Vec<i64> = (1..=16).collect();
    let reps: usize = std::env::args().nth(2).map(|s| s.parse().unwrap()).unwrap_or(3);
    eprintln!("setup done");
    for _ in 0..reps {
        if what == "all" || what == "mul" {
            let t = Instant::now();
            for _ in 0..5 {
                std::hint::black_box(eval.mul_relin(&ct, &ct2).unwrap());
            }
            println!("mul_relin {:.1} ms", t.elapsed().as_secs_f64() * 200.0);
        }
        if what == "all" || what == "rot" {
            let t = Instant::now();
            for _ in 0..5 {
                std::hint::black_box(eval.rotate(&ct, 1).unwrap());
            }
            println!("rotate {:.1} ms", t.elapsed().as_secs_f64() * 200.0);
        }
        if what == "all" || what == "hoist" {
            let t = Instant::now();
            std::hint::black_box(eval.rotate_hoisted(&ct, &rots).unwrap());
            println!("hoisted16 {:.1} ms", t.elapsed().as_secs_f64() * 1000.0);
        }
    }
}
