//! Slot layouts and the kernels that move matrices between them, at toy parameters
//! (`Parameters::toy`: N = 2^10 or 2^11, scale 2^40; **insecure**, for tests only).
//!
//! Every kernel is checked twice: the decrypted result equals the f64 reference within [`BOUND`],
//! and the evaluator's operation counts equal the kernel's documented formula exactly.
#![allow(clippy::unwrap_used, reason = "test fixtures fail loudly")]

use ckks::circuits::layout::{
    ColSums, ColumnMajor, Layout, LayoutConversion, Packed, ReplicateRows, Replicated, RowMajor, RowSums,
};
use ckks::circuits::matmul::EncryptedMatrix;
use ckks::params::Parameters;
use ckks::ring::poly::galois_element_for_rotation;
use ckks::rlwe::{Encryptor, KeyGenerator, SecretKey};
use ckks::scheme::evaluator::{
    decrypt_ckks, CkksEncoder, CkksEncryptor, EvaluationKeys, Evaluator, OpCounts,
};
use ckks::Error;
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use rustfft::num_complex::Complex64;
use std::sync::Arc;

/// Maximum absolute error allowed on entries of size about 1 (sums of up to 64 of them included).
/// At scale 2^40 and N = 2^10 the fresh public-key encryption noise is about 2^-25 per slot and
/// dominates: the kernels add only encoding rounding and rescaled key-switching noise, far smaller
/// (measured worst case over these tests: 2^-24.8). 2^-20 (about 1e-6) keeps a margin of about 2^4.8
/// while still failing for any misplaced slot, lost scale or unrescaled key-switching noise.
const BOUND: f64 = 1.0 / (1u64 << 20) as f64;

struct Ctx {
    params: Arc<Parameters>,
    enc: CkksEncoder,
    kg: KeyGenerator,
    sk: SecretKey,
    encryptor: CkksEncryptor,
    rng: ChaCha20Rng,
}

fn ctx(log_n: u32, seed: u64) -> Ctx {
    let params = Parameters::toy(log_n, 3).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let enc = CkksEncoder::new(&params).unwrap();
    let kg = KeyGenerator::new(&params);
    let sk = kg.gen_secret_key(&mut rng).unwrap();
    let pk = kg.gen_public_key(&sk, &mut rng).unwrap();
    Ctx {
        params,
        enc,
        kg,
        sk,
        encryptor: CkksEncryptor(Encryptor::Public(pk)),
        rng,
    }
}

impl Ctx {
    fn evaluator(&mut self, rotations: &[i64]) -> Evaluator {
        let mut keys = EvaluationKeys::default();
        for &k in rotations {
            let g = galois_element_for_rotation(k, self.params.n());
            keys.galois
                .insert(g, self.kg.gen_galois_key(&self.sk, g, &mut self.rng).unwrap());
        }
        Evaluator::new(&self.params, Arc::new(keys))
    }

    fn random(&mut self, rows: usize, cols: usize) -> Vec<Vec<f64>> {
        (0..rows)
            .map(|_| (0..cols).map(|_| self.rng.random_range(-1.0..1.0)).collect())
            .collect()
    }

    fn encrypt(&mut self, layout: RowMajor, m: &[Vec<f64>]) -> EncryptedMatrix {
        let top = self.params.max_level();
        EncryptedMatrix::encrypt(
            &self.params,
            &self.enc,
            &self.encryptor,
            layout,
            m,
            top,
            &mut self.rng,
        )
        .unwrap()
    }

    fn decrypt(&self, ct: &ckks::scheme::evaluator::Ciphertext) -> Vec<Complex64> {
        self.enc.decode(&decrypt_ckks(&self.sk, ct).unwrap()).unwrap()
    }
}

fn transpose(m: &[Vec<f64>]) -> Vec<Vec<f64>> {
    (0..m[0].len())
        .map(|j| m.iter().map(|r| r[j]).collect())
        .collect()
}

