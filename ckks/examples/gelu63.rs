//! Degree-63 minimax GELU on [-8, 8] evaluated on a ciphertext at the N = 2^16 preset: time and
//! max error against the plaintext polynomial and against GELU itself (the anchors' benchmark).
//! Run: `RAYON_NUM_THREADS=1 cargo run --release -p ckks --example gelu63`.

use ckks::circuits::poly_eval::CkksArith;
use ckks::params::Parameters;
use ckks::rlwe::{Encryptor, KeyGenerator};
use ckks::scheme::evaluator::{decrypt_ckks, CkksEncoder, CkksEncryptor, EvaluationKeys, Evaluator};
use poly_approx::eval::EvalPlan;
use poly_approx::functions::gelu;
use poly_approx::remez::minimax;
use poly_approx::Interval;
use rustfft::num_complex::Complex64;
use std::sync::Arc;
use std::time::Instant;

// The operations allocate tens of MB per call: glibc returns such blocks to the OS and every call
// page-faults them back in (30 % of a key switch); mimalloc keeps them (docs/PERF.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<(), ckks::Error> {
    let params = Parameters::n16_depth24()?;
    let mut rng = ckks::ring::sampling::os_seeded_rng();
    let kg = KeyGenerator::new(&params);
    let sk = kg.gen_secret_key(&mut rng)?;
    let pk = kg.gen_public_key(&sk, &mut rng)?;
    let keys = EvaluationKeys {
        relin: Some(kg.gen_relin_key(&sk, &mut rng)?),
        ..Default::default()
    };
    let eval = Evaluator::new(&params, Arc::new(keys));
    let enc = CkksEncoder::new(&params)?;
    let interval = Interval::new(-8.0, 8.0)?;
    let fit = minimax(gelu, interval, 63)?;
    let plan = EvalPlan::new(&fit.poly)?;
    let slots = params.max_slots();
    let xs: Vec<f64> = (0..slots)
        .map(|i| -8.0 + 16.0 * i as f64 / slots as f64)
        .collect();
    let z: Vec<Complex64> = xs.iter().map(|&x| Complex64::new(x, 0.0)).collect();
    let ct = CkksEncryptor(Encryptor::Public(pk)).encrypt(
        &enc.encode(&z, params.max_level(), params.default_scale())?,
        &mut rng,
    )?;
    let t = Instant::now();
    let out = plan.evaluate(&mut CkksArith::new(&params, &eval), &ct)?;
    let secs = t.elapsed().as_secs_f64();
    let got = enc.decode(&decrypt_ckks(&sk, &out)?)?;
    let vs_poly = xs
        .iter()
        .zip(&got)
        .map(|(&x, g)| (fit.poly.eval(x) - g.re).abs())
        .fold(0.0, f64::max);
    let vs_gelu = xs
        .iter()
        .zip(&got)
        .map(|(&x, g)| (gelu(x) - g.re).abs())
        .fold(0.0, f64::max);
    println!(
        "degree 63 GELU on [-8, 8]: {secs:.2} s on {} thread(s), {} levels, {} ct-ct products; max error vs polynomial {vs_poly:.3e}, vs GELU {vs_gelu:.3e} (minimax error {:.3e})",
        rayon::current_num_threads(),
        params.max_level() - out.level(),
        plan.nonscalar_mults(),
        fit.max_error
    );
    Ok(())
}
