//! Plaintext matrix times encrypted vector by the diagonal method with baby-step/giant-step and
//! hoisted baby-step rotations (Halevi-Shoup 2014; Bossuat et al. 2021, section 4).
//!
//! For an `s x s` matrix `M` acting on the `s` slots, diagonal `k` is `d_k[i] = M[i][(i + k) mod s]`
//! and `M z = sum_k d_k * rot_k(z)`. Writing `k = g j + i` with `0 <= i < g` (baby steps) and
//! `0 <= j < s / g` (giant steps):
//!
//! `M z = sum_j rot_{g j}( sum_i rot_{-g j}(d_{g j + i}) * rot_i(z) )`
//!
//! so the rotations of `z` by `i` are shared (hoisted: one ModUp), the pre-rotated diagonals are
//! encoded once, and only one rotation per nonzero giant step remains. One level is consumed.
//!
//! References:
//! - S. Halevi, V. Shoup, "Algorithms in HElib", CRYPTO 2014 (<https://eprint.iacr.org/2014/106>).
//! - J.-P. Bossuat, C. Mouchet, J. Troncoso-Pastoriza, J.-P. Hubaux, "Efficient Bootstrapping for
//!   Approximate Homomorphic Encryption with Non-Sparse Keys", EUROCRYPT 2021
//!   (<https://eprint.iacr.org/2020/1203>).

use crate::error::{Error, Result};
use crate::params::Parameters;
use crate::scheme::evaluator::{Ciphertext, CkksEncoder, Evaluator, OpCounts, Plaintext};
use rayon::prelude::*;
use rustfft::num_complex::Complex64;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Operation counts of one evaluation of a linear transform.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinearTransformCost {
    /// Rotations (each one key switch), baby and giant steps.
    pub rotations: usize,
    /// Of which baby-step rotations, all sharing one ModUp (hoisted).
    pub hoisted_rotations: usize,
    /// Key switches in total (equal to `rotations`).
    pub key_switches: usize,
    /// Ciphertext-plaintext products.
    pub plaintext_mults: usize,
    /// Levels consumed.
    pub levels: usize,
}

impl LinearTransformCost {
    /// The evaluator's counts for one evaluation with its rescale: one decomposition for all the
    /// baby steps (if any) plus one per giant step, the plaintext products, `levels` rescales.
    pub fn op_counts(&self) -> OpCounts {
        OpCounts {
            key_switches: self.key_switches,
            decompositions: usize::from(self.hoisted_rotations > 0) + self.rotations - self.hoisted_rotations,
            ct_mults: 0,
            pt_mults: self.plaintext_mults,
            rescales: self.levels,
        }
    }
}

/// A plaintext matrix pre-encoded for the BSGS diagonal method at one level.
#[derive(Debug)]
pub struct LinearTransform {
    slots: usize,
    level: usize,
    layout: Layout,
    /// Giant step j -> baby step i -> the encoded pre-rotated diagonal `rot_{-g j d}(d_{(g j + i) d})`.
    giant: BTreeMap<i64, BTreeMap<usize, Plaintext>>,
}

/// How diagonal offsets split into baby and giant steps: offsets are read unsigned (`0..s`) or
/// signed (`-s/2..s/2`), divided by their common stride `d`, and written `k = (g j + i) d`.
/// Bootstrapping's DFT matrices have offsets `0, +-h, +-2h, ...`: the signed reading with stride `h`
/// turns a span of `s` into a handful of steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Layout {
    slots: usize,
    signed: bool,
    stride: usize,
    baby: usize,
}

impl Layout {
    fn offset(&self, k: usize) -> i64 {
        let k = k as i64;
        let s = self.slots as i64;
        if self.signed && k > s / 2 {
            k - s
        } else {
            k
        }
    }

    /// `(j, i)` with `offset(k) = (baby j + i) stride`, `0 <= i < baby`.
    fn split(&self, k: usize) -> (i64, usize) {
        let kk = self.offset(k) / self.stride as i64;
        let g = self.baby as i64;
        (kk.div_euclid(g), kk.rem_euclid(g) as usize)
    }

    fn baby_rotation(&self, i: usize) -> i64 {
        (i * self.stride) as i64
    }

    fn giant_rotation(&self, j: i64) -> i64 {
        j * (self.baby * self.stride) as i64
    }

    /// Number of rotations (non-zero baby steps plus non-zero giant steps) for `offsets`.
    fn cost(&self, offsets: &[usize]) -> usize {
        let mut babies = std::collections::BTreeSet::new();
        let mut giants = std::collections::BTreeSet::new();
        for &k in offsets {
            let (j, i) = self.split(k);
            if i != 0 {
                babies.insert(i);
            }
            if j != 0 {
                giants.insert(j);
            }
        }
        babies.len() + giants.len()
    }