fn max_err(a: &[Vec<f64>], b: &[Vec<f64>]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .flat_map(|(x, y)| {
            assert_eq!(x.len(), y.len());
            x.iter().zip(y).map(|(p, q)| (p - q).abs())
        })
        .fold(0.0, f64::max)
}

/// The largest value in the slots a layout leaves as padding (they must stay zero).
fn padding_max(v: &[Complex64], used: impl Fn(usize) -> bool) -> f64 {
    v.iter()
        .enumerate()
        .filter(|&(i, _)| !used(i))
        .map(|(_, z)| z.norm())
        .fold(0.0, f64::max)
}

/// Counts the distinct diagonals `(src - dst) mod slots` of a row-to-column move (the module doc's
/// formula: entry `(t, j)` travels by `t (S - 1) - j (col_stride - 1)`).
fn row_to_column_diagonals(from: RowMajor, to: ColumnMajor) -> usize {
    let s = from.slots as i64;
    let mut d: Vec<i64> = (0..from.rows as i64)
        .flat_map(|t| {
            (0..from.cols as i64)
                .map(move |j| (t * (from.stride as i64 - 1) - j * (to.col_stride as i64 - 1)).rem_euclid(s))
        })
        .collect();
    d.sort_unstable();
    d.dedup();
    d.len()
}

/// The counts a [`LayoutConversion`] must produce, from its BSGS cost (module doc).
fn conversion_formula(c: &LayoutConversion) -> OpCounts {
    let cost = c.cost();
    OpCounts {
        key_switches: cost.rotations,
        decompositions: usize::from(cost.hoisted_rotations > 0) + cost.rotations - cost.hoisted_rotations,
        ct_mults: 0,
        pt_mults: c.diagonals(),
        rescales: 1,
    }
}

/// Runs `kernel` with fresh counts and checks them against `expected`.
fn counted<T>(eval: &Evaluator, expected: OpCounts, kernel: impl FnOnce() -> T) -> T {
    eval.reset_op_counts();
    let out = kernel();
    assert_eq!(eval.op_counts(), expected);
    out
}

/// Row-major -> column-major -> row-major, and the transpose, of a `rows x cols` matrix: values,
/// padding, levels and counts.
fn conversions(log_n: u32, rows: usize, cols: usize, stride: Option<usize>) {
    let mut c = ctx(log_n, (rows * 100 + cols) as u64);
    let slots = c.params.max_slots();
    let top = c.params.max_level();
    let rm = RowMajor::new(rows, cols, stride, slots).unwrap();
    let cm = ColumnMajor::new(rows, cols, None, slots).unwrap();
    let to_col = LayoutConversion::row_to_column(&c.params, &c.enc, rm, cm, top).unwrap();
    let to_row = LayoutConversion::column_to_row(&c.params, &c.enc, cm, rm, top - 1).unwrap();
    let tr = LayoutConversion::transpose(&c.params, &c.enc, rm, None, top).unwrap();
    // X^T: `cols` rows of `rows` values, at the default stride.
    let rt = RowMajor::new(cols, rows, None, slots).unwrap();
    assert_eq!(tr.output(), Layout::RowMajor(rt));
    assert_eq!(to_col.diagonals(), row_to_column_diagonals(rm, cm));
    for k in [&to_col, &to_row, &tr] {
        assert_eq!(k.op_counts(), conversion_formula(k));
        assert_eq!(k.cost().plaintext_mults, k.diagonals());
        assert_eq!(k.cost().levels, 1);
    }
    let mut rots: Vec<i64> = [&to_col, &to_row, &tr]
        .iter()
        .flat_map(|k| k.rotations_needed())
        .collect();
    rots.sort_unstable();
    rots.dedup();
    let eval = c.evaluator(&rots);

    let x = c.random(rows, cols);
    let px = Packed::from_matrix(&c.encrypt(rm, &x)).unwrap();

    let col = counted(&eval, to_col.op_counts(), || to_col.apply(&eval, &px).unwrap());
    assert_eq!(col.layout, Layout::ColumnMajor(cm));
    assert_eq!(col.ct.level(), top - 1);
    let v = c.decrypt(&col.ct);
    let err_col = max_err(&cm.unpack(&v).unwrap(), &x);
    let pad_col = padding_max(&v, |i| i % cm.col_stride < rows && i / cm.col_stride < cols);

    let back = counted(&eval, to_row.op_counts(), || to_row.apply(&eval, &col).unwrap());
    assert_eq!(back.layout, Layout::RowMajor(rm));
    assert_eq!(back.ct.level(), top - 2);
    let v = c.decrypt(&back.ct);
    let err_back = max_err(&back.layout.unpack(&v).unwrap(), &x);

    let t = counted(&eval, tr.op_counts(), || tr.apply(&eval, &px).unwrap());
    let v = c.decrypt(&t.ct);
    let err_t = max_err(&t.layout.unpack(&v).unwrap(), &transpose(&x));
    let pad_t = padding_max(&v, |i| i % rt.stride < rt.cols && i / rt.stride < rt.rows);

    eprintln!(
        "{rows}x{cols} (stride {}, {slots} slots): to column 2^{:.1} (padding 2^{:.1}), back 2^{:.1}, \
         transpose 2^{:.1} (padding 2^{:.1}); diagonals {}, BSGS {:?} vs plain {} key switches; \
         transpose {} diagonals, {:?}",
        rm.stride,
        err_col.log2(),
        pad_col.log2(),
        err_back.log2(),
        err_t.log2(),
        pad_t.log2(),
        to_col.diagonals(),
        to_col.op_counts(),
        to_col.plain_diagonal_key_switches(),
        tr.diagonals(),
        tr.op_counts(),
    );
    for e in [err_col, pad_col, err_back, err_t, pad_t] {
        assert!(e < BOUND, "{rows}x{cols}: error {e}");
    }
}

