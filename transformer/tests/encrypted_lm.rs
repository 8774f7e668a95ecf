//! The encrypted causal LM end to end at toy parameters: the tiny LayerNorm LM
//! (`ModelConfig::lm_tiny`, GELU attention and MLP fitted at degree 15, the inverse square roots as
//! single degree-15 interpolants) on CKKS ciphertexts with bootstrapping placed by the planner,
//! against the f64 reference with the same polynomials.
//!
//! **INSECURE toy parameters**: N = 2^10, a sparse secret of weight 32, flagged `InsecureForTests`;
//! they exercise the arithmetic and the planning, not the security.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test fixtures fail loudly"
)]

use std::sync::{Arc, OnceLock};

use burn::backend::ndarray::NdArrayDevice;
use burn::module::AutodiffModule;
use burn::tensor::backend::Backend;
use ckks::circuits::bootstrap::{BootstrapConfig, Bootstrapper};
use ckks::params::Parameters;
use ckks::ring::poly::galois_element_for_rotation;
use ckks::rlwe::{Encryptor, KeyGenerator, SecretKey};
use ckks::scheme::evaluator::{CkksEncoder, CkksEncryptor, EvaluationKeys, Evaluator};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use transformer::encrypted::{EncryptedError, WeightEncoding};
use transformer::encrypted_lm::{single_polynomial_inverse_sqrt, EncryptedLm, LmOptions};
use transformer::model::checkpoint::export_f64;
use transformer::model::{
    record_ranges, train, CpuTrain, FitConfig, ModelConfig, PolySet, SitePoly, TaskData, TrainConfig,
    Transformer,
};
use transformer::pipeline::synthetic;
use transformer::reference::ReferenceModel;

/// The trained tiny LM with fitted polynomials, and token windows of its held-out split.
struct Fixture {
    model: ReferenceModel,
    /// Calibration windows (training split).
    calibration: Vec<Vec<u32>>,
    /// Test windows (held-out split).
    windows: Vec<Vec<u32>>,
}

fn windows(ids: &[u32], len: usize, n: usize) -> Vec<Vec<u32>> {
    ids.chunks_exact(len + 1)
        .take(n)
        .map(|w| w[..len].to_vec())
        .collect()
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let cfg = ModelConfig::lm_tiny();
        let (data, _) = synthetic(&cfg);
        let device = NdArrayDevice::default();
        <CpuTrain as Backend>::seed(&device, 1);
        let model = Transformer::<CpuTrain>::new(&cfg, &device);
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
        let (model, history) = train(model, &data, &tc, None, None, Some(16), "encrypted-lm-test").unwrap();
        assert!(!history.diverged, "training diverged");
        let model = model.valid();
        let record = record_ranges(&model, &data, 32, 128);
        let mut polys = PolySet::fit(
            &record,
            &FitConfig {
                gelu_degree: 15,
                ..FitConfig::default()
            },
        )
        .unwrap();
        // The encrypted LayerNorm evaluates one polynomial (no Newton steps): degree-15 interpolants
        // of 1/sqrt on the fitted intervals.
        assert_eq!(single_polynomial_inverse_sqrt(&mut polys, 15).unwrap(), 3);
        let weights = export_f64(&model).unwrap();
        let reference = ReferenceModel::new(&cfg, &weights, Some(&polys)).unwrap();
        let TaskData::Tokens {
            train, test, seq_len, ..
        } = &data
        else {
            panic!("not tokens");
        };
        Fixture {
            model: reference,
            calibration: windows(train, *seq_len, 32),
            windows: windows(test, *seq_len, 4),
        }
    })
}

/// Toy bootstrapping parameters: q_0 of 60 bits, 9 working levels of 45 bits, 12 bootstrapping
/// levels of 60 bits (CoeffsToSlots 2, EvalMod 5 + 3, SlotsToCoeffs 2).
fn toy_boot() -> (Arc<Parameters>, BootstrapConfig) {
    (Parameters::toy_boot(9).unwrap(), BootstrapConfig::toy())
}

