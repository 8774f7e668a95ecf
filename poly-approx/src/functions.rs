//! Target functions of the polynomial transformer, each with a recommended interval, and an
//! `erf` accurate to ~1e-16 (for the exact GELU).
//!
//! Recommended intervals assume range-aware training / calibration as in Zimerman et al.: the
//! activations' pre-images are kept in a known range and normalised into it (for `exp`, after
//! shifting by a calibrated bound; for `1/x` and `1/sqrt x`, after dividing by a calibrated upper
//! bound). Callers with measured ranges should pass their own interval. How each target is best
//! approximated:
//! - GELU, SiLU, sigmoid, exp: a single Remez minimax polynomial ([`crate::remez`]);
//! - ReLU: the composite sign construction ([`crate::composite::CompositeRelu`]) on `[-1, 1]`,
//!   or a single minimax polynomial when a smooth error near 0 is acceptable;
//! - `1/x`, `1/sqrt x`: polynomial initial guess plus Newton steps ([`crate::newton`]);
//! - `x^p`: exact, by repeated squaring ([`crate::eval::PowerPlan`], [`power_poly`]).
//!
//! References:
//! - D. Hendrycks, K. Gimpel, "Gaussian Error Linear Units (GELUs)", 2016,
//!   <https://arxiv.org/abs/1606.08415>.
//! - S. Elfwing, E. Uchibe, K. Doya, "Sigmoid-weighted linear units for neural network function
//!   approximation in reinforcement learning", Neural Networks 107 (2018),
//!   <https://arxiv.org/abs/1702.03118>.
//! - M. Abramowitz, I. Stegun, *Handbook of Mathematical Functions*, 1964, eq. 7.1.6 (erf series
//!   with positive terms) and 7.1.14 (erfc continued fraction).
//! - I. Zimerman et al., ICML 2024, <https://arxiv.org/abs/2311.08610>.

use crate::error::Result;
use crate::interval::Interval;
use crate::poly::ChebyshevPoly;

const FRAC_2_SQRT_PI: f64 = std::f64::consts::FRAC_2_SQRT_PI;

/// Below this, the positive-term series; above, the continued fraction for erfc (which then
/// converges to full precision within 400 levels, and avoids the cancellation of `1 - erf`).
const ERF_SPLIT: f64 = 0.75;

/// Error function, absolute error below 1e-15 (measured ~3e-16 against a reference).
pub fn erf(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    let ax = x.abs();
    let v = if ax <= ERF_SPLIT {
        erf_series(ax)
    } else {
        1.0 - erfc_fraction(ax)
    };
    v.copysign(x)
}

/// Complementary error function `1 - erf(x)`, with full relative accuracy for large `x`.
pub fn erfc(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    if x > ERF_SPLIT {
        erfc_fraction(x)
    } else if x >= 0.0 {
        1.0 - erf_series(x)
    } else {
        1.0 + erf(-x)
    }
}

/// `erf(x) = (2x/sqrt(pi)) e^{-x^2} sum_n (2x^2)^n / (1*3*...*(2n+1))` (A&S 7.1.6): all terms
/// positive, so no cancellation; for `x <= 0.75` about 25 terms reach f64 precision.
fn erf_series(x: f64) -> f64 {
    let x2 = x * x;
    let mut term = 1.0;
    let mut sum = 1.0;
    for n in 1..200 {
        term *= 2.0 * x2 / (2 * n + 1) as f64;
        sum += term;
        if term < 1e-17 * sum {
            break;
        }
    }
    FRAC_2_SQRT_PI * x * (-x2).exp() * sum
}

/// `erfc(x) = e^{-x^2} / sqrt(pi) / (x + (1/2)/(x + 1/(x + (3/2)/(x + ...))))` (A&S 7.1.14),
/// evaluated backwards. The truncation error falls roughly like `exp(-c x sqrt(n))`; `300 / x^2`
/// levels (measured: 320 suffice at 0.75, 80 at 2) reach f64 precision for `x >= 0.75`.
fn erfc_fraction(x: f64) -> f64 {
    let levels = (300.0 / (x * x)).clamp(40.0, 400.0) as usize;
    let mut t = x;
    for k in (1..=levels).rev() {
        t = x + 0.5 * k as f64 / t;
    }
    0.5 * FRAC_2_SQRT_PI * (-x * x).exp() / t
}

/// Standard normal CDF `Phi(x) = erfc(-x / sqrt 2) / 2`.
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * erfc(-x * std::f64::consts::FRAC_1_SQRT_2)
}

/// `ReLU(x) = max(x, 0)`.
pub fn relu(x: f64) -> f64 {
    x.max(0.0)
}

/// Exact GELU `x Phi(x)`.
pub fn gelu(x: f64) -> f64 {
    x * normal_cdf(x)
}

/// Logistic sigmoid, computed without overflow.
pub fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// SiLU (swish) `x sigmoid(x)`.
pub fn silu(x: f64) -> f64 {
    x * sigmoid(x)
}

/// The functions the polynomial models need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Target {
    /// `max(x, 0)`.
    Relu,
    /// Exact (erf) GELU.
    Gelu,
    /// `x sigmoid(x)`.
    Silu,
    /// `1 / (1 + e^{-x})`.
    Sigmoid,
    /// `e^x`.
    Exp,
    /// `1 / x` (softmax normalisation).
    Inverse,
    /// `1 / sqrt(x)` (LayerNorm).
    InverseSqrt,
    /// `x^p` (Power-Softmax), exact as a polynomial.
    Power(u32),
}

