//! CKKS plaintexts and ciphertexts with their metadata (level, scale, slots), and the evaluator.
//! Operands at different levels or scales are refused with a typed error, never combined silently.

use crate::error::{Error, Result};
use crate::params::Parameters;
use crate::ring::poly::{galois_element_for_conjugation, galois_element_for_rotation};
use crate::rlwe::{
    decompose, decrypt, key_switch, key_switch_decomposed, Encryptor, RlweCiphertext, SecretKey, SwitchingKey,
};
use crate::scheme::encoder::Encoder;
use rand_core::CryptoRng;
use rustfft::num_complex::Complex64;
use std::collections::HashMap;
use std::sync::Arc;

/// Two scales are the same when they agree to this relative precision (they are products and
/// quotients of the same primes when two operands took the same path).
const SCALE_TOLERANCE: f64 = 1e-12;

/// An encoded message: a polynomial over `Q_l` (NTT form) with its scale and slot count.
#[derive(Clone, Debug)]
pub struct Plaintext {
    pub(crate) poly: crate::ring::RnsPoly<crate::ring::Ntt>,
    pub(crate) scale: f64,
    pub(crate) slots: usize,
}

impl Plaintext {
    /// The level.
    pub fn level(&self) -> usize {
        self.poly.num_limbs() - 1
    }
    /// The scale.
    pub fn scale(&self) -> f64 {
        self.scale
    }
}

/// A CKKS ciphertext: RLWE components plus level, scale and slot count.
#[derive(Clone, Debug)]
pub struct Ciphertext {
    pub(crate) inner: RlweCiphertext,
    pub(crate) scale: f64,
    pub(crate) slots: usize,
}

impl Ciphertext {
    /// The level.
    pub fn level(&self) -> usize {
        self.inner.level()
    }
    /// The scale.
    pub fn scale(&self) -> f64 {
        self.scale
    }
    /// Number of slots.
    pub fn slots(&self) -> usize {
        self.slots
    }
    /// Number of components (2 after relinearization, 3 after a raw tensor product).
    pub fn degree(&self) -> usize {
        self.inner.c.len() - 1
    }
}

/// Encodes real or complex vectors into plaintexts of a parameter set.
#[derive(Debug)]
pub struct CkksEncoder {
    params: Arc<Parameters>,
    encoder: Encoder,
}

impl CkksEncoder {
    /// An encoder for `params`.
    ///
    /// # Errors
    /// None in practice (the degree is checked by the parameters).
    pub fn new(params: &Arc<Parameters>) -> Result<Self> {
        Ok(Self {
            params: params.clone(),
            encoder: Encoder::new(params.n())?,
        })
    }

    /// Encodes `values` (power-of-two length up to N/2) at `level` and `scale`.
    ///
    /// # Errors
    /// [`Error::LevelOutOfRange`], [`Error::InvalidSlots`], [`Error::OutOfRange`].
    pub fn encode(&self, values: &[Complex64], level: usize, scale: f64) -> Result<Plaintext> {
        let ring = self.params.ring_q(level)?;
        let poly = self.encoder.encode(values, scale, ring)?.into_ntt();
        Ok(Plaintext {
            poly,
            scale,
            slots: values.len(),
        })
    }

    /// Decodes a plaintext.
    ///
    /// # Errors
    /// As [`Encoder::decode`].
    pub fn decode(&self, pt: &Plaintext) -> Result<Vec<Complex64>> {
        self.encoder
            .decode(&pt.poly.clone().into_coeff(), pt.scale, pt.slots)
    }
}

/// Encrypts plaintexts.
#[derive(Debug)]
pub struct CkksEncryptor(pub Encryptor);

impl CkksEncryptor {
    /// Encrypts a plaintext at its level and scale.
    ///
    /// # Errors
    /// As [`Encryptor::encrypt`].
    pub fn encrypt(&self, pt: &Plaintext, rng: &mut impl CryptoRng) -> Result<Ciphertext> {
        Ok(Ciphertext {
            inner: self.0.encrypt(&pt.poly, rng)?,
            scale: pt.scale,
            slots: pt.slots,
        })
    }
}