#[test]
fn convert_16x32() {
    conversions(10, 16, 32, None);
}

#[test]
fn convert_16x64_stride_64() {
    // 16 rows at stride 64 fill 1024 slots: N = 2^11.
    conversions(11, 16, 64, Some(64));
}

#[test]
fn convert_8x16() {
    conversions(10, 8, 16, None);
}

#[test]
fn convert_5x12_not_power_of_two() {
    conversions(10, 5, 12, None);
}

/// The diagonal counts of the module doc: `2n - 1` for an `n x n` move with both strides `n`, and
/// BSGS well below the plain method's one key switch per diagonal.
#[test]
fn diagonal_counts_match_formula() {
    let c = ctx(10, 1);
    let top = c.params.max_level();
    for n in [8usize, 16] {
        let rm = RowMajor::new(n, n, None, c.params.max_slots()).unwrap();
        let cm = ColumnMajor::new(n, n, None, c.params.max_slots()).unwrap();
        let k = LayoutConversion::row_to_column(&c.params, &c.enc, rm, cm, top).unwrap();
        assert_eq!(k.diagonals(), 2 * n - 1);
        assert_eq!(k.plain_diagonal_key_switches(), 2 * n - 2);
        // Square transpose: the same slot map.
        let t = LayoutConversion::transpose(&c.params, &c.enc, rm, None, top).unwrap();
        assert_eq!(t.diagonals(), 2 * n - 1);
        assert_eq!(t.cost(), k.cost());
        assert!(
            k.cost().key_switches < k.plain_diagonal_key_switches(),
            "{:?}",
            k.cost()
        );
    }
}

