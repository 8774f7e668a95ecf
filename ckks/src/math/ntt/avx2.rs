//! AVX2 NTT kernels: four 64-bit lanes. AVX2 has no 64x64->128 multiply, so the Shoup product is
//! assembled from 32x32->64 multiplies (ten per four butterflies); this supports every modulus below
//! 2^61, which the IFMA kernel does not. Twin of [`super::scalar`], bit for bit.

use super::NttTable;
use std::arch::x86_64::*;

#[inline]
#[target_feature(enable = "avx2")]
fn shr32(x: __m256i) -> __m256i {
    _mm256_srli_epi64::<32>(x)
}

/// Low 64 bits of `a * b` per lane.
#[inline]
#[target_feature(enable = "avx2")]
fn mul_lo(a: __m256i, b: __m256i) -> __m256i {
    let cross = _mm256_add_epi64(_mm256_mul_epu32(a, shr32(b)), _mm256_mul_epu32(shr32(a), b));
    _mm256_add_epi64(_mm256_mul_epu32(a, b), _mm256_slli_epi64::<32>(cross))
}

/// High 64 bits of `a * b` per lane.
#[inline]
#[target_feature(enable = "avx2")]
fn mul_hi(a: __m256i, b: __m256i) -> __m256i {
    let mask = _mm256_set1_epi64x(0xffff_ffff);
    let (a_hi, b_hi) = (shr32(a), shr32(b));
    let p00 = _mm256_mul_epu32(a, b);
    let p01 = _mm256_mul_epu32(a, b_hi);
    let p10 = _mm256_mul_epu32(a_hi, b);
    let p11 = _mm256_mul_epu32(a_hi, b_hi);
    let mid = _mm256_add_epi64(
        _mm256_add_epi64(shr32(p00), _mm256_and_si256(p01, mask)),
        _mm256_and_si256(p10, mask),
    );
    _mm256_add_epi64(
        _mm256_add_epi64(p11, shr32(p01)),
        _mm256_add_epi64(shr32(p10), shr32(mid)),
    )
}

/// `a * w mod q` in `[0, 2q)` (Shoup, `ws = floor(w 2^64 / q)`).
#[inline]
#[target_feature(enable = "avx2")]
fn mul_shoup_lazy(a: __m256i, w: __m256i, ws: __m256i, q: __m256i) -> __m256i {
    let qhat = mul_hi(a, ws);
    _mm256_sub_epi64(mul_lo(a, w), mul_lo(qhat, q))
}

/// `x - m` where `x >= m`, else `x`. All values are below 2^63, so the signed compare is exact.
#[inline]
#[target_feature(enable = "avx2")]
fn csub(x: __m256i, m: __m256i) -> __m256i {
    let lt = _mm256_cmpgt_epi64(m, x);
    _mm256_sub_epi64(x, _mm256_andnot_si256(lt, m))
}

#[inline]
#[target_feature(enable = "avx2")]
fn fwd_butterfly(
    x: __m256i,
    y: __m256i,
    w: __m256i,
    ws: __m256i,
    q: __m256i,
    two_q: __m256i,
) -> (__m256i, __m256i) {
    let u = csub(x, two_q);
    let v = mul_shoup_lazy(y, w, ws, q);
    (
        _mm256_add_epi64(u, v),
        _mm256_sub_epi64(_mm256_add_epi64(u, two_q), v),
    )
}

#[inline]
#[target_feature(enable = "avx2")]
fn inv_butterfly(
    x: __m256i,
    y: __m256i,
    w: __m256i,
    ws: __m256i,
    q: __m256i,
    two_q: __m256i,
) -> (__m256i, __m256i) {
    let u = csub(_mm256_add_epi64(x, y), two_q);
    let v = mul_shoup_lazy(_mm256_sub_epi64(_mm256_add_epi64(x, two_q), y), w, ws, q);
    (u, v)
}

#[inline]
#[target_feature(enable = "avx2")]
fn load(s: &[u64], i: usize) -> __m256i {
    debug_assert!(i + 4 <= s.len());
    // SAFETY: callers index within the slice (i + 4 <= len); unaligned loads are allowed.
    unsafe { _mm256_loadu_si256(s.as_ptr().add(i) as *const __m256i) }
}

#[inline]
#[target_feature(enable = "avx2")]
fn store(s: &mut [u64], i: usize, v: __m256i) {
    debug_assert!(i + 4 <= s.len());
    // SAFETY: callers index within the slice (i + 4 <= len); unaligned stores are allowed.
    unsafe { _mm256_storeu_si256(s.as_mut_ptr().add(i) as *mut __m256i, v) }
}

/// Splits two vectors holding 8 consecutive coefficients into the X and Y operands of the four
/// butterflies of a stage with half-width `t` (1 or 2). For t = 1 the lanes come out in butterfly
/// order (0, 2, 1, 3), which `twiddles_t1` matches.
#[inline]
#[target_feature(enable = "avx2")]
fn split(v0: __m256i, v1: __m256i, t: usize) -> (__m256i, __m256i) {
    if t == 1 {
        (_mm256_unpacklo_epi64(v0, v1), _mm256_unpackhi_epi64(v0, v1))
    } else {
        (
            _mm256_permute2x128_si256::<0x20>(v0, v1),
            _mm256_permute2x128_si256::<0x31>(v0, v1),
        )
    }
}

