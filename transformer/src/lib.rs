//! Polynomial (HE-friendly) transformers, after Zimerman et al., ICML 2024 (arXiv 2311.08610).
//!
//! Nothing lives here yet: training, conversion and encrypted inference are tracked as open issues.
