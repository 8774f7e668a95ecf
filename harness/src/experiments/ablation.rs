//! The paper's ablations and our extensions, each a list of pipeline variants run over three seeds:
//!
//! - `ablation-attention`: softmax vs pointwise attention with no length scaling, 1/sqrt(L) or 1/L
//!   before, after or both, ReLU vs GELU (ViT, BatchNorm);
//! - `ablation-norm`: LayerNorm vs BatchNorm with and without the extra BatchNorms (ViT), LayerNorm vs
//!   BatchNorm (LM);
//! - `ablation-range`: the range/variance-minimisation weights alpha, beta on a grid including 0 (LM):
//!   ranges after fine-tuning and the perplexity after polynomial substitution;
//! - `stability`: divergence and the largest activation during training against learning rate, depth
//!   and sequence length, per attention variant;
//! - `degree`: accuracy after substitution against the polynomial degree and depth (Remez, Chebyshev
//!   interpolation, composite ReLU), no retraining;
//! - `depth`: original vs polynomial accuracy against the number of blocks.
//!
//! Every variant trains with the pipeline of [`transformer::pipeline`] into
//! `runs/<study>/<preset>-seed<N>/<variant>/`; a finished stage is loaded instead of retrained, so a
//! suite interrupted by the end of a session resumes where it stopped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Result};
use serde::{Deserialize, Serialize};
use transformer::model::{
    Activation, AttentionKind, CpuTrain, LengthScaling, ModelConfig, NormKind, RangeLoss, ScalePlacement,
    TaskConfig,
};
use transformer::pipeline::{load_data, run_pipeline, PipelineConfig};

use super::Preset;
use crate::plot::{LineChart, Series};

/// The studies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Study {
    /// Length scaling and sigma.
    Attention,
    /// Normalisation.
    Norm,
    /// Range-minimisation weights.
    Range,
    /// Training stability.
    Stability,
    /// Polynomial degree.
    Degree,
    /// Model depth.
    Depth,
}

impl Study {
    /// CSV file name (const, for the registry).
    pub const fn csv_name(self) -> &'static str {
        match self {
            Study::Attention => "ablation_attention.csv",
            Study::Norm => "ablation_norm.csv",
            Study::Range => "ablation_range.csv",
            Study::Stability => "stability.csv",
            Study::Degree => "degree.csv",
            Study::Depth => "depth.csv",
        }
    }

    /// Figure names (const, for the registry).
    pub const fn plot_names(self) -> &'static [&'static str] {
        match self {
            Study::Attention => &["ablation_attention.svg"],
            Study::Norm => &["ablation_norm_vit.svg", "ablation_norm_lm.svg"],
            Study::Range => &["ablation_range.svg", "ablation_range_ppl.svg"],
            Study::Stability => &["stability_lr.svg"],
            Study::Degree => &["degree.svg", "degree_depth.svg"],
            Study::Depth => &["depth.svg"],
        }
    }

    fn dir(self) -> &'static str {
        self.csv_name().trim_end_matches(".csv")
    }
}

/// One configuration of a study.
#[derive(Debug, Clone, Serialize)]
pub struct Variant {
    /// Short name (also its run directory).
    pub name: String,
    /// Series it belongs to in the plots.
    pub group: String,
    /// Its value on the plots' x axis (learning rate, depth, degree, alpha...).
    pub x: f64,
    /// The pipeline (its seed is replaced by each run's).
    pub pipeline: PipelineConfig,
    /// Run directory shared with other variants (studies that only refit polynomials), if any.
    pub shared_dir: Option<String>,
}

/// What a run does.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    /// The study.
    pub study: Study,
    /// Seeds.
    pub seeds: Vec<u64>,
    /// The variants.
    pub variants: Vec<Variant>,
    /// Root of the run directories.
    pub run_dir: PathBuf,
}

