//! How a `rows x cols` activation matrix lies in the slots of a ciphertext, and the kernels that move
//! it from one placement to another.
//!
//! **Layouts** (all over `slots` slots, a power of two; padding slots hold zeros):
//! - [`RowMajor`] (from [`crate::circuits::matmul`]): entry `(t, j)` at `t * stride + j`, tiled over
//!   several ciphertexts when the rows do not fit one.
//! - [`ColumnMajor`]: entry `(t, j)` at `j * col_stride + t`, one ciphertext. It is the row-major
//!   placement of `X^T` with stride `col_stride`.
//! - [`Replicated`]: one row vector `v` of `cols` values repeated in the first `rows` rows of a
//!   row-major frame (slot `t * stride + j` holds `v[j]`), ready to be multiplied slot-wise with a
//!   row-major matrix.
//!
//! A ciphertext travels with its layout in [`Packed`], and every kernel checks it.
//!
//! **Kernels and their costs** (`OpCounts` as counted by the evaluator; `R` rows, `C` columns,
//! `S` the row stride, `popcount` the number of set bits):
//! - [`LayoutConversion`]: any slot map "output slot `i` <- input slot `m(i)`" (unmapped slots get
//!   zero) is the 0/1 matrix whose diagonal `k` holds a 1 at `i` when `m(i) = i + k mod slots`. It is
//!   evaluated by the BSGS diagonal method of [`LinearTransform`]: one level, one rescale, one
//!   plaintext product per nonzero diagonal, and the rotations of [`LinearTransform::cost`] (baby
//!   steps hoisted under one decomposition, one decomposition per giant step). Entry `(t, j)` of a
//!   row-to-column move travels by `t (S - 1) - j (col_stride - 1)`, so there are at most `R C`
//!   diagonals (`2n - 1` for an `n x n` matrix with both strides `n`); the plain diagonal method
//!   would pay one key switch per nonzero diagonal but the main one.
//! - [`ReplicateRows`]: row 0 to `R` copies by doubling, `floor(log2 R) + popcount(R) - 1`
//!   rotations, no level, no product (non-power-of-two `R` costs one rotation per extra set bit,
//!   and the rows beyond `R` stay zero).
//! - [`RowSums`]: `log2 S` rotate-and-adds put each row's sum in its column 0, a mask (one plaintext
//!   product, one level) clears the partial sums elsewhere; optionally the sum is then spread over
//!   the `C` columns with `floor(log2 C) + popcount(C) - 1` more rotations. Per tile.
//! - [`ColSums`]: the tiles are added, then `log2(slots / S)` rotate-and-adds by whole rows sum the
//!   rows cyclically, which leaves the column sums replicated in every row: no level, no mask.

pub use crate::circuits::matmul::RowMajor;

use crate::circuits::lintrans::{LinearTransform, LinearTransformCost};
use crate::circuits::matmul::EncryptedMatrix;
use crate::error::{Error, Result};
use crate::params::Parameters;
use crate::scheme::evaluator::{Ciphertext, CkksEncoder, Evaluator, OpCounts, Plaintext};
use rustfft::num_complex::Complex64;
use std::collections::BTreeMap;
use std::sync::Arc;

fn zero() -> Complex64 {
    Complex64::new(0.0, 0.0)
}

/// Checks `m` is `rows x cols`.
fn check_shape(m: &[Vec<f64>], rows: usize, cols: usize) -> Result<()> {
    if m.len() != rows {
        return Err(Error::LengthMismatch {
            expected: rows,
            got: m.len(),
        });
    }
    if let Some(r) = m.iter().find(|r| r.len() != cols) {
        return Err(Error::LengthMismatch {
            expected: cols,
            got: r.len(),
        });
    }
    Ok(())
}

fn check_len(v: &[Complex64], slots: usize) -> Result<()> {
    if v.len() != slots {
        return Err(Error::LengthMismatch {
            expected: slots,
            got: v.len(),
        });
    }
    Ok(())
}

/// Column-major packing of a `rows x cols` matrix in one ciphertext: entry `(t, j)` at slot
/// `j * col_stride + t`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ColumnMajor {
    /// Number of rows (tokens).
    pub rows: usize,
    /// Number of columns (width).
    pub cols: usize,
    /// Slots between consecutive columns (a power of two, at least `rows`).
    pub col_stride: usize,
    /// Slots per ciphertext (a power of two, at least `cols * col_stride`).
    pub slots: usize,
}

