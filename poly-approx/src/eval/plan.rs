//! Depth-optimal baby-step/giant-step evaluation of Chebyshev series (Paterson–Stockmeyer in
//! the Chebyshev basis), following Bossuat et al. (2020/1203, Alg. 2) and Lattigo.
//!
//! For `p` of degree `d` and `m = ceil(log2(d + 1))`:
//! - baby steps `T_1 .. T_{2^l}` and giant steps `T_{2^{l+1}} .. T_{2^{m-1}}` are computed with
//!   `T_{a+b} = 2 T_a T_b - T_{a-b}`, each `T_i` at depth `ceil(log2 i)`; only the powers the
//!   polynomial actually needs are computed (odd polynomials need only odd babies and powers of
//!   two, which gives the `sqrt(2d)` behaviour);
//! - `p` is split recursively as `p = q T_{2^j} + r` (Chebyshev division, `2^j <= deg p`) down to
//!   leaves of degree `<= 2^l` that are linear combinations of baby steps;
//! - every leaf is produced *unrescaled* at the exact scale its consumer needs, by encoding its
//!   constants at `target_scale / scale(T_i)`; the rescale after the giant-step product then also
//!   pays for the constants. So no level is spent on constants and the whole evaluation uses
//!   exactly `m` levels, and the result lands exactly on the input's scale even when moduli
//!   differ from the scale.
//!
//! Levels budget: a node whose degree is `< 2^k` is evaluated at level `L - k + 1` before its
//! final rescale; a leaf there may use `T_i` with `i <= 2^{k-1}`, which are available at that
//! level. The baby-step size `2^l` is chosen to minimise the number of non-scalar products.
//!
//! Change of variable: with input `x` in `[a, b]`, `u = alpha x + beta` costs one extra level
//! when `alpha` or `beta` is not an integer (a scaled constant needs a rescale of its own). It is
//! free on `[-1, 1]` or e.g. `[0, 1]`; in a network it is usually folded into the preceding
//! linear layer ([`EvalPlan::input_map`] gives `alpha`, `beta`).
//!
//! References:
//! - M. S. Paterson, L. J. Stockmeyer, "On the number of nonscalar multiplications necessary to
//!   evaluate polynomials", SIAM J. Comput. 2 (1973).
//! - J.-P. Bossuat, C. Mouchet, J. Troncoso-Pastoriza, J.-P. Hubaux, EUROCRYPT 2021,
//!   <https://eprint.iacr.org/2020/1203>, sec. 4.2.
//! - J. Lee et al., <https://eprint.iacr.org/2020/552>, sec. 5 (odd baby steps).
//! - Lattigo, `he/hefloat/polynomial_evaluator.go`, <https://github.com/tuneinsight/lattigo>.

use super::{align, require_levels, Evaluator, LevelModel, OpCounts, PlainEvaluator, SimEvaluator};
use crate::error::{Error, Result};
use crate::poly::{depth_for_degree, ChebyshevPoly};

/// `T_index = 2 T_a T_b - T_c` (`T_0 = 1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PowerStep {
    index: usize,
    a: usize,
    b: usize,
    c: usize,
}

#[derive(Debug, Clone, PartialEq)]
enum Quotient {
    Const(f64),
    Node(Box<Node>),
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    /// `constant + sum c_i T_i`.
    Leaf { terms: Vec<(usize, f64)>, constant: f64 },
    /// `q T_giant + r`.
    Split { giant: usize, q: Quotient, r: Box<Node> },
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum InputMap {
    Identity,
    /// Integer `alpha`, `beta`: exact, no level.
    Integer {
        alpha: f64,
        beta: f64,
    },
    /// Needs a rescale: one level.
    Scaled {
        alpha: f64,
        beta: f64,
    },
}

/// How a polynomial will be evaluated and what it costs.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalPlan {
    poly: ChebyshevPoly,
    degree: usize,
    log_split: usize,
    root: Node,
    powers: Vec<PowerStep>,
    input_map: InputMap,
    nonscalar_mults: usize,
}

fn is_integer(v: f64) -> bool {
    v.fract() == 0.0 && v.abs() < 9.007_199_254_740_992e15
}

