//! Precision statistics of decrypted results against the expected values, in bits
//! (`-log2 |error|` per slot), as Lattigo reports them.

use crate::error::{Error, Result};
use rustfft::num_complex::Complex64;

/// Bits of precision over a vector of slots: `-log2 |got - expected|` per slot, summarised.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PrecisionStats {
    /// Worst slot (the largest error), in bits.
    pub min_bits: f64,
    /// Mean over the slots of the per-slot bits.
    pub mean_bits: f64,
    /// Best slot, in bits (capped at 64 for an exact slot).
    pub max_bits: f64,
    /// The largest absolute error.
    pub max_error: f64,
    /// The mean absolute error.
    pub mean_error: f64,
}

impl std::fmt::Display for PrecisionStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "precision bits min {:.2} / mean {:.2} / max {:.2} (max error {:.3e})",
            self.min_bits, self.mean_bits, self.max_bits, self.max_error
        )
    }
}

/// Precision of `got` against `expected`.
///
/// # Errors
/// [`Error::LengthMismatch`] for vectors of different lengths or empty ones.
pub fn precision_stats(expected: &[Complex64], got: &[Complex64]) -> Result<PrecisionStats> {
    if expected.len() != got.len() || expected.is_empty() {
        return Err(Error::LengthMismatch {
            expected: expected.len().max(1),
            got: got.len(),
        });
    }
    let bits = |e: f64| if e > 0.0 { (-e.log2()).min(64.0) } else { 64.0 };
    let errs: Vec<f64> = expected.iter().zip(got).map(|(a, b)| (a - b).norm()).collect();
    let max_error = errs.iter().copied().fold(0.0, f64::max);
    let mean_error = errs.iter().sum::<f64>() / errs.len() as f64;
    let per_slot: Vec<f64> = errs.iter().map(|&e| bits(e)).collect();
    Ok(PrecisionStats {
        min_bits: per_slot.iter().copied().fold(f64::INFINITY, f64::min),
        mean_bits: per_slot.iter().sum::<f64>() / per_slot.len() as f64,
        max_bits: per_slot.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        max_error,
        mean_error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        let e = [Complex64::new(1.0, 0.0), Complex64::new(0.0, 0.0)];
        let g = [
            Complex64::new(1.0 + 2f64.powi(-10), 0.0),
            Complex64::new(0.0, 2f64.powi(-20)),
        ];
        let s = precision_stats(&e, &g).unwrap();
        assert!((s.min_bits - 10.0).abs() < 1e-9);
        assert!((s.max_bits - 20.0).abs() < 1e-9);
        assert!((s.mean_bits - 15.0).abs() < 1e-9);
        assert!((s.max_error - 2f64.powi(-10)).abs() < 1e-15);
        let exact = precision_stats(&e, &e).unwrap();
        assert_eq!(exact.min_bits, 64.0);
        assert!(precision_stats(&e, &g[..1]).is_err());
        assert!(precision_stats(&[], &[]).is_err());
    }
}
