//! Encrypted inference of the polynomial causal LM ([`transformer::encrypted_lm::EncryptedLm`]:
//! LayerNorms on ciphertexts, bootstrapping placed by the planner) against the f64 reference with
//! the same polynomials: per window, the next-token top-1 agreement at every position, the logit
//! errors and precision, the accuracy against the true next tokens; per batch, the time by kind of
//! work and the bytes each way; the keys and memory.
//!
//! The client side (keys, embedding lookup, encryption, decryption) and the server side (the
//! forward, with the evaluation keys only) run in one process here; the file-based split of the
//! ViT ([`super::he_agreement`]) is not wired for the LM yet.
//!
//! - `tiny`: the tiny LM (`ModelConfig::lm_tiny`) trained by the tiny pipeline on synthetic tokens,
//!   its inverse square roots refitted as single degree-15 interpolants if the fit used Newton steps,
//!   **insecure** toy bootstrapping parameters (N = 2^10); 4 windows in batches of 2.
//! - `cpu`: the polynomial checkpoint of `train-lm --preset cpu` (`runs/train_lm/cpu-seed<seed>/
//!   polynomial/`: 2 blocks, width 128, 32 tokens, vocabulary 6,002, degree-31 fits) on the first 100
//!   windows of the WikiText-2 test split, 4 windows per ciphertext, at the N = 2^16 bootstrapping
//!   preset (`Parameters::n16_boot`, 128-bit by the standard table with the sparse-secret caveat of
//!   that preset), weights encoded when they run.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use ckks::circuits::bootstrap::{BootstrapConfig, Bootstrapper};
use ckks::params::Parameters;
use ckks::rlwe::{Encryptor, KeyGenerator};
use ckks::scheme::evaluator::{decrypt_ckks, CkksEncoder, CkksEncryptor, EvaluationKeys, Evaluator};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use serde::{Deserialize, Serialize};
use transformer::encrypted::WeightEncoding;
use transformer::encrypted_lm::{single_polynomial_inverse_sqrt, EncryptedLm, LmOptions};
use transformer::model::{Checkpoint, CpuTrain, TaskData};
use transformer::pipeline::{load_data, run_pipeline, PipelineConfig};
use transformer::reference::ReferenceModel;

use super::he_agreement::{argmax, peak_rss_gib};
use super::Preset;
use crate::costs::CostModel;

/// File name of the CSV.
pub const CSV: &str = "he_agreement_lm.csv";

/// What a run does.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    /// The polynomial checkpoint directory; `None` trains the tiny LM on synthetic tokens first.
    pub checkpoint: Option<PathBuf>,
    /// Test windows encrypted (the first ones).
    pub windows: usize,
    /// Windows per ciphertext (`None`: as many as fit).
    pub batch: Option<usize>,
    /// The N = 2^16 bootstrapping preset (else the insecure toy set).
    pub secure: bool,
    /// Training windows the reference runs on to scale the bootstrapped values.
    pub calibration_windows: usize,
    /// Batches run in debug mode (the first ones): every layer decrypted and compared.
    pub trace_batches: usize,
    /// Repetitions of each operation timed for the cost model (the median is used).
    pub cost_reps: usize,
    /// Seed of the keys and encryptions (and of the checkpoint: `cpu-seed<seed>`).
    pub seed: u64,
}

impl Config {
    /// The settings of a preset.
    pub fn preset(preset: Preset, seed: u64) -> Self {
        match preset {
            Preset::Tiny => Self {
                checkpoint: None,
                windows: 4,
                batch: Some(2),
                secure: false,
                calibration_windows: 32,
                trace_batches: 1,
                cost_reps: 1,
                seed,
            },
            Preset::Cpu => Self {
                checkpoint: Some(
                    super::runs_root(Preset::Cpu)
                        .join("train_lm")
                        .join(format!("cpu-seed{seed}"))
                        .join("polynomial"),
                ),
                windows: 100,
                batch: None,
                secure: true,
                calibration_windows: 64,
                trace_batches: 1,
                cost_reps: 3,
                seed,
            },
        }
    }
}

