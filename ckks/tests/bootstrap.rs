//! Bootstrapping at toy parameters (N = 2^10, sparse secret of weight 32: **insecure**): random
//! messages survive within a stated precision, the output level is what the circuit promises, and
//! repeated multiply-bootstrap cycles keep the error bounded.
#![allow(clippy::unwrap_used, reason = "test fixtures fail loudly")]

use ckks::circuits::bootstrap::{BootstrapConfig, Bootstrapper};
use ckks::params::{Parameters, ParametersLiteral, SecretDistribution, SecurityLevel};
use ckks::rlwe::{Encryptor, KeyGenerator, SecretKey};
use ckks::scheme::evaluator::{decrypt_ckks, CkksEncoder, CkksEncryptor, EvaluationKeys, Evaluator};
use ckks::scheme::precision::precision_stats;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use rustfft::num_complex::Complex64;
use std::sync::Arc;

struct Ctx {
    params: Arc<Parameters>,
    enc: CkksEncoder,
    sk: SecretKey,
    encryptor: CkksEncryptor,
    eval: Evaluator,
    boot: Bootstrapper,
    rng: ChaCha20Rng,
}

fn ctx() -> Ctx {
    let config = BootstrapConfig {
        cts_levels: 2,
        stc_levels: 2,
        k: 12.0,
        cos_degree: 31,
        double_angle: 3,
    };
    // q0 of 55 bits (the message is 2^10 below q0 at scale 2^45), bootstrapping primes of 60 bits,
    // two working levels of 45 bits.
    let boot_levels = 2 + 5 + 3 + 2;
    let params = Parameters::new(ParametersLiteral {
        log_n: 10,
        log_q: std::iter::once(60)
            .chain(std::iter::repeat_n(45, 2))
            .chain(std::iter::repeat_n(60, boot_levels))
            .collect(),
        log_p: vec![60, 60, 60],
        log_default_scale: 45,
        secret: SecretDistribution::SparseTernary { hamming_weight: 32 },
        security: SecurityLevel::InsecureForTests,
        dnum: None,
    })
    .unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(11);
    let enc = CkksEncoder::new(&params).unwrap();
    let boot = Bootstrapper::new(&params, &enc, config).unwrap();
    let kg = KeyGenerator::new(&params);
    let sk = kg.gen_secret_key(&mut rng).unwrap();
    let pk = kg.gen_public_key(&sk, &mut rng).unwrap();
    let mut keys = EvaluationKeys {
        relin: Some(kg.gen_relin_key(&sk, &mut rng).unwrap()),
        ..Default::default()
    };
    for g in boot.galois_elements() {
        keys.galois
            .insert(g, kg.gen_galois_key(&sk, g, &mut rng).unwrap());
    }
    let eval = Evaluator::new(&params, Arc::new(keys));
    Ctx {
        params,
        enc,
        sk,
        encryptor: CkksEncryptor(Encryptor::Public(pk)),
        eval,
        boot,
        rng,
    }
}

fn random_values(n: usize, rng: &mut ChaCha20Rng) -> Vec<Complex64> {
    (0..n)
        .map(|_| Complex64::new(rng.random_range(-1.0..1.0), rng.random_range(-1.0..1.0)))
        .collect()
}

#[test]
fn bootstrapping_refreshes_level_zero_ciphertexts() {
    let mut c = ctx();
    assert_eq!(
        c.boot.output_level(),
        2,
        "two working levels remain after bootstrapping"
    );
    let v = random_values(c.params.max_slots(), &mut c.rng);
    let pt = c.enc.encode(&v, 0, c.params.default_scale()).unwrap();
    let ct = c.encryptor.encrypt(&pt, &mut c.rng).unwrap();
    let out = c.boot.bootstrap(&c.eval, &ct).unwrap();
    assert_eq!(out.level(), c.boot.output_level());
    let got = c.enc.decode(&decrypt_ckks(&c.sk, &out).unwrap()).unwrap();
    let stats = precision_stats(&v, &got).unwrap();
    eprintln!(
        "bootstrapping, N = 2^10, h = 32, {} galois keys: {stats}",
        c.boot.galois_elements().len()
    );
    // Measured 20.9 bits (worst slot) / 24.4 (mean). The budget: message 2^15 below q0, so noise
    // of the 60-bit working scale costs 15 bits; the sine's cubic term (2 pi m / q0)^2 / 6 ~ 2^-27.
    assert!(stats.min_bits > 19.0, "{stats}");
}

