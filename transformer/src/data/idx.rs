//! IDX files (MNIST, Fashion-MNIST), raw or gzipped.
//!
//! Format: two zero bytes, a type code (`0x08` = unsigned byte, the only type these sets use), the
//! number of dimensions `d`, then `d` big-endian `u32` sizes, then the values in row-major order.

use std::path::{Path, PathBuf};

use super::{
    data_dir, fetch_hint, maybe_gunzip, read_bytes, DataError, ImageSet, ImageSplit, Result, PATH_HINT,
};

/// IDX type code of unsigned bytes.
const TYPE_U8: u8 = 0x08;
/// Classes of MNIST and Fashion-MNIST.
const MNIST_CLASSES: usize = 10;

/// A decoded IDX array of unsigned bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    /// Sizes of the dimensions, outermost first.
    pub dims: Vec<usize>,
    /// The values, row-major; `data.len()` is the product of `dims`.
    pub data: Vec<u8>,
}

/// Parses an IDX array of unsigned bytes from memory (gzipped or raw).
pub fn parse_idx(bytes: &[u8]) -> Result<IdxArray> {
    parse_named(bytes.to_vec(), "IDX buffer")
}

/// Reads an IDX array of unsigned bytes from a file (gzipped or raw, detected by content).
pub fn read_idx(path: &Path) -> Result<IdxArray> {
    read_idx_with_hint(path, PATH_HINT)
}

fn read_idx_with_hint(path: &Path, hint: &str) -> Result<IdxArray> {
    parse_named(read_bytes(path, hint)?, &path.display().to_string())
}

fn parse_named(bytes: Vec<u8>, what: &str) -> Result<IdxArray> {
    let bytes = maybe_gunzip(bytes, what)?;
    let truncated = |detail: String| DataError::Truncated {
        what: what.to_string(),
        detail,
    };
    let magic: [u8; 4] = bytes
        .get(..4)
        .and_then(|m| m.try_into().ok())
        .ok_or_else(|| truncated(format!("{} bytes, shorter than the 4-byte magic", bytes.len())))?;
    let found = u32::from_be_bytes(magic);
    let [z0, z1, ty, ndims] = magic;
    let known_type = matches!(ty, 0x08 | 0x09 | 0x0B | 0x0C | 0x0D | 0x0E);
    if z0 != 0 || z1 != 0 || !known_type || ndims == 0 {
        return Err(DataError::BadMagic {
            what: what.to_string(),
            found,
            expected: "0x0000TTDD (TT an IDX type code, DD >= 1 dimensions)".to_string(),
        });
    }
    if ty != TYPE_U8 {
        return Err(DataError::Unsupported {
            what: what.to_string(),
            detail: format!("IDX type code {ty:#04x}; only unsigned bytes (0x08) are supported"),
        });
    }
    let ndims = usize::from(ndims);
    let header_len = 4 + 4 * ndims;
    let header = bytes.get(4..header_len).ok_or_else(|| {
        truncated(format!(
            "{} bytes, shorter than the {header_len}-byte header",
            bytes.len()
        ))
    })?;
    let dims: Vec<usize> = header
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let count = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| DataError::DimensionMismatch {
            what: what.to_string(),
            detail: format!("dims {dims:?} overflow"),
        })?;
    let payload = bytes.len() - header_len;
    if payload < count {
        return Err(truncated(format!(
            "dims {dims:?} need {count} bytes of data, found {payload}"
        )));
    }
    if payload > count {
        return Err(DataError::DimensionMismatch {
            what: what.to_string(),
            detail: format!("dims {dims:?} need {count} bytes of data, found {payload} (trailing bytes)"),
        });
    }
    let mut data = bytes;
    data.drain(..header_len);
    Ok(IdxArray { dims, data })
}

/// Combines an IDX image array (`n x height x width`) and an IDX label array (`n`) into a grey
/// [`ImageSet`], pixels scaled from `0..=255` to `[0, 1]`.
pub fn idx_image_set(images: IdxArray, labels: IdxArray, num_classes: usize, what: &str) -> Result<ImageSet> {
    let mismatch = |detail: String| DataError::DimensionMismatch {
        what: what.to_string(),
        detail,
    };
    let [n, h, w] = images.dims[..] else {
        return Err(mismatch(format!(
            "image array has dims {:?}, expected 3 (n, rows, cols)",
            images.dims
        )));
    };
    let [m] = labels.dims[..] else {
        return Err(mismatch(format!(
            "label array has dims {:?}, expected 1",
            labels.dims
        )));
    };
    if n != m {
        return Err(mismatch(format!("{n} images but {m} labels")));
    }
    let pixels = images.data.iter().map(|&b| f32::from(b) / 255.0).collect();
    let labels = labels.data.iter().map(|&b| usize::from(b)).collect();
    ImageSet::new(what, (1, h, w), num_classes, pixels, labels)
}

