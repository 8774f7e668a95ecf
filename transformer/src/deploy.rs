//! The client/server split of encrypted inference, with files between the two roles: the ViT
//! ([`Client`], [`ServerSetup`], [`Server`]) and the LM ([`LmClient`], [`LmServerSetup`], [`LmServer`],
//! the same files and the same guarantees; the client also receives the token embedding).
//!
//! 1. **Server, setup** ([`ServerSetup::new`]): prepares the model for the parameters and publishes
//!    [`VitInterface`]: the parameters' digest, the image shape, the batch, the layouts, the start
//!    level and the rotations whose keys it needs. The weights stay with the server; what is public is
//!    the architecture's shapes (tokens, widths, classes, depth through the level count) and the data
//!    normalisation.
//! 2. **Client, keys** ([`Client::new`]): makes the secret key (kept, written only by its owner with
//!    [`Client::secret_key_bytes`]), the public key, and the evaluation keys the interface lists,
//!    written one file per key ([`Client::write_evaluation_keys`]) so that neither side holds a second
//!    copy of several gigabytes while (de)serialising.
//! 3. **Client, input** ([`Client::encrypt_images`]): a batch of normalised images in one
//!    [`EncryptedTensor`], tagged with the client's key id.
//! 4. **Server, evaluation** ([`Server::serve`]): the model on the ciphertexts with the evaluation keys;
//!    the output is an [`EncryptedTensor`] too.
//! 5. **Client, output** ([`Client::decrypt`], or [`Client::decrypt_flooded`] for results that will
//!    be shared): the logits of every image.
//!
//! **No secret on the server, by type.** Everything the server reads from disk goes through
//! [`read_server_artefact`], bounded by the sealed trait [`ServerArtefact`], which the public artefacts
//! implement and [`SecretKey`](ckks::rlwe::SecretKey) does not; [`Server`] is built from a
//! [`ServerSetup`] and [`ServerKeys`] only, and none of its fields can hold a secret key. Reading a
//! secret key on the server side does not compile:
//!
//! ```compile_fail
//! # use transformer::deploy::read_server_artefact;
//! # fn f(p: &std::path::Path, params: &ckks::params::Parameters) {
//! let sk: ckks::rlwe::SecretKey = read_server_artefact(p, params).unwrap();
//! # }
//! ```
//!
//! while the same call for a public artefact does:
//!
//! ```
//! # use transformer::deploy::read_server_artefact;
//! # fn f(p: &std::path::Path, params: &ckks::params::Parameters) {
//! let pk: ckks::rlwe::PublicKey = read_server_artefact(p, params).unwrap();
//! # }
//! ```
//!
//! **Mix-ups are errors.** Every artefact carries the parameter digest (checked by the CKKS
//! deserialisers); the evaluation keys and the encrypted tensors carry a key id (the first 16 bytes of
//! the SHA-256 of the client's public key), so keys of one client with the input of another, an output
//! returned to the wrong client, or an input for another model's layout give [`DeployError::Mismatch`]
//! before any computation. (The server cannot check that evaluation keys were honestly derived from the
//! secret behind the public key: a client that lies gets garbage back, only for itself.)

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ckks::circuits::matmul::{EncryptedMatrix, RowMajor};
use ckks::params::{digest_of, Parameters};
use ckks::ring::poly::galois_element_for_rotation;
use ckks::rlwe::{Encryptor, KeyGenerator, PublicKey, SecretKey};
use ckks::scheme::evaluator::{
    decrypt_ckks, decrypt_ckks_flooded, Ciphertext, CkksEncoder, CkksEncryptor, EvaluationKeys, Evaluator,
};
use rand::CryptoRng;
use serde::{Deserialize, Serialize};

use ckks::circuits::bootstrap::{BootstrapConfig, Bootstrapper};

use crate::encrypted::{interleave_patches, EncryptedError, EncryptedVit, ForwardProfile, VitOptions};
use crate::encrypted_lm::{EncryptedLm, LmOptions, TokenEmbedding};
use crate::model::DataPrep;
use crate::reference::{LayerValues, ReferenceModel};

/// Version of the interface, manifest and tensor formats.
pub const FORMAT_VERSION: u32 = 1;
/// Magic bytes of an [`EncryptedTensor`] file.
const TENSOR_MAGIC: &[u8; 8] = b"PTHE-TNS";

/// Errors of the client/server split.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// Reading or writing an artefact.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// A JSON artefact that does not parse.
    #[error("{path}: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: serde_json::Error,
    },
    /// A CKKS error (deserialisation, parameter digests, levels, keys).
    #[error(transparent)]
    Ckks(#[from] ckks::Error),
    /// Preparing or running the encrypted model.
    #[error(transparent)]
    Model(#[from] EncryptedError),
    /// A malformed artefact.
    #[error("malformed artefact: {0}")]
    Format(String),
    /// Artefacts that do not belong together (another client's keys, another model's layout, another
    /// parameter set).
    #[error("mismatch: {0}")]
    Mismatch(String),
    /// Evaluation keys without some of the rotations the model needs.
    #[error("evaluation keys lack the relinearization key or rotations {rotations:?}")]
    MissingKeys {
        /// The missing rotations (empty when only the relinearization key is missing).
        rotations: Vec<i64>,
    },
}

/// Result of this module.
pub type Result<T> = std::result::Result<T, DeployError>;

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DeployError + '_ {
    move |source| DeployError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes `bytes` to `path`, creating its directory.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    std::fs::write(path, bytes).map_err(io(path))
}

/// Reads `path`.
pub fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(io(path))
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(value).map_err(|source| DeployError::Json {
        path: path.to_path_buf(),
        source,
    })?;
    write_file(path, &bytes)
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    serde_json::from_slice(&read_file(path)?).map_err(|source| DeployError::Json {
        path: path.to_path_buf(),
        source,
    })
}

/// A row-major layout as published in the interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    /// Rows (tokens times the batch).
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// Slots between rows.
    pub stride: usize,
    /// Slots per ciphertext.
    pub slots: usize,
}

impl From<RowMajor> for Layout {
    fn from(l: RowMajor) -> Self {
        Self {
            rows: l.rows,
            cols: l.cols,
            stride: l.stride,
            slots: l.slots,
        }
    }
}

impl Layout {
    /// The checked [`RowMajor`] layout.
    ///
    /// # Errors
    /// [`DeployError::Format`] for an impossible layout.
    pub fn row_major(&self) -> Result<RowMajor> {
        RowMajor::new(self.rows, self.cols, Some(self.stride), self.slots)
            .map_err(|e| DeployError::Format(format!("layout {self:?}: {e}")))
    }
}

