//! `RnsPoly<R>`: a polynomial of `Z_Q[X]/(X^N + 1)` stored as one limb of N residues per modulus,
//! in coefficient form (`Coeff`) or NTT form (`Ntt`). The form is part of the type, so adding a
//! coefficient-form polynomial to an NTT-form one does not compile; basis mismatches are typed errors.

use crate::error::{Error, Result};
use crate::math::modulus::Modulus;
use crate::math::rns::BasisExtender;
use crate::math::{dot, lanes};
use crate::ring::basis::RingBasis;
use num_bigint::{BigInt, BigUint};
use rayon::prelude::*;
use std::marker::PhantomData;
use std::sync::Arc;

mod sealed {
    pub trait Sealed {}
}

/// The representation of an [`RnsPoly`]: [`Coeff`] or [`Ntt`].
pub trait Repr: sealed::Sealed + Clone + Copy + std::fmt::Debug + Send + Sync + 'static {
    /// Whether limbs hold NTT evaluations.
    const IS_NTT: bool;
}

/// Coefficient form: limb `i` holds the coefficients mod `q_i`, in natural order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Coeff;
/// NTT form: limb `i` holds the evaluations mod `q_i`, in the NTT's bit-reversed order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ntt;
impl sealed::Sealed for Coeff {}
impl sealed::Sealed for Ntt {}
impl Repr for Coeff {
    const IS_NTT: bool = false;
}
impl Repr for Ntt {
    const IS_NTT: bool = true;
}

/// Below this many words, limb loops stay on the calling thread (rayon's overhead would dominate).
const PAR_MIN_WORDS: usize = 1 << 14;

/// Runs `f(limb_index, limb)` over the limbs, in parallel when the polynomial is large.
fn for_each_limb<F>(data: &mut [u64], n: usize, f: F)
where
    F: Fn(usize, &mut [u64]) + Sync + Send,
{
    if data.len() >= PAR_MIN_WORDS && data.len() > n {
        data.par_chunks_exact_mut(n)
            .enumerate()
            .for_each(|(i, l)| f(i, l));
    } else {
        data.chunks_exact_mut(n).enumerate().for_each(|(i, l)| f(i, l));
    }
}

/// Runs `f(limb_index, limb, other_limb)` over the limbs of two polynomials of the same shape.
fn for_each_limb_pair<F>(data: &mut [u64], other: &[u64], n: usize, f: F)
where
    F: Fn(usize, &mut [u64], &[u64]) + Sync + Send,
{
    if data.len() >= PAR_MIN_WORDS && data.len() > n {
        data.par_chunks_exact_mut(n)
            .zip(other.par_chunks_exact(n))
            .enumerate()
            .for_each(|(i, (a, b))| f(i, a, b));
    } else {
        data.chunks_exact_mut(n)
            .zip(other.chunks_exact(n))
            .enumerate()
            .for_each(|(i, (a, b))| f(i, a, b));
    }
}

/// Runs `f(limb_index, limb0, limb1)` over the limbs of two outputs of the same shape.
pub(crate) fn for_each_limb_of_two<F>(out0: &mut [u64], out1: &mut [u64], n: usize, f: F)
where
    F: Fn(usize, &mut [u64], &mut [u64]) + Sync + Send,
{
    if out0.len() >= PAR_MIN_WORDS && out0.len() > n {
        out0.par_chunks_exact_mut(n)
            .zip(out1.par_chunks_exact_mut(n))
            .enumerate()
            .for_each(|(i, (a, b))| f(i, a, b));
    } else {
        out0.chunks_exact_mut(n)
            .zip(out1.chunks_exact_mut(n))
            .enumerate()
            .for_each(|(i, (a, b))| f(i, a, b));
    }
}

/// A polynomial over an RNS basis, in representation `R`.
#[derive(Clone)]
pub struct RnsPoly<R: Repr> {
    basis: Arc<RingBasis>,
    data: Vec<u64>,
    _repr: PhantomData<R>,
}

