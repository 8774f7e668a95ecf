//! CKKS plaintexts and ciphertexts with their metadata (level, scale, slots), and the evaluator.
//! Operands at different levels or scales are refused with a typed error, never combined silently.

use crate::error::{Error, Result};
use crate::params::Parameters;
use crate::ring::poly::{galois_element_for_conjugation, galois_element_for_rotation};
use crate::rlwe::{decrypt, key_switch, Encryptor, RlweCiphertext, SecretKey, SwitchingKey};
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
    poly: crate::ring::RnsPoly<crate::ring::Ntt>,
    scale: f64,
    slots: usize,
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
    inner: RlweCiphertext,
    scale: f64,
    slots: usize,
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

/// The evaluation keys a server holds: relinearization and Galois keys (no secret).
#[derive(Debug, Default)]
pub struct EvaluationKeys {
    /// Switches `s^2` to `s`.
    pub relin: Option<SwitchingKey>,
    /// Galois keys by Galois element.
    pub galois: HashMap<u64, SwitchingKey>,
}

/// Homomorphic operations.
#[derive(Debug)]
pub struct Evaluator {
    params: Arc<Parameters>,
    keys: Arc<EvaluationKeys>,
}

impl Evaluator {
    /// An evaluator over `params` with `keys`.
    pub fn new(params: &Arc<Parameters>, keys: Arc<EvaluationKeys>) -> Self {
        Self {
            params: params.clone(),
            keys,
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
        let mut out = a.clone();
        for c in out.inner.c.iter_mut() {
            c.mul_assign(&pt.poly)?;
        }
        out.scale *= pt.scale;
        Ok(out)
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
        let (u0, u1) = key_switch(&self.params, &d2, rlk)?;
        d0.add_assign(&u0)?;
        d1.add_assign(&u1)?;
        Ok(Ciphertext {
            inner: RlweCiphertext { c: vec![d0, d1] },
            scale: a.scale * b.scale,
            slots: a.slots,
        })
    }

    /// Divides by the last prime `q_l` with rounding: level `l -> l - 1`, scale `/ q_l`.
    ///
    /// # Errors
    /// [`Error::LevelOutOfRange`] at level 0.
    pub fn rescale(&self, a: &Ciphertext) -> Result<Ciphertext> {
        let level = a.level();
        let div = self.params.rescaler(level)?;
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
        let (u0, u1) = key_switch(&self.params, &c1, key)?;
        let mut r0 = c0;
        r0.add_assign(&u0)?;
        Ok(Ciphertext {
            inner: RlweCiphertext { c: vec![r0, u1] },
            scale: a.scale,
            slots: a.slots,
        })
    }

    /// Rotates the slots left by `k` (slot `i` receives slot `i + k`), with full N/2 slots.
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
