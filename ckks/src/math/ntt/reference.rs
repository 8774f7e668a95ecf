//! Slow, obviously-correct references for the NTT: schoolbook negacyclic product and direct evaluation.

use crate::math::modulus::Modulus;

/// `a * b mod (X^N + 1, q)` by the O(N^2) schoolbook method.
pub fn negacyclic_mul(a: &[u64], b: &[u64], q: &Modulus) -> Vec<u64> {
    let n = a.len();
    let mut out = vec![0u64; n];
    for (i, &ai) in a.iter().enumerate() {
        for (j, &bj) in b.iter().enumerate() {
            let p = q.mul(ai, bj);
            let k = i + j;
            if k < n {
                out[k] = q.add(out[k], p);
            } else {
                out[k - n] = q.sub(out[k - n], p);
            }
        }
    }
    out
}

/// Direct evaluation `a(x) mod q` by Horner's rule.
pub fn evaluate(a: &[u64], x: u64, q: &Modulus) -> u64 {
    a.iter().rev().fold(0, |acc, &c| q.add(q.mul(acc, x), c))
}