#[test]
fn replicate_rows_matches_f64() {
    let mut c = ctx(10, 2);
    let slots = c.params.max_slots();
    for (rows, cols) in [(16usize, 32usize), (5, 12), (12, 16), (1, 8)] {
        let one = RowMajor::new(1, cols, None, slots).unwrap();
        let k = ReplicateRows::new(one, rows).unwrap();
        let formula = rows.ilog2() as usize + rows.count_ones() as usize - 1;
        assert_eq!(
            k.op_counts(),
            OpCounts {
                key_switches: formula,
                decompositions: formula,
                ..OpCounts::default()
            }
        );
        assert_eq!(k.levels(), 0);
        let eval = c.evaluator(&k.rotations_needed());
        let v = c.random(1, cols);
        let px = Packed::from_matrix(&c.encrypt(one, &v)).unwrap();
        let out = counted(&eval, k.op_counts(), || k.apply(&eval, &px).unwrap());
        assert_eq!(out.ct.level(), px.ct.level());
        let dec = c.decrypt(&out.ct);
        let got = out.layout.unpack(&dec).unwrap();
        let err = max_err(&got, &vec![v[0].clone(); rows]);
        let f = k.output().frame;
        let pad = padding_max(&dec, |i| i % f.stride < cols && i / f.stride < rows);
        eprintln!(
            "replicate 1x{cols} to {rows} rows: {formula} rotations, error 2^{:.1}, padding 2^{:.1}",
            err.log2(),
            pad.log2()
        );
        assert!(err < BOUND && pad < BOUND, "{rows}x{cols}: {err} {pad}");
    }
}

#[test]
fn row_sums_match_f64() {
    let mut c = ctx(10, 3);
    let slots = c.params.max_slots();
    let top = c.params.max_level();
    // (rows, cols, stride, tiles): 16x64 at stride 64 needs two 512-slot tiles.
    for (rows, cols, stride, tiles) in [
        (16usize, 32usize, None, 1usize),
        (5, 12, None, 1),
        (16, 64, Some(64), 2),
    ] {
        let layout = RowMajor::new(rows, cols, stride, slots).unwrap();
        assert_eq!(layout.tiles(), tiles);
        let x = c.random(rows, cols);
        let ex = c.encrypt(layout, &x);
        for replicate in [false, true] {
            let factor = 1.0 / cols as f64;
            let k = RowSums::new(&c.params, &c.enc, layout, top, replicate, factor).unwrap();
            let s = layout.stride.ilog2() as usize;
            let spread = if replicate {
                cols.ilog2() as usize + cols.count_ones() as usize - 1
            } else {
                0
            };
            let per_tile = OpCounts {
                key_switches: s + spread,
                decompositions: s + spread,
                ct_mults: 0,
                pt_mults: 1,
                rescales: 1,
            };
            assert_eq!(k.op_counts(), per_tile * tiles);
            let eval = c.evaluator(&k.rotations_needed());
            let out = counted(&eval, k.op_counts(), || k.apply(&eval, &ex).unwrap());
            assert_eq!(out.layout, k.output());
            assert!(out.tiles.iter().all(|ct| ct.level() == top - 1));
            let dec: Vec<_> = out.tiles.iter().map(|ct| c.decrypt(ct)).collect();
            let got = out.layout.unpack(&dec).unwrap();
            let width = if replicate { cols } else { 1 };
            let expected: Vec<Vec<f64>> = x
                .iter()
                .map(|r| vec![r.iter().sum::<f64>() * factor; width])
                .collect();
            let err = max_err(&got, &expected);
            let per = layout.rows_per_tile();
            let pad = dec
                .iter()
                .enumerate()
                .map(|(tile, v)| {
                    padding_max(v, |i| {
                        i % layout.stride < width && tile * per + i / layout.stride < rows
                    })
                })
                .fold(0.0, f64::max);
            eprintln!(
                "row sums {rows}x{cols} stride {} ({tiles} tile(s), replicate {replicate}): error 2^{:.1}, \
                 padding 2^{:.1}, {:?}",
                layout.stride,
                err.log2(),
                pad.log2(),
                k.op_counts()
            );
            assert!(err < BOUND && pad < BOUND, "{err} {pad}");
        }
    }
}

