//! CKKS parameters: a plain literal checked once into an immutable [`Parameters`], which holds the
//! modulus chain, the ring contexts of every level, and the constants of rescaling and key switching.

pub mod security;

use crate::error::{Error, Result};
use crate::math::primes::{ntt_primes_below, ntt_primes_near};
use crate::math::rns::BasisExtender;
use crate::ring::basis::RingBasis;
use crate::ring::poly::TailDivider;
use std::sync::Arc;

/// How the secret key is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretDistribution {
    /// Coefficients uniform in {-1, 0, 1} (the HE standard's ternary secret).
    UniformTernary,
    /// Exactly `hamming_weight` coefficients in {-1, 1}, the others zero.
    SparseTernary {
        /// number of nonzero coefficients
        hamming_weight: usize,
    },
}

/// The security requirement a parameter set is checked against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecurityLevel {
    /// 128-bit classical security by the HE-standard table: insecure sets are refused.
    Classical128,
    /// No check. **Insecure**: for tests and toy examples only.
    InsecureForTests,
}

/// The unchecked description of a parameter set.
#[derive(Clone, Debug, PartialEq)]
pub struct ParametersLiteral {
    /// log2 of the ring degree N.
    pub log_n: u32,
    /// Bit sizes of the Q primes, level 0 first (q_0 holds the message at the last level).
    pub log_q: Vec<u32>,
    /// Bit sizes of the special primes P used by hybrid key switching.
    pub log_p: Vec<u32>,
    /// log2 of the default encoding scale.
    pub log_default_scale: u32,
    /// Secret distribution.
    pub secret: SecretDistribution,
    /// Security requirement.
    pub security: SecurityLevel,
    /// Number of digits of the hybrid key-switching decomposition at the top level. `None` picks
    /// the fewest digits whose products all stay 2^10 below P, which keeps the key-switching noise
    /// `sum_i digit_i e_i / P` small; an explicit `dnum` must respect the same bound.
    pub dnum: Option<usize>,
}

/// One digit of the hybrid key-switching decomposition at one level: a run of consecutive Q primes
/// and the fast basis extension from them to every other prime of `Q_l P` (ModUp). Limb indices
/// refer to the ring `Q_l P`.
#[derive(Debug)]
pub struct ModUpDigit {
    /// The digit's limbs.
    pub digit: std::ops::Range<usize>,
    /// The other limbs of `Q_l P`, in order.
    pub others: Vec<usize>,
    /// The ring over the digit's primes.
    pub digit_ring: Arc<RingBasis>,
    /// The ring over the other primes.
    pub other_ring: Arc<RingBasis>,
    /// Extension from `digit_ring` to `other_ring`.
    pub ext: BasisExtender,
}

/// The digits of `Q_l` when each holds `alpha` consecutive primes (the last one may be shorter).
pub fn digits_at_level(level: usize, alpha: usize) -> Vec<std::ops::Range<usize>> {
    (0..=level)
        .step_by(alpha.max(1))
        .map(|start| start..(start + alpha.max(1)).min(level + 1))
        .collect()
}

/// Margin, in bits, between P and the largest digit product.
const DIGIT_MARGIN_BITS: f64 = 10.0;

/// Primes per digit: from `dnum` if given (checked against the P bound), else the largest size
/// whose digits all stay `DIGIT_MARGIN_BITS` below P.
fn digit_size(q: &[u64], p: &[u64], dnum: Option<usize>) -> Result<usize> {
    let log_p: f64 = p.iter().map(|&x| (x as f64).log2()).sum();
    let fits = |alpha: usize| {
        q.chunks(alpha)
            .all(|d| d.iter().map(|&x| (x as f64).log2()).sum::<f64>() <= log_p - DIGIT_MARGIN_BITS)
    };
    match dnum {
        Some(d) => {
            if d == 0 || d > q.len() {
                return Err(Error::InvalidParameters {
                    reason: "dnum must be in 1..=number of Q primes",
                });
            }
            let alpha = q.len().div_ceil(d);
            if !fits(alpha) {
                return Err(Error::InvalidParameters {
                    reason: "P must exceed every key-switching digit by 2^10: use more digits or more special primes",
                });
            }
            Ok(alpha)
        }
        None => (1..=q.len())
            .rev()
            .find(|&a| fits(a))
            .ok_or(Error::InvalidParameters {
                reason: "P is too small for even one Q prime per digit (P must exceed each q_i by 2^10)",
            }),
    }
}

