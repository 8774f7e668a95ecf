//! Residue number system bases: CRT reconstruction, fast (approximate) basis extension, and the
//! exact rounding division by the last modulus. These are the kernels of CKKS rescaling and of the
//! ModUp / ModDown steps of hybrid key switching.
//!
//! References:
//! - J.-C. Bajard, J. Eynard, A. Hasan, V. Zucca, "A Full RNS Variant of FV like Somewhat Homomorphic
//!   Encryption Schemes", SAC 2016 (<https://eprint.iacr.org/2016/510>): fast base conversion.
//! - J. H. Cheon, K. Han, A. Kim, M. Kim, Y. Song, "A Full RNS Variant of Approximate Homomorphic
//!   Encryption", SAC 2018 (<https://eprint.iacr.org/2018/931>): RNS rescaling and ModUp/ModDown.

use crate::error::{Error, Result};
use crate::math::modulus::Modulus;
use crate::math::{dot, lanes};
use num_bigint::BigUint;
use num_traits::{One, Zero};
use rayon::prelude::*;

/// A list of pairwise distinct prime moduli `q_0, ..., q_{k-1}` with CRT constants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RnsBasis {
    moduli: Vec<Modulus>,
    /// (Q / q_i)^-1 mod q_i and its Shoup companion.
    q_hat_inv: Vec<u64>,
    q_hat_inv_s: Vec<u64>,
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl RnsBasis {
    /// Builds the basis.
    ///
    /// # Errors
    /// [`Error::InvalidBasis`] for an empty list, [`Error::DuplicateModulus`] for a repeated or
    /// non-coprime modulus, and the errors of [`Modulus::new`].
    pub fn new(moduli: &[u64]) -> Result<Self> {
        if moduli.is_empty() {
            return Err(Error::InvalidBasis {
                reason: "an RNS basis needs at least one modulus",
            });
        }
        let ms = moduli
            .iter()
            .map(|&q| Modulus::new(q))
            .collect::<Result<Vec<_>>>()?;
        for (i, &a) in moduli.iter().enumerate() {
            for &b in &moduli[..i] {
                if gcd(a, b) != 1 {
                    return Err(Error::DuplicateModulus { q: a });
                }
            }
        }
        let mut q_hat_inv = Vec::with_capacity(ms.len());
        for (i, m) in ms.iter().enumerate() {
            let mut prod = 1u64;
            for (j, other) in ms.iter().enumerate() {
                if i != j {
                    prod = m.mul(prod, other.value());
                }
            }
            q_hat_inv.push(m.inv(prod)?);
        }
        let q_hat_inv_s = q_hat_inv.iter().zip(&ms).map(|(&v, m)| m.shoup(v)).collect();
        Ok(Self {
            moduli: ms,
            q_hat_inv,
            q_hat_inv_s,
        })
    }

    /// The moduli.
    pub fn moduli(&self) -> &[Modulus] {
        &self.moduli
    }

    /// The moduli as integers.
    pub fn values(&self) -> Vec<u64> {
        self.moduli.iter().map(|m| m.value()).collect()
    }

    /// Number of moduli.
    pub fn len(&self) -> usize {
        self.moduli.len()
    }

    /// Always false: a basis has at least one modulus.
    pub fn is_empty(&self) -> bool {
        self.moduli.is_empty()
    }

    /// The product `Q` of the moduli.
    pub fn product(&self) -> BigUint {
        self.moduli.iter().fold(BigUint::one(), |acc, m| acc * m.value())
    }

    /// The integer in `[0, Q)` with the given residues (Chinese remaindering).
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] unless there is one residue per modulus.
    pub fn reconstruct(&self, residues: &[u64]) -> Result<BigUint> {
        if residues.len() != self.len() {
            return Err(Error::LengthMismatch {
                expected: self.len(),
                got: residues.len(),
            });
        }
        let q = self.product();
        let mut acc = BigUint::zero();
        for (i, (m, &r)) in self.moduli.iter().zip(residues).enumerate() {
            let y = m.mul(m.reduce(r), self.q_hat_inv[i]);
            acc += (&q / m.value()) * y;
        }
        Ok(acc % q)
    }

    /// The residues of `x` modulo each modulus.
    pub fn decompose(&self, x: &BigUint) -> Vec<u64> {
        self.moduli
            .iter()
            .map(|m| {
                let r = x % m.value();
                r.to_u64_digits().first().copied().unwrap_or(0)
            })
            .collect()
    }
}

/// Fast basis extension from a basis `Q` to a basis `P` (Bajard et al.):
/// `ext(x)_j = sum_i [x_i (Q/q_i)^-1]_{q_i} (Q/q_i) mod p_j`, which equals `x + alpha Q mod p_j` for
/// some integer `0 <= alpha < |Q|`. The `alpha Q` term is the approximation that key switching absorbs.
#[derive(Clone, Debug)]
pub struct BasisExtender {
    from: RnsBasis,
    to: RnsBasis,
    /// (Q/q_i) mod p_j, indexed [j][i].
    q_hat_mod_p: Vec<Vec<u64>>,
    /// Q mod p_j, to subtract the overflow `alpha Q` in the exact variant.
    q_mod_p: Vec<u64>,
    /// 1 / q_i in floating point, to estimate `alpha`.
    inv_q: Vec<f64>,
}

