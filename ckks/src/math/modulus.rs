//! Word-size modular arithmetic for moduli below 2^61: Barrett reduction for general products,
//! Shoup multiplication for products by a fixed operand, and lazy variants that stay in `[0, 2q)`.
//!
//! References:
//! - P. Barrett, "Implementing the RSA public key encryption algorithm on a standard DSP", CRYPTO 1986.
//! - V. Shoup, NTL (`MulModPrecon`); D. Harvey, "Faster arithmetic for number-theoretic transforms",
//!   J. Symb. Comp. 2014 (<https://arxiv.org/abs/1205.2926>): lazy butterflies in `[0, 4q)`.

use crate::error::{Error, Result};

/// Largest supported modulus size in bits. Lazy NTT butterflies keep values in `[0, 4q)`, which needs
/// `4q < 2^64`; 61 bits leaves one spare bit so that sums of two lazy values never wrap either.
pub const MAX_MODULUS_BITS: u32 = 61;

/// A modulus `q` with `2 <= q < 2^61` and its precomputed reduction constants.
#[derive(Clone, Copy, Debug)]
pub struct Modulus {
    q: u64,
    /// floor(2^128 / q), split in 64-bit halves (hi, lo).
    barrett_hi: u64,
    barrett_lo: u64,
    /// floor(2^64 / q), for reducing a single word.
    barrett_word: u64,
}

impl PartialEq for Modulus {
    fn eq(&self, other: &Self) -> bool {
        // Every other field derives from q; a new field must be derived from q too.
        let Self {
            q,
            barrett_hi: _,
            barrett_lo: _,
            barrett_word: _,
        } = self;
        *q == other.q
    }
}
impl Eq for Modulus {}

impl Modulus {
    /// Builds the modulus `q`.
    ///
    /// # Errors
    /// [`Error::InvalidModulus`] unless `2 <= q < 2^61`.
    pub fn new(q: u64) -> Result<Self> {
        if q < 2 {
            return Err(Error::InvalidModulus {
                q,
                reason: "must be at least 2",
            });
        }
        if q >> MAX_MODULUS_BITS != 0 {
            return Err(Error::InvalidModulus {
                q,
                reason: "must be below 2^61",
            });
        }
        // floor(2^128 / q) = floor((2^128 - 1) / q) unless q divides 2^128, i.e. q is a power of two.
        let mut m = u128::MAX / q as u128;
        if q.is_power_of_two() {
            m += 1;
        }
        let barrett_word = ((1u128 << 64) / q as u128) as u64;
        Ok(Self {
            q,
            barrett_hi: (m >> 64) as u64,
            barrett_lo: m as u64,
            barrett_word,
        })
    }

    /// The modulus `q`.
    #[inline]
    pub fn value(&self) -> u64 {
        self.q
    }

    /// Number of bits of `q`.
    #[inline]
    pub fn bits(&self) -> u32 {
        64 - self.q.leading_zeros()
    }

    /// `a + b mod q` for `a, b < q`.
    #[inline]
    pub fn add(&self, a: u64, b: u64) -> u64 {
        debug_assert!(a < self.q && b < self.q);
        let s = a + b;
        if s >= self.q {
            s - self.q
        } else {
            s
        }
    }

    /// `a - b mod q` for `a, b < q`.
    #[inline]
    pub fn sub(&self, a: u64, b: u64) -> u64 {
        debug_assert!(a < self.q && b < self.q);
        if a >= b {
            a - b
        } else {
            a + self.q - b
        }
    }

    /// `-a mod q` for `a < q`.
    #[inline]
    pub fn neg(&self, a: u64) -> u64 {
        debug_assert!(a < self.q);
        if a == 0 {
            0
        } else {
            self.q - a
        }
    }

    /// `a mod q` for any 64-bit `a` (Barrett with floor(2^64/q)).
    #[inline]
    pub fn reduce(&self, a: u64) -> u64 {
        let qhat = ((a as u128 * self.barrett_word as u128) >> 64) as u64;
        // qhat <= floor(a/q) <= qhat + 2 for q >= 2.
        let mut r = a - qhat * self.q;
        if r >= self.q {
            r -= self.q;
        }
        if r >= self.q {
            r -= self.q;
        }
        r
    }

