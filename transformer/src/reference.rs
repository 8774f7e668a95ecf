//! Exact f64 plaintext reference forward of the burn [`Transformer`](crate::model::Transformer).
//!
//! [`ReferenceModel`] is built from the f64 export of a model ([`Weights`], parameter names as listed in
//! [`crate::model`]) and mirrors `Transformer::forward_images` / `forward_tokens` in inference mode,
//! with plain loops over `f64`. Every BatchNorm is folded at construction into a neighbouring linear
//! map (BatchNorm at inference is the per-channel affine map `x * s + t` with
//! `s = gamma / sqrt(running_var + 1e-5)`, `t = beta - running_mean * s`):
//!
//! - `blocks.{i}.norm1` into the input side of `blocks.{i}.attn.qkv`;
//! - `blocks.{i}.attn.head_bn` into the input side of `blocks.{i}.attn.proj`;
//! - `blocks.{i}.norm2` into the input side of `blocks.{i}.mlp.fc1`;
//! - `blocks.{i}.mlp.bn` into the output side of `blocks.{i}.mlp.fc1`;
//! - the final `norm` into the input side of `head` (mean pooling and class-token selection are linear
//!   and commute with a per-channel affine map).
//!
//! LayerNorms stay: `(x - mean) * inv(var + 1e-5) * gamma + beta` with the biased variance over the
//! width, `inv` the site `{prefix}.var`. The non-polynomial sites evaluate the fitted polynomial of the
//! [`PolySet`] when it has one for the site, else the exact function ([`SiteKind::exact`]).

use std::path::Path;

use crate::model::checkpoint::{read_f64_safetensors, Weights};
use crate::model::nn::{BN_EPS, LN_EPS};
use crate::model::{
    AttentionKind, Checkpoint, CheckpointError, ModelConfig, NormKind, PolySet, ScalePlacement, SiteKind,
    SitePoly, TaskConfig,
};

/// Errors building or running the reference model.
#[derive(Debug, thiserror::Error)]
pub enum ReferenceError {
    /// A tensor the configuration needs is not in the weights.
    #[error("tensor {0} missing from the weights")]
    MissingTensor(String),
    /// A tensor has another shape than the configuration implies.
    #[error("tensor {name}: shape {found:?}, expected {expected:?}")]
    Shape {
        /// Tensor name.
        name: String,
        /// The shape the configuration implies.
        expected: Vec<usize>,
        /// The shape found.
        found: Vec<usize>,
    },
    /// A tensor's values are unusable (count not matching its shape, a BatchNorm variance that is
    /// negative or not finite).
    #[error("tensor {name}: {detail}")]
    InvalidTensor {
        /// Tensor name.
        name: String,
        /// What is wrong.
        detail: String,
    },
    /// The model configuration is invalid.
    #[error("bad model configuration: {0}")]
    Config(String),
    /// An input does not fit the model (wrong image size, too many tokens, id out of the vocabulary,
    /// or the wrong task).
    #[error("bad input: {0}")]
    Input(String),
    /// Reading a checkpoint failed.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
}

/// A named point of the forward and the token rows there (see [`ReferenceModel::trace_image`]).
pub type LayerValues = (String, Vec<Vec<f64>>);

/// A linear map `y = x @ weight + bias`, `weight` `[rows = in, cols = out]` row-major (burn's layout).
#[derive(Debug, Clone, PartialEq)]
pub struct Dense {
    /// `[rows, cols]` row-major: `weight[i * cols + j]` maps input `i` to output `j`.
    pub weight: Vec<f64>,
    /// Input width.
    pub rows: usize,
    /// Output width.
    pub cols: usize,
    /// `[cols]`.
    pub bias: Vec<f64>,
}

impl Dense {
    /// `x @ weight + bias` for one input row of `rows` values.
    pub fn apply(&self, x: &[f64]) -> Vec<f64> {
        let mut y = self.bias.clone();
        for (&xi, row) in x.iter().zip(self.weight.chunks_exact(self.cols.max(1))) {
            for (yj, &w) in y.iter_mut().zip(row) {
                *yj += xi * w;
            }
        }
        y
    }

