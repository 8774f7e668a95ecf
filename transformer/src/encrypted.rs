//! Encrypted inference of the polynomial ViT on CKKS ciphertexts (one ciphertext per batch of images,
//! no bootstrapping, so the whole circuit must fit the parameters' levels).
//!
//! [`EncryptedVit`] is built from a [`ReferenceModel`] (every BatchNorm already folded into the linear
//! maps, the fitted site polynomials attached) and evaluates exactly the reference's arithmetic on an
//! encrypted image:
//!
//! - **client**: cuts the image into patches (public preprocessing) and encrypts the
//!   `[tokens, channels * patch^2]` patch matrix row-major ([`EncryptedVit::encrypt_image`]);
//! - **server** ([`EncryptedVit::forward`]): patch embedding (plaintext weights, plus the plaintext
//!   bias-and-positions matrix); per block `Q`, `K`, `V` (three plaintext-weight products), the score
//!   diagonals `Q K^T / sqrt(d_head)` ([`EncryptedAttention::scores`]), the fitted attention polynomial
//!   `blocks.{i}.attn.sigma` on every score diagonal, a plaintext mask that zeroes every slot
//!   [`EncryptedAttention::apply_to_values`] needs zero (the polynomial of 0 is not 0) and applies the
//!   length scaling `1 / S(L)`, the product with `V`, the projection and the residual; then `fc1`, the
//!   polynomial `blocks.{i}.mlp.act`, `fc2` and the residual; mean pooling over the tokens (rotations by
//!   whole rows; the `1 / tokens` is folded into the head) and the head;
//! - **client**: decrypts the logits, row `b` of the returned matrix for image `b`
//!   ([`EncryptedVit::decrypt_batch_logits`]; [`EncryptedVit::decrypt_logits`] for a single image).
//!
//! **Layout.** Every matrix is packed row-major ([`RowMajor`]) with one power-of-two stride large
//! enough for the widest layer (patch size, width, MLP hidden width, classes) in one ciphertext of
//! `params.max_slots()` slots; rows past the tokens are padding. A batch of images
//! ([`VitOptions::batch`], up to [`EncryptedVit::max_batch`]) is interleaved token-major: row
//! `t * batch + b` is token `t` of image `b`, so a batch costs the operations of one image.
//!
//! **Polynomials without a level for the change of variable.** A site polynomial is a Chebyshev series
//! on `[a, b]`, evaluated at `u = alpha x + beta`. The factor `alpha` is folded into the preceding
//! linear map (the score scale of the attention, the weights and bias of `fc1`) and `beta` is added as a
//! constant (free), so the series is evaluated on `[-1, 1]` in exactly `ceil(log2(degree + 1))` levels.
//!
//! **Scales.** Every plaintext-weight product keeps its input's scale (the diagonals are encoded at the
//! dropped prime), so the token rows stay at the default scale `Delta`. The scores come out at
//! `Delta^2 / q` and the polynomial keeps that scale; the attention mask is encoded at the scale that
//! brings the product with `V` back to exactly `Delta`, so the residual additions need no correction.
//!
//! **Levels** (one block): embedding 1, `Q K V` 1, scores 2, sigma `ceil(log2(d_s + 1))`, mask 1,
//! product with `V` 1, projection 1, `fc1` 1, activation `ceil(log2(d_a + 1))`, `fc2` 1, head 1; with the
//! degree-15 fits of the tiny ViT, 18 levels ([`EncryptedVit::levels_needed`]).
//!
//! Supported today: vision models with mean pooling, BatchNorm (folded) normalisation, pointwise
//! attention `sigma(s)` with any length scaling and placement, and sites fitted as one Chebyshev
//! series (GELU). LayerNorm, softmax and Power-Softmax attention, class tokens and composite or Newton
//! site polynomials are refused with [`EncryptedError::Unsupported`].

use std::sync::Arc;

use ckks::circuits::matmul::{EncryptedAttention, EncryptedMatrix, PlainWeightMatMul, RowMajor};
use ckks::circuits::poly_eval::{plan_op_counts, CkksArith};
use ckks::params::Parameters;
use ckks::rlwe::SecretKey;
use ckks::scheme::evaluator::{
    decrypt_ckks, Ciphertext, CkksEncoder, CkksEncryptor, Evaluator, LeveledOpCounts, OpCounts, Plaintext,
};
use poly_approx::eval::EvalPlan;
use poly_approx::{ChebyshevPoly, Interval};
use rand::CryptoRng;

use crate::model::{AttentionKind, ScalePlacement, SitePoly, TaskConfig};
use crate::reference::{Dense, Embedding, ReferenceModel};

/// Relative tolerance on the scale of an input ciphertext (it must be encrypted at the default scale).
const INPUT_SCALE_TOLERANCE: f64 = 1e-9;

