//! Error/cost tables: for a function, an interval and a list of degrees, the depth and
//! non-scalar product count of evaluating a degree-`d` polynomial and the max errors of the
//! Chebyshev interpolant and of the Remez minimax polynomial (the data behind
//! `results/approx_error.csv`).
//!
//! References:
//! - L. N. Trefethen, *Approximation Theory and Approximation Practice*, SIAM 2019, ch. 16
//!   (interpolant versus best approximation).

use crate::chebyshev::interpolate;
use crate::error::{Error, Result};
use crate::eval::EvalPlan;
use crate::functions::Target;
use crate::interval::{Domain, Interval};
use crate::measure::max_abs_error;
use crate::remez::minimax;

/// One row of an error/cost table.
#[derive(Debug, Clone, PartialEq)]
pub struct ApproxRow {
    /// Polynomial degree.
    pub degree: usize,
    /// Levels of the polynomial on a normalised input, `ceil(log2(degree + 1))`.
    pub depth: usize,
    /// Extra level for the change of variable to `[-1, 1]` (0 if the interval makes it exact).
    pub input_map_depth: usize,
    /// Non-scalar products of the evaluation plan.
    pub nonscalar_mults: usize,
    /// Max error of the Chebyshev interpolant on the interval.
    pub chebyshev_max_error: f64,
    /// Max error of the Remez minimax polynomial; `None` if the exchange did not converge.
    pub remez_max_error: Option<f64>,
}

/// Builds the table for `f` on `interval` at each of `degrees`.
///
/// Errors if `f` is not finite on the interval or a degree is out of range; a Remez exchange
/// that fails to converge gives `remez_max_error: None` instead.
pub fn approx_error_table(
    f: impl Fn(f64) -> f64,
    interval: Interval,
    degrees: &[usize],
) -> Result<Vec<ApproxRow>> {
    let domain = Domain::single(interval);
    degrees
        .iter()
        .map(|&degree| {
            let cheb = interpolate(&f, interval, degree)?;
            let chebyshev_max_error = max_abs_error(&f, &cheb, &domain)?;
            let remez_max_error = match minimax(&f, interval, degree) {
                Ok(m) => Some(m.max_error),
                Err(
                    Error::RemezNoConvergence { .. }
                    | Error::RemezAlternation { .. }
                    | Error::SingularSystem { .. },
                ) => None,
                Err(e) => return Err(e),
            };
            let plan = EvalPlan::new(&cheb)?;
            Ok(ApproxRow {
                degree,
                depth: plan.poly_depth(),
                input_map_depth: plan.input_map_depth(),
                nonscalar_mults: plan.nonscalar_mults(),
                chebyshev_max_error,
                remez_max_error,
            })
        })
        .collect()
}

/// [`approx_error_table`] for a [`Target`] on its recommended interval.
pub fn target_error_table(target: Target, degrees: &[usize]) -> Result<Vec<ApproxRow>> {
    approx_error_table(|x| target.eval(x), target.recommended_interval(), degrees)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::poly::depth_for_degree;

    #[test]
    fn table_rows() {
        let rows = approx_error_table(f64::exp, Interval::UNIT, &[1, 3, 7]).unwrap();
        assert_eq!(rows.len(), 3);
        for r in &rows {
            assert_eq!(r.depth, depth_for_degree(r.degree));
            assert_eq!(r.input_map_depth, 0);
            let remez = r.remez_max_error.unwrap();
            assert!(remez <= r.chebyshev_max_error * (1.0 + 1e-9));
        }
        assert!(rows[2].chebyshev_max_error < rows[1].chebyshev_max_error);
        assert!(matches!(
            approx_error_table(|_| f64::NAN, Interval::UNIT, &[3]),
            Err(Error::NonFinite { .. })
        ));
    }
}
