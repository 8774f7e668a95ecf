//! The client and server steps of encrypted inference as separate commands over one session
//! directory (the files are what would travel between two machines):
//!
//! | step | role | reads | writes |
//! |---|---|---|---|
//! | `setup` | server | the model checkpoint | `to_client/params.bin`, `to_client/interface.json`, `server/setup.json` |
//! | `keygen` | client | `to_client/` | `client/secret_key.bin` (owner-only), `client/public_key.bin`, `to_server/keys/` |
//! | `encrypt` | client | `to_client/`, `client/` | `to_server/input.bin`, `client/request.json` |
//! | `serve` | server | `server/`, `to_client/params.bin`, `to_server/` | `to_client/output.bin` |
//! | `decrypt` | client | `to_client/`, `client/` | the classes, on stdout |
//!
//! The server steps never open `client/`: they read only through
//! [`transformer::deploy::read_server_artefact`], which cannot read a secret key. Randomness (keys,
//! encryption, flooding) comes from ChaCha20 seeded by the operating system.

use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use ckks::params::{Parameters, SecurityLevel};
use ckks::serialize::{parameters_from_bytes, parameters_to_bytes};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use serde::{Deserialize, Serialize};
use transformer::deploy::{
    read_file, read_server_artefact, write_file, Client, EncryptedTensor, Server, ServerKeys, ServerSetup,
    VitInterface,
};
use transformer::encrypted::{EncryptedVit, VitOptions, WeightEncoding};
use transformer::model::Checkpoint;
use transformer::reference::ReferenceModel;

use crate::experiments::he_agreement::{
    argmax, normalised_image, parameters_for, switching_key_bytes, test_images, tiny_checkpoint,
    write_private,
};

pub mod lm;

/// The paths of a session directory.
struct Session {
    dir: PathBuf,
}

impl Session {
    fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
        }
    }
    fn to_client(&self, name: &str) -> PathBuf {
        self.dir.join("to_client").join(name)
    }
    fn to_server(&self, name: &str) -> PathBuf {
        self.dir.join("to_server").join(name)
    }
    fn client(&self, name: &str) -> PathBuf {
        self.dir.join("client").join(name)
    }
    fn server(&self, name: &str) -> PathBuf {
        self.dir.join("server").join(name)
    }
    /// Whether the session serves a language model (its setup published an LM interface).
    fn is_lm(&self) -> bool {
        self.to_client(lm::INTERFACE).is_file()
    }
    /// The client's saved secret key (zeroized when dropped) and public key.
    fn read_client_keys(&self) -> Result<(zeroize::Zeroizing<Vec<u8>>, Vec<u8>)> {
        let sk = zeroize::Zeroizing::new(
            read_file(&self.client("secret_key.bin")).context("no client keys: run `keygen` first")?,
        );
        Ok((sk, read_file(&self.client("public_key.bin"))?))
    }
    /// Saves the client's secret key (owner-only) and public key.
    fn write_client_keys(&self, secret_key: &[u8], public_key: &[u8]) -> Result<()> {
        write_private(&self.client("secret_key.bin"), secret_key)?;
        write_file(&self.client("public_key.bin"), public_key)?;
        Ok(())
    }
}

/// Refuses to make keys for INSECURE toy parameters unless `allow_insecure` (tests), warning then.
fn refuse_insecure(params: &Parameters, allow_insecure: bool) -> Result<()> {
    if params.literal().security == SecurityLevel::InsecureForTests {
        ensure!(
            allow_insecure,
            "the published parameters are INSECURE toy parameters (N = 2^{}): refusing to make keys \
             (pass --allow-insecure for a test)",
            params.literal().log_n
        );
        eprintln!("keygen: WARNING: INSECURE toy parameters, for tests only");
    }
    Ok(())
}

/// What the server remembers between `setup` and `serve` (its own side, never sent).
#[derive(Debug, Serialize, Deserialize)]
struct ServerState {
    checkpoint: PathBuf,
    batch: usize,
    per_forward: bool,
}