/// Errors building or running the encrypted model.
#[derive(Debug, thiserror::Error)]
pub enum EncryptedError {
    /// A CKKS operation failed (levels, scales, missing keys, encoding).
    #[error(transparent)]
    Ckks(#[from] ckks::Error),
    /// Planning a polynomial evaluation failed.
    #[error("polynomial evaluation plan: {0}")]
    Approximation(#[from] poly_approx::Error),
    /// The model uses something the encrypted forward does not implement yet.
    #[error("unsupported model: {0}")]
    Unsupported(String),
    /// A shape does not fit (weights, images, layouts).
    #[error("shape: {0}")]
    Shape(String),
    /// The parameters or the starting level leave too few levels for the circuit.
    #[error("the circuit needs {needed} levels, the start level is {available}")]
    Levels {
        /// Levels the circuit consumes.
        needed: usize,
        /// The starting level asked for.
        available: usize,
    },
    /// An encrypted input that does not match what the model was prepared for.
    #[error("input: {0}")]
    Input(String),
}

/// Result of this module.
pub type Result<T> = std::result::Result<T, EncryptedError>;

/// A plaintext-weight product followed by the addition of a plaintext matrix (bias, positions).
#[derive(Debug)]
pub(crate) struct Affine {
    /// Operations of one application (the BSGS product, its rescale).
    pub(crate) counts: OpCounts,
    input: RowMajor,
    output: RowMajor,
    level: usize,
    rotations: Vec<i64>,
    /// The encoded product and bias (at the output level and the default scale) under
    /// [`WeightEncoding::Once`]; `None` under [`WeightEncoding::PerForward`], where `apply` encodes them.
    encoded: Option<(PlainWeightMatMul, Plaintext)>,
    /// `W` and the rows of `B`, kept under [`WeightEncoding::PerForward`] only (empty otherwise).
    w: Vec<Vec<f64>>,
    bias_rows: Vec<Vec<f64>>,
}

/// How [`EncryptedVit`] holds the weights of its linear layers (the plaintext diagonals of every
/// weight product and the biases).
///
/// An encoded diagonal is a full ring element at the level where it is used, `(level + 1) N 8` bytes:
/// for the two-block Fashion-MNIST ViT (about 2,000 diagonals, 38 levels) at N = 2^16 that is about
/// 23 GiB, so large rings need [`WeightEncoding::PerForward`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WeightEncoding {
    /// Every layer encoded once by the constructor and kept (fastest forward; memory grows as N times
    /// the levels times the diagonals).
    #[default]
    Once,
    /// The weights kept in f64; each layer is encoded when the forward reaches it and dropped after it
    /// (one layer's plaintexts in memory at a time; the encoding is repeated by every forward). The
    /// constructor encodes each layer once too, to check it and to list its rotations. The attention
    /// and activation masks are still encoded once.
    PerForward,
}

/// Where the time of one encrypted forward went, by kind of work (seconds, wall clock).
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ForwardProfile {
    /// Encoding the weights of the linear layers ([`WeightEncoding::PerForward`] only).
    pub encode: f64,
    /// Plaintext-weight products and biases: patch embedding, Q K V, projection, MLP, head.
    pub plain_matmul: f64,
    /// Ciphertext-ciphertext products of the attention (score diagonals and scores times V).
    pub cipher_matmul: f64,
    /// Polynomial activations (attention sigma with its mask and length scaling, MLP GELU).
    pub activations: f64,
    /// Residual additions and mean pooling.
    pub other: f64,
    /// LayerNorms (row means and variances, the inverse square root, the product).
    #[serde(default)]
    pub normalization: f64,
    /// Bootstrapping (with the scaling of its input into range).
    #[serde(default)]
    pub bootstrap: f64,
}

/// The kinds of work of a forward that perform counted operations (the fields of
/// [`ForwardProfile`] but weight encoding and the residual additions).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WorkKind {
    /// [`ForwardProfile::bootstrap`].
    Bootstrap,
    /// [`ForwardProfile::normalization`].
    Normalization,
    /// [`ForwardProfile::activations`].
    Activations,
    /// [`ForwardProfile::cipher_matmul`].
    CipherMatmul,
    /// [`ForwardProfile::plain_matmul`].
    PlainMatmul,
}

impl WorkKind {
    /// Every kind, in the order of a breakdown.
    pub const ALL: [WorkKind; 5] = [
        WorkKind::Bootstrap,
        WorkKind::Normalization,
        WorkKind::Activations,
        WorkKind::CipherMatmul,
        WorkKind::PlainMatmul,
    ];

    /// The name of its [`ForwardProfile`] field.
    pub fn name(self) -> &'static str {
        match self {
            WorkKind::Bootstrap => "bootstrap",
            WorkKind::Normalization => "normalization",
            WorkKind::Activations => "activations",
            WorkKind::CipherMatmul => "cipher_matmul",
            WorkKind::PlainMatmul => "plain_matmul",
        }
    }
}

impl ForwardProfile {
    /// The seconds spent on `kind`.
    pub fn seconds(&self, kind: WorkKind) -> f64 {
        match kind {
            WorkKind::Bootstrap => self.bootstrap,
            WorkKind::Normalization => self.normalization,
            WorkKind::Activations => self.activations,
            WorkKind::CipherMatmul => self.cipher_matmul,
            WorkKind::PlainMatmul => self.plain_matmul,
        }
    }

    /// All of it.
    pub fn total(&self) -> f64 {
        self.encode
            + self.plain_matmul
            + self.cipher_matmul
            + self.activations
            + self.other
            + self.normalization
            + self.bootstrap
    }
}

/// Runs `f`, adding its wall-clock seconds to `slot`.
pub(crate) fn timed<T>(slot: &mut f64, f: impl FnOnce() -> T) -> T {
    let t = std::time::Instant::now();
    let r = f();
    *slot += t.elapsed().as_secs_f64();
    r
}

impl Affine {
    /// `X W + B` for `X` at `level` in `input`; `bias_rows` gives row `t` of `B` (`rows x d'`, zero past
    /// the valid rows).
    pub(crate) fn new(
        params: &Arc<Parameters>,
        encoder: &CkksEncoder,
        input: RowMajor,
        w: &[Vec<f64>],
        bias_rows: &[Vec<f64>],
        level: usize,
        weights: WeightEncoding,
    ) -> Result<Self> {
        let (mm, bias) = Self::encode(params, encoder, input, w, bias_rows, level)?;
        let (output, rotations) = (mm.output_layout(), mm.rotations_needed());
        let counts = mm.cost_per_tile().op_counts();
        let (encoded, w, bias_rows) = match weights {
            WeightEncoding::Once => (Some((mm, bias)), Vec::new(), Vec::new()),
            WeightEncoding::PerForward => (None, w.to_vec(), bias_rows.to_vec()),
        };
        Ok(Self {
            counts,
            input,
            output,
            level,
            rotations,
            encoded,
            w,
            bias_rows,
        })
    }

    /// The weight product and the bias, encoded.
    fn encode(
        params: &Arc<Parameters>,
        encoder: &CkksEncoder,
        input: RowMajor,
        w: &[Vec<f64>],
        bias_rows: &[Vec<f64>],
        level: usize,
    ) -> Result<(PlainWeightMatMul, Plaintext)> {
        let mm = PlainWeightMatMul::new(params, encoder, input, w, level)?;
        let slots = mm.output_layout().pack(bias_rows)?;
        let [v] = slots.as_slice() else {
            return Err(EncryptedError::Shape(format!(
                "the bias packs into {} ciphertexts, expected one",
                slots.len()
            )));
        };
        let out_level = level.checked_sub(1).ok_or(EncryptedError::Levels {
            needed: 1,
            available: 0,
        })?;
        let bias = encoder.encode(v, out_level, params.default_scale())?;
        Ok((mm, bias))
    }

