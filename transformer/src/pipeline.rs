//! The paper's staged conversion, end to end for one model:
//!
//! 0. the original transformer (softmax attention, LayerNorm), trained for comparison;
//! 1. the HE-friendly model trained from scratch (real activations);
//! 2. range- and variance-minimisation fine-tuning, then the per-site input ranges recorded on the
//!    training data;
//! 3. every non-polynomial site replaced by a polynomial fitted on its range plus a margin, no training;
//! 4. optionally, a short fine-tune with the polynomials in place.
//!
//! Each stage writes `<out>/<stage>/` (see [`crate::model::checkpoint`]); a stage whose directory is
//! complete is loaded instead of recomputed, and training inside a stage resumes from its last epoch.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;
use serde::{Deserialize, Serialize};

use crate::data::{self, ImageSplit, Split, WordSplit, WordTokenizer, WordTokenizerConfig};
use crate::model::train::History;
use crate::model::{
    evaluate, record_ranges, train, AttentionKind, Checkpoint, CheckpointError, CheckpointMeta, DataPrep,
    FitConfig, Metrics, ModelConfig, PolySet, RangeLoss, RangeRecord, Stage, TaskConfig, TaskData,
    TrainConfig, Transformer,
};

/// Which data a pipeline trains on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Dataset {
    /// Fashion-MNIST (60k/10k 28x28 grey images).
    FashionMnist,
    /// MNIST.
    Mnist,
    /// Wikipedia lead sections, word level (lower-cased, punctuation split, `<unk>` below a count).
    WikiText,
    /// Small synthetic data for tests (no files needed).
    Synthetic,
}

/// Everything a pipeline run needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineConfig {
    /// Data.
    pub dataset: Dataset,
    /// Use at most this many training items (None: all).
    pub train_limit: Option<usize>,
    /// Evaluate on at most this many held-out items (None: all).
    pub eval_limit: Option<usize>,
    /// The HE-friendly model.
    pub model: ModelConfig,
    /// Stage 0 and 1 training.
    pub train: TrainConfig,
    /// Train the original model (stage 0) for comparison.
    pub original: bool,
    /// Stage 2 fine-tuning with the range loss (None: record the ranges of the stage-1 model).
    pub range_min: Option<TrainConfig>,
    /// Fit and evaluate the polynomial model (stage 3; skipped for softmax attention, which has no
    /// polynomial form here).
    pub polynomial: bool,
    /// Training items on which ranges are recorded.
    pub record_limit: usize,
    /// Polynomial fitting.
    pub fit: FitConfig,
    /// Stage 4 fine-tuning with polynomials, if any.
    pub poly_tune: Option<TrainConfig>,
    /// Word vocabulary: keep words seen at least this often (language only).
    pub min_count: usize,
    /// Word vocabulary: keep at most this many words, the most frequent (language only).
    pub max_vocab: Option<usize>,
}

impl PipelineConfig {
    /// CPU-scale poly-ViT on Fashion-MNIST (a few minutes per stage on 2 cores).
    pub fn vit_fashion_cpu() -> Self {
        let train = TrainConfig {
            epochs: 10,
            batch: 128,
            lr: 2e-3,
            weight_decay: 0.05,
            warmup: 0.05,
            clip: 1.0,
            seed: 0,
            log_every: 100,
            range: None,
        };
        PipelineConfig {
            dataset: Dataset::FashionMnist,
            train_limit: None,
            eval_limit: None,
            model: ModelConfig::vit_cpu(),
            train,
            original: true,
            polynomial: true,
            range_min: Some(TrainConfig {
                epochs: 2,
                lr: 2e-4,
                warmup: 0.0,
                range: Some(RangeLoss {
                    alpha: 1.0,
                    beta: 0.0,
                    act_bound: 10.0,
                    var_bound: 100.0,
                }),
                ..train
            }),
            record_limit: 60_000,
            fit: FitConfig::default(),
            poly_tune: None,
            min_count: 1,
            max_vocab: None,
        }
    }

