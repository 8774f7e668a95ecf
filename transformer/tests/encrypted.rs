//! The first end-to-end encrypted forward of the polynomial ViT: the tiny BatchNorm ViT
//! (`ModelConfig::vit_tiny`, GELU attention and MLP fitted at degree 15) on CKKS ciphertexts, against the
//! f64 reference with the same polynomials.
//!
//! **INSECURE toy parameters**: N = 2^10 with about 870 bits of modulus (`Parameters::toy`, flagged
//! `InsecureForTests`); they exercise the arithmetic, not the security.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test fixtures fail loudly"
)]

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use burn::backend::ndarray::NdArrayDevice;
use burn::module::AutodiffModule;
use burn::tensor::backend::Backend;
use ckks::params::Parameters;
use ckks::ring::poly::galois_element_for_rotation;
use ckks::rlwe::{Encryptor, KeyGenerator, SecretKey};
use ckks::scheme::evaluator::{CkksEncoder, CkksEncryptor, EvaluationKeys, Evaluator};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use transformer::encrypted::{EncryptedError, EncryptedVit, WeightEncoding};
use transformer::model::checkpoint::export_f64;
use transformer::model::train::image_batch_data;
use transformer::model::{
    record_ranges, train, Activation, AttentionKind, CpuTrain, FitConfig, LengthScaling, ModelConfig,
    PolySet, ScalePlacement, TaskConfig, TaskData, TrainConfig, Transformer,
};
use transformer::pipeline::synthetic;
use transformer::reference::ReferenceModel;

/// Ring degree of the toy parameters (512 slots: 4 tokens of stride 32 use 128).
const LOG_N: u32 = 10;

/// The trained tiny ViT with fitted polynomials, and the first normalised training images.
struct Fixture {
    model: ReferenceModel,
    images: Vec<Vec<f64>>,
}

/// `cfg` (trained for `steps` batches of 32 at a high rate, so the BatchNorm statistics move; left at
/// its initialisation for 0), its polynomials fitted at degree 15 on recorded ranges, and the first
/// three normalised training images.
fn build(cfg: &ModelConfig, steps: usize) -> Fixture {
    let (data, _) = synthetic(cfg);
    let device = NdArrayDevice::default();
    <CpuTrain as Backend>::seed(&device, 1);
    let mut model = Transformer::<CpuTrain>::new(cfg, &device);
    if steps > 0 {
        let TaskData::Images {
            train: set,
            test,
            mean,
            std,
        } = &data
        else {
            panic!("not images");
        };
        // The first `32 * steps` training images make one epoch of `steps` steps.
        let n = (32 * steps).min(set.len());
        let sub = transformer::data::ImageSet::new(
            "synthetic",
            (set.channels(), set.height(), set.width()),
            set.num_classes(),
            set.pixels()[..n * set.channels() * set.height() * set.width()].to_vec(),
            set.labels()[..n].to_vec(),
        )
        .unwrap();
        let short = TaskData::Images {
            train: sub,
            test: test.clone(),
            mean: *mean,
            std: *std,
        };
        let tc = TrainConfig {
            epochs: 1,
            batch: 32,
            lr: 1e-2,
            weight_decay: 0.0,
            warmup: 0.0,
            clip: 1.0,
            seed: 1,
            log_every: 0,
            range: None,
        };
        let (trained, history) = train(model, &short, &tc, None, None, Some(8), "encrypted-test").unwrap();
        assert!(!history.diverged, "training diverged");
        model = trained;
    }
    let model = model.valid();
    let record = record_ranges(&model, &data, 32, 128);
    let polys = PolySet::fit(
        &record,
        &FitConfig {
            gelu_degree: 15,
            ..FitConfig::default()
        },
    )
    .unwrap();
    let weights = export_f64(&model).unwrap();
    let reference = ReferenceModel::new(cfg, &weights, Some(&polys)).unwrap();
    let TaskData::Images { train, mean, std, .. } = &data else {
        panic!("not images");
    };
    let n = 3;
    let px: Vec<f32> = image_batch_data(train, &(0..n).collect::<Vec<_>>(), *mean, *std)
        .to_vec()
        .unwrap();
    let size = px.len() / n;
    let images = px
        .chunks_exact(size)
        .map(|c| c.iter().map(|&v| f64::from(v)).collect())
        .collect();
    Fixture {
        model: reference,
        images,
    }
}