    /// Folds a per-channel affine map `x * scale + shift` applied before this layer into it:
    /// `W' = diag(scale) W`, `b' = b + shift @ W`.
    pub fn fold_input(&mut self, scale: &[f64], shift: &[f64]) {
        let cols = self.cols.max(1);
        for ((row, &s), &t) in self.weight.chunks_exact_mut(cols).zip(scale).zip(shift) {
            for (bj, w) in self.bias.iter_mut().zip(row.iter_mut()) {
                *bj += t * *w;
                *w *= s;
            }
        }
    }

    /// Folds a per-channel affine map `y * scale + shift` applied after this layer into it:
    /// `W' = W diag(scale)`, `b' = b * scale + shift`.
    pub fn fold_output(&mut self, scale: &[f64], shift: &[f64]) {
        for row in self.weight.chunks_exact_mut(self.cols.max(1)) {
            for (w, &s) in row.iter_mut().zip(scale) {
                *w *= s;
            }
        }
        for ((b, &s), &t) in self.bias.iter_mut().zip(scale).zip(shift) {
            *b = *b * s + t;
        }
    }
}

/// LayerNorm parameters (`[dim]` each).
#[derive(Debug, Clone, PartialEq)]
pub struct LayerNormParams {
    /// Scale.
    pub gamma: Vec<f64>,
    /// Shift.
    pub beta: Vec<f64>,
}

/// One block with its BatchNorms folded away.
#[derive(Debug, Clone, PartialEq)]
pub struct ReferenceBlock {
    /// LayerNorm before attention (`None`: the BatchNorm was folded into `qkv`).
    pub norm1: Option<LayerNormParams>,
    /// Fused Q, K, V projection `[dim, 3 dim]`, output columns `[q | k | v]`, heads contiguous in each.
    pub qkv: Dense,
    /// Output projection `[dim, dim]` (the across-heads BatchNorm folded in, if any).
    pub proj: Dense,
    /// LayerNorm before the MLP (`None`: the BatchNorm was folded into `fc1`).
    pub norm2: Option<LayerNormParams>,
    /// First MLP layer `[dim, hidden]` (the MLP BatchNorm folded in, if any).
    pub fc1: Dense,
    /// Second MLP layer `[hidden, dim]`.
    pub fc2: Dense,
}

/// How inputs become the first token rows.
#[derive(Debug, Clone, PartialEq)]
pub enum Embedding {
    /// Vision: patch embedding and an optional class token.
    Patches {
        /// `[channels * patch^2, dim]`, patch pixels channel-major then row-major.
        linear: Dense,
        /// The class token `[dim]`, prepended before the positions are added.
        class_token: Option<Vec<f64>>,
    },
    /// Language: the token table.
    Tokens {
        /// `[vocab, dim]` row-major.
        table: Vec<f64>,
        /// Vocabulary size.
        vocab: usize,
    },
}

/// The f64 reference model (BatchNorms folded). The fields are public for the encrypted inference to
/// read; their sizes must stay as [`ReferenceModel::new`] builds them (`dim`-wide rows, `qkv` `3 dim`
/// wide, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct ReferenceModel {
    /// The configuration.
    pub config: ModelConfig,
    /// Input embedding.
    pub embedding: Embedding,
    /// Learned positions `[tokens, dim]` row-major.
    pub pos: Vec<f64>,
    /// The blocks.
    pub blocks: Vec<ReferenceBlock>,
    /// Final LayerNorm (`None`: the BatchNorm was folded into `head`).
    pub norm: Option<LayerNormParams>,
    /// Classifier / next-token head `[dim, classes or vocab]`.
    pub head: Dense,
    /// Polynomials replacing sites (sites without one, or `None`, use the exact functions).
    pub polys: Option<PolySet>,
}

/// A site resolved once: its kind and the polynomial replacing it, if any.
#[derive(Debug, Clone, Copy)]
struct Site<'a> {
    kind: SiteKind,
    poly: Option<&'a SitePoly>,
}

impl Site<'_> {
    fn eval(&self, x: f64) -> f64 {
        match self.poly {
            Some(p) => p.eval(x),
            None => self.kind.exact(x),
        }
    }
}

/// A normalisation as read from the weights.
enum LoadedNorm {
    Layer(LayerNormParams),
    /// BatchNorm as `x * scale + shift`.
    Batch(Vec<f64>, Vec<f64>),
}

/// Attention weighting of one block, sites resolved.
enum Weighting<'a> {
    Softmax,
    Pointwise {
        sigma: Site<'a>,
        factor: f64,
        placement: ScalePlacement,
    },
    Power {
        p: i32,
        eps: f64,
        den: Site<'a>,
        /// The sequence length L of the mean (a public constant).
        len: f64,
    },
}

