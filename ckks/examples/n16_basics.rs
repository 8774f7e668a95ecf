//! Encrypt, multiply, rescale, rotate and decrypt at the 128-bit N = 2^16 preset, printing the
//! precision. Run: `cargo run --release -p ckks --example n16_basics`.

use ckks::params::Parameters;
use ckks::ring::poly::galois_element_for_rotation;
use ckks::rlwe::{Encryptor, KeyGenerator};
use ckks::scheme::evaluator::{decrypt_ckks, CkksEncoder, CkksEncryptor, EvaluationKeys, Evaluator};
use ckks::scheme::precision::precision_stats;
use rustfft::num_complex::Complex64;
use std::sync::Arc;
use std::time::Instant;

// The operations allocate tens of MB per call: glibc returns such blocks to the OS and every call
// page-faults them back in (30 % of a key switch); mimalloc keeps them (docs/PERF.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<(), ckks::Error> {
    let params = Parameters::n16_depth24()?;
    println!(
        "N = 2^16, {} levels, scale 2^45, log2 QP = {:.0} (128-bit bound: 1747), dnum = {}",
        params.max_level(),
        params.log_qp(),
        params.dnum()
    );
    let mut rng = ckks::ring::sampling::os_seeded_rng();
    let kg = KeyGenerator::new(&params);
    let sk = kg.gen_secret_key(&mut rng)?;
    let pk = kg.gen_public_key(&sk, &mut rng)?;
    let g = galois_element_for_rotation(1, params.n());
    let mut keys = EvaluationKeys {
        relin: Some(kg.gen_relin_key(&sk, &mut rng)?),
        ..Default::default()
    };
    keys.galois.insert(g, kg.gen_galois_key(&sk, g, &mut rng)?);
    let eval = Evaluator::new(&params, Arc::new(keys));
    let enc = CkksEncoder::new(&params)?;
    let slots = params.max_slots();
    let x: Vec<Complex64> = (0..slots)
        .map(|i| Complex64::new((i as f64 / slots as f64) * 2.0 - 1.0, 0.5))
        .collect();
    let y: Vec<Complex64> = (0..slots)
        .map(|i| Complex64::new(((i * 7) % 13) as f64 / 13.0, -0.25))
        .collect();
    let encryptor = CkksEncryptor(Encryptor::Public(pk));
    let top = params.max_level();
    let cx = encryptor.encrypt(&enc.encode(&x, top, params.default_scale())?, &mut rng)?;
    let cy = encryptor.encrypt(&enc.encode(&y, top, params.default_scale())?, &mut rng)?;
    let t = Instant::now();
    let prod = eval.rescale(&eval.mul_relin(&cx, &cy)?)?;
    let rotated = eval.rotate(&prod, 1)?;
    let elapsed = t.elapsed();
    let got = enc.decode(&decrypt_ckks(&sk, &rotated)?)?;
    let expected: Vec<Complex64> = (0..slots)
        .map(|i| x[(i + 1) % slots] * y[(i + 1) % slots])
        .collect();
    let stats = precision_stats(&expected, &got)?;
    println!(
        "(x * y) rotated by one slot, level {} after: {stats}",
        rotated.level()
    );
    println!(
        "mul + relinearize + rescale + rotate: {:.0} ms",
        elapsed.as_secs_f64() * 1e3
    );
    Ok(())
}
