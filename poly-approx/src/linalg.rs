//! Dense linear solve for the Remez systems.
//!
//! References:
//! - G. H. Golub, C. F. Van Loan, *Matrix Computations*, 4th ed., 2013, sec. 3.4 (partial pivoting).

use crate::error::{Error, Result};

/// Solves `A x = b` for a row-major `n x n` matrix by Gaussian elimination with partial pivoting.
///
/// Partial pivoting is backward stable in practice; the Remez matrices in the Chebyshev basis at
/// near-Chebyshev points are well conditioned, so no refinement is needed.
pub(crate) fn solve(mut a: Vec<f64>, mut b: Vec<f64>) -> Result<Vec<f64>> {
    let n = b.len();
    if a.len() != n * n || n == 0 {
        return Err(Error::SingularSystem { size: n });
    }
    let norm = a.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
    if !(norm.is_finite() && norm > 0.0) {
        return Err(Error::SingularSystem { size: n });
    }
    for col in 0..n {
        let mut piv = col;
        for row in col + 1..n {
            if a[row * n + col].abs() > a[piv * n + col].abs() {
                piv = row;
            }
        }
        // A pivot at rounding level relative to the matrix means the system is singular in f64.
        if a[piv * n + col].abs() <= 1e-14 * norm {
            return Err(Error::SingularSystem { size: n });
        }
        if piv != col {
            for k in 0..n {
                a.swap(col * n + k, piv * n + k);
            }
            b.swap(col, piv);
        }
        let p = a[col * n + col];
        for row in col + 1..n {
            let factor = a[row * n + col] / p;
            if factor != 0.0 {
                for k in col..n {
                    a[row * n + k] -= factor * a[col * n + k];
                }
                b[row] -= factor * b[col];
            }
        }
    }
    let mut x = vec![0.0; n];
    for row in (0..n).rev() {
        let s: f64 = (row + 1..n).map(|k| a[row * n + k] * x[k]).sum();
        x[row] = (b[row] - s) / a[row * n + row];
    }
    Ok(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solves_and_detects_singular() {
        let a = vec![0.0, 2.0, 1.0, 1.0, 1.0, 0.0, 3.0, 0.0, 1.0];
        let x = solve(a, vec![5.0, 3.0, 4.0]).unwrap();
        let want = [1.0, 2.0, 1.0];
        for (u, v) in x.iter().zip(want) {
            assert!((u - v).abs() < 1e-14);
        }
        assert!(matches!(
            solve(vec![1.0, 2.0, 2.0, 4.0], vec![1.0, 2.0]),
            Err(Error::SingularSystem { .. })
        ));
    }
}