/// Shape-checked access to the weights.
struct Tensors<'a>(&'a Weights);

impl Tensors<'_> {
    fn get(&self, name: &str, shape: &[usize]) -> Result<Vec<f64>, ReferenceError> {
        let (found, values) = self
            .0
            .get(name)
            .ok_or_else(|| ReferenceError::MissingTensor(name.to_string()))?;
        if found.as_slice() != shape {
            return Err(ReferenceError::Shape {
                name: name.to_string(),
                expected: shape.to_vec(),
                found: found.clone(),
            });
        }
        let count: usize = shape.iter().product();
        if values.len() != count {
            return Err(ReferenceError::InvalidTensor {
                name: name.to_string(),
                detail: format!("{} values for shape {shape:?}", values.len()),
            });
        }
        Ok(values.clone())
    }

    fn dense(&self, prefix: &str, rows: usize, cols: usize) -> Result<Dense, ReferenceError> {
        Ok(Dense {
            weight: self.get(&format!("{prefix}.weight"), &[rows, cols])?,
            rows,
            cols,
            bias: self.get(&format!("{prefix}.bias"), &[cols])?,
        })
    }

    fn layer_norm(&self, prefix: &str, n: usize) -> Result<LayerNormParams, ReferenceError> {
        Ok(LayerNormParams {
            gamma: self.get(&format!("{prefix}.gamma"), &[n])?,
            beta: self.get(&format!("{prefix}.beta"), &[n])?,
        })
    }

    /// BatchNorm `prefix` at inference as `(scale, shift)`.
    fn batch_norm(&self, prefix: &str, n: usize) -> Result<(Vec<f64>, Vec<f64>), ReferenceError> {
        let gamma = self.get(&format!("{prefix}.gamma"), &[n])?;
        let beta = self.get(&format!("{prefix}.beta"), &[n])?;
        let mean = self.get(&format!("{prefix}.running_mean"), &[n])?;
        let var_name = format!("{prefix}.running_var");
        let var = self.get(&var_name, &[n])?;
        let mut scale = Vec::with_capacity(n);
        let mut shift = Vec::with_capacity(n);
        for c in 0..n {
            let v = var[c] + BN_EPS;
            if !(v.is_finite() && v > 0.0) {
                return Err(ReferenceError::InvalidTensor {
                    name: var_name,
                    detail: format!("channel {c}: running_var + eps = {v} is not a positive number"),
                });
            }
            let s = gamma[c] / v.sqrt();
            scale.push(s);
            shift.push(beta[c] - mean[c] * s);
        }
        Ok((scale, shift))
    }

    fn norm(&self, kind: NormKind, prefix: &str, n: usize) -> Result<LoadedNorm, ReferenceError> {
        Ok(match kind {
            NormKind::LayerNorm => LoadedNorm::Layer(self.layer_norm(&format!("{prefix}.ln"), n)?),
            NormKind::BatchNorm { .. } => {
                let (s, t) = self.batch_norm(&format!("{prefix}.bn"), n)?;
                LoadedNorm::Batch(s, t)
            }
        })
    }
}

/// A LayerNorm stays; a BatchNorm is folded into the input side of `next`.
fn fold_norm_into(norm: LoadedNorm, next: &mut Dense) -> Option<LayerNormParams> {
    match norm {
        LoadedNorm::Layer(p) => Some(p),
        LoadedNorm::Batch(s, t) => {
            next.fold_input(&s, &t);
            None
        }
    }
}