/// The tiny ViT trained for 16 steps.
fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| build(&ModelConfig::vit_tiny(), 16))
}

/// Keys, encoder and encryptor for `params`, with Galois keys for exactly `rotations`.
struct Client {
    sk: SecretKey,
    encoder: CkksEncoder,
    encryptor: CkksEncryptor,
    keys: EvaluationKeys,
}

fn client(params: &Arc<Parameters>, rotations: &[i64], rng: &mut ChaCha20Rng) -> Client {
    let kg = KeyGenerator::new(params);
    let sk = kg.gen_secret_key(rng).unwrap();
    let pk = kg.gen_public_key(&sk, rng).unwrap();
    let mut keys = EvaluationKeys {
        relin: Some(kg.gen_relin_key(&sk, rng).unwrap()),
        ..Default::default()
    };
    for &k in rotations {
        let g = galois_element_for_rotation(k, params.n());
        keys.galois.insert(g, kg.gen_galois_key(&sk, g, rng).unwrap());
    }
    Client {
        sk,
        encoder: CkksEncoder::new(params).unwrap(),
        encryptor: CkksEncryptor(Encryptor::Public(pk)),
        keys,
    }
}

fn argmax(v: &[f64]) -> usize {
    v.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, _)| i)
        .unwrap()
}

/// Error bound on the logits, relative to max(1, max |logit|), derived from the scale.
///
/// A rescale adds rounding noise of standard deviation sqrt(N (1 + |s|^2) / 12) / Delta, about 2^-32
/// per slot with N = 2^10, a uniform ternary secret (|s|^2 ~ 2N/3) and Delta = 2^40, so about 2^-30
/// at most over the slots; fresh public-key noise and key switching (divided by P = 2^100) are of the
/// same order or smaller. The circuit chains 16 rescales per block plus 2 and a few dozen additions
/// and rotations, and the layers (row sums of |W| of a few, degree-15 polynomials on [-1, 1] with
/// sums of |coefficients| of a few) amplify what comes in by a small factor each: 2^10 is a generous
/// allowance for both at one or two blocks, so the bound is 2^-30 * 2^10 = 2^-20 (about 1e-6).
/// Measured: about 2^-29 (printed). A wrong mask, scale or polynomial shows up at 1e-3 or more.
const BOUND: f64 = 9.5367431640625e-7; // 2^-20

