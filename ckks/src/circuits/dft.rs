//! The homomorphic DFT of bootstrapping as sparse diagonal matrices.
//!
//! Decoding maps `u_k = c_k + i c_{k+s}` (the `2s` real coefficients of a sparse-packed polynomial)
//! to the slots `z_j = sum_k u_k zeta_j^k`, `zeta_j = exp(2 pi i 5^j / 4s)`: `z = V u`. The
//! "special FFT" factors `V = S_s ... S_4 S_2 P` with `P` the bit-reversal permutation and `S_len`
//! radix-2 butterfly stages, each with three nonzero diagonals (0, +len/2, -len/2). CoeffsToSlots
//! applies `S^-1 = S_2^-1 ... S_s^-1`, which yields `P u` (bit-reversed coefficients); EvalMod is
//! slot-wise, so the permutation never needs evaluating, and SlotsToCoeffs applies `S` to `P u'`.
//! Consecutive stages are merged into one [`DiagMatrix`] per level (more diagonals, fewer levels).
//!
//! References:
//! - K. Han, M. Hhan, J. H. Cheon, "Improved Homomorphic Discrete Fourier Transforms and FHE
//!   Bootstrapping", IEEE Access 2019 (<https://eprint.iacr.org/2018/1073>).
//! - J. H. Cheon, K. Han, A. Kim, M. Kim, Y. Song, "Bootstrapping for Approximate Homomorphic
//!   Encryption", EUROCRYPT 2018 (<https://eprint.iacr.org/2018/153>).

use crate::error::{Error, Result};
use rustfft::num_complex::Complex64;
use std::collections::BTreeMap;

/// A square matrix over `s` slots given by its nonzero diagonals: `(M z)_i = sum_k d_k[i] z_{i+k}`.
#[derive(Clone, Debug, PartialEq)]
pub struct DiagMatrix {
    slots: usize,
    diags: BTreeMap<usize, Vec<Complex64>>,
}

fn rotate_vec(v: &[Complex64], k: usize) -> Vec<Complex64> {
    let s = v.len();
    (0..s).map(|i| v[(i + k) % s]).collect()
}

impl DiagMatrix {
    /// The identity over `slots` slots.
    pub fn identity(slots: usize) -> Self {
        Self {
            slots,
            diags: [(0, vec![Complex64::new(1.0, 0.0); slots])].into_iter().collect(),
        }
    }

    /// Number of slots.
    pub fn slots(&self) -> usize {
        self.slots
    }

    /// The nonzero diagonals.
    pub fn diagonals(&self) -> &BTreeMap<usize, Vec<Complex64>> {
        &self.diags
    }

    /// `self * other` (apply `other` first): `(AB)_k = sum_{a+b=k} d^A_a * rot_a(d^B_b)`.
    ///
    /// # Errors
    /// [`Error::InvalidSlots`] for matrices of different sizes.
    pub fn mul(&self, other: &DiagMatrix) -> Result<DiagMatrix> {
        if self.slots != other.slots {
            return Err(Error::InvalidSlots {
                slots: other.slots,
                max: self.slots,
            });
        }
        let s = self.slots;
        let mut out: BTreeMap<usize, Vec<Complex64>> = BTreeMap::new();
        for (&a, da) in &self.diags {
            for (&b, db) in &other.diags {
                let rb = rotate_vec(db, a);
                let entry = out
                    .entry((a + b) % s)
                    .or_insert_with(|| vec![Complex64::new(0.0, 0.0); s]);
                for ((e, x), y) in entry.iter_mut().zip(da).zip(&rb) {
                    *e += x * y;
                }
            }
        }
        out.retain(|_, d| d.iter().any(|v| v.norm() > 1e-300));
        Ok(DiagMatrix { slots: s, diags: out })
    }

    /// `c * self`.
    pub fn scaled(mut self, c: f64) -> Self {
        for d in self.diags.values_mut() {
            d.iter_mut().for_each(|v| *v *= c);
        }
        self
    }

    /// `M z` in the clear.
    ///
    /// # Errors
    /// [`Error::InvalidSlots`] when `z` has another length.
    pub fn apply(&self, z: &[Complex64]) -> Result<Vec<Complex64>> {
        if z.len() != self.slots {
            return Err(Error::InvalidSlots {
                slots: z.len(),
                max: self.slots,
            });
        }
        let mut out = vec![Complex64::new(0.0, 0.0); self.slots];
        for (&k, d) in &self.diags {
            let r = rotate_vec(z, k);
            for ((o, x), y) in out.iter_mut().zip(d).zip(&r) {
                *o += x * y;
            }
        }
        Ok(out)
    }
}

