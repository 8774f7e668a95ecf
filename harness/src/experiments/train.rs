//! The staged conversion for one model (`train-vit`, `train-lm`): original, HE-friendly, after range
//! minimisation, polynomial; one CSV row per stage.
//!
//! Checkpoints go to `runs/<experiment>/<preset>-seed<N>/<stage>/` (not committed: the language model's
//! are tens of MB); every finished stage is reused when the command is run again, so a run interrupted
//! by the end of a session resumes.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Result};
use serde::{Deserialize, Serialize};
use transformer::model::{CpuTrain, Stage};
use transformer::pipeline::{load_data, run_pipeline, PipelineConfig};

use super::Preset;

/// CSV of `train-vit`.
pub const CSV_VIT: &str = "train_vit.csv";
/// CSV of `train-vit-mnist`.
pub const CSV_VIT_MNIST: &str = "train_vit_mnist.csv";
/// CSV of `train-lm`.
pub const CSV_LM: &str = "train_lm.csv";

/// Which model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Which {
    /// Poly-ViT on Fashion-MNIST.
    Vit,
    /// The same poly-ViT (same settings) on MNIST.
    VitMnist,
    /// Poly-LM on Wikipedia text.
    Lm,
}

/// What a run does.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    /// The pipeline (its seeds are replaced by each run's).
    pub pipeline: PipelineConfig,
    /// Seeds: one pipeline each.
    pub seeds: Vec<u64>,
    /// Where the checkpoints go (`<preset>-seed<N>/` below it).
    pub run_dir: PathBuf,
    /// Rayon threads of the training backend (0: all cores).
    pub threads: usize,
}

impl Config {
    /// The settings of a preset: seeds `seed, seed + 1, seed + 2` at cpu, `seed` at tiny.
    pub fn preset(which: Which, preset: Preset, seed: u64) -> Self {
        let mut pipeline = match (which, preset) {
            (Which::Vit, Preset::Cpu) => PipelineConfig::vit_fashion_cpu(),
            (Which::Lm, Preset::Cpu) => PipelineConfig::lm_wiki_cpu(),
            (Which::VitMnist, Preset::Cpu) => PipelineConfig {
                dataset: transformer::pipeline::Dataset::Mnist,
                ..PipelineConfig::vit_fashion_cpu()
            },
            (Which::Vit | Which::VitMnist, Preset::Tiny) => PipelineConfig::vit_tiny(),
            (Which::Lm, Preset::Tiny) => PipelineConfig::lm_tiny(),
        };
        pipeline.train.seed = seed;
        let seeds = match preset {
            Preset::Tiny => vec![seed],
            Preset::Cpu => vec![seed, seed + 1, seed + 2],
        };
        let name = match which {
            Which::Vit => "train_vit",
            Which::VitMnist => "train_vit_mnist",
            Which::Lm => "train_lm",
        };
        Config {
            pipeline,
            seeds,
            run_dir: super::runs_root(preset).join(name),
            threads: 0,
        }
    }
}

/// One row per stage.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row {
    /// `vit` or `lm`.
    pub model: String,
    /// Data set.
    pub dataset: String,
    /// Stage (`original`, `he_friendly`, `range_min`, `polynomial`, `polynomial_tuned`).
    pub stage: String,
    /// Seed.
    pub seed: u64,
    /// Held-out top-1 accuracy in percent (next-token accuracy for the LM).
    pub accuracy_pct: f64,
    /// Held-out perplexity (`exp` of the mean cross-entropy).
    pub perplexity: f64,
    /// Held-out mean cross-entropy (nats).
    pub loss: f64,
    /// Whether any held-out logit was not finite.
    pub non_finite: bool,
    /// Trainable parameters of the HE-friendly model.
    pub parameters: usize,
    /// Training items (images or tokens).
    pub train_items: usize,
    /// Held-out predictions scored.
    pub eval_predictions: usize,
    /// Wall time of this stage's training in seconds, as measured when it was trained (0: not trained).
    pub train_seconds: f64,
    /// Training throughput, samples per second.
    pub samples_per_second: f64,
    /// Largest |activation input| on the training data (recorded stages).
    pub max_act_input: Option<f64>,
    /// Largest LayerNorm `var + eps` on the training data (recorded stages, LayerNorm models).
    pub max_ln_var: Option<f64>,
    /// Worst max error of the fitted polynomials on their intervals (polynomial stages).
    pub worst_poly_error: Option<f64>,
    /// Max |logit difference| between the f64 reference (exported weights, folded BatchNorms) and the
    /// framework's polynomial model on the first 64 held-out items (polynomial stage).
    pub reference_max_abs_diff: Option<f64>,
}

