//! The CKKS scheme proper: the encoder, plaintexts and ciphertexts with their metadata, the evaluator
//! and precision statistics.

pub mod encoder;
pub mod evaluator;
pub mod precision;

pub use encoder::Encoder;
