//! Circuits built from the evaluator: polynomial evaluation (through `poly-approx`'s plans) today;
//! linear transforms and bootstrapping follow (open issues).

pub mod bootstrap;
pub mod dft;
pub mod layout;
pub mod lintrans;
pub mod matmul;
pub mod poly_eval;
