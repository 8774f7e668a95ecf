//! Encrypted matrices and their products with plaintext weights, for transformer layers.
//!
//! **Layout.** A `rows x cols` matrix is packed row-major with a power-of-two row *stride*
//! (`stride >= cols`): entry `(t, j)` sits in slot `t * stride + j`, the padding slots hold zeros.
//! When the rows do not fit one ciphertext they are split into tiles of `slots / stride` rows.
//!
//! **Plaintext weights.** `Y = X W` (`W` of `d x d'`, `stride >= max(d, d')`) is, on the slot
//! vector, the block-diagonal map `I (x) W^T`; its diagonals are indexed by `delta = j - k` only, so
//! there are at most `d + d' - 1` of them whatever the number of rows, and the BSGS diagonal method
//! ([`LinearTransform`]) needs about `2 sqrt(d + d')` rotations for the whole product, one level,
//! and applies unchanged to every tile. The plain diagonal method needs one rotation per diagonal.

use crate::circuits::lintrans::{LinearTransform, LinearTransformCost};
use crate::error::{Error, Result};
use crate::params::Parameters;
use crate::scheme::evaluator::{
    Ciphertext, CkksEncoder, CkksEncryptor, Evaluator, LeveledOpCounts, OpCounts,
};
use rand_core::CryptoRng;
use rustfft::num_complex::Complex64;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Row-major packing of a `rows x cols` matrix with row stride `stride`, over `slots` slots per
/// ciphertext.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RowMajor {
    /// Number of rows (tokens).
    pub rows: usize,
    /// Number of columns (width).
    pub cols: usize,
    /// Slots between consecutive rows (a power of two, at least `cols`).
    pub stride: usize,
    /// Slots per ciphertext (a power of two, at least `stride`).
    pub slots: usize,
}

impl RowMajor {
    /// A layout; `stride` defaults to the next power of two of `cols`.
    ///
    /// # Errors
    /// [`Error::InvalidSlots`] when the stride or slot count is not a power of two, the stride is
    /// below `cols`, or a row does not fit a ciphertext.
    pub fn new(rows: usize, cols: usize, stride: Option<usize>, slots: usize) -> Result<Self> {
        let stride = stride.unwrap_or(cols.next_power_of_two());
        if rows == 0
            || cols == 0
            || !stride.is_power_of_two()
            || stride < cols
            || !slots.is_power_of_two()
            || stride > slots
        {
            return Err(Error::InvalidSlots { slots, max: stride });
        }
        Ok(Self {
            rows,
            cols,
            stride,
            slots,
        })
    }

    /// Rows per ciphertext.
    pub fn rows_per_tile(&self) -> usize {
        self.slots / self.stride
    }

    /// Number of ciphertexts.
    pub fn tiles(&self) -> usize {
        self.rows.div_ceil(self.rows_per_tile())
    }

    /// The slot vectors of `m` (`rows` rows of `cols` values), one per tile.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] for a matrix of another shape.
    pub fn pack(&self, m: &[Vec<f64>]) -> Result<Vec<Vec<Complex64>>> {
        if m.len() != self.rows {
            return Err(Error::LengthMismatch {
                expected: self.rows,
                got: m.len(),
            });
        }
        if let Some(r) = m.iter().find(|r| r.len() != self.cols) {
            return Err(Error::LengthMismatch {
                expected: self.cols,
                got: r.len(),
            });
        }
        let per = self.rows_per_tile();
        Ok(m.chunks(per)
            .map(|chunk| {
                let mut v = vec![Complex64::new(0.0, 0.0); self.slots];
                for (t, row) in chunk.iter().enumerate() {
                    for (j, &x) in row.iter().enumerate() {
                        v[t * self.stride + j] = Complex64::new(x, 0.0);
                    }
                }
                v
            })
            .collect())
    }

    /// The matrix held by the slot vectors of its tiles (real parts).
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] for a wrong number of tiles or slots.
    pub fn unpack(&self, tiles: &[Vec<Complex64>]) -> Result<Vec<Vec<f64>>> {
        if tiles.len() != self.tiles() {
            return Err(Error::LengthMismatch {
                expected: self.tiles(),
                got: tiles.len(),
            });
        }
        let per = self.rows_per_tile();
        let mut out = Vec::with_capacity(self.rows);
        for t in 0..self.rows {
            let v = &tiles[t / per];
            if v.len() != self.slots {
                return Err(Error::LengthMismatch {
                    expected: self.slots,
                    got: v.len(),
                });
            }
            let base = (t % per) * self.stride;
            out.push((0..self.cols).map(|j| v[base + j].re).collect());
        }
        Ok(out)
    }
}

