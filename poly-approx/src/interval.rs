//! Intervals and unions of intervals on which polynomials approximate functions.
//!
//! A polynomial on `[a, b]` is stored in the Chebyshev basis of the variable
//! `u = (2x - a - b) / (b - a)`, which maps `[a, b]` affinely onto `[-1, 1]`.
//!
//! References:
//! - L. N. Trefethen, *Approximation Theory and Approximation Practice*, SIAM 2019, ch. 3.

use crate::error::{Error, Result};

/// A closed interval `[a, b]` with finite `a < b`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    a: f64,
    b: f64,
}

impl Interval {
    /// The interval `[-1, 1]`, on which the Chebyshev variable equals `x`.
    pub const UNIT: Interval = Interval { a: -1.0, b: 1.0 };

    /// Creates `[a, b]`; errors unless both ends are finite and `a < b`.
    pub fn new(a: f64, b: f64) -> Result<Self> {
        // `a < b` is false for NaN, so this also rejects NaN ends.
        if a.is_finite() && b.is_finite() && a < b && (b - a).is_finite() {
            Ok(Self { a, b })
        } else {
            Err(Error::InvalidInterval { a, b })
        }
    }

    /// Symmetric interval `[-r, r]`; errors unless `r` is finite and positive.
    pub fn symmetric(r: f64) -> Result<Self> {
        Self::new(-r, r)
    }

    /// Left end.
    pub fn a(&self) -> f64 {
        self.a
    }

    /// Right end.
    pub fn b(&self) -> f64 {
        self.b
    }

    /// Midpoint `(a + b) / 2`.
    pub fn midpoint(&self) -> f64 {
        0.5 * (self.a + self.b)
    }

    /// Half-width `(b - a) / 2`.
    pub fn half_width(&self) -> f64 {
        0.5 * (self.b - self.a)
    }

    /// Width `b - a`.
    pub fn width(&self) -> f64 {
        self.b - self.a
    }

    /// Whether `x` lies in `[a, b]`.
    pub fn contains(&self, x: f64) -> bool {
        self.a <= x && x <= self.b
    }

    /// Maps `x` in `[a, b]` to `u` in `[-1, 1]`.
    pub fn to_unit(&self, x: f64) -> f64 {
        (x - self.midpoint()) / self.half_width()
    }

    /// Maps `u` in `[-1, 1]` back to `[a, b]`.
    pub fn from_unit(&self, u: f64) -> f64 {
        // Written as a convex combination so the ends map exactly onto `a` and `b`.
        0.5 * ((1.0 - u) * self.a + (1.0 + u) * self.b)
    }

    /// Coefficients `(alpha, beta)` with `u = alpha * x + beta`.
    pub fn unit_map(&self) -> (f64, f64) {
        let alpha = 1.0 / self.half_width();
        (alpha, -self.midpoint() * alpha)
    }
}

/// A finite union of disjoint closed intervals, sorted left to right.
#[derive(Debug, Clone, PartialEq)]
pub struct Domain {
    parts: Vec<Interval>,
}

impl Domain {
    /// A domain made of one interval.
    pub fn single(interval: Interval) -> Self {
        Self {
            parts: vec![interval],
        }
    }

    /// A union of intervals; errors if empty, unsorted or overlapping (touching ends are merged).
    pub fn union(parts: Vec<Interval>) -> Result<Self> {
        if parts.is_empty() {
            return Err(Error::Empty {
                what: "domain intervals",
            });
        }
        let mut merged: Vec<Interval> = Vec::with_capacity(parts.len());
        for p in parts {
            match merged.last_mut() {
                Some(last) if p.a < last.b => {
                    return Err(Error::InvalidDomain {
                        reason: "intervals must be sorted and disjoint",
                    })
                }
                // Touching intervals are one interval; merging avoids a duplicated extremum.
                Some(last) if p.a == last.b => last.b = p.b,
                _ => merged.push(p),
            }
        }
        Ok(Self { parts: merged })
    }

