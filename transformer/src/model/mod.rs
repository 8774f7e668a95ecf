//! Polynomial (HE-friendly) transformers in burn: configuration, modules, training, the staged
//! conversion's pieces (range recording, polynomial fitting), and checkpoints.
//!
//! # Parameter names
//! The burn module paths, used in `model.safetensors` and `weights_f64.safetensors`:
//!
//! ```text
//! patch.weight [c*p*p, d], patch.bias [d]          vision: patch embedding (x @ W + b)
//! tok.weight [vocab, d]                             language: token embedding
//! cls [1, 1, d]                                     vision with class token
//! pos [1, tokens, d]                                learned positions
//! blocks.{i}.norm1.ln.{gamma,beta} [d]              LayerNorm (or .bn.{gamma,beta,running_mean,running_var})
//! blocks.{i}.attn.qkv.{weight [d, 3d], bias [3d]}   columns [q | k | v], heads contiguous within each
//! blocks.{i}.attn.head_bn.*  [d]                    BatchNorm across heads (BatchNorm ViT with extras)
//! blocks.{i}.attn.proj.{weight [d, d], bias [d]}
//! blocks.{i}.norm2.*                                as norm1
//! blocks.{i}.mlp.fc1.{weight [d, h], bias [h]}
//! blocks.{i}.mlp.bn.* [h]                           BatchNorm inside the MLP (BatchNorm ViT with extras)
//! blocks.{i}.mlp.fc2.{weight [h, d], bias [d]}
//! norm.*                                            final norm
//! head.{weight [d, out], bias [out]}
//! ```
//! Linear layers compute `x @ weight + bias` (burn's layout: weight is `[in, out]`). BatchNorm at
//! inference is `(x - running_mean) / sqrt(running_var + 1e-5) * gamma + beta` (running_var is burn's
//! biased batch variance). LayerNorm uses eps 1e-5 inside the square root.
//!
//! # Sites
//! Non-polynomial operations are named sites (`blocks.{i}.attn.sigma`, `blocks.{i}.attn.den`,
//! `blocks.{i}.mlp.act`, `blocks.{i}.norm{1,2}.var`, `norm.var`); [`sites`] records their input ranges
//! and fits the polynomials that replace them.

pub mod checkpoint;
pub mod config;
pub mod nn;
pub mod sites;
pub mod train;

pub use checkpoint::{Checkpoint, CheckpointError, CheckpointMeta, DataPrep, Stage};
pub use config::{
    Activation, AttentionKind, LengthScaling, ModelConfig, NormKind, ScalePlacement, TaskConfig,
};
pub use nn::{Forward, RangeTarget, Transformer};
pub use sites::{FitConfig, PolySet, RangeRecord, SiteKind, SitePoly};
pub use train::{
    audit_sites, evaluate, record_ranges, train, Cpu, CpuTrain, History, Metrics, RangeLoss, SiteAudit,
    TaskData, TrainConfig,
};
