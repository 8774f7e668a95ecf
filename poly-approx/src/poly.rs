//! Polynomials in the Chebyshev basis on an interval, with Clenshaw evaluation and
//! conversion to and from the monomial basis.
//!
//! `p(x) = sum_k c_k T_k(u)`, `u = (2x - a - b) / (b - a)`. The Chebyshev basis is the
//! well-conditioned one on `[a, b]`; the monomial basis is offered for interoperability only,
//! because its coefficients grow like `(1 + sqrt 2)^d` and lose all accuracy in f64 beyond
//! degree ~30 (Trefethen, ATAP ch. 3 and 21).
//!
//! References:
//! - L. N. Trefethen, *Approximation Theory and Approximation Practice*, SIAM 2019.
//! - C. W. Clenshaw, "A note on the summation of Chebyshev series", Math. Comp. 9 (1955).

use crate::error::{finite, Error, Result};
use crate::interval::Interval;

/// Largest degree accepted by constructors; far beyond what CKKS depth budgets allow.
pub const MAX_DEGREE: usize = 1 << 14;

/// Multiplicative depth `ceil(log2(d + 1))` of evaluating a degree-`d` polynomial
/// (0 for constants); the number of levels an [`crate::eval::EvalPlan`] consumes on `[-1, 1]`.
pub fn depth_for_degree(degree: usize) -> usize {
    // Bit length of d equals ceil(log2(d + 1)).
    (usize::BITS - degree.leading_zeros()) as usize
}

/// A polynomial `sum_k c_k T_k(u(x))` on an interval.
#[derive(Debug, Clone, PartialEq)]
pub struct ChebyshevPoly {
    coeffs: Vec<f64>,
    interval: Interval,
}

impl ChebyshevPoly {
    /// Creates a polynomial from Chebyshev coefficients `c_0, c_1, ...` on `interval`.
    ///
    /// Errors if `coeffs` is empty, has more than `MAX_DEGREE + 1` entries or a non-finite entry.
    pub fn new(coeffs: Vec<f64>, interval: Interval) -> Result<Self> {
        if coeffs.is_empty() {
            return Err(Error::Empty {
                what: "Chebyshev coefficients",
            });
        }
        if coeffs.len() > MAX_DEGREE + 1 {
            return Err(Error::DegreeTooLarge {
                degree: coeffs.len() - 1,
                max: MAX_DEGREE,
            });
        }
        for &c in &coeffs {
            finite("Chebyshev coefficient", c)?;
        }
        Ok(Self { coeffs, interval })
    }

    /// The constant polynomial `c`.
    pub fn constant(c: f64, interval: Interval) -> Result<Self> {
        Self::new(vec![c], interval)
    }

    /// Chebyshev coefficients (may include trailing zeros).
    pub fn coeffs(&self) -> &[f64] {
        &self.coeffs
    }

    /// The interval the Chebyshev variable is mapped from.
    pub fn interval(&self) -> Interval {
        self.interval
    }

    /// Degree: index of the last non-zero coefficient (0 for the zero polynomial).
    pub fn degree(&self) -> usize {
        self.coeffs.iter().rposition(|&c| c != 0.0).unwrap_or(0)
    }

    /// Multiplicative depth `ceil(log2(degree + 1))` of the polynomial itself (input in `[-1, 1]`).
    pub fn depth(&self) -> usize {
        depth_for_degree(self.degree())
    }

    /// Evaluates at `x` by Clenshaw's recurrence (also outside the interval, by extrapolation).
    pub fn eval(&self, x: f64) -> f64 {
        self.eval_unit(self.interval.to_unit(x))
    }

    /// Evaluates at the Chebyshev variable `u` (so `u = ±1` are the interval ends).
    pub fn eval_unit(&self, u: f64) -> f64 {
        clenshaw(&self.coeffs, u)
    }

    /// Returns `scale * p + shift`, a free operation on coefficients.
    pub fn affine_output(&self, scale: f64, shift: f64) -> Result<Self> {
        let mut coeffs: Vec<f64> = self.coeffs.iter().map(|c| c * scale).collect();
        if let Some(c0) = coeffs.first_mut() {
            *c0 += shift;
        }
        Self::new(coeffs, self.interval)
    }

