//! Encrypted `X` (`rows x d`) times a plaintext weight `W` (`d x d'`) with the BSGS diagonal method
//! ([`PlainWeightMatMul`]) at N = 2^16, 128-bit: time, key switches against the plain diagonal
//! method, levels, key memory and precision. The OpenFHE anchor of the same product is
//! `scripts/anchors/bench_openfhe_matmul.py`; `scripts/anchors/matmul_table.sh` runs both.
//!
//! Parameters: a leveled chain like the one a transformer layer works on after bootstrapping,
//! q_0 of 50 bits and `--levels` (default 10) scaling primes of 45 bits (scale 2^45, every prime
//! below 2^50 so the IFMA NTT applies), `--dnum` (default 3) key-switching digits and as many
//! 50-bit special primes as the largest digit needs. `X` is encrypted at the top level; the product
//! consumes one level. At N = 2^16 the set is checked against the 128-bit bound; `--toy` (N = 2^12)
//! and `--logn 12|13` use the same chain **insecurely** (correctness checks only).
//!
//! Run: `RAYON_NUM_THREADS=1 cargo run --release -p ckks --example matmul_n16 -- --rows 16 --d 64 --dout 64`
//! (options: `--logn 16`, `--toy`, `--levels 10`, `--dnum 3`, `--reps 3`, `--seed 1`).
//! Prints one line per figure and a final `RESULT_JSON {...}` line in the format of the anchor scripts.

use ckks::circuits::matmul::{EncryptedMatrix, PlainWeightMatMul, RowMajor};
use ckks::params::{Parameters, ParametersLiteral, SecretDistribution, SecurityLevel};
use ckks::ring::poly::galois_element_for_rotation;
use ckks::rlwe::{Encryptor, KeyGenerator};
use ckks::scheme::evaluator::{decrypt_ckks, CkksEncoder, CkksEncryptor, EvaluationKeys, Evaluator};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use std::sync::Arc;
use std::time::Instant;

// The operations allocate tens of MB per call: glibc returns such blocks to the OS and every call
// page-faults them back in (30 % of a key switch); mimalloc keeps them (docs/PERF.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

type Res<T> = std::result::Result<T, Box<dyn std::error::Error>>;

struct Args {
    rows: usize,
    d: usize,
    dout: usize,
    logn: u32,
    levels: usize,
    dnum: usize,
    reps: usize,
    seed: u64,
}

fn parse_args() -> Res<Args> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let get = |name: &str| -> Option<&str> {
        argv.iter()
            .position(|a| a == name)
            .and_then(|i| argv.get(i + 1))
            .map(|s| s.as_str())
    };
    let num = |name: &str, default: usize| -> Res<usize> {
        match get(name) {
            Some(v) => Ok(v.parse().map_err(|e| format!("{name} {v}: {e}"))?),
            None => Ok(default),
        }
    };
    let toy = argv.iter().any(|a| a == "--toy");
    for a in &argv {
        if a.starts_with("--")
            && ![
                "--rows", "--d", "--dout", "--logn", "--levels", "--dnum", "--reps", "--seed", "--toy",
            ]
            .contains(&a.as_str())
        {
            return Err(format!("unknown option {a}").into());
        }
    }
    let logn = num("--logn", if toy { 12 } else { 16 })? as u32;
    let d = num("--d", 64)?;
    Ok(Args {
        rows: num("--rows", 16)?,
        d,
        dout: num("--dout", d)?,
        logn,
        levels: num("--levels", 10)?,
        dnum: num("--dnum", 3)?,
        reps: num("--reps", if logn >= 16 { 3 } else { 5 })?.max(1),
        seed: num("--seed", 1)? as u64,
    })
}

/// q_0 of 50 bits, `levels` primes of 45 bits, `dnum` digits, and the fewest 50-bit special primes
/// that exceed the largest digit (the one holding q_0) by 2^10 (with a bit of slack: the primes
/// lie just below 2^50 and near 2^45).
fn literal(a: &Args) -> ParametersLiteral {
    let primes = a.levels + 1;
    let alpha = primes.div_ceil(a.dnum.max(1));
    let largest_digit_bits = 50 + 45 * (alpha as u32 - 1);
    let specials = (largest_digit_bits + 11).div_ceil(50) as usize;
    ParametersLiteral {
        log_n: a.logn,
        log_q: std::iter::once(50)
            .chain(std::iter::repeat_n(45, a.levels))
            .collect(),
        log_p: vec![50; specials],
        log_default_scale: 45,
        secret: SecretDistribution::UniformTernary,
        security: if a.logn >= 16 {
            SecurityLevel::Classical128
        } else {
            SecurityLevel::InsecureForTests
        },
        dnum: Some(a.dnum),
    }
}

fn random(rows: usize, cols: usize, scale: f64, rng: &mut ChaCha20Rng) -> Vec<Vec<f64>> {
    (0..rows)
        .map(|_| (0..cols).map(|_| rng.random_range(-scale..scale)).collect())
        .collect()
}