    /// The layout with the fewest rotations (ties: more baby steps, which share one ModUp), over both
    /// readings of the offsets and every power-of-two baby count (or the given one).
    fn choose(offsets: &[usize], slots: usize, baby: Option<usize>) -> Self {
        let gcd = |mut a: usize, mut b: usize| {
            while b != 0 {
                (a, b) = (b, a % b);
            }
            a
        };
        let mut best: Option<(usize, Layout)> = None;
        for signed in [false, true] {
            let probe = Layout {
                slots,
                signed,
                stride: 1,
                baby: 1,
            };
            let stride = offsets.iter().fold(0usize, |acc, &k| {
                gcd(acc, probe.offset(k).unsigned_abs() as usize)
            });
            let stride = if stride == 0 { 1 } else { stride };
            let babies: Vec<usize> = match baby {
                Some(b) => vec![b],
                None => (0..=slots.trailing_zeros()).map(|e| 1usize << e).collect(),
            };
            for g in babies {
                let layout = Layout {
                    slots,
                    signed,
                    stride: if baby.is_some() { 1 } else { stride },
                    baby: g,
                };
                let c = layout.cost(offsets);
                let better = match &best {
                    None => true,
                    Some((bc, bl)) => c < *bc || (c == *bc && g > bl.baby),
                };
                if better {
                    best = Some((c, layout));
                }
            }
        }
        best.map(|(_, l)| l).unwrap_or(Layout {
            slots,
            signed: false,
            stride: 1,
            baby: 1,
        })
    }
}

fn rotate_vec(v: &[Complex64], k: i64) -> Vec<Complex64> {
    let s = v.len() as i64;
    (0..s).map(|i| v[(i + k).rem_euclid(s) as usize]).collect()
}

impl LinearTransform {
    /// Pre-encodes the nonzero diagonals `diagonals[k]` (each of length `slots`) for inputs at
    /// `level`, with `baby` baby steps (a power of two; `None` picks about `sqrt(#diagonals)`).
    /// The diagonals are encoded at the scale `q_level`, so that after the rescale the output has
    /// exactly the input's scale.
    ///
    /// # Errors
    /// [`Error::InvalidSlots`] for a bad slot count or diagonal length, [`Error::LevelOutOfRange`]
    /// for level 0 (the transform needs one level), [`Error::OutOfRange`] for a diagonal index
    /// outside `0..slots` or a bad baby-step count.
    pub fn new(
        params: &Arc<Parameters>,
        encoder: &CkksEncoder,
        diagonals: &BTreeMap<usize, Vec<Complex64>>,
        slots: usize,
        level: usize,
        baby: Option<usize>,
    ) -> Result<Self> {
        let q_l = params.q().get(level).map(|&q| q as f64).unwrap_or(1.0);
        Self::with_diag_scale(params, encoder, diagonals, slots, level, baby, q_l)
    }

    /// As [`LinearTransform::new`], with the diagonals encoded at `diag_scale`: the output scale is
    /// `input scale * diag_scale / q_level` (bootstrapping uses this to land on a chosen scale).
    ///
    /// # Errors
    /// As [`LinearTransform::new`]; [`Error::OutOfRange`] for a scale that is not finite and >= 1.
    pub fn with_diag_scale(
        params: &Arc<Parameters>,
        encoder: &CkksEncoder,
        diagonals: &BTreeMap<usize, Vec<Complex64>>,
        slots: usize,
        level: usize,
        baby: Option<usize>,
        diag_scale: f64,
    ) -> Result<Self> {
        if !(diag_scale.is_finite() && diag_scale >= 1.0) {
            return Err(Error::OutOfRange {
                reason: "diagonal scale must be finite and at least 1",
            });
        }
        if !slots.is_power_of_two() || slots > params.max_slots() {
            return Err(Error::InvalidSlots {
                slots,
                max: params.max_slots(),
            });
        }
        if level == 0 || level > params.max_level() {
            return Err(Error::LevelOutOfRange {
                level,
                max: params.max_level(),
            });
        }
        if diagonals.keys().any(|&k| k >= slots) {
            return Err(Error::OutOfRange {
                reason: "diagonal index must be below the slot count",
            });
        }
        if diagonals.values().any(|d| d.len() != slots) {
            return Err(Error::InvalidSlots { slots, max: slots });
        }
        if let Some(b) = baby {
            if !b.is_power_of_two() || b > slots {
                return Err(Error::OutOfRange {
                    reason: "baby steps must be a power of two up to the slots",
                });
            }
        }
        let layout = Layout::choose(&diagonals.keys().copied().collect::<Vec<_>>(), slots, baby);
        // Encoding (an FFT and an NTT per limb per diagonal) is most of the preparation, and the
        // diagonals are independent: encode them on all threads.
        let entries: Vec<(&usize, &Vec<Complex64>)> = diagonals.iter().collect();
        let encoded = entries
            .par_iter()
            .map(|&(&k, d)| {
                let (j, i) = layout.split(k);
                let pre = rotate_vec(d, -(layout.giant_rotation(j)));
                Ok((j, i, encoder.encode(&pre, level, diag_scale)?))
            })
            .collect::<Result<Vec<_>>>()?;
        let mut giant: BTreeMap<i64, BTreeMap<usize, Plaintext>> = BTreeMap::new();
        for (j, i, pt) in encoded {
            giant.entry(j).or_default().insert(i, pt);
        }
        Ok(Self {
            slots,
            level,
            layout,
            giant,
        })
    }

