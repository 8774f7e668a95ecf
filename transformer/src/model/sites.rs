//! Non-polynomial sites of a model (activations, LayerNorm inverse square roots, Power-Softmax
//! reciprocals), their recorded input ranges, and the polynomials that replace them.
//!
//! Everything here is plain f64 and serde, so checkpoints carry it and both the framework model and the
//! f64 reference evaluate exactly the same polynomials.

use std::collections::BTreeMap;

use poly_approx::composite::{CompositeSign, Objective};
use poly_approx::newton::{NewtonApprox, NewtonKind};
use poly_approx::{functions, remez, ChebyshevPoly, Interval};
use serde::{Deserialize, Serialize};

use super::config::Activation;

/// What a site computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SiteKind {
    /// A pointwise activation.
    Act(Activation),
    /// `1 / sqrt(x)` (LayerNorm: `x = var + eps`).
    InvSqrt,
    /// `1 / x` (the Power-Softmax denominator).
    Reciprocal,
}

impl SiteKind {
    /// The exact function.
    pub fn exact(self, x: f64) -> f64 {
        match self {
            SiteKind::Act(Activation::Gelu) => functions::gelu(x),
            SiteKind::Act(Activation::Relu) => x.max(0.0),
            SiteKind::InvSqrt => 1.0 / x.sqrt(),
            SiteKind::Reciprocal => 1.0 / x,
        }
    }
}

/// The observed input range of a site.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Range {
    /// Smallest input seen.
    pub min: f64,
    /// Largest input seen.
    pub max: f64,
}

impl Range {
    /// The empty range (absorbs any observation).
    pub fn empty() -> Self {
        Range {
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }

    /// Widens to include `[min, max]`.
    pub fn observe(&mut self, min: f64, max: f64) {
        self.min = self.min.min(min);
        self.max = self.max.max(max);
    }

    /// `max(|min|, |max|)`.
    pub fn abs_max(&self) -> f64 {
        self.min.abs().max(self.max.abs())
    }
}

/// Recorded ranges by site name (module path of the site, e.g. `blocks.0.mlp.act`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RangeRecord {
    /// Site -> (kind, range).
    pub sites: BTreeMap<String, (SiteKind, Range)>,
}

impl RangeRecord {
    /// Adds one observation of a site; non-finite values (a model that overflowed) are not ranges and
    /// are left out (the evaluation reports them as non-finite logits).
    pub fn observe(&mut self, site: &str, kind: SiteKind, min: f64, max: f64) {
        if !(min.is_finite() && max.is_finite()) {
            return;
        }
        self.sites
            .entry(site.to_string())
            .or_insert((kind, Range::empty()))
            .1
            .observe(min, max);
    }

    /// The largest |input| over activation sites, and the largest LayerNorm `var + eps`.
    pub fn summary(&self) -> (f64, f64) {
        let mut act: f64 = 0.0;
        let mut var: f64 = 0.0;
        for (kind, r) in self.sites.values() {
            match kind {
                SiteKind::Act(_) => act = act.max(r.abs_max()),
                SiteKind::InvSqrt => var = var.max(r.max),
                SiteKind::Reciprocal => {}
            }
        }
        (act, var)
    }
}

/// A Chebyshev series `sum_k c_k T_k(u)`, `u = (2x - a - b) / (b - a)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chebyshev {
    /// Interval start.
    pub a: f64,
    /// Interval end.
    pub b: f64,
    /// Coefficients, `c_0` first.
    pub coeffs: Vec<f64>,
}

impl Chebyshev {
    fn from_poly(p: &ChebyshevPoly) -> Self {
        Chebyshev {
            a: p.interval().a(),
            b: p.interval().b(),
            coeffs: p.coeffs().to_vec(),
        }
    }

    /// Degree.
    pub fn degree(&self) -> usize {
        self.coeffs.len().saturating_sub(1)
    }

