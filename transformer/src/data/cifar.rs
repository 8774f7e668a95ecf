//! CIFAR-10 and CIFAR-100 binary batches (the `*-binary` distributions).
//!
//! CIFAR-10 record: 1 label byte then 3,072 pixel bytes (1,024 red, 1,024 green, 1,024 blue, each
//! 32x32 row-major). CIFAR-100 record: a coarse label byte (20 super-classes), a fine label byte
//! (100 classes), then the same 3,072 bytes. No package registry carries these sets: point
//! [`load_cifar10_dir`] / [`load_cifar100_dir`] at a copy you downloaded.

use std::path::Path;

use super::{external_hint, read_bytes, DataError, ImageSet, ImageSplit, Result};

/// Side of a CIFAR image.
const SIDE: usize = 32;
/// Pixel bytes per record.
const PIXELS: usize = 3 * SIDE * SIDE;

/// Which CIFAR-100 label to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CifarLabel {
    /// The 20 super-classes (first label byte).
    Coarse,
    /// The 100 classes (second label byte).
    Fine,
}

/// Parses CIFAR-10 binary batch bytes (any number of concatenated 3,073-byte records).
pub fn parse_cifar10(bytes: &[u8]) -> Result<ImageSet> {
    parse_records(bytes, 1, 0, 10, "CIFAR-10 batch")
}

/// Parses CIFAR-100 binary bytes (3,074-byte records), keeping the `label` kind.
pub fn parse_cifar100(bytes: &[u8], label: CifarLabel) -> Result<ImageSet> {
    match label {
        CifarLabel::Coarse => parse_records(bytes, 2, 0, 20, "CIFAR-100 data"),
        CifarLabel::Fine => parse_records(bytes, 2, 1, 100, "CIFAR-100 data"),
    }
}

/// Records of `label_bytes` label bytes (the kept one at `label_at`) and 3,072 pixel bytes.
fn parse_records(
    bytes: &[u8],
    label_bytes: usize,
    label_at: usize,
    classes: usize,
    what: &str,
) -> Result<ImageSet> {
    let record = label_bytes + PIXELS;
    if bytes.is_empty() {
        return Err(DataError::Empty {
            what: what.to_string(),
        });
    }
    if !bytes.len().is_multiple_of(record) {
        return Err(DataError::Truncated {
            what: what.to_string(),
            detail: format!(
                "{} bytes is not a whole number of {record}-byte records ({} left over)",
                bytes.len(),
                bytes.len() % record
            ),
        });
    }
    let n = bytes.len() / record;
    let mut pixels = Vec::with_capacity(n * PIXELS);
    let mut labels = Vec::with_capacity(n);
    for rec in bytes.chunks_exact(record) {
        labels.push(usize::from(rec[label_at]));
        pixels.extend(rec[label_bytes..].iter().map(|&b| f32::from(b) / 255.0));
    }
    ImageSet::new(what, (3, SIDE, SIDE), classes, pixels, labels)
}

/// Concatenates sets of one shape and class count (the batches of one split).
fn concat(sets: Vec<ImageSet>, what: &str) -> Result<ImageSet> {
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    let mut classes = 0;
    for set in sets {
        classes = set.num_classes();
        let (p, l) = set.into_parts();
        pixels.extend(p);
        labels.extend(l);
    }
    ImageSet::new(what, (3, SIDE, SIDE), classes, pixels, labels)
}

/// Loads one split of a `cifar-10-batches-bin` directory: `data_batch_1.bin` .. `data_batch_5.bin`
/// for training (50,000 images), `test_batch.bin` for test (10,000).
pub fn load_cifar10_dir(dir: &Path, split: ImageSplit) -> Result<ImageSet> {
    let names: Vec<String> = match split {
        ImageSplit::Train => (1..=5).map(|i| format!("data_batch_{i}.bin")).collect(),
        ImageSplit::Test => vec!["test_batch.bin".to_string()],
    };
    let hint = external_hint("CIFAR-10");
    let mut sets = Vec::new();
    for name in &names {
        let path = dir.join(name);
        let bytes = read_bytes(&path, &hint)?;
        sets.push(parse_records(&bytes, 1, 0, 10, &path.display().to_string())?);
    }
    concat(sets, &dir.display().to_string())
}

