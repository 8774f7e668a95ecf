//! `1/sqrt(x)` and `1/x` on `[a, b]` (`a > 0`) by a polynomial initial guess refined with Newton
//! steps, the approach analysed by Panda (2022) for LayerNorm under HE.
//!
//! - Initial guess: relative-error minimax polynomial (Remez with weight `1/f`), so the relative
//!   error `delta_0` is uniform over the whole dynamic range.
//! - `1/sqrt x`: `y <- y (3 - x y^2) / 2`, evaluated as `1.5 y - (0.5 x y) y^2` so a step costs
//!   2 levels and 3 non-scalar products; `delta' = -(3/2) delta^2 - delta^3 / 2`.
//! - `1/x`: `y <- y (2 - x y)`, 2 levels and 2 products; `delta' = -delta^2`.
//!
//! - The last step's constants are multiplied by `c = 2 / (2 + e_min + e_max)`, centring the
//!   one-sided Newton error at no cost in levels or products (about halves the final error).
//!
//! [`NewtonApprox::design`] searches initial degrees `2^k - 1` (up to 63) and step counts for the fewest
//! levels (then fewest products) meeting a relative-error target, measuring the error of the
//! whole pipeline. The target is limited by f64 (`~1e-14` relative).
//!
//! References:
//! - A. Panda, "Polynomial Approximation of Inverse sqrt Function for FHE", CSCML 2022,
//!   <https://eprint.iacr.org/2022/423>.
//! - J. H. Cheon, D. Kim, D. Kim, H. H. Lee, K. Lee, "Numerical Method for Comparison on
//!   Homomorphically Encrypted Numbers", ASIACRYPT 2019, <https://eprint.iacr.org/2019/417>
//!   (Newton/Goldschmidt inverse under HE).

use crate::error::{Error, Result};
use crate::eval::{align, require_levels, EvalPlan, Evaluator};
use crate::interval::{Domain, Interval};
use crate::measure::{alternating_extrema, default_samples};
use crate::poly::ChebyshevPoly;
use crate::remez::{remez_weighted, RemezConfig};

/// Which reciprocal is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewtonKind {
    /// `1 / sqrt(x)`.
    InverseSqrt,
    /// `1 / x`.
    Inverse,
}

impl NewtonKind {
    fn exact(self, x: f64) -> f64 {
        match self {
            NewtonKind::InverseSqrt => 1.0 / x.sqrt(),
            NewtonKind::Inverse => 1.0 / x,
        }
    }

    fn step(self, x: f64, y: f64) -> f64 {
        match self {
            NewtonKind::InverseSqrt => 1.5 * y - 0.5 * x * y * (y * y),
            NewtonKind::Inverse => y * (2.0 - x * y),
        }
    }

    fn mults_per_step(self) -> usize {
        match self {
            NewtonKind::InverseSqrt => 3,
            NewtonKind::Inverse => 2,
        }
    }
}

/// Levels per Newton step (both kinds).
const LEVELS_PER_STEP: usize = 2;

/// Newton converges quadratically; beyond this many steps f64 has nothing left to gain.
const MAX_STEPS: usize = 16;

/// Relative-error minimax initial guess and its max relative error.
fn initial_guess(kind: NewtonKind, interval: Interval, degree: usize) -> Result<(EvalPlan, f64)> {
    if interval.a() <= 0.0 {
        return Err(Error::InvalidParameter {
            name: "interval start",
            value: interval.a(),
            reason: "reciprocals need a positive interval",
        });
    }
    let f = move |x: f64| kind.exact(x);
    let w = move |x: f64| 1.0 / kind.exact(x);
    let mm = remez_weighted(f, w, &Domain::single(interval), degree, &RemezConfig::default())?;
    // Newton diverges once the relative error of the guess reaches 1.
    if mm.max_error >= 1.0 {
        return Err(Error::TargetUnreachable {
            target: 1.0,
            achieved: mm.max_error,
        });
    }
    Ok((EvalPlan::new(&mm.poly)?, mm.max_error))
}

/// Polynomial initial guess plus Newton steps.
#[derive(Debug, Clone, PartialEq)]
pub struct NewtonApprox {
    kind: NewtonKind,
    initial: EvalPlan,
    steps: usize,
    initial_error: f64,
    /// Factor folded into the last step's constants to centre its one-sided error.
    final_factor: f64,
    error: f64,
}

