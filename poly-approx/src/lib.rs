//! Polynomial approximation for HE-friendly models: Chebyshev interpolation, Remez minimax,
//! composite polynomials and depth-optimal evaluation plans.
//!
//! This crate depends on nothing else of ours; `ckks` implements its evaluation trait for ciphertexts.
//!
//! # Overview
//! - [`ChebyshevPoly`]: a Chebyshev series on an [`Interval`], Clenshaw evaluation, monomial
//!   conversion ([`poly`]).
//! - [`chebyshev::interpolate`]: interpolation at Chebyshev points via an FFT-based DCT.
//! - [`remez::remez`]: minimax polynomials on an interval or a union of intervals ([`Domain`]),
//!   weighted, odd/even, reporting the alternation points and the achieved error.
//! - [`composite::CompositeSign`], [`composite::CompositeRelu`]: sign/ReLU as compositions of
//!   small odd minimax polynomials, with a depth- or product-optimal degree search.
//! - [`newton::NewtonApprox`]: `1/sqrt(x)` and `1/x` as a polynomial guess plus Newton steps.
//! - [`functions`]: the target functions (exact GELU with our own `erf`, SiLU, sigmoid, exp,
//!   reciprocals, powers) with recommended intervals.
//! - [`eval`]: the [`eval::Evaluator`] trait with explicit levels and scales, implemented for
//!   plaintext `f64` / `Vec<f64>` ([`eval::PlainEvaluator`]) and a level/scale simulator
//!   ([`eval::SimEvaluator`]); [`eval::EvalPlan`] evaluates a degree-`d` polynomial in exactly
//!   `ceil(log2(d + 1))` levels with baby-step/giant-step products.
//! - [`table::approx_error_table`]: degree / depth / products / error rows for reports.
//!
//! ```
//! use poly_approx::eval::{EvalPlan, SimEvaluator};
//! use poly_approx::functions::gelu;
//! use poly_approx::remez::minimax;
//! use poly_approx::Interval;
//!
//! let interval = Interval::new(-20.0, 20.0)?;
//! let best = minimax(gelu, interval, 31)?;
//! assert!(best.max_error < 0.05);
//! let plan = EvalPlan::new(&best.poly)?;
//! assert_eq!(plan.poly_depth(), 5);
//! let mut sim = SimEvaluator::default();
//! let x = sim.fresh(plan.depth());
//! let y = plan.evaluate(&mut sim, &x)?;
//! assert_eq!(y.level, 0);
//! assert_eq!(sim.counts().nonscalar_mults, plan.nonscalar_mults());
//! # Ok::<(), poly_approx::Error>(())
//! ```
//!
//! References:
//! - I. Zimerman, M. Baruch, N. Drucker, G. Ezov, O. Soceanu, L. Wolf, "Converting Transformers to
//!   Polynomial Form for Secure Inference Over Homomorphic Encryption", ICML 2024,
//!   <https://arxiv.org/abs/2311.08610>.
//! - L. N. Trefethen, *Approximation Theory and Approximation Practice*, SIAM 2019.
//! - J.-P. Bossuat, C. Mouchet, J. Troncoso-Pastoriza, J.-P. Hubaux, EUROCRYPT 2021,
//!   <https://eprint.iacr.org/2020/1203>.
//! - E. Lee, J.-W. Lee, Y.-S. Kim, J.-S. No, <https://eprint.iacr.org/2020/834>.
//! - A. Panda, <https://eprint.iacr.org/2022/423>.

pub mod chebyshev;
pub mod composite;
pub mod error;
pub mod eval;
pub mod functions;
pub mod interval;
mod linalg;
pub mod measure;
pub mod newton;
pub mod poly;
pub mod remez;
pub mod table;

pub use error::{Error, Result};
pub use interval::{Domain, Interval};
pub use poly::ChebyshevPoly;