    /// The diagonals of a dense `slots x slots` matrix given by rows (zero diagonals are skipped).
    ///
    /// # Errors
    /// [`Error::InvalidSlots`] for a non-square matrix.
    pub fn diagonals_of(matrix: &[Vec<Complex64>]) -> Result<BTreeMap<usize, Vec<Complex64>>> {
        let s = matrix.len();
        if matrix.iter().any(|r| r.len() != s) {
            return Err(Error::InvalidSlots { slots: s, max: s });
        }
        let mut out = BTreeMap::new();
        for k in 0..s {
            let d: Vec<Complex64> = (0..s).map(|i| matrix[i][(i + k) % s]).collect();
            if d.iter().any(|v| v.norm() != 0.0) {
                out.insert(k, d);
            }
        }
        Ok(out)
    }

    /// The rotations whose Galois keys the evaluation needs (normalised to `0..slots`).
    pub fn rotations_needed(&self) -> Vec<i64> {
        let s = self.slots as i64;
        let mut r: Vec<i64> = Vec::new();
        for (&j, inner) in &self.giant {
            if j != 0 {
                r.push(self.layout.giant_rotation(j).rem_euclid(s));
            }
            r.extend(
                inner
                    .keys()
                    .filter(|&&i| i != 0)
                    .map(|&i| self.layout.baby_rotation(i).rem_euclid(s)),
            );
        }
        r.retain(|&k| k != 0);
        r.sort_unstable();
        r.dedup();
        r
    }

    /// The distinct baby steps `i` used by some giant step, ascending (0 included when used).
    fn baby_steps(&self) -> Vec<usize> {
        let set: std::collections::BTreeSet<usize> =
            self.giant.values().flat_map(|m| m.keys().copied()).collect();
        set.into_iter().collect()
    }

    /// The operation counts of one [`LinearTransform::evaluate`].
    pub fn cost(&self) -> LinearTransformCost {
        let babies: Vec<usize> = self.baby_steps().into_iter().filter(|&i| i != 0).collect();
        let giants = self.giant.keys().filter(|&&j| j != 0).count();
        let rotations = babies.len() + giants;
        LinearTransformCost {
            rotations,
            hoisted_rotations: babies.len(),
            key_switches: rotations,
            plaintext_mults: self.giant.values().map(|m| m.len()).sum(),
            levels: 1,
        }
    }

    /// `M z` for the encrypted `z` (at this transform's level and slot count), rescaled: the output
    /// is one level lower, at the input's scale.
    ///
    /// # Errors
    /// [`Error::LevelMismatch`], [`Error::InvalidSlots`], [`Error::MissingGaloisKey`].
    pub fn evaluate(&self, eval: &Evaluator, z: &Ciphertext) -> Result<Ciphertext> {
        eval.rescale(&self.evaluate_without_rescale(eval, z)?)
    }

    /// As [`LinearTransform::evaluate`] but leaves the rescale to the caller: the output is at the
    /// input's level with scale `input scale * diagonal scale`. Operations done before the rescale
    /// (a conjugation, say) have their key-switching noise divided by `q_l` along with the rest.
    ///
    /// # Errors
    /// As [`LinearTransform::evaluate`].
    pub fn evaluate_without_rescale(&self, eval: &Evaluator, z: &Ciphertext) -> Result<Ciphertext> {
        if z.level() != self.level {
            return Err(Error::LevelMismatch {
                left: z.level(),
                right: self.level,
            });
        }
        if z.slots() != self.slots {
            return Err(Error::InvalidSlots {
                slots: z.slots(),
                max: self.slots,
            });
        }
        // Baby steps: hoisted rotations of z by every i used.
        let babies = self.baby_steps();
        let rotated = eval.rotate_hoisted(
            z,
            &babies
                .iter()
                .map(|&i| self.layout.baby_rotation(i))
                .collect::<Vec<_>>(),
        )?;
        let baby_ct: BTreeMap<usize, &Ciphertext> = babies.iter().copied().zip(rotated.iter()).collect();
        let mut acc: Option<Ciphertext> = None;
        for (&j, inner) in &self.giant {
            let terms = inner
                .iter()
                .map(|(i, pt)| {
                    let ct = baby_ct.get(i).ok_or(Error::InvalidKey {
                        reason: "missing baby step",
                    })?;
                    Ok((*ct, pt))
                })
                .collect::<Result<Vec<_>>>()?;
            if terms.is_empty() {
                continue;
            }
            let sum = eval.mul_plain_sum(&terms)?;
            // Same normalisation as `rotations_needed`, so the key looked up is the one generated.
            let moved = eval.rotate(&sum, self.layout.giant_rotation(j).rem_euclid(self.slots as i64))?;
            acc = Some(match acc {
                None => moved,
                Some(a) => eval.add(&a, &moved)?,
            });
        }
        acc.ok_or(Error::InvalidKey {
            reason: "empty linear transform",
        })
    }
}