/// Runs the encrypted forward of `model` on `images` at toy parameters with exactly the levels it
/// needs, checks levels, scale, argmax and the error bound; returns the worst relative error.
fn run_and_compare(label: &str, model: &ReferenceModel, images: &[Vec<f64>], seed: u64) -> f64 {
    let levels = EncryptedVit::levels_required(model).unwrap();
    let params = Parameters::toy(LOG_N, levels).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let encoder = CkksEncoder::new(&params).unwrap();
    let t = Instant::now();
    let vit = EncryptedVit::new(model, &params, &encoder, params.max_level()).unwrap();
    let prep = t.elapsed().as_secs_f64();
    assert_eq!(vit.levels_needed(), levels);
    let rotations = vit.rotations_needed();
    let t = Instant::now();
    let c = client(&params, &rotations, &mut rng);
    let keygen = t.elapsed().as_secs_f64();
    // The server holds the relinearization key and the Galois keys of exactly `rotations_needed`.
    let eval = Evaluator::new(&params, Arc::new(c.keys));
    eprintln!(
        "{label}: INSECURE toy parameters N = 2^{LOG_N}, {levels} levels of 40 bits, scale 2^40; \
         prepare {prep:.2} s, {} Galois keys + relin in {keygen:.2} s",
        rotations.len()
    );
    let mut worst: f64 = 0.0;
    for (i, image) in images.iter().enumerate() {
        // The client's patches are the reference's.
        assert_eq!(vit.patchify(image).unwrap(), model.patchify(image).unwrap());
        let expected = model.forward_image(image).unwrap();
        let input = vit
            .encrypt_image(&c.encoder, &c.encryptor, image, &mut rng)
            .unwrap();
        let t = Instant::now();
        let out = vit.forward(&eval, &input).unwrap();
        let secs = t.elapsed().as_secs_f64();
        // (4) Levels: exactly what `levels_needed` says (here the whole chain, down to level 0).
        assert_eq!(input.tiles[0].level() - out.tiles[0].level(), vit.levels_needed());
        assert_eq!(out.tiles[0].level(), 0);
        assert!((out.tiles[0].scale() / params.default_scale() - 1.0).abs() < 1e-9);
        let got = vit.decrypt_logits(&c.encoder, &c.sk, &out).unwrap();
        assert_eq!(got.len(), expected.len());
        let err = got
            .iter()
            .zip(&expected)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        let max = expected.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        eprintln!(
            "{label} image {i}: forward {secs:.2} s, max |logit| {max:.3}, max error {err:.3e} \
             (2^{:.1}), argmax {} / {}",
            err.log2(),
            argmax(&got),
            argmax(&expected)
        );
        worst = worst.max(err / max.max(1.0));
        // (2) The predicted class agrees.
        assert_eq!(
            argmax(&got),
            argmax(&expected),
            "{label} image {i}: {got:?} vs {expected:?}"
        );
    }
    // (1) The error bound.
    eprintln!("{label}: worst relative error {worst:.3e} (bound {BOUND:.1e})");
    assert!(
        worst < BOUND,
        "{label}: relative error {worst:.3e} over {BOUND:.1e}"
    );
    worst
}

#[test]
fn encrypted_logits_match_the_reference() {
    let f = fixture();
    run_and_compare("vit_tiny", &f.model, &f.images, 11);
}

#[test]
fn every_length_scaling_placement_matches() {
    // The same weights and polynomials with the other placements and scalings of 1 / S(L) (folded
    // into the score scale before sigma, into the mask after it).
    let f = fixture();
    for (scaling, placement) in [
        (LengthScaling::Sqrt, ScalePlacement::Before),
        (LengthScaling::Linear, ScalePlacement::Both),
    ] {
        let mut m = f.model.clone();
        m.config.attention = AttentionKind::Pointwise {
            act: Activation::Gelu,
            scaling,
            placement,
        };
        run_and_compare(&format!("{scaling:?}/{placement:?}"), &m, &f.images[..1], 14);
    }
}

#[test]
fn nine_tokens_two_blocks_match() {
    // 12x12 images of 4x4 patches: 9 tokens (the pooling sums them with hoisted rotations, not a
    // power-of-two inner sum), 17 score diagonals, and two blocks (34 levels).
    let cfg = ModelConfig {
        task: TaskConfig::Vision {
            image_size: 12,
            channels: 1,
            patch: 4,
            num_classes: 10,
            class_token: false,
        },
        depth: 2,
        ..ModelConfig::vit_tiny()
    };
    let f = build(&cfg, 4);
    run_and_compare("9 tokens, 2 blocks", &f.model, &f.images[..1], 15);
}

