//! Remez exchange for minimax (best L-infinity) polynomial approximation on an interval or a
//! union of intervals, optionally weighted and optionally restricted to odd or even polynomials.
//!
//! Each iteration solves, in the Chebyshev basis of the hull of the domain, the linear system
//! `sum_j c_j T_j(u_i) + (-1)^i E / w(x_i) = f(x_i)` on a reference of `m = #basis + 1` points,
//! then moves the reference to the alternating extrema of the new error curve (dense sampling and
//! golden-section refinement, see the `measure` module), keeping the global maximum (multiple
//! exchange). It stops when the reference errors agree to a relative `tolerance`
//! (equioscillation, Chebyshev's alternation theorem) or when their spread is at the level of
//! f64 rounding in evaluating `f - p`.
//!
//! Conditioning: working in the Chebyshev basis keeps the systems well conditioned
//! (the reference points stay close to a Chebyshev alternant), so f64 suffices while the
//! minimax error is well above `~1e-13 * (|f| + sum |c_j|)`. Below that, for example very high
//! degrees of entire functions such as `exp` on a short interval, the error curve is rounding
//! noise, the alternation cannot be resolved in f64 and the result is reported with
//! [`Termination::PrecisionFloor`]; a multiple-precision Remez (as in Lee et al. 2020/552 or
//! Sollya) would be needed to go further. For weighted problems the weight must be positive
//! and finite on the domain.
//!
//! With [`Parity::Odd`] or [`Parity::Even`] the domain must be symmetric, only the matching
//! Chebyshev polynomials are used and the exchange runs on the non-negative half; this is the
//! standard reduction for sign and `|x|` and halves the system size.
//!
//! References:
//! - E. Ya. Remez, "Sur le calcul effectif des polynomes d'approximation de Tchebichef",
//!   C. R. Acad. Sci. Paris 199 (1934).
//! - R. Pachón, L. N. Trefethen, "Barycentric-Remez algorithms for best polynomial approximation
//!   in the chebfun system", BIT 49 (2009).
//! - J. Lee, E. Lee, J.-W. Lee, Y. Kim, Y.-S. Kim, J.-S. No, "High-precision bootstrapping of
//!   RNS-CKKS homomorphic encryption using optimal minimax polynomial approximation and inverse
//!   sine function", EUROCRYPT 2021, <https://eprint.iacr.org/2020/552> (multi-interval Remez).
//! - L. N. Trefethen, *Approximation Theory and Approximation Practice*, SIAM 2019, ch. 10.

use crate::error::{finite, Error, Result};
use crate::interval::{Domain, Interval};
use crate::linalg::solve;
use crate::measure::{alternating_extrema, default_samples, Extremum};
use crate::poly::{chebyshev_values, ChebyshevPoly};

/// Largest degree accepted by the Remez exchange (O(d^3) per iteration, and f64 limits).
pub const MAX_REMEZ_DEGREE: usize = 512;

/// Which Chebyshev polynomials the approximation may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Parity {
    /// All of `T_0 .. T_d`.
    #[default]
    Any,
    /// Only odd `T_k` (for odd targets on symmetric domains).
    Odd,
    /// Only even `T_k` (for even targets on symmetric domains).
    Even,
}

/// Settings of the Remez exchange.
#[derive(Debug, Clone, PartialEq)]
pub struct RemezConfig {
    /// Iteration budget; exhausting it is an error.
    pub max_iterations: usize,
    /// Target relative spread `(max|e| - min|e|) / max|e|` over the reference.
    pub tolerance: f64,
    /// Restriction to odd or even polynomials.
    pub parity: Parity,
    /// Samples per interval when locating extrema; `None` picks `24 (d + 2)` (at least 400).
    pub samples_per_interval: Option<usize>,
}

impl Default for RemezConfig {
    fn default() -> Self {
        Self {
            max_iterations: 100,
            tolerance: 1e-9,
            parity: Parity::Any,
            samples_per_interval: None,
        }
    }
}

impl RemezConfig {
    /// Default settings with the given parity.
    pub fn with_parity(parity: Parity) -> Self {
        Self {
            parity,
            ..Self::default()
        }
    }
}

/// Why the exchange stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Termination {
    /// The reference errors agree to the requested tolerance.
    Equioscillation,
    /// The spread is at the f64 rounding level of `f - p`; the result is best in f64 terms.
    PrecisionFloor,
}