impl<R: Repr> std::fmt::Debug for RnsPoly<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RnsPoly")
            .field("n", &self.n())
            .field("moduli", &self.basis.rns().values())
            .field("ntt", &R::IS_NTT)
            .finish_non_exhaustive()
    }
}

impl<R: Repr> PartialEq for RnsPoly<R> {
    fn eq(&self, other: &Self) -> bool {
        self.basis.same_as(&other.basis) && self.data == other.data
    }
}
impl<R: Repr> Eq for RnsPoly<R> {}

impl<R: Repr> RnsPoly<R> {
    /// The zero polynomial.
    pub fn zero(basis: &Arc<RingBasis>) -> Self {
        Self {
            basis: basis.clone(),
            data: vec![0; basis.n() * basis.len()],
            _repr: PhantomData,
        }
    }

    /// A polynomial from its limbs (limb-major: `data[i * N + j]` is entry `j` of limb `i`).
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] for a wrong length, [`Error::OutOfRange`] for a value `>= q_i`.
    pub fn from_limbs(basis: &Arc<RingBasis>, data: Vec<u64>) -> Result<Self> {
        let n = basis.n();
        if data.len() != n * basis.len() {
            return Err(Error::LengthMismatch {
                expected: n * basis.len(),
                got: data.len(),
            });
        }
        for (limb, m) in data.chunks_exact(n).zip(basis.moduli()) {
            if limb.iter().any(|&x| x >= m.value()) {
                return Err(Error::OutOfRange {
                    reason: "residue not reduced modulo its prime",
                });
            }
        }
        Ok(Self {
            basis: basis.clone(),
            data,
            _repr: PhantomData,
        })
    }

    pub(crate) fn from_raw(basis: &Arc<RingBasis>, data: Vec<u64>) -> Self {
        debug_assert_eq!(data.len(), basis.n() * basis.len());
        Self {
            basis: basis.clone(),
            data,
            _repr: PhantomData,
        }
    }

    /// The ring this polynomial lives in.
    pub fn basis(&self) -> &Arc<RingBasis> {
        &self.basis
    }

    /// The ring degree N.
    pub fn n(&self) -> usize {
        self.basis.n()
    }

    /// Number of RNS limbs.
    pub fn num_limbs(&self) -> usize {
        self.basis.len()
    }

    /// Limb `i`, if it exists.
    pub fn limb(&self, i: usize) -> Option<&[u64]> {
        self.data.get(i * self.n()..(i + 1) * self.n())
    }

    /// All limbs, limb-major.
    pub fn as_slice(&self) -> &[u64] {
        &self.data
    }

    /// Iterator over the limbs.
    pub fn limbs(&self) -> std::slice::ChunksExact<'_, u64> {
        self.data.chunks_exact(self.basis.n())
    }

    /// The polynomial over `basis` made of the limbs `indices` of this one (a change of RNS basis
    /// that only drops or reorders limbs, e.g. from Q_L P to Q_l P).
    ///
    /// # Errors
    /// [`Error::InvalidBasis`] when an index is out of range or the moduli do not match `basis`.
    pub fn select_limbs(&self, indices: &[usize], basis: &Arc<RingBasis>) -> Result<Self> {
        let n = self.n();
        if basis.n() != n || indices.len() != basis.len() {
            return Err(Error::InvalidBasis {
                reason: "limb selection does not match the target ring",
            });
        }
        let mut data = Vec::with_capacity(n * indices.len());
        for (k, &i) in indices.iter().enumerate() {
            let limb = self.limb(i).ok_or(Error::InvalidBasis {
                reason: "limb index out of range",
            })?;
            if self.basis.moduli()[i] != basis.moduli()[k] {
                return Err(Error::InvalidBasis {
                    reason: "selected limb has another modulus",
                });
            }
            data.extend_from_slice(limb);
        }
        Ok(Self::from_raw(basis, data))
    }

    /// Overwrites every residue with zero (for secret material before it is dropped).
    pub fn zeroize(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.data);
    }

    /// `self += other`.
    ///
    /// # Errors
    /// [`Error::BasisMismatch`] for operands over different rings.
    pub fn add_assign(&mut self, other: &Self) -> Result<()> {
        self.basis.check_same(&other.basis)?;
        let moduli = self.basis.moduli();
        for_each_limb_pair(&mut self.data, &other.data, self.basis.n(), |i, a, b| {
            let m = &moduli[i];
            a.iter_mut().zip(b).for_each(|(x, &y)| *x = m.add(*x, y));
        });
        Ok(())
    }

    /// `self -= other`.
    ///
    /// # Errors
    /// [`Error::BasisMismatch`] for operands over different rings.
    pub fn sub_assign(&mut self, other: &Self) -> Result<()> {
        self.basis.check_same(&other.basis)?;
        let moduli = self.basis.moduli();
        for_each_limb_pair(&mut self.data, &other.data, self.basis.n(), |i, a, b| {
            let m = &moduli[i];
            a.iter_mut().zip(b).for_each(|(x, &y)| *x = m.sub(*x, y));
        });
        Ok(())
    }

    /// `self + other`.
    ///
    /// # Errors
    /// [`Error::BasisMismatch`] for operands over different rings.
    pub fn add(&self, other: &Self) -> Result<Self> {
        let mut out = self.clone();
        out.add_assign(other)?;
        Ok(out)
    }

    /// `self - other`.
    ///
    /// # Errors
    /// [`Error::BasisMismatch`] for operands over different rings.
    pub fn sub(&self, other: &Self) -> Result<Self> {
        let mut out = self.clone();
        out.sub_assign(other)?;
        Ok(out)
    }

    /// `self = -self`.
    pub fn neg_assign(&mut self) {
        let moduli = self.basis.moduli();
        for_each_limb(&mut self.data, self.basis.n(), |i, a| {
            let m = &moduli[i];
            a.iter_mut().for_each(|x| *x = m.neg(*x));
        });
    }

    /// `self *= c` for an integer scalar `c` (reduced modulo each prime).
    pub fn mul_scalar_assign(&mut self, c: u64) {
        let moduli = self.basis.moduli();
        for_each_limb(&mut self.data, self.basis.n(), |i, a| {
            let m = &moduli[i];
            let w = m.reduce(c);
            let ws = m.shoup(w);
            a.iter_mut().for_each(|x| *x = m.mul_shoup(*x, w, ws));
        });
    }

    /// `self *= c` for a scalar given by its residues `c[i] mod q_i` (e.g. a big integer's RNS form).
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] unless there is one residue per limb.
    pub fn mul_rns_scalar_assign(&mut self, c: &[u64]) -> Result<()> {
        if c.len() != self.num_limbs() {
            return Err(Error::LengthMismatch {
                expected: self.num_limbs(),
                got: c.len(),
            });
        }
        let moduli = self.basis.moduli();
        for_each_limb(&mut self.data, self.basis.n(), |i, a| {
            let m = &moduli[i];
            let w = m.reduce(c[i]);
            let ws = m.shoup(w);
            a.iter_mut().for_each(|x| *x = m.mul_shoup(*x, w, ws));
        });
        Ok(())
    }

    /// Keeps the first `basis.len()` limbs, where `basis` must be a prefix of this polynomial's ring
    /// (dropping levels: exact in both forms because each limb is independent).
    ///
    /// # Errors
    /// [`Error::InvalidBasis`] when `basis` is not a prefix of the current ring.
    pub fn truncate_to(&mut self, basis: &Arc<RingBasis>) -> Result<()> {
        let k = basis.len();
        if basis.n() != self.n() || k > self.num_limbs() || basis.moduli() != &self.basis.moduli()[..k] {
            return Err(Error::InvalidBasis {
                reason: "target ring is not a prefix of the current one",
            });
        }
        self.data.truncate(k * self.n());
        self.basis = basis.clone();
        Ok(())
    }

    /// Drops the last `k` limbs.
    ///
    /// # Errors
    /// [`Error::InvalidBasis`] when fewer than `k + 1` limbs are left.
    pub fn drop_last_limbs(&mut self, k: usize) -> Result<()> {
        if k >= self.num_limbs() {
            return Err(Error::InvalidBasis {
                reason: "cannot drop every limb",
            });
        }
        let basis = self.basis.sub_basis(0..self.num_limbs() - k)?;
        self.truncate_to(&basis)
    }
}