    /// CPU-scale poly-LM on the Wikipedia lead sections.
    pub fn lm_wiki_cpu() -> Self {
        let train = TrainConfig {
            epochs: 3,
            batch: 32,
            lr: 2e-3,
            weight_decay: 0.05,
            warmup: 0.05,
            clip: 1.0,
            seed: 0,
            log_every: 100,
            range: None,
        };
        PipelineConfig {
            dataset: Dataset::WikiText,
            train_limit: None,
            eval_limit: None,
            // The vocabulary size is set from the data.
            model: ModelConfig::lm_cpu(2),
            train,
            original: true,
            polynomial: true,
            range_min: Some(TrainConfig {
                epochs: 1,
                lr: 2e-4,
                warmup: 0.0,
                range: Some(RangeLoss {
                    alpha: 1.0,
                    beta: 1.0,
                    act_bound: 10.0,
                    var_bound: 10.0,
                }),
                ..train
            }),
            record_limit: 20_000,
            fit: FitConfig::default(),
            poly_tune: None,
            min_count: 3,
            max_vocab: Some(6000),
        }
    }

    /// Tiny synthetic vision run for tests (seconds).
    pub fn vit_tiny() -> Self {
        Self::vit_fashion_cpu().tiny(ModelConfig::vit_tiny())
    }

    /// Tiny synthetic language run for tests (seconds).
    pub fn lm_tiny() -> Self {
        Self::lm_wiki_cpu().tiny(ModelConfig::lm_tiny())
    }

    /// This pipeline shrunk to seconds: synthetic data, `model`, two short epochs, one of range
    /// minimisation, degree-15 GELU.
    fn tiny(mut self, model: ModelConfig) -> Self {
        self.dataset = Dataset::Synthetic;
        self.model = model;
        self.train.epochs = 2;
        self.train.batch = 16;
        self.train.log_every = 0;
        if let Some(r) = &mut self.range_min {
            r.epochs = 1;
            r.batch = 16;
            r.log_every = 0;
        }
        self.record_limit = 256;
        self.fit.gelu_degree = 15;
        self
    }
}

/// One stage's outcome.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StageResult {
    /// Stage.
    pub stage: Stage,
    /// Held-out metrics.
    pub metrics: Metrics,
    /// Training wall time in seconds, as measured when the stage was trained (0 for stages without training).
    pub train_seconds: f64,
    /// Training throughput (samples per second), if trained in this run.
    pub samples_per_second: f64,
    /// Largest |activation input| and largest LayerNorm `var + eps` on the training data, if recorded.
    pub ranges: Option<(f64, f64)>,
    /// Training stopped at a non-finite loss.
    pub diverged: bool,
    /// Largest |activation input| seen during training (logged intervals).
    pub max_train_act: f64,
    /// Held-out metrics after each training epoch.
    pub curve: Vec<(usize, Metrics)>,
}

/// The outcome of a pipeline run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PipelineReport {
    /// Per stage, in order.
    pub stages: Vec<StageResult>,
    /// Parameters of the HE-friendly model.
    pub parameters: usize,
    /// Training items.
    pub train_items: usize,
    /// Held-out items.
    pub eval_items: usize,
    /// Max error of each fitted polynomial on its interval.
    pub poly_errors: BTreeMap<String, f64>,
    /// The f64 reference forward (exported weights, folded BatchNorms, the polynomials) against the
    /// framework's polynomial model on the first held-out items: (items, max |logit difference|,
    /// max |logit|).
    pub reference_check: Option<(usize, f64, f64)>,
}

/// Runs the f64 reference of a polynomial checkpoint and the framework model on the first `n`
/// held-out items; returns (items, max |difference|, max |logit|).
pub fn reference_check<B: burn::tensor::backend::Backend>(
    model: &Transformer<B>,
    polys: &PolySet,
    dir: &Path,
    data: &TaskData,
    n: usize,
) -> Result<(usize, f64, f64), CheckpointError> {
    use crate::model::train::image_batch_data;
    use crate::model::Forward;
    use burn::tensor::{Int, Tensor, TensorData};
    let reference = crate::reference::ReferenceModel::from_checkpoint(dir)
        .map_err(|e| CheckpointError::Format(e.to_string()))?;
    let device = model.pos.val().device();
    let bad = |e: crate::reference::ReferenceError| CheckpointError::Format(e.to_string());
    let (mut worst, mut scale) = (0.0f64, 0.0f64);
    let mut compare = |ours: &[f32], refs: &[f64]| {
        for (a, b) in ours.iter().zip(refs) {
            worst = worst.max((*a as f64 - b).abs());
            scale = scale.max(b.abs());
        }
    };
    let items = match data {
        TaskData::Images { test, mean, std, .. } => {
            let idx: Vec<usize> = (0..n.min(test.len())).collect();
            let td = image_batch_data(test, &idx, *mean, *std);
            let px: Vec<f64> = td
                .to_vec::<f32>()
                .map_err(|e| CheckpointError::Format(format!("{e:?}")))?
                .into_iter()
                .map(f64::from)
                .collect();
            let logits =
                model.forward_images(Tensor::from_data(td, &device), &mut Forward::polynomial(polys));
            let ours = logits
                .into_data()
                .to_vec::<f32>()
                .map_err(|e| CheckpointError::Format(format!("{e:?}")))?;
            let refs: Vec<f64> = reference
                .forward_images(&px)
                .map_err(bad)?
                .into_iter()
                .flatten()
                .collect();
            compare(&ours, &refs);
            idx.len()
        }
        TaskData::Tokens { test, seq_len, .. } => {
            let windows = (test.len().saturating_sub(1) / seq_len).min(n);
            for w in 0..windows {
                let ids = &test[w * seq_len..(w + 1) * seq_len];
                let t = Tensor::<B, 2, Int>::from_data(
                    TensorData::new(ids.iter().map(|&v| v as i64).collect::<Vec<_>>(), [1, *seq_len]),
                    &device,
                );
                let ours = model
                    .forward_tokens(t, &mut Forward::polynomial(polys))
                    .into_data()
                    .to_vec::<f32>()
                    .map_err(|e| CheckpointError::Format(format!("{e:?}")))?;
                let refs: Vec<f64> = reference
                    .forward_tokens(ids)
                    .map_err(bad)?
                    .into_iter()
                    .flatten()
                    .collect();
                compare(&ours, &refs);
            }
            windows
        }
    };
    Ok((items, worst, scale))
}