struct Run {
    lm: EncryptedLm,
    sk: SecretKey,
    encoder: CkksEncoder,
    encryptor: CkksEncryptor,
    eval: Evaluator,
    rng: ChaCha20Rng,
}

fn prepare(batch: usize, weights: WeightEncoding) -> Run {
    let f = fixture();
    let (params, config) = toy_boot();
    let encoder = CkksEncoder::new(&params).unwrap();
    // Batches below the maximum bootstrap on the slots they fill (sparse packing).
    let config = BootstrapConfig {
        slots: Some(EncryptedLm::slots_needed(&f.model, batch)),
        ..config
    };
    let boot = Arc::new(Bootstrapper::new(&params, &encoder, config).unwrap());
    let start = boot.output_level();
    let lm = EncryptedLm::new(
        &f.model,
        &params,
        &encoder,
        Some(boot),
        start,
        LmOptions {
            weights,
            batch,
            ..LmOptions::default()
        },
        &f.calibration,
    )
    .unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let kg = KeyGenerator::new(&params);
    let sk = kg.gen_secret_key(&mut rng).unwrap();
    let pk = kg.gen_public_key(&sk, &mut rng).unwrap();
    let mut keys = EvaluationKeys {
        relin: Some(kg.gen_relin_key(&sk, &mut rng).unwrap()),
        ..Default::default()
    };
    for (g, level) in lm.galois_keys_needed() {
        keys.galois
            .insert(g, kg.gen_galois_key_at_level(&sk, g, level, &mut rng).unwrap());
    }
    let eval = Evaluator::new(&params, Arc::new(keys));
    Run {
        lm,
        sk,
        encoder,
        encryptor: CkksEncryptor(Encryptor::Public(pk)),
        eval,
        rng,
    }
}

fn argmax(v: &[f64]) -> usize {
    v.iter()
        .enumerate()
        .fold(
            (0, f64::NEG_INFINITY),
            |(bi, bv), (i, &x)| if x > bv { (i, x) } else { (bi, bv) },
        )
        .0
}

/// Runs `windows` through the encrypted LM and returns the max |logit error| against the reference,
/// checking the planned bootstraps and operation counts were the ones performed and every top-1
/// token agrees.
fn run_and_compare(run: &mut Run, windows: &[Vec<u32>]) -> f64 {
    let f = fixture();
    let ct = run
        .lm
        .encrypt_windows(&run.encoder, &run.encryptor, windows, &mut run.rng)
        .unwrap();
    run.eval.reset_op_counts();
    let out = run.lm.forward(&run.eval, &ct).unwrap();
    assert_eq!(out.bootstraps, run.lm.bootstraps_planned());
    assert_eq!(
        run.eval.op_counts(),
        run.lm.predicted_op_counts().total(),
        "the predicted operation counts are the ones performed"
    );
    assert!(out
        .logits
        .iter()
        .all(|m| m.tiles[0].level() == run.lm.output_level()));
    let got = run.lm.decrypt_logits(&run.encoder, &run.sk, &out.logits).unwrap();
    let mut worst = 0.0f64;
    for (w, ids) in windows.iter().enumerate() {
        let expected = f.model.forward_tokens(ids).unwrap();
        for (t, (e, g)) in expected.iter().zip(&got[w]).enumerate() {
            assert_eq!(e.len(), g.len());
            let err = e.iter().zip(g).fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
            worst = worst.max(err);
            assert_eq!(
                argmax(e),
                argmax(g),
                "window {w} position {t}: top-1 differs (error {err:.2e})"
            );
        }
    }
    worst
}

