//! AVX-512 IFMA NTT kernels: eight 64-bit lanes and the 52-bit multiply-add, for primes below 2^50
//! (lazy values stay below 4q < 2^52). The Shoup companion is `floor(w 2^52 / q)`: three IFMA
//! instructions per eight products. Twin of [`super::scalar`], bit for bit.

use super::{IfmaConstants, NttTable};
use std::arch::x86_64::*;

/// `a * w mod q` in `[0, 2q)` for `a < 2^52`, `ws = floor(w 2^52 / q)`.
#[inline]
#[target_feature(enable = "avx512f,avx512ifma")]
fn mul_shoup_lazy(a: __m512i, w: __m512i, ws: __m512i, q: __m512i) -> __m512i {
    let zero = _mm512_setzero_si512();
    let qhat = _mm512_madd52hi_epu64(zero, a, ws);
    let aw = _mm512_madd52lo_epu64(zero, a, w);
    let qq = _mm512_madd52lo_epu64(zero, qhat, q);
    // The true a*w - qhat*q lies in [0, 2q), so its value mod 2^52 is itself.
    _mm512_and_si512(_mm512_sub_epi64(aw, qq), _mm512_set1_epi64((1i64 << 52) - 1))
}

/// `x - m` where `x >= m`, else `x` (unsigned min of x and the wrapped difference).
#[inline]
#[target_feature(enable = "avx512f")]
fn csub(x: __m512i, m: __m512i) -> __m512i {
    _mm512_min_epu64(x, _mm512_sub_epi64(x, m))
}

#[inline]
#[target_feature(enable = "avx512f,avx512ifma")]
fn fwd_butterfly(
    x: __m512i,
    y: __m512i,
    w: __m512i,
    ws: __m512i,
    q: __m512i,
    two_q: __m512i,
) -> (__m512i, __m512i) {
    let u = csub(x, two_q);
    let v = mul_shoup_lazy(y, w, ws, q);
    (
        _mm512_add_epi64(u, v),
        _mm512_sub_epi64(_mm512_add_epi64(u, two_q), v),
    )
}

#[inline]
#[target_feature(enable = "avx512f,avx512ifma")]
fn inv_butterfly(
    x: __m512i,
    y: __m512i,
    w: __m512i,
    ws: __m512i,
    q: __m512i,
    two_q: __m512i,
) -> (__m512i, __m512i) {
    let u = csub(_mm512_add_epi64(x, y), two_q);
    let v = mul_shoup_lazy(_mm512_sub_epi64(_mm512_add_epi64(x, two_q), y), w, ws, q);
    (u, v)
}

#[inline]
#[target_feature(enable = "avx512f")]
fn load(s: &[u64], i: usize) -> __m512i {
    debug_assert!(i + 8 <= s.len());
    // SAFETY: callers index within the slice (i + 8 <= len); unaligned loads are allowed.
    unsafe { _mm512_loadu_si512(s.as_ptr().add(i) as *const __m512i) }
}

#[inline]
#[target_feature(enable = "avx512f")]
fn store(s: &mut [u64], i: usize, v: __m512i) {
    debug_assert!(i + 8 <= s.len());
    // SAFETY: callers index within the slice (i + 8 <= len); unaligned stores are allowed.
    unsafe { _mm512_storeu_si512(s.as_mut_ptr().add(i) as *mut __m512i, v) }
}

/// Lane selectors for the stages of half-width 1, 2, 4 over 16 consecutive coefficients held in two
/// vectors: (X, Y) gather the butterfly operands in butterfly order, (lo, hi) scatter them back.
#[inline]
#[target_feature(enable = "avx512f")]
fn selectors(log_t: usize) -> [__m512i; 4] {
    let idx = |v: [i64; 8]| _mm512_set_epi64(v[7], v[6], v[5], v[4], v[3], v[2], v[1], v[0]);
    match log_t {
        0 => [
            idx([0, 2, 4, 6, 8, 10, 12, 14]),
            idx([1, 3, 5, 7, 9, 11, 13, 15]),
            idx([0, 8, 1, 9, 2, 10, 3, 11]),
            idx([4, 12, 5, 13, 6, 14, 7, 15]),
        ],
        1 => [
            idx([0, 1, 4, 5, 8, 9, 12, 13]),
            idx([2, 3, 6, 7, 10, 11, 14, 15]),
            idx([0, 1, 8, 9, 2, 3, 10, 11]),
            idx([4, 5, 12, 13, 6, 7, 14, 15]),
        ],
        _ => [
            idx([0, 1, 2, 3, 8, 9, 10, 11]),
            idx([4, 5, 6, 7, 12, 13, 14, 15]),
            idx([0, 1, 2, 3, 8, 9, 10, 11]),
            idx([4, 5, 6, 7, 12, 13, 14, 15]),
        ],
    }
}

