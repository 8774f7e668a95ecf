//! Level and scale bookkeeping shared by the plaintext evaluator and the simulator.
//!
//! References:
//! - J. H. Cheon, K. Han, A. Kim, M. Kim, Y. Song, "A Full RNS Variant of Approximate
//!   Homomorphic Encryption", SAC 2018, <https://eprint.iacr.org/2018/931> (rescaling by primes
//!   close to, but not equal to, the scale).

use super::OpCounts;
use crate::error::{finite, Error, Result};

/// Scale `2^40`, a common CKKS default.
const DEFAULT_SCALE: f64 = 1_099_511_627_776.0;

/// How levels and scales behave: the default scale, the modulus dropped by each rescale,
/// and the strictness of the checks.
#[derive(Debug, Clone, PartialEq)]
pub struct LevelModel {
    default_scale: f64,
    moduli: Vec<f64>,
    min_const_scale: f64,
    scale_tolerance: f64,
}

impl Default for LevelModel {
    fn default() -> Self {
        Self {
            default_scale: DEFAULT_SCALE,
            moduli: Vec::new(),
            min_const_scale: 1_048_576.0,
            scale_tolerance: 1e-9,
        }
    }
}

impl LevelModel {
    /// Idealised CKKS: fresh values at scale `2^40` and every rescale divides by exactly `2^40`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the scale of fresh values (and the rescale divisor of levels without an explicit modulus).
    pub fn with_default_scale(mut self, scale: f64) -> Result<Self> {
        self.default_scale = positive("default_scale", scale)?;
        Ok(self)
    }

    /// Sets the modulus dropped by a rescale at each level: `moduli[l]` is used at level `l`
    /// (entry 0 is unused; levels beyond the list use the default scale). Real RNS-CKKS primes
    /// differ from the scale by a small relative amount, which the plans must absorb exactly.
    pub fn with_moduli(mut self, moduli: Vec<f64>) -> Result<Self> {
        for &q in moduli.iter().skip(1) {
            positive("modulus", q)?;
        }
        self.moduli = moduli;
        Ok(self)
    }

    /// Constants not integral at their encoding scale must be encoded at least at this scale
    /// (default `2^20`), otherwise rounding destroys them; such requests are errors.
    pub fn with_min_const_scale(mut self, scale: f64) -> Result<Self> {
        self.min_const_scale = positive("min_const_scale", scale)?;
        Ok(self)
    }

    /// Relative tolerance for equal scales in additions (default `1e-9`).
    pub fn with_scale_tolerance(mut self, tolerance: f64) -> Result<Self> {
        self.scale_tolerance = positive("scale_tolerance", tolerance)?;
        Ok(self)
    }

    /// Scale of fresh values.
    pub fn default_scale(&self) -> f64 {
        self.default_scale
    }

    /// Modulus dropped by a rescale at `level`.
    pub fn rescale_divisor(&self, level: usize) -> f64 {
        match self.moduli.get(level) {
            Some(&q) if level > 0 => q,
            _ => self.default_scale,
        }
    }
}

fn positive(name: &'static str, v: f64) -> Result<f64> {
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(Error::InvalidParameter {
            name,
            value: v,
            reason: "must be positive and finite",
        })
    }
}

/// Level and scale of a value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Tag {
    pub level: usize,
    pub scale: f64,
}

/// Applies the model's rules to tags and counts operations.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Ledger {
    pub model: LevelModel,
    pub counts: OpCounts,
}

impl Ledger {
    pub fn new(model: LevelModel) -> Self {
        Self {
            model,
            counts: OpCounts::default(),
        }
    }

    pub fn add(&mut self, a: Tag, b: Tag) -> Result<Tag> {
        if a.level != b.level {
            return Err(Error::LevelMismatch {
                left: a.level,
                right: b.level,
            });
        }
        if (a.scale - b.scale).abs() > self.model.scale_tolerance * a.scale.abs().max(b.scale.abs()) {
            return Err(Error::ScaleMismatch {
                left: a.scale,
                right: b.scale,
            });
        }
        self.counts.additions += 1;
        Ok(a)
    }

    pub fn mul(&mut self, a: Tag, b: Tag) -> Result<Tag> {
        if a.level != b.level {
            return Err(Error::LevelMismatch {
                left: a.level,
                right: b.level,
            });
        }
        self.counts.nonscalar_mults += 1;
        Ok(Tag {
            level: a.level,
            scale: a.scale * b.scale,
        })
    }

    pub fn mul_const(&mut self, a: Tag, constant: f64, constant_scale: f64) -> Result<Tag> {
        finite("constant", constant)?;
        positive("constant_scale", constant_scale)?;
        let encoded = constant * constant_scale;
        // Exactly representable integers are exact; anything else is rounded to an integer,
        // so it needs enough units of precision.
        let integral = encoded.fract() == 0.0 && encoded.abs() < 9.007_199_254_740_992e15;
        if !integral && constant_scale < self.model.min_const_scale {
            return Err(Error::InexactConstant {
                constant,
                scale: constant_scale,
            });
        }
        self.counts.const_mults += 1;
        Ok(Tag {
            level: a.level,
            scale: a.scale * constant_scale,
        })
    }

    pub fn add_const(&mut self, a: Tag, constant: f64) -> Result<Tag> {
        finite("constant", constant)?;
        self.counts.const_additions += 1;
        Ok(a)
    }

    pub fn rescale(&mut self, a: Tag) -> Result<Tag> {
        if a.level == 0 {
            return Err(Error::LevelExhausted {
                needed: 1,
                available: 0,
            });
        }
        self.counts.rescales += 1;
        Ok(Tag {
            level: a.level - 1,
            scale: a.scale / self.model.rescale_divisor(a.level),
        })
    }

    pub fn drop_to(&mut self, a: Tag, level: usize) -> Result<Tag> {
        if level > a.level {
            return Err(Error::LevelExhausted {
                needed: level,
                available: a.level,
            });
        }
        self.counts.level_drops += 1;
        Ok(Tag {
            level,
            scale: a.scale,
        })
    }
}
