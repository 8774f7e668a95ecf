//! Negacyclic number-theoretic transform over `Z_q[X]/(X^N + 1)`, `N = 2^1 .. 2^17`.
//!
//! The forward transform maps coefficients (natural order) to evaluations at the odd powers of a
//! primitive `2N`-th root `psi`, stored in bit-reversed order: output `k` is `a(psi^(2 brv(k) + 1))`.
//! The inverse maps them back. Pointwise products of transforms are negacyclic convolutions.
//!
//! Three kernels share one table: [`scalar`] (the reference twin), `avx2` and `avx512` (IFMA).
//! The public entry points are safe and dispatch on a [`Backend`] chosen when the table is built.
//!
//! References:
//! - P. Longa, M. Naehrig, "Speeding up the Number Theoretic Transform for Faster Ideal Lattice-Based
//!   Cryptography", CANS 2016 (<https://eprint.iacr.org/2016/504>): merged negacyclic CT/GS loops.
//! - D. Harvey, "Faster arithmetic for number-theoretic transforms", 2014
//!   (<https://arxiv.org/abs/1205.2926>): lazy butterflies with Shoup multiplication.
//! - F. Boemer et al., "Intel HEXL", 2021 (<https://arxiv.org/abs/2103.16400>): the 52-bit IFMA variant.

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
pub mod reference;
pub mod scalar;

use crate::error::{Error, Result};
use crate::math::modulus::Modulus;
use crate::math::primes::{check_ntt_prime, min_primitive_root_2n};
use crate::math::simd::Backend;

/// Smallest and largest supported log2 of the ring degree.
pub const MIN_LOG_N: u32 = 1;
/// Largest supported log2 of the ring degree.
pub const MAX_LOG_N: u32 = 17;

/// The IFMA kernel needs lazy values `< 4q < 2^52`.
pub const IFMA_MAX_MODULUS_BITS: u32 = 50;

/// Precomputed twiddle factors for one prime and one ring degree.
#[derive(Clone, Debug)]
pub struct NttTable {
    n: usize,
    q: Modulus,
    psi: u64,
    backend: Backend,
    /// psi^brv(k), k < n, and their Shoup companions (forward, Cooley-Tukey).
    fwd_w: Vec<u64>,
    fwd_ws: Vec<u64>,
    /// psi^-brv(k), k < n, and their Shoup companions (inverse, Gentleman-Sande).
    inv_w: Vec<u64>,
    inv_ws: Vec<u64>,
    /// n^-1, and n^-1 * psi^-brv(1) (the last inverse stage is merged with the scaling by n^-1).
    n_inv: u64,
    n_inv_s: u64,
    n_inv_w: u64,
    n_inv_w_s: u64,
    /// Per-butterfly twiddles for the stages whose half-width is below the vector width
    /// (`small[s]` for half-width 2^s, s = 0, 1, 2): butterfly b of the stage uses entry b.
    small_fwd: [Vec<u64>; 3],
    small_fwd_s: [Vec<u64>; 3],
    small_inv: [Vec<u64>; 3],
    small_inv_s: [Vec<u64>; 3],
    /// 52-bit Shoup companions floor(w * 2^52 / q), filled only when the IFMA kernel may run.
    ifma: Option<IfmaConstants>,
}

#[derive(Clone, Debug)]
struct IfmaConstants {
    fwd_ws: Vec<u64>,
    inv_ws: Vec<u64>,
    small_fwd_s: [Vec<u64>; 3],
    small_inv_s: [Vec<u64>; 3],
    n_inv_s: u64,
    n_inv_w_s: u64,
}

fn bit_reverse(x: usize, bits: u32) -> usize {
    if bits == 0 {
        0
    } else {
        x.reverse_bits() >> (usize::BITS - bits)
    }
}