/// [`audit_sites`](crate::model::train::audit_sites) for a polynomial stage directory of a pipeline
/// run (`<run>/polynomial`, whose parent holds the run's `pipeline.json`): the data are loaded as the
/// run loaded them, and the first `limit` held-out items are run one by one.
///
/// # Errors
/// Missing or unreadable files, a stage without polynomials, data that cannot be loaded.
pub fn audit_checkpoint(
    stage_dir: &Path,
    limit: usize,
) -> Result<Vec<crate::model::train::SiteAudit>, CheckpointError> {
    let run = stage_dir
        .parent()
        .ok_or_else(|| CheckpointError::Format(format!("{} has no parent run", stage_dir.display())))?;
    let mut cfg: PipelineConfig = serde_json::from_slice(&std::fs::read(run.join("pipeline.json"))?)?;
    let (data, _) = load_data(&mut cfg).map_err(CheckpointError::Format)?;
    let device = Default::default();
    let (model, meta) = Checkpoint::load::<crate::model::Cpu>(stage_dir, &device)?;
    let polys = meta
        .polys
        .ok_or_else(|| CheckpointError::Format(format!("{} has no polynomials", stage_dir.display())))?;
    Ok(crate::model::train::audit_sites(&model, &polys, &data, limit))
}

/// Loads the data of a pipeline and what the checkpoints need to reproduce its preparation. Sets the
/// language model's vocabulary size.
pub fn load_data(cfg: &mut PipelineConfig) -> Result<(TaskData, DataPrep), String> {
    let limit = |mut set: data::ImageSet, n: Option<usize>| {
        if let Some(n) = n {
            set = set.take(n);
        }
        set
    };
    match cfg.dataset {
        Dataset::FashionMnist | Dataset::Mnist => {
            let load = if cfg.dataset == Dataset::FashionMnist {
                data::fashion_mnist
            } else {
                data::mnist
            };
            let train = limit(
                load(ImageSplit::Train).map_err(|e| e.to_string())?,
                cfg.train_limit,
            );
            let test = load(ImageSplit::Test).map_err(|e| e.to_string())?;
            let td = TaskData::images(train, test);
            let TaskData::Images { mean, std, .. } = &td else {
                return Err("unreachable".into());
            };
            let name = format!("{:?}", cfg.dataset);
            let prep = DataPrep::Images {
                dataset: name,
                mean: *mean,
                std: *std,
            };
            Ok((td, prep))
        }
        Dataset::WikiText => {
            let splits = data::wiki_summaries().map_err(|e| e.to_string())?;
            let tok = WordTokenizer::fit(
                &splits.joined(Split::Train),
                WordTokenizerConfig {
                    split: WordSplit::Punctuation,
                    lowercase: true,
                    max_vocab: cfg.max_vocab,
                    min_count: cfg.min_count,
                },
            );
            let mut train = tok.encode(&splits.joined(Split::Train));
            if let Some(n) = cfg.train_limit {
                train.truncate(n);
            }
            let test = tok.encode(&splits.joined(Split::Test));
            let TaskConfig::Language { seq_len, .. } = cfg.model.task else {
                return Err("the WikiText data needs a language model".into());
            };
            cfg.model.task = TaskConfig::Language {
                vocab: tok.vocab_size(),
                seq_len,
            };
            let vocab = (0..tok.vocab_size() as u32)
                .map(|i| tok.token(i).unwrap_or("<unk>").to_string())
                .collect();
            Ok((
                TaskData::Tokens { train, test, seq_len },
                DataPrep::Words {
                    dataset: "wikipedia_summaries_en".into(),
                    vocab,
                },
            ))
        }
        Dataset::Synthetic => Ok(synthetic(&cfg.model)),
    }
}

