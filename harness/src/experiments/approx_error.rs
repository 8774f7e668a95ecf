//! Experiment `approx-error`: how well, and at what cost, polynomials approximate the
//! non-polynomial functions of the transformer.
//!
//! For each function, each method and each size it writes one row: degree, multiplicative depth,
//! non-scalar products and max error on the interval.
//! - GELU and ReLU on `[-r, r]` (the paper's activation range, `r = 20`): a single polynomial of
//!   each degree, Chebyshev interpolant and Remez minimax ([`poly_approx::table`]); for ReLU also
//!   the composite construction from a composite sign ([`CompositeRelu`], Lee et al. 2020/834),
//!   designed for the fewest levels at gap `eps = 2^-k` and precision `ratio * eps` on `[-1, 1]`,
//!   and evaluated as `x * h(x / r)`.
//! - `1/sqrt(x)` on `[0.01, 1]` (the recommended interval): single polynomials as above, and
//!   Panda's relative-minimax initial guess plus Newton steps ([`NewtonApprox`]): a grid of initial
//!   degrees and step counts, and the fewest-level design ([`NewtonApprox::design`]) for each of a
//!   list of relative-error targets.
//!
//! Columns: `degree` is the degree of the whole approximation as one polynomial in `x` (for a
//! composite, the product of the stage degrees, plus one for ReLU's final product with `x`; for
//! Newton, `3 d + 1` per step); `stages` lists its parts, first applied first (`7;15;15`, or
//! `7;newton;newton`); `depth` counts every level from an input in the interval to the result, of
//! which `input_map_depth` is the change of variable onto `[-1, 1]` (free when folded into the
//! preceding linear layer); `gap` is the half-width, in input units, of the interval around 0 where
//! a composite ReLU is not accurate (included in its `max_abs_error`; `error_outside_gap` is the
//! error on the rest of the interval).
//!
//! References:
//! - I. Zimerman et al., ICML 2024, <https://arxiv.org/abs/2311.08610> (activation range).
//! - E. Lee, J.-W. Lee, Y.-S. Kim, J.-S. No, <https://eprint.iacr.org/2020/834> (composite sign).
//! - A. Panda, <https://eprint.iacr.org/2022/423> (inverse square root by Newton).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};
use poly_approx::chebyshev::interpolate;
use poly_approx::composite::{CompositeRelu, Objective};
use poly_approx::eval::EvalPlan;
use poly_approx::functions::{gelu, relu, Target};
use poly_approx::newton::{NewtonApprox, NewtonKind};
use poly_approx::remez::minimax;
use poly_approx::table::approx_error_table;
use poly_approx::{ChebyshevPoly, Interval};
use serde::{Deserialize, Serialize};

use super::Preset;
use crate::plot::{LineChart, Series};

/// Name of the CSV in the output directory.
pub const CSV: &str = "approx_error.csv";
/// Error against degree.
pub const PLOT_DEGREE: &str = "approx_error_vs_degree.svg";
/// Error against depth.
pub const PLOT_DEPTH: &str = "approx_error_vs_depth.svg";

/// Settings of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// Degrees of the single polynomials (Chebyshev and Remez).
    pub degrees: Vec<usize>,
    /// GELU and ReLU are approximated on `[-radius, radius]`.
    pub activation_radius: f64,
    /// Composite ReLU designs: gaps `eps = 2^-k` on `[-1, 1]`, one design per `k` and ratio.
    pub relu_log2_gaps: Vec<i32>,
    /// Composite ReLU designs: the precision asked for outside the gap is `ratio * eps`.
    pub relu_precision_ratios: Vec<f64>,
    /// Interval of `1/sqrt(x)`, `[a, b]` with `a > 0`.
    pub inv_sqrt_interval: [f64; 2],
    /// Newton for `1/sqrt(x)`: initial-guess degrees, each run with 1 to `newton_max_steps` steps.
    pub newton_degrees: Vec<usize>,
    /// Most Newton steps in the grid above.
    pub newton_max_steps: usize,
    /// Max relative errors aimed at by the Newton designs for `1/sqrt(x)` (fewest levels).
    pub newton_targets: Vec<f64>,
    /// Sample points for the errors measured here (composite, Newton, relative errors).
    pub error_samples: usize,
}

