//! Which vector kernels this CPU can run, detected once at run time.
//!
//! Every SIMD kernel has a scalar twin that is always compiled and serves as the reference. The
//! environment variable `CKKS_BACKEND` (`scalar`, `avx2`, `avx512ifma`) caps the detected backend, so
//! tests and benchmarks can pin a path without recompiling.

use std::sync::OnceLock;

/// A family of kernels. Ordered: a later backend is preferred when available.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Backend {
    /// Portable 64-bit code; the reference twin of every vector kernel.
    Scalar,
    /// AVX2: four 64-bit lanes, products emulated with 32x32->64 multiplies. Any modulus below 2^61.
    Avx2,
    /// AVX-512F + IFMA: eight lanes with the 52-bit multiply-add; moduli below 2^50 (others use AVX2).
    Avx512Ifma,
}

impl Backend {
    /// All backends, in order of preference from worst to best.
    pub const ALL: [Backend; 3] = [Backend::Scalar, Backend::Avx2, Backend::Avx512Ifma];

    /// Whether this CPU can run the backend.
    pub fn is_available(self) -> bool {
        match self {
            Backend::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Backend::Avx2 => std::arch::is_x86_feature_detected!("avx2"),
            #[cfg(target_arch = "x86_64")]
            Backend::Avx512Ifma => {
                std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512ifma")
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// The best available backend, capped by `CKKS_BACKEND` if set; detected once per process.
    pub fn detect() -> Backend {
        static BEST: OnceLock<Backend> = OnceLock::new();
        *BEST.get_or_init(|| {
            let cap = match std::env::var("CKKS_BACKEND").as_deref() {
                Ok("scalar") => Backend::Scalar,
                Ok("avx2") => Backend::Avx2,
                _ => Backend::Avx512Ifma,
            };
            Backend::ALL
                .into_iter()
                .filter(|b| *b <= cap && b.is_available())
                .max()
                .unwrap_or(Backend::Scalar)
        })
    }

    /// Short lowercase name, as accepted by `CKKS_BACKEND`.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Scalar => "scalar",
            Backend::Avx2 => "avx2",
            Backend::Avx512Ifma => "avx512ifma",
        }
    }
}
