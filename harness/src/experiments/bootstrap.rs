//! Bootstrapping: precision, levels left, time on one thread and on all threads, key memory.
//!
//! The `tiny` preset is a toy ring (N = 2^10, **insecure**); the `cpu` preset is the 128-bit
//! N = 2^16 preset (`Parameters::n16_boot`), which needs about 12 GB of memory and a few minutes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use ckks::circuits::bootstrap::{BootstrapConfig, Bootstrapper};
use ckks::params::{Parameters, ParametersLiteral, SecretDistribution, SecurityLevel};
use ckks::rlwe::{Encryptor, KeyGenerator};
use ckks::scheme::evaluator::{decrypt_ckks, CkksEncoder, CkksEncryptor, EvaluationKeys, Evaluator};
use ckks::scheme::precision::precision_stats;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use rustfft::num_complex::Complex64;
use serde::{Deserialize, Serialize};

use super::Preset;

/// File name of the CSV.
pub const CSV: &str = "bootstrap.csv";

/// What a run does.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    /// `toy` (N = 2^10) or `n16` (the secure preset).
    pub parameters: String,
    /// Bootstrappings timed per thread count (the precision is the worst over them).
    pub repetitions: usize,
    /// Seed of the message and of the keys.
    pub seed: u64,
}

impl Config {
    /// The settings of a preset.
    pub fn preset(preset: Preset, seed: u64) -> Self {
        match preset {
            Preset::Tiny => Self {
                parameters: "toy".into(),
                repetitions: 2,
                seed,
            },
            Preset::Cpu => Self {
                parameters: "n16".into(),
                repetitions: 1,
                seed,
            },
        }
    }
}

/// One row per thread count.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row {
    /// `toy` or `n16`.
    pub parameters: String,
    /// log2 N.
    pub log_n: u32,
    /// Slots bootstrapped.
    pub slots: usize,
    /// log2 QP.
    pub log_qp: f64,
    /// `128-bit (standard table)` or `insecure (toy)`.
    pub security: String,
    /// Threads of the run.
    pub threads: usize,
    /// Median seconds per bootstrapping.
    pub seconds: f64,
    /// Worst-slot precision in bits.
    pub min_bits: f64,
    /// Mean precision in bits.
    pub mean_bits: f64,
    /// Level of the output (levels left for computation).
    pub levels_left: usize,
    /// Levels consumed by bootstrapping.
    pub depth: usize,
    /// Galois keys generated.
    pub galois_keys: usize,
    /// Evaluation key memory, GiB.
    pub key_gib: f64,
    /// Key generation time, seconds.
    pub keygen_seconds: f64,
    /// Circuit preparation (DFT diagonals encoded), seconds.
    pub prepare_seconds: f64,
}

fn toy_parameters() -> Result<(Arc<Parameters>, BootstrapConfig)> {
    // The configuration of the ckks toy chain; the chain here keeps a 55-bit q_0.
    let config = BootstrapConfig::toy();
    let params = Parameters::new(ParametersLiteral {
        log_n: 10,
        log_q: std::iter::once(55)
            .chain(std::iter::repeat_n(45, 2))
            .chain(std::iter::repeat_n(60, 12))
            .collect(),
        log_p: vec![60, 60, 60],
        log_default_scale: 45,
        secret: SecretDistribution::SparseTernary { hamming_weight: 32 },
        security: SecurityLevel::InsecureForTests,
        dnum: None,
    })?;
    Ok((params, config))
}

