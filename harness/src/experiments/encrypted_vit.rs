//! Encrypted inference of the BatchNorm poly-ViT ([`EncryptedVit`]) against the f64 reference with the
//! same polynomials: per image, the class, the logit error, the precision and the time, with the
//! parameters, levels and key memory.
//!
//! - `tiny`: the tiny ViT (`ModelConfig::vit_tiny`, one block) trained on synthetic images on the fly,
//!   **insecure** toy parameters (N = 2^10, `Parameters::toy`), two images; seconds.
//! - `cpu`: the polynomial checkpoint of `train-vit --preset cpu` (`runs/train_vit/cpu-seed<seed>/
//!   polynomial/`, two blocks, degree-31 GELU fits: 38 levels) on the first Fashion-MNIST test images,
//!   at N = 2^16 with exactly the levels the circuit needs plus q_0 for decryption, checked 128-bit
//!   secure by the HE-standard table ([`ckks::params::security::max_log_qp_128`]). The chain is chosen
//!   for the smallest evaluation keys within the bound ([`secure_literal`]); the weights of the linear
//!   layers are encoded when they run ([`WeightEncoding::PerForward`]), since all of them pre-encoded
//!   at N = 2^16 would take about 23 GiB.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use ckks::params::security::max_log_qp_128;
use ckks::params::{Parameters, ParametersLiteral, SecretDistribution, SecurityLevel};
use ckks::ring::poly::galois_element_for_rotation;
use ckks::rlwe::{Encryptor, KeyGenerator};
use ckks::scheme::evaluator::{CkksEncoder, CkksEncryptor, EvaluationKeys, Evaluator};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use serde::{Deserialize, Serialize};
use transformer::data::{ImageSet, ImageSplit};
use transformer::encrypted::{EncryptedVit, WeightEncoding};
use transformer::model::{Checkpoint, CpuTrain, DataPrep, TaskData};
use transformer::pipeline::{load_data, run_pipeline, PipelineConfig};
use transformer::reference::ReferenceModel;

use super::Preset;

/// File name of the CSV.
pub const CSV: &str = "encrypted_vit.csv";

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
}

impl Config {
    /// The settings of a preset.
    pub fn preset(preset: Preset, seed: u64) -> Self {
        match preset {
            Preset::Tiny => Self {
                checkpoint: None,
                images: 2,
                log_n: 10,
                log_scale: 40,
                secure: false,
                max_key_gib: 1.0,
                encode_per_forward: true,
                seed,
            },
            Preset::Cpu => Self {
                checkpoint: Some(
                    super::runs_root(Preset::Cpu)
                        .join("train_vit")
                        .join(format!("cpu-seed{seed}"))
                        .join("polynomial"),
                ),
                images: 4,
                log_n: 16,
                // The 38 levels leave little of the bound to P: with 40-bit primes P is 3 x 46 bits,
                // dnum = 13, 546 MiB per key and 37 GiB for the 69 Galois keys; with 35-bit primes P is
                // 7 x 53 bits, dnum = 4, 184 MiB per key and 12.6 GiB (33 bits: dnum = 3, 9.6 GiB).
                log_scale: 35,
                secure: true,
                max_key_gib: 14.0,
                encode_per_forward: true,
                seed,
            },
        }
    }
}

/// One row per image.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row {
    /// `128-bit (standard table)` or `INSECURE toy`.
    pub security: String,
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
    /// `-log2(max_abs_error / max(1, max_abs_logit))`.
    pub precision_bits: f64,
    /// Encrypted forward, seconds.
    pub forward_seconds: f64,
    /// Rayon threads of the process.
    pub threads: usize,
    /// Client encryption of the image, seconds.
    pub encrypt_seconds: f64,
    /// Client decryption and decoding, seconds.
    pub decrypt_seconds: f64,
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
    /// Galois and relinearization key memory, GiB.
    pub key_gib: f64,
    /// Key generation (secret, public, relinearization and Galois keys), seconds.
    pub keygen_seconds: f64,
    /// `EncryptedVit` preparation (every layer encoded once, masks kept), seconds.
    pub prepare_seconds: f64,
    /// Peak resident memory of the process so far (Linux `VmHWM`), GiB.
    pub peak_rss_gib: Option<f64>,
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
fn switching_key_bytes(params: &Parameters) -> usize {
    params.dnum() * 2 * (params.q().len() + params.p().len()) * params.n() * 8
}

