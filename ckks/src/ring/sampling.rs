//! Sampling of ring elements from a cryptographically secure generator: uniform mod Q, ternary
//! (uniform or of fixed Hamming weight) and the bounded discrete Gaussian of the HE standard.
//!
//! Every sampler takes `&mut impl CryptoRng` (in rand_core 0.9 `CryptoRng` implies `RngCore`): production code passes
//! [`os_seeded_rng`] (ChaCha20 seeded from the operating system), tests pass a seeded ChaCha20.
//! Small secret-dependent samples come back in [`Zeroizing`] buffers so they are wiped on drop.
//!
//! References:
//! - M. Albrecht et al., "Homomorphic Encryption Standard", 2018
//!   (<https://homomorphicencryption.org/standard/>): ternary secrets, sigma = 3.2.

use crate::error::{Error, Result};
use crate::ring::basis::RingBasis;
use crate::ring::poly::{Repr, RnsPoly};
use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRng, SeedableRng};
use std::sync::{Arc, OnceLock};
use zeroize::Zeroizing;

/// The standard deviation of the error distribution in the HE standard.
pub const DEFAULT_SIGMA: f64 = 3.2;
/// Gaussian samples are cut at `6 sigma` (rounded down): |e| <= 19 for sigma = 3.2.
pub const DEFAULT_BOUND_SIGMAS: f64 = 6.0;

/// A ChaCha20 generator seeded from the operating system's entropy source.
pub fn os_seeded_rng() -> ChaCha20Rng {
    ChaCha20Rng::from_os_rng()
}

/// Uniform integer in `[0, bound)` by rejection (unbiased), `bound >= 1`.
fn uniform_below(bound: u64, rng: &mut impl CryptoRng) -> u64 {
    debug_assert!(bound >= 1);
    let mask = u64::MAX >> (bound - 1).leading_zeros().min(63);
    loop {
        let x = rng.next_u64() & mask;
        if x < bound {
            return x;
        }
    }
}

/// A polynomial with every residue uniform mod its prime (by the CRT, uniform mod Q). Uniform is
/// uniform in either representation, so the caller picks `R`.
pub fn uniform<R: Repr>(basis: &Arc<RingBasis>, rng: &mut impl CryptoRng) -> RnsPoly<R> {
    let n = basis.n();
    let mut data = vec![0u64; n * basis.len()];
    for (limb, m) in data.chunks_exact_mut(n).zip(basis.moduli()) {
        for x in limb.iter_mut() {
            *x = uniform_below(m.value(), rng);
        }
    }
    RnsPoly::from_raw(basis, data)
}

/// `n` integers uniform in `[-2^bits, 2^bits)` (noise flooding), from the top `bits + 1` bits of one
/// 64-bit draw each: a power-of-two range, so no rejection and no bias.
///
/// # Errors
/// [`Error::InvalidSamplerParameter`] unless `bits <= 62`.
pub fn uniform_signed(n: usize, bits: u32, rng: &mut impl CryptoRng) -> Result<Zeroizing<Vec<i64>>> {
    if bits > 62 {
        return Err(Error::InvalidSamplerParameter {
            reason: "flooding bound must be at most 2^62",
        });
    }
    let shift = 63 - bits;
    Ok(Zeroizing::new(
        (0..n)
            .map(|_| (rng.next_u64() >> shift) as i64 - (1i64 << bits))
            .collect(),
    ))
}

/// `n` coefficients uniform in {-1, 0, 1}.
pub fn ternary(n: usize, rng: &mut impl CryptoRng) -> Zeroizing<Vec<i64>> {
    let mut out = Zeroizing::new(vec![0i64; n]);
    for x in out.iter_mut() {
        *x = uniform_below(3, rng) as i64 - 1;
    }
    out
}

