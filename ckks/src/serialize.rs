//! Versioned binary serialization of parameters, keys, plaintexts and ciphertexts.
//!
//! Every object is `header | body | sha256(header | body)`, with the header
//! `magic "HECK" | format version u16 | kind u8 | parameter digest [32]`. Reading requires the
//! parameters (`from_bytes(bytes, &params)`) and validates everything: magic, version, kind, digest,
//! lengths, levels, slot counts, scales, and that every residue is reduced modulo its prime. The
//! trailing hash makes any corruption a typed error rather than a silently different object.
//! Residues are stored as little-endian u64 (no bit packing yet).
//!
//! The secret key has no `to_bytes`: only its owner can export it, through
//! [`SecretKey::export_owner_only`], which returns a zeroizing buffer.

use crate::error::{Error, Result};
use crate::params::{
    canonical_bytes, digest_of, Parameters, ParametersLiteral, SecretDistribution, SecurityLevel,
};
use crate::ring::basis::RingBasis;
use crate::ring::{Ntt, RnsPoly};
use crate::rlwe::{PublicKey, RlweCiphertext, SecretKey, SwitchingKey};
use crate::scheme::evaluator::{Ciphertext, EvaluationKeys, Plaintext};
use std::sync::Arc;
use zeroize::Zeroizing;

const MAGIC: &[u8; 4] = b"HECK";
/// The format version written and accepted.
pub const FORMAT_VERSION: u16 = 3;
const HEADER_LEN: usize = 4 + 2 + 1 + 32;
const TRAILER_LEN: usize = 32;

/// What a serialized object is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Kind {
    Parameters = 1,
    PublicKey = 2,
    SwitchingKey = 3,
    EvaluationKeys = 4,
    Plaintext = 5,
    Ciphertext = 6,
    SecretKey = 7,
}

fn err(reason: &'static str) -> Error {
    Error::Deserialize { reason }
}

struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    fn new(kind: Kind, digest: [u8; 32]) -> Self {
        let mut buf = Vec::new();
        buf.extend_from_slice(MAGIC);
        buf.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        buf.push(kind as u8);
        buf.extend_from_slice(&digest);
        Self { buf }
    }
    fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    fn f64(&mut self, v: f64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    fn poly(&mut self, p: &RnsPoly<Ntt>) {
        self.u32(p.num_limbs() as u32);
        self.buf.reserve(p.as_slice().len() * 8);
        for &x in p.as_slice() {
            self.buf.extend_from_slice(&x.to_le_bytes());
        }
    }
    fn finish(mut self) -> Vec<u8> {
        let h = digest_of(&self.buf);
        self.buf.extend_from_slice(&h);
        self.buf
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Checks the frame (length, hash, magic, version, kind, digest) and returns a reader of the body.
    fn open(bytes: &'a [u8], kind: Kind, digest: Option<[u8; 32]>) -> Result<Self> {
        if bytes.len() < HEADER_LEN + TRAILER_LEN {
            return Err(err("truncated: shorter than header and trailer"));
        }
        let (framed, trailer) = bytes.split_at(bytes.len() - TRAILER_LEN);
        if digest_of(framed)[..] != trailer[..] {
            return Err(err(
                "integrity hash mismatch: the bytes are corrupted or truncated",
            ));
        }
        if &framed[..4] != MAGIC {
            return Err(err("bad magic: not a ckks object"));
        }
        if u16::from_le_bytes([framed[4], framed[5]]) != FORMAT_VERSION {
            return Err(err("unsupported format version"));
        }
        if framed[6] != kind as u8 {
            return Err(err("object of another kind"));
        }
        if let Some(d) = digest {
            if framed[7..HEADER_LEN] != d[..] {
                return Err(Error::ParameterDigestMismatch);
            }
        }
        Ok(Self {
            buf: &framed[HEADER_LEN..],
            pos: 0,
        })
    }
    fn take(&mut self, k: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(k).ok_or(err("length overflow"))?;
        let s = self.buf.get(self.pos..end).ok_or(err("truncated body"))?;
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32> {
        let mut a = [0u8; 4];
        a.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(a))
    }
    fn u64(&mut self) -> Result<u64> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(a))
    }
    fn f64(&mut self) -> Result<f64> {
        Ok(f64::from_bits(self.u64()?))
    }
    /// A polynomial that must live over `ring`.
    fn poly(&mut self, ring: &Arc<RingBasis>) -> Result<RnsPoly<Ntt>> {
        let limbs = self.u32()? as usize;
        if limbs != ring.len() {
            return Err(err("polynomial has the wrong number of limbs"));
        }
        let count = ring.n() * limbs;
        let raw = self.take(count.checked_mul(8).ok_or(err("length overflow"))?)?;
        let data: Vec<u64> = raw
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect();
        RnsPoly::from_limbs(ring, data).map_err(|_| err("residue not reduced modulo its prime"))
    }
    fn done(&self) -> Result<()> {
        if self.pos == self.buf.len() {
            Ok(())
        } else {
            Err(err("trailing bytes after the object"))
        }
    }
}

