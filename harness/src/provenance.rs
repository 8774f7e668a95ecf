//! Where a result came from: git revision, command line, seed, preset, configuration and machine.
//!
//! Every CSV the harness writes starts with these facts as `#` comment lines (see [`crate::csv_out`]),
//! and every SVG carries them in an XML comment, so a figure can be traced back to the code and the
//! command that made it.

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

/// The provenance of one experiment run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provenance {
    /// `git rev-parse --short HEAD`, with ` (dirty)` when tracked files differ from it; `unknown`
    /// outside a git checkout.
    pub git_rev: String,
    /// The command line, program name reduced to `harness`.
    pub command: String,
    /// Seed of the run (recorded even when the experiment is deterministic).
    pub seed: u64,
    /// Preset name.
    pub preset: String,
    /// The experiment's configuration, one line of JSON.
    pub config: String,
    /// Cores available to this process.
    pub cores: usize,
    /// CPU model from `/proc/cpuinfo`, `unknown` where absent.
    pub cpu_model: String,
    /// Whether the CPU has AVX2.
    pub avx2: bool,
    /// Whether the CPU has AVX-512 IFMA.
    pub avx512ifma: bool,
    /// Start of the run, `YYYY-MM-DDTHH:MM:SSZ`.
    pub date_utc: String,
}

impl Provenance {
    /// Collects the facts about this process and machine for a run with `seed`, `preset` and
    /// `config` (JSON).
    pub fn collect(seed: u64, preset: &str, config: &str) -> Self {
        Self {
            git_rev: git_revision(),
            command: command_line(),
            seed,
            preset: preset.to_owned(),
            config: config.to_owned(),
            cores: std::thread::available_parallelism().map_or(1, usize::from),
            cpu_model: cpu_model(),
            avx2: cpu_has_avx2(),
            avx512ifma: cpu_has_avx512ifma(),
            date_utc: utc_now(),
        }
    }

    /// `key: value` lines, without the comment prefix.
    pub fn lines(&self) -> Vec<String> {
        let yes_no = |b: bool| if b { "yes" } else { "no" };
        vec![
            format!("git: {}", self.git_rev),
            format!("command: {}", self.command),
            format!("seed: {}", self.seed),
            format!("preset: {}", self.preset),
            format!("config: {}", self.config),
            format!(
                "machine: {} cores; cpu: {}; avx2: {}; avx512ifma: {}",
                self.cores,
                self.cpu_model,
                yes_no(self.avx2),
                yes_no(self.avx512ifma)
            ),
            format!("date: {}", self.date_utc),
        ]
    }
}

/// Finds the value of `key: value` among provenance lines (as read back from a file).
pub fn lookup<'a>(lines: &'a [String], key: &str) -> Option<&'a str> {
    lines.iter().find_map(|l| {
        l.strip_prefix(key)
            .and_then(|rest| rest.strip_prefix(':'))
            .map(str::trim)
    })
}

/// Runs `git` read-only and returns its trimmed stdout on success.
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8(out.stdout).ok().map(|s| s.trim().to_owned())
}

/// Short revision of `HEAD`, marked dirty when tracked files differ (read-only checks only).
fn git_revision() -> String {
    let Some(rev) = git(&["rev-parse", "--short", "HEAD"]).filter(|r| !r.is_empty()) else {
        return "unknown".to_owned();
    };
    // `diff-index --quiet` exits 1 on differences and does not write the index.
    let clean = Command::new("git")
        .args(["diff-index", "--quiet", "HEAD", "--"])
        .status()
        .map(|s| s.success())
        .unwrap_or(true);
    if clean {
        rev
    } else {
        format!("{rev} (dirty)")
    }
}

/// The command line of this process with the program path reduced to `harness`; arguments
/// containing spaces or quotes are single-quoted.
pub fn command_line() -> String {
    let mut parts = vec!["harness".to_owned()];
    parts.extend(std::env::args().skip(1).map(|a| shell_quote(&a)));
    parts.join(" ")
}

fn shell_quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:+,@".contains(c));
    if plain {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

#[cfg(target_arch = "x86_64")]
fn cpu_has_avx2() -> bool {
    std::arch::is_x86_feature_detected!("avx2")
}

#[cfg(not(target_arch = "x86_64"))]
fn cpu_has_avx2() -> bool {
    false
}

#[cfg(target_arch = "x86_64")]
fn cpu_has_avx512ifma() -> bool {
    std::arch::is_x86_feature_detected!("avx512ifma")
}

#[cfg(not(target_arch = "x86_64"))]
fn cpu_has_avx512ifma() -> bool {
    false
}

fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format_utc(secs)
}

/// `YYYY-MM-DDTHH:MM:SSZ` for seconds since the Unix epoch (proleptic Gregorian calendar).
fn format_utc(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Date of day `days` after 1970-01-01 (H. Hinnant, "chrono-Compatible Low-Level Date
/// Algorithms", `civil_from_days`, restricted to non-negative days).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(format_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format_utc(1_709_210_096), "2024-02-29T12:34:56Z");
        assert_eq!(format_utc(4_102_444_799), "2099-12-31T23:59:59Z");
    }

    #[test]
    fn lines_round_trip_through_lookup() {
        let p = Provenance::collect(7, "tiny", "{}");
        let lines = p.lines();
        assert_eq!(lookup(&lines, "seed"), Some("7"));
        assert_eq!(lookup(&lines, "preset"), Some("tiny"));
        assert!(lookup(&lines, "git").is_some_and(|g| !g.is_empty()));
        assert!(lookup(&lines, "machine").is_some_and(|m| m.contains("avx2: ")));
        assert!(lookup(&lines, "command").is_some_and(|c| c.starts_with("harness")));
        assert_eq!(lookup(&lines, "nothing"), None);
    }

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("--out"), "--out");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
