//! The experiment registry: every experiment the harness can `run`, `plot` and `report`.
//!
//! An experiment is a module with a serde `Config` (one per [`Preset`]), a `run(&Config)` that
//! returns rows, a `plot` that reads only the CSV, and a Markdown `summary` of the CSV for
//! `results/README.md`. The `tiny` preset of every experiment runs in seconds, for tests and CI.

pub mod ablation;
pub mod approx_error;
pub mod bootstrap;
pub mod he_agreement;
pub mod he_agreement_lm;
pub mod train;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::csv_out::write_csv;
use crate::provenance::Provenance;

/// Size of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Preset {
    /// Seconds: smoke tests and CI.
    Tiny,
    /// Minutes on a laptop CPU: the numbers in `results/`.
    Cpu,
}

impl Preset {
    /// Lowercase name, as on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Preset::Tiny => "tiny",
            Preset::Cpu => "cpu",
        }
    }
}

/// What `harness run` needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunArgs {
    /// Which settings.
    pub preset: Preset,
    /// Seed for experiments that sample (recorded in the provenance either way).
    pub seed: u64,
    /// Number of seeds (`seed`, `seed + 1`, ...) for the training experiments, overriding the preset's.
    pub seeds: Option<usize>,
    /// Items of the encrypted-LM experiment (windows), overriding the preset's.
    pub limit: Option<usize>,
    /// Output directory.
    pub out: PathBuf,
}

/// An entry of the registry.
#[derive(Debug, Clone, Copy)]
pub struct Experiment {
    /// Name on the command line.
    pub name: &'static str,
    /// One line on what it measures.
    pub description: &'static str,
    /// Presets it supports, each with a description.
    pub presets: &'static [(Preset, &'static str)],
    /// File name of its CSV in the output directory.
    pub csv: &'static str,
    /// File names of the figures `plot` draws.
    pub plots: &'static [&'static str],
    /// Runs it and writes its CSV; returns the CSV's path.
    pub run: fn(&RunArgs) -> Result<PathBuf>,
    /// Draws its figures from `(csv, out_dir, provenance lines for the SVGs)`; returns their paths.
    pub plot: fn(&Path, &Path, &[String]) -> Result<Vec<PathBuf>>,
    /// Markdown summary of its CSV.
    pub summary: fn(&Path) -> Result<String>,
}