/// One row per variant, seed and stage; stage `epoch` rows carry the held-out curve of stage 1.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row {
    /// Study.
    pub study: String,
    /// Variant name.
    pub variant: String,
    /// Plot series.
    pub group: String,
    /// Plot x value.
    pub x: f64,
    /// Seed.
    pub seed: u64,
    /// `original`, `he_friendly`, `range_min`, `polynomial`, or `epoch` (curve of stage 1).
    pub stage: String,
    /// Epoch of a curve row (0 otherwise).
    pub epoch: usize,
    /// Held-out accuracy in percent.
    pub accuracy_pct: f64,
    /// Held-out perplexity.
    pub perplexity: f64,
    /// Training hit a non-finite loss, or held-out logits were non-finite.
    pub diverged: bool,
    /// Largest |activation input| seen during training.
    pub max_train_act: f64,
    /// Largest |activation input| recorded on training data (recorded stages).
    pub max_act_input: Option<f64>,
    /// Largest LayerNorm `var + eps` recorded on training data.
    pub max_ln_var: Option<f64>,
    /// Training seconds of this stage in this run.
    pub train_seconds: f64,
    /// Polynomial stage: the largest multiplicative depth of a fitted site polynomial (levels it
    /// takes on a ciphertext, [`transformer::model::SitePoly::depth`]).
    #[serde(default)]
    pub poly_depth: Option<usize>,
    /// Share of held-out predictions in evaluation batches with a non-finite loss.
    #[serde(default)]
    pub non_finite_share: f64,
    /// Perplexity over the batches with a finite loss (language models).
    #[serde(default)]
    pub finite_perplexity: f64,
}

fn pointwise(act: Activation, scaling: LengthScaling, placement: ScalePlacement) -> AttentionKind {
    AttentionKind::Pointwise {
        act,
        scaling,
        placement,
    }
}

/// The ViT base of the studies: Fashion-MNIST, a 20k-image training subset, 4 epochs (cpu); the tiny
/// synthetic model (tiny).
fn vit_base(preset: Preset) -> PipelineConfig {
    match preset {
        Preset::Tiny => {
            let mut p = PipelineConfig::vit_tiny();
            p.original = false;
            p.range_min = None;
            p.train.epochs = 1;
            p
        }
        Preset::Cpu => {
            let mut p = PipelineConfig::vit_fashion_cpu();
            p.original = false;
            p.range_min = None;
            p.train_limit = Some(20_000);
            p.train.epochs = 4;
            p.train.log_every = 25;
            p.record_limit = 10_000;
            p
        }
    }
}

/// The LM base: Wikipedia text, 300k training tokens, context 32, width 64, vocabulary 4,000, 2 epochs.
fn lm_base(preset: Preset) -> PipelineConfig {
    match preset {
        Preset::Tiny => {
            let mut p = PipelineConfig::lm_tiny();
            p.original = false;
            p.range_min = None;
            p.train.epochs = 1;
            p
        }
        Preset::Cpu => {
            let mut p = PipelineConfig::lm_wiki_cpu();
            p.original = false;
            p.range_min = None;
            p.train_limit = Some(300_000);
            p.max_vocab = Some(4000);
            p.model.dim = 64;
            p.model.mlp_hidden = 128;
            p.train.epochs = 2;
            p.train.log_every = 25;
            p.record_limit = 2_000;
            p
        }
    }
}

fn variant(name: &str, group: &str, x: f64, pipeline: PipelineConfig) -> Variant {
    Variant {
        name: name.into(),
        group: group.into(),
        x,
        pipeline,
        shared_dir: None,
    }
}