impl ColumnMajor {
    /// A layout; `col_stride` defaults to the next power of two of `rows`.
    ///
    /// # Errors
    /// [`Error::OutOfRange`] for an empty shape or a column stride that is not a power of two at
    /// least `rows`; [`Error::InvalidSlots`] when `slots` is not a power of two or the matrix does
    /// not fit one ciphertext (`slots` is then the number of slots needed).
    pub fn new(rows: usize, cols: usize, col_stride: Option<usize>, slots: usize) -> Result<Self> {
        if rows == 0 || cols == 0 {
            return Err(Error::OutOfRange {
                reason: "a layout needs at least one row and one column",
            });
        }
        let col_stride = col_stride.unwrap_or(rows.next_power_of_two());
        if !col_stride.is_power_of_two() || col_stride < rows {
            return Err(Error::OutOfRange {
                reason: "column stride must be a power of two at least the number of rows",
            });
        }
        let needed = cols.saturating_mul(col_stride);
        if !slots.is_power_of_two() || needed > slots {
            return Err(Error::InvalidSlots {
                slots: needed,
                max: slots,
            });
        }
        Ok(Self {
            rows,
            cols,
            col_stride,
            slots,
        })
    }

    /// Checks the public fields again (they may have been set by hand).
    ///
    /// # Errors
    /// As [`ColumnMajor::new`].
    pub fn validate(&self) -> Result<()> {
        Self::new(self.rows, self.cols, Some(self.col_stride), self.slots).map(|_| ())
    }

    /// The slot of entry `(t, j)`.
    pub fn slot(&self, t: usize, j: usize) -> usize {
        j * self.col_stride + t
    }

    /// The slot vector of `m` (`rows` rows of `cols` values).
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] for a matrix of another shape; as [`ColumnMajor::new`] for fields
    /// set by hand to an invalid layout.
    pub fn pack(&self, m: &[Vec<f64>]) -> Result<Vec<Complex64>> {
        self.validate()?;
        check_shape(m, self.rows, self.cols)?;
        let mut v = vec![zero(); self.slots];
        for (t, row) in m.iter().enumerate() {
            for (j, &x) in row.iter().enumerate() {
                v[self.slot(t, j)] = Complex64::new(x, 0.0);
            }
        }
        Ok(v)
    }

    /// The matrix held by a slot vector (real parts).
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] for a vector of another length; as [`ColumnMajor::new`] for fields
    /// set by hand to an invalid layout.
    pub fn unpack(&self, v: &[Complex64]) -> Result<Vec<Vec<f64>>> {
        self.validate()?;
        check_len(v, self.slots)?;
        Ok((0..self.rows)
            .map(|t| (0..self.cols).map(|j| v[self.slot(t, j)].re).collect())
            .collect())
    }
}

/// One row vector of `cols` values repeated in the first `rows` rows of a row-major frame (one
/// ciphertext): slot `t * stride + j` holds `v[j]` for `t < rows`, the other slots zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Replicated {
    /// The row-major frame: `rows` copies of a `cols`-vector at row stride `stride`.
    pub frame: RowMajor,
}

impl Replicated {
    /// `rows` copies of a `cols`-vector; `stride` defaults to the next power of two of `cols`.
    ///
    /// # Errors
    /// As [`RowMajor::new`]; [`Error::InvalidSlots`] when the copies do not fit one ciphertext
    /// (`slots` is then the number of slots needed).
    pub fn new(rows: usize, cols: usize, stride: Option<usize>, slots: usize) -> Result<Self> {
        let frame = RowMajor::new(rows, cols, stride, slots)?;
        if frame.tiles() != 1 {
            return Err(Error::InvalidSlots {
                slots: rows.saturating_mul(frame.stride),
                max: slots,
            });
        }
        Ok(Self { frame })
    }

    /// Checks the frame again (its fields may have been set by hand).
    ///
    /// # Errors
    /// As [`Replicated::new`].
    pub fn validate(&self) -> Result<()> {
        let f = self.frame;
        Self::new(f.rows, f.cols, Some(f.stride), f.slots).map(|_| ())
    }