    /// `x mod q` for any 128-bit `x` (Barrett with floor(2^128/q)).
    #[inline]
    pub fn reduce_u128(&self, x: u128) -> u64 {
        let (x1, x0) = ((x >> 64) as u64, x as u64);
        let (m1, m0) = (self.barrett_hi, self.barrett_lo);
        let p00 = x0 as u128 * m0 as u128;
        let p01 = x0 as u128 * m1 as u128;
        let p10 = x1 as u128 * m0 as u128;
        // Only the low 64 bits of floor(x * m / 2^128) matter: r is computed mod 2^64 and is < 3q.
        let mid = (p00 >> 64) + (p01 as u64 as u128) + (p10 as u64 as u128);
        let qhat = (x1.wrapping_mul(m1))
            .wrapping_add((p01 >> 64) as u64)
            .wrapping_add((p10 >> 64) as u64)
            .wrapping_add((mid >> 64) as u64);
        let mut r = x0.wrapping_sub(qhat.wrapping_mul(self.q));
        if r >= self.q {
            r -= self.q;
        }
        if r >= self.q {
            r -= self.q;
        }
        r
    }

    /// `a * b mod q` for any 64-bit `a, b`.
    #[inline]
    pub fn mul(&self, a: u64, b: u64) -> u64 {
        self.reduce_u128(a as u128 * b as u128)
    }

    /// `a * b + c mod q` for any 64-bit `a, b, c`.
    #[inline]
    pub fn mul_add(&self, a: u64, b: u64, c: u64) -> u64 {
        self.reduce_u128(a as u128 * b as u128 + c as u128)
    }

    /// The Shoup companion `floor(w * 2^64 / q)` of a fixed multiplier `w < q`.
    #[inline]
    pub fn shoup(&self, w: u64) -> u64 {
        debug_assert!(w < self.q);
        (((w as u128) << 64) / self.q as u128) as u64
    }

    /// `a * w mod q` in `[0, 2q)`, for any 64-bit `a` and `w < q` with `w_shoup = self.shoup(w)`.
    #[inline]
    pub fn mul_shoup_lazy(&self, a: u64, w: u64, w_shoup: u64) -> u64 {
        let qhat = ((a as u128 * w_shoup as u128) >> 64) as u64;
        a.wrapping_mul(w).wrapping_sub(qhat.wrapping_mul(self.q))
    }

    /// `a * w mod q` in `[0, q)`, for any 64-bit `a` and `w < q` with `w_shoup = self.shoup(w)`.
    #[inline]
    pub fn mul_shoup(&self, a: u64, w: u64, w_shoup: u64) -> u64 {
        let r = self.mul_shoup_lazy(a, w, w_shoup);
        if r >= self.q {
            r - self.q
        } else {
            r
        }
    }

    /// `a^e mod q`.
    pub fn pow(&self, a: u64, mut e: u64) -> u64 {
        let mut base = self.reduce(a);
        let mut acc = 1 % self.q;
        while e > 0 {
            if e & 1 == 1 {
                acc = self.mul(acc, base);
            }
            base = self.mul(base, base);
            e >>= 1;
        }
        acc
    }

    /// `a^-1 mod q` by the extended Euclidean algorithm (q need not be prime).
    ///
    /// # Errors
    /// [`Error::OutOfRange`] when `a` is not invertible modulo `q`.
    pub fn inv(&self, a: u64) -> Result<u64> {
        let (mut r0, mut r1) = (self.q as i128, self.reduce(a) as i128);
        let (mut t0, mut t1) = (0i128, 1i128);
        while r1 != 0 {
            let k = r0 / r1;
            (r0, r1) = (r1, r0 - k * r1);
            (t0, t1) = (t1, t0 - k * t1);
        }
        if r0 != 1 {
            return Err(Error::OutOfRange {
                reason: "value is not invertible modulo q",
            });
        }
        Ok(t0.rem_euclid(self.q as i128) as u64)
    }

    /// The residue of a signed integer, `x mod q` in `[0, q)`.
    #[inline]
    pub fn reduce_i64(&self, x: i64) -> u64 {
        let r = self.reduce(x.unsigned_abs());
        if x < 0 {
            self.neg(r)
        } else {
            r
        }
    }

    /// The residue of a signed 128-bit integer, `x mod q` in `[0, q)`.
    #[inline]
    pub fn reduce_i128(&self, x: i128) -> u64 {
        let r = self.reduce_u128(x.unsigned_abs());
        if x < 0 {
            self.neg(r)
        } else {
            r
        }
    }

