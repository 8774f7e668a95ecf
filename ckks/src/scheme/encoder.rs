//! The CKKS encoder: complex vectors of `s <= N/2` slots to integer polynomials through the canonical
//! embedding, scaled by `Delta` and rounded.
//!
//! Slot `j` is the evaluation at the root `w^(5^j mod 2n)` of the `2n`-th cyclotomic, `w = e^(i pi / n)`,
//! with `n = 2s`; the conjugate slots sit at `w^(-5^j)`, which makes the coefficients real. With fewer
//! than N/2 slots the polynomial is `m(X^(N/n))` (sparse packing). Both directions are one complex FFT
//! of size `n` (rustfft) with a twist by powers of `w`.
//!
//! References:
//! - J. H. Cheon, A. Kim, M. Kim, Y. Song, "Homomorphic Encryption for Arithmetic of Approximate
//!   Numbers", ASIACRYPT 2017 (<https://eprint.iacr.org/2016/421>).

use crate::error::{Error, Result};
use crate::ring::basis::RingBasis;
use crate::ring::{Coeff, RnsPoly};
use num_traits::ToPrimitive;
use rustfft::num_complex::Complex64;
use rustfft::FftPlanner;
use std::sync::Arc;

/// Encodes and decodes slot vectors for one ring degree.
pub struct Encoder {
    n: usize,
    planner: std::sync::Mutex<FftPlanner<f64>>,
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder")
            .field("n", &self.n)
            .finish_non_exhaustive()
    }
}

/// Index `k` such that the root `w^(2k+1)` of the size-`n` transform is the slot root `w^e`.
fn exponent_to_index(e: usize) -> usize {
    (e - 1) / 2
}

impl Encoder {
    /// An encoder for ring degree `n` (a power of two).
    ///
    /// # Errors
    /// [`Error::InvalidRingDegree`] unless `n = 2^1 .. 2^17`.
    pub fn new(n: usize) -> Result<Self> {
        if !n.is_power_of_two() || !(2..=1 << 17).contains(&n) {
            return Err(Error::InvalidRingDegree {
                n,
                min_log: 1,
                max_log: 17,
            });
        }
        Ok(Self {
            n,
            planner: std::sync::Mutex::new(FftPlanner::new()),
        })
    }

    fn check_slots(&self, slots: usize) -> Result<()> {
        if !slots.is_power_of_two() || slots > self.n / 2 {
            return Err(Error::InvalidSlots {
                slots,
                max: self.n / 2,
            });
        }
        Ok(())
    }

    fn fft(&self, buf: &mut [Complex64], inverse: bool) {
        let plan = {
            let mut planner = match self.planner.lock() {
                Ok(p) => p,
                Err(poisoned) => poisoned.into_inner(),
            };
            if inverse {
                planner.plan_fft_inverse(buf.len())
            } else {
                planner.plan_fft_forward(buf.len())
            }
        };
        plan.process(buf);
    }

    /// The real coefficients (not yet scaled) of the polynomial of degree < N whose slots are `values`
    /// (`values.len()` slots, a power of two up to N/2).
    ///
    /// # Errors
    /// [`Error::InvalidSlots`] for a bad slot count, [`Error::OutOfRange`] for a non-finite value.
    pub fn embed_inverse(&self, values: &[Complex64]) -> Result<Vec<f64>> {
        let slots = values.len();
        self.check_slots(slots)?;
        if values.iter().any(|v| !v.re.is_finite() || !v.im.is_finite()) {
            return Err(Error::OutOfRange {
                reason: "slot values must be finite",
            });
        }
        let n = 2 * slots; // degree of the sub-ring holding the sparse encoding
        let two_n = 2 * n;
        // Evaluations at w^(2k+1), k < n.
        let mut v = vec![Complex64::new(0.0, 0.0); n];
        let mut e = 1usize;
        for z in values {
            v[exponent_to_index(e)] = *z;
            v[exponent_to_index(two_n - e)] = z.conj();
            e = e * 5 % two_n;
        }
        // m_j = (1/n) w^(-j) sum_k v_k e^(-2 pi i jk/n)
        self.fft(&mut v, false);
        let gap = self.n / n;
        let mut coeffs = vec![0.0; self.n];
        for (j, c) in v.iter().enumerate() {
            let ang = -std::f64::consts::PI * j as f64 / n as f64;
            let tw = Complex64::new(ang.cos(), ang.sin());
            coeffs[j * gap] = (c * tw).re / n as f64;
        }
        Ok(coeffs)
    }

