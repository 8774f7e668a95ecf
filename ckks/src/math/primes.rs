//! NTT-friendly primes (`q = 1 mod 2N`), a deterministic primality test, and primitive roots.
//!
//! References:
//! - G. Miller / M. Rabin; the bases {2, 3, ..., 37} make Miller-Rabin deterministic below
//!   3.3 * 10^24 (Sorenson and Webster, "Strong pseudoprimes to twelve prime bases", Math. Comp. 2017).

use crate::error::{Error, Result};
use crate::math::modulus::{Modulus, MAX_MODULUS_BITS};

const WITNESSES: [u64; 12] = [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37];

/// Deterministic primality test for any 64-bit integer (Miller-Rabin with the first twelve primes).
pub fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    for p in WITNESSES {
        if n.is_multiple_of(p) {
            return n == p;
        }
    }
    let d_shift = (n - 1).trailing_zeros();
    let d = (n - 1) >> d_shift;
    let mulmod = |a: u64, b: u64| ((a as u128 * b as u128) % n as u128) as u64;
    let powmod = |mut b: u64, mut e: u64| {
        let mut acc = 1u64;
        while e > 0 {
            if e & 1 == 1 {
                acc = mulmod(acc, b);
            }
            b = mulmod(b, b);
            e >>= 1;
        }
        acc
    };
    'witness: for a in WITNESSES {
        let mut x = powmod(a, d);
        if x == 1 || x == n - 1 {
            continue;
        }
        for _ in 1..d_shift {
            x = mulmod(x, x);
            if x == n - 1 {
                continue 'witness;
            }
        }
        return false;
    }
    true
}

fn check_ring_degree(n: usize) -> Result<()> {
    if !n.is_power_of_two() || !(2..=1 << 17).contains(&n) {
        return Err(Error::InvalidRingDegree {
            n,
            min_log: 1,
            max_log: 17,
        });
    }
    Ok(())
}

/// The `count` largest primes `q < 2^bits` with `q = 1 mod 2n`, in decreasing order.
///
/// # Errors
/// [`Error::InvalidRingDegree`] for a bad `n`, [`Error::InvalidModulus`] when `bits` is out of
/// `(log2(2n), 61]`, [`Error::NotEnoughPrimes`] when fewer than `count` such primes exist.
pub fn ntt_primes_below(bits: u32, n: usize, count: usize) -> Result<Vec<u64>> {
    let two_n = check_prime_request(bits, n)?;
    let mut out = Vec::with_capacity(count);
    // Largest candidate below 2^bits that is 1 mod 2n.
    let mut c = (1u64 << bits) - two_n + 1;
    while out.len() < count && c > two_n {
        if is_prime(c) {
            out.push(c);
        }
        c -= two_n;
    }
    if out.len() < count {
        return Err(Error::NotEnoughPrimes {
            bits,
            two_n,
            wanted: count,
            found: out.len(),
        });
    }
    Ok(out)
}

/// `count` primes `q = 1 mod 2n` as close as possible to `2^bits`, alternating above and below, skipping
/// those in `exclude`. CKKS wants rescaling primes close to the scale so that the scale stays near `2^bits`.
///
/// # Errors
/// As [`ntt_primes_below`]; primes above `2^bits` are only taken while they stay below `2^61`.
pub fn ntt_primes_near(bits: u32, n: usize, count: usize, exclude: &[u64]) -> Result<Vec<u64>> {
    let two_n = check_prime_request(bits, n)?;
    let center = 1u64 << bits;
    let limit = 1u64 << MAX_MODULUS_BITS;
    let mut above = center + 1;
    let mut below = center + 1 - two_n;
    let mut out = Vec::with_capacity(count);
    let mut take_above = true;
    let (mut above_done, mut below_done) = (false, false);
    while out.len() < count && !(above_done && below_done) {
        let next_above = take_above && !above_done;
        if next_above || below_done {
            if above >= limit || above.checked_add(two_n).is_none() {
                above_done = true;
            } else {
                if is_prime(above) && !exclude.contains(&above) {
                    out.push(above);
                    take_above = false;
                }
                above += two_n;
            }
        } else {
            if below <= two_n {
                below_done = true;
            } else {
                if is_prime(below) && !exclude.contains(&below) {
                    out.push(below);
                    take_above = true;
                }
                below -= two_n;
            }
        }
    }
    if out.len() < count {
        return Err(Error::NotEnoughPrimes {
            bits,
            two_n,
            wanted: count,
            found: out.len(),
        });
    }
    Ok(out)
}

fn check_prime_request(bits: u32, n: usize) -> Result<u64> {
    check_ring_degree(n)?;
    let two_n = 2 * n as u64;
    if bits > MAX_MODULUS_BITS || (1u64 << bits) <= 2 * two_n {
        return Err(Error::InvalidModulus {
            q: 1u64 << bits.min(63),
            reason: "prime size out of range for this ring",
        });
    }
    Ok(two_n)
}