impl Config {
    /// The settings of a preset.
    pub fn preset(preset: Preset) -> Self {
        match preset {
            Preset::Tiny => Self {
                degrees: vec![3, 7, 15],
                activation_radius: 20.0,
                relu_log2_gaps: vec![3, 5],
                relu_precision_ratios: vec![1.0],
                inv_sqrt_interval: [0.01, 1.0],
                newton_degrees: vec![3, 7],
                newton_max_steps: 2,
                newton_targets: vec![1e-2, 1e-4],
                error_samples: 4_001,
            },
            Preset::Cpu => Self {
                degrees: vec![3, 7, 15, 31, 63, 127],
                activation_radius: 20.0,
                relu_log2_gaps: vec![3, 5, 7, 9, 11, 13],
                relu_precision_ratios: vec![1.0, 0.125],
                inv_sqrt_interval: [0.01, 1.0],
                newton_degrees: vec![1, 3, 7, 15, 31],
                newton_max_steps: 3,
                newton_targets: vec![1e-1, 1e-2, 1e-3, 1e-4, 1e-6, 1e-8, 1e-10, 1e-12],
                error_samples: 40_001,
            },
        }
    }
}

/// One approximation and what it costs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// `gelu`, `relu` or `inverse_sqrt`.
    pub function: String,
    /// Interval the error is measured on, `[a, b]`.
    pub interval: String,
    /// `chebyshev`, `remez`, `composite` or `newton`.
    pub method: String,
    /// Degree of the whole approximation as one polynomial in `x`.
    pub degree: u64,
    /// Parts, first applied first, `;`-separated: stage degrees, or the initial degree then one
    /// `newton` per step.
    pub stages: String,
    /// Levels from an input in the interval to the result, change of variable included.
    pub depth: usize,
    /// Levels of the change of variable onto `[-1, 1]` (0 or 1), included in `depth`.
    pub input_map_depth: usize,
    /// Non-scalar (ciphertext-ciphertext) products.
    pub nonscalar_mults: usize,
    /// Max of `|approximation - f|` on the interval.
    pub max_abs_error: f64,
    /// Max of `|approximation - f| / |f|` on the interval (`1/sqrt` only).
    pub max_rel_error: Option<f64>,
    /// Composite ReLU: half-width of the gap around 0, in input units.
    pub gap: Option<f64>,
    /// Composite ReLU: max abs error outside the gap (where the design's precision holds).
    pub error_outside_gap: Option<f64>,
}

/// Runs the experiment: the rows, and notes on what was left out or measured how.
pub fn run(config: &Config) -> Result<(Vec<Row>, Vec<String>)> {
    ensure!(!config.degrees.is_empty(), "no degrees");
    ensure!(config.error_samples >= 2, "need at least 2 error samples");
    let mut rows = Vec::new();
    let mut notes = vec![
        "chebyshev/remez max_abs_error: poly_approx::table (extrema located and refined); composite, \
         newton and all max_rel_error: sampled on Chebyshev and geometric grids"
            .to_owned(),
        "composite relu: designed on [-1, 1] for the fewest levels (Objective::Depth) with gap eps \
         and precision ratio * eps (see config), evaluated as x * h(x / r); its max_abs_error includes \
         the gap"
            .to_owned(),
    ];
    let r = config.activation_radius;
    let act = Interval::new(-r, r)?;
    single_polys(&mut rows, &mut notes, Target::Gelu, gelu, act, config)?;
    single_polys(&mut rows, &mut notes, Target::Relu, relu, act, config)?;
    composite_relu(&mut rows, &mut notes, act, config)?;
    let [a, b] = config.inv_sqrt_interval;
    let inv = Interval::new(a, b)?;
    ensure!(a > 0.0, "1/sqrt needs a positive interval");
    let inv_sqrt = |x: f64| 1.0 / x.sqrt();
    single_polys(&mut rows, &mut notes, Target::InverseSqrt, inv_sqrt, inv, config)?;
    newton_inv_sqrt(&mut rows, &mut notes, inv, config)?;
    Ok((rows, notes))
}

fn interval_name(i: Interval) -> String {
    format!("[{}, {}]", i.a(), i.b())
}