/// An encrypted matrix: its layout and one ciphertext per tile.
#[derive(Clone, Debug)]
pub struct EncryptedMatrix {
    /// The layout.
    pub layout: RowMajor,
    /// One ciphertext per tile.
    pub tiles: Vec<Ciphertext>,
}

impl EncryptedMatrix {
    /// Encodes and encrypts `m` at `level` and the default scale.
    ///
    /// # Errors
    /// Shape errors of [`RowMajor::pack`]; encoding and encryption errors.
    pub fn encrypt(
        params: &Parameters,
        encoder: &CkksEncoder,
        encryptor: &CkksEncryptor,
        layout: RowMajor,
        m: &[Vec<f64>],
        level: usize,
        rng: &mut impl CryptoRng,
    ) -> Result<Self> {
        let tiles = layout
            .pack(m)?
            .iter()
            .map(|v| encryptor.encrypt(&encoder.encode(v, level, params.default_scale())?, rng))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { layout, tiles })
    }
}

/// `X W` for encrypted `X` and a plaintext weight matrix `W`, pre-encoded at one level.
#[derive(Debug)]
pub struct PlainWeightMatMul {
    input: RowMajor,
    output: RowMajor,
    lt: LinearTransform,
    /// Nonzero diagonals other than the main one.
    off_diagonals: usize,
}

impl PlainWeightMatMul {
    /// Pre-encodes `w` (`input.cols x d'`) for inputs at `level` in the `input` layout. The output
    /// has `d'` columns with the same stride and tiling (so `stride >= max(d, d')` is required).
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] for a weight of the wrong shape, [`Error::InvalidSlots`] when `d'`
    /// exceeds the stride; errors of [`LinearTransform::new`].
    pub fn new(
        params: &Arc<Parameters>,
        encoder: &CkksEncoder,
        input: RowMajor,
        w: &[Vec<f64>],
        level: usize,
    ) -> Result<Self> {
        let d = input.cols;
        if w.len() != d {
            return Err(Error::LengthMismatch {
                expected: d,
                got: w.len(),
            });
        }
        let d_out = w.first().map(|r| r.len()).unwrap_or(0);
        if d_out == 0 || w.iter().any(|r| r.len() != d_out) {
            return Err(Error::LengthMismatch {
                expected: d_out.max(1),
                got: 0,
            });
        }
        if d_out > input.stride {
            return Err(Error::InvalidSlots {
                slots: d_out,
                max: input.stride,
            });
        }
        let output = RowMajor { cols: d_out, ..input };
        let s = input.slots;
        let per = input.rows_per_tile();
        // Diagonal delta = j - k holds W[k + delta][k] at every slot t * stride + k.
        let mut diags: BTreeMap<usize, Vec<Complex64>> = BTreeMap::new();
        for delta in -(d_out as i64 - 1)..=(d as i64 - 1) {
            let mut v = vec![Complex64::new(0.0, 0.0); s];
            let mut any = false;
            for k in 0..d_out {
                let j = k as i64 + delta;
                if j < 0 || j >= d as i64 {
                    continue;
                }
                let x = w[j as usize][k];
                if x != 0.0 {
                    any = true;
                    for t in 0..per {
                        v[t * input.stride + k] = Complex64::new(x, 0.0);
                    }
                }
            }
            if any {
                diags.insert(delta.rem_euclid(s as i64) as usize, v);
            }
        }
        let lt = LinearTransform::new(params, encoder, &diags, s, level, None)?;
        let off_diagonals = diags.keys().filter(|&&k| k != 0).count();
        Ok(Self {
            input,
            output,
            lt,
            off_diagonals,
        })
    }

    /// The output layout.
    pub fn output_layout(&self) -> RowMajor {
        self.output
    }

    /// Rotations needed (for key generation).
    pub fn rotations_needed(&self) -> Vec<i64> {
        self.lt.rotations_needed()
    }

    /// Operation counts per tile; multiply by the number of tiles for the whole product.
    pub fn cost_per_tile(&self) -> LinearTransformCost {
        self.lt.cost()
    }

    /// Key switches of the plain diagonal method (one rotation per nonzero diagonal but the main
    /// one), per tile: the baseline BSGS is measured against.
    pub fn plain_diagonal_key_switches(&self) -> usize {
        self.off_diagonals
    }

    /// `X W`, one level down, at `X`'s scale.
    ///
    /// # Errors
    /// [`Error::InvalidSlots`] for an input of another layout; evaluation errors.
    pub fn apply(&self, eval: &Evaluator, x: &EncryptedMatrix) -> Result<EncryptedMatrix> {
        if x.layout != self.input {
            return Err(Error::InvalidSlots {
                slots: x.layout.slots,
                max: self.input.slots,
            });
        }
        let tiles = x
            .tiles
            .iter()
            .map(|ct| self.lt.evaluate(eval, ct))
            .collect::<Result<Vec<_>>>()?;
        Ok(EncryptedMatrix {
            layout: self.output,
            tiles,
        })
    }
}