/// Checks a Galois element and reduces it mod 2N.
fn galois_element(g: u64, n: usize) -> Result<u64> {
    let two_n = 2 * n as u64;
    let g = g % two_n;
    if g.is_multiple_of(2) {
        return Err(Error::InvalidGaloisElement { g, two_n });
    }
    Ok(g)
}

/// The Galois element of a rotation of the CKKS slots by `k` positions: `5^k mod 2N`
/// (negative `k` rotates the other way).
pub fn galois_element_for_rotation(k: i64, n: usize) -> u64 {
    let two_n = 2 * n as u64;
    let order = (n / 2) as i64; // 5 has order N/2 modulo 2N
    let e = k.rem_euclid(order.max(1)) as u64;
    let mut acc = 1u64;
    let mut base = 5 % two_n;
    let mut e = e;
    while e > 0 {
        if e & 1 == 1 {
            acc = acc * base % two_n;
        }
        base = base * base % two_n;
        e >>= 1;
    }
    acc
}

/// The Galois element of complex conjugation of the slots: `X -> X^-1`, i.e. `2N - 1`.
pub fn galois_element_for_conjugation(n: usize) -> u64 {
    2 * n as u64 - 1
}

impl RnsPoly<Coeff> {
    /// The polynomial whose coefficient `j` reduces to `reduce(q_i, coeffs[j])` modulo each prime.
    fn from_reduced<T: Copy + Sync>(
        basis: &Arc<RingBasis>,
        coeffs: &[T],
        reduce: impl Fn(&Modulus, T) -> u64 + Sync + Send,
    ) -> Result<Self> {
        let n = basis.n();
        if coeffs.len() != n {
            return Err(Error::LengthMismatch {
                expected: n,
                got: coeffs.len(),
            });
        }
        let mut p = Self::zero(basis);
        let moduli = basis.moduli();
        for_each_limb(&mut p.data, n, |i, a| {
            let m = &moduli[i];
            a.iter_mut().zip(coeffs).for_each(|(x, &c)| *x = reduce(m, c));
        });
        Ok(p)
    }