/// Loads an image/label pair of IDX files (gzipped or raw) as a grey [`ImageSet`].
pub fn load_idx_image_set(images: &Path, labels: &Path, num_classes: usize) -> Result<ImageSet> {
    let imgs = read_idx(images)?;
    let labs = read_idx(labels)?;
    idx_image_set(imgs, labs, num_classes, &images.display().to_string())
}

/// Loads one split of an MNIST-layout directory: `{train,t10k}-images-idx3-ubyte` and
/// `{train,t10k}-labels-idx1-ubyte`, each gzipped (`.gz`, preferred) or raw; 10 classes.
pub fn load_mnist_dir(dir: &Path, split: ImageSplit) -> Result<ImageSet> {
    load_mnist_dir_with_hint(dir, split, PATH_HINT)
}

fn load_mnist_dir_with_hint(dir: &Path, split: ImageSplit, hint: &str) -> Result<ImageSet> {
    let prefix = match split {
        ImageSplit::Train => "train",
        ImageSplit::Test => "t10k",
    };
    let images = pick(dir, &format!("{prefix}-images-idx3-ubyte"));
    let labels = pick(dir, &format!("{prefix}-labels-idx1-ubyte"));
    let imgs = read_idx_with_hint(&images, hint)?;
    let labs = read_idx_with_hint(&labels, hint)?;
    idx_image_set(imgs, labs, MNIST_CLASSES, &images.display().to_string())
}

/// `dir/name.gz` when it exists, else `dir/name`.
fn pick(dir: &Path, name: &str) -> PathBuf {
    let gz = dir.join(format!("{name}.gz"));
    if gz.exists() {
        gz
    } else {
        dir.join(name)
    }
}

/// Fashion-MNIST from `data_dir()/fashion-mnist` (60,000 train / 10,000 test, 28x28 grey, 10 classes).
pub fn fashion_mnist(split: ImageSplit) -> Result<ImageSet> {
    load_mnist_dir_with_hint(
        &data_dir().join("fashion-mnist"),
        split,
        &fetch_hint("fashion-mnist"),
    )
}