    /// The slot vector holding `rows` copies of `v` (`cols` values).
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] for a vector of another length; as [`Replicated::new`] for an
    /// invalid frame.
    pub fn pack(&self, v: &[f64]) -> Result<Vec<Complex64>> {
        self.validate()?;
        let f = &self.frame;
        if v.len() != f.cols {
            return Err(Error::LengthMismatch {
                expected: f.cols,
                got: v.len(),
            });
        }
        let mut out = vec![zero(); f.slots];
        for t in 0..f.rows {
            for (j, &x) in v.iter().enumerate() {
                out[t * f.stride + j] = Complex64::new(x, 0.0);
            }
        }
        Ok(out)
    }

    /// Every copy held by a slot vector (`rows` rows of `cols` values), so that callers can check the
    /// replication as well as the values.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] for a vector of another length; as [`Replicated::new`] for an
    /// invalid frame.
    pub fn unpack(&self, v: &[Complex64]) -> Result<Vec<Vec<f64>>> {
        self.validate()?;
        check_len(v, self.frame.slots)?;
        self.frame.unpack(&[v.to_vec()])
    }
}

/// The layout of one ciphertext (checked metadata).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// Row-major, one tile.
    RowMajor(RowMajor),
    /// Column-major.
    ColumnMajor(ColumnMajor),
    /// A row vector repeated in every row.
    Replicated(Replicated),
}

impl Layout {
    /// Slots per ciphertext.
    pub fn slots(&self) -> usize {
        match self {
            Self::RowMajor(l) => l.slots,
            Self::ColumnMajor(l) => l.slots,
            Self::Replicated(l) => l.frame.slots,
        }
    }

    /// The matrix a slot vector holds (for [`Layout::Replicated`], every copy).
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] for a vector of another length or a row-major layout of several
    /// tiles.
    pub fn unpack(&self, v: &[Complex64]) -> Result<Vec<Vec<f64>>> {
        match self {
            Self::RowMajor(l) => {
                check_row_major(l)?;
                check_len(v, l.slots)?;
                l.unpack(&[v.to_vec()])
            }
            Self::ColumnMajor(l) => l.unpack(v),
            Self::Replicated(l) => l.unpack(v),
        }
    }
}

/// One ciphertext with the layout of its slots.
#[derive(Clone, Debug)]
pub struct Packed {
    /// Where the matrix lies in the slots.
    pub layout: Layout,
    /// The ciphertext.
    pub ct: Ciphertext,
}

impl Packed {
    /// A one-tile encrypted row-major matrix as a packed ciphertext.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] when the matrix has more than one tile.
    pub fn from_matrix(m: &EncryptedMatrix) -> Result<Self> {
        match m.tiles.as_slice() {
            [ct] => Ok(Self {
                layout: Layout::RowMajor(m.layout),
                ct: ct.clone(),
            }),
            tiles => Err(Error::LengthMismatch {
                expected: 1,
                got: tiles.len(),
            }),
        }
    }

    /// The row-major matrix this ciphertext holds: itself, or for a replicated vector its frame (the
    /// matrix with `rows` equal rows), usable by [`crate::circuits::matmul`] kernels.
    ///
    /// # Errors
    /// [`Error::OutOfRange`] for a column-major layout (convert it first).
    pub fn to_matrix(&self) -> Result<EncryptedMatrix> {
        let layout = match self.layout {
            Layout::RowMajor(l) => l,
            Layout::Replicated(l) => l.frame,
            Layout::ColumnMajor(_) => {
                return Err(Error::OutOfRange {
                    reason: "a column-major ciphertext is not a row-major matrix",
                })
            }
        };
        Ok(EncryptedMatrix {
            layout,
            tiles: vec![self.ct.clone()],
        })
    }

    fn check(&self, layout: Layout) -> Result<()> {
        if self.layout != layout || self.ct.slots() != layout.slots() {
            return Err(Error::InvalidSlots {
                slots: self.ct.slots(),
                max: layout.slots(),
            });
        }
        Ok(())
    }
}

/// A slot permutation (or any 0/1 slot map) evaluated as rotations and masks: the BSGS diagonal
/// method on the map's matrix, one level.
#[derive(Debug)]
pub struct LayoutConversion {
    input: Layout,
    output: Layout,
    lt: LinearTransform,
    /// Nonzero diagonals (plaintext products).
    diagonals: usize,
    /// Nonzero diagonals but the main one (key switches of the plain diagonal method).
    off_diagonals: usize,
}