    /// Monomial coefficients in the Chebyshev variable `u` (`p = sum_k m_k u^k`).
    ///
    /// Ill-conditioned for large degrees (see module docs).
    pub fn to_unit_monomial(&self) -> Vec<f64> {
        let n = self.coeffs.len();
        let mut out = vec![0.0; n];
        // Monomial coefficients of T_{k-1} and T_k, updated by T_{k+1} = 2u T_k - T_{k-1}.
        let mut prev = vec![0.0; n];
        let mut cur = vec![0.0; n];
        cur[0] = 1.0;
        for (k, &c) in self.coeffs.iter().enumerate() {
            if k == 1 {
                prev.copy_from_slice(&cur);
                cur.iter_mut().for_each(|v| *v = 0.0);
                cur[1] = 1.0;
            } else if k >= 2 {
                let mut next = vec![0.0; n];
                for i in 0..n {
                    let shifted = if i > 0 { 2.0 * cur[i - 1] } else { 0.0 };
                    next[i] = shifted - prev[i];
                }
                prev = std::mem::replace(&mut cur, next);
            }
            for (o, t) in out.iter_mut().zip(&cur) {
                *o += c * t;
            }
        }
        out
    }

    /// Monomial coefficients in `x` (`p = sum_k m_k x^k`). Ill-conditioned, see module docs.
    pub fn to_monomial(&self) -> Vec<f64> {
        let unit = self.to_unit_monomial();
        let (alpha, beta) = self.interval.unit_map();
        // Horner in polynomial arithmetic: q <- (alpha x + beta) q + m_k.
        let mut q: Vec<f64> = Vec::with_capacity(unit.len());
        for &m in unit.iter().rev() {
            let mut next = vec![0.0; q.len() + 1];
            for (i, &qi) in q.iter().enumerate() {
                next[i] += beta * qi;
                next[i + 1] += alpha * qi;
            }
            next[0] += m;
            q = next;
        }
        q.truncate(unit.len().max(1));
        q
    }

    /// Converts monomial coefficients in the Chebyshev variable `u` to a Chebyshev series on `interval`.
    pub fn from_unit_monomial(monomial: &[f64], interval: Interval) -> Result<Self> {
        Self::from_monomial_with(monomial, interval, 0.0, 1.0)
    }

    /// Converts monomial coefficients in `x` to a Chebyshev series on `interval`.
    pub fn from_monomial(monomial: &[f64], interval: Interval) -> Result<Self> {
        Self::from_monomial_with(monomial, interval, interval.midpoint(), interval.half_width())
    }

    /// Horner's rule carried out in the Chebyshev basis with `x = mid + half * u`.
    fn from_monomial_with(monomial: &[f64], interval: Interval, mid: f64, half: f64) -> Result<Self> {
        if monomial.is_empty() {
            return Err(Error::Empty {
                what: "monomial coefficients",
            });
        }
        if monomial.len() > MAX_DEGREE + 1 {
            return Err(Error::DegreeTooLarge {
                degree: monomial.len() - 1,
                max: MAX_DEGREE,
            });
        }
        let n = monomial.len();
        let mut p = vec![0.0; n];
        for (k, &m) in monomial.iter().enumerate().rev() {
            finite("monomial coefficient", m)?;
            let up = mul_by_u(&p[..n - 1 - k]);
            for (i, pi) in p.iter_mut().enumerate() {
                let u_part = up.get(i).copied().unwrap_or(0.0);
                *pi = mid * *pi + half * u_part;
            }
            p[0] += m;
        }
        Self::new(p, interval)
    }
}

/// Clenshaw's recurrence for `sum_k c_k T_k(u)`; backward-stable, O(n).
pub(crate) fn clenshaw(c: &[f64], u: f64) -> f64 {
    let (mut b1, mut b2) = (0.0, 0.0);
    let two_u = 2.0 * u;
    for &ck in c.iter().skip(1).rev() {
        let b0 = ck + two_u * b1 - b2;
        b2 = b1;
        b1 = b0;
    }
    c.first().copied().unwrap_or(0.0) + u * b1 - b2
}