#[test]
fn ten_multiply_bootstrap_cycles_stay_bounded() {
    let mut c = ctx();
    let slots = c.params.max_slots();
    // Values on the unit circle stay on it under squaring: a bounded message for every cycle.
    let mut expected: Vec<Complex64> = (0..slots)
        .map(|_| Complex64::from_polar(1.0, c.rng.random_range(0.0..std::f64::consts::TAU)))
        .collect();
    let pt = c
        .enc
        .encode(
            &expected,
            c.params.max_level() - c.boot.depth(),
            c.params.default_scale(),
        )
        .unwrap();
    let mut ct = c.encryptor.encrypt(&pt, &mut c.rng).unwrap();
    let mut worst = f64::INFINITY;
    for cycle in 0..10 {
        ct = c.eval.rescale(&c.eval.mul_relin(&ct, &ct).unwrap()).unwrap();
        expected = expected.iter().map(|x| x * x).collect();
        ct = c.boot.bootstrap(&c.eval, &ct).unwrap();
        let got = c.enc.decode(&decrypt_ckks(&c.sk, &ct).unwrap()).unwrap();
        let stats = precision_stats(&expected, &got).unwrap();
        eprintln!("cycle {cycle}: {stats}");
        worst = worst.min(stats.min_bits);
        // Re-anchor on the decrypted values: squaring doubles relative errors, which is the
        // computation's own amplification, not bootstrapping's; the bound is on each cycle's error.
        expected = got;
    }
    // Each cycle measured 20.9-21.1 bits: bootstrapping's error does not accumulate.
    assert!(worst > 19.0, "worst cycle: {worst} bits");
}

/// The secure N = 2^16 preset: precision, levels left, time and key memory. Needs about 12 GB of
/// memory; run with `cargo test --release -p ckks --test bootstrap -- --ignored --nocapture`.
#[test]
#[ignore = "N = 2^16 bootstrapping: about 12 GB of memory and a minute"]
fn secure_preset_bootstrapping() {
    use std::time::Instant;
    let params = Parameters::n16_boot().unwrap();
    let enc = CkksEncoder::new(&params).unwrap();
    let t = Instant::now();
    let boot = Bootstrapper::new(&params, &enc, BootstrapConfig::n16_default()).unwrap();
    eprintln!(
        "circuit prepared in {:.1} s, depth {}, output level {}",
        t.elapsed().as_secs_f64(),
        boot.depth(),
        boot.output_level()
    );
    assert!(boot.output_level() >= 9);
    let mut rng = ChaCha20Rng::from_os_rng();
    let kg = KeyGenerator::new(&params);
    let sk = kg.gen_secret_key(&mut rng).unwrap();
    let pk = kg.gen_public_key(&sk, &mut rng).unwrap();
    let t = Instant::now();
    let mut keys = EvaluationKeys {
        relin: Some(kg.gen_relin_key(&sk, &mut rng).unwrap()),
        ..Default::default()
    };
    for g in boot.galois_elements() {
        keys.galois
            .insert(g, kg.gen_galois_key(&sk, g, &mut rng).unwrap());
    }
    let key_bytes = keys.memory_bytes();
    eprintln!(
        "keys: relin + {} Galois keys, {:.2} GiB, generated in {:.1} s",
        keys.galois.len(),
        key_bytes as f64 / (1u64 << 30) as f64,
        t.elapsed().as_secs_f64()
    );
    let eval = Evaluator::new(&params, Arc::new(keys));
    let v: Vec<Complex64> = (0..params.max_slots())
        .map(|_| Complex64::new(rng.random_range(-1.0..1.0), rng.random_range(-1.0..1.0)))
        .collect();
    let ct = CkksEncryptor(Encryptor::Public(pk))
        .encrypt(&enc.encode(&v, 0, params.default_scale()).unwrap(), &mut rng)
        .unwrap();
    let t = Instant::now();
    let out = boot.bootstrap(&eval, &ct).unwrap();
    let secs = t.elapsed().as_secs_f64();
    let stats = precision_stats(&v, &enc.decode(&decrypt_ckks(&sk, &out).unwrap()).unwrap()).unwrap();
    eprintln!(
        "bootstrapping N = 2^16, {} threads: {secs:.1} s, level {} after, {stats}",
        rayon::current_num_threads(),
        out.level()
    );
    assert!(stats.min_bits > 19.0, "{stats}");
}