/// The checks every published interface passes: this format version, made for `params`.
fn check_interface(version: u32, params_digest: &str, params: &Parameters) -> Result<()> {
    if version != FORMAT_VERSION {
        return Err(DeployError::Format(format!(
            "interface version {version}, expected {FORMAT_VERSION}"
        )));
    }
    if params_digest != hex(&params.digest()) {
        return Err(DeployError::Mismatch(
            "the interface was made for other CKKS parameters".into(),
        ));
    }
    Ok(())
}

/// What the server publishes about a prepared model: all a client needs to make its keys and inputs
/// and to read the outputs, and none of the weights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VitInterface {
    /// [`FORMAT_VERSION`].
    pub version: u32,
    /// SHA-256 digest of the CKKS parameters (hex).
    pub params_digest: String,
    /// `[channels, image side, patch side]`.
    pub image: [usize; 3],
    /// Classes.
    pub classes: usize,
    /// Images per ciphertext.
    pub batch: usize,
    /// Layout of the encrypted patch matrix.
    pub input: Layout,
    /// Layout of the encrypted logits (row `b` for image `b`).
    pub output: Layout,
    /// The level inputs are encrypted at.
    pub start_level: usize,
    /// Levels the model consumes (the output comes back at `start_level - levels`).
    pub levels: usize,
    /// Rotations whose Galois keys the server needs (exactly those it uses).
    pub rotations: Vec<i64>,
    /// How the client normalises the pixels, and the data set the model was trained on.
    pub data: Option<DataPrep>,
}

impl VitInterface {
    /// Checks that `params` are the parameters this interface was made for.
    ///
    /// # Errors
    /// [`DeployError::Mismatch`] for other parameters, [`DeployError::Format`] for another version.
    pub fn check_params(&self, params: &Parameters) -> Result<()> {
        check_interface(self.version, &self.params_digest, params)
    }

    /// Writes the interface as JSON.
    ///
    /// # Errors
    /// I/O errors.
    pub fn write(&self, path: &Path) -> Result<()> {
        write_json(path, self)
    }

    /// Reads an interface and checks it against `params`.
    ///
    /// # Errors
    /// I/O and JSON errors, [`VitInterface::check_params`].
    pub fn read(path: &Path, params: &Parameters) -> Result<Self> {
        let i: Self = read_json(path)?;
        i.check_params(params)?;
        Ok(i)
    }
}

/// Identifies a client's key pair: the first 16 bytes of the SHA-256 of its serialised public key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyId(pub [u8; 16]);

impl KeyId {
    fn of(pk: &PublicKey, params: &Parameters) -> Self {
        let d = digest_of(&pk.to_bytes(params));
        let mut id = [0u8; 16];
        id.copy_from_slice(&d[..16]);
        Self(id)
    }
}

impl std::fmt::Display for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex(&self.0))
    }
}

/// Which way an [`EncryptedTensor`] travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TensorKind {
    /// Client to server: the encrypted images.
    Input,
    /// Server to client: the encrypted logits.
    Output,
}

impl TensorKind {
    fn byte(self) -> u8 {
        match self {
            TensorKind::Input => 1,
            TensorKind::Output => 2,
        }
    }
}

/// An encrypted matrix on its way between client and server, with its direction and key id.
#[derive(Clone, Debug)]
pub struct EncryptedTensor {
    /// Direction.
    pub kind: TensorKind,
    /// The key pair it is encrypted under.
    pub key_id: KeyId,
    /// The layout and ciphertexts.
    pub matrix: EncryptedMatrix,
}

impl EncryptedTensor {
    /// Serialises: magic, version, kind, key id, layout, then each ciphertext with its length (each
    /// ciphertext carries the parameter digest and a SHA-256 trailer of its own), then the SHA-256 of
    /// all of it.
    pub fn to_bytes(&self, params: &Parameters) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(TENSOR_MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.push(self.kind.byte());
        out.extend_from_slice(&self.key_id.0);
        let l = &self.matrix.layout;
        for v in [l.rows, l.cols, l.stride, l.slots] {
            out.extend_from_slice(&(v as u64).to_le_bytes());
        }
        out.extend_from_slice(&(self.matrix.tiles.len() as u32).to_le_bytes());
        for ct in &self.matrix.tiles {
            let b = ct.to_bytes(params);
            out.extend_from_slice(&(b.len() as u64).to_le_bytes());
            out.extend_from_slice(&b);
        }
        let digest = digest_of(&out);
        out.extend_from_slice(&digest);
        out
    }

    /// Reads a tensor written by [`EncryptedTensor::to_bytes`] and validates it against `params`.
    ///
    /// # Errors
    /// [`DeployError::Format`] for a checksum mismatch, wrong magic, version, kind, layout, counts or
    /// lengths, or trailing bytes; CKKS deserialisation errors for the ciphertexts.
    pub fn from_bytes(bytes: &[u8], params: &Parameters) -> Result<Self> {
        let Some(body_len) = bytes.len().checked_sub(32) else {
            return Err(DeployError::Format("truncated tensor".into()));
        };
        let (body, digest) = bytes.split_at(body_len);
        if digest_of(body) != digest {
            return Err(DeployError::Format(
                "tensor checksum mismatch (corrupted or truncated)".into(),
            ));
        }
        let mut r = body;
        let mut take = |n: usize, what: &str| -> Result<&[u8]> {
            if r.len() < n {
                return Err(DeployError::Format(format!("truncated tensor ({what})")));
            }
            let (a, b) = r.split_at(n);
            r = b;
            Ok(a)
        };
        if take(8, "magic")? != TENSOR_MAGIC {
            return Err(DeployError::Format("not an encrypted tensor".into()));
        }
        let u32_of = |b: &[u8]| u32::from_le_bytes(b.try_into().unwrap_or([0; 4]));
        let u64_of = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap_or([0; 8]));
        let version = u32_of(take(4, "version")?);
        if version != FORMAT_VERSION {
            return Err(DeployError::Format(format!("tensor version {version}")));
        }
        let kind = match take(1, "kind")?[0] {
            1 => TensorKind::Input,
            2 => TensorKind::Output,
            k => return Err(DeployError::Format(format!("tensor kind {k}"))),
        };
        let mut id = [0u8; 16];
        id.copy_from_slice(take(16, "key id")?);
        let mut dims = [0usize; 4];
        for d in &mut dims {
            *d = usize::try_from(u64_of(take(8, "layout")?))
                .map_err(|_| DeployError::Format("layout out of range".into()))?;
        }
        let layout = Layout {
            rows: dims[0],
            cols: dims[1],
            stride: dims[2],
            slots: dims[3],
        }
        .row_major()?;
        let count = u32_of(take(4, "count")?) as usize;
        if count != layout.tiles() {
            return Err(DeployError::Format(format!(
                "{count} ciphertexts for a layout of {} tiles",
                layout.tiles()
            )));
        }
        let mut tiles = Vec::with_capacity(count);
        for _ in 0..count {
            let len = usize::try_from(u64_of(take(8, "length")?))
                .map_err(|_| DeployError::Format("length out of range".into()))?;
            let ct = Ciphertext::from_bytes(take(len, "ciphertext")?, params)?;
            if ct.slots() != layout.slots {
                return Err(DeployError::Format(format!(
                    "a ciphertext of {} slots in a layout of {}",
                    ct.slots(),
                    layout.slots
                )));
            }
            tiles.push(ct);
        }
        if !r.is_empty() {
            return Err(DeployError::Format(format!("{} trailing bytes", r.len())));
        }
        Ok(Self {
            kind,
            key_id: KeyId(id),
            matrix: EncryptedMatrix { layout, tiles },
        })
    }

    /// Checks direction, key id, layout, level and scale.
    fn check(
        &self,
        kind: TensorKind,
        key_id: KeyId,
        layout: &Layout,
        level: usize,
        scale: f64,
    ) -> Result<()> {
        if self.kind != kind {
            return Err(DeployError::Mismatch(format!(
                "expected an {kind:?} tensor, got an {:?} one",
                self.kind
            )));
        }
        if self.key_id != key_id {
            return Err(DeployError::Mismatch(format!(
                "tensor encrypted under key {}, expected key {key_id}",
                self.key_id
            )));
        }
        if Layout::from(self.matrix.layout) != *layout {
            return Err(DeployError::Mismatch(format!(
                "tensor layout {:?}, expected {layout:?}",
                self.matrix.layout
            )));
        }
        for ct in &self.matrix.tiles {
            let rel = (ct.scale() / scale - 1.0).abs();
            if ct.level() != level || rel.is_nan() || rel > 1e-9 {
                return Err(DeployError::Mismatch(format!(
                    "ciphertext at level {} and scale 2^{:.3}, expected level {level} and 2^{:.3}",
                    ct.level(),
                    ct.scale().log2(),
                    scale.log2()
                )));
            }
        }
        Ok(())
    }
}