/// The twiddle of butterfly `j` in the stage of block length `len`: `exp(2 pi i (5^j mod 4 len) / 4 len)`.
fn twiddle(j: usize, len: usize) -> Complex64 {
    let m = 4 * len;
    let mut e = 1usize;
    for _ in 0..j {
        e = e * 5 % m;
    }
    let ang = 2.0 * std::f64::consts::PI * e as f64 / m as f64;
    Complex64::new(ang.cos(), ang.sin())
}

/// The butterfly stage `S_len` over `slots` slots: `(x, y) -> (x + w y, x - w y)` on pairs at distance
/// `len / 2` inside each block of `len`.
pub fn stage(slots: usize, len: usize) -> DiagMatrix {
    let h = len / 2;
    let zero = Complex64::new(0.0, 0.0);
    let one = Complex64::new(1.0, 0.0);
    let (mut d0, mut dp, mut dm) = (vec![zero; slots], vec![zero; slots], vec![zero; slots]);
    for p in 0..slots {
        let off = p % len;
        if off < h {
            d0[p] = one;
            dp[p] = twiddle(off, len);
        } else {
            d0[p] = -twiddle(off - h, len);
            dm[p] = one;
        }
    }
    collect_stage(slots, h, d0, dp, dm)
}

/// The inverse of [`stage`]: `(a, b) -> ((a + b) / 2, (a - b) / (2 w))`.
pub fn stage_inverse(slots: usize, len: usize) -> DiagMatrix {
    let h = len / 2;
    let zero = Complex64::new(0.0, 0.0);
    let half = Complex64::new(0.5, 0.0);
    let (mut d0, mut dp, mut dm) = (vec![zero; slots], vec![zero; slots], vec![zero; slots]);
    for p in 0..slots {
        let off = p % len;
        if off < h {
            d0[p] = half;
            dp[p] = half;
        } else {
            let w = twiddle(off - h, len);
            d0[p] = -half / w;
            dm[p] = half / w;
        }
    }
    collect_stage(slots, h, d0, dp, dm)
}

fn collect_stage(
    slots: usize,
    h: usize,
    d0: Vec<Complex64>,
    dp: Vec<Complex64>,
    dm: Vec<Complex64>,
) -> DiagMatrix {
    let mut diags = BTreeMap::new();
    diags.insert(0, d0);
    if h % slots == (slots - h) % slots {
        // len = slots with slots = 2h: +h and -h are the same diagonal.
        let mut sum = dp;
        sum.iter_mut().zip(&dm).for_each(|(a, b)| *a += b);
        diags.insert(h % slots, sum);
    } else {
        diags.insert(h, dp);
        diags.insert(slots - h, dm);
    }
    DiagMatrix { slots, diags }
}

/// Splits the `log2(slots)` stages into `levels` groups of consecutive stages (sizes as equal as
/// possible, larger groups first) and returns the stage lengths of each group in application order.
fn groups(slots: usize, levels: usize, inverse: bool) -> Result<Vec<Vec<usize>>> {
    let log_s = slots.trailing_zeros() as usize;
    if !slots.is_power_of_two() || slots < 2 || levels == 0 || levels > log_s {
        return Err(Error::OutOfRange {
            reason: "DFT levels must be in 1..=log2(slots)",
        });
    }
    // Stage lengths in the order S applies them: 2, 4, ..., slots.
    let mut lens: Vec<usize> = (1..=log_s).map(|k| 1usize << k).collect();
    if inverse {
        lens.reverse(); // S^-1 applies S_slots^-1 first
    }
    let (base, extra) = (log_s / levels, log_s % levels);
    let mut out = Vec::with_capacity(levels);
    let mut it = lens.into_iter();
    for g in 0..levels {
        let size = base + usize::from(g < extra);
        out.push(it.by_ref().take(size).collect());
    }
    Ok(out)
}

/// CoeffsToSlots as `levels` matrices, in application order: their product is `S^-1`, so the
/// output slots hold the bit-reversed `u = V^-1 z`, times `scale`.
///
/// # Errors
/// [`Error::OutOfRange`] for `levels` outside `1..=log2(slots)`.
pub fn coeffs_to_slots(slots: usize, levels: usize, scale: f64) -> Result<Vec<DiagMatrix>> {
    let mut mats = Vec::new();
    for (g, lens) in groups(slots, levels, true)?.into_iter().enumerate() {
        let mut m = DiagMatrix::identity(slots);
        for len in lens {
            m = stage_inverse(slots, len).mul(&m)?;
        }
        mats.push(if g == 0 { m.scaled(scale) } else { m });
    }
    Ok(mats)
}