impl NewtonApprox {
    /// Initial guess of `degree` (relative minimax on `interval`) followed by `steps` Newton steps.
    ///
    /// Errors if the interval is not positive, or the initial guess is too poor for Newton to
    /// converge (relative error must stay below 1).
    pub fn new(kind: NewtonKind, interval: Interval, degree: usize, steps: usize) -> Result<Self> {
        if steps > MAX_STEPS {
            return Err(Error::InvalidParameter {
                name: "steps",
                value: steps as f64,
                reason: "more than 16 Newton steps is never useful in f64",
            });
        }
        let (initial, initial_error) = initial_guess(kind, interval, degree)?;
        Self::with_initial(kind, initial, initial_error, steps)
    }

    fn with_initial(kind: NewtonKind, initial: EvalPlan, initial_error: f64, steps: usize) -> Result<Self> {
        let mut out = Self {
            kind,
            initial,
            steps,
            initial_error,
            final_factor: 1.0,
            error: f64::INFINITY,
        };
        if steps > 0 {
            // Newton's error is one-sided (delta' <= 0), so scaling the result by
            // c = 2 / (2 + e_min + e_max) centres it and about halves the max error. The factor
            // rides on constants of the last step, so it costs no level and no product.
            let (lo, hi) = out.error_range()?;
            let c = 2.0 / (2.0 + lo + hi);
            if c.is_finite() && c > 0.0 {
                out.final_factor = c;
            }
        }
        out.error = out.measure_error()?;
        Ok(out)
    }

    /// Fewest levels (then fewest products) with max relative error `<= target` on `interval`.
    pub fn design(kind: NewtonKind, interval: Interval, target: f64) -> Result<Self> {
        if !(target.is_finite() && target >= 1e-14) {
            return Err(Error::InvalidParameter {
                name: "target",
                value: target,
                reason: "relative error target must be finite and at least 1e-14",
            });
        }
        let mut best: Option<Self> = None;
        let mut best_achieved = f64::INFINITY;
        for degree in [1, 3, 7, 15, 31, 63] {
            let (initial, initial_error) = initial_guess(kind, interval, degree)?;
            for steps in 0..=6 {
                let cand = Self::with_initial(kind, initial.clone(), initial_error, steps)?;
                best_achieved = best_achieved.min(cand.error);
                if cand.error > target {
                    continue;
                }
                let key = |a: &Self| (a.depth(), a.nonscalar_mults());
                if best.as_ref().is_none_or(|b| key(&cand) < key(b)) {
                    best = Some(cand);
                }
                // More steps at this degree only cost more.
                break;
            }
        }
        best.ok_or(Error::TargetUnreachable {
            target,
            achieved: best_achieved,
        })
    }

    /// Smallest and largest signed relative error: the extrema of |e| give the far end, dense
    /// samples the near end (a smooth maximum, so sampling is accurate to second order).
    fn error_range(&self) -> Result<(f64, f64)> {
        let interval = self.initial.poly().interval();
        let err = |x: f64| {
            let exact = self.kind.exact(x);
            (self.eval(x) - exact) / exact
        };
        let samples = default_samples(self.initial.degree() * (1 << self.steps.min(6)));
        let ext = alternating_extrema(&err, &[interval], samples)?;
        let mut lo = ext.iter().fold(f64::INFINITY, |m, e| m.min(e.e));
        let mut hi = ext.iter().fold(f64::NEG_INFINITY, |m, e| m.max(e.e));
        let n = 4 * samples;
        for k in 0..=n {
            let t = -(std::f64::consts::PI * k as f64 / n as f64).cos();
            let e = err(interval.from_unit(t));
            lo = lo.min(e);
            hi = hi.max(e);
        }
        Ok((lo, hi))
    }

    /// Max relative error of the pipeline over the interval (sampled and refined).
    fn measure_error(&self) -> Result<f64> {
        let interval = self.initial.poly().interval();
        let err = |x: f64| {
            let exact = self.kind.exact(x);
            (self.eval(x) - exact) / exact
        };
        let samples = default_samples(self.initial.degree() * (1 << self.steps.min(6)));
        let ext = alternating_extrema(&err, &[interval], samples)?;
        Ok(ext.iter().fold(0.0_f64, |m, e| m.max(e.e.abs())))
    }

