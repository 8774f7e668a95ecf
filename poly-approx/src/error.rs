//! The crate's single error type.
//!
//! Every fallible public function returns [`Result`]; nothing reachable from the public API
//! panics on bad input. Backends implementing [`crate::eval::Evaluator`] convert these errors
//! into their own error type through `From<Error>`.
//!
//! References:
//! - The `thiserror` crate documentation, <https://docs.rs/thiserror>.

/// Errors reported by this crate. Fields are structured so callers can react programmatically.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An interval `[a, b]` with non-finite ends or `a >= b`.
    #[error("invalid interval [{a}, {b}]: need finite a < b")]
    InvalidInterval {
        /// Left end as given.
        a: f64,
        /// Right end as given.
        b: f64,
    },
    /// A union of intervals whose parts overlap, are unsorted, or whose shape does not fit the request.
    #[error("invalid domain: {reason}")]
    InvalidDomain {
        /// What is wrong with the domain.
        reason: &'static str,
    },
    /// An input that must be non-empty was empty.
    #[error("empty input: {what}")]
    Empty {
        /// Which input was empty.
        what: &'static str,
    },
    /// A NaN or infinity where a finite number is required.
    #[error("non-finite value {value} in {what}")]
    NonFinite {
        /// Where the value came from.
        what: &'static str,
        /// The offending value.
        value: f64,
    },
    /// A requested degree above what the algorithm supports.
    #[error("degree {degree} exceeds the maximum {max}")]
    DegreeTooLarge {
        /// Requested degree.
        degree: usize,
        /// Largest supported degree.
        max: usize,
    },
    /// A requested degree below what the algorithm needs.
    #[error("degree {degree} is below the minimum {min}")]
    DegreeTooSmall {
        /// Requested degree.
        degree: usize,
        /// Smallest supported degree.
        min: usize,
    },
    /// A scalar parameter outside its valid range.
    #[error("invalid parameter {name} = {value}: {reason}")]
    InvalidParameter {
        /// Parameter name.
        name: &'static str,
        /// Value given.
        value: f64,
        /// Why it is rejected.
        reason: &'static str,
    },
    /// A linear system that is numerically singular.
    #[error("singular {size}x{size} linear system")]
    SingularSystem {
        /// Dimension of the system.
        size: usize,
    },
    /// The Remez exchange did not reach equioscillation within the iteration budget.
    #[error("Remez did not converge in {iterations} iterations (relative spread {spread:e})")]
    RemezNoConvergence {
        /// Iterations performed.
        iterations: usize,
        /// Final `(max|e| - min|e|) / max|e|` over the reference.
        spread: f64,
    },
    /// The error curve had fewer sign alternations than the Remez exchange needs.
    #[error("error curve alternates {found} times, Remez needs {needed}")]
    RemezAlternation {
        /// Alternating extrema found.
        found: usize,
        /// Alternating extrema needed (number of unknowns).
        needed: usize,
    },
    /// A design target (precision, depth budget) that the search could not reach.
    #[error("target {target:e} not reached; best achieved {achieved:e}")]
    TargetUnreachable {
        /// Requested error bound.
        target: f64,
        /// Best bound achieved within the search limits.
        achieved: f64,
    },
    /// Not enough levels left for the requested operation.
    #[error("not enough levels: need {needed}, have {available}")]
    LevelExhausted {
        /// Levels needed.
        needed: usize,
        /// Levels available.
        available: usize,
    },
    /// Two operands at different levels where equal levels are required.
    #[error("level mismatch: {left} vs {right}")]
    LevelMismatch {
        /// Level of the left operand.
        left: usize,
        /// Level of the right operand.
        right: usize,
    },
    /// Two operands at different scales where equal scales are required.
    #[error("scale mismatch: {left:e} vs {right:e}")]
    ScaleMismatch {
        /// Scale of the left operand.
        left: f64,
        /// Scale of the right operand.
        right: f64,
    },
    /// A constant that would be rounded to too few bits at the requested encoding scale.
    #[error("constant {constant} encoded at scale {scale:e} loses precision")]
    InexactConstant {
        /// The constant.
        constant: f64,
        /// The encoding scale requested.
        scale: f64,
    },
    /// Two vectors of different lengths in an elementwise operation.
    #[error("length mismatch: {left} vs {right}")]
    LengthMismatch {
        /// Length of the left operand.
        left: usize,
        /// Length of the right operand.
        right: usize,
    },
}

/// Result alias used throughout the crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Checks that `value` is finite, naming it `what` in the error.
pub(crate) fn finite(what: &'static str, value: f64) -> Result<f64> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(Error::NonFinite { what, value })
    }
}