/// Turns one query row's scores `Q K^T / sqrt(d_head)` into attention weights in place, as
/// `Attention::forward` in inference mode (keys after `query` masked when `causal`).
fn attention_row(w: &Weighting<'_>, scores: &mut [f64], query: usize, causal: bool) {
    let keep = |j: usize| !causal || j <= query;
    match w {
        Weighting::Softmax => {
            // The additive mask: -1e9 above the diagonal.
            for (j, s) in scores.iter_mut().enumerate() {
                if !keep(j) {
                    *s += -1e9;
                }
            }
            let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let mut sum = 0.0;
            for s in scores.iter_mut() {
                *s = (*s - max).exp();
                sum += *s;
            }
            for s in scores.iter_mut() {
                *s /= sum;
            }
        }
        Weighting::Pointwise {
            sigma,
            factor,
            placement,
        } => {
            // sigma, the length scaling, then the multiplicative mask.
            for (j, s) in scores.iter_mut().enumerate() {
                let mut v = *s;
                if matches!(placement, ScalePlacement::Before | ScalePlacement::Both) {
                    v /= factor;
                }
                v = sigma.eval(v);
                if matches!(placement, ScalePlacement::After | ScalePlacement::Both) {
                    v /= factor;
                }
                *s = if keep(j) { v } else { 0.0 };
            }
        }
        Weighting::Power { p, eps, den, len } => {
            // x^p masked, times 1 / (mean_j x^p + eps / L) (the site), times 1 / L.
            let mut sum = 0.0;
            for (j, s) in scores.iter_mut().enumerate() {
                *s = if keep(j) { s.powi(*p) } else { 0.0 };
                sum += *s;
            }
            let inv = den.eval(sum / len + eps / len);
            for s in scores.iter_mut() {
                *s = *s * inv / len;
            }
        }
    }
}

fn add_rows(x: &mut [Vec<f64>], y: &[Vec<f64>]) {
    for (xr, yr) in x.iter_mut().zip(y) {
        for (a, b) in xr.iter_mut().zip(yr) {
            *a += b;
        }
    }
}

impl ReferenceModel {
    /// Builds the reference model from f64 weights (names and shapes as in [`crate::model`]), folding
    /// every BatchNorm. `polys` replaces the sites it has polynomials for.
    pub fn new(
        config: &ModelConfig,
        weights: &Weights,
        polys: Option<&PolySet>,
    ) -> Result<Self, ReferenceError> {
        config.validate().map_err(ReferenceError::Config)?;
        let w = Tensors(weights);
        let d = config.dim;
        let extra = matches!(config.norm, NormKind::BatchNorm { extra: true });
        let (embedding, outputs) = match config.task {
            TaskConfig::Vision {
                channels,
                patch,
                num_classes,
                class_token,
                ..
            } => {
                let linear = w.dense("patch", channels * patch * patch, d)?;
                let class_token = if class_token {
                    Some(w.get("cls", &[1, 1, d])?)
                } else {
                    None
                };
                (Embedding::Patches { linear, class_token }, num_classes)
            }
            TaskConfig::Language { vocab, .. } => (
                Embedding::Tokens {
                    table: w.get("tok.weight", &[vocab, d])?,
                    vocab,
                },
                vocab,
            ),
        };
        let pos = w.get("pos", &[1, config.tokens(), d])?;
        let mut blocks = Vec::with_capacity(config.depth);
        for i in 0..config.depth {
            let pre = format!("blocks.{i}");
            let mut qkv = w.dense(&format!("{pre}.attn.qkv"), d, 3 * d)?;
            let norm1 = fold_norm_into(w.norm(config.norm, &format!("{pre}.norm1"), d)?, &mut qkv);
            let mut proj = w.dense(&format!("{pre}.attn.proj"), d, d)?;
            if extra {
                let (s, t) = w.batch_norm(&format!("{pre}.attn.head_bn"), d)?;
                proj.fold_input(&s, &t);
            }
            let mut fc1 = w.dense(&format!("{pre}.mlp.fc1"), d, config.mlp_hidden)?;
            let norm2 = fold_norm_into(w.norm(config.norm, &format!("{pre}.norm2"), d)?, &mut fc1);
            if extra {
                let (s, t) = w.batch_norm(&format!("{pre}.mlp.bn"), config.mlp_hidden)?;
                fc1.fold_output(&s, &t);
            }
            let fc2 = w.dense(&format!("{pre}.mlp.fc2"), config.mlp_hidden, d)?;
            blocks.push(ReferenceBlock {
                norm1,
                qkv,
                proj,
                norm2,
                fc1,
                fc2,
            });
        }
        let mut head = w.dense("head", d, outputs)?;
        let norm = fold_norm_into(w.norm(config.norm, "norm", d)?, &mut head);
        Ok(ReferenceModel {
            config: *config,
            embedding,
            pos,
            blocks,
            norm,
            head,
            polys: polys.cloned(),
        })
    }