    pub(crate) fn output_layout(&self) -> RowMajor {
        self.output
    }

    /// The level of its input.
    pub(crate) fn level(&self) -> usize {
        self.level
    }

    pub(crate) fn rotations_needed(&self) -> Vec<i64> {
        self.rotations.clone()
    }

    /// `X W + B`; under [`WeightEncoding::PerForward`] `W` and `B` are encoded with `encoder` first and
    /// dropped after.
    pub(crate) fn apply(
        &self,
        params: &Arc<Parameters>,
        encoder: Option<&CkksEncoder>,
        eval: &Evaluator,
        x: &EncryptedMatrix,
        profile: &mut ForwardProfile,
    ) -> Result<EncryptedMatrix> {
        let fresh;
        let (mm, bias) = match &self.encoded {
            Some((mm, bias)) => (mm, bias),
            None => {
                let encoder = encoder.ok_or_else(|| {
                    EncryptedError::Input("weights encoded per forward but no encoder".into())
                })?;
                fresh = timed(&mut profile.encode, || {
                    Self::encode(params, encoder, self.input, &self.w, &self.bias_rows, self.level)
                })?;
                (&fresh.0, &fresh.1)
            }
        };
        timed(&mut profile.plain_matmul, || {
            let mut y = mm.apply(eval, x)?;
            for t in y.tiles.iter_mut() {
                *t = eval.add_plain(t, bias)?;
            }
            Ok(y)
        })
    }
}

/// One encrypted block.
#[derive(Debug)]
struct Block {
    q: Affine,
    k: Affine,
    v: Affine,
    attention: EncryptedAttention,
    /// `beta` of the attention polynomial's change of variable (its `alpha` is in the score scale).
    sigma_shift: f64,
    sigma: EvalPlan,
    /// One mask per score offset, at the polynomial's output level.
    sigma_masks: Vec<Plaintext>,
    proj: Affine,
    fc1: Affine,
    act: EvalPlan,
    fc2: Affine,
}

/// The polynomial ViT prepared for encrypted inference: every weight pre-encoded at the level where it
/// is used (or, with [`WeightEncoding::PerForward`], the linear layers encoded when they run). Build it
/// with [`EncryptedVit::new`] or [`EncryptedVit::with_weight_encoding`]; the server needs the
/// relinearization key and the Galois keys of [`EncryptedVit::rotations_needed`].
#[derive(Debug)]
pub struct EncryptedVit {
    params: Arc<Parameters>,
    /// `(channels, image side, patch side)`.
    image: (usize, usize, usize),
    input_layout: RowMajor,
    output_layout: RowMajor,
    start_level: usize,
    levels: usize,
    embed: Affine,
    blocks: Vec<Block>,
    head: Affine,
    rotations: Vec<i64>,
    weights: WeightEncoding,
    /// Images per ciphertext (interleaved token-major: row `t * batch + b`).
    batch: usize,
    /// Operations one forward performs, predicted from the layers' cost formulas and a dry run of
    /// the activation polynomials on the level/scale simulator.
    predicted: LeveledOpCounts,
    /// The encoder of the weights under [`WeightEncoding::PerForward`].
    encoder: Option<CkksEncoder>,
}

/// How [`EncryptedVit::with_options`] prepares the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VitOptions {
    /// How the weights of the linear layers are held.
    pub weights: WeightEncoding,
    /// Images per ciphertext, at most [`EncryptedVit::max_batch`]: the images are interleaved
    /// token-major (row `t * batch + b` is token `t` of image `b`), so the plaintext-weight products act
    /// on all of them at once and the attention's row rotations move every image by the same number of
    /// tokens: a batch costs the operations of one image.
    pub batch: usize,
}

impl Default for VitOptions {
    fn default() -> Self {
        Self {
            weights: WeightEncoding::Once,
            batch: 1,
        }
    }
}

/// Rows of a [`Dense`] weight (`w[i][j]`: input `i` to output `j`), columns `cols` of the full matrix,
/// each entry times `factor`.
///
/// # Errors
/// [`EncryptedError::Shape`] when `cols` is not inside the weight.
pub(crate) fn weight_rows(d: &Dense, cols: std::ops::Range<usize>, factor: f64) -> Result<Vec<Vec<f64>>> {
    d.weight
        .chunks_exact(d.cols.max(1))
        .map(|r| {
            r.get(cols.clone())
                .map(|r| r.iter().map(|w| w * factor).collect())
                .ok_or_else(|| {
                    EncryptedError::Shape(format!("columns {cols:?} of a {}-column weight", d.cols))
                })
        })
        .collect()
}

/// The bias row `b * factor + shift` repeated over the first `rows` rows of `total`, zero rows after.
pub(crate) fn bias_rows(bias: &[f64], factor: f64, shift: f64, rows: usize, total: usize) -> Vec<Vec<f64>> {
    (0..total)
        .map(|t| {
            if t < rows {
                bias.iter().map(|b| b * factor + shift).collect()
            } else {
                vec![0.0; bias.len()]
            }
        })
        .collect()
}

/// The site's single Chebyshev series, as `(plan on [-1, 1], alpha, beta)` with `u = alpha x + beta`.
fn site_plan(model: &ReferenceModel, site: &str) -> Result<(EvalPlan, f64, f64)> {
    let poly = model
        .polys
        .as_ref()
        .and_then(|p| p.get(site))
        .ok_or_else(|| EncryptedError::Unsupported(format!("site {site} has no fitted polynomial")))?;
    let SitePoly::Chebyshev(c) = poly else {
        return Err(EncryptedError::Unsupported(format!(
            "site {site}: only single Chebyshev series are implemented"
        )));
    };
    let (alpha, beta) = c.unit_map();
    if !(alpha.is_finite() && beta.is_finite()) {
        return Err(EncryptedError::Unsupported(format!(
            "site {site}: degenerate interval [{}, {}]",
            c.a, c.b
        )));
    }
    let unit = ChebyshevPoly::new(c.coeffs.clone(), Interval::new(-1.0, 1.0)?)?;
    Ok((EvalPlan::new(&unit)?, alpha, beta))
}