/// Largest power of two `<= n` (`n >= 1`).
fn floor_pow2(n: usize) -> usize {
    1 << (usize::BITS - 1 - n.leading_zeros())
}

fn degree_of(c: &[f64]) -> usize {
    c.iter().rposition(|&v| v != 0.0).unwrap_or(0)
}

/// Splits `T_i` into two factors of depth below `ceil(log2 i)`.
fn decompose(i: usize) -> PowerStep {
    let a = if i.is_power_of_two() { i / 2 } else { floor_pow2(i) };
    let b = i - a;
    PowerStep {
        index: i,
        a,
        b,
        c: a - b,
    }
}

fn build(c: &[f64], budget: usize, log_split: usize) -> Node {
    let d = degree_of(c);
    let leaf_max = (1usize << log_split).min(1usize << budget.saturating_sub(1));
    if d <= leaf_max || budget == 0 {
        let terms = (1..=d).filter(|&i| c[i] != 0.0).map(|i| (i, c[i])).collect();
        return Node::Leaf {
            terms,
            constant: c.first().copied().unwrap_or(0.0),
        };
    }
    let g = floor_pow2(d);
    // q_0 = c_g, q_k = 2 c_{g+k}; r_i = c_i - c_{2g-i} (Chebyshev division by T_g).
    let mut q: Vec<f64> = (0..=d - g)
        .map(|k| if k == 0 { c[g] } else { 2.0 * c[g + k] })
        .collect();
    let mut r: Vec<f64> = c[..g].to_vec();
    for k in 1..=d - g {
        r[g - k] -= c[g + k];
    }
    let quotient = if degree_of(&q) == 0 {
        Quotient::Const(q[0])
    } else {
        q.truncate(degree_of(&q) + 1);
        Quotient::Node(Box::new(build(&q, budget - 1, log_split)))
    };
    Node::Split {
        giant: g,
        q: quotient,
        r: Box::new(build(&r, budget, log_split)),
    }
}

fn collect(node: &Node, needed: &mut Vec<bool>, splits: &mut usize) {
    match node {
        Node::Leaf { terms, .. } => terms.iter().for_each(|&(i, _)| needed[i] = true),
        Node::Split { giant, q, r } => {
            needed[*giant] = true;
            if let Quotient::Node(n) = q {
                *splits += 1;
                collect(n, needed, splits);
            }
            collect(r, needed, splits);
        }
    }
}

/// Plan for one baby-step size: tree, power steps, non-scalar product count.
fn plan_for(c: &[f64], depth: usize, log_split: usize) -> (Node, Vec<PowerStep>, usize) {
    let root = build(c, depth, log_split);
    let mut needed = vec![false; c.len().max(2)];
    let mut splits = 0;
    collect(&root, &mut needed, &mut splits);
    // Close under dependencies, from the top down so each index sees all its users first.
    for i in (2..needed.len()).rev() {
        if needed[i] {
            let s = decompose(i);
            needed[s.a] = true;
            needed[s.b] = true;
            needed[s.c] = true;
        }
    }
    let powers: Vec<PowerStep> = (2..needed.len()).filter(|&i| needed[i]).map(decompose).collect();
    let mults = powers.len() + splits;
    (root, powers, mults)
}

impl EvalPlan {
    /// Plans the evaluation of `poly`, choosing the baby-step size with the fewest non-scalar products.
    pub fn new(poly: &ChebyshevPoly) -> Result<Self> {
        let degree = poly.degree();
        let depth = depth_for_degree(degree);
        let mut best: Option<Self> = None;
        for log_split in 0..=depth {
            let plan = Self::with_log_split(poly, log_split)?;
            if best
                .as_ref()
                .is_none_or(|b| plan.nonscalar_mults < b.nonscalar_mults)
            {
                best = Some(plan);
            }
        }
        best.ok_or(Error::Empty {
            what: "evaluation plans",
        })
    }