/// All experiments.
pub const EXPERIMENTS: &[Experiment] = &[Experiment {
    name: "approx-error",
    description: "Max error, depth and products of polynomial approximations of GELU, ReLU and 1/sqrt(x)",
    presets: &[
        (
            Preset::Tiny,
            "degrees 3, 7, 15; two composite ReLU designs; Newton from degrees 3 and 7 (under a second)",
        ),
        (
            Preset::Cpu,
            "degrees 3 to 127; twelve composite ReLU designs; Newton grid, designs for 1e-1 to 1e-12 (seconds)",
        ),
    ],
    csv: approx_error::CSV,
    plots: &[approx_error::PLOT_DEGREE, approx_error::PLOT_DEPTH],
    run: run_approx_error,
    plot: approx_error::plot,
    summary: approx_error::summary,
},
Experiment {
    name: "bootstrap",
    description: "CKKS bootstrapping: precision, levels left, time on one and all threads, key memory",
    presets: &[
        (Preset::Tiny, "toy ring N = 2^10, insecure (seconds)"),
        (Preset::Cpu, "the 128-bit N = 2^16 preset (about 12 GB of memory, a few minutes)"),
    ],
    csv: bootstrap::CSV,
    plots: &[],
    run: run_bootstrap,
    plot: bootstrap::plot,
    summary: bootstrap::summary,
},
Experiment {
    name: "train-vit",
    description: "Staged conversion of a ViT (original, HE-friendly, range-minimised, polynomial): accuracy per stage",
    presets: &[
        (Preset::Tiny, "tiny ViT on synthetic 8x8 images (seconds)"),
        (
            Preset::Cpu,
            "CPU-scale poly-ViT (16 tokens x 64, 2 blocks) on Fashion-MNIST, 10 epochs per model (tens of minutes)",
        ),
    ],
    csv: train::CSV_VIT,
    plots: &[],
    run: run_train_vit,
    plot: train::plot,
    summary: train::summary,
},
Experiment {
    name: "train-vit-mnist",
    description: "The train-vit conversion with the same model and settings on MNIST (the main table's second vision set)",
    presets: &[
        (Preset::Tiny, "tiny ViT on synthetic 8x8 images (seconds)"),
        (
            Preset::Cpu,
            "CPU-scale poly-ViT (16 tokens x 64, 2 blocks) on MNIST, 10 epochs per model (tens of minutes)",
        ),
    ],
    csv: train::CSV_VIT_MNIST,
    plots: &[],
    run: run_train_vit_mnist,
    plot: train::plot,
    summary: train::summary,
},
Experiment {
    name: "train-lm",
    description: "Staged conversion of a causal LM (original, HE-friendly, range-minimised, polynomial): perplexity per stage",
    presets: &[
        (Preset::Tiny, "tiny LM on a synthetic counting sequence (seconds)"),
        (
            Preset::Cpu,
            "CPU-scale poly-LM (context 32, width 128, 2 blocks) on Wikipedia lead sections (tens of minutes)",
        ),
    ],
    csv: train::CSV_LM,
    plots: &[],
    run: run_train_lm,
    plot: train::plot,
    summary: train::summary,
},
Experiment {
    name: "ablation-attention",
    description: "Length-scaling ablation: softmax vs pointwise attention, no scaling, 1/sqrt(L) or 1/L before/after/both, ReLU vs GELU (ViT)",
    presets: &[
        (Preset::Tiny, "tiny synthetic models, one seed (seconds)"),
        (Preset::Cpu, "9 variants x 3 seeds, 20k Fashion-MNIST images, 4 epochs each (about 25 minutes)"),
    ],
    csv: ablation::Study::Attention.csv_name(),
    plots: ablation::Study::Attention.plot_names(),
    run: run_ablation_attention,
    plot: plot_ablation_attention,
    summary: ablation::summary,
},
Experiment {
    name: "ablation-norm",
    description: "Normalisation ablation: LayerNorm vs BatchNorm (with/without the extra BatchNorms) for the ViT, LayerNorm vs BatchNorm for the LM",
    presets: &[
        (Preset::Tiny, "tiny synthetic models, one seed (seconds)"),
        (Preset::Cpu, "5 variants x 3 seeds (about 15 minutes)"),
    ],
    csv: ablation::Study::Norm.csv_name(),
    plots: ablation::Study::Norm.plot_names(),
    run: run_ablation_norm,
    plot: plot_ablation_norm,
    summary: ablation::summary,
},
Experiment {
    name: "ablation-range",
    description: "Range/variance-minimisation weights alpha, beta in {0, 0.1, 1}: ranges and perplexity after substitution (LM)",
    presets: &[
        (Preset::Tiny, "tiny synthetic models, one seed (seconds)"),
        (Preset::Cpu, "9 grid points x 3 seeds, 1 fine-tuning epoch each from a 2-epoch model (about 20 minutes)"),
    ],
    csv: ablation::Study::Range.csv_name(),
    plots: ablation::Study::Range.plot_names(),
    run: run_ablation_range,
    plot: plot_ablation_range,
    summary: ablation::summary,
},
Experiment {
    name: "stability",
    description: "Training stability: divergence and largest activation against learning rate and sequence length per attention variant (4-block ViT, no clipping)",
    presets: &[
        (Preset::Tiny, "tiny synthetic models, one seed (seconds)"),
        (Preset::Cpu, "16 runs x 3 seeds on 10k images, 2 epochs (about 20 minutes)"),
    ],
    csv: ablation::Study::Stability.csv_name(),
    plots: ablation::Study::Stability.plot_names(),
    run: run_stability,
    plot: plot_stability,
    summary: ablation::summary,
},
Experiment {
    name: "degree",
    description: "Accuracy after substitution against polynomial degree: GELU Remez and Chebyshev (7..63), composite ReLU (gap 2^-4..2^-10)",
    presets: &[
        (Preset::Tiny, "tiny synthetic models, one seed (seconds)"),
        (Preset::Cpu, "two base models x 3 seeds, 12 fits each (about 10 minutes)"),
    ],
    csv: ablation::Study::Degree.csv_name(),
    plots: ablation::Study::Degree.plot_names(),
    run: run_degree,
    plot: plot_degree,
    summary: ablation::summary,
},
Experiment {
    name: "depth",
    description: "Original vs HE-friendly vs polynomial accuracy against the number of blocks (ViT)",
    presets: &[
        (Preset::Tiny, "tiny synthetic models, one seed (seconds)"),
        (Preset::Cpu, "1, 2, 4 blocks x 3 seeds (about 15 minutes)"),
    ],
    csv: ablation::Study::Depth.csv_name(),
    plots: ablation::Study::Depth.plot_names(),
    run: run_depth,
    plot: plot_depth,
    summary: ablation::summary,
},
Experiment {
    name: "he-agreement",
    description: "Encrypted poly-ViT inference through the client/server split (CKKS, batched, no bootstrapping) vs the f64 reference: top-1 agreement, logit errors, accuracy, time, bytes each way",
    presets: &[
        (Preset::Tiny, "tiny ViT trained on synthetic images, 8 images in batches of 4, toy N = 2^10, insecure (seconds)"),
        (
            Preset::Cpu,
            "the train-vit cpu checkpoint on 112 Fashion-MNIST test images in 7 batches of 16, N = 2^16, 128-bit (12.6 GiB of keys; about an hour on 2 cores)",
        ),
    ],
    csv: he_agreement::CSV,
    plots: &[],
    run: run_he_agreement,
    plot: he_agreement::plot,
    summary: he_agreement::summary,
},
Experiment {
    name: "he-agreement-lm",
    description: "Encrypted polynomial LM (LayerNorm on ciphertexts, bootstrapping placed by the planner) vs the f64 reference: next-token top-1 agreement at every position, logit errors, precision per layer, time",
    presets: &[
        (Preset::Tiny, "tiny LM trained on synthetic tokens, 4 windows in batches of 2, toy N = 2^10 bootstrapping, insecure (seconds)"),
        (
            Preset::Cpu,
            "the train-lm cpu checkpoint on 100 test windows of 32 tokens in batches of 4, N = 2^16 bootstrapping parameters (hours on 2 cores; --limit to run fewer)",
        ),
    ],
    csv: he_agreement_lm::CSV,
    plots: &[],
    run: run_he_agreement_lm,
    plot: he_agreement::plot,
    summary: he_agreement_lm::summary,
}];