/// Serializes a parameter set (its literal and primes).
pub fn parameters_to_bytes(params: &Parameters) -> Vec<u8> {
    let mut w = Writer::new(Kind::Parameters, params.digest());
    w.buf
        .extend_from_slice(&canonical_bytes(params.literal(), params.q(), params.p()));
    w.finish()
}

/// Reads a parameter set and rebuilds it, checking the primes and the security level again.
///
/// # Errors
/// [`Error::Deserialize`] for malformed bytes; [`Error::ParameterDigestMismatch`] when the digest
/// does not match the rebuilt set; the errors of [`Parameters::new`].
pub fn parameters_from_bytes(bytes: &[u8]) -> Result<Arc<Parameters>> {
    let mut r = Reader::open(bytes, Kind::Parameters, None)?;
    let log_n = r.u32()?;
    let mut lists = Vec::new();
    for _ in 0..2 {
        let len = r.u32()? as usize;
        if len > 256 {
            return Err(err("too many primes"));
        }
        lists.push((0..len).map(|_| r.u32()).collect::<Result<Vec<_>>>()?);
    }
    let log_default_scale = r.u32()?;
    let secret = match (r.u8()?, r.u64()?) {
        (0, _) => SecretDistribution::UniformTernary,
        (1, hw) => SecretDistribution::SparseTernary {
            hamming_weight: hw as usize,
        },
        _ => return Err(err("unknown secret distribution")),
    };
    let security = match r.u8()? {
        0 => SecurityLevel::Classical128,
        1 => SecurityLevel::InsecureForTests,
        _ => return Err(err("unknown security level")),
    };
    let dnum = match r.u64()? {
        0 => None,
        d if d <= 256 => Some(d as usize),
        _ => return Err(err("dnum out of range")),
    };
    let log_p = lists.pop().unwrap_or_default();
    let log_q = lists.pop().unwrap_or_default();
    let lit = ParametersLiteral {
        log_n,
        log_q,
        log_p,
        log_default_scale,
        secret,
        security,
        dnum,
    };
    let params = Parameters::new(lit)?;
    // The primes that follow must be the ones the literal generates, and the digest must match.
    let expected = canonical_bytes(params.literal(), params.q(), params.p());
    let consumed = r.pos;
    let rest = r.take(r.buf.len() - consumed)?;
    if rest != &expected[consumed..] {
        return Err(err("primes differ from those the literal generates"));
    }
    let header_digest = &bytes[7..HEADER_LEN];
    if header_digest != params.digest() {
        return Err(Error::ParameterDigestMismatch);
    }
    Ok(params)
}

impl Ciphertext {
    /// Serializes the ciphertext under `params`.
    pub fn to_bytes(&self, params: &Parameters) -> Vec<u8> {
        let mut w = Writer::new(Kind::Ciphertext, params.digest());
        w.u32(self.level() as u32);
        w.f64(self.scale);
        w.u32(self.slots as u32);
        w.u8(self.inner.c.len() as u8);
        for p in &self.inner.c {
            w.poly(p);
        }
        w.finish()
    }