impl LayoutConversion {
    /// The conversion from `input` to `output` that fills output slot `i` with input slot `map[i]`
    /// (zero for `None`), pre-encoded for inputs at `level`.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] when `map` or the layouts disagree on the slot count;
    /// [`Error::OutOfRange`] for a source slot out of range or a map that moves nothing; errors of
    /// [`LinearTransform::new`] (level 0, slots above N/2).
    pub fn from_map(
        params: &Arc<Parameters>,
        encoder: &CkksEncoder,
        input: Layout,
        output: Layout,
        map: &[Option<usize>],
        level: usize,
    ) -> Result<Self> {
        let s = input.slots();
        if output.slots() != s || map.len() != s {
            return Err(Error::LengthMismatch {
                expected: s,
                got: if output.slots() != s {
                    output.slots()
                } else {
                    map.len()
                },
            });
        }
        // Output slot i reads rot_k(z)[i] = z[i + k]: the 1 sits on diagonal k = src - i.
        let mut diags: BTreeMap<usize, Vec<Complex64>> = BTreeMap::new();
        for (i, src) in map.iter().enumerate() {
            let Some(src) = *src else { continue };
            if src >= s {
                return Err(Error::OutOfRange {
                    reason: "source slot beyond the slot count",
                });
            }
            let k = (src + s - i) % s;
            diags.entry(k).or_insert_with(|| vec![zero(); s])[i] = Complex64::new(1.0, 0.0);
        }
        if diags.is_empty() {
            return Err(Error::OutOfRange {
                reason: "a layout conversion must move at least one slot",
            });
        }
        let lt = LinearTransform::new(params, encoder, &diags, s, level, None)?;
        Ok(Self {
            input,
            output,
            lt,
            diagonals: diags.len(),
            off_diagonals: diags.keys().filter(|&&k| k != 0).count(),
        })
    }

    /// The same matrix moved from row-major to column-major placement.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] for layouts of different shapes, slot counts or a row-major layout
    /// of several tiles; as [`LayoutConversion::from_map`].
    pub fn row_to_column(
        params: &Arc<Parameters>,
        encoder: &CkksEncoder,
        from: RowMajor,
        to: ColumnMajor,
        level: usize,
    ) -> Result<Self> {
        check_one_tile(&from)?;
        to.validate()?;
        check_same_shape((from.rows, from.cols), (to.rows, to.cols))?;
        let map = entry_map(to.slots, from.rows, from.cols, |t, j| {
            (to.slot(t, j), t * from.stride + j)
        });
        Self::from_map(
            params,
            encoder,
            Layout::RowMajor(from),
            Layout::ColumnMajor(to),
            &map,
            level,
        )
    }

    /// The same matrix moved from column-major to row-major placement.
    ///
    /// # Errors
    /// As [`LayoutConversion::row_to_column`].
    pub fn column_to_row(
        params: &Arc<Parameters>,
        encoder: &CkksEncoder,
        from: ColumnMajor,
        to: RowMajor,
        level: usize,
    ) -> Result<Self> {
        check_one_tile(&to)?;
        from.validate()?;
        check_same_shape((from.rows, from.cols), (to.rows, to.cols))?;
        let map = entry_map(to.slots, from.rows, from.cols, |t, j| {
            (t * to.stride + j, from.slot(t, j))
        });
        Self::from_map(
            params,
            encoder,
            Layout::ColumnMajor(from),
            Layout::RowMajor(to),
            &map,
            level,
        )
    }

    /// The matrix transpose: `X` (`rows x cols`, row-major) to `X^T` (`cols x rows`, row-major with
    /// row stride `out_stride`, by default the next power of two of `rows`).
    ///
    /// # Errors
    /// Errors of [`RowMajor::new`] for the output; [`Error::LengthMismatch`] when the input or the
    /// output does not fit one ciphertext; as [`LayoutConversion::from_map`].
    pub fn transpose(
        params: &Arc<Parameters>,
        encoder: &CkksEncoder,
        from: RowMajor,
        out_stride: Option<usize>,
        level: usize,
    ) -> Result<Self> {
        check_one_tile(&from)?;
        let to = RowMajor::new(from.cols, from.rows, out_stride, from.slots)?;
        check_one_tile(&to)?;
        let map = entry_map(from.slots, from.rows, from.cols, |t, j| {
            (j * to.stride + t, t * from.stride + j)
        });
        Self::from_map(
            params,
            encoder,
            Layout::RowMajor(from),
            Layout::RowMajor(to),
            &map,
            level,
        )
    }

    /// The input layout.
    pub fn input(&self) -> Layout {
        self.input
    }