/// The canonical byte encoding of a parameter set: the literal's fields then the primes, little endian.
/// It is the body of serialized parameters and the input of the parameter digest.
pub fn canonical_bytes(lit: &ParametersLiteral, q: &[u64], p: &[u64]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&lit.log_n.to_le_bytes());
    for list in [&lit.log_q, &lit.log_p] {
        out.extend_from_slice(&(list.len() as u32).to_le_bytes());
        for b in list.iter() {
            out.extend_from_slice(&b.to_le_bytes());
        }
    }
    out.extend_from_slice(&lit.log_default_scale.to_le_bytes());
    let (tag, hw) = match lit.secret {
        SecretDistribution::UniformTernary => (0u8, 0u64),
        SecretDistribution::SparseTernary { hamming_weight } => (1u8, hamming_weight as u64),
    };
    out.push(tag);
    out.extend_from_slice(&hw.to_le_bytes());
    out.push(match lit.security {
        SecurityLevel::Classical128 => 0,
        SecurityLevel::InsecureForTests => 1,
    });
    out.extend_from_slice(&(lit.dnum.unwrap_or(0) as u64).to_le_bytes());
    for list in [q, p] {
        out.extend_from_slice(&(list.len() as u32).to_le_bytes());
        for x in list {
            out.extend_from_slice(&x.to_le_bytes());
        }
    }
    out
}

