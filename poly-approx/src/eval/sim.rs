//! A level/scale simulator: values are just `(level, scale)` tags, operations check the CKKS
//! rules and are counted. Running a plan on it proves its depth and counts its products.
//!
//! References:
//! - J.-P. Bossuat et al., <https://eprint.iacr.org/2020/1203>, sec. 4.2.

use super::ledger::{Ledger, Tag};
use super::{Evaluator, LevelModel, OpCounts};
use crate::error::Error;

/// A simulated ciphertext: its level and scale.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sim {
    /// Remaining levels.
    pub level: usize,
    /// Current scale.
    pub scale: f64,
}

/// Evaluator over [`Sim`] tokens; see the module docs.
#[derive(Debug, Clone, PartialEq)]
pub struct SimEvaluator {
    ledger: Ledger,
}

impl Default for SimEvaluator {
    fn default() -> Self {
        Self::new(LevelModel::default())
    }
}

impl SimEvaluator {
    /// A simulator following `model`.
    pub fn new(model: LevelModel) -> Self {
        Self {
            ledger: Ledger::new(model),
        }
    }

    /// A fresh value at `level` and the model's default scale.
    pub fn fresh(&self, level: usize) -> Sim {
        Sim {
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

    /// The level model.
    pub fn model(&self) -> &LevelModel {
        &self.ledger.model
    }
}

fn tag(s: &Sim) -> Tag {
    Tag {
        level: s.level,
        scale: s.scale,
    }
}

fn sim(t: Tag) -> Sim {
    Sim {
        level: t.level,
        scale: t.scale,
    }
}

impl Evaluator for SimEvaluator {
    type Value = Sim;
    type Error = Error;

    fn level(&self, x: &Sim) -> usize {
        x.level
    }
    fn scale(&self, x: &Sim) -> f64 {
        x.scale
    }
    fn rescale_divisor(&self, level: usize) -> f64 {
        self.ledger.model.rescale_divisor(level)
    }
    fn add(&mut self, a: &Sim, b: &Sim) -> Result<Sim, Error> {
        self.ledger.add(tag(a), tag(b)).map(sim)
    }
    fn sub(&mut self, a: &Sim, b: &Sim) -> Result<Sim, Error> {
        self.ledger.add(tag(a), tag(b)).map(sim)
    }
    fn mul(&mut self, a: &Sim, b: &Sim) -> Result<Sim, Error> {
        self.ledger.mul(tag(a), tag(b)).map(sim)
    }
    fn mul_const(&mut self, a: &Sim, constant: f64, constant_scale: f64) -> Result<Sim, Error> {
        self.ledger.mul_const(tag(a), constant, constant_scale).map(sim)
    }
    fn add_const(&mut self, a: &Sim, constant: f64) -> Result<Sim, Error> {
        self.ledger.add_const(tag(a), constant).map(sim)
    }
    fn rescale(&mut self, a: &Sim) -> Result<Sim, Error> {
        self.ledger.rescale(tag(a)).map(sim)
    }
    fn drop_to_level(&mut self, a: &Sim, level: usize) -> Result<Sim, Error> {
        self.ledger.drop_to(tag(a), level).map(sim)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_are_enforced() {
        let mut ev = SimEvaluator::default();
        let x = ev.fresh(3);
        let y = ev.fresh(2);
        assert!(matches!(ev.add(&x, &y), Err(Error::LevelMismatch { .. })));
        assert!(matches!(ev.mul(&x, &y), Err(Error::LevelMismatch { .. })));
        // A non-integer constant at scale 1 would be rounded away.
        assert!(matches!(
            ev.mul_const(&x, 0.3, 1.0),
            Err(Error::InexactConstant { .. })
        ));
        let two_x = ev.mul_const(&x, 2.0, 1.0).unwrap();
        assert_eq!(two_x, x);
        let xx = ev.mul(&x, &x).unwrap();
        assert!(matches!(ev.add(&xx, &x), Err(Error::ScaleMismatch { .. })));
        let r = ev.rescale(&xx).unwrap();
        assert_eq!(r.level, 2);
        assert_eq!(r.scale, x.scale);
        let low = ev.fresh(0);
        assert!(matches!(ev.rescale(&low), Err(Error::LevelExhausted { .. })));
        assert!(matches!(
            ev.drop_to_level(&low, 1),
            Err(Error::LevelExhausted { .. })
        ));
        assert_eq!(ev.counts().nonscalar_mults, 1);
        assert_eq!(ev.counts().rescales, 1);
    }
}