    /// The output layout.
    pub fn output(&self) -> Layout {
        self.output
    }

    /// Nonzero diagonals of the map's matrix (one plaintext product each).
    pub fn diagonals(&self) -> usize {
        self.diagonals
    }

    /// Key switches of the plain diagonal method (one rotation per nonzero diagonal but the main
    /// one): the baseline BSGS is measured against.
    pub fn plain_diagonal_key_switches(&self) -> usize {
        self.off_diagonals
    }

    /// The BSGS counts of one evaluation.
    pub fn cost(&self) -> LinearTransformCost {
        self.lt.cost()
    }

    /// The evaluator's counts for one [`LayoutConversion::apply`]: the rotations of
    /// [`LayoutConversion::cost`], one decomposition for all the baby steps (if any) plus one per
    /// giant step, one plaintext product per diagonal, one rescale.
    pub fn op_counts(&self) -> OpCounts {
        self.lt.cost().op_counts()
    }

    /// Rotations needed (for key generation), in `0..slots`.
    pub fn rotations_needed(&self) -> Vec<i64> {
        self.lt.rotations_needed()
    }

    /// The converted ciphertext, one level down, at the input's scale.
    ///
    /// # Errors
    /// [`Error::InvalidSlots`] for an input of another layout; [`Error::LevelMismatch`] for an input
    /// at another level than the one prepared; evaluation errors.
    pub fn apply(&self, eval: &Evaluator, x: &Packed) -> Result<Packed> {
        x.check(self.input)?;
        Ok(Packed {
            layout: self.output,
            ct: self.lt.evaluate(eval, &x.ct)?,
        })
    }
}

/// Checks a row-major layout's public fields again (they may have been set by hand), so that the
/// kernels' slot arithmetic stays in range.
fn check_row_major(l: &RowMajor) -> Result<()> {
    RowMajor::new(l.rows, l.cols, Some(l.stride), l.slots).map(|_| ())
}

fn check_one_tile(l: &RowMajor) -> Result<()> {
    check_row_major(l)?;
    if l.tiles() != 1 {
        return Err(Error::LengthMismatch {
            expected: 1,
            got: l.tiles(),
        });
    }
    Ok(())
}

fn check_same_shape(a: (usize, usize), b: (usize, usize)) -> Result<()> {
    if a.0 != b.0 {
        return Err(Error::LengthMismatch {
            expected: a.0,
            got: b.0,
        });
    }
    if a.1 != b.1 {
        return Err(Error::LengthMismatch {
            expected: a.1,
            got: b.1,
        });
    }
    Ok(())
}

/// The slot map that sends every entry `(t, j)` of a `rows x cols` matrix from `slots(t, j).1` to
/// `slots(t, j).0`.
fn entry_map(
    slots: usize,
    rows: usize,
    cols: usize,
    place: impl Fn(usize, usize) -> (usize, usize),
) -> Vec<Option<usize>> {
    let mut map = vec![None; slots];
    for t in 0..rows {
        for j in 0..cols {
            let (dst, src) = place(t, j);
            if let Some(m) = map.get_mut(dst) {
                *m = Some(src);
            }
        }
    }
    map
}

/// `-k mod slots`: a right rotation by `k`, normalised as the keys are generated.
fn right(k: usize, slots: usize) -> i64 {
    (-(k as i64)).rem_euclid(slots as i64)
}

/// Rotations of [`spread`]: `floor(log2 count) + popcount(count) - 1`.
fn spread_rotation_count(count: usize) -> usize {
    count.max(1).ilog2() as usize + count.count_ones() as usize - 1
}

/// The rotations [`spread`] uses, in `0..slots`.
fn spread_rotations(count: usize, step: usize, slots: usize) -> Vec<i64> {
    let m = count.max(1).ilog2();
    let mut r: Vec<i64> = (0..m).map(|k| right(step << k, slots)).collect();
    let mut off = 1usize << m;
    for b in (0..m).rev() {
        if (count >> b) & 1 == 1 {
            r.push(right(off * step, slots));
            off += 1 << b;
        }
    }
    r
}