    /// Reads a stage directory: `checkpoint.json` (configuration and polynomials) and
    /// `weights_f64.safetensors`.
    pub fn from_checkpoint(dir: &Path) -> Result<Self, ReferenceError> {
        let meta = Checkpoint::meta(dir)?;
        let weights = read_f64_safetensors(&dir.join("weights_f64.safetensors"))?;
        Self::new(&meta.config, &weights, meta.polys.as_ref())
    }

    fn site(&self, name: &str, kind: SiteKind) -> Site<'_> {
        Site {
            kind,
            poly: self.polys.as_ref().and_then(|p| p.get(name)),
        }
    }

    /// Evaluates site `name` at `x`: its polynomial if one is fitted, else the exact function of `kind`.
    pub fn eval_site(&self, name: &str, kind: SiteKind, x: f64) -> f64 {
        self.site(name, kind).eval(x)
    }

    /// Cuts one `[channels, s, s]` image into `(s / p)^2` patch rows of `channels * p * p` values
    /// (patches row-major over the grid; within a patch channel-major, then row-major).
    pub fn patchify(&self, image: &[f64]) -> Result<Vec<Vec<f64>>, ReferenceError> {
        let TaskConfig::Vision {
            image_size: s,
            channels: c,
            patch: p,
            ..
        } = self.config.task
        else {
            return Err(ReferenceError::Input("patchify needs a vision model".into()));
        };
        patchify_image(image, c, s, p).map_err(ReferenceError::Input)
    }

    /// The token rows entering the first block for one normalised `[channels, s, s]` image: patch
    /// embedding, class token (if any) prepended, positions added.
    pub fn embed_image(&self, image: &[f64]) -> Result<Vec<Vec<f64>>, ReferenceError> {
        let Embedding::Patches { linear, class_token } = &self.embedding else {
            return Err(ReferenceError::Input("image input to a language model".into()));
        };
        let patches = self.patchify(image)?;
        let mut x = Vec::with_capacity(patches.len() + 1);
        if let Some(cls) = class_token {
            x.push(cls.clone());
        }
        x.extend(patches.iter().map(|r| linear.apply(r)));
        self.add_positions(&mut x);
        Ok(x)
    }

    /// The token rows entering the first block for a sequence of token ids (at most `seq_len`):
    /// embeddings plus the first `ids.len()` positions.
    pub fn embed_tokens(&self, ids: &[u32]) -> Result<Vec<Vec<f64>>, ReferenceError> {
        let Embedding::Tokens { table, vocab } = &self.embedding else {
            return Err(ReferenceError::Input("token input to a vision model".into()));
        };
        let d = self.config.dim;
        if ids.is_empty() || ids.len() > self.config.tokens() {
            return Err(ReferenceError::Input(format!(
                "{} tokens, expected 1 to {}",
                ids.len(),
                self.config.tokens()
            )));
        }
        let mut x = Vec::with_capacity(ids.len());
        for &id in ids {
            let id = id as usize;
            if id >= *vocab {
                return Err(ReferenceError::Input(format!(
                    "token id {id} outside the vocabulary of {vocab}"
                )));
            }
            let row = table.get(id * d..(id + 1) * d).ok_or_else(|| {
                ReferenceError::Input(format!("token id {id}: the embedding table has no such row"))
            })?;
            x.push(row.to_vec());
        }
        self.add_positions(&mut x);
        Ok(x)
    }

    fn add_positions(&self, x: &mut [Vec<f64>]) {
        let d = self.config.dim.max(1);
        for (row, p) in x.iter_mut().zip(self.pos.chunks_exact(d)) {
            for (a, b) in row.iter_mut().zip(p) {
                *a += b;
            }
        }
    }

    /// LayerNorm of one row with the inverse square root at site `{prefix}.var`.
    pub fn layer_norm(&self, x: &[f64], params: &LayerNormParams, prefix: &str) -> Vec<f64> {
        self.layer_norm_with(x, params, self.site(&format!("{prefix}.var"), SiteKind::InvSqrt))
    }

    fn layer_norm_with(&self, x: &[f64], params: &LayerNormParams, inv: Site<'_>) -> Vec<f64> {
        normalize(x, inv)
            .iter()
            .zip(&params.gamma)
            .zip(&params.beta)
            .map(|((c, g), b)| c * g + b)
            .collect()
    }

    /// Applies an optional LayerNorm (site prefix `prefix`) to every row; `None` is the identity (a
    /// BatchNorm folded into the next layer).
    fn norm_rows(&self, x: &[Vec<f64>], norm: Option<&LayerNormParams>, prefix: &str) -> Vec<Vec<f64>> {
        match norm {
            Some(p) => {
                let inv = self.site(&format!("{prefix}.var"), SiteKind::InvSqrt);
                x.iter().map(|r| self.layer_norm_with(r, p, inv)).collect()
            }
            None => x.to_vec(),
        }
    }

    /// How block `index` turns scores into attention weights for a sequence of `len` tokens.
    fn weighting(&self, index: usize, len: usize) -> Weighting<'_> {
        match self.config.attention {
            AttentionKind::Softmax => Weighting::Softmax,
            AttentionKind::Pointwise {
                act,
                scaling,
                placement,
            } => Weighting::Pointwise {
                sigma: self.site(&format!("blocks.{index}.attn.sigma"), SiteKind::Act(act)),
                factor: scaling.factor(len),
                placement,
            },
            AttentionKind::PowerSoftmax { p, eps } => Weighting::Power {
                p: i32::try_from(p).unwrap_or(i32::MAX),
                eps,
                den: self.site(&format!("blocks.{index}.attn.den"), SiteKind::Reciprocal),
                len: len as f64,
            },
        }
    }

    /// Multi-head attention of block `index` on the normalised rows `h` (`[len, dim]`), projection
    /// included (not the residual). An `index` past the blocks gives no rows.
    pub fn attention(&self, index: usize, h: &[Vec<f64>], causal: bool) -> Vec<Vec<f64>> {
        let Some(blk) = self.blocks.get(index) else {
            return Vec::new();
        };
        self.attention_heads(index, h, causal)
            .iter()
            .map(|r| blk.proj.apply(r))
            .collect()
    }

    /// The heads' outputs of block `index`'s attention, side by side (`[len, dim]`), before the
    /// projection.
    fn attention_heads(&self, index: usize, h: &[Vec<f64>], causal: bool) -> Vec<Vec<f64>> {
        let Some(blk) = self.blocks.get(index) else {
            return Vec::new();
        };
        let d = self.config.dim;
        let (heads, dh) = (self.config.heads, self.config.head_dim());
        let sqrt_dh = (dh as f64).sqrt();
        let qkv: Vec<Vec<f64>> = h.iter().map(|r| blk.qkv.apply(r)).collect();
        let l = qkv.len();
        // The length scaling uses the model's sequence length, a public constant, also for shorter inputs
        // (as `Transformer` does), so a position's output does not depend on what follows it.
        let weighting = self.weighting(index, self.config.tokens());
        let mut o = vec![vec![0.0; d]; l];
        for head in 0..heads {
            let (qo, ko, vo) = (head * dh, d + head * dh, 2 * d + head * dh);
            for (i, oi) in o.iter_mut().enumerate() {
                let q = &qkv[i][qo..qo + dh];
                let mut scores: Vec<f64> = qkv
                    .iter()
                    .map(|kr| q.iter().zip(&kr[ko..ko + dh]).map(|(a, b)| a * b).sum::<f64>() / sqrt_dh)
                    .collect();
                attention_row(&weighting, &mut scores, i, causal);
                for (a, vr) in scores.iter().zip(&qkv) {
                    for (oe, ve) in oi[qo..qo + dh].iter_mut().zip(&vr[vo..vo + dh]) {
                        *oe += a * ve;
                    }
                }
            }
        }
        o
    }

    /// The MLP of block `index` on normalised rows (not the residual). An `index` past the blocks gives
    /// no rows.
    pub fn mlp(&self, index: usize, h: &[Vec<f64>]) -> Vec<Vec<f64>> {
        let Some(blk) = self.blocks.get(index) else {
            return Vec::new();
        };
        let act = self.site(
            &format!("blocks.{index}.mlp.act"),
            SiteKind::Act(self.config.mlp_act),
        );
        h.iter()
            .map(|r| {
                let u: Vec<f64> = blk.fc1.apply(r).into_iter().map(|v| act.eval(v)).collect();
                blk.fc2.apply(&u)
            })
            .collect()
    }

    /// Block `index` on the rows `x`: `x + attn(norm1(x))`, then `x + mlp(norm2(x))` (`x` unchanged for
    /// an `index` past the blocks).
    pub fn block_forward(&self, index: usize, mut x: Vec<Vec<f64>>, causal: bool) -> Vec<Vec<f64>> {
        let Some(blk) = self.blocks.get(index) else {
            return x;
        };
        let h = self.norm_rows(&x, blk.norm1.as_ref(), &format!("blocks.{index}.norm1"));
        add_rows(&mut x, &self.attention(index, &h, causal));
        let h = self.norm_rows(&x, blk.norm2.as_ref(), &format!("blocks.{index}.norm2"));
        add_rows(&mut x, &self.mlp(index, &h));
        x
    }

    /// All blocks, then the final LayerNorm (if not folded into the head).
    pub fn encode(&self, mut x: Vec<Vec<f64>>, causal: bool) -> Vec<Vec<f64>> {
        for i in 0..self.blocks.len() {
            x = self.block_forward(i, x, causal);
        }
        self.norm_rows(&x, self.norm.as_ref(), "norm")
    }

    /// Class logits of one normalised `[channels, s, s]` image (row-major), as
    /// `Transformer::forward_images` in inference mode.
    pub fn forward_image(&self, image: &[f64]) -> Result<Vec<f64>, ReferenceError> {
        let x = self.encode(self.embed_image(image)?, false);
        let d = self.config.dim;
        let pooled = match &self.embedding {
            Embedding::Patches {
                class_token: Some(_), ..
            } => x.first().cloned().unwrap_or_else(|| vec![0.0; d]),
            _ => {
                let mut m = vec![0.0; d];
                for r in &x {
                    for (a, b) in m.iter_mut().zip(r) {
                        *a += b;
                    }
                }
                let n = x.len().max(1) as f64;
                m.iter_mut().for_each(|v| *v /= n);
                m
            }
        };
        Ok(self.head.apply(&pooled))
    }

    /// The token matrix after each layer of one image, at the points where
    /// [`crate::encrypted::EncryptedVit::forward_traced`] taps the encrypted forward: `embed`, per block
    /// `blocks.{i}.attn` and `blocks.{i}.mlp`, and `logits` (one row). Models whose norms are all
    /// folded (BatchNorm) only: the points sit between the residual additions.
    ///
    /// # Errors
    /// [`ReferenceError::Input`] for a model with an unfolded (Layer) norm or an image of another size.
    pub fn trace_image(&self, image: &[f64]) -> Result<Vec<LayerValues>, ReferenceError> {
        if self.norm.is_some() || self.blocks.iter().any(|b| b.norm1.is_some() || b.norm2.is_some()) {
            return Err(ReferenceError::Input(
                "traces are defined for folded (BatchNorm) models".into(),
            ));
        }
        let mut x = self.embed_image(image)?;
        let mut trace = vec![("embed".to_string(), x.clone())];
        for i in 0..self.blocks.len() {
            let a = self.attention(i, &x, false);
            add_rows(&mut x, &a);
            trace.push((format!("blocks.{i}.attn"), x.clone()));
            let m = self.mlp(i, &x);
            add_rows(&mut x, &m);
            trace.push((format!("blocks.{i}.mlp"), x.clone()));
        }
        trace.push(("logits".to_string(), vec![self.forward_image(image)?]));
        Ok(trace)
    }

    /// The token matrix at the points where [`crate::encrypted_lm::EncryptedLm`] may bootstrap and
    /// where its traced forward taps the encrypted values, for one token sequence: `embed`, per block
    /// `blocks.{i}.norm1` (the normalised rows before `gamma` and `beta`), `blocks.{i}.heads` (the
    /// attention heads before the projection), `blocks.{i}.attn` (after the attention residual),
    /// `blocks.{i}.norm2`, `blocks.{i}.mlp` (after the MLP residual), then `norm` and `logits`. LayerNorm
    /// models only.
    ///
    /// # Errors
    /// [`ReferenceError::Input`] for a vision model, a model without LayerNorms, or bad token ids.
    pub fn trace_tokens(&self, ids: &[u32]) -> Result<Vec<LayerValues>, ReferenceError> {
        let (Some(final_norm), true) = (
            self.norm.as_ref(),
            self.blocks.iter().all(|b| b.norm1.is_some() && b.norm2.is_some()),
        ) else {
            return Err(ReferenceError::Input(
                "token traces are defined for LayerNorm models".into(),
            ));
        };
        let mut x = self.embed_tokens(ids)?;
        let mut trace = vec![("embed".to_string(), x.clone())];
        let normalized = |x: &[Vec<f64>], prefix: &str| -> Vec<Vec<f64>> {
            let inv = self.site(&format!("{prefix}.var"), SiteKind::InvSqrt);
            x.iter().map(|r| normalize(r, inv)).collect()
        };
        for (i, blk) in self.blocks.iter().enumerate() {
            let prefix = format!("blocks.{i}.norm1");
            trace.push((prefix.clone(), normalized(&x, &prefix)));
            let h = self.norm_rows(&x, blk.norm1.as_ref(), &prefix);
            let heads = self.attention_heads(i, &h, true);
            trace.push((format!("blocks.{i}.heads"), heads.clone()));
            let a: Vec<Vec<f64>> = heads.iter().map(|r| blk.proj.apply(r)).collect();
            add_rows(&mut x, &a);
            trace.push((format!("blocks.{i}.attn"), x.clone()));
            let prefix = format!("blocks.{i}.norm2");
            trace.push((prefix.clone(), normalized(&x, &prefix)));
            let h = self.norm_rows(&x, blk.norm2.as_ref(), &prefix);
            add_rows(&mut x, &self.mlp(i, &h));
            trace.push((format!("blocks.{i}.mlp"), x.clone()));
        }
        trace.push(("norm".to_string(), normalized(&x, "norm")));
        let h = self.norm_rows(&x, Some(final_norm), "norm");
        trace.push((
            "logits".to_string(),
            h.iter().map(|r| self.head.apply(r)).collect(),
        ));
        Ok(trace)
    }

    /// Class logits of `n` images stored one after another (`images.len() = n * channels * s * s`).
    pub fn forward_images(&self, images: &[f64]) -> Result<Vec<Vec<f64>>, ReferenceError> {
        let TaskConfig::Vision {
            image_size, channels, ..
        } = self.config.task
        else {
            return Err(ReferenceError::Input("image input to a language model".into()));
        };
        let size = channels * image_size * image_size;
        if size == 0 || !images.len().is_multiple_of(size) {
            return Err(ReferenceError::Input(format!(
                "{} values are not a whole number of {size}-value images",
                images.len()
            )));
        }
        images
            .chunks_exact(size)
            .map(|img| self.forward_image(img))
            .collect()
    }

    /// Next-token logits at every position of `ids` (at most `seq_len` tokens, causal), as
    /// `Transformer::forward_tokens`.
    pub fn forward_tokens(&self, ids: &[u32]) -> Result<Vec<Vec<f64>>, ReferenceError> {
        let x = self.encode(self.embed_tokens(ids)?, true);
        Ok(x.iter().map(|r| self.head.apply(r)).collect())
    }
}

