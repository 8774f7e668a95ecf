//! Model configurations and presets, serialised into every checkpoint.

use serde::{Deserialize, Serialize};

/// Which normalisation the blocks use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NormKind {
    /// LayerNorm over the width of each token; its `1/sqrt(var + eps)` becomes a polynomial site.
    LayerNorm,
    /// BatchNorm over the channels (running statistics at inference: an affine map that folds into the
    /// neighbouring linear layers). `extra` adds the paper's BatchNorm inside the MLP (after the first
    /// linear layer) and across the heads (on the concatenated head outputs, before the projection).
    BatchNorm {
        /// Add the MLP and across-heads BatchNorms.
        extra: bool,
    },
}

/// A pointwise activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Activation {
    /// `x * Phi(x)` (exact erf form).
    Gelu,
    /// `max(x, 0)`.
    Relu,
}

/// Where the length scaling `1/S(L)` of pointwise attention is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ScalePlacement {
    /// `sigma(s / S(L))`.
    Before,
    /// `sigma(s) / S(L)` (the paper's best with `S = sqrt(L)`).
    After,
    /// `sigma(s / S(L)) / S(L)`.
    Both,
}

/// The length scaling `S(L)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LengthScaling {
    /// `S(L) = 1` (no scaling; diverges early in the paper).
    None,
    /// `S(L) = sqrt(L)`.
    Sqrt,
    /// `S(L) = L`.
    Linear,
}

impl LengthScaling {
    /// `S(L)` for a sequence of `len` tokens.
    pub fn factor(self, len: usize) -> f64 {
        match self {
            LengthScaling::None => 1.0,
            LengthScaling::Sqrt => (len as f64).sqrt(),
            LengthScaling::Linear => len as f64,
        }
    }
}

/// How attention weights are formed from the scores `s = Q K^T / sqrt(d_head)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum AttentionKind {
    /// Row softmax (the original transformer; additive causal mask for the language model).
    Softmax,
    /// `sigma` applied to every score with the length scaling `1/S(L)`; multiplicative causal mask.
    Pointwise {
        /// The activation `sigma`.
        act: Activation,
        /// `S(L)`.
        scaling: LengthScaling,
        /// Where `1/S(L)` goes.
        placement: ScalePlacement,
    },
    /// Power-Softmax: `x_j^p / (eps + sum_i x_i^p)` with the multiplicative mask. During training the
    /// scores are divided by their row max |s| first (the ratio is unchanged up to eps); at inference the
    /// denominator is the row mean (`eps + mean_i x_i^p`, times `1/L`), whose reciprocal is a polynomial
    /// site.
    PowerSoftmax {
        /// The even power.
        p: u32,
        /// The denominator offset.
        eps: f64,
    },
}

/// What the model reads and predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskConfig {
    /// Image classification with a ViT: square `image_size` images of `channels` channels, cut into
    /// `patch x patch` patches; mean pooling over tokens (`class_token: false`) or a class token.
    Vision {
        /// Image side in pixels.
        image_size: usize,
        /// Colour channels.
        channels: usize,
        /// Patch side in pixels (divides `image_size`).
        patch: usize,
        /// Number of classes.
        num_classes: usize,
        /// Prepend a learned class token and classify from it (else mean-pool all tokens).
        class_token: bool,
    },
    /// Next-token prediction with a causal decoder over `seq_len` tokens of a `vocab`-word vocabulary.
    Language {
        /// Vocabulary size.
        vocab: usize,
        /// Context length.
        seq_len: usize,
    },
}

/// A transformer: the task, the width and depth, and the HE-friendly choices.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// Input and output.
    pub task: TaskConfig,
    /// Token width.
    pub dim: usize,
    /// Number of blocks.
    pub depth: usize,
    /// Attention heads (divide `dim`).
    pub heads: usize,
    /// MLP hidden width.
    pub mlp_hidden: usize,
    /// Normalisation.
    pub norm: NormKind,
    /// Attention weights.
    pub attention: AttentionKind,
    /// MLP activation.
    pub mlp_act: Activation,
}

impl ModelConfig {
    /// Tokens the blocks see (patches, plus the class token if any; or the context length).
    pub fn tokens(&self) -> usize {
        match self.task {
            TaskConfig::Vision {
                image_size,
                patch,
                class_token,
                ..
            } => (image_size / patch).pow(2) + usize::from(class_token),
            TaskConfig::Language { seq_len, .. } => seq_len,
        }
    }

    /// Width of one head.
    pub fn head_dim(&self) -> usize {
        self.dim / self.heads
    }

    /// Whether this is a causal language model.
    pub fn is_language(&self) -> bool {
        matches!(self.task, TaskConfig::Language { .. })
    }

