//! Sums of products modulo one word prime, one limb at a time: the inner loops of fast basis
//! extension (`sum_i y_i k_i`, constant weights) and of key switching's inner product
//! (`sum_d a_d b_d`, two outputs sharing `a`, optionally read through an automorphism's
//! permutation so a hoisted rotation never materialises the rotated digits).
//!
//! Two kernels each: a scalar twin that accumulates in 128 bits and reduces once (any modulus below
//! 2^61, at most [`MAX_SCALAR_TERMS`] terms), and an AVX-512 IFMA one for moduli and inputs below
//! 2^50. IFMA splits each 100-bit product in a low 52-bit and a high part and adds both into two
//! 64-bit accumulators (`vpmadd52luq` / `vpmadd52huq`); one reduction per coefficient at the end.
//! The safe entry points pick the kernel at run time ([`Backend::detect`]).

use crate::math::modulus::Modulus;
#[cfg(target_arch = "x86_64")]
use crate::math::simd::Backend;

/// Most terms of one sum in the scalar kernel: products below 2^122, 32 of them below 2^127.
pub const MAX_SCALAR_TERMS: usize = 32;

/// Most terms of one sum in the IFMA kernel: the high halves (below 2^48 each) plus the carries of
/// the low sum must stay below 2^52 for the final Shoup reduction.
const MAX_IFMA_TERMS: usize = 15;

/// Largest modulus and input size (bits) the IFMA kernel accepts.
const IFMA_BITS: u32 = 50;

/// An index permutation of `0..n` (`out[k]` reads `in[perm[k]]`), checked once so the kernels can
/// gather without bounds checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Permutation(Vec<usize>);

impl Permutation {
    /// `None` unless every entry is below `perm.len()` and appears once.
    pub fn new(perm: Vec<usize>) -> Option<Self> {
        let n = perm.len();
        let mut seen = vec![false; n];
        for &p in &perm {
            if p >= n || std::mem::replace(&mut seen[p], true) {
                return None;
            }
        }
        Some(Self(perm))
    }

    /// The indices.
    pub fn as_slice(&self) -> &[usize] {
        &self.0
    }
}

fn check_shapes(n: usize, inputs: &[&[u64]], perm: Option<&Permutation>) {
    assert!(
        inputs.iter().all(|x| x.len() == n),
        "input limbs of another length"
    );
    assert!(
        perm.is_none_or(|p| p.0.len() == n),
        "permutation of another length"
    );
}

/// `out[c] = sum_i inputs[i][c] * weights[i] mod p`.
///
/// `weights` must be below `p`; `input_bits` bounds every input value (`x < 2^input_bits`, at
/// most 61). More than [`MAX_SCALAR_TERMS`] terms are summed in groups.
///
/// # Panics
/// When the slices have different lengths or `inputs.len() != weights.len()` (callers build both
/// from the same bases).
pub fn weighted_sum(out: &mut [u64], inputs: &[&[u64]], weights: &[u64], p: &Modulus, input_bits: u32) {
    let n = out.len();
    check_shapes(n, inputs, None);
    assert_eq!(inputs.len(), weights.len(), "one weight per input");
    debug_assert!(weights.iter().all(|&w| w < p.value()));
    #[cfg(target_arch = "x86_64")]
    if ifma_applies(p, input_bits, inputs.len(), n) {
        // SAFETY: the CPU has AVX-512F + IFMA (checked by `ifma_applies`), all slices have length
        // `n`, a multiple of 8, and the size bounds of the kernel hold.
        unsafe { ifma::weighted_sum(out, inputs, weights, p) };
        return;
    }
    weighted_sum_scalar(out, inputs, weights, p);
}

