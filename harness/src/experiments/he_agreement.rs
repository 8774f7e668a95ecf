//! Encrypted inference of the BatchNorm poly-ViT through the client/server split of
//! [`transformer::deploy`], against the f64 reference with the same polynomials: per image, the class,
//! the logit errors and the precision; per batch, the time and the bytes each way; the parameters,
//! levels and key sizes.
//!
//! Every artefact goes through a file in the session directory, as between two machines:
//! `to_client/` (parameters, interface, outputs), `to_server/` (evaluation keys one file each, inputs),
//! `client/` (the secret key, owner-only). The server side holds no secret key ([`Server`]).
//!
//! - `tiny`: the tiny ViT (`ModelConfig::vit_tiny`, one block) trained on synthetic images on the fly,
//!   **insecure** toy parameters (N = 2^10, `Parameters::toy`), 8 images in batches of 4; seconds.
//! - `cpu`: the polynomial checkpoint of `train-vit --preset cpu` (`runs/train_vit/cpu-seed<seed>/
//!   polynomial/`, two blocks, degree-31 GELU fits: 38 levels) on the first 112 Fashion-MNIST test images
//!   in 7 batches of 16 (a 16-token image of stride 128 takes 2,048 of the 32,768 slots), at N = 2^16
//!   with exactly the levels the circuit needs plus q_0 for decryption, checked 128-bit secure by the
//!   HE-standard table ([`ckks::params::security::max_log_qp_128`]). The chain is chosen for the
//!   smallest evaluation keys within the bound ([`secure_literal`]); the weights of the linear layers
//!   are encoded when they run ([`WeightEncoding::PerForward`]), since all of them pre-encoded at
//!   N = 2^16 would take about 23 GiB.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use ckks::params::security::max_log_qp_128;
use ckks::params::{Parameters, ParametersLiteral, SecretDistribution, SecurityLevel};
use ckks::serialize::{parameters_from_bytes, parameters_to_bytes};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use serde::{Deserialize, Serialize};
use transformer::data::{ImageSet, ImageSplit};
use transformer::deploy::{
    read_file, read_server_artefact, write_file, Client, EncryptedTensor, Server, ServerKeys, ServerSetup,
    VitInterface,
};
use transformer::encrypted::{EncryptedVit, VitOptions, WeightEncoding};
use transformer::model::{Checkpoint, CpuTrain, DataPrep, TaskData};
use transformer::pipeline::{load_data, run_pipeline, PipelineConfig};
use transformer::reference::ReferenceModel;

use super::Preset;

/// File name of the CSV.
pub const CSV: &str = "he_agreement.csv";

/// Bits of q_0 above the scale: the decrypted logits must stay below q_0 / 2, i.e. |logit| < 2^6.
const Q0_HEADROOM_BITS: u32 = 7;
/// Largest special prime, in bits.
const MAX_P_BITS: u32 = 60;
/// Margin, in bits, between `log QP` and the security bound, and between P and a digit beyond the
/// library's own 2^10: the primes are near, not at, their nominal sizes.
const MARGIN_BITS: u32 = 1;
/// What [`Parameters::new`] requires between P and every key-switching digit.
const DIGIT_MARGIN_BITS: u32 = 10;

/// What a run does.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    /// The polynomial checkpoint directory; `None` trains the tiny ViT on synthetic data first.
    pub checkpoint: Option<PathBuf>,
    /// Test images encrypted (the first ones).
    pub images: usize,
    /// Images per ciphertext (`None`: as many as fit).
    pub batch: Option<usize>,
    /// log2 of the ring degree.
    pub log_n: u32,
    /// log2 of the default scale, also the size of the scaling primes.
    pub log_scale: u32,
    /// 128-bit parameters by the standard table (else the insecure toy set `Parameters::toy`).
    pub secure: bool,
    /// Refuse to generate evaluation keys above this many GiB.
    pub max_key_gib: f64,
    /// Encode the linear layers when they run instead of once (bounded memory).
    pub encode_per_forward: bool,
    /// Seed of the keys and encryptions (and of the checkpoint: `cpu-seed<seed>`).
    pub seed: u64,
    /// Session directory for the files between client and server (the evaluation keys and inputs
    /// are deleted at the end).
    pub session: PathBuf,
    /// Batches run in debug mode (the first ones): the server also returns every layer's output and
    /// the client reports the precision per layer against the f64 reference.
    pub trace_batches: usize,
}