    /// `(alpha, beta)` with `u = alpha x + beta`.
    pub fn unit_map(&self) -> (f64, f64) {
        let alpha = 2.0 / (self.b - self.a);
        (alpha, -(self.a + self.b) / (self.b - self.a))
    }

    /// Clenshaw evaluation (no clamping: outside `[a, b]` the polynomial is what it is).
    pub fn eval(&self, x: f64) -> f64 {
        let (alpha, beta) = self.unit_map();
        let u = alpha * x + beta;
        let (mut b1, mut b2) = (0.0, 0.0);
        for &c in self.coeffs.iter().skip(1).rev() {
            let b0 = c + 2.0 * u * b1 - b2;
            b2 = b1;
            b1 = b0;
        }
        self.coeffs.first().copied().unwrap_or(0.0) + u * b1 - b2
    }
}

/// The polynomial that replaces a site.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SitePoly {
    /// One Chebyshev series (GELU: Remez minimax on the range).
    Chebyshev(Chebyshev),
    /// ReLU as `0.5 (x + x sign(x / scale))`, `sign` a composition of odd minimax stages
    /// (Lee et al. 2021), each stage's input the previous stage's output.
    CompositeRelu {
        /// Inputs are divided by this (the range's |max|) so they land in `[-1, 1]`.
        scale: f64,
        /// The sign stages, innermost first.
        stages: Vec<Chebyshev>,
    },
    /// A polynomial initial guess `y0 = initial(x)`, then `steps` Newton steps (`1/sqrt`:
    /// `y <- y (3 - x y^2) / 2`; `1/x`: `y <- y (2 - x y)`).
    Newton {
        /// Which reciprocal.
        inverse_sqrt: bool,
        /// Initial guess.
        initial: Chebyshev,
        /// Newton steps.
        steps: usize,
    },
}

impl SitePoly {
    /// Evaluates in f64.
    pub fn eval(&self, x: f64) -> f64 {
        match self {
            SitePoly::Chebyshev(c) => c.eval(x),
            SitePoly::CompositeRelu { scale, stages } => {
                let s = stages.iter().fold(x / scale, |v, st| st.eval(v));
                0.5 * (x + x * s)
            }
            SitePoly::Newton {
                inverse_sqrt,
                initial,
                steps,
            } => {
                let mut y = initial.eval(x);
                for _ in 0..*steps {
                    y = if *inverse_sqrt {
                        0.5 * y * (3.0 - x * y * y)
                    } else {
                        y * (2.0 - x * y)
                    };
                }
                y
            }
        }
    }

    /// Largest Chebyshev degree used.
    pub fn max_degree(&self) -> usize {
        match self {
            SitePoly::Chebyshev(c) => c.degree(),
            SitePoly::CompositeRelu { stages, .. } => stages.iter().map(Chebyshev::degree).max().unwrap_or(0),
            SitePoly::Newton { initial, .. } => initial.degree(),
        }
    }

    /// Multiplicative depth on a ciphertext (each Chebyshev series of degree d at ceil(log2(d+1)) levels,
    /// the scalar input map and Newton's products included).
    pub fn depth(&self) -> usize {
        let cheb = |c: &Chebyshev| poly_approx::poly::depth_for_degree(c.degree());
        match self {
            SitePoly::Chebyshev(c) => cheb(c),
            SitePoly::CompositeRelu { stages, .. } => stages.iter().map(cheb).sum::<usize>() + 1,
            // Two levels per Newton step: 1/sqrt as 1.5 y - 0.5 (x y)(y y), 1/x as 2 y - (x y) y.
            SitePoly::Newton { initial, steps, .. } => cheb(initial) + 2 * steps,
        }
    }
}