/// Where training runs keep their checkpoints: `runs/` in the working directory (kept between
/// sessions so suites resume), or for the tiny preset a fresh per-process temporary directory.
pub fn runs_root(preset: Preset) -> PathBuf {
    match preset {
        Preset::Cpu => PathBuf::from("runs"),
        Preset::Tiny => std::env::temp_dir().join(format!("he-harness-runs-{}", std::process::id())),
    }
}

/// The experiment called `name`.
pub fn find(name: &str) -> Result<&'static Experiment> {
    EXPERIMENTS.iter().find(|e| e.name == name).with_context(|| {
        let names: Vec<&str> = EXPERIMENTS.iter().map(|e| e.name).collect();
        format!("no experiment '{name}'; known: {}", names.join(", "))
    })
}

fn run_approx_error(args: &RunArgs) -> Result<PathBuf> {
    let config = approx_error::Config::preset(args.preset);
    run_and_write(args, approx_error::CSV, &config, approx_error::run)
}

fn run_bootstrap(args: &RunArgs) -> Result<PathBuf> {
    let config = bootstrap::Config::preset(args.preset, args.seed);
    run_and_write(args, bootstrap::CSV, &config, bootstrap::run)
}

fn run_train_vit(args: &RunArgs) -> Result<PathBuf> {
    let mut config = train::Config::preset(train::Which::Vit, args.preset, args.seed);
    if let Some(n) = args.seeds {
        config.seeds = (args.seed..args.seed + n as u64).collect();
    }
    run_and_write(args, train::CSV_VIT, &config, |c| {
        train::run(train::Which::Vit, c)
    })
}

fn run_train_vit_mnist(args: &RunArgs) -> Result<PathBuf> {
    let mut config = train::Config::preset(train::Which::VitMnist, args.preset, args.seed);
    if let Some(n) = args.seeds {
        config.seeds = (args.seed..args.seed + n as u64).collect();
    }
    run_and_write(args, train::CSV_VIT_MNIST, &config, |c| {
        train::run(train::Which::VitMnist, c)
    })
}

fn run_train_lm(args: &RunArgs) -> Result<PathBuf> {
    let mut config = train::Config::preset(train::Which::Lm, args.preset, args.seed);
    if let Some(n) = args.seeds {
        config.seeds = (args.seed..args.seed + n as u64).collect();
    }
    run_and_write(args, train::CSV_LM, &config, |c| train::run(train::Which::Lm, c))
}

