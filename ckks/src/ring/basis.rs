//! A ring degree together with an RNS basis and its NTT tables, shared by polynomials through `Arc`.

use crate::error::{Error, Result};
use crate::math::modulus::Modulus;
use crate::math::ntt::NttTable;
use crate::math::rns::{BasisExtender, RnsBasis};
use std::sync::Arc;

/// The ring `Z_Q[X]/(X^N + 1)` for `Q = q_0 ... q_{k-1}`: degree, moduli and one NTT table per modulus.
/// Sub-bases (fewer limbs: lower levels) and unions (`Q` with the special primes `P`) share tables.
#[derive(Debug)]
pub struct RingBasis {
    n: usize,
    rns: RnsBasis,
    tables: Vec<Arc<NttTable>>,
}

impl RingBasis {
    /// Builds the ring for degree `n` over the given NTT-friendly primes.
    ///
    /// # Errors
    /// Those of [`NttTable::new`] and [`RnsBasis::new`].
    pub fn new(n: usize, primes: &[u64]) -> Result<Arc<Self>> {
        let rns = RnsBasis::new(primes)?;
        let tables = primes
            .iter()
            .map(|&q| NttTable::new(q, n).map(Arc::new))
            .collect::<Result<Vec<_>>>()?;
        Ok(Arc::new(Self { n, rns, tables }))
    }

    /// Builds a ring from existing tables (all of degree `n`).
    ///
    /// # Errors
    /// [`Error::InvalidBasis`] for no tables or tables of different degrees; those of [`RnsBasis::new`].
    pub fn from_tables(tables: Vec<Arc<NttTable>>) -> Result<Arc<Self>> {
        let n = tables
            .first()
            .map(|t| t.n())
            .ok_or(Error::InvalidBasis { reason: "no moduli" })?;
        if tables.iter().any(|t| t.n() != n) {
            return Err(Error::InvalidBasis {
                reason: "NTT tables of different ring degrees",
            });
        }
        let rns = RnsBasis::new(&tables.iter().map(|t| t.modulus().value()).collect::<Vec<_>>())?;
        Ok(Arc::new(Self { n, rns, tables }))
    }

    /// The ring made of the limbs `range` of this one (e.g. `0..l+1` for level `l`).
    ///
    /// # Errors
    /// [`Error::InvalidBasis`] for an empty or out-of-bounds range.
    pub fn sub_basis(&self, range: std::ops::Range<usize>) -> Result<Arc<Self>> {
        let tables = self.tables.get(range).ok_or(Error::InvalidBasis {
            reason: "limb range out of bounds",
        })?;
        Self::from_tables(tables.to_vec())
    }

    /// The ring over the union of the moduli of `self` then `other` (e.g. `Q_l` then `P`).
    ///
    /// # Errors
    /// [`Error::InvalidBasis`] for different degrees, [`Error::DuplicateModulus`] for shared moduli.
    pub fn union(&self, other: &RingBasis) -> Result<Arc<Self>> {
        Self::from_tables(self.tables.iter().chain(other.tables.iter()).cloned().collect())
    }

    /// The ring degree N.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Number of RNS limbs.
    pub fn len(&self) -> usize {
        self.tables.len()
    }

    /// Always false: a ring has at least one modulus.
    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }

    /// The RNS basis.
    pub fn rns(&self) -> &RnsBasis {
        &self.rns
    }

    /// The moduli.
    pub fn moduli(&self) -> &[Modulus] {
        self.rns.moduli()
    }

    /// The NTT tables, one per limb.
    pub fn tables(&self) -> &[Arc<NttTable>] {
        &self.tables
    }

    /// A fast basis extension from this ring's basis to `other`'s.
    ///
    /// # Errors
    /// Those of [`BasisExtender::new`], and [`Error::InvalidBasis`] for different degrees.
    pub fn extender_to(&self, other: &RingBasis) -> Result<BasisExtender> {
        if self.n != other.n {
            return Err(Error::InvalidBasis {
                reason: "ring degrees differ",
            });
        }
        BasisExtender::new(&self.rns, &other.rns)
    }

    /// Whether two rings are the same (same degree and same moduli in the same order).
    pub fn same_as(self: &Arc<Self>, other: &Arc<Self>) -> bool {
        Arc::ptr_eq(self, other) || (self.n == other.n && self.rns.moduli() == other.rns.moduli())
    }

    /// `Ok` when the rings are the same, else a [`Error::BasisMismatch`] naming both.
    ///
    /// # Errors
    /// [`Error::BasisMismatch`].
    pub fn check_same(self: &Arc<Self>, other: &Arc<Self>) -> Result<()> {
        if self.same_as(other) {
            Ok(())
        } else {
            Err(Error::BasisMismatch {
                left: self.rns.values(),
                right: other.rns.values(),
            })
        }
    }
}