/// SlotsToCoeffs as `levels` matrices, in application order: their product is `S`, mapping the
/// bit-reversed `u'` back to the slots `V u'`, times `scale`.
///
/// # Errors
/// [`Error::OutOfRange`] for `levels` outside `1..=log2(slots)`.
pub fn slots_to_coeffs(slots: usize, levels: usize, scale: f64) -> Result<Vec<DiagMatrix>> {
    let mut mats = Vec::new();
    for (g, lens) in groups(slots, levels, false)?.into_iter().enumerate() {
        let mut m = DiagMatrix::identity(slots);
        for len in lens {
            m = stage(slots, len).mul(&m)?;
        }
        mats.push(if g == 0 { m.scaled(scale) } else { m });
    }
    Ok(mats)
}

/// The bit-reversal permutation of a vector of power-of-two length.
pub fn bit_reverse<T: Clone>(v: &[T]) -> Vec<T> {
    let bits = v.len().trailing_zeros();
    (0..v.len())
        .map(|i| {
            if bits == 0 {
                v[0].clone()
            } else {
                v[i.reverse_bits() >> (usize::BITS - bits)].clone()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheme::encoder::Encoder;

    fn random(s: usize, seed: u64) -> Vec<Complex64> {
        let mut x = seed | 1;
        (0..s)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                Complex64::new(
                    (x % 1000) as f64 / 500.0 - 1.0,
                    ((x >> 20) % 1000) as f64 / 500.0 - 1.0,
                )
            })
            .collect()
    }

    fn max_err(a: &[Complex64], b: &[Complex64]) -> f64 {
        a.iter().zip(b).map(|(x, y)| (x - y).norm()).fold(0.0, f64::max)
    }

    /// The stages composed after a bit reversal are the encoder's embedding (known answer: the
    /// encoder's FFT-based decoding of the same coefficients).
    #[test]
    fn stages_compose_to_the_encoder_embedding() {
        for log_s in 1..=8u32 {
            let s = 1usize << log_s;
            let n = 4 * s; // a ring with more room than the slots: sparse packing
            let enc = Encoder::new(n).unwrap();
            let u = random(s, log_s as u64);
            // Coefficients of the sparse-packed polynomial: c_k = Re u_k, c_{k+s} = Im u_k, gap N / 2s.
            let gap = n / (2 * s);
            let mut coeffs = vec![0.0; n];
            for (k, v) in u.iter().enumerate() {
                coeffs[k * gap] = v.re;
                coeffs[(k + s) * gap] = v.im;
            }
            let expected = enc.embed(&coeffs, s).unwrap();
            for levels in 1..=log_s as usize {
                let mut z = bit_reverse(&u);
                for m in slots_to_coeffs(s, levels, 1.0).unwrap() {
                    z = m.apply(&z).unwrap();
                }
                assert!(
                    max_err(&z, &expected) < 1e-9 * s as f64,
                    "s = {s}, levels = {levels}"
                );
                // And CoeffsToSlots inverts it, leaving the bit-reversed coefficients.
                let mut back = expected.clone();
                for m in coeffs_to_slots(s, levels, 1.0).unwrap() {
                    back = m.apply(&back).unwrap();
                }
                assert!(
                    max_err(&back, &bit_reverse(&u)) < 1e-9 * s as f64,
                    "inverse, s = {s}"
                );
            }
        }
    }

    #[test]
    fn merged_levels_have_the_expected_diagonal_counts() {
        // One stage: 3 diagonals (2 for the last, where +s/2 = -s/2). Merging g stages of
        // consecutive lengths gives at most 2^(g+1) - 1 diagonals.
        let s = 256;
        for m in coeffs_to_slots(s, 8, 1.0).unwrap() {
            assert!(m.diagonals().len() <= 3);
        }
        for m in coeffs_to_slots(s, 4, 1.0).unwrap() {
            assert!(m.diagonals().len() <= 7, "{}", m.diagonals().len());
        }
        assert!(coeffs_to_slots(s, 9, 1.0).is_err());
        assert!(coeffs_to_slots(s, 0, 1.0).is_err());
    }

    #[test]
    fn diag_product_matches_dense_product() {
        let s = 16;
        let a = stage(s, 8).mul(&stage_inverse(s, 4)).unwrap();
        let z = random(s, 9);
        let direct = stage(s, 8)
            .apply(&stage_inverse(s, 4).apply(&z).unwrap())
            .unwrap();
        assert!(max_err(&a.apply(&z).unwrap(), &direct) < 1e-12);
        let id = stage(s, 4).mul(&stage_inverse(s, 4)).unwrap();
        assert!(max_err(&id.apply(&z).unwrap(), &z) < 1e-12);
    }
}
