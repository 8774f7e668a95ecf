//! `poly-approx`'s [`Evaluator`](poly_approx::eval::Evaluator) trait for CKKS ciphertexts, so that the
//! same evaluation plans run in plaintext, in the level/scale simulator and on ciphertexts.

use crate::error::{Error, Result};
use crate::params::Parameters;
use crate::scheme::evaluator::{Ciphertext, Evaluator, OpCounts};
use std::sync::Arc;

impl From<poly_approx::Error> for Error {
    fn from(e: poly_approx::Error) -> Self {
        Error::Approximation(e.to_string())
    }
}

/// A CKKS evaluator seen through `poly-approx`'s arithmetic trait. Products are relinearized but
/// not rescaled, constants are encoded at the scale the plan asks for, levels are never aligned
/// silently (the plans align explicitly with `drop_to_level`).
#[derive(Debug)]
pub struct CkksArith<'a> {
    params: Arc<Parameters>,
    eval: &'a Evaluator,
}

impl<'a> CkksArith<'a> {
    /// Wraps `eval`, which works over `params`.
    pub fn new(params: &Arc<Parameters>, eval: &'a Evaluator) -> Self {
        Self {
            params: params.clone(),
            eval,
        }
    }
}

impl poly_approx::eval::Evaluator for CkksArith<'_> {
    type Value = Ciphertext;
    type Error = Error;

    fn level(&self, x: &Ciphertext) -> usize {
        x.level()
    }
    fn scale(&self, x: &Ciphertext) -> f64 {
        x.scale()
    }
    fn rescale_divisor(&self, level: usize) -> f64 {
        self.params.q().get(level).map(|&q| q as f64).unwrap_or(f64::NAN)
    }
    fn add(&mut self, a: &Ciphertext, b: &Ciphertext) -> Result<Ciphertext> {
        self.eval.add(a, b)
    }
    fn sub(&mut self, a: &Ciphertext, b: &Ciphertext) -> Result<Ciphertext> {
        self.eval.sub(a, b)
    }
    fn mul(&mut self, a: &Ciphertext, b: &Ciphertext) -> Result<Ciphertext> {
        self.eval.mul_relin(a, b)
    }
    fn mul_const(&mut self, a: &Ciphertext, constant: f64, constant_scale: f64) -> Result<Ciphertext> {
        self.eval.mul_const(a, constant, constant_scale)
    }
    fn add_const(&mut self, a: &Ciphertext, constant: f64) -> Result<Ciphertext> {
        self.eval.add_const(a, constant)
    }
    fn rescale(&mut self, a: &Ciphertext) -> Result<Ciphertext> {
        self.eval.rescale(a)
    }
    fn drop_to_level(&mut self, a: &Ciphertext, level: usize) -> Result<Ciphertext> {
        self.eval.drop_to_level(a, level)
    }
}

/// The evaluator's counts for one evaluation of `plan` on a ciphertext through [`CkksArith`], by a
/// dry run on the level/scale simulator: each non-scalar product is a relinearized ciphertext
/// product (one key switch and its decomposition); products by constants are not counted.
///
/// # Errors
/// A plan the simulator refuses.
pub fn plan_op_counts(plan: &poly_approx::eval::EvalPlan) -> Result<OpCounts> {
    let (_, c) = plan.simulate(poly_approx::eval::LevelModel::default())?;
    Ok(OpCounts {
        key_switches: c.nonscalar_mults,
        decompositions: c.nonscalar_mults,
        ct_mults: c.nonscalar_mults,
        pt_mults: 0,
        rescales: c.rescales,
    })
}