mod sealed {
    pub trait Sealed {}
}

/// What the server may read from disk: the public artefacts only. Sealed, and not implemented for
/// [`SecretKey`], so no server code path can deserialise a secret key.
pub trait ServerArtefact: sealed::Sealed + Sized {
    /// Reads and validates the artefact against `params`.
    ///
    /// # Errors
    /// Deserialisation errors.
    fn from_artefact_bytes(bytes: &[u8], params: &Parameters) -> Result<Self>;
}

impl sealed::Sealed for PublicKey {}
impl ServerArtefact for PublicKey {
    fn from_artefact_bytes(bytes: &[u8], params: &Parameters) -> Result<Self> {
        Ok(PublicKey::from_bytes(bytes, params)?)
    }
}
impl sealed::Sealed for EvaluationKeys {}
impl ServerArtefact for EvaluationKeys {
    fn from_artefact_bytes(bytes: &[u8], params: &Parameters) -> Result<Self> {
        Ok(EvaluationKeys::from_bytes(bytes, params)?)
    }
}
impl sealed::Sealed for EncryptedTensor {}
impl ServerArtefact for EncryptedTensor {
    fn from_artefact_bytes(bytes: &[u8], params: &Parameters) -> Result<Self> {
        EncryptedTensor::from_bytes(bytes, params)
    }
}

/// Reads a public artefact (server side). There is deliberately no way to read a secret key here.
///
/// # Errors
/// I/O and deserialisation errors.
pub fn read_server_artefact<T: ServerArtefact>(path: &Path, params: &Parameters) -> Result<T> {
    T::from_artefact_bytes(&read_file(path)?, params)
}

/// Manifest of an evaluation-key directory: one file per key.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct KeyManifest {
    version: u32,
    params_digest: String,
    key_id: KeyId,
    relin: String,
    /// `(rotation, file)`.
    galois: Vec<(i64, String)>,
    /// `(Galois element, file)`: keys named by element (the LM's, conjugation included).
    #[serde(default)]
    galois_elements: Vec<(u64, String)>,
}

/// File name of the manifest in an evaluation-key directory.
pub const KEY_MANIFEST: &str = "manifest.json";

/// What [`Client::write_evaluation_keys`] wrote.
#[derive(Clone, Copy, Debug)]
pub struct KeyStats {
    /// Key files (relinearization + Galois).
    pub files: usize,
    /// Bytes written.
    pub bytes: u64,
}

/// A client's keys (the secret key never leaves it) and what it encrypts and decrypts with; shared
/// by [`Client`] and [`LmClient`].
struct ClientKeys {
    params: Arc<Parameters>,
    sk: SecretKey,
    pk: PublicKey,
    key_id: KeyId,
    encoder: CkksEncoder,
    encryptor: CkksEncryptor,
}

impl std::fmt::Debug for ClientKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientKeys")
            .field("key_id", &self.key_id)
            .field("sk", &self.sk)
            .finish_non_exhaustive()
    }
}

impl ClientKeys {
    fn generate(params: &Arc<Parameters>, rng: &mut impl CryptoRng) -> Result<Self> {
        let kg = KeyGenerator::new(params);
        let sk = kg.gen_secret_key(rng)?;
        let pk = kg.gen_public_key(&sk, rng)?;
        Self::assemble(params, sk, pk)
    }

    fn open(params: &Arc<Parameters>, secret_key: &[u8], public_key: &[u8]) -> Result<Self> {
        let sk = SecretKey::import_owner_only(secret_key, params)?;
        let pk = PublicKey::from_bytes(public_key, params)?;
        Self::assemble(params, sk, pk)
    }

    fn assemble(params: &Arc<Parameters>, sk: SecretKey, pk: PublicKey) -> Result<Self> {
        Ok(Self {
            key_id: KeyId::of(&pk, params),
            encoder: CkksEncoder::new(params)?,
            encryptor: CkksEncryptor(Encryptor::Public(pk.clone())),
            params: params.clone(),
            sk,
            pk,
        })
    }

    fn secret_key_bytes(&self) -> zeroize::Zeroizing<Vec<u8>> {
        self.sk.export_owner_only()
    }

    fn public_key_bytes(&self) -> Vec<u8> {
        self.pk.to_bytes(&self.params)
    }
}

/// The client: owns the secret key; encrypts inputs and decrypts outputs for one [`VitInterface`].
#[derive(Debug)]
pub struct Client {
    keys: ClientKeys,
    interface: VitInterface,
}