    /// The polynomial with the given signed integer coefficients.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] unless there are N coefficients.
    pub fn from_signed(basis: &Arc<RingBasis>, coeffs: &[i64]) -> Result<Self> {
        Self::from_reduced(basis, coeffs, |m, c| m.reduce_i64(c))
    }

    /// The polynomial with the given signed 128-bit coefficients.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] unless there are N coefficients.
    pub fn from_i128(basis: &Arc<RingBasis>, coeffs: &[i128]) -> Result<Self> {
        Self::from_reduced(basis, coeffs, |m, c| m.reduce_i128(c))
    }

    /// The polynomial with the given big-integer coefficients (reduced mod Q).
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] unless there are N coefficients.
    pub fn from_bigint(basis: &Arc<RingBasis>, coeffs: &[BigInt]) -> Result<Self> {
        let n = basis.n();
        if coeffs.len() != n {
            return Err(Error::LengthMismatch {
                expected: n,
                got: coeffs.len(),
            });
        }
        let q = BigInt::from(basis.rns().product());
        let mut p = Self::zero(basis);
        for (j, c) in coeffs.iter().enumerate() {
            let r = ((c % &q) + &q) % &q;
            let (_, mag) = r.into_parts();
            for (i, v) in basis.rns().decompose(&mag).into_iter().enumerate() {
                p.data[i * n + j] = v;
            }
        }
        Ok(p)
    }

    /// The coefficients as integers in `[0, Q)` (CRT reconstruction; slow, for tests and decoding).
    pub fn to_biguint(&self) -> Vec<BigUint> {
        let n = self.n();
        let k = self.num_limbs();
        (0..n)
            .map(|j| {
                let residues: Vec<u64> = (0..k).map(|i| self.data[i * n + j]).collect();
                self.basis.rns().reconstruct(&residues).unwrap_or_default()
            })
            .collect()
    }

    /// The centered coefficients when they are small: reconstructed from the first two limbs in
    /// 128-bit arithmetic and confirmed against every other limb, which makes the answer exact
    /// (two integers in `(-Q/2, Q/2)` that agree modulo every prime are equal). `None` when some
    /// coefficient does not fit `(-q_0 q_1 / 2, q_0 q_1 / 2)`: use [`RnsPoly::to_centered_bigint`].
    /// This is the fast path of decoding; the big-integer reconstruction is its twin.
    pub fn to_centered_small(&self) -> Option<Vec<i128>> {
        let n = self.n();
        let moduli = self.basis.moduli();
        let m0 = moduli.first()?;
        let l0 = &self.data[..n];
        if moduli.len() == 1 {
            return Some(l0.iter().map(|&x| m0.center(x) as i128).collect());
        }
        let m1 = &moduli[1];
        let l1 = &self.data[n..2 * n];
        let (q0, q1) = (m0.value(), m1.value());
        let q0_inv = m1.inv(m1.reduce(q0)).ok()?;
        let q0_inv_s = m1.shoup(q0_inv);
        let big = q0 as u128 * q1 as u128;
        let out: Vec<i128> = l0
            .iter()
            .zip(l1)
            .map(|(&y0, &y1)| {
                // x = y0 + q0 [(y1 - y0) q0^-1]_{q1}, in [0, q0 q1), then centred.
                let k = m1.mul_shoup(m1.sub(y1, m1.reduce(y0)), q0_inv, q0_inv_s);
                let x = y0 as u128 + q0 as u128 * k as u128;
                if x > big / 2 {
                    x as i128 - big as i128
                } else {
                    x as i128
                }
            })
            .collect();
        for (i, m) in moduli.iter().enumerate().skip(2) {
            let limb = &self.data[i * n..(i + 1) * n];
            if limb.iter().zip(&out).any(|(&y, &x)| m.reduce_i128(x) != y) {
                return None;
            }
        }
        Some(out)
    }

    /// The coefficients as centered integers in `(-Q/2, Q/2]`.
    pub fn to_centered_bigint(&self) -> Vec<BigInt> {
        let q = self.basis.rns().product();
        let half = &q >> 1;
        self.to_biguint()
            .into_iter()
            .map(|x| {
                if x > half {
                    BigInt::from(x) - BigInt::from(q.clone())
                } else {
                    BigInt::from(x)
                }
            })
            .collect()
    }

    /// Converts to NTT form.
    pub fn into_ntt(mut self) -> RnsPoly<Ntt> {
        let tables = self.basis.tables();
        for_each_limb(&mut self.data, self.basis.n(), |i, a| {
            tables[i].forward_unchecked(a)
        });
        RnsPoly {
            basis: self.basis,
            data: self.data,
            _repr: PhantomData,
        }
    }

    /// The automorphism `a(X) -> a(X^g)` for odd `g`.
    ///
    /// # Errors
    /// [`Error::InvalidGaloisElement`] for an even `g`.
    pub fn automorphism(&self, g: u64) -> Result<Self> {
        let n = self.n();
        let g = galois_element(g, n)? as usize;
        let mut out = Self::zero(&self.basis);
        let moduli = self.basis.moduli();
        let mask = 2 * n - 1;
        for_each_limb_pair(&mut out.data, &self.data, n, |i, o, a| {
            let m = &moduli[i];
            let mut idx = 0usize; // i * g mod 2N, updated incrementally
            for &c in a {
                if idx < n {
                    o[idx] = c;
                } else {
                    o[idx - n] = m.neg(c);
                }
                idx = (idx + g) & mask;
            }
        });
        Ok(out)
    }

    /// Fast basis extension of this polynomial to the ring `to` with `ext` (built by
    /// [`RingBasis::extender_to`]): the result is `x + alpha Q` with `0 <= alpha < num_limbs`.
    ///
    /// # Errors
    /// [`Error::BasisMismatch`] when `ext` does not go from this ring to `to`.
    pub fn extend_basis(&self, ext: &BasisExtender, to: &Arc<RingBasis>) -> Result<Self> {
        if ext.from() != self.basis.rns() || ext.to() != to.rns() || to.n() != self.n() {
            return Err(Error::BasisMismatch {
                left: ext.from().values(),
                right: self.basis.rns().values(),
            });
        }
        let mut out = Self::zero(to);
        ext.extend(&self.data, &mut out.data, self.n())?;
        Ok(out)
    }
}

