//! Chebyshev interpolation at Chebyshev points of the first kind.
//!
//! The degree-`d` interpolant of `f` at the `n = d + 1` nodes `u_k = cos(pi (k + 1/2) / n)`
//! has coefficients `c_j = (2 / n) sum_k f(u_k) cos(pi j (k + 1/2) / n)` (halved for `j = 0`),
//! a DCT-II. [`interpolate`] computes it in O(n log n) with a length-`2n` complex FFT of the
//! even extension; [`interpolate_reference`] is the direct O(n^2) sum kept as a test oracle.
//! The interpolant is near-best: its error is within a factor `2 + (2/pi) log(n)` of the
//! minimax error (Trefethen, ATAP Thm 16.1), which is why it is a good Remez starting point.
//!
//! References:
//! - L. N. Trefethen, *Approximation Theory and Approximation Practice*, SIAM 2019, ch. 3-4, 16.
//! - J. Makhoul, "A fast cosine transform in one and two dimensions", IEEE Trans. ASSP 28 (1980).

use rustfft::num_complex::Complex;
use rustfft::FftPlanner;

use crate::error::{finite, Error, Result};
use crate::interval::Interval;
use crate::poly::{ChebyshevPoly, MAX_DEGREE};

/// The `n` Chebyshev points of the first kind in `[-1, 1]`, `cos(pi (k + 1/2) / n)`, descending.
pub fn chebyshev_nodes(n: usize) -> Vec<f64> {
    let nf = n as f64;
    (0..n)
        .map(|k| (std::f64::consts::PI * (k as f64 + 0.5) / nf).cos())
        .collect()
}

/// Samples `f` at the `degree + 1` first-kind nodes mapped to `interval`.
fn sample(f: &dyn Fn(f64) -> f64, interval: Interval, degree: usize) -> Result<Vec<f64>> {
    if degree > MAX_DEGREE {
        return Err(Error::DegreeTooLarge {
            degree,
            max: MAX_DEGREE,
        });
    }
    chebyshev_nodes(degree + 1)
        .into_iter()
        .map(|u| finite("function value at a Chebyshev node", f(interval.from_unit(u))))
        .collect()
}

/// Degree-`degree` Chebyshev interpolant of `f` on `interval`, computed with an FFT.
///
/// Errors if the degree exceeds [`MAX_DEGREE`] or `f` is not finite at a node.
pub fn interpolate(f: impl Fn(f64) -> f64, interval: Interval, degree: usize) -> Result<ChebyshevPoly> {
    let values = sample(&f, interval, degree)?;
    ChebyshevPoly::new(dct2_coefficients(&values), interval)
}

/// Same as [`interpolate`] by the direct O(n^2) sum; kept as an independent oracle.
pub fn interpolate_reference(
    f: impl Fn(f64) -> f64,
    interval: Interval,
    degree: usize,
) -> Result<ChebyshevPoly> {
    let values = sample(&f, interval, degree)?;
    let n = values.len();
    let nf = n as f64;
    let coeffs = (0..n)
        .map(|j| {
            let s: f64 = values
                .iter()
                .enumerate()
                .map(|(k, v)| v * (std::f64::consts::PI * j as f64 * (k as f64 + 0.5) / nf).cos())
                .sum();
            if j == 0 {
                s / nf
            } else {
                2.0 * s / nf
            }
        })
        .collect();
    ChebyshevPoly::new(coeffs, interval)
}

/// Chebyshev coefficients from values at first-kind nodes, via the FFT of the even extension.
///
/// With `y = [v_0..v_{n-1}, v_{n-1}..v_0]` and `Y = FFT(y)`, `e^{-i pi j / 2n} Y_j / 2` equals the
/// DCT-II `sum_k v_k cos(pi j (k + 1/2) / n)`; the imaginary part vanishes up to rounding.
fn dct2_coefficients(values: &[f64]) -> Vec<f64> {
    let n = values.len();
    let mut buf: Vec<Complex<f64>> = values
        .iter()
        .chain(values.iter().rev())
        .map(|&v| Complex::new(v, 0.0))
        .collect();
    let fft = FftPlanner::<f64>::new().plan_fft_forward(2 * n);
    fft.process(&mut buf);
    let nf = n as f64;
    buf.iter()
        .take(n)
        .enumerate()
        .map(|(j, y)| {
            let angle = -std::f64::consts::PI * j as f64 / (2.0 * nf);
            let dct = (Complex::new(angle.cos(), angle.sin()) * y).re * 0.5;
            if j == 0 {
                dct / nf
            } else {
                2.0 * dct / nf
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fft_matches_reference() {
        let i = Interval::new(-3.0, 2.0).unwrap();
        let f = |x: f64| (x * 1.3).sin() + 0.2 * x * x - (x / 2.0).exp();
        for degree in [0, 1, 2, 5, 16, 31, 100, 255] {
            let fast = interpolate(f, i, degree).unwrap();
            let slow = interpolate_reference(f, i, degree).unwrap();
            for (a, b) in fast.coeffs().iter().zip(slow.coeffs()) {
                assert!((a - b).abs() < 1e-13, "degree {degree}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn interpolant_matches_function_at_nodes_and_reproduces_polynomials() {
        let i = Interval::new(0.5, 4.0).unwrap();
        let f = |x: f64| 1.0 / x;
        let p = interpolate(f, i, 12).unwrap();
        for u in chebyshev_nodes(13) {
            let x = i.from_unit(u);
            assert!((p.eval(x) - f(x)).abs() < 1e-13);
        }
        // A cubic is reproduced exactly by a degree >= 3 interpolant.
        let cubic = |x: f64| 2.0 * x * x * x - x + 0.5;
        let q = interpolate(cubic, i, 7).unwrap();
        assert!((q.eval(1.7) - cubic(1.7)).abs() < 1e-12);
        assert!(q.coeffs()[4..].iter().all(|c| c.abs() < 1e-13));
    }

    #[test]
    fn errors() {
        let blows_up = |x: f64| if x > 0.5 { f64::INFINITY } else { x };
        assert!(matches!(
            interpolate(blows_up, Interval::UNIT, 2),
            Err(Error::NonFinite { .. })
        ));
        assert!(matches!(
            interpolate(|x| x, Interval::UNIT, MAX_DEGREE + 1),
            Err(Error::DegreeTooLarge { .. })
        ));
    }
}