/// Decrypts a ciphertext into a plaintext (decode it with [`CkksEncoder::decode`]).
///
/// # Errors
/// As [`decrypt`].
pub fn decrypt_ckks(sk: &SecretKey, ct: &Ciphertext) -> Result<Plaintext> {
    Ok(Plaintext {
        poly: decrypt(sk, &ct.inner)?,
        scale: ct.scale,
        slots: ct.slots,
    })
}

/// Decrypts with **noise flooding** (opt-in, for results that will be shared): adds to the decrypted
/// polynomial `m + e` an independent integer uniform in `[-2^flood_bits, 2^flood_bits)` on every
/// coefficient before decoding. A decrypted CKKS value carries its error `e`, which depends on the
/// secret (the IND-CPA-D attack of Li and Micciancio recovers the key from shared decryptions); the
/// flooding hides `e` up to a statistical distance of about `N |e|_inf / 2^flood_bits`, so choose
/// `flood_bits` about 30 to 40 bits above the error (`log2 |e|_inf`, measurable with the secret key).
/// The price is precision: each slot gains an error of about `2^flood_bits sqrt(N / 3) / scale`.
///
/// # Errors
/// [`Error::InvalidSamplerParameter`] for `flood_bits` of 62 or more, or at or above `log2 q_0 - 2`
/// (the flooding would wrap the message); as [`decrypt`].
pub fn decrypt_ckks_flooded(
    sk: &SecretKey,
    ct: &Ciphertext,
    flood_bits: u32,
    rng: &mut impl CryptoRng,
) -> Result<Plaintext> {
    let mut pt = decrypt_ckks(sk, ct)?;
    let q0 = pt.poly.basis().moduli().first().map_or(0, |m| m.value());
    if f64::from(flood_bits) >= (q0 as f64).log2() - 2.0 {
        return Err(Error::InvalidSamplerParameter {
            reason: "flooding bound too close to q_0",
        });
    }
    let basis = pt.poly.basis().clone();
    let noise = crate::ring::sampling::uniform_signed(basis.n(), flood_bits, rng)?;
    let e = crate::ring::RnsPoly::<crate::ring::Coeff>::from_signed(&basis, &noise)?.into_ntt();
    pt.poly.add_assign(&e)?;
    Ok(pt)
}

/// The evaluation keys a server holds: relinearization and Galois keys (no secret).
#[derive(Debug, Default)]
pub struct EvaluationKeys {
    /// Switches `s^2` to `s`.
    pub relin: Option<SwitchingKey>,
    /// Galois keys by Galois element.
    pub galois: HashMap<u64, SwitchingKey>,
}

impl EvaluationKeys {
    /// Bytes held by the keys' residues.
    pub fn memory_bytes(&self) -> usize {
        self.relin
            .iter()
            .chain(self.galois.values())
            .map(|k| k.memory_bytes())
            .sum()
    }
}

/// Counts of the operations an [`Evaluator`] performed (what costs time: key switches dominate).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpCounts {
    /// Key switches: rotations and conjugations (identity rotations excluded) and relinearizations.
    pub key_switches: usize,
    /// Decompositions (ModUp) of a polynomial for key switching; hoisted rotations share one.
    pub decompositions: usize,
    /// Ciphertext-ciphertext products (each also one key switch, the relinearization).
    pub ct_mults: usize,
    /// Ciphertext-plaintext products.
    pub pt_mults: usize,
    /// Rescales.
    pub rescales: usize,
}

impl OpCounts {
    /// One rotation (or conjugation): a key switch with its own decomposition.
    pub const ROTATION: Self = Self {
        key_switches: 1,
        decompositions: 1,
        ct_mults: 0,
        pt_mults: 0,
        rescales: 0,
    };
    /// One rescale.
    pub const RESCALE: Self = Self {
        key_switches: 0,
        decompositions: 0,
        ct_mults: 0,
        pt_mults: 0,
        rescales: 1,
    };
    /// A relinearized ciphertext product (one key switch) followed by its rescale.
    pub const PRODUCT_RESCALED: Self = Self {
        key_switches: 1,
        decompositions: 1,
        ct_mults: 1,
        pt_mults: 0,
        rescales: 1,
    };
}

