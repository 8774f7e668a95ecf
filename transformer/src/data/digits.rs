//! scikit-learn's 8x8 handwritten digits (`sklearn/datasets/data/digits.csv.gz`): 1,797 rows of 64
//! pixel values in `0..=16` followed by the label `0..=9`, comma-separated. For unit and smoke tests.

use std::path::Path;

use super::{bytes_to_text, data_dir, fetch_hint, maybe_gunzip, read_bytes, DataError, ImageSet, Result};

/// Side of a digit image.
const SIDE: usize = 8;
/// Pixel values per row.
const FEATURES: usize = SIDE * SIDE;
/// Largest pixel value.
const MAX_PIXEL: f32 = 16.0;
/// Digit classes.
const CLASSES: usize = 10;

/// Parses the digits CSV text into a grey 8x8 [`ImageSet`] (pixels divided by 16). Blank lines are
/// skipped; every other line must have 65 numeric fields.
pub fn parse_digits_csv(text: &str) -> Result<ImageSet> {
    parse_named(text, "digits CSV")
}

fn parse_named(text: &str, what: &str) -> Result<ImageSet> {
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let parse_err = |detail: String| DataError::Parse {
            what: what.to_string(),
            line: i + 1,
            detail,
        };
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.len() != FEATURES + 1 {
            return Err(DataError::DimensionMismatch {
                what: what.to_string(),
                detail: format!(
                    "line {}: {} fields, expected {}",
                    i + 1,
                    fields.len(),
                    FEATURES + 1
                ),
            });
        }
        for (j, field) in fields.iter().enumerate() {
            let v: f32 = field
                .parse()
                .map_err(|_| parse_err(format!("field {}: {field:?} is not a number", j + 1)))?;
            if !v.is_finite() || v < 0.0 || v.fract() != 0.0 {
                return Err(parse_err(format!(
                    "field {}: {field:?} is not a non-negative integer",
                    j + 1
                )));
            }
            if j < FEATURES {
                if v > MAX_PIXEL {
                    return Err(parse_err(format!("pixel {field} is above {MAX_PIXEL}")));
                }
                pixels.push(v / MAX_PIXEL);
            } else {
                // v is a finite non-negative integer; labels >= CLASSES are rejected by ImageSet::new.
                labels.push(v as usize);
            }
        }
    }
    if labels.is_empty() {
        return Err(DataError::Empty {
            what: what.to_string(),
        });
    }
    ImageSet::new(what, (1, SIDE, SIDE), CLASSES, pixels, labels)
}

/// Loads the digits CSV from a file (gzipped or plain).
pub fn load_digits_csv(path: &Path) -> Result<ImageSet> {
    load_with_hint(path, super::PATH_HINT)
}

fn load_with_hint(path: &Path, hint: &str) -> Result<ImageSet> {
    let what = path.display().to_string();
    let bytes = maybe_gunzip(read_bytes(path, hint)?, &what)?;
    parse_named(&bytes_to_text(bytes, &what)?, &what)
}

/// The 1,797 digits from `data_dir()/digits/digits.csv.gz`.
pub fn digits() -> Result<ImageSet> {
    load_with_hint(
        &data_dir().join("digits").join("digits.csv.gz"),
        &fetch_hint("digits"),
    )
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{gzip, TestDir};
    use super::*;

    fn row(pixel: u32, label: u32) -> String {
        let mut f: Vec<String> = (0..64).map(|i| ((i + pixel) % 17).to_string()).collect();
        f.push(label.to_string());
        f.join(",")
    }

    #[test]
    fn parses_rows_and_gz_file() {
        let text = format!("{}\n{}\n\n", row(0, 3), row(5, 9));
        let set = parse_digits_csv(&text).unwrap();
        assert_eq!(
            (set.len(), set.height(), set.width(), set.num_classes()),
            (2, 8, 8, 10)
        );
        assert_eq!(set.labels(), &[3, 9]);
        assert_eq!(set.image(0).unwrap()[16], 16.0 / 16.0);
        let dir = TestDir::new("digits");
        let path = dir.write("digits.csv.gz", gzip(text.as_bytes()));
        assert_eq!(load_digits_csv(&path).unwrap(), set);
        // float-formatted values are accepted too
        let floats = row(1, 2)
            .split(',')
            .map(|v| format!("{v}.0"))
            .collect::<Vec<_>>()
            .join(",");
        assert_eq!(parse_digits_csv(&floats).unwrap().labels(), &[2]);
    }

    #[test]
    fn malformed_rows() {
        let short = row(0, 1).rsplit_once(',').map(|(a, _)| a.to_string()).unwrap();
        assert!(matches!(
            parse_digits_csv(&short),
            Err(DataError::DimensionMismatch { .. })
        ));
        let bad = row(0, 1).replacen('0', "x", 1);
        assert!(matches!(
            parse_digits_csv(&bad),
            Err(DataError::Parse { line: 1, .. })
        ));
        assert!(matches!(
            parse_digits_csv(&row(0, 10)),
            Err(DataError::LabelOutOfRange { .. })
        ));
        let big = row(0, 1).replacen("16", "17", 1);
        assert!(matches!(parse_digits_csv(&big), Err(DataError::Parse { .. })));
        assert!(matches!(parse_digits_csv("\n\n"), Err(DataError::Empty { .. })));
        let dir = TestDir::new("digits-bad");
        let gz = gzip(row(0, 1).as_bytes());
        let path = dir.write("d.csv.gz", &gz[..gz.len() / 2]);
        assert!(load_digits_csv(&path).is_err());
        assert!(matches!(
            load_digits_csv(&dir.path().join("none.csv.gz")),
            Err(DataError::Missing { .. })
        ));
    }
}
