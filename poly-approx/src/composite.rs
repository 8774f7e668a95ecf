//! Composite minimax approximation of `sign(x)` on `[-1, -eps] ∪ [eps, 1]`, and ReLU from it.
//!
//! Following Lee, Lee, Kim, No (2020/834): a single polynomial approximating sign with a small
//! gap needs a huge degree, but a composition `p_k ∘ ... ∘ p_1` of small odd minimax polynomials
//! reaches the same precision with far less depth. Stage `i` sees inputs in `±[tau_i, 1]`
//! (`tau_1 = eps`), is the odd minimax approximation of sign there with error `delta_i`, and is
//! divided by `1 + delta_i` (free, on coefficients), so the next stage sees `±[tau_{i+1}, 1]` with
//! `tau_{i+1} = (1 - delta_i) / (1 + delta_i)`. The last stage is not divided, so the composite
//! error on the domain is `delta_k`. All stages live on `[-1, 1]`: no change of variable, hence
//! no extra level, and each stage costs exactly `ceil(log2(d_i + 1))` levels.
//!
//! Degree selection: `delta = E_d(tau)` decreases with `tau` and `tau' = (1 - delta)/(1 + delta)`
//! increases, so for a fixed total cost the best chain is the one that maximises `tau` at every
//! prefix. A dynamic programme over the total cost (levels for [`Objective::Depth`], non-scalar
//! products for [`Objective::Mults`]) keeping the largest reachable `tau` per cost is therefore
//! exact for the chosen degree set (ties broken by the other cost), with one Remez run per
//! (cost, degree) pair; this is the same optimisation as Lee et al.'s Algorithm 2, done by search.
//!
//! ReLU: `ReLU(x) = x (1 + sign(x)) / 2`; the affine map is folded into the last stage, so ReLU
//! costs one level and one product more than sign. Its error is at most `delta_k |x| / 2` on the
//! domain and at most `|x| (1 + delta_k)` inside the gap `(-eps, eps)`.
//!
//! References:
//! - E. Lee, J.-W. Lee, Y.-S. Kim, J.-S. No, "Minimax Approximation of Sign Function by Composite
//!   Polynomial for Homomorphic Comparison", IEEE TDSC 2021, <https://eprint.iacr.org/2020/834>.
//! - J. H. Cheon, D. Kim, D. Kim, "Efficient Homomorphic Comparison Methods with Optimal
//!   Complexity", ASIACRYPT 2020, <https://eprint.iacr.org/2019/1234>.

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::eval::{align, require_levels, EvalPlan, Evaluator};
use crate::interval::{Domain, Interval};
use crate::poly::{depth_for_degree, ChebyshevPoly};
use crate::remez::{remez, Minimax, Parity, RemezConfig};

/// What the degree search minimises first (the other cost breaks ties).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Objective {
    /// Total levels.
    #[default]
    Depth,
    /// Total non-scalar products.
    Mults,
}

/// Settings of the composite sign design.
#[derive(Debug, Clone, PartialEq)]
pub struct SignConfig {
    /// Gap: sign is approximated on `[-1, -eps] ∪ [eps, 1]`, `0 < eps < 1`.
    pub eps: f64,
    /// Required max error on that set, `1e-12 <= precision < 1`.
    pub precision: f64,
    /// What to minimise.
    pub objective: Objective,
    /// Candidate odd stage degrees (at least 3).
    pub degrees: Vec<usize>,
    /// Largest total cost searched (levels or products, per the objective).
    pub max_cost: usize,
}

impl SignConfig {
    /// Defaults: for [`Objective::Depth`], degrees `2^k - 1` (the largest at each depth) up to 63,
    /// at most 80 levels; for [`Objective::Mults`], a spread of odd degrees up to 63, at most 240
    /// products.
    pub fn new(eps: f64, precision: f64, objective: Objective) -> Self {
        let (degrees, max_cost) = match objective {
            Objective::Depth => (vec![3, 7, 15, 31, 63], 80),
            Objective::Mults => (vec![3, 5, 7, 9, 11, 13, 15, 19, 23, 27, 31, 63], 240),
        };
        Self {
            eps,
            precision,
            objective,
            degrees,
            max_cost,
        }
    }
}