/// One row per window.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row {
    /// Parameters and their security.
    pub security: String,
    /// Index of the batch (ciphertext).
    pub batch: usize,
    /// Windows in that ciphertext.
    pub batch_windows: usize,
    /// Index of the window in the test split.
    pub window: usize,
    /// Positions (next-token predictions) of the window.
    pub positions: usize,
    /// Positions whose decrypted top-1 token is the reference's.
    pub agreeing_positions: usize,
    /// Positions whose reference top-1 token is the true next token.
    pub reference_correct: usize,
    /// Positions whose decrypted top-1 token is the true next token.
    pub encrypted_correct: usize,
    /// Largest |reference logit|.
    pub max_abs_logit: f64,
    /// Largest |decrypted - reference| over the window's logits.
    pub max_abs_error: f64,
    /// Mean |decrypted - reference|.
    pub mean_abs_error: f64,
    /// `-log2(max_abs_error / max(1, max_abs_logit))`.
    pub precision_bits: f64,
    /// Debug-mode batches: `point bits; ...` against the reference trace.
    pub layer_precision_bits: String,
    /// The batch's forward, seconds.
    pub batch_forward_seconds: f64,
    /// `batch_forward_seconds / batch_windows`.
    pub amortized_seconds: f64,
    /// Of the forward: weight encoding, plaintext-weight products, attention products, activations,
    /// LayerNorms, bootstrapping, residuals (seconds).
    pub encode_seconds: f64,
    /// Plaintext-weight products.
    pub plain_matmul_seconds: f64,
    /// Ciphertext-ciphertext attention products.
    pub cipher_matmul_seconds: f64,
    /// Polynomial activations.
    pub activation_seconds: f64,
    /// LayerNorms.
    pub normalization_seconds: f64,
    /// Bootstrapping.
    pub bootstrap_seconds: f64,
    /// Residuals.
    pub other_seconds: f64,
    /// Bootstraps of the forward (= planned, or the run stops).
    pub bootstraps: usize,
    /// Levels: start, output.
    pub start_level: usize,
    /// Level of the logits.
    pub output_level: usize,
    /// Client: embedding, encoding, encryption of the batch, seconds.
    pub encrypt_seconds: f64,
    /// Client: decryption and decoding, seconds.
    pub decrypt_seconds: f64,
    /// Serialized encrypted input (client to server), bytes per batch.
    pub input_bytes: u64,
    /// Serialized encrypted logits (server to client), bytes per batch.
    pub output_bytes: u64,
    /// Galois keys (each at the level it is used at) and relinearization key, GiB.
    pub key_gib: f64,
    /// Galois keys generated.
    pub galois_keys: usize,
    /// The same keys all at the top level would take, GiB.
    pub full_level_key_gib: f64,
    /// Client key generation, seconds.
    pub keygen_seconds: f64,
    /// Server preparation (planning, encoding what is encoded once, the bootstrapping circuit), s.
    pub prepare_seconds: f64,
    /// Rayon threads.
    pub threads: usize,
    /// Peak resident memory of the process so far, GiB.
    pub peak_rss_gib: Option<f64>,
    /// Key switches the forward performed (equal to the planner's count, or the run stops).
    #[serde(default)]
    pub key_switches: Option<usize>,
    /// The planner's predicted forward time without weight encoding (operation counts by level
    /// times costs measured before the run at two levels).
    #[serde(default)]
    pub predicted_seconds: Option<f64>,
}

/// Toy bootstrapping parameters (as the encrypted-LM tests): N = 2^10, 9 working levels of 45 bits,
/// 12 bootstrapping levels of 60 bits, sparse secret of weight 32. **Insecure.**
pub(crate) fn toy_boot() -> Result<(Arc<Parameters>, BootstrapConfig)> {
    Ok((Parameters::toy_boot(9)?, BootstrapConfig::toy()))
}