    /// Reads a ciphertext and validates it against `params`.
    ///
    /// # Errors
    /// [`Error::Deserialize`], [`Error::ParameterDigestMismatch`].
    pub fn from_bytes(bytes: &[u8], params: &Parameters) -> Result<Self> {
        let mut r = Reader::open(bytes, Kind::Ciphertext, Some(params.digest()))?;
        let (level, scale, slots) = read_meta(&mut r, params)?;
        let count = r.u8()? as usize;
        if !(2..=3).contains(&count) {
            return Err(err("a ciphertext has 2 or 3 components"));
        }
        let ring = params.ring_q(level)?;
        let c = (0..count).map(|_| r.poly(ring)).collect::<Result<Vec<_>>>()?;
        r.done()?;
        Ok(Ciphertext {
            inner: RlweCiphertext { c },
            scale,
            slots,
        })
    }
}

fn read_meta(r: &mut Reader<'_>, params: &Parameters) -> Result<(usize, f64, usize)> {
    let level = r.u32()? as usize;
    if level > params.max_level() {
        return Err(err("level above the parameters' maximum"));
    }
    let scale = r.f64()?;
    if !(scale.is_finite() && scale >= 1.0) {
        return Err(err("scale must be finite and at least 1"));
    }
    let slots = r.u32()? as usize;
    if !slots.is_power_of_two() || slots > params.max_slots() {
        return Err(err("slot count must be a power of two up to N/2"));
    }
    Ok((level, scale, slots))
}

impl Plaintext {
    /// Serializes the plaintext under `params`.
    pub fn to_bytes(&self, params: &Parameters) -> Vec<u8> {
        let mut w = Writer::new(Kind::Plaintext, params.digest());
        w.u32(self.level() as u32);
        w.f64(self.scale);
        w.u32(self.slots as u32);
        w.poly(&self.poly);
        w.finish()
    }

    /// Reads a plaintext and validates it against `params`.
    ///
    /// # Errors
    /// [`Error::Deserialize`], [`Error::ParameterDigestMismatch`].
    pub fn from_bytes(bytes: &[u8], params: &Parameters) -> Result<Self> {
        let mut r = Reader::open(bytes, Kind::Plaintext, Some(params.digest()))?;
        let (level, scale, slots) = read_meta(&mut r, params)?;
        let poly = r.poly(params.ring_q(level)?)?;
        r.done()?;
        Ok(Plaintext { poly, scale, slots })
    }
}

impl PublicKey {
    /// Serializes the public key under `params`.
    pub fn to_bytes(&self, params: &Parameters) -> Vec<u8> {
        let mut w = Writer::new(Kind::PublicKey, params.digest());
        w.poly(&self.b);
        w.poly(&self.a);
        w.finish()
    }

    /// Reads a public key and validates it against `params`.
    ///
    /// # Errors
    /// [`Error::Deserialize`], [`Error::ParameterDigestMismatch`].
    pub fn from_bytes(bytes: &[u8], params: &Parameters) -> Result<Self> {
        let mut r = Reader::open(bytes, Kind::PublicKey, Some(params.digest()))?;
        let ring = params.ring_q(params.max_level())?;
        let (b, a) = (r.poly(ring)?, r.poly(ring)?);
        r.done()?;
        Ok(PublicKey { b, a })
    }
}

fn write_switching_key(w: &mut Writer, k: &SwitchingKey) {
    w.u32(k.level as u32);
    w.u32(k.digits.len() as u32);
    for (b, a) in &k.digits {
        w.poly(b);
        w.poly(a);
    }
}

fn read_switching_key(r: &mut Reader<'_>, params: &Parameters) -> Result<SwitchingKey> {
    let level = r.u32()? as usize;
    if level > params.max_level() {
        return Err(err("switching key above the parameters' top level"));
    }
    let dnum = r.u32()? as usize;
    if dnum != crate::params::digits_at_level(level, params.digit_primes()).len() {
        return Err(err("switching key has the wrong number of digits"));
    }
    let ring = params.ring_qp(level)?;
    let digits = (0..dnum)
        .map(|_| Ok((r.poly(ring)?, r.poly(ring)?)))
        .collect::<Result<Vec<_>>>()?;
    Ok(SwitchingKey { digits, level })
}