impl RnsPoly<Ntt> {
    /// Converts to coefficient form.
    pub fn into_coeff(mut self) -> RnsPoly<Coeff> {
        let tables = self.basis.tables();
        for_each_limb(&mut self.data, self.basis.n(), |i, a| {
            tables[i].inverse_unchecked(a)
        });
        RnsPoly {
            basis: self.basis,
            data: self.data,
            _repr: PhantomData,
        }
    }

    /// `self *= other` (pointwise in NTT form: a negacyclic product).
    ///
    /// # Errors
    /// [`Error::BasisMismatch`] for operands over different rings.
    pub fn mul_assign(&mut self, other: &Self) -> Result<()> {
        self.basis.check_same(&other.basis)?;
        let moduli = self.basis.moduli();
        for_each_limb_pair(&mut self.data, &other.data, self.basis.n(), |i, a, b| {
            let m = &moduli[i];
            a.iter_mut().zip(b).for_each(|(x, &y)| *x = m.mul(*x, y));
        });
        Ok(())
    }

    /// `self * other`.
    ///
    /// # Errors
    /// [`Error::BasisMismatch`] for operands over different rings.
    pub fn mul(&self, other: &Self) -> Result<Self> {
        let mut out = self.clone();
        out.mul_assign(other)?;
        Ok(out)
    }