/// Multiplies a Chebyshev series by `u`: `u T_0 = T_1`, `u T_j = (T_{j+1} + T_{j-1}) / 2`.
fn mul_by_u(p: &[f64]) -> Vec<f64> {
    let mut out = vec![0.0; p.len() + 1];
    for (j, &pj) in p.iter().enumerate() {
        if j == 0 {
            out[1] += pj;
        } else {
            out[j + 1] += 0.5 * pj;
            out[j - 1] += 0.5 * pj;
        }
    }
    out
}

/// Values `T_0(u), ..., T_n(u)` by the three-term recurrence.
pub(crate) fn chebyshev_values(n: usize, u: f64, out: &mut Vec<f64>) {
    out.clear();
    out.push(1.0);
    if n >= 1 {
        out.push(u);
    }
    for k in 2..=n {
        let v = 2.0 * u * out[k - 1] - out[k - 2];
        out.push(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn horner(m: &[f64], x: f64) -> f64 {
        m.iter().rev().fold(0.0, |acc, &c| acc * x + c)
    }

    #[test]
    fn depth_formula() {
        let expect = [
            (0, 0),
            (1, 1),
            (2, 2),
            (3, 2),
            (4, 3),
            (7, 3),
            (8, 4),
            (15, 4),
            (27, 5),
            (255, 8),
        ];
        for (d, m) in expect {
            assert_eq!(depth_for_degree(d), m, "degree {d}");
        }
    }

    #[test]
    fn clenshaw_matches_trig_definition() {
        let c = [0.3, -1.2, 0.7, 0.05, -0.4];
        let p = ChebyshevPoly::new(c.to_vec(), Interval::UNIT).unwrap();
        for i in 0..=20 {
            let u = -1.0 + 0.1 * i as f64;
            let t = u.clamp(-1.0, 1.0).acos();
            let direct: f64 = c
                .iter()
                .enumerate()
                .map(|(k, ck)| ck * (k as f64 * t).cos())
                .sum();
            assert!((p.eval(u) - direct).abs() < 1e-13);
        }
    }

    #[test]
    fn monomial_round_trip() {
        let i = Interval::new(-2.0, 6.0).unwrap();
        let p = ChebyshevPoly::new(vec![1.0, 0.5, -0.25, 0.125, 0.3], i).unwrap();
        let m = p.to_monomial();
        for k in 0..=16 {
            let x = -2.0 + 0.5 * k as f64;
            assert!((horner(&m, x) - p.eval(x)).abs() < 1e-11, "x = {x}");
        }
        let back = ChebyshevPoly::from_monomial(&m, i).unwrap();
        for (a, b) in back.coeffs().iter().zip(p.coeffs()) {
            assert!((a - b).abs() < 1e-11);
        }
        // x^3 on [-1, 1] is (3 T_1 + T_3) / 4.
        let cube = ChebyshevPoly::from_monomial(&[0.0, 0.0, 0.0, 1.0], Interval::UNIT).unwrap();
        let want = [0.0, 0.75, 0.0, 0.25];
        for (a, b) in cube.coeffs().iter().zip(want) {
            assert!((a - b).abs() < 1e-15);
        }
    }

    #[test]
    fn constructor_errors() {
        assert!(matches!(
            ChebyshevPoly::new(vec![], Interval::UNIT),
            Err(Error::Empty { .. })
        ));
        assert!(matches!(
            ChebyshevPoly::new(vec![1.0, f64::NAN], Interval::UNIT),
            Err(Error::NonFinite { .. })
        ));
        assert!(matches!(
            ChebyshevPoly::new(vec![0.0; MAX_DEGREE + 2], Interval::UNIT),
            Err(Error::DegreeTooLarge { .. })
        ));
        assert!(matches!(
            ChebyshevPoly::from_monomial(&[], Interval::UNIT),
            Err(Error::Empty { .. })
        ));
    }

    #[test]
    fn degree_ignores_trailing_zeros() {
        let p = ChebyshevPoly::new(vec![1.0, 2.0, 0.0, 0.0], Interval::UNIT).unwrap();
        assert_eq!(p.degree(), 1);
        assert_eq!(ChebyshevPoly::constant(0.0, Interval::UNIT).unwrap().degree(), 0);
    }
}