/// `count` copies of a block of `step` slots at `0, step, ..., (count - 1) step`, from a ciphertext
/// holding the block at `0..step` and zeros beyond it (as long as `count * step <= slots`).
/// Doubling gives blocks of `2^k` copies; a count that is not a power of two adds the lower blocks
/// after the largest, so no copy lands past `count` and no mask is needed.
fn spread(eval: &Evaluator, ct: &Ciphertext, count: usize, step: usize) -> Result<Ciphertext> {
    let slots = ct.slots();
    let m = count.max(1).ilog2();
    let mut blocks = vec![ct.clone()];
    for k in 0..m {
        let b = blocks.last().unwrap_or(ct);
        let next = eval.add(b, &eval.rotate(b, right(step << k, slots))?)?;
        blocks.push(next);
    }
    let mut acc = blocks.last().unwrap_or(ct).clone();
    let mut off = 1usize << m;
    for b in (0..m).rev() {
        if (count >> b) & 1 == 1 {
            let block = blocks.get(b as usize).unwrap_or(ct);
            acc = eval.add(&acc, &eval.rotate(block, right(off * step, slots))?)?;
            off += 1 << b;
        }
    }
    Ok(acc)
}

/// Column 0 of a row-major matrix (zeros in every other slot of the rows) copied into the first
/// `cols` columns of each row by rotate-and-add: `floor(log2 cols) + popcount(cols) - 1` rotations, no
/// level, no mask (e.g. a LayerNorm's per-row inverse standard deviation spread over the row).
#[derive(Clone, Copy, Debug)]
pub struct SpreadColumn {
    input: RowMajor,
    output: RowMajor,
}

impl SpreadColumn {
    /// Spreads column 0 of `input` (whatever its `cols`) over `cols` columns.
    ///
    /// # Errors
    /// [`Error::InvalidSlots`] for `cols` of 0 or above the stride, or an invalid layout.
    pub fn new(input: RowMajor, cols: usize) -> Result<Self> {
        check_row_major(&input)?;
        if cols == 0 || cols > input.stride {
            return Err(Error::InvalidSlots {
                slots: cols,
                max: input.stride,
            });
        }
        Ok(Self {
            input,
            output: RowMajor { cols, ..input },
        })
    }

    /// The output layout (the input's, with `cols` columns).
    pub fn output(&self) -> RowMajor {
        self.output
    }

    /// Rotations (key switches) per tile.
    pub fn rotation_count(&self) -> usize {
        spread_rotation_count(self.output.cols)
    }

    /// The evaluator's counts for one [`SpreadColumn::apply`]: [`SpreadColumn::rotation_count`]
    /// rotations per tile, each its own decomposition.
    pub fn op_counts(&self) -> OpCounts {
        let r = self.rotation_count() * self.input.tiles();
        OpCounts {
            key_switches: r,
            decompositions: r,
            ..OpCounts::default()
        }
    }

    /// Rotations needed (for key generation), in `0..slots`.
    pub fn rotations_needed(&self) -> Vec<i64> {
        sorted(spread_rotations(self.output.cols, 1, self.input.slots))
    }

    /// The spread matrix, at the input's level and scale.
    ///
    /// # Errors
    /// [`Error::InvalidSlots`] for an input of another layout; [`Error::MissingGaloisKey`].
    pub fn apply(&self, eval: &Evaluator, x: &EncryptedMatrix) -> Result<EncryptedMatrix> {
        check_matrix(x, self.input)?;
        let tiles = x
            .tiles
            .iter()
            .map(|ct| spread(eval, ct, self.output.cols, 1))
            .collect::<Result<Vec<_>>>()?;
        Ok(EncryptedMatrix {
            layout: self.output,
            tiles,
        })
    }
}

/// Row 0 of a one-row row-major matrix copied into `rows` rows ([`Replicated`]) by rotate-and-add:
/// `floor(log2 rows) + popcount(rows) - 1` rotations, no level.
#[derive(Clone, Copy, Debug)]
pub struct ReplicateRows {
    input: RowMajor,
    output: Replicated,
}

impl ReplicateRows {
    /// Replicates a `1 x input.cols` row-major matrix into `rows` rows of the same stride.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] when the input has more than one row; errors of
    /// [`Replicated::new`] when `rows` copies do not fit.
    pub fn new(input: RowMajor, rows: usize) -> Result<Self> {
        check_row_major(&input)?;
        if input.rows != 1 {
            return Err(Error::LengthMismatch {
                expected: 1,
                got: input.rows,
            });
        }
        let output = Replicated::new(rows, input.cols, Some(input.stride), input.slots)?;
        Ok(Self { input, output })
    }

