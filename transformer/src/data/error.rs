//! The error type of the data loaders.

use std::path::PathBuf;

/// What can go wrong when loading a data set. `what` names the file (or buffer) concerned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// A file or directory the loader needs does not exist; `hint` says how to get it (for the
    /// registry sets: which `scripts/fetch_data.sh` set to run).
    #[error("{}: not found; {hint}", path.display())]
    Missing {
        /// The path that was looked for.
        path: PathBuf,
        /// How to obtain it.
        hint: String,
    },
    /// Any other I/O failure.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path being read.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file does not start with the magic number of its format.
    #[error("{what}: bad magic number {found:#010x}, expected {expected}")]
    BadMagic {
        /// The file or buffer.
        what: String,
        /// The first four bytes, big-endian.
        found: u32,
        /// What was expected.
        expected: String,
    },
    /// The data ends before its header says it should.
    #[error("{what}: truncated: {detail}")]
    Truncated {
        /// The file or buffer.
        what: String,
        /// What was missing.
        detail: String,
    },
    /// Shapes disagree (header vs. payload, images vs. labels, row length, image size ...).
    #[error("{what}: dimension mismatch: {detail}")]
    DimensionMismatch {
        /// The file or buffer.
        what: String,
        /// Which dimensions disagree.
        detail: String,
    },
    /// A label is outside `0..classes`.
    #[error("{what}: label {label} of item {index} is outside 0..{classes}")]
    LabelOutOfRange {
        /// The file or buffer.
        what: String,
        /// Index of the offending item.
        index: usize,
        /// The label found.
        label: usize,
        /// Number of classes.
        classes: usize,
    },
    /// A text format could not be parsed (`line` is 1-based; 0 when not line-oriented).
    #[error("{what}: line {line}: {detail}")]
    Parse {
        /// The file or buffer.
        what: String,
        /// 1-based line number, 0 when unknown.
        line: usize,
        /// What was wrong.
        detail: String,
    },
    /// A JSON document did not have the expected shape.
    #[error("{what}: JSON: {source}")]
    Json {
        /// The file or buffer.
        what: String,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },
    /// Compressed data is corrupt.
    #[error("{what}: corrupt: {detail}")]
    Corrupt {
        /// The file or buffer.
        what: String,
        /// What was wrong.
        detail: String,
    },
    /// An image could not be decoded.
    #[error("{what}: cannot decode image: {detail}")]
    Decode {
        /// The image file.
        what: String,
        /// The decoder's message.
        detail: String,
    },
    /// Valid data in a variant this loader does not handle (e.g. an IDX file of floats).
    #[error("{what}: unsupported: {detail}")]
    Unsupported {
        /// The file or buffer.
        what: String,
        /// What is not supported.
        detail: String,
    },
    /// The input holds no items at all.
    #[error("{what}: no data")]
    Empty {
        /// The file, buffer or directory.
        what: String,
    },
}