/// `(x - mean) * inv(var + eps)` of one row: a LayerNorm before its `gamma` and `beta`.
fn normalize(x: &[f64], inv: Site<'_>) -> Vec<f64> {
    let n = x.len().max(1) as f64;
    let mean = x.iter().sum::<f64>() / n;
    let centred: Vec<f64> = x.iter().map(|v| v - mean).collect();
    let var = centred.iter().map(|c| c * c).sum::<f64>() / n + LN_EPS;
    let inv = inv.eval(var);
    centred.iter().map(|c| c * inv).collect()
}

/// Cuts one `[channels, s, s]` image (row-major) into `(s / p)^2` patch rows of `channels * p * p`
/// values: patches row-major over the grid, within a patch channel-major, then row-major (the order of
/// `Transformer::patchify`). Errors name a patch that does not divide the side or an image of another
/// size.
pub fn patchify_image(image: &[f64], c: usize, s: usize, p: usize) -> Result<Vec<Vec<f64>>, String> {
    if p == 0 || !s.is_multiple_of(p) {
        return Err(format!("patch {p} does not divide the image side {s}"));
    }
    if image.len() != c * s * s {
        return Err(format!(
            "image of {} values, expected {c} x {s} x {s}",
            image.len()
        ));
    }
    let g = s / p;
    let mut rows = Vec::with_capacity(g * g);
    for gy in 0..g {
        for gx in 0..g {
            let mut row = Vec::with_capacity(c * p * p);
            for ch in 0..c {
                for py in 0..p {
                    let start = ch * s * s + (gy * p + py) * s + gx * p;
                    row.extend_from_slice(&image[start..start + p]);
                }
            }
            rows.push(row);
        }
    }
    Ok(rows)
}
