//! CKKS bootstrapping (full or sparse slots): refreshes a ciphertext at level 0 to a high level.
//!
//! Steps, for a ciphertext of `m` at level 0 (modulus q_0):
//! 1. **ModRaise**: read its components modulo the whole chain Q_L; it now decrypts to
//!    `t = m + q_0 I` for a small integer polynomial `I` (bounded by `K` with high probability for a
//!    sparse secret).
//! 2. **CoeffsToSlots**: the inverse special FFT (in `cts_levels` merged stages, BSGS with hoisted
//!    rotations) puts the coefficients into the slots, scaled to `x = t / (q_0 K)` in `[-1, 1]`;
//!    one conjugation splits the real and imaginary halves (`u + conj(u)`, `-i (u - conj(u))`).
//! 3. **EvalMod** on each half: `cos(2 pi (K x - 1/4) / 2^r)` by a Chebyshev interpolant (a
//!    `poly-approx` plan), then `r` double-angle steps `c <- 2 c^2 - 1`, giving
//!    `sin(2 pi t / q_0) ~ 2 pi m / q_0`.
//! 4. **SlotsToCoeffs**: recombine the halves and apply the special FFT (`stc_levels` stages); the
//!    factor `q_0 / (2 pi Delta)` is folded into its first matrix, and the last one lands on the
//!    default scale.
//!
//! The bit-reversal permutation of the FFT is never evaluated: CoeffsToSlots leaves the coefficients
//! bit-reversed, EvalMod is slot-wise, and SlotsToCoeffs expects them so (see [`super::dft`]).
//!
//! With `s < N/2` slots (sparse packing, the message lives in `Z[X^(N/2s)]`), a trace first keeps
//! only the coefficients of that subring: `log2(N/2s)` rotations by `s 2^i` and additions multiply
//! them by `N/2s` and cancel the others (the factor is folded into CoeffsToSlots); the DFTs then act
//! on `s` slots, with fewer diagonals and rotations.
//!
//! References:
//! - J. H. Cheon, K. Han, A. Kim, M. Kim, Y. Song, "Bootstrapping for Approximate Homomorphic
//!   Encryption", EUROCRYPT 2018 (<https://eprint.iacr.org/2018/153>).
//! - H. Chen, I. Chillotti, Y. Song, "Improved Bootstrapping for Approximate Homomorphic
//!   Encryption", EUROCRYPT 2019 (<https://eprint.iacr.org/2018/1043>): cosine and double angles.
//! - J.-P. Bossuat et al., EUROCRYPT 2021 (<https://eprint.iacr.org/2020/1203>).

use crate::circuits::dft;
use crate::circuits::lintrans::LinearTransform;
use crate::circuits::poly_eval::CkksArith;
use crate::error::{Error, Result};
use crate::params::Parameters;
use crate::ring::poly::galois_element_for_conjugation;
use crate::ring::poly::galois_element_for_rotation;
use crate::ring::{Coeff, RnsPoly};
use crate::rlwe::RlweCiphertext;
use crate::scheme::evaluator::{Ciphertext, CkksEncoder, Evaluator, LeveledOpCounts, OpCounts};
use poly_approx::eval::EvalPlan;
use poly_approx::Interval;
use std::sync::Arc;

/// The intermediate values [`Bootstrapper::bootstrap_traced`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootstrapStage {
    /// After ModRaise and, for sparse slots, the trace (decodes to `gap t / raise_scale`).
    Raised,
    /// After the given CoeffsToSlots matrix (all but the last, which is fused with the split).
    CoeffsToSlots(usize),
    /// `x` of the real half, input of EvalMod.
    Real,
    /// `x` of the imaginary half.
    Imaginary,
    /// The cosine polynomial's output on the real half, before the double angles.
    RealCosine,
    /// `sin(2 pi K x)` of the real half.
    RealMod,
    /// `sin(2 pi K x)` of the imaginary half.
    ImaginaryMod,
    /// After the given SlotsToCoeffs matrix.
    SlotsToCoeffs(usize),
}

/// The choices that shape a bootstrapping circuit.
#[derive(Clone, Debug, PartialEq)]
pub struct BootstrapConfig {
    /// Levels for CoeffsToSlots (merged FFT stages; more levels, fewer rotations each).
    pub cts_levels: usize,
    /// Levels for SlotsToCoeffs.
    pub stc_levels: usize,
    /// Bound `K` on the overflow `|I|` after ModRaise (depends on the secret's Hamming weight).
    pub k: f64,
    /// Degree of the Chebyshev interpolant of the cosine.
    pub cos_degree: usize,
    /// Number `r` of double-angle steps.
    pub double_angle: usize,
    /// Slots bootstrapped (a power of two up to N/2); `None` means full slots.
    pub slots: Option<usize>,
}