impl std::ops::Add for OpCounts {
    type Output = Self;
    fn add(self, o: Self) -> Self {
        Self {
            key_switches: self.key_switches + o.key_switches,
            decompositions: self.decompositions + o.decompositions,
            ct_mults: self.ct_mults + o.ct_mults,
            pt_mults: self.pt_mults + o.pt_mults,
            rescales: self.rescales + o.rescales,
        }
    }
}

impl std::ops::Mul<usize> for OpCounts {
    type Output = Self;
    fn mul(self, k: usize) -> Self {
        Self {
            key_switches: self.key_switches * k,
            decompositions: self.decompositions * k,
            ct_mults: self.ct_mults * k,
            pt_mults: self.pt_mults * k,
            rescales: self.rescales * k,
        }
    }
}

/// [`OpCounts`] by the level of the ciphertexts the operations act on: a key switch at level 30
/// costs several times one at level 3, so a time prediction needs the levels.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeveledOpCounts(std::collections::BTreeMap<usize, OpCounts>);

impl LeveledOpCounts {
    /// Adds `counts` performed at `level`.
    pub fn add(&mut self, level: usize, counts: OpCounts) {
        let e = self.0.entry(level).or_default();
        *e = *e + counts;
    }

    /// Adds every count of `other`, `times` times.
    pub fn add_all(&mut self, other: &LeveledOpCounts, times: usize) {
        for (&level, &c) in &other.0 {
            self.add(level, c * times);
        }
    }

    /// The counts at each level, lowest level first.
    pub fn iter(&self) -> impl Iterator<Item = (usize, OpCounts)> + '_ {
        self.0.iter().map(|(&l, &c)| (l, c))
    }

    /// The counts over all levels.
    pub fn total(&self) -> OpCounts {
        self.0.values().fold(OpCounts::default(), |a, &c| a + c)
    }
}

/// Relaxed atomic counters behind [`OpCounts`] (the evaluator is shared across threads).
#[derive(Debug, Default)]
struct Counters([std::sync::atomic::AtomicUsize; 5]);

impl Counters {
    const KEY_SWITCHES: usize = 0;
    const DECOMPOSITIONS: usize = 1;
    const CT_MULTS: usize = 2;
    const PT_MULTS: usize = 3;
    const RESCALES: usize = 4;

    fn add(&self, which: usize, n: usize) {
        if let Some(c) = self.0.get(which) {
            c.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        }
    }

    fn get(&self, which: usize) -> usize {
        self.0
            .get(which)
            .map_or(0, |c| c.load(std::sync::atomic::Ordering::Relaxed))
    }
}

/// Homomorphic operations.
#[derive(Debug)]
pub struct Evaluator {
    params: Arc<Parameters>,
    keys: Arc<EvaluationKeys>,
    counters: Counters,
}

impl Evaluator {
    /// An evaluator over `params` with `keys`.
    pub fn new(params: &Arc<Parameters>, keys: Arc<EvaluationKeys>) -> Self {
        Self {
            params: params.clone(),
            keys,
            counters: Counters::default(),
        }
    }

    /// The operations performed since the evaluator was made or the counts were reset.
    pub fn op_counts(&self) -> OpCounts {
        let c = &self.counters;
        OpCounts {
            key_switches: c.get(Counters::KEY_SWITCHES),
            decompositions: c.get(Counters::DECOMPOSITIONS),
            ct_mults: c.get(Counters::CT_MULTS),
            pt_mults: c.get(Counters::PT_MULTS),
            rescales: c.get(Counters::RESCALES),
        }
    }

    /// Sets the operation counts back to zero.
    pub fn reset_op_counts(&self) {
        for c in &self.counters.0 {
            c.store(0, std::sync::atomic::Ordering::Relaxed);
        }
    }

    fn check_pair(&self, a: &Ciphertext, b_level: usize, b_scale: f64, b_slots: usize) -> Result<()> {
        if a.level() != b_level {
            return Err(Error::LevelMismatch {
                left: a.level(),
                right: b_level,
            });
        }
        if (a.scale / b_scale - 1.0).abs() > SCALE_TOLERANCE {
            return Err(Error::ScaleMismatch {
                left: a.scale,
                right: b_scale,
            });
        }
        if a.slots != b_slots {
            return Err(Error::InvalidSlots {
                slots: b_slots,
                max: a.slots,
            });
        }
        Ok(())
    }

