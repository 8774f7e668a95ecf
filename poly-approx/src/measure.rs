//! Locating the extrema of an error curve `e(x) = w(x) (f(x) - p(x))` on a union of intervals.
//!
//! Dense sampling at Chebyshev-distributed points of each interval (dense near the ends, where
//! the extrema of near-best polynomials cluster at spacing O(1/d^2)), one candidate per run of
//! constant sign, then golden-section refinement of each candidate between its neighbouring
//! samples. Used both by the Remez exchange and to measure the max error of any polynomial.
//!
//! References:
//! - R. Pachón, L. N. Trefethen, "Barycentric-Remez algorithms for best polynomial approximation
//!   in the chebfun system", BIT 49 (2009), sec. 3 (locating the new reference).
//! - J. Kiefer, "Sequential minimax search for a maximum", Proc. AMS 4 (1953) (golden section).

use crate::error::{finite, Result};
use crate::interval::{Domain, Interval};
use crate::poly::ChebyshevPoly;

/// A local extremum of the error curve.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Extremum {
    pub x: f64,
    pub e: f64,
}

/// Golden-section steps; shrinks the bracket by 0.618^60 ~ 3e-13, well below where |e| changes.
const GOLDEN_STEPS: usize = 60;

/// Default number of samples per interval for a polynomial of the given degree.
pub(crate) fn default_samples(degree: usize) -> usize {
    (24 * (degree + 2)).max(400)
}

/// Chebyshev-distributed sample points of `[a, b]`, ends included, ascending.
fn samples(interval: Interval, n: usize) -> Vec<f64> {
    let n = n.max(2);
    let last = (n - 1) as f64;
    (0..n)
        .map(|t| interval.from_unit(-(std::f64::consts::PI * t as f64 / last).cos()))
        .collect()
}

/// One extremum per constant-sign run of `err` over the domain, merged so signs alternate.
pub(crate) fn alternating_extrema(
    err: &dyn Fn(f64) -> f64,
    domain: &[Interval],
    samples_per_interval: usize,
) -> Result<Vec<Extremum>> {
    let mut out: Vec<Extremum> = Vec::new();
    for &interval in domain {
        let xs = samples(interval, samples_per_interval);
        let es = xs
            .iter()
            .map(|&x| finite("error curve sample", err(x)))
            .collect::<Result<Vec<f64>>>()?;
        let mut start = 0;
        let mut sign = 0.0;
        for k in 0..xs.len() {
            let s = sign_of(es[k]);
            if s != 0.0 && sign != 0.0 && s != sign {
                push_merged(&mut out, refine(err, &xs, &es, start, k - 1, interval));
                start = k;
                sign = s;
            } else if sign == 0.0 {
                sign = s;
            }
        }
        if sign != 0.0 {
            push_merged(&mut out, refine(err, &xs, &es, start, xs.len() - 1, interval));
        }
    }
    Ok(out)
}

/// Max of `|f - p|` (times `w` if given) over the domain, located as in the Remez exchange.
pub(crate) fn max_weighted_error(
    f: &dyn Fn(f64) -> f64,
    weight: Option<&dyn Fn(f64) -> f64>,
    poly: &ChebyshevPoly,
    domain: &Domain,
) -> Result<f64> {
    let err = |x: f64| weight.map_or(1.0, |w| w(x)) * (f(x) - poly.eval(x));
    let ext = alternating_extrema(&err, domain.parts(), default_samples(poly.degree()))?;
    Ok(ext.iter().fold(0.0_f64, |m, e| m.max(e.e.abs())))
}

/// Max of `|f(x) - p(x)|` over `domain`: dense Chebyshev sampling plus local golden-section
/// refinement of every extremum, the same search the Remez exchange uses.
///
/// Errors if `f` is not finite somewhere on the sample grid.
pub fn max_abs_error(f: impl Fn(f64) -> f64, poly: &ChebyshevPoly, domain: &Domain) -> Result<f64> {
    max_weighted_error(&f, None, poly, domain)
}

fn sign_of(v: f64) -> f64 {
    if v > 0.0 {
        1.0
    } else if v < 0.0 {
        -1.0
    } else {
        0.0
    }
}

/// Appends `e`, replacing the last entry instead when both have the same sign (keeps the larger).
fn push_merged(out: &mut Vec<Extremum>, e: Extremum) {
    match out.last_mut() {
        Some(last) if sign_of(last.e) == sign_of(e.e) => {
            if e.e.abs() > last.e.abs() {
                *last = e;
            }
        }
        _ => out.push(e),
    }
}

/// Best sample in `[lo, hi]`, refined by golden section between its neighbouring samples.
fn refine(
    err: &dyn Fn(f64) -> f64,
    xs: &[f64],
    es: &[f64],
    lo: usize,
    hi: usize,
    interval: Interval,
) -> Extremum {
    let mut k = lo;
    for j in lo..=hi {
        if es[j].abs() > es[k].abs() {
            k = j;
        }
    }
    let best = Extremum { x: xs[k], e: es[k] };
    let left = xs[k.saturating_sub(1)];
    let right = xs[(k + 1).min(xs.len() - 1)];
    if right <= left {
        return best;
    }
    let cand = golden_max(err, left.max(interval.a()), right.min(interval.b()));
    // Only accept a refinement on the same lobe that improves the sample.
    if sign_of(cand.e) == sign_of(best.e) && cand.e.abs() > best.e.abs() {
        cand
    } else {
        best
    }
}

/// Golden-section search for the maximum of `|err|` on `[a, b]`.
fn golden_max(err: &dyn Fn(f64) -> f64, mut a: f64, mut b: f64) -> Extremum {
    let r = 0.5 * (5.0_f64.sqrt() - 1.0);
    let mut c = b - r * (b - a);
    let mut d = a + r * (b - a);
    let mut ec = err(c);
    let mut ed = err(d);
    for _ in 0..GOLDEN_STEPS {
        // NaN compares false and makes the search shrink towards `a`; the caller rejects it.
        if ec.abs() > ed.abs() {
            b = d;
            d = c;
            ed = ec;
            c = b - r * (b - a);
            ec = err(c);
        } else {
            a = c;
            c = d;
            ec = ed;
            d = a + r * (b - a);
            ed = err(d);
        }
    }
    if ec.abs() > ed.abs() {
        Extremum { x: c, e: ec }
    } else {
        Extremum { x: d, e: ed }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_alternating_extrema_of_t5() {
        // T_5 equioscillates at cos(k pi / 5), k = 0..5, with values (-1)^k (reversed: ascending).
        let t5 = |x: f64| 16.0 * x.powi(5) - 20.0 * x.powi(3) + 5.0 * x;
        let ext = alternating_extrema(&t5, &[Interval::UNIT], 200).unwrap();
        assert_eq!(ext.len(), 6);
        for (i, e) in ext.iter().enumerate() {
            let want_x = -(std::f64::consts::PI * i as f64 / 5.0).cos();
            assert!((e.x - want_x).abs() < 1e-6, "{} vs {}", e.x, want_x);
            assert!((e.e.abs() - 1.0).abs() < 1e-12);
        }
    }

    #[test]
    fn max_error_of_known_polynomial() {
        // Best linear approximation of x^2 on [-1, 1] is 1/2, error 1/2.
        let p = ChebyshevPoly::new(vec![0.5], Interval::UNIT).unwrap();
        let e = max_abs_error(|x| x * x, &p, &Domain::single(Interval::UNIT)).unwrap();
        assert!((e - 0.5).abs() < 1e-15);
    }
}
