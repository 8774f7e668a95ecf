//! Checkpoints: a directory per stage holding
//!
//! - `checkpoint.json`: format version, stage, [`ModelConfig`], data preparation, recorded ranges,
//!   fitted polynomials and metrics ([`CheckpointMeta`]);
//! - `model.safetensors`: the burn module (f32, burn's module paths as names; reloads into burn);
//! - `weights_f64.safetensors`: the same tensors as F64 under the same names (the export read by the f64
//!   reference and the encrypted inference).

use std::collections::BTreeMap;
use std::path::Path;

use burn::tensor::backend::Backend;
use burn_store::{ModuleSnapshot, SafetensorsStore};
use serde::{Deserialize, Serialize};

use super::config::ModelConfig;
use super::nn::Transformer;
use super::sites::{FitConfig, PolySet, RangeRecord};

/// Version of the checkpoint layout.
pub const CHECKPOINT_VERSION: u32 = 1;

/// Errors reading or writing checkpoints.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// File system.
    #[error("checkpoint i/o: {0}")]
    Io(#[from] std::io::Error),
    /// JSON metadata.
    #[error("checkpoint metadata: {0}")]
    Json(#[from] serde_json::Error),
    /// Anything malformed or mismatched.
    #[error("checkpoint: {0}")]
    Format(String),
}

/// Which stage of the conversion a checkpoint holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Stage {
    /// The original transformer (softmax attention, LayerNorm), for comparison.
    Original,
    /// Stage 1: the HE-friendly model trained from scratch.
    HeFriendly,
    /// Stage 2: after range/variance-minimisation fine-tuning.
    RangeMin,
    /// Stage 3: polynomials substituted, no training.
    Polynomial,
    /// Stage 4: short fine-tune with the polynomials in place.
    PolynomialTuned,
}

impl Stage {
    /// Directory name.
    pub fn dir_name(self) -> &'static str {
        match self {
            Stage::Original => "original",
            Stage::HeFriendly => "he_friendly",
            Stage::RangeMin => "range_min",
            Stage::Polynomial => "polynomial",
            Stage::PolynomialTuned => "polynomial_tuned",
        }
    }
}

/// How raw inputs become model inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum DataPrep {
    /// Pixels in [0, 1] normalised as `(x - mean) / std`.
    Images {
        /// Data set name.
        dataset: String,
        /// Mean.
        mean: f32,
        /// Standard deviation.
        std: f32,
    },
    /// Word-level tokens.
    Words {
        /// Data set name.
        dataset: String,
        /// The vocabulary by id (`<unk>` = 0, `<eos>` = 1).
        vocab: Vec<String>,
    },
}

/// Everything about a checkpoint except the weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointMeta {
    /// [`CHECKPOINT_VERSION`].
    pub version: u32,
    /// Stage.
    pub stage: Stage,
    /// The model.
    pub config: ModelConfig,
    /// Input preparation.
    pub data: DataPrep,
    /// Site ranges recorded on the training data (stages 2-4).
    pub ranges: Option<RangeRecord>,
    /// How the polynomials were fitted.
    pub fit: Option<FitConfig>,
    /// The polynomials (stages 3-4).
    pub polys: Option<PolySet>,
    /// Named metrics (held-out accuracy, perplexity, ...).
    pub metrics: BTreeMap<String, f64>,
}

/// Saving and loading.
pub struct Checkpoint;

impl Checkpoint {
    /// Writes the burn module as safetensors (f32).
    pub fn save_weights<B: Backend>(model: &Transformer<B>, path: &Path) -> Result<(), CheckpointError> {
        let mut store = SafetensorsStore::from_file(path).overwrite(true);
        model
            .save_into(&mut store)
            .map_err(|e| CheckpointError::Format(format!("saving {}: {e}", path.display())))
    }

    /// Loads weights into a model of the same configuration; every tensor must be present.
    pub fn load_weights<B: Backend>(
        mut model: Transformer<B>,
        path: &Path,
    ) -> Result<Transformer<B>, CheckpointError> {
        let mut store = SafetensorsStore::from_file(path);
        let r = model
            .load_from(&mut store)
            .map_err(|e| CheckpointError::Format(format!("loading {}: {e}", path.display())))?;
        if !r.missing.is_empty() || !r.errors.is_empty() {
            return Err(CheckpointError::Format(format!(
                "{}: missing tensors {:?}, errors {:?}",
                path.display(),
                r.missing,
                r.errors
            )));
        }
        Ok(model)
    }

    /// Writes a stage directory: weights (f32 and f64) and metadata.
    pub fn save<B: Backend>(
        dir: &Path,
        model: &Transformer<B>,
        meta: &CheckpointMeta,
    ) -> Result<(), CheckpointError> {
        if meta.config != *model.cfg() {
            return Err(CheckpointError::Format(
                "metadata config differs from the model's".into(),
            ));
        }
        std::fs::create_dir_all(dir)?;
        Self::save_weights(model, &dir.join("model.safetensors"))?;
        write_f64_safetensors(&dir.join("weights_f64.safetensors"), &export_f64(model)?)?;
        std::fs::write(dir.join("checkpoint.json"), serde_json::to_vec_pretty(meta)?)?;
        Ok(())
    }