    /// `a + b` (same level, scale and slots).
    ///
    /// # Errors
    /// [`Error::LevelMismatch`], [`Error::ScaleMismatch`], [`Error::InvalidSlots`].
    pub fn add(&self, a: &Ciphertext, b: &Ciphertext) -> Result<Ciphertext> {
        self.check_pair(a, b.level(), b.scale, b.slots)?;
        let mut out = if a.degree() >= b.degree() {
            a.clone()
        } else {
            b.clone()
        };
        let other = if a.degree() >= b.degree() { b } else { a };
        for (x, y) in out.inner.c.iter_mut().zip(&other.inner.c) {
            x.add_assign(y)?;
        }
        Ok(out)
    }

    /// `a - b` (same level, scale and slots).
    ///
    /// # Errors
    /// As [`Evaluator::add`].
    pub fn sub(&self, a: &Ciphertext, b: &Ciphertext) -> Result<Ciphertext> {
        let mut nb = b.clone();
        for c in nb.inner.c.iter_mut() {
            c.neg_assign();
        }
        self.add(a, &nb)
    }

    /// `a * pt` (same level; scales multiply).
    ///
    /// # Errors
    /// [`Error::LevelMismatch`], [`Error::InvalidSlots`].
    pub fn mul_plain(&self, a: &Ciphertext, pt: &Plaintext) -> Result<Ciphertext> {
        self.check_pair(a, pt.level(), a.scale, pt.slots)?;
        self.counters.add(Counters::PT_MULTS, 1);
        let mut out = a.clone();
        for c in out.inner.c.iter_mut() {
            c.mul_assign(&pt.poly)?;
        }
        out.scale *= pt.scale;
        Ok(out)
    }

    /// `sum_i a_i * pt_i` for degree-1 ciphertexts of one level, scale and slot count and plaintexts
    /// of one scale, fused: one reduction per entry and no product ciphertext per term. Counts one
    /// plaintext product per term, like [`Evaluator::mul_plain`] followed by additions.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] for no terms; [`Error::InvalidCiphertext`] for a ciphertext of
    /// degree other than 1; [`Error::LevelMismatch`], [`Error::ScaleMismatch`],
    /// [`Error::InvalidSlots`] for terms that do not match the first.
    pub fn mul_plain_sum(&self, terms: &[(&Ciphertext, &Plaintext)]) -> Result<Ciphertext> {
        let &(first, first_pt) = terms
            .first()
            .ok_or(Error::LengthMismatch { expected: 1, got: 0 })?;
        for &(a, pt) in terms {
            if a.degree() != 1 {
                return Err(Error::InvalidCiphertext {
                    reason: "fused plaintext products need degree-1 ciphertexts",
                });
            }
            self.check_pair(a, first.level(), first.scale, first.slots)?;
            self.check_pair(a, pt.level(), a.scale, pt.slots)?;
            if (pt.scale / first_pt.scale - 1.0).abs() > SCALE_TOLERANCE {
                return Err(Error::ScaleMismatch {
                    left: first_pt.scale,
                    right: pt.scale,
                });
            }
        }
        let pts: Vec<_> = terms.iter().map(|(_, pt)| &pt.poly).collect();
        let c0: Vec<_> = terms.iter().map(|(a, _)| &a.inner.c[0]).collect();
        let c1: Vec<_> = terms.iter().map(|(a, _)| &a.inner.c[1]).collect();
        let (r0, r1) = crate::ring::RnsPoly::dot_pair(&pts, &c0, &c1)?;
        self.counters.add(Counters::PT_MULTS, terms.len());
        Ok(Ciphertext {
            inner: RlweCiphertext { c: vec![r0, r1] },
            scale: first.scale * first_pt.scale,
            slots: first.slots,
        })
    }