impl BootstrapConfig {
    /// The configuration of the toy chain [`Parameters::toy_boot`] (12 levels: 2 + 2 DFT levels,
    /// K = 12, degree 31 and 3 double angles), full slots.
    pub fn toy() -> Self {
        Self {
            cts_levels: 2,
            stc_levels: 2,
            k: 12.0,
            cos_degree: 31,
            double_angle: 3,
            slots: None,
        }
    }

    /// The configuration of the N = 2^16 preset: 3 + 3 DFT levels, K = 24 (6 standard deviations of
    /// `I` for a Hamming weight of 192), degree 63 and 4 double angles (10 levels for EvalMod).
    pub fn n16_default() -> Self {
        Self {
            cts_levels: 3,
            stc_levels: 3,
            k: 24.0,
            cos_degree: 63,
            double_angle: 4,
            slots: None,
        }
    }
}

/// A prepared bootstrapping circuit: encoded DFT matrices, the EvalMod plan, the level schedule.
#[derive(Debug)]
pub struct Bootstrapper {
    params: Arc<Parameters>,
    slots: usize,
    config: BootstrapConfig,
    cts: Vec<LinearTransform>,
    stc: Vec<LinearTransform>,
    cos_plan: EvalPlan,
    /// Scale the raised ciphertext is read at.
    raise_scale: f64,
    /// The nominal message scale folded into SlotsToCoeffs.
    nominal_scale: f64,
    output_level: usize,
}

impl Bootstrapper {
    /// Prepares the circuit for `params` and `config.slots` slots.
    ///
    /// # Errors
    /// [`Error::InvalidParameters`] when the chain is too short for the configuration; errors of
    /// the DFT and polynomial planning.
    pub fn new(params: &Arc<Parameters>, encoder: &CkksEncoder, config: BootstrapConfig) -> Result<Self> {
        let slots = config.slots.unwrap_or(params.max_slots());
        if !slots.is_power_of_two() || slots > params.max_slots() || slots < 2 {
            return Err(Error::InvalidSlots {
                slots,
                max: params.max_slots(),
            });
        }
        // The trace multiplies the subring's coefficients by gap = N / 2s.
        let gap = (params.max_slots() / slots) as f64;
        let top = params.max_level();
        let r = config.double_angle;
        let k = config.k;
        if !(k.is_finite() && k >= 1.0) {
            return Err(Error::InvalidParameters {
                reason: "K must be finite and at least 1",
            });
        }
        let two_pi = 2.0 * std::f64::consts::PI;
        let denom = (1u64 << r.min(60)) as f64;
        let cos = poly_approx::chebyshev::interpolate(
            |x| (two_pi * (k * x - 0.25) / denom).cos(),
            Interval::new(-1.0, 1.0)?,
            config.cos_degree,
        )?;
        let cos_plan = EvalPlan::new(&cos)?;
        let depth = config.cts_levels + cos_plan.depth() + r + config.stc_levels;
        if depth >= top {
            return Err(Error::InvalidParameters {
                reason: "modulus chain too short for this bootstrapping circuit",
            });
        }
        let q = params.q();
        let q0 = q[0] as f64;
        // The raised ciphertext is read at the scale of the top prime, so that the double-angle
        // steps (s <- s^2 / q_l) stay near it.
        let raise_scale = q[top] as f64;
        let nominal_scale = params.default_scale();

        // CoeffsToSlots: fold S / (2 q0 K) so that u + conj(u) = t / (q0 K).
        let cts_mats = dft::coeffs_to_slots(slots, config.cts_levels, raise_scale / (2.0 * q0 * k * gap))?;
        let mut cts = Vec::new();
        for (i, m) in cts_mats.iter().enumerate() {
            cts.push(LinearTransform::new(
                params,
                encoder,
                m.diagonals(),
                slots,
                top - i,
                None,
            )?);
        }
        // Scale after EvalMod: the plan keeps it; each double angle maps s to s^2 / q_l.
        let mut level = top - config.cts_levels - cos_plan.depth();
        let mut scale = raise_scale;
        for _ in 0..r {
            scale = scale * scale / q[level] as f64;
            level -= 1;
        }
        // SlotsToCoeffs: fold q0 / (2 pi Delta); the last matrix lands on the nominal scale.
        let stc_mats = dft::slots_to_coeffs(slots, config.stc_levels, q0 / (two_pi * nominal_scale))?;
        let mut stc = Vec::new();
        let last = stc_mats.len().saturating_sub(1);
        for (i, m) in stc_mats.iter().enumerate() {
            let lt = if i == last {
                let diag_scale = q[level] as f64 * nominal_scale / scale;
                LinearTransform::with_diag_scale(
                    params,
                    encoder,
                    m.diagonals(),
                    slots,
                    level,
                    None,
                    diag_scale,
                )?
            } else {
                LinearTransform::new(params, encoder, m.diagonals(), slots, level, None)?
            };
            stc.push(lt);
            level -= 1;
        }
        Ok(Self {
            params: params.clone(),
            slots,
            config,
            cts,
            stc,
            cos_plan,
            raise_scale,
            nominal_scale,
            output_level: level,
        })
    }