/// Levels of one block given its two polynomial depths (see the module documentation).
fn block_levels(sigma_depth: usize, act_depth: usize) -> usize {
    // Q K V, scores (2), sigma, mask, x V, proj, fc1, act, fc2.
    1 + 2 + sigma_depth + 1 + 1 + 1 + 1 + act_depth + 1
}

impl EncryptedVit {
    /// Levels the forward of `model` consumes (input level minus output level), without preparing it:
    /// use it to choose the parameters.
    ///
    /// # Errors
    /// [`EncryptedError::Unsupported`] for a model the encrypted forward does not implement.
    pub fn levels_required(model: &ReferenceModel) -> Result<usize> {
        check_supported(model)?;
        let mut levels = 2; // embedding, head
        for i in 0..model.blocks.len() {
            let (sigma, _, _) = site_plan(model, &format!("blocks.{i}.attn.sigma"))?;
            let (act, _, _) = site_plan(model, &format!("blocks.{i}.mlp.act"))?;
            levels += block_levels(sigma.depth(), act.depth());
        }
        Ok(levels)
    }

    /// Prepares `model` for inputs encrypted at `start_level` and the default scale of `params`, in
    /// ciphertexts of `params.max_slots()` slots: pre-encodes every weight, bias and mask at the level
    /// where it is used.
    ///
    /// # Errors
    /// [`EncryptedError::Unsupported`] for a model the encrypted forward does not implement,
    /// [`EncryptedError::Shape`] when the tokens do not fit one ciphertext, [`EncryptedError::Levels`]
    /// when `start_level` leaves too few levels, [`ckks::Error::LevelOutOfRange`] when it is above the
    /// parameters' top level; encoding errors.
    pub fn new(
        model: &ReferenceModel,
        params: &Arc<Parameters>,
        encoder: &CkksEncoder,
        start_level: usize,
    ) -> Result<Self> {
        Self::with_weight_encoding(model, params, encoder, start_level, WeightEncoding::Once)
    }

    /// As [`EncryptedVit::new`], with the weights of the linear layers held as `weights` says
    /// ([`WeightEncoding::PerForward`] for large rings: same results, bounded memory, slower forward).
    ///
    /// # Errors
    /// As [`EncryptedVit::new`].
    pub fn with_weight_encoding(
        model: &ReferenceModel,
        params: &Arc<Parameters>,
        encoder: &CkksEncoder,
        start_level: usize,
        weights: WeightEncoding,
    ) -> Result<Self> {
        Self::with_options(
            model,
            params,
            encoder,
            start_level,
            VitOptions {
                weights,
                ..VitOptions::default()
            },
        )
    }

    /// The row stride of the model's layouts: the widest layer (patch, width, MLP, classes), rounded
    /// up to a power of two.
    fn stride_of(model: &ReferenceModel) -> Result<usize> {
        let cfg = &model.config;
        let TaskConfig::Vision {
            channels,
            patch,
            num_classes,
            ..
        } = cfg.task
        else {
            return Err(EncryptedError::Unsupported("not a vision model".into()));
        };
        Ok((channels * patch * patch)
            .max(cfg.dim)
            .max(cfg.mlp_hidden)
            .max(num_classes)
            .next_power_of_two())
    }

    /// The most images of `model` one ciphertext of `params` holds: `slots / (tokens * stride)`.
    ///
    /// # Errors
    /// [`EncryptedError::Unsupported`] for a model the encrypted forward does not implement.
    pub fn max_batch(model: &ReferenceModel, params: &Parameters) -> Result<usize> {
        check_supported(model)?;
        Ok(params.max_slots() / (model.config.tokens() * Self::stride_of(model)?))
    }