    /// Reads the metadata of a stage directory.
    pub fn meta(dir: &Path) -> Result<CheckpointMeta, CheckpointError> {
        let meta: CheckpointMeta = serde_json::from_slice(&std::fs::read(dir.join("checkpoint.json"))?)?;
        if meta.version != CHECKPOINT_VERSION {
            return Err(CheckpointError::Format(format!(
                "checkpoint version {} (this build reads {CHECKPOINT_VERSION})",
                meta.version
            )));
        }
        meta.config.validate().map_err(CheckpointError::Format)?;
        Ok(meta)
    }

    /// Loads a stage directory onto `device`.
    pub fn load<B: Backend>(
        dir: &Path,
        device: &B::Device,
    ) -> Result<(Transformer<B>, CheckpointMeta), CheckpointError> {
        let meta = Self::meta(dir)?;
        let model = Self::load_weights(
            Transformer::new(&meta.config, device),
            &dir.join("model.safetensors"),
        )?;
        Ok((model, meta))
    }
}

/// Named f64 tensors: name -> (shape, row-major values).
pub type Weights = BTreeMap<String, (Vec<usize>, Vec<f64>)>;

/// Every tensor of the model (parameters and BatchNorm running statistics) as f64, by burn module path.
pub fn export_f64<B: Backend>(model: &Transformer<B>) -> Result<Weights, CheckpointError> {
    let mut out = Weights::new();
    for snap in model.collect(None, None, false) {
        let name = snap.full_path();
        let data = snap
            .to_data()
            .map_err(|e| CheckpointError::Format(format!("tensor {name}: {e:?}")))?;
        let shape = data.shape.to_vec();
        let values: Vec<f64> = data
            .convert::<f64>()
            .to_vec::<f64>()
            .map_err(|e| CheckpointError::Format(format!("tensor {name}: {e:?}")))?;
        out.insert(name, (shape, values));
    }
    Ok(out)
}

#[derive(Serialize, Deserialize)]
struct StEntry {
    dtype: String,
    shape: Vec<usize>,
    data_offsets: [usize; 2],
}

/// Writes F64 tensors in the safetensors format (8-byte little-endian header length, JSON header,
/// little-endian data).
pub fn write_f64_safetensors(path: &Path, weights: &Weights) -> Result<(), CheckpointError> {
    let mut header = serde_json::Map::new();
    let mut body = Vec::new();
    for (name, (shape, values)) in weights {
        if shape.iter().product::<usize>() != values.len() {
            return Err(CheckpointError::Format(format!(
                "tensor {name}: shape {shape:?} vs {} values",
                values.len()
            )));
        }
        let start = body.len();
        for v in values {
            body.extend_from_slice(&v.to_le_bytes());
        }
        let e = StEntry {
            dtype: "F64".into(),
            shape: shape.clone(),
            data_offsets: [start, body.len()],
        };
        header.insert(name.clone(), serde_json::to_value(e)?);
    }
    let mut h = serde_json::to_vec(&header)?;
    while h.len() % 8 != 0 {
        h.push(b' ');
    }
    let mut out = Vec::with_capacity(8 + h.len() + body.len());
    out.extend_from_slice(&(h.len() as u64).to_le_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(&body);
    std::fs::write(path, out)?;
    Ok(())
}

/// Reads an F64 safetensors file written by [`write_f64_safetensors`] (or any F64/F32 safetensors),
/// checking every offset and shape.
pub fn read_f64_safetensors(path: &Path) -> Result<Weights, CheckpointError> {
    let bytes = std::fs::read(path)?;
    parse_f64_safetensors(&bytes)
}

/// Parses safetensors bytes (F64 or F32 tensors) into f64 tensors.
pub fn parse_f64_safetensors(bytes: &[u8]) -> Result<Weights, CheckpointError> {
    let bad = |m: String| CheckpointError::Format(m);
    let len_bytes: [u8; 8] = bytes
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| bad("safetensors: shorter than its header length".into()))?;
    let hlen = u64::from_le_bytes(len_bytes) as usize;
    let header = bytes
        .get(8..8usize.saturating_add(hlen))
        .ok_or_else(|| bad("safetensors: truncated header".into()))?;
    let body = &bytes[8 + hlen..];
    let map: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(header)?;
    let mut out = Weights::new();
    for (name, v) in map {
        if name == "__metadata__" {
            continue;
        }
        let e: StEntry = serde_json::from_value(v)?;
        let width = match e.dtype.as_str() {
            "F64" => 8,
            "F32" => 4,
            d => return Err(bad(format!("tensor {name}: dtype {d} not supported"))),
        };
        let [s, t] = e.data_offsets;
        let count = e.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        let raw = body
            .get(s..t)
            .filter(|r| Some(r.len()) == count.and_then(|c| c.checked_mul(width)))
            .ok_or_else(|| {
                bad(format!(
                    "tensor {name}: offsets {s}..{t} do not match shape {:?}",
                    e.shape
                ))
            })?;
        let values: Vec<f64> = if width == 8 {
            raw.chunks_exact(8)
                .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                .collect()
        } else {
            raw.chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64)
                .collect()
        };
        out.insert(name, (e.shape, values));
    }
    Ok(out)
}
