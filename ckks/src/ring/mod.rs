//! RNS polynomials over `Z_Q[X]/(X^N + 1)`: arithmetic, NTT conversion, automorphisms, rescaling,
//! basis extension and sampling. Knows polynomials, not keys or encryption.

pub mod basis;
pub mod poly;
pub mod sampling;

pub use basis::RingBasis;
pub use poly::{Coeff, Ntt, Repr, RnsPoly};