/// What the client remembers between `encrypt` and `decrypt`.
#[derive(Debug, Serialize, Deserialize)]
struct Request {
    images: Vec<usize>,
    labels: Vec<usize>,
}

fn os_rng() -> ChaCha20Rng {
    ChaCha20Rng::from_os_rng()
}

fn mib(b: usize) -> f64 {
    b as f64 / (1u64 << 20) as f64
}

/// The server's preparation of `model`, as `setup` and `plan` do it: 128-bit N = 2^16 parameters with
/// exactly the levels the model needs at scale `2^log_scale` (the INSECURE toy N = 2^10 set unless
/// `secure`), `batch` images per ciphertext (default: as many as fit), weights encoded per forward.
fn prepare(
    model: &ReferenceModel,
    secure: bool,
    log_scale: u32,
    batch: Option<usize>,
    data: Option<transformer::model::DataPrep>,
) -> Result<(ServerSetup, std::sync::Arc<Parameters>, &'static str)> {
    let levels = EncryptedVit::levels_required(model)?;
    let (log_n, log_scale) = if secure { (16, log_scale) } else { (10, 40) };
    let (params, security) = parameters_for(levels, log_n, log_scale, secure)?;
    let batch = match batch {
        Some(b) => b,
        None => EncryptedVit::max_batch(model, &params)?,
    };
    let setup = ServerSetup::new(
        model,
        &params,
        VitOptions {
            weights: WeightEncoding::PerForward,
            batch,
        },
        data,
    )?;
    Ok((setup, params, security))
}

/// Options of `setup`.
#[derive(Debug, Clone)]
pub struct SetupArgs {
    /// Session directory.
    pub dir: PathBuf,
    /// Polynomial checkpoint; `None` trains the tiny ViT into the session (toy parameters).
    pub checkpoint: Option<PathBuf>,
    /// Images per ciphertext (`None`: as many as fit).
    pub batch: Option<usize>,
    /// log2 of the scale (128-bit parameters at N = 2^16).
    pub log_scale: u32,
}

/// Server: prepares the model and publishes the parameters and the interface.
///
/// # Errors
/// A missing checkpoint, a model that does not fit, I/O errors.
pub fn setup(args: &SetupArgs) -> Result<()> {
    let s = Session::new(&args.dir);
    let (checkpoint, secure) = match &args.checkpoint {
        Some(c) => (c.clone(), true),
        None => {
            eprintln!("setup: no --checkpoint: training the tiny ViT on synthetic images (seconds)");
            (tiny_checkpoint(&s.server("model"), 0)?, false)
        }
    };
    let model = ReferenceModel::from_checkpoint(&checkpoint)
        .with_context(|| format!("loading {}", checkpoint.display()))?;
    let data = Checkpoint::meta(&checkpoint)?.data;
    let (setup, params, security) = prepare(&model, secure, args.log_scale, args.batch, Some(data))?;
    let (log_n, levels, batch) = (
        params.literal().log_n,
        setup.model().levels_needed(),
        setup.interface().batch,
    );
    write_file(&s.to_client("params.bin"), &parameters_to_bytes(&params))?;
    // A session that served an LM before serves this ViT from now on.
    let _ = std::fs::remove_file(s.to_client(lm::INTERFACE));
    setup.interface().write(&s.to_client("interface.json"))?;
    let state = ServerState {
        checkpoint: std::path::absolute(&checkpoint)?,
        batch,
        per_forward: true,
    };
    write_file(&s.server("setup.json"), &serde_json::to_vec_pretty(&state)?)?;
    let i = setup.interface();
    println!(
        "setup: {security} parameters, N = 2^{log_n}, log QP = {:.1}; {levels} levels; {} images per \
         ciphertext; {} rotation keys needed; published {}",
        params.log_qp(),
        i.batch,
        i.rotations.len(),
        s.dir.join("to_client").display()
    );
    Ok(())
}

