//! `poly-approx` plans on CKKS ciphertexts at toy parameters (N = 2^11, **insecure**): the decrypted
//! result matches the plaintext polynomial within the scale's precision, and the levels consumed
//! equal what the plan and the simulator predict.
#![allow(clippy::unwrap_used, reason = "test fixtures fail loudly")]

use ckks::circuits::poly_eval::CkksArith;
use ckks::params::{Parameters, ParametersLiteral, SecretDistribution, SecurityLevel};
use ckks::rlwe::{Encryptor, KeyGenerator};
use ckks::scheme::evaluator::{decrypt_ckks, CkksEncoder, CkksEncryptor, EvaluationKeys, Evaluator};
use ckks::scheme::precision::precision_stats;
use poly_approx::eval::{EvalPlan, SimEvaluator};
use poly_approx::functions::gelu;
use poly_approx::remez::minimax;
use poly_approx::Interval;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use rustfft::num_complex::Complex64;
use std::sync::Arc;

#[test]
fn gelu_minimax_on_ciphertexts_matches_plaintext_polynomial() {
    let params = Parameters::new(ParametersLiteral {
        log_n: 11,
        log_q: std::iter::once(55).chain(std::iter::repeat_n(45, 8)).collect(),
        log_p: vec![55, 55],
        log_default_scale: 45,
        secret: SecretDistribution::UniformTernary,
        security: SecurityLevel::InsecureForTests,
        dnum: None,
    })
    .unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let kg = KeyGenerator::new(&params);
    let sk = kg.gen_secret_key(&mut rng).unwrap();
    let pk = kg.gen_public_key(&sk, &mut rng).unwrap();
    let keys = EvaluationKeys {
        relin: Some(kg.gen_relin_key(&sk, &mut rng).unwrap()),
        ..Default::default()
    };
    let eval = Evaluator::new(&params, Arc::new(keys));
    let enc = CkksEncoder::new(&params).unwrap();

    for (interval, degree) in [
        (Interval::new(-1.0, 1.0).unwrap(), 15),
        (Interval::new(-8.0, 8.0).unwrap(), 31),
    ] {
        let fit = minimax(gelu, interval, degree).unwrap();
        let plan = EvalPlan::new(&fit.poly).unwrap();
        let slots = params.max_slots();
        let xs: Vec<f64> = (0..slots)
            .map(|i| interval.a() + interval.width() * i as f64 / slots as f64)
            .collect();
        let z: Vec<Complex64> = xs.iter().map(|&x| Complex64::new(x, 0.0)).collect();
        let top = params.max_level();
        let ct = CkksEncryptor(Encryptor::Public(pk.clone()))
            .encrypt(&enc.encode(&z, top, params.default_scale()).unwrap(), &mut rng)
            .unwrap();
        let mut arith = CkksArith::new(&params, &eval);
        let out = plan.evaluate(&mut arith, &ct).unwrap();
        // Levels: exactly the plan's depth, as the simulator says.
        assert_eq!(top - out.level(), plan.depth(), "degree {degree}");
        let mut sim = SimEvaluator::default();
        let x = sim.fresh(plan.depth());
        let y = plan.evaluate(&mut sim, &x).unwrap();
        assert_eq!(y.level, 0);
        // Values: the plaintext polynomial (not GELU itself) within the scale's precision.
        let got = enc.decode(&decrypt_ckks(&sk, &out).unwrap()).unwrap();
        let expected: Vec<Complex64> = xs
            .iter()
            .map(|&x| Complex64::new(fit.poly.eval(x), 0.0))
            .collect();
        let stats = precision_stats(&expected, &got).unwrap();
        eprintln!(
            "GELU degree {degree} on {interval:?}: depth {}, {stats}",
            plan.depth()
        );
        // Fresh public-key noise is about 2^-31 at scale 2^45, N = 2^11 (max over the slots); the
        // Chebyshev evaluation amplifies it by the sum of |coefficients| along the power products
        // (tens at most here), and each rescale adds about 2^-33: 2^-25 leaves a margin of
        // about 4 bits over the 2^-29.5 measured.
        assert!(stats.min_bits > 25.0, "degree {degree}: {stats}");
        assert!((out.scale() / params.default_scale() - 1.0).abs() < 1e-9);
    }
}
