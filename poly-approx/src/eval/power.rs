//! Exact integer powers `x^p` (Power-Softmax numerators) by repeated squaring.
//!
//! The squares `x^{2^i}` are at depth `i`; the set bits of `p` are multiplied in ascending order,
//! so the running product never waits and the total depth is `ceil(log2 p)`, one less than a
//! Chebyshev-basis plan of the same degree would need when `p` is a power of two, and with no
//! constants at all (so no rounding).
//!
//! References:
//! - I. Zimerman, A. Adir, E. Aharoni, M. Avitan, M. Baruch, N. Drucker, J. Lerner, R. Masalha,
//!   R. Meiri, O. Soceanu, "Power-Softmax: Towards Secure LLM Inference over Encrypted Data",
//!   2024, <https://arxiv.org/abs/2410.09457>.
//! - D. E. Knuth, *The Art of Computer Programming* vol. 2, sec. 4.6.3 (binary powering).

use super::{align, Evaluator};
use crate::error::Error;

/// Evaluation of `x^p` for an integer `p`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PowerPlan {
    p: u32,
}

impl PowerPlan {
    /// Plan for `x^p`.
    pub fn new(p: u32) -> Self {
        Self { p }
    }

    /// The exponent.
    pub fn exponent(&self) -> u32 {
        self.p
    }

    /// Levels consumed: `ceil(log2 p)` (0 for `p <= 1`).
    pub fn depth(&self) -> usize {
        if self.p <= 1 {
            0
        } else {
            (u32::BITS - (self.p - 1).leading_zeros()) as usize
        }
    }

    /// Non-scalar products: `floor(log2 p)` squarings plus one per extra set bit.
    pub fn nonscalar_mults(&self) -> usize {
        if self.p <= 1 {
            0
        } else {
            (u32::BITS - 1 - self.p.leading_zeros()) as usize + self.p.count_ones() as usize - 1
        }
    }

    /// Computes `x^p`, at level `level(x) - depth()`.
    pub fn evaluate<E: Evaluator>(&self, ev: &mut E, x: &E::Value) -> Result<E::Value, E::Error> {
        let available = ev.level(x);
        if available < self.depth() {
            return Err(Error::LevelExhausted {
                needed: self.depth(),
                available,
            }
            .into());
        }
        if self.p == 0 {
            let zero = ev.mul_const(x, 0.0, 1.0)?;
            return ev.add_const(&zero, 1.0);
        }
        let mut square = x.clone();
        let mut acc: Option<E::Value> = None;
        let mut bits = self.p;
        loop {
            if bits & 1 == 1 {
                acc = Some(match acc {
                    None => square.clone(),
                    Some(a) => {
                        let lvl = ev.level(&a).min(ev.level(&square));
                        let a = align(ev, &a, lvl)?;
                        let s = align(ev, &square, lvl)?;
                        let prod = ev.mul(&a, &s)?;
                        ev.rescale(&prod)?
                    }
                });
            }
            bits >>= 1;
            if bits == 0 {
                break;
            }
            let sq = ev.mul(&square, &square)?;
            square = ev.rescale(&sq)?;
        }
        acc.ok_or(
            Error::InvalidParameter {
                name: "p",
                value: f64::from(self.p),
                reason: "no set bit",
            }
            .into(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::{PlainEvaluator, SimEvaluator};

    #[test]
    fn powers_are_exact_and_depth_optimal() {
        for p in 0..=40u32 {
            let plan = PowerPlan::new(p);
            let mut sim = SimEvaluator::default();
            let x = sim.fresh(plan.depth());
            let y = plan.evaluate(&mut sim, &x).unwrap();
            assert_eq!(y.level, 0, "p = {p}");
            assert_eq!(sim.counts().nonscalar_mults, plan.nonscalar_mults(), "p = {p}");
            let mut ev = PlainEvaluator::<f64>::default();
            let v = ev.encode(1.1, plan.depth());
            let got = plan.evaluate(&mut ev, &v).unwrap().value;
            assert!((got - 1.1f64.powi(p as i32)).abs() < 1e-12 * 1.1f64.powi(p as i32));
        }
        assert_eq!(PowerPlan::new(2).depth(), 1);
        assert_eq!(PowerPlan::new(4).depth(), 2);
        assert_eq!(PowerPlan::new(7).depth(), 3);
    }
}