/// Levels of the change of variable of `interval` onto `[-1, 1]`, as the evaluation plan counts them.
fn input_map_depth(interval: Interval) -> Result<usize> {
    Ok(EvalPlan::new(&ChebyshevPoly::new(vec![0.0, 1.0], interval)?)?.input_map_depth())
}

/// Chebyshev interpolants and Remez minimax polynomials of each degree; for `1/sqrt` also their
/// relative errors.
fn single_polys(
    rows: &mut Vec<Row>,
    notes: &mut Vec<String>,
    target: Target,
    f: impl Fn(f64) -> f64 + Copy,
    interval: Interval,
    config: &Config,
) -> Result<()> {
    let table = approx_error_table(f, interval, &config.degrees)
        .with_context(|| format!("error table of {}", target.name()))?;
    let relative = target == Target::InverseSqrt;
    let grid = error_grid(interval, config.error_samples, relative);
    let rel_error = |p: &ChebyshevPoly| {
        grid.iter()
            .map(|&x| ((p.eval(x) - f(x)) / f(x)).abs())
            .fold(0.0, f64::max)
    };
    for t in table {
        let row = |method: &str, max_abs_error: f64, max_rel_error: Option<f64>| Row {
            function: target.name().to_owned(),
            interval: interval_name(interval),
            method: method.to_owned(),
            degree: t.degree as u64,
            stages: t.degree.to_string(),
            depth: t.depth + t.input_map_depth,
            input_map_depth: t.input_map_depth,
            nonscalar_mults: t.nonscalar_mults,
            max_abs_error,
            max_rel_error,
            gap: None,
            error_outside_gap: None,
        };
        let cheb_rel = if relative {
            Some(rel_error(&interpolate(f, interval, t.degree)?))
        } else {
            None
        };
        rows.push(row("chebyshev", t.chebyshev_max_error, cheb_rel));
        match t.remez_max_error {
            Some(e) => {
                let remez_rel = if relative {
                    Some(rel_error(&minimax(f, interval, t.degree)?.poly))
                } else {
                    None
                };
                rows.push(row("remez", e, remez_rel));
            }
            None => notes.push(format!(
                "{} remez degree {}: the exchange did not converge, no row",
                target.name(),
                t.degree
            )),
        }
    }
    Ok(())
}

/// Composite ReLU designs, one per gap `2^-k` and precision ratio, measured on the whole
/// activation interval; sorted by depth.
fn composite_relu(
    rows: &mut Vec<Row>,
    notes: &mut Vec<String>,
    interval: Interval,
    config: &Config,
) -> Result<()> {
    let r = interval.b();
    ensure!(interval.a() == -r, "composite ReLU needs a symmetric interval");
    let map_depth = input_map_depth(interval)?;
    let mut composite = Vec::new();
    for &k in &config.relu_log2_gaps {
        for &ratio in &config.relu_precision_ratios {
            let eps = 2f64.powi(-k);
            let precision = eps * ratio;
            let design = match CompositeRelu::design(eps, precision, Objective::Depth) {
                Ok(d) => d,
                Err(e) => {
                    notes.push(format!(
                        "relu composite gap 2^-{k}, precision {precision:e}: no design ({e})"
                    ));
                    continue;
                }
            };
            let stage_degrees = design.sign().degrees();
            // A tighter precision can give the same chain (its last stage overshoots): keep one.
            let stages = join(&stage_degrees);
            if composite
                .iter()
                .any(|c: &Row| c.stages == stages && c.gap == Some(r * eps))
            {
                continue;
            }
            let degree = stage_degrees
                .iter()
                .fold(1u64, |acc, &d| acc.saturating_mul(d as u64))
                .saturating_add(1);
            // ReLU(x) = r ReLU(x / r): the unit-interval error scales by r.
            let (unit_error, unit_outside) = composite_relu_unit_error(&design, config.error_samples);
            composite.push(Row {
                function: Target::Relu.name().to_owned(),
                interval: interval_name(interval),
                method: "composite".to_owned(),
                degree,
                stages,
                depth: design.depth() + map_depth,
                input_map_depth: map_depth,
                nonscalar_mults: design.nonscalar_mults(),
                max_abs_error: r * unit_error,
                max_rel_error: None,
                gap: Some(r * eps),
                error_outside_gap: Some(r * unit_outside),
            });
        }
    }
    composite.sort_by(|a, b| {
        (a.depth, a.nonscalar_mults)
            .cmp(&(b.depth, b.nonscalar_mults))
            .then(a.max_abs_error.total_cmp(&b.max_abs_error))
    });
    rows.extend(composite);
    Ok(())
}

