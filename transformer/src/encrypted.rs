//! Encrypted inference of polynomial models (being written).