/// SHA-256 of `bytes`.
pub fn digest_of(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

/// A checked, immutable CKKS parameter set.
#[derive(Debug)]
pub struct Parameters {
    literal: ParametersLiteral,
    q: Vec<u64>,
    p: Vec<u64>,
    /// Ring over Q_l for each level l = 0..=L.
    ring_q: Vec<Arc<RingBasis>>,
    /// Ring over P alone.
    ring_p: Arc<RingBasis>,
    /// Ring over Q_l and P for each level l.
    ring_qp: Vec<Arc<RingBasis>>,
    /// Division by q_l with rounding, for l = 1..=L (index l).
    rescalers: Vec<Option<TailDivider>>,
    /// Division by P with rounding from Q_l P to Q_l, for each level l.
    mod_down: Vec<TailDivider>,
    /// The digits of the hybrid decomposition at each level, with their ModUp extenders.
    mod_up: Vec<Vec<ModUpDigit>>,
    /// Primes per digit.
    alpha: usize,
    log_qp: f64,
    digest: [u8; 32],
}

impl Parameters {
    /// Checks the literal, generates the primes and precomputes every level.
    ///
    /// # Errors
    /// [`Error::InvalidParameters`] for an inconsistent literal, [`Error::InsecureParameters`] when the
    /// set is below 128-bit security and not built as `InsecureForTests`, and the ring layer's errors.
    pub fn new(literal: ParametersLiteral) -> Result<Arc<Self>> {
        let lit = &literal;
        let insecure_ok = lit.security == SecurityLevel::InsecureForTests;
        let min_log_n = if insecure_ok { 3 } else { 10 };
        if !(min_log_n..=17).contains(&lit.log_n) {
            return Err(Error::InvalidParameters {
                reason: "log_n must be in 10..=17 (3..=17 for insecure test sets)",
            });
        }
        if lit.log_q.is_empty() || lit.log_p.is_empty() {
            return Err(Error::InvalidParameters {
                reason: "need at least one Q prime and one P prime",
            });
        }
        let n = 1usize << lit.log_n;
        if let SecretDistribution::SparseTernary { hamming_weight } = lit.secret {
            if hamming_weight == 0 || hamming_weight > n {
                return Err(Error::InvalidParameters {
                    reason: "Hamming weight must be in 1..=N",
                });
            }
        }
        if lit.log_default_scale == 0 || lit.log_default_scale > 60 {
            return Err(Error::InvalidParameters {
                reason: "log_default_scale must be in 1..=60",
            });
        }
        // Primes: q_0 the largest below 2^log_q[0]; scaling primes close to 2^log_q[i] so that rescaling
        // keeps the scale near 2^log_q[i]; special primes the largest below 2^log_p[j]. All distinct.
        let mut used: Vec<u64> = Vec::new();
        let take = |bits: u32, near: bool, used: &mut Vec<u64>| -> Result<u64> {
            let cands = if near {
                ntt_primes_near(bits, n, 1, used)?
            } else {
                ntt_primes_below(bits, n, used.len() + 1)?
                    .into_iter()
                    .filter(|c| !used.contains(c))
                    .take(1)
                    .collect()
            };
            let c = cands.first().copied().ok_or(Error::InvalidParameters {
                reason: "ran out of primes",
            })?;
            used.push(c);
            Ok(c)
        };
        let mut q = Vec::with_capacity(lit.log_q.len());
        for (i, &b) in lit.log_q.iter().enumerate() {
            q.push(take(b, i > 0, &mut used)?);
        }
        let mut p = Vec::with_capacity(lit.log_p.len());
        for &b in &lit.log_p {
            p.push(take(b, false, &mut used)?);
        }
        let log_qp: f64 = q.iter().chain(&p).map(|&x| (x as f64).log2()).sum();
        if !insecure_ok {
            let max = security::max_log_qp_128(lit.log_n).ok_or(Error::InvalidParameters {
                reason: "no security bound tabulated for this N",
            })?;
            if log_qp > max as f64 {
                return Err(Error::InsecureParameters {
                    log_n: lit.log_n,
                    log_qp: log_qp.ceil() as u32,
                    max_log_qp: max,
                });
            }
        }
        let alpha = digit_size(&q, &p, lit.dnum)?;
        let all_q = RingBasis::new(n, &q)?;
        let ring_p = RingBasis::new(n, &p)?;
        let ring_q = (0..q.len())
            .map(|l| all_q.sub_basis(0..l + 1))
            .collect::<Result<Vec<_>>>()?;
        let ring_qp = ring_q
            .iter()
            .map(|r| r.union(&ring_p))
            .collect::<Result<Vec<_>>>()?;
        let rescalers = (0..q.len())
            .map(|l| {
                if l == 0 {
                    Ok(None)
                } else {
                    TailDivider::new(&ring_q[l], 1).map(Some)
                }
            })
            .collect::<Result<Vec<_>>>()?;
        let mod_down = ring_qp
            .iter()
            .map(|r| TailDivider::new(r, p.len()))
            .collect::<Result<Vec<_>>>()?;
        let digest = digest_of(&canonical_bytes(&literal, &q, &p));
        let mod_up = ring_qp
            .iter()
            .enumerate()
            .map(|(level, r)| {
                digits_at_level(level, alpha)
                    .into_iter()
                    .map(|digit| {
                        let digit_ring = r.sub_basis(digit.clone())?;
                        let others: Vec<usize> = (0..r.len()).filter(|i| !digit.contains(i)).collect();
                        let other_ring =
                            RingBasis::from_tables(others.iter().map(|&i| r.tables()[i].clone()).collect())?;
                        let ext = digit_ring.extender_to(&other_ring)?;
                        Ok(ModUpDigit {
                            digit,
                            others,
                            digit_ring,
                            other_ring,
                            ext,
                        })
                    })
                    .collect::<Result<Vec<_>>>()
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Arc::new(Self {
            literal,
            q,
            p,
            ring_q,
            ring_p,
            ring_qp,
            rescalers,
            mod_down,
            mod_up,
            alpha,
            log_qp,
            digest,
        }))
    }

    /// The literal this set was built from.
    pub fn literal(&self) -> &ParametersLiteral {
        &self.literal
    }

    /// Ring degree N.
    pub fn n(&self) -> usize {
        1 << self.literal.log_n
    }

    /// Number of complex slots, N/2.
    pub fn max_slots(&self) -> usize {
        self.n() / 2
    }

    /// The highest level L (the number of rescalings a fresh ciphertext allows).
    pub fn max_level(&self) -> usize {
        self.q.len() - 1
    }

    /// The Q primes.
    pub fn q(&self) -> &[u64] {
        &self.q
    }

    /// The special primes P.
    pub fn p(&self) -> &[u64] {
        &self.p
    }

    /// log2 of Q P, the quantity the security bound limits.
    pub fn log_qp(&self) -> f64 {
        self.log_qp
    }

    /// The default scale, 2^log_default_scale.
    pub fn default_scale(&self) -> f64 {
        (self.literal.log_default_scale as f64).exp2()
    }

    /// The ring over Q_l.
    ///
    /// # Errors
    /// [`Error::LevelOutOfRange`] for `level > L`.
    pub fn ring_q(&self, level: usize) -> Result<&Arc<RingBasis>> {
        self.ring_q.get(level).ok_or(Error::LevelOutOfRange {
            level,
            max: self.max_level(),
        })
    }

    /// The ring over P.
    pub fn ring_p(&self) -> &Arc<RingBasis> {
        &self.ring_p
    }

    /// The ring over Q_l P.
    ///
    /// # Errors
    /// [`Error::LevelOutOfRange`] for `level > L`.
    pub fn ring_qp(&self, level: usize) -> Result<&Arc<RingBasis>> {
        self.ring_qp.get(level).ok_or(Error::LevelOutOfRange {
            level,
            max: self.max_level(),
        })
    }

    /// The division by q_level with rounding (rescaling from `level` to `level - 1`).
    ///
    /// # Errors
    /// [`Error::LevelOutOfRange`] for level 0 or above L.
    pub fn rescaler(&self, level: usize) -> Result<&TailDivider> {
        self.rescalers
            .get(level)
            .and_then(|r| r.as_ref())
            .ok_or(Error::LevelOutOfRange {
                level,
                max: self.max_level(),
            })
    }

    /// The division by P with rounding, from Q_l P to Q_l.
    ///
    /// # Errors
    /// [`Error::LevelOutOfRange`] for `level > L`.
    pub fn mod_down(&self, level: usize) -> Result<&TailDivider> {
        self.mod_down.get(level).ok_or(Error::LevelOutOfRange {
            level,
            max: self.max_level(),
        })
    }

    /// SHA-256 of the canonical encoding of the parameters (literal and primes); serialized objects
    /// carry it so that they are only read back under the same parameters.
    pub fn digest(&self) -> [u8; 32] {
        self.digest
    }

    /// The digits of the hybrid decomposition at `level`, with their ModUp extenders.
    ///
    /// # Errors
    /// [`Error::LevelOutOfRange`] for `level > L`.
    pub fn mod_up(&self, level: usize) -> Result<&[ModUpDigit]> {
        self.mod_up
            .get(level)
            .map(|v| v.as_slice())
            .ok_or(Error::LevelOutOfRange {
                level,
                max: self.max_level(),
            })
    }

    /// The number of digits at the top level (dnum).
    pub fn dnum(&self) -> usize {
        self.q.len().div_ceil(self.alpha)
    }

    /// Primes per key-switching digit.
    pub fn digit_primes(&self) -> usize {
        self.alpha
    }

    /// The N = 2^16 bootstrapping preset: q_0 of 55 bits, 9 working levels at scale 2^45 (45-bit
    /// primes), 16 bootstrapping levels of 60 bits, five 60-bit special primes (dnum = 6), a sparse
    /// ternary secret of Hamming weight 192; log QP = 1720 <= 1747.
    ///
    /// q_0 / Delta = 2^10 trades the sine's cubic error (about 2^-17 relative in the worst case of a
    /// message whose coefficients reach Delta; random messages have coefficients far smaller) against
    /// the amplification of the bootstrapping noise by q_0 / Delta (measured at N = 2^12: 2^15
    /// costs 5 bits more than 2^10).
    ///
    /// The security check applies the HE standard's bound for uniform ternary secrets; a sparse
    /// secret of weight 192 is the usual choice of bootstrapping parameter sets (Lattigo's defaults
    /// use it at N = 2^16 with a smaller log QP, about 1550), and its exact security was not
    /// estimated here: treat this preset as "128-bit by the standard table, sparse-secret caveat".
    ///
    /// # Errors
    /// As [`Parameters::new`].
    pub fn n16_boot() -> Result<Arc<Self>> {
        Self::new(ParametersLiteral {
            log_n: 16,
            log_q: std::iter::once(55)
                .chain(std::iter::repeat_n(45, 9))
                .chain(std::iter::repeat_n(60, 16))
                .collect(),
            log_p: vec![60; 5],
            log_default_scale: 45,
            secret: SecretDistribution::SparseTernary { hamming_weight: 192 },
            security: SecurityLevel::Classical128,
            dnum: None,
        })
    }

    /// A toy bootstrapping set for fast tests, the chain of
    /// [`BootstrapConfig::toy`](crate::circuits::bootstrap::BootstrapConfig::toy): N = 2^10, q_0 of
    /// 60 bits, `working` levels of 45 bits (the scale), 12 bootstrapping levels of 60 bits, three
    /// 60-bit special primes, a sparse secret of weight 32. **Insecure**: flagged `InsecureForTests`.
    ///
    /// # Errors
    /// As [`Parameters::new`].
    pub fn toy_boot(working: usize) -> Result<Arc<Self>> {
        Self::new(ParametersLiteral {
            log_n: 10,
            log_q: std::iter::once(60)
                .chain(std::iter::repeat_n(45, working))
                .chain(std::iter::repeat_n(60, 12))
                .collect(),
            log_p: vec![60, 60, 60],
            log_default_scale: 45,
            secret: SecretDistribution::SparseTernary { hamming_weight: 32 },
            security: SecurityLevel::InsecureForTests,
            dnum: None,
        })
    }

    /// A toy set for fast tests: N = 2^`log_n`, q_0 of 50 bits, `levels` scaling primes of 40 bits,
    /// scale 2^40, two 50-bit special primes. **Insecure**: flagged `InsecureForTests`.
    ///
    /// # Errors
    /// As [`Parameters::new`].
    pub fn toy(log_n: u32, levels: usize) -> Result<Arc<Self>> {
        Self::new(ParametersLiteral {
            log_n,
            log_q: std::iter::once(50)
                .chain(std::iter::repeat_n(40, levels))
                .collect(),
            log_p: vec![50, 50],
            log_default_scale: 40,
            secret: SecretDistribution::UniformTernary,
            security: SecurityLevel::InsecureForTests,
            dnum: None,
        })
    }

    /// The N = 2^16 preset: 128-bit secure, 24 levels at scale 2^45 (primes of 45 bits below 2^50, so
    /// the AVX-512 IFMA NTT applies), q_0 of 50 bits and four 50-bit special primes: log QP = 1330.
    ///
    /// # Errors
    /// As [`Parameters::new`].
    pub fn n16_depth24() -> Result<Arc<Self>> {
        Self::new(ParametersLiteral {
            log_n: 16,
            log_q: std::iter::once(50).chain(std::iter::repeat_n(45, 24)).collect(),
            log_p: vec![50; 4],
            log_default_scale: 45,
            secret: SecretDistribution::UniformTernary,
            security: SecurityLevel::Classical128,
            dnum: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insecure_sets_are_refused_unless_flagged() {
        let mut lit = ParametersLiteral {
            log_n: 12,
            log_q: vec![50, 40, 40],
            log_p: vec![60],
            log_default_scale: 40,
            secret: SecretDistribution::UniformTernary,
            security: SecurityLevel::Classical128,
            dnum: None,
        };
        // log QP = 190 > 106 at N = 2^12.
        match Parameters::new(lit.clone()) {
            Err(Error::InsecureParameters {
                log_n: 12,
                max_log_qp: 106,
                log_qp,
            }) => assert!(log_qp >= 189),
            other => panic!("expected a refusal, got {other:?}"),
        }
        lit.security = SecurityLevel::InsecureForTests;
        assert!(Parameters::new(lit.clone()).is_ok());
        // Within the bound: accepted at 128 bits.
        lit.security = SecurityLevel::Classical128;
        lit.log_n = 13;
        assert!(Parameters::new(lit).is_ok());
    }

    #[test]
    fn bad_literals_are_errors() {
        let ok = ParametersLiteral {
            log_n: 10,
            log_q: vec![20],
            log_p: vec![],
            log_default_scale: 20,
            secret: SecretDistribution::UniformTernary,
            security: SecurityLevel::InsecureForTests,
            dnum: None,
        };
        assert!(matches!(
            Parameters::new(ok.clone()),
            Err(Error::InvalidParameters { .. })
        ));
        let bad_n = ParametersLiteral {
            log_n: 18,
            log_p: vec![30],
            ..ok.clone()
        };
        assert!(matches!(
            Parameters::new(bad_n),
            Err(Error::InvalidParameters { .. })
        ));
        let bad_hw = ParametersLiteral {
            log_p: vec![30],
            secret: SecretDistribution::SparseTernary { hamming_weight: 0 },
            ..ok.clone()
        };
        assert!(matches!(
            Parameters::new(bad_hw),
            Err(Error::InvalidParameters { .. })
        ));
        let bad_scale = ParametersLiteral {
            log_p: vec![30],
            log_default_scale: 0,
            ..ok
        };
        assert!(matches!(
            Parameters::new(bad_scale),
            Err(Error::InvalidParameters { .. })
        ));
    }

    #[test]
    fn digits_stay_below_p() {
        let lit = |log_q: Vec<u32>, log_p: Vec<u32>, dnum| ParametersLiteral {
            log_n: 10,
            log_q,
            log_p,
            log_default_scale: 40,
            secret: SecretDistribution::UniformTernary,
            security: SecurityLevel::InsecureForTests,
            dnum,
        };
        // 60-bit primes with P = 3 x 60: digits of 2 primes (120 <= 170), not 3 (180 > 170).
        let p = Parameters::new(lit(vec![60; 7], vec![60; 3], None)).unwrap();
        assert_eq!(p.digit_primes(), 2);
        assert_eq!(p.dnum(), 4);
        assert!(Parameters::new(lit(vec![60; 7], vec![60; 3], Some(3))).is_err());
        assert_eq!(
            Parameters::new(lit(vec![60; 7], vec![60; 3], Some(7)))
                .unwrap()
                .dnum(),
            7
        );
        assert!(Parameters::new(lit(vec![60; 7], vec![60; 3], Some(0))).is_err());
        // A single special prime no larger than the Q primes cannot bound the noise.
        assert!(Parameters::new(lit(vec![50, 50], vec![50], None)).is_err());
    }

    #[test]
    fn presets_and_levels() {
        let p = Parameters::toy(10, 3).unwrap();
        assert_eq!(p.max_level(), 3);
        assert_eq!(p.ring_q(2).unwrap().len(), 3);
        assert_eq!(p.ring_qp(1).unwrap().len(), 4);
        assert!(p.rescaler(0).is_err());
        assert!(p.rescaler(3).is_ok());
        assert!(matches!(
            p.ring_q(4),
            Err(Error::LevelOutOfRange { level: 4, max: 3 })
        ));
        let mut all: Vec<u64> = p.q().iter().chain(p.p()).copied().collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 6, "primes must be distinct");
        // Scaling primes are within 2^-10 of the scale.
        for &q in &p.q()[1..] {
            assert!((q as f64 / p.default_scale() - 1.0).abs() < 1e-3);
        }
    }

    #[test]
    #[ignore = "builds the N = 2^16 preset (about a second)"]
    fn secure_preset_is_within_the_bound() {
        let p = Parameters::n16_depth24().unwrap();
        assert_eq!(p.max_level(), 24);
        assert!(p.log_qp() <= 1747.0, "log QP = {}", p.log_qp());
        assert!(p.q().iter().all(|&q| q < 1 << 50));
    }
}