/// Max of `|h(u) - ReLU(u)|` on `[-1, 1]`, gap included and outside the gap: a uniform grid, a
/// dense grid across the gap and a grid that is dense near its edges, where the sign stages'
/// errors peak.
fn composite_relu_unit_error(design: &CompositeRelu, samples: usize) -> (f64, f64) {
    let eps = design.sign().eps();
    let n = samples.max(2);
    let step = |k: usize| k as f64 / (n - 1) as f64;
    let uniform = (0..n).map(|k| -1.0 + 2.0 * step(k));
    let across_gap = (0..n).map(|k| 4.0 * eps * (2.0 * step(k) - 1.0));
    let near_edges = (0..n)
        .map(|k| eps + (1.0 - eps) * step(k).powi(2))
        .flat_map(|x| [x, -x]);
    uniform
        .chain(across_gap)
        .chain(near_edges)
        .filter(|u| u.abs() <= 1.0)
        .fold((0.0_f64, 0.0_f64), |(all, outside), u| {
            let e = (design.eval(u) - relu(u)).abs();
            let outside = if u.abs() >= eps { outside.max(e) } else { outside };
            (all.max(e), outside)
        })
}

/// Newton for `1/sqrt(x)`: the grid of initial degrees and step counts, then the designs for
/// each target; one row per distinct (initial degree, steps).
fn newton_inv_sqrt(
    rows: &mut Vec<Row>,
    notes: &mut Vec<String>,
    interval: Interval,
    config: &Config,
) -> Result<()> {
    let kind = NewtonKind::InverseSqrt;
    let grid = error_grid(interval, config.error_samples, true);
    let mut built: Vec<NewtonApprox> = Vec::new();
    for &degree in &config.newton_degrees {
        for steps in 1..=config.newton_max_steps {
            match NewtonApprox::new(kind, interval, degree, steps) {
                Ok(n) => built.push(n),
                Err(e) => notes.push(format!(
                    "inverse_sqrt newton degree {degree} with {steps} steps: not built ({e})"
                )),
            }
        }
    }
    for &target in &config.newton_targets {
        match NewtonApprox::design(kind, interval, target) {
            Ok(n) => {
                notes.push(format!(
                    "inverse_sqrt newton design for relative error {target:e}: degree {} + {} steps, \
                     depth {}, relative error {:.2e}",
                    n.initial().degree(),
                    n.steps(),
                    n.depth(),
                    n.relative_error()
                ));
                built.push(n);
            }
            Err(e) => notes.push(format!("inverse_sqrt newton target {target:e}: no design ({e})")),
        }
    }
    let mut newton = Vec::new();
    let mut seen = Vec::new();
    for n in &built {
        let key = (n.initial().degree(), n.steps());
        if !seen.contains(&key) {
            seen.push(key);
            newton.push(newton_row(n, interval, &grid)?);
        }
    }
    newton.sort_by(|a, b| {
        (a.depth, a.nonscalar_mults)
            .cmp(&(b.depth, b.nonscalar_mults))
            .then(a.max_abs_error.total_cmp(&b.max_abs_error))
    });
    rows.extend(newton);
    Ok(())
}

fn newton_row(n: &NewtonApprox, interval: Interval, grid: &[f64]) -> Result<Row> {
    let init = n.initial().degree();
    let degree = (0..n.steps()).fold(init as u64, |d, _| d.saturating_mul(3).saturating_add(1));
    let mut stages = vec![init.to_string()];
    stages.extend(std::iter::repeat_n("newton".to_owned(), n.steps()));
    let exact = |x: f64| 1.0 / x.sqrt();
    let (abs, rel) = grid.iter().fold((0.0_f64, 0.0_f64), |(a, r), &x| {
        let e = (n.eval(x) - exact(x)).abs();
        (a.max(e), r.max(e / exact(x)))
    });
    Ok(Row {
        function: Target::InverseSqrt.name().to_owned(),
        interval: interval_name(interval),
        method: "newton".to_owned(),
        degree,
        stages: stages.join(";"),
        depth: n.depth(),
        input_map_depth: EvalPlan::new(n.initial())?.input_map_depth(),
        nonscalar_mults: n.nonscalar_mults(),
        max_abs_error: abs,
        // The library's refined measurement, never below the sampled one.
        max_rel_error: Some(n.relative_error().max(rel)),
        gap: None,
        error_outside_gap: None,
    })
}