fn run_ablation_attention(args: &RunArgs) -> Result<PathBuf> {
    let mut config = ablation::Config::preset(ablation::Study::Attention, args.preset, args.seed);
    if let Some(n) = args.seeds {
        config.seeds = (args.seed..args.seed + n as u64).collect();
    }
    run_and_write(
        args,
        ablation::Study::Attention.csv_name(),
        &config,
        ablation::run,
    )
}

fn plot_ablation_attention(csv: &Path, out: &Path, provenance: &[String]) -> Result<Vec<PathBuf>> {
    ablation::plot(ablation::Study::Attention, csv, out, provenance)
}

fn run_ablation_norm(args: &RunArgs) -> Result<PathBuf> {
    let mut config = ablation::Config::preset(ablation::Study::Norm, args.preset, args.seed);
    if let Some(n) = args.seeds {
        config.seeds = (args.seed..args.seed + n as u64).collect();
    }
    run_and_write(args, ablation::Study::Norm.csv_name(), &config, ablation::run)
}

fn plot_ablation_norm(csv: &Path, out: &Path, provenance: &[String]) -> Result<Vec<PathBuf>> {
    ablation::plot(ablation::Study::Norm, csv, out, provenance)
}

fn run_ablation_range(args: &RunArgs) -> Result<PathBuf> {
    let mut config = ablation::Config::preset(ablation::Study::Range, args.preset, args.seed);
    if let Some(n) = args.seeds {
        config.seeds = (args.seed..args.seed + n as u64).collect();
    }
    run_and_write(args, ablation::Study::Range.csv_name(), &config, ablation::run)
}

fn plot_ablation_range(csv: &Path, out: &Path, provenance: &[String]) -> Result<Vec<PathBuf>> {
    ablation::plot(ablation::Study::Range, csv, out, provenance)
}

fn run_stability(args: &RunArgs) -> Result<PathBuf> {
    let mut config = ablation::Config::preset(ablation::Study::Stability, args.preset, args.seed);
    if let Some(n) = args.seeds {
        config.seeds = (args.seed..args.seed + n as u64).collect();
    }
    run_and_write(
        args,
        ablation::Study::Stability.csv_name(),
        &config,
        ablation::run,
    )
}

fn plot_stability(csv: &Path, out: &Path, provenance: &[String]) -> Result<Vec<PathBuf>> {
    ablation::plot(ablation::Study::Stability, csv, out, provenance)
}

fn run_degree(args: &RunArgs) -> Result<PathBuf> {
    let mut config = ablation::Config::preset(ablation::Study::Degree, args.preset, args.seed);
    if let Some(n) = args.seeds {
        config.seeds = (args.seed..args.seed + n as u64).collect();
    }
    run_and_write(args, ablation::Study::Degree.csv_name(), &config, ablation::run)
}

fn plot_degree(csv: &Path, out: &Path, provenance: &[String]) -> Result<Vec<PathBuf>> {
    ablation::plot(ablation::Study::Degree, csv, out, provenance)
}

fn run_depth(args: &RunArgs) -> Result<PathBuf> {
    let mut config = ablation::Config::preset(ablation::Study::Depth, args.preset, args.seed);
    if let Some(n) = args.seeds {
        config.seeds = (args.seed..args.seed + n as u64).collect();
    }
    run_and_write(args, ablation::Study::Depth.csv_name(), &config, ablation::run)
}

fn plot_depth(csv: &Path, out: &Path, provenance: &[String]) -> Result<Vec<PathBuf>> {
    ablation::plot(ablation::Study::Depth, csv, out, provenance)
}

fn run_he_agreement(args: &RunArgs) -> Result<PathBuf> {
    let config = he_agreement::Config::preset(args.preset, args.seed);
    run_and_write(args, he_agreement::CSV, &config, he_agreement::run)
}

fn run_he_agreement_lm(args: &RunArgs) -> Result<PathBuf> {
    let mut config = he_agreement_lm::Config::preset(args.preset, args.seed);
    if let Some(n) = args.limit {
        config.windows = n;
    }
    run_and_write(args, he_agreement_lm::CSV, &config, he_agreement_lm::run)
}