    /// Plans with baby steps up to `T_{2^log_split}`.
    pub fn with_log_split(poly: &ChebyshevPoly, log_split: usize) -> Result<Self> {
        let degree = poly.degree();
        let depth = depth_for_degree(degree);
        if log_split > depth.max(1) {
            return Err(Error::InvalidParameter {
                name: "log_split",
                value: log_split as f64,
                reason: "baby steps beyond the degree",
            });
        }
        let coeffs = &poly.coeffs()[..=degree];
        let (root, powers, nonscalar_mults) = plan_for(coeffs, depth, log_split);
        let (alpha, beta) = poly.interval().unit_map();
        let input_map = if alpha == 1.0 && beta == 0.0 {
            InputMap::Identity
        } else if is_integer(alpha) && is_integer(beta) {
            InputMap::Integer { alpha, beta }
        } else {
            InputMap::Scaled { alpha, beta }
        };
        Ok(Self {
            poly: poly.clone(),
            degree,
            log_split,
            root,
            powers,
            input_map,
            nonscalar_mults,
        })
    }

    /// The polynomial.
    pub fn poly(&self) -> &ChebyshevPoly {
        &self.poly
    }

    /// Degree of the polynomial.
    pub fn degree(&self) -> usize {
        self.degree
    }

    /// Baby steps run up to `T_{2^log_split}`.
    pub fn log_split(&self) -> usize {
        self.log_split
    }

    /// Levels consumed by the polynomial on an input already in `[-1, 1]`: `ceil(log2(d + 1))`.
    pub fn poly_depth(&self) -> usize {
        depth_for_degree(self.degree)
    }

    /// Levels consumed by the change of variable `u = alpha x + beta` (0 or 1).
    pub fn input_map_depth(&self) -> usize {
        usize::from(matches!(self.input_map, InputMap::Scaled { .. }))
    }

    /// Total levels consumed by [`EvalPlan::evaluate`].
    pub fn depth(&self) -> usize {
        self.poly_depth() + self.input_map_depth()
    }

    /// `(alpha, beta)` of the change of variable `u = alpha x + beta`.
    pub fn input_map(&self) -> (f64, f64) {
        self.poly.interval().unit_map()
    }

    /// Non-scalar (ciphertext-ciphertext) products used by [`EvalPlan::evaluate`].
    pub fn nonscalar_mults(&self) -> usize {
        self.nonscalar_mults
    }

    /// Indices `i >= 2` of the `T_i` computed.
    pub fn power_indices(&self) -> Vec<usize> {
        self.powers.iter().map(|s| s.index).collect()
    }

    /// Evaluates the polynomial at `x` (a value in the polynomial's interval). The result is at
    /// level `level(x) - depth()` and exactly at `x`'s scale (up to f64 rounding of the scales).
    pub fn evaluate<E: Evaluator>(
        &self,
        ev: &mut E,
        x: &E::Value,
    ) -> std::result::Result<E::Value, E::Error> {
        let available = require_levels(ev, x, self.depth())?;
        let out_scale = ev.scale(x);
        let u = match self.input_map {
            InputMap::Identity => x.clone(),
            InputMap::Integer { alpha, beta } => {
                let t = ev.mul_const(x, alpha, 1.0)?;
                ev.add_const(&t, beta)?
            }
            InputMap::Scaled { alpha, beta } => {
                // Encoding alpha at the dropped modulus makes the rescale restore x's scale.
                let t = ev.mul_const(x, alpha, ev.rescale_divisor(available))?;
                let t = ev.add_const(&t, beta)?;
                ev.rescale(&t)?
            }
        };
        let c0 = self.poly.coeffs().first().copied().unwrap_or(0.0);
        if self.degree == 0 {
            let zero = ev.mul_const(&u, 0.0, 1.0)?;
            return ev.add_const(&zero, c0);
        }
        let mut powers: Vec<Option<E::Value>> = vec![None; self.degree + 1];
        powers[1] = Some(u.clone());
        for step in &self.powers {
            let t = power_step(ev, step, &powers)?;
            if let Some(slot) = powers.get_mut(step.index) {
                *slot = Some(t);
            }
        }
        let top = ev
            .level(&u)
            .checked_sub(self.poly_depth())
            .ok_or(Error::LevelExhausted {
                needed: self.poly_depth(),
                available: ev.level(&u),
            })?;
        let ctx = Ctx { powers: &powers };
        ctx.post(ev, &self.root, top, out_scale)
    }