/// Chebyshev points of the interval, plus geometric points when relative errors are wanted
/// (positive intervals only).
fn error_grid(interval: Interval, samples: usize, geometric: bool) -> Vec<f64> {
    let n = samples.max(2);
    let last = (n - 1) as f64;
    let mut xs: Vec<f64> = (0..n)
        .map(|k| interval.from_unit(-(std::f64::consts::PI * k as f64 / last).cos()))
        .collect();
    if geometric && interval.a() > 0.0 {
        let ratio = interval.b() / interval.a();
        xs.extend((0..n).map(|k| interval.a() * ratio.powf(k as f64 / last)));
    }
    xs.retain(|&x| interval.contains(x));
    xs
}

fn join(degrees: &[usize]) -> String {
    degrees.iter().map(usize::to_string).collect::<Vec<_>>().join(";")
}

/// Draws the two figures from the CSV at `csv` into `out_dir`; `provenance` goes into each SVG.
pub fn plot(csv: &Path, out_dir: &Path, provenance: &[String]) -> Result<Vec<PathBuf>> {
    let rows: Vec<Row> = crate::csv_out::read_csv(csv)?;
    ensure!(!rows.is_empty(), "{} has no rows", csv.display());
    ensure!(
        rows.iter()
            .all(|r| r.max_abs_error > 0.0 && r.max_abs_error.is_finite()),
        "{}: max_abs_error must be positive and finite to plot its log",
        csv.display()
    );
    let domains = domains(&rows);
    let by_degree = LineChart {
        title: format!("Max abs error vs degree: {domains}"),
        x_label: "degree of the whole approximation (log scale)".to_owned(),
        y_label: "log10 max abs error (best at this degree or below)".to_owned(),
        x_log: true,
        series: series(&rows, |r| r.degree as f64),
    };
    let by_depth = LineChart {
        title: format!("Max abs error vs depth: {domains}"),
        x_label: "multiplicative depth (levels, change of variable included)".to_owned(),
        y_label: "log10 max abs error (best at this depth or below)".to_owned(),
        x_log: false,
        series: series(&rows, |r| r.depth as f64),
    };
    let mut written = Vec::new();
    for (chart, name) in [(by_degree, PLOT_DEGREE), (by_depth, PLOT_DEPTH)] {
        let path = out_dir.join(name);
        chart.write_svg(&path, provenance)?;
        written.push(path);
    }
    Ok(written)
}

/// `gelu, relu on [-20, 20]; inverse_sqrt on [0.01, 1]`, in order of first appearance.
fn domains(rows: &[Row]) -> String {
    let mut by_interval: Vec<(&str, Vec<&str>)> = Vec::new();
    for r in rows {
        match by_interval.iter_mut().find(|(i, _)| *i == r.interval) {
            Some((_, fs)) => {
                if !fs.contains(&r.function.as_str()) {
                    fs.push(&r.function);
                }
            }
            None => by_interval.push((&r.interval, vec![&r.function])),
        }
    }
    by_interval
        .iter()
        .map(|(i, fs)| format!("{} on {i}", fs.join(", ")))
        .collect::<Vec<_>>()
        .join("; ")
}

/// One series per (function, method): the best error at each `x` or below (the cost/error
/// frontier; every point is in the CSV). Chebyshev lines are dashed.
fn series(rows: &[Row], x: impl Fn(&Row) -> f64) -> Vec<Series> {
    let mut groups: BTreeMap<(String, String), Vec<(f64, f64)>> = BTreeMap::new();
    for r in rows {
        groups
            .entry((r.function.clone(), r.method.clone()))
            .or_default()
            .push((x(r), r.max_abs_error.log10()));
    }
    groups
        .into_iter()
        .map(|((function, method), mut points)| {
            points.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
            let mut frontier: Vec<(f64, f64)> = Vec::with_capacity(points.len());
            for p in points {
                if frontier.last().is_none_or(|last| p.1 < last.1 && p.0 > last.0) {
                    frontier.push(p);
                }
            }
            Series {
                dashed: method == "chebyshev",
                label: format!("{function} {method}"),
                points: frontier,
            }
        })
        .collect()
}

