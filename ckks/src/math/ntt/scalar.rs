//! The scalar NTT kernels: the reference twin of the vector kernels, and the fallback everywhere.
//! Values stay lazily in `[0, 4q)` (forward) or `[0, 2q)` (inverse) between stages (Harvey 2014).

use super::NttTable;

#[inline(always)]
fn mul_shoup_lazy(a: u64, w: u64, ws: u64, q: u64) -> u64 {
    let qhat = ((a as u128 * ws as u128) >> 64) as u64;
    a.wrapping_mul(w).wrapping_sub(qhat.wrapping_mul(q))
}

/// Forward negacyclic NTT (Cooley-Tukey, natural order in, bit-reversed out), output in `[0, q)`.
pub fn forward(t: &NttTable, a: &mut [u64]) {
    let q = t.q.value();
    let two_q = 2 * q;
    let n = a.len();
    let mut gap = n;
    let mut m = 1;
    while m < n {
        gap >>= 1;
        for (i, chunk) in a.chunks_exact_mut(2 * gap).enumerate() {
            let (w, ws) = (t.fwd_w[m + i], t.fwd_ws[m + i]);
            let (lo, hi) = chunk.split_at_mut(gap);
            for (x, y) in lo.iter_mut().zip(hi.iter_mut()) {
                let u = if *x >= two_q { *x - two_q } else { *x };
                let v = mul_shoup_lazy(*y, w, ws, q);
                *x = u + v;
                *y = u + two_q - v;
            }
        }
        m <<= 1;
    }
    for x in a.iter_mut() {
        let mut v = *x;
        if v >= two_q {
            v -= two_q;
        }
        if v >= q {
            v -= q;
        }
        *x = v;
    }
}

/// Inverse negacyclic NTT (Gentleman-Sande, bit-reversed in, natural out, scaled by `n^-1`).
/// Input in `[0, 2q)`, output in `[0, q)`.
pub fn inverse(t: &NttTable, a: &mut [u64]) {
    let q = t.q.value();
    let two_q = 2 * q;
    let n = a.len();
    let mut gap = 1;
    let mut m = n;
    while m > 2 {
        let h = m / 2;
        for (i, chunk) in a.chunks_exact_mut(2 * gap).enumerate() {
            let (w, ws) = (t.inv_w[h + i], t.inv_ws[h + i]);
            let (lo, hi) = chunk.split_at_mut(gap);
            for (x, y) in lo.iter_mut().zip(hi.iter_mut()) {
                let mut u = *x + *y;
                if u >= two_q {
                    u -= two_q;
                }
                let v = mul_shoup_lazy(*x + two_q - *y, w, ws, q);
                *x = u;
                *y = v;
            }
        }
        gap <<= 1;
        m = h;
    }
    // Last stage merged with the scaling by n^-1.
    let (lo, hi) = a.split_at_mut(n / 2);
    for (x, y) in lo.iter_mut().zip(hi.iter_mut()) {
        let s = *x + *y;
        let d = *x + two_q - *y;
        *x = t.q.mul_shoup(s, t.n_inv, t.n_inv_s);
        *y = t.q.mul_shoup(d, t.n_inv_w, t.n_inv_w_s);
    }
}