/// `n` coefficients in {-1, 0, 1} with exactly `h` nonzero entries at uniform positions, each of
/// uniform sign (sparse secrets, as used by bootstrapping parameter sets).
///
/// # Errors
/// [`Error::InvalidSamplerParameter`] when `h > n`.
pub fn ternary_hamming(n: usize, h: usize, rng: &mut impl CryptoRng) -> Result<Zeroizing<Vec<i64>>> {
    if h > n {
        return Err(Error::InvalidSamplerParameter {
            reason: "Hamming weight exceeds the ring degree",
        });
    }
    let mut out = Zeroizing::new(vec![0i64; n]);
    // Partial Fisher-Yates over positions: the first h entries of a random permutation.
    let mut pos: Zeroizing<Vec<usize>> = Zeroizing::new((0..n).collect());
    for i in 0..h {
        let j = i + uniform_below((n - i) as u64, rng) as usize;
        pos.swap(i, j);
        out[pos[i]] = if rng.next_u32() & 1 == 0 { 1 } else { -1 };
    }
    Ok(out)
}

/// Cumulative distribution table of |e| for the rounded Gaussian of parameter `sigma` cut at
/// `bound`, as 64-bit thresholds: P(|e| >= k) * 2^64 for k = 1..=bound.
fn cdt(sigma: f64, bound: u32) -> Vec<u64> {
    let rho = |k: f64| (-k * k / (2.0 * sigma * sigma)).exp();
    // |e| = 0 has weight rho(0); |e| = k >= 1 has weight 2 rho(k) (both signs).
    let weights: Vec<f64> = (0..=bound)
        .map(|k| if k == 0 { 1.0 } else { 2.0 * rho(k as f64) })
        .collect();
    let total: f64 = weights.iter().sum();
    let mut tail = 1.0;
    let mut out = Vec::with_capacity(bound as usize);
    for w in &weights[..bound as usize] {
        tail -= w / total;
        out.push((tail.max(0.0) * 18446744073709551616.0) as u64);
    }
    out
}

fn default_cdt() -> &'static [u64] {
    static TABLE: OnceLock<Vec<u64>> = OnceLock::new();
    TABLE.get_or_init(|| cdt(DEFAULT_SIGMA, (DEFAULT_SIGMA * DEFAULT_BOUND_SIGMAS) as u32))
}

/// `n` samples of the discrete Gaussian with `sigma = 3.2`, cut at `|e| <= 19`, by inversion of a
/// 64-bit cumulative table. The table is scanned in full for every sample, so the time taken does not
/// depend on the value drawn.
pub fn gaussian(n: usize, rng: &mut impl CryptoRng) -> Zeroizing<Vec<i64>> {
    gaussian_with_table(n, default_cdt(), rng)
}

/// As [`gaussian`] with another `sigma` and cut `bound` (in absolute value).
///
/// # Errors
/// [`Error::InvalidSamplerParameter`] unless `0 < sigma <= 64` and `1 <= bound <= 1024`.
pub fn gaussian_with(
    n: usize,
    sigma: f64,
    bound: u32,
    rng: &mut impl CryptoRng,
) -> Result<Zeroizing<Vec<i64>>> {
    if !(sigma > 0.0 && sigma <= 64.0 && (1..=1024).contains(&bound)) {
        return Err(Error::InvalidSamplerParameter {
            reason: "sigma must be in (0, 64] and bound in [1, 1024]",
        });
    }
    Ok(gaussian_with_table(n, &cdt(sigma, bound), rng))
}

