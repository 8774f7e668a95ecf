//! `harness`: the command-line tool of the workspace.
//!
//! - `demo`: the ring layer and an encrypted computation at N = 2^16 (built-in defaults);
//! - `list`: the experiments and their presets;
//! - `run <experiment> [--preset tiny|cpu] [--seed N] [--seeds K] [--out results]`: runs an experiment and
//!   writes its CSV, headed by `#` provenance lines;
//! - `plot <experiment> [--out results]`: draws its SVG figures from that CSV (never recomputes);
//! - `report [--out results]`: regenerates `results/README.md`, every CSV and figure with the
//!   command that made it;
//! - `setup`, `keygen`, `encrypt`, `serve`, `decrypt`: encrypted inference as separate client and
//!   server steps over a session directory ([`roles`]); `infer`: all of them over many images, with
//!   the agreement report (the `he-agreement` experiment with your settings).

mod costs;
mod csv_out;
mod demo;
mod experiments;
mod plot;
mod provenance;
mod report;
mod roles;

use std::path::PathBuf;

use anyhow::{ensure, Result};
use clap::{Parser, Subcommand};

use experiments::{Preset, RunArgs, EXPERIMENTS};

// Training allocates many short-lived tensors: mimalloc made burn's step 20% faster (docs/PERF.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "harness",
    about = "Secure transformer inference over CKKS: demo and experiments"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Shows the library at work on built-in defaults (today: the CKKS ring layer at N = 2^16).
    Demo {
        /// log2 of the ring degree.
        #[arg(long, default_value_t = 16)]
        log_n: u32,
        /// Number of RNS primes.
        #[arg(long, default_value_t = 30)]
        limbs: usize,
    },
    /// Lists the experiments and their presets.
    List,
    /// Runs an experiment and writes its CSV (with a provenance header) to the output directory.
    Run {
        /// Experiment name (see `list`).
        experiment: String,
        /// Size of the run.
        #[arg(long, value_enum, default_value_t = Preset::Cpu)]
        preset: Preset,
        /// Seed for experiments that sample (always recorded).
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Seeds `seed, seed + 1, ...` of the training experiments (default: the preset's, 3 at cpu).
        #[arg(long)]
        seeds: Option<usize>,
        /// Items (windows) of the encrypted-LM experiment, overriding the preset's.
        #[arg(long)]
        limit: Option<usize>,
        /// Output directory.
        #[arg(long, default_value = "results")]
        out: PathBuf,
    },
    /// Draws an experiment's figures (SVG) from its CSV in the output directory.
    Plot {
        /// Experiment name (see `list`).
        experiment: String,
        /// Directory holding the CSV; the figures go there too.
        #[arg(long, default_value = "results")]
        out: PathBuf,
    },
    /// Which polynomial sites of a trained model see inputs outside their fitted intervals on held-out
    /// items (run one by one): finds the site where non-finite outputs start.
    Audit {
        /// Polynomial stage directory of a pipeline run (e.g. runs/depth/cpu/.../polynomial).
        checkpoint: PathBuf,
        /// Held-out items to run.
        #[arg(long, default_value_t = 2000)]
        limit: usize,
    },
    /// Regenerates README.md in the output directory: every CSV and figure with its command.
    Report {
        /// Results directory.
        #[arg(long, default_value = "results")]
        out: PathBuf,
    },
    /// Server: the plan of a checkpoint before running it: parameters, levels, keys, the operations
    /// of one forward and their predicted time from operation costs measured on the spot.
    Plan {
        /// Polynomial checkpoint; without it the tiny ViT at INSECURE toy parameters.
        #[arg(long)]
        checkpoint: Option<PathBuf>,
        /// Images per ciphertext (default: as many as fit).
        #[arg(long)]
        batch: Option<usize>,
        /// log2 of the scale of the 128-bit N = 2^16 parameters.
        #[arg(long, default_value_t = 35)]
        log_scale: u32,
        /// Repetitions of each timed operation (the median is used).
        #[arg(long, default_value_t = 5)]
        reps: usize,
    },
    /// Server: prepares a polynomial checkpoint (a ViT or a language model) and publishes the
    /// parameters and the interface.
    Setup {
        /// Session directory (files between client and server).
        #[arg(long, default_value = "session")]
        dir: PathBuf,
        /// Polynomial checkpoint (e.g. runs/train_vit/cpu-seed0/polynomial or
        /// runs/train_lm/cpu-seed0/polynomial); without it the tiny ViT (or with --lm the tiny LM)
        /// is trained on synthetic data and served at INSECURE toy parameters.
        #[arg(long)]
        checkpoint: Option<PathBuf>,
        /// The checkpoint is a language model (served at the N = 2^16 bootstrapping parameters).
        #[arg(long)]
        lm: bool,
        /// Images (or text windows) per ciphertext (default: as many as fit).
        #[arg(long)]
        batch: Option<usize>,
        /// log2 of the scale of the 128-bit N = 2^16 parameters (ViT).
        #[arg(long, default_value_t = 35)]
        log_scale: u32,
    },
    /// Client: makes the secret, public and evaluation keys for the published interface.
    Keygen {
        /// Session directory.
        #[arg(long, default_value = "session")]
        dir: PathBuf,
        /// Accept INSECURE toy parameters (tests only).
        #[arg(long)]
        allow_insecure: bool,
    },
    /// Client: encrypts test images (or text windows) of the model's data set into one ciphertext.
    Encrypt {
        /// Session directory.
        #[arg(long, default_value = "session")]
        dir: PathBuf,
        /// First test image (or window).
        #[arg(long, default_value_t = 0)]
        first: usize,
        /// Number of images or windows (default: a full batch).
        #[arg(long)]
        count: Option<usize>,
    },
    /// Server: runs the model on the encrypted input with the client's evaluation keys.
    Serve {
        /// Session directory.
        #[arg(long, default_value = "session")]
        dir: PathBuf,
        /// Repetitions of each operation timed for the LM's predicted time (the median is used).
        #[arg(long, default_value_t = 3)]
        reps: usize,
    },
    /// Client: decrypts the output and prints the classes (or the next tokens).
    Decrypt {
        /// Session directory.
        #[arg(long, default_value = "session")]
        dir: PathBuf,
        /// Noise flooding of 2^b per coefficient before decoding (for results that will be shared).
        #[arg(long)]
        flood_bits: Option<u32>,
    },
    /// All the steps over many images (batched), with the agreement against the f64 reference.
    Infer {
        /// Polynomial checkpoint; without it the tiny ViT (or LM) at INSECURE toy parameters.
        #[arg(long)]
        checkpoint: Option<PathBuf>,
        /// A language model: `--images` counts test windows (client and server in one process, as
        /// `run he-agreement-lm`).
        #[arg(long)]
        lm: bool,
        /// Test images or windows (the first ones).
        #[arg(long, default_value_t = 16)]
        images: usize,
        /// Images per ciphertext (default: as many as fit).
        #[arg(long)]
        batch: Option<usize>,
        /// Session directory.
        #[arg(long, default_value = "session")]
        dir: PathBuf,
        /// Writes he_agreement.csv there as well.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Demo { log_n, limbs } => demo::run(log_n, limbs),
        Command::List => {
            for exp in EXPERIMENTS {
                println!("{}: {}", exp.name, exp.description);
                println!("  writes {} and, with `plot`, {}", exp.csv, exp.plots.join(", "));
                for (preset, what) in exp.presets {
                    println!("  --preset {:<5} {what}", preset.name());
                }
            }
            Ok(())
        }
        Command::Run {
            experiment,
            preset,
            seed,
            seeds,
            limit,
            out,
        } => {
            let exp = experiments::find(&experiment)?;
            ensure!(
                exp.presets.iter().any(|(p, _)| *p == preset),
                "{} has no preset {}",
                exp.name,
                preset.name()
            );
            let start = std::time::Instant::now();
            let csv = (exp.run)(&RunArgs {
                preset,
                seed,
                seeds,
                limit,
                out,
            })?;
            println!(
                "{}: wrote {} ({} rows) in {:.1} s",
                exp.name,
                csv.display(),
                csv_out::count_rows(&csv)?,
                start.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Command::Audit { checkpoint, limit } => {
            let audit = transformer::pipeline::audit_checkpoint(&checkpoint, limit)?;
            println!("{}", audit_table(&audit));
            Ok(())
        }
        Command::Plot { experiment, out } => {
            let exp = experiments::find(&experiment)?;
            let csv = out.join(exp.csv);
            ensure!(
                csv.is_file(),
                "{} not found: run `harness run {} --out {}` first",
                csv.display(),
                exp.name,
                out.display()
            );
            let source = csv_out::read_header(&csv)?;
            let mut provenance = vec![
                format!("command: {}", provenance::command_line()),
                format!("source: {}", csv.display()),
            ];
            for key in ["git", "command", "preset", "date"] {
                if let Some(v) = provenance::lookup(&source, key) {
                    provenance.push(format!("source {key}: {v}"));
                }
            }
            for path in (exp.plot)(&csv, &out, &provenance)? {
                println!("{}: wrote {}", exp.name, path.display());
            }
            Ok(())
        }
        Command::Report { out } => {
            let path = report::write(&out, &provenance::command_line())?;
            println!("wrote {}", path.display());
            Ok(())
        }
        Command::Plan {
            checkpoint,
            batch,
            log_scale,
            reps,
        } => roles::plan(checkpoint.as_deref(), batch, log_scale, reps),
        Command::Setup {
            dir,
            checkpoint,
            lm,
            batch,
            log_scale,
        } => {
            if lm {
                roles::lm::setup(&dir, checkpoint.as_deref(), batch)
            } else {
                roles::setup(&roles::SetupArgs {
                    dir,
                    checkpoint,
                    batch,
                    log_scale,
                })
            }
        }
        Command::Keygen { dir, allow_insecure } => roles::keygen(&dir, allow_insecure),
        Command::Encrypt { dir, first, count } => roles::encrypt(&dir, first, count),
        Command::Serve { dir, reps } => roles::serve(&dir, reps),
        Command::Decrypt { dir, flood_bits } => roles::decrypt_step(&dir, flood_bits),
        Command::Infer {
            checkpoint,
            lm: true,
            images,
            batch,
            out,
            ..
        } => infer_lm(checkpoint, images, batch, out),
        Command::Infer {
            checkpoint,
            images,
            batch,
            dir,
            out,
            ..
        } => {
            use experiments::he_agreement;
            let secure = checkpoint.is_some();
            let mut config =
                he_agreement::Config::preset(if secure { Preset::Cpu } else { Preset::Tiny }, rand::random());
            config.checkpoint = checkpoint;
            config.images = images;
            config.batch = batch;
            config.session = dir;
            let csv = match out {
                Some(out) => {
                    let args = RunArgs {
                        preset: if secure { Preset::Cpu } else { Preset::Tiny },
                        seed: config.seed,
                        seeds: None,
                        limit: None,
                        out,
                    };
                    let provenance = provenance::Provenance::collect(
                        args.seed,
                        args.preset.name(),
                        &serde_json::to_string(&config)?,
                    );
                    let (rows, notes) = he_agreement::run(&config)?;
                    std::fs::create_dir_all(&args.out)?;
                    let path = args.out.join(he_agreement::CSV);
                    csv_out::write_csv(&path, &provenance, &notes, &rows)?;
                    path
                }
                None => {
                    let (rows, notes) = he_agreement::run(&config)?;
                    let path = std::env::temp_dir().join(format!("he_agreement-{}.csv", std::process::id()));
                    csv_out::write_csv(
                        &path,
                        &provenance::Provenance::collect(config.seed, "infer", "{}"),
                        &notes,
                        &rows,
                    )?;
                    path
                }
            };
            print!("{}", he_agreement::summary(&csv)?);
            println!("rows: {}", csv.display());
            Ok(())
        }
    }
}

/// `infer --lm`: the encrypted LM over `windows` test windows with the agreement report (the
/// he-agreement-lm experiment on this checkpoint); the CSV goes to `out` or the temp directory.
fn infer_lm(
    checkpoint: Option<PathBuf>,
    windows: usize,
    batch: Option<usize>,
    out: Option<PathBuf>,
) -> Result<()> {
    use experiments::he_agreement_lm;
    let preset = if checkpoint.is_some() {
        Preset::Cpu
    } else {
        Preset::Tiny
    };
    let mut config = he_agreement_lm::Config::preset(preset, 0);
    config.checkpoint = checkpoint;
    config.windows = windows;
    config.batch = batch;
    let (rows, notes) = he_agreement_lm::run(&config)?;
    let dir = out.unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(he_agreement_lm::CSV);
    let provenance =
        provenance::Provenance::collect(config.seed, preset.name(), &serde_json::to_string(&config)?);
    csv_out::write_csv(&path, &provenance, &notes, &rows)?;
    print!("{}", he_agreement_lm::summary(&path)?);
    println!("rows: {}", path.display());
    Ok(())
}

/// A fresh, empty directory for one test under the system temp directory.
#[cfg(test)]
fn test_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("harness-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The audit as a Markdown table, sites in forward order.
fn audit_table(audit: &[transformer::model::SiteAudit]) -> String {
    let mut s = String::from(
        "| site | interval | inputs seen | items outside | items where it starts |\n|---|---|---|---|---|\n",
    );
    for a in audit {
        s.push_str(&format!(
            "| {} | [{:.2}, {:.2}] | [{:.2}, {:.2}] | {} | {} |\n",
            a.site,
            a.interval.min,
            a.interval.max,
            a.seen.min,
            a.seen.max,
            a.items_outside,
            a.items_first_outside
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_parses() {
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from([
            "harness",
            "run",
            "approx-error",
            "--preset",
            "tiny",
            "--seed",
            "3",
        ])
        .unwrap();
        match cli.command {
            Command::Run {
                experiment,
                preset,
                seed,
                seeds,
                limit,
                out,
            } => {
                assert_eq!(experiment, "approx-error");
                assert_eq!(limit, None);
                assert_eq!(preset, Preset::Tiny);
                assert_eq!(seed, 3);
                assert_eq!(seeds, None);
                assert_eq!(out, PathBuf::from("results"));
            }
            other => panic!("parsed as {other:?}"),
        }
        assert!(Cli::try_parse_from(["harness", "run", "approx-error", "--preset", "huge"]).is_err());
        assert!(Cli::try_parse_from(["harness", "demo"]).is_ok());
        assert!(Cli::try_parse_from(["harness", "report"]).is_ok());
        assert!(matches!(
            Cli::try_parse_from(["harness", "infer", "--lm", "--images", "2"])
                .unwrap()
                .command,
            Command::Infer {
                lm: true,
                images: 2,
                ..
            }
        ));
        assert!(matches!(
            Cli::try_parse_from(["harness", "setup", "--lm", "--batch", "1"])
                .unwrap()
                .command,
            Command::Setup {
                lm: true,
                batch: Some(1),
                ..
            }
        ));
    }
}