/// Collects the provenance, runs `run` on `config` and writes the CSV into `args.out`.
fn run_and_write<C: Serialize, R: Serialize>(
    args: &RunArgs,
    csv: &str,
    config: &C,
    run: impl FnOnce(&C) -> Result<(Vec<R>, Vec<String>)>,
) -> Result<PathBuf> {
    let provenance = Provenance::collect(args.seed, args.preset.name(), &serde_json::to_string(config)?);
    let (rows, notes) = run(config)?;
    std::fs::create_dir_all(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?;
    let path = args.out.join(csv);
    write_csv(&path, &provenance, &notes, &rows)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::approx_error::Row;
    use super::*;
    use crate::csv_out::{read_csv, read_header};
    use crate::provenance::lookup;

    #[test]
    fn registry_names_are_unique_and_found() {
        for e in EXPERIMENTS {
            assert_eq!(find(e.name).unwrap().name, e.name);
            assert!(e.presets.iter().any(|(p, _)| *p == Preset::Tiny));
            assert_eq!(EXPERIMENTS.iter().filter(|o| o.name == e.name).count(), 1);
        }
        assert!(find("nope").is_err());
    }

    /// The MNIST run is the Fashion-MNIST pipeline on other data, with checkpoints of its own.
    #[test]
    fn mnist_preset_differs_only_in_data() {
        let fashion = train::Config::preset(train::Which::Vit, Preset::Cpu, 0);
        let mnist = train::Config::preset(train::Which::VitMnist, Preset::Cpu, 0);
        assert_eq!(mnist.pipeline.dataset, transformer::pipeline::Dataset::Mnist);
        assert_ne!(fashion.run_dir, mnist.run_dir);
        let mut same = mnist.pipeline.clone();
        same.dataset = fashion.pipeline.dataset;
        assert_eq!(same, fashion.pipeline);
    }

    /// Every training experiment at the tiny preset: CSV schema, sane values, figures drawn.
    #[test]
    fn training_experiments_tiny() {
        for name in [
            "train-vit",
            "train-vit-mnist",
            "train-lm",
            "ablation-attention",
            "ablation-norm",
            "ablation-range",
            "stability",
            "degree",
            "depth",
        ] {
            let dir = crate::test_dir(&format!("tiny_{name}"));
            let exp = find(name).unwrap();
            let args = RunArgs {
                preset: Preset::Tiny,
                seed: 1,
                seeds: None,
                limit: None,
                out: dir.clone(),
            };
            let csv = (exp.run)(&args).unwrap();
            assert_eq!(csv, dir.join(exp.csv));
            assert!(crate::csv_out::count_rows(&csv).unwrap() > 0, "{name}");
            if name.starts_with("train-") {
                let rows: Vec<train::Row> = read_csv(&csv).unwrap();
                let stages: Vec<&str> = rows.iter().map(|r| r.stage.as_str()).collect();
                assert_eq!(
                    stages,
                    ["original", "he_friendly", "range_min", "polynomial"],
                    "{name}"
                );
                for r in &rows {
                    assert!(r.loss.is_finite() && r.perplexity >= 1.0, "{name}: {r:?}");
                    assert!((0.0..=100.0).contains(&r.accuracy_pct));
                }
            } else {
                let rows: Vec<ablation::Row> = read_csv(&csv).unwrap();
                for r in &rows {
                    assert!(
                        (0.0..=100.0).contains(&r.accuracy_pct) || r.diverged,
                        "{name}: {r:?}"
                    );
                    assert_eq!(r.seed, 1);
                }
                let variants = ablation::Config::preset(
                    match name {
                        "ablation-attention" => ablation::Study::Attention,
                        "ablation-norm" => ablation::Study::Norm,
                        "ablation-range" => ablation::Study::Range,
                        "stability" => ablation::Study::Stability,
                        "degree" => ablation::Study::Degree,
                        _ => ablation::Study::Depth,
                    },
                    Preset::Tiny,
                    1,
                )
                .variants;
                for v in &variants {
                    assert!(
                        rows.iter().any(|r| r.variant == v.name),
                        "{name}: no row for {}",
                        v.name
                    );
                }
                assert!(rows.iter().any(|r| r.stage == "epoch"), "{name}: no curve rows");
            }
            let figures = (exp.plot)(&csv, &dir, &["test".to_string()]).unwrap();
            for f in &figures {
                assert!(std::fs::read_to_string(f).unwrap().contains("<svg"));
            }
            assert!((exp.summary)(&csv).unwrap().contains('|'));
        }
        let _ = std::fs::remove_dir_all(runs_root(Preset::Tiny));
    }

    /// The encrypted LM at toy parameters: every position agrees with the reference through the
    /// planned bootstraps, and the per-layer precision of the debug batch is reported.
    #[test]
    fn he_agreement_lm_tiny_agrees_through_bootstraps() {
        let dir = crate::test_dir("tiny_he_agreement_lm");
        let exp = find("he-agreement-lm").unwrap();
        let args = RunArgs {
            preset: Preset::Tiny,
            seed: 2,
            seeds: None,
            limit: None,
            out: dir.clone(),
        };
        let csv = (exp.run)(&args).unwrap();
        let rows: Vec<he_agreement_lm::Row> = read_csv(&csv).unwrap();
        assert_eq!(rows.len(), 4);
        for r in &rows {
            assert_eq!(r.agreeing_positions, r.positions, "window {}", r.window);
            assert!(r.max_abs_error < 1e-3 && r.bootstraps >= 2, "{r:?}");
        }
        assert!(rows[0].layer_precision_bits.contains("blocks.0.heads"));
        assert!(he_agreement_lm::summary(&csv).unwrap().contains("| 4 | 32 |"));
    }

    /// The tiny preset end to end: run, CSV with provenance, rows that parse, plots.
    #[test]
    fn approx_error_tiny() {
        let dir = crate::test_dir("approx_error_tiny");
        let exp = find("approx-error").unwrap();
        let args = RunArgs {
            preset: Preset::Tiny,
            seed: 11,
            seeds: None,
            limit: None,
            out: dir.clone(),
        };
        let csv = (exp.run)(&args).unwrap();
        assert_eq!(csv, dir.join("approx_error.csv"));

        let header = read_header(&csv).unwrap();
        assert_eq!(lookup(&header, "preset"), Some("tiny"));
        assert_eq!(lookup(&header, "seed"), Some("11"));
        assert!(lookup(&header, "config").is_some_and(|c| c.contains("\"degrees\":[3,7,15]")));
        let rows: Vec<Row> = read_csv(&csv).unwrap();
        assert!(rows.iter().all(|r| r.max_abs_error > 0.0 && r.depth >= 1));

        // Remez on GELU: one row per degree, errors falling with the degree, depth rising.
        let gelu: Vec<&Row> = rows
            .iter()
            .filter(|r| r.function == "gelu" && r.method == "remez")
            .collect();
        assert_eq!(gelu.iter().map(|r| r.degree).collect::<Vec<_>>(), [3, 7, 15]);
        for w in gelu.windows(2) {
            assert!(w[1].max_abs_error < w[0].max_abs_error, "{w:?}");
            assert!(w[1].depth > w[0].depth);
        }
        // Minimax is never worse than the interpolant of the same degree.
        for r in &gelu {
            let cheb = rows
                .iter()
                .find(|c| c.function == "gelu" && c.method == "chebyshev" && c.degree == r.degree)
                .unwrap();
            assert!(r.max_abs_error <= cheb.max_abs_error * (1.0 + 1e-9));
        }
        // Composite ReLU: a smaller gap costs more levels and gives a smaller error.
        let comp: Vec<&Row> = rows.iter().filter(|r| r.method == "composite").collect();
        assert_eq!(comp.len(), 2);
        assert!(comp[1].depth > comp[0].depth && comp[1].max_abs_error < comp[0].max_abs_error);
        // Newton: relative errors everywhere, falling with each step; the designs reach 1e-4.
        let newton: Vec<&Row> = rows.iter().filter(|r| r.method == "newton").collect();
        let rel = |r: &Row| r.max_rel_error.unwrap();
        let seven: Vec<&&Row> = newton.iter().filter(|r| r.stages.starts_with("7;")).collect();
        assert_eq!(seven.len(), 2);
        assert!(rel(seven[1]) < rel(seven[0]) && seven[1].depth == seven[0].depth + 2);
        assert!(newton.iter().any(|r| rel(r) <= 1e-4));

        let plots = (exp.plot)(&csv, &dir, &["command: test".into()]).unwrap();
        assert_eq!(plots.len(), exp.plots.len());
        for p in plots {
            let svg = std::fs::read_to_string(&p).unwrap();
            assert!(svg.contains("<svg"));
            assert_eq!(crate::plot::svg_provenance(&svg), ["command: test"]);
        }
        assert!((exp.summary)(&csv).unwrap().contains("| gelu | remez |"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