    /// The output layout.
    pub fn output(&self) -> Replicated {
        self.output
    }

    /// Levels consumed: none.
    pub fn levels(&self) -> usize {
        0
    }

    /// The evaluator's counts for one [`ReplicateRows::apply`]: `floor(log2 rows) + popcount(rows)
    /// - 1` rotations, each its own decomposition (each rotates the previous result).
    pub fn op_counts(&self) -> OpCounts {
        let r = spread_rotation_count(self.output.frame.rows);
        OpCounts {
            key_switches: r,
            decompositions: r,
            ..OpCounts::default()
        }
    }

    /// Rotations needed (for key generation), in `0..slots`.
    pub fn rotations_needed(&self) -> Vec<i64> {
        let f = self.output.frame;
        sorted(spread_rotations(f.rows, f.stride, f.slots))
    }

    /// The replicated row, at the input's level and scale.
    ///
    /// # Errors
    /// [`Error::InvalidSlots`] for an input of another layout; [`Error::MissingGaloisKey`].
    pub fn apply(&self, eval: &Evaluator, x: &Packed) -> Result<Packed> {
        x.check(Layout::RowMajor(self.input))?;
        Ok(Packed {
            layout: Layout::Replicated(self.output),
            ct: spread(eval, &x.ct, self.output.frame.rows, self.input.stride)?,
        })
    }
}

fn sorted(mut r: Vec<i64>) -> Vec<i64> {
    r.retain(|&k| k != 0);
    r.sort_unstable();
    r.dedup();
    r
}

/// The sum of each row of a row-major matrix, by `log2(stride)` rotate-and-adds and a mask (one
/// level), tile by tile.
///
/// The output is row-major with the input's rows and stride: with `replicate = false` it has one
/// column (row `t`'s sum in slot `t * stride`, zeros elsewhere); with `replicate = true` the sum is
/// spread over all `cols` columns (e.g. to subtract a mean), zeros in the padding.
#[derive(Debug)]
pub struct RowSums {
    input: RowMajor,
    output: RowMajor,
    replicate: bool,
    mask: Plaintext,
}

impl RowSums {
    /// Prepares the sums for inputs at `level`, each multiplied by `factor` (folded into the mask:
    /// `1 / cols` gives the row means at no extra cost).
    ///
    /// # Errors
    /// [`Error::LevelOutOfRange`] for level 0 or above the top; [`Error::OutOfRange`] for a factor
    /// that is not finite; encoding errors.
    pub fn new(
        params: &Arc<Parameters>,
        encoder: &CkksEncoder,
        input: RowMajor,
        level: usize,
        replicate: bool,
        factor: f64,
    ) -> Result<Self> {
        if level == 0 || level > params.max_level() {
            return Err(Error::LevelOutOfRange {
                level,
                max: params.max_level(),
            });
        }
        check_row_major(&input)?;
        if !factor.is_finite() {
            return Err(Error::OutOfRange {
                reason: "row-sum factor must be finite",
            });
        }
        let q_l = params.q().get(level).map_or(1.0, |&q| q as f64);
        let mut v = vec![zero(); input.slots];
        for t in 0..input.rows_per_tile() {
            v[t * input.stride] = Complex64::new(factor, 0.0);
        }
        // Encoded at q_l so that after the rescale the output has the input's scale exactly.
        let mask = encoder.encode(&v, level, q_l)?;
        let output = RowMajor {
            cols: if replicate { input.cols } else { 1 },
            ..input
        };
        Ok(Self {
            input,
            output,
            replicate,
            mask,
        })
    }

    /// The output layout.
    pub fn output(&self) -> RowMajor {
        self.output
    }

    /// Levels consumed: one (the mask).
    pub fn levels(&self) -> usize {
        1
    }

    /// The evaluator's counts per tile (multiply by the tiles): `log2(stride)` rotations for the
    /// sums, plus `floor(log2 cols) + popcount(cols) - 1` to replicate; one product, one rescale.
    pub fn op_counts_per_tile(&self) -> OpCounts {
        let mut r = self.input.stride.ilog2() as usize;
        if self.replicate {
            r += spread_rotation_count(self.input.cols);
        }
        OpCounts {
            key_switches: r,
            decompositions: r,
            ct_mults: 0,
            pt_mults: 1,
            rescales: 1,
        }
    }

    /// The evaluator's counts for one [`RowSums::apply`] on all the tiles.
    pub fn op_counts(&self) -> OpCounts {
        self.op_counts_per_tile() * self.input.tiles()
    }