impl Client {
    /// A new client with fresh keys for `interface` (checked against `params`).
    ///
    /// # Errors
    /// [`DeployError::Mismatch`] for an interface of other parameters; key generation errors.
    pub fn new(params: &Arc<Parameters>, interface: VitInterface, rng: &mut impl CryptoRng) -> Result<Self> {
        interface.check_params(params)?;
        Ok(Self {
            keys: ClientKeys::generate(params, rng)?,
            interface,
        })
    }

    /// A client from its saved keys ([`Client::secret_key_bytes`], [`Client::public_key_bytes`]).
    ///
    /// # Errors
    /// Deserialisation errors; [`DeployError::Mismatch`] for an interface of other parameters.
    pub fn open(
        params: &Arc<Parameters>,
        interface: VitInterface,
        secret_key: &[u8],
        public_key: &[u8],
    ) -> Result<Self> {
        interface.check_params(params)?;
        Ok(Self {
            keys: ClientKeys::open(params, secret_key, public_key)?,
            interface,
        })
    }

    /// The key id tagged on everything this client sends.
    pub fn key_id(&self) -> KeyId {
        self.keys.key_id
    }

    /// The interface it works with.
    pub fn interface(&self) -> &VitInterface {
        &self.interface
    }

    /// The secret key, serialised for its owner's own storage (zeroized when dropped). Never send it.
    pub fn secret_key_bytes(&self) -> zeroize::Zeroizing<Vec<u8>> {
        self.keys.secret_key_bytes()
    }

    /// The public key, serialised.
    pub fn public_key_bytes(&self) -> Vec<u8> {
        self.keys.public_key_bytes()
    }

    /// Generates the relinearization key and a Galois key for every rotation of the interface, and
    /// writes each to its own file in `dir` with a manifest: one key in memory at a time.
    ///
    /// # Errors
    /// Key generation and I/O errors.
    pub fn write_evaluation_keys(&self, dir: &Path, rng: &mut impl CryptoRng) -> Result<KeyStats> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let kg = KeyGenerator::new(&self.keys.params);
        let mut bytes = 0u64;
        let mut write = |name: &str, keys: EvaluationKeys| -> Result<()> {
            let b = keys.to_bytes(&self.keys.params);
            bytes += b.len() as u64;
            write_file(&dir.join(name), &b)
        };
        write(
            "relin.bin",
            EvaluationKeys {
                relin: Some(kg.gen_relin_key(&self.keys.sk, rng)?),
                ..Default::default()
            },
        )?;
        let mut galois = Vec::with_capacity(self.interface.rotations.len());
        for &r in &self.interface.rotations {
            let g = galois_element_for_rotation(r, self.keys.params.n());
            let mut keys = EvaluationKeys::default();
            keys.galois.insert(g, kg.gen_galois_key(&self.keys.sk, g, rng)?);
            let name = format!("rot_{r}.bin");
            write(&name, keys)?;
            galois.push((r, name));
        }
        let files = galois.len() + 1;
        write_json(
            &dir.join(KEY_MANIFEST),
            &KeyManifest {
                version: FORMAT_VERSION,
                params_digest: hex(&self.keys.params.digest()),
                key_id: self.keys.key_id,
                relin: "relin.bin".into(),
                galois,
                galois_elements: Vec::new(),
            },
        )?;
        Ok(KeyStats { files, bytes })
    }

    /// Encrypts up to `interface.batch` normalised `[channels, side, side]` images into one input.
    ///
    /// # Errors
    /// [`DeployError::Model`] for more images than the batch or images of another shape; encryption
    /// errors.
    pub fn encrypt_images<I: AsRef<[f64]>>(
        &self,
        images: &[I],
        rng: &mut impl CryptoRng,
    ) -> Result<EncryptedTensor> {
        let i = &self.interface;
        let layout = i.input.row_major()?;
        let [c, s, p] = i.image;
        let patches = interleave_patches(images, (c, s, p), layout, i.batch)?;
        let matrix = EncryptedMatrix::encrypt(
            &self.keys.params,
            &self.keys.encoder,
            &self.keys.encryptor,
            layout,
            &patches,
            i.start_level,
            rng,
        )?;
        Ok(EncryptedTensor {
            kind: TensorKind::Input,
            key_id: self.keys.key_id,
            matrix,
        })
    }

    /// The logits of every image of the batch (row `b` for image `b`; rows past the images encrypted
    /// hold the logits of a zero image).
    ///
    /// # Errors
    /// [`DeployError::Mismatch`] for an output of another client, layout or level; decryption errors.
    pub fn decrypt(&self, output: &EncryptedTensor) -> Result<Vec<Vec<f64>>> {
        self.decrypt_with(output, |ct| Ok(decrypt_ckks(&self.keys.sk, ct)?))
    }

    /// As [`Client::decrypt`] with noise flooding of `2^flood_bits` per coefficient
    /// ([`decrypt_ckks_flooded`]): for outputs that will be shared, at the stated cost in precision.
    ///
    /// # Errors
    /// As [`Client::decrypt`]; a flooding bound too close to `q_0`.
    pub fn decrypt_flooded(
        &self,
        output: &EncryptedTensor,
        flood_bits: u32,
        rng: &mut impl CryptoRng,
    ) -> Result<Vec<Vec<f64>>> {
        self.decrypt_with(output, |ct| {
            Ok(decrypt_ckks_flooded(&self.keys.sk, ct, flood_bits, rng)?)
        })
    }

    /// **Debug mode**: decrypts the layer outputs of [`Server::serve_traced`] (row `t * batch + b`
    /// is token `t` of image `b`; `logits` has row `b` for image `b`).
    ///
    /// # Errors
    /// Decryption and decoding errors.
    pub fn decrypt_trace(&self, trace: &[(String, EncryptedMatrix)]) -> Result<Vec<LayerValues>> {
        trace
            .iter()
            .map(|(name, m)| {
                let rows = self.decode_matrix(m, |ct| Ok(decrypt_ckks(&self.keys.sk, ct)?))?;
                Ok((name.clone(), rows))
            })
            .collect()
    }

    /// The rows of `m`, each tile decrypted by `dec` and decoded.
    fn decode_matrix(
        &self,
        m: &EncryptedMatrix,
        mut dec: impl FnMut(&Ciphertext) -> Result<ckks::scheme::evaluator::Plaintext>,
    ) -> Result<Vec<Vec<f64>>> {
        let decoded = m
            .tiles
            .iter()
            .map(|ct| Ok(self.keys.encoder.decode(&dec(ct)?)?))
            .collect::<Result<Vec<_>>>()?;
        Ok(m.layout.unpack(&decoded)?)
    }

    fn decrypt_with(
        &self,
        output: &EncryptedTensor,
        dec: impl FnMut(&Ciphertext) -> Result<ckks::scheme::evaluator::Plaintext>,
    ) -> Result<Vec<Vec<f64>>> {
        let i = &self.interface;
        let level = i.start_level.checked_sub(i.levels).ok_or_else(|| {
            DeployError::Format(format!(
                "interface: {} levels from start level {}",
                i.levels, i.start_level
            ))
        })?;
        output.check(
            TensorKind::Output,
            self.keys.key_id,
            &i.output,
            level,
            self.keys.params.default_scale(),
        )?;
        self.decode_matrix(&output.matrix, dec)
    }
}

