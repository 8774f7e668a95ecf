//! RLWE keys, encryption, decryption and hybrid key switching. Nothing here is specific to CKKS
//! encoding: the scheme layer above tracks scales and slots.
//!
//! Key switching follows the hybrid method: the Q primes are grouped in `dnum` digits of `|P|` primes;
//! a switching key holds one RLWE encryption of `P T_i s'` per digit over `Q P`, where `T_i` is 1 modulo
//! the primes of digit `i` and 0 modulo the others. Switching a polynomial `d` decomposes it into its
//! digits (ModUp: fast basis extension of each digit to `Q_l P`), takes the inner product with the key
//! and divides by `P` (ModDown).
//!
//! References:
//! - K. Han, D. Ki, "Better Bootstrapping for Approximate Homomorphic Encryption", CT-RSA 2020
//!   (<https://eprint.iacr.org/2019/688>): hybrid key switching with dnum digits.
//! - J. H. Cheon et al., "A Full RNS Variant of Approximate Homomorphic Encryption", SAC 2018
//!   (<https://eprint.iacr.org/2018/931>).

use crate::error::{Error, Result};
use crate::math::dot::{self, Permutation};
use crate::params::{digits_at_level, Parameters, SecretDistribution};
use crate::ring::basis::RingBasis;
use crate::ring::poly::{for_each_limb_of_two, ntt_automorphism_permutation};
use crate::ring::sampling::{gaussian, ternary, ternary_hamming, uniform};
use crate::ring::{Coeff, Ntt, RnsPoly};
use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRng, SeedableRng};
use rayon::prelude::*;
use std::sync::Arc;
use zeroize::Zeroize;

/// The secret key `s`, over `Q_L P` in NTT form. Zeroized on drop; `Debug` prints no key material.
/// It has no serialization: only its owner holds it.
pub struct SecretKey {
    pub(crate) params: Arc<Parameters>,
    pub(crate) s: RnsPoly<Ntt>,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

impl Drop for SecretKey {
    fn drop(&mut self) {
        self.s.zeroize();
    }
}

/// A public key `(b, a) = (-a s + e, a)` over `Q_L`.
#[derive(Clone, Debug)]
pub struct PublicKey {
    pub(crate) b: RnsPoly<Ntt>,
    pub(crate) a: RnsPoly<Ntt>,
}

/// A key switching key from `s'` to `s`: one pair `(b_i, a_i)` over `Q_L P` per digit.
#[derive(Clone, Debug)]
pub struct SwitchingKey {
    pub(crate) digits: Vec<(RnsPoly<Ntt>, RnsPoly<Ntt>)>,
    /// The highest level it switches at: its limbs are those of `Q_level P`.
    pub(crate) level: usize,
}

impl SwitchingKey {
    /// The highest ciphertext level this key switches at (the parameters' top level unless it was
    /// generated with [`KeyGenerator::gen_galois_key_at_level`]).
    pub fn level(&self) -> usize {
        self.level
    }

    /// Number of digits (dnum).
    pub fn dnum(&self) -> usize {
        self.digits.len()
    }

    /// Bytes held by the key's residues.
    pub fn memory_bytes(&self) -> usize {
        self.digits
            .iter()
            .map(|(b, a)| 8 * (b.as_slice().len() + a.as_slice().len()))
            .sum()
    }
}

/// A ciphertext's polynomials, level and nothing else: `c_0 + c_1 s + c_2 s^2 + ... = m + e mod Q_l`.
#[derive(Clone, Debug, PartialEq)]
pub struct RlweCiphertext {
    /// The components, over `Q_l` in NTT form.
    pub c: Vec<RnsPoly<Ntt>>,
}

impl RlweCiphertext {
    /// The level `l` (the components live over `Q_l`, `l + 1` primes).
    pub fn level(&self) -> usize {
        self.c
            .first()
            .map(|p| p.num_limbs().saturating_sub(1))
            .unwrap_or(0)
    }
}

/// The limbs of `Q_l P` inside a polynomial over `Q_L P`.
fn qp_indices(params: &Parameters, level: usize) -> Vec<usize> {
    key_indices(params, level, params.max_level())
}

/// The limbs of `Q_level P` inside a polynomial over `Q_top P`.
fn key_indices(params: &Parameters, level: usize, top: usize) -> Vec<usize> {
    (0..=level).chain(top + 1..top + 1 + params.p().len()).collect()
}

/// Generates every kind of key from one secret.
#[derive(Debug)]
pub struct KeyGenerator {
    params: Arc<Parameters>,
}

impl KeyGenerator {
    /// A key generator for `params`.
    pub fn new(params: &Arc<Parameters>) -> Self {
        Self {
            params: params.clone(),
        }
    }