/// Learnable synthetic data: images whose class is the brightest of ten fixed regions, or token
/// sequences that count upward modulo the vocabulary.
pub fn synthetic(model: &ModelConfig) -> (TaskData, DataPrep) {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    match model.task {
        TaskConfig::Vision {
            image_size,
            channels,
            num_classes,
            ..
        } => {
            let make = |n: usize, rng: &mut rand_chacha::ChaCha8Rng| {
                let px = channels * image_size * image_size;
                let mut pixels = Vec::with_capacity(n * px);
                let mut labels = Vec::with_capacity(n);
                for _ in 0..n {
                    let label = rng.random_range(0..num_classes);
                    for j in 0..px {
                        let hot = j % num_classes == label;
                        pixels.push(rng.random::<f32>() * 0.5 + if hot { 0.5 } else { 0.0 });
                    }
                    labels.push(label);
                }
                data::ImageSet::new(
                    "synthetic",
                    (channels, image_size, image_size),
                    num_classes,
                    pixels,
                    labels,
                )
            };
            let (train, test) = (make(512, &mut rng), make(128, &mut rng));
            match (train, test) {
                (Ok(train), Ok(test)) => {
                    let td = TaskData::images(train, test);
                    let (mean, std) = match &td {
                        TaskData::Images { mean, std, .. } => (*mean, *std),
                        TaskData::Tokens { .. } => (0.0, 1.0),
                    };
                    (
                        td,
                        DataPrep::Images {
                            dataset: "synthetic".into(),
                            mean,
                            std,
                        },
                    )
                }
                _ => (
                    TaskData::Tokens {
                        train: vec![],
                        test: vec![],
                        seq_len: 1,
                    },
                    DataPrep::Images {
                        dataset: "synthetic (failed)".into(),
                        mean: 0.0,
                        std: 1.0,
                    },
                ),
            }
        }
        TaskConfig::Language { vocab, seq_len } => {
            let make = |n: usize, rng: &mut rand_chacha::ChaCha8Rng| {
                let mut v = Vec::with_capacity(n);
                let mut t = 0u32;
                for _ in 0..n {
                    t = if rng.random::<f32>() < 0.1 {
                        rng.random_range(0..vocab as u32)
                    } else {
                        (t + 1) % vocab as u32
                    };
                    v.push(t);
                }
                v
            };
            let (train, test) = (make(4096, &mut rng), make(1024, &mut rng));
            (
                TaskData::Tokens { train, test, seq_len },
                DataPrep::Words {
                    dataset: "synthetic".into(),
                    vocab: (0..vocab).map(|i| format!("w{i}")).collect(),
                },
            )
        }
    }
}

fn meta(stage: Stage, cfg: &ModelConfig, prep: &DataPrep, m: &Metrics) -> CheckpointMeta {
    let mut metrics = BTreeMap::new();
    // JSON has no inf/NaN: a non-finite metric (e.g. the perplexity of a failed substitution) is left
    // out and shows as missing.
    for (k, v) in [
        ("test_loss", m.loss),
        ("test_accuracy", m.accuracy),
        ("test_perplexity", m.perplexity),
    ] {
        if v.is_finite() {
            metrics.insert(k.to_string(), v);
        }
    }
    CheckpointMeta {
        version: crate::model::checkpoint::CHECKPOINT_VERSION,
        stage,
        config: *cfg,
        data: prep.clone(),
        ranges: None,
        fit: None,
        polys: None,
        metrics,
    }
}