/// Runs the experiment.
pub fn run(config: &Config) -> Result<(Vec<Row>, Vec<String>)> {
    let (params, boot_config) = match config.parameters.as_str() {
        "toy" => toy_parameters()?,
        "n16" => (Parameters::n16_boot()?, BootstrapConfig::n16_default()),
        other => anyhow::bail!("unknown parameters '{other}'"),
    };
    let security = match params.literal().security {
        SecurityLevel::Classical128 => "128-bit (standard table; sparse secret h = 192)",
        SecurityLevel::InsecureForTests => "insecure (toy)",
    };
    let enc = CkksEncoder::new(&params)?;
    let t = Instant::now();
    let boot = Bootstrapper::new(&params, &enc, boot_config)?;
    let prepare_seconds = t.elapsed().as_secs_f64();
    let mut rng = ChaCha20Rng::seed_from_u64(config.seed);
    let kg = KeyGenerator::new(&params);
    let sk = kg.gen_secret_key(&mut rng)?;
    let pk = kg.gen_public_key(&sk, &mut rng)?;
    let t = Instant::now();
    let mut keys = EvaluationKeys {
        relin: Some(kg.gen_relin_key(&sk, &mut rng)?),
        ..Default::default()
    };
    for g in boot.galois_elements() {
        keys.galois.insert(g, kg.gen_galois_key(&sk, g, &mut rng)?);
    }
    let keygen_seconds = t.elapsed().as_secs_f64();
    let galois_keys = keys.galois.len();
    let key_gib = keys.memory_bytes() as f64 / (1u64 << 30) as f64;
    let eval = Evaluator::new(&params, Arc::new(keys));
    let encryptor = CkksEncryptor(Encryptor::Public(pk));
    let slots = params.max_slots();
    let mut rows = Vec::new();
    let all = rayon::current_num_threads();
    let mut thread_counts = vec![all];
    if all > 1 {
        thread_counts.push(1);
    }
    for threads in thread_counts {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .context("thread pool")?;
        let mut times = Vec::new();
        let (mut min_bits, mut mean_bits) = (f64::INFINITY, 0.0);
        let mut levels_left = 0;
        for _ in 0..config.repetitions.max(1) {
            let v: Vec<Complex64> = (0..slots)
                .map(|_| Complex64::new(rng.random_range(-1.0..1.0), rng.random_range(-1.0..1.0)))
                .collect();
            let ct = encryptor.encrypt(&enc.encode(&v, 0, params.default_scale())?, &mut rng)?;
            let t = Instant::now();
            let out = pool.install(|| boot.bootstrap(&eval, &ct))?;
            times.push(t.elapsed().as_secs_f64());
            let stats = precision_stats(&v, &enc.decode(&decrypt_ckks(&sk, &out)?)?)?;
            min_bits = f64::min(min_bits, stats.min_bits);
            mean_bits += stats.mean_bits / config.repetitions.max(1) as f64;
            levels_left = out.level();
        }
        times.sort_by(f64::total_cmp);
        rows.push(Row {
            parameters: config.parameters.clone(),
            log_n: params.n().trailing_zeros(),
            slots,
            log_qp: params.log_qp(),
            security: security.into(),
            threads,
            seconds: times[times.len() / 2],
            min_bits,
            mean_bits,
            levels_left,
            depth: boot.depth(),
            galois_keys,
            key_gib,
            keygen_seconds,
            prepare_seconds,
        });
    }
    let notes = vec![format!(
        "inputs: uniform complex values in [-1, 1] in every slot, encrypted with the public key at level 0; config {:?}",
        boot.config()
    )];
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
        "| parameters | N | slots | log QP | security | threads | seconds | bits (worst / mean) | levels left | Galois keys | key GiB |\n|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        out.push_str(&format!(
            "| {} | 2^{} | {} | {:.0} | {} | {} | {:.2} | {:.1} / {:.1} | {} | {} | {:.2} |\n",
            r.parameters,
            r.log_n,
            r.slots,
            r.log_qp,
            r.security,
            r.threads,
            r.seconds,
            r.min_bits,
            r.mean_bits,
            r.levels_left,
            r.galois_keys,
            r.key_gib
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiny_preset_bootstraps_within_its_precision() {
        let (rows, notes) = run(&Config::preset(Preset::Tiny, 1)).unwrap();
        assert!(!rows.is_empty() && !notes.is_empty());
        for r in &rows {
            assert_eq!(r.levels_left, 2);
            assert!(r.min_bits > 19.0, "{r:?}");
            assert!(r.galois_keys > 0 && r.key_gib > 0.0);
        }
        let dir = std::env::temp_dir().join(format!("harness-bootstrap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let csv = dir.join(CSV);
        crate::csv_out::write_csv(
            &csv,
            &crate::provenance::Provenance::collect(1, "tiny", "{}"),
            &notes,
            &rows,
        )
        .unwrap();
        assert!(summary(&csv).unwrap().contains("| toy | 2^10 |"));
        std::fs::remove_dir_all(&dir).ok();
    }
}