    /// The slot count of the ciphertexts it bootstraps.
    pub fn slots(&self) -> usize {
        self.slots
    }

    /// The level of bootstrapped ciphertexts.
    pub fn output_level(&self) -> usize {
        self.output_level
    }

    /// Levels the circuit consumes.
    pub fn depth(&self) -> usize {
        self.params.max_level() - self.output_level
    }

    /// The configuration.
    pub fn config(&self) -> &BootstrapConfig {
        &self.config
    }

    /// The Galois elements whose keys bootstrapping needs (rotations of both DFTs and conjugation).
    pub fn galois_elements(&self) -> Vec<u64> {
        let n = self.params.n();
        let mut rots: Vec<i64> = self
            .cts
            .iter()
            .chain(&self.stc)
            .flat_map(|lt| lt.rotations_needed())
            .collect();
        rots.extend(self.trace_rotations());
        rots.sort_unstable();
        rots.dedup();
        let mut g: Vec<u64> = rots
            .into_iter()
            .map(|k| galois_element_for_rotation(k, n))
            .collect();
        g.push(galois_element_for_conjugation(n));
        g.sort_unstable();
        g.dedup();
        g
    }

    /// The evaluator's counts for one [`Bootstrapper::bootstrap`], by the level they happen at (the
    /// linear transforms at their own levels, each EvalMod half at its first level): the trace's
    /// rotations, the DFTs' BSGS counts, the conjugation and the two halves' rescales, the cosine
    /// polynomial (a dry run on the simulator) and the double-angle squarings, twice.
    ///
    /// # Errors
    /// A cosine plan the simulator refuses.
    pub fn op_counts(&self) -> Result<LeveledOpCounts> {
        let top = self.params.max_level();
        let mut counts = LeveledOpCounts::default();
        counts.add(top, OpCounts::ROTATION * self.trace_rotations().len());
        let mut level = top;
        for (i, lt) in self.cts.iter().enumerate() {
            let mut c = lt.cost().op_counts();
            if i + 1 == self.cts.len() {
                // The last one is evaluated without its rescale; the conjugation and the two halves'
                // rescales follow at its level.
                c.rescales -= 1;
                c = c + OpCounts::ROTATION + OpCounts::RESCALE * 2;
            }
            counts.add(level, c);
            level -= 1;
        }
        let cosine = crate::circuits::poly_eval::plan_op_counts(&self.cos_plan)?;
        counts.add(level, cosine * 2);
        level -= self.cos_plan.depth();
        for _ in 0..self.config.double_angle {
            counts.add(level, OpCounts::PRODUCT_RESCALED * 2);
            level -= 1;
        }
        for lt in &self.stc {
            counts.add(level, lt.cost().op_counts());
            level -= 1;
        }
        Ok(counts)
    }

    /// Rotations of the trace onto the sparse subring: `s 2^i` for `i < log2(N / 2s)`.
    fn trace_rotations(&self) -> Vec<i64> {
        let full = self.params.max_slots();
        let mut out = Vec::new();
        let mut r = self.slots;
        while r < full {
            out.push(r as i64);
            r *= 2;
        }
        out
    }

    /// Step 1: reads a level-0 ciphertext modulo the whole chain.
    fn mod_raise(&self, eval: &Evaluator, ct: &Ciphertext) -> Result<Ciphertext> {
        let ct0 = eval.drop_to_level(ct, 0)?;
        let top = self.params.max_level();
        let ring = self.params.ring_q(top)?;
        let m0 = self.params.ring_q(0)?.moduli()[0];
        let mut c = Vec::with_capacity(2);
        for p in &ct0.inner.c {
            let coeffs: Vec<i64> = p
                .clone()
                .into_coeff()
                .as_slice()
                .iter()
                .map(|&x| m0.center(x))
                .collect();
            c.push(RnsPoly::<Coeff>::from_signed(ring, &coeffs)?.into_ntt());
        }
        Ok(Ciphertext {
            inner: RlweCiphertext { c },
            scale: self.raise_scale,
            slots: ct0.slots,
        })
    }

