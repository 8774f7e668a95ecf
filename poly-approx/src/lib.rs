//! Polynomial approximation for HE-friendly models: Chebyshev interpolation, Remez minimax,
//! composite polynomials and depth-optimal evaluation plans.
//!
//! This crate depends on nothing else of ours; `ckks` implements its evaluation trait for ciphertexts.