/// A Markdown summary of the CSV for the results index: errors of the single polynomials by
/// degree, then the composite and Newton rows.
pub fn summary(csv: &Path) -> Result<String> {
    let rows: Vec<Row> = crate::csv_out::read_csv(csv)?;
    let mut degrees: Vec<u64> = rows.iter().filter(|r| is_single(r)).map(|r| r.degree).collect();
    degrees.sort_unstable();
    degrees.dedup();
    let mut out = String::from("Max abs error of a single polynomial, by degree (depth in brackets):\n\n");
    out.push_str("| function | method |");
    for d in &degrees {
        out.push_str(&format!(" {d} |"));
    }
    out.push_str("\n|---|---|");
    out.push_str(&"---|".repeat(degrees.len()));
    out.push('\n');
    let mut groups: BTreeMap<(&str, &str), BTreeMap<u64, &Row>> = BTreeMap::new();
    for r in rows.iter().filter(|r| is_single(r)) {
        groups
            .entry((&r.function, &r.method))
            .or_default()
            .insert(r.degree, r);
    }
    for ((function, method), by_degree) in &groups {
        out.push_str(&format!("| {function} | {method} |"));
        for d in &degrees {
            match by_degree.get(d) {
                Some(r) => out.push_str(&format!(" {:.2e} ({}) |", r.max_abs_error, r.depth)),
                None => out.push_str(" - |"),
            }
        }
        out.push('\n');
    }
    out.push_str(
        "\nComposite ReLU and Newton 1/sqrt:\n\n\
         | function | method | stages | depth | products | max abs error | max rel error | gap | \
         error outside gap |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows.iter().filter(|r| !is_single(r)) {
        let opt = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.2e}"));
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {:.2e} | {} | {} | {} |\n",
            r.function,
            r.method,
            r.stages,
            r.depth,
            r.nonscalar_mults,
            r.max_abs_error,
            opt(r.max_rel_error),
            opt(r.gap),
            opt(r.error_outside_gap)
        ));
    }
    Ok(out)
}

fn is_single(r: &Row) -> bool {
    r.method == "chebyshev" || r.method == "remez"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grids_stay_inside() {
        let i = Interval::new(0.01, 1.0).unwrap();
        let g = error_grid(i, 101, true);
        assert!(g.len() >= 200 && g.iter().all(|&x| i.contains(x)));
        assert_eq!(error_grid(i, 101, false).len(), 101);
    }

    #[test]
    fn series_are_frontiers() {
        let base = Row {
            function: "gelu".into(),
            interval: "[-20, 20]".into(),
            method: "remez".into(),
            degree: 7,
            stages: "7".into(),
            depth: 4,
            input_map_depth: 1,
            nonscalar_mults: 4,
            max_abs_error: 0.1,
            max_rel_error: None,
            gap: None,
            error_outside_gap: None,
        };
        let rows = vec![
            Row {
                degree: 15,
                max_abs_error: 0.01,
                ..base.clone()
            },
            base.clone(),
            Row {
                max_abs_error: 0.02,
                ..base.clone()
            },
            Row {
                degree: 31,
                max_abs_error: 0.05,
                ..base.clone()
            },
            Row {
                method: "chebyshev".into(),
                ..base
            },
        ];
        let s = series(&rows, |r| r.degree as f64);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].label, "gelu chebyshev");
        assert!(s[0].dashed && !s[1].dashed);
        let xs: Vec<f64> = s[1].points.iter().map(|p| p.0).collect();
        assert_eq!(xs, vec![7.0, 15.0]);
        assert!((s[1].points[0].1 - 0.02f64.log10()).abs() < 1e-12);
        assert!((s[1].points[1].1 + 2.0).abs() < 1e-12);
    }
}