    /// The `slots` slot values of the polynomial with real coefficients `coeffs` (length N).
    ///
    /// # Errors
    /// [`Error::InvalidSlots`], [`Error::LengthMismatch`].
    pub fn embed(&self, coeffs: &[f64], slots: usize) -> Result<Vec<Complex64>> {
        self.check_slots(slots)?;
        if coeffs.len() != self.n {
            return Err(Error::LengthMismatch {
                expected: self.n,
                got: coeffs.len(),
            });
        }
        let n = 2 * slots;
        let two_n = 2 * n;
        let gap = self.n / n;
        // v_k = sum_j (m_j w^j) e^(2 pi i jk/n)
        let mut v: Vec<Complex64> = (0..n)
            .map(|j| {
                let ang = std::f64::consts::PI * j as f64 / n as f64;
                Complex64::new(ang.cos(), ang.sin()) * coeffs[j * gap]
            })
            .collect();
        self.fft(&mut v, true);
        let mut out = Vec::with_capacity(slots);
        let mut e = 1usize;
        for _ in 0..slots {
            out.push(v[exponent_to_index(e)]);
            e = e * 5 % two_n;
        }
        Ok(out)
    }

    /// Encodes `values` at `scale` into a plaintext polynomial over `basis` (coefficient form).
    ///
    /// # Errors
    /// As [`Encoder::embed_inverse`], [`Error::OutOfRange`] when a scaled coefficient reaches 2^126 or the
    /// scale is not positive and finite, [`Error::LengthMismatch`] when `basis` has another degree.
    pub fn encode(&self, values: &[Complex64], scale: f64, basis: &Arc<RingBasis>) -> Result<RnsPoly<Coeff>> {
        if basis.n() != self.n {
            return Err(Error::LengthMismatch {
                expected: self.n,
                got: basis.n(),
            });
        }
        if !(scale.is_finite() && scale > 0.0) {
            return Err(Error::OutOfRange {
                reason: "scale must be positive and finite",
            });
        }
        let coeffs = self.embed_inverse(values)?;
        let mut ints = Vec::with_capacity(self.n);
        for c in coeffs {
            let x = (c * scale).round();
            if !x.is_finite() || x.abs() >= 2f64.powi(126) {
                return Err(Error::OutOfRange {
                    reason: "scaled value too large for the encoder",
                });
            }
            ints.push(x as i128);
        }
        RnsPoly::from_i128(basis, &ints)
    }

