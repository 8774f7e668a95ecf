//! Bootstrapping at toy parameters (N = 2^10, sparse secret of weight 32: **insecure**): random
//! messages survive within a stated precision, the output level is what the circuit promises, and
//! repeated multiply-bootstrap cycles keep the error bounded.
#![allow(clippy::unwrap_used, reason = "test fixtures fail loudly")]

use ckks::circuits::bootstrap::{BootstrapConfig, Bootstrapper};
use ckks::params::Parameters;
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
    ctx_with(None)
}

fn ctx_with(slots: Option<usize>) -> Ctx {
    // q0 of 60 bits (the message is 2^15 below q0 at scale 2^45), bootstrapping primes of 60 bits,
    // two working levels of 45 bits.
    let config = BootstrapConfig {
        slots,
        ..BootstrapConfig::toy()
    };
    let params = Parameters::toy_boot(2).unwrap();
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
    c.eval.reset_op_counts();
    let out = c.boot.bootstrap(&c.eval, &ct).unwrap();
    assert_eq!(
        c.eval.op_counts(),
        c.boot.op_counts().unwrap().total(),
        "the predicted counts are the performed ones"
    );
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
fn sparse_slots_bootstrap_through_the_trace() {
    for slots in [64usize, 256] {
        let mut c = ctx_with(Some(slots));
        let v = random_values(slots, &mut c.rng);
        let ct = c
            .encryptor
            .encrypt(
                &c.enc.encode(&v, 0, c.params.default_scale()).unwrap(),
                &mut c.rng,
            )
            .unwrap();
        c.eval.reset_op_counts();
        let out = c.boot.bootstrap(&c.eval, &ct).unwrap();
        assert_eq!(
            c.eval.op_counts(),
            c.boot.op_counts().unwrap().total(),
            "{slots} slots"
        );
        assert_eq!(out.level(), c.boot.output_level());
        assert_eq!(out.slots(), slots);
        let got = c.enc.decode(&decrypt_ckks(&c.sk, &out).unwrap()).unwrap();
        let stats = precision_stats(&v, &got).unwrap();
        eprintln!(
            "sparse bootstrapping, {slots} of 512 slots, {} galois keys: {stats}",
            c.boot.galois_elements().len()
        );
        assert!(stats.min_bits > 19.0, "{slots} slots: {stats}");
        // A ciphertext with another slot count is refused.
        let full = c
            .enc
            .encode(&random_values(512, &mut c.rng), 0, c.params.default_scale())
            .unwrap();
        let full = c.encryptor.encrypt(&full, &mut c.rng).unwrap();
        assert!(c.boot.bootstrap(&c.eval, &full).is_err());
    }
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

/// Each stage's own error, measured against the exact operation applied to the previous stage's
/// decrypted values (so errors do not accumulate in the comparison). Bounds are about 2 bits above
/// the values measured at these toy parameters; a regression in one stage shows up by name.
#[test]
fn each_stage_adds_a_small_error() {
    use ckks::circuits::bootstrap::BootstrapStage;
    let mut c = ctx();
    let v = random_values(c.params.max_slots(), &mut c.rng);
    let ct = c
        .encryptor
        .encrypt(
            &c.enc.encode(&v, 0, c.params.default_scale()).unwrap(),
            &mut c.rng,
        )
        .unwrap();
    let cts = c.boot.coeffs_to_slots_matrices().unwrap();
    let stc = c.boot.slots_to_coeffs_matrices().unwrap();
    let k = c.boot.config().k;
    let r = c.boot.config().double_angle;
    let mut decoded: Vec<(BootstrapStage, Vec<Complex64>)> = Vec::new();
    c.boot
        .bootstrap_traced(&c.eval, &ct, &mut |st, x| {
            decoded.push((st, c.enc.decode(&decrypt_ckks(&c.sk, x).unwrap()).unwrap()));
        })
        .unwrap();
    let find = |st: BootstrapStage| {
        decoded
            .iter()
            .find(|(s, _)| *s == st)
            .map(|(_, d)| d.clone())
            .unwrap()
    };
    let err = |a: &[Complex64], b: &[Complex64]| {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).norm())
            .fold(0.0, f64::max)
            .log2()
    };
    let tau = std::f64::consts::TAU;
    // CoeffsToSlots (all but the last matrix, which is fused with the real/imaginary split).
    let raised = find(BootstrapStage::Raised);
    let cts0 = find(BootstrapStage::CoeffsToSlots(0));
    let e_cts = err(&cts[0].apply(&raised).unwrap(), &cts0);
    // The split: Re of the last matrix's output, doubled.
    let real = find(BootstrapStage::Real);
    let u = cts[1].apply(&cts0).unwrap();
    let e_split = err(
        &u.iter()
            .map(|z| Complex64::new(2.0 * z.re, 0.0))
            .collect::<Vec<_>>(),
        &real,
    );
    // EvalMod: the cosine polynomial, then the whole of it.
    let cos = find(BootstrapStage::RealCosine);
    let exact_cos: Vec<Complex64> = real
        .iter()
        .map(|x| Complex64::new((tau * (k * x.re - 0.25) / (1u64 << r) as f64).cos(), 0.0))
        .collect();
    let e_cos = err(&exact_cos, &cos);
    let re_mod = find(BootstrapStage::RealMod);
    let exact_sin: Vec<Complex64> = real
        .iter()
        .map(|x| Complex64::new((tau * k * x.re).sin(), 0.0))
        .collect();
    let e_mod = err(&exact_sin, &re_mod);
    // SlotsToCoeffs, first matrix on the recombined halves.
    let im_mod = find(BootstrapStage::ImaginaryMod);
    let recombined: Vec<Complex64> = re_mod
        .iter()
        .zip(&im_mod)
        .map(|(a, b)| a + Complex64::new(0.0, 1.0) * b)
        .collect();
    let e_stc = err(
        &stc[0].apply(&recombined).unwrap(),
        &find(BootstrapStage::SlotsToCoeffs(0)),
    );
    eprintln!("stage errors (log2): cts {e_cts:.1}, split {e_split:.1}, cosine {e_cos:.1}, evalmod {e_mod:.1}, stc {e_stc:.1}");
    // Measured: -47.0, -51.7, -45.5, -40.1, -38.0.
    assert!(e_cts < -45.0, "CoeffsToSlots: 2^{e_cts:.1}");
    assert!(e_split < -49.0, "split: 2^{e_split:.1}");
    assert!(e_cos < -43.0, "cosine: 2^{e_cos:.1}");
    assert!(e_mod < -38.0, "EvalMod: 2^{e_mod:.1}");
    assert!(e_stc < -36.0, "SlotsToCoeffs: 2^{e_stc:.1}");
}