    /// `self += a * b` (fused multiply-add, one reduction per entry).
    ///
    /// # Errors
    /// [`Error::BasisMismatch`] for operands over different rings.
    pub fn mul_then_add_assign(&mut self, a: &Self, b: &Self) -> Result<()> {
        self.basis.check_same(&a.basis)?;
        self.basis.check_same(&b.basis)?;
        let moduli = self.basis.moduli();
        let n = self.basis.n();
        for_each_limb(&mut self.data, n, |i, acc| {
            let m = &moduli[i];
            let (la, lb) = (&a.data[i * n..(i + 1) * n], &b.data[i * n..(i + 1) * n]);
            for ((x, &y), &z) in acc.iter_mut().zip(la).zip(lb) {
                *x = m.mul_add(y, z, *x);
            }
        });
        Ok(())
    }

    /// `(sum_i a_i b_i, sum_i a_i e_i)`, one reduction per entry: many products by plaintexts
    /// summed (the inner loop of the diagonal method) without a product polynomial per term.
    ///
    /// # Errors
    /// [`Error::BasisMismatch`] for operands over different rings; [`Error::LengthMismatch`] for
    /// lists of different lengths or empty lists.
    pub fn dot_pair<'a>(a: &[&'a Self], b: &[&'a Self], e: &[&'a Self]) -> Result<(Self, Self)> {
        let first = a.first().ok_or(Error::LengthMismatch { expected: 1, got: 0 })?;
        if b.len() != a.len() || e.len() != a.len() {
            return Err(Error::LengthMismatch {
                expected: a.len(),
                got: b.len().min(e.len()),
            });
        }
        let basis = first.basis.clone();
        for x in a.iter().chain(b).chain(e) {
            basis.check_same(&x.basis)?;
        }
        let n = basis.n();
        let moduli = basis.moduli();
        let mut out0 = vec![0u64; n * basis.len()];
        let mut out1 = vec![0u64; n * basis.len()];
        let limb = |i: usize, o0: &mut [u64], o1: &mut [u64]| {
            let part = |xs: &[&'a Self]| -> Vec<&'a [u64]> {
                xs.iter().map(|x| &x.data[i * n..(i + 1) * n]).collect()
            };
            let (la, lb, le) = (part(a), part(b), part(e));
            let m = &moduli[i];
            dot::dot_pair(o0, o1, &la, None, &lb, &le, m, m.bits());
        };
        for_each_limb_of_two(&mut out0, &mut out1, n, limb);
        Ok((Self::from_raw(&basis, out0), Self::from_raw(&basis, out1)))
    }

    /// The automorphism `a(X) -> a(X^g)` for odd `g`, as a permutation of the NTT evaluations:
    /// entry `k` holds `a(psi^(2 brv(k) + 1))`, so the image at `k` is the entry whose exponent is
    /// `(2 brv(k) + 1) g mod 2N`.
    ///
    /// # Errors
    /// [`Error::InvalidGaloisElement`] for an even `g`.
    pub fn automorphism(&self, g: u64) -> Result<Self> {
        let n = self.n();
        let perm = ntt_automorphism_permutation(g, n)?;
        let mut out = Self::zero(&self.basis);
        for_each_limb_pair(&mut out.data, &self.data, n, |_, o, a| {
            for (ok, &p) in o.iter_mut().zip(&perm) {
                *ok = a[p];
            }
        });
        Ok(out)
    }
}