impl BasisExtender {
    /// Precomputes the extension from `from` to `to`.
    ///
    /// # Errors
    /// [`Error::InvalidBasis`] when the two bases share a modulus or `from` has 64 or more moduli
    /// (the lazy 128-bit accumulation needs fewer).
    pub fn new(from: &RnsBasis, to: &RnsBasis) -> Result<Self> {
        if from.len() >= 64 {
            return Err(Error::InvalidBasis {
                reason: "basis extension supports at most 63 source moduli",
            });
        }
        for p in to.moduli() {
            for q in from.moduli() {
                if gcd(p.value(), q.value()) != 1 {
                    return Err(Error::InvalidBasis {
                        reason: "source and target bases must be coprime",
                    });
                }
            }
        }
        let q_hat_mod_p = to
            .moduli()
            .iter()
            .map(|p| {
                (0..from.len())
                    .map(|i| {
                        from.moduli()
                            .iter()
                            .enumerate()
                            .filter(|(k, _)| *k != i)
                            .fold(1u64, |acc, (_, q)| p.mul(acc, q.value()))
                    })
                    .collect()
            })
            .collect();
        let q_mod_p = to
            .moduli()
            .iter()
            .map(|p| from.moduli().iter().fold(1u64, |acc, q| p.mul(acc, q.value())))
            .collect();
        let inv_q = from.moduli().iter().map(|q| 1.0 / q.value() as f64).collect();
        Ok(Self {
            from: from.clone(),
            to: to.clone(),
            q_hat_mod_p,
            q_mod_p,
            inv_q,
        })
    }

    /// The source basis.
    pub fn from(&self) -> &RnsBasis {
        &self.from
    }

    /// The target basis.
    pub fn to(&self) -> &RnsBasis {
        &self.to
    }

    /// Extends `n` coefficients given as `from.len()` limbs (`input`, limb-major, values `< q_i`) to
    /// `to.len()` limbs written into `output` (limb-major): `x + alpha Q` with `0 <= alpha < |Q|`.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] when the slice lengths do not match `n` and the bases.
    pub fn extend(&self, input: &[u64], output: &mut [u64], n: usize) -> Result<()> {
        self.extend_impl(input, output, n, false)
    }

    /// As [`BasisExtender::extend`], but exact for the centered representative: the output is
    /// `x_c mod p_j` where `x_c in [-Q/2, Q/2)` is congruent to `x`. The overflow
    /// `alpha = round(sum_i y_i / q_i)` is computed in floating point; it can be off by one only when
    /// `x / Q` lies within about `|Q| 2^-52` of one half, i.e. when both representatives are equally
    /// valid roundings. Exactness keeps ModDown's error unbiased: the approximate extension adds
    /// `alpha`, of mean `(|Q| - 1) / 2`, to every coefficient, and a constant offset on every
    /// coefficient concentrates in the slots next to the root 1 once multiplied by the secret.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] when the slice lengths do not match `n` and the bases.
    pub fn extend_centered(&self, input: &[u64], output: &mut [u64], n: usize) -> Result<()> {
        self.extend_impl(input, output, n, true)
    }