/// A composite polynomial approximating `sign(x)` on `[-1, -eps] ∪ [eps, 1]`.
#[derive(Debug, Clone, PartialEq)]
pub struct CompositeSign {
    stages: Vec<EvalPlan>,
    stage_errors: Vec<f64>,
    eps: f64,
}

/// Odd minimax approximation of sign on `±[tau, 1]`; looser tolerance than the default since
/// only the (exactly measured) max error is used.
fn sign_stage(tau: f64, degree: usize) -> Result<Minimax> {
    let domain = Domain::symmetric_gap(tau, 1.0)?;
    let config = RemezConfig {
        tolerance: 1e-6,
        ..RemezConfig::with_parity(Parity::Odd)
    };
    remez(f64::signum, &domain, degree, &config)
}

/// Error used for normalising: the measured max error, padded for rounding in its measurement.
fn padded(delta: f64) -> f64 {
    delta * (1.0 + 1e-9) + 1e-15
}

fn next_tau(delta: f64) -> f64 {
    let d = padded(delta);
    (1.0 - d) / (1.0 + d)
}

/// Non-scalar products of a dense odd polynomial of `degree` under [`EvalPlan`].
fn odd_mults(degree: usize) -> Result<usize> {
    let c = (0..=degree).map(|k| if k % 2 == 1 { 1.0 } else { 0.0 }).collect();
    Ok(EvalPlan::new(&ChebyshevPoly::new(c, Interval::UNIT)?)?.nonscalar_mults())
}

#[derive(Debug, Clone, Copy)]
struct State {
    tau: f64,
    secondary: usize,
    /// (cost of the predecessor, degree of the last stage).
    prev: Option<(usize, usize)>,
}

fn check_params(eps: f64, precision: f64) -> Result<()> {
    if !(eps > 0.0 && eps < 1.0) {
        return Err(Error::InvalidParameter {
            name: "eps",
            value: eps,
            reason: "need 0 < eps < 1",
        });
    }
    if !(1e-12..1.0).contains(&precision) {
        return Err(Error::InvalidParameter {
            name: "precision",
            value: precision,
            reason: "need 1e-12 <= precision < 1 (f64 Remez)",
        });
    }
    Ok(())
}

impl CompositeSign {
    /// Designs a composite sign with the default settings for `objective`.
    pub fn design(eps: f64, precision: f64, objective: Objective) -> Result<Self> {
        Self::design_with(&SignConfig::new(eps, precision, objective))
    }