    /// As [`EncryptedVit::new`], with the weights held and the images batched as `options` says.
    ///
    /// # Errors
    /// As [`EncryptedVit::new`]; [`EncryptedError::Shape`] for a batch of 0 or above
    /// [`EncryptedVit::max_batch`].
    pub fn with_options(
        model: &ReferenceModel,
        params: &Arc<Parameters>,
        encoder: &CkksEncoder,
        start_level: usize,
        options: VitOptions,
    ) -> Result<Self> {
        let VitOptions { weights, batch } = options;
        let needed = Self::levels_required(model)?;
        let max_batch = Self::max_batch(model, params)?;
        if batch == 0 || batch > max_batch {
            return Err(EncryptedError::Shape(format!(
                "a batch of {batch} images: one ciphertext holds 1 to {max_batch}"
            )));
        }
        if start_level > params.max_level() {
            return Err(EncryptedError::Ckks(ckks::Error::LevelOutOfRange {
                level: start_level,
                max: params.max_level(),
            }));
        }
        if needed > start_level {
            return Err(EncryptedError::Levels {
                needed,
                available: start_level,
            });
        }
        let cfg = &model.config;
        let TaskConfig::Vision {
            image_size,
            channels,
            patch,
            num_classes,
            ..
        } = cfg.task
        else {
            return Err(EncryptedError::Unsupported("not a vision model".into()));
        };
        let Embedding::Patches { linear, .. } = &model.embedding else {
            return Err(EncryptedError::Unsupported("not a patch embedding".into()));
        };
        let (d, hidden, tokens) = (cfg.dim, cfg.mlp_hidden, cfg.tokens());
        // Row `t * batch + b` holds token `t` of image `b`.
        let rows = tokens * batch;
        let patch_len = channels * patch * patch;
        let stride = Self::stride_of(model)?;
        let slots = params.max_slots();
        let input_layout = RowMajor::new(rows, patch_len, Some(stride), slots)?;
        if input_layout.tiles() != 1 {
            return Err(EncryptedError::Shape(format!(
                "{rows} rows of stride {stride} do not fit one ciphertext of {slots} slots"
            )));
        }
        let scale = params.default_scale();
        let mut rotations: Vec<i64> = Vec::new();
        let mut level = start_level;

        // Patch embedding plus (bias + positions) in the valid rows.
        let mut embed_bias = bias_rows(&linear.bias, 1.0, 0.0, rows, rows);
        let positions: Vec<&[f64]> = model.pos.chunks_exact(d.max(1)).collect();
        for (r, row) in embed_bias.iter_mut().enumerate() {
            let p = positions
                .get(r / batch)
                .ok_or_else(|| EncryptedError::Shape("fewer positions than tokens".into()))?;
            row.iter_mut().zip(p.iter()).for_each(|(a, b)| *a += b);
        }
        let embed = Affine::new(
            params,
            encoder,
            input_layout,
            &weight_rows(linear, 0..d, 1.0)?,
            &embed_bias,
            level,
            weights,
        )?;
        rotations.extend(embed.rotations_needed());
        level -= 1;
        let x_layout = embed.output_layout();

        let (sqrt_dh, factor, placement) = match cfg.attention {
            AttentionKind::Pointwise {
                scaling, placement, ..
            } => ((cfg.head_dim() as f64).sqrt(), scaling.factor(tokens), placement),
            _ => return Err(EncryptedError::Unsupported("attention is not pointwise".into())),
        };
        let before = matches!(placement, ScalePlacement::Before | ScalePlacement::Both);
        let after = matches!(placement, ScalePlacement::After | ScalePlacement::Both);

        let mut blocks = Vec::with_capacity(model.blocks.len());
        for (i, blk) in model.blocks.iter().enumerate() {
            let start = level;
            let qkv = |part: usize| -> Result<Affine> {
                let cols = part * d..(part + 1) * d;
                Affine::new(
                    params,
                    encoder,
                    x_layout,
                    &weight_rows(&blk.qkv, cols.clone(), 1.0)?,
                    &bias_rows(
                        blk.qkv
                            .bias
                            .get(cols)
                            .ok_or_else(|| EncryptedError::Shape("qkv bias".into()))?,
                        1.0,
                        0.0,
                        rows,
                        rows,
                    ),
                    start,
                    weights,
                )
            };
            let (q, k, v) = (qkv(0)?, qkv(1)?, qkv(2)?);
            for a in [&q, &k, &v] {
                rotations.extend(a.rotations_needed());
            }
            level -= 1;

            // Scores times alpha / sqrt(d_h) (and 1 / S(L) before sigma), at level - 2.
            let (sigma, alpha_s, beta_s) = site_plan(model, &format!("blocks.{i}.attn.sigma"))?;
            let score_scale = alpha_s / sqrt_dh / if before { factor } else { 1.0 };
            let attention = EncryptedAttention::new_batched(
                params,
                encoder,
                x_layout,
                cfg.heads,
                false,
                score_scale,
                level,
                batch,
            )?;
            rotations.extend(attention.rotations_needed());
            // Scale of the scores: Delta^2 / q_level (product), the mask's q_{level-1} cancels.
            let score_ct_scale = scale * scale / prime(params, level)?;
            level -= 2;
            level -= sigma.depth();
            // The mask: 1 / S(L) (after sigma) on the valid score slots, zero elsewhere. The weights are
            // at the scores' scale s; the mask at q_{l-1} q_l / s puts them at q_{l-1} after the rescale
            // by q_l, and the product with V (at Delta) lands on Delta after the rescale by q_{l-1}.
            let mask_scale = prime(params, level - 1)? * prime(params, level)? / score_ct_scale;
            let weight = if after { 1.0 / factor } else { 1.0 };
            let dh = cfg.head_dim();
            let sigma_masks = attention
                .offsets()
                .iter()
                .map(|&delta| {
                    let mut m = vec![vec![0.0; d]; rows];
                    for (r, row) in m.iter_mut().enumerate() {
                        let partner = (r / batch) as i64 + delta;
                        if partner >= 0 && (partner as usize) < tokens {
                            for h in 0..cfg.heads {
                                row[h * dh] = weight;
                            }
                        }
                    }
                    let packed = x_layout.pack(&m)?;
                    let [vals] = packed.as_slice() else {
                        return Err(EncryptedError::Shape("mask spans several ciphertexts".into()));
                    };
                    Ok(encoder.encode(vals, level, mask_scale)?)
                })
                .collect::<Result<Vec<_>>>()?;
            level -= 2; // mask, product with V

            let proj = Affine::new(
                params,
                encoder,
                x_layout,
                &weight_rows(&blk.proj, 0..d, 1.0)?,
                &bias_rows(&blk.proj.bias, 1.0, 0.0, rows, rows),
                level,
                weights,
            )?;
            rotations.extend(proj.rotations_needed());
            level -= 1;

            let (act, alpha_a, beta_a) = site_plan(model, &format!("blocks.{i}.mlp.act"))?;
            let fc1 = Affine::new(
                params,
                encoder,
                x_layout,
                &weight_rows(&blk.fc1, 0..hidden, alpha_a)?,
                &bias_rows(&blk.fc1.bias, alpha_a, beta_a, rows, rows),
                level,
                weights,
            )?;
            rotations.extend(fc1.rotations_needed());
            level -= 1 + act.depth();
            let fc2 = Affine::new(
                params,
                encoder,
                fc1.output_layout(),
                &weight_rows(&blk.fc2, 0..d, 1.0)?,
                &bias_rows(&blk.fc2.bias, 1.0, 0.0, rows, rows),
                level,
                weights,
            )?;
            rotations.extend(fc2.rotations_needed());
            level -= 1;
            blocks.push(Block {
                q,
                k,
                v,
                attention,
                sigma_shift: beta_s,
                sigma,
                sigma_masks,
                proj,
                fc1,
                act,
                fc2,
            });
        }

        // Mean pooling: row b (token 0 of image b) receives the sum of image b's token rows;
        // 1 / tokens goes into the head.
        rotations.extend(pool_rotations(tokens, batch * stride));
        let head_bias = bias_rows(&model.head.bias, 1.0, 0.0, batch, rows);
        let head = Affine::new(
            params,
            encoder,
            x_layout,
            &weight_rows(&model.head, 0..num_classes, 1.0 / tokens as f64)?,
            &head_bias,
            level,
            weights,
        )?;
        rotations.extend(head.rotations_needed());
        level -= 1;
        let output_layout = RowMajor {
            rows: batch,
            ..head.output_layout()
        };

        // The operation counts of one forward, layer by layer, at the level each layer works at.
        let mut predicted = LeveledOpCounts::default();
        predicted.add(embed.level(), embed.counts);
        predicted.add(head.level(), head.counts);
        let pooling = pool_rotations(tokens, batch * stride).len();
        predicted.add(
            head.level(),
            OpCounts {
                key_switches: pooling,
                decompositions: if tokens.is_power_of_two() {
                    pooling
                } else {
                    usize::from(pooling > 0)
                },
                ..OpCounts::default()
            },
        );
        for blk in &blocks {
            let n = blk.attention.offsets().len();
            let a = blk.attention.cost();
            let attention = OpCounts {
                key_switches: a.rotations + a.ct_mults,
                // K and V are each rotated hoisted; the in-head sums and broadcasts are not.
                decompositions: 2 * usize::from(a.hoisted_rotations > 0)
                    + (a.rotations - a.hoisted_rotations)
                    + a.ct_mults,
                ct_mults: a.ct_mults,
                pt_mults: a.pt_mults,
                // Each score diagonal: after the product and after the mask; one for scores x V.
                rescales: 2 * n + 1,
            };
            let mask = OpCounts {
                pt_mults: 1,
                rescales: 1,
                ..OpCounts::default()
            };
            let att = blk.attention.level();
            for a in [&blk.q, &blk.k, &blk.v] {
                predicted.add(a.level(), a.counts);
            }
            predicted.add(att, attention);
            predicted.add(att.saturating_sub(2), (plan_op_counts(&blk.sigma)? + mask) * n);
            for a in [&blk.proj, &blk.fc1, &blk.fc2] {
                predicted.add(a.level(), a.counts);
            }
            predicted.add(blk.fc1.level().saturating_sub(1), plan_op_counts(&blk.act)?);
        }

        let s = slots as i64;
        let mut rotations: Vec<i64> = rotations
            .into_iter()
            .map(|r| r.rem_euclid(s))
            .filter(|&r| r != 0)
            .collect();
        rotations.sort_unstable();
        rotations.dedup();
        Ok(Self {
            params: params.clone(),
            image: (channels, image_size, patch),
            input_layout,
            output_layout,
            start_level,
            levels: start_level - level,
            embed,
            blocks,
            head,
            rotations,
            weights,
            batch,
            predicted,
            encoder: match weights {
                WeightEncoding::Once => None,
                WeightEncoding::PerForward => Some(CkksEncoder::new(params)?),
            },
        })
    }