#[test]
fn encrypted_lm_logits_match_the_reference_through_bootstraps() {
    let mut run = prepare(1, WeightEncoding::Once);
    assert!(
        run.lm.bootstraps_planned() >= 2,
        "the toy chain forces bootstraps"
    );
    let plan = run.lm.plan();
    assert_eq!(
        plan.iter().filter(|s| s.starts_with("bootstrap")).count(),
        run.lm.bootstraps_planned()
    );
    // The calibration windows stay under 1 / margin at every bootstrap input (margin 2).
    let f = fixture();
    let headroom = run.lm.bootstrap_headroom(&f.model, &f.calibration).unwrap();
    assert_eq!(headroom.len(), run.lm.bootstraps_planned());
    for (point, r) in &headroom {
        assert!(*r > 0.0 && *r <= 0.5, "{point}: {r}");
    }
    assert!(plan.last().unwrap().starts_with("head: level"), "{plan:?}");
    let f = fixture();
    let err = run_and_compare(&mut run, &f.windows[..1]);
    // Flooded decryption (for logits that will be shared) costs precision, not the answer.
    let ct = run
        .lm
        .encrypt_windows(&run.encoder, &run.encryptor, &f.windows[..1], &mut run.rng)
        .unwrap();
    let out = run.lm.forward(&run.eval, &ct).unwrap();
    let flooded = run
        .lm
        .decrypt_logits_flooded(&run.encoder, &run.sk, &out.logits, 20, &mut run.rng)
        .unwrap();
    let plain = run.lm.decrypt_logits(&run.encoder, &run.sk, &out.logits).unwrap();
    let shift = flooded[0]
        .iter()
        .flatten()
        .zip(plain[0].iter().flatten())
        .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
    // 2^20 sqrt(N / 3) / 2^45 ~ 2^-20.
    assert!(
        shift > 0.0 && shift < 1e-4,
        "flooding moved the logits by {shift}"
    );
    assert!(matches!(
        run.lm
            .decrypt_logits_flooded(&run.encoder, &run.sk, &out.logits, 70, &mut run.rng),
        Err(EncryptedError::Ckks(_))
    ));
    eprintln!(
        "tiny LM, {} bootstraps, max |logit error| {err:.2e}",
        run.lm.bootstraps_planned()
    );
    // Bootstrapping at N = 2^10 keeps about 20 bits of the (scaled) inputs; the logits of the tiny
    // LM are of order 1.
    assert!(err < 1e-2, "max logit error {err}");
}

#[test]
fn a_batch_of_windows_matches_each_reference_with_weights_encoded_per_forward() {
    let mut run = prepare(2, WeightEncoding::PerForward);
    let f = fixture();
    let err = run_and_compare(&mut run, &f.windows[1..3]);
    assert!(err < 1e-2, "max logit error {err}");
}

#[test]
fn galois_keys_are_the_rotations_used_at_their_levels() {
    let run = prepare(1, WeightEncoding::Once);
    let n = 1 << 10;
    let keys = run.lm.galois_keys_needed();
    for (&r, &level) in run.lm.rotations_needed() {
        let g = galois_element_for_rotation(r, n);
        let (_, l) = keys
            .iter()
            .find(|(e, _)| *e == g)
            .expect("every rotation has a key");
        assert!(*l >= level);
        assert!(level <= run.lm.start_level());
    }
    // A forward with keys below the levels they are used at fails with a typed error, not garbage.
    let f = fixture();
    let (params, config) = toy_boot();
    let encoder = CkksEncoder::new(&params).unwrap();
    let config = BootstrapConfig {
        slots: Some(EncryptedLm::slots_needed(&f.model, 1)),
        ..config
    };
    let boot = Arc::new(Bootstrapper::new(&params, &encoder, config).unwrap());
    let start = boot.output_level();
    let lm = EncryptedLm::new(
        &f.model,
        &params,
        &encoder,
        Some(boot),
        start,
        LmOptions::default(),
        &f.calibration,
    )
    .unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    let kg = KeyGenerator::new(&params);
    let sk = kg.gen_secret_key(&mut rng).unwrap();
    let pk = kg.gen_public_key(&sk, &mut rng).unwrap();
    let mut keys = EvaluationKeys {
        relin: Some(kg.gen_relin_key(&sk, &mut rng).unwrap()),
        ..Default::default()
    };
    let top = params.max_level();
    // The model's own keys (not the bootstrapping circuit's) generated for level 0 only.
    for (g, level) in lm.galois_keys_needed() {
        let level = if level == top { top } else { 0 };
        keys.galois
            .insert(g, kg.gen_galois_key_at_level(&sk, g, level, &mut rng).unwrap());
    }
    let eval = Evaluator::new(&params, Arc::new(keys));
    let ct = lm
        .encrypt_windows(
            &encoder,
            &CkksEncryptor(Encryptor::Public(pk)),
            &f.windows[..1],
            &mut rng,
        )
        .unwrap();
    let r = lm.forward(&eval, &ct);
    assert!(
        matches!(r, Err(EncryptedError::Ckks(ckks::Error::InvalidKey { .. }))),
        "{:?}",
        r.map(|o| o.bootstraps)
    );
}