    /// Plaintext value (Clenshaw initial guess, then the Newton steps in f64).
    pub fn eval(&self, x: f64) -> f64 {
        let mut y = self.initial.poly().eval(x);
        for _ in 0..self.steps {
            y = self.kind.step(x, y);
        }
        y * self.final_factor
    }

    /// Which reciprocal.
    pub fn kind(&self) -> NewtonKind {
        self.kind
    }

    /// The initial-guess polynomial.
    pub fn initial(&self) -> &ChebyshevPoly {
        self.initial.poly()
    }

    /// Number of Newton steps.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// Max relative error of the initial guess.
    pub fn initial_relative_error(&self) -> f64 {
        self.initial_error
    }

    /// Max relative error after the Newton steps (measured in f64).
    pub fn relative_error(&self) -> f64 {
        self.error
    }

    /// Levels consumed by [`NewtonApprox::evaluate`].
    pub fn depth(&self) -> usize {
        self.initial.depth() + LEVELS_PER_STEP * self.steps
    }

    /// Non-scalar products used by [`NewtonApprox::evaluate`].
    pub fn nonscalar_mults(&self) -> usize {
        self.initial.nonscalar_mults() + self.kind.mults_per_step() * self.steps
    }

    /// Evaluates on a leveled value `x` in the interval; the result is at `level(x) - depth()`.
    pub fn evaluate<E: Evaluator>(
        &self,
        ev: &mut E,
        x: &E::Value,
    ) -> std::result::Result<E::Value, E::Error> {
        let available = require_levels(ev, x, self.depth())?;
        let mut y = self.initial.evaluate(ev, x)?;
        if self.steps == 0 {
            return Ok(y);
        }
        match self.kind {
            NewtonKind::InverseSqrt => {
                // 0.5 x (and 0.5 c x for the last step) once, in parallel with the initial guess,
                // which uses at least one level.
                let q = ev.rescale_divisor(available);
                let hx_last = ev.mul_const(x, 0.5 * self.final_factor, q)?;
                let half_x_last = ev.rescale(&hx_last)?;
                if self.steps > 1 {
                    let hx = ev.mul_const(x, 0.5, q)?;
                    let half_x = ev.rescale(&hx)?;
                    for _ in 1..self.steps {
                        y = inverse_sqrt_step(ev, &half_x, &y, 1.0)?;
                    }
                }
                y = inverse_sqrt_step(ev, &half_x_last, &y, self.final_factor)?;
            }
            NewtonKind::Inverse => {
                for step in 1..=self.steps {
                    let c = if step == self.steps {
                        self.final_factor
                    } else {
                        1.0
                    };
                    y = inverse_step(ev, x, &y, c)?;
                }
            }
        }
        Ok(y)
    }
}

/// `c (1.5 y - 0.5 x y^3)` as `1.5 c y - (0.5 c x y) y^2` (`half_x` holds `0.5 c x`), 2 levels;
/// `1.5 c y` is encoded at exactly the scale of the product.
fn inverse_sqrt_step<E: Evaluator>(
    ev: &mut E,
    half_x: &E::Value,
    y: &E::Value,
    c: f64,
) -> std::result::Result<E::Value, E::Error> {
    let lvl = ev.level(y);
    let below = lvl.checked_sub(1).ok_or(Error::LevelExhausted {
        needed: 2,
        available: lvl,
    })?;
    let hx = align(ev, half_x, lvl)?;
    let xy = ev.mul(&hx, y)?;
    let xy = ev.rescale(&xy)?;
    let y2 = ev.mul(y, y)?;
    let y2 = ev.rescale(&y2)?;
    let xy3 = ev.mul(&xy, &y2)?;
    let xy3 = ev.rescale(&xy3)?;
    let y_hi = align(ev, y, below)?;
    let target = ev.scale(&xy3) * ev.rescale_divisor(below) / ev.scale(&y_hi);
    let y15 = ev.mul_const(&y_hi, 1.5 * c, target)?;
    let y15 = ev.rescale(&y15)?;
    ev.sub(&y15, &xy3)
}

