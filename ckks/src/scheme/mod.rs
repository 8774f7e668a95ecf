//! The CKKS scheme proper: encoding today; keys, encryption and the evaluator follow (issue 3).

pub mod encoder;

pub use encoder::Encoder;
