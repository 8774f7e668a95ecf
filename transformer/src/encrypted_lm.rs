//! Encrypted inference of the polynomial causal language model on CKKS ciphertexts, with
//! LayerNorms evaluated on the ciphertexts and bootstraps placed automatically.
//!
//! [`EncryptedLm`] is built from a [`ReferenceModel`] of a LayerNorm language model whose sites are
//! fitted polynomials, and evaluates the reference's arithmetic:
//!
//! - **client**: looks the token ids up in the embedding table and adds the positions (the ids never
//!   leave the client; the table and positions are the part of the model the client holds), encrypts
//!   the `[tokens, dim]` matrix row-major ([`EncryptedLm::encrypt_windows`]); several windows share
//!   a ciphertext interleaved token-major (row `t * batch + b` is token `t` of window `b`);
//! - **server** ([`EncryptedLm::forward`]): per block, LayerNorm, `Q K V`, the causal score diagonals,
//!   the attention polynomial, the product with `V`, the projection and the residual; LayerNorm, `fc1`,
//!   the MLP polynomial, `fc2` and the residual; the final LayerNorm and the head over the
//!   vocabulary (one ciphertext per `stride` columns of it); bootstrapping wherever the next layer
//!   needs more levels than are left;
//! - **client**: decrypts the next-token logits at every position ([`EncryptedLm::decrypt_logits`]).
//!
//! **LayerNorm on ciphertexts** (8 levels with the degree-31 inverse square roots of the CPU LM):
//! with `u = alpha v + beta` the change of variable of the inverse-square-root fit on `[a, b]`,
//! one rotation tree of the row sums gives the row means (replicated over the columns) and
//! `sqrt(alpha) mean` (column 0); the squares' row sums give `alpha E[x^2]` (column 0) in the same
//! level as `alpha mean^2`, so `u = alpha (E[x^2] - mean^2 + eps) + beta` is two levels below the
//! input; the polynomial runs on it (its coefficients carry the scale corrections, so no level is
//! spent on constants), column 0 is spread over the row and multiplies `x - mean`. The other slots
//! of column 0's ciphertext hold `u = 0` and the polynomial's value there is subtracted before the
//! spread and added after (the spread adds rotated copies, so those slots must hold zeros). `gamma`
//! and `beta` of the LayerNorm are folded into the next linear map. Newton steps on ciphertexts are
//! not implemented: fits with a Newton refinement are refused (the CPU LM's fits use none).
//!
//! **Attention**: as in [`crate::encrypted::EncryptedVit`] (score diagonals of
//! [`EncryptedAttention`], causal: offsets `-(L - 1)..=0`), except that the plaintext mask after the
//! attention polynomial is moved onto `V`: the polynomial's value at 0 is subtracted from each
//! activated diagonal, which is then spread over its head's columns and given back its constant, and
//! multiplies `V` rotated by the offset's rows and masked (valid rows, the length scaling, the
//! bootstrapping scale) at a level where `V` has levels to spare. That saves the mask's level on
//! the path of the scores.
//!
//! **Bootstrapping** is planned while the model is prepared: a level cursor follows the forward,
//! and before each segment (LayerNorm; `Q K V` to the product with `V`; the projection; the MLP;
//! the head) that needs more levels than are left, the segment's input is bootstrapped. An input
//! must be at most about 1 at its scale: the residual stream is multiplied by `1 / K` (one level)
//! before and by `K` (exact, integer) after; for a LayerNorm's output and the attention heads the
//! `1 / K` is folded into the polynomial or the value masks and `K` into the next weights. `K` is
//! the power of two above `margin` times the largest value seen at that point by the plaintext
//! reference on calibration windows ([`LmOptions::bootstrap_margin`]).
//!
//! Galois keys: every rotation of the model happens at or below a known level (the bootstrapping
//! output level, or the start level for the first block), so [`EncryptedLm::galois_keys_needed`]
//! lists each Galois element with the level its key must reach (the bootstrapping circuit's at the
//! top level): low-level keys are several times smaller.

use std::collections::BTreeMap;
use std::sync::Arc;

use ckks::circuits::bootstrap::Bootstrapper;
use ckks::circuits::layout::{RowSums, SpreadColumn};
use ckks::circuits::matmul::{EncryptedAttention, EncryptedMatrix, RowMajor};
use ckks::circuits::poly_eval::{plan_op_counts, CkksArith};
use ckks::params::Parameters;
use ckks::ring::poly::galois_element_for_rotation;
use ckks::rlwe::SecretKey;
use ckks::scheme::evaluator::{
    decrypt_ckks, decrypt_ckks_flooded, Ciphertext, CkksEncoder, CkksEncryptor, Evaluator, LeveledOpCounts,
    OpCounts, Plaintext,
};
use poly_approx::eval::EvalPlan;
use poly_approx::{ChebyshevPoly, Interval};
use rand::CryptoRng;

use crate::encrypted::{
    bias_rows, prime, residual, timed, weight_rows, Affine, EncryptedError, ForwardProfile, Result,
    WeightEncoding, WorkKind,
};
use crate::model::nn::LN_EPS;
use crate::model::{AttentionKind, ScalePlacement, SitePoly, TaskConfig};
use crate::reference::{Dense, Embedding, LayerNormParams, ReferenceModel};

/// Relative tolerance when checking a ciphertext's scale against the planned one.
const SCALE_TOLERANCE: f64 = 1e-9;

/// How [`EncryptedLm::new`] prepares the model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LmOptions {
    /// How the weights of the linear layers are held.
    pub weights: WeightEncoding,
    /// Windows per ciphertext (interleaved token-major), at most [`EncryptedLm::max_batch`].
    pub batch: usize,
    /// A bootstrapped value is divided by the power of two above `margin` times the largest
    /// magnitude the reference reaches there on the calibration windows (at least 1).
    pub bootstrap_margin: f64,
}

impl Default for LmOptions {
    fn default() -> Self {
        Self {
            weights: WeightEncoding::Once,
            batch: 1,
            bootstrap_margin: 2.0,
        }
    }
}

/// The client's part of the model: the token table and the positions. The client looks its token
/// ids up here, so the ids never leave it.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenEmbedding {
    /// Vocabulary size.
    pub vocab: usize,
    /// Width.
    pub dim: usize,
    /// Context length (positions).
    pub tokens: usize,
    /// `vocab x dim`, row-major.
    pub table: Vec<f64>,
    /// `tokens x dim`, row-major.
    pub pos: Vec<f64>,
}

impl TokenEmbedding {
    /// The token matrix of up to `batch` windows of exactly `tokens` ids each (embeddings plus
    /// positions), interleaved token-major: row `t * batch + b` is token `t` of window `b`. Missing
    /// windows repeat the first one (a zero row would put the inverse square root far outside its
    /// interval).
    ///
    /// # Errors
    /// [`EncryptedError::Shape`] for no window, too many, a window of another length or a table of
    /// the wrong size; [`EncryptedError::Input`] for an id outside the vocabulary.
    pub fn matrix(&self, windows: &[Vec<u32>], batch: usize) -> Result<Vec<Vec<f64>>> {
        if windows.is_empty() || windows.len() > batch {
            return Err(EncryptedError::Shape(format!(
                "{} windows for a batch of {batch}",
                windows.len()
            )));
        }
        if self.table.len() != self.vocab * self.dim || self.pos.len() < self.tokens * self.dim {
            return Err(EncryptedError::Shape(
                "embedding table or positions of the wrong size".into(),
            ));
        }
        let d = self.dim;
        let mut m = Vec::with_capacity(self.tokens * batch);
        for r in 0..self.tokens * batch {
            let (t, b) = (r / batch, r % batch);
            let w = windows.get(b).unwrap_or(&windows[0]);
            if w.len() != self.tokens {
                return Err(EncryptedError::Shape(format!(
                    "a window of {} tokens, expected {}",
                    w.len(),
                    self.tokens
                )));
            }
            let id = w[t] as usize;
            if id >= self.vocab {
                return Err(EncryptedError::Input(format!(
                    "token id {id} outside the vocabulary of {}",
                    self.vocab
                )));
            }
            let row = &self.table[id * d..(id + 1) * d];
            let p = &self.pos[t * d..(t + 1) * d];
            m.push(row.iter().zip(p).map(|(a, b)| a + b).collect());
        }
        Ok(m)
    }
}