/// How polynomials are fitted to recorded ranges.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FitConfig {
    /// The fitting interval is the recorded range widened by this fraction of its width on each side
    /// (and for activations made symmetric).
    pub margin: f64,
    /// GELU: degree of the polynomial.
    pub gelu_degree: usize,
    /// GELU: Chebyshev interpolation instead of Remez minimax (for the degree study).
    #[serde(default)]
    pub gelu_interpolate: bool,
    /// ReLU: the composite sign's gap (relative to the range) and precision.
    pub relu_eps: f64,
    /// ReLU: the composite sign's max error outside the gap.
    pub relu_precision: f64,
    /// Inverse square root and reciprocal: target max relative error of initial guess plus Newton.
    pub newton_target: f64,
}

impl Default for FitConfig {
    fn default() -> Self {
        FitConfig {
            margin: 0.1,
            gelu_degree: 31,
            gelu_interpolate: false,
            relu_eps: 2f64.powi(-8),
            relu_precision: 2f64.powi(-10),
            newton_target: 1e-3,
        }
    }
}

/// A fitted site: the interval it was fitted on, the polynomial, and its max error there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FittedSite {
    /// What it replaces.
    pub kind: SiteKind,
    /// The range recorded before fitting.
    pub recorded: Range,
    /// The interval the polynomial was fitted on (recorded plus margin).
    pub interval: Range,
    /// The polynomial.
    pub poly: SitePoly,
    /// Max |poly - exact| on the interval (relative for the reciprocals), measured on a dense grid.
    pub max_error: f64,
}

/// The polynomials of a whole model, by site.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PolySet {
    /// Site -> fitted polynomial.
    pub sites: BTreeMap<String, FittedSite>,
}

impl PolySet {
    /// Fits every site of `record`.
    pub fn fit(record: &RangeRecord, cfg: &FitConfig) -> Result<Self, String> {
        let mut sites = BTreeMap::new();
        for (name, (kind, range)) in &record.sites {
            let fitted = fit_site(*kind, *range, cfg).map_err(|e| format!("site {name}: {e}"))?;
            sites.insert(name.clone(), fitted);
        }
        Ok(PolySet { sites })
    }

    /// The polynomial of a site, if fitted.
    pub fn get(&self, site: &str) -> Option<&SitePoly> {
        self.sites.get(site).map(|f| &f.poly)
    }
}

fn interval(a: f64, b: f64) -> Result<Interval, String> {
    Interval::new(a, b).map_err(|e| e.to_string())
}

/// Fits one site on its recorded range plus the margin.
pub fn fit_site(kind: SiteKind, recorded: Range, cfg: &FitConfig) -> Result<FittedSite, String> {
    if !(recorded.min.is_finite() && recorded.max.is_finite()) || recorded.min > recorded.max {
        return Err(format!("no finite range recorded ({:?})", recorded));
    }
    let (lo, hi, poly) = match kind {
        SiteKind::Act(act) => {
            // Symmetric so the odd/even structure of the fit is not biased; at least [-1, 1].
            let r = (recorded.abs_max() * (1.0 + 2.0 * cfg.margin)).max(1.0);
            let poly = match act {
                Activation::Gelu => {
                    let p = if cfg.gelu_interpolate {
                        poly_approx::chebyshev::interpolate(
                            functions::gelu,
                            interval(-r, r)?,
                            cfg.gelu_degree,
                        )
                        .map_err(|e| e.to_string())?
                    } else {
                        remez::minimax(functions::gelu, interval(-r, r)?, cfg.gelu_degree)
                            .map_err(|e| e.to_string())?
                            .poly
                    };
                    SitePoly::Chebyshev(Chebyshev::from_poly(&p))
                }
                Activation::Relu => {
                    let sign = CompositeSign::design(cfg.relu_eps, cfg.relu_precision, Objective::Depth)
                        .map_err(|e| e.to_string())?;
                    SitePoly::CompositeRelu {
                        scale: r,
                        stages: sign.stages().into_iter().map(Chebyshev::from_poly).collect(),
                    }
                }
            };
            (-r, r, poly)
        }
        SiteKind::InvSqrt | SiteKind::Reciprocal => {
            let width = recorded.max - recorded.min;
            let lo = (recorded.min - cfg.margin * width).max(recorded.min * 0.5);
            let hi = recorded.max + cfg.margin * width.max(recorded.max * 0.01);
            if lo <= 0.0 {
                return Err(format!(
                    "reciprocal site needs a positive range, recorded {recorded:?}"
                ));
            }
            let nk = if kind == SiteKind::InvSqrt {
                NewtonKind::InverseSqrt
            } else {
                NewtonKind::Inverse
            };
            let na =
                NewtonApprox::design(nk, interval(lo, hi)?, cfg.newton_target).map_err(|e| e.to_string())?;
            let poly = SitePoly::Newton {
                inverse_sqrt: kind == SiteKind::InvSqrt,
                initial: Chebyshev::from_poly(na.initial()),
                steps: na.steps(),
            };
            (lo, hi, poly)
        }
    };
    let max_error = grid_error(kind, &poly, lo, hi);
    Ok(FittedSite {
        kind,
        recorded,
        interval: Range { min: lo, max: hi },
        poly,
        max_error,
    })
}