/// Loads one split of a `cifar-100-binary` directory: `train.bin` (50,000) or `test.bin` (10,000).
pub fn load_cifar100_dir(dir: &Path, split: ImageSplit, label: CifarLabel) -> Result<ImageSet> {
    let path = dir.join(match split {
        ImageSplit::Train => "train.bin",
        ImageSplit::Test => "test.bin",
    });
    let bytes = read_bytes(&path, &external_hint("CIFAR-100"))?;
    let what = path.display().to_string();
    match label {
        CifarLabel::Coarse => parse_records(&bytes, 2, 0, 20, &what),
        CifarLabel::Fine => parse_records(&bytes, 2, 1, 100, &what),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::TestDir;
    use super::*;

    fn record(labels: &[u8], seed: u8) -> Vec<u8> {
        let mut r = labels.to_vec();
        r.extend((0..PIXELS).map(|i| (i as u8).wrapping_mul(3).wrapping_add(seed)));
        r
    }

    #[test]
    fn cifar10_batches() {
        let dir = TestDir::new("cifar10");
        for i in 1..=5u8 {
            let mut b = record(&[i], i);
            b.extend(record(&[9], 0));
            dir.write(&format!("data_batch_{i}.bin"), &b);
        }
        dir.write("test_batch.bin", record(&[0], 7));
        let train = load_cifar10_dir(dir.path(), ImageSplit::Train).unwrap();
        assert_eq!(
            (train.len(), train.channels(), train.height(), train.width()),
            (10, 3, 32, 32)
        );
        assert_eq!(train.labels(), &[1, 9, 2, 9, 3, 9, 4, 9, 5, 9]);
        let img = train.image(0).unwrap();
        assert_eq!(img[0], 1.0 / 255.0);
        assert_eq!(img[1024], ((1024usize * 3 + 1) % 256) as f32 / 255.0); // first green byte
        let test = load_cifar10_dir(dir.path(), ImageSplit::Test).unwrap();
        assert_eq!(test.labels(), &[0]);
    }

    #[test]
    fn cifar100_coarse_and_fine() {
        let mut bytes = record(&[19, 99], 1);
        bytes.extend(record(&[3, 42], 2));
        assert_eq!(
            parse_cifar100(&bytes, CifarLabel::Coarse).unwrap().labels(),
            &[19, 3]
        );
        let fine = parse_cifar100(&bytes, CifarLabel::Fine).unwrap();
        assert_eq!((fine.labels(), fine.num_classes()), (&[99usize, 42][..], 100));
        let dir = TestDir::new("cifar100");
        dir.write("train.bin", &bytes);
        assert_eq!(
            load_cifar100_dir(dir.path(), ImageSplit::Train, CifarLabel::Fine).unwrap(),
            fine
        );
        assert!(matches!(
            load_cifar100_dir(dir.path(), ImageSplit::Test, CifarLabel::Fine),
            Err(DataError::Missing { .. })
        ));
    }

    #[test]
    fn malformed_batches() {
        let rec = record(&[3], 0);
        assert!(matches!(
            parse_cifar10(&rec[..rec.len() - 1]),
            Err(DataError::Truncated { .. })
        ));
        assert!(matches!(parse_cifar10(&[]), Err(DataError::Empty { .. })));
        assert!(matches!(
            parse_cifar10(&record(&[10], 0)),
            Err(DataError::LabelOutOfRange { .. })
        ));
        // a CIFAR-100 file read as CIFAR-10 does not divide into records
        let c100 = record(&[1, 2], 0);
        assert!(matches!(parse_cifar10(&c100), Err(DataError::Truncated { .. })));
        assert!(matches!(
            parse_cifar100(&record(&[20, 5], 0), CifarLabel::Coarse),
            Err(DataError::LabelOutOfRange { .. })
        ));
        let dir = TestDir::new("cifar-missing");
        let err = load_cifar10_dir(dir.path(), ImageSplit::Test).unwrap_err();
        assert!(matches!(err, DataError::Missing { .. }) && err.to_string().contains("no package registry"));
    }
}