#[test]
fn galois_keys_are_exactly_the_rotations_needed() {
    let f = fixture();
    let levels = EncryptedVit::levels_required(&f.model).unwrap();
    let params = Parameters::toy(LOG_N, levels).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(12);
    let encoder = CkksEncoder::new(&params).unwrap();
    let vit = EncryptedVit::new(&f.model, &params, &encoder, params.max_level()).unwrap();
    let rotations = vit.rotations_needed();
    let set: BTreeSet<i64> = rotations.iter().copied().collect();
    assert_eq!(set.len(), rotations.len(), "duplicates");
    assert!(rotations
        .iter()
        .all(|&r| r > 0 && (r as usize) < params.max_slots()));
    let c = client(&params, &rotations, &mut rng);
    let input = vit
        .encrypt_image(&c.encoder, &c.encryptor, &f.images[0], &mut rng)
        .unwrap();
    let keys = Arc::new(c.keys);
    // With every key the forward runs (so no rotation outside the set is performed) ...
    let full = Evaluator::new(&params, keys.clone());
    assert!(vit.forward(&full, &input).is_ok());
    // ... and without any one of them it fails on that key (so every rotation of the set is used).
    for &r in &rotations {
        let g = galois_element_for_rotation(r, params.n());
        let fewer = EvaluationKeys {
            relin: keys.relin.clone(),
            galois: keys
                .galois
                .iter()
                .filter(|(&h, _)| h != g)
                .map(|(&h, k)| (h, k.clone()))
                .collect(),
        };
        let eval = Evaluator::new(&params, Arc::new(fewer));
        match vit.forward(&eval, &input) {
            Err(EncryptedError::Ckks(ckks::Error::MissingGaloisKey { galois_element })) => {
                assert_eq!(galois_element, g, "rotation {r}")
            }
            other => panic!(
                "rotation {r}: expected a missing key, got {:?}",
                other.map(|_| ())
            ),
        }
    }
}

#[test]
fn inputs_and_models_it_cannot_handle_are_typed_errors() {
    let f = fixture();
    let levels = EncryptedVit::levels_required(&f.model).unwrap();
    let params = Parameters::toy(LOG_N, levels).unwrap();
    let encoder = CkksEncoder::new(&params).unwrap();
    // Too few levels.
    assert!(matches!(
        EncryptedVit::new(&f.model, &params, &encoder, levels - 1),
        Err(EncryptedError::Levels { .. })
    ));
    // No polynomials: the exact GELU cannot run on ciphertexts.
    let mut exact = f.model.clone();
    exact.polys = None;
    assert!(matches!(
        EncryptedVit::levels_required(&exact),
        Err(EncryptedError::Unsupported(_))
    ));
    // A wrong image size.
    let vit = EncryptedVit::new(&f.model, &params, &encoder, params.max_level()).unwrap();
    assert!(matches!(vit.patchify(&[0.0; 7]), Err(EncryptedError::Shape(_))));
    // An input at another level.
    let mut rng = ChaCha20Rng::seed_from_u64(13);
    let c = client(&params, &[], &mut rng);
    let patches = vit.patchify(&f.images[0]).unwrap();
    let low = ckks::circuits::matmul::EncryptedMatrix::encrypt(
        &params,
        &c.encoder,
        &c.encryptor,
        vit.input_layout(),
        &patches,
        params.max_level() - 1,
        &mut rng,
    )
    .unwrap();
    let eval = Evaluator::new(&params, Arc::new(c.keys));
    assert!(matches!(vit.forward(&eval, &low), Err(EncryptedError::Input(_))));
}

#[test]
fn weights_encoded_per_forward_give_the_same_logits() {
    // The same model, parameters, keys and encryption randomness: encoding the linear layers when the
    // forward reaches them (bounded memory at large N) must give bit-identical ciphertexts.
    let f = fixture();
    let levels = EncryptedVit::levels_required(&f.model).unwrap();
    let params = Parameters::toy(LOG_N, levels).unwrap();
    let encoder = CkksEncoder::new(&params).unwrap();
    let once = EncryptedVit::new(&f.model, &params, &encoder, params.max_level()).unwrap();
    let lazy = EncryptedVit::with_weight_encoding(
        &f.model,
        &params,
        &encoder,
        params.max_level(),
        WeightEncoding::PerForward,
    )
    .unwrap();
    assert_eq!(lazy.weight_encoding(), WeightEncoding::PerForward);
    assert_eq!(once.weight_encoding(), WeightEncoding::Once);
    assert_eq!(lazy.rotations_needed(), once.rotations_needed());
    assert_eq!(lazy.levels_needed(), once.levels_needed());
    let mut rng = ChaCha20Rng::seed_from_u64(16);
    let c = client(&params, &once.rotations_needed(), &mut rng);
    let input = once
        .encrypt_image(&c.encoder, &c.encryptor, &f.images[0], &mut rng)
        .unwrap();
    let eval = Evaluator::new(&params, Arc::new(c.keys));
    let a = once.forward(&eval, &input).unwrap();
    let b = lazy.forward(&eval, &input).unwrap();
    assert_eq!(a.tiles[0].level(), b.tiles[0].level());
    assert_eq!(
        once.decrypt_logits(&c.encoder, &c.sk, &a).unwrap(),
        lazy.decrypt_logits(&c.encoder, &c.sk, &b).unwrap()
    );
}

