//! CSV files with a provenance header.
//!
//! Layout of a file written by [`write_csv`]:
//! ```text
//! # git: 54b1f21
//! # command: harness run approx-error --preset cpu --out results
//! # ...                       (one `# key: value` line per provenance fact, then `# note:` lines)
//! "function","interval","method",...
//! "gelu","[-20; 20]","remez",7,...
//! ```
//! [`read_csv`] skips every line starting with `#`; [`read_header`] returns them.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use anyhow::{Context, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::provenance::Provenance;

/// Writes `rows` (with a header row from the field names) to `path`, preceded by the provenance
/// lines and one `# note: ...` line per entry of `notes`.
pub fn write_csv<T: Serialize>(
    path: &Path,
    provenance: &Provenance,
    notes: &[String],
    rows: &[T],
) -> Result<()> {
    let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut out = BufWriter::new(file);
    for line in provenance.lines() {
        writeln!(out, "# {}", one_line(&line))?;
    }
    for note in notes {
        writeln!(out, "# note: {}", one_line(note))?;
    }
    // Text fields are quoted, so that a field starting with `#` cannot turn its row into a comment.
    let mut writer = csv::WriterBuilder::new()
        .quote_style(csv::QuoteStyle::NonNumeric)
        .from_writer(out);
    for row in rows {
        writer.serialize(row)?;
    }
    writer
        .flush()
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Keeps a comment on one line, so that a newline cannot end the comment early.
fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

/// Reads the rows of a CSV written by [`write_csv`], skipping the `#` comment lines.
pub fn read_csv<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    let mut reader = csv::ReaderBuilder::new()
        .comment(Some(b'#'))
        .from_path(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    reader
        .deserialize()
        .enumerate()
        .map(|(i, row)| row.with_context(|| format!("{}: bad data row {}", path.display(), i + 1)))
        .collect()
}

/// Number of data rows of a CSV written by [`write_csv`] (header and comments excluded).
pub fn count_rows(path: &Path) -> Result<usize> {
    let mut reader = csv::ReaderBuilder::new()
        .comment(Some(b'#'))
        .from_path(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    let mut n = 0;
    for record in reader.records() {
        record.with_context(|| format!("{}: bad data row {}", path.display(), n + 1))?;
        n += 1;
    }
    Ok(n)
}

/// The leading `#` comment lines of a CSV, without the `# ` prefix.
pub fn read_header(path: &Path) -> Result<Vec<String>> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut lines = Vec::new();
    for line in BufReader::new(file).lines() {
        let line = line?;
        match line.strip_prefix('#') {
            Some(rest) => lines.push(rest.trim_start().to_owned()),
            None => break,
        }
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provenance::lookup;
    use serde::Deserialize;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct Row {
        name: String,
        value: f64,
        extra: Option<f64>,
    }

    #[test]
    fn header_is_written_and_skipped() {
        let dir = crate::test_dir("csv_out");
        let path = dir.join("t.csv");
        let prov = Provenance::collect(3, "tiny", r#"{"a":1}"#);
        let rows = vec![
            Row {
                name: "x,y".into(),
                value: 1.5,
                extra: None,
            },
            Row {
                name: "#z".into(),
                value: -2e-300,
                extra: Some(0.25),
            },
        ];
        write_csv(&path, &prov, &["two\nlines".into()], &rows).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("# git: "));
        let header = read_header(&path).unwrap();
        assert_eq!(lookup(&header, "seed"), Some("3"));
        assert_eq!(lookup(&header, "config"), Some(r#"{"a":1}"#));
        assert_eq!(lookup(&header, "note"), Some("two lines"));
        let back: Vec<Row> = read_csv(&path).unwrap();
        assert_eq!(back, rows);
        assert_eq!(count_rows(&path).unwrap(), 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