/// The server's prepared model before it has keys: what it publishes as a [`VitInterface`].
#[derive(Debug)]
pub struct ServerSetup {
    params: Arc<Parameters>,
    vit: EncryptedVit,
    interface: VitInterface,
}

impl ServerSetup {
    /// Prepares `model` for inputs at the top level of `params`.
    ///
    /// # Errors
    /// [`DeployError::Model`] for a model that is unsupported or does not fit the parameters (levels,
    /// slots).
    pub fn new(
        model: &ReferenceModel,
        params: &Arc<Parameters>,
        options: VitOptions,
        data: Option<DataPrep>,
    ) -> Result<Self> {
        let encoder = CkksEncoder::new(params)?;
        let vit = EncryptedVit::with_options(model, params, &encoder, params.max_level(), options)?;
        let (c, s, p) = vit.image_shape();
        let interface = VitInterface {
            version: FORMAT_VERSION,
            params_digest: hex(&params.digest()),
            image: [c, s, p],
            classes: vit.output_layout().cols,
            batch: vit.batch(),
            input: vit.input_layout().into(),
            output: vit.output_layout().into(),
            start_level: vit.start_level(),
            levels: vit.levels_needed(),
            rotations: vit.rotations_needed(),
            data,
        };
        Ok(Self {
            params: params.clone(),
            vit,
            interface,
        })
    }

    /// The interface to publish.
    pub fn interface(&self) -> &VitInterface {
        &self.interface
    }

    /// The prepared model.
    pub fn model(&self) -> &EncryptedVit {
        &self.vit
    }
}

/// Evaluation keys as the server loaded them, with the id of the client they belong to.
#[derive(Debug)]
pub struct ServerKeys {
    keys: EvaluationKeys,
    key_id: KeyId,
}

impl ServerKeys {
    /// Reads an evaluation-key directory written by [`Client::write_evaluation_keys`].
    ///
    /// # Errors
    /// I/O and deserialisation errors; [`DeployError::Mismatch`] for keys of other parameters;
    /// [`DeployError::Format`] when a file holds another key than its manifest entry says.
    pub fn read(dir: &Path, params: &Parameters) -> Result<Self> {
        let m: KeyManifest = read_json(&dir.join(KEY_MANIFEST))?;
        if m.version != FORMAT_VERSION {
            return Err(DeployError::Format(format!("key manifest version {}", m.version)));
        }
        if m.params_digest != hex(&params.digest()) {
            return Err(DeployError::Mismatch(
                "evaluation keys made for other CKKS parameters".into(),
            ));
        }
        let file = |name: &str| -> Result<PathBuf> {
            // Plain file names only: the manifest cannot point outside its directory.
            if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
                return Err(DeployError::Format(format!("key file name {name:?}")));
            }
            Ok(dir.join(name))
        };
        let relin: EvaluationKeys = read_server_artefact(&file(&m.relin)?, params)?;
        let mut keys = EvaluationKeys {
            relin: relin.relin,
            ..Default::default()
        };
        if keys.relin.is_none() || !relin.galois.is_empty() {
            return Err(DeployError::Format(format!(
                "{} does not hold exactly the relinearization key",
                m.relin
            )));
        }
        let by_rotation = m
            .galois
            .iter()
            .map(|(r, name)| (galois_element_for_rotation(*r, params.n()), name));
        for (g, name) in by_rotation.chain(m.galois_elements.iter().map(|(g, name)| (*g, name))) {
            let k: EvaluationKeys = read_server_artefact(&file(name)?, params)?;
            match (k.relin, k.galois.len(), k.galois.into_iter().next()) {
                (None, 1, Some((h, key))) if h == g => {
                    keys.galois.insert(g, key);
                }
                _ => {
                    return Err(DeployError::Format(format!(
                        "{name} does not hold exactly the key of Galois element {g}"
                    )))
                }
            }
        }
        Ok(Self {
            keys,
            key_id: m.key_id,
        })
    }

    /// Bytes held by the keys.
    pub fn memory_bytes(&self) -> usize {
        self.keys.memory_bytes()
    }

    /// The client the keys belong to.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }
}

/// What [`Server::serve_report`] returns.
#[derive(Debug)]
pub struct ServeReport {
    /// The encrypted logits.
    pub output: EncryptedTensor,
    /// The encrypted layer outputs (debug mode only; empty otherwise).
    pub trace: Vec<(String, EncryptedMatrix)>,
    /// Where the time went.
    pub profile: ForwardProfile,
}

/// The server: the prepared model and the evaluation keys of one client. No secret key can be
/// stored in it (see the module documentation).
#[derive(Debug)]
pub struct Server {
    setup: ServerSetup,
    eval: Evaluator,
    key_id: KeyId,
}

impl Server {
    /// The server for `setup` with `keys`.
    ///
    /// # Errors
    /// [`DeployError::MissingKeys`] when the relinearization key or a needed rotation is absent.
    pub fn new(setup: ServerSetup, keys: ServerKeys) -> Result<Self> {
        let have: BTreeSet<u64> = keys.keys.galois.keys().copied().collect();
        let n = setup.params.n();
        let missing: Vec<i64> = setup
            .interface
            .rotations
            .iter()
            .copied()
            .filter(|&r| !have.contains(&galois_element_for_rotation(r, n)))
            .collect();
        if !missing.is_empty() || keys.keys.relin.is_none() {
            return Err(DeployError::MissingKeys { rotations: missing });
        }
        Ok(Self {
            eval: Evaluator::new(&setup.params, Arc::new(keys.keys)),
            key_id: keys.key_id,
            setup,
        })
    }

    /// The interface it serves.
    pub fn interface(&self) -> &VitInterface {
        &self.setup.interface
    }

    /// Operations its evaluator performed so far (compare one forward with
    /// [`EncryptedVit::predicted_op_counts`] of [`ServerSetup::model`]).
    pub fn op_counts(&self) -> ckks::scheme::evaluator::OpCounts {
        self.eval.op_counts()
    }