/// A LayerNorm prepared for inputs at one level (see the module documentation).
#[derive(Debug)]
struct Norm {
    level: usize,
    /// Row means, replicated over the columns.
    mean: RowSums,
    /// `sqrt(alpha) * mean`, column 0.
    mean_scaled: RowSums,
    /// `alpha * E[x^2]` (with the correction for the squares' scale), column 0.
    squares: RowSums,
    /// `alpha * eps + beta` in column 0 of the valid rows, at the level and scale of `u`.
    shift: Plaintext,
    /// The inverse square root on `u`, coefficients scaled (scale correction, `1 / K`).
    inv: EvalPlan,
    /// The polynomial's value at `u = 0` (the slots outside column 0).
    inv_at_zero: f64,
    spread: SpreadColumn,
}

/// Where a segment's input is bootstrapped, and by what power of two it is divided first.
type BootK = Option<f64>;

#[derive(Debug)]
struct LmBlock {
    boot_x1: BootK,
    norm1: Norm,
    boot_h1: BootK,
    q: Affine,
    k: Affine,
    v: Affine,
    attention: EncryptedAttention,
    sigma: EvalPlan,
    sigma_shift: f64,
    sigma_at_zero: f64,
    /// One mask per offset, on `V` rotated by the offset's rows.
    value_masks: Vec<Plaintext>,
    boot_o: BootK,
    proj: Affine,
    boot_x2: BootK,
    norm2: Norm,
    boot_h2: BootK,
    fc1: Affine,
    act: EvalPlan,
    fc2: Affine,
}

/// The polynomial causal LM prepared for encrypted inference (see the module documentation).
#[derive(Debug)]
pub struct EncryptedLm {
    params: Arc<Parameters>,
    bootstrapper: Option<Arc<Bootstrapper>>,
    layout: RowMajor,
    start_level: usize,
    batch: usize,
    tokens: usize,
    vocab: usize,
    /// The client's part of the model.
    embedding: TokenEmbedding,
    blocks: Vec<LmBlock>,
    boot_final: BootK,
    norm: Norm,
    boot_hf: BootK,
    /// The head, one affine map per `stride` columns of the vocabulary.
    head: Vec<Affine>,
    /// Every rotation of the forward and the highest level it is used at.
    rotations: BTreeMap<i64, usize>,
    bootstraps: usize,
    /// The operations of one forward, by level.
    predicted: LeveledOpCounts,
    /// The same by kind of work.
    predicted_by_kind: BTreeMap<WorkKind, LeveledOpCounts>,
    /// Each bootstrap's input point and the power of two it is divided by.
    bootstrap_inputs: Vec<(String, f64)>,
    output_level: usize,
    /// The planner's steps, for display.
    plan: Vec<String>,
    weights: WeightEncoding,
    encoder: Option<CkksEncoder>,
}

/// What one [`EncryptedLm::forward`] produced.
#[derive(Debug)]
pub struct LmOutput {
    /// The logits, one matrix per `stride` columns of the vocabulary (row `t * batch + b`: position
    /// `t` of window `b`).
    pub logits: Vec<EncryptedMatrix>,
    /// Where the time went.
    pub profile: ForwardProfile,
    /// Bootstraps performed.
    pub bootstraps: usize,
}

/// The level cursor of the planner.
struct Planner<'a> {
    level: usize,
    boot_out: Option<usize>,
    bootstraps: usize,
    bounds: &'a BTreeMap<String, f64>,
    margin: f64,
    /// One line per segment and per bootstrap, in forward order.
    steps: Vec<String>,
    /// The operations of the forward so far, by kind of work and level.
    counts: BTreeMap<WorkKind, LeveledOpCounts>,
    /// The operations of one bootstrap.
    boot_counts: LeveledOpCounts,
    /// Each bootstrap's input: the trace point and the power of two it is divided by.
    boot_inputs: Vec<(String, f64)>,
}

impl Planner<'_> {
    /// Makes `levels` available for the next segment: `Ok(None)` if they are, else plans a bootstrap
    /// of the segment's input (named `point` in the reference trace) and returns its `K`.
    /// `scale_down` inputs spend one level on the `1 / K` before bootstrapping.
    fn need(&mut self, levels: usize, point: &str, scale_down: bool) -> Result<BootK> {
        if self.level >= levels {
            return Ok(None);
        }
        let out = self.boot_out.ok_or(EncryptedError::Levels {
            needed: levels,
            available: self.level,
        })?;
        if out < levels || (scale_down && self.level < 1) {
            return Err(EncryptedError::Levels {
                needed: levels.max(usize::from(scale_down)),
                available: if out < levels { out } else { self.level },
            });
        }
        let bound = self.bounds.get(point).copied().ok_or_else(|| {
            EncryptedError::Input(format!(
                "no calibration value at {point}: bootstrapping needs calibration windows"
            ))
        })?;
        let k = (self.margin * bound).max(1.0).log2().ceil().exp2();
        self.steps.push(format!(
            "bootstrap {point} (|max| {bound:.3} on the calibration windows, divided by {k}): level {} -> {out}",
            self.level
        ));
        if scale_down {
            self.count(WorkKind::Bootstrap, self.level, OpCounts::RESCALE);
        }
        self.boot_inputs.push((point.to_string(), k));
        self.counts
            .entry(WorkKind::Bootstrap)
            .or_default()
            .add_all(&self.boot_counts, 1);
        self.level = out;
        self.bootstraps += 1;
        Ok(Some(k))
    }

    /// Counts `c` of `kind` at `level`.
    fn count(&mut self, kind: WorkKind, level: usize, c: OpCounts) {
        self.counts.entry(kind).or_default().add(level, c);
    }

    /// Counts `c` of `kind`, by level.
    fn count_all(&mut self, kind: WorkKind, c: &LeveledOpCounts) {
        self.counts.entry(kind).or_default().add_all(c, 1);
    }

    /// `levels` spent by the segment `what`.
    fn spend(&mut self, levels: usize, what: &str) -> Result<()> {
        self.steps.push(format!(
            "{what}: level {} -> {}",
            self.level,
            self.level.saturating_sub(levels)
        ));
        self.level = self.level.checked_sub(levels).ok_or(EncryptedError::Levels {
            needed: levels,
            available: self.level,
        })?;
        Ok(())
    }
}

fn add_rotations(map: &mut BTreeMap<i64, usize>, rots: &[i64], level: usize, slots: usize) {
    for &r in rots {
        let r = r.rem_euclid(slots as i64);
        if r != 0 {
            let e = map.entry(r).or_insert(level);
            *e = (*e).max(level);
        }
    }
}