/// Checks that `q` is a prime supporting a negacyclic NTT of size `n` (`q = 1 mod 2n`).
///
/// # Errors
/// [`Error::InvalidRingDegree`], [`Error::InvalidModulus`], [`Error::NotPrime`] or [`Error::NotNttFriendly`].
pub fn check_ntt_prime(q: u64, n: usize) -> Result<Modulus> {
    check_ring_degree(n)?;
    let m = Modulus::new(q)?;
    if !is_prime(q) {
        return Err(Error::NotPrime { q });
    }
    let two_n = 2 * n as u64;
    if q % two_n != 1 {
        return Err(Error::NotNttFriendly { q, two_n });
    }
    Ok(m)
}

/// The smallest primitive `2n`-th root of unity modulo the prime `q` (a root `psi` with `psi^n = -1`).
/// Taking the smallest makes the NTT tables, and therefore the NTT form, canonical.
///
/// # Errors
/// As [`check_ntt_prime`].
pub fn min_primitive_root_2n(q: u64, n: usize) -> Result<u64> {
    let m = check_ntt_prime(q, n)?;
    let two_n = 2 * n as u64;
    let exp = (q - 1) / two_n;
    let mut psi = 0;
    for x in 2..q {
        let g = m.pow(x, exp);
        // g has order dividing 2n; it is primitive iff g^n = -1.
        if m.pow(g, n as u64) == q - 1 {
            psi = g;
            break;
        }
    }
    if psi == 0 {
        return Err(Error::NotNttFriendly { q, two_n });
    }
    // All primitive 2n-th roots are the odd powers of psi.
    let psi2 = m.mul(psi, psi);
    let (mut cur, mut best) = (psi, psi);
    for _ in 0..n {
        best = best.min(cur);
        cur = m.mul(cur, psi2);
    }
    Ok(best)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primality_known_values() {
        let primes = [
            2u64,
            3,
            5,
            97,
            65537,
            1_000_000_007,
            (1 << 61) - 1,
            18446744073709551557,
        ];
        for p in primes {
            assert!(is_prime(p), "{p}");
        }
        // Carmichael numbers and strong pseudoprimes to small bases.
        let composites = [
            0u64,
            1,
            4,
            561,
            1105,
            3215031751,
            3825123056546413051,
            (1 << 61) + 1,
            u64::MAX,
        ];
        for c in composites {
            assert!(!is_prime(c), "{c}");
        }
    }

    #[test]
    fn primality_matches_trial_division() {
        for n in 0u64..20_000 {
            let trial = n >= 2 && (2..).take_while(|d| d * d <= n).all(|d| n % d != 0);
            assert_eq!(is_prime(n), trial, "{n}");
        }
    }

    #[test]
    fn generated_primes_are_ntt_friendly() {
        for &(bits, n) in &[(30u32, 1usize << 10), (50, 1 << 16), (60, 1 << 17), (61, 1 << 16)] {
            let ps = ntt_primes_below(bits, n, 5).unwrap();
            assert!(ps.windows(2).all(|w| w[0] > w[1]));
            for &p in &ps {
                assert!(p < 1 << bits && p >= 1 << (bits - 1));
                check_ntt_prime(p, n).unwrap();
            }
        }
        let near = ntt_primes_near(40, 1 << 12, 6, &[]).unwrap();
        let mut sorted = near.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 6);
        for &p in &near {
            check_ntt_prime(p, 1 << 12).unwrap();
            assert!((p as f64 / (1u64 << 40) as f64 - 1.0).abs() < 1e-3);
        }
        let excluded = ntt_primes_near(40, 1 << 12, 3, &near[..2]).unwrap();
        assert!(!excluded.contains(&near[0]) && !excluded.contains(&near[1]));
    }

    #[test]
    fn bad_requests_are_errors() {
        assert!(matches!(
            ntt_primes_below(30, 1000, 1),
            Err(Error::InvalidRingDegree { .. })
        ));
        assert!(matches!(
            ntt_primes_below(62, 1024, 1),
            Err(Error::InvalidModulus { .. })
        ));
        assert!(matches!(
            ntt_primes_below(12, 1024, 1),
            Err(Error::InvalidModulus { .. })
        ));
        assert!(matches!(
            ntt_primes_below(20, 1 << 16, 100),
            Err(Error::NotEnoughPrimes { .. })
        ));
        assert!(matches!(
            check_ntt_prime(97, 1024),
            Err(Error::NotNttFriendly { .. })
        ));
        assert!(matches!(
            check_ntt_prime(12289 * 3, 1024),
            Err(Error::NotPrime { .. })
        ));
        assert!(check_ntt_prime(12289, 1024).is_ok());
    }

    #[test]
    fn primitive_root_has_order_2n() {
        for &(q, n) in &[
            (12289u64, 1024usize),
            (ntt_primes_below(50, 1 << 12, 1).unwrap()[0], 1 << 12),
        ] {
            let m = Modulus::new(q).unwrap();
            let psi = min_primitive_root_2n(q, n).unwrap();
            assert_eq!(m.pow(psi, n as u64), q - 1);
            assert_eq!(m.pow(psi, 2 * n as u64), 1);
        }
    }
}