    /// Sets the operation counts back to zero.
    pub fn reset_op_counts(&self) {
        self.eval.reset_op_counts();
    }

    /// The operations one forward is predicted to perform.
    pub fn predicted_op_counts(&self) -> ckks::scheme::evaluator::OpCounts {
        self.setup.vit.predicted_op_counts()
    }

    /// Runs the model on an encrypted input of this server's client.
    ///
    /// # Errors
    /// [`DeployError::Mismatch`] for an input of another client, direction, layout, level or scale;
    /// evaluation errors.
    pub fn serve(&self, input: &EncryptedTensor) -> Result<EncryptedTensor> {
        Ok(self.serve_report(input, false)?.output)
    }

    /// **Debug mode**: as [`Server::serve`], also returning the encrypted token matrix after every
    /// layer ([`EncryptedVit::forward_traced`]) for [`Client::decrypt_trace`]. The client then sees
    /// the model's intermediate activations on its input, which say more about the weights than the
    /// logits do: for debugging a model of one's own, not for serving others.
    ///
    /// # Errors
    /// As [`Server::serve`].
    pub fn serve_traced(
        &self,
        input: &EncryptedTensor,
    ) -> Result<(EncryptedTensor, Vec<(String, EncryptedMatrix)>)> {
        let r = self.serve_report(input, true)?;
        Ok((r.output, r.trace))
    }