/// One stage of half-width `2^log_t < 8` over all blocks of 16 coefficients.
#[inline]
#[target_feature(enable = "avx512f,avx512ifma")]
fn small_stage(
    a: &mut [u64],
    log_t: usize,
    w: &[u64],
    ws: &[u64],
    q: __m512i,
    two_q: __m512i,
    forward: bool,
) {
    let [sx, sy, slo, shi] = selectors(log_t);
    for (k, chunk) in a.chunks_exact_mut(16).enumerate() {
        let (v0, v1) = (load(chunk, 0), load(chunk, 8));
        let x = _mm512_permutex2var_epi64(v0, sx, v1);
        let y = _mm512_permutex2var_epi64(v0, sy, v1);
        let (wv, wsv) = (load(w, 8 * k), load(ws, 8 * k));
        let (x, y) = if forward {
            fwd_butterfly(x, y, wv, wsv, q, two_q)
        } else {
            inv_butterfly(x, y, wv, wsv, q, two_q)
        };
        store(chunk, 0, _mm512_permutex2var_epi64(x, slo, y));
        store(chunk, 8, _mm512_permutex2var_epi64(x, shi, y));
    }
}

/// Forward NTT, the twin of [`super::scalar::forward`].
///
/// # Safety
/// The CPU must support AVX-512F and IFMA, `q < 2^50`, `c` built for `t`, and `a.len() == t.n >= 16`.
#[target_feature(enable = "avx512f,avx512ifma")]
pub unsafe fn forward(t: &NttTable, c: &IfmaConstants, a: &mut [u64]) {
    let n = a.len();
    let qs = t.q.value();
    let q = _mm512_set1_epi64(qs as i64);
    let two_q = _mm512_set1_epi64(2 * qs as i64);
    let mut gap = n;
    let mut m = 1;
    while gap > 8 {
        gap >>= 1;
        for (i, chunk) in a.chunks_exact_mut(2 * gap).enumerate() {
            let w = _mm512_set1_epi64(t.fwd_w[m + i] as i64);
            let ws = _mm512_set1_epi64(c.fwd_ws[m + i] as i64);
            let (lo, hi) = chunk.split_at_mut(gap);
            for j in (0..gap).step_by(8) {
                let (x, y) = fwd_butterfly(load(lo, j), load(hi, j), w, ws, q, two_q);
                store(lo, j, x);
                store(hi, j, y);
            }
        }
        m <<= 1;
    }
    for log_t in [2, 1, 0] {
        small_stage(
            a,
            log_t,
            &t.small_fwd[log_t],
            &c.small_fwd_s[log_t],
            q,
            two_q,
            true,
        );
    }
    for j in (0..n).step_by(8) {
        store(a, j, csub(csub(load(a, j), two_q), q));
    }
}

/// Inverse NTT, the twin of [`super::scalar::inverse`].
///
/// # Safety
/// As [`forward`].
#[target_feature(enable = "avx512f,avx512ifma")]
pub unsafe fn inverse(t: &NttTable, c: &IfmaConstants, a: &mut [u64]) {
    let n = a.len();
    let qs = t.q.value();
    let q = _mm512_set1_epi64(qs as i64);
    let two_q = _mm512_set1_epi64(2 * qs as i64);
    for log_t in [0, 1, 2] {
        // The stage of half-width n/2 is the merged last stage below.
        if (2usize << log_t) >= n {
            break;
        }
        small_stage(
            a,
            log_t,
            &t.small_inv[log_t],
            &c.small_inv_s[log_t],
            q,
            two_q,
            false,
        );
    }
    let mut gap = 8;
    let mut m = n / 8;
    while m > 2 {
        let h = m / 2;
        for (i, chunk) in a.chunks_exact_mut(2 * gap).enumerate() {
            let w = _mm512_set1_epi64(t.inv_w[h + i] as i64);
            let ws = _mm512_set1_epi64(c.inv_ws[h + i] as i64);
            let (lo, hi) = chunk.split_at_mut(gap);
            for j in (0..gap).step_by(8) {
                let (x, y) = inv_butterfly(load(lo, j), load(hi, j), w, ws, q, two_q);
                store(lo, j, x);
                store(hi, j, y);
            }
        }
        gap <<= 1;
        m = h;
    }
    // Last stage (half-width n/2 >= 8), merged with the scaling by n^-1.
    let (lo, hi) = a.split_at_mut(n / 2);
    let ni = _mm512_set1_epi64(t.n_inv as i64);
    let ni_s = _mm512_set1_epi64(c.n_inv_s as i64);
    let niw = _mm512_set1_epi64(t.n_inv_w as i64);
    let niw_s = _mm512_set1_epi64(c.n_inv_w_s as i64);
    for j in (0..n / 2).step_by(8) {
        let (x, y) = (load(lo, j), load(hi, j));
        let s = _mm512_add_epi64(x, y);
        let d = _mm512_sub_epi64(_mm512_add_epi64(x, two_q), y);
        store(lo, j, csub(mul_shoup_lazy(s, ni, ni_s, q), q));
        store(hi, j, csub(mul_shoup_lazy(d, niw, niw_s, q), q));
    }
}