    fn extend_impl(&self, input: &[u64], output: &mut [u64], n: usize, exact: bool) -> Result<()> {
        if input.len() != n * self.from.len() {
            return Err(Error::LengthMismatch {
                expected: n * self.from.len(),
                got: input.len(),
            });
        }
        if output.len() != n * self.to.len() {
            return Err(Error::LengthMismatch {
                expected: n * self.to.len(),
                got: output.len(),
            });
        }
        // y_i = [x_i (Q/q_i)^-1]_{q_i}
        let mut y = input.to_vec();
        for (i, yl) in y.chunks_exact_mut(n).enumerate() {
            lanes::mul_const(yl, self.from.q_hat_inv[i], &self.from.moduli[i]);
        }
        // alpha = round(sum_i y_i / q_i) per coefficient, for the centered variant.
        let alpha: Vec<u64> = if exact {
            (0..n)
                .map(|c| {
                    let sum: f64 = self
                        .inv_q
                        .iter()
                        .enumerate()
                        .map(|(i, &iq)| y[i * n + c] as f64 * iq)
                        .sum();
                    (sum + 0.5).floor() as u64
                })
                .collect()
        } else {
            Vec::new()
        };
        // The exact variant subtracts alpha Q: one more term, alpha times -Q mod p_j.
        let mut y_limbs: Vec<&[u64]> = y.chunks_exact(n).collect();
        if exact {
            y_limbs.push(&alpha);
        }
        let y_bits = self.from.moduli.iter().map(Modulus::bits).max().unwrap_or(0);
        let one_limb = |j: usize, ol: &mut [u64]| {
            let p = &self.to.moduli[j];
            let mut weights = self.q_hat_mod_p[j].clone();
            if exact {
                weights.push(p.neg(self.q_mod_p[j]));
            }
            dot::weighted_sum(ol, &y_limbs, &weights, p, y_bits);
        };
        // Output limbs are independent: spread them over threads when there is enough work.
        if output.len() * self.from.len() >= 1 << 16 {
            output
                .par_chunks_exact_mut(n)
                .enumerate()
                .for_each(|(j, ol)| one_limb(j, ol));
        } else {
            output
                .chunks_exact_mut(n)
                .enumerate()
                .for_each(|(j, ol)| one_limb(j, ol));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::math::primes::ntt_primes_below;
    use proptest::prelude::*;

    #[test]
    fn bad_bases_are_errors() {
        assert!(matches!(RnsBasis::new(&[]), Err(Error::InvalidBasis { .. })));
        assert!(matches!(
            RnsBasis::new(&[97, 97]),
            Err(Error::DuplicateModulus { q: 97 })
        ));
        assert!(matches!(
            RnsBasis::new(&[6, 9]),
            Err(Error::DuplicateModulus { .. })
        ));
        let a = RnsBasis::new(&[97, 101]).unwrap();
        assert!(matches!(
            BasisExtender::new(&a, &a),
            Err(Error::InvalidBasis { .. })
        ));
        assert!(matches!(a.reconstruct(&[1]), Err(Error::LengthMismatch { .. })));
    }

    proptest! {
        #[test]
        fn centered_extension_is_exact(k in 1usize..8, l in 1usize..4, seed: u64, log_n in 3u32..13) {
            let n = 1usize << log_n;
            let primes = ntt_primes_below(61, 1 << 13, k + l).unwrap();
            let from = RnsBasis::new(&primes[..k]).unwrap();
            let to = RnsBasis::new(&primes[k..]).unwrap();
            let ext = BasisExtender::new(&from, &to).unwrap();
            let mut s = seed | 1;
            let input: Vec<u64> = (0..n * k).map(|idx| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let q = from.moduli()[idx / n].value();
                match idx % 5 { 0 => 0, 1 => q - 1, _ => (s >> 3) % q }
            }).collect();
            let mut out = vec![0u64; n * l];
            ext.extend_centered(&input, &mut out, n).unwrap();
            // Check a sample of coefficients against big-integer CRT (all of them for small n).
            for c in (0..n).step_by((n / 64).max(1)) {
                let x = from.reconstruct(&(0..k).map(|i| input[i * n + c]).collect::<Vec<_>>()).unwrap();
                let got: Vec<u64> = (0..l).map(|j| out[j * n + c]).collect();
                // x_c = x - Q when x >= Q/2, as residues: (x + (p - Q mod p)) mod p.
                let big_q = from.product();
                let expected: Vec<u64> = if &x + &x >= big_q {
                    to.moduli().iter().zip(to.decompose(&x)).zip(to.decompose(&big_q))
                        .map(|((p, a), b)| p.sub(a, b)).collect()
                } else {
                    to.decompose(&x)
                };
                prop_assert_eq!(expected, got);
            }
        }

        #[test]
        fn crt_round_trip(k in 1usize..6, digits in prop::collection::vec(any::<u64>(), 6)) {
            let basis = RnsBasis::new(&ntt_primes_below(60, 1024, k).unwrap()).unwrap();
            let x = BigUint::from_slice(&digits.iter().flat_map(|d| [*d as u32, (*d >> 32) as u32]).collect::<Vec<_>>())
                % basis.product();
            let res = basis.decompose(&x);
            prop_assert_eq!(basis.reconstruct(&res).unwrap(), x);
        }

        #[test]
        fn extension_is_x_plus_small_multiple_of_q(k in 1usize..6, l in 1usize..4, seed: u64) {
            let primes = ntt_primes_below(58, 1024, k + l).unwrap();
            let from = RnsBasis::new(&primes[..k]).unwrap();
            let to = RnsBasis::new(&primes[k..]).unwrap();
            let ext = BasisExtender::new(&from, &to).unwrap();
            let n = 8;
            let mut s = seed | 1;
            let mut input = vec![0u64; n * k];
            for (idx, v) in input.iter_mut().enumerate() {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let q = from.moduli()[idx / n].value();
                *v = match idx % n { 0 => 0, 1 => q - 1, _ => (s >> 3) % q };
            }
            let mut out = vec![0u64; n * l];
            ext.extend(&input, &mut out, n).unwrap();
            let big_q = from.product();
            for c in 0..n {
                let x = from.reconstruct(&(0..k).map(|i| input[i * n + c]).collect::<Vec<_>>()).unwrap();
                let got: Vec<u64> = (0..l).map(|j| out[j * n + c]).collect();
                let ok = (0..k as u64).any(|alpha| to.decompose(&(&x + &big_q * alpha)) == got);
                prop_assert!(ok, "coefficient {} is not x + alpha Q for alpha < {}", c, k);
            }
        }
    }
}