#[test]
fn models_and_inputs_it_cannot_handle_are_typed_errors() {
    let f = fixture();
    let (params, config) = toy_boot();
    let encoder = CkksEncoder::new(&params).unwrap();
    // One window fills half the toy slots: a full-slot bootstrapper does not match it.
    let full = Arc::new(Bootstrapper::new(&params, &encoder, config.clone()).unwrap());
    let config = BootstrapConfig {
        slots: Some(EncryptedLm::slots_needed(&f.model, 1)),
        ..config
    };
    let boot = Arc::new(Bootstrapper::new(&params, &encoder, config).unwrap());
    assert!(boot.slots() < params.max_slots(), "one window packs sparsely");
    let start = boot.output_level();
    let new =
        |model: &ReferenceModel, boot: Option<Arc<Bootstrapper>>, options: LmOptions, cal: &[Vec<u32>]| {
            EncryptedLm::new(model, &params, &encoder, boot, start, options, cal)
        };
    // Without bootstrapping the 9 levels do not hold the model.
    assert!(matches!(
        new(&f.model, None, LmOptions::default(), &f.calibration),
        Err(EncryptedError::Levels { .. })
    ));
    assert!(matches!(
        new(&f.model, Some(full), LmOptions::default(), &f.calibration),
        Err(EncryptedError::Shape(_))
    ));
    // Bootstrapping needs calibration windows to scale its inputs.
    assert!(matches!(
        new(&f.model, Some(boot.clone()), LmOptions::default(), &[]),
        Err(EncryptedError::Input(_))
    ));
    // A batch that does not fit.
    let too_many = LmOptions {
        batch: 3,
        ..LmOptions::default()
    };
    assert!(matches!(
        new(&f.model, Some(boot.clone()), too_many, &f.calibration),
        Err(EncryptedError::Shape(_))
    ));
    // Newton steps on ciphertexts are refused, not approximated silently.
    let mut newton = f.model.clone();
    let polys = newton.polys.as_mut().unwrap();
    let site = polys.sites.get_mut("blocks.0.norm1.var").unwrap();
    if let SitePoly::Newton { steps, .. } = &mut site.poly {
        *steps = 1;
    }
    assert!(matches!(
        new(&newton, Some(boot.clone()), LmOptions::default(), &f.calibration),
        Err(EncryptedError::Unsupported(_))
    ));
    // Inputs: a window of another length, an id outside the vocabulary.
    let lm = new(&f.model, Some(boot), LmOptions::default(), &f.calibration).unwrap();
    let short = vec![f.windows[0][..3].to_vec()];
    assert!(matches!(lm.token_matrix(&short), Err(EncryptedError::Shape(_))));
    let mut bad = f.windows[0].clone();
    bad[0] = 1000;
    assert!(matches!(lm.token_matrix(&[bad]), Err(EncryptedError::Input(_))));
}

