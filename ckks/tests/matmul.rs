//! Encrypted activations times plaintext weights, at toy parameters (N = 2^10, **insecure**), on the
//! shapes of our tiny models: the decrypted product equals the f64 product within the scale's
//! precision, and the operation counts match the formulas of the BSGS diagonal method.
#![allow(clippy::unwrap_used, reason = "test fixtures fail loudly")]

use ckks::circuits::matmul::{EncryptedMatrix, PlainWeightMatMul, RowMajor};
use ckks::params::Parameters;
use ckks::ring::poly::galois_element_for_rotation;
use ckks::rlwe::{Encryptor, KeyGenerator};
use ckks::scheme::evaluator::{decrypt_ckks, CkksEncoder, CkksEncryptor, EvaluationKeys, Evaluator};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use std::sync::Arc;

fn random(rows: usize, cols: usize, scale: f64, rng: &mut ChaCha20Rng) -> Vec<Vec<f64>> {
    (0..rows)
        .map(|_| (0..cols).map(|_| rng.random_range(-scale..scale)).collect())
        .collect()
}

fn matmul(x: &[Vec<f64>], w: &[Vec<f64>]) -> Vec<Vec<f64>> {
    x.iter()
        .map(|row| {
            (0..w[0].len())
                .map(|k| row.iter().zip(w).map(|(a, wr)| a * wr[k]).sum())
                .collect()
        })
        .collect()
}

/// Runs `X W` for the given shapes; returns the max error and the cost.
fn run(rows: usize, d: usize, d_out: usize) -> (f64, PlainWeightMatMul, usize) {
    let params = Parameters::toy(10, 3).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64((rows * 1000 + d * 10 + d_out) as u64);
    let enc = CkksEncoder::new(&params).unwrap();
    let stride = d.max(d_out).next_power_of_two();
    let layout = RowMajor::new(rows, d, Some(stride), params.max_slots()).unwrap();
    let w = random(d, d_out, 1.0 / (d as f64).sqrt(), &mut rng);
    let mm = PlainWeightMatMul::new(&params, &enc, layout, &w, params.max_level()).unwrap();
    let kg = KeyGenerator::new(&params);
    let sk = kg.gen_secret_key(&mut rng).unwrap();
    let pk = kg.gen_public_key(&sk, &mut rng).unwrap();
    let mut keys = EvaluationKeys::default();
    for k in mm.rotations_needed() {
        let g = galois_element_for_rotation(k, params.n());
        keys.galois
            .insert(g, kg.gen_galois_key(&sk, g, &mut rng).unwrap());
    }
    let eval = Evaluator::new(&params, Arc::new(keys));
    let encryptor = CkksEncryptor(Encryptor::Public(pk));
    let x = random(rows, d, 1.0, &mut rng);
    let ex = EncryptedMatrix::encrypt(
        &params,
        &enc,
        &encryptor,
        layout,
        &x,
        params.max_level(),
        &mut rng,
    )
    .unwrap();
    let ey = mm.apply(&eval, &ex).unwrap();
    assert_eq!(ey.tiles.len(), layout.tiles());
    let decoded: Vec<_> = ey
        .tiles
        .iter()
        .map(|ct| enc.decode(&decrypt_ckks(&sk, ct).unwrap()).unwrap())
        .collect();
    let got = ey.layout.unpack(&decoded).unwrap();
    let expected = matmul(&x, &w);
    let err = got
        .iter()
        .flatten()
        .zip(expected.iter().flatten())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    (err, mm, layout.tiles())
}

#[test]
fn square_16x32_times_32x32() {
    let (err, mm, tiles) = run(16, 32, 32);
    let c = mm.cost_per_tile();
    eprintln!(
        "16x32 * 32x32: error 2^{:.1}, {tiles} tile(s), {c:?}, plain diagonal key switches {}",
        err.log2(),
        mm.plain_diagonal_key_switches()
    );
    assert!(err < 2f64.powi(-25), "error {err}");
    assert_eq!(tiles, 1);
    // 63 diagonals (delta = -31..31); BSGS needs about 2 sqrt(63) rotations, the plain method 62.
    assert_eq!(c.plaintext_mults, 63);
    assert_eq!(mm.plain_diagonal_key_switches(), 62);
    assert!(c.key_switches * 2 <= mm.plain_diagonal_key_switches(), "{c:?}");
    assert!(c.key_switches <= 16, "{c:?}");
    assert_eq!(c.levels, 1);
}

#[test]
fn rectangular_16x32_times_32x64_in_two_tiles() {
    let (err, mm, tiles) = run(16, 32, 64);
    let c = mm.cost_per_tile();
    eprintln!("16x32 * 32x64: error 2^{:.1}, {tiles} tile(s), {c:?}", err.log2());
    assert!(err < 2f64.powi(-25), "error {err}");
    assert_eq!(tiles, 2, "stride 64 leaves 8 rows per 512-slot ciphertext");
    assert_eq!(c.plaintext_mults, 32 + 64 - 1);
    assert!(c.key_switches * 2 <= mm.plain_diagonal_key_switches());
}

#[test]
fn down_projection_16x64_times_64x32() {
    let (err, mm, _) = run(16, 64, 32);
    assert!(err < 2f64.powi(-25), "error {err}");
    assert_eq!(mm.output_layout().cols, 32);
    assert_eq!(mm.cost_per_tile().plaintext_mults, 64 + 32 - 1);
}

#[test]
fn layout_errors_are_typed() {
    assert!(RowMajor::new(16, 33, Some(32), 512).is_err());
    assert!(RowMajor::new(16, 32, Some(48), 512).is_err());
    assert!(RowMajor::new(0, 32, None, 512).is_err());
    let l = RowMajor::new(3, 4, None, 16).unwrap();
    assert_eq!((l.rows_per_tile(), l.tiles()), (4, 1));
    assert!(l.pack(&vec![vec![0.0; 4]; 2]).is_err());
    assert!(l.pack(&[vec![0.0; 5], vec![0.0; 4], vec![0.0; 4]]).is_err());
    let m = vec![
        vec![1.0, 2.0, 3.0, 4.0],
        vec![5.0, 6.0, 7.0, 8.0],
        vec![9.0, 10.0, 11.0, 12.0],
    ];
    assert_eq!(l.unpack(&l.pack(&m).unwrap()).unwrap(), m);
}