/// `c y (2 - x y)`, 2 levels; `c y` is formed in parallel with `x y`, so `c` costs no level.
fn inverse_step<E: Evaluator>(
    ev: &mut E,
    x: &E::Value,
    y: &E::Value,
    c: f64,
) -> std::result::Result<E::Value, E::Error> {
    let lvl = ev.level(y);
    let below = lvl.checked_sub(1).ok_or(Error::LevelExhausted {
        needed: 2,
        available: lvl,
    })?;
    let xl = align(ev, x, lvl)?;
    let xy = ev.mul(&xl, y)?;
    let xy = ev.rescale(&xy)?;
    let neg = ev.mul_const(&xy, -1.0, 1.0)?;
    let t = ev.add_const(&neg, 2.0)?;
    let yl = if c == 1.0 {
        align(ev, y, below)?
    } else {
        let cy = ev.mul_const(y, c, ev.rescale_divisor(lvl))?;
        ev.rescale(&cy)?
    };
    let prod = ev.mul(&yl, &t)?;
    ev.rescale(&prod)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::{LevelModel, PlainEvaluator, SimEvaluator};

    #[test]
    fn inverse_sqrt_reaches_stated_precision() {
        // Panda-style: a low-degree guess (relative error 1.8e-2) and two Newton steps reach 1e-6.
        let i = Interval::new(0.01, 1.0).unwrap();
        let a = NewtonApprox::new(NewtonKind::InverseSqrt, i, 15, 2).unwrap();
        assert!(a.initial_relative_error() > 1e-2);
        assert!(a.relative_error() <= 1e-6);
        assert_eq!(a.depth(), 1 + 4 + 2 * 2);
        // Independent check on a fine grid, through the leveled plaintext pipeline.
        let mut ev = PlainEvaluator::<Vec<f64>>::new(LevelModel::default());
        let xs: Vec<f64> = (0..=2000).map(|k| 0.01 + 0.99 * k as f64 / 2000.0).collect();
        let v = ev.encode(xs.clone(), a.depth());
        let y = a.evaluate(&mut ev, &v).unwrap();
        assert_eq!(y.level, 0);
        for (x, got) in xs.iter().zip(&y.value) {
            assert!((got * x.sqrt() - 1.0).abs() <= 1e-6, "x = {x}");
        }
        let mut sim = SimEvaluator::default();
        let s = sim.fresh(a.depth());
        let out = a.evaluate(&mut sim, &s).unwrap();
        assert_eq!(out.level, 0);
        assert_eq!(sim.counts().nonscalar_mults, a.nonscalar_mults());
    }

    #[test]
    fn design_uses_newton_for_tight_targets() {
        let i = Interval::new(0.01, 1.0).unwrap();
        let a = NewtonApprox::design(NewtonKind::InverseSqrt, i, 1e-9).unwrap();
        assert!(a.steps() >= 1);
        assert!(a.relative_error() <= 1e-9);
        for k in 0..=100 {
            let x = 0.01 + 0.99 * (k as f64 / 100.0).powi(2);
            assert!((a.eval(x) * x.sqrt() - 1.0).abs() <= 1e-9);
        }
    }

    #[test]
    fn inverse_with_newton() {
        let i = Interval::new(0.01, 1.0).unwrap();
        let a = NewtonApprox::new(NewtonKind::Inverse, i, 7, 3).unwrap();
        // Quadratic convergence: 0.386 -> 0.149 -> 0.022 -> 4.9e-4.
        assert!(a.initial_relative_error() > 0.3 && a.relative_error() < 1e-3);
        let mut ev = PlainEvaluator::<f64>::default();
        let v = ev.encode(0.37, a.depth());
        let y = a.evaluate(&mut ev, &v).unwrap().value;
        assert!((y * 0.37 - 1.0).abs() <= a.relative_error() * (1.0 + 1e-9));
    }

    #[test]
    fn bad_inputs() {
        let bad = Interval::new(-1.0, 1.0).unwrap();
        assert!(matches!(
            NewtonApprox::new(NewtonKind::Inverse, bad, 3, 1),
            Err(Error::InvalidParameter { .. })
        ));
        let i = Interval::new(0.01, 1.0).unwrap();
        assert!(matches!(
            NewtonApprox::design(NewtonKind::InverseSqrt, i, 0.0),
            Err(Error::InvalidParameter { .. })
        ));
        assert!(matches!(
            NewtonApprox::new(NewtonKind::InverseSqrt, i, 3, 17),
            Err(Error::InvalidParameter { .. })
        ));
    }
}
