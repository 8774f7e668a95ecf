//! Integer arithmetic: word-size moduli, primes, the NTT and RNS bases. Knows nothing of polynomials'
//! meaning, of keys or of encryption.

pub mod dot;
pub mod lanes;
pub mod modulus;
pub mod ntt;
pub mod primes;
pub mod rns;
pub mod simd;
