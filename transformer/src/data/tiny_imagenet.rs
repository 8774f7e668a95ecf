//! Tiny-ImageNet (`tiny-imagenet-200`) folder layout, with JPEG decoding by the `image` crate
//! (built with its `jpeg` feature only).
//!
//! ```text
//! <root>/wnids.txt                          one WordNet id per line; line order = class index
//! <root>/train/<wnid>/images/*.JPEG         500 training images per class, 64x64
//! <root>/val/val_annotations.txt            "<file>\t<wnid>\t<x0>\t<y0>\t<x1>\t<y1>" per line
//! <root>/val/images/*.JPEG                  10,000 validation images
//! ```
//!
//! The `test/` folder has no labels, so [`ImageSplit::Test`] loads `val/`, the held-out set that
//! published Tiny-ImageNet numbers use. Without `wnids.txt`, the classes are the sorted folder
//! names under `train/`. No package registry carries this set: pass the directory you downloaded.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::{external_hint, list_files, read_bytes, read_text, DataError, ImageSet, ImageSplit, Result};

/// Images and labels of one split, before decoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TinyImageNetIndex {
    /// WordNet ids; the position of an id is its class index.
    pub wnids: Vec<String>,
    /// Image files with their class index, in a deterministic order (class by class for `train`,
    /// annotation order for `val`).
    pub entries: Vec<(PathBuf, usize)>,
}

fn hint() -> String {
    external_hint("Tiny-ImageNet")
}

/// The class list: `wnids.txt`, or the sorted folder names under `train/`.
fn read_wnids(root: &Path) -> Result<Vec<String>> {
    let listed = root.join("wnids.txt");
    let wnids: Vec<String> = if listed.is_file() {
        read_text(&listed, &hint())?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect()
    } else {
        let train = root.join("train");
        let entries = std::fs::read_dir(&train).map_err(|e| super::io_error(&train, e, &hint()))?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| super::io_error(&train, e, &hint()))?;
            if entry.path().is_dir() {
                names.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        names.sort();
        names
    };
    if wnids.is_empty() {
        return Err(DataError::Empty {
            what: format!("{} (class list)", root.display()),
        });
    }
    let mut seen = HashMap::new();
    for (i, w) in wnids.iter().enumerate() {
        if let Some(first) = seen.insert(w.as_str(), i) {
            return Err(DataError::Parse {
                what: listed.display().to_string(),
                line: i + 1,
                detail: format!("class {w} repeats line {}", first + 1),
            });
        }
    }
    Ok(wnids)
}

/// Whether a file name has a JPEG extension (any case).
fn is_jpeg(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("jpeg") || e.eq_ignore_ascii_case("jpg"))
}

/// Lists the images and labels of a split without decoding them.
pub fn index_tiny_imagenet(root: &Path, split: ImageSplit) -> Result<TinyImageNetIndex> {
    if !root.is_dir() {
        return Err(DataError::Missing {
            path: root.to_path_buf(),
            hint: hint(),
        });
    }
    let wnids = read_wnids(root)?;
    let mut entries = Vec::new();
    match split {
        ImageSplit::Train => {
            for (label, wnid) in wnids.iter().enumerate() {
                let dir = root.join("train").join(wnid).join("images");
                let files = list_files(&dir, "", &hint())?;
                entries.extend(files.into_iter().filter(|p| is_jpeg(p)).map(|p| (p, label)));
            }
        }
        ImageSplit::Test => {
            let class_of: HashMap<&str, usize> =
                wnids.iter().enumerate().map(|(i, w)| (w.as_str(), i)).collect();
            let ann = root.join("val").join("val_annotations.txt");
            let text = read_text(&ann, &hint())?;
            for (i, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                let parse_err = |detail: String| DataError::Parse {
                    what: ann.display().to_string(),
                    line: i + 1,
                    detail,
                };
                let mut fields = line.split('\t');
                let (Some(file), Some(wnid)) = (fields.next(), fields.next()) else {
                    return Err(parse_err("expected <file>\\t<wnid>\\t...".to_string()));
                };
                let file = file.trim();
                if file.is_empty() || file.contains('/') || file.contains('\\') || file.contains("..") {
                    return Err(parse_err(format!("bad image file name {file:?}")));
                }
                let label = *class_of
                    .get(wnid.trim())
                    .ok_or_else(|| parse_err(format!("class {wnid:?} is not in the class list")))?;
                entries.push((root.join("val").join("images").join(file), label));
            }
        }
    }
    if entries.is_empty() {
        return Err(DataError::Empty {
            what: root.display().to_string(),
        });
    }
    Ok(TinyImageNetIndex { wnids, entries })
}