/// Peak resident set of this process (Linux), GiB.
fn peak_rss_gib() -> Option<f64> {
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

fn argmax(v: &[f64]) -> usize {
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
    mean: f32,
    std: f32,
    what: String,
}

/// The tiny ViT trained on synthetic images (stages 1 and 3 of the pipeline, in a temporary directory).
fn tiny_task(seed: u64) -> Result<Task> {
    let mut pc = PipelineConfig::vit_tiny();
    pc.original = false;
    pc.train.seed = seed;
    let (data, prep) = load_data(&mut pc).map_err(|e| anyhow!(e))?;
    let dir = super::runs_root(Preset::Tiny).join(format!("encrypted_vit-seed{seed}"));
    run_pipeline::<CpuTrain>(&pc, &data, &prep, &dir, &Default::default())?;
    let model = ReferenceModel::from_checkpoint(&dir.join("polynomial"))?;
    let _ = std::fs::remove_dir_all(&dir);
    let TaskData::Images { test, mean, std, .. } = data else {
        bail!("the tiny pipeline gave no images");
    };
    Ok(Task {
        model,
        test,
        mean,
        std,
        what: "tiny ViT trained on synthetic 8x8 images".into(),
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
    let DataPrep::Images { dataset, mean, std } = &meta.data else {
        bail!("{} is not an image model", dir.display());
    };
    let test = match dataset.as_str() {
        "FashionMnist" => transformer::data::fashion_mnist(ImageSplit::Test)?,
        "Mnist" => transformer::data::mnist(ImageSplit::Test)?,
        other => bail!("checkpoint data set {other}: only FashionMnist and Mnist are loaded here"),
    };
    Ok(Task {
        model: ReferenceModel::from_checkpoint(dir)?,
        test,
        mean: *mean,
        std: *std,
        what: format!("{dataset} checkpoint {}", dir.display()),
    })
}

/// Runs the experiment.
pub fn run(config: &Config) -> Result<(Vec<Row>, Vec<String>)> {
    let task = match &config.checkpoint {
        None => tiny_task(config.seed)?,
        Some(dir) => checkpoint_task(dir)?,
    };
    let model = &task.model;
    let levels = EncryptedVit::levels_required(model)?;
    let (params, security) = if config.secure {
        let lit = secure_literal(config.log_n, levels, config.log_scale)?;
        let params = Parameters::new(lit).context("128-bit parameters")?;
        (params, "128-bit (standard table, uniform ternary secret)")
    } else {
        if config.log_scale != 40 {
            bail!("the toy parameters use 40-bit primes and scale 2^40");
        }
        (Parameters::toy(config.log_n, levels)?, "INSECURE toy")
    };
    let bound = max_log_qp_128(config.log_n);
    eprintln!(
        "encrypted-vit: {}; {levels} levels; N = 2^{}, log QP = {:.1} (128-bit bound {}), dnum = {}, {}",
        task.what,
        config.log_n,
        params.log_qp(),
        bound.map_or("none".into(), |b| b.to_string()),
        params.dnum(),
        security
    );
    let encoder = CkksEncoder::new(&params)?;
    let weights = if config.encode_per_forward {
        WeightEncoding::PerForward
    } else {
        WeightEncoding::Once
    };
    let t = Instant::now();
    let vit = EncryptedVit::with_weight_encoding(model, &params, &encoder, params.max_level(), weights)?;
    let prepare_seconds = t.elapsed().as_secs_f64();
    let rotations = vit.rotations_needed();
    let key_bytes = (rotations.len() + 1) * switching_key_bytes(&params);
    let gib = |b: usize| b as f64 / (1u64 << 30) as f64;
    eprintln!(
        "encrypted-vit: prepared in {prepare_seconds:.1} s; {} Galois keys + relinearization: {:.2} GiB",
        rotations.len(),
        gib(key_bytes)
    );
    if gib(key_bytes) > config.max_key_gib {
        bail!(
            "the {} Galois keys and the relinearization key would take {:.2} GiB (dnum = {}, {} limbs of \
             2^{} coefficients per key polynomial), over the {} GiB allowed",
            rotations.len(),
            gib(key_bytes),
            params.dnum(),
            params.q().len() + params.p().len(),
            config.log_n,
            config.max_key_gib
        );
    }

    let mut rng = ChaCha20Rng::seed_from_u64(config.seed);
    let t = Instant::now();
    let kg = KeyGenerator::new(&params);
    let sk = kg.gen_secret_key(&mut rng)?;
    let pk = kg.gen_public_key(&sk, &mut rng)?;
    let mut keys = EvaluationKeys {
        relin: Some(kg.gen_relin_key(&sk, &mut rng)?),
        ..Default::default()
    };
    for (i, &k) in rotations.iter().enumerate() {
        let g = galois_element_for_rotation(k, params.n());
        keys.galois.insert(g, kg.gen_galois_key(&sk, g, &mut rng)?);
        if (i + 1) % 16 == 0 {
            eprintln!("encrypted-vit: {} / {} Galois keys", i + 1, rotations.len());
        }
    }
    let keygen_seconds = t.elapsed().as_secs_f64();
    let galois_keys = keys.galois.len();
    let key_gib = gib(keys.memory_bytes());
    eprintln!("encrypted-vit: keys in {keygen_seconds:.1} s, {key_gib:.2} GiB");
    let eval = Evaluator::new(&params, Arc::new(keys));
    let encryptor = CkksEncryptor(Encryptor::Public(pk));
    let mut exact = model.clone();
    exact.polys = None;

    let count = config.images.min(task.test.len());
    let mut rows = Vec::with_capacity(count);
    for i in 0..count {
        let (Some(px), Some(label)) = (task.test.image(i), task.test.label(i)) else {
            bail!("test image {i} missing");
        };
        let image: Vec<f64> = px
            .iter()
            .map(|&v| f64::from((v - task.mean) / task.std))
            .collect();
        let expected = model.forward_image(&image)?;
        let t = Instant::now();
        let input = vit.encrypt_image(&encoder, &encryptor, &image, &mut rng)?;
        let encrypt_seconds = t.elapsed().as_secs_f64();
        eprintln!("encrypted-vit: image {i} (label {label}) encrypted; forward ...");
        let t = Instant::now();
        let out = vit.forward(&eval, &input)?;
        let forward_seconds = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let got = vit.decrypt_logits(&encoder, &sk, &out)?;
        let decrypt_seconds = t.elapsed().as_secs_f64();
        let level = |m: &ckks::circuits::matmul::EncryptedMatrix| m.tiles.first().map_or(0, |c| c.level());
        let levels_used = level(&input) - level(&out);
        let max_abs_error = got
            .iter()
            .zip(&expected)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        let max_abs_logit = expected.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let precision_bits = -(max_abs_error / max_abs_logit.max(1.0)).log2();
        let (encrypted_argmax, reference_argmax) = (argmax(&got), argmax(&expected));
        let row = Row {
            security: security.into(),
            image: i,
            label,
            encrypted_argmax,
            reference_argmax,
            exact_argmax: argmax(&exact.forward_image(&image)?),
            argmax_agrees: encrypted_argmax == reference_argmax,
            reference_correct: reference_argmax == label,
            encrypted_correct: encrypted_argmax == label,
            max_abs_logit,
            max_abs_error,
            precision_bits,
            forward_seconds,
            threads: rayon::current_num_threads(),
            encrypt_seconds,
            decrypt_seconds,
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
        };
        eprintln!(
            "encrypted-vit: image {i}: forward {forward_seconds:.1} s, class {encrypted_argmax} (reference \
             {reference_argmax}, label {label}), max error {max_abs_error:.2e} ({precision_bits:.1} bits), \
             peak RSS {:.2} GiB",
            row.peak_rss_gib.unwrap_or(f64::NAN)
        );
        rows.push(row);
    }
    let bits = |v: &[u64]| {
        v.iter()
            .map(|&x| format!("{:.2}", (x as f64).log2()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let notes = vec![
        format!("model: {}; {levels} levels; weights {weights:?}", task.what),
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
    ];
    Ok((rows, notes))
}

/// No figures: the table is the result.
pub fn plot(_csv: &Path, _out: &Path, _provenance: &[String]) -> Result<Vec<PathBuf>> {
    Ok(Vec::new())
}

/// Markdown table of the CSV.
pub fn summary(csv: &Path) -> Result<String> {
    let rows: Vec<Row> = crate::csv_out::read_csv(csv)?;
    let mut out = String::from(
        "| image | label | encrypted | reference | exact | max error | bits | forward s | threads | N | levels | log QP | security | Galois keys | key GiB | peak RSS GiB |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {:.2e} | {:.1} | {:.1} | {} | 2^{} | {} | {:.0} | {} | {} | {:.2} | {} |\n",
            r.image,
            r.label,
            r.encrypted_argmax,
            r.reference_argmax,
            r.exact_argmax,
            r.max_abs_error,
            r.precision_bits,
            r.forward_seconds,
            r.threads,
            r.log_n,
            r.levels,
            r.log_qp,
            r.security,
            r.galois_keys,
            r.key_gib,
            r.peak_rss_gib.map_or("-".into(), |g| format!("{g:.2}")),
        ));
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
        assert_eq!(rows.len(), 2);
        assert!(!notes.is_empty());
        for r in &rows {
            assert!(r.argmax_agrees, "{r:?}");
            assert!(r.precision_bits > 20.0, "{r:?}");
            assert!(r.levels > 0 && r.galois_keys > 0 && r.key_gib > 0.0, "{r:?}");
            assert_eq!((r.log_n, r.security.as_str()), (10, "INSECURE toy"));
        }
        let dir = crate::test_dir("encrypted_vit_tiny");
        let csv = dir.join(CSV);
        crate::csv_out::write_csv(
            &csv,
            &crate::provenance::Provenance::collect(1, "tiny", "{}"),
            &notes,
            &rows,
        )
        .unwrap();
        let back: Vec<Row> = crate::csv_out::read_csv(&csv).unwrap();
        assert_eq!(back.len(), 2);
        assert!(summary(&csv).unwrap().contains("| 2^10 |"));
        std::fs::remove_dir_all(&dir).ok();
    }
}