/// The model, the held-out and calibration windows, and what it is.
pub(crate) struct Task {
    pub(crate) model: ReferenceModel,
    pub(crate) test: Vec<u32>,
    pub(crate) train: Vec<u32>,
    pub(crate) seq_len: usize,
    pub(crate) what: String,
}

/// Trains the tiny LM on synthetic tokens into `dir` (seconds); returns its polynomial checkpoint.
pub(crate) fn tiny_lm_checkpoint(dir: &std::path::Path, seed: u64) -> Result<PathBuf> {
    let mut pc = PipelineConfig::lm_tiny();
    pc.original = false;
    pc.train.seed = seed;
    let (data, prep) = load_data(&mut pc).map_err(|e| anyhow::anyhow!(e))?;
    run_pipeline::<CpuTrain>(&pc, &data, &prep, dir, &Default::default())?;
    Ok(dir.join("polynomial"))
}

/// The token windows of a pipeline run's data set (`pipeline.json` of the run): `(train, test,
/// window length)`.
pub(crate) fn token_data(pipeline_json: &std::path::Path) -> Result<(Vec<u32>, Vec<u32>, usize)> {
    let mut pc: PipelineConfig = serde_json::from_slice(&std::fs::read(pipeline_json)?)
        .with_context(|| format!("reading {}", pipeline_json.display()))?;
    let (data, _) = load_data(&mut pc).map_err(|e| anyhow::anyhow!(e))?;
    let TaskData::Tokens { train, test, seq_len } = data else {
        bail!("{} is not a language-model pipeline", pipeline_json.display());
    };
    Ok((train, test, seq_len))
}

pub(crate) fn load_task(config: &Config) -> Result<Task> {
    let (dir, cleanup) = match &config.checkpoint {
        Some(dir) => (dir.clone(), None),
        None => {
            let root = super::runs_root(Preset::Tiny).join(format!("he_agreement_lm-seed{}", config.seed));
            (tiny_lm_checkpoint(&root, config.seed)?, Some(root))
        }
    };
    if !dir.join("checkpoint.json").is_file() {
        bail!(
            "no polynomial checkpoint at {}: train it first with \
             `cargo run --release -p harness -- run train-lm --preset cpu`",
            dir.display()
        );
    }
    let run = dir.parent().context("checkpoint without a run directory")?;
    let pc: PipelineConfig = serde_json::from_slice(&std::fs::read(run.join("pipeline.json"))?)?;
    let (train, test, seq_len) = token_data(&run.join("pipeline.json"))?;
    let meta = Checkpoint::meta(&dir)?;
    let weights = transformer::model::checkpoint::read_f64_safetensors(&dir.join("weights_f64.safetensors"))?;
    let mut polys = meta.polys.context("checkpoint without polynomials")?;
    let newton = polys
        .sites
        .values()
        .any(|s| matches!(s.poly, transformer::model::SitePoly::Newton { steps, .. } if steps > 0));
    let mut what = format!("{} ({:?})", dir.display(), pc.dataset);
    if newton {
        let n = single_polynomial_inverse_sqrt(&mut polys, 15)?;
        what.push_str(&format!(
            "; {n} inverse square roots refitted as degree-15 interpolants (the fit used Newton steps)"
        ));
    }
    let model = ReferenceModel::new(&meta.config, &weights, Some(&polys))?;
    if let Some(root) = cleanup {
        let _ = std::fs::remove_dir_all(root);
    }
    Ok(Task {
        model,
        test,
        train,
        seq_len,
        what,
    })
}

pub(crate) fn windows(ids: &[u32], seq_len: usize, n: usize) -> Vec<(Vec<u32>, Vec<u32>)> {
    ids.chunks_exact(seq_len + 1)
        .take(n)
        .map(|w| (w[..seq_len].to_vec(), w[1..].to_vec()))
        .collect()
}