/// Operation counts of the encrypted-encrypted attention products.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AttentionCost {
    /// Rotations (key switches).
    pub rotations: usize,
    /// Of which rotations of `K` and `V` by whole rows, hoisted (one decomposition each for `K` and `V`).
    pub hoisted_rotations: usize,
    /// Ciphertext-ciphertext products (with relinearization).
    pub ct_mults: usize,
    /// Ciphertext-plaintext products (masks).
    pub pt_mults: usize,
    /// Levels consumed.
    pub levels: usize,
}

/// Multi-head attention products on encrypted `Q`, `K`, `V` (one tile each, the same row-major
/// layout, `heads` heads of `cols / heads` columns side by side).
///
/// Scores are produced *by diagonal*: for an offset `delta`, one ciphertext holds
/// `S_h[t][t + delta] * c` in slot `t * stride + h * d_h` (zeros elsewhere), where `c` is a public
/// constant folded into the mask (e.g. `1 / sqrt(d_h)`). Computing diagonal `delta` costs one
/// rotation of `K` (all of them hoisted), one product, `log2(d_h)` rotations for the sum within each
/// head and one mask.
/// The causal mask of a language model is multiplicative: only `delta <= 0` is computed, and the
/// mask also zeroes rows with `t + delta` outside the sequence.
///
/// **Batches** ([`EncryptedAttention::new_batched`]): `batch` sequences of `tokens` tokens share one
/// ciphertext interleaved, token-major: row `t * batch + b` is token `t` of sequence `b`. A rotation by
/// `delta * batch` rows then moves every sequence by `delta` tokens at once, so a batch costs exactly
/// the rotations and products of one sequence, and no score mixes two sequences. `scores x V` replicates each score
/// across its head's columns (`log2(d_h)` rotations) and multiplies by `V` rotated by `delta` rows.
#[derive(Debug)]
pub struct EncryptedAttention {
    layout: RowMajor,
    heads: usize,
    offsets: Vec<i64>,
    /// Sequences interleaved in the rows (`layout.rows = tokens * batch`).
    batch: usize,
    /// One mask per offset, at the level of the score products.
    masks: Vec<crate::scheme::evaluator::Plaintext>,
    level: usize,
}

impl EncryptedAttention {
    /// Prepares the products for inputs at `level` (the scores come out at `level - 2`: one product,
    /// one mask). `causal` computes only `delta <= 0`; `score_scale` is folded into the masks.
    ///
    /// # Errors
    /// [`Error::InvalidSlots`] for more than one tile or heads that do not divide the columns into
    /// powers of two; [`Error::LevelOutOfRange`] below level 2.
    pub fn new(
        params: &Arc<Parameters>,
        encoder: &CkksEncoder,
        layout: RowMajor,
        heads: usize,
        causal: bool,
        score_scale: f64,
        level: usize,
    ) -> Result<Self> {
        Self::new_batched(params, encoder, layout, heads, causal, score_scale, level, 1)
    }

    /// As [`EncryptedAttention::new`] for `batch` sequences interleaved in the rows of `layout`
    /// (`layout.rows = tokens * batch`, row `t * batch + b` = token `t` of sequence `b`).
    ///
    /// # Errors
    /// As [`EncryptedAttention::new`]; [`Error::LengthMismatch`] when `batch` does not divide the rows.
    #[allow(clippy::too_many_arguments)]
    pub fn new_batched(
        params: &Arc<Parameters>,
        encoder: &CkksEncoder,
        layout: RowMajor,
        heads: usize,
        causal: bool,
        score_scale: f64,
        level: usize,
        batch: usize,
    ) -> Result<Self> {
        if batch == 0 || !layout.rows.is_multiple_of(batch) {
            return Err(Error::LengthMismatch {
                expected: batch.max(1),
                got: layout.rows,
            });
        }
        if layout.tiles() != 1
            || heads == 0
            || !layout.cols.is_multiple_of(heads)
            || !(layout.cols / heads).is_power_of_two()
        {
            return Err(Error::InvalidSlots {
                slots: layout.cols,
                max: layout.stride,
            });
        }
        if level < 2 || level > params.max_level() {
            return Err(Error::LevelOutOfRange {
                level,
                max: params.max_level(),
            });
        }
        let rows = (layout.rows / batch) as i64;
        let offsets: Vec<i64> = if causal {
            (-(rows - 1)..=0).rev().collect()
        } else {
            (-(rows - 1)..rows).collect()
        };
        let d_h = layout.cols / heads;
        let q_l = params.q()[level - 1] as f64;
        let masks = offsets
            .iter()
            .map(|&delta| {
                let mut v = vec![Complex64::new(0.0, 0.0); layout.slots];
                for r in 0..layout.rows {
                    let t = (r / batch) as i64;
                    if (0..rows).contains(&(t + delta)) {
                        for h in 0..heads {
                            v[r * layout.stride + h * d_h] = Complex64::new(score_scale, 0.0);
                        }
                    }
                }
                encoder.encode(&v, level - 1, q_l)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            layout,
            heads,
            offsets,
            batch,
            masks,
            level,
        })
    }

