//! Homomorphic-style evaluation: a small arithmetic trait with explicit level and scale
//! management, three implementations (plaintext `f64`, plaintext `Vec<f64>` slots, and a
//! level/scale simulator), and depth-optimal evaluation plans.
//!
//! # The model
//! Values carry a *level* (remaining moduli) and a *scale* (the CKKS encoding factor). The trait
//! mirrors RNS-CKKS:
//! - [`Evaluator::mul`] is a ciphertext-ciphertext (non-scalar) product, relinearised but not
//!   rescaled: scales multiply, the level is unchanged;
//! - [`Evaluator::mul_const`] multiplies by a real constant encoded at an explicit scale
//!   (`round(c * scale)` in CKKS): scales multiply, no level is consumed by itself. A non-integer
//!   constant therefore needs a later [`Evaluator::rescale`], i.e. it costs a level unless that
//!   rescale is shared with a non-scalar product, which is exactly what [`EvalPlan`] arranges
//!   (the Lattigo / Bossuat et al. technique of pre-scaling the baby-step constants);
//! - [`Evaluator::rescale`] drops one level and divides the scale by that level's modulus
//!   ([`Evaluator::rescale_divisor`]); [`Evaluator::drop_to_level`] drops levels without rescaling;
//! - additions need equal levels and (up to rounding) equal scales.
//!
//! Depth is measured as levels consumed: `level(input) - level(output)`. The simulator
//! ([`SimEvaluator`]) enforces these rules strictly (level and scale mismatches, constants that
//! would be rounded to fewer than `min_const_scale` units are errors) and counts operations, so a
//! plan that runs on it runs on a CKKS backend with the same depth.
//!
//! A CKKS backend implements [`Evaluator`] on its evaluator/key-holder type with
//! `Value = Ciphertext`, converting [`crate::Error`] into its own error via `From`.
//!
//! References:
//! - J. H. Cheon, A. Kim, M. Kim, Y. Song, "Homomorphic Encryption for Arithmetic of Approximate
//!   Numbers", ASIACRYPT 2017, <https://eprint.iacr.org/2016/421>.
//! - J.-P. Bossuat, C. Mouchet, J. Troncoso-Pastoriza, J.-P. Hubaux, "Efficient Bootstrapping for
//!   Approximate Homomorphic Encryption with Non-Sparse Keys", EUROCRYPT 2021,
//!   <https://eprint.iacr.org/2020/1203>, sec. 4.2 (scale-exact, depth-optimal evaluation).
//! - Lattigo, `he/hefloat/polynomial_evaluator.go`, <https://github.com/tuneinsight/lattigo>.

mod ledger;
mod plain;
mod plan;
mod power;
mod sim;

pub use ledger::LevelModel;
pub use plain::{Plain, PlainData, PlainEvaluator};
pub use plan::EvalPlan;
pub use power::PowerPlan;
pub use sim::{Sim, SimEvaluator};

/// Counts of the operations an evaluator performed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpCounts {
    /// Ciphertext-ciphertext products (the expensive ones, with relinearisation).
    pub nonscalar_mults: usize,
    /// Products by constants.
    pub const_mults: usize,
    /// Additions and subtractions of two values.
    pub additions: usize,
    /// Additions of constants.
    pub const_additions: usize,
    /// Rescales (each consumes a level).
    pub rescales: usize,
    /// Level drops without rescaling.
    pub level_drops: usize,
}

/// Arithmetic on leveled, scaled values (plaintext, simulated, or CKKS ciphertexts).
///
/// Operations take values by reference and return new owned values; constants are `f64`.
/// Implementations should reject operand level mismatches rather than align silently, so
/// that depth accounting stays honest (the plans align explicitly).
pub trait Evaluator {
    /// The value type (a ciphertext, a plaintext vector, a simulator token).
    type Value: Clone;
    /// The backend's error type; it must absorb this crate's errors.
    type Error: From<crate::Error>;

    /// Current level (number of rescales still possible).
    fn level(&self, x: &Self::Value) -> usize;
    /// Current scale.
    fn scale(&self, x: &Self::Value) -> f64;
    /// The factor a rescale at `level` divides the scale by (the modulus it drops).
    fn rescale_divisor(&self, level: usize) -> f64;
    /// `a + b`; equal levels and scales.
    fn add(&mut self, a: &Self::Value, b: &Self::Value) -> Result<Self::Value, Self::Error>;
    /// `a - b`; equal levels and scales.
    fn sub(&mut self, a: &Self::Value, b: &Self::Value) -> Result<Self::Value, Self::Error>;
    /// Non-scalar product `a * b` (relinearised, not rescaled); equal levels, scales multiply.
    fn mul(&mut self, a: &Self::Value, b: &Self::Value) -> Result<Self::Value, Self::Error>;
    /// `a * constant` with the constant encoded at `constant_scale`; the scale is multiplied by
    /// `constant_scale`, no level is consumed (use `constant_scale = 1` for small integers).
    fn mul_const(
        &mut self,
        a: &Self::Value,
        constant: f64,
        constant_scale: f64,
    ) -> Result<Self::Value, Self::Error>;
    /// `a + constant`, the constant encoded at `a`'s scale.
    fn add_const(&mut self, a: &Self::Value, constant: f64) -> Result<Self::Value, Self::Error>;
    /// Drops one level, dividing the scale by `rescale_divisor(level(a))`.
    fn rescale(&mut self, a: &Self::Value) -> Result<Self::Value, Self::Error>;
    /// Drops to `level` (at most the current level) without changing the scale.
    fn drop_to_level(&mut self, a: &Self::Value, level: usize) -> Result<Self::Value, Self::Error>;
}

/// `Ok(level(x))` when `x` has at least `needed` levels left, else [`crate::Error::LevelExhausted`]:
/// the guard every evaluation entry point starts with.
pub(crate) fn require_levels<E: Evaluator>(ev: &E, x: &E::Value, needed: usize) -> Result<usize, E::Error> {
    let available = ev.level(x);
    if available < needed {
        return Err(crate::Error::LevelExhausted { needed, available }.into());
    }
    Ok(available)
}

/// Drops `v` to `level` only if it is above it (avoids counting no-op drops).
pub(crate) fn align<E: Evaluator>(ev: &mut E, v: &E::Value, level: usize) -> Result<E::Value, E::Error> {
    if ev.level(v) == level {
        Ok(v.clone())
    } else {
        ev.drop_to_level(v, level)
    }
}