    /// The centered representative of `a < q`, in `(-q/2, q/2]`.
    #[inline]
    pub fn center(&self, a: u64) -> i64 {
        debug_assert!(a < self.q);
        if a > self.q / 2 {
            -((self.q - a) as i64)
        } else {
            a as i64
        }
    }

    /// Reduces every element of `a` (any 64-bit values) into `[0, q)`.
    pub fn reduce_vec(&self, a: &mut [u64]) {
        for x in a.iter_mut() {
            *x = self.reduce(*x);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn moduli() -> impl Strategy<Value = u64> {
        prop_oneof![
            2u64..1000,
            (1u64 << 20)..(1u64 << 21),
            (1u64 << 40)..(1u64 << 41),
            ((1u64 << 61) - 1000)..(1u64 << 61),
            (2u64..(1u64 << 61)),
        ]
    }

    #[test]
    fn refuses_out_of_range() {
        assert!(matches!(Modulus::new(0), Err(Error::InvalidModulus { .. })));
        assert!(matches!(Modulus::new(1), Err(Error::InvalidModulus { .. })));
        assert!(matches!(Modulus::new(1 << 61), Err(Error::InvalidModulus { .. })));
        assert!(Modulus::new((1 << 61) - 1).is_ok());
        assert!(Modulus::new(1 << 40).is_ok());
    }

    proptest! {
        #[test]
        fn barrett_matches_u128_remainder(q in moduli(), a: u64, b: u64, x: u128) {
            let m = Modulus::new(q).unwrap();
            prop_assert_eq!(m.reduce(a), a % q);
            prop_assert_eq!(m.reduce_u128(x), (x % q as u128) as u64);
            prop_assert_eq!(m.mul(a, b), ((a as u128 * b as u128) % q as u128) as u64);
            let edge = [0, 1, q - 1, u64::MAX, u64::MAX - 1];
            for &e in &edge {
                prop_assert_eq!(m.reduce(e), e % q);
                prop_assert_eq!(m.reduce_u128(e as u128 * e as u128), ((e as u128 * e as u128) % q as u128) as u64);
            }
            prop_assert_eq!(m.reduce_u128(u128::MAX), (u128::MAX % q as u128) as u64);
        }

        #[test]
        fn shoup_matches_barrett(q in moduli(), a: u64, w: u64) {
            let m = Modulus::new(q).unwrap();
            let w = w % q;
            let ws = m.shoup(w);
            let lazy = m.mul_shoup_lazy(a, w, ws);
            prop_assert!(lazy < 2 * q);
            prop_assert_eq!(lazy % q, m.mul(a, w));
            prop_assert_eq!(m.mul_shoup(a, w, ws), m.mul(a, w));
            prop_assert_eq!(m.mul_shoup(u64::MAX, q - 1, m.shoup(q - 1)), m.mul(u64::MAX, q - 1));
        }

        #[test]
        fn add_sub_neg_center(q in moduli(), a: u64, b: u64, x: i64) {
            let m = Modulus::new(q).unwrap();
            let (a, b) = (a % q, b % q);
            prop_assert_eq!(m.add(a, b) as u128, (a as u128 + b as u128) % q as u128);
            prop_assert_eq!(m.add(m.sub(a, b), b), a);
            prop_assert_eq!(m.add(a, m.neg(a)), 0);
            let c = m.center(a);
            prop_assert_eq!(m.reduce_i64(c), a);
            prop_assert!(c.unsigned_abs() <= q / 2);
            prop_assert_eq!(m.reduce_i64(x) as i128, (x as i128).rem_euclid(q as i128));
            let big = (x as i128) * (a as i128 + 1);
            prop_assert_eq!(m.reduce_i128(big) as i128, big.rem_euclid(q as i128));
        }

        #[test]
        fn inverse_and_pow(q in moduli(), a: u64) {
            let m = Modulus::new(q).unwrap();
            match m.inv(a) {
                Ok(ai) => prop_assert_eq!(m.mul(a, ai), 1 % q),
                Err(_) => prop_assert!(num_gcd(a % q, q) != 1),
            }
            prop_assert_eq!(m.pow(a, 0), 1 % q);
            prop_assert_eq!(m.pow(a, 3), m.mul(m.mul(a, a), a));
        }
    }

    fn num_gcd(mut a: u64, mut b: u64) -> u64 {
        while b != 0 {
            (a, b) = (b, a % b);
        }
        a
    }
}
