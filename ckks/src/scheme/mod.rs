//! The CKKS scheme proper: encoding today; keys, encryption and the evaluator follow (issue 3).

pub mod encoder;
pub mod evaluator;

pub use encoder::Encoder;