/// The permutation `perm` with `automorphism_g(a)[k] = a[perm[k]]` in NTT form.
///
/// # Errors
/// [`Error::InvalidGaloisElement`] for an even `g`.
pub fn ntt_automorphism_permutation(g: u64, n: usize) -> Result<Vec<usize>> {
    let g = galois_element(g, n)? as usize;
    let log_n = n.trailing_zeros();
    let brv = |x: usize| {
        if log_n == 0 {
            0
        } else {
            x.reverse_bits() >> (usize::BITS - log_n)
        }
    };
    let mask = 2 * n - 1;
    Ok((0..n)
        .map(|k| {
            let e = ((2 * brv(k) + 1) * g) & mask;
            brv((e - 1) / 2)
        })
        .collect())
}

/// Precomputed exact division with rounding by the product `P` of the last limbs of a ring:
/// `round(x / P) = floor((x + floor(P/2)) / P)` over the remaining limbs. With one tail limb this is
/// CKKS rescaling; with the special primes as the tail it is the ModDown of hybrid key switching.
/// Both use the centered exact basis extension ([`BasisExtender::extend_centered`]): the result is
/// `(x - x_c) / P` with `x_c` the centered residue of `x` mod P, which is `round(x / P)` except
/// within about `2^-52` of a tie, where either rounding is as good.
#[derive(Debug, Clone)]
pub struct TailDivider {
    full: Arc<RingBasis>,
    head: Arc<RingBasis>,
    tail: Arc<RingBasis>,
    ext: BasisExtender,
    /// P^-1 mod each head prime.
    p_inv: Vec<u64>,
}