    /// Designs a composite sign: cheapest chain of stage degrees reaching `config.precision`.
    pub fn design_with(config: &SignConfig) -> Result<Self> {
        check_params(config.eps, config.precision)?;
        let mut degrees = Vec::with_capacity(config.degrees.len());
        for &d in &config.degrees {
            if d < 3 || d % 2 == 0 {
                return Err(Error::InvalidParameter {
                    name: "stage degree",
                    value: d as f64,
                    reason: "stage degrees must be odd and at least 3",
                });
            }
            let (depth, mults) = (depth_for_degree(d), odd_mults(d)?);
            degrees.push(match config.objective {
                Objective::Depth => (d, depth, mults),
                Objective::Mults => (d, mults, depth),
            });
        }
        if degrees.is_empty() {
            return Err(Error::Empty {
                what: "stage degrees",
            });
        }
        let mut states: Vec<Option<State>> = vec![None; config.max_cost + 1];
        states[0] = Some(State {
            tau: config.eps,
            secondary: 0,
            prev: None,
        });
        let mut stage_cache: HashMap<(usize, usize), Option<f64>> = HashMap::new();
        let mut best_delta = f64::INFINITY;
        for cost in 1..=config.max_cost {
            let mut here: Option<State> = None;
            let mut finish: Option<State> = None;
            for &(d, primary, secondary) in &degrees {
                let Some(from) = cost.checked_sub(primary) else {
                    continue;
                };
                let Some(prev) = states[from] else { continue };
                let delta = *stage_cache
                    .entry((from, d))
                    .or_insert_with(|| sign_stage(prev.tau, d).ok().map(|m| m.max_error));
                let Some(delta) = delta else { continue };
                best_delta = best_delta.min(delta);
                let cand = State {
                    tau: next_tau(delta),
                    secondary: prev.secondary + secondary,
                    prev: Some((from, d)),
                };
                if delta <= config.precision {
                    if finish.is_none_or(|f| cand.secondary < f.secondary) {
                        finish = Some(cand);
                    }
                } else if cand.tau > prev.tau
                    && here.is_none_or(|h| {
                        cand.tau > h.tau || (cand.tau == h.tau && cand.secondary < h.secondary)
                    })
                {
                    here = Some(cand);
                }
            }
            if let Some(last) = finish {
                let mut chain = Vec::new();
                let mut cur = last;
                while let Some((from, d)) = cur.prev {
                    chain.push(d);
                    match states[from] {
                        Some(s) => cur = s,
                        None => break,
                    }
                }
                chain.reverse();
                return Self::from_degrees(config.eps, &chain);
            }
            states[cost] = here;
        }
        Err(Error::TargetUnreachable {
            target: config.precision,
            achieved: best_delta,
        })
    }

    /// Builds the composite for a given sequence of odd stage degrees (first stage first).
    pub fn from_degrees(eps: f64, degrees: &[usize]) -> Result<Self> {
        check_params(eps, 0.5)?;
        if degrees.is_empty() {
            return Err(Error::Empty {
                what: "stage degrees",
            });
        }
        let mut tau = eps;
        let mut stages = Vec::with_capacity(degrees.len());
        let mut stage_errors = Vec::with_capacity(degrees.len());
        for (i, &d) in degrees.iter().enumerate() {
            if d < 3 || d % 2 == 0 {
                return Err(Error::InvalidParameter {
                    name: "stage degree",
                    value: d as f64,
                    reason: "stage degrees must be odd and at least 3",
                });
            }
            let m = sign_stage(tau, d)?;
            let last = i + 1 == degrees.len();
            // Normalising by 1 + delta keeps the next stage's inputs inside [-1, 1].
            let poly = if last {
                m.poly
            } else {
                m.poly.affine_output(1.0 / (1.0 + padded(m.max_error)), 0.0)?
            };
            stages.push(EvalPlan::new(&poly)?);
            stage_errors.push(m.max_error);
            tau = next_tau(m.max_error);
            if tau.is_nan() || tau <= 0.0 {
                return Err(Error::TargetUnreachable {
                    target: 1.0,
                    achieved: m.max_error,
                });
            }
        }
        Ok(Self {
            stages,
            stage_errors,
            eps,
        })
    }

    /// The gap `eps`.
    pub fn eps(&self) -> f64 {
        self.eps
    }

    /// Stage degrees, first stage first.
    pub fn degrees(&self) -> Vec<usize> {
        self.stages.iter().map(EvalPlan::degree).collect()
    }

    /// Stage polynomials (on `[-1, 1]`), first stage first.
    pub fn stages(&self) -> Vec<&ChebyshevPoly> {
        self.stages.iter().map(EvalPlan::poly).collect()
    }

    /// Minimax error of each stage on its own input set.
    pub fn stage_errors(&self) -> &[f64] {
        &self.stage_errors
    }

    /// Max error of the composite on `[-1, -eps] ∪ [eps, 1]` (the last stage's minimax error).
    pub fn error_bound(&self) -> f64 {
        self.stage_errors.last().copied().unwrap_or(f64::INFINITY)
    }

    /// Total levels: the sum of the stage depths.
    pub fn depth(&self) -> usize {
        self.stages.iter().map(EvalPlan::depth).sum()
    }