    /// Rotations needed (for key generation), in `0..slots`.
    pub fn rotations_needed(&self) -> Vec<i64> {
        let l = self.input;
        let mut r: Vec<i64> = (0..l.stride.ilog2()).map(|k| 1i64 << k).collect();
        if self.replicate {
            r.extend(spread_rotations(l.cols, 1, l.slots));
        }
        sorted(r)
    }

    /// The row sums (times the factor), one level down, at the input's scale.
    ///
    /// # Errors
    /// [`Error::InvalidSlots`] for an input of another layout; [`Error::LevelMismatch`] for an input
    /// at another level than the one prepared; [`Error::MissingGaloisKey`].
    pub fn apply(&self, eval: &Evaluator, x: &EncryptedMatrix) -> Result<EncryptedMatrix> {
        check_matrix(x, self.input)?;
        let tiles = x
            .tiles
            .iter()
            .map(|ct| {
                // Slot t * stride now holds row t's sum; the other slots hold partial sums.
                let summed = eval.inner_sum(ct, 1, self.input.stride)?;
                let col0 = eval.rescale(&eval.mul_plain(&summed, &self.mask)?)?;
                if self.replicate {
                    spread(eval, &col0, self.input.cols, 1)
                } else {
                    Ok(col0)
                }
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(EncryptedMatrix {
            layout: self.output,
            tiles,
        })
    }
}

fn check_matrix(x: &EncryptedMatrix, layout: RowMajor) -> Result<()> {
    if x.layout != layout || x.tiles.len() != layout.tiles() {
        return Err(Error::InvalidSlots {
            slots: x.layout.slots,
            max: layout.slots,
        });
    }
    Ok(())
}

/// The sum of each column of a row-major matrix (all tiles), replicated in every row of one
/// ciphertext: `tiles - 1` additions, then `log2(slots / stride)` rotate-and-adds by whole rows,
/// which sum the rows cyclically. No level, no mask.
#[derive(Clone, Copy, Debug)]
pub struct ColSums {
    input: RowMajor,
    output: Replicated,
}

impl ColSums {
    /// Prepares the column sums of matrices in the `input` layout; the output replicates them in all
    /// `slots / stride` rows of one ciphertext.
    ///
    /// # Errors
    /// As [`RowMajor::new`] for a layout whose fields were set by hand to invalid values.
    pub fn new(input: RowMajor) -> Result<Self> {
        check_row_major(&input)?;
        let output = Replicated::new(input.rows_per_tile(), input.cols, Some(input.stride), input.slots)?;
        Ok(Self { input, output })
    }

    /// The output layout.
    pub fn output(&self) -> Replicated {
        self.output
    }

    /// Levels consumed: none.
    pub fn levels(&self) -> usize {
        0
    }

    /// The evaluator's counts for one [`ColSums::apply`]: `log2(slots / stride)` rotations.
    pub fn op_counts(&self) -> OpCounts {
        let r = self.input.rows_per_tile().ilog2() as usize;
        OpCounts {
            key_switches: r,
            decompositions: r,
            ..OpCounts::default()
        }
    }

    /// Rotations needed (for key generation), in `0..slots`.
    pub fn rotations_needed(&self) -> Vec<i64> {
        let l = self.input;
        sorted(
            (0..l.rows_per_tile().ilog2())
                .map(|k| (l.stride << k) as i64)
                .collect(),
        )
    }

    /// The column sums in every row, at the input's level and scale.
    ///
    /// # Errors
    /// [`Error::InvalidSlots`] for an input of another layout; [`Error::MissingGaloisKey`].
    pub fn apply(&self, eval: &Evaluator, x: &EncryptedMatrix) -> Result<Packed> {
        check_matrix(x, self.input)?;
        let (first, rest) = x
            .tiles
            .split_first()
            .ok_or(Error::LengthMismatch { expected: 1, got: 0 })?;
        // Row t of tile k is global row k * rows_per_tile + t: adding the tiles sums rows with
        // the same t, and the cyclic sum below adds all t.
        let mut acc = first.clone();
        for ct in rest {
            acc = eval.add(&acc, ct)?;
        }
        Ok(Packed {
            layout: Layout::Replicated(self.output),
            ct: eval.inner_sum(&acc, self.input.stride as i64, self.input.rows_per_tile())?,
        })
    }
}