    /// [`Server::serve`] with where the time went, and with the layer trace of
    /// [`Server::serve_traced`] if `trace` (debug mode: see there).
    ///
    /// # Errors
    /// As [`Server::serve`].
    pub fn serve_report(&self, input: &EncryptedTensor, trace: bool) -> Result<ServeReport> {
        let i = &self.setup.interface;
        input.check(
            TensorKind::Input,
            self.key_id,
            &i.input,
            i.start_level,
            self.setup.params.default_scale(),
        )?;
        let mut layers = Vec::new();
        let (matrix, profile) = self
            .setup
            .vit
            .forward_traced(&self.eval, &input.matrix, |name, m| {
                if trace {
                    layers.push((name.to_string(), m.clone()))
                }
            })?;
        Ok(ServeReport {
            output: EncryptedTensor {
                kind: TensorKind::Output,
                key_id: self.key_id,
                matrix,
            },
            trace: layers,
            profile,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The language model: the same roles and files, with the client's part of the model (the token
// embedding) published to it, Galois keys generated at the levels they are used, and the logits
// returned as one tensor per `stride` columns of the vocabulary.

/// Magic bytes of a [`TokenEmbedding`] file.
const EMBEDDING_MAGIC: &[u8; 8] = b"PTHE-EMB";

/// What the server publishes about a prepared LM: the client's keys, inputs and outputs follow from
/// it. The block weights stay with the server; the token embedding goes to the client separately
/// ([`embedding_to_bytes`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LmInterface {
    /// [`FORMAT_VERSION`].
    pub version: u32,
    /// SHA-256 digest of the CKKS parameters (hex).
    pub params_digest: String,
    /// Tokens per window.
    pub tokens: usize,
    /// Vocabulary size.
    pub vocab: usize,
    /// Windows per ciphertext.
    pub batch: usize,
    /// Layout of the encrypted token matrix.
    pub input: Layout,
    /// Layouts of the encrypted logits, one per `stride` columns of the vocabulary.
    pub outputs: Vec<Layout>,
    /// The level inputs are encrypted at.
    pub start_level: usize,
    /// The level of the logits.
    pub output_level: usize,
    /// Bootstraps per forward.
    pub bootstraps: usize,
    /// `(Galois element, level)`: every key the server needs and the level it must reach.
    pub galois: Vec<(u64, usize)>,
}

impl LmInterface {
    /// Checks that `params` are the parameters this interface was made for.
    ///
    /// # Errors
    /// [`DeployError::Mismatch`] for other parameters, [`DeployError::Format`] for another version.
    pub fn check_params(&self, params: &Parameters) -> Result<()> {
        check_interface(self.version, &self.params_digest, params)
    }

    /// Writes the interface as JSON.
    ///
    /// # Errors
    /// I/O errors.
    pub fn write(&self, path: &Path) -> Result<()> {
        write_json(path, self)
    }

    /// Reads an interface and checks it against `params`.
    ///
    /// # Errors
    /// I/O and JSON errors, [`LmInterface::check_params`].
    pub fn read(path: &Path, params: &Parameters) -> Result<Self> {
        let i: Self = read_json(path)?;
        i.check_params(params)?;
        Ok(i)
    }
}

/// Serialises the client's part of an LM: magic, version, vocabulary, width, tokens, the table and
/// the positions (f64, little endian), then the SHA-256 of all of it.
pub fn embedding_to_bytes(e: &TokenEmbedding) -> Vec<u8> {
    let mut out = Vec::with_capacity(48 + 8 * (e.table.len() + e.pos.len()));
    out.extend_from_slice(EMBEDDING_MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    for v in [e.vocab, e.dim, e.tokens] {
        out.extend_from_slice(&(v as u64).to_le_bytes());
    }
    for v in e.table.iter().chain(&e.pos) {
        out.extend_from_slice(&v.to_le_bytes());
    }
    let digest = digest_of(&out);
    out.extend_from_slice(&digest);
    out
}

/// Reads [`embedding_to_bytes`].
///
/// # Errors
/// [`DeployError::Format`] for a checksum mismatch, another magic or version, sizes that do not
/// add up, or values that are not finite.
pub fn embedding_from_bytes(bytes: &[u8]) -> Result<TokenEmbedding> {
    let body_len = bytes
        .len()
        .checked_sub(32)
        .ok_or_else(|| DeployError::Format("truncated embedding".into()))?;
    let (body, digest) = bytes.split_at(body_len);
    if digest_of(body) != digest {
        return Err(DeployError::Format(
            "embedding checksum mismatch (corrupted or truncated)".into(),
        ));
    }
    if body.len() < 40 || &body[..8] != EMBEDDING_MAGIC {
        return Err(DeployError::Format("not a token embedding".into()));
    }
    let version = u32::from_le_bytes([body[8], body[9], body[10], body[11]]);
    if version != FORMAT_VERSION {
        return Err(DeployError::Format(format!("embedding version {version}")));
    }
    let dims: Vec<usize> = body[12..36]
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as usize)
        .collect();
    let (vocab, dim, tokens) = (dims[0], dims[1], dims[2]);
    let values = &body[36..];
    let n = vocab
        .checked_mul(dim)
        .and_then(|a| tokens.checked_mul(dim).and_then(|b| a.checked_add(b)))
        .ok_or_else(|| DeployError::Format("embedding sizes overflow".into()))?;
    if values.len() != 8 * n {
        return Err(DeployError::Format(format!(
            "{} bytes of values for {vocab} x {dim} plus {tokens} x {dim}",
            values.len()
        )));
    }
    let v: Vec<f64> = values
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
        .collect();
    if v.iter().any(|x| !x.is_finite()) {
        return Err(DeployError::Format("embedding values that are not finite".into()));
    }
    let (table, pos) = v.split_at(vocab * dim);
    Ok(TokenEmbedding {
        vocab,
        dim,
        tokens,
        table: table.to_vec(),
        pos: pos.to_vec(),
    })
}

/// The server's prepared LM before it has keys.
#[derive(Debug)]
pub struct LmServerSetup {
    params: Arc<Parameters>,
    lm: EncryptedLm,
    interface: LmInterface,
}

impl LmServerSetup {
    /// Prepares `model` for inputs at the bootstrapping output level, bootstrapping with `boot` on
    /// the slots the batch fills ([`EncryptedLm::slots_needed`]; `boot.slots` is set to it).
    ///
    /// # Errors
    /// [`DeployError::Model`] for a model that is unsupported or does not fit (see
    /// [`EncryptedLm::new`]); bootstrapping preparation errors.
    pub fn new(
        model: &ReferenceModel,
        params: &Arc<Parameters>,
        boot: BootstrapConfig,
        options: LmOptions,
        calibration: &[Vec<u32>],
    ) -> Result<Self> {
        let encoder = CkksEncoder::new(params)?;
        let boot = BootstrapConfig {
            slots: Some(EncryptedLm::slots_needed(model, options.batch)),
            ..boot
        };
        let boot = Arc::new(Bootstrapper::new(params, &encoder, boot)?);
        let start = boot.output_level();
        let lm = EncryptedLm::new(model, params, &encoder, Some(boot), start, options, calibration)?;
        let interface = LmInterface {
            version: FORMAT_VERSION,
            params_digest: hex(&params.digest()),
            tokens: lm.tokens(),
            vocab: lm.vocab(),
            batch: lm.batch(),
            input: lm.input_layout().into(),
            outputs: lm.output_layouts().into_iter().map(Layout::from).collect(),
            start_level: lm.start_level(),
            output_level: lm.output_level(),
            bootstraps: lm.bootstraps_planned(),
            galois: lm.galois_keys_needed(),
        };
        Ok(Self {
            params: params.clone(),
            lm,
            interface,
        })
    }

    /// The interface to publish.
    pub fn interface(&self) -> &LmInterface {
        &self.interface
    }

    /// The client's part of the model, to publish with the interface.
    pub fn embedding(&self) -> &TokenEmbedding {
        self.lm.embedding()
    }

    /// The prepared model.
    pub fn model(&self) -> &EncryptedLm {
        &self.lm
    }
}

/// The LM client: owns the secret key and the token embedding; encrypts windows, decrypts logits.
#[derive(Debug)]
pub struct LmClient {
    keys: ClientKeys,
    interface: LmInterface,
    embedding: TokenEmbedding,
}

impl LmClient {
    /// A new client with fresh keys for `interface` (checked against `params`) and the published
    /// `embedding`.
    ///
    /// # Errors
    /// [`DeployError::Mismatch`] for an interface of other parameters or an embedding of other
    /// shapes; key generation errors.
    pub fn new(
        params: &Arc<Parameters>,
        interface: LmInterface,
        embedding: TokenEmbedding,
        rng: &mut impl CryptoRng,
    ) -> Result<Self> {
        Self::check(params, &interface, &embedding)?;
        Ok(Self {
            keys: ClientKeys::generate(params, rng)?,
            interface,
            embedding,
        })
    }

    /// A client from its saved keys ([`LmClient::secret_key_bytes`],
    /// [`LmClient::public_key_bytes`]).
    ///
    /// # Errors
    /// As [`LmClient::new`]; deserialisation errors.
    pub fn open(
        params: &Arc<Parameters>,
        interface: LmInterface,
        embedding: TokenEmbedding,
        secret_key: &[u8],
        public_key: &[u8],
    ) -> Result<Self> {
        Self::check(params, &interface, &embedding)?;
        Ok(Self {
            keys: ClientKeys::open(params, secret_key, public_key)?,
            interface,
            embedding,
        })
    }

    fn check(params: &Parameters, interface: &LmInterface, embedding: &TokenEmbedding) -> Result<()> {
        interface.check_params(params)?;
        if embedding.vocab != interface.vocab
            || embedding.tokens != interface.tokens
            || embedding.dim != interface.input.cols
        {
            return Err(DeployError::Mismatch(format!(
                "an embedding of {} x {} for {} tokens, the interface says {} x {} for {}",
                embedding.vocab,
                embedding.dim,
                embedding.tokens,
                interface.vocab,
                interface.input.cols,
                interface.tokens
            )));
        }
        Ok(())
    }

    /// The interface it works with.
    pub fn interface(&self) -> &LmInterface {
        &self.interface
    }

    /// The secret key, serialised for its owner's own storage (zeroized when dropped). Never send it.
    pub fn secret_key_bytes(&self) -> zeroize::Zeroizing<Vec<u8>> {
        self.keys.secret_key_bytes()
    }

    /// The public key, serialised.
    pub fn public_key_bytes(&self) -> Vec<u8> {
        self.keys.public_key_bytes()
    }

    /// The key id tagged on everything this client sends.
    pub fn key_id(&self) -> KeyId {
        self.keys.key_id
    }

    /// The relinearization key and every Galois key of the interface, each generated only up to
    /// the level the interface lists for it, one file per key with a manifest.
    ///
    /// # Errors
    /// Key generation and I/O errors.
    pub fn write_evaluation_keys(&self, dir: &Path, rng: &mut impl CryptoRng) -> Result<KeyStats> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let kg = KeyGenerator::new(&self.keys.params);
        let mut bytes = 0u64;
        let mut write = |name: &str, keys: EvaluationKeys| -> Result<()> {
            let b = keys.to_bytes(&self.keys.params);
            bytes += b.len() as u64;
            write_file(&dir.join(name), &b)
        };
        write(
            "relin.bin",
            EvaluationKeys {
                relin: Some(kg.gen_relin_key(&self.keys.sk, rng)?),
                ..Default::default()
            },
        )?;
        let mut galois_elements = Vec::with_capacity(self.interface.galois.len());
        for &(g, level) in &self.interface.galois {
            let mut keys = EvaluationKeys::default();
            keys.galois
                .insert(g, kg.gen_galois_key_at_level(&self.keys.sk, g, level, rng)?);
            let name = format!("galois_{g}.bin");
            write(&name, keys)?;
            galois_elements.push((g, name));
        }
        let files = galois_elements.len() + 1;
        write_json(
            &dir.join(KEY_MANIFEST),
            &KeyManifest {
                version: FORMAT_VERSION,
                params_digest: hex(&self.keys.params.digest()),
                key_id: self.keys.key_id,
                relin: "relin.bin".into(),
                galois: Vec::new(),
                galois_elements,
            },
        )?;
        Ok(KeyStats { files, bytes })
    }

    /// Embeds (locally) and encrypts up to `interface.batch` windows of `tokens` ids.
    ///
    /// # Errors
    /// [`DeployError::Model`] for windows that do not fit; encryption errors.
    pub fn encrypt_windows(&self, windows: &[Vec<u32>], rng: &mut impl CryptoRng) -> Result<EncryptedTensor> {
        let i = &self.interface;
        let m = self.embedding.matrix(windows, i.batch)?;
        let matrix = EncryptedMatrix::encrypt(
            &self.keys.params,
            &self.keys.encoder,
            &self.keys.encryptor,
            i.input.row_major()?,
            &m,
            i.start_level,
            rng,
        )?;
        Ok(EncryptedTensor {
            kind: TensorKind::Input,
            key_id: self.keys.key_id,
            matrix,
        })
    }

    /// The next-token logits `[window][position][vocab]` of every window of the batch (windows past
    /// those encrypted repeat the first).
    ///
    /// # Errors
    /// [`DeployError::Mismatch`] for outputs of another client, count, layout or level; decryption
    /// errors.
    pub fn decrypt(&self, outputs: &[EncryptedTensor]) -> Result<Vec<Vec<Vec<f64>>>> {
        self.decrypt_with(outputs, |ct| Ok(decrypt_ckks(&self.keys.sk, ct)?))
    }

    /// As [`LmClient::decrypt`] with noise flooding of `2^flood_bits` per coefficient
    /// ([`decrypt_ckks_flooded`]): for logits that will be shared.
    ///
    /// # Errors
    /// As [`LmClient::decrypt`]; a flooding bound too close to `q_0`.
    pub fn decrypt_flooded(
        &self,
        outputs: &[EncryptedTensor],
        flood_bits: u32,
        rng: &mut impl CryptoRng,
    ) -> Result<Vec<Vec<Vec<f64>>>> {
        self.decrypt_with(outputs, |ct| {
            Ok(decrypt_ckks_flooded(&self.keys.sk, ct, flood_bits, rng)?)
        })
    }

    fn decrypt_with(
        &self,
        outputs: &[EncryptedTensor],
        mut dec: impl FnMut(&Ciphertext) -> Result<ckks::scheme::evaluator::Plaintext>,
    ) -> Result<Vec<Vec<Vec<f64>>>> {
        let i = &self.interface;
        if outputs.len() != i.outputs.len() {
            return Err(DeployError::Mismatch(format!(
                "{} output tensors, the interface has {}",
                outputs.len(),
                i.outputs.len()
            )));
        }
        let mut out = vec![vec![Vec::with_capacity(i.vocab); i.tokens]; i.batch];
        for (t, layout) in outputs.iter().zip(&i.outputs) {
            t.check(
                TensorKind::Output,
                self.keys.key_id,
                layout,
                i.output_level,
                self.keys.params.default_scale(),
            )?;
            let decoded = t
                .matrix
                .tiles
                .iter()
                .map(|ct| Ok(self.keys.encoder.decode(&dec(ct)?)?))
                .collect::<Result<Vec<_>>>()?;
            for (r, row) in t.matrix.layout.unpack(&decoded)?.into_iter().enumerate() {
                out[r % i.batch][r / i.batch].extend(row);
            }
        }
        Ok(out)
    }
}

/// The LM server: the prepared model and one client's evaluation keys; no secret key can be stored
/// in it (the keys come through [`ServerKeys`], read with [`read_server_artefact`]).
#[derive(Debug)]
pub struct LmServer {
    setup: LmServerSetup,
    eval: Evaluator,
    key_id: KeyId,
}

impl LmServer {
    /// The server for `setup` with `keys`.
    ///
    /// # Errors
    /// [`DeployError::MissingKeys`] without the relinearization key; [`DeployError::Mismatch`] for a
    /// Galois key that is missing or generated for a lower level than the interface needs.
    pub fn new(setup: LmServerSetup, keys: ServerKeys) -> Result<Self> {
        if keys.keys.relin.is_none() {
            return Err(DeployError::MissingKeys {
                rotations: Vec::new(),
            });
        }
        for &(g, level) in &setup.interface.galois {
            match keys.keys.galois.get(&g) {
                Some(k) if k.level() >= level => {}
                Some(k) => {
                    return Err(DeployError::Mismatch(format!(
                        "the key of Galois element {g} reaches level {}, the model uses it at {level}",
                        k.level()
                    )))
                }
                None => return Err(DeployError::Mismatch(format!("no key for Galois element {g}"))),
            }
        }
        Ok(Self {
            eval: Evaluator::new(&setup.params, Arc::new(keys.keys)),
            key_id: keys.key_id,
            setup,
        })
    }

    /// The interface it serves.
    pub fn interface(&self) -> &LmInterface {
        &self.setup.interface
    }

    /// Operations its evaluator performed so far (one forward performs exactly
    /// [`EncryptedLm::predicted_op_counts`] of [`LmServerSetup::model`], in total).
    pub fn op_counts(&self) -> ckks::scheme::evaluator::OpCounts {
        self.eval.op_counts()
    }

    /// Sets the operation counts back to zero.
    pub fn reset_op_counts(&self) {
        self.eval.reset_op_counts();
    }

    /// The prepared model.
    pub fn model(&self) -> &EncryptedLm {
        &self.setup.lm
    }

    /// Runs the model on an encrypted input of this server's client: one output tensor per
    /// vocabulary chunk, and where the time went.
    ///
    /// # Errors
    /// [`DeployError::Mismatch`] for an input of another client, direction, layout, level or scale;
    /// evaluation errors.
    pub fn serve(&self, input: &EncryptedTensor) -> Result<(Vec<EncryptedTensor>, ForwardProfile)> {
        let i = &self.setup.interface;
        input.check(
            TensorKind::Input,
            self.key_id,
            &i.input,
            i.start_level,
            self.setup.params.default_scale(),
        )?;
        let out = self.setup.lm.forward(&self.eval, &input.matrix)?;
        Ok((
            out.logits
                .into_iter()
                .map(|matrix| EncryptedTensor {
                    kind: TensorKind::Output,
                    key_id: self.key_id,
                    matrix,
                })
                .collect(),
            out.profile,
        ))
    }
}
