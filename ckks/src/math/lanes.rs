//! Element-wise products of a limb by a constant modulo one word prime, the small loops around
//! basis extension: `y = x w mod q` (the `[x_i (Q/q_i)^-1]_{q_i}` step) and `y = (x - e) w mod q`
//! (the last step of a division by `P`). Shoup products; an AVX-512 IFMA kernel for moduli below
//! 2^50 and its scalar twin, picked at run time.

use crate::math::modulus::Modulus;
#[cfg(target_arch = "x86_64")]
use crate::math::simd::Backend;

#[cfg(target_arch = "x86_64")]
fn ifma_applies(q: &Modulus, n: usize) -> bool {
    Backend::detect() == Backend::Avx512Ifma && q.bits() <= 50 && n.is_multiple_of(8)
}

/// `x[c] = x[c] w mod q` in place; `x` reduced (`< q`), `w < q`.
///
/// # Panics
/// In debug builds, when `w >= q`.
pub fn mul_const(x: &mut [u64], w: u64, q: &Modulus) {
    debug_assert!(w < q.value());
    #[cfg(target_arch = "x86_64")]
    if ifma_applies(q, x.len()) {
        // SAFETY: AVX-512F + IFMA present, q < 2^50, length a multiple of 8.
        unsafe { ifma::sub_mul_const(x, None, w, q) };
        return;
    }
    mul_const_scalar(x, w, q);
}

/// `x[c] = (x[c] - e[c]) w mod q` in place; `x`, `e` reduced, `w < q`.
///
/// # Panics
/// When the slices differ in length; in debug builds, when `w >= q`.
pub fn sub_mul_const(x: &mut [u64], e: &[u64], w: u64, q: &Modulus) {
    assert_eq!(x.len(), e.len(), "limbs of different lengths");
    debug_assert!(w < q.value());
    #[cfg(target_arch = "x86_64")]
    if ifma_applies(q, x.len()) {
        // SAFETY: as in `mul_const`; `e` has the length of `x`.
        unsafe { ifma::sub_mul_const(x, Some(e), w, q) };
        return;
    }
    sub_mul_const_scalar(x, e, w, q);
}

/// Scalar twin of [`mul_const`].
pub fn mul_const_scalar(x: &mut [u64], w: u64, q: &Modulus) {
    let ws = q.shoup(w);
    x.iter_mut().for_each(|v| *v = q.mul_shoup(*v, w, ws));
}

/// Scalar twin of [`sub_mul_const`].
pub fn sub_mul_const_scalar(x: &mut [u64], e: &[u64], w: u64, q: &Modulus) {
    let ws = q.shoup(w);
    for (v, &ec) in x.iter_mut().zip(e) {
        *v = q.mul_shoup(q.sub(*v, ec), w, ws);
    }
}

#[cfg(target_arch = "x86_64")]
mod ifma {
    use crate::math::modulus::Modulus;
    use std::arch::x86_64::*;

    /// `x = (x - e) w mod q` (`e = 0` when absent).
    ///
    /// # Safety
    /// AVX-512F + IFMA available; `q < 2^50`; `x.len()` a multiple of 8; `e` as long as `x`;
    /// values reduced, `w < q`.
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub(super) unsafe fn sub_mul_const(x: &mut [u64], e: Option<&[u64]>, w: u64, q: &Modulus) {
        let qv = q.value();
        let ws = (((w as u128) << 52) / qv as u128) as u64;
        let (vq, vw, vws) = (
            _mm512_set1_epi64(qv as i64),
            _mm512_set1_epi64(w as i64),
            _mm512_set1_epi64(ws as i64),
        );
        let mask = _mm512_set1_epi64(((1u64 << 52) - 1) as i64);
        let zero = _mm512_setzero_si512();
        for c in (0..x.len()).step_by(8) {
            // SAFETY: c + 8 <= x.len() = e.len().
            let mut a = unsafe { _mm512_loadu_si512(x.as_ptr().add(c) as *const __m512i) };
            if let Some(e) = e {
                // SAFETY: as above.
                let b = unsafe { _mm512_loadu_si512(e.as_ptr().add(c) as *const __m512i) };
                // a - b + q in [1, 2q) < 2^51: a valid Shoup input.
                a = _mm512_sub_epi64(_mm512_add_epi64(a, vq), b);
            }
            let qhat = _mm512_madd52hi_epu64(zero, a, vws);
            let aw = _mm512_madd52lo_epu64(zero, a, vw);
            let qq = _mm512_madd52lo_epu64(zero, qhat, vq);
            let r = _mm512_and_si512(_mm512_sub_epi64(aw, qq), mask);
            let r = _mm512_min_epu64(r, _mm512_sub_epi64(r, vq));
            // SAFETY: c + 8 <= x.len().
            unsafe { _mm512_storeu_si512(x.as_mut_ptr().add(c) as *mut __m512i, r) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::math::primes::ntt_primes_below;
    use proptest::prelude::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha20Rng;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// The dispatched kernels (IFMA where available) equal their scalar twins and the plain
        /// definition, with the edge values 0 and q - 1 in the inputs and as the constant.
        #[test]
        fn kernels_match_twins(bits in prop::sample::select(vec![20u32, 40, 45, 50, 55, 61]), log_n in 3u32..10, edge_w: bool, seed: u64) {
            let n = 1usize << log_n;
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            let q = Modulus::new(ntt_primes_below(bits, n, 1).unwrap()[0]).unwrap();
            let mut x: Vec<u64> = (0..n).map(|_| rng.random_range(0..q.value())).collect();
            let mut e: Vec<u64> = (0..n).map(|_| rng.random_range(0..q.value())).collect();
            x[0] = q.value() - 1;
            e[0] = 0;
            x[1] = 0;
            e[1] = q.value() - 1;
            let w = if edge_w { q.value() - 1 } else { rng.random_range(0..q.value()) };
            let (mut f, mut t) = (x.clone(), x.clone());
            mul_const(&mut f, w, &q);
            mul_const_scalar(&mut t, w, &q);
            prop_assert_eq!(&f, &t);
            prop_assert!(x.iter().zip(&t).all(|(&a, &r)| r == q.mul(a, w)));
            let (mut f, mut t) = (x.clone(), x.clone());
            sub_mul_const(&mut f, &e, w, &q);
            sub_mul_const_scalar(&mut t, &e, w, &q);
            prop_assert_eq!(&f, &t);
            prop_assert!((0..n).all(|c| t[c] == q.mul(q.sub(x[c], e[c]), w)));
        }
    }
}