    /// The offsets `delta`, in the order of the score ciphertexts.
    pub fn offsets(&self) -> &[i64] {
        &self.offsets
    }

    fn head_width(&self) -> usize {
        self.layout.cols / self.heads
    }

    fn row_rotation(&self, delta: i64) -> i64 {
        (delta * (self.batch * self.layout.stride) as i64).rem_euclid(self.layout.slots as i64)
    }

    /// The level of the `Q` and `K` it takes.
    pub fn level(&self) -> usize {
        self.level
    }

    /// Rotations needed (for key generation).
    pub fn rotations_needed(&self) -> Vec<i64> {
        let s = self.layout.slots as i64;
        let mut r: Vec<i64> = self
            .offsets
            .iter()
            .map(|&d| self.row_rotation(d))
            .filter(|&k| k != 0)
            .collect();
        let mut step = 1i64;
        while (step as usize) < self.head_width() {
            r.push(step);
            r.push((-step).rem_euclid(s));
            step *= 2;
        }
        r.sort_unstable();
        r.dedup();
        r
    }

    /// Counts of [`EncryptedAttention::scores`] followed by [`EncryptedAttention::apply_to_values`].
    pub fn cost(&self) -> AttentionCost {
        let n = self.offsets.len();
        let nonzero = self.offsets.iter().filter(|&&d| d != 0).count();
        let log_dh = self.head_width().trailing_zeros() as usize;
        AttentionCost {
            // Scores: K rotations + in-head sums; values: broadcasts + V rotations.
            rotations: nonzero + n * log_dh + n * log_dh + nonzero,
            hoisted_rotations: 2 * nonzero,
            ct_mults: 2 * n,
            pt_mults: n,
            levels: 3,
        }
    }

    /// The evaluator's counts for one [`EncryptedAttention::scores`], by level: `K`'s hoisted
    /// rotations and one product per offset at this attention's level, the in-head sums and the
    /// masks one level below.
    pub fn scores_op_counts(&self) -> LeveledOpCounts {
        let n = self.offsets.len();
        let log_dh = self.head_width().trailing_zeros() as usize;
        let mut c = LeveledOpCounts::default();
        c.add(
            self.level,
            self.rotated_values_op_counts()
                + OpCounts {
                    key_switches: n,
                    decompositions: n,
                    ct_mults: n,
                    pt_mults: 0,
                    rescales: n,
                },
        );
        c.add(
            self.level.saturating_sub(1),
            OpCounts {
                key_switches: n * log_dh,
                decompositions: n * log_dh,
                ct_mults: 0,
                pt_mults: n,
                rescales: n,
            },
        );
        c
    }

    /// The evaluator's counts for one [`EncryptedAttention::rotated_values`]: the nonzero offsets'
    /// rotations, hoisted (one decomposition).
    pub fn rotated_values_op_counts(&self) -> OpCounts {
        let r = self
            .offsets
            .iter()
            .filter(|&&d| self.row_rotation(d) != 0)
            .count();
        OpCounts {
            key_switches: r,
            decompositions: usize::from(r > 0),
            ..OpCounts::default()
        }
    }

    /// The evaluator's counts for one [`EncryptedAttention::replicate_in_heads`]: `log2(d_h)`
    /// rotations, each its own decomposition.
    pub fn replicate_op_counts(&self) -> OpCounts {
        let r = self.head_width().trailing_zeros() as usize;
        OpCounts {
            key_switches: r,
            decompositions: r,
            ..OpCounts::default()
        }
    }

