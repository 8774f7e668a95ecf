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

/// Q K^T and scores x V for 16 tokens and 4 heads (d_h = 8), causal and not: the decrypted
/// result equals the f64 computation with the multiplicative causal mask.
#[test]
fn attention_16_tokens_4_heads() {
    use ckks::circuits::matmul::EncryptedAttention;
    let params = Parameters::toy(10, 3).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(77);
    let enc = CkksEncoder::new(&params).unwrap();
    let (rows, heads, d) = (16usize, 4usize, 32usize);
    let d_h = d / heads;
    let layout = RowMajor::new(rows, d, None, params.max_slots()).unwrap();
    let kg = KeyGenerator::new(&params);
    let sk = kg.gen_secret_key(&mut rng).unwrap();
    let pk = kg.gen_public_key(&sk, &mut rng).unwrap();
    let encryptor = CkksEncryptor(Encryptor::Public(pk));
    let (q, k, v) = (
        random(rows, d, 1.0, &mut rng),
        random(rows, d, 1.0, &mut rng),
        random(rows, d, 1.0, &mut rng),
    );
    let top = params.max_level();
    let eq = EncryptedMatrix::encrypt(&params, &enc, &encryptor, layout, &q, top, &mut rng).unwrap();
    let ek = EncryptedMatrix::encrypt(&params, &enc, &encryptor, layout, &k, top, &mut rng).unwrap();
    let ev = EncryptedMatrix::encrypt(&params, &enc, &encryptor, layout, &v, top, &mut rng).unwrap();
    let scale = 1.0 / (d_h as f64).sqrt();
    for causal in [true, false] {
        let att = EncryptedAttention::new(&params, &enc, layout, heads, causal, scale, top).unwrap();
        let mut keys = EvaluationKeys {
            relin: Some(kg.gen_relin_key(&sk, &mut rng).unwrap()),
            ..Default::default()
        };
        for r in att.rotations_needed() {
            let g = galois_element_for_rotation(r, params.n());
            keys.galois
                .insert(g, kg.gen_galois_key(&sk, g, &mut rng).unwrap());
        }
        let eval = Evaluator::new(&params, Arc::new(keys));
        let scores = att.scores(&eval, &eq, &ek).unwrap();
        // Check the score diagonals against Q K^T.
        let mut worst: f64 = 0.0;
        for (&delta, ct) in att.offsets().iter().zip(&scores) {
            let dec = enc.decode(&decrypt_ckks(&sk, ct).unwrap()).unwrap();
            for t in 0..rows as i64 {
                let u = t + delta;
                for h in 0..heads {
                    let expected = if (0..rows as i64).contains(&u) {
                        scale
                            * (0..d_h)
                                .map(|j| q[t as usize][h * d_h + j] * k[u as usize][h * d_h + j])
                                .sum::<f64>()
                    } else {
                        0.0
                    };
                    worst = worst.max((dec[t as usize * layout.stride + h * d_h].re - expected).abs());
                }
            }
        }
        let out = att.apply_to_values(&eval, &scores, &ev).unwrap();
        let got = layout
            .unpack(&[enc.decode(&decrypt_ckks(&sk, &out.tiles[0]).unwrap()).unwrap()])
            .unwrap();
        let mut worst_out: f64 = 0.0;
        for t in 0..rows {
            for h in 0..heads {
                for j in 0..d_h {
                    let c = h * d_h + j;
                    let expected: f64 = (0..rows)
                        .filter(|&u| !causal || u <= t)
                        .map(|u| {
                            scale
                                * (0..d_h)
                                    .map(|i| q[t][h * d_h + i] * k[u][h * d_h + i])
                                    .sum::<f64>()
                                * v[u][c]
                        })
                        .sum();
                    worst_out = worst_out.max((got[t][c] - expected).abs());
                }
            }
        }
        eprintln!(
            "attention causal={causal}: {} score diagonals, score error 2^{:.1}, output error 2^{:.1}, {:?}",
            scores.len(),
            worst.log2(),
            worst_out.log2(),
            att.cost()
        );
        let n = if causal { 16 } else { 31 };
        assert_eq!(scores.len(), n);
        // Documented counts: (n - 1) rotations of K and of V (hoisted), log2(d_h) rotations per
        // diagonal for the in-head sums and as many for the broadcasts; 2n products, n masks.
        let c = att.cost();
        assert_eq!(c.rotations, 2 * (n - 1) + 2 * n * 3);
        assert_eq!(c.hoisted_rotations, 2 * (n - 1));
        assert_eq!((c.ct_mults, c.pt_mults, c.levels), (2 * n, n, 3));
        assert!(worst < 2f64.powi(-22), "scores: {worst}");
        assert!(worst_out < 2f64.powi(-18), "output: {worst_out}");
        assert_eq!(out.tiles[0].level(), top - 3);
    }
}