/// Decodes JPEG bytes to RGB (grey images are expanded), returning `(height, width, pixels)` with
/// pixels channel-major in `[0, 1]`.
pub fn decode_jpeg_rgb(bytes: &[u8]) -> Result<(usize, usize, Vec<f32>)> {
    decode_named(bytes, "JPEG buffer")
}

fn decode_named(bytes: &[u8], what: &str) -> Result<(usize, usize, Vec<f32>)> {
    let img = image::load_from_memory_with_format(bytes, image::ImageFormat::Jpeg)
        .map_err(|e| DataError::Decode {
            what: what.to_string(),
            detail: e.to_string(),
        })?
        .to_rgb8();
    let (w, h) = (img.width() as usize, img.height() as usize);
    let plane = w * h;
    let raw = img.as_raw();
    let mut chw = vec![0.0f32; 3 * plane];
    for (p, px) in raw.chunks_exact(3).enumerate() {
        for (c, &v) in px.iter().enumerate() {
            chw[c * plane + p] = f32::from(v) / 255.0;
        }
    }
    Ok((h, w, chw))
}

/// Loads and decodes a split (at most `per_class` images of each class when given, in index order)
/// into a 3-channel [`ImageSet`] with one class per `wnid`. Every image must have the size of the
/// first (64x64 in Tiny-ImageNet).
pub fn load_tiny_imagenet(root: &Path, split: ImageSplit, per_class: Option<usize>) -> Result<ImageSet> {
    let index = index_tiny_imagenet(root, split)?;
    let classes = index.wnids.len();
    let mut taken = vec![0usize; classes];
    let mut shape: Option<(usize, usize)> = None;
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for (path, label) in &index.entries {
        let Some(count) = taken.get_mut(*label) else {
            continue;
        };
        if per_class.is_some_and(|k| *count >= k) {
            continue;
        }
        *count += 1;
        let what = path.display().to_string();
        let (h, w, img) = decode_named(&read_bytes(path, &hint())?, &what)?;
        match shape {
            None => shape = Some((h, w)),
            Some((h0, w0)) if (h0, w0) != (h, w) => {
                return Err(DataError::DimensionMismatch {
                    what,
                    detail: format!("image is {h}x{w}, the first image was {h0}x{w0}"),
                })
            }
            Some(_) => {}
        }
        pixels.extend(img);
        labels.push(*label);
    }
    let (h, w) = shape.ok_or_else(|| DataError::Empty {
        what: root.display().to_string(),
    })?;
    ImageSet::new(&root.display().to_string(), (3, h, w), classes, pixels, labels)
}

#[cfg(test)]
mod tests {
    use super::super::testutil::TestDir;
    use super::*;