impl NttTable {
    /// Builds the table for the prime `q` and ring degree `n`, with the best backend of this CPU.
    ///
    /// # Errors
    /// [`Error::InvalidRingDegree`] unless `n = 2^1 .. 2^17`; [`Error::NotPrime`],
    /// [`Error::NotNttFriendly`] or [`Error::InvalidModulus`] unless `q` is a prime `= 1 mod 2n`.
    pub fn new(q: u64, n: usize) -> Result<Self> {
        Self::with_backend(q, n, Backend::detect())
    }

    /// As [`NttTable::new`], with an explicit backend (for tests and benchmarks).
    /// The IFMA backend falls back to AVX2 for primes of 51 bits or more.
    ///
    /// # Errors
    /// As [`NttTable::new`], and [`Error::OutOfRange`] when this CPU cannot run `backend`.
    pub fn with_backend(q: u64, n: usize, backend: Backend) -> Result<Self> {
        if !n.is_power_of_two() || !(1usize << MIN_LOG_N..=1usize << MAX_LOG_N).contains(&n) {
            return Err(Error::InvalidRingDegree {
                n,
                min_log: MIN_LOG_N,
                max_log: MAX_LOG_N,
            });
        }
        if !backend.is_available() {
            return Err(Error::OutOfRange {
                reason: "this CPU cannot run the requested backend",
            });
        }
        let m = check_ntt_prime(q, n)?;
        let psi = min_primitive_root_2n(q, n)?;
        let psi_inv = m.inv(psi)?;
        let log_n = n.trailing_zeros();
        let mut fwd_w = vec![0u64; n];
        let mut inv_w = vec![0u64; n];
        let (mut p, mut pi) = (1u64, 1u64);
        for i in 0..n {
            let r = bit_reverse(i, log_n);
            fwd_w[r] = p;
            inv_w[r] = pi;
            p = m.mul(p, psi);
            pi = m.mul(pi, psi_inv);
        }
        let shoup_all = |v: &[u64]| v.iter().map(|&w| m.shoup(w)).collect::<Vec<_>>();
        let fwd_ws = shoup_all(&fwd_w);
        let inv_ws = shoup_all(&inv_w);
        let n_inv = m.inv(n as u64)?;
        let n_inv_w = m.mul(n_inv, inv_w.get(1).copied().unwrap_or(1));

        // Stage with half-width t: forward has m = n/(2t) groups with twiddle w[m + i];
        // the inverse stage of the same half-width uses inv_w[n/(2t) + i].
        let expand = |table: &[u64], t: usize| -> Vec<u64> {
            if t >= n {
                return Vec::new();
            }
            let groups = n / (2 * t);
            (0..n / 2).map(|b| table[groups + b / t]).collect()
        };
        let small = |table: &[u64]| [expand(table, 1), expand(table, 2), expand(table, 4)];
        let small_fwd = small(&fwd_w);
        let small_inv = small(&inv_w);
        let small_fwd_s = small(&fwd_ws);
        let small_inv_s = small(&inv_ws);

        let backend = if backend == Backend::Avx512Ifma && m.bits() > IFMA_MAX_MODULUS_BITS {
            Backend::Avx2
        } else {
            backend
        };
        let ifma = (backend == Backend::Avx512Ifma).then(|| {
            let s52 = |w: u64| (((w as u128) << 52) / q as u128) as u64;
            let s52_all = |v: &[u64]| v.iter().map(|&w| s52(w)).collect::<Vec<_>>();
            IfmaConstants {
                fwd_ws: s52_all(&fwd_w),
                inv_ws: s52_all(&inv_w),
                small_fwd_s: [
                    s52_all(&small_fwd[0]),
                    s52_all(&small_fwd[1]),
                    s52_all(&small_fwd[2]),
                ],
                small_inv_s: [
                    s52_all(&small_inv[0]),
                    s52_all(&small_inv[1]),
                    s52_all(&small_inv[2]),
                ],
                n_inv_s: s52(n_inv),
                n_inv_w_s: s52(n_inv_w),
            }
        });
        Ok(Self {
            n,
            q: m,
            psi,
            backend,
            fwd_w,
            fwd_ws,
            inv_w,
            inv_ws,
            n_inv,
            n_inv_s: m.shoup(n_inv),
            n_inv_w,
            n_inv_w_s: m.shoup(n_inv_w),
            small_fwd,
            small_fwd_s,
            small_inv,
            small_inv_s,
            ifma,
        })
    }