#[test]
fn client_and_server_through_files_match_the_reference() {
    use transformer::deploy::{
        embedding_from_bytes, embedding_to_bytes, read_file, read_server_artefact, write_file, DeployError,
        EncryptedTensor, LmClient, LmInterface, LmServer, LmServerSetup, ServerKeys,
    };
    let f = fixture();
    let (params, config) = toy_boot();
    let dir = std::env::temp_dir().join(format!("lm-deploy-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    // Server: prepares the model, publishes the interface and the client's part (the embedding).
    let options = LmOptions {
        batch: 2,
        ..LmOptions::default()
    };
    let setup = LmServerSetup::new(&f.model, &params, config, options, &f.calibration).unwrap();
    setup.interface().write(&dir.join("interface.json")).unwrap();
    let emb = embedding_to_bytes(setup.embedding());
    write_file(&dir.join("embedding.bin"), &emb).unwrap();
    // Client: keys (each Galois key at its level), then two windows.
    let mut rng = ChaCha20Rng::seed_from_u64(21);
    let interface = LmInterface::read(&dir.join("interface.json"), &params).unwrap();
    let embedding = embedding_from_bytes(&read_file(&dir.join("embedding.bin")).unwrap()).unwrap();
    let client = LmClient::new(&params, interface.clone(), embedding.clone(), &mut rng).unwrap();
    client.write_evaluation_keys(&dir.join("keys"), &mut rng).unwrap();
    let windows = f.windows[..2].to_vec();
    let input = client.encrypt_windows(&windows, &mut rng).unwrap();
    write_file(&dir.join("input.bin"), &input.to_bytes(&params)).unwrap();
    // Server: reads only public artefacts.
    let keys = ServerKeys::read(&dir.join("keys"), &params).unwrap();
    let server = LmServer::new(setup, keys).unwrap();
    let input: EncryptedTensor = read_server_artefact(&dir.join("input.bin"), &params).unwrap();
    let (outputs, _) = server.serve(&input).unwrap();
    for (i, o) in outputs.iter().enumerate() {
        write_file(&dir.join(format!("out_{i}.bin")), &o.to_bytes(&params)).unwrap();
    }
    // Client: decrypts.
    let outputs: Vec<EncryptedTensor> = (0..outputs.len())
        .map(|i| {
            EncryptedTensor::from_bytes(&read_file(&dir.join(format!("out_{i}.bin"))).unwrap(), &params)
                .unwrap()
        })
        .collect();
    let logits = client.decrypt(&outputs).unwrap();
    for (w, ids) in windows.iter().enumerate() {
        for (e, g) in f.model.forward_tokens(ids).unwrap().iter().zip(&logits[w]) {
            let err = e.iter().zip(g).fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
            assert!(err < 1e-2, "window {w}: error {err}");
            assert_eq!(argmax(e), argmax(g));
        }
    }
    // Mix-ups and corruption are typed errors.
    let other = LmClient::new(&params, interface, embedding, &mut rng).unwrap();
    let foreign = other.encrypt_windows(&windows, &mut rng).unwrap();
    assert!(matches!(server.serve(&foreign), Err(DeployError::Mismatch(_))));
    assert!(matches!(other.decrypt(&outputs), Err(DeployError::Mismatch(_))));
    assert!(matches!(
        client.decrypt(&outputs[1..]),
        Err(DeployError::Mismatch(_))
    ));
    let mut bad = input.to_bytes(&params);
    let mid = bad.len() / 2;
    bad[mid] ^= 1;
    assert!(matches!(
        EncryptedTensor::from_bytes(&bad, &params),
        Err(DeployError::Format(_))
    ));
    let mut bad = emb.clone();
    bad[40] ^= 1;
    assert!(matches!(embedding_from_bytes(&bad), Err(DeployError::Format(_))));
    // Keys generated below the levels the model uses them at are refused when the server starts.
    let (params2, config2) = (params.clone(), toy_boot().1);
    let setup = LmServerSetup::new(&f.model, &params2, config2, options, &f.calibration).unwrap();
    let mut low = setup.interface().clone();
    let top = params2.max_level();
    for (_, level) in low.galois.iter_mut() {
        if *level < top {
            *level = 0;
        }
    }
    let weak = LmClient::new(&params2, low, setup.embedding().clone(), &mut rng).unwrap();
    weak.write_evaluation_keys(&dir.join("weak_keys"), &mut rng)
        .unwrap();
    let keys = ServerKeys::read(&dir.join("weak_keys"), &params2).unwrap();
    assert!(matches!(
        LmServer::new(setup, keys),
        Err(DeployError::Mismatch(_))
    ));
    let _ = std::fs::remove_dir_all(&dir);
}