    /// Total non-scalar products.
    pub fn nonscalar_mults(&self) -> usize {
        self.stages.iter().map(EvalPlan::nonscalar_mults).sum()
    }

    /// Plaintext value (Clenshaw per stage).
    pub fn eval(&self, x: f64) -> f64 {
        self.stages.iter().fold(x, |v, s| s.poly().eval(v))
    }

    /// Evaluates on a leveled value in `[-1, 1]`.
    pub fn evaluate<E: Evaluator>(
        &self,
        ev: &mut E,
        x: &E::Value,
    ) -> std::result::Result<E::Value, E::Error> {
        evaluate_chain(&self.stages, ev, x)
    }
}

fn evaluate_chain<E: Evaluator>(
    stages: &[EvalPlan],
    ev: &mut E,
    x: &E::Value,
) -> std::result::Result<E::Value, E::Error> {
    require_levels(ev, x, stages.iter().map(EvalPlan::depth).sum())?;
    let mut v = x.clone();
    for s in stages {
        v = s.evaluate(ev, &v)?;
    }
    Ok(v)
}

/// `ReLU(x) = x (1 + sign(x)) / 2` on `[-1, 1]` from a composite sign.
#[derive(Debug, Clone, PartialEq)]
pub struct CompositeRelu {
    sign: CompositeSign,
    /// Stages of `(1 + sign) / 2`: the sign stages with the last one mapped by `(1 + p) / 2`.
    half_stages: Vec<EvalPlan>,
}

impl CompositeRelu {
    /// ReLU from a composite sign; see [`CompositeSign::design`]. Its max error on
    /// `[-1, -eps] ∪ [eps, 1]` is at most `precision / 2`.
    pub fn design(eps: f64, precision: f64, objective: Objective) -> Result<Self> {
        Self::from_sign(CompositeSign::design(eps, 2.0 * precision, objective)?)
    }

    /// ReLU from an existing composite sign.
    pub fn from_sign(sign: CompositeSign) -> Result<Self> {
        let mut half_stages = sign.stages.clone();
        if let Some(last) = half_stages.last_mut() {
            *last = EvalPlan::new(&last.poly().affine_output(0.5, 0.5)?)?;
        }
        Ok(Self { sign, half_stages })
    }

    /// The underlying composite sign.
    pub fn sign(&self) -> &CompositeSign {
        &self.sign
    }

    /// Max error on `[-1, -eps] ∪ [eps, 1]`: `|x| delta / 2 <= delta / 2`.
    pub fn error_bound(&self) -> f64 {
        0.5 * self.sign.error_bound()
    }

    /// Levels: the sign's plus one for the final product with `x`.
    pub fn depth(&self) -> usize {
        self.sign.depth() + 1
    }

    /// Non-scalar products: the sign's plus one.
    pub fn nonscalar_mults(&self) -> usize {
        self.sign.nonscalar_mults() + 1
    }

    /// Plaintext value.
    pub fn eval(&self, x: f64) -> f64 {
        x * self.half_stages.iter().fold(x, |v, s| s.poly().eval(v))
    }