    /// The ring degree N.
    pub fn n(&self) -> usize {
        self.n
    }

    /// The prime modulus.
    pub fn modulus(&self) -> &Modulus {
        &self.q
    }

    /// The primitive 2N-th root of unity the table is built on (the smallest one).
    pub fn psi(&self) -> u64 {
        self.psi
    }

    /// The backend this table dispatches to.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    fn check_len(&self, a: &[u64]) -> Result<()> {
        if a.len() != self.n {
            return Err(Error::LengthMismatch {
                expected: self.n,
                got: a.len(),
            });
        }
        Ok(())
    }

    /// In-place forward NTT: coefficients in `[0, q)` (natural order) to evaluations in `[0, q)`
    /// (bit-reversed order).
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] unless `a.len() == N`.
    pub fn forward(&self, a: &mut [u64]) -> Result<()> {
        self.check_len(a)?;
        self.forward_unchecked(a);
        Ok(())
    }

    /// In-place inverse NTT, the inverse of [`NttTable::forward`]. Input in `[0, 2q)`, output in `[0, q)`.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] unless `a.len() == N`.
    pub fn inverse(&self, a: &mut [u64]) -> Result<()> {
        self.check_len(a)?;
        self.inverse_unchecked(a);
        Ok(())
    }

    /// Forward NTT with the scalar reference kernel, whatever the table's backend.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] unless `a.len() == N`.
    pub fn forward_scalar(&self, a: &mut [u64]) -> Result<()> {
        self.check_len(a)?;
        scalar::forward(self, a);
        Ok(())
    }

    /// Inverse NTT with the scalar reference kernel, whatever the table's backend.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] unless `a.len() == N`.
    pub fn inverse_scalar(&self, a: &mut [u64]) -> Result<()> {
        self.check_len(a)?;
        scalar::inverse(self, a);
        Ok(())
    }

    /// Forward NTT; the caller guarantees `a.len() == N` (checked in debug builds).
    pub(crate) fn forward_unchecked(&self, a: &mut [u64]) {
        debug_assert_eq!(a.len(), self.n);
        match self.backend {
            #[cfg(target_arch = "x86_64")]
            Backend::Avx512Ifma if self.n >= 16 => {
                if let Some(c) = &self.ifma {
                    // SAFETY: `backend` is only Avx512Ifma when the CPU has AVX-512F and IFMA
                    // (checked in `with_backend`), and `a.len() == n >= 16`.
                    unsafe { avx512::forward(self, c, a) };
                    return;
                }
                scalar::forward(self, a)
            }
            #[cfg(target_arch = "x86_64")]
            Backend::Avx2 if self.n >= 8 => {
                // SAFETY: `backend` is only Avx2 when the CPU has AVX2 (checked in `with_backend`),
                // and `a.len() == n >= 8`.
                unsafe { avx2::forward(self, a) }
            }
            _ => scalar::forward(self, a),
        }
    }

    /// Inverse NTT; the caller guarantees `a.len() == N` (checked in debug builds).
    pub(crate) fn inverse_unchecked(&self, a: &mut [u64]) {
        debug_assert_eq!(a.len(), self.n);
        match self.backend {
            #[cfg(target_arch = "x86_64")]
            Backend::Avx512Ifma if self.n >= 16 => {
                if let Some(c) = &self.ifma {
                    // SAFETY: as in `forward_unchecked`.
                    unsafe { avx512::inverse(self, c, a) };
                    return;
                }
                scalar::inverse(self, a)
            }
            #[cfg(target_arch = "x86_64")]
            Backend::Avx2 if self.n >= 8 => {
                // SAFETY: as in `forward_unchecked`.
                unsafe { avx2::inverse(self, a) }
            }
            _ => scalar::inverse(self, a),
        }
    }
}

#[cfg(test)]
mod tests;