/// Runs the pipeline and returns the rows.
pub fn run(which: Which, config: &Config) -> Result<(Vec<Row>, Vec<String>)> {
    if config.threads > 0 {
        std::env::set_var("RAYON_NUM_THREADS", config.threads.to_string());
    }
    let mut base = config.pipeline.clone();
    let (data, prep) = load_data(&mut base).map_err(|e| anyhow!(e))?;
    let device = Default::default();
    let dataset = format!("{:?}", base.dataset);
    let preset = if base.dataset == transformer::pipeline::Dataset::Synthetic {
        "tiny"
    } else {
        "cpu"
    };
    let mut rows = Vec::new();
    let mut sites = 0;
    for &seed in &config.seeds {
        let mut pc = base.clone();
        pc.train.seed = seed;
        if let Some(r) = &mut pc.range_min {
            r.seed = seed;
        }
        let dir = config.run_dir.join(format!("{preset}-seed{seed}"));
        let report = run_pipeline::<CpuTrain>(&pc, &data, &prep, &dir, &device)?;
        let worst = report.poly_errors.values().copied().fold(0.0, f64::max);
        sites = report.poly_errors.len();
        rows.extend(report.stages.iter().map(|s| {
            let poly = matches!(s.stage, Stage::Polynomial | Stage::PolynomialTuned);
            Row {
                model: match which {
                    Which::Vit | Which::VitMnist => "vit".into(),
                    Which::Lm => "lm".into(),
                },
                dataset: dataset.clone(),
                stage: s.stage.dir_name().into(),
                seed,
                accuracy_pct: 100.0 * s.metrics.accuracy,
                perplexity: s.metrics.perplexity,
                loss: s.metrics.loss,
                non_finite: s.metrics.non_finite,
                parameters: report.parameters,
                train_items: report.train_items,
                eval_predictions: s.metrics.count,
                train_seconds: s.train_seconds,
                samples_per_second: s.samples_per_second,
                max_act_input: s.ranges.map(|r| r.0),
                max_ln_var: s.ranges.and_then(|r| (r.1 > 0.0).then_some(r.1)),
                worst_poly_error: poly.then_some(worst),
                reference_max_abs_diff: (s.stage == Stage::Polynomial)
                    .then_some(report.reference_check.map(|c| c.1))
                    .flatten(),
            }
        }));
    }
    let notes = vec![
        format!("checkpoints: {}", config.run_dir.display()),
        format!("polynomial sites: {sites}"),
    ];
    Ok((rows, notes))
}

/// No figures yet: the main table is in the summary.
pub fn plot(_csv: &Path, _out: &Path, _provenance: &[String]) -> Result<Vec<PathBuf>> {
    Ok(Vec::new())
}

/// Markdown table of the stages.
pub fn summary(csv: &Path) -> Result<String> {
    let rows: Vec<Row> = crate::csv_out::read_csv(csv)?;
    let mut s = String::from(
        "| model | data | stage | seed | accuracy % | perplexity | max act input | max LN var | train s |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    let opt = |v: Option<f64>| v.map(|x| format!("{x:.1}")).unwrap_or_else(|| "-".into());
    for r in rows {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {:.2} | {:.2} | {} | {} | {:.0} |\n",
            r.model,
            r.dataset,
            r.stage,
            r.seed,
            r.accuracy_pct,
            r.perplexity,
            opt(r.max_act_input),
            opt(r.max_ln_var),
            r.train_seconds
        ));
    }
    Ok(s)
}
