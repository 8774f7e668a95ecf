//! f64 plaintext reference forward (being written).