impl Config {
    /// The settings of a preset.
    pub fn preset(preset: Preset, seed: u64) -> Self {
        let session = super::runs_root(preset)
            .join("he_agreement")
            .join(format!("{}-seed{seed}", preset.name()));
        match preset {
            Preset::Tiny => Self {
                checkpoint: None,
                images: 8,
                batch: Some(4),
                log_n: 10,
                log_scale: 40,
                secure: false,
                max_key_gib: 1.0,
                encode_per_forward: true,
                seed,
                session,
                trace_batches: 1,
            },
            Preset::Cpu => Self {
                checkpoint: Some(
                    super::runs_root(Preset::Cpu)
                        .join("train_vit")
                        .join(format!("cpu-seed{seed}"))
                        .join("polynomial"),
                ),
                images: 112,
                batch: None,
                log_n: 16,
                // The 38 levels leave little of the bound to P: with 40-bit primes P is 3 x 46 bits,
                // dnum = 13, 546 MiB per key and 37 GiB for the 69 Galois keys; with 35-bit primes P is
                // 7 x 53 bits, dnum = 4, 184 MiB per key and 12.6 GiB (33 bits: dnum = 3, 9.6 GiB).
                log_scale: 35,
                secure: true,
                max_key_gib: 14.0,
                encode_per_forward: true,
                seed,
                session,
                trace_batches: 1,
            },
        }
    }
}

/// One row per image.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row {
    /// `128-bit (standard table)` or `INSECURE toy`.
    pub security: String,
    /// Index of the batch (ciphertext) the image travelled in.
    pub batch: usize,
    /// Images in that ciphertext.
    pub batch_images: usize,
    /// Index in the test set.
    pub image: usize,
    /// True class.
    pub label: usize,
    /// Class of the decrypted logits.
    pub encrypted_argmax: usize,
    /// Class of the f64 reference (same weights, same polynomials; no framework).
    pub reference_argmax: usize,
    /// Class of the f64 reference with the exact GELU instead of the polynomials.
    pub exact_argmax: usize,
    /// The encrypted and the reference class agree.
    pub argmax_agrees: bool,
    /// The reference (plaintext, framework-free) class is the label.
    pub reference_correct: bool,
    /// The encrypted class is the label.
    pub encrypted_correct: bool,
    /// Largest |reference logit|.
    pub max_abs_logit: f64,
    /// Largest |decrypted - reference| over the logits.
    pub max_abs_error: f64,
    /// Mean |decrypted - reference| over the logits.
    pub mean_abs_error: f64,
    /// `-log2(max_abs_error / max(1, max_abs_logit))`.
    pub precision_bits: f64,
    /// Server: the encrypted forward of the whole batch, seconds.
    pub batch_forward_seconds: f64,
    /// `batch_forward_seconds / batch_images`.
    pub amortized_seconds: f64,
    /// Rayon threads of the process.
    pub threads: usize,
    /// Client: patches, encoding and encryption of the batch, seconds.
    pub encrypt_seconds: f64,
    /// Client: decryption and decoding of the batch, seconds.
    pub decrypt_seconds: f64,
    /// Bytes of the encrypted input file (client to server, per batch).
    pub input_bytes: u64,
    /// Bytes of the encrypted output file (server to client, per batch).
    pub output_bytes: u64,
    /// Bytes of the evaluation-key files (client to server, once).
    pub key_bytes: u64,
    /// Levels the forward consumed.
    pub levels: usize,
    /// log2 N.
    pub log_n: u32,
    /// log2 of the scale (and of the scaling primes).
    pub log_scale: u32,
    /// log2 QP.
    pub log_qp: f64,
    /// Key-switching digits.
    pub dnum: usize,
    /// Galois keys generated (exactly the rotations the forward uses).
    pub galois_keys: usize,
    /// Galois and relinearization key memory on the server, GiB.
    pub key_gib: f64,
    /// Client: key generation and writing (secret, public, relinearization and Galois keys), seconds.
    pub keygen_seconds: f64,
    /// Server: preparation of the model for the parameters, seconds.
    pub prepare_seconds: f64,
    /// Peak resident memory of the process so far (Linux `VmHWM`), GiB.
    pub peak_rss_gib: Option<f64>,
    /// Debug-mode batches only: `layer bits; ...`, the precision of the token matrix after each layer
    /// against the f64 reference (`-log2(max error / max(1, max |value|))`).
    #[serde(default)]
    pub layer_precision_bits: String,
    /// Of the batch's forward, seconds: encoding the weights of the linear layers.
    #[serde(default)]
    pub encode_seconds: f64,
    /// Plaintext-weight products (embedding, Q K V, projection, MLP, head).
    #[serde(default)]
    pub plain_matmul_seconds: f64,
    /// Ciphertext-ciphertext attention products.
    #[serde(default)]
    pub cipher_matmul_seconds: f64,
    /// Polynomial activations (sigma with its mask, GELU).
    #[serde(default)]
    pub activation_seconds: f64,
    /// Residuals and pooling.
    #[serde(default)]
    pub other_seconds: f64,
    /// Key switches of the batch's forward (counted; equal to the planner's prediction, or the run
    /// stops).
    #[serde(default)]
    pub key_switches: usize,
    /// Ciphertext-ciphertext products of the forward (counted = predicted).
    #[serde(default)]
    pub ct_mults: usize,
    /// Ciphertext-plaintext products of the forward (counted = predicted).
    #[serde(default)]
    pub pt_mults: usize,
}