    /// `a * b` followed by relinearization (same level and slots; scales multiply).
    ///
    /// # Errors
    /// [`Error::LevelMismatch`], [`Error::InvalidKey`] without a relinearization key.
    pub fn mul_relin(&self, a: &Ciphertext, b: &Ciphertext) -> Result<Ciphertext> {
        if a.level() != b.level() {
            return Err(Error::LevelMismatch {
                left: a.level(),
                right: b.level(),
            });
        }
        if a.degree() != 1 || b.degree() != 1 {
            return Err(Error::InvalidCiphertext {
                reason: "multiplication needs degree-1 operands",
            });
        }
        if a.slots != b.slots {
            return Err(Error::InvalidSlots {
                slots: b.slots,
                max: a.slots,
            });
        }
        let rlk = self.keys.relin.as_ref().ok_or(Error::InvalidKey {
            reason: "no relinearization key",
        })?;
        let (a0, a1, b0, b1) = (&a.inner.c[0], &a.inner.c[1], &b.inner.c[0], &b.inner.c[1]);
        let mut d0 = a0.mul(b0)?;
        let mut d1 = a0.mul(b1)?;
        d1.mul_then_add_assign(a1, b0)?;
        let d2 = a1.mul(b1)?;
        self.counters.add(Counters::CT_MULTS, 1);
        self.counters.add(Counters::KEY_SWITCHES, 1);
        self.counters.add(Counters::DECOMPOSITIONS, 1);
        let (u0, u1) = key_switch(&self.params, &d2, rlk)?;
        d0.add_assign(&u0)?;
        d1.add_assign(&u1)?;
        Ok(Ciphertext {
            inner: RlweCiphertext { c: vec![d0, d1] },
            scale: a.scale * b.scale,
            slots: a.slots,
        })
    }

    /// `a + pt` (same level, scale and slots).
    ///
    /// # Errors
    /// As [`Evaluator::add`].
    pub fn add_plain(&self, a: &Ciphertext, pt: &Plaintext) -> Result<Ciphertext> {
        self.check_pair(a, pt.level(), pt.scale, pt.slots)?;
        let mut out = a.clone();
        out.inner.c[0].add_assign(&pt.poly)?;
        Ok(out)
    }

    /// `a + c` in every slot, for a real constant `c` (encoded at the ciphertext's scale).
    ///
    /// # Errors
    /// [`Error::OutOfRange`] when `c * scale` is not finite or does not fit 126 bits.
    pub fn add_const(&self, a: &Ciphertext, c: f64) -> Result<Ciphertext> {
        let v = (c * a.scale).round();
        if !v.is_finite() || v.abs() >= 2f64.powi(126) {
            return Err(Error::OutOfRange {
                reason: "constant too large for the ciphertext's scale",
            });
        }
        // The constant polynomial evaluates to v at every root: add v to every NTT entry.
        let ring = a.inner.c[0].basis().clone();
        let residues: Vec<u64> = ring.moduli().iter().map(|m| m.reduce_i128(v as i128)).collect();
        let mut out = a.clone();
        let n = ring.n();
        let mut data = out.inner.c[0].as_slice().to_vec();
        for (limb, (m, &r)) in data.chunks_exact_mut(n).zip(ring.moduli().iter().zip(&residues)) {
            limb.iter_mut().for_each(|x| *x = m.add(*x, r));
        }
        out.inner.c[0] = crate::ring::RnsPoly::from_limbs(&ring, data)?;
        Ok(out)
    }

    /// `a * k` for an integer `k`: exact, the scale is unchanged and no level is consumed.
    pub fn mul_int(&self, a: &Ciphertext, k: i64) -> Ciphertext {
        let mut out = a.clone();
        for c in out.inner.c.iter_mut() {
            c.mul_scalar_assign(k.unsigned_abs());
            if k < 0 {
                c.neg_assign();
            }
        }
        out
    }

    /// `a * c` for a real constant `c`, encoded as `round(c * const_scale)`: the scale becomes
    /// `scale * const_scale` (rescale afterwards to consume the level). Choosing `const_scale = q_l`
    /// brings the scale back exactly to the current one after the rescale.
    ///
    /// # Errors
    /// [`Error::OutOfRange`] when `c * const_scale` is not finite, not positive-scaled, or too large.
    pub fn mul_const(&self, a: &Ciphertext, c: f64, const_scale: f64) -> Result<Ciphertext> {
        let v = (c * const_scale).round();
        if !(const_scale.is_finite() && const_scale >= 1.0 && v.is_finite() && v.abs() < 2f64.powi(126)) {
            return Err(Error::OutOfRange {
                reason: "constant or its scale out of range",
            });
        }
        let ring = a.inner.c[0].basis().clone();
        let residues: Vec<u64> = ring.moduli().iter().map(|m| m.reduce_i128(v as i128)).collect();
        let mut out = a.clone();
        for p in out.inner.c.iter_mut() {
            p.mul_rns_scalar_assign(&residues)?;
        }
        out.scale *= const_scale;
        Ok(out)
    }

