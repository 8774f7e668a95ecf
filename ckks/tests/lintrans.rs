//! Plaintext-matrix x encrypted-vector products (diagonal method, BSGS, hoisted baby steps) at toy
//! parameters (N = 2^10, **insecure**): the decrypted result equals the f64 product within the
//! scale's precision, and the operation counts match the formulas.
#![allow(clippy::unwrap_used, reason = "test fixtures fail loudly")]

use ckks::circuits::lintrans::LinearTransform;
use ckks::params::Parameters;
use ckks::ring::poly::galois_element_for_rotation;
use ckks::rlwe::{Encryptor, KeyGenerator};
use ckks::scheme::evaluator::{decrypt_ckks, CkksEncoder, CkksEncryptor, EvaluationKeys, Evaluator};
use ckks::scheme::precision::precision_stats;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use rustfft::num_complex::Complex64;
use std::collections::BTreeMap;
use std::sync::Arc;

fn run(
    slots: usize,
    matrix: &[Vec<Complex64>],
    baby: Option<usize>,
) -> (f64, ckks::circuits::lintrans::LinearTransformCost) {
    let params = Parameters::toy(10, 3).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(slots as u64);
    let kg = KeyGenerator::new(&params);
    let sk = kg.gen_secret_key(&mut rng).unwrap();
    let pk = kg.gen_public_key(&sk, &mut rng).unwrap();
    let enc = CkksEncoder::new(&params).unwrap();
    let level = params.max_level();
    let diags = LinearTransform::diagonals_of(matrix).unwrap();
    let lt = LinearTransform::new(&params, &enc, &diags, slots, level, baby).unwrap();
    let mut keys = EvaluationKeys::default();
    for k in lt.rotations_needed() {
        let g = galois_element_for_rotation(k, params.n());
        keys.galois
            .insert(g, kg.gen_galois_key(&sk, g, &mut rng).unwrap());
    }
    let eval = Evaluator::new(&params, Arc::new(keys));
    let z: Vec<Complex64> = (0..slots)
        .map(|_| Complex64::new(rng.random_range(-1.0..1.0), rng.random_range(-1.0..1.0)))
        .collect();
    let ct = CkksEncryptor(Encryptor::Public(pk))
        .encrypt(&enc.encode(&z, level, params.default_scale()).unwrap(), &mut rng)
        .unwrap();
    let out = lt.evaluate(&eval, &ct).unwrap();
    assert_eq!(out.level(), level - 1);
    assert!(
        (out.scale() / params.default_scale() - 1.0).abs() < 1e-9,
        "output scale must equal the input scale"
    );
    let got = enc.decode(&decrypt_ckks(&sk, &out).unwrap()).unwrap();
    let expected: Vec<Complex64> = matrix
        .iter()
        .map(|row| row.iter().zip(&z).map(|(a, b)| a * b).sum())
        .collect();
    let stats = precision_stats(&expected, &got).unwrap();
    eprintln!("{slots} slots, cost {:?}: {stats}", lt.cost());
    (stats.min_bits, lt.cost())
}

fn random_matrix(s: usize, seed: u64, band: Option<usize>) -> Vec<Vec<Complex64>> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    (0..s)
        .map(|i| {
            (0..s)
                .map(|j| {
                    let k = (j + s - i) % s;
                    if band.is_some_and(|b| k >= b) {
                        Complex64::new(0.0, 0.0)
                    } else {
                        Complex64::new(rng.random_range(-1.0..1.0), 0.0) / (s as f64).sqrt()
                    }
                })
                .collect()
        })
        .collect()
}

#[test]
fn dense_matrix_full_slots() {
    let s = 512;
    let (bits, cost) = run(s, &random_matrix(s, 1, None), Some(32));
    // Rows of norm ~1 against |z| <= sqrt(2): fresh noise (about 2^-26.5 per slot) mixes through
    // rows of norm 1, plus the rescale and 31 + 15 key switches (2^-30 each): 2^-25 holds with a
    // margin of about 2.5 bits over the 2^-27.6 measured.
    assert!(bits > 25.0, "{bits}");
    // Dense: every diagonal; g = 32 baby steps, s / g = 16 giant steps.
    assert_eq!(cost.plaintext_mults, 512);
    assert_eq!(cost.hoisted_rotations, 31);
    assert_eq!(cost.rotations, 31 + 15);
    assert_eq!(cost.key_switches, cost.rotations);
    assert_eq!(cost.levels, 1);
}

#[test]
fn dense_matrix_sparse_slots() {
    let s = 32;
    let (bits, cost) = run(s, &random_matrix(s, 2, None), None);
    assert!(bits > 25.0, "{bits}");
    // Automatic baby steps: next power of two of sqrt(32) = 8; giant steps 4.
    assert_eq!(cost.plaintext_mults, 32);
    assert_eq!(cost.rotations, 7 + 3);
}

#[test]
fn banded_matrix_uses_only_its_diagonals() {
    let s = 256;
    let (bits, cost) = run(s, &random_matrix(s, 3, Some(8)), Some(4));
    assert!(bits > 25.0, "{bits}");
    assert_eq!(cost.plaintext_mults, 8);
    assert_eq!(cost.rotations, 3 + 1);
}

#[test]
fn bad_input_is_an_error() {
    let params = Parameters::toy(10, 3).unwrap();
    let enc = CkksEncoder::new(&params).unwrap();
    let d: BTreeMap<usize, Vec<Complex64>> = [(0usize, vec![Complex64::new(1.0, 0.0); 16])]
        .into_iter()
        .collect();
    assert!(LinearTransform::new(&params, &enc, &d, 16, 0, None).is_err());
    assert!(LinearTransform::new(&params, &enc, &d, 32, 2, None).is_err());
    assert!(LinearTransform::new(&params, &enc, &d, 16, 2, Some(3)).is_err());
    let far: BTreeMap<usize, Vec<Complex64>> = [(16usize, vec![Complex64::new(1.0, 0.0); 16])]
        .into_iter()
        .collect();
    assert!(LinearTransform::new(&params, &enc, &far, 16, 2, None).is_err());
    assert!(LinearTransform::diagonals_of(&[vec![Complex64::new(0.0, 0.0); 2]]).is_err());
}

#[test]
fn signed_strided_diagonals_in_sparse_slots() {
    // Offsets 0, +-4, +-8, +-12 (as in the bootstrapping DFT): read signed with stride 4 they need a
    // few rotations, some of them negative giant steps, here with sparse packing (64 of 512 slots).
    let s = 64;
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    let mut m = vec![vec![Complex64::new(0.0, 0.0); s]; s];
    for (i, row) in m.iter_mut().enumerate() {
        for off in [0i64, 4, 8, 12, -4, -8, -12] {
            row[(i as i64 + off).rem_euclid(s as i64) as usize] =
                Complex64::new(rng.random_range(-0.4..0.4), 0.0);
        }
    }
    let (bits, cost) = run(s, &m, None);
    assert!(bits > 25.0, "{bits}");
    assert_eq!(cost.plaintext_mults, 7);
    // Unsigned, the span is the whole 64 slots; signed with stride 4 it is 7 steps: at most 2 + 3.
    assert!(cost.rotations <= 5, "{cost:?}");
}