/// `(out0[c], out1[c]) = (sum_d a_d[s(c)] b_d[c], sum_d a_d[s(c)] e_d[c]) mod p` with
/// `s = perm` or the identity: the inner product of a decomposition `a` with a switching key's two
/// halves `b`, `e`.
///
/// Every value must be below `2^input_bits` (at most 61).
///
/// # Panics
/// When the slices have different lengths or the three lists different counts.
#[allow(
    clippy::too_many_arguments,
    reason = "two outputs, three operand lists, the modulus"
)]
pub fn dot_pair(
    out0: &mut [u64],
    out1: &mut [u64],
    a: &[&[u64]],
    perm: Option<&Permutation>,
    b: &[&[u64]],
    e: &[&[u64]],
    p: &Modulus,
    input_bits: u32,
) {
    let n = out0.len();
    assert_eq!(out1.len(), n, "outputs of different lengths");
    check_shapes(n, a, perm);
    check_shapes(n, b, None);
    check_shapes(n, e, None);
    assert!(
        a.len() == b.len() && a.len() == e.len(),
        "operand lists of different lengths"
    );
    if let Some(q) = perm {
        // Reading `a` through the permutation inside the loop gathers from all digits at once, and
        // the digits of a limb (several hundred KB each) do not stay in cache: permuting one digit
        // at a time first, then multiplying contiguously, is about 3x faster.
        let permuted: Vec<Vec<u64>> = a.iter().map(|x| q.0.iter().map(|&i| x[i]).collect()).collect();
        let a: Vec<&[u64]> = permuted.iter().map(Vec::as_slice).collect();
        dot_pair(out0, out1, &a, None, b, e, p, input_bits);
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if a.len() > MAX_IFMA_TERMS && ifma_applies(p, input_bits, MAX_IFMA_TERMS, n) {
        // Groups of the most terms the IFMA kernel takes, added up reduced.
        let (mut t0, mut t1) = (vec![0u64; n], vec![0u64; n]);
        for (g, start) in (0..a.len()).step_by(MAX_IFMA_TERMS).enumerate() {
            let end = (start + MAX_IFMA_TERMS).min(a.len());
            let (x, y) = (&a[start..end], (&b[start..end], &e[start..end]));
            if g == 0 {
                dot_pair(out0, out1, x, None, y.0, y.1, p, input_bits);
            } else {
                dot_pair(&mut t0, &mut t1, x, None, y.0, y.1, p, input_bits);
                for (o, t) in out0.iter_mut().zip(&t0).chain(out1.iter_mut().zip(&t1)) {
                    *o = p.add(*o, *t);
                }
            }
        }
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if ifma_applies(p, input_bits, a.len(), n) {
        // SAFETY: as in `weighted_sum`.
        unsafe { ifma::dot_pair(out0, out1, a, b, e, p) };
        return;
    }
    dot_pair_scalar(out0, out1, a, None, b, e, p);
}

#[cfg(target_arch = "x86_64")]
fn ifma_applies(p: &Modulus, input_bits: u32, terms: usize, n: usize) -> bool {
    Backend::detect() == Backend::Avx512Ifma
        && p.bits() <= IFMA_BITS
        && input_bits <= IFMA_BITS
        && (1..=MAX_IFMA_TERMS).contains(&terms)
        && n.is_multiple_of(8)
}

/// Scalar twin of [`weighted_sum`].
pub fn weighted_sum_scalar(out: &mut [u64], inputs: &[&[u64]], weights: &[u64], p: &Modulus) {
    if inputs.len() <= MAX_SCALAR_TERMS {
        // The common case: one 128-bit sum and one reduction per output.
        for (c, o) in out.iter_mut().enumerate() {
            let acc: u128 = inputs
                .iter()
                .zip(weights)
                .map(|(x, &w)| x[c] as u128 * w as u128)
                .sum();
            *o = p.reduce_u128(acc);
        }
        return;
    }
    for (c, o) in out.iter_mut().enumerate() {
        let mut total = 0u64;
        for (xs, ws) in inputs
            .chunks(MAX_SCALAR_TERMS)
            .zip(weights.chunks(MAX_SCALAR_TERMS))
        {
            let acc: u128 = xs.iter().zip(ws).map(|(x, &w)| x[c] as u128 * w as u128).sum();
            total = p.add(total, p.reduce_u128(acc));
        }
        *o = total;
    }
}

/// Scalar twin of [`dot_pair`].
pub fn dot_pair_scalar(
    out0: &mut [u64],
    out1: &mut [u64],
    a: &[&[u64]],
    perm: Option<&Permutation>,
    b: &[&[u64]],
    e: &[&[u64]],
    p: &Modulus,
) {
    if perm.is_none() && a.len() <= MAX_SCALAR_TERMS {
        // The common case (a key's digits, a giant step's diagonals): one 128-bit sum per output.
        for c in 0..out0.len() {
            let (mut s0, mut s1) = (0u128, 0u128);
            for ((ad, bd), ed) in a.iter().zip(b).zip(e) {
                let v = ad[c] as u128;
                s0 += v * bd[c] as u128;
                s1 += v * ed[c] as u128;
            }
            out0[c] = p.reduce_u128(s0);
            out1[c] = p.reduce_u128(s1);
        }
        return;
    }
    for c in 0..out0.len() {
        let src = perm.map_or(c, |q| q.0[c]);
        let (mut t0, mut t1) = (0u64, 0u64);
        for ((xa, xb), xe) in a
            .chunks(MAX_SCALAR_TERMS)
            .zip(b.chunks(MAX_SCALAR_TERMS))
            .zip(e.chunks(MAX_SCALAR_TERMS))
        {
            let (mut s0, mut s1) = (0u128, 0u128);
            for ((ad, bd), ed) in xa.iter().zip(xb).zip(xe) {
                let v = ad[src] as u128;
                s0 += v * bd[c] as u128;
                s1 += v * ed[c] as u128;
            }
            t0 = p.add(t0, p.reduce_u128(s0));
            t1 = p.add(t1, p.reduce_u128(s1));
        }
        out0[c] = t0;
        out1[c] = t1;
    }
}

#[cfg(target_arch = "x86_64")]
mod ifma {
    use crate::math::modulus::Modulus;
    use std::arch::x86_64::*;

    const MASK52: u64 = (1 << 52) - 1;

    /// Constants of the final reduction of `hi 2^52 + lo` modulo `p`.
    struct Reducer {
        p: __m512i,
        two_p: __m512i,
        /// 2^52 mod p and its 52-bit Shoup companion.
        r52: __m512i,
        r52_s: __m512i,
        /// Shoup companion of 1: floor(2^52 / p).
        one_s: __m512i,
        mask: __m512i,
    }

    impl Reducer {
        #[inline]
        #[target_feature(enable = "avx512f")]
        fn new(p: &Modulus) -> Self {
            let q = p.value();
            let r52 = ((1u128 << 52) % q as u128) as u64;
            let s52 = |w: u64| (((w as u128) << 52) / q as u128) as u64;
            Self {
                p: _mm512_set1_epi64(q as i64),
                two_p: _mm512_set1_epi64(2 * q as i64),
                r52: _mm512_set1_epi64(r52 as i64),
                r52_s: _mm512_set1_epi64(s52(r52) as i64),
                one_s: _mm512_set1_epi64(s52(1) as i64),
                mask: _mm512_set1_epi64(MASK52 as i64),
            }
        }

        /// `a w mod p` in `[0, 2p)` for `a < 2^52`, `w < p`, `ws = floor(w 2^52 / p)`.
        #[inline]
        #[target_feature(enable = "avx512f,avx512ifma")]
        fn mul_shoup_lazy(&self, a: __m512i, w: __m512i, ws: __m512i) -> __m512i {
            let zero = _mm512_setzero_si512();
            let qhat = _mm512_madd52hi_epu64(zero, a, ws);
            let aw = _mm512_madd52lo_epu64(zero, a, w);
            let qq = _mm512_madd52lo_epu64(zero, qhat, self.p);
            // The true a w - qhat p lies in [0, 2p), so its value mod 2^52 is itself.
            _mm512_and_si512(_mm512_sub_epi64(aw, qq), self.mask)
        }

        /// `(hi 2^52 + lo) mod p` for `hi + lo / 2^52 < 2^52`.
        #[inline]
        #[target_feature(enable = "avx512f,avx512ifma")]
        fn reduce(&self, hi: __m512i, lo: __m512i) -> __m512i {
            let h = _mm512_add_epi64(hi, _mm512_srli_epi64::<52>(lo));
            let l = _mm512_and_si512(lo, self.mask);
            let x = _mm512_add_epi64(
                self.mul_shoup_lazy(h, self.r52, self.r52_s),
                self.mul_shoup_lazy(l, _mm512_set1_epi64(1), self.one_s),
            );
            let x = _mm512_min_epu64(x, _mm512_sub_epi64(x, self.two_p));
            _mm512_min_epu64(x, _mm512_sub_epi64(x, self.p))
        }
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn load(s: &[u64], i: usize) -> __m512i {
        // SAFETY: the caller guarantees i + 8 <= s.len(); unaligned loads are allowed.
        unsafe { _mm512_loadu_si512(s.as_ptr().add(i) as *const __m512i) }
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn store(s: &mut [u64], i: usize, v: __m512i) {
        // SAFETY: the caller guarantees i + 8 <= s.len(); unaligned stores are allowed.
        unsafe { _mm512_storeu_si512(s.as_mut_ptr().add(i) as *mut __m512i, v) }
    }

    /// # Safety
    /// AVX-512F + IFMA available; every slice of length `out.len()`, a multiple of 8; at most 15
    /// terms; `p` and all inputs below 2^50, weights below `p`.
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub(super) unsafe fn weighted_sum(out: &mut [u64], inputs: &[&[u64]], weights: &[u64], p: &Modulus) {
        let red = Reducer::new(p);
        let w: Vec<__m512i> = weights.iter().map(|&x| _mm512_set1_epi64(x as i64)).collect();
        let zero = _mm512_setzero_si512();
        for c in (0..out.len()).step_by(8) {
            let (mut lo, mut hi) = (zero, zero);
            for (x, &wi) in inputs.iter().zip(&w) {
                // SAFETY: c + 8 <= n = x.len().
                let v = unsafe { load(x, c) };
                lo = _mm512_madd52lo_epu64(lo, v, wi);
                hi = _mm512_madd52hi_epu64(hi, v, wi);
            }
            // SAFETY: c + 8 <= n = out.len().
            unsafe { store(out, c, red.reduce(hi, lo)) };
        }
    }

    /// # Safety
    /// As [`weighted_sum`] (all slices of length `out0.len()`).
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub(super) unsafe fn dot_pair(
        out0: &mut [u64],
        out1: &mut [u64],
        a: &[&[u64]],
        b: &[&[u64]],
        e: &[&[u64]],
        p: &Modulus,
    ) {
        let red = Reducer::new(p);
        let zero = _mm512_setzero_si512();
        for c in (0..out0.len()).step_by(8) {
            let (mut lo0, mut hi0, mut lo1, mut hi1) = (zero, zero, zero, zero);
            for ((ad, bd), ed) in a.iter().zip(b).zip(e) {
                // SAFETY: c + 8 <= n, the length of every slice.
                let (v, kb, ke) = unsafe { (load(ad, c), load(bd, c), load(ed, c)) };
                lo0 = _mm512_madd52lo_epu64(lo0, v, kb);
                hi0 = _mm512_madd52hi_epu64(hi0, v, kb);
                lo1 = _mm512_madd52lo_epu64(lo1, v, ke);
                hi1 = _mm512_madd52hi_epu64(hi1, v, ke);
            }
            // SAFETY: c + 8 <= n.
            unsafe {
                store(out0, c, red.reduce(hi0, lo0));
                store(out1, c, red.reduce(hi1, lo1));
            }
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

    /// Random limbs below `bound`, with the edge values 0 and `bound - 1` planted.
    fn limbs(count: usize, n: usize, bound: u64, rng: &mut ChaCha20Rng) -> Vec<Vec<u64>> {
        (0..count)
            .map(|_| {
                let mut v: Vec<u64> = (0..n).map(|_| rng.random_range(0..bound)).collect();
                v[0] = bound - 1;
                v[n - 1] = 0;
                if n > 9 {
                    v[9] = bound - 1;
                }
                v
            })
            .collect()
    }

    fn slices(v: &[Vec<u64>]) -> Vec<&[u64]> {
        v.iter().map(|l| l.as_slice()).collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// The dispatched weighted sum (IFMA where the CPU has it and the sizes allow) equals the
        /// scalar twin, which equals a big-integer-free reference `sum (x w mod p) mod p`.
        #[test]
        fn weighted_sum_matches_twin(terms in 1usize..40, bits in prop::sample::select(vec![30u32, 45, 50, 55, 61]), log_n in 3u32..9, seed: u64) {
            let n = 1usize << log_n;
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            let p = Modulus::new(ntt_primes_below(bits, n, 1).unwrap()[0]).unwrap();
            let input_bound = 1u64 << bits;
            let xs = limbs(terms, n, input_bound, &mut rng);
            let mut ws: Vec<u64> = (0..terms).map(|_| rng.random_range(0..p.value())).collect();
            ws[0] = p.value() - 1;
            let refs = slices(&xs);
            let mut fast = vec![0; n];
            let mut twin = vec![0; n];
            weighted_sum(&mut fast, &refs, &ws, &p, bits);
            weighted_sum_scalar(&mut twin, &refs, &ws, &p);
            prop_assert_eq!(&fast, &twin);
            for c in 0..n {
                let expect = xs.iter().zip(&ws).fold(0u64, |acc, (x, &w)| p.add(acc, p.mul(x[c], w)));
                prop_assert_eq!(twin[c], expect);
            }
        }

        /// The dispatched pair of inner products equals the scalar twin and the reference, with and
        /// without a permutation of the first operand.
        #[test]
        fn dot_pair_matches_twin(terms in 1usize..40, bits in prop::sample::select(vec![30u32, 45, 50, 55, 61]), log_n in 3u32..9, permute: bool, seed: u64) {
            let n = 1usize << log_n;
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            let p = Modulus::new(ntt_primes_below(bits, n, 1).unwrap()[0]).unwrap();
            let a = limbs(terms, n, p.value(), &mut rng);
            let b = limbs(terms, n, p.value(), &mut rng);
            let e = limbs(terms, n, p.value(), &mut rng);
            let perm = permute.then(|| {
                let mut v: Vec<usize> = (0..n).collect();
                for i in (1..n).rev() {
                    v.swap(i, rng.random_range(0..=i));
                }
                Permutation::new(v).unwrap()
            });
            let (ra, rb, re) = (slices(&a), slices(&b), slices(&e));
            let (mut f0, mut f1, mut t0, mut t1) = (vec![0; n], vec![0; n], vec![0; n], vec![0; n]);
            dot_pair(&mut f0, &mut f1, &ra, perm.as_ref(), &rb, &re, &p, bits);
            dot_pair_scalar(&mut t0, &mut t1, &ra, perm.as_ref(), &rb, &re, &p);
            prop_assert_eq!(&f0, &t0);
            prop_assert_eq!(&f1, &t1);
            for c in 0..n {
                let s = perm.as_ref().map_or(c, |q| q.as_slice()[c]);
                let e0 = (0..terms).fold(0u64, |acc, d| p.add(acc, p.mul(a[d][s], b[d][c])));
                let e1 = (0..terms).fold(0u64, |acc, d| p.add(acc, p.mul(a[d][s], e[d][c])));
                prop_assert_eq!((t0[c], t1[c]), (e0, e1));
            }
        }
    }

    /// The property tests above exercise the IFMA kernels on a CPU that has them.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn ifma_is_chosen_where_it_applies() {
        let p = Modulus::new(ntt_primes_below(50, 64, 1).unwrap()[0]).unwrap();
        let available = Backend::detect() == Backend::Avx512Ifma;
        assert_eq!(ifma_applies(&p, 50, 7, 64), available);
        assert!(!ifma_applies(&p, 51, 7, 64));
        assert!(!ifma_applies(&p, 50, 16, 64));
        let big = Modulus::new(ntt_primes_below(55, 64, 1).unwrap()[0]).unwrap();
        assert!(!ifma_applies(&big, 50, 7, 64));
    }

    #[test]
    fn permutations_are_checked() {
        assert!(Permutation::new(vec![1, 0, 2]).is_some());
        assert!(Permutation::new(vec![1, 1, 2]).is_none());
        assert!(Permutation::new(vec![0, 3, 1]).is_none());
        assert!(Permutation::new(vec![]).is_some());
    }
}