/// The 128-bit literal for `levels` levels at scale `2^log_scale` at ring degree `2^log_n`: q_0 of
/// `log_scale + 7` bits, `levels` primes of `log_scale` bits and the special primes that give the
/// smallest evaluation keys (`dnum x (levels + 1 + #P)` limbs per key polynomial) within the
/// standard's bound on `log QP`.
///
/// # Errors
/// When no P fits the bound (too many levels for this N at this scale) or N is not tabulated.
pub fn secure_literal(log_n: u32, levels: usize, log_scale: u32) -> Result<ParametersLiteral> {
    let max = max_log_qp_128(log_n).with_context(|| format!("no 128-bit bound for N = 2^{log_n}"))?;
    let q0 = log_scale + Q0_HEADROOM_BITS;
    let q_bits = q0 as usize + levels * log_scale as usize;
    let budget = (max as usize).saturating_sub(q_bits + MARGIN_BITS as usize);
    let primes = levels + 1;
    // (key limbs, #P, P bits each, digit size)
    let mut best: Option<(usize, usize, u32, usize)> = None;
    for alpha in 1..=primes {
        let digit = (q0 as usize + (alpha - 1) * log_scale as usize).max(alpha * log_scale as usize);
        let need = digit + (DIGIT_MARGIN_BITS + MARGIN_BITS) as usize;
        let k = need.div_ceil(MAX_P_BITS as usize);
        let each = need.div_ceil(k);
        if k * each > budget {
            continue;
        }
        let limbs = primes.div_ceil(alpha) * (primes + k);
        if best.is_none_or(|b| limbs < b.0) {
            best = Some((limbs, k, each as u32, alpha));
        }
    }
    let (_, k, each, _) = best.ok_or_else(|| {
        anyhow!(
            "{levels} levels of {log_scale} bits plus q_0 of {q0} bits take {q_bits} bits of the {max} \
             that 128-bit security allows at N = 2^{log_n}: no room for the key-switching primes"
        )
    })?;
    Ok(ParametersLiteral {
        log_n,
        log_q: std::iter::once(q0)
            .chain(std::iter::repeat_n(log_scale, levels))
            .collect(),
        log_p: vec![each; k],
        log_default_scale: log_scale,
        secret: SecretDistribution::UniformTernary,
        security: SecurityLevel::Classical128,
        dnum: None,
    })
}

/// Bytes of one switching key under `params`: `dnum` digits of two polynomials over `Q_L P`.
pub fn switching_key_bytes(params: &Parameters) -> usize {
    params.dnum() * 2 * (params.q().len() + params.p().len()) * params.n() * 8
}

/// Peak resident set of this process (Linux), GiB.
pub(crate) fn peak_rss_gib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib / (1u64 << 20) as f64)
}

/// Index of the largest value (the last of equals, as `Iterator::max_by`; 0 for an empty slice).
pub fn argmax(v: &[f64]) -> usize {
    v.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, _)| i)
        .unwrap_or(0)
}

/// The model, the test images and the normalisation.
struct Task {
    model: ReferenceModel,
    test: ImageSet,
    prep: DataPrep,
    what: String,
}

/// Trains the tiny ViT on synthetic images (stages 1 and 3 of the pipeline) into `dir`; returns its
/// polynomial checkpoint directory.
pub fn tiny_checkpoint(dir: &Path, seed: u64) -> Result<PathBuf> {
    let mut pc = PipelineConfig::vit_tiny();
    pc.original = false;
    pc.train.seed = seed;
    let (data, prep) = load_data(&mut pc).map_err(|e| anyhow!(e))?;
    run_pipeline::<CpuTrain>(&pc, &data, &prep, dir, &Default::default())?;
    Ok(dir.join("polynomial"))
}

/// The test images of the data set `prep` names, for a model of `image = [channels, side, patch]` and
/// `classes` classes: Fashion-MNIST and MNIST from their registry packages, or the synthetic images
/// of the tiny presets (regenerated from their fixed seed).
pub fn test_images(prep: &DataPrep, image: [usize; 3], classes: usize) -> Result<ImageSet> {
    let DataPrep::Images { dataset, .. } = prep else {
        bail!("not an image model");
    };
    Ok(match dataset.as_str() {
        "FashionMnist" => transformer::data::fashion_mnist(ImageSplit::Test)?,
        "Mnist" => transformer::data::mnist(ImageSplit::Test)?,
        "synthetic" => {
            let mut cfg = transformer::model::ModelConfig::vit_tiny();
            cfg.task = transformer::model::TaskConfig::Vision {
                image_size: image[1],
                channels: image[0],
                patch: image[2],
                num_classes: classes,
                class_token: false,
            };
            match transformer::pipeline::synthetic(&cfg).0 {
                TaskData::Images { test, .. } => test,
                TaskData::Tokens { .. } => bail!("synthetic data of an image model gave tokens"),
            }
        }
        other => bail!("data set {other}: only FashionMnist, Mnist and synthetic images are loaded here"),
    })
}