/// Trains a fresh model for `stage` into `out/<stage>`, or loads it if already complete.
#[allow(clippy::too_many_arguments)]
fn train_stage<B: AutodiffBackend>(
    stage: Stage,
    start: Transformer<B>,
    data: &TaskData,
    tcfg: &TrainConfig,
    polys: Option<&PolySet>,
    prep: &DataPrep,
    out: &Path,
    eval_limit: Option<usize>,
    extra: impl FnOnce(&mut CheckpointMeta),
) -> Result<(Transformer<B>, StageResult), CheckpointError> {
    let dir = out.join(stage.dir_name());
    let device = start.pos.val().device();
    if dir.join("checkpoint.json").exists() {
        let (model, m) = Checkpoint::load::<B>(&dir, &device)?;
        eprintln!("[{}] loaded from {}", stage.dir_name(), dir.display());
        let metrics = evaluate(&model.valid(), data, polys, 256, eval_limit);
        let ranges = m.ranges.as_ref().map(RangeRecord::summary);
        let hist: History = std::fs::read(dir.join("history.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        return Ok((
            model,
            StageResult {
                stage,
                metrics,
                // As measured when the stage was trained.
                train_seconds: m.metrics.get("train_seconds").copied().unwrap_or(0.0),
                samples_per_second: m.metrics.get("samples_per_second").copied().unwrap_or(0.0),
                ranges,
                diverged: hist.diverged,
                max_train_act: hist.max_act(),
                curve: hist.epochs.clone(),
            },
        ));
    }
    let cfg = *start.cfg();
    let (model, hist) = train(start, data, tcfg, polys, Some(&dir), eval_limit, stage.dir_name())?;
    let metrics = evaluate(&model.valid(), data, polys, 256, eval_limit);
    let mut mt = meta(stage, &cfg, prep, &metrics);
    mt.metrics.insert("train_seconds".into(), hist.seconds);
    mt.metrics
        .insert("samples_per_second".into(), hist.samples_per_second);
    mt.metrics
        .insert("diverged".into(), f64::from(u8::from(hist.diverged)));
    extra(&mut mt);
    Checkpoint::save(&dir, &model, &mt)?;
    std::fs::write(dir.join("history.json"), serde_json::to_vec_pretty(&hist)?)?;
    Ok((
        model,
        StageResult {
            stage,
            metrics,
            train_seconds: hist.seconds,
            samples_per_second: hist.samples_per_second,
            ranges: None,
            diverged: hist.diverged,
            max_train_act: hist.max_act(),
            curve: hist.epochs.clone(),
        },
    ))
}