/// Max error on 4,001 evenly spaced points (relative for the reciprocals; for composite ReLU the
/// points inside the sign's gap count too: there the error is up to `eps * scale / 2`).
fn grid_error(kind: SiteKind, poly: &SitePoly, lo: f64, hi: f64) -> f64 {
    let n = 4000;
    (0..=n)
        .map(|i| {
            let x = lo + (hi - lo) * i as f64 / n as f64;
            let (p, e) = (poly.eval(x), kind.exact(x));
            match kind {
                SiteKind::Act(_) => (p - e).abs(),
                _ => ((p - e) / e).abs(),
            }
        })
        .fold(0.0, f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chebyshev_matches_poly_approx() {
        let mm = remez::minimax(functions::gelu, Interval::new(-6.0, 6.0).unwrap(), 15).unwrap();
        let c = Chebyshev::from_poly(&mm.poly);
        for i in 0..=100 {
            let x = -6.0 + 0.12 * i as f64;
            assert!((c.eval(x) - mm.poly.eval(x)).abs() < 1e-12);
        }
    }

    #[test]
    fn fitted_sites_are_accurate_on_their_interval() {
        let cfg = FitConfig::default();
        let g = fit_site(
            SiteKind::Act(Activation::Gelu),
            Range { min: -7.0, max: 5.0 },
            &cfg,
        )
        .unwrap();
        assert!(g.max_error < 0.01, "gelu {}", g.max_error);
        assert!(g.interval.min <= -7.0 && g.interval.max >= 7.0);
        let r = fit_site(
            SiteKind::Act(Activation::Relu),
            Range { min: -3.0, max: 3.0 },
            &cfg,
        )
        .unwrap();
        // Inside the sign's gap the composite ReLU is off by at most eps * scale / 2 (+ precision).
        if let SitePoly::CompositeRelu { scale, .. } = &r.poly {
            assert!(r.max_error <= cfg.relu_eps * scale, "relu {}", r.max_error);
        } else {
            panic!("relu must be composite");
        }
        let v = fit_site(SiteKind::InvSqrt, Range { min: 0.05, max: 40.0 }, &cfg).unwrap();
        assert!(v.max_error < 4.0 * cfg.newton_target, "invsqrt {}", v.max_error);
    }

    #[test]
    fn exact_polynomial_is_reproduced_exactly() {
        // GELU is not a polynomial, but a site fitted to a polynomial target must reproduce it: fit
        // a Chebyshev series to x^2 - x and compare.
        let p =
            poly_approx::chebyshev::interpolate(|x| x * x - x, Interval::new(-2.0, 2.0).unwrap(), 2).unwrap();
        let c = SitePoly::Chebyshev(Chebyshev::from_poly(&p));
        for x in [-2.0, -0.5, 0.0, 1.25, 2.0] {
            assert!((c.eval(x) - (x * x - x)).abs() < 1e-13);
        }
    }
}