#[test]
fn col_sums_match_f64() {
    let mut c = ctx(10, 4);
    let slots = c.params.max_slots();
    for (rows, cols, stride) in [(16usize, 32usize, None), (5, 12, None), (16, 64, Some(64))] {
        let layout = RowMajor::new(rows, cols, stride, slots).unwrap();
        let k = ColSums::new(layout).unwrap();
        let r = (slots / layout.stride).ilog2() as usize;
        assert_eq!(
            k.op_counts(),
            OpCounts {
                key_switches: r,
                decompositions: r,
                ..OpCounts::default()
            }
        );
        let eval = c.evaluator(&k.rotations_needed());
        let x = c.random(rows, cols);
        let ex = c.encrypt(layout, &x);
        let out = counted(&eval, k.op_counts(), || k.apply(&eval, &ex).unwrap());
        assert_eq!(out.ct.level(), ex.tiles[0].level());
        let sums: Vec<f64> = (0..cols).map(|j| x.iter().map(|r| r[j]).sum()).collect();
        let copies = k.output().frame.rows;
        assert_eq!(copies, layout.rows_per_tile());
        let got = out.layout.unpack(&c.decrypt(&out.ct)).unwrap();
        let err = max_err(&got, &vec![sums; copies]);
        eprintln!(
            "col sums {rows}x{cols} stride {} ({} tile(s)): {r} rotations, error 2^{:.1}",
            layout.stride,
            layout.tiles(),
            err.log2()
        );
        assert!(err < BOUND, "{err}");
    }
}