    /// The layout of the encrypted patch matrix [`EncryptedVit::forward`] expects.
    pub fn input_layout(&self) -> RowMajor {
        self.input_layout
    }

    /// The layout of the encrypted logits: one row of `classes` values per image of the batch, i.e.
    /// logit `j` of image `b` in slot `b * stride + j` of the single ciphertext.
    pub fn output_layout(&self) -> RowMajor {
        self.output_layout
    }

    /// How the weights of the linear layers are held.
    pub fn weight_encoding(&self) -> WeightEncoding {
        self.weights
    }

    /// The level inputs must be encrypted at.
    pub fn start_level(&self) -> usize {
        self.start_level
    }

    /// Levels the forward consumes: the logits come out at `start_level() - levels_needed()`.
    pub fn levels_needed(&self) -> usize {
        self.levels
    }

    /// The rotations (normalised to `1..slots`) whose Galois keys the forward uses: exactly this set.
    pub fn rotations_needed(&self) -> Vec<i64> {
        self.rotations.clone()
    }

    /// The patch rows of one `[channels, s, s]` image (row-major), as
    /// [`ReferenceModel::patchify`]: patches row-major over the grid, within a patch channel-major then
    /// row-major.
    ///
    /// # Errors
    /// [`EncryptedError::Shape`] for an image of another size.
    pub fn patchify(&self, image: &[f64]) -> Result<Vec<Vec<f64>>> {
        let (c, s, p) = self.image;
        crate::reference::patchify_image(image, c, s, p).map_err(EncryptedError::Shape)
    }

    /// Client side: patchifies one normalised `[channels, s, s]` image and encrypts the patch matrix at
    /// the start level and the default scale.
    ///
    /// # Errors
    /// [`EncryptedError::Shape`] for an image of another size; encoding and encryption errors.
    pub fn encrypt_image(
        &self,
        encoder: &CkksEncoder,
        encryptor: &CkksEncryptor,
        image: &[f64],
        rng: &mut impl CryptoRng,
    ) -> Result<EncryptedMatrix> {
        self.encrypt_images(encoder, encryptor, &[image], rng)
    }

    /// Client side: patchifies up to [`EncryptedVit::batch`] images and encrypts them interleaved in
    /// one ciphertext (row `t * batch + b` = patch `t` of image `b`; missing images are zero rows).
    ///
    /// # Errors
    /// [`EncryptedError::Shape`] for more images than the batch or an image of another size; encoding
    /// and encryption errors.
    pub fn encrypt_images<I: AsRef<[f64]>>(
        &self,
        encoder: &CkksEncoder,
        encryptor: &CkksEncryptor,
        images: &[I],
        rng: &mut impl CryptoRng,
    ) -> Result<EncryptedMatrix> {
        let patches = self.patch_matrix(images)?;
        Ok(EncryptedMatrix::encrypt(
            &self.params,
            encoder,
            encryptor,
            self.input_layout,
            &patches,
            self.start_level,
            rng,
        )?)
    }

    /// The interleaved patch matrix of up to [`EncryptedVit::batch`] images (what
    /// [`EncryptedVit::encrypt_images`] encrypts).
    ///
    /// # Errors
    /// [`EncryptedError::Shape`] for more images than the batch or an image of another size.
    pub fn patch_matrix<I: AsRef<[f64]>>(&self, images: &[I]) -> Result<Vec<Vec<f64>>> {
        interleave_patches(images, self.image, self.input_layout, self.batch)
    }

    /// The operations one forward performs (key switches, decompositions, products, rescales),
    /// predicted before running: from the cost formulas of the linear layers and the attention, and
    /// a dry run of the activation polynomials on the level/scale simulator. A forward on an
    /// [`Evaluator`] performs exactly these ([`Evaluator::op_counts`]).
    pub fn predicted_op_counts(&self) -> OpCounts {
        self.predicted.total()
    }