fn matmul(x: &[Vec<f64>], w: &[Vec<f64>], d_out: usize) -> Vec<Vec<f64>> {
    x.iter()
        .map(|row| {
            (0..d_out)
                .map(|k| row.iter().zip(w).map(|(a, wr)| a * wr[k]).sum())
                .collect()
        })
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

/// CPU seconds (user + system, all threads) of this process so far, from /proc/self/stat (10 ms
/// ticks): with the machine shared, wall time / CPU time shows how much of a core the run had.
fn cpu_seconds() -> f64 {
    let Ok(s) = std::fs::read_to_string("/proc/self/stat") else {
        return f64::NAN;
    };
    // Fields after the command name (which may hold spaces) start at field 3; utime and stime are
    // fields 14 and 15.
    let rest = s.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|x| x.parse().ok())
        .collect();
    if f.len() == 2 {
        (f[0] + f[1]) / 100.0
    } else {
        f64::NAN
    }
}

/// Peak resident memory of this process (VmHWM), MiB.
fn peak_rss_mib() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn json_num(x: f64) -> String {
    if x.is_finite() {
        format!("{x}")
    } else {
        "null".into()
    }
}

fn json_str(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The figures, printed as they come (`Report` of the anchor scripts) and dumped as one JSON line.
#[derive(Default)]
struct Report {
    meta: Vec<(String, String)>,
    times: Vec<(String, String)>,
    precision: Vec<(String, String)>,
    info: Vec<(String, String)>,
}

impl Report {
    fn t(&mut self, name: &str, seconds: f64) {
        println!("  {name:38} {:12.2} ms", seconds * 1e3);
        self.times
            .push((name.into(), json_num((seconds * 1e6).round() / 1e6)));
    }
    fn p(&mut self, name: &str, value: f64, shown: String) {
        println!("  {name:38} {shown}");
        self.precision.push((name.into(), json_num(value)));
    }
    fn i(&mut self, name: &str, json: String) {
        println!("  {name:38} {json}");
        self.info.push((name.into(), json));
    }
    fn dump(&self) {
        let obj = |v: &[(String, String)]| {
            let body: Vec<String> = v.iter().map(|(k, x)| format!("{}: {x}", json_str(k))).collect();
            format!("{{{}}}", body.join(", "))
        };
        let mut parts: Vec<String> = self
            .meta
            .iter()
            .map(|(k, x)| format!("{}: {x}", json_str(k)))
            .collect();
        parts.push(format!("\"times_s\": {}", obj(&self.times)));
        parts.push(format!("\"precision\": {}", obj(&self.precision)));
        parts.push(format!("\"info\": {}", obj(&self.info)));
        parts.push(format!(
            "\"peak_rss_mb\": {}",
            json_num(peak_rss_mib().map_or(f64::NAN, |m| (m * 10.0).round() / 10.0))
        ));
        println!("RESULT_JSON {{{}}}", parts.join(", "));
    }
}

fn main() -> Res<()> {
    let a = parse_args()?;
    let threads = rayon::current_num_threads();
    let lit = literal(&a);
    let t0 = Instant::now();
    let params = Parameters::new(lit.clone())?;
    let t_params = t0.elapsed().as_secs_f64();
    let secure = lit.security == SecurityLevel::Classical128;
    let mut r = Report::default();
    let shape = format!("{}x{}*{}x{}", a.rows, a.d, a.d, a.dout);
    r.meta = vec![
        ("lib".into(), json_str("ckks (ours, BSGS)")),
        ("shape".into(), json_str(&shape)),
        ("rows".into(), a.rows.to_string()),
        ("d".into(), a.d.to_string()),
        ("dout".into(), a.dout.to_string()),
        ("logn".into(), a.logn.to_string()),
        ("threads".into(), threads.to_string()),
        ("secure_128".into(), secure.to_string()),
    ];
    println!(
        "ours matmul {shape}: N = 2^{}, {} Q primes (q0 50 bit + {} x 45 bit), {} P primes (50 bit), dnum {}, \
         log QP = {:.1}{}, rayon threads {threads}",
        a.logn,
        params.q().len(),
        a.levels,
        params.p().len(),
        params.dnum(),
        params.log_qp(),
        if secure { " (128-bit bound checked)" } else { " (INSECURE: correctness check only)" },
    );
    r.i("q_primes", params.q().len().to_string());
    r.i("p_primes", params.p().len().to_string());
    r.i("dnum", params.dnum().to_string());
    r.i("log_qp", format!("{:.1}", params.log_qp()));
    r.t("params_gen", t_params);

    let mut rng = ChaCha20Rng::seed_from_u64(a.seed);
    let enc = CkksEncoder::new(&params)?;
    let slots = params.max_slots();
    let stride = a.d.max(a.dout).next_power_of_two();
    let layout = RowMajor::new(a.rows, a.d, Some(stride), slots)?;
    let tiles = layout.tiles();
    r.i("slots", slots.to_string());
    r.i("stride", stride.to_string());
    r.i("tiles", tiles.to_string());
    let w = random(a.d, a.dout, 1.0 / (a.d as f64).sqrt(), &mut rng);
    let x = random(a.rows, a.d, 1.0, &mut rng);
    let top = params.max_level();

    let t0 = Instant::now();
    let mm = PlainWeightMatMul::new(&params, &enc, layout, &w, top)?;
    r.t("encode_weight_diagonals", t0.elapsed().as_secs_f64());
    let cost = mm.cost_per_tile();
    let diagonals = cost.plaintext_mults;
    r.i("diagonals", diagonals.to_string());
    // Encoded diagonals: one plaintext of (top + 1) limbs of N words each.
    let diag_bytes = diagonals * (top + 1) * params.n() * 8;
    r.i(
        "diag_plaintexts_mib",
        format!("{:.1}", diag_bytes as f64 / 1048576.0),
    );

    let kg = KeyGenerator::new(&params);
    let sk = kg.gen_secret_key(&mut rng)?;
    let pk = kg.gen_public_key(&sk, &mut rng)?;
    let rots = mm.rotations_needed();
    let t0 = Instant::now();
    let mut keys = EvaluationKeys::default();
    for &k in &rots {
        let g = galois_element_for_rotation(k, params.n());
        keys.galois.insert(g, kg.gen_galois_key(&sk, g, &mut rng)?);
    }
    r.t("keygen_rotation_keys", t0.elapsed().as_secs_f64());
    r.i("galois_keys", keys.galois.len().to_string());
    let key_bytes = keys.memory_bytes();
    r.i("galois_keys_mib", format!("{:.1}", key_bytes as f64 / 1048576.0));
    let eval = Evaluator::new(&params, Arc::new(keys));
    let encryptor = CkksEncryptor(Encryptor::Public(pk));
    let ex = EncryptedMatrix::encrypt(&params, &enc, &encryptor, layout, &x, top, &mut rng)?;

    // One counted run (also the warm-up and the one checked), then the timed repetitions.
    eval.reset_op_counts();
    let t0 = Instant::now();
    let ey = mm.apply(&eval, &ex)?;
    let t_first = t0.elapsed().as_secs_f64();
    let ops = eval.op_counts();
    let mut ts = Vec::with_capacity(a.reps);
    let cpu0 = cpu_seconds();
    for _ in 0..a.reps {
        let t0 = Instant::now();
        let out = mm.apply(&eval, &ex)?;
        ts.push(t0.elapsed().as_secs_f64());
        drop(out);
    }
    let cpu = (cpu_seconds() - cpu0) / a.reps as f64;
    r.t("apply_first", t_first);
    r.t("apply", median(ts.clone()));
    r.t("apply_per_tile", median(ts.clone()) / tiles as f64);
    r.t("apply_cpu_mean", cpu);
    r.i("reps", a.reps.to_string());
    r.i(
        "apply_all_s",
        format!(
            "[{}]",
            ts.iter()
                .map(|t| format!("{t:.4}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );

    let plain_ks = mm.plain_diagonal_key_switches() * tiles;
    r.i("key_switches", ops.key_switches.to_string());
    r.i("decompositions", ops.decompositions.to_string());
    r.i("pt_mults", ops.pt_mults.to_string());
    r.i("rescales", ops.rescales.to_string());
    r.i("ct_mults", ops.ct_mults.to_string());
    r.i("rotations_per_tile_formula", cost.rotations.to_string());
    r.i("hoisted_rotations_per_tile", cost.hoisted_rotations.to_string());
    r.i("plain_diagonal_key_switches", plain_ks.to_string());
    let ratio = plain_ks as f64 / ops.key_switches.max(1) as f64;
    r.i("key_switch_reduction", format!("{ratio:.2}"));
    let out_level = ey.tiles.first().map_or(0, |c| c.level());
    r.i("levels_used", (top - out_level).to_string());
    r.i("input_level", top.to_string());
    r.i("output_level", out_level.to_string());
    if ops.key_switches != cost.key_switches * tiles {
        println!(
            "  WARNING: counted key switches {} != formula {} x {tiles} tiles",
            ops.key_switches, cost.key_switches
        );
    }

    let decoded = ey
        .tiles
        .iter()
        .map(|ct| enc.decode(&decrypt_ckks(&sk, ct)?))
        .collect::<ckks::Result<Vec<_>>>()?;
    let got = ey.layout.unpack(&decoded)?;
    let expected = matmul(&x, &w, a.dout);
    let err = got
        .iter()
        .flatten()
        .zip(expected.iter().flatten())
        .map(|(u, v)| (u - v).abs())
        .fold(0.0, f64::max);
    let bits = -err.log2();
    r.p("max_abs_err", err, format!("{err:.3e}"));
    r.p(
        "precision_bits",
        (bits * 10.0).round() / 10.0,
        format!("{bits:.1}"),
    );
    r.dump();
    Ok(())
}