/// A batch of images in one ciphertext (interleaved token-major): every image's decrypted logits
/// match its own f64 reference within the bound, a partial batch leaves the other images alone, and a
/// batch beyond what one ciphertext holds is a typed error.
#[test]
fn a_batch_of_images_matches_each_reference() {
    use transformer::encrypted::VitOptions;
    let f = fixture();
    let levels = EncryptedVit::levels_required(&f.model).unwrap();
    let params = Parameters::toy(LOG_N, levels).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(21);
    let encoder = CkksEncoder::new(&params).unwrap();
    let max = EncryptedVit::max_batch(&f.model, &params).unwrap();
    // 4 tokens of stride 32 in 512 slots.
    assert_eq!(max, 4);
    let options = |batch| VitOptions {
        batch,
        ..VitOptions::default()
    };
    assert!(matches!(
        EncryptedVit::with_options(&f.model, &params, &encoder, params.max_level(), options(max + 1)),
        Err(EncryptedError::Shape(_))
    ));
    let vit =
        EncryptedVit::with_options(&f.model, &params, &encoder, params.max_level(), options(max)).unwrap();
    assert_eq!(vit.levels_needed(), levels);
    let c = client(&params, &vit.rotations_needed(), &mut rng);
    let eval = Evaluator::new(&params, Arc::new(c.keys));
    // Three images in a batch of four (the fourth slot group holds zeros).
    let images: Vec<&[f64]> = f.images.iter().map(Vec::as_slice).collect();
    assert_eq!(images.len(), 3);
    let input = vit
        .encrypt_images(&c.encoder, &c.encryptor, &images, &mut rng)
        .unwrap();
    let out = vit.forward(&eval, &input).unwrap();
    let got = vit.decrypt_batch_logits(&c.encoder, &c.sk, &out).unwrap();
    assert_eq!(got.len(), max);
    for (i, image) in images.iter().enumerate() {
        let expected = f.model.forward_image(image).unwrap();
        let err = got[i]
            .iter()
            .zip(&expected)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        let scale = expected.iter().fold(1.0f64, |m, v| m.max(v.abs()));
        eprintln!(
            "batch image {i}: max error {err:.3e}, argmax {} / {}",
            argmax(&got[i]),
            argmax(&expected)
        );
        assert!(err / scale < BOUND, "image {i}: {err:.3e}");
        assert_eq!(argmax(&got[i]), argmax(&expected));
    }
    // The missing fourth image is the all-zero image.
    let zero = f.model.forward_image(&vec![0.0; f.images[0].len()]).unwrap();
    let err = got[3]
        .iter()
        .zip(&zero)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    let scale = zero.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    assert!(err / scale < BOUND, "zero image: {err:.3e}");
    // More images than the batch: a typed error.
    let five: Vec<&[f64]> = std::iter::repeat_n(images[0], max + 1).collect();
    assert!(matches!(
        vit.encrypt_images(&c.encoder, &c.encryptor, &five, &mut rng),
        Err(EncryptedError::Shape(_))
    ));
}

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("pthe-deploy-{}-{name}", std::process::id()));
    std::fs::remove_dir_all(&d).ok();
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The client/server split through files: the server publishes the interface and the parameters,
/// the client makes its keys (one file each) and encrypts a batch, the server (with no secret key)
/// evaluates, the client decrypts: every image's logits match the f64 reference within the bound;
/// flooded decryption at 2^8 per coefficient keeps every class.
#[test]
fn client_and_server_through_files_match_the_reference() {
    use ckks::serialize::{parameters_from_bytes, parameters_to_bytes};
    use transformer::deploy::{
        read_file, read_server_artefact, write_file, Client, EncryptedTensor, Server, ServerKeys,
        ServerSetup, VitInterface,
    };
    use transformer::encrypted::VitOptions;
    let f = fixture();
    let dir = scratch("roundtrip");
    let levels = EncryptedVit::levels_required(&f.model).unwrap();
    let params = Parameters::toy(LOG_N, levels).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(31);
    // Server: setup and publish.
    let options = VitOptions {
        batch: 4,
        ..VitOptions::default()
    };
    let setup = ServerSetup::new(&f.model, &params, options, None).unwrap();
    write_file(&dir.join("params.bin"), &parameters_to_bytes(&params)).unwrap();
    setup.interface().write(&dir.join("interface.json")).unwrap();
    // Client: reads what the server published, makes keys, encrypts.
    let cparams = parameters_from_bytes(&read_file(&dir.join("params.bin")).unwrap()).unwrap();
    let interface = VitInterface::read(&dir.join("interface.json"), &cparams).unwrap();
    assert_eq!(&interface, setup.interface());
    let client = Client::new(&cparams, interface, &mut rng).unwrap();
    let stats = client.write_evaluation_keys(&dir.join("keys"), &mut rng).unwrap();
    assert_eq!(stats.files, setup.interface().rotations.len() + 1);
    let images: Vec<&[f64]> = f.images.iter().map(Vec::as_slice).collect();
    let input = client.encrypt_images(&images, &mut rng).unwrap();
    write_file(&dir.join("input.bin"), &input.to_bytes(&cparams)).unwrap();
    // Server: keys and input from files, output to a file.
    let keys = ServerKeys::read(&dir.join("keys"), &params).unwrap();
    assert_eq!(keys.key_id(), client.key_id());
    let server = Server::new(setup, keys).unwrap();
    let input: EncryptedTensor = read_server_artefact(&dir.join("input.bin"), &params).unwrap();
    let output = server.serve(&input).unwrap();
    write_file(&dir.join("output.bin"), &output.to_bytes(&params)).unwrap();
    // Client: decrypts.
    let output = EncryptedTensor::from_bytes(&read_file(&dir.join("output.bin")).unwrap(), &cparams).unwrap();
    let logits = client.decrypt(&output).unwrap();
    let flooded = client.decrypt_flooded(&output, 8, &mut rng).unwrap();
    for (i, image) in images.iter().enumerate() {
        let expected = f.model.forward_image(image).unwrap();
        let err = logits[i]
            .iter()
            .zip(&expected)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        let scale = expected.iter().fold(1.0f64, |m, v| m.max(v.abs()));
        assert!(err / scale < BOUND, "image {i}: {err:.3e}");
        assert_eq!(argmax(&logits[i]), argmax(&expected));
        assert_eq!(argmax(&flooded[i]), argmax(&expected));
        assert_ne!(flooded[i], logits[i]);
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// Artefacts that do not belong together, and damaged ones, are typed errors: another client's
/// input or output, other parameters, missing keys, a model too deep for the parameters, and
/// truncated or corrupted input files (never a panic, never a result).
#[test]
fn mixups_and_corrupted_artefacts_are_typed_errors() {
    use transformer::deploy::{
        read_server_artefact, write_file, Client, DeployError, EncryptedTensor, Server, ServerKeys,
        ServerSetup,
    };
    use transformer::encrypted::VitOptions;
    let f = fixture();
    let dir = scratch("mixups");
    let levels = EncryptedVit::levels_required(&f.model).unwrap();
    let params = Parameters::toy(LOG_N, levels).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(32);
    let options = VitOptions::default();
    // A model deeper than the parameters.
    let shallow = Parameters::toy(LOG_N, levels - 1).unwrap();
    assert!(matches!(
        ServerSetup::new(&f.model, &shallow, options, None),
        Err(DeployError::Model(EncryptedError::Levels { .. }))
    ));
    let setup = ServerSetup::new(&f.model, &params, options, None).unwrap();
    let interface = setup.interface().clone();
    // An interface for other parameters.
    let other = Parameters::toy(LOG_N, levels + 1).unwrap();
    assert!(matches!(
        Client::new(&other, interface.clone(), &mut rng),
        Err(DeployError::Mismatch(_))
    ));
    let alice = Client::new(&params, interface.clone(), &mut rng).unwrap();
    let bob = Client::new(&params, interface.clone(), &mut rng).unwrap();
    alice.write_evaluation_keys(&dir.join("keys"), &mut rng).unwrap();
    // Keys read under other parameters.
    assert!(matches!(
        ServerKeys::read(&dir.join("keys"), &other),
        Err(DeployError::Mismatch(_))
    ));
    let server = Server::new(setup, ServerKeys::read(&dir.join("keys"), &params).unwrap()).unwrap();
    let image = [f.images[0].as_slice()];
    // Bob's input on Alice's keys.
    let from_bob = bob.encrypt_images(&image, &mut rng).unwrap();
    assert!(matches!(server.serve(&from_bob), Err(DeployError::Mismatch(_))));
    let input = alice.encrypt_images(&image, &mut rng).unwrap();
    // An input where an output is expected, and Alice's output decrypted by Bob.
    assert!(matches!(alice.decrypt(&input), Err(DeployError::Mismatch(_))));
    let output = server.serve(&input).unwrap();
    assert!(matches!(bob.decrypt(&output), Err(DeployError::Mismatch(_))));
    assert!(matches!(server.serve(&output), Err(DeployError::Mismatch(_))));
    // A key directory without one rotation.
    let manifest = dir.join("keys").join("manifest.json");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let mut m: serde_json::Value = serde_json::from_str(&text).unwrap();
    let dropped = m["galois"].as_array_mut().unwrap().remove(0);
    write_file(&manifest, m.to_string().as_bytes()).unwrap();
    let setup = ServerSetup::new(&f.model, &params, options, None).unwrap();
    match Server::new(setup, ServerKeys::read(&dir.join("keys"), &params).unwrap()) {
        Err(DeployError::MissingKeys { rotations }) => {
            assert_eq!(rotations, vec![dropped[0].as_i64().unwrap()])
        }
        other => panic!("expected missing keys, got {:?}", other.map(|_| ())),
    }
    // A manifest pointing outside its directory.
    m["galois"].as_array_mut().unwrap()[0][1] = serde_json::json!("../input.bin");
    write_file(&manifest, m.to_string().as_bytes()).unwrap();
    assert!(matches!(
        ServerKeys::read(&dir.join("keys"), &params),
        Err(DeployError::Format(_))
    ));
    // Truncated and corrupted inputs: every truncation point of the header and a spread of byte
    // flips over the whole file.
    let bytes = input.to_bytes(&params);
    let path = dir.join("input.bin");
    let mut tried = 0;
    let cuts = (0..80).chain((80..bytes.len()).step_by(bytes.len() / 50));
    for cut in cuts {
        write_file(&path, &bytes[..cut]).unwrap();
        assert!(
            read_server_artefact::<EncryptedTensor>(&path, &params).is_err(),
            "cut {cut}"
        );
        tried += 1;
    }
    let mut rng2 = ChaCha20Rng::seed_from_u64(33);
    for _ in 0..200 {
        let mut b = bytes.clone();
        let pos = rand::Rng::random_range(&mut rng2, 0..b.len());
        let bit = rand::Rng::random_range(&mut rng2, 0..8);
        b[pos] ^= 1 << bit;
        write_file(&path, &b).unwrap();
        assert!(
            read_server_artefact::<EncryptedTensor>(&path, &params).is_err(),
            "flip at {pos}"
        );
        tried += 1;
    }
    eprintln!("{tried} damaged inputs, all refused");
    std::fs::remove_dir_all(&dir).ok();
}

/// Debug mode: the decrypted token matrix after every layer matches the f64 reference's trace at the
/// same points, for every image of a batch, within the bound.
#[test]
fn traced_layers_match_the_reference_trace() {
    use transformer::deploy::{Client, Server, ServerKeys, ServerSetup};
    use transformer::encrypted::VitOptions;
    let f = fixture();
    let dir = scratch("trace");
    let levels = EncryptedVit::levels_required(&f.model).unwrap();
    let params = Parameters::toy(LOG_N, levels).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(41);
    let batch = 2;
    let options = VitOptions {
        batch,
        ..VitOptions::default()
    };
    let setup = ServerSetup::new(&f.model, &params, options, None).unwrap();
    let client = Client::new(&params, setup.interface().clone(), &mut rng).unwrap();
    client.write_evaluation_keys(&dir, &mut rng).unwrap();
    let server = Server::new(setup, ServerKeys::read(&dir, &params).unwrap()).unwrap();
    let images: Vec<&[f64]> = f.images[..batch].iter().map(Vec::as_slice).collect();
    let input = client.encrypt_images(&images, &mut rng).unwrap();
    let (output, trace) = server.serve_traced(&input).unwrap();
    let layers = client.decrypt_trace(&trace).unwrap();
    let logits = client.decrypt(&output).unwrap();
    for (b, image) in images.iter().enumerate() {
        let reference = f.model.trace_image(image).unwrap();
        let names: Vec<&str> = reference.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["embed", "blocks.0.attn", "blocks.0.mlp", "logits"]);
        assert_eq!(layers.len(), reference.len());
        for ((name, got), (rname, want)) in layers.iter().zip(&reference) {
            assert_eq!(name, rname);
            let mut err: f64 = 0.0;
            let mut scale: f64 = 1.0;
            for (t, row) in want.iter().enumerate() {
                // Token rows are interleaved (t * batch + b); the logits have one row per image.
                let r = if name == "logits" { b } else { t * batch + b };
                for (a, w) in got[r].iter().zip(row) {
                    err = err.max((a - w).abs());
                    scale = scale.max(w.abs());
                }
            }
            eprintln!(
                "image {b} {name}: error {err:.2e}, {:.1} bits",
                -(err / scale).log2()
            );
            assert!(err / scale < BOUND, "image {b} {name}: {err:.3e}");
        }
        assert_eq!(logits[b], layers.last().unwrap().1[b]);
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// The planner's prediction of one forward's operations (cost formulas plus a dry run of the
/// polynomials on the level/scale simulator) is exactly what the evaluator counts, for one image and
/// for a batch, with 4 and 9 tokens (pooling by inner sum and by hoisted rotations).
#[test]
fn predicted_operation_counts_are_what_the_forward_performs() {
    use transformer::encrypted::VitOptions;
    let f = fixture();
    // 12x12 images of 4x4 patches: 9 tokens.
    let nine = ModelConfig {
        task: TaskConfig::Vision {
            image_size: 12,
            channels: 1,
            patch: 4,
            num_classes: 10,
            class_token: false,
        },
        ..ModelConfig::vit_tiny()
    };
    let g = build(&nine, 0);
    for (label, model, image, batch) in [
        ("4 tokens", &f.model, &f.images[0], 1),
        ("4 tokens x 3", &f.model, &f.images[0], 3),
        ("9 tokens", &g.model, &g.images[0], 1),
    ] {
        let levels = EncryptedVit::levels_required(model).unwrap();
        let params = Parameters::toy(LOG_N, levels).unwrap();
        let mut rng = ChaCha20Rng::seed_from_u64(51);
        let encoder = CkksEncoder::new(&params).unwrap();
        let options = VitOptions {
            batch,
            ..VitOptions::default()
        };
        let vit = EncryptedVit::with_options(model, &params, &encoder, params.max_level(), options).unwrap();
        let c = client(&params, &vit.rotations_needed(), &mut rng);
        let eval = Evaluator::new(&params, Arc::new(c.keys));
        let input = vit
            .encrypt_images(&c.encoder, &c.encryptor, &[image.as_slice()], &mut rng)
            .unwrap();
        assert_eq!(eval.op_counts(), Default::default());
        vit.forward(&eval, &input).unwrap();
        let (got, predicted) = (eval.op_counts(), vit.predicted_op_counts());
        eprintln!("{label}: predicted {predicted:?}, counted {got:?}");
        assert_eq!(got, predicted, "{label}");
        assert!(got.key_switches > 0 && got.ct_mults > 0 && got.rescales >= levels);
    }
}