    /// Evaluates on a leveled value in `[-1, 1]`.
    pub fn evaluate<E: Evaluator>(
        &self,
        ev: &mut E,
        x: &E::Value,
    ) -> std::result::Result<E::Value, E::Error> {
        require_levels(ev, x, self.depth())?;
        let h = evaluate_chain(&self.half_stages, ev, x)?;
        let xl = align(ev, x, ev.level(&h))?;
        let prod = ev.mul(&xl, &h)?;
        ev.rescale(&prod)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::{LevelModel, PlainEvaluator, SimEvaluator};
    use crate::functions::relu;

    fn grid(eps: f64) -> Vec<f64> {
        // Dense near the gap edge, where the error peaks.
        let mut xs: Vec<f64> = (0..=4000)
            .map(|k| eps + (1.0 - eps) * (k as f64 / 4000.0).powi(2))
            .collect();
        xs.extend(xs.clone().iter().map(|x| -x));
        xs
    }

    #[test]
    fn sign_reaches_precision_on_the_gap_domain() {
        let eps = 2f64.powi(-8);
        let precision = 2f64.powi(-10);
        let s = CompositeSign::design(eps, precision, Objective::Depth).unwrap();
        assert!(s.error_bound() <= precision);
        for x in grid(eps) {
            assert!(
                (s.eval(x) - x.signum()).abs() <= precision,
                "x = {x}: {}",
                s.eval(x)
            );
        }
        // The simulator confirms the claimed depth and products.
        let mut sim = SimEvaluator::default();
        let x = sim.fresh(s.depth());
        let y = s.evaluate(&mut sim, &x).unwrap();
        assert_eq!(y.level, 0);
        assert_eq!(sim.counts().nonscalar_mults, s.nonscalar_mults());
        // Plaintext through the plans agrees with the Clenshaw chain.
        let mut ev = PlainEvaluator::<Vec<f64>>::new(LevelModel::default());
        let xs = vec![-0.9, -eps, eps, 0.01, 0.5, 1.0];
        let v = ev.encode(xs.clone(), s.depth());
        let out = s.evaluate(&mut ev, &v).unwrap();
        for (x, got) in xs.iter().zip(&out.value) {
            assert!((got - s.eval(*x)).abs() < 1e-9);
        }
    }

    #[test]
    fn mults_objective_is_no_worse_in_products() {
        let eps = 2f64.powi(-6);
        let precision = 2f64.powi(-8);
        let by_depth = CompositeSign::design(eps, precision, Objective::Depth).unwrap();
        let by_mults = CompositeSign::design(eps, precision, Objective::Mults).unwrap();
        assert!(by_mults.nonscalar_mults() <= by_depth.nonscalar_mults());
        assert!(by_depth.depth() <= by_mults.depth());
        assert!(by_mults.error_bound() <= precision);
    }

    #[test]
    fn relu_from_sign() {
        let eps = 2f64.powi(-8);
        let precision = 2f64.powi(-10);
        let r = CompositeRelu::design(eps, precision, Objective::Depth).unwrap();
        assert!(r.error_bound() <= precision);
        for x in grid(eps) {
            assert!((r.eval(x) - relu(x)).abs() <= precision * x.abs(), "x = {x}");
        }
        for k in 0..=100 {
            let x = eps * (k as f64 / 50.0 - 1.0);
            assert!((r.eval(x) - relu(x)).abs() <= x.abs() * (1.0 + r.sign().error_bound()) + 1e-15);
        }
        let mut sim = SimEvaluator::default();
        let x = sim.fresh(r.depth());
        let y = r.evaluate(&mut sim, &x).unwrap();
        assert_eq!(y.level, 0);
        assert_eq!(sim.counts().nonscalar_mults, r.nonscalar_mults());
        let mut ev = PlainEvaluator::<f64>::default();
        let v = ev.encode(0.3, r.depth());
        assert!((r.evaluate(&mut ev, &v).unwrap().value - r.eval(0.3)).abs() < 1e-9);
    }

    #[test]
    fn bad_inputs() {
        assert!(matches!(
            CompositeSign::design(0.0, 0.01, Objective::Depth),
            Err(Error::InvalidParameter { .. })
        ));
        assert!(matches!(
            CompositeSign::design(0.1, 1e-20, Objective::Depth),
            Err(Error::InvalidParameter { .. })
        ));
        assert!(matches!(
            CompositeSign::from_degrees(0.1, &[4]),
            Err(Error::InvalidParameter { .. })
        ));
        assert!(matches!(
            CompositeSign::from_degrees(0.1, &[]),
            Err(Error::Empty { .. })
        ));
        let tiny = SignConfig {
            max_cost: 3,
            ..SignConfig::new(1e-3, 1e-6, Objective::Depth)
        };
        assert!(matches!(
            CompositeSign::design_with(&tiny),
            Err(Error::TargetUnreachable { .. })
        ));
    }
}
