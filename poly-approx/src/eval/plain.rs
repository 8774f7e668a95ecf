//! Plaintext evaluation with the same level/scale rules as the simulator: the numbers are
//! computed exactly in f64 (constants are not rounded), while levels and scales are tracked and
//! checked, so a plaintext run both checks the arithmetic and reproduces the simulated depth.
//!
//! References:
//! - J. H. Cheon et al., <https://eprint.iacr.org/2016/421> (the operations being mirrored).

use std::marker::PhantomData;

use super::ledger::{Ledger, Tag};
use super::{Evaluator, LevelModel, OpCounts};
use crate::error::{Error, Result};

/// Plaintext data: a scalar, or a vector of slots operated on elementwise.
pub trait PlainData: Clone {
    /// Elementwise sum.
    fn add(&self, other: &Self) -> Result<Self>;
    /// Elementwise difference.
    fn sub(&self, other: &Self) -> Result<Self>;
    /// Elementwise product.
    fn mul(&self, other: &Self) -> Result<Self>;
    /// Product with a constant.
    fn mul_scalar(&self, c: f64) -> Self;
    /// Sum with a constant.
    fn add_scalar(&self, c: f64) -> Self;
}

impl PlainData for f64 {
    fn add(&self, other: &Self) -> Result<Self> {
        Ok(self + other)
    }
    fn sub(&self, other: &Self) -> Result<Self> {
        Ok(self - other)
    }
    fn mul(&self, other: &Self) -> Result<Self> {
        Ok(self * other)
    }
    fn mul_scalar(&self, c: f64) -> Self {
        self * c
    }
    fn add_scalar(&self, c: f64) -> Self {
        self + c
    }
}

fn zip(a: &[f64], b: &[f64], op: impl Fn(f64, f64) -> f64) -> Result<Vec<f64>> {
    if a.len() != b.len() {
        return Err(Error::LengthMismatch {
            left: a.len(),
            right: b.len(),
        });
    }
    Ok(a.iter().zip(b).map(|(&x, &y)| op(x, y)).collect())
}

impl PlainData for Vec<f64> {
    fn add(&self, other: &Self) -> Result<Self> {
        zip(self, other, |x, y| x + y)
    }
    fn sub(&self, other: &Self) -> Result<Self> {
        zip(self, other, |x, y| x - y)
    }
    fn mul(&self, other: &Self) -> Result<Self> {
        zip(self, other, |x, y| x * y)
    }
    fn mul_scalar(&self, c: f64) -> Self {
        self.iter().map(|x| x * c).collect()
    }
    fn add_scalar(&self, c: f64) -> Self {
        self.iter().map(|x| x + c).collect()
    }
}

/// A plaintext value with its level and scale.
#[derive(Debug, Clone, PartialEq)]
pub struct Plain<T> {
    /// The data.
    pub value: T,
    /// Remaining levels.
    pub level: usize,
    /// Current scale (bookkeeping only; `value` is the real number itself).
    pub scale: f64,
}

/// Evaluator over [`Plain`] values.
#[derive(Debug, Clone, PartialEq)]
pub struct PlainEvaluator<T> {
    ledger: Ledger,
    _data: PhantomData<T>,
}

impl<T: PlainData> Default for PlainEvaluator<T> {
    fn default() -> Self {
        Self::new(LevelModel::default())
    }
}

impl<T: PlainData> PlainEvaluator<T> {
    /// An evaluator following `model`.
    pub fn new(model: LevelModel) -> Self {
        Self {
            ledger: Ledger::new(model),
            _data: PhantomData,
        }
    }

    /// Wraps `value` at `level` and the model's default scale.
    pub fn encode(&self, value: T, level: usize) -> Plain<T> {
        Plain {
            value,
            level,
            scale: self.ledger.model.default_scale(),
        }
    }

    /// Operations performed so far.
    pub fn counts(&self) -> OpCounts {
        self.ledger.counts
    }

    /// Resets the operation counts.
    pub fn reset_counts(&mut self) {
        self.ledger.counts = OpCounts::default();
    }
}

fn tag<T>(p: &Plain<T>) -> Tag {
    Tag {
        level: p.level,
        scale: p.scale,
    }
}

fn with<T>(value: T, t: Tag) -> Plain<T> {
    Plain {
        value,
        level: t.level,
        scale: t.scale,
    }
}

impl<T: PlainData> Evaluator for PlainEvaluator<T> {
    type Value = Plain<T>;
    type Error = Error;

    fn level(&self, x: &Plain<T>) -> usize {
        x.level
    }
    fn scale(&self, x: &Plain<T>) -> f64 {
        x.scale
    }
    fn rescale_divisor(&self, level: usize) -> f64 {
        self.ledger.model.rescale_divisor(level)
    }
    fn add(&mut self, a: &Plain<T>, b: &Plain<T>) -> Result<Plain<T>> {
        let t = self.ledger.add(tag(a), tag(b))?;
        Ok(with(a.value.add(&b.value)?, t))
    }
    fn sub(&mut self, a: &Plain<T>, b: &Plain<T>) -> Result<Plain<T>> {
        let t = self.ledger.add(tag(a), tag(b))?;
        Ok(with(a.value.sub(&b.value)?, t))
    }
    fn mul(&mut self, a: &Plain<T>, b: &Plain<T>) -> Result<Plain<T>> {
        let t = self.ledger.mul(tag(a), tag(b))?;
        Ok(with(a.value.mul(&b.value)?, t))
    }
    fn mul_const(&mut self, a: &Plain<T>, constant: f64, constant_scale: f64) -> Result<Plain<T>> {
        let t = self.ledger.mul_const(tag(a), constant, constant_scale)?;
        Ok(with(a.value.mul_scalar(constant), t))
    }
    fn add_const(&mut self, a: &Plain<T>, constant: f64) -> Result<Plain<T>> {
        let t = self.ledger.add_const(tag(a), constant)?;
        Ok(with(a.value.add_scalar(constant), t))
    }
    fn rescale(&mut self, a: &Plain<T>) -> Result<Plain<T>> {
        let t = self.ledger.rescale(tag(a))?;
        Ok(with(a.value.clone(), t))
    }
    fn drop_to_level(&mut self, a: &Plain<T>, level: usize) -> Result<Plain<T>> {
        let t = self.ledger.drop_to(tag(a), level)?;
        Ok(with(a.value.clone(), t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vector_ops_are_elementwise_and_checked() {
        let mut ev = PlainEvaluator::<Vec<f64>>::default();
        let a = ev.encode(vec![1.0, 2.0], 2);
        let b = ev.encode(vec![3.0, 4.0], 2);
        let p = ev.mul(&a, &b).unwrap();
        let p = ev.rescale(&p).unwrap();
        assert_eq!(p.value, vec![3.0, 8.0]);
        assert_eq!(p.level, 1);
        let c = ev.encode(vec![1.0], 2);
        assert!(matches!(ev.add(&a, &c), Err(Error::LengthMismatch { .. })));
        let d = ev.sub(&b, &a).unwrap();
        assert_eq!(d.value, vec![2.0, 2.0]);
    }
}