    /// `a * X^k` (exact, no level): with `k = N/2` every slot is multiplied by the imaginary unit,
    /// because every slot root `zeta` satisfies `zeta^(N/2) = i` (also with sparse packing).
    ///
    /// # Errors
    /// Ring errors only for a malformed ciphertext.
    pub fn mul_by_monomial(&self, a: &Ciphertext, k: usize) -> Result<Ciphertext> {
        let n = self.params.n();
        let k = k % (2 * n);
        let ring = a.inner.c[0].basis().clone();
        let mut coeffs = vec![0i64; n];
        coeffs[k % n] = if k < n { 1 } else { -1 };
        let mono = crate::ring::RnsPoly::from_signed(&ring, &coeffs)?.into_ntt();
        let mut out = a.clone();
        for c in out.inner.c.iter_mut() {
            c.mul_assign(&mono)?;
        }
        Ok(out)
    }

    /// Sets the scale metadata without touching the ciphertext: the decoded values are multiplied
    /// by `old / new`. Used where a circuit reinterprets its input (bootstrapping's ModRaise).
    ///
    /// # Errors
    /// [`Error::OutOfRange`] for a scale that is not finite and at least 1.
    pub fn with_scale(&self, a: &Ciphertext, scale: f64) -> Result<Ciphertext> {
        if !(scale.is_finite() && scale >= 1.0) {
            return Err(Error::OutOfRange {
                reason: "scale must be finite and at least 1",
            });
        }
        let mut out = a.clone();
        out.scale = scale;
        Ok(out)
    }

    /// Drops the ciphertext to `level` without rescaling (exact; the scale is unchanged).
    ///
    /// # Errors
    /// [`Error::LevelOutOfRange`] when `level` is above the current level.
    pub fn drop_to_level(&self, a: &Ciphertext, level: usize) -> Result<Ciphertext> {
        if level > a.level() {
            return Err(Error::LevelOutOfRange {
                level,
                max: a.level(),
            });
        }
        let ring = self.params.ring_q(level)?;
        let mut out = a.clone();
        for c in out.inner.c.iter_mut() {
            c.truncate_to(ring)?;
        }
        Ok(out)
    }

    /// The sum of `count` (a power of two) rotations of `a` by `0, step, 2 step, ...`: after it,
    /// every slot `i` holds `sum_j a[i + j step]`. Uses `log2(count)` rotations by `step 2^t`.
    ///
    /// # Errors
    /// [`Error::OutOfRange`] for a count that is not a power of two; [`Error::MissingGaloisKey`].
    pub fn inner_sum(&self, a: &Ciphertext, step: i64, count: usize) -> Result<Ciphertext> {
        if !count.is_power_of_two() {
            return Err(Error::OutOfRange {
                reason: "inner_sum needs a power-of-two count",
            });
        }
        let mut acc = a.clone();
        let mut shift = step;
        let mut c = 1;
        while c < count {
            let r = self.rotate(&acc, shift)?;
            acc = self.add(&acc, &r)?;
            shift *= 2;
            c *= 2;
        }
        Ok(acc)
    }

    /// Divides by the last prime `q_l` with rounding: level `l -> l - 1`, scale `/ q_l`.
    ///
    /// # Errors
    /// [`Error::LevelOutOfRange`] at level 0.
    pub fn rescale(&self, a: &Ciphertext) -> Result<Ciphertext> {
        let level = a.level();
        let div = self.params.rescaler(level)?;
        self.counters.add(Counters::RESCALES, 1);
        let c = a
            .inner
            .c
            .iter()
            .map(|p| div.divide_round_ntt(p))
            .collect::<Result<Vec<_>>>()?;
        let q_l = self.params.q()[level] as f64;
        Ok(Ciphertext {
            inner: RlweCiphertext { c },
            scale: a.scale / q_l,
            slots: a.slots,
        })
    }