/// Test image `i`, normalised as the model was trained.
pub fn normalised_image(test: &ImageSet, prep: &DataPrep, i: usize) -> Result<(Vec<f64>, usize)> {
    let DataPrep::Images { mean, std, .. } = prep else {
        bail!("not an image model");
    };
    let (Some(px), Some(label)) = (test.image(i), test.label(i)) else {
        bail!("test image {i} missing (the test set has {})", test.len());
    };
    Ok((px.iter().map(|&v| f64::from((v - mean) / std)).collect(), label))
}

/// The tiny ViT trained on synthetic images (in a temporary directory).
fn tiny_task(seed: u64) -> Result<Task> {
    let dir = super::runs_root(Preset::Tiny).join(format!("he_agreement-model-seed{seed}"));
    let ckpt = tiny_checkpoint(&dir, seed)?;
    let task = checkpoint_task(&ckpt);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(Task {
        what: "tiny ViT trained on synthetic 8x8 images".into(),
        ..task?
    })
}

/// A polynomial checkpoint and its data set's test images.
fn checkpoint_task(dir: &Path) -> Result<Task> {
    if !dir.join("checkpoint.json").is_file() {
        bail!(
            "no polynomial checkpoint at {}: train it first with \
             `cargo run --release -p harness -- run train-vit --preset cpu`",
            dir.display()
        );
    }
    let meta = Checkpoint::meta(dir)?;
    let model = ReferenceModel::from_checkpoint(dir)?;
    let transformer::model::TaskConfig::Vision {
        image_size,
        channels,
        patch,
        num_classes,
        ..
    } = model.config.task
    else {
        bail!("{} is not an image model", dir.display());
    };
    let test = test_images(&meta.data, [channels, image_size, patch], num_classes)?;
    Ok(Task {
        model,
        test,
        what: format!(
            "{} checkpoint {}",
            match &meta.data {
                DataPrep::Images { dataset, .. } | DataPrep::Words { dataset, .. } => dataset.as_str(),
            },
            dir.display()
        ),
        prep: meta.data,
    })
}

/// The parameters for `levels` levels: 128-bit ([`secure_literal`]) or the insecure toy set.
pub fn parameters_for(
    levels: usize,
    log_n: u32,
    log_scale: u32,
    secure: bool,
) -> Result<(Arc<Parameters>, &'static str)> {
    if secure {
        let lit = secure_literal(log_n, levels, log_scale)?;
        let params = Parameters::new(lit).context("128-bit parameters")?;
        Ok((params, "128-bit (standard table, uniform ternary secret)"))
    } else {
        if log_scale != 40 {
            bail!("the toy parameters use 40-bit primes and scale 2^40");
        }
        Ok((Parameters::toy(log_n, levels)?, "INSECURE toy"))
    }
}

/// Writes `bytes` to `path` readable by its owner only (the client's secret key).
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(bytes)?;
    Ok(())
}