/// Inverse of [`split`].
#[inline]
#[target_feature(enable = "avx2")]
fn join(x: __m256i, y: __m256i, t: usize) -> (__m256i, __m256i) {
    if t == 1 {
        (_mm256_unpacklo_epi64(x, y), _mm256_unpackhi_epi64(x, y))
    } else {
        (
            _mm256_permute2x128_si256::<0x20>(x, y),
            _mm256_permute2x128_si256::<0x31>(x, y),
        )
    }
}

/// Loads the per-butterfly twiddles of butterflies `b..b+4` in the lane order `split` produces.
#[inline]
#[target_feature(enable = "avx2")]
fn small_twiddles(w: &[u64], b: usize, t: usize) -> __m256i {
    let v = load(w, b);
    if t == 1 {
        _mm256_permute4x64_epi64::<0b11_01_10_00>(v)
    } else {
        v
    }
}

/// Forward NTT, the twin of [`super::scalar::forward`].
///
/// # Safety
/// The CPU must support AVX2, and `a.len() == t.n >= 8`.
#[target_feature(enable = "avx2")]
pub unsafe fn forward(t: &NttTable, a: &mut [u64]) {
    let n = a.len();
    let qs = t.q.value();
    let q = _mm256_set1_epi64x(qs as i64);
    let two_q = _mm256_set1_epi64x(2 * qs as i64);
    let mut gap = n;
    let mut m = 1;
    while gap > 4 {
        gap >>= 1;
        for (i, chunk) in a.chunks_exact_mut(2 * gap).enumerate() {
            let w = _mm256_set1_epi64x(t.fwd_w[m + i] as i64);
            let ws = _mm256_set1_epi64x(t.fwd_ws[m + i] as i64);
            let (lo, hi) = chunk.split_at_mut(gap);
            for j in (0..gap).step_by(4) {
                let (x, y) = fwd_butterfly(load(lo, j), load(hi, j), w, ws, q, two_q);
                store(lo, j, x);
                store(hi, j, y);
            }
        }
        m <<= 1;
    }
    // Half-widths 2 and 1: each block of 8 coefficients holds four butterflies.
    for (tw, tws, half) in [
        (&t.small_fwd[1], &t.small_fwd_s[1], 2),
        (&t.small_fwd[0], &t.small_fwd_s[0], 1),
    ] {
        for (k, chunk) in a.chunks_exact_mut(8).enumerate() {
            let (x, y) = split(load(chunk, 0), load(chunk, 4), half);
            let w = small_twiddles(tw, 4 * k, half);
            let ws = small_twiddles(tws, 4 * k, half);
            let (x, y) = fwd_butterfly(x, y, w, ws, q, two_q);
            let (v0, v1) = join(x, y, half);
            store(chunk, 0, v0);
            store(chunk, 4, v1);
        }
    }
    for j in (0..n).step_by(4) {
        store(a, j, csub(csub(load(a, j), two_q), q));
    }
}

/// Inverse NTT, the twin of [`super::scalar::inverse`].
///
/// # Safety
/// The CPU must support AVX2, and `a.len() == t.n >= 8`.
#[target_feature(enable = "avx2")]
pub unsafe fn inverse(t: &NttTable, a: &mut [u64]) {
    let n = a.len();
    let qs = t.q.value();
    let q = _mm256_set1_epi64x(qs as i64);
    let two_q = _mm256_set1_epi64x(2 * qs as i64);
    for (tw, tws, half) in [
        (&t.small_inv[0], &t.small_inv_s[0], 1),
        (&t.small_inv[1], &t.small_inv_s[1], 2),
    ] {
        if 2 * half >= n {
            break;
        }
        for (k, chunk) in a.chunks_exact_mut(8).enumerate() {
            let (x, y) = split(load(chunk, 0), load(chunk, 4), half);
            let w = small_twiddles(tw, 4 * k, half);
            let ws = small_twiddles(tws, 4 * k, half);
            let (x, y) = inv_butterfly(x, y, w, ws, q, two_q);
            let (v0, v1) = join(x, y, half);
            store(chunk, 0, v0);
            store(chunk, 4, v1);
        }
    }
    let mut gap = 4;
    let mut m = n / 4;
    while m > 2 {
        let h = m / 2;
        for (i, chunk) in a.chunks_exact_mut(2 * gap).enumerate() {
            let w = _mm256_set1_epi64x(t.inv_w[h + i] as i64);
            let ws = _mm256_set1_epi64x(t.inv_ws[h + i] as i64);
            let (lo, hi) = chunk.split_at_mut(gap);
            for j in (0..gap).step_by(4) {
                let (x, y) = inv_butterfly(load(lo, j), load(hi, j), w, ws, q, two_q);
                store(lo, j, x);
                store(hi, j, y);
            }
        }
        gap <<= 1;
        m = h;
    }
    // Last stage (half-width n/2 >= 4), merged with the scaling by n^-1.
    let (lo, hi) = a.split_at_mut(n / 2);
    let ni = _mm256_set1_epi64x(t.n_inv as i64);
    let ni_s = _mm256_set1_epi64x(t.n_inv_s as i64);
    let niw = _mm256_set1_epi64x(t.n_inv_w as i64);
    let niw_s = _mm256_set1_epi64x(t.n_inv_w_s as i64);
    for j in (0..n / 2).step_by(4) {
        let (x, y) = (load(lo, j), load(hi, j));
        let s = _mm256_add_epi64(x, y);
        let d = _mm256_sub_epi64(_mm256_add_epi64(x, two_q), y);
        store(lo, j, csub(mul_shoup_lazy(s, ni, ni_s, q), q));
        store(hi, j, csub(mul_shoup_lazy(d, niw, niw_s, q), q));
    }
}