/// MNIST from `data_dir()/mnist` (60,000 train / 10,000 test, 28x28 grey, 10 classes).
pub fn mnist(split: ImageSplit) -> Result<ImageSet> {
    load_mnist_dir_with_hint(&data_dir().join("mnist"), split, &fetch_hint("mnist"))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::testutil::{gzip, TestDir};
    use super::*;

    /// Encodes an unsigned-byte IDX array.
    pub(crate) fn idx_bytes(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut out = vec![0, 0, TYPE_U8, dims.len() as u8];
        for d in dims {
            out.extend_from_slice(&d.to_be_bytes());
        }
        out.extend_from_slice(data);
        out
    }

    fn write_mnist(dir: &TestDir, prefix: &str, n: u32, labels: &[u8], gz: bool) {
        let pixels: Vec<u8> = (0..n * 4 * 3).map(|i| (i * 7 % 256) as u8).collect();
        let imgs = idx_bytes(&[n, 4, 3], &pixels);
        let labs = idx_bytes(&[labels.len() as u32], labels);
        let (imgs, labs, ext) = if gz {
            (gzip(&imgs), gzip(&labs), ".gz")
        } else {
            (imgs, labs, "")
        };
        dir.write(&format!("{prefix}-images-idx3-ubyte{ext}"), &imgs);
        dir.write(&format!("{prefix}-labels-idx1-ubyte{ext}"), &labs);
    }

    #[test]
    fn parses_raw_and_gzipped() {
        let raw = idx_bytes(&[2, 3], &[1, 2, 3, 4, 5, 6]);
        let a = parse_idx(&raw).unwrap();
        assert_eq!(
            a,
            IdxArray {
                dims: vec![2, 3],
                data: vec![1, 2, 3, 4, 5, 6]
            }
        );
        assert_eq!(parse_idx(&gzip(&raw)).unwrap(), a);
    }

    #[test]
    fn loads_an_mnist_directory_gz_and_raw() {
        for gz in [true, false] {
            let dir = TestDir::new("mnist");
            write_mnist(&dir, "train", 3, &[0, 9, 4], gz);
            write_mnist(&dir, "t10k", 2, &[1, 1], gz);
            let train = load_mnist_dir(dir.path(), ImageSplit::Train).unwrap();
            assert_eq!(
                (train.len(), train.channels(), train.height(), train.width()),
                (3, 1, 4, 3)
            );
            assert_eq!(train.labels(), &[0, 9, 4]);
            assert_eq!(train.image(0).unwrap()[1], 7.0 / 255.0);
            assert!(train.pixels().iter().all(|&p| (0.0..=1.0).contains(&p)));
            let test = load_mnist_dir(dir.path(), ImageSplit::Test).unwrap();
            assert_eq!(test.class_counts(), vec![0, 2, 0, 0, 0, 0, 0, 0, 0, 0]);
        }
    }

    #[test]
    fn wrong_magic() {
        let mut bytes = idx_bytes(&[2], &[1, 2]);
        bytes[0] = 1;
        assert!(matches!(parse_idx(&bytes), Err(DataError::BadMagic { .. })));
        bytes = idx_bytes(&[2], &[1, 2]);
        bytes[2] = 0x42;
        assert!(matches!(parse_idx(&bytes), Err(DataError::BadMagic { .. })));
        bytes[2] = 0x0D; // valid IDX, but floats
        assert!(matches!(parse_idx(&bytes), Err(DataError::Unsupported { .. })));
        assert!(matches!(
            parse_idx(b"PK\x03\x04rest"),
            Err(DataError::BadMagic { .. })
        ));
    }

    #[test]
    fn truncated_inputs() {
        let bytes = idx_bytes(&[2, 3], &[1, 2, 3, 4, 5, 6]);
        for cut in [0, 3, 6, 11, 13] {
            let err = parse_idx(&bytes[..cut]).unwrap_err();
            assert!(matches!(err, DataError::Truncated { .. }), "cut {cut}: {err}");
        }
        let gz = gzip(&bytes);
        assert!(parse_idx(&gz[..gz.len() - 6]).is_err());
    }

    #[test]
    fn trailing_bytes_and_shape_mismatches() {
        let bytes = idx_bytes(&[2], &[1, 2, 3]);
        assert!(matches!(
            parse_idx(&bytes),
            Err(DataError::DimensionMismatch { .. })
        ));
        let imgs = parse_idx(&idx_bytes(&[2, 1, 1], &[0, 255])).unwrap();
        let labs = parse_idx(&idx_bytes(&[3], &[0, 1, 2])).unwrap();
        assert!(matches!(
            idx_image_set(imgs.clone(), labs, 10, "t"),
            Err(DataError::DimensionMismatch { .. })
        ));
        let flat = parse_idx(&idx_bytes(&[2], &[0, 255])).unwrap();
        let labs = parse_idx(&idx_bytes(&[2], &[0, 1])).unwrap();
        assert!(matches!(
            idx_image_set(flat, labs.clone(), 10, "t"),
            Err(DataError::DimensionMismatch { .. })
        ));
        let bad_labels = parse_idx(&idx_bytes(&[2], &[0, 10])).unwrap();
        assert!(matches!(
            idx_image_set(imgs, bad_labels, 10, "t"),
            Err(DataError::LabelOutOfRange { .. })
        ));
    }

    #[test]
    fn missing_directory_mentions_fetch_script() {
        let dir = TestDir::new("mnist-missing");
        let err = load_mnist_dir_with_hint(dir.path(), ImageSplit::Train, &fetch_hint("fashion-mnist"))
            .unwrap_err();
        assert!(matches!(err, DataError::Missing { .. }));
        assert!(
            err.to_string().contains("scripts/fetch_data.sh fashion-mnist"),
            "{err}"
        );
        let err = load_mnist_dir(dir.path(), ImageSplit::Test).unwrap_err();
        assert!(err.to_string().contains("scripts/fetch_data.sh"), "{err}");
    }
}