    /// [`EncryptedVit::predicted_op_counts`] by the level each layer works at (for a time
    /// prediction: an operation's cost grows with its level).
    pub fn predicted_op_counts_by_level(&self) -> &LeveledOpCounts {
        &self.predicted
    }

    /// Images per ciphertext.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// `(channels, image side, patch side)` of the images it classifies.
    pub fn image_shape(&self) -> (usize, usize, usize) {
        self.image
    }

    /// Client side: the class logits held by the output of [`EncryptedVit::forward`].
    ///
    /// # Errors
    /// [`EncryptedError::Input`] for a matrix of another layout; decryption and decoding errors.
    pub fn decrypt_logits(
        &self,
        encoder: &CkksEncoder,
        sk: &SecretKey,
        logits: &EncryptedMatrix,
    ) -> Result<Vec<f64>> {
        self.decrypt_batch_logits(encoder, sk, logits)?
            .into_iter()
            .next()
            .ok_or_else(|| EncryptedError::Shape("no logits row".into()))
    }

    /// Client side: the class logits of every image of the batch (row `b` for image `b`; rows past
    /// the images encrypted hold the logits of a zero image, ignore them).
    ///
    /// # Errors
    /// As [`EncryptedVit::decrypt_logits`].
    pub fn decrypt_batch_logits(
        &self,
        encoder: &CkksEncoder,
        sk: &SecretKey,
        logits: &EncryptedMatrix,
    ) -> Result<Vec<Vec<f64>>> {
        if logits.layout != self.output_layout {
            return Err(EncryptedError::Input(format!(
                "logits in layout {:?}, expected {:?}",
                logits.layout, self.output_layout
            )));
        }
        let decoded = logits
            .tiles
            .iter()
            .map(|ct| encoder.decode(&decrypt_ckks(sk, ct)?))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(self.output_layout.unpack(&decoded)?)
    }

    /// Server side: the encrypted logits of an encrypted patch matrix (in [`EncryptedVit::input_layout`],
    /// at [`EncryptedVit::start_level`] and the default scale). The result, in
    /// [`EncryptedVit::output_layout`], holds logit `j` in slot `j` and is
    /// [`EncryptedVit::levels_needed`] levels below the input.
    ///
    /// # Errors
    /// [`EncryptedError::Input`] for an input of another layout, level or scale; evaluation errors
    /// (a missing Galois or relinearization key among them).
    pub fn forward(&self, eval: &Evaluator, input: &EncryptedMatrix) -> Result<EncryptedMatrix> {
        Ok(self.forward_traced(eval, input, |_, _| {})?.0)
    }

    /// As [`EncryptedVit::forward`], handing `tap` the token matrix after each layer (for the
    /// client-side precision diagnostics): `embed` (patch embedding plus positions), then per block
    /// `blocks.{i}.attn` (after the attention residual) and `blocks.{i}.mlp` (after the MLP residual),
    /// in the layout of the tokens, and `logits` (in [`EncryptedVit::output_layout`]). Returns the
    /// logits and where the time went.
    /// [`ReferenceModel`]'s [`crate::reference::ReferenceModel::trace_image`] gives the same points in
    /// f64.
    ///
    /// # Errors
    /// As [`EncryptedVit::forward`].
    pub fn forward_traced(
        &self,
        eval: &Evaluator,
        input: &EncryptedMatrix,
        mut tap: impl FnMut(&str, &EncryptedMatrix),
    ) -> Result<(EncryptedMatrix, ForwardProfile)> {
        if input.layout != self.input_layout || input.tiles.len() != 1 {
            return Err(EncryptedError::Input(format!(
                "layout {:?} in {} ciphertexts, expected {:?} in one",
                input.layout,
                input.tiles.len(),
                self.input_layout
            )));
        }
        for ct in &input.tiles {
            let rel = (ct.scale() / self.params.default_scale() - 1.0).abs();
            if ct.level() != self.start_level || rel.is_nan() || rel > INPUT_SCALE_TOLERANCE {
                return Err(EncryptedError::Input(format!(
                    "ciphertext at level {} and scale 2^{:.3}, expected level {} and the default scale",
                    ct.level(),
                    ct.scale().log2(),
                    self.start_level
                )));
            }
        }
        let mut prof = ForwardProfile::default();
        let mut x = self.affine(&self.embed, eval, input, &mut prof)?;
        tap("embed", &x);
        for (i, blk) in self.blocks.iter().enumerate() {
            x = self.block(eval, blk, &x, i, &mut tap, &mut prof)?;
        }
        let pooled = timed(&mut prof.other, || pool(eval, &x, self.batch))?;
        let mut out = self.affine(&self.head, eval, &pooled, &mut prof)?;
        out.layout = self.output_layout;
        tap("logits", &out);
        Ok((out, prof))
    }

    /// One linear layer (encoded now under [`WeightEncoding::PerForward`]).
    fn affine(
        &self,
        a: &Affine,
        eval: &Evaluator,
        x: &EncryptedMatrix,
        prof: &mut ForwardProfile,
    ) -> Result<EncryptedMatrix> {
        a.apply(&self.params, self.encoder.as_ref(), eval, x, prof)
    }