    /// Evaluates through the plan in plaintext (same operations as on ciphertexts).
    pub fn eval_f64(&self, x: f64) -> Result<f64> {
        let mut ev = PlainEvaluator::<f64>::new(LevelModel::default());
        let v = ev.encode(x, self.depth());
        Ok(self.evaluate(&mut ev, &v)?.value)
    }

    /// Runs the plan on the level simulator from exactly `depth()` levels; returns the levels
    /// consumed and the operation counts.
    pub fn simulate(&self, model: LevelModel) -> Result<(usize, OpCounts)> {
        let mut ev = SimEvaluator::new(model);
        let x = ev.fresh(self.depth());
        let y = self.evaluate(&mut ev, &x)?;
        Ok((self.depth() - y.level, ev.counts()))
    }
}

fn get<V>(powers: &[Option<V>], i: usize) -> Result<&V> {
    powers
        .get(i)
        .and_then(Option::as_ref)
        .ok_or(Error::InvalidParameter {
            name: "power index",
            value: i as f64,
            reason: "not computed",
        })
}

/// `T_i = 2 T_a T_b - T_c` as `2 * rescale(T_a T_b - T_c / 2)`, with `T_c / 2` encoded at the
/// product's scale so the subtraction is scale-exact and costs no level.
fn power_step<E: Evaluator>(
    ev: &mut E,
    step: &PowerStep,
    powers: &[Option<E::Value>],
) -> std::result::Result<E::Value, E::Error> {
    let ta = get(powers, step.a)?;
    let tb = get(powers, step.b)?;
    let lvl = ev.level(ta).min(ev.level(tb));
    let ta = align(ev, ta, lvl)?;
    let tb = align(ev, tb, lvl)?;
    let prod = ev.mul(&ta, &tb)?;
    let prod = if step.c == 0 {
        ev.add_const(&prod, -0.5)?
    } else {
        let tc = align(ev, get(powers, step.c)?, lvl)?;
        let target = ev.scale(&prod) / ev.scale(&tc);
        let half = ev.mul_const(&tc, -0.5, target)?;
        ev.add(&prod, &half)?
    };
    let r = ev.rescale(&prod)?;
    ev.add(&r, &r)
}

struct Ctx<'a, V> {
    powers: &'a [Option<V>],
}