/// Result of a Remez exchange.
#[derive(Debug, Clone, PartialEq)]
pub struct Minimax {
    /// The (near-)minimax polynomial, on the hull of the domain.
    pub poly: ChebyshevPoly,
    /// Max of `|w (f - p)|` over the domain.
    pub max_error: f64,
    /// `|E|` from the last linear solve: a lower bound on the minimax error (de la Vallée Poussin).
    pub levelled_error: f64,
    /// The alternation points (ascending; on the non-negative half for odd/even problems).
    pub points: Vec<f64>,
    /// Signed weighted errors at `points`; they alternate in sign.
    pub point_errors: Vec<f64>,
    /// Relative spread `(max - min) / max` of `|point_errors|`.
    pub spread: f64,
    /// Iterations performed.
    pub iterations: usize,
    /// Why it stopped.
    pub termination: Termination,
}

/// Minimax polynomial of `degree` for `f` on `interval` with default settings.
pub fn minimax(f: impl Fn(f64) -> f64, interval: Interval, degree: usize) -> Result<Minimax> {
    remez(f, &Domain::single(interval), degree, &RemezConfig::default())
}

/// Minimax polynomial of `degree` for `f` on `domain` (an interval or a union of intervals).
///
/// Errors on a degree above [`MAX_REMEZ_DEGREE`], a parity request on a non-symmetric domain,
/// non-finite function values, a singular system, or failure to converge.
pub fn remez(
    f: impl Fn(f64) -> f64,
    domain: &Domain,
    degree: usize,
    config: &RemezConfig,
) -> Result<Minimax> {
    run(&f, None, domain, degree, config)
}

/// Weighted minimax: minimises `max |w(x) (f(x) - p(x))|`; `w = 1/|f|` gives relative error.
pub fn remez_weighted(
    f: impl Fn(f64) -> f64,
    weight: impl Fn(f64) -> f64,
    domain: &Domain,
    degree: usize,
    config: &RemezConfig,
) -> Result<Minimax> {
    run(&f, Some(&weight), domain, degree, config)
}

fn basis_indices(degree: usize, parity: Parity) -> Vec<usize> {
    (0..=degree)
        .filter(|k| match parity {
            Parity::Any => true,
            Parity::Odd => k % 2 == 1,
            Parity::Even => k % 2 == 0,
        })
        .collect()
}