/// `(rows of diag(gamma) W[:, cols] * k, beta W[:, cols] + b[cols])`: a LayerNorm's affine part
/// folded into the next linear map, whose input arrives divided by `k`.
fn fold_norm(
    d: &Dense,
    ln: &LayerNormParams,
    cols: std::ops::Range<usize>,
    k: f64,
) -> Result<(Vec<Vec<f64>>, Vec<f64>)> {
    if cols.end > d.cols || ln.gamma.len() != d.rows || ln.beta.len() != d.rows {
        return Err(EncryptedError::Shape(format!(
            "LayerNorm of {} folded into a {}x{} weight (columns {cols:?})",
            ln.gamma.len(),
            d.rows,
            d.cols
        )));
    }
    let rows: Vec<&[f64]> = d.weight.chunks_exact(d.cols.max(1)).collect();
    let w = rows
        .iter()
        .zip(&ln.gamma)
        .map(|(r, g)| r[cols.clone()].iter().map(|w| w * g * k).collect())
        .collect();
    let bias = cols
        .clone()
        .map(|j| d.bias[j] + rows.iter().zip(&ln.beta).map(|(r, b)| r[j] * b).sum::<f64>())
        .collect();
    Ok((w, bias))
}

/// The site's polynomial as one Chebyshev series on `[a, b]` (a Newton site without steps is its
/// initial guess).
fn site_series<'a>(model: &'a ReferenceModel, site: &str) -> Result<&'a crate::model::sites::Chebyshev> {
    let poly = model
        .polys
        .as_ref()
        .and_then(|p| p.get(site))
        .ok_or_else(|| EncryptedError::Unsupported(format!("site {site} has no fitted polynomial")))?;
    match poly {
        SitePoly::Chebyshev(c) => Ok(c),
        SitePoly::Newton {
            initial, steps: 0, ..
        } => Ok(initial),
        SitePoly::Newton { steps, .. } => Err(EncryptedError::Unsupported(format!(
            "site {site}: {steps} Newton steps (Newton iterations on ciphertexts are not implemented; \
             fit the inverse square root with a single polynomial)"
        ))),
        SitePoly::CompositeRelu { .. } => Err(EncryptedError::Unsupported(format!(
            "site {site}: composite polynomials are not implemented"
        ))),
    }
}

/// The series of `c` on `[-1, 1]`, coefficients times `factor`, as `(plan, alpha, beta, value at u)`
/// with `u = alpha x + beta`.
fn unit_plan(
    c: &crate::model::sites::Chebyshev,
    factor: f64,
    site: &str,
) -> Result<(EvalPlan, f64, f64, ChebyshevPoly)> {
    let (alpha, beta) = c.unit_map();
    if !(alpha.is_finite() && beta.is_finite() && alpha > 0.0) {
        return Err(EncryptedError::Unsupported(format!(
            "site {site}: degenerate interval [{}, {}]",
            c.a, c.b
        )));
    }
    let unit = ChebyshevPoly::new(
        c.coeffs.iter().map(|v| v * factor).collect(),
        Interval::new(-1.0, 1.0)?,
    )?;
    Ok((EvalPlan::new(&unit)?, alpha, beta, unit))
}

impl Norm {
    /// Levels the LayerNorm with site `{prefix}.var` consumes.
    fn levels(model: &ReferenceModel, prefix: &str) -> Result<usize> {
        let site = format!("{prefix}.var");
        let c = site_series(model, &site)?;
        Ok(3 + unit_plan(c, 1.0, &site)?.0.depth())
    }

    /// Prepares the LayerNorm with site `{prefix}.var` for inputs at `level`, its output divided by
    /// `k_out`.
    #[allow(clippy::too_many_arguments)]
    fn new(
        params: &Arc<Parameters>,
        encoder: &CkksEncoder,
        model: &ReferenceModel,
        layout: RowMajor,
        prefix: &str,
        level: usize,
        k_out: f64,
        rotations: &mut BTreeMap<i64, usize>,
    ) -> Result<Self> {
        let site = format!("{prefix}.var");
        let c = site_series(model, &site)?;
        let depth = unit_plan(c, 1.0, &site)?.0.depth();
        if level < 3 + depth {
            return Err(EncryptedError::Levels {
                needed: 3 + depth,
                available: level,
            });
        }
        let d = layout.cols as f64;
        let (alpha, beta) = c.unit_map();
        let delta = params.default_scale();
        let (q_l, q_l1) = (prime(params, level)?, prime(params, level - 1)?);
        let mean = RowSums::new(params, encoder, layout, level, true, 1.0 / d)?;
        let mean_scaled = RowSums::new(params, encoder, layout, level, false, alpha.sqrt() / d)?;
        // The squares come at Delta^2 / q_l; their sums are read at Delta^2 / q_{l-1} (the scale of
        // mean^2), so they are multiplied by q_l / q_{l-1} first.
        let squares = RowSums::new(params, encoder, layout, level - 1, false, alpha / d * q_l / q_l1)?;
        let u_scale = delta * delta / q_l1;
        let mut shift = vec![vec![0.0; 1]; layout.rows];
        for row in shift.iter_mut() {
            row[0] = alpha * LN_EPS + beta;
        }
        let col0 = RowMajor { cols: 1, ..layout };
        let packed = col0.pack(&shift)?;
        let [vals] = packed.as_slice() else {
            return Err(EncryptedError::Shape(
                "LayerNorm input spans several ciphertexts".into(),
            ));
        };
        let shift = encoder.encode(vals, level - 2, u_scale)?;
        // The product (x - mean) * inv is rescaled by q_{inv level} and read at Delta.
        let inv_level = level - 2 - depth;
        let factor = prime(params, inv_level)? / u_scale / k_out;
        let (inv, _, _, unit) = unit_plan(c, factor, &site)?;
        let spread = SpreadColumn::new(col0, layout.cols)?;
        add_rotations(rotations, &mean.rotations_needed(), level, layout.slots);
        add_rotations(rotations, &mean_scaled.rotations_needed(), level, layout.slots);
        add_rotations(rotations, &squares.rotations_needed(), level - 1, layout.slots);
        add_rotations(rotations, &spread.rotations_needed(), level - 1, layout.slots);
        Ok(Self {
            level,
            mean,
            mean_scaled,
            squares,
            shift,
            inv,
            inv_at_zero: unit.eval_unit(0.0),
            spread,
        })
    }

    /// The evaluator's counts for one [`Norm::apply`] (one tile), by level.
    fn op_counts(&self) -> Result<LeveledOpCounts> {
        let l = self.level;
        let inv_level = l - 2 - self.inv.depth();
        let mut c = LeveledOpCounts::default();
        c.add(
            l,
            self.mean.op_counts() + self.mean_scaled.op_counts() + OpCounts::PRODUCT_RESCALED,
        );
        c.add(l - 1, self.squares.op_counts() + OpCounts::PRODUCT_RESCALED);
        c.add(l - 2, plan_op_counts(&self.inv)?);
        c.add(inv_level, self.spread.op_counts() + OpCounts::PRODUCT_RESCALED);
        Ok(c)
    }