    /// A fresh secret key from the distribution of the parameters.
    ///
    /// # Errors
    /// Sampler errors (a Hamming weight above N).
    pub fn gen_secret_key(&self, rng: &mut impl CryptoRng) -> Result<SecretKey> {
        let n = self.params.n();
        let coeffs = match self.params.literal().secret {
            SecretDistribution::UniformTernary => ternary(n, rng),
            SecretDistribution::SparseTernary { hamming_weight } => ternary_hamming(n, hamming_weight, rng)?,
        };
        let ring = self.params.ring_qp(self.params.max_level())?;
        let s = RnsPoly::from_signed(ring, &coeffs)?.into_ntt();
        Ok(SecretKey {
            params: self.params.clone(),
            s,
        })
    }

    /// The secret restricted to the ring over `Q_l` (or `Q_l P` with `with_p`).
    fn secret_at(&self, sk: &SecretKey, level: usize, with_p: bool) -> Result<RnsPoly<Ntt>> {
        check_params(&self.params, &sk.params)?;
        secret_at(sk, level, with_p)
    }

    /// A public key.
    ///
    /// # Errors
    /// [`Error::ParameterMismatch`] for a key of other parameters.
    pub fn gen_public_key(&self, sk: &SecretKey, rng: &mut impl CryptoRng) -> Result<PublicKey> {
        let level = self.params.max_level();
        let s = self.secret_at(sk, level, false)?;
        let ring = self.params.ring_q(level)?;
        let (b, a) = rlwe_sample(ring, &s, rng)?;
        Ok(PublicKey { b, a })
    }

    /// A key switching key from `s_from` (given over `Q_L P`, NTT form) to `sk`.
    fn gen_switching_key(
        &self,
        sk: &SecretKey,
        s_from: &RnsPoly<Ntt>,
        big_l: usize,
        rng: &mut impl CryptoRng,
    ) -> Result<SwitchingKey> {
        let params = &self.params;
        let ring = params.ring_qp(big_l)?;
        let s = self.secret_at(sk, big_l, true)?;
        // P mod each q_j.
        let p_mod_q: Vec<u64> = ring.moduli()[..=big_l]
            .iter()
            .map(|m| params.p().iter().fold(1u64, |acc, &p| m.mul(acc, m.reduce(p))))
            .collect();
        // One ChaCha20 stream per digit, seeded from `rng`, so the digits (each a fresh RLWE sample
        // over Q_L P: most of key generation) are drawn in parallel.
        let ranges = digits_at_level(big_l, params.digit_primes());
        let mut seeds: Vec<[u8; 32]> = ranges
            .iter()
            .map(|_| {
                let mut seed = [0u8; 32];
                rng.fill_bytes(&mut seed);
                seed
            })
            .collect();
        let digits = ranges
            .into_par_iter()
            .zip(seeds.par_iter())
            .map(|(digit, seed)| {
                let mut digit_rng = ChaCha20Rng::from_seed(*seed);
                self.switching_key_digit(ring, &s, s_from, &p_mod_q, digit, &mut digit_rng)
            })
            .collect::<Result<Vec<_>>>();
        seeds.zeroize();
        Ok(SwitchingKey {
            digits: digits?,
            level: big_l,
        })
    }

    /// One digit of a switching key: an RLWE sample plus `P T_i s'` (the residues `P s'_j` on the
    /// digit's primes).
    fn switching_key_digit(
        &self,
        ring: &Arc<RingBasis>,
        s: &RnsPoly<Ntt>,
        s_from: &RnsPoly<Ntt>,
        p_mod_q: &[u64],
        digit: std::ops::Range<usize>,
        rng: &mut impl CryptoRng,
    ) -> Result<(RnsPoly<Ntt>, RnsPoly<Ntt>)> {
        let n = self.params.n();
        let (mut b, a) = rlwe_sample(ring, s, rng)?;
        // b += P T_i s': residues P s'_j on the digit's primes, zero elsewhere.
        let mut gadget = RnsPoly::<Ntt>::zero(ring);
        let mut data = gadget.as_slice().to_vec();
        for j in digit.clone() {
            let m = &ring.moduli()[j];
            let (w, ws) = (p_mod_q[j], m.shoup(p_mod_q[j]));
            let src = s_from.limb(j).ok_or(Error::InvalidBasis {
                reason: "secret limb",
            })?;
            for (dst, &v) in data[j * n..(j + 1) * n].iter_mut().zip(src) {
                *dst = m.mul_shoup(v, w, ws);
            }
        }
        gadget = RnsPoly::from_limbs(ring, data)?;
        b.add_assign(&gadget)?;
        gadget.zeroize();
        Ok((b, a))
    }