    /// Decodes a plaintext polynomial at `scale` into `slots` values: centers the coefficients mod Q,
    /// divides by the scale and evaluates at the slot roots.
    ///
    /// # Errors
    /// As [`Encoder::embed`].
    pub fn decode(&self, poly: &RnsPoly<Coeff>, scale: f64, slots: usize) -> Result<Vec<Complex64>> {
        if poly.n() != self.n {
            return Err(Error::LengthMismatch {
                expected: self.n,
                got: poly.n(),
            });
        }
        let coeffs: Vec<f64> = match poly.to_centered_small() {
            Some(small) => small.iter().map(|&c| c as f64 / scale).collect(),
            None => poly
                .to_centered_bigint()
                .iter()
                .map(|c| c.to_f64().unwrap_or(f64::NAN) / scale)
                .collect(),
        };
        self.embed(&coeffs, slots)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::math::primes::ntt_primes_below;
    use proptest::prelude::*;

    fn max_err(a: &[Complex64], b: &[Complex64]) -> f64 {
        a.iter().zip(b).map(|(x, y)| (x - y).norm()).fold(0.0, f64::max)
    }

    #[test]
    fn known_answer_constant_and_monomial() {
        // The constant polynomial c has every slot equal to c.
        let enc = Encoder::new(16).unwrap();
        let mut coeffs = vec![0.0; 16];
        coeffs[0] = 3.0;
        let z = enc.embed(&coeffs, 8).unwrap();
        assert!(z.iter().all(|v| (v - Complex64::new(3.0, 0.0)).norm() < 1e-12));
        // X evaluates to w^(5^j) in slot j, w = e^(i pi / 16).
        let mut x = vec![0.0; 16];
        x[1] = 1.0;
        let z = enc.embed(&x, 8).unwrap();
        let mut e = 1u64;
        for v in z {
            let ang = std::f64::consts::PI * e as f64 / 16.0;
            assert!((v - Complex64::new(ang.cos(), ang.sin())).norm() < 1e-12);
            e = e * 5 % 32;
        }
    }

    #[test]
    fn slot_product_is_polynomial_product() {
        // The embedding is a ring homomorphism: slots multiply when polynomials multiply mod X^N+1.
        let n = 32;
        let enc = Encoder::new(n).unwrap();
        let a: Vec<f64> = (0..n).map(|i| ((i * 7 % 11) as f64) - 5.0).collect();
        let b: Vec<f64> = (0..n).map(|i| ((i * 3 % 5) as f64) - 2.0).collect();
        let mut c = vec![0.0; n];
        for i in 0..n {
            for j in 0..n {
                if i + j < n {
                    c[i + j] += a[i] * b[j];
                } else {
                    c[i + j - n] -= a[i] * b[j];
                }
            }
        }
        let (za, zb, zc) = (
            enc.embed(&a, n / 2).unwrap(),
            enc.embed(&b, n / 2).unwrap(),
            enc.embed(&c, n / 2).unwrap(),
        );
        let prod: Vec<Complex64> = za.iter().zip(&zb).map(|(x, y)| x * y).collect();
        assert!(max_err(&prod, &zc) < 1e-9);
    }

    #[test]
    fn bad_input_is_an_error() {
        let enc = Encoder::new(64).unwrap();
        assert!(matches!(
            enc.embed_inverse(&[Complex64::new(0.0, 0.0); 3]),
            Err(Error::InvalidSlots { .. })
        ));
        assert!(matches!(
            enc.embed_inverse(&vec![Complex64::new(0.0, 0.0); 64]),
            Err(Error::InvalidSlots { .. })
        ));
        assert!(matches!(
            enc.embed_inverse(&[Complex64::new(f64::NAN, 0.0)]),
            Err(Error::OutOfRange { .. })
        ));
        let basis = RingBasis::new(64, &ntt_primes_below(50, 64, 2).unwrap()).unwrap();
        assert!(enc
            .encode(&[Complex64::new(1e30, 0.0)], 2f64.powi(100), &basis)
            .is_err());
        assert!(enc.encode(&[Complex64::new(1.0, 0.0)], -1.0, &basis).is_err());
        assert!(Encoder::new(100).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        #[test]
        fn encode_decode_round_trip(log_n in 2u32..=12, log_slots_gap in 0u32..3, seed: u64) {
            let n = 1usize << log_n;
            let slots = (n / 2) >> log_slots_gap.min(log_n - 1);
            let enc = Encoder::new(n).unwrap();
            let basis = RingBasis::new(n, &ntt_primes_below(55, n.max(2), 2).unwrap()).unwrap();
            let mut s = seed | 1;
            let mut next = || { s ^= s << 13; s ^= s >> 7; s ^= s << 17; (s % 2001) as f64 / 1000.0 - 1.0 };
            let z: Vec<Complex64> = (0..slots).map(|_| Complex64::new(next(), next())).collect();
            let scale = 2f64.powi(40);
            let pt = enc.encode(&z, scale, &basis).unwrap();
            let back = enc.decode(&pt, scale, slots).unwrap();
            // Rounding to integers adds at most 1/2 per coefficient: error <= N / (2 scale) per slot.
            let bound = n as f64 / (2.0 * scale);
            prop_assert!(max_err(&z, &back) <= bound, "err {} > {}", max_err(&z, &back), bound);
        }
    }
}