fn gaussian_with_table(n: usize, table: &[u64], rng: &mut impl CryptoRng) -> Zeroizing<Vec<i64>> {
    let mut out = Zeroizing::new(vec![0i64; n]);
    for x in out.iter_mut() {
        let r = rng.next_u64();
        let mag: i64 = table.iter().map(|&t| (r < t) as i64).sum();
        let sign = (rng.next_u32() & 1) as i64;
        // Branch-free: +mag or -mag.
        *x = mag - 2 * sign * mag;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::math::primes::ntt_primes_below;
    use crate::ring::poly::Coeff;

    fn rng() -> ChaCha20Rng {
        ChaCha20Rng::seed_from_u64(42)
    }

    #[test]
    fn uniform_signed_covers_its_range_evenly() {
        let mut r = rng();
        // b = 1: the four values -2..=1, each about a quarter of the time.
        let v = uniform_signed(40_000, 1, &mut r).unwrap();
        for x in -2..=1 {
            let f = v.iter().filter(|&&y| y == x).count() as f64 / 40_000.0;
            assert!((f - 0.25).abs() < 0.01, "{x}: {f}");
        }
        // b = 40: inside [-2^40, 2^40), mean ~0, variance ~ 2^80 / 3.
        let v = uniform_signed(40_000, 40, &mut r).unwrap();
        assert!(v.iter().all(|&x| (-(1i64 << 40)..(1i64 << 40)).contains(&x)));
        let (mean, var) = mean_var(&v);
        let b = 2f64.powi(40);
        assert!(mean.abs() < 0.02 * b, "{mean}");
        assert!((var / (b * b / 3.0) - 1.0).abs() < 0.03, "{var}");
        assert!(uniform_signed(1, 62, &mut r).is_ok());
        assert!(uniform_signed(1, 63, &mut r).is_err());
    }

    fn mean_var(v: &[i64]) -> (f64, f64) {
        let n = v.len() as f64;
        let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
        let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
        (mean, var)
    }

    #[test]
    fn gaussian_statistics() {
        let n = 1 << 18;
        let e = gaussian(n, &mut rng());
        let (mean, var) = mean_var(&e);
        // Standard error of the mean is sigma/sqrt(n) ~ 0.0063; of the variance ~ sigma^2 sqrt(2/n) ~ 0.028.
        assert!(mean.abs() < 0.04, "mean {mean}");
        assert!((var - 3.2f64.powi(2)).abs() < 0.15, "variance {var}");
        assert!(e.iter().all(|&x| x.abs() <= 19));
        assert!(e.iter().any(|&x| x.abs() >= 12), "tails never reached");
        // Symmetry: the number of positives and negatives agree within 5 standard deviations.
        let pos = e.iter().filter(|&&x| x > 0).count() as f64;
        let neg = e.iter().filter(|&&x| x < 0).count() as f64;
        assert!((pos - neg).abs() < 5.0 * (pos + neg).sqrt());
    }

    #[test]
    fn gaussian_with_other_sigma() {
        let e = gaussian_with(1 << 16, 1.0, 6, &mut rng()).unwrap();
        let (_, var) = mean_var(&e);
        assert!((var - 1.0).abs() < 0.05, "variance {var}");
        assert!(e.iter().all(|&x| x.abs() <= 6));
        assert!(gaussian_with(4, 0.0, 6, &mut rng()).is_err());
        assert!(gaussian_with(4, 3.2, 0, &mut rng()).is_err());
    }

    #[test]
    fn ternary_statistics() {
        let n = 1 << 18;
        let s = ternary(n, &mut rng());
        let (mean, var) = mean_var(&s);
        assert!(s.iter().all(|&x| (-1..=1).contains(&x)));
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 2.0 / 3.0).abs() < 0.01, "variance {var}");
    }

    #[test]
    fn hamming_weight_is_exact() {
        let mut r = rng();
        for &(n, h) in &[(1024usize, 0usize), (1024, 64), (1 << 16, 192), (16, 16)] {
            let s = ternary_hamming(n, h, &mut r).unwrap();
            assert_eq!(s.iter().filter(|&&x| x != 0).count(), h);
            assert!(s.iter().all(|&x| (-1..=1).contains(&x)));
        }
        let s = ternary_hamming(1 << 16, 8192, &mut r).unwrap();
        let plus = s.iter().filter(|&&x| x == 1).count() as f64;
        assert!((plus - 4096.0).abs() < 5.0 * 64.0, "{plus} of 8192 positive");
        assert!(matches!(
            ternary_hamming(8, 9, &mut r),
            Err(Error::InvalidSamplerParameter { .. })
        ));
    }

    #[test]
    fn uniform_residues_are_reduced_and_spread() {
        let n = 1 << 12;
        let basis = RingBasis::new(n, &ntt_primes_below(50, n, 3).unwrap()).unwrap();
        let p: RnsPoly<Coeff> = uniform(&basis, &mut rng());
        for (limb, m) in p.limbs().zip(basis.moduli()) {
            assert!(limb.iter().all(|&x| x < m.value()));
            // Mean of uniform [0, q) is (q-1)/2 with standard error q / sqrt(12 n) ~ 0.0045 q.
            let mean = limb.iter().map(|&x| x as f64).sum::<f64>() / n as f64 / m.value() as f64;
            assert!((mean - 0.5).abs() < 0.025, "normalised mean {mean}");
        }
    }
}