    /// The score diagonals of `Q K^T` (times the score scale), at `level - 2`.
    ///
    /// # Errors
    /// [`Error::InvalidSlots`] for inputs of another layout; evaluation errors.
    pub fn scores(
        &self,
        eval: &Evaluator,
        q: &EncryptedMatrix,
        k: &EncryptedMatrix,
    ) -> Result<Vec<Ciphertext>> {
        if q.layout != self.layout || k.layout != self.layout || q.tiles.len() != 1 || k.tiles.len() != 1 {
            return Err(Error::InvalidSlots {
                slots: q.layout.slots,
                max: self.layout.slots,
            });
        }
        let (qc, kc) = (
            eval.drop_to_level(&q.tiles[0], self.level)?,
            eval.drop_to_level(&k.tiles[0], self.level)?,
        );
        // All rotations of K share one decomposition (hoisted).
        let rots: Vec<i64> = self.offsets.iter().map(|&d| self.row_rotation(d)).collect();
        let k_rotated = eval.rotate_hoisted(&kc, &rots)?;
        self.offsets
            .iter()
            .zip(&self.masks)
            .zip(&k_rotated)
            .map(|((_, mask), kr)| {
                let prod = eval.rescale(&eval.mul_relin(&qc, kr)?)?;
                let summed = eval.inner_sum(&prod, 1, self.head_width())?;
                eval.rescale(&eval.mul_plain(&summed, mask)?)
            })
            .collect()
    }

    /// `V` rotated by each offset's rows (hoisted, in the order of [`EncryptedAttention::offsets`]):
    /// the partner of score diagonal `delta` in `scores x V`.
    ///
    /// # Errors
    /// [`Error::InvalidSlots`] for a matrix of another layout; [`Error::MissingGaloisKey`].
    pub fn rotated_values(&self, eval: &Evaluator, v: &EncryptedMatrix) -> Result<Vec<Ciphertext>> {
        if v.layout != self.layout || v.tiles.len() != 1 {
            return Err(Error::InvalidSlots {
                slots: v.layout.slots,
                max: self.layout.slots,
            });
        }
        let rots: Vec<i64> = self.offsets.iter().map(|&d| self.row_rotation(d)).collect();
        eval.rotate_hoisted(&v.tiles[0], &rots)
    }

    /// Spreads slot `t * stride + h * d_h` of a score diagonal over the head's `d_h` columns
    /// (`log2(d_h)` rotations; the other slots of the head must hold zeros).
    ///
    /// # Errors
    /// [`Error::MissingGaloisKey`].
    pub fn replicate_in_heads(&self, eval: &Evaluator, a: &Ciphertext) -> Result<Ciphertext> {
        let s = self.layout.slots as i64;
        let mut b = a.clone();
        let mut step = 1i64;
        while (step as usize) < self.head_width() {
            b = eval.add(&b, &eval.rotate(&b, (-step).rem_euclid(s))?)?;
            step *= 2;
        }
        Ok(b)
    }

    /// `sum_delta diag_delta(A) * V` (A the possibly activated scores, one ciphertext per offset
    /// as produced by [`EncryptedAttention::scores`]), in the layout of `V`.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] for a wrong number of score ciphertexts; evaluation errors.
    pub fn apply_to_values(
        &self,
        eval: &Evaluator,
        scores: &[Ciphertext],
        v: &EncryptedMatrix,
    ) -> Result<EncryptedMatrix> {
        if scores.len() != self.offsets.len() {
            return Err(Error::LengthMismatch {
                expected: self.offsets.len(),
                got: scores.len(),
            });
        }
        if v.layout != self.layout || v.tiles.len() != 1 {
            return Err(Error::InvalidSlots {
                slots: v.layout.slots,
                max: self.layout.slots,
            });
        }
        let level = scores.first().map(|c| c.level()).unwrap_or(0);
        let vc = EncryptedMatrix {
            layout: v.layout,
            tiles: vec![eval.drop_to_level(&v.tiles[0], level)?],
        };
        let v_rotated = self.rotated_values(eval, &vc)?;
        let mut acc: Option<Ciphertext> = None;
        for (a, vr) in scores.iter().zip(&v_rotated) {
            let b = self.replicate_in_heads(eval, a)?;
            let term = eval.mul_relin(&b, vr)?;
            acc = Some(match acc {
                None => term,
                Some(x) => eval.add(&x, &term)?,
            });
        }
        let acc = acc.ok_or(Error::LengthMismatch { expected: 1, got: 0 })?;
        Ok(EncryptedMatrix {
            layout: self.layout,
            tiles: vec![eval.rescale(&acc)?],
        })
    }
}
