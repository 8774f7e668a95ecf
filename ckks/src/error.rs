//! The one error type of the `ckks` crate.

/// Everything that can go wrong in `ckks`. Public functions return these instead of panicking.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The ring degree is not a power of two in the supported range.
    #[error("ring degree {n} is not a power of two in 2^{min_log}..=2^{max_log}")]
    InvalidRingDegree {
        /// the degree given
        n: usize,
        /// smallest supported log2 degree
        min_log: u32,
        /// largest supported log2 degree
        max_log: u32,
    },
    /// A modulus is out of the supported range (2 <= q < 2^61, or the range a kernel needs).
    #[error("modulus {q} is out of range: {reason}")]
    InvalidModulus {
        /// the modulus given
        q: u64,
        /// why it was refused
        reason: &'static str,
    },
    /// A modulus is not prime.
    #[error("modulus {q} is not prime")]
    NotPrime {
        /// the modulus given
        q: u64,
    },
    /// A prime does not support a negacyclic NTT of this size (needs q = 1 mod 2N).
    #[error("prime {q} is not 1 mod 2N = {two_n}")]
    NotNttFriendly {
        /// the prime
        q: u64,
        /// 2N
        two_n: u64,
    },
    /// Two moduli in one RNS basis are equal (the CRT needs them pairwise coprime).
    #[error("modulus {q} appears twice in an RNS basis")]
    DuplicateModulus {
        /// the repeated modulus
        q: u64,
    },
    /// Not enough primes of the requested size exist.
    #[error("only {found} NTT-friendly primes of {bits} bits for 2N = {two_n} (asked for {wanted})")]
    NotEnoughPrimes {
        /// bit size asked for
        bits: u32,
        /// 2N
        two_n: u64,
        /// how many were asked for
        wanted: usize,
        /// how many exist
        found: usize,
    },
    /// A slice has the wrong length.
    #[error("length mismatch: expected {expected}, got {got}")]
    LengthMismatch {
        /// expected length
        expected: usize,
        /// actual length
        got: usize,
    },
    /// Two operands live over different RNS bases (different moduli or ring degree).
    #[error("operands are over different RNS bases: {left:?} vs {right:?}")]
    BasisMismatch {
        /// moduli of the left operand
        left: Vec<u64>,
        /// moduli of the right operand
        right: Vec<u64>,
    },
    /// An RNS basis operation was asked for a basis it cannot act on.
    #[error("invalid RNS basis operation: {reason}")]
    InvalidBasis {
        /// why
        reason: &'static str,
    },
    /// A Galois element is not an odd residue mod 2N.
    #[error("Galois element {g} is not odd modulo 2N = {two_n}")]
    InvalidGaloisElement {
        /// the element
        g: u64,
        /// 2N
        two_n: u64,
    },
    /// A sampler parameter is out of range.
    #[error("invalid sampler parameter: {reason}")]
    InvalidSamplerParameter {
        /// why
        reason: &'static str,
    },
    /// A value does not fit the target representation.
    #[error("value out of range: {reason}")]
    OutOfRange {
        /// why
        reason: &'static str,
    },
    /// A parameter literal is inconsistent.
    #[error("invalid parameters: {reason}")]
    InvalidParameters {
        /// why
        reason: &'static str,
    },
    /// A parameter set is below 128-bit security by the HE-standard table.
    #[error(
        "insecure parameters: log2(QP) = {log_qp} exceeds {max_log_qp}, the 128-bit bound at N = 2^{log_n}"
    )]
    InsecureParameters {
        /// log2 N
        log_n: u32,
        /// log2(QP), rounded up
        log_qp: u32,
        /// the bound
        max_log_qp: u32,
    },
    /// A slot count is not a power of two up to N/2.
    #[error("{slots} slots: must be a power of two up to N/2 = {max}")]
    InvalidSlots {
        /// the slot count given
        slots: usize,
        /// N/2
        max: usize,
    },
    /// Operands come from different parameter sets.
    #[error("operands belong to different parameter sets")]
    ParameterMismatch,
    /// A ciphertext is malformed.
    #[error("invalid ciphertext: {reason}")]
    InvalidCiphertext {
        /// why
        reason: &'static str,
    },
    /// A key is missing or unusable.
    #[error("invalid key: {reason}")]
    InvalidKey {
        /// why
        reason: &'static str,
    },
    /// Operands are at different levels.
    #[error("level mismatch: {left} vs {right}")]
    LevelMismatch {
        /// left operand's level
        left: usize,
        /// right operand's level
        right: usize,
    },
    /// Operands have different scales.
    #[error("scale mismatch: 2^{:.3} vs 2^{:.3}", left.log2(), right.log2())]
    ScaleMismatch {
        /// left operand's scale
        left: f64,
        /// right operand's scale
        right: f64,
    },
    /// No Galois key for the automorphism an operation needs.
    #[error("missing Galois key for element {galois_element}")]
    MissingGaloisKey {
        /// the Galois element (5^k mod 2N for a rotation by k, 2N-1 for conjugation)
        galois_element: u64,
    },
    /// Serialized bytes are malformed, truncated or corrupted.
    #[error("cannot deserialize: {reason}")]
    Deserialize {
        /// what was wrong
        reason: &'static str,
    },
    /// A serialized object was made under other parameters.
    #[error("serialized object belongs to other parameters (digest mismatch)")]
    ParameterDigestMismatch,
    /// An error of the polynomial-approximation layer (a plan that cannot be evaluated).
    #[error("polynomial approximation: {0}")]
    Approximation(String),
    /// A level does not exist in this parameter set.
    #[error("level {level} out of range (max {max})")]
    LevelOutOfRange {
        /// the level asked for
        level: usize,
        /// the highest level
        max: usize,
    },
}

/// `Result` with the crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