/// Runs the experiment.
pub fn run(config: &Config) -> Result<(Vec<Row>, Vec<String>)> {
    let task = load_task(config)?;
    let model = &task.model;
    let (params, boot_config, security) = if config.secure {
        (
            Parameters::n16_boot()?,
            BootstrapConfig::n16_default(),
            "128-bit (standard table; sparse secret h = 192)",
        )
    } else {
        let (p, c) = toy_boot()?;
        (p, c, "INSECURE toy")
    };
    let threads = rayon::current_num_threads();
    eprintln!(
        "he-agreement-lm: {}; N = 2^{}, log QP = {:.1}, {security}; {threads} threads",
        task.what,
        params.n().ilog2(),
        params.log_qp()
    );
    let t = Instant::now();
    let encoder = CkksEncoder::new(&params)?;
    let batch = match config.batch {
        Some(b) => b,
        None => EncryptedLm::max_batch(model, &params)?,
    };
    // A batch that fills few slots is bootstrapped on those only (sparse packing).
    let boot_config = BootstrapConfig {
        slots: Some(EncryptedLm::slots_needed(model, batch)),
        ..boot_config
    };
    let boot = Arc::new(Bootstrapper::new(&params, &encoder, boot_config)?);
    let calibration: Vec<Vec<u32>> = windows(&task.train, task.seq_len, config.calibration_windows)
        .into_iter()
        .map(|w| w.0)
        .collect();
    let start = boot.output_level();
    let lm = EncryptedLm::new(
        model,
        &params,
        &encoder,
        Some(boot),
        start,
        LmOptions {
            weights: if config.secure {
                WeightEncoding::PerForward
            } else {
                WeightEncoding::Once
            },
            batch,
            ..LmOptions::default()
        },
        &calibration,
    )?;
    let prepare_seconds = t.elapsed().as_secs_f64();
    for step in lm.plan() {
        eprintln!("  plan: {step}");
    }
    let galois = lm.galois_keys_needed();
    eprintln!(
        "he-agreement-lm: prepared in {prepare_seconds:.1} s: batch {batch}, {} bootstraps planned, {} Galois keys",
        lm.bootstraps_planned(),
        galois.len()
    );
    // How close held-out text brings each bootstrap's input to its bound (plaintext).
    let held_out: Vec<Vec<u32>> = windows(&task.test, task.seq_len, usize::MAX)
        .into_iter()
        .map(|w| w.0)
        .collect();
    let headroom = lm.bootstrap_headroom(model, &held_out)?;
    let (worst_point, worst) =
        headroom.iter().fold(
            ("", 0.0f64),
            |a, (p, r)| if *r > a.1 { (p.as_str(), *r) } else { a },
        );
    let nonfinite = headroom.iter().filter(|(_, r)| r.is_nan()).count();
    let headroom_note = format!(
        "bootstrap inputs over all {} test windows: largest |value| / K = {worst:.3} (at {worst_point}; \
         the calibration windows stay under 1 / margin, the circuit's bound is about 1){}",
        held_out.len(),
        if nonfinite > 0 {
            format!("; the reference is not finite at {nonfinite} bootstrap inputs on some window")
        } else {
            String::new()
        }
    );
    eprintln!("he-agreement-lm: {headroom_note}");
    for (point, r) in &headroom {
        eprintln!("  bootstrap input {point}: {r:.3}");
    }
    // The prediction, before anything runs: counts by level times costs measured here.
    let counts = lm.predicted_op_counts();
    let c = counts.total();
    let t = Instant::now();
    let knots = crate::costs::knots_for(lm.start_level(), params.max_level());
    let costs = CostModel::calibrate(&params, &knots, config.cost_reps)?;
    eprintln!("he-agreement-lm: operation costs:\n{}", costs.describe());
    let predicted_seconds = costs.predict(counts);
    eprintln!(
        "he-agreement-lm: predicted forward: {} key switches ({} decompositions), {} ciphertext products, {} plaintext products, {} rescales; {predicted_seconds:.1} s without weight encoding (costs measured at {knots:?} in {:.1} s)",
        c.key_switches,
        c.decompositions,
        c.ct_mults,
        c.pt_mults,
        c.rescales,
        t.elapsed().as_secs_f64()
    );

    // Client: keys at the levels they are used.
    let mut rng = ChaCha20Rng::from_os_rng();
    let t = Instant::now();
    let kg = KeyGenerator::new(&params);
    let sk = kg.gen_secret_key(&mut rng)?;
    let pk = kg.gen_public_key(&sk, &mut rng)?;
    let mut keys = EvaluationKeys {
        relin: Some(kg.gen_relin_key(&sk, &mut rng)?),
        ..Default::default()
    };
    for &(g, level) in &galois {
        keys.galois
            .insert(g, kg.gen_galois_key_at_level(&sk, g, level, &mut rng)?);
    }
    let keygen_seconds = t.elapsed().as_secs_f64();
    let gib = |b: usize| b as f64 / (1u64 << 30) as f64;
    let key_gib = gib(keys.memory_bytes());
    let full_level_key_gib =
        gib((galois.len() + 1) * params.dnum() * 2 * (params.q().len() + params.p().len()) * params.n() * 8);
    eprintln!(
        "he-agreement-lm: keys in {keygen_seconds:.1} s: {key_gib:.2} GiB ({full_level_key_gib:.2} GiB all at the top level)"
    );
    let eval = Evaluator::new(&params, Arc::new(keys));
    let encryptor = CkksEncryptor(Encryptor::Public(pk));

    let test = windows(&task.test, task.seq_len, config.windows);
    if test.len() < config.windows {
        bail!(
            "the test split has {} windows, {} asked",
            test.len(),
            config.windows
        );
    }
    let mut rows = Vec::new();
    for (bi, chunk) in test.chunks(batch).enumerate() {
        let inputs: Vec<Vec<u32>> = chunk.iter().map(|w| w.0.clone()).collect();
        let t = Instant::now();
        let ct = lm.encrypt_windows(&encoder, &encryptor, &inputs, &mut rng)?;
        let encrypt_seconds = t.elapsed().as_secs_f64();
        let input_bytes: u64 = ct.tiles.iter().map(|c| c.to_bytes(&params).len() as u64).sum();
        let traced = bi < config.trace_batches;
        let mut taps: BTreeMap<String, (Vec<Vec<f64>>, f64)> = BTreeMap::new();
        let mut order = Vec::new();
        let t = Instant::now();
        eval.reset_op_counts();
        let out = lm.forward_traced(&eval, &ct, |name, m, factor| {
            if traced {
                let decoded: Option<Vec<_>> = m
                    .tiles
                    .iter()
                    .map(|c| decrypt_ckks(&sk, c).ok().and_then(|p| encoder.decode(&p).ok()))
                    .collect();
                if let Some(rows) = decoded.and_then(|d| m.layout.unpack(&d).ok()) {
                    order.push(name.to_string());
                    taps.insert(name.to_string(), (rows, factor));
                }
            }
        })?;
        let forward = t.elapsed().as_secs_f64();
        let performed = eval.op_counts();
        if performed != c {
            bail!("the forward performed {performed:?}, the planner predicted {c:?}");
        }
        if out.bootstraps != lm.bootstraps_planned() {
            bail!(
                "the forward bootstrapped {} times, the plan said {}",
                out.bootstraps,
                lm.bootstraps_planned()
            );
        }
        let output_bytes: u64 = out
            .logits
            .iter()
            .flat_map(|m| &m.tiles)
            .map(|c| c.to_bytes(&params).len() as u64)
            .sum();
        let t = Instant::now();
        let got = lm.decrypt_logits(&encoder, &sk, &out.logits)?;
        let decrypt_seconds = t.elapsed().as_secs_f64();
        let p = out.profile;
        eprintln!(
            "he-agreement-lm: batch {bi}: {} key switches as predicted; {:.1} s without encoding, {predicted_seconds:.1} s predicted",
            performed.key_switches,
            forward - out.profile.encode
        );
        eprint!(
            "{}",
            crate::costs::breakdown(&costs, lm.predicted_op_counts_by_kind(), &out.profile)
        );
        eprintln!(
            "he-agreement-lm: batch {bi} ({} windows): forward {forward:.1} s (bootstrap {:.1}, norm {:.1}, act {:.1}, attention {:.1}, pt matmul {:.1}, encode {:.1}), peak {:.1} GiB",
            chunk.len(),
            p.bootstrap,
            p.normalization,
            p.activations,
            p.cipher_matmul,
            p.plain_matmul,
            p.encode,
            peak_rss_gib().unwrap_or(f64::NAN)
        );
        for (w, ((ids, next), enc)) in chunk.iter().zip(&got).enumerate() {
            let window = bi * batch + w;
            let reference = model.forward_tokens(ids)?;
            let (mut max_err, mut sum_err, mut count, mut max_logit) = (0.0f64, 0.0f64, 0usize, 0.0f64);
            let (mut agree, mut ref_ok, mut enc_ok) = (0, 0, 0);
            for ((r, e), &label) in reference.iter().zip(enc).zip(next) {
                for (a, b) in r.iter().zip(e) {
                    let d = (a - b).abs();
                    max_err = max_err.max(d);
                    sum_err += d;
                    count += 1;
                    max_logit = max_logit.max(a.abs());
                }
                let (ra, ea) = (argmax(r), argmax(e));
                agree += usize::from(ra == ea);
                ref_ok += usize::from(ra == label as usize);
                enc_ok += usize::from(ea == label as usize);
            }
            let layer_precision_bits = if traced {
                let trace = model.trace_tokens(ids)?;
                trace
                    .iter()
                    .filter_map(|(name, want)| {
                        let (got, factor) = taps.get(name)?;
                        let (mut err, mut scale) = (0.0f64, 1.0f64);
                        for (t, row) in want.iter().enumerate() {
                            let g = got.get(t * batch + w)?;
                            for (a, v) in g.iter().zip(row) {
                                err = err.max((a * factor - v).abs());
                                scale = scale.max(v.abs());
                            }
                        }
                        Some(format!("{name} {:.1}", -(err / scale).log2()))
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            } else {
                String::new()
            };
            rows.push(Row {
                security: security.into(),
                batch: bi,
                batch_windows: chunk.len(),
                window,
                positions: reference.len(),
                agreeing_positions: agree,
                reference_correct: ref_ok,
                encrypted_correct: enc_ok,
                max_abs_logit: max_logit,
                max_abs_error: max_err,
                mean_abs_error: sum_err / count.max(1) as f64,
                precision_bits: -(max_err / max_logit.max(1.0)).log2(),
                layer_precision_bits,
                batch_forward_seconds: forward,
                amortized_seconds: forward / chunk.len() as f64,
                encode_seconds: p.encode,
                plain_matmul_seconds: p.plain_matmul,
                cipher_matmul_seconds: p.cipher_matmul,
                activation_seconds: p.activations,
                normalization_seconds: p.normalization,
                bootstrap_seconds: p.bootstrap,
                other_seconds: p.other,
                bootstraps: out.bootstraps,
                start_level: lm.start_level(),
                output_level: lm.output_level(),
                encrypt_seconds,
                decrypt_seconds,
                input_bytes,
                output_bytes,
                key_gib,
                galois_keys: galois.len(),
                full_level_key_gib,
                keygen_seconds,
                prepare_seconds,
                threads,
                peak_rss_gib: peak_rss_gib(),
                key_switches: Some(performed.key_switches),
                predicted_seconds: Some(predicted_seconds),
            });
            let r = rows.last().context("row")?;
            eprintln!(
                "  window {window}: {}/{} positions agree, max |error| {:.2e}, {:.1} bits",
                r.agreeing_positions, r.positions, r.max_abs_error, r.precision_bits
            );
        }
        drop(order);
    }
    let notes = vec![
        format!("model: {}", task.what),
        "client and server in one process (the evaluation keys only on the server side); the client embeds the tokens".into(),
        format!(
            "bootstrapping: {} per forward, planned; Galois keys at the levels they are used",
            lm.bootstraps_planned()
        ),
        headroom_note,
    ];
    Ok((rows, notes))
}

/// Markdown table of the CSV.
pub fn summary(csv: &std::path::Path) -> Result<String> {
    let rows: Vec<Row> = crate::csv_out::read_csv(csv)?;
    let Some(r0) = rows.first() else {
        return Ok("(no rows)\n".into());
    };
    let positions: usize = rows.iter().map(|r| r.positions).sum();
    let agree: usize = rows.iter().map(|r| r.agreeing_positions).sum();
    let enc_ok: usize = rows.iter().map(|r| r.encrypted_correct).sum();
    let ref_ok: usize = rows.iter().map(|r| r.reference_correct).sum();
    let max_err = rows.iter().map(|r| r.max_abs_error).fold(0.0, f64::max);
    let mean_err = rows.iter().map(|r| r.mean_abs_error).sum::<f64>() / rows.len() as f64;
    let min_bits = rows
        .iter()
        .map(|r| r.precision_bits)
        .fold(f64::INFINITY, f64::min);
    let mut batches: Vec<(usize, f64, usize)> = rows
        .iter()
        .map(|r| (r.batch, r.batch_forward_seconds, r.batch_windows))
        .collect();
    batches.dedup_by_key(|b| b.0);
    let forward: f64 = batches.iter().map(|b| b.1).sum();
    let pct = |a: usize| 100.0 * a as f64 / positions.max(1) as f64;
    let mut out = String::from(
        "| windows | positions | security | top-1 agreement | max abs logit error | mean abs logit error | min precision (bits) | encrypted next-token accuracy | reference accuracy | bootstraps | s per batch | s per window |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    out.push_str(&format!(
        "| {} | {positions} | {} | {:.2} % ({agree}/{positions}) | {max_err:.2e} | {mean_err:.2e} | {min_bits:.1} | {:.2} % | {:.2} % | {} | {:.0} | {:.0} |\n",
        rows.len(),
        r0.security,
        pct(agree),
        pct(enc_ok),
        pct(ref_ok),
        r0.bootstraps,
        forward / batches.len() as f64,
        forward / rows.len() as f64,
    ));
    if let Some(predicted) = r0.predicted_seconds {
        let mut per_batch: Vec<(usize, f64)> = rows
            .iter()
            .map(|r| (r.batch, r.batch_forward_seconds - r.encode_seconds))
            .collect();
        per_batch.dedup_by_key(|b| b.0);
        let measured = per_batch.iter().map(|b| b.1).sum::<f64>() / per_batch.len().max(1) as f64;
        out.push_str(&format!(
            "\nPlanner: {} key switches per forward, as predicted; predicted {predicted:.1} s per batch \
             without weight encoding, measured {measured:.1} s ({:+.0} %).\n",
            r0.key_switches.unwrap_or(0),
            100.0 * (predicted / measured - 1.0)
        ));
    }
    if !r0.layer_precision_bits.is_empty() {
        out.push_str(&format!(
            "\nPrecision per layer (bits, window 0): {}\n",
            r0.layer_precision_bits
        ));
    }
    Ok(out)
}