impl<V: Clone> Ctx<'_, V> {
    /// Value of `node` at `level`, `scale`, after a final rescale.
    fn post<E: Evaluator<Value = V>>(
        &self,
        ev: &mut E,
        node: &Node,
        level: usize,
        scale: f64,
    ) -> std::result::Result<V, E::Error> {
        let pre_scale = scale * ev.rescale_divisor(level + 1);
        let v = self.pre(ev, node, level + 1, pre_scale, None)?;
        ev.rescale(&v)
    }

    /// Value of `node` at `level`, `scale`, unrescaled, added to `acc` if given.
    fn pre<E: Evaluator<Value = V>>(
        &self,
        ev: &mut E,
        node: &Node,
        level: usize,
        scale: f64,
        acc: Option<V>,
    ) -> std::result::Result<V, E::Error> {
        match node {
            Node::Leaf { terms, constant } => {
                let mut acc = acc;
                for &(i, c) in terms {
                    let t = align(ev, get(self.powers, i)?, level)?;
                    let target = scale / ev.scale(&t);
                    let term = ev.mul_const(&t, c, target)?;
                    acc = Some(match acc {
                        Some(a) => ev.add(&a, &term)?,
                        None => term,
                    });
                }
                let acc = match acc {
                    Some(a) => a,
                    None => {
                        // A constant leaf still needs a value at the right level and scale.
                        let t = align(ev, get(self.powers, 1)?, level)?;
                        let target = scale / ev.scale(&t);
                        ev.mul_const(&t, 0.0, target)?
                    }
                };
                if *constant != 0.0 {
                    ev.add_const(&acc, *constant)
                } else {
                    Ok(acc)
                }
            }
            Node::Split { giant, q, r } => {
                let tg = align(ev, get(self.powers, *giant)?, level)?;
                let qscale = scale / ev.scale(&tg);
                let qv = match q {
                    Quotient::Const(c) => ev.mul_const(&tg, *c, qscale)?,
                    Quotient::Node(n) => {
                        let qn = self.post(ev, n, level, qscale)?;
                        ev.mul(&qn, &tg)?
                    }
                };
                let acc = match acc {
                    Some(a) => ev.add(&a, &qv)?,
                    None => qv,
                };
                self.pre(ev, r, level, scale, Some(acc))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interval::Interval;

    fn dense(degree: usize, interval: Interval) -> ChebyshevPoly {
        let c = (0..=degree)
            .map(|k| ((k as f64 * 0.7).sin() + 0.1) / (1.0 + k as f64).sqrt())
            .collect();
        ChebyshevPoly::new(c, interval).unwrap()
    }

    #[test]
    fn depth_is_optimal_for_all_degrees() {
        for d in 1..=255 {
            let plan = EvalPlan::new(&dense(d, Interval::UNIT)).unwrap();
            assert_eq!(plan.depth(), depth_for_degree(d), "degree {d}");
            let (used, counts) = plan.simulate(LevelModel::default()).unwrap();
            assert_eq!(used, plan.depth(), "degree {d}");
            assert_eq!(counts.nonscalar_mults, plan.nonscalar_mults(), "degree {d}");
        }
    }

    #[test]
    fn matches_clenshaw() {
        for d in [0, 1, 2, 3, 4, 5, 7, 8, 15, 16, 27, 31, 33, 63, 100, 127, 255] {
            let p = dense(d, Interval::UNIT);
            let plan = EvalPlan::new(&p).unwrap();
            for k in 0..=20 {
                let x = -1.0 + 0.1 * k as f64;
                let want = p.eval(x);
                let got = plan.eval_f64(x).unwrap();
                let scale: f64 = p.coeffs().iter().map(|c| c.abs()).sum();
                assert!(
                    (got - want).abs() <= 1e-12 * scale,
                    "d {d} x {x}: {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn non_ideal_moduli_keep_scales_exact() {
        let moduli: Vec<f64> = (0..20).map(|l| 2f64.powi(40) * (1.0 + 1e-3 * l as f64)).collect();
        let model = LevelModel::new()
            .with_moduli(moduli)
            .unwrap()
            .with_scale_tolerance(1e-12)
            .unwrap();
        for d in [3, 7, 15, 27, 31, 63] {
            let plan = EvalPlan::new(&dense(d, Interval::UNIT)).unwrap();
            let mut ev = SimEvaluator::new(model.clone());
            let x = ev.fresh(plan.depth() + 2);
            let y = plan.evaluate(&mut ev, &x).unwrap();
            assert_eq!(y.level, 2);
            assert!((y.scale / x.scale - 1.0).abs() < 1e-12);
        }
    }

    #[test]
    fn change_of_variable_costs_a_level_only_when_scaled() {
        let p = dense(7, Interval::new(-20.0, 20.0).unwrap());
        let plan = EvalPlan::new(&p).unwrap();
        assert_eq!((plan.poly_depth(), plan.input_map_depth()), (3, 1));
        assert!((plan.eval_f64(13.0).unwrap() - p.eval(13.0)).abs() < 1e-12);
        let q = dense(7, Interval::new(0.0, 1.0).unwrap());
        let plan = EvalPlan::new(&q).unwrap();
        assert_eq!(plan.depth(), 3);
        assert!((plan.eval_f64(0.3).unwrap() - q.eval(0.3)).abs() < 1e-12);
    }

    #[test]
    fn not_enough_levels_is_an_error() {
        let plan = EvalPlan::new(&dense(15, Interval::UNIT)).unwrap();
        let mut ev = SimEvaluator::default();
        let x = ev.fresh(3);
        assert!(matches!(
            plan.evaluate(&mut ev, &x),
            Err(Error::LevelExhausted {
                needed: 4,
                available: 3
            })
        ));
    }
}