    /// The relinearization key: switches `s^2` to `s`.
    ///
    /// # Errors
    /// [`Error::ParameterMismatch`] for a key of other parameters.
    pub fn gen_relin_key(&self, sk: &SecretKey, rng: &mut impl CryptoRng) -> Result<SwitchingKey> {
        check_params(&self.params, &sk.params)?;
        let mut s2 = sk.s.mul(&sk.s)?;
        let key = self.gen_switching_key(sk, &s2, self.params.max_level(), rng);
        s2.zeroize();
        key
    }

    /// The Galois key for `X -> X^g`: switches `s(X^g)` to `s`.
    ///
    /// # Errors
    /// [`Error::ParameterMismatch`], [`Error::InvalidGaloisElement`].
    pub fn gen_galois_key(&self, sk: &SecretKey, g: u64, rng: &mut impl CryptoRng) -> Result<SwitchingKey> {
        self.gen_galois_key_at_level(sk, g, self.params.max_level(), rng)
    }

    /// The Galois key for `X -> X^g` for ciphertexts at `level` and below only: its limbs are those
    /// of `Q_level P` (and its digits those of `Q_level`), so a circuit that rotates only at low
    /// levels (between bootstraps) needs keys `(level + 1 + |P|) / (L + 1 + |P|)` times the size, and
    /// times fewer digits. Switching a ciphertext above `level` with it is an
    /// [`Error::InvalidKey`].
    ///
    /// # Errors
    /// As [`KeyGenerator::gen_galois_key`]; [`Error::LevelOutOfRange`] above the top level.
    pub fn gen_galois_key_at_level(
        &self,
        sk: &SecretKey,
        g: u64,
        level: usize,
        rng: &mut impl CryptoRng,
    ) -> Result<SwitchingKey> {
        check_params(&self.params, &sk.params)?;
        if level > self.params.max_level() {
            return Err(Error::LevelOutOfRange {
                level,
                max: self.params.max_level(),
            });
        }
        let mut sg = sk.s.automorphism(g)?;
        let key = self.gen_switching_key(sk, &sg, level, rng);
        sg.zeroize();
        key
    }
}

fn check_params(a: &Arc<Parameters>, b: &Arc<Parameters>) -> Result<()> {
    if Arc::ptr_eq(a, b) {
        Ok(())
    } else {
        Err(Error::ParameterMismatch)
    }
}

fn secret_at(sk: &SecretKey, level: usize, with_p: bool) -> Result<RnsPoly<Ntt>> {
    let params = &sk.params;
    if with_p {
        sk.s.select_limbs(&qp_indices(params, level), params.ring_qp(level)?)
    } else {
        sk.s.select_limbs(&(0..=level).collect::<Vec<_>>(), params.ring_q(level)?)
    }
}

/// `(b, a) = (-a s + e, a)` with `a` uniform and `e` Gaussian, over `ring`.
fn rlwe_sample(
    ring: &Arc<RingBasis>,
    s: &RnsPoly<Ntt>,
    rng: &mut impl CryptoRng,
) -> Result<(RnsPoly<Ntt>, RnsPoly<Ntt>)> {
    let a: RnsPoly<Ntt> = uniform(ring, rng);
    let e = RnsPoly::<Coeff>::from_signed(ring, &gaussian(ring.n(), rng))?.into_ntt();
    let mut b = a.mul(s)?;
    b.neg_assign();
    b.add_assign(&e)?;
    Ok((b, a))
}

/// Encrypts plaintext polynomials (already encoded, over `Q_l` in NTT form).
#[derive(Debug)]
pub enum Encryptor {
    /// With the public key: anyone can encrypt.
    Public(PublicKey),
    /// With the secret key (smaller noise).
    Secret(Arc<SecretKey>),
}

impl Encryptor {
    /// Encrypts `m` (over `Q_l`, NTT form): `(c0, c1)` with `c0 + c1 s = m + e`.
    ///
    /// # Errors
    /// [`Error::LevelOutOfRange`], [`Error::BasisMismatch`].
    pub fn encrypt(&self, m: &RnsPoly<Ntt>, rng: &mut impl CryptoRng) -> Result<RlweCiphertext> {
        let level = m.num_limbs().saturating_sub(1);
        let ring = m.basis().clone();
        match self {
            Encryptor::Secret(sk) => {
                let s = secret_at(sk, level, false)?;
                ring.check_same(s.basis())?;
                let (mut b, a) = rlwe_sample(&ring, &s, rng)?;
                b.add_assign(m)?;
                Ok(RlweCiphertext { c: vec![b, a] })
            }
            Encryptor::Public(pk) => {
                let idx: Vec<usize> = (0..=level).collect();
                let (pb, pa) = (pk.b.select_limbs(&idx, &ring)?, pk.a.select_limbs(&idx, &ring)?);
                let n = ring.n();
                let v = RnsPoly::<Coeff>::from_signed(&ring, &ternary(n, rng))?.into_ntt();
                let e0 = RnsPoly::<Coeff>::from_signed(&ring, &gaussian(n, rng))?.into_ntt();
                let e1 = RnsPoly::<Coeff>::from_signed(&ring, &gaussian(n, rng))?.into_ntt();
                let mut c0 = pb.mul(&v)?;
                c0.add_assign(&e0)?;
                c0.add_assign(m)?;
                let mut c1 = pa.mul(&v)?;
                c1.add_assign(&e1)?;
                Ok(RlweCiphertext { c: vec![c0, c1] })
            }
        }
    }
}

/// Decrypts: `m + e = c_0 + c_1 s + c_2 s^2 + ...` over `Q_l`, NTT form.
///
/// # Errors
/// [`Error::InvalidCiphertext`] for no component, ring errors for a ciphertext of other parameters.
pub fn decrypt(sk: &SecretKey, ct: &RlweCiphertext) -> Result<RnsPoly<Ntt>> {
    let first = ct.c.first().ok_or(Error::InvalidCiphertext {
        reason: "no components",
    })?;
    let level = ct.level();
    let s = secret_at(sk, level, false)?;
    first.basis().check_same(s.basis())?;
    // Horner: ((c_k s + c_{k-1}) s + ...) + c_0
    let mut acc = ct.c.last().cloned().ok_or(Error::InvalidCiphertext {
        reason: "no components",
    })?;
    for c in ct.c.iter().rev().skip(1) {
        acc.mul_assign(&s)?;
        acc.add_assign(c)?;
    }
    Ok(acc)
}

/// A polynomial decomposed for key switching (the ModUp of every digit, over `Q_l P`, NTT form).
/// Computing it is most of a key switch's cost; hoisting computes it once for many rotations.
#[derive(Clone, Debug)]
pub struct Decomposed {
    level: usize,
    digits: Vec<RnsPoly<Ntt>>,
}

impl Decomposed {
    /// The level of the decomposed polynomial.
    pub fn level(&self) -> usize {
        self.level
    }
}

/// ModUp: splits `d` (over `Q_l`, NTT form) into its digits and extends each to `Q_l P`.
///
/// # Errors
/// [`Error::LevelOutOfRange`] or ring errors for a polynomial of other parameters.
pub fn decompose(params: &Parameters, d: &RnsPoly<Ntt>) -> Result<Decomposed> {
    let level = d.num_limbs().saturating_sub(1);
    d.basis().check_same(params.ring_q(level)?)?;
    let ring_qp = params.ring_qp(level)?;
    let n = params.n();
    let d_coeff = d.clone().into_coeff();
    let mut digits = Vec::new();
    for digit in params.mod_up(level)? {
        let x = d_coeff.select_limbs(&digit.digit.clone().collect::<Vec<_>>(), &digit.digit_ring)?;
        let ext = x.extend_basis(&digit.ext, &digit.other_ring)?.into_ntt();
        let mut up = vec![0u64; n * ring_qp.len()];
        for (k, &i) in digit.others.iter().enumerate() {
            up[i * n..(i + 1) * n].copy_from_slice(&ext.as_slice()[k * n..(k + 1) * n]);
        }
        for i in digit.digit.clone() {
            up[i * n..(i + 1) * n].copy_from_slice(&d.as_slice()[i * n..(i + 1) * n]);
        }
        digits.push(RnsPoly::<Ntt>::from_limbs(ring_qp, up)?);
    }
    Ok(Decomposed { level, digits })
}

/// The inner product of a decomposition with a switching key, then ModDown. With `galois = Some(g)`
/// the automorphism `X -> X^g` is applied to each digit first: since it permutes and negates
/// coefficients, `sigma_g(ModUp(d))` is a valid ModUp of `sigma_g(d)` (same digits, same size of the
/// overflow), which is what makes hoisting correct.
///
/// # Errors
/// [`Error::InvalidKey`] for a key with too few digits; ring errors for mismatched inputs.
pub fn key_switch_decomposed(
    params: &Parameters,
    dec: &Decomposed,
    galois: Option<u64>,
    key: &SwitchingKey,
) -> Result<(RnsPoly<Ntt>, RnsPoly<Ntt>)> {
    let level = dec.level;
    let ring_qp = params.ring_qp(level)?;
    if level > key.level {
        return Err(Error::InvalidKey {
            reason: "switching key generated for a lower level than the ciphertext's",
        });
    }
    let key_idx = key_indices(params, level, key.level);
    if dec.digits.len() > key.digits.len() {
        return Err(Error::InvalidKey {
            reason: "switching key has too few digits for this level",
        });
    }
    let n = params.n();
    let digits = &key.digits[..dec.digits.len()];
    // The key lives over `Q_L P`: its limbs `key_idx` must carry the moduli of `Q_l P`.
    let fits = |x: &RnsPoly<Ntt>| {
        x.n() == n
            && key_idx
                .iter()
                .zip(ring_qp.moduli())
                .all(|(&j, m)| x.basis().moduli().get(j) == Some(m))
    };
    if !digits.iter().all(|(kb, ka)| fits(kb) && fits(ka))
        || !dec.digits.iter().all(|d| d.basis().check_same(ring_qp).is_ok())
    {
        return Err(Error::InvalidKey {
            reason: "switching key or decomposition over another ring",
        });
    }
    // In NTT form an automorphism permutes the evaluations: the inner product reads the digits
    // through the permutation instead of materialising rotated copies.
    let perm = match galois {
        Some(g) => Some(
            Permutation::new(ntt_automorphism_permutation(g, n)?).ok_or(Error::InvalidKey {
                reason: "automorphism is not a permutation",
            })?,
        ),
        None => None,
    };
    let mut out0 = vec![0u64; n * ring_qp.len()];
    let mut out1 = vec![0u64; n * ring_qp.len()];
    fn part(p: &RnsPoly<Ntt>, i: usize, n: usize) -> &[u64] {
        &p.as_slice()[i * n..(i + 1) * n]
    }
    let limb = |k: usize, o0: &mut [u64], o1: &mut [u64]| {
        let j = key_idx[k];
        let a: Vec<&[u64]> = dec.digits.iter().map(|d| part(d, k, n)).collect();
        let b: Vec<&[u64]> = digits.iter().map(|(kb, _)| part(kb, j, n)).collect();
        let e: Vec<&[u64]> = digits.iter().map(|(_, ka)| part(ka, j, n)).collect();
        let m = &ring_qp.moduli()[k];
        dot::dot_pair(o0, o1, &a, perm.as_ref(), &b, &e, m, m.bits());
    };
    for_each_limb_of_two(&mut out0, &mut out1, n, limb);
    let md = params.mod_down(level)?;
    Ok((
        md.divide_round_ntt_owned(RnsPoly::from_raw(ring_qp, out0))?,
        md.divide_round_ntt_owned(RnsPoly::from_raw(ring_qp, out1))?,
    ))
}

/// Key-switches `d` (over `Q_l`, NTT form) with `key`: returns `(u0, u1)` over `Q_l` with
/// `u0 + u1 s = d s' + e_ks`.
///
/// Steps: 1. ModUp ([`decompose`]): `d` to coefficient form, each digit's residues extended to every
/// other prime of `Q_l P` and transformed (the digit's own limbs are `d`'s NTT limbs); 2. inner
/// product with the key's limbs of `Q_l P`, accumulated unreduced; 3. ModDown: divide by `P`.
///
/// # Errors
/// [`Error::LevelOutOfRange`], [`Error::InvalidKey`] or ring errors for mismatched inputs.
pub fn key_switch(
    params: &Parameters,
    d: &RnsPoly<Ntt>,
    key: &SwitchingKey,
) -> Result<(RnsPoly<Ntt>, RnsPoly<Ntt>)> {
    key_switch_decomposed(params, &decompose(params, d)?, None, key)
}