fn run(
    f: &dyn Fn(f64) -> f64,
    weight: Option<&dyn Fn(f64) -> f64>,
    domain: &Domain,
    degree: usize,
    config: &RemezConfig,
) -> Result<Minimax> {
    if degree > MAX_REMEZ_DEGREE {
        return Err(Error::DegreeTooLarge {
            degree,
            max: MAX_REMEZ_DEGREE,
        });
    }
    if config.max_iterations == 0 {
        return Err(Error::InvalidParameter {
            name: "max_iterations",
            value: 0.0,
            reason: "need at least one iteration",
        });
    }
    if !(config.tolerance.is_finite() && config.tolerance > 0.0) {
        return Err(Error::InvalidParameter {
            name: "tolerance",
            value: config.tolerance,
            reason: "must be positive and finite",
        });
    }
    let hull = domain.hull();
    let search: Vec<Interval> = match config.parity {
        Parity::Any => domain.parts().to_vec(),
        Parity::Odd | Parity::Even => {
            if !domain.is_symmetric() {
                return Err(Error::InvalidDomain {
                    reason: "odd/even approximation needs a symmetric domain",
                });
            }
            domain
                .nonnegative_part()
                .ok_or(Error::InvalidDomain {
                    reason: "domain has no positive part",
                })?
                .parts()
                .to_vec()
        }
    };
    let basis = basis_indices(degree, config.parity);
    if basis.is_empty() {
        return Err(Error::DegreeTooSmall { degree, min: 1 });
    }
    let m = basis.len() + 1;
    let samples = config
        .samples_per_interval
        .unwrap_or_else(|| default_samples(degree))
        .max(m + 2);
    let w = |x: f64| weight.map_or(1.0, |w| w(x));

    let mut reference = initial_reference(&search, hull, m, config.parity);
    let mut spread = f64::INFINITY;
    let mut perturbed = false;
    for iteration in 1..=config.max_iterations {
        let (coeffs, levelled) = solve_reference(f, &w, &reference, hull, &basis, degree)?;
        let poly = ChebyshevPoly::new(coeffs, hull)?;
        let err = |x: f64| w(x) * (f(x) - poly.eval(x));
        let ext = alternating_extrema(&err, &search, samples)?;
        let global = ext.iter().fold(0.0_f64, |acc, e| acc.max(e.e.abs()));
        let floor = noise_floor(f, &w, &reference, &poly);
        let finish = |points: &[Extremum], spread: f64, termination| Minimax {
            poly: poly.clone(),
            max_error: global,
            levelled_error: levelled.abs(),
            points: points.iter().map(|e| e.x).collect(),
            point_errors: points.iter().map(|e| e.e).collect(),
            spread,
            iterations: iteration,
            termination,
        };
        if global <= floor {
            // `f` is (numerically) a polynomial of this degree: nothing left to equioscillate.
            return Ok(finish(&ext, 0.0, Termination::PrecisionFloor));
        }
        if ext.len() < m {
            // A reference symmetric about a symmetry of `f` can give E = 0 and too few sign
            // changes (e.g. |x| on [-1, 1]); break the symmetry once and retry.
            if perturbed {
                return Err(Error::RemezAlternation {
                    found: ext.len(),
                    needed: m,
                });
            }
            perturbed = true;
            reference = perturb(&reference, &search);
            continue;
        }
        let chosen = select_reference(ext, m);
        let (lo, hi) = chosen.iter().fold((f64::INFINITY, 0.0_f64), |(lo, hi), e| {
            (lo.min(e.e.abs()), hi.max(e.e.abs()))
        });
        spread = (hi - lo) / hi;
        if spread < config.tolerance {
            return Ok(finish(&chosen, spread, Termination::Equioscillation));
        }
        if hi - lo <= floor {
            return Ok(finish(&chosen, spread, Termination::PrecisionFloor));
        }
        reference = chosen.iter().map(|e| e.x).collect();
    }
    Err(Error::RemezNoConvergence {
        iterations: config.max_iterations,
        spread,
    })
}

/// Rounding level of evaluating `w (f - p)`: a few ulps of the magnitudes involved.
fn noise_floor(
    f: &dyn Fn(f64) -> f64,
    w: &dyn Fn(f64) -> f64,
    reference: &[f64],
    poly: &ChebyshevPoly,
) -> f64 {
    let coeff_sum: f64 = poly.coeffs().iter().map(|c| c.abs()).sum();
    let scale = reference
        .iter()
        .fold(0.0_f64, |acc, &x| acc.max(w(x).abs() * (f(x).abs() + coeff_sum)));
    8.0 * f64::EPSILON * scale
}

/// Solves the Remez system on `reference`; returns full-length coefficients and the levelled error.
fn solve_reference(
    f: &dyn Fn(f64) -> f64,
    w: &dyn Fn(f64) -> f64,
    reference: &[f64],
    hull: Interval,
    basis: &[usize],
    degree: usize,
) -> Result<(Vec<f64>, f64)> {
    let m = reference.len();
    let mut a = Vec::with_capacity(m * m);
    let mut rhs = Vec::with_capacity(m);
    let mut t = Vec::new();
    for (i, &x) in reference.iter().enumerate() {
        chebyshev_values(degree, hull.to_unit(x), &mut t);
        a.extend(basis.iter().map(|&k| t[k]));
        let wx = finite("weight", w(x))?;
        if wx <= 0.0 {
            return Err(Error::InvalidParameter {
                name: "weight",
                value: wx,
                reason: "must be positive",
            });
        }
        let sign = if i % 2 == 0 { 1.0 } else { -1.0 };
        a.push(sign / wx);
        rhs.push(finite("function value", f(x))?);
    }
    let sol = solve(a, rhs)?;
    let mut coeffs = vec![0.0; degree + 1];
    for (&k, &c) in basis.iter().zip(&sol) {
        coeffs[k] = c;
    }
    Ok((coeffs, sol.last().copied().unwrap_or(0.0)))
}

/// Moves each interior reference point a fraction of the way to its right neighbour,
/// staying inside the domain, to break a symmetry of the reference.
fn perturb(reference: &[f64], search: &[Interval]) -> Vec<f64> {
    let n = reference.len();
    (0..n)
        .map(|i| {
            let x = reference[i];
            if i == 0 || i + 1 >= n {
                return x;
            }
            let moved = x + 0.25 * (reference[i + 1] - x);
            if search.iter().any(|p| p.contains(moved)) {
                moved
            } else {
                x
            }
        })
        .collect()
}