impl TailDivider {
    /// Prepares the division of polynomials over `full` by the product of its last `tail` limbs.
    ///
    /// # Errors
    /// [`Error::InvalidBasis`] unless `1 <= tail < full.len()`.
    pub fn new(full: &Arc<RingBasis>, tail: usize) -> Result<Self> {
        let k = full.len();
        if tail == 0 || tail >= k {
            return Err(Error::InvalidBasis {
                reason: "tail must leave at least one limb and take at least one",
            });
        }
        let head = full.sub_basis(0..k - tail)?;
        let tail_b = full.sub_basis(k - tail..k)?;
        let ext = tail_b.extender_to(&head)?;
        let p = tail_b.rns().product();
        let p_res = head.rns().decompose(&p);
        let p_inv = head
            .moduli()
            .iter()
            .zip(&p_res)
            .map(|(m, &r)| m.inv(r))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            full: full.clone(),
            head,
            tail: tail_b,
            ext,
            p_inv,
        })
    }

    /// The ring of the results.
    pub fn head(&self) -> &Arc<RingBasis> {
        &self.head
    }

    /// The ring of the inputs.
    pub fn full(&self) -> &Arc<RingBasis> {
        &self.full
    }

    /// The centered residue `x_c` of `x` mod P, from the tail limbs (coefficient form), over the head.
    fn extended_tail(&self, tail_coeffs: &[u64]) -> Result<Vec<u64>> {
        let n = self.head.n();
        let mut out = vec![0u64; n * self.head.len()];
        self.ext.extend_centered(tail_coeffs, &mut out, n)?;
        Ok(out)
    }

    /// `y_i = (x_i - e_i) P^-1 mod q_i` on the head limbs, `e` from [`Self::extended_tail`].
    fn finish(&self, head_data: &mut [u64], ext: &[u64]) {
        let n = self.head.n();
        let moduli = self.head.moduli();
        for_each_limb_pair(head_data, ext, n, |i, x, e| {
            lanes::sub_mul_const(x, e, self.p_inv[i], &moduli[i]);
        });
    }

    /// `round(x / P)` for `x` in coefficient form.
    ///
    /// # Errors
    /// [`Error::BasisMismatch`] when `x` is not over the ring this divider was built for.
    pub fn divide_round(&self, x: &RnsPoly<Coeff>) -> Result<RnsPoly<Coeff>> {
        self.full.check_same(&x.basis)?;
        let n = self.head.n();
        let split = n * self.head.len();
        let ext = self.extended_tail(&x.data[split..])?;
        let mut head = x.data[..split].to_vec();
        self.finish(&mut head, &ext);
        Ok(RnsPoly::from_raw(&self.head, head))
    }

    /// `round(x / P)` for `x` in NTT form: the tail goes back to coefficients for the extension,
    /// and the extended tail is transformed with the head's tables.
    ///
    /// # Errors
    /// [`Error::BasisMismatch`] when `x` is not over the ring this divider was built for.
    pub fn divide_round_ntt(&self, x: &RnsPoly<Ntt>) -> Result<RnsPoly<Ntt>> {
        self.full.check_same(&x.basis)?;
        self.divide_round_ntt_owned(x.clone())
    }

    /// As [`TailDivider::divide_round_ntt`], reusing `x`'s memory for the result (key switching
    /// divides temporaries of tens of MB: a fresh buffer each time costs page faults).
    ///
    /// # Errors
    /// [`Error::BasisMismatch`] when `x` is not over the ring this divider was built for.
    pub fn divide_round_ntt_owned(&self, x: RnsPoly<Ntt>) -> Result<RnsPoly<Ntt>> {
        self.full.check_same(&x.basis)?;
        let n = self.head.n();
        let split = n * self.head.len();
        let mut head = x.data;
        let mut tail = head.split_off(split);
        let tail_tables = self.tail.tables();
        for_each_limb(&mut tail, n, |i, a| tail_tables[i].inverse_unchecked(a));
        let mut ext = self.extended_tail(&tail)?;
        let head_tables = self.head.tables();
        for_each_limb(&mut ext, n, |i, a| head_tables[i].forward_unchecked(a));
        self.finish(&mut head, &ext);
        Ok(RnsPoly::from_raw(&self.head, head))
    }
}

#[cfg(test)]
mod tests;
