//! `harness report`: regenerates the index `README.md` of a results directory, listing every CSV and
//! SVG in it with the command that made it (read from the files' own provenance: a CSV's `#`
//! header, an SVG's `<metadata>`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::csv_out::{count_rows, read_header};
use crate::experiments::EXPERIMENTS;
use crate::plot::svg_provenance;
use crate::provenance::lookup;

/// File name of the index.
pub const INDEX: &str = "README.md";

/// Hand-written discussion included at the top of the index when present.
pub const DISCUSSION: &str = "DISCUSSION.md";

/// Writes `out/README.md` and returns its path.
pub fn write(out: &Path, command: &str) -> Result<PathBuf> {
    let text = render(out, command)?;
    let path = out.join(INDEX);
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// `harness run x` becomes `cargo run --release -p harness -- run x`, the form a reader can paste.
fn cargo_command(recorded: &str) -> String {
    let args = recorded.strip_prefix("harness").unwrap_or(recorded).trim_start();
    format!("cargo run --release -p harness -- {args}")
}

/// Provenance lines of a file: the `#` header of a CSV, the metadata of an SVG.
fn provenance_of(path: &Path) -> Result<Vec<String>> {
    if path.extension().is_some_and(|e| e == "csv") {
        return read_header(path);
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(svg_provenance(&text))
}

fn command_of(lines: &[String]) -> String {
    lookup(lines, "command").map_or_else(
        || "(not recorded)".to_owned(),
        |c| format!("`{}`", cargo_command(c)),
    )
}

/// Files in `dir` with extension `ext`, sorted by name.
fn files_with(dir: &Path, ext: &str) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let path = entry?.path();
        if path.is_file() && path.extension().is_some_and(|e| e == ext) {
            if let Some(name) = path.file_name().and_then(|n| n.to_str()) {
                names.push(name.to_owned());
            }
        }
    }
    names.sort();
    Ok(names)
}

/// The index as Markdown.
pub fn render(out: &Path, command: &str) -> Result<String> {
    let csvs = files_with(out, "csv")?;
    let svgs = files_with(out, "svg")?;
    let mut listed: Vec<&str> = Vec::new();
    let mut md = String::from("# Results\n\n");
    md.push_str(&format!(
        "Index written by `{}`; do not edit by hand. Every CSV starts with `#` lines giving its \
         provenance (git revision, command, seed, preset, configuration, machine, date), and every \
         SVG repeats its source's in a `<metadata>` element. Figures are drawn from the CSVs only.\n",
        cargo_command(command)
    ));
    // The hand-written discussion of the findings, if any, comes first.
    let discussion = out.join(DISCUSSION);
    if discussion.is_file() {
        let text = std::fs::read_to_string(&discussion)
            .with_context(|| format!("cannot read {}", discussion.display()))?;
        md.push('\n');
        md.push_str(text.trim_end());
        md.push('\n');
    }
    for exp in EXPERIMENTS {
        if !csvs.iter().any(|c| c == exp.csv) {
            continue;
        }
        listed.push(exp.csv);
        let csv_path = out.join(exp.csv);
        let header = provenance_of(&csv_path)?;
        md.push_str(&format!("\n## `{}`\n\n{}.\n\n", exp.name, exp.description));
        md.push_str(&format!(
            "Table [`{}`]({}), {} rows: {}\n",
            exp.csv,
            exp.csv,
            count_rows(&csv_path)?,
            command_of(&header)
        ));
        for key in ["git", "preset", "machine", "date"] {
            if let Some(v) = lookup(&header, key) {
                md.push_str(&format!("- {key}: {v}\n"));
            }
        }
        for plot in exp.plots.iter().filter(|p| svgs.iter().any(|s| s == *p)) {
            listed.push(plot);
            let lines = provenance_of(&out.join(plot))?;
            md.push_str(&format!(
                "\nFigure [`{plot}`]({plot}): {}\n\n![{plot}]({plot})\n",
                command_of(&lines)
            ));
        }
        md.push('\n');
        md.push_str(&(exp.summary)(&csv_path)?);
    }
    let others: Vec<&String> = csvs
        .iter()
        .chain(&svgs)
        .filter(|f| !listed.contains(&f.as_str()))
        .collect();
    if !others.is_empty() {
        md.push_str("\n## Other files\n\n");
        for f in others {
            let lines = provenance_of(&out.join(f))?;
            md.push_str(&format!("- [`{f}`]({f}): {}\n", command_of(&lines)));
        }
    }
    Ok(md)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_files_with_their_commands() {
        let dir = crate::test_dir("report");
        std::fs::write(
            dir.join("stray.csv"),
            "# command: harness run stray --preset tiny\n\"a\"\n1\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("fig.svg"),
            "<svg>\n<metadata id=\"provenance\">\ncommand: harness plot x --out r\n</metadata></svg>",
        )
        .unwrap();
        std::fs::write(dir.join("bare.svg"), "<svg/>").unwrap();
        let path = write(&dir, "harness report --out r").unwrap();
        let md = std::fs::read_to_string(path).unwrap();
        assert!(md.contains("`cargo run --release -p harness -- report --out r`"));
        assert!(md.contains(
            "[`stray.csv`](stray.csv): `cargo run --release -p harness -- run stray --preset tiny`"
        ));
        assert!(md.contains("[`fig.svg`](fig.svg): `cargo run --release -p harness -- plot x --out r`"));
        assert!(md.contains("[`bare.svg`](bare.svg): (not recorded)"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