#[test]
fn pack_unpack_round_trips() {
    let m = vec![vec![1.0, 2.0, 3.0], vec![4.0, 5.0, 6.0]];
    let cm = ColumnMajor::new(2, 3, None, 8).unwrap();
    let v = cm.pack(&m).unwrap();
    let re: Vec<f64> = v.iter().map(|z| z.re).collect();
    assert_eq!(re, [1.0, 4.0, 2.0, 5.0, 3.0, 6.0, 0.0, 0.0]);
    assert_eq!(cm.unpack(&v).unwrap(), m);
    assert_eq!(Layout::ColumnMajor(cm).unpack(&v).unwrap(), m);

    let rep = Replicated::new(3, 3, None, 16).unwrap();
    let v = rep.pack(&[7.0, 8.0, 9.0]).unwrap();
    let re: Vec<f64> = v.iter().map(|z| z.re).collect();
    assert_eq!(
        re,
        [7.0, 8.0, 9.0, 0.0, 7.0, 8.0, 9.0, 0.0, 7.0, 8.0, 9.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    );
    assert_eq!(rep.unpack(&v).unwrap(), vec![vec![7.0, 8.0, 9.0]; 3]);
}

#[test]
fn layout_errors_are_typed() {
    // Column-major: empty, bad stride, too large for one ciphertext, bad slot count.
    assert!(matches!(
        ColumnMajor::new(0, 4, None, 64),
        Err(Error::OutOfRange { .. })
    ));
    assert!(matches!(
        ColumnMajor::new(5, 4, Some(6), 64),
        Err(Error::OutOfRange { .. })
    ));
    assert!(matches!(
        ColumnMajor::new(5, 4, Some(4), 64),
        Err(Error::OutOfRange { .. })
    ));
    assert!(matches!(
        ColumnMajor::new(16, 64, None, 512),
        Err(Error::InvalidSlots {
            slots: 1024,
            max: 512
        })
    ));
    assert!(matches!(
        ColumnMajor::new(2, 2, None, 12),
        Err(Error::InvalidSlots { .. })
    ));
    let cm = ColumnMajor::new(2, 3, None, 8).unwrap();
    assert!(matches!(
        cm.pack(&[vec![0.0; 3]]),
        Err(Error::LengthMismatch { expected: 2, got: 1 })
    ));
    assert!(matches!(
        cm.pack(&[vec![0.0; 3], vec![0.0; 2]]),
        Err(Error::LengthMismatch { expected: 3, got: 2 })
    ));
    assert!(matches!(
        cm.unpack(&[Complex64::new(0.0, 0.0); 4]),
        Err(Error::LengthMismatch { .. })
    ));
    // Fields set by hand to an invalid layout are refused, not indexed out of range.
    let bad = ColumnMajor { col_stride: 1, ..cm };
    assert!(bad.pack(&[vec![0.0; 3], vec![0.0; 3]]).is_err());

    // Replicated: does not fit one ciphertext; wrong vector length.
    assert!(matches!(
        Replicated::new(20, 32, None, 512),
        Err(Error::InvalidSlots { slots: 640, max: 512 })
    ));
    let rep = Replicated::new(4, 3, None, 16).unwrap();
    assert!(matches!(
        rep.pack(&[1.0; 4]),
        Err(Error::LengthMismatch { expected: 3, got: 4 })
    ));

    // Kernels: shapes that disagree, several tiles, several input rows, bad levels and maps.
    let c = ctx(10, 5);
    let s = c.params.max_slots();
    let top = c.params.max_level();
    let rm = RowMajor::new(16, 32, None, s).unwrap();
    let cm = ColumnMajor::new(16, 16, None, s).unwrap();
    assert!(matches!(
        LayoutConversion::row_to_column(&c.params, &c.enc, rm, cm, top),
        Err(Error::LengthMismatch {
            expected: 32,
            got: 16
        })
    ));
    let tiled = RowMajor::new(16, 64, Some(64), s).unwrap();
    assert!(matches!(
        LayoutConversion::transpose(&c.params, &c.enc, tiled, None, top),
        Err(Error::LengthMismatch { expected: 1, got: 2 })
    ));
    // 16x32 transposes to 32 rows at stride 16 (fits); at stride 32 it would need 1024 slots.
    assert!(LayoutConversion::transpose(&c.params, &c.enc, rm, Some(32), top).is_err());
    assert!(matches!(
        LayoutConversion::transpose(&c.params, &c.enc, rm, None, 0),
        Err(Error::LevelOutOfRange { .. })
    ));
    let l = Layout::RowMajor(rm);
    assert!(matches!(
        LayoutConversion::from_map(&c.params, &c.enc, l, l, &vec![None; s], top),
        Err(Error::OutOfRange { .. })
    ));
    assert!(matches!(
        LayoutConversion::from_map(&c.params, &c.enc, l, l, &[Some(0)], top),
        Err(Error::LengthMismatch { .. })
    ));
    let mut map = vec![None; s];
    map[0] = Some(s);
    assert!(matches!(
        LayoutConversion::from_map(&c.params, &c.enc, l, l, &map, top),
        Err(Error::OutOfRange { .. })
    ));
    assert!(matches!(
        ReplicateRows::new(rm, 4),
        Err(Error::LengthMismatch { expected: 1, got: 16 })
    ));
    let one = RowMajor::new(1, 32, None, s).unwrap();
    assert!(matches!(
        ReplicateRows::new(one, 17),
        Err(Error::InvalidSlots { .. })
    ));
    assert!(ReplicateRows::new(one, 0).is_err());
    assert!(matches!(
        RowSums::new(&c.params, &c.enc, rm, 0, false, 1.0),
        Err(Error::LevelOutOfRange { .. })
    ));
    assert!(matches!(
        RowSums::new(&c.params, &c.enc, rm, top, false, f64::NAN),
        Err(Error::OutOfRange { .. })
    ));
    assert!(ColSums::new(RowMajor { stride: 0, ..rm }).is_err());
}

/// A ciphertext in the wrong layout or at the wrong level is refused by every kernel.
#[test]
fn kernels_check_their_input() {
    let mut c = ctx(10, 6);
    let s = c.params.max_slots();
    let top = c.params.max_level();
    let rm = RowMajor::new(8, 16, None, s).unwrap();
    let other = RowMajor::new(8, 12, Some(16), s).unwrap();
    let x = c.random(8, 12);
    let ex = c.encrypt(other, &x);
    let px = Packed::from_matrix(&ex).unwrap();
    let eval = c.evaluator(&[]);
    let tr = LayoutConversion::transpose(&c.params, &c.enc, rm, None, top).unwrap();
    assert!(matches!(tr.apply(&eval, &px), Err(Error::InvalidSlots { .. })));
    let tr_low = LayoutConversion::transpose(&c.params, &c.enc, other, None, top - 1).unwrap();
    assert!(matches!(
        tr_low.apply(&eval, &px),
        Err(Error::LevelMismatch { .. })
    ));
    let sums = RowSums::new(&c.params, &c.enc, rm, top, false, 1.0).unwrap();
    assert!(matches!(sums.apply(&eval, &ex), Err(Error::InvalidSlots { .. })));
    let rep = ReplicateRows::new(RowMajor::new(1, 16, None, s).unwrap(), 4).unwrap();
    assert!(matches!(rep.apply(&eval, &px), Err(Error::InvalidSlots { .. })));
    // Missing keys are reported, not panicked on.
    let t = LayoutConversion::transpose(&c.params, &c.enc, other, None, top).unwrap();
    assert!(matches!(t.apply(&eval, &px), Err(Error::MissingGaloisKey { .. })));
    // A column-major ciphertext is not a row-major matrix.
    let cm = ColumnMajor::new(8, 12, None, s).unwrap();
    let pc = Packed {
        layout: Layout::ColumnMajor(cm),
        ct: px.ct.clone(),
    };
    assert!(matches!(pc.to_matrix(), Err(Error::OutOfRange { .. })));
    assert_eq!(px.to_matrix().unwrap().layout, other);
    let wide = c.random(16, 64);
    let two = c.encrypt(RowMajor::new(16, 64, Some(64), s).unwrap(), &wide);
    assert!(matches!(
        Packed::from_matrix(&two),
        Err(Error::LengthMismatch { expected: 1, got: 2 })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Random shapes: a layout is built exactly when it fits, and then packing round-trips.
    #[test]
    fn random_shapes_round_trip(
        rows in 1usize..40,
        cols in 1usize..40,
        log_slots in 2u32..11,
        stride_shift in 0u32..3,
        seed in any::<u64>(),
    ) {
        let slots = 1usize << log_slots;
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let m: Vec<Vec<f64>> = (0..rows)
            .map(|_| (0..cols).map(|_| rng.random_range(-1.0..1.0)).collect())
            .collect();

        let cs = rows.next_power_of_two() << stride_shift;
        match ColumnMajor::new(rows, cols, Some(cs), slots) {
            Ok(l) => {
                prop_assert!(cols * cs <= slots);
                prop_assert_eq!(l.unpack(&l.pack(&m).unwrap()).unwrap(), m.clone());
            }
            Err(e) => {
                prop_assert!(cols * cs > slots);
                prop_assert_eq!(e, Error::InvalidSlots { slots: cols * cs, max: slots });
            }
        }

        let rs = cols.next_power_of_two() << stride_shift;
        match Replicated::new(rows, cols, Some(rs), slots) {
            Ok(l) => {
                prop_assert!(rows * rs <= slots);
                let v = l.pack(&m[0]).unwrap();
                prop_assert_eq!(l.unpack(&v).unwrap(), vec![m[0].clone(); rows]);
                // Padding stays zero: exactly rows * cols nonzero-capable slots.
                let used = v.iter().enumerate().filter(|&(i, _)| i % rs < cols && i / rs < rows).count();
                prop_assert_eq!(used, rows * cols);
                prop_assert!(v.iter().enumerate().all(|(i, z)| (i % rs < cols && i / rs < rows) || z.re == 0.0));
            }
            Err(_) => prop_assert!(rs > slots || rows * rs > slots),
        }

        // Row-major (possibly tiled) through the enum when it is one tile.
        if let Ok(l) = RowMajor::new(rows, cols, Some(rs), slots) {
            let tiles = l.pack(&m).unwrap();
            prop_assert_eq!(l.unpack(&tiles).unwrap(), m.clone());
            if let [one] = tiles.as_slice() {
                prop_assert_eq!(Layout::RowMajor(l).unpack(one).unwrap(), m.clone());
            } else {
                prop_assert!(Layout::RowMajor(l).unpack(&tiles[0]).is_err());
            }
        }
    }
}
