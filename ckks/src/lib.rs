//! RNS-CKKS homomorphic encryption, written from scratch.
//!
//! The crate is layered as a one-way chain; a layer never imports from a layer above it:
//!
//! ```text
//! math     word-size moduli, primes, NTT (scalar / AVX2 / AVX-512 IFMA), RNS bases
//!   |
//! ring     RNS polynomials over Z_Q[X]/(X^N+1): arithmetic, automorphisms, rescaling, sampling
//!   |
//! (scheme layers: parameters, keys, encoder, evaluator, bootstrapping -- tracked as open issues)
//! ```
//!
//! Parallelism across RNS limbs uses rayon; run inside a one-thread pool
//! (`rayon::ThreadPoolBuilder::new().num_threads(1)`) or set `RAYON_NUM_THREADS=1` to pin to one thread.
//! `CKKS_BACKEND=scalar|avx2|avx512ifma` caps the SIMD backend.
#![deny(unsafe_op_in_unsafe_fn)]

pub mod error;
pub mod math;
pub mod params;
pub mod ring;
pub mod rlwe;
pub mod scheme;

pub use error::{Error, Result};