impl Config {
    /// The settings of a study at a preset; seeds `seed, seed + 1, seed + 2` (one seed at tiny).
    pub fn preset(study: Study, preset: Preset, seed: u64) -> Self {
        let seeds = match preset {
            Preset::Tiny => vec![seed],
            Preset::Cpu => vec![seed, seed + 1, seed + 2],
        };
        let mut variants = Vec::new();
        match study {
            Study::Attention => {
                use LengthScaling::{Linear, None as NoScale, Sqrt};
                use ScalePlacement::{After, Before, Both};
                let base = vit_base(preset);
                let mut add = |name: &str, att: AttentionKind| {
                    let mut p = base.clone();
                    p.model.attention = att;
                    variants.push(variant(name, name, 0.0, p));
                };
                add("softmax", AttentionKind::Softmax);
                add("gelu, no scaling", pointwise(Activation::Gelu, NoScale, After));
                add("gelu, 1/sqrt(L) after", pointwise(Activation::Gelu, Sqrt, After));
                add(
                    "gelu, 1/sqrt(L) before",
                    pointwise(Activation::Gelu, Sqrt, Before),
                );
                add("gelu, 1/sqrt(L) both", pointwise(Activation::Gelu, Sqrt, Both));
                add("gelu, 1/L after", pointwise(Activation::Gelu, Linear, After));
                add("gelu, 1/L before", pointwise(Activation::Gelu, Linear, Before));
                add("gelu, 1/L both", pointwise(Activation::Gelu, Linear, Both));
                add("relu, 1/sqrt(L) after", pointwise(Activation::Relu, Sqrt, After));
            }
            Study::Norm => {
                let vb = vit_base(preset);
                for (name, norm) in [
                    ("vit LayerNorm", NormKind::LayerNorm),
                    ("vit BatchNorm", NormKind::BatchNorm { extra: false }),
                    ("vit BatchNorm + extra", NormKind::BatchNorm { extra: true }),
                ] {
                    let mut p = vb.clone();
                    p.model.norm = norm;
                    variants.push(variant(name, "vit", 0.0, p));
                }
                let lb = lm_base(preset);
                for (name, norm) in [
                    ("lm LayerNorm", NormKind::LayerNorm),
                    ("lm BatchNorm", NormKind::BatchNorm { extra: false }),
                ] {
                    let mut p = lb.clone();
                    p.model.norm = norm;
                    variants.push(variant(name, "lm", 0.0, p));
                }
            }
            Study::Range => {
                let lb = lm_base(preset);
                for beta in [0.0, 0.1, 1.0] {
                    for alpha in [0.0, 0.1, 1.0] {
                        let mut p = lb.clone();
                        let mut rc = p.train;
                        rc.epochs = 1;
                        rc.lr = p.train.lr / 10.0;
                        rc.warmup = 0.0;
                        rc.range = Some(RangeLoss {
                            alpha,
                            beta,
                            act_bound: 5.0,
                            var_bound: 2.0,
                        });
                        p.range_min = Some(rc);
                        let mut v = variant(
                            &format!("alpha {alpha}, beta {beta}"),
                            &format!("beta {beta}"),
                            alpha,
                            p,
                        );
                        v.shared_dir = Some(format!("alpha{alpha}-beta{beta}"));
                        variants.push(v);
                    }
                }
            }
            Study::Stability => {
                use LengthScaling::{Linear, None as NoScale, Sqrt};
                use ScalePlacement::{After, Both};
                let mut base = vit_base(preset);
                base.polynomial = false;
                if preset == Preset::Cpu {
                    base.train_limit = Some(10_000);
                    base.train.epochs = 2;
                    base.model.depth = 4;
                    base.train.warmup = 0.0;
                    base.train.clip = 1e9; // no clipping: instability shows
                    base.train.log_every = 10;
                }
                let atts = [
                    ("softmax", AttentionKind::Softmax),
                    ("no scaling", pointwise(Activation::Gelu, NoScale, After)),
                    ("1/sqrt(L) after", pointwise(Activation::Gelu, Sqrt, After)),
                    ("1/L both", pointwise(Activation::Gelu, Linear, Both)),
                ];
                for (att_name, att) in atts {
                    for lr in [1e-3, 3e-3, 1e-2] {
                        let mut p = base.clone();
                        p.model.attention = att;
                        p.train.lr = lr;
                        variants.push(variant(&format!("{att_name}, lr {lr}"), att_name, lr, p));
                    }
                    // Longer sequences: patch 4 (49 tokens) instead of 7 (16), at the middle rate.
                    if let TaskConfig::Vision { image_size: 28, .. } = base.model.task {
                        let mut p = base.clone();
                        p.model.attention = att;
                        p.train.lr = 3e-3;
                        if let TaskConfig::Vision { ref mut patch, .. } = p.model.task {
                            *patch = 4;
                        }
                        variants.push(variant(
                            &format!("{att_name}, lr 0.003, 49 tokens"),
                            "49 tokens",
                            3e-3,
                            p,
                        ));
                    }
                }
            }
            Study::Degree => {
                let mut gelu = vit_base(preset);
                gelu.train.epochs = gelu.train.epochs.max(1);
                let mut relu = gelu.clone();
                relu.model.attention =
                    pointwise(Activation::Relu, LengthScaling::Sqrt, ScalePlacement::After);
                relu.model.mlp_act = Activation::Relu;
                for d in [7usize, 15, 31, 63] {
                    for (family, interp) in [("gelu remez", false), ("gelu chebyshev", true)] {
                        let mut p = gelu.clone();
                        p.fit.gelu_degree = d;
                        p.fit.gelu_interpolate = interp;
                        let mut v = variant(&format!("{family} {d}"), family, d as f64, p);
                        v.shared_dir = Some("gelu".into());
                        variants.push(v);
                    }
                }
                for k in [4, 6, 8, 10] {
                    let mut p = relu.clone();
                    p.fit.relu_eps = 2f64.powi(-k);
                    p.fit.relu_precision = 2f64.powi(-k - 2);
                    let mut v = variant(
                        &format!("relu composite eps 2^-{k}"),
                        "relu composite",
                        k as f64,
                        p,
                    );
                    v.shared_dir = Some("relu".into());
                    variants.push(v);
                }
            }
            Study::Depth => {
                let depths: &[usize] = match preset {
                    Preset::Tiny => &[1, 2],
                    Preset::Cpu => &[1, 2, 4],
                };
                for &d in depths {
                    let mut p = vit_base(preset);
                    p.original = true;
                    p.model.depth = d;
                    variants.push(variant(&format!("{d} blocks"), "vit", d as f64, p));
                }
            }
        }
        Config {
            study,
            seeds,
            variants,
            run_dir: super::runs_root(preset).join(study.dir()).join(preset.name()),
        }
    }
}

