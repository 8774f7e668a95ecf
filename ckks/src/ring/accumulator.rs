//! Lazy sums of products in NTT form: `sum_i a_i * b_i` kept in 128-bit words and reduced once,
//! the inner product of key switching. Its reference twin is a loop of
//! [`RnsPoly::mul_then_add_assign`](crate::ring::RnsPoly::mul_then_add_assign).

use crate::error::{Error, Result};
use crate::ring::basis::RingBasis;
use crate::ring::{Ntt, RnsPoly};
use rayon::prelude::*;
use std::sync::Arc;

/// Products of values below 2^61 are below 2^122: 32 of them still fit in 127 bits.
const MAX_PENDING: usize = 32;

/// An unreduced accumulator of products over one ring.
#[derive(Debug)]
pub struct ProductAccumulator {
    basis: Arc<RingBasis>,
    acc: Vec<u128>,
    pending: usize,
}

impl ProductAccumulator {
    /// A zero accumulator over `basis`.
    pub fn new(basis: &Arc<RingBasis>) -> Self {
        Self {
            basis: basis.clone(),
            acc: vec![0; basis.n() * basis.len()],
            pending: 0,
        }
    }

    fn reduce_in_place(&mut self) {
        let n = self.basis.n();
        let moduli = self.basis.moduli();
        self.acc.par_chunks_exact_mut(n).enumerate().for_each(|(i, l)| {
            let m = &moduli[i];
            l.iter_mut().for_each(|x| *x = m.reduce_u128(*x) as u128);
        });
        self.pending = 1;
    }

    /// `acc += a * b'` where `a` is over this ring and `b'` is made of the limbs `b_limbs[k]` of `b`
    /// (so `b` may live over a larger ring, e.g. a key over `Q_L P` used at level `l`).
    ///
    /// # Errors
    /// [`Error::BasisMismatch`] when `a` is over another ring; [`Error::InvalidBasis`] when the
    /// selected limbs of `b` do not carry this ring's moduli.
    pub fn add_product(&mut self, a: &RnsPoly<Ntt>, b: &RnsPoly<Ntt>, b_limbs: &[usize]) -> Result<()> {
        self.basis.check_same(a.basis())?;
        if b_limbs.len() != self.basis.len() || b.n() != self.basis.n() {
            return Err(Error::InvalidBasis {
                reason: "limb selection does not match the accumulator's ring",
            });
        }
        for (k, &j) in b_limbs.iter().enumerate() {
            if b.basis().moduli().get(j) != Some(&self.basis.moduli()[k]) {
                return Err(Error::InvalidBasis {
                    reason: "selected limb has another modulus",
                });
            }
        }
        if self.pending == MAX_PENDING {
            self.reduce_in_place();
        }
        let n = self.basis.n();
        let (a_data, b_data) = (a.as_slice(), b.as_slice());
        let body = |k: usize, acc: &mut [u128]| {
            let j = b_limbs[k];
            let (la, lb) = (&a_data[k * n..(k + 1) * n], &b_data[j * n..(j + 1) * n]);
            for ((x, &y), &z) in acc.iter_mut().zip(la).zip(lb) {
                *x += y as u128 * z as u128;
            }
        };
        if self.acc.len() >= 1 << 14 {
            self.acc
                .par_chunks_exact_mut(n)
                .enumerate()
                .for_each(|(k, l)| body(k, l));
        } else {
            self.acc
                .chunks_exact_mut(n)
                .enumerate()
                .for_each(|(k, l)| body(k, l));
        }
        self.pending += 1;
        Ok(())
    }

    /// The reduced sum.
    pub fn finish(self) -> RnsPoly<Ntt> {
        let n = self.basis.n();
        let moduli = self.basis.moduli();
        let mut out = vec![0u64; self.acc.len()];
        out.par_chunks_exact_mut(n)
            .zip(self.acc.par_chunks_exact(n))
            .enumerate()
            .for_each(|(i, (o, a))| {
                let m = &moduli[i];
                o.iter_mut().zip(a).for_each(|(o, &x)| *o = m.reduce_u128(x));
            });
        RnsPoly::from_raw(&self.basis, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::math::primes::ntt_primes_below;
    use crate::ring::sampling::uniform;
    use proptest::prelude::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(16))]

        /// Lazy accumulation equals the reduced fused multiply-add, including past the point where
        /// the accumulator has to reduce (more than 32 products), with 61-bit primes (largest products).
        #[test]
        fn lazy_sum_equals_reference(terms in 1usize..70, log_n in 3u32..=12, seed: u64) {
            let n = 1usize << log_n;
            let big = RingBasis::new(n, &ntt_primes_below(61, n, 4).unwrap()).unwrap();
            let small = big.sub_basis(0..2).unwrap();
            // b lives over the big ring; use its limbs 0 and 1 (those of `small`).
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            let mut acc = ProductAccumulator::new(&small);
            let mut reference = RnsPoly::<Ntt>::zero(&small);
            for _ in 0..terms {
                let a: RnsPoly<Ntt> = uniform(&small, &mut rng);
                let b: RnsPoly<Ntt> = uniform(&big, &mut rng);
                acc.add_product(&a, &b, &[0, 1]).unwrap();
                let b_small = b.select_limbs(&[0, 1], &small).unwrap();
                reference.mul_then_add_assign(&a, &b_small).unwrap();
            }
            prop_assert_eq!(acc.finish(), reference);
        }
    }

    #[test]
    fn mismatches_are_errors() {
        let big = RingBasis::new(16, &ntt_primes_below(50, 16, 3).unwrap()).unwrap();
        let small = big.sub_basis(0..2).unwrap();
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let a: RnsPoly<Ntt> = uniform(&small, &mut rng);
        let b: RnsPoly<Ntt> = uniform(&big, &mut rng);
        let mut acc = ProductAccumulator::new(&small);
        assert!(acc.add_product(&a, &b, &[0]).is_err());
        assert!(acc.add_product(&a, &b, &[0, 2]).is_err());
        assert!(acc.add_product(&a, &b, &[0, 7]).is_err());
        assert!(acc.add_product(&b, &b, &[0, 1]).is_err());
        assert!(acc.add_product(&a, &b, &[0, 1]).is_ok());
    }
}