    /// `[-b, -a] ∪ [a, b]` for `0 < a < b`, the usual domain of a sign approximation.
    pub fn symmetric_gap(a: f64, b: f64) -> Result<Self> {
        if a.is_nan() || a <= 0.0 {
            return Err(Error::InvalidParameter {
                name: "gap",
                value: a,
                reason: "the gap end must be positive",
            });
        }
        Self::union(vec![Interval::new(-b, -a)?, Interval::new(a, b)?])
    }

    /// The intervals, sorted.
    pub fn parts(&self) -> &[Interval] {
        &self.parts
    }

    /// Smallest interval containing the domain.
    pub fn hull(&self) -> Interval {
        let a = self.parts.first().map_or(-1.0, |p| p.a);
        let b = self.parts.last().map_or(1.0, |p| p.b);
        Interval { a, b }
    }

    /// Whether `x` lies in one of the intervals.
    pub fn contains(&self, x: f64) -> bool {
        self.parts.iter().any(|p| p.contains(x))
    }

    /// Whether the domain is its own mirror image under `x -> -x` (up to rounding).
    pub fn is_symmetric(&self) -> bool {
        let n = self.parts.len();
        let scale = self.hull().b.abs().max(self.hull().a.abs());
        let tol = 1e-12 * scale;
        (0..n).all(|i| {
            let p = self.parts[i];
            let q = self.parts[n - 1 - i];
            (p.a + q.b).abs() <= tol && (p.b + q.a).abs() <= tol
        })
    }

    /// The part of the domain in `[0, inf)`, or `None` if that part is empty or a single point.
    pub(crate) fn nonnegative_part(&self) -> Option<Domain> {
        let parts: Vec<Interval> = self
            .parts
            .iter()
            .filter(|p| p.b > 0.0)
            .map(|p| Interval {
                a: p.a.max(0.0),
                b: p.b,
            })
            .collect();
        if parts.is_empty() {
            None
        } else {
            Some(Domain { parts })
        }
    }
}

impl From<Interval> for Domain {
    fn from(interval: Interval) -> Self {
        Self::single(interval)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_intervals_are_rejected() {
        assert!(matches!(
            Interval::new(1.0, 1.0),
            Err(Error::InvalidInterval { .. })
        ));
        assert!(matches!(
            Interval::new(2.0, 1.0),
            Err(Error::InvalidInterval { .. })
        ));
        assert!(matches!(
            Interval::new(f64::NAN, 1.0),
            Err(Error::InvalidInterval { .. })
        ));
        assert!(matches!(
            Interval::new(0.0, f64::INFINITY),
            Err(Error::InvalidInterval { .. })
        ));
        assert!(matches!(
            Interval::new(-f64::MAX, f64::MAX),
            Err(Error::InvalidInterval { .. })
        ));
    }

    #[test]
    fn unit_map_round_trips() {
        let i = Interval::new(-3.0, 5.0).unwrap();
        for &x in &[-3.0, 0.0, 1.0, 5.0] {
            assert!((i.from_unit(i.to_unit(x)) - x).abs() < 1e-14);
            let (al, be) = i.unit_map();
            assert!((al * x + be - i.to_unit(x)).abs() < 1e-14);
        }
        assert_eq!(i.from_unit(-1.0), -3.0);
        assert_eq!(i.from_unit(1.0), 5.0);
    }

    #[test]
    fn domains() {
        let d = Domain::symmetric_gap(0.1, 1.0).unwrap();
        assert!(d.is_symmetric());
        assert!(!d.contains(0.0));
        assert_eq!(d.hull(), Interval::UNIT);
        assert!(matches!(Domain::union(vec![]), Err(Error::Empty { .. })));
        let overlapping = vec![Interval::new(0.0, 2.0).unwrap(), Interval::new(1.0, 3.0).unwrap()];
        assert!(matches!(
            Domain::union(overlapping),
            Err(Error::InvalidDomain { .. })
        ));
        let touching = vec![Interval::new(0.0, 1.0).unwrap(), Interval::new(1.0, 3.0).unwrap()];
        assert_eq!(Domain::union(touching).unwrap().parts().len(), 1);
        assert!(matches!(
            Domain::symmetric_gap(0.0, 1.0),
            Err(Error::InvalidParameter { .. })
        ));
        assert!(matches!(
            Domain::symmetric_gap(2.0, 1.0),
            Err(Error::InvalidInterval { .. })
        ));
    }
}