/// Stages 0 and 1 depend only on the data, the model and the training settings: when a sibling
/// variant of the same seed (e.g. another alpha, beta of the range study) has already trained them with
/// identical settings, copy its finished stage directories instead of training the same model again.
fn reuse_stage1(pc: &PipelineConfig, dir: &Path) -> Result<()> {
    use transformer::model::Stage;
    let same_stage1 = |o: &PipelineConfig| {
        // Compared through their serialised form: the configs hold floats, so no `Eq`.
        let key = |c: &PipelineConfig| {
            serde_json::to_string(&(
                &c.dataset,
                c.train_limit,
                c.eval_limit,
                &c.model,
                &c.train,
                c.min_count,
                c.max_vocab,
            ))
            .unwrap_or_default()
        };
        key(o) == key(pc)
    };
    let Some(parent) = dir.parent() else {
        return Ok(());
    };
    let Ok(siblings) = std::fs::read_dir(parent) else {
        return Ok(());
    };
    let mut stages = vec![Stage::HeFriendly];
    if pc.original {
        stages.push(Stage::Original);
    }
    for sib in siblings.flatten().map(|e| e.path()) {
        if sib == dir {
            continue;
        }
        let Some(other) = std::fs::read(sib.join("pipeline.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<PipelineConfig>(&b).ok())
        else {
            continue;
        };
        if !same_stage1(&other) {
            continue;
        }
        for stage in &stages {
            let (from, to) = (sib.join(stage.dir_name()), dir.join(stage.dir_name()));
            if to.join("checkpoint.json").exists() || !from.join("checkpoint.json").exists() {
                continue;
            }
            std::fs::create_dir_all(&to)?;
            // The finished stage only: its checkpoint, weights and history, not the resume state.
            for entry in std::fs::read_dir(&from)?.flatten() {
                if entry.file_type()?.is_file() {
                    std::fs::copy(entry.path(), to.join(entry.file_name()))?;
                }
            }
            eprintln!("[{}] reused from {}", stage.dir_name(), from.display());
        }
    }
    Ok(())
}

/// The largest depth over the fitted site polynomials of the checkpoint in `dir`, if any.
fn poly_depth(dir: &Path) -> Option<usize> {
    let meta = transformer::model::Checkpoint::meta(dir).ok()?;
    meta.polys?.sites.values().map(|f| f.poly.depth()).max()
}

/// Runs every variant for every seed.
pub fn run(config: &Config) -> Result<(Vec<Row>, Vec<String>)> {
    let mut rows = Vec::new();
    let mut cache: BTreeMap<
        String,
        (
            transformer::model::TaskData,
            transformer::model::DataPrep,
            ModelConfig,
        ),
    > = BTreeMap::new();
    let device = Default::default();
    let start = std::time::Instant::now();
    let total = config.seeds.len() * config.variants.len();
    let mut done = 0;
    for &seed in &config.seeds {
        for v in &config.variants {
            let mut pc = v.pipeline.clone();
            pc.train.seed = seed;
            if let Some(r) = &mut pc.range_min {
                r.seed = seed;
            }
            // Data depends only on the data set and, for text, the vocabulary settings.
            let key = format!(
                "{:?}/{:?}/{:?}/{}/{:?}",
                pc.dataset, pc.train_limit, pc.max_vocab, pc.min_count, pc.model.task
            );
            if !cache.contains_key(&key) {
                let mut probe = pc.clone();
                let (d, p) = load_data(&mut probe).map_err(|e| anyhow!(e))?;
                cache.insert(key.clone(), (d, p, probe.model));
            }
            let Some((data, prep, resolved)) = cache.get(&key) else {
                return Err(anyhow!("data cache"));
            };
            pc.model.task = resolved.task;
            let dir_name = v.shared_dir.clone().unwrap_or_else(|| sanitize(&v.name));
            let dir = config.run_dir.join(format!("seed{seed}")).join(dir_name);
            eprintln!(
                "[{:?}] {} seed {seed} ({}/{total}, {:.0}s)",
                config.study,
                v.name,
                done + 1,
                start.elapsed().as_secs_f64()
            );
            reuse_stage1(&pc, &dir)?;
            let report = run_pipeline::<CpuTrain>(&pc, data, prep, &dir, &device)?;
            for s in &report.stages {
                let stage = s.stage.dir_name().to_string();
                let base = Row {
                    study: format!("{:?}", config.study),
                    variant: v.name.clone(),
                    group: v.group.clone(),
                    x: v.x,
                    seed,
                    stage: stage.clone(),
                    epoch: 0,
                    accuracy_pct: 100.0 * s.metrics.accuracy,
                    perplexity: s.metrics.perplexity,
                    diverged: s.diverged || s.metrics.non_finite || !s.metrics.loss.is_finite(),
                    max_train_act: s.max_train_act,
                    max_act_input: s.ranges.map(|r| r.0),
                    max_ln_var: s.ranges.and_then(|r| (r.1 > 0.0).then_some(r.1)),
                    train_seconds: s.train_seconds,
                    non_finite_share: s.metrics.non_finite_share,
                    finite_perplexity: s.metrics.finite_perplexity,
                    poly_depth: if stage == "polynomial" {
                        poly_depth(&dir.join("polynomial"))
                    } else {
                        None
                    },
                };
                if stage == "he_friendly" {
                    for (e, m) in &s.curve {
                        rows.push(Row {
                            stage: "epoch".into(),
                            epoch: *e,
                            accuracy_pct: 100.0 * m.accuracy,
                            perplexity: m.perplexity,
                            diverged: m.non_finite || !m.loss.is_finite(),
                            non_finite_share: m.non_finite_share,
                            finite_perplexity: m.finite_perplexity,
                            max_act_input: None,
                            max_ln_var: None,
                            train_seconds: 0.0,
                            ..base.clone()
                        });
                    }
                }
                rows.push(base);
            }
            done += 1;
        }
    }
    Ok((rows, vec![format!("checkpoints: {}", config.run_dir.display())]))
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Mean and sample standard deviation.
fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len().max(1) as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = if v.len() > 1 {
        v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (m, var.sqrt())
}

/// Mean over seeds of `value` for the rows selected by `keep`, grouped by (series, x), in row order.
fn series(
    rows: &[Row],
    keep: impl Fn(&Row) -> bool,
    label: impl Fn(&Row) -> String,
    x: impl Fn(&Row) -> f64,
    value: impl Fn(&Row) -> f64,
) -> Vec<Series> {
    let mut order: Vec<String> = Vec::new();
    let mut acc: BTreeMap<String, BTreeMap<u64, Vec<f64>>> = BTreeMap::new();
    for r in rows.iter().filter(|r| keep(r)) {
        let l = label(r);
        if !order.contains(&l) {
            order.push(l.clone());
        }
        let y = value(r);
        if y.is_finite() {
            acc.entry(l)
                .or_default()
                .entry(x(r).to_bits())
                .or_default()
                .push(y);
        }
    }
    order
        .into_iter()
        .filter_map(|l| {
            let pts = acc.remove(&l)?;
            let mut points: Vec<(f64, f64)> = pts
                .into_iter()
                .map(|(k, v)| (f64::from_bits(k), mean_std(&v).0))
                .collect();
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            Some(Series {
                label: l,
                points,
                dashed: false,
            })
        })
        .collect()
}

/// Draws the study's figures from its CSV.
pub fn plot(study: Study, csv: &Path, out: &Path, provenance: &[String]) -> Result<Vec<PathBuf>> {
    let rows: Vec<Row> = crate::csv_out::read_csv(csv)?;
    let mut charts: Vec<(&str, LineChart)> = Vec::new();
    let chart = |title: &str, x: &str, y: &str, x_log: bool, series: Vec<Series>| LineChart {
        title: title.into(),
        x_label: x.into(),
        y_label: y.into(),
        x_log,
        series,
    };
    let epoch_rows = |r: &Row| r.stage == "epoch";
    match study {
        Study::Attention => charts.push((
            "ablation_attention.svg",
            chart(
                "ViT attention variants (Fashion-MNIST subset, mean of seeds)",
                "epoch",
                "held-out accuracy (%)",
                false,
                series(
                    &rows,
                    epoch_rows,
                    |r| r.variant.clone(),
                    |r| r.epoch as f64,
                    |r| r.accuracy_pct,
                ),
            ),
        )),
        Study::Norm => {
            charts.push((
                "ablation_norm_vit.svg",
                chart(
                    "ViT normalisation (Fashion-MNIST subset, mean of seeds)",
                    "epoch",
                    "held-out accuracy (%)",
                    false,
                    series(
                        &rows,
                        |r| epoch_rows(r) && r.group == "vit",
                        |r| r.variant.clone(),
                        |r| r.epoch as f64,
                        |r| r.accuracy_pct,
                    ),
                ),
            ));
            charts.push((
                "ablation_norm_lm.svg",
                chart(
                    "LM normalisation (Wikipedia subset, mean of seeds)",
                    "epoch",
                    "held-out perplexity",
                    false,
                    series(
                        &rows,
                        |r| epoch_rows(r) && r.group == "lm",
                        |r| r.variant.clone(),
                        |r| r.epoch as f64,
                        |r| r.perplexity,
                    ),
                ),
            ));
        }
        Study::Range => {
            charts.push((
                "ablation_range.svg",
                chart(
                    "LM range minimisation: largest activation input after fine-tuning",
                    "alpha (weight of the activation range loss)",
                    "max |activation input| on training data",
                    false,
                    series(
                        &rows,
                        |r| r.stage == "range_min",
                        |r| r.group.clone(),
                        |r| r.x,
                        |r| r.max_act_input.unwrap_or(f64::NAN),
                    ),
                ),
            ));
            charts.push((
                "ablation_range_ppl.svg",
                chart(
                    "LM range minimisation: perplexity after polynomial substitution",
                    "alpha (weight of the activation range loss)",
                    "held-out perplexity of the polynomial model (finite batches)",
                    false,
                    series(
                        &rows,
                        |r| r.stage == "polynomial",
                        |r| r.group.clone(),
                        |r| r.x,
                        |r| {
                            if r.finite_perplexity > 0.0 {
                                r.finite_perplexity
                            } else {
                                r.perplexity
                            }
                        },
                    ),
                ),
            ));
        }
        Study::Stability => charts.push((
            "stability_lr.svg",
            chart(
                "Stability (ViT, 4 blocks, no clipping): largest activation input during training",
                "learning rate",
                "max |activation input| during training (log10)",
                true,
                series(
                    &rows,
                    |r| r.stage == "he_friendly" && r.group != "49 tokens",
                    |r| r.group.clone(),
                    |r| r.x,
                    |r| {
                        if r.diverged {
                            f64::NAN
                        } else {
                            r.max_train_act.max(1e-3).log10()
                        }
                    },
                ),
            ),
        )),
        Study::Degree => {
            charts.push((
                "degree.svg",
                chart(
                    "Accuracy after polynomial substitution against degree (ViT, Fashion-MNIST subset)",
                    "GELU degree, or k for the composite ReLU gap 2^-k",
                    "held-out accuracy (%)",
                    false,
                    series(
                        &rows,
                        |r| r.stage == "polynomial",
                        |r| r.group.clone(),
                        |r| r.x,
                        |r| r.accuracy_pct,
                    ),
                ),
            ));
            charts.push((
                "degree_depth.svg",
                chart(
                    "Accuracy after polynomial substitution against multiplicative depth (ViT)",
                    "multiplicative depth of the activation polynomial (levels)",
                    "held-out accuracy (%)",
                    false,
                    series(
                        &rows,
                        |r| r.stage == "polynomial" && r.poly_depth.is_some(),
                        |r| r.group.clone(),
                        |r| r.poly_depth.map_or(f64::NAN, |d| d as f64),
                        |r| r.accuracy_pct,
                    ),
                ),
            ));
        }
        Study::Depth => charts.push((
            "depth.svg",
            chart(
                "Original vs polynomial ViT against depth (Fashion-MNIST subset)",
                "blocks",
                "held-out accuracy (%)",
                false,
                series(
                    &rows,
                    |r| r.stage == "original" || r.stage == "polynomial" || r.stage == "he_friendly",
                    |r| r.stage.clone(),
                    |r| r.x,
                    |r| r.accuracy_pct,
                ),
            ),
        )),
    }
    let mut paths = Vec::new();
    for (name, c) in charts {
        if c.series.iter().all(|s| s.points.is_empty()) || c.series.is_empty() {
            continue;
        }
        let path = out.join(name);
        c.write_svg(&path, provenance)?;
        paths.push(path);
    }
    Ok(paths)
}

/// Markdown table: mean ± standard deviation over seeds per variant and stage.
pub fn summary(csv: &Path) -> Result<String> {
    let rows: Vec<Row> = crate::csv_out::read_csv(csv)?;
    let mut order: Vec<(String, String)> = Vec::new();
    let mut acc: BTreeMap<(String, String), Vec<&Row>> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.stage != "epoch") {
        let k = (r.variant.clone(), r.stage.clone());
        if !order.contains(&k) {
            order.push(k.clone());
        }
        acc.entry(k).or_default().push(r);
    }
    let mut s = String::from(
        "| variant | stage | seeds | accuracy % | perplexity | perplexity, finite batches | non-finite share | diverged | max act (train) | max act input | max LN var | poly depth |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for k in order {
        let rs = &acc[&k];
        let f = |g: &dyn Fn(&Row) -> f64| {
            let v: Vec<f64> = rs.iter().map(|r| g(r)).filter(|x| x.is_finite()).collect();
            if v.is_empty() {
                return "-".to_string();
            }
            let (m, sd) = mean_std(&v);
            if m.abs() >= 1e5 {
                format!("{m:.2e} ± {sd:.1e}")
            } else {
                format!("{m:.2} ± {sd:.2}")
            }
        };
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {}/{} | {} | {} | {} | {} |\n",
            k.0,
            k.1,
            rs.len(),
            f(&|r| r.accuracy_pct),
            f(&|r| r.perplexity),
            f(&|r| if r.finite_perplexity > 0.0 {
                r.finite_perplexity
            } else {
                f64::NAN
            }),
            f(&|r| r.non_finite_share),
            rs.iter().filter(|r| r.diverged).count(),
            rs.len(),
            f(&|r| r.max_train_act),
            f(&|r| r.max_act_input.unwrap_or(f64::NAN)),
            f(&|r| r.max_ln_var.unwrap_or(f64::NAN)),
            rs.iter()
                .filter_map(|r| r.poly_depth)
                .max()
                .map_or_else(|| "-".into(), |d| d.to_string()),
        ));
    }
    Ok(s)
}
