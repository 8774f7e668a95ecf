//! The 128-bit security bound on `log2(QP)` for ternary secrets and sigma = 3.2.
//!
//! References:
//! - M. Albrecht et al., "Homomorphic Encryption Standard" (2018), Table 1 (classical, ternary).
//! - J. Bossuat et al., "Security Guidelines for Implementing Homomorphic Encryption", 2024
//!   (<https://eprint.iacr.org/2024/463>): the updated, slightly lower bounds used here for N <= 2^15.
//! - OpenFHE `stdlatticeparms.cpp` (`HEStd_ternary`, `HEStd_128_classic`): 1747 and 3523 for
//!   N = 2^16 and 2^17, which the standard's table does not cover.

/// Largest `log2(QP)` giving 128-bit classical security at ring degree `2^log_n`, if tabulated.
pub fn max_log_qp_128(log_n: u32) -> Option<u32> {
    match log_n {
        10 => Some(26),
        11 => Some(53),
        12 => Some(106),
        13 => Some(214),
        14 => Some(430),
        15 => Some(868),
        16 => Some(1747),
        17 => Some(3523),
        _ => None,
    }
}