    /// The normalised rows (divided by `k_out`), `depth()` levels below `self.level`, at the default
    /// scale.
    fn apply(
        &self,
        params: &Arc<Parameters>,
        eval: &Evaluator,
        x: &EncryptedMatrix,
    ) -> Result<EncryptedMatrix> {
        let x = drop_matrix(eval, x, self.level)?;
        let mean = self.mean.apply(eval, &x)?;
        let ms = self.mean_scaled.apply(eval, &x)?;
        let sq = EncryptedMatrix {
            layout: x.layout,
            tiles: x
                .tiles
                .iter()
                .map(|t| eval.rescale(&eval.mul_relin(t, t)?))
                .collect::<std::result::Result<Vec<_>, _>>()?,
        };
        let e2 = self.squares.apply(eval, &sq)?;
        let mut arith = CkksArith::new(params, eval);
        let inv_level = self.level - 2 - self.inv.depth();
        let mut col0 = Vec::with_capacity(x.tiles.len());
        for (e2, ms) in e2.tiles.iter().zip(&ms.tiles) {
            let ms2 = eval.rescale(&eval.mul_relin(ms, ms)?)?;
            let e2 = eval.with_scale(e2, ms2.scale())?;
            let u = eval.add_plain(&eval.sub(&e2, &ms2)?, &self.shift)?;
            let p = self.inv.evaluate(&mut arith, &u)?;
            check_scale(&p, u.scale(), inv_level, "the inverse square root")?;
            col0.push(eval.add_const(&p, -self.inv_at_zero)?);
        }
        let inv = self.spread.apply(
            eval,
            &EncryptedMatrix {
                layout: RowMajor { cols: 1, ..x.layout },
                tiles: col0,
            },
        )?;
        let tiles = x
            .tiles
            .iter()
            .zip(&mean.tiles)
            .zip(&inv.tiles)
            .map(|((x, m), inv)| {
                let c = eval.sub(&eval.drop_to_level(x, self.level - 1)?, m)?;
                let inv = eval.add_const(inv, self.inv_at_zero)?;
                let h = eval.rescale(&eval.mul_relin(&eval.drop_to_level(&c, inv_level)?, &inv)?)?;
                Ok(eval.with_scale(&h, params.default_scale())?)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(EncryptedMatrix {
            layout: x.layout,
            tiles,
        })
    }
}

fn check_scale(ct: &Ciphertext, scale: f64, level: usize, what: &str) -> Result<()> {
    let rel = (ct.scale() / scale - 1.0).abs();
    if ct.level() != level || rel.is_nan() || rel > SCALE_TOLERANCE {
        return Err(EncryptedError::Input(format!(
            "{what}: level {} and scale 2^{:.4}, planned {level} and 2^{:.4}",
            ct.level(),
            ct.scale().log2(),
            scale.log2()
        )));
    }
    Ok(())
}

fn drop_matrix(eval: &Evaluator, x: &EncryptedMatrix, level: usize) -> Result<EncryptedMatrix> {
    Ok(EncryptedMatrix {
        layout: x.layout,
        tiles: x
            .tiles
            .iter()
            .map(|t| eval.drop_to_level(t, level))
            .collect::<std::result::Result<Vec<_>, _>>()?,
    })
}

fn check_supported(model: &ReferenceModel) -> Result<()> {
    if !matches!(model.config.attention, AttentionKind::Pointwise { .. }) {
        return Err(EncryptedError::Unsupported(
            "only pointwise attention sigma(s) is implemented".into(),
        ));
    }
    if !matches!(model.embedding, Embedding::Tokens { .. }) {
        return Err(EncryptedError::Unsupported("not a language model".into()));
    }
    if model.norm.is_none()
        || model
            .blocks
            .iter()
            .any(|b| b.norm1.is_none() || b.norm2.is_none())
    {
        return Err(EncryptedError::Unsupported(
            "the encrypted LM expects LayerNorms (BatchNorm language models are not implemented)".into(),
        ));
    }
    Ok(())
}

impl EncryptedLm {
    /// The row stride of the model's layouts: the widest of the width and the MLP hidden width.
    fn stride_of(model: &ReferenceModel) -> usize {
        model.config.dim.max(model.config.mlp_hidden).next_power_of_two()
    }

    /// The slots a batch of `batch` windows is packed in: the power of two above `tokens * batch *
    /// stride`. A batch that fills fewer than all slots is bootstrapped on that many (sparse
    /// packing: fewer DFT rotations, a short trace), so the bootstrapper must be made with
    /// [`ckks::circuits::bootstrap::BootstrapConfig::slots`] set to this.
    pub fn slots_needed(model: &ReferenceModel, batch: usize) -> usize {
        (model.config.tokens() * batch.max(1) * Self::stride_of(model))
            .next_power_of_two()
            .max(2)
    }

    /// The most windows one ciphertext of `params` holds.
    ///
    /// # Errors
    /// [`EncryptedError::Unsupported`] for a model the encrypted forward does not implement.
    pub fn max_batch(model: &ReferenceModel, params: &Parameters) -> Result<usize> {
        check_supported(model)?;
        Ok(params.max_slots() / (model.config.tokens() * Self::stride_of(model)))
    }

    /// Prepares `model` for inputs encrypted at `start_level` and the default scale, bootstrapping
    /// with `bootstrapper` where levels run out (`None`: the whole forward must fit the levels). The
    /// plaintext reference is run on `calibration` (token windows, e.g. from the training split) to
    /// scale each bootstrapped value into range.
    ///
    /// # Errors
    /// [`EncryptedError::Unsupported`] for a model the encrypted forward does not implement,
    /// [`EncryptedError::Shape`] for a batch that does not fit, [`EncryptedError::Levels`] when a
    /// segment needs more levels than bootstrapping gives (or than there are, without it),
    /// [`EncryptedError::Input`] when a bootstrap is needed and no calibration window was given;
    /// encoding errors.
    pub fn new(
        model: &ReferenceModel,
        params: &Arc<Parameters>,
        encoder: &CkksEncoder,
        bootstrapper: Option<Arc<Bootstrapper>>,
        start_level: usize,
        options: LmOptions,
        calibration: &[Vec<u32>],
    ) -> Result<Self> {
        check_supported(model)?;
        let LmOptions {
            weights,
            batch,
            bootstrap_margin,
        } = options;
        let max_batch = Self::max_batch(model, params)?;
        if batch == 0 || batch > max_batch {
            return Err(EncryptedError::Shape(format!(
                "a batch of {batch} windows: one ciphertext holds 1 to {max_batch}"
            )));
        }
        if !(bootstrap_margin.is_finite() && bootstrap_margin >= 1.0) {
            return Err(EncryptedError::Input(format!(
                "bootstrap margin {bootstrap_margin}: expected a finite value of at least 1"
            )));
        }
        if start_level > params.max_level() {
            return Err(EncryptedError::Ckks(ckks::Error::LevelOutOfRange {
                level: start_level,
                max: params.max_level(),
            }));
        }
        let slots = Self::slots_needed(model, batch);
        if let Some(b) = &bootstrapper {
            if b.slots() != slots {
                return Err(EncryptedError::Shape(format!(
                    "a bootstrapper for {} slots; a batch of {batch} windows is packed in {slots} \
                     (see EncryptedLm::slots_needed)",
                    b.slots()
                )));
            }
        }
        let cfg = &model.config;
        let TaskConfig::Language { vocab, .. } = cfg.task else {
            return Err(EncryptedError::Unsupported("not a language model".into()));
        };
        let Embedding::Tokens { table, .. } = &model.embedding else {
            return Err(EncryptedError::Unsupported("not a token embedding".into()));
        };
        let (d, hidden, tokens) = (cfg.dim, cfg.mlp_hidden, cfg.tokens());
        let rows = tokens * batch;
        let stride = Self::stride_of(model);
        let layout = RowMajor::new(rows, d, Some(stride), slots)?;
        let (sqrt_dh, factor, placement) = match cfg.attention {
            AttentionKind::Pointwise {
                scaling, placement, ..
            } => ((cfg.head_dim() as f64).sqrt(), scaling.factor(tokens), placement),
            _ => return Err(EncryptedError::Unsupported("attention is not pointwise".into())),
        };
        let before = matches!(placement, ScalePlacement::Before | ScalePlacement::Both);
        let after = matches!(placement, ScalePlacement::After | ScalePlacement::Both);

        // Largest magnitudes of the reference at every traced point, over the calibration windows.
        let mut bounds: BTreeMap<String, f64> = BTreeMap::new();
        for ids in calibration {
            let trace = model
                .trace_tokens(ids)
                .map_err(|e| EncryptedError::Input(format!("calibration window: {e}")))?;
            for (name, m) in trace {
                let mx = m.iter().flatten().fold(0.0f64, |a, v| a.max(v.abs()));
                let e = bounds.entry(name).or_insert(0.0);
                *e = e.max(mx);
            }
        }
        let mut plan = Planner {
            level: start_level,
            boot_out: bootstrapper.as_ref().map(|b| b.output_level()),
            bootstraps: 0,
            bounds: &bounds,
            margin: bootstrap_margin,
            steps: Vec::new(),
            counts: BTreeMap::new(),
            boot_inputs: Vec::new(),
            boot_counts: match &bootstrapper {
                Some(b) => b.op_counts()?,
                None => LeveledOpCounts::default(),
            },
        };
        let mut rotations = BTreeMap::new();
        let delta = params.default_scale();
        let affine = |w: &[Vec<f64>], b: &[f64], level: usize, input: RowMajor| {
            Affine::new(
                params,
                encoder,
                input,
                w,
                &bias_rows(b, 1.0, 0.0, rows, rows),
                level,
                weights,
            )
        };

        let mut blocks = Vec::with_capacity(model.blocks.len());
        let mut x_point = "embed".to_string();
        for (i, blk) in model.blocks.iter().enumerate() {
            let (Some(ln1), Some(ln2)) = (&blk.norm1, &blk.norm2) else {
                return Err(EncryptedError::Unsupported("block without LayerNorms".into()));
            };
            // LayerNorm 1.
            let p1 = format!("blocks.{i}.norm1");
            let boot_x1 = plan.need(Norm::levels(model, &p1)?, &x_point, true)?;
            let norm_level = plan.level;
            plan.spend(Norm::levels(model, &p1)?, &format!("{p1} (LayerNorm)"))?;
            // The attention core: Q K V, scores (2), sigma, the product with V.
            let s_site = format!("blocks.{i}.attn.sigma");
            let sigma_depth = unit_plan(site_series(model, &s_site)?, 1.0, &s_site)?.0.depth();
            let boot_h1 = plan.need(4 + sigma_depth, &p1, false)?;
            let k_h1 = boot_h1.unwrap_or(1.0);
            let norm1 = Norm::new(
                params,
                encoder,
                model,
                layout,
                &p1,
                norm_level,
                k_h1,
                &mut rotations,
            )?;
            let h_level = plan.level;
            let qkv = |part: usize| -> Result<Affine> {
                let (w, b) = fold_norm(&blk.qkv, ln1, part * d..(part + 1) * d, k_h1)?;
                affine(&w, &b, h_level, layout)
            };
            plan.count_all(WorkKind::Normalization, &norm1.op_counts()?);
            let (q, k, v) = (qkv(0)?, qkv(1)?, qkv(2)?);
            for a in [&q, &k, &v] {
                add_rotations(&mut rotations, &a.rotations_needed(), h_level, slots);
                plan.count(WorkKind::PlainMatmul, h_level, a.counts);
            }
            let att_level = h_level - 1;
            let (sigma, alpha_s, beta_s, sigma_unit) = unit_plan(site_series(model, &s_site)?, 1.0, &s_site)?;
            let score_scale = alpha_s / sqrt_dh / if before { factor } else { 1.0 };
            let attention = EncryptedAttention::new_batched(
                params,
                encoder,
                layout,
                cfg.heads,
                true,
                score_scale,
                att_level,
                batch,
            )?;
            add_rotations(&mut rotations, &attention.rotations_needed(), att_level, slots);
            plan.spend(4 + sigma_depth, &format!("blocks.{i}: Q K V, scores, sigma, x V"))?;
            let sigma_level = att_level - 2 - sigma_depth;
            // Scores; V rotated and masked; per offset sigma, the spread in heads, the product with
            // V; the sum's rescale.
            let offsets = attention.offsets().len();
            plan.count_all(WorkKind::CipherMatmul, &attention.scores_op_counts());
            plan.count(
                WorkKind::CipherMatmul,
                att_level,
                attention.rotated_values_op_counts()
                    + OpCounts {
                        pt_mults: offsets,
                        rescales: offsets,
                        ..OpCounts::default()
                    },
            );
            plan.count(
                WorkKind::Activations,
                att_level - 2,
                plan_op_counts(&sigma)? * offsets,
            );
            plan.count(
                WorkKind::CipherMatmul,
                sigma_level,
                (attention.replicate_op_counts()
                    + OpCounts {
                        rescales: 0,
                        ..OpCounts::PRODUCT_RESCALED
                    })
                    * offsets
                    + OpCounts::RESCALE,
            );
            // The heads' output is bootstrapped (divided by K_o) unless the projection leaves the
            // residual stream a level for its own bootstrap's scaling.
            let boot_o = plan.need(2, &format!("blocks.{i}.heads"), false)?;
            let k_o = boot_o.unwrap_or(1.0);
            let score_ct_scale = delta * delta / prime(params, att_level)?;
            let mask_scale = prime(params, att_level)? * prime(params, sigma_level)? / score_ct_scale;
            let weight = (if after { 1.0 / factor } else { 1.0 }) / k_o;
            let value_masks = attention
                .offsets()
                .iter()
                .map(|&delta_t| {
                    let m: Vec<Vec<f64>> = (0..rows)
                        .map(|r| {
                            let partner = (r / batch) as i64 + delta_t;
                            let on = partner >= 0 && (partner as usize) < tokens;
                            vec![if on { weight } else { 0.0 }; d]
                        })
                        .collect();
                    let packed = layout.pack(&m)?;
                    let [vals] = packed.as_slice() else {
                        return Err(EncryptedError::Shape("mask spans several ciphertexts".into()));
                    };
                    Ok(encoder.encode(vals, att_level, mask_scale)?)
                })
                .collect::<Result<Vec<_>>>()?;
            let proj = affine(
                &weight_rows(&blk.proj, 0..d, k_o)?,
                &blk.proj.bias,
                plan.level,
                layout,
            )?;
            add_rotations(&mut rotations, &proj.rotations_needed(), plan.level, slots);
            plan.count(WorkKind::PlainMatmul, plan.level, proj.counts);
            plan.spend(1, &format!("blocks.{i}.attn.proj"))?;

            // LayerNorm 2 and the MLP: fc1, act, fc2.
            let p2 = format!("blocks.{i}.norm2");
            let boot_x2 = plan.need(Norm::levels(model, &p2)?, &format!("blocks.{i}.attn"), true)?;
            let norm2_level = plan.level;
            plan.spend(Norm::levels(model, &p2)?, &format!("{p2} (LayerNorm)"))?;
            let a_site = format!("blocks.{i}.mlp.act");
            let (act, alpha_a, beta_a, _) = unit_plan(site_series(model, &a_site)?, 1.0, &a_site)?;
            let boot_h2 = plan.need(3 + act.depth(), &p2, false)?;
            let k_h2 = boot_h2.unwrap_or(1.0);
            let norm2 = Norm::new(
                params,
                encoder,
                model,
                layout,
                &p2,
                norm2_level,
                k_h2,
                &mut rotations,
            )?;
            let (w1, b1) = fold_norm(&blk.fc1, ln2, 0..hidden, k_h2 * alpha_a)?;
            let b1: Vec<f64> = b1.iter().map(|b| b * alpha_a + beta_a).collect();
            plan.count_all(WorkKind::Normalization, &norm2.op_counts()?);
            let fc1 = affine(&w1, &b1, plan.level, layout)?;
            add_rotations(&mut rotations, &fc1.rotations_needed(), plan.level, slots);
            plan.count(WorkKind::PlainMatmul, plan.level, fc1.counts);
            plan.count(
                WorkKind::Activations,
                plan.level - 1,
                plan_op_counts(&act)? * fc1.output_layout().tiles(),
            );
            plan.spend(1 + act.depth(), &format!("blocks.{i}: fc1, act"))?;
            let fc2 = affine(
                &weight_rows(&blk.fc2, 0..d, 1.0)?,
                &blk.fc2.bias,
                plan.level,
                fc1.output_layout(),
            )?;
            add_rotations(&mut rotations, &fc2.rotations_needed(), plan.level, slots);
            plan.count(WorkKind::PlainMatmul, plan.level, fc2.counts);
            plan.spend(1, &format!("blocks.{i}.mlp.fc2"))?;
            x_point = format!("blocks.{i}.mlp");
            blocks.push(LmBlock {
                boot_x1,
                norm1,
                boot_h1,
                q,
                k,
                v,
                attention,
                sigma,
                sigma_shift: beta_s,
                sigma_at_zero: sigma_unit.eval_unit(beta_s),
                value_masks,
                boot_o,
                proj,
                boot_x2,
                norm2,
                boot_h2,
                fc1,
                act,
                fc2,
            });
        }

        // Final LayerNorm and the head, `stride` vocabulary columns per ciphertext.
        let ln = model
            .norm
            .as_ref()
            .ok_or_else(|| EncryptedError::Unsupported("no final LayerNorm".into()))?;
        let boot_final = plan.need(Norm::levels(model, "norm")?, &x_point, true)?;
        let norm_level = plan.level;
        plan.spend(Norm::levels(model, "norm")?, "norm (LayerNorm)")?;
        let boot_hf = plan.need(1, "norm", false)?;
        let k_f = boot_hf.unwrap_or(1.0);
        let norm = Norm::new(
            params,
            encoder,
            model,
            layout,
            "norm",
            norm_level,
            k_f,
            &mut rotations,
        )?;
        let head = (0..vocab.div_ceil(stride))
            .map(|c| {
                let cols = c * stride..((c + 1) * stride).min(vocab);
                let (w, b) = fold_norm(&model.head, ln, cols, k_f)?;
                let a = affine(&w, &b, plan.level, layout)?;
                add_rotations(&mut rotations, &a.rotations_needed(), plan.level, slots);
                Ok(a)
            })
            .collect::<Result<Vec<_>>>()?;
        plan.count_all(WorkKind::Normalization, &norm.op_counts()?);
        for a in &head {
            plan.count(WorkKind::PlainMatmul, plan.level, a.counts);
        }
        plan.spend(1, "head")?;

        Ok(Self {
            params: params.clone(),
            bootstrapper,
            layout,
            start_level,
            batch,
            tokens,
            vocab,
            embedding: TokenEmbedding {
                vocab,
                dim: d,
                tokens,
                table: table.clone(),
                pos: model.pos.clone(),
            },
            blocks,
            boot_final,
            norm,
            boot_hf,
            head,
            bootstraps: plan.bootstraps,
            predicted: plan.counts.values().fold(LeveledOpCounts::default(), |mut a, c| {
                a.add_all(c, 1);
                a
            }),
            predicted_by_kind: plan.counts,
            bootstrap_inputs: plan.boot_inputs,
            output_level: plan.level,
            plan: plan.steps,
            rotations,
            weights,
            encoder: match weights {
                WeightEncoding::Once => None,
                WeightEncoding::PerForward => Some(CkksEncoder::new(params)?),
            },
        })
    }

    /// The layout of the encrypted token matrix (`tokens * batch` rows of `dim` columns).
    pub fn input_layout(&self) -> RowMajor {
        self.layout
    }

    /// The level inputs are encrypted at.
    pub fn start_level(&self) -> usize {
        self.start_level
    }

    /// The level of the encrypted logits.
    pub fn output_level(&self) -> usize {
        self.output_level
    }

    /// Bootstraps one forward performs, as planned.
    pub fn bootstraps_planned(&self) -> usize {
        self.bootstraps
    }

    /// The operations one forward performs, by the level they act at, predicted before running
    /// from the kernels' cost formulas, dry runs of the polynomials on the level/scale simulator and
    /// the bootstrapper's counts: a forward on an [`Evaluator`] performs exactly
    /// `predicted_op_counts().total()` ([`Evaluator::op_counts`]).
    pub fn predicted_op_counts(&self) -> &LeveledOpCounts {
        &self.predicted
    }

    /// Each bootstrap's input, in forward order: the point of [`ReferenceModel::trace_tokens`] whose
    /// values are bootstrapped and the power of two `K` they are divided by first.
    pub fn bootstrap_inputs(&self) -> &[(String, f64)] {
        &self.bootstrap_inputs
    }

    /// How close `windows` bring each bootstrap's input to its bound, in plaintext: the largest
    /// `|value| / K` the reference reaches at each [`EncryptedLm::bootstrap_inputs`] point (the
    /// bootstrapping circuit is accurate to its stated precision up to about 1; the calibration
    /// windows stay under `1 / margin`; NaN where the reference itself is not finite, as when a
    /// polynomial site leaves its fitted interval). A server can run it on held-out text before serving; values
    /// above 1 lose precision, far above it the result is wrong, and nothing on the ciphertexts can
    /// tell (the check needs the plaintext).
    ///
    /// # Errors
    /// [`EncryptedError::Input`] for a window the reference refuses.
    pub fn bootstrap_headroom(
        &self,
        model: &ReferenceModel,
        windows: &[Vec<u32>],
    ) -> Result<Vec<(String, f64)>> {
        let mut worst = vec![0.0f64; self.bootstrap_inputs.len()];
        for ids in windows {
            let trace = model
                .trace_tokens(ids)
                .map_err(|e| EncryptedError::Input(format!("window: {e}")))?;
            for ((point, k), w) in self.bootstrap_inputs.iter().zip(worst.iter_mut()) {
                if let Some((_, m)) = trace.iter().find(|(name, _)| name == point) {
                    // NaN stays NaN (f64::max would drop it): a non-finite reference is reported.
                    let mx = m.iter().flatten().fold(0.0f64, |a, v| {
                        if a.is_nan() || !v.is_finite() {
                            f64::NAN
                        } else {
                            a.max(v.abs())
                        }
                    });
                    *w = if w.is_nan() || mx.is_nan() {
                        f64::NAN
                    } else {
                        w.max(mx / k)
                    };
                }
            }
        }
        Ok(self
            .bootstrap_inputs
            .iter()
            .map(|(p, _)| p.clone())
            .zip(worst)
            .collect())
    }

    /// [`EncryptedLm::predicted_op_counts`] by kind of work (the kinds of [`ForwardProfile`] that
    /// perform counted operations), for a predicted breakdown next to the measured one.
    pub fn predicted_op_counts_by_kind(&self) -> &BTreeMap<WorkKind, LeveledOpCounts> {
        &self.predicted_by_kind
    }

    /// The level plan, one line per segment and per bootstrap in forward order (what the planner
    /// decided, to print before running).
    pub fn plan(&self) -> &[String] {
        &self.plan
    }

    /// Windows per ciphertext.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// How the weights of the linear layers are held.
    pub fn weight_encoding(&self) -> WeightEncoding {
        self.weights
    }

    /// The rotations of the model (normalised to `1..slots`) with the highest level each is used at.
    pub fn rotations_needed(&self) -> &BTreeMap<i64, usize> {
        &self.rotations
    }

    /// Every Galois element the forward uses with the level its key must reach: the model's
    /// rotations at their levels, the bootstrapping circuit's at the top level.
    pub fn galois_keys_needed(&self) -> Vec<(u64, usize)> {
        let n = self.params.n();
        let mut g: BTreeMap<u64, usize> = BTreeMap::new();
        for (&r, &l) in &self.rotations {
            let e = g.entry(galois_element_for_rotation(r, n)).or_insert(l);
            *e = (*e).max(l);
        }
        if let Some(b) = &self.bootstrapper {
            for e in b.galois_elements() {
                g.insert(e, self.params.max_level());
            }
        }
        g.into_iter().collect()
    }

    /// Client side: the token matrix of up to [`EncryptedLm::batch`] windows
    /// ([`TokenEmbedding::matrix`]).
    ///
    /// # Errors
    /// As [`TokenEmbedding::matrix`].
    pub fn token_matrix(&self, windows: &[Vec<u32>]) -> Result<Vec<Vec<f64>>> {
        self.embedding.matrix(windows, self.batch)
    }

    /// The client's part of the model (token table and positions).
    pub fn embedding(&self) -> &TokenEmbedding {
        &self.embedding
    }

    /// The vocabulary size.
    pub fn vocab(&self) -> usize {
        self.vocab
    }

    /// Tokens per window.
    pub fn tokens(&self) -> usize {
        self.tokens
    }

    /// The layouts of the logit matrices [`EncryptedLm::forward`] returns, one per `stride` columns
    /// of the vocabulary.
    pub fn output_layouts(&self) -> Vec<RowMajor> {
        self.head.iter().map(Affine::output_layout).collect()
    }

    /// Client side: embeds and encrypts up to [`EncryptedLm::batch`] windows at the start level.
    ///
    /// # Errors
    /// As [`EncryptedLm::token_matrix`]; encoding and encryption errors.
    pub fn encrypt_windows(
        &self,
        encoder: &CkksEncoder,
        encryptor: &CkksEncryptor,
        windows: &[Vec<u32>],
        rng: &mut impl CryptoRng,
    ) -> Result<EncryptedMatrix> {
        let m = self.token_matrix(windows)?;
        Ok(EncryptedMatrix::encrypt(
            &self.params,
            encoder,
            encryptor,
            self.layout,
            &m,
            self.start_level,
            rng,
        )?)
    }

    /// Client side: the logits `[window][position][vocab]` of every window of the batch.
    ///
    /// # Errors
    /// [`EncryptedError::Input`] for another number of matrices or layouts; decryption errors.
    pub fn decrypt_logits(
        &self,
        encoder: &CkksEncoder,
        sk: &SecretKey,
        logits: &[EncryptedMatrix],
    ) -> Result<Vec<Vec<Vec<f64>>>> {
        self.decrypt_with(encoder, logits, |ct| Ok(decrypt_ckks(sk, ct)?))
    }

    /// As [`EncryptedLm::decrypt_logits`] with noise flooding of `flood_bits` bits (see
    /// [`ckks::scheme::evaluator::decrypt_ckks_flooded`]): for logits that will be shared.
    ///
    /// # Errors
    /// As [`EncryptedLm::decrypt_logits`]; a `flood_bits` the decryption refuses.
    pub fn decrypt_logits_flooded(
        &self,
        encoder: &CkksEncoder,
        sk: &SecretKey,
        logits: &[EncryptedMatrix],
        flood_bits: u32,
        rng: &mut impl CryptoRng,
    ) -> Result<Vec<Vec<Vec<f64>>>> {
        self.decrypt_with(encoder, logits, |ct| {
            Ok(decrypt_ckks_flooded(sk, ct, flood_bits, rng)?)
        })
    }

    fn decrypt_with(
        &self,
        encoder: &CkksEncoder,
        logits: &[EncryptedMatrix],
        mut decrypt: impl FnMut(&Ciphertext) -> Result<Plaintext>,
    ) -> Result<Vec<Vec<Vec<f64>>>> {
        if logits.len() != self.head.len() {
            return Err(EncryptedError::Input(format!(
                "{} logit matrices, expected {}",
                logits.len(),
                self.head.len()
            )));
        }
        let mut out = vec![vec![Vec::with_capacity(self.vocab); self.tokens]; self.batch];
        for (m, a) in logits.iter().zip(&self.head) {
            if m.layout != a.output_layout() {
                return Err(EncryptedError::Input(format!(
                    "logits in layout {:?}, expected {:?}",
                    m.layout,
                    a.output_layout()
                )));
            }
            let decoded = m
                .tiles
                .iter()
                .map(|ct| Ok(encoder.decode(&decrypt(ct)?)?))
                .collect::<Result<Vec<_>>>()?;
            for (r, row) in m.layout.unpack(&decoded)?.into_iter().enumerate() {
                out[r % self.batch][r / self.batch].extend(row);
            }
        }
        Ok(out)
    }

    /// Server side: the encrypted logits of an encrypted token matrix.
    ///
    /// # Errors
    /// [`EncryptedError::Input`] for an input of another layout, level or scale; evaluation errors
    /// (a missing key among them).
    pub fn forward(&self, eval: &Evaluator, input: &EncryptedMatrix) -> Result<LmOutput> {
        self.forward_traced(eval, input, |_, _, _| {})
    }

    /// As [`EncryptedLm::forward`], handing `tap` the values at the points of
    /// [`ReferenceModel::trace_tokens`] (`embed`, `blocks.{i}.norm1`, `blocks.{i}.heads`,
    /// `blocks.{i}.attn`, `blocks.{i}.norm2`, `blocks.{i}.mlp`, `norm`) with the factor that brings
    /// the decrypted values to the reference's (the bootstrapping scale).
    ///
    /// # Errors
    /// As [`EncryptedLm::forward`].
    pub fn forward_traced(
        &self,
        eval: &Evaluator,
        input: &EncryptedMatrix,
        mut tap: impl FnMut(&str, &EncryptedMatrix, f64),
    ) -> Result<LmOutput> {
        if input.layout != self.layout || input.tiles.len() != 1 {
            return Err(EncryptedError::Input(format!(
                "layout {:?} in {} ciphertexts, expected {:?} in one",
                input.layout,
                input.tiles.len(),
                self.layout
            )));
        }
        check_scale(
            &input.tiles[0],
            self.params.default_scale(),
            self.start_level,
            "input",
        )
        .map_err(|e| EncryptedError::Input(format!("encrypted tokens: {e}")))?;
        let mut prof = ForwardProfile::default();
        let mut boots = 0usize;
        let mut x = input.clone();
        tap("embed", &x, 1.0);
        for (i, blk) in self.blocks.iter().enumerate() {
            x = self.block(eval, blk, &x, i, &mut tap, &mut prof, &mut boots)?;
        }
        if let Some(k) = self.boot_final {
            x = self.boot_scaled(eval, &x, k, &mut prof, &mut boots)?;
        }
        let mut h = timed(&mut prof.normalization, || {
            self.norm.apply(&self.params, eval, &x)
        })?;
        tap("norm", &h, self.boot_hf.unwrap_or(1.0));
        if self.boot_hf.is_some() {
            h = self.boot(eval, &h, &mut prof, &mut boots)?;
        }
        let logits = self
            .head
            .iter()
            .map(|a| self.affine(a, eval, &h, &mut prof))
            .collect::<Result<Vec<_>>>()?;
        Ok(LmOutput {
            logits,
            profile: prof,
            bootstraps: boots,
        })
    }

    fn affine(
        &self,
        a: &Affine,
        eval: &Evaluator,
        x: &EncryptedMatrix,
        prof: &mut ForwardProfile,
    ) -> Result<EncryptedMatrix> {
        a.apply(&self.params, self.encoder.as_ref(), eval, x, prof)
    }

    /// Bootstraps every tile of `x` (already divided by its `K`).
    fn boot(
        &self,
        eval: &Evaluator,
        x: &EncryptedMatrix,
        prof: &mut ForwardProfile,
        boots: &mut usize,
    ) -> Result<EncryptedMatrix> {
        let b = self
            .bootstrapper
            .as_ref()
            .ok_or_else(|| EncryptedError::Input("a bootstrap was planned without a bootstrapper".into()))?;
        let tiles = timed(&mut prof.bootstrap, || {
            x.tiles
                .iter()
                .map(|t| {
                    let out = b.bootstrap(eval, t)?;
                    check_scale(
                        &out,
                        self.params.default_scale(),
                        b.output_level(),
                        "bootstrapped value",
                    )?;
                    Ok(out)
                })
                .collect::<Result<Vec<_>>>()
        })?;
        *boots += 1;
        Ok(EncryptedMatrix {
            layout: x.layout,
            tiles,
        })
    }

    /// `x / k` (one level), bootstrapped, times `k` (exact).
    fn boot_scaled(
        &self,
        eval: &Evaluator,
        x: &EncryptedMatrix,
        k: f64,
        prof: &mut ForwardProfile,
        boots: &mut usize,
    ) -> Result<EncryptedMatrix> {
        let scaled = timed(&mut prof.bootstrap, || {
            x.tiles
                .iter()
                .map(|t| {
                    let q = prime(&self.params, t.level())?;
                    Ok(eval.rescale(&eval.mul_const(t, 1.0 / k, q)?)?)
                })
                .collect::<Result<Vec<_>>>()
        })?;
        let b = self.boot(
            eval,
            &EncryptedMatrix {
                layout: x.layout,
                tiles: scaled,
            },
            prof,
            boots,
        )?;
        Ok(EncryptedMatrix {
            layout: b.layout,
            tiles: b.tiles.iter().map(|t| eval.mul_int(t, k as i64)).collect(),
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn block(
        &self,
        eval: &Evaluator,
        blk: &LmBlock,
        x: &EncryptedMatrix,
        index: usize,
        tap: &mut impl FnMut(&str, &EncryptedMatrix, f64),
        prof: &mut ForwardProfile,
        boots: &mut usize,
    ) -> Result<EncryptedMatrix> {
        let mut x = x.clone();
        if let Some(k) = blk.boot_x1 {
            x = self.boot_scaled(eval, &x, k, prof, boots)?;
        }
        let mut h = timed(&mut prof.normalization, || {
            blk.norm1.apply(&self.params, eval, &x)
        })?;
        tap(&format!("blocks.{index}.norm1"), &h, blk.boot_h1.unwrap_or(1.0));
        if blk.boot_h1.is_some() {
            h = self.boot(eval, &h, prof, boots)?;
        }
        let (q, k, v) = (
            self.affine(&blk.q, eval, &h, prof)?,
            self.affine(&blk.k, eval, &h, prof)?,
            self.affine(&blk.v, eval, &h, prof)?,
        );
        drop(h);
        let scores = timed(&mut prof.cipher_matmul, || blk.attention.scores(eval, &q, &k))?;
        drop((q, k));
        // V rotated by each offset's rows and masked, at a level the scores' path does not need.
        let masked_values = timed(&mut prof.cipher_matmul, || {
            blk.attention
                .rotated_values(eval, &v)?
                .iter()
                .zip(&blk.value_masks)
                .map(|(r, m)| eval.rescale(&eval.mul_plain(r, m)?))
                .collect::<std::result::Result<Vec<_>, _>>()
        })?;
        drop(v);
        let mut arith = CkksArith::new(&self.params, eval);
        let mut acc: Option<Ciphertext> = None;
        for (s, vm) in scores.into_iter().zip(&masked_values) {
            let a = timed(&mut prof.activations, || -> Result<Ciphertext> {
                let u = if blk.sigma_shift != 0.0 {
                    eval.add_const(&s, blk.sigma_shift)?
                } else {
                    s
                };
                let a = blk.sigma.evaluate(&mut arith, &u)?;
                Ok(eval.add_const(&a, -blk.sigma_at_zero)?)
            })?;
            let term = timed(&mut prof.cipher_matmul, || -> Result<Ciphertext> {
                let b = eval.add_const(&blk.attention.replicate_in_heads(eval, &a)?, blk.sigma_at_zero)?;
                Ok(eval.mul_relin(&b, &eval.drop_to_level(vm, b.level())?)?)
            })?;
            acc = Some(match acc {
                None => term,
                Some(t) => eval.add(&t, &term)?,
            });
        }
        drop(masked_values);
        let acc = acc.ok_or_else(|| EncryptedError::Shape("no attention offsets".into()))?;
        let o = eval.rescale(&acc)?;
        let mut o = EncryptedMatrix {
            layout: self.layout,
            tiles: vec![eval.with_scale(&o, self.params.default_scale())?],
        };
        tap(&format!("blocks.{index}.heads"), &o, blk.boot_o.unwrap_or(1.0));
        if blk.boot_o.is_some() {
            o = self.boot(eval, &o, prof, boots)?;
        }
        let p = self.affine(&blk.proj, eval, &o, prof)?;
        let mut x = timed(&mut prof.other, || residual(eval, &x, &p))?;
        tap(&format!("blocks.{index}.attn"), &x, 1.0);
        if let Some(k) = blk.boot_x2 {
            x = self.boot_scaled(eval, &x, k, prof, boots)?;
        }
        let mut h = timed(&mut prof.normalization, || {
            blk.norm2.apply(&self.params, eval, &x)
        })?;
        tap(&format!("blocks.{index}.norm2"), &h, blk.boot_h2.unwrap_or(1.0));
        if blk.boot_h2.is_some() {
            h = self.boot(eval, &h, prof, boots)?;
        }
        let f = self.affine(&blk.fc1, eval, &h, prof)?;
        let f = timed(&mut prof.activations, || -> Result<EncryptedMatrix> {
            Ok(EncryptedMatrix {
                layout: f.layout,
                tiles: f
                    .tiles
                    .iter()
                    .map(|t| blk.act.evaluate(&mut arith, t))
                    .collect::<std::result::Result<Vec<_>, _>>()?,
            })
        })?;
        let f = self.affine(&blk.fc2, eval, &f, prof)?;
        let y = timed(&mut prof.other, || residual(eval, &x, &f))?;
        tap(&format!("blocks.{index}.mlp"), &y, 1.0);
        Ok(y)
    }
}

/// Replaces the fit of every inverse-square-root site of `polys` by one Chebyshev interpolant of
/// `degree` on the site's interval, with no Newton step (the form [`EncryptedLm`] evaluates; the
/// CPU LM's fits already have it). Returns the number of sites replaced.
///
/// # Errors
/// [`EncryptedError::Approximation`] for an interval the interpolation refuses.
pub fn single_polynomial_inverse_sqrt(polys: &mut crate::model::PolySet, degree: usize) -> Result<usize> {
    let mut n = 0;
    for site in polys.sites.values_mut() {
        if site.kind == crate::model::SiteKind::InvSqrt {
            let (a, b) = (site.interval.min, site.interval.max);
            let p = poly_approx::chebyshev::interpolate(|x| 1.0 / x.sqrt(), Interval::new(a, b)?, degree)?;
            site.poly = SitePoly::Newton {
                inverse_sqrt: true,
                initial: crate::model::sites::Chebyshev {
                    a,
                    b,
                    coeffs: p.coeffs().to_vec(),
                },
                steps: 0,
            };
            n += 1;
        }
    }
    Ok(n)
}