/// `name bits; ...` for image `b` of a batch of `batch`: the decrypted layer outputs against the
/// reference's (token rows interleaved `t * batch + b`; the logits have row `b`).
fn layer_bits(
    reference: &[transformer::reference::LayerValues],
    decrypted: &[transformer::reference::LayerValues],
    b: usize,
    batch: usize,
) -> Result<String> {
    let mut parts = Vec::new();
    for ((name, want), (got_name, got)) in reference.iter().zip(decrypted) {
        if name != got_name {
            bail!("trace point {got_name}, expected {name}");
        }
        let (mut err, mut scale) = (0.0f64, 1.0f64);
        for (t, row) in want.iter().enumerate() {
            let r = if name == "logits" { b } else { t * batch + b };
            let g = got.get(r).ok_or_else(|| anyhow!("{name}: no row {r}"))?;
            for (a, w) in g.iter().zip(row) {
                err = err.max((a - w).abs());
                scale = scale.max(w.abs());
            }
        }
        parts.push(format!("{name} {:.1}", -(err / scale).log2()));
    }
    Ok(parts.join("; "))
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// Runs the experiment.
pub fn run(config: &Config) -> Result<(Vec<Row>, Vec<String>)> {
    let task = match &config.checkpoint {
        None => tiny_task(config.seed)?,
        Some(dir) => checkpoint_task(dir)?,
    };
    let model = &task.model;
    let levels = EncryptedVit::levels_required(model)?;
    let (params, security) = parameters_for(levels, config.log_n, config.log_scale, config.secure)?;
    let bound = max_log_qp_128(config.log_n);
    eprintln!(
        "he-agreement: {}; {levels} levels; N = 2^{}, log QP = {:.1} (128-bit bound {}), dnum = {}, {}",
        task.what,
        config.log_n,
        params.log_qp(),
        bound.map_or("none".into(), |b| b.to_string()),
        params.dnum(),
        security
    );
    let weights = if config.encode_per_forward {
        WeightEncoding::PerForward
    } else {
        WeightEncoding::Once
    };
    let batch = match config.batch {
        Some(b) => b,
        None => EncryptedVit::max_batch(model, &params)?,
    };
    let session = &config.session;
    let _ = std::fs::remove_dir_all(session);
    let (to_client, to_server, private) = (
        session.join("to_client"),
        session.join("to_server"),
        session.join("client"),
    );

    // Server: prepares the model and publishes the parameters and the interface.
    let t = Instant::now();
    let setup = ServerSetup::new(
        model,
        &params,
        VitOptions { weights, batch },
        Some(task.prep.clone()),
    )?;
    let prepare_seconds = t.elapsed().as_secs_f64();
    write_file(&to_client.join("params.bin"), &parameters_to_bytes(&params))?;
    setup.interface().write(&to_client.join("interface.json"))?;
    let rotations = setup.interface().rotations.clone();
    let gib = |b: usize| b as f64 / (1u64 << 30) as f64;
    let planned = gib((rotations.len() + 1) * switching_key_bytes(&params));
    eprintln!(
        "he-agreement: prepared in {prepare_seconds:.1} s; batch {batch}; {} Galois keys + relinearization: {planned:.2} GiB",
        rotations.len(),
    );
    if planned > config.max_key_gib {
        bail!(
            "the {} Galois keys and the relinearization key would take {planned:.2} GiB (dnum = {}, {} limbs of \
             2^{} coefficients per key polynomial), over the {} GiB allowed",
            rotations.len(),
            params.dnum(),
            params.q().len() + params.p().len(),
            config.log_n,
            config.max_key_gib
        );
    }

    // Client: reads what the server published, makes its keys.
    let cparams = parameters_from_bytes(&read_file(&to_client.join("params.bin"))?)?;
    let interface = VitInterface::read(&to_client.join("interface.json"), &cparams)?;
    let mut rng = ChaCha20Rng::seed_from_u64(config.seed);
    let t = Instant::now();
    let client = Client::new(&cparams, interface, &mut rng)?;
    write_private(&private.join("secret_key.bin"), &client.secret_key_bytes())?;
    let stats = client.write_evaluation_keys(&to_server.join("keys"), &mut rng)?;
    let keygen_seconds = t.elapsed().as_secs_f64();
    eprintln!(
        "he-agreement: client keys in {keygen_seconds:.1} s: {} files, {:.2} GiB to the server",
        stats.files,
        stats.bytes as f64 / (1u64 << 30) as f64
    );

    // Server: loads the keys.
    let keys = ServerKeys::read(&to_server.join("keys"), &params)?;
    let key_gib = gib(keys.memory_bytes());
    let galois_keys = rotations.len();
    let server = Server::new(setup, keys)?;
    let mut exact = model.clone();
    exact.polys = None;

    let count = config.images.min(task.test.len());
    let mut rows = Vec::with_capacity(count);
    for (bi, first) in (0..count).step_by(batch).enumerate() {
        let idx: Vec<usize> = (first..(first + batch).min(count)).collect();
        let mut images = Vec::with_capacity(idx.len());
        let mut labels = Vec::with_capacity(idx.len());
        for &i in &idx {
            let (im, l) = normalised_image(&task.test, &task.prep, i)?;
            images.push(im);
            labels.push(l);
        }
        // Client: encrypts the batch.
        let t = Instant::now();
        let input = client.encrypt_images(&images, &mut rng)?;
        let encrypt_seconds = t.elapsed().as_secs_f64();
        let input_path = to_server.join(format!("input_{bi}.bin"));
        write_file(&input_path, &input.to_bytes(&cparams))?;
        // Server: evaluates.
        let input: EncryptedTensor = read_server_artefact(&input_path, &params)?;
        eprintln!(
            "he-agreement: batch {bi} ({} images) encrypted; forward ...",
            idx.len()
        );
        let traced = bi < config.trace_batches;
        let t = Instant::now();
        server.reset_op_counts();
        let report = server.serve_report(&input, traced)?;
        let counted = server.op_counts();
        if counted != server.predicted_op_counts() {
            bail!(
                "the forward performed {counted:?}, the plan predicted {:?}",
                server.predicted_op_counts()
            );
        }
        let batch_forward_seconds = t.elapsed().as_secs_f64();
        let (output, trace, profile) = (report.output, report.trace, report.profile);
        let output_path = to_client.join(format!("output_{bi}.bin"));
        write_file(&output_path, &output.to_bytes(&params))?;
        let level = |m: &EncryptedTensor| m.matrix.tiles.first().map_or(0, |c| c.level());
        let levels_used = level(&input) - level(&output);
        // Client: decrypts.
        let output = EncryptedTensor::from_bytes(&read_file(&output_path)?, &cparams)?;
        let t = Instant::now();
        let logits = client.decrypt(&output)?;
        let decrypt_seconds = t.elapsed().as_secs_f64();
        let layers = client.decrypt_trace(&trace)?;
        drop(trace);
        let (input_bytes, output_bytes) = (file_len(&input_path), file_len(&output_path));
        let _ = std::fs::remove_file(&input_path);
        for (k, (&i, image)) in idx.iter().zip(&images).enumerate() {
            let expected = model.forward_image(image)?;
            let got = logits
                .get(k)
                .ok_or_else(|| anyhow!("no logits for image {k} of the batch"))?;
            let errors: Vec<f64> = got.iter().zip(&expected).map(|(a, b)| (a - b).abs()).collect();
            let max_abs_error = errors.iter().copied().fold(0.0, f64::max);
            let mean_abs_error = errors.iter().sum::<f64>() / errors.len().max(1) as f64;
            let max_abs_logit = expected.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            let precision_bits = -(max_abs_error / max_abs_logit.max(1.0)).log2();
            let (encrypted_argmax, reference_argmax) = (argmax(got), argmax(&expected));
            let label = labels[k];
            let layer_precision_bits = if traced {
                layer_bits(&model.trace_image(image)?, &layers, k, idx.len())?
            } else {
                String::new()
            };
            rows.push(Row {
                security: security.into(),
                batch: bi,
                batch_images: idx.len(),
                image: i,
                label,
                encrypted_argmax,
                reference_argmax,
                exact_argmax: argmax(&exact.forward_image(image)?),
                argmax_agrees: encrypted_argmax == reference_argmax,
                reference_correct: reference_argmax == label,
                encrypted_correct: encrypted_argmax == label,
                max_abs_logit,
                max_abs_error,
                mean_abs_error,
                precision_bits,
                batch_forward_seconds,
                amortized_seconds: batch_forward_seconds / idx.len() as f64,
                threads: rayon::current_num_threads(),
                encrypt_seconds,
                decrypt_seconds,
                input_bytes,
                output_bytes,
                key_bytes: stats.bytes,
                levels: levels_used,
                log_n: config.log_n,
                log_scale: config.log_scale,
                log_qp: params.log_qp(),
                dnum: params.dnum(),
                galois_keys,
                key_gib,
                keygen_seconds,
                prepare_seconds,
                peak_rss_gib: peak_rss_gib(),
                layer_precision_bits,
                encode_seconds: profile.encode,
                plain_matmul_seconds: profile.plain_matmul,
                cipher_matmul_seconds: profile.cipher_matmul,
                activation_seconds: profile.activations,
                other_seconds: profile.other,
                key_switches: counted.key_switches,
                ct_mults: counted.ct_mults,
                pt_mults: counted.pt_mults,
            });
        }
        let done = &rows[rows.len() - idx.len()..];
        eprintln!(
            "he-agreement: batch {bi}: forward {batch_forward_seconds:.1} s ({:.1} s per image), {} / {} classes \
             agree, max error {:.2e}, peak RSS {:.2} GiB",
            batch_forward_seconds / idx.len() as f64,
            done.iter().filter(|r| r.argmax_agrees).count(),
            idx.len(),
            done.iter().map(|r| r.max_abs_error).fold(0.0, f64::max),
            peak_rss_gib().unwrap_or(f64::NAN)
        );
    }
    // The keys and inputs are large (gigabytes at N = 2^16) and reproducible: drop them.
    let _ = std::fs::remove_dir_all(&to_server);
    let bits = |v: &[u64]| {
        v.iter()
            .map(|&x| format!("{:.2}", (x as f64).log2()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let notes =
        vec![
        format!("model: {}; {levels} levels; weights {weights:?}; batch {batch}", task.what),
        format!(
            "parameters: {security}; N = 2^{}, scale 2^{}, log QP = {:.2} (128-bit bound for this N: {}), \
             dnum = {} ({} primes per digit), uniform ternary secret",
            config.log_n,
            config.log_scale,
            params.log_qp(),
            bound.map_or("none".into(), |b| b.to_string()),
            params.dnum(),
            params.digit_primes()
        ),
        format!("Q primes (bits): {}", bits(params.q())),
        format!("P primes (bits): {}", bits(params.p())),
        format!("rotations: {rotations:?}"),
        "reference: transformer::reference::ReferenceModel (f64, BatchNorm folded, same polynomials, \
         no framework); exact_argmax: the same with the exact GELU"
            .into(),
        "client/server: every artefact through a file (transformer::deploy); the server holds no secret key"
            .into(),
    ];
    Ok((rows, notes))
}

/// No figures: the table is the result.
pub fn plot(_csv: &Path, _out: &Path, _provenance: &[String]) -> Result<Vec<PathBuf>> {
    Ok(Vec::new())
}

/// Markdown table of the CSV: agreement, errors, accuracy, time and sizes over all images.
pub fn summary(csv: &Path) -> Result<String> {
    let rows: Vec<Row> = crate::csv_out::read_csv(csv)?;
    let Some(r0) = rows.first() else {
        return Ok("(no rows)\n".into());
    };
    let n = rows.len() as f64;
    let pct = |f: &dyn Fn(&Row) -> bool| 100.0 * rows.iter().filter(|r| f(r)).count() as f64 / n;
    let max = |f: &dyn Fn(&Row) -> f64| rows.iter().map(f).fold(f64::NEG_INFINITY, f64::max);
    let min = |f: &dyn Fn(&Row) -> f64| rows.iter().map(f).fold(f64::INFINITY, f64::min);
    let mean = |f: &dyn Fn(&Row) -> f64| rows.iter().map(f).sum::<f64>() / n;
    // One forward per batch.
    let mut batches: Vec<(usize, f64, usize, u64, u64)> = rows
        .iter()
        .map(|r| {
            (
                r.batch,
                r.batch_forward_seconds,
                r.batch_images,
                r.input_bytes,
                r.output_bytes,
            )
        })
        .collect();
    batches.dedup_by_key(|b| b.0);
    let forward: f64 = batches.iter().map(|b| b.1).sum();
    let full: Vec<_> = batches.iter().filter(|b| b.2 == r0.batch_images).collect();
    let mib = |b: u64| b as f64 / (1u64 << 20) as f64;
    let mut out = String::from(
        "| images | security | N | levels | batch | top-1 agreement | max abs logit error | mean abs logit error | min precision (bits) | encrypted accuracy | reference accuracy | exact-GELU accuracy |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    out.push_str(&format!(
        "| {} | {} | 2^{} | {} | {} | {:.1} % | {:.2e} | {:.2e} | {:.1} | {:.1} % | {:.1} % | {:.1} % |\n\n",
        rows.len(),
        r0.security,
        r0.log_n,
        r0.levels,
        r0.batch_images,
        pct(&|r| r.argmax_agrees),
        max(&|r| r.max_abs_error),
        mean(&|r| r.mean_abs_error),
        min(&|r| r.precision_bits),
        pct(&|r| r.encrypted_correct),
        pct(&|r| r.reference_correct),
        pct(&|r| r.exact_argmax == r.label),
    ));
    out.push_str(
        "| forward per batch (s) | amortized per image (s) | threads | encrypt per batch (s) | decrypt per batch (s) | keygen (s) | prepare (s) | Galois keys | keys sent (GiB) | input per batch (MiB) | output per batch (MiB) | peak RSS (GiB) |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    out.push_str(&format!(
        "| {:.1} | {:.1} | {} | {:.2} | {:.3} | {:.1} | {:.1} | {} | {:.2} | {:.1} | {:.2} | {} |\n",
        full.iter().map(|b| b.1).sum::<f64>() / full.len().max(1) as f64,
        forward / n,
        r0.threads,
        mean(&|r| r.encrypt_seconds),
        mean(&|r| r.decrypt_seconds),
        r0.keygen_seconds,
        r0.prepare_seconds,
        r0.galois_keys,
        r0.key_bytes as f64 / (1u64 << 30) as f64,
        mib(r0.input_bytes),
        mib(r0.output_bytes),
        rows.iter()
            .filter_map(|r| r.peak_rss_gib)
            .reduce(f64::max)
            .map_or_else(|| "-".into(), |g| format!("{g:.2}")),
    ));
    // Where a batch's forward went (mean over the batches).
    let per_batch = |f: &dyn Fn(&Row) -> f64| {
        let mut seen = Vec::new();
        let mut sum = 0.0;
        for r in &rows {
            if !seen.contains(&r.batch) {
                seen.push(r.batch);
                sum += f(r);
            }
        }
        sum / seen.len().max(1) as f64
    };
    let total = per_batch(&|r| r.batch_forward_seconds);
    if per_batch(&|r| r.plain_matmul_seconds) > 0.0 {
        out.push_str(
            "\n| forward per batch (s) | plaintext-weight matmul | ciphertext matmul (attention) | activations | weight encoding | residuals, pooling | normalisation | bootstrapping |\n\
             |---|---|---|---|---|---|---|---|\n",
        );
        let cell = |v: f64| format!("{v:.1} ({:.0} %)", 100.0 * v / total.max(1e-12));
        out.push_str(&format!(
            "| {total:.1} | {} | {} | {} | {} | {} | 0 (folded into the linear maps) | 0 (none needed) |\n",
            cell(per_batch(&|r| r.plain_matmul_seconds)),
            cell(per_batch(&|r| r.cipher_matmul_seconds)),
            cell(per_batch(&|r| r.activation_seconds)),
            cell(per_batch(&|r| r.encode_seconds)),
            cell(per_batch(&|r| r.other_seconds)),
        ));
    }
    // Per-layer precision over the debug-mode images: the worst image per layer.
    let mut layers: Vec<(String, f64, usize)> = Vec::new();
    for r in rows.iter().filter(|r| !r.layer_precision_bits.is_empty()) {
        for part in r.layer_precision_bits.split("; ") {
            let Some((name, bits)) = part.rsplit_once(' ') else {
                continue;
            };
            let bits: f64 = bits.parse().unwrap_or(f64::NAN);
            match layers.iter_mut().find(|l| l.0 == name) {
                Some(l) => {
                    l.1 = l.1.min(bits);
                    l.2 += 1;
                }
                None => layers.push((name.to_string(), bits, 1)),
            }
        }
    }
    if !layers.is_empty() {
        out.push_str("\n| layer | min precision (bits) | images |\n|---|---|---|\n");
        for (name, bits, n) in layers {
            out.push_str(&format!("| {name} | {bits:.1} | {n} |\n"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secure_chain_fits_the_bound_with_small_keys() {
        // The cpu preset's circuit: 38 levels of 35 bits at N = 2^16.
        let lit = secure_literal(16, 38, 35).unwrap();
        assert_eq!(lit.log_q.len(), 39);
        let nominal: u32 = lit.log_q.iter().chain(&lit.log_p).sum();
        assert!(nominal < 1747, "{lit:?}");
        assert_eq!(lit.log_p.len(), 7, "{lit:?}");
        // 40-bit primes leave room for three special primes only.
        assert_eq!(secure_literal(16, 38, 40).unwrap().log_p.len(), 3);
        // Too deep for the bound.
        assert!(secure_literal(16, 50, 40).is_err());
        assert!(secure_literal(9, 2, 40).is_err());
    }

    #[test]
    fn tiny_preset_decrypts_to_the_reference() {
        let (rows, notes) = run(&Config::preset(Preset::Tiny, 1)).unwrap();
        // 8 images in two batches of 4.
        assert_eq!(rows.len(), 8);
        assert_eq!(rows.iter().map(|r| r.batch).max(), Some(1));
        assert!(!notes.is_empty());
        for r in &rows {
            assert!(r.argmax_agrees, "{r:?}");
            assert!(r.precision_bits > 20.0, "{r:?}");
            assert!(r.mean_abs_error <= r.max_abs_error, "{r:?}");
            assert!(r.levels > 0 && r.galois_keys > 0 && r.key_gib > 0.0, "{r:?}");
            assert!(
                r.input_bytes > r.output_bytes && r.key_bytes > r.input_bytes,
                "{r:?}"
            );
            assert_eq!(
                (r.log_n, r.security.as_str(), r.batch_images),
                (10, "INSECURE toy", 4)
            );
        }
        let dir = crate::test_dir("he_agreement_tiny");
        let csv = dir.join(CSV);
        crate::csv_out::write_csv(
            &csv,
            &crate::provenance::Provenance::collect(1, "tiny", "{}"),
            &notes,
            &rows,
        )
        .unwrap();
        let back: Vec<Row> = crate::csv_out::read_csv(&csv).unwrap();
        assert_eq!(back.len(), 8);
        let table = summary(&csv).unwrap();
        assert!(table.contains("| 8 | INSECURE toy | 2^10 |"), "{table}");
        assert!(table.contains("| 100.0 % |"), "{table}");
        // The first batch (4 images) in debug mode: every layer's precision.
        assert!(table.contains("| blocks.0.mlp |"), "{table}");
        assert!(table.contains("| plaintext-weight matmul |"), "{table}");
        for r in &rows {
            let parts = r.encode_seconds
                + r.plain_matmul_seconds
                + r.cipher_matmul_seconds
                + r.activation_seconds
                + r.other_seconds;
            assert!(parts > 0.0 && parts <= r.batch_forward_seconds * 1.001, "{r:?}");
            assert!(r.key_switches > 0 && r.ct_mults > 0 && r.pt_mults > 0, "{r:?}");
        }
        for r in &rows {
            assert_eq!(r.layer_precision_bits.is_empty(), r.batch > 0, "{r:?}");
            for part in r.layer_precision_bits.split("; ").filter(|p| !p.is_empty()) {
                let bits: f64 = part.rsplit_once(' ').unwrap().1.parse().unwrap();
                assert!(bits > 20.0, "{part}");
            }
        }
        std::fs::remove_dir_all(&dir).ok();
    }
}