impl SwitchingKey {
    /// Serializes the switching key under `params`.
    pub fn to_bytes(&self, params: &Parameters) -> Vec<u8> {
        let mut w = Writer::new(Kind::SwitchingKey, params.digest());
        write_switching_key(&mut w, self);
        w.finish()
    }

    /// Reads a switching key and validates it against `params`.
    ///
    /// # Errors
    /// [`Error::Deserialize`], [`Error::ParameterDigestMismatch`].
    pub fn from_bytes(bytes: &[u8], params: &Parameters) -> Result<Self> {
        let mut r = Reader::open(bytes, Kind::SwitchingKey, Some(params.digest()))?;
        let k = read_switching_key(&mut r, params)?;
        r.done()?;
        Ok(k)
    }
}

impl EvaluationKeys {
    /// Serializes the evaluation keys (relinearization and Galois keys) under `params`.
    pub fn to_bytes(&self, params: &Parameters) -> Vec<u8> {
        let mut w = Writer::new(Kind::EvaluationKeys, params.digest());
        match &self.relin {
            Some(k) => {
                w.u8(1);
                write_switching_key(&mut w, k);
            }
            None => w.u8(0),
        }
        let mut galois: Vec<_> = self.galois.iter().collect();
        galois.sort_by_key(|(g, _)| **g);
        w.u32(galois.len() as u32);
        for (g, k) in galois {
            w.u64(*g);
            write_switching_key(&mut w, k);
        }
        w.finish()
    }

    /// Reads evaluation keys and validates them against `params`.
    ///
    /// # Errors
    /// [`Error::Deserialize`], [`Error::ParameterDigestMismatch`].
    pub fn from_bytes(bytes: &[u8], params: &Parameters) -> Result<Self> {
        let mut r = Reader::open(bytes, Kind::EvaluationKeys, Some(params.digest()))?;
        let relin = match r.u8()? {
            0 => None,
            1 => Some(read_switching_key(&mut r, params)?),
            _ => return Err(err("bad relinearization-key flag")),
        };
        let count = r.u32()? as usize;
        let two_n = 2 * params.n() as u64;
        let mut galois = std::collections::HashMap::new();
        for _ in 0..count {
            let g = r.u64()?;
            if g >= two_n || g % 2 == 0 || galois.contains_key(&g) {
                return Err(err("Galois element invalid or repeated"));
            }
            galois.insert(g, read_switching_key(&mut r, params)?);
        }
        r.done()?;
        Ok(EvaluationKeys { relin, galois })
    }
}

impl SecretKey {
    /// Exports the secret key. **Only its owner (the client) should call this**: the server side
    /// never holds a secret key. The buffer is zeroized when dropped.
    pub fn export_owner_only(&self) -> Zeroizing<Vec<u8>> {
        let mut w = Writer::new(Kind::SecretKey, self.params.digest());
        w.poly(&self.s);
        let bytes = w.finish();
        Zeroizing::new(bytes)
    }

    /// Imports a secret key exported by [`SecretKey::export_owner_only`].
    ///
    /// # Errors
    /// [`Error::Deserialize`], [`Error::ParameterDigestMismatch`].
    pub fn import_owner_only(bytes: &[u8], params: &Arc<Parameters>) -> Result<Self> {
        let mut r = Reader::open(bytes, Kind::SecretKey, Some(params.digest()))?;
        let s = r.poly(params.ring_qp(params.max_level())?)?;
        r.done()?;
        // A secret is ternary: every coefficient is -1, 0 or 1 (consistently across limbs).
        let mut coeffs = s.clone().into_coeff();
        let ok = {
            let n = coeffs.n();
            let moduli = coeffs.basis().moduli().to_vec();
            let data = coeffs.as_slice();
            (0..n).all(|j| {
                let c0 = moduli[0].center(data[j]);
                (-1..=1).contains(&c0)
                    && moduli
                        .iter()
                        .enumerate()
                        .all(|(i, m)| data[i * n + j] == m.reduce_i64(c0))
            })
        };
        coeffs.zeroize();
        if !ok {
            return Err(err("secret key coefficients are not ternary"));
        }
        Ok(SecretKey {
            params: params.clone(),
            s,
        })
    }
}