    fn block(
        &self,
        eval: &Evaluator,
        blk: &Block,
        x: &EncryptedMatrix,
        index: usize,
        tap: &mut impl FnMut(&str, &EncryptedMatrix),
        prof: &mut ForwardProfile,
    ) -> Result<EncryptedMatrix> {
        let (q, k, v) = (
            self.affine(&blk.q, eval, x, prof)?,
            self.affine(&blk.k, eval, x, prof)?,
            self.affine(&blk.v, eval, x, prof)?,
        );
        // The attention's ciphertexts are dropped as soon as they are used (at N = 2^16 the score
        // diagonals and the weights are about a gigabyte each, the Galois keys a dozen).
        let scores = timed(&mut prof.cipher_matmul, || blk.attention.scores(eval, &q, &k))?;
        drop((q, k));
        let mut arith = CkksArith::new(&self.params, eval);
        let weights = timed(&mut prof.activations, || {
            scores
                .into_iter()
                .zip(&blk.sigma_masks)
                .map(|(s, mask)| {
                    let u = if blk.sigma_shift != 0.0 {
                        eval.add_const(&s, blk.sigma_shift)?
                    } else {
                        s
                    };
                    let a = blk.sigma.evaluate(&mut arith, &u)?;
                    Ok(eval.rescale(&eval.mul_plain(&a, mask)?)?)
                })
                .collect::<Result<Vec<_>>>()
        })?;
        let o = timed(&mut prof.cipher_matmul, || {
            blk.attention.apply_to_values(eval, &weights, &v)
        })?;
        drop((weights, v));
        let p = self.affine(&blk.proj, eval, &o, prof)?;
        let x = timed(&mut prof.other, || residual(eval, x, &p))?;
        tap(&format!("blocks.{index}.attn"), &x);
        let h = self.affine(&blk.fc1, eval, &x, prof)?;
        let h = timed(&mut prof.activations, || {
            Ok::<_, EncryptedError>(EncryptedMatrix {
                layout: h.layout,
                tiles: h
                    .tiles
                    .iter()
                    .map(|t| blk.act.evaluate(&mut arith, t))
                    .collect::<std::result::Result<Vec<_>, _>>()?,
            })
        })?;
        let f = self.affine(&blk.fc2, eval, &h, prof)?;
        let y = timed(&mut prof.other, || residual(eval, &x, &f))?;
        tap(&format!("blocks.{index}.mlp"), &y);
        Ok(y)
    }
}

/// The patch matrix of up to `batch` images of shape `image = (channels, side, patch)`, interleaved
/// token-major in `layout` (row `t * batch + b` = patch `t` of image `b`; missing images are zero rows).
///
/// # Errors
/// [`EncryptedError::Shape`] for no image, more images than the batch, an image of another size or a
/// layout whose rows are not `batch` times the patches.
pub(crate) fn interleave_patches<I: AsRef<[f64]>>(
    images: &[I],
    image: (usize, usize, usize),
    layout: RowMajor,
    batch: usize,
) -> Result<Vec<Vec<f64>>> {
    if images.is_empty() || images.len() > batch {
        return Err(EncryptedError::Shape(format!(
            "{} images for a batch of {batch}",
            images.len()
        )));
    }
    let (c, s, p) = image;
    let per_image = images
        .iter()
        .map(|im| crate::reference::patchify_image(im.as_ref(), c, s, p).map_err(EncryptedError::Shape))
        .collect::<Result<Vec<_>>>()?;
    let tokens = per_image.first().map_or(0, Vec::len);
    if tokens * batch != layout.rows {
        return Err(EncryptedError::Shape(format!(
            "{tokens} patches x {batch} images for a layout of {} rows",
            layout.rows
        )));
    }
    Ok((0..layout.rows)
        .map(|r| {
            per_image
                .get(r % batch)
                .and_then(|p| p.get(r / batch))
                .cloned()
                .unwrap_or_else(|| vec![0.0; layout.cols])
        })
        .collect())
}

fn check_supported(model: &ReferenceModel) -> Result<()> {
    let cfg = &model.config;
    if !matches!(cfg.attention, AttentionKind::Pointwise { .. }) {
        return Err(EncryptedError::Unsupported(
            "only pointwise attention sigma(s) is implemented".into(),
        ));
    }
    match &model.embedding {
        Embedding::Patches {
            class_token: None, ..
        } => {}
        Embedding::Patches { .. } => {
            return Err(EncryptedError::Unsupported(
                "class tokens are not implemented".into(),
            ))
        }
        Embedding::Tokens { .. } => {
            return Err(EncryptedError::Unsupported(
                "language models are not implemented".into(),
            ))
        }
    }
    if model.norm.is_some()
        || model
            .blocks
            .iter()
            .any(|b| b.norm1.is_some() || b.norm2.is_some())
    {
        return Err(EncryptedError::Unsupported(
            "LayerNorm is not implemented (BatchNorm models only)".into(),
        ));
    }
    Ok(())
}

/// `q_level` as f64.
pub(crate) fn prime(params: &Parameters, level: usize) -> Result<f64> {
    params
        .q()
        .get(level)
        .map(|&q| q as f64)
        .ok_or(EncryptedError::Ckks(ckks::Error::LevelOutOfRange {
            level,
            max: params.max_level(),
        }))
}

/// Rotations of the mean pooling over `rows` rows of stride `stride`.
fn pool_rotations(rows: usize, stride: usize) -> Vec<i64> {
    if rows.is_power_of_two() {
        let mut r = Vec::new();
        let mut c = 1;
        while c < rows {
            r.push((c * stride) as i64);
            c *= 2;
        }
        r
    } else {
        (1..rows).map(|t| (t * stride) as i64).collect()
    }
}

/// Row `b` of the result holds the sum of the token rows of image `b` (`batch` images interleaved;
/// the other rows hold partial sums, ignored).
fn pool(eval: &Evaluator, x: &EncryptedMatrix, batch: usize) -> Result<EncryptedMatrix> {
    let (rows, stride) = (x.layout.rows / batch, x.layout.stride * batch);
    let tiles = x
        .tiles
        .iter()
        .map(|ct| -> Result<Ciphertext> {
            if rows.is_power_of_two() {
                Ok(eval.inner_sum(ct, stride as i64, rows)?)
            } else {
                let rotated = eval.rotate_hoisted(ct, &pool_rotations(rows, stride))?;
                rotated
                    .iter()
                    .try_fold(ct.clone(), |acc, r| eval.add(&acc, r))
                    .map_err(EncryptedError::from)
            }
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(EncryptedMatrix {
        layout: x.layout,
        tiles,
    })
}

/// `x + y`, `x` dropped to `y`'s level.
pub(crate) fn residual(
    eval: &Evaluator,
    x: &EncryptedMatrix,
    y: &EncryptedMatrix,
) -> Result<EncryptedMatrix> {
    if x.layout != y.layout || x.tiles.len() != y.tiles.len() {
        return Err(EncryptedError::Shape(format!(
            "residual of layouts {:?} and {:?}",
            x.layout, y.layout
        )));
    }
    let tiles = x
        .tiles
        .iter()
        .zip(&y.tiles)
        .map(|(a, b)| Ok(eval.add(&eval.drop_to_level(a, b.level())?, b)?))
        .collect::<Result<Vec<_>>>()?;
    Ok(EncryptedMatrix {
        layout: y.layout,
        tiles,
    })
}