/// The parameters and interface the server published.
fn published(s: &Session) -> Result<(std::sync::Arc<Parameters>, VitInterface)> {
    let params = parameters_from_bytes(&read_file(&s.to_client("params.bin"))?)?;
    let interface = VitInterface::read(&s.to_client("interface.json"), &params)?;
    Ok((params, interface))
}

/// The client from its saved keys.
fn open_client(s: &Session) -> Result<Client> {
    let (params, interface) = published(s)?;
    let (sk, pk) = s.read_client_keys()?;
    Ok(Client::open(&params, interface, &sk, &pk)?)
}

/// Client: makes its keys from the published parameters and interface.
///
/// # Errors
/// Insecure parameters without `allow_insecure`; I/O and key generation errors.
pub fn keygen(dir: &Path, allow_insecure: bool) -> Result<()> {
    let s = Session::new(dir);
    if s.is_lm() {
        return lm::keygen(dir, allow_insecure);
    }
    let (params, interface) = published(&s)?;
    refuse_insecure(&params, allow_insecure)?;
    let t = std::time::Instant::now();
    let mut rng = os_rng();
    let client = Client::new(&params, interface, &mut rng)?;
    s.write_client_keys(&client.secret_key_bytes(), &client.public_key_bytes())?;
    let stats = client.write_evaluation_keys(&s.dir.join("to_server").join("keys"), &mut rng)?;
    println!(
        "keygen: key id {}; {} evaluation-key files, {:.1} MiB for the server; {:.1} s",
        client.key_id(),
        stats.files,
        mib(stats.bytes as usize),
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Client: encrypts `count` test images from `first` (at most one batch).
///
/// # Errors
/// No keys, more images than a batch, I/O errors.
pub fn encrypt(dir: &Path, first: usize, count: Option<usize>) -> Result<()> {
    let s = Session::new(dir);
    if s.is_lm() {
        return lm::encrypt(dir, first, count);
    }
    let client = open_client(&s)?;
    let i = client.interface().clone();
    let Some(prep) = &i.data else {
        bail!("the interface names no data set");
    };
    let test = test_images(prep, i.image, i.classes)?;
    let count = count.unwrap_or(i.batch);
    ensure!(
        (1..=i.batch).contains(&count),
        "{count} images: one ciphertext holds 1 to {}",
        i.batch
    );
    let mut images = Vec::with_capacity(count);
    let mut request = Request {
        images: Vec::new(),
        labels: Vec::new(),
    };
    for k in first..first + count {
        let (im, label) = normalised_image(&test, prep, k)?;
        images.push(im);
        request.images.push(k);
        request.labels.push(label);
    }
    let input = client.encrypt_images(&images, &mut os_rng())?;
    let (params, _) = published(&s)?;
    let bytes = input.to_bytes(&params);
    write_file(&s.to_server("input.bin"), &bytes)?;
    write_file(&s.client("request.json"), &serde_json::to_vec_pretty(&request)?)?;
    println!(
        "encrypt: test images {first}..{} in one ciphertext, {:.1} MiB for the server",
        first + count,
        mib(bytes.len())
    );
    Ok(())
}

/// Server: evaluates the model on the input with the client's evaluation keys.
///
/// # Errors
/// Missing or mismatched artefacts, evaluation errors.
pub fn serve(dir: &Path, lm_cost_reps: usize) -> Result<()> {
    let s = Session::new(dir);
    if s.is_lm() {
        return lm::serve(dir, lm_cost_reps);
    }
    let state: ServerState =
        serde_json::from_slice(&read_file(&s.server("setup.json"))?).context("server/setup.json")?;
    // The server's own published parameters (nothing from the client's directory).
    let params = parameters_from_bytes(&read_file(&s.to_client("params.bin"))?)?;
    let model = ReferenceModel::from_checkpoint(&state.checkpoint)?;
    let data = Checkpoint::meta(&state.checkpoint)?.data;
    let t = std::time::Instant::now();
    let setup = ServerSetup::new(
        &model,
        &params,
        VitOptions {
            weights: if state.per_forward {
                WeightEncoding::PerForward
            } else {
                WeightEncoding::Once
            },
            batch: state.batch,
        },
        Some(data),
    )?;
    let published = VitInterface::read(&s.to_client("interface.json"), &params)?;
    ensure!(
        setup.interface() == &published,
        "the model no longer matches the interface published at setup: run `setup` again"
    );
    let prepare = t.elapsed().as_secs_f64();
    let t = std::time::Instant::now();
    let keys = ServerKeys::read(&s.dir.join("to_server").join("keys"), &params)?;
    let key_mib = mib(keys.memory_bytes());
    let server = Server::new(setup, keys)?;
    let load = t.elapsed().as_secs_f64();
    let input: EncryptedTensor = read_server_artefact(&s.to_server("input.bin"), &params)?;
    let t = std::time::Instant::now();
    let output = server.serve(&input)?;
    let forward = t.elapsed().as_secs_f64();
    let bytes = output.to_bytes(&params);
    write_file(&s.to_client("output.bin"), &bytes)?;
    println!(
        "serve: prepared in {prepare:.1} s, keys ({key_mib:.0} MiB) loaded in {load:.1} s, forward \
         {forward:.1} s; {:.2} MiB back to the client",
        mib(bytes.len())
    );
    Ok(())
}

/// Client: decrypts the output and prints the classes, or the next tokens of an LM session.
///
/// # Errors
/// Missing or mismatched artefacts.
pub fn decrypt_step(dir: &Path, flood_bits: Option<u32>) -> Result<()> {
    if Session::new(dir).is_lm() {
        lm::decrypt(dir, flood_bits).map(|_| ())
    } else {
        decrypt(dir, flood_bits).map(|_| ())
    }
}

/// Client (ViT): decrypts the output and prints the classes (with noise flooding if `flood_bits`).
///
/// # Errors
/// Missing or mismatched artefacts.
pub fn decrypt(dir: &Path, flood_bits: Option<u32>) -> Result<Vec<usize>> {
    let s = Session::new(dir);
    let client = open_client(&s)?;
    let (params, _) = published(&s)?;
    let output = EncryptedTensor::from_bytes(&read_file(&s.to_client("output.bin"))?, &params)?;
    let logits = match flood_bits {
        None => client.decrypt(&output)?,
        Some(b) => client.decrypt_flooded(&output, b, &mut os_rng())?,
    };
    let request: Request = serde_json::from_slice(&read_file(&s.client("request.json"))?)?;
    let mut classes = Vec::new();
    for (k, (&image, &label)) in request.images.iter().zip(&request.labels).enumerate() {
        let l = logits.get(k).context("fewer logits than images")?;
        let class = argmax(l);
        println!(
            "decrypt: test image {image}: class {class} (label {label}); logits {}",
            l.iter().map(|v| format!("{v:.3}")).collect::<Vec<_>>().join(" ")
        );
        classes.push(class);
    }
    Ok(classes)
}

/// Server: the plan of a checkpoint before anything runs: parameters, levels, batch, keys, the
/// operations of one forward (predicted exactly: cost formulas and a dry run of the polynomials on
/// the level/scale simulator) and their time from operation costs measured here, at the middle level.
///
/// # Errors
/// A missing checkpoint, a model that does not fit.
pub fn plan(checkpoint: Option<&Path>, batch: Option<usize>, log_scale: u32, reps: usize) -> Result<()> {
    let tmp = std::env::temp_dir().join(format!("harness-plan-{}", std::process::id()));
    let (checkpoint, secure) = match checkpoint {
        Some(c) => (c.to_path_buf(), true),
        None => (tiny_checkpoint(&tmp, 0)?, false),
    };
    let model = ReferenceModel::from_checkpoint(&checkpoint)?;
    let (setup, params, security) = prepare(&model, secure, log_scale, batch, None)?;
    let (log_n, batch) = (params.literal().log_n, setup.interface().batch);
    let vit = setup.model();
    let c = vit.predicted_op_counts();
    let key_bytes = (vit.rotations_needed().len() + 1) * switching_key_bytes(&params);
    println!(
        "plan: {}: {security}, N = 2^{log_n}, log QP = {:.1}, {} levels used of {}, 0 bootstraps",
        checkpoint.display(),
        params.log_qp(),
        vit.levels_needed(),
        params.max_level()
    );
    println!(
        "plan: {batch} images per ciphertext; {} Galois keys + relinearization = {:.2} GiB",
        vit.rotations_needed().len(),
        key_bytes as f64 / (1u64 << 30) as f64
    );
    println!(
        "plan: one forward = {} key switches ({} decompositions), {} ciphertext products, {} plaintext products, {} rescales",
        c.key_switches, c.decompositions, c.ct_mults, c.pt_mults, c.rescales
    );
    let l = vit.start_level();
    let costs = crate::costs::CostModel::calibrate(&params, &[1, l / 4, l / 2, 3 * l / 4, l], reps)?;
    let t = costs.predict(vit.predicted_op_counts_by_level());
    println!(
        "plan: operation costs measured here ({} threads):\n{}",
        rayon::current_num_threads(),
        costs.describe()
    );
    println!(
        "plan: predicted forward {t:.1} s per ciphertext ({:.2} s per image), weight encoding excluded",
        t / batch as f64
    );
    if !secure {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The five steps as separate calls on one directory, at the tiny preset; the server steps find
    /// no secret key in their way, the classes match the f64 reference; keygen refuses the toy
    /// parameters unless allowed.
    #[test]
    fn plan_runs_on_the_tiny_vit() {
        plan(None, Some(2), 35, 1).unwrap();
    }

    #[test]
    fn the_five_steps_run_through_files() {
        let dir = crate::test_dir("roles");
        setup(&SetupArgs {
            dir: dir.clone(),
            checkpoint: None,
            batch: Some(2),
            log_scale: 35,
        })
        .unwrap();
        assert!(
            keygen(&dir, false).is_err(),
            "toy parameters must be refused by default"
        );
        keygen(&dir, true).unwrap();
        assert!(dir.join("client/secret_key.bin").is_file());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join("client/secret_key.bin"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "the secret key must be private");
        }
        assert!(encrypt(&dir, 0, Some(3)).is_err(), "3 images in a batch of 2");
        encrypt(&dir, 5, None).unwrap();
        // The server works without the client's directory.
        let hidden = dir.join("client-hidden");
        std::fs::rename(dir.join("client"), &hidden).unwrap();
        serve(&dir, 1).unwrap();
        std::fs::rename(&hidden, dir.join("client")).unwrap();
        let classes = decrypt(&dir, None).unwrap();
        let flooded = decrypt(&dir, Some(8)).unwrap();
        assert_eq!(classes, flooded);
        // The same images through the f64 reference.
        let state: ServerState =
            serde_json::from_slice(&std::fs::read(dir.join("server/setup.json")).unwrap()).unwrap();
        let model = ReferenceModel::from_checkpoint(&state.checkpoint).unwrap();
        let prep = Checkpoint::meta(&state.checkpoint).unwrap().data;
        let (_, interface) = published(&Session::new(&dir)).unwrap();
        let test = test_images(&prep, interface.image, interface.classes).unwrap();
        for (k, &c) in classes.iter().enumerate() {
            let (im, _) = normalised_image(&test, &prep, 5 + k).unwrap();
            let r = model.forward_image(&im).unwrap();
            assert_eq!(c, argmax(&r), "image {}", 5 + k);
        }
        std::fs::remove_dir_all(&dir).ok();
    }
}