impl Target {
    /// The targets with a non-polynomial shape, in a fixed order (for tables and tests).
    pub const NON_POLYNOMIAL: [Target; 7] = [
        Target::Relu,
        Target::Gelu,
        Target::Silu,
        Target::Sigmoid,
        Target::Exp,
        Target::Inverse,
        Target::InverseSqrt,
    ];

    /// Evaluates the exact function.
    pub fn eval(&self, x: f64) -> f64 {
        match *self {
            Target::Relu => relu(x),
            Target::Gelu => gelu(x),
            Target::Silu => silu(x),
            Target::Sigmoid => sigmoid(x),
            Target::Exp => x.exp(),
            Target::Inverse => 1.0 / x,
            Target::InverseSqrt => 1.0 / x.sqrt(),
            Target::Power(p) => x.powi(p.min(i32::MAX as u32) as i32),
        }
    }

    /// Short lowercase name (for file names and CSV columns).
    pub fn name(&self) -> &'static str {
        match self {
            Target::Relu => "relu",
            Target::Gelu => "gelu",
            Target::Silu => "silu",
            Target::Sigmoid => "sigmoid",
            Target::Exp => "exp",
            Target::Inverse => "inverse",
            Target::InverseSqrt => "inverse_sqrt",
            Target::Power(_) => "power",
        }
    }

    /// Recommended interval (see module docs for the assumptions).
    ///
    /// - ReLU, GELU, SiLU: `[-20, 20]`, the pre-activation range kept by range-aware training;
    /// - sigmoid: `[-20, 20]` (saturated to 2e-9 at the ends);
    /// - exp: `[-16, 0]`, logits shifted below a calibrated maximum (`e^-16 ~ 1e-7`);
    /// - `1/x`, `1/sqrt x`: `[0.01, 1]`, a 100x dynamic range after dividing by a calibrated bound;
    /// - `x^p`: `[-1, 1]`, inputs normalised before powering.
    pub fn recommended_interval(&self) -> Interval {
        let (a, b) = match self {
            Target::Relu | Target::Gelu | Target::Silu | Target::Sigmoid => (-20.0, 20.0),
            Target::Exp => (-16.0, 0.0),
            Target::Inverse | Target::InverseSqrt => (0.01, 1.0),
            Target::Power(_) => (-1.0, 1.0),
        };
        Interval::new(a, b).unwrap_or(Interval::UNIT)
    }
}

/// `x^p` on `interval` as an exact Chebyshev series (for reporting; evaluate it with
/// [`crate::eval::PowerPlan`], which needs one level less and no constants).
pub fn power_poly(p: u32, interval: Interval) -> Result<ChebyshevPoly> {
    let mut monomial = vec![0.0; p as usize + 1];
    if let Some(top) = monomial.last_mut() {
        *top = 1.0;
    }
    ChebyshevPoly::from_monomial(&monomial, interval)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_reference_values() {
        // Values from A&S Table 7.1 / high-precision evaluation.
        let cases = [
            (0.1, 0.112_462_916_018_284_9),
            (0.5, 0.520_499_877_813_046_5),
            (1.0, 0.842_700_792_949_714_9),
            (2.0, 0.995_322_265_018_952_7),
            (2.5, 0.999_593_047_982_555),
            (3.0, 0.999_977_909_503_001_4),
        ];
        for (x, want) in cases {
            assert!((erf(x) - want).abs() < 5e-16, "erf({x}) = {} vs {want}", erf(x));
            assert!((erf(-x) + want).abs() < 5e-16);
        }
        let tails = [
            (3.0, 2.209_049_699_858_544e-5),
            (5.0, 1.537_459_794_428_035e-12),
            (10.0, 2.088_487_583_762_545e-45),
        ];
        for (x, want) in tails {
            assert!(
                (erfc(x) / want - 1.0).abs() < 1e-13,
                "erfc({x}) = {} vs {want}",
                erfc(x)
            );
        }
        assert!((erfc(-1.0) - (1.0 + 0.842_700_792_949_714_9)).abs() < 3e-16);
        assert!(erf(f64::NAN).is_nan());
    }

    #[test]
    fn erf_is_continuous_at_the_split() {
        let h = 1e-9;
        let slope = FRAC_2_SQRT_PI * (-ERF_SPLIT * ERF_SPLIT).exp();
        let jump = erf(ERF_SPLIT + h) - erf(ERF_SPLIT) - slope * h;
        assert!(jump.abs() < 1e-15, "{jump}");
    }

    #[test]
    fn activations() {
        assert_eq!(relu(-2.0), 0.0);
        assert!((gelu(1.0) - 0.841_344_746_068_542_9).abs() < 1e-15);
        assert!(gelu(-30.0).abs() < 1e-190);
        assert!((sigmoid(0.0) - 0.5).abs() < 1e-16);
        assert!((sigmoid(-800.0)).abs() < 1e-300 && sigmoid(800.0) == 1.0);
        assert!((silu(2.0) - 2.0 / (1.0 + (-2.0f64).exp())).abs() < 1e-15);
        for t in Target::NON_POLYNOMIAL {
            let i = t.recommended_interval();
            assert!(
                t.eval(i.a()).is_finite() && t.eval(i.b()).is_finite(),
                "{}",
                t.name()
            );
        }
    }

    #[test]
    fn power_poly_is_exact() {
        let i = Interval::new(-2.0, 3.0).unwrap();
        let p = power_poly(6, i).unwrap();
        assert_eq!(p.degree(), 6);
        for x in [-2.0, -0.5, 1.0, 2.7] {
            assert!((p.eval(x) - x.powi(6)).abs() < 1e-11);
        }
    }
}