/// Runs the whole conversion for one model, writing every stage under `out`.
pub fn run_pipeline<B: AutodiffBackend>(
    cfg: &PipelineConfig,
    data: &TaskData,
    prep: &DataPrep,
    out: &Path,
    device: &B::Device,
) -> Result<PipelineReport, CheckpointError> {
    cfg.model.validate().map_err(CheckpointError::Format)?;
    std::fs::create_dir_all(out)?;
    std::fs::write(out.join("pipeline.json"), serde_json::to_vec_pretty(cfg)?)?;
    let t0 = Instant::now();
    let mut stages = Vec::new();
    let fresh = |mc: &ModelConfig| {
        B::seed(device, cfg.train.seed);
        Transformer::<B>::new(mc, device)
    };
    if cfg.original {
        let oc = cfg.model.original();
        let (_, r) = train_stage(
            Stage::Original,
            fresh(&oc),
            data,
            &cfg.train,
            None,
            prep,
            out,
            cfg.eval_limit,
            |_| {},
        )?;
        stages.push(r);
    }
    let (he, r) = train_stage(
        Stage::HeFriendly,
        fresh(&cfg.model),
        data,
        &cfg.train,
        None,
        prep,
        out,
        cfg.eval_limit,
        |_| {},
    )?;
    if r.diverged || !r.metrics.loss.is_finite() {
        eprintln!("[pipeline] stage 1 diverged: no conversion");
        stages.push(r);
        return finish(cfg, data, out, stages, BTreeMap::new(), None, &fresh, t0);
    }
    let before = record_ranges(&he.valid(), data, 256, cfg.record_limit);
    stages.push(StageResult {
        ranges: Some(before.summary()),
        ..r
    });
    eprintln!("[pipeline] ranges after stage 1: {:?}", before.summary());

    // Stage 2: fine-tune with the range loss, then record.
    let rdir = out.join(Stage::RangeMin.dir_name());
    let (rm, ranges) = match &cfg.range_min {
        None => (he, before),
        Some(rc) => {
            let done = rdir.join("checkpoint.json").exists();
            let (rm, mut r) = train_stage(
                Stage::RangeMin,
                he,
                data,
                rc,
                None,
                prep,
                out,
                cfg.eval_limit,
                |_| {},
            )?;
            if !done {
                // Re-save with the ranges recorded on the fine-tuned model.
                let rec = record_ranges(&rm.valid(), data, 256, cfg.record_limit);
                let mut m = Checkpoint::meta(&rdir)?;
                m.ranges = Some(rec);
                std::fs::write(rdir.join("checkpoint.json"), serde_json::to_vec_pretty(&m)?)?;
            }
            let ranges = Checkpoint::meta(&rdir)?
                .ranges
                .ok_or_else(|| CheckpointError::Format("range_min checkpoint without ranges".into()))?;
            r.ranges = Some(ranges.summary());
            stages.push(r);
            eprintln!("[pipeline] ranges after stage 2: {:?}", ranges.summary());
            (rm, ranges)
        }
    };
    if !cfg.polynomial || cfg.model.attention == AttentionKind::Softmax {
        return finish(cfg, data, out, stages, BTreeMap::new(), None, &fresh, t0);
    }

    // Stage 3: polynomials, no training.
    let polys = PolySet::fit(&ranges, &cfg.fit).map_err(CheckpointError::Format)?;
    let poly_errors = polys
        .sites
        .iter()
        .map(|(k, v)| (k.clone(), v.max_error))
        .collect();
    let pm = evaluate(&rm.valid(), data, Some(&polys), 256, cfg.eval_limit);
    let mut m = meta(Stage::Polynomial, &cfg.model, prep, &pm);
    m.ranges = Some(ranges.clone());
    m.fit = Some(cfg.fit);
    m.polys = Some(polys.clone());
    let pdir = out.join(Stage::Polynomial.dir_name());
    Checkpoint::save(&pdir, &rm, &m)?;
    let check = reference_check(&rm.valid(), &polys, &pdir, data, 64)?;
    eprintln!(
        "[pipeline] f64 reference vs framework polynomial model on {} held-out items: max |logit diff| {:.2e} \
         (max |logit| {:.1})",
        check.0, check.1, check.2
    );
    stages.push(StageResult {
        stage: Stage::Polynomial,
        metrics: pm,
        train_seconds: 0.0,
        samples_per_second: 0.0,
        ranges: Some(ranges.summary()),
        diverged: false,
        max_train_act: 0.0,
        curve: Vec::new(),
    });

    // Stage 4: optional fine-tune with the polynomials in place.
    if let Some(tc) = &cfg.poly_tune {
        let p2 = polys.clone();
        let (_, r) = train_stage(
            Stage::PolynomialTuned,
            rm,
            data,
            tc,
            Some(&polys),
            prep,
            out,
            cfg.eval_limit,
            |m| {
                m.ranges = Some(ranges.clone());
                m.fit = Some(cfg.fit);
                m.polys = Some(p2);
            },
        )?;
        stages.push(r);
    }
    finish(cfg, data, out, stages, poly_errors, Some(check), &fresh, t0)
}

#[allow(clippy::too_many_arguments)]
fn finish<B: AutodiffBackend>(
    cfg: &PipelineConfig,
    data: &TaskData,
    out: &Path,
    stages: Vec<StageResult>,
    poly_errors: BTreeMap<String, f64>,
    reference_check: Option<(usize, f64, f64)>,
    fresh: &dyn Fn(&ModelConfig) -> Transformer<B>,
    t0: Instant,
) -> Result<PipelineReport, CheckpointError> {
    let report = PipelineReport {
        parameters: count_params(&fresh(&cfg.model)),
        train_items: data_len(data, false),
        eval_items: stages.first().map(|s| s.metrics.count).unwrap_or(0),
        stages,
        poly_errors,
        reference_check,
    };
    std::fs::write(out.join("report.json"), serde_json::to_vec_pretty(&report)?)?;
    eprintln!("[pipeline] done in {:.0}s", t0.elapsed().as_secs_f64());
    Ok(report)
}

fn data_len(d: &TaskData, test: bool) -> usize {
    match d {
        TaskData::Images { train, test: t, .. } => {
            if test {
                t.len()
            } else {
                train.len()
            }
        }
        TaskData::Tokens { train, test: t, .. } => {
            if test {
                t.len()
            } else {
                train.len()
            }
        }
    }
}

/// Parameters as burn counts them: trainable ones plus the BatchNorm running statistics (the ViT
/// preset has 72,714 trainable parameters, 74,122 in this count).
pub fn count_params<B: burn::tensor::backend::Backend>(m: &Transformer<B>) -> usize {
    use burn::module::Module;
    m.num_params()
}