    /// Checks the shapes fit together.
    pub fn validate(&self) -> Result<(), String> {
        if self.dim == 0 || self.depth == 0 || self.heads == 0 || self.mlp_hidden == 0 {
            return Err("dim, depth, heads and mlp_hidden must be positive".into());
        }
        if !self.dim.is_multiple_of(self.heads) {
            return Err(format!(
                "dim {} is not a multiple of heads {}",
                self.dim, self.heads
            ));
        }
        if let AttentionKind::PowerSoftmax { p, eps } = self.attention {
            if p == 0 || p % 2 != 0 || eps.is_nan() || eps <= 0.0 {
                return Err(format!(
                    "Power-Softmax needs an even p > 0 and eps > 0 (got p {p}, eps {eps})"
                ));
            }
        }
        match self.task {
            TaskConfig::Vision {
                image_size,
                channels,
                patch,
                num_classes,
                ..
            } => {
                if patch == 0 || image_size % patch != 0 || channels == 0 || num_classes < 2 {
                    return Err(format!(
                        "vision task: patch {patch} must divide image size {image_size}, channels > 0, \
                         classes >= 2"
                    ));
                }
            }
            TaskConfig::Language { vocab, seq_len } => {
                if vocab < 2 || seq_len == 0 {
                    return Err(format!(
                        "language task: vocab {vocab} and seq_len {seq_len} too small"
                    ));
                }
                if let NormKind::BatchNorm { .. } = self.norm {
                    // Allowed (the paper's ablation), but BatchNorm over a causal sequence leaks future
                    // tokens' statistics into training; the ablation reports it, nothing relies on it.
                }
            }
        }
        Ok(())
    }

    /// The HE-friendly attention the paper recommends: `GELU(s) / sqrt(L)`.
    pub fn he_attention() -> AttentionKind {
        AttentionKind::Pointwise {
            act: Activation::Gelu,
            scaling: LengthScaling::Sqrt,
            placement: ScalePlacement::After,
        }
    }

    /// Tiny ViT for tests: 8x8 single-channel images, patch 4 (4 tokens), width 16, one block.
    pub fn vit_tiny() -> Self {
        ModelConfig {
            task: TaskConfig::Vision {
                image_size: 8,
                channels: 1,
                patch: 4,
                num_classes: 10,
                class_token: false,
            },
            dim: 16,
            depth: 1,
            heads: 2,
            mlp_hidden: 32,
            norm: NormKind::BatchNorm { extra: true },
            attention: Self::he_attention(),
            mlp_act: Activation::Gelu,
        }
    }

    /// CPU-scale HE-friendly ViT for 28x28 Fashion-MNIST/MNIST: patch 7 (16 tokens), width 64, 2 blocks,
    /// 4 heads, MLP 128, BatchNorm with the extra BatchNorms, `GELU(s)/sqrt(L)` attention.
    pub fn vit_cpu() -> Self {
        ModelConfig {
            task: TaskConfig::Vision {
                image_size: 28,
                channels: 1,
                patch: 7,
                num_classes: 10,
                class_token: false,
            },
            dim: 64,
            depth: 2,
            heads: 4,
            mlp_hidden: 128,
            norm: NormKind::BatchNorm { extra: true },
            attention: Self::he_attention(),
            mlp_act: Activation::Gelu,
        }
    }

    /// The paper's CIFAR-100 ViT (documented; trained only with a GPU): 32x32x3, patch 4 (64 tokens),
    /// width 192, 9 blocks, 12 heads, MLP 384 (a small-dataset ViT in the style of the paper's).
    pub fn vit_paper_cifar100() -> Self {
        ModelConfig {
            task: TaskConfig::Vision {
                image_size: 32,
                channels: 3,
                patch: 4,
                num_classes: 100,
                class_token: false,
            },
            dim: 192,
            depth: 9,
            heads: 12,
            mlp_hidden: 384,
            norm: NormKind::BatchNorm { extra: true },
            attention: Self::he_attention(),
            mlp_act: Activation::Gelu,
        }
    }

    /// Tiny causal LM for tests: vocabulary 32, context 8, width 16, one block, LayerNorm.
    pub fn lm_tiny() -> Self {
        ModelConfig {
            task: TaskConfig::Language {
                vocab: 32,
                seq_len: 8,
            },
            dim: 16,
            depth: 1,
            heads: 2,
            mlp_hidden: 32,
            norm: NormKind::LayerNorm,
            attention: Self::he_attention(),
            mlp_act: Activation::Gelu,
        }
    }

    /// CPU-scale causal LM (vocabulary set from the data): context 32, width 128, 2 blocks, 4 heads,
    /// MLP 256, LayerNorm, `GELU(s)/sqrt(L)` attention.
    pub fn lm_cpu(vocab: usize) -> Self {
        ModelConfig {
            task: TaskConfig::Language { vocab, seq_len: 32 },
            dim: 128,
            depth: 2,
            heads: 4,
            mlp_hidden: 256,
            norm: NormKind::LayerNorm,
            attention: Self::he_attention(),
            mlp_act: Activation::Gelu,
        }
    }

    /// The paper's 6-layer WikiText-103 LM (documented; 53.3M parameters with its vocabulary): context
    /// 128 (?), width 512, 6 blocks, 8 heads, MLP 2048.
    pub fn lm_paper_6layer(vocab: usize) -> Self {
        ModelConfig {
            task: TaskConfig::Language { vocab, seq_len: 128 },
            dim: 512,
            depth: 6,
            heads: 8,
            mlp_hidden: 2048,
            norm: NormKind::LayerNorm,
            attention: Self::he_attention(),
            mlp_act: Activation::Gelu,
        }
    }

    /// The same model with the original transformer's choices: softmax attention and LayerNorm.
    pub fn original(&self) -> Self {
        ModelConfig {
            norm: NormKind::LayerNorm,
            attention: AttentionKind::Softmax,
            ..*self
        }
    }
}