/// Picks `m` of the alternating extrema, dropping the smallest while keeping alternation.
fn select_reference(mut ext: Vec<Extremum>, m: usize) -> Vec<Extremum> {
    while ext.len() > m {
        let excess = ext.len() - m;
        let last = ext.len() - 1;
        let mut i = 0;
        for j in 1..ext.len() {
            if ext[j].e.abs() < ext[i].e.abs() {
                i = j;
            }
        }
        if i == 0 || i == last {
            ext.remove(i);
        } else if excess >= 2 {
            // Removing an interior point with a neighbour keeps the signs alternating.
            let j = if ext[i - 1].e.abs() < ext[i + 1].e.abs() {
                i - 1
            } else {
                i + 1
            };
            ext.remove(i.max(j));
            ext.remove(i.min(j));
        } else if ext[0].e.abs() < ext[last].e.abs() {
            ext.remove(0);
        } else {
            ext.remove(last);
        }
    }
    ext
}

/// Starting reference: extrema of a Chebyshev polynomial on the hull that fall in the domain
/// (exactly the Chebyshev alternant for a single interval), else per-interval Chebyshev nodes.
fn initial_reference(search: &[Interval], hull: Interval, m: usize, parity: Parity) -> Vec<f64> {
    let inside = |x: f64| search.iter().any(|p| p.contains(x)) && (parity != Parity::Odd || x > 0.0);
    let mut n = match parity {
        Parity::Any => m - 1,
        Parity::Odd => 2 * m - 1,
        Parity::Even => 2 * m - 2,
    }
    .max(1);
    while n <= 64 * m {
        let cands: Vec<f64> = (0..=n)
            .map(|j| hull.from_unit(-(std::f64::consts::PI * j as f64 / n as f64).cos()))
            .filter(|&x| inside(x))
            .collect();
        if cands.len() >= m {
            let span = (cands.len() - 1) as f64 / (m - 1) as f64;
            return (0..m)
                .map(|i| cands[((i as f64 * span).round() as usize).min(cands.len() - 1)])
                .collect();
        }
        n = n + n / 4 + 1;
    }
    // Tiny intervals inside a large hull: spread the points by width, first-kind nodes in each.
    let total: f64 = search.iter().map(Interval::width).sum();
    let mut counts: Vec<usize> = search
        .iter()
        .map(|p| (m as f64 * p.width() / total).floor() as usize)
        .collect();
    let mut given: usize = counts.iter().sum();
    let mut k = 0;
    while given < m {
        if let Some(c) = counts.get_mut(k % search.len()) {
            *c += 1;
        }
        given += 1;
        k += 1;
    }
    search
        .iter()
        .zip(counts)
        .flat_map(|(p, c)| {
            crate::chebyshev::chebyshev_nodes(c)
                .into_iter()
                .rev()
                .map(move |u| p.from_unit(u))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit() -> Domain {
        Domain::single(Interval::UNIT)
    }

    fn assert_equioscillates(r: &Minimax, expected_points: usize, rel: f64) {
        assert_eq!(r.points.len(), expected_points);
        for w in r.point_errors.windows(2) {
            assert!(w[0] * w[1] < 0.0, "signs must alternate: {:?}", r.point_errors);
        }
        for e in &r.point_errors {
            assert!(
                (e.abs() - r.max_error).abs() <= rel * r.max_error,
                "{e} vs {}",
                r.max_error
            );
        }
    }

    #[test]
    fn exact_low_degree_results() {
        // Best linear approximation of x^2 on [-1, 1]: 1/2, error 1/2.
        let r = remez(|x| x * x, &unit(), 1, &RemezConfig::default()).unwrap();
        assert!((r.max_error - 0.5).abs() < 1e-12);
        assert!((r.poly.coeffs()[0] - 0.5).abs() < 1e-12 && r.poly.coeffs()[1].abs() < 1e-12);
        assert_equioscillates(&r, 3, 1e-9);
        // Best quadratic approximation of x^3: (3/4) x, error 1/4.
        let r = remez(|x| x * x * x, &unit(), 2, &RemezConfig::default()).unwrap();
        assert!((r.max_error - 0.25).abs() < 1e-12);
        let c = r.poly.coeffs();
        assert!(c[0].abs() < 1e-12 && (c[1] - 0.75).abs() < 1e-12 && c[2].abs() < 1e-12);
        assert_equioscillates(&r, 4, 1e-9);
        // A polynomial of the requested degree is reproduced.
        let r = remez(|x| 3.0 * x * x - x, &unit(), 2, &RemezConfig::default()).unwrap();
        assert_eq!(r.termination, Termination::PrecisionFloor);
        assert!(r.max_error < 1e-13);
    }

    #[test]
    fn equioscillation_with_d_plus_2_points() {
        let f = |x: f64| (3.0 * x).sin() + (x - 0.3).abs().sqrt();
        let i = Interval::new(-1.0, 2.0).unwrap();
        for degree in [3, 8, 17] {
            let r = remez(f, &Domain::single(i), degree, &RemezConfig::default()).unwrap();
            assert_equioscillates(&r, degree + 2, 1e-6);
            assert!(r.levelled_error <= r.max_error * (1.0 + 1e-9));
        }
    }

    #[test]
    fn odd_and_any_agree_on_sign_with_gap() {
        let d = Domain::symmetric_gap(0.1, 1.0).unwrap();
        let sign = |x: f64| x.signum();
        let odd = remez(sign, &d, 7, &RemezConfig::with_parity(Parity::Odd)).unwrap();
        let any = remez(sign, &d, 7, &RemezConfig::default()).unwrap();
        assert!((odd.max_error - any.max_error).abs() < 1e-7 * odd.max_error);
        assert_equioscillates(&odd, 5, 1e-6);
        assert!(odd.poly.coeffs().iter().step_by(2).all(|&c| c == 0.0));
    }

    #[test]
    fn bernstein_constant() {
        // 2n E_{2n}(|x|) -> beta = 0.2801694990 (Varga & Carpenter 1985), with an O(1/n^2) gap.
        let beta = 0.280_169_499_0;
        let mut prev_gap = f64::INFINITY;
        for n2 in [8, 16, 32, 64] {
            let r = remez(f64::abs, &unit(), n2, &RemezConfig::with_parity(Parity::Even)).unwrap();
            // Observed: beta - 2n E_{2n} ~ 0.176 / (2n)^2 from 2n = 8 on; allow 0.25 / (2n)^2.
            let gap = beta - n2 as f64 * r.max_error;
            assert!(gap > 0.0 && gap < 0.25 / (n2 * n2) as f64, "2n = {n2}: gap {gap}");
            assert!(gap < prev_gap);
            prev_gap = gap;
        }
    }

    #[test]
    fn bad_inputs() {
        let cfg = RemezConfig::default();
        assert!(matches!(
            remez(f64::sin, &unit(), 600, &cfg),
            Err(Error::DegreeTooLarge { .. })
        ));
        let asym = Domain::single(Interval::new(-1.0, 2.0).unwrap());
        assert!(matches!(
            remez(f64::sin, &asym, 3, &RemezConfig::with_parity(Parity::Odd)),
            Err(Error::InvalidDomain { .. })
        ));
        assert!(matches!(
            remez(f64::sin, &unit(), 0, &RemezConfig::with_parity(Parity::Odd)),
            Err(Error::DegreeTooSmall { .. })
        ));
        assert!(matches!(
            remez(|_| f64::NAN, &unit(), 3, &cfg),
            Err(Error::NonFinite { .. })
        ));
        let bad_tol = RemezConfig {
            tolerance: 0.0,
            ..RemezConfig::default()
        };
        assert!(matches!(
            remez(f64::sin, &unit(), 3, &bad_tol),
            Err(Error::InvalidParameter { .. })
        ));
        let one_iter = RemezConfig {
            max_iterations: 1,
            ..RemezConfig::default()
        };
        let f = |x: f64| (5.0 * x).exp() / (1.0 + 25.0 * x * x);
        assert!(matches!(
            remez(f, &unit(), 10, &one_iter),
            Err(Error::RemezNoConvergence { .. })
        ));
        let neg = remez_weighted(f64::sin, |_| -1.0, &unit(), 3, &cfg);
        assert!(matches!(neg, Err(Error::InvalidParameter { .. })));
    }
}