    fn jpeg(w: u32, h: u32, rgb: [u8; 3]) -> Vec<u8> {
        let data: Vec<u8> = (0..w * h).flat_map(|_| rgb).collect();
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 95)
            .encode(&data, w, h, image::ExtendedColorType::Rgb8)
            .unwrap();
        out
    }

    fn tree(with_wnids: bool) -> TestDir {
        let dir = TestDir::new("tiny");
        if with_wnids {
            dir.write("wnids.txt", b"n02\nn01\n");
        }
        for (wnid, color) in [("n01", [250, 10, 10]), ("n02", [10, 10, 250])] {
            for i in 0..3 {
                dir.write(&format!("train/{wnid}/images/{wnid}_{i}.JPEG"), jpeg(8, 8, color));
            }
            dir.write(&format!("train/{wnid}/{wnid}_boxes.txt"), b"ignored");
        }
        dir.write("val/images/val_0.JPEG", jpeg(8, 8, [10, 10, 250]));
        dir.write("val/images/val_1.JPEG", jpeg(8, 8, [250, 10, 10]));
        dir.write(
            "val/val_annotations.txt",
            b"val_0.JPEG\tn02\t0\t0\t7\t7\nval_1.JPEG\tn01\t1\t1\t6\t6\n",
        );
        dir
    }

    #[test]
    fn indexes_train_and_val() {
        let dir = tree(true);
        let train = index_tiny_imagenet(dir.path(), ImageSplit::Train).unwrap();
        assert_eq!(train.wnids, vec!["n02", "n01"]);
        assert_eq!(train.entries.len(), 6);
        assert_eq!(
            train.entries.iter().map(|e| e.1).collect::<Vec<_>>(),
            vec![0, 0, 0, 1, 1, 1]
        );
        let val = index_tiny_imagenet(dir.path(), ImageSplit::Test).unwrap();
        assert_eq!(val.entries.iter().map(|e| e.1).collect::<Vec<_>>(), vec![0, 1]);
        // without wnids.txt the classes are the sorted train folders
        let dir = tree(false);
        assert_eq!(
            index_tiny_imagenet(dir.path(), ImageSplit::Train).unwrap().wnids,
            vec!["n01", "n02"]
        );
    }

    #[test]
    fn decodes_images() {
        let dir = tree(true);
        let set = load_tiny_imagenet(dir.path(), ImageSplit::Train, Some(2)).unwrap();
        assert_eq!(
            (set.len(), set.channels(), set.height(), set.width()),
            (4, 3, 8, 8)
        );
        assert_eq!(set.class_counts(), vec![2, 2]);
        // class 0 is n02, blue: blue plane bright, red plane dark
        let img = set.image(0).unwrap();
        assert!(img[2 * 64] > 0.9 && img[0] < 0.1, "{} {}", img[128], img[0]);
        let val = load_tiny_imagenet(dir.path(), ImageSplit::Test, None).unwrap();
        assert_eq!(val.labels(), &[0, 1]);
    }

    #[test]
    fn malformed_trees() {
        let dir = tree(true);
        dir.write("val/val_annotations.txt", b"val_0.JPEG\tn99\t0\t0\t7\t7\n");
        assert!(matches!(
            index_tiny_imagenet(dir.path(), ImageSplit::Test),
            Err(DataError::Parse { line: 1, .. })
        ));
        dir.write("val/val_annotations.txt", b"justonefield\n");
        assert!(matches!(
            index_tiny_imagenet(dir.path(), ImageSplit::Test),
            Err(DataError::Parse { .. })
        ));
        dir.write("val/val_annotations.txt", b"../../etc/passwd\tn01\n");
        assert!(matches!(
            index_tiny_imagenet(dir.path(), ImageSplit::Test),
            Err(DataError::Parse { .. })
        ));
        dir.write("val/val_annotations.txt", b"val_9.JPEG\tn01\n");
        assert!(matches!(
            load_tiny_imagenet(dir.path(), ImageSplit::Test, None),
            Err(DataError::Missing { .. })
        ));

        dir.write("train/n01/images/n01_0.JPEG", b"not a jpeg");
        assert!(matches!(
            load_tiny_imagenet(dir.path(), ImageSplit::Train, None),
            Err(DataError::Decode { .. })
        ));
        let good = jpeg(8, 8, [1, 2, 3]);
        dir.write("train/n01/images/n01_0.JPEG", &good[..good.len() / 2]);
        assert!(load_tiny_imagenet(dir.path(), ImageSplit::Train, None).is_err());
        dir.write("train/n01/images/n01_0.JPEG", jpeg(16, 8, [1, 2, 3]));
        assert!(matches!(
            load_tiny_imagenet(dir.path(), ImageSplit::Train, None),
            Err(DataError::DimensionMismatch { .. })
        ));

        dir.write("wnids.txt", b"n01\nn01\n");
        assert!(matches!(
            index_tiny_imagenet(dir.path(), ImageSplit::Train),
            Err(DataError::Parse { line: 2, .. })
        ));
        dir.write("wnids.txt", b"n01\nn03\n");
        assert!(matches!(
            index_tiny_imagenet(dir.path(), ImageSplit::Train),
            Err(DataError::Missing { .. })
        ));
        let err = index_tiny_imagenet(&dir.path().join("absent"), ImageSplit::Train).unwrap_err();
        assert!(matches!(err, DataError::Missing { .. }) && err.to_string().contains("no package registry"));
    }
}
