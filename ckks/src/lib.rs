//! RNS-CKKS homomorphic encryption, written from scratch.
//!
//! The crate is layered as a one-way chain; a layer never imports from a layer above it:
//!
//! ```text
//! math     word-size moduli, primes, NTT (scalar / AVX2 / AVX-512 IFMA), RNS bases
//!   |
//! ring     RNS polynomials over Z_Q[X]/(X^N+1): arithmetic, automorphisms, rescaling, sampling
//!   |
//! params   checked parameter sets (128-bit HE-standard bound), per-level rings and constants
//!   |
//! rlwe     keys (secret zeroized on drop), encryption, decryption, hybrid key switching
//!   |
//! scheme   CKKS encoder (canonical embedding) and evaluator (levels, scales, slots checked)
//! ```
//!
//! Not yet here (open issues): hoisted rotations, serialization, bootstrapping.
//!
//! Parallelism across RNS limbs uses rayon; run inside a one-thread pool
//! (`rayon::ThreadPoolBuilder::new().num_threads(1)`) or set `RAYON_NUM_THREADS=1` to pin to one thread.
//! `CKKS_BACKEND=scalar|avx2|avx512ifma` caps the SIMD backend.
#![deny(unsafe_op_in_unsafe_fn)]

pub mod circuits;
pub mod error;
pub mod math;
pub mod params;
pub mod ring;
pub mod rlwe;
pub mod scheme;
pub mod serialize;

pub use error::{Error, Result};

#[cfg(test)]
mod layering {
    /// The chain is one-way: `math` and `ring` never import from the layers above them.
    #[test]
    fn lower_layers_do_not_import_upper_ones() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut stack = vec![root.join("math"), root.join("ring")];
        let mut checked = 0;
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    for upper in ["crate::params", "crate::rlwe", "crate::scheme"] {
                        assert!(!text.contains(upper), "{} imports {upper}", path.display());
                    }
                    checked += 1;
                }
            }
        }
        assert!(checked >= 10, "only {checked} files checked");
    }
}