    /// Applies `X -> X^g` and switches back to `s` with the Galois key of `g`.
    fn apply_galois(&self, a: &Ciphertext, g: u64) -> Result<Ciphertext> {
        if g == 1 {
            return Ok(a.clone());
        }
        if a.degree() != 1 {
            return Err(Error::InvalidCiphertext {
                reason: "rotation needs a degree-1 ciphertext",
            });
        }
        let key = self
            .keys
            .galois
            .get(&g)
            .ok_or(Error::MissingGaloisKey { galois_element: g })?;
        let c0 = a.inner.c[0].automorphism(g)?;
        let c1 = a.inner.c[1].automorphism(g)?;
        self.counters.add(Counters::KEY_SWITCHES, 1);
        self.counters.add(Counters::DECOMPOSITIONS, 1);
        let (u0, u1) = key_switch(&self.params, &c1, key)?;
        let mut r0 = c0;
        r0.add_assign(&u0)?;
        Ok(Ciphertext {
            inner: RlweCiphertext { c: vec![r0, u1] },
            scale: a.scale,
            slots: a.slots,
        })
    }

    /// Rotations of one ciphertext by each of `ks`, hoisted: the ModUp of `c1` is computed once and
    /// each rotation applies its automorphism to the decomposed digits (Halevi-Shoup hoisting).
    /// Equal to calling [`Evaluator::rotate`] for each `k`, up to the key-switching noise.
    ///
    /// # Errors
    /// [`Error::MissingGaloisKey`] naming the first missing element.
    pub fn rotate_hoisted(&self, a: &Ciphertext, ks: &[i64]) -> Result<Vec<Ciphertext>> {
        if a.degree() != 1 {
            return Err(Error::InvalidCiphertext {
                reason: "rotation needs a degree-1 ciphertext",
            });
        }
        let n = self.params.n();
        let keys = ks
            .iter()
            .map(|&k| {
                let g = galois_element_for_rotation(k, n);
                if g == 1 {
                    return Ok(None); // rotation by a multiple of N/2: the identity
                }
                self.keys
                    .galois
                    .get(&g)
                    .map(|key| Some((g, key)))
                    .ok_or(Error::MissingGaloisKey { galois_element: g })
            })
            .collect::<Result<Vec<_>>>()?;
        if keys.iter().all(|k| k.is_none()) {
            return Ok(vec![a.clone(); keys.len()]);
        }
        let dec = decompose(&self.params, &a.inner.c[1])?;
        self.counters.add(Counters::DECOMPOSITIONS, 1);
        self.counters.add(
            Counters::KEY_SWITCHES,
            keys.iter().filter(|k| k.is_some()).count(),
        );
        keys.into_iter()
            .map(|entry| {
                let Some((g, key)) = entry else {
                    return Ok(a.clone());
                };
                let (u0, u1) = key_switch_decomposed(&self.params, &dec, Some(g), key)?;
                let mut c0 = a.inner.c[0].automorphism(g)?;
                c0.add_assign(&u0)?;
                Ok(Ciphertext {
                    inner: RlweCiphertext { c: vec![c0, u1] },
                    scale: a.scale,
                    slots: a.slots,
                })
            })
            .collect()
    }

    /// Rotates the slots left by `k` (slot `i` receives slot `i + k`, cyclically over the
    /// ciphertext's slot count: with sparse packing the same Galois element rotates the `s` slots).
    ///
    /// # Errors
    /// [`Error::MissingGaloisKey`] naming the element whose key is missing.
    pub fn rotate(&self, a: &Ciphertext, k: i64) -> Result<Ciphertext> {
        self.apply_galois(a, galois_element_for_rotation(k, self.params.n()))
    }

    /// Complex conjugation of every slot.
    ///
    /// # Errors
    /// [`Error::MissingGaloisKey`].
    pub fn conjugate(&self, a: &Ciphertext) -> Result<Ciphertext> {
        self.apply_galois(a, galois_element_for_conjugation(self.params.n()))
    }
}