/// Several sequences interleaved in one ciphertext (row `t * batch + b`): the decrypted attention
/// output of every sequence equals its own f64 attention (no score mixes two sequences), with the
/// rotation count of a single sequence. Two shapes: 8 tokens x 4 sequences filling all 512 slots
/// (rotations wrap around the whole ciphertext), and 5 tokens x 3 sequences with padding.
#[test]
fn batched_attention_keeps_sequences_apart() {
    use ckks::circuits::matmul::EncryptedAttention;
    let params = Parameters::toy(10, 3).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(78);
    let enc = CkksEncoder::new(&params).unwrap();
    let kg = KeyGenerator::new(&params);
    let sk = kg.gen_secret_key(&mut rng).unwrap();
    let pk = kg.gen_public_key(&sk, &mut rng).unwrap();
    let encryptor = CkksEncryptor(Encryptor::Public(pk));
    let top = params.max_level();
    for (tokens, batch, heads, d, causal) in [(8usize, 4usize, 2usize, 16usize, false), (5, 3, 2, 16, true)] {
        let d_h = d / heads;
        let rows = tokens * batch;
        let layout = RowMajor::new(rows, d, None, params.max_slots()).unwrap();
        // One matrix per sequence, interleaved token-major.
        let seqs: Vec<[Vec<Vec<f64>>; 3]> = (0..batch)
            .map(|_| {
                [
                    random(tokens, d, 1.0, &mut rng),
                    random(tokens, d, 1.0, &mut rng),
                    random(tokens, d, 1.0, &mut rng),
                ]
            })
            .collect();
        let interleave = |m: usize| -> Vec<Vec<f64>> {
            (0..rows).map(|r| seqs[r % batch][m][r / batch].clone()).collect()
        };
        let [eq, ek, ev] = [0, 1, 2].map(|m| {
            EncryptedMatrix::encrypt(&params, &enc, &encryptor, layout, &interleave(m), top, &mut rng)
                .unwrap()
        });
        let scale = 1.0 / (d_h as f64).sqrt();
        let att =
            EncryptedAttention::new_batched(&params, &enc, layout, heads, causal, scale, top, batch).unwrap();
        let single = RowMajor::new(tokens, d, None, params.max_slots()).unwrap();
        let one = EncryptedAttention::new(&params, &enc, single, heads, causal, scale, top).unwrap();
        assert_eq!(att.offsets(), one.offsets());
        assert_eq!(att.cost(), one.cost());
        let mut keys = EvaluationKeys {
            relin: Some(kg.gen_relin_key(&sk, &mut rng).unwrap()),
            ..Default::default()
        };
        for r in att.rotations_needed() {
            let g = galois_element_for_rotation(r, params.n());
            keys.galois
                .insert(g, kg.gen_galois_key(&sk, g, &mut rng).unwrap());
        }
        let eval = Evaluator::new(&params, Arc::new(keys));
        let scores = att.scores(&eval, &eq, &ek).unwrap();
        let out = att.apply_to_values(&eval, &scores, &ev).unwrap();
        let got = layout
            .unpack(&[enc.decode(&decrypt_ckks(&sk, &out.tiles[0]).unwrap()).unwrap()])
            .unwrap();
        let mut worst: f64 = 0.0;
        for (b, [q, k, v]) in seqs.iter().enumerate() {
            for t in 0..tokens {
                for c in 0..d {
                    let h = c / d_h;
                    let expected: f64 = (0..tokens)
                        .filter(|&u| !causal || u <= t)
                        .map(|u| {
                            scale
                                * (0..d_h)
                                    .map(|i| q[t][h * d_h + i] * k[u][h * d_h + i])
                                    .sum::<f64>()
                                * v[u][c]
                        })
                        .sum();
                    worst = worst.max((got[t * batch + b][c] - expected).abs());
                }
            }
        }
        eprintln!(
            "batched attention {tokens} tokens x {batch}: output error 2^{:.1}",
            worst.log2()
        );
        assert!(worst < 2f64.powi(-18), "{tokens} x {batch}: {worst}");
    }
}