    /// Step 3 on one half: `sin(2 pi y)` from `x = y / K`; `cosine` sees the polynomial's output.
    fn eval_mod(
        &self,
        eval: &Evaluator,
        x: &Ciphertext,
        cosine: &mut dyn FnMut(&Ciphertext),
    ) -> Result<Ciphertext> {
        let mut arith = CkksArith::new(&self.params, eval);
        let mut c = self.cos_plan.evaluate(&mut arith, x)?;
        cosine(&c);
        for _ in 0..self.config.double_angle {
            let sq = eval.mul_relin(&c, &c)?;
            c = eval.add_const(&eval.rescale(&eval.mul_int(&sq, 2))?, -1.0)?;
        }
        Ok(c)
    }

    /// Bootstraps `ct` (any level, degree 1, the configured slot count; its message should be at most about 1 in
    /// absolute value at its scale). The result is at [`Bootstrapper::output_level`] and decodes to
    /// the same values.
    ///
    /// # Errors
    /// [`Error::InvalidSlots`] for another slot count; [`Error::MissingGaloisKey`] when the
    /// evaluator lacks a key of [`Bootstrapper::galois_elements`].
    pub fn bootstrap(&self, eval: &Evaluator, ct: &Ciphertext) -> Result<Ciphertext> {
        self.bootstrap_traced(eval, ct, &mut |_, _| {})
    }

    /// The DFT matrices in application order (CoeffsToSlots), for diagnostics.
    pub fn coeffs_to_slots_matrices(&self) -> Result<Vec<dft::DiagMatrix>> {
        let q0 = self.params.q()[0] as f64;
        let gap = (self.params.max_slots() / self.slots) as f64;
        dft::coeffs_to_slots(
            self.slots,
            self.config.cts_levels,
            self.raise_scale / (2.0 * q0 * self.config.k * gap),
        )
    }

    /// The SlotsToCoeffs matrices in application order, for diagnostics.
    pub fn slots_to_coeffs_matrices(&self) -> Result<Vec<dft::DiagMatrix>> {
        let q0 = self.params.q()[0] as f64;
        let two_pi = 2.0 * std::f64::consts::PI;
        dft::slots_to_coeffs(
            self.slots,
            self.config.stc_levels,
            q0 / (two_pi * self.nominal_scale),
        )
    }

    /// As [`Bootstrapper::bootstrap`], calling `trace` with every intermediate ciphertext (for
    /// diagnostics: a test holding the secret key can measure the error each stage adds).
    ///
    /// # Errors
    /// As [`Bootstrapper::bootstrap`].
    pub fn bootstrap_traced(
        &self,
        eval: &Evaluator,
        ct: &Ciphertext,
        trace: &mut dyn FnMut(BootstrapStage, &Ciphertext),
    ) -> Result<Ciphertext> {
        if ct.slots() != self.slots {
            return Err(Error::InvalidSlots {
                slots: ct.slots(),
                max: self.slots,
            });
        }
        let input_scale = ct.scale();
        let n = self.params.n();
        // 1. ModRaise
        let mut u = self.mod_raise(eval, ct)?;
        // Sparse slots: the trace onto the subring of the message.
        for r in self.trace_rotations() {
            u = eval.add(&u, &eval.rotate(&u, r)?)?;
        }
        trace(BootstrapStage::Raised, &u);
        // 2. CoeffsToSlots, then split real and imaginary halves.
        let last = self.cts.len().saturating_sub(1);
        for (i, lt) in self.cts.iter().enumerate() {
            if i == last {
                // The split happens before the last rescale, so the conjugation's key-switching
                // noise is divided by q_l too.
                u = lt.evaluate_without_rescale(eval, &u)?;
            } else {
                u = lt.evaluate(eval, &u)?;
                trace(BootstrapStage::CoeffsToSlots(i), &u);
            }
        }
        let conj = eval.conjugate(&u)?;
        let re = eval.rescale(&eval.add(&u, &conj)?)?;
        let im = eval.rescale(&eval.mul_int(&eval.mul_by_monomial(&eval.sub(&u, &conj)?, n / 2)?, -1))?;
        trace(BootstrapStage::Real, &re);
        trace(BootstrapStage::Imaginary, &im);
        // 3. EvalMod on both halves.
        let re = self.eval_mod(eval, &re, &mut |c| trace(BootstrapStage::RealCosine, c))?;
        let im = self.eval_mod(eval, &im, &mut |_| {})?;
        trace(BootstrapStage::RealMod, &re);
        trace(BootstrapStage::ImaginaryMod, &im);
        // 4. Recombine and SlotsToCoeffs.
        let mut v = eval.add(&re, &eval.mul_by_monomial(&im, n / 2)?)?;
        for (i, lt) in self.stc.iter().enumerate() {
            v = lt.evaluate(eval, &v)?;
            trace(BootstrapStage::SlotsToCoeffs(i), &v);
        }
        // SlotsToCoeffs divided by the nominal scale; the input's own scale may differ.
        let scale = v.scale() * input_scale / self.nominal_scale;
        eval.with_scale(&v, scale)
    }
}
